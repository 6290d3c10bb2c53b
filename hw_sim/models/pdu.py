"""The power distribution unit: switched 28 V channels with current sensing, limits and trips.

Channels come from the PDU's dictionary entry (``config.channels``, named by
its ``PDU_CHANNEL`` enumeration).  Each channel has a kind:

* ``main``: a payload's 28 V line.  The load (a :class:`UnitModel`) is
  powered through :meth:`UnitModel.set_power` and draws
  :meth:`UnitModel.power_w` (its mode's power, plus any fault load).
* ``heater``: a survival heater, a resistive load of ``heater_w``.
* ``actuator``: a deploy unit's actuator bus.  The PDU calls
  ``load.set_bus_power(on, now)`` if the load has it, and senses
  ``load.power_w(now)``; a load without ``set_bus_power`` is modelled as a
  resistive ``power_w`` from the channel's config.

Current is load power over the bus voltage, plus an inrush pulse after
switch-on (peak ``inrush_a``, decaying with ``inrush_tau_s``) and any
injected fault current.  A channel above its limit for ``trip_delay_s``
trips: it switches off, reports ``PDU_TRIP`` and refuses ``PDU_SWITCH ON``
(``FAULT_ACTIVE``) until ``PDU_RESET_TRIP``.  So an inrush above the limit
for less than the trip delay passes, and one above it for longer (a limit
programmed too low, a big capacitor) trips at the trip delay.

The trip logic is event-driven: a load whose power follows its mode (the
generic :meth:`UnitModel.power_w`) tells the PDU when its draw changes, and
the PDU looks again at every switch, fault, limit change, and when an
over-limit current has lasted the trip delay.  Other loads (a deploy unit's
actuators) are sampled every ``sample_period_s`` while their channel is on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fsw.core.timers import Periodic, Timer
from fsw.dictionary import Command, Dictionary, System, TmPacket
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitFailure, UnitModel

KINDS = ("main", "heater", "actuator")


@dataclass
class Channel:
    """One switched channel and what the PDU knows about it."""

    name: str
    value: int
    unit: str
    kind: str
    limit_a: float
    inrush_a: float = 0.0
    inrush_tau_s: float = 0.002
    heater_w: float = 0.0
    power_w: float = 0.0          # actuator channels without a modelled load
    load: Any = None
    on: bool = False
    tripped: bool = False
    on_since: float = 0.0
    over_since: float | None = None
    fault_extra_a: float = 0.0    # injected: a short downstream of the switch
    trips: int = 0
    switches: int = 0
    peak_a: float = 0.0
    notifies: bool = True         # the load reports changes of its draw (no sampling needed)
    _check: Timer | None = field(default=None, repr=False)


class PduModel(UnitModel):
    """The PDU; loads are attached per channel with :meth:`attach`."""

    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        if system.kind != "pdu":
            raise ValueError(f"{system.name} is a {system.kind!r} unit, not a PDU")
        super().__init__(dictionary, system, rng, powered)
        cfg = system.config
        self.bus_v = float(cfg.get("bus_v", 28.0))
        self.sample_period_s = float(cfg.get("sample_period_s", 0.1))
        self.trip_delay_s = float(cfg.get("trip_delay_s", 0.05))
        self.settle_s = float(cfg.get("switch_settle_s", 0.02))
        self.noise_a = float(cfg.get("current_noise_a", 0.0))
        self.max_limit_a = float(cfg.get("max_limit_a", 5.0))
        if self.bus_v <= 0 or self.sample_period_s <= 0 or self.trip_delay_s < 0:
            raise ValueError(f"{system.name}: bus_v and sample_period_s must be positive, trip_delay_s >= 0")
        self.channels = parse_channels(system)
        self.trips = 0
        self._hk = system.packet(f"{system.name}_HK")
        names = {p.name for p in self._hk.params}
        #: each channel's housekeeping parameter names (see channel_params)
        self._ch_params = {ch.name: channel_params(system.name, ch.name) for ch in self.channels.values()}
        for ch in self.channels.values():
            missing = [n for n in self._ch_params[ch.name].values() if n not in names]
            if missing:
                raise ValueError(f"{system.name}: {self._hk.name} lacks {', '.join(missing)} for channel {ch.name}")
        self._sampler: Periodic | None = None
        self._pending_on: dict[int, str] = {}   # TC request id -> channel switched on, until it settles

    # -- wiring -------------------------------------------------------------------------
    def attach(self, channel: str, load: Any) -> None:
        """Feed ``load`` from ``channel`` (a main or actuator channel)."""
        ch = self.channel(channel)
        if ch.kind == "heater":
            raise ValueError(f"{channel} is a heater channel: its load is the heater itself")
        ch.load = load
        follows_mode = isinstance(load, UnitModel) and type(load).power_w is UnitModel.power_w
        if ch.kind == "actuator" and not hasattr(load, "set_bus_power"):
            ch.notifies = True          # modelled as a resistor of the channel's power_w
        elif follows_mode:
            ch.notifies = True
            load.add_power_listener(lambda now, c=ch: self._evaluate(c, now))
        else:
            ch.notifies = False

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name.upper()]
        except KeyError:
            raise KeyError(f"{self.system.name} has no channel {name!r}; channels: {', '.join(self.channels)}") from None

    def channel_of(self, unit: str, kind: str = "main") -> Channel | None:
        for ch in self.channels.values():
            if ch.unit == unit and ch.kind == kind:
                return ch
        return None

    def _update_sampler(self, now: float) -> None:
        need = any(ch.on and not ch.notifies for ch in self.channels.values())
        if need and self._sampler is None:
            self._sampler = self.timers.every(self.sample_period_s, self._sample, now + self.sample_period_s)
        elif not need and self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None

    # -- physics ------------------------------------------------------------------------
    def load_current(self, ch: Channel, now: float) -> float:
        """Steady current of the channel's load (no inrush, no fault), amperes."""
        if not ch.on:
            return 0.0
        if ch.kind == "heater":
            return ch.heater_w / self.bus_v
        load = ch.load
        if load is None:
            return ch.power_w / self.bus_v if ch.kind == "actuator" else 0.0
        if ch.kind == "actuator" and not hasattr(load, "set_bus_power"):
            return ch.power_w / self.bus_v
        return max(0.0, float(load.power_w(now))) / self.bus_v

    def current(self, ch: Channel, now: float) -> float:
        """What the channel's current sensor reads (without noise), amperes."""
        if not ch.on:
            return 0.0
        i = self.load_current(ch, now) + ch.fault_extra_a
        dt = now - ch.on_since
        if ch.inrush_a > i and dt < 20 * ch.inrush_tau_s:
            i += (ch.inrush_a - i) * math.exp(-dt / ch.inrush_tau_s)
        return i

    def _power_load(self, ch: Channel, on: bool, now: float) -> None:
        load = ch.load
        if load is None:
            return
        if ch.kind == "actuator":
            if hasattr(load, "set_bus_power"):
                load.set_bus_power(on, now)
        else:
            load.set_power(on, now)

    def switch(self, name: str, on: bool, now: float) -> None:
        """Switch a channel (the command path and tests use this)."""
        ch = self.channel(name)
        if on == ch.on:
            return
        if on and ch.tripped:
            raise UnitFailure("FAULT_ACTIVE", data=ch.value)
        ch.on = on
        ch.switches += 1
        ch.over_since = None
        if on:
            ch.on_since = now
            self._power_load(ch, True, now)
            steady = self.load_current(ch, now) + ch.fault_extra_a
            ch.peak_a = max(ch.inrush_a, steady)
            self.emit_event("PDU_SWITCHED", now, PDU_SW_CH=ch.name, PDU_SW_STATE="ON", PDU_SW_INRUSH=ch.peak_a)
        else:
            self._power_load(ch, False, now)
            self.emit_event("PDU_SWITCHED", now, PDU_SW_CH=ch.name, PDU_SW_STATE="OFF", PDU_SW_INRUSH=0.0)
        self._evaluate(ch, now)
        self._update_sampler(now)

    def _evaluate(self, ch: Channel, now: float) -> None:
        """Look at a channel's current: start (or stop) the trip delay's clock."""
        if not ch.on:
            ch.over_since = None
        elif self.current(ch, now) > ch.limit_a:
            if ch.over_since is None:
                ch.over_since = now
            if ch._check is None:
                ch._check = self.timers.call_at(ch.over_since + self.trip_delay_s, lambda t, c=ch: self._recheck(c, t))
            return
        else:
            ch.over_since = None
        if ch._check is not None:
            ch._check.cancel()
            ch._check = None

    def _recheck(self, ch: Channel, now: float) -> None:
        ch._check = None
        if not ch.on or ch.over_since is None:
            return
        i = self.current(ch, now)
        if i > ch.limit_a and now - ch.over_since >= self.trip_delay_s - 1e-9:
            self._trip(ch, i, now)
        else:
            self._evaluate(ch, now)

    def _sample(self, now: float) -> None:
        for ch in self.channels.values():
            if ch.on and not ch.notifies:
                self._evaluate(ch, now)

    def _trip(self, ch: Channel, current_a: float, now: float) -> None:
        if not ch.on:
            return
        if ch._check is not None:
            ch._check.cancel()
            ch._check = None
        ch.on = False
        ch.tripped = True
        ch.over_since = None
        ch.trips += 1
        self.trips += 1
        self._power_load(ch, False, now)
        self.emit_event("PDU_TRIP", now, PDU_TRIP_CH=ch.name, PDU_TRIP_I=min(current_a, 65.535),
                        PDU_TRIP_LIMIT=ch.limit_a)
        self._update_sampler(now)

    def inject_overcurrent(self, name: str, extra_a: float | None = None) -> None:
        """A short behind the switch: the channel draws ``extra_a`` more (default: its limit again)."""
        ch = self.channel(name)
        ch.fault_extra_a = ch.limit_a if extra_a is None else float(extra_a)
        self._evaluate(ch, self._now)

    def clear_fault(self, name: str) -> None:
        ch = self.channel(name)
        ch.fault_extra_a = 0.0
        self._evaluate(ch, self._now)

    def clear_faults(self) -> None:
        for ch in self.channels.values():
            self.clear_fault(ch.name)

    def emit_event(self, name: str, now: float, **args: Any) -> None:
        if self.answering(now):
            self.emit(name, now, **args)

    # -- commands -----------------------------------------------------------------------
    def check(self, cmd: Command, args: dict, now: float) -> None:
        if cmd.name == f"{self.system.name}_SWITCH":
            ch = self.channel(args["channel"])
            if args["state"] == "ON" and ch.tripped:
                raise UnitFailure("FAULT_ACTIVE", data=ch.value)
        elif cmd.name == f"{self.system.name}_SET_LIMIT":
            if args["limit_ma"] / 1000.0 > self.max_limit_a:
                raise UnitFailure("ARG_OUT_OF_RANGE", data=args["limit_ma"])

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        n = self.system.name
        if cmd.name == f"{n}_SWITCH":
            ch = self.channel(args["channel"])
            on = args["state"] == "ON"
            if on == ch.on:
                return None
            self.switch(ch.name, on, now)
            if not on:
                return None
            self._pending_on[tc.request_id] = ch.name
            # completes once the inrush has settled and can no longer trip the channel
            return now + max(self.settle_s, self.trip_delay_s)
        if cmd.name == f"{n}_SET_LIMIT":
            ch = self.channel(args["channel"])
            ch.limit_a = args["limit_ma"] / 1000.0
            self._evaluate(ch, now)
            return None
        if cmd.name == f"{n}_RESET_TRIP":
            ch = self.channel(args["channel"])
            ch.tripped = False
            return None
        return super().execute(cmd, args, tc, now)

    def complete(self, tc: PusTc, now: float) -> None:
        name = self._pending_on.pop(tc.request_id, None)
        if name is not None and not self.channels[name].on:
            # tripped while settling
            self.send(self.verifier.complete_fail(tc, "FAULT_ACTIVE", self.local_time(now), self.channels[name].value))
            return
        super().complete(tc, now)

    # -- housekeeping -------------------------------------------------------------------
    def total_current(self, now: float) -> float:
        return sum(self.current(ch, now) for ch in self.channels.values())

    def hk_values(self, pkt: TmPacket, now: float) -> dict[str, Any]:
        out = super().hk_values(pkt, now)
        if pkt is not self._hk:
            return out
        n = self.system.name
        total = 0.0
        for ch in self.channels.values():
            names = self._ch_params[ch.name]
            i = self.current(ch, now)
            if ch.on and self.noise_a:
                i = max(0.0, i + self.rng.gauss(0.0, self.noise_a))
            total += i
            out[names["on"]] = ch.on
            out[names["current"]] = min(i, 65.535)
            out[names["limit"]] = ch.limit_a
            out[names["trip"]] = ch.tripped
        out[f"{n}_TOTAL_I"] = min(total, 65.535)
        out[f"{n}_TRIPS"] = min(self.trips, 0xFFFF)
        return out


