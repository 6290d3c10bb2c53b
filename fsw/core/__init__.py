"""Pure flight-software core: clock protocol, timers, node shape, services and managers."""
