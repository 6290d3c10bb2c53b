"""A relay satellite's release controller (Alpine, Lupine): three inhibits, two actuators, two switches.

One model per deploy unit, each on its own serial line.  The dictionary entry
(``alpine.yaml``) declares the commands, the status packet and the events;
its ``config`` gives the actuator profiles and the separation switches.

Inhibits, in series between the PDU actuator channel and the actuators, each
shown in the status packet:

1. the bus-enable relay (``<UNIT>_BUS_ENABLE`` closes it),
2. the arm relay (``<UNIT>_ARM``),
3. the fire switch (``<UNIT>_FIRE``, closed for one actuator's pulse).

``<UNIT>_SAFE`` opens all three.  Current flows in an actuator only while the
PDU powers the actuator bus (:meth:`set_bus_power`, called by the PDU model)
*and* all three are closed *and* the actuator circuit is intact.  It draws
``power_w`` (30 W) from the bus, which the PDU senses through
:meth:`power_w`.  A profile's ``release_s`` of continuous current releases
the satellite (a burn-wire then parts and the current stops); the two
separation switches open ``switch_delay_s`` later, each debounced.

The controller's own logic is always powered; it answers commands and sends
its status once a second and at once on any observable change.

Fault injection (public, for tests and :mod:`hw_sim.faults`):
:meth:`inject_open_circuit`, :meth:`inject_stuck_release`,
:meth:`inject_failed_switch`, :meth:`inject_chatter`, ``silent`` (stops
answering), ``internal_fault`` (self-test failure: FAULT mode), and
:meth:`clear_faults`.

For the test oracles the model keeps a ground-truth log: :attr:`fire_log`
(one entry per executed fire command, with the inhibit states at that
instant), :attr:`released_at` and :attr:`released_by`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from fsw.dictionary import Command, Dictionary, System, TmPacket
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitFailure, UnitModel

ACTUATORS = ("A", "B")
ACTUATOR_TYPES = ("split_spool", "spring", "burn_wire")
#: longest actuation the interface allows (the PDU gives 30 W for up to 60 s)
MAX_PULSE_S = 60.0


@dataclass(frozen=True, slots=True)
class ActuatorProfile:
    """How one actuator behaves: see the module docstring."""

    type: str
    pulse_s: float
    release_s: float
    power_w: float = 30.0

    @classmethod
    def from_config(cls, name: str, d: Any) -> "ActuatorProfile":
        if not isinstance(d, dict):
            raise ValueError(f"actuator {name}: expected a mapping, got {d!r}")
        p = cls(str(d.get("type", "split_spool")), float(d.get("pulse_s", 0.05)),
                float(d.get("release_s", 0.025)), float(d.get("power_w", 30.0)))
        if p.type not in ACTUATOR_TYPES:
            raise ValueError(f"actuator {name}: type {p.type!r} not one of {', '.join(ACTUATOR_TYPES)}")
        if not 0 < p.pulse_s <= MAX_PULSE_S:
            raise ValueError(f"actuator {name}: pulse_s {p.pulse_s} outside (0, {MAX_PULSE_S}]")
        if not 0 < p.release_s:
            raise ValueError(f"actuator {name}: release_s must be positive")
        if p.power_w <= 0:
            raise ValueError(f"actuator {name}: power_w must be positive")
        return p

    @property
    def burns_through(self) -> bool:
        return self.type == "burn_wire"


class SepSwitch:
    """A separation switch: raw contact history and a debounced reading.

    The debounced reading is the last contact level that held for at least
    ``debounce_s``: chatter shorter than that never shows.  A failed switch
    is stuck ``"closed"`` or ``"open"`` whatever its contacts do.
    """

    __slots__ = ("debounce_s", "times", "levels", "stuck", "changes")

    def __init__(self, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self.times: list[float] = []     # raw contact changes, in time order
        self.levels: list[bool] = []     # level after each change (True = open)
        self.stuck: str | None = None
        self.changes = 0

    def raw(self, t: float) -> bool:
        i = bisect_right(self.times, t)
        return self.levels[i - 1] if i else False

    def set_raw(self, t: float, is_open: bool) -> bool:
        """Drive the contacts at ``t`` (not before the last change); True if the level changed."""
        if self.stuck is not None:
            is_open = self.stuck == "open"
        if self.times and t < self.times[-1]:
            raise ValueError(f"switch changes must come in time order ({t} < {self.times[-1]})")
        if self.raw(t) == is_open:
            return False
        self.times.append(t)
        self.levels.append(is_open)
        self.changes += 1
        return True

    def debounced(self, t: float) -> bool:
        """The level that last held for ``debounce_s`` up to ``t`` (closed before any change)."""
        value = False
        prev_t, prev_level = float("-inf"), False
        eps = 1e-9
        n = bisect_right(self.times, t)
        for k in range(n):
            te = self.times[k]
            if te - prev_t >= self.debounce_s - eps:
                value = prev_level
            prev_t, prev_level = te, self.levels[k]
        if t - prev_t >= self.debounce_s - eps:
            value = prev_level
        return value


@dataclass
class FireRecord:
    """Ground truth about one executed fire command (test oracle)."""

    actuator: str
    t: float
    bus_power: bool
    bus_relay: bool
    arm_relay: bool
    released_before: bool
    current_s: float = 0.0        # seconds of actuator current this fire produced
    released: bool = False        # this fire released the satellite


@dataclass
class _Observed:
    mode: str = ""
    bus_relay: bool = False
    arm_relay: bool = False
    fire_sw: bool = False
    bus_power: bool = False
    flowing: str | None = None
    sw: tuple[bool, bool] = (False, False)


class DeployControllerModel(UnitModel):
    """See the module docstring."""

    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        if system.kind != "deploy":
            raise ValueError(f"{system.name} is a {system.kind!r} unit, not a deploy unit")
        super().__init__(dictionary, system, rng, powered)
        cfg = system.config
        acts = cfg.get("actuators") or {}
        missing = [a for a in ACTUATORS if a not in acts]
        if missing:
            raise ValueError(f"{system.name}: config.actuators lacks {', '.join(missing)}")
        self.profiles = {a: ActuatorProfile.from_config(a, acts[a]) for a in ACTUATORS}
        sep = cfg.get("separation") or {}
        delays = sep.get("switch_delay_s", [0.05, 0.05])
        if not isinstance(delays, list) or len(delays) != 2 or any(float(x) < 0 for x in delays):
            raise ValueError(f"{system.name}: separation.switch_delay_s must be two non-negative delays")
        self.switch_delay_s = (float(delays[0]), float(delays[1]))
        self.debounce_s = float(sep.get("debounce_s", 0.010))
        self.bus_voltage_v = float(cfg.get("bus_voltage_v", 28.0))
        n = system.name
        self._status = system.packet(f"{n}_STATUS")
        self._cmd = {c.name[len(n) + 1:]: c for c in system.commands if c.name.startswith(n + "_")}
        for role in ("BUS_ENABLE", "ARM", "FIRE", "SAFE"):
            if role not in self._cmd:
                raise ValueError(f"{n}: the dictionary declares no {n}_{role} command")
        # state
        self.bus_power = False
        self.bus_relay = False
        self.arm_relay = False
        self.fire_switch = False
        self.firing: str | None = None         # actuator whose fire switch is closed
        self.burnt = {a: False for a in ACTUATORS}
        self.switches = (SepSwitch(self.debounce_s), SepSwitch(self.debounce_s))
        self.released_at: float | None = None
        self.released_by: str | None = None
        self.fire_count = 0
        self.fire_log: list[FireRecord] = []
        self.commands_seen: list[tuple[float, str]] = []
        # faults
        self.open_circuit: set[str] = set()
        self.stuck_release = False
        self.internal_fault = False
        # bookkeeping
        self._flow_since: float | None = None
        self._flow_gen = 0
        self._pulse_gen = 0
        self._obs = _Observed()
        self.mode = "SAFE"

    # -- power --------------------------------------------------------------------------
    def set_bus_power(self, on: bool, now: float) -> None:
        """The PDU actuator channel feeding this controller's actuator bus switched."""
        self._now = now
        self.bus_power = bool(on)
        self._update(now)

    def power_w(self, now: float) -> float:
        """Power drawn from the actuator bus: the firing actuator's, while its current flows."""
        a = self.flowing()
        return self.profiles[a].power_w if a is not None else 0.0

    def actuator_current(self, actuator: str) -> float:
        return self.power_w(0.0) / self.bus_voltage_v if self.flowing() == actuator else 0.0

    def flowing(self) -> str | None:
        """The actuator current flows in now, if any."""
        a = self.firing
        if (a is not None and self.bus_power and self.bus_relay and self.arm_relay and self.fire_switch
                and a not in self.open_circuit and not self.burnt[a]):
            return a
        return None

    # -- faults --------------------------------------------------------------------------
    def inject_open_circuit(self, actuator: str, now: float) -> None:
        self.open_circuit.add(_actuator(actuator))
        self._update(now)

    def inject_stuck_release(self) -> None:
        """The mechanism does not let go: the switches never open, whatever fires."""
        self.stuck_release = True

    def inject_failed_switch(self, index: int, stuck: str, now: float) -> None:
        """Switch ``index`` (0 or 1) reads ``"closed"`` or ``"open"`` from now on."""
        if stuck not in ("closed", "open"):
            raise ValueError(f"a switch is stuck 'closed' or 'open', not {stuck!r}")
        sw = self.switches[index]
        sw.stuck = None
        sw.set_raw(now, stuck == "open")
        sw.stuck = stuck
        self._watch_switch(now)

    def inject_chatter(self, index: int, now: float, duration_s: float = 0.05, half_period_s: float = 0.002) -> None:
        """Contact bounce on switch ``index``: the contacts toggle every ``half_period_s`` for ``duration_s``."""
        if half_period_s <= 0 or duration_s < 0:
            raise ValueError("chatter needs a positive half period and a non-negative duration")
        steps = int(duration_s / half_period_s)
        for k in range(1, steps + 1):
            self.timers.call_at(now + k * half_period_s, lambda t, i=index: self._toggle(i, t))
        # afterwards the contacts settle where the mechanism puts them
        self.timers.call_at(now + (steps + 1) * half_period_s, lambda t, i=index: self._settle(i, t))

    def inject_fault(self, kind: str) -> None:
        """Faults by name (``hw-sim`` CLI, :meth:`hw_sim.assembly.Hardware.inject`):
        ``open_circuit:A|B``, ``stuck_release``, ``failed_switch:1|2[:open|closed]``, ``chatter:1|2``,
        ``controller_fault``, ``clear_deploy``.  Raises ValueError for anything else."""
        now = self._now
        base, _, arg = kind.strip().lower().partition(":")
        try:
            if base == "open_circuit":
                self.inject_open_circuit(arg.upper() or "A", now)
            elif base == "stuck_release":
                self.inject_stuck_release()
            elif base == "failed_switch":
                idx, _, stuck = arg.partition(":")
                self.inject_failed_switch(int(idx or 1) - 1, stuck or "closed", now)
            elif base == "chatter":
                self.inject_chatter(int(arg or 1) - 1, now)
            elif base == "controller_fault":
                self.internal_fault = True
                self._update(now)
            elif base == "clear_deploy":
                self.clear_faults(now)
            else:
                raise ValueError(kind)
        except (ValueError, IndexError):
            raise ValueError(f"unknown deploy fault {kind!r}; known: open_circuit:A|B, stuck_release, "
                             "failed_switch:1|2[:open|closed], chatter:1|2, controller_fault, clear_deploy") from None

    def clear_faults(self, now: float) -> None:
        self.open_circuit.clear()
        self.stuck_release = False
        self.internal_fault = False
        self.silent = False
        for i, sw in enumerate(self.switches):
            if sw.stuck is not None:  # a repaired switch reads the mechanism again
                sw.stuck = None
                sw.set_raw(max(now, sw.times[-1] if sw.times else now), self._mechanism_open(i, now))
        self._watch_switch(now)

    def _toggle(self, index: int, now: float) -> None:
        sw = self.switches[index]
        sw.set_raw(now, not sw.raw(now))
        self._watch_switch(now)

    def _settle(self, index: int, now: float) -> None:
        self.switches[index].set_raw(now, self._mechanism_open(index, now))
        self._watch_switch(now)

    def _mechanism_open(self, index: int, now: float) -> bool:
        return self.released_at is not None and now >= self.released_at + self.switch_delay_s[index]

    def _watch_switch(self, now: float) -> None:
        """A contact changed: look again once the debounce time has passed."""
        self._update(now)
        self.timers.call_at(now + self.debounce_s + 1e-6, self._update)

    # -- physics -------------------------------------------------------------------------
    def _update(self, now: float) -> None:
        """Re-evaluate the current path after any change, then report what changed."""
        a = self.flowing()
        if a is not None and self._flow_since is None:
            self._flow_since = now
            self._flow_gen += 1
            gen = self._flow_gen
            self.timers.call_at(now + self.profiles[a].release_s, lambda t, g=gen, a=a: self._energy(g, a, t))
            self._power_changed(now)
        elif a is None and self._flow_since is not None:
            self._end_flow(now)
            self._power_changed(now)
        self._report_changes(now)

    def _end_flow(self, now: float) -> None:
        if self._flow_since is not None and self.fire_log:
            self.fire_log[-1].current_s += now - self._flow_since
        self._flow_since = None
        self._flow_gen += 1

    def _energy(self, gen: int, actuator: str, now: float) -> None:
        """``release_s`` of continuous current went into ``actuator``."""
        if gen != self._flow_gen:
            return  # the current was interrupted first
        if self.profiles[actuator].burns_through:
            self._end_flow(now)
            self.burnt[actuator] = True   # the wire parts: no more current
        if self.released_at is None and not self.stuck_release:
            self.released_at = now
            self.released_by = actuator
            if self.fire_log:
                self.fire_log[-1].released = True
            for i in (0, 1):
                self.timers.call_at(now + self.switch_delay_s[i], lambda t, i=i: self._settle(i, t))
        self._update(now)

    def _pulse_end(self, gen: int, now: float) -> None:
        if gen != self._pulse_gen:
            return
        a = self.firing
        self._end_flow(now)
        if a is not None and self.fire_log and self.fire_log[-1].current_s <= 0 and self.answering(now):
            evt = self.system.event(f"{self.system.name}_NO_CURRENT")
            self.emit(evt.name, now, **{evt.args[0].name: a})
        self.fire_switch = False
        self.firing = None
        self._update(now)

    # -- commands ------------------------------------------------------------------------
    def check(self, cmd: Command, args: dict, now: float) -> None:
        role = cmd.name[len(self.system.name) + 1:]
        if role == "FIRE" and self.fire_switch:
            raise UnitFailure("BUSY")

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        role = cmd.name[len(self.system.name) + 1:] if cmd.name.startswith(self.system.name + "_") else ""
        if role not in ("BUS_ENABLE", "ARM", "FIRE", "SAFE"):
            return super().execute(cmd, args, tc, now)
        self.commands_seen.append((now, role))
        if role == "BUS_ENABLE":
            self.bus_relay = True
        elif role == "ARM":
            self.arm_relay = True
        elif role == "SAFE":
            self._pulse_gen += 1
            self.fire_switch = False
            self.firing = None
            self.arm_relay = False
            self.bus_relay = False
        else:
            a = _actuator(args["actuator"])
            self.fire_count += 1
            self.fire_log.append(FireRecord(a, now, self.bus_power, self.bus_relay, self.arm_relay,
                                            self.released_at is not None))
            self.fire_switch = True
            self.firing = a
            self._pulse_gen += 1
            gen = self._pulse_gen
            self.timers.call_at(now + self.profiles[a].pulse_s, lambda t, g=gen: self._pulse_end(g, t))
        self._update(now)
        return None

    # -- reporting -----------------------------------------------------------------------
    def derived_mode(self, now: float) -> str:
        if self.internal_fault:
            return "FAULT"
        if self.fire_switch:
            return "FIRING"
        if all(sw.debounced(now) for sw in self.switches):
            return "RELEASED"
        if self.bus_relay and self.arm_relay:
            return "ARMED"
        return "SAFE"

    def _report_changes(self, now: float) -> None:
        obs = _Observed(self.derived_mode(now), self.bus_relay, self.arm_relay, self.fire_switch, self.bus_power,
                        self.flowing(), (self.switches[0].debounced(now), self.switches[1].debounced(now)))
        old = self._obs
        if obs == old:
            return
        self._obs = obs
        if obs.mode != old.mode:
            self.set_mode(obs.mode, now)   # emits <UNIT>_MODE_CHANGED
        if self.answering(now):
            if all(obs.sw) and not all(old.sw):
                self.emit(f"{self.system.name}_SEPARATED", now)
            self.stats["hk_sent"] += 1
            self.send(self.tm.packet(self._status, self.hk_values(self._status, now), self.local_time(now)))

    def set_mode(self, mode: str, now: float) -> None:
        if not self.answering(now):
            self.mode = mode  # a silent controller changes mode without telling anyone
            return
        super().set_mode(mode, now)

    def hk_values(self, pkt: TmPacket, now: float) -> dict[str, Any]:
        if pkt is not self._status:
            return super().hk_values(pkt, now)
        n = self.system.name
        flowing = self.flowing()
        current = self.power_w(now) / self.bus_voltage_v
        return {
            f"{n}_MODE": self.derived_mode(now),
            f"{n}_BUS_RELAY": self.bus_relay,
            f"{n}_ARM_RELAY": self.arm_relay,
            f"{n}_FIRE_SW": self.fire_switch,
            f"{n}_BUS_V": self.bus_voltage_v if self.bus_power else 0.0,
            f"{n}_ACT_A_I": current if flowing == "A" else 0.0,
            f"{n}_ACT_B_I": current if flowing == "B" else 0.0,
            f"{n}_SW1_OPEN": self.switches[0].debounced(now),
            f"{n}_SW2_OPEN": self.switches[1].debounced(now),
            f"{n}_SW1_CHANGES": min(self.switches[0].changes, 0xFFFF),
            f"{n}_SW2_CHANGES": min(self.switches[1].changes, 0xFFFF),
            f"{n}_FIRE_COUNT": min(self.fire_count, 0xFF),
        }

    def on_power_off(self, now: float) -> None:
        # the controller's logic is always powered in the reference design; if a bench turns it off,
        # the relays drop out (they are held by the logic supply)
        self._pulse_gen += 1
        self.fire_switch = False
        self.firing = None
        self.arm_relay = False
        self.bus_relay = False
        self._update(now)


def _actuator(v: Any) -> str:
    a = str(v).upper()
    if a not in ACTUATORS:
        raise ValueError(f"actuator {v!r} is not A or B")
    return a