def channel_params(pdu: str, channel: str) -> dict[str, str]:
    """Names of a channel's housekeeping parameters (the flight software uses the same convention)."""
    return {"on": f"{pdu}_{channel}_ON", "current": f"{pdu}_{channel}_I",
            "limit": f"{pdu}_{channel}_LIMIT", "trip": f"{pdu}_{channel}_TRIP"}


def parse_channels(system: System) -> dict[str, Channel]:
    """The PDU's channels from its config, in PDU_CHANNEL order; raises ValueError on a bad entry."""
    enum = system.enums.get(f"{system.name}_CHANNEL")
    if enum is None:
        raise ValueError(f"{system.name}: no {system.name}_CHANNEL enumeration")
    cfg = system.config.get("channels") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{system.name}: config.channels must be a mapping")
    unknown = sorted(set(cfg) - set(enum.values))
    missing = sorted(set(enum.values) - set(cfg))
    if unknown or missing:
        raise ValueError(f"{system.name}: config.channels and {enum.name} differ "
                         f"(not in the enumeration: {unknown}, without config: {missing})")
    out: dict[str, Channel] = {}
    for name, value in sorted(enum.values.items(), key=lambda kv: kv[1]):
        c = cfg[name]
        if not isinstance(c, dict):
            raise ValueError(f"{system.name}: channel {name}: expected a mapping")
        kind = c.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{system.name}: channel {name}: kind must be one of {', '.join(KINDS)}")
        limit = float(c.get("limit_a", 0.0))
        if limit <= 0:
            raise ValueError(f"{system.name}: channel {name}: limit_a must be positive")
        tau = float(c.get("inrush_tau_s", 0.002))
        if tau <= 0:
            raise ValueError(f"{system.name}: channel {name}: inrush_tau_s must be positive")
        out[name] = Channel(name, value, str(c.get("unit", "")), kind, limit, float(c.get("inrush_a", 0.0)), tau,
                            float(c.get("heater_w", 0.0)), float(c.get("power_w", 0.0)))
    return out

