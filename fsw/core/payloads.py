"""The payload manager: each payload's life cycle, power, budget, heartbeat and data accounting.

Every unit of kind ``payload`` with a main channel on the PDU is managed.
Its life cycle is a state machine written as a table (:data:`LIFECYCLE`):
``(state, event) -> (next state, action)``.  States are

* ``OFF``        main channel off;
* ``BOOTING``    switched on (or found on), not heard yet;
* ``IDLE``       heard, in its boot mode (``config.boot_mode``, else its first mode that is not OFF);
* ``OPERATING``  heard, in any other of the modes its dictionary entry declares (the mode is kept
  beside the state, from the payload's housekeeping and mode-change events);
* ``SAFE``       switched off by fault protection after ``max_strikes`` heartbeat failures, and latched:
  only ``PAYLOAD_RESET`` clears it;
* ``FAULT``      one of its channels tripped on overcurrent; latched like SAFE.

An event without a row in the table is ignored (and counted).  What each
state accepts from ground is a second table, :data:`REQUESTS`; the
phase and the power budget are checked on top of it, before anything is
switched or forwarded, so a refused command is never half executed.

Power budget: the *committed* power is the sum, over payloads, of the
declared power of the mode each is in (booting: its boot mode), raised to
the power of any mode a forwarded command is taking it to until the
payload reports the outcome; plus the heaters that are on (``heater_w``)
and the actuator channels that are on (``power_w``).  A command that would
take it above the phase's ``power_w`` is refused with POWER_BUDGET.

Heartbeat: a payload heard nothing from for ``heartbeat_periods``
housekeeping periods (or not heard ``boot_time_s`` plus that long after
switch-on) counts a strike, gets ``PAYLOAD_SILENT`` and a power cycle; at
``max_strikes`` it goes to SAFE (or OFF, ``on_exhausted``) with
``PAYLOAD_SAFED``.  Strikes, the lifetime failure count and the SAFE/FAULT
latches are written to the durable store at once, so a restart neither
forgets them nor loops; the data and energy counters every
``PERSIST_PERIOD_S``.

Phase changes: SET_PHASE is vetoed (PHASE_FORBIDS) while a payload is
powered in a phase without payload power, or in a mode (or heading for a
mode) the new phase does not allow, or a heater is on in a phase without
heaters; and (POWER_BUDGET) while the committed power exceeds the new
allocation.  The manager never switches payloads off by itself because of a
phase change: powering down a drilling LISTER or a levelling FSS is a
decision for ground's procedure (the power-down sequence before LAUNCH or
DESCENT), not a side effect of a declaration.

Forwarding: every TC routed to a payload that asks for a report is
watched; without any PUS-1 report from the payload within
``response_timeout_s`` it is re-sent up to ``retries`` times
(``PAYLOAD_TC_RETRY``), then reported to ground as a TIMEOUT acceptance
failure from the lander (``PAYLOAD_TC_TIMEOUT``).

Per-payload configuration (``config.manager`` in the payload's file):
``response_timeout_s``, ``retries``, ``heartbeat_periods``, ``max_strikes``,
``on_exhausted`` (SAFE or OFF) and ``cycle_off_s``; :class:`Policy` has the
defaults.  See docs/payloads.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..dictionary import ArgumentError, Command, System
from ..dictionary.model import Phase
from ..protocol.pus import PusTc, PusTm
from .pusgen import ACK_ACCEPTANCE, ACK_COMPLETION, ACK_START
from .state import load_record, save_record
from .timers import Timer

if TYPE_CHECKING:
    from .flight import FlightSoftware, Pending
    from .power import PowerController

STATES = ("OFF", "BOOTING", "IDLE", "OPERATING", "SAFE", "FAULT")
POWERED = frozenset({"BOOTING", "IDLE", "OPERATING"})
ANSWERING = frozenset({"IDLE", "OPERATING"})
LATCHED = frozenset({"SAFE", "FAULT"})

#: (state, event) -> (next state, action).  Events: POWER_ON, POWER_OFF, RESET (ground); SWITCHED_ON,
#: SWITCH_FAILED (the PDU's answer); CHANNEL_ON, CHANNEL_OFF (PDU housekeeping disagrees with the state);
#: HEARD_IDLE, HEARD_MODE (a packet; the mode is the boot mode or another); SILENT, SILENT_SAFE,
#: SILENT_OFF (a heartbeat failure; the last two when the strikes are used up); TRIP (overcurrent).
LIFECYCLE: Mapping[tuple[str, str], tuple[str, str | None]] = {
    ("OFF", "POWER_ON"): ("BOOTING", "switch_on"),
    ("OFF", "CHANNEL_ON"): ("BOOTING", "adopt"),             # switched on by ground at the PDU, or found on
    ("OFF", "TRIP"): ("FAULT", "tripped"),                   # its heater channel
    ("BOOTING", "SWITCHED_ON"): ("BOOTING", "expect_boot"),
    ("BOOTING", "SWITCH_FAILED"): ("OFF", "switch_failed"),
    ("BOOTING", "HEARD_IDLE"): ("IDLE", "booted"),
    ("BOOTING", "HEARD_MODE"): ("OPERATING", "booted"),
    ("BOOTING", "SILENT"): ("BOOTING", "power_cycle"),
    ("BOOTING", "SILENT_SAFE"): ("SAFE", "give_up"),
    ("BOOTING", "SILENT_OFF"): ("OFF", "give_up"),
    ("BOOTING", "POWER_OFF"): ("OFF", "switch_off"),
    ("BOOTING", "CHANNEL_OFF"): ("OFF", None),
    ("BOOTING", "TRIP"): ("FAULT", "tripped"),
    ("IDLE", "HEARD_IDLE"): ("IDLE", None),
    ("IDLE", "HEARD_MODE"): ("OPERATING", None),
    ("IDLE", "SILENT"): ("BOOTING", "power_cycle"),
    ("IDLE", "SILENT_SAFE"): ("SAFE", "give_up"),
    ("IDLE", "SILENT_OFF"): ("OFF", "give_up"),
    ("IDLE", "POWER_OFF"): ("OFF", "switch_off"),
    ("IDLE", "CHANNEL_OFF"): ("OFF", None),
    ("IDLE", "TRIP"): ("FAULT", "tripped"),
    ("OPERATING", "HEARD_MODE"): ("OPERATING", None),
    ("OPERATING", "HEARD_IDLE"): ("IDLE", None),
    ("OPERATING", "SILENT"): ("BOOTING", "power_cycle"),
    ("OPERATING", "SILENT_SAFE"): ("SAFE", "give_up"),
    ("OPERATING", "SILENT_OFF"): ("OFF", "give_up"),
    ("OPERATING", "POWER_OFF"): ("OFF", "switch_off"),
    ("OPERATING", "CHANNEL_OFF"): ("OFF", None),
    ("OPERATING", "TRIP"): ("FAULT", "tripped"),
    ("SAFE", "RESET"): ("OFF", "reset"),
    ("SAFE", "TRIP"): ("FAULT", "tripped"),
    ("SAFE", "CHANNEL_ON"): ("SAFE", "switch_off"),          # latched: nothing may keep it powered
    ("FAULT", "RESET"): ("OFF", "reset"),
    ("FAULT", "TRIP"): ("FAULT", "tripped"),
    ("FAULT", "CHANNEL_ON"): ("FAULT", "switch_off"),
}

#: state -> ground request -> failure code (None: accepted).  FORWARD is any TC routed to the payload.
REQUESTS: Mapping[str, Mapping[str, str | None]] = {
    "OFF": {"POWER_ON": None, "POWER_OFF": None, "RESET": "WRONG_MODE", "FORWARD": "PAYLOAD_UNPOWERED"},
    "BOOTING": {"POWER_ON": None, "POWER_OFF": None, "RESET": "WRONG_MODE", "FORWARD": "PAYLOAD_UNPOWERED"},
    "IDLE": {"POWER_ON": None, "POWER_OFF": None, "RESET": "WRONG_MODE", "FORWARD": None},
    "OPERATING": {"POWER_ON": None, "POWER_OFF": None, "RESET": "WRONG_MODE", "FORWARD": None},
    "SAFE": {"POWER_ON": "FAULT_ACTIVE", "POWER_OFF": None, "RESET": None, "FORWARD": "FAULT_ACTIVE"},
    "FAULT": {"POWER_ON": "FAULT_ACTIVE", "POWER_OFF": None, "RESET": None, "FORWARD": "FAULT_ACTIVE"},
}

RECORD = "payloads"
PERSIST_PERIOD_S = 60.0
TICK_S = 1.0
INFER_TOLERANCE_W = 0.5      # current-sense noise and inrush tails, in watts, when matching a mode's power
SEQ_MOD = 0x4000


def boot_mode_of(system: System) -> str:
    """The mode a unit reports after boot: ``config.boot_mode``, else its first mode that is not OFF."""
    m = system.config.get("boot_mode")
    if m is not None:
        if m not in system.modes:
            raise ValueError(f"{system.name}: config.boot_mode {m!r} is not one of its modes")
        return str(m)
    for m in system.modes:
        if m != "OFF":
            return m
    return system.modes[0] if system.modes else ""


@dataclass(frozen=True)
class Policy:
    """Per-payload fault-protection and forwarding policy (``config.manager``)."""

    response_timeout_s: float = 2.0
    retries: int = 1
    heartbeat_periods: int = 5
    max_strikes: int = 3
    on_exhausted: str = "SAFE"
    cycle_off_s: float = 2.0

    @classmethod
    def from_config(cls, system: System) -> "Policy":
        d = system.config.get("manager") or {}
        if not isinstance(d, dict):
            raise ValueError(f"{system.name}: config.manager must be a mapping")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{system.name}: config.manager: unknown key(s) {', '.join(sorted(unknown))}")
        p = cls(**{k: type(getattr(cls(), k))(v) for k, v in d.items()})
        if p.on_exhausted not in ("SAFE", "OFF"):
            raise ValueError(f"{system.name}: config.manager.on_exhausted must be SAFE or OFF")
        if p.response_timeout_s <= 0 or p.retries < 0 or p.heartbeat_periods < 1 or p.max_strikes < 1 \
                or p.cycle_off_s < 0:
            raise ValueError(f"{system.name}: config.manager has a value out of range")
        return p


@dataclass
class Reservation:
    """Power held for a mode a forwarded command is taking the payload to.

    It is dropped when the payload reports the command failed or timed out, or at the first report of the
    payload's mode at or after ``done_after``: the time of its successful completion report (or, for a
    command that asks for no completion report, its response time-out), since the line delivers in order.
    """

    mode: str
    watts: float
    done_after: float = float("inf")


@dataclass
class Forwarded:
    tc: PusTc
    raw: bytes
    attempts: int = 1
    timer: Timer | None = None


@dataclass
class Payload:
    """Everything the manager keeps about one payload."""

    system: System
    label: str                  # its PAYLOAD enumeration label
    channel: str
    heater: str | None
    boot_mode: str
    policy: Policy
    hk_period: float
    mode_param: str | None
    state: str = "OFF"
    mode: str = "OFF"
    entered_at: float = 0.0
    last_heard: float | None = None
    heard_after: float = float("-inf")
    boot_deadline: float | None = None
    op: str | None = None           # switch under way: ON, OFF, CYCLE, RESET
    adopted: bool = False           # found on: its mode is unknown until heard
    op_token: object = None
    cycling: bool = False
    heater_op: bool = False
    hold_until: float = float("-inf")         # ground switched the main channel at the PDU: trust that
    heater_hold_until: float = float("-inf")  # ... or the heater channel, until the PDU has reported it
    hk_disabled: bool = False
    quiet_since: float = float("-inf")   # silence is counted from here at the earliest (a phase's new rates)
    power_cmd: "Pending | None" = None
    expect_seq: int | None = None
    reservations: dict[int, Reservation] = field(default_factory=dict)
    forwarded: dict[int, Forwarded] = field(default_factory=dict)
    # durable counters
    hb_total: int = 0
    strikes: int = 0
    energy_wh: float = 0.0
    held_w: float = 0.0          # power since the last accrual (not durable)
    packets: int = 0
    bytes: int = 0
    sci_bytes: int = 0
    drops: int = 0
    retries: int = 0
    timeouts: int = 0
    # bookkeeping
    ignored_events: int = 0
    drops_reported: int = 0
    rate_mark: tuple[float, int] | None = None
    rate_bps: float = 0.0

    @property
    def name(self) -> str:
        return self.system.name


class PayloadManager:
    """See the module docstring.  Constructed by ``build_flight_software`` as ``fsw.payloads``."""

    def __init__(self, fsw: "FlightSoftware", power: "PowerController | None" = None) -> None:
        self.fsw = fsw
        self.d = fsw.dictionary
        self.power: PowerController | None = power if power is not None else getattr(fsw, "power", None)
        self.payloads: dict[str, Payload] = {}
        self._by_apid: dict[int, Payload] = {}
        self._by_channel: dict[str, tuple[Payload, bool]] = {}
        self._gate_cache: dict[int, tuple[Command, str | None]] = {}
        self._last_tick: float | None = None
        self._origin = 0.0               # the tick grid: origin + k * TICK_S
        self._tick_timer: Any = None
        self._hk_periods: dict[str, float] = {}
        self._power_quiet_since = -math.inf
        self._last_persist = 0.0
        self._stale_reported = False
        self._started = False
        self.active = False
        lander = self.d.lander
        names = {c.name for c in lander.commands}
        if "PAYLOAD_POWER_ON" not in names or self.power is None or self.power.pdu is None:
            return  # a mission without payload management (no extension file or no PDU)
        enum = lander.enums.get("PAYLOAD")
        if enum is None:
            raise ValueError("lander_payloads: the PAYLOAD enumeration is missing")
        payload_systems = {s.name: s for s in self.d.systems_of_kind("payload")}
        for label in enum.values:
            if label not in payload_systems:
                raise ValueError(f"PAYLOAD label {label} is not a unit of kind payload")
        for name, s in payload_systems.items():
            if name not in enum.values:
                raise ValueError(f"payload {name} has no label in the PAYLOAD enumeration (lander_payloads.yaml)")
            main = self.power.channel_of(name, "main")
            if main is None:
                raise ValueError(f"payload {name} has no main channel on the PDU ({self.power.pdu.name} config)")
            heater = self.power.channel_of(name, "heater")
            hk = [p for p in s.telemetry if p.category == "hk"]
            mode_param = f"{name}_MODE"
            mode_hk = next((p for p in hk if any(prm.name == mode_param for prm in p.params)), None)
            period = (mode_hk.period_s if mode_hk is not None and mode_hk.period_s else s.hk_period_s)
            p = Payload(s, name, main, heater, boot_mode_of(s), Policy.from_config(s), period,
                        mode_param if mode_hk is not None else None)
            self.payloads[name] = p
            self._by_apid[s.apid] = p
            self._by_channel[main] = (p, False)
            if heater is not None:
                self._by_channel[heater] = (p, True)
        self._mode_events = {(s.apid, e.id): e for s in payload_systems.values() for e in s.events
                             if e.name == f"{s.name}_MODE_CHANGED" and e.args}
        self.active = True
        fsw.register_command("PAYLOAD_POWER_ON", self._cmd_power_on)
        fsw.register_command("PAYLOAD_POWER_OFF", self._cmd_power_off)
        fsw.register_command("HEATER_ON", self._cmd_heater_on)
        fsw.register_command("HEATER_OFF", self._cmd_heater_off)
        fsw.register_command("PAYLOAD_RESET", self._cmd_reset)
        fsw.hk.register("PAYLOAD_HK", self._payload_hk)
        fsw.hk.register("POWER_HK", self._power_hk)
        fsw.add_route_gate(self._gate)
        fsw.add_route_listener(self._routed)
        fsw.add_tm_listener(self._on_tm)
        fsw.phases.add_veto(self._phase_veto)
        fsw.phases.on_change(self._phase_changed)
        fsw.on_start(self._start)
        self.power.on_trip(self._on_trip)
        self.power.on_update(self._on_pdu_update)

    # ======================================================================================
    # the state machine
    # ======================================================================================
    def fire(self, p: Payload, event: str, now: float, **ctx: Any) -> bool:
        """Apply one event to one payload through :data:`LIFECYCLE`; False if the table has no row for it."""
        row = LIFECYCLE.get((p.state, event))
        if row is None:
            p.ignored_events += 1
            return False
        new, action = row
        old = p.state
        self._accrue(now)
        p.state = new
        if new != old:
            self._entered(p, old, now)
        if action is not None:
            getattr(self, "_act_" + action)(p, now, **ctx)
        self._settle_power_cmd(p, now, ctx.get("code"))
        self._accrue(now)
        self._rearm(now)
        return True

    def _entered(self, p: Payload, old: str, now: float) -> None:
        p.entered_at = now
        new = p.state
        if (new in POWERED) != (old in POWERED):
            hook = getattr(self.fsw, "payload_power_changed", None)
            if hook is not None:
                hook(now)   # time at the tone runs only while a payload is powered
        if new == "BOOTING":
            p.mode = p.boot_mode
            p.expect_seq = None
            p.hk_disabled = False
            p.hk_period = self._default_hk_period(p)
        elif new not in ANSWERING:
            p.mode = "OFF"
            p.boot_deadline = None
            p.adopted = False
        if old in ANSWERING and new not in ANSWERING:
            self._drop_forwarded(p, now)
        if new not in POWERED:
            p.reservations.clear()
            p.cycling = False
        if (new in LATCHED) != (old in LATCHED) or new in LATCHED:
            self._persist(now)
        self.fsw.emit("PAYLOAD_STATE_CHANGED", now, PL_UNIT=p.label, PL_FROM=old, PL_TO=new)

    def _settle_power_cmd(self, p: Payload, now: float, code: str | None) -> None:
        """A pending PAYLOAD_POWER_ON completes when the payload is heard, and fails when it cannot be."""
        cmd = p.power_cmd
        if cmd is None:
            return
        if p.state in ANSWERING:
            p.power_cmd = None
            cmd.complete(now)
        elif p.state != "BOOTING":
            p.power_cmd = None
            cmd.fail(code or ("FAULT_ACTIVE" if p.state in LATCHED else "EXECUTION_FAILED"), now)

    # -- actions -------------------------------------------------------------------------------
    def _begin(self, p: Payload, op: str) -> object:
        token = object()
        p.op, p.op_token = op, token
        return token

    def _end(self, p: Payload, token: object) -> None:
        if p.op_token is token:
            p.op, p.op_token = None, None

    def _act_switch_on(self, p: Payload, now: float, **_: Any) -> None:
        p.adopted = False
        token = self._begin(p, "ON")
        self._switch(p, p.channel, True, now, lambda pp, ok, code, t: self._switched_on(pp, token, ok, code, t))

    def _switched_on(self, p: Payload, token: object, ok: bool, code: str | None, now: float) -> None:
        self._end(p, token)
        if p.state != "BOOTING" or p.cycling:
            return  # overtaken (switched off, tripped ...)
        if ok:
            self.fire(p, "SWITCHED_ON", now)
        else:
            self._switch_failed_event(p, False, True, code, now)
            self.fire(p, "SWITCH_FAILED", now, code=code or "EXECUTION_FAILED")

    def _act_expect_boot(self, p: Payload, now: float, **_: Any) -> None:
        s = p.system
        p.heard_after = now + 0.5 * s.boot_time_s
        p.boot_deadline = now + s.boot_time_s + p.policy.heartbeat_periods * p.hk_period
        if p.power_cmd is not None:
            p.power_cmd.progress(1, now)

    def _act_adopt(self, p: Payload, now: float, **_: Any) -> None:
        """Found on (after a restart, or switched on at the PDU by ground): it may be running already."""
        self._act_expect_boot(p, now)
        p.heard_after = now
        p.adopted = True

    def _act_booted(self, p: Payload, now: float, **_: Any) -> None:
        p.boot_deadline = None
        p.adopted = False

    def _act_switch_failed(self, p: Payload, now: float, **_: Any) -> None:
        """Nothing more: the failure was reported and the pending command fails with the PDU's code."""

    def _act_power_cycle(self, p: Payload, now: float, **_: Any) -> None:
        p.cycling = True
        p.adopted = False   # switched on by the manager from now on: it boots in its boot mode
        p.boot_deadline = None
        token = self._begin(p, "CYCLE")

        def off_done(pp: Payload, ok: bool, code: str | None, t: float) -> None:
            if not pp.cycling or pp.state != "BOOTING" or pp.op_token is not token:
                self._end(pp, token)
                return
            if not ok:
                self._end(pp, token)
                pp.cycling = False
                self._switch_failed_event(pp, False, False, code, t)
                self.fire(pp, "SWITCH_FAILED", t, code=code or "EXECUTION_FAILED")
                return
            self.fsw.timers.call_at(t + pp.policy.cycle_off_s, lambda t2: self._cycle_on(pp, token, t2))
        self._switch(p, p.channel, False, now, off_done)

    def _cycle_on(self, p: Payload, token: object, now: float) -> None:
        self._now = now
        if not p.cycling or p.state != "BOOTING" or p.op_token is not token:
            self._end(p, token)
            return

        def on_done(pp: Payload, ok: bool, code: str | None, t: float) -> None:
            self._end(pp, token)
            was_cycling = pp.cycling
            pp.cycling = False
            if not was_cycling or pp.state != "BOOTING":
                return
            if ok:
                self.fire(pp, "SWITCHED_ON", t)
            else:
                self._switch_failed_event(pp, False, True, code, t)
                self.fire(pp, "SWITCH_FAILED", t, code=code or "EXECUTION_FAILED")
        self._switch(p, p.channel, True, now, on_done)

    def _act_give_up(self, p: Payload, now: float, **_: Any) -> None:
        self.fsw.emit("PAYLOAD_SAFED", now, PL_UNIT=p.label, PL_TO=p.state, PL_STRIKES=min(p.strikes, 0xFF))
        self._act_switch_off(p, now)

    def _act_switch_off(self, p: Payload, now: float, on_done: Any = None, **_: Any) -> None:
        token = self._begin(p, "OFF")

        def done(pp: Payload, ok: bool, code: str | None, t: float) -> None:
            self._end(pp, token)
            if not ok:
                self._switch_failed_event(pp, False, False, code, t)
            if on_done is not None:
                on_done(ok, code, t)
        self._switch(p, p.channel, False, now, done)

    def _act_tripped(self, p: Payload, now: float, heater: bool = False, **_: Any) -> None:
        self.fsw.emit("PAYLOAD_OVERCURRENT", now, PL_UNIT=p.label, PL_HEATER_TRIP=bool(heater))
        p.cycling = False
        assert self.power is not None
        if self.power.state(p.channel).on or p.op == "ON":  # a heater tripped: FAULT means off, main line too
            self._act_switch_off(p, now)

    def _act_reset(self, p: Payload, now: float, on_done: Any = None, **_: Any) -> None:
        p.strikes = 0
        self._persist(now)
        assert self.power is not None
        tripped = [ch for ch in (p.channel, p.heater) if ch is not None and self.power.state(ch).tripped]
        if not tripped:
            if on_done is not None:
                on_done(True, None, now)
            return
        token = self._begin(p, "RESET")
        results: list[tuple[bool, str | None]] = []

        def one(pp: Payload, ok: bool, code: str | None) -> None:
            results.append((ok, code))
            if len(results) == len(tripped):
                self._end(pp, token)
                bad = next((c for k, c in results if not k), None)
                if on_done is not None:
                    on_done(all(k for k, _ in results), bad, self._time())
        for ch in tripped:
            self.power.reset_trip(ch, now, lambda ok, code, pp=p: one(pp, ok, code))

    # -- switching ---------------------------------------------------------------------------
    _now = 0.0

    def _time(self) -> float:
        """The time of the power controller's callback being run (it runs from the timer queue)."""
        assert self.power is not None
        self._now = max(self._now, self.power.now)
        return self._now

    def _switch(self, p: Payload, channel: str, on: bool, now: float, done: Any) -> None:
        assert self.power is not None

        def cb(ok: bool, code: str | None) -> None:
            done(p, ok, code, self._time())
        self._now = now
        self.power.switch(channel, on, now, cb)

    def _switch_failed_event(self, p: Payload, heater: bool, on: bool, code: str | None, now: float) -> None:
        c = code if code in self.d.failure_codes.values else "EXECUTION_FAILED"
        self.fsw.emit("POWER_SWITCH_FAILED", now, PL_UNIT=p.label, PL_SW_HEATER=heater, PL_SW_ON=on, PL_SW_CODE=c)

    # ======================================================================================
    # inputs
    # ======================================================================================
    def _start(self, now: float) -> None:
        self._started = True
        self._now = now
        rec = load_record(self.fsw.store, RECORD) or {}
        for name, p in self.payloads.items():
            r = rec.get(name)
            if not isinstance(r, dict):
                continue
            for k in ("hb_total", "strikes", "packets", "bytes", "sci_bytes", "drops", "retries", "timeouts"):
                v = r.get(k)
                if isinstance(v, int) and v >= 0:
                    setattr(p, k, v)
            e = r.get("energy_wh")
            if isinstance(e, (int, float)) and e >= 0:
                p.energy_wh = float(e)
            if r.get("latched") in LATCHED:
                p.state = r["latched"]
                p.entered_at = now
        self._last_tick = now
        self._last_persist = now
        self._origin = now
        self._accrue(now)
        self._arm(now)

    # The manager's clock work (silence, boot time-outs, stale power data, persistence) runs on a grid of
    # TICK_S steps from the start, but only at the grid points where something can be due: the earliest
    # heartbeat or boot deadline, the moment the PDU data goes stale, the next persistence.  A payload
    # heard meanwhile only moves its deadline on.  Energy is integrated piecewise: each payload's power is
    # held from one change (a PDU reading, a state or mode change) to the next (:meth:`_accrue`).
    def _tick(self, now: float) -> None:
        self._now = now
        self._tick_timer = None
        self._accrue(now)
        assert self.power is not None
        fresh = self.power.last_hk is not None and now - self.power.last_hk <= self.power.stale_after_s
        for p in self.payloads.values():
            if p.state in ANSWERING and not p.hk_disabled:
                silent = now - self._heard(p)
                if silent > self._silence_limit(p):
                    self._heartbeat_failure(p, now, silent)
            elif p.state == "BOOTING" and p.boot_deadline is not None and now > p.boot_deadline:
                since = p.last_heard if p.last_heard is not None and p.last_heard >= p.entered_at else p.entered_at
                self._heartbeat_failure(p, now, now - since, code="TIMEOUT")
        # a phase that speeds the PDU's reports up shortens the staleness limit at once: its first report at
        # the new rate is not late yet, so the age for the event counts from the phase change at the earliest
        late = self.power.last_hk is not None and \
            now - max(self.power.last_hk, self._power_quiet_since) > self.power.stale_after_s
        if late and not self._stale_reported:
            self._stale_reported = True
            self.fsw.emit("POWER_DATA_STALE", now, POWER_AGE_S=min(int(now - self.power.last_hk), 0xFFFF))
        elif fresh:
            self._stale_reported = False
        if now - self._last_persist >= PERSIST_PERIOD_S:
            self._persist(now)
        self._arm(now)

    @staticmethod
    def _heard(p: Payload) -> float:
        return max(p.last_heard if p.last_heard is not None else p.entered_at, p.quiet_since)

    def _silence_limit(self, p: Payload) -> float:
        # the phase may have slowed the payload's reports (fsw.unit_hk_factor): allow for it
        period = max(p.hk_period, self._default_hk_period(p) * self.fsw.unit_hk_factor(p.system))
        return p.policy.heartbeat_periods * period

    def _arm(self, now: float) -> None:
        """File the next tick at the first grid point where anything can be due."""
        assert self.power is not None
        due = self._last_persist + PERSIST_PERIOD_S          # due at the first grid point at or after
        after = math.inf                                     # due at the first grid point strictly after
        for p in self.payloads.values():
            if p.state in ANSWERING and not p.hk_disabled:
                after = min(after, self._heard(p) + self._silence_limit(p))
            elif p.state == "BOOTING" and p.boot_deadline is not None:
                after = min(after, p.boot_deadline)
        if self.power.last_hk is not None:
            stale_at = max(self.power.last_hk, self._power_quiet_since) + self.power.stale_after_s
            if stale_at >= now or not self._stale_reported:
                after = min(after, max(stale_at, now))
        k = max(math.ceil((due - self._origin) / TICK_S - 1e-9), math.floor((now - self._origin) / TICK_S + 1e-9) + 1)
        if after < math.inf:
            k = min(k, math.floor((after - self._origin) / TICK_S + 1e-9) + 1)
        k = max(k, math.floor((now - self._origin) / TICK_S + 1e-9) + 1)
        when = self._origin + k * TICK_S
        t = self._tick_timer
        if t is not None:
            if t.when == when and not t.cancelled:
                return
            t.cancel()
        self._tick_timer = self.fsw.timers.call_at(when, self._tick)

    def _accrue(self, now: float) -> None:
        """Add each payload's held power over the time since the last change, then hold its present power."""
        last = self._last_tick
        dt = now - last if last is not None else 0.0
        self._last_tick = now
        assert self.power is not None
        fresh = self.power.last_hk is not None and now - self.power.last_hk <= self.power.stale_after_s
        for p in self.payloads.values():
            if dt > 0:
                p.energy_wh += p.held_w * dt / 3600.0
            p.held_w = self.payload_power_w(p, now, fresh)

    def _rearm(self, now: float) -> None:
        """Something moved a deadline earlier (a state change, fresh PDU data): file the tick again."""
        if self._started:
            self._arm(now)

    def _phase_changed(self, old: Phase, new: Phase, now: float) -> None:
        """The new phase's payload housekeeping rate is commanded now; a payload still on the old, slower
        rate must not count as silent before its first report at the new rate: count silence from here."""
        for p in self.payloads.values():
            p.quiet_since = now
        self._power_quiet_since = now
        self._rearm(now)

    def _heartbeat_failure(self, p: Payload, now: float, silent_s: float, code: str | None = None) -> None:
        p.strikes += 1
        p.hb_total += 1
        self._persist(now)
        self.fsw.emit("PAYLOAD_SILENT", now, PL_UNIT=p.label, PL_STRIKES=min(p.strikes, 0xFF),
                      PL_SILENT_S=min(int(silent_s), 0xFFFF))
        if p.power_cmd is not None:
            cmd, p.power_cmd = p.power_cmd, None
            cmd.fail(code or "TIMEOUT", now)
        if p.strikes < p.policy.max_strikes:
            self.fire(p, "SILENT", now)
        else:
            self.fire(p, "SILENT_SAFE" if p.policy.on_exhausted == "SAFE" else "SILENT_OFF", now)

    def _on_trip(self, channel: str, now: float) -> None:
        self._now = now
        hit = self._by_channel.get(channel)
        if hit is None:
            return  # an actuator channel: the deploy manager's business
        p, heater = hit
        self.fire(p, "TRIP", now, heater=heater, code="FAULT_ACTIVE")

    def _on_pdu_update(self, now: float) -> None:
        self._now = now
        self._accrue(now)   # the old reading held until now; the new one from now on
        assert self.power is not None
        for p in self.payloads.values():
            if p.op is not None or p.cycling or self.power.pending(p.channel) or now < p.hold_until:
                continue
            on = self.power.state(p.channel).on
            if on and p.state not in POWERED:
                self.fire(p, "CHANNEL_ON", now)
            elif not on and p.state in POWERED:
                self.fire(p, "CHANNEL_OFF", now, code="EXECUTION_FAILED")

    def _on_tm(self, unit: System, tm: PusTm, now: float) -> None:
        p = self._by_apid.get(unit.apid)
        if p is None:
            return
        self._now = now
        size = len(tm.source_data) + 21
        p.packets += 1
        p.bytes += size
        pkt = self.d.packet_by_key(tm.apid, tm.service, tm.subservice, tm.source_data)
        if pkt is not None and pkt.category == "science":
            p.sci_bytes += size
        if p.expect_seq is not None:
            gap = (tm.seq_count - p.expect_seq) % SEQ_MOD
            if 0 < gap < SEQ_MOD // 2:
                p.drops += gap
        p.expect_seq = (tm.seq_count + 1) % SEQ_MOD
        if p.state not in POWERED or p.cycling or now < p.heard_after:
            return  # bytes from before the payload was last switched off
        p.last_heard = now
        if tm.service == 1:
            self._response(p, tm, now)
        mode = self._mode_in(p, tm, pkt)
        if mode is not None and mode in p.system.modes:
            if mode != p.mode:
                self._accrue(now)
                p.mode = mode
                self._accrue(now)   # the declared power of the new mode counts from here
            for rid in [r for r, res in p.reservations.items() if res.done_after <= now]:
                del p.reservations[rid]
        event = "HEARD_IDLE" if p.mode == p.boot_mode else "HEARD_MODE"
        if p.state == "BOOTING" or (p.state == "IDLE") != (event == "HEARD_IDLE"):
            self.fire(p, event, now)

    def _mode_in(self, p: Payload, tm: PusTm, pkt: Any) -> str | None:
        if tm.service == 5 and len(tm.source_data) >= 2:
            evt = self._mode_events.get((tm.apid, int.from_bytes(tm.source_data[:2], "big")))
            if evt is None:
                return None
            try:
                vals = self.d.event_codec(evt).decode(tm.source_data, 2)
            except ValueError:
                return None
            v = vals.get(evt.args[0].name)
            return v if isinstance(v, str) else None
        if pkt is None or p.mode_param is None or pkt.category != "hk":
            return None
        if not any(prm.name == p.mode_param for prm in pkt.params):
            return None
        try:
            v = self.d.codec(pkt).decode(tm.source_data).get(p.mode_param)
        except ValueError:
            return None
        return v if isinstance(v, str) else None

    # -- forwarded telecommands -------------------------------------------------------------------
    def _response(self, p: Payload, tm: PusTm, now: float) -> None:
        data = tm.source_data
        if len(data) < 4:
            return
        rid = (int.from_bytes(data[0:2], "big") << 16) | int.from_bytes(data[2:4], "big")
        fw = p.forwarded.pop(rid, None)
        if fw is not None and fw.timer is not None:
            fw.timer.cancel()
        res = p.reservations.get(rid)
        if res is None:
            return
        sub = tm.subservice
        if sub in (2, 4, 6, 8):
            del p.reservations[rid]
        elif sub == 7:
            res.done_after = min(res.done_after, now)

    def _routed(self, unit: System, tc: PusTc, now: float) -> None:
        p = self._by_apid.get(unit.apid)
        if p is None:
            if self.power is not None and unit is self.power.pdu:
                self._routed_pdu(tc, now)
            return
        self._now = now
        cached = self._gate_cache.pop(tc.request_id, None)
        if cached is not None:
            cmd, target = cached
            if target is not None:
                done_after = float("inf") if tc.ack_flags & ACK_COMPLETION else now + p.policy.response_timeout_s
                p.reservations[tc.request_id] = Reservation(target, self._mode_power(p, target), done_after)
            self._note_hk_command(p, cmd, tc)
        if tc.ack_flags & (ACK_ACCEPTANCE | ACK_START | ACK_COMPLETION):
            timeout = p.policy.response_timeout_s
            if not tc.ack_flags & (ACK_ACCEPTANCE | ACK_START):
                timeout += cached[0].timeout_s if cached is not None else 0.0
            old = p.forwarded.pop(tc.request_id, None)
            if old is not None and old.timer is not None:
                old.timer.cancel()
            fw = Forwarded(tc, tc.pack())
            p.forwarded[tc.request_id] = fw
            fw.timer = self.fsw.timers.call_at(now + timeout, lambda t, r=tc.request_id: self._fw_timeout(p, r, t))

    def _note_hk_command(self, p: Payload, cmd: Command, tc: PusTc) -> None:
        if cmd.service != 3:
            return
        try:
            args = self.d.args_codec(cmd).decode(tc.app_data)
        except ArgumentError:
            return
        hk_sids = {pk.sid for pk in p.system.telemetry if pk.category == "hk" and p.mode_param in
                   {prm.name for prm in pk.params}}
        if args.get("sid") not in hk_sids:
            return
        if cmd.subservice == 31:
            p.hk_period = args["period_ms"] / 1000.0
        elif cmd.subservice == 6:
            p.hk_disabled = True
        elif cmd.subservice == 5:
            p.hk_disabled = False
        self._rearm(self._now)

    def _fw_timeout(self, p: Payload, rid: int, now: float) -> None:
        self._now = now
        fw = p.forwarded.get(rid)
        if fw is None:
            return
        tc = fw.tc
        if fw.attempts <= p.policy.retries and p.state in ANSWERING and self.fsw.port_stats[p.system.port].up:
            fw.attempts += 1
            p.retries += 1
            self.fsw.emit("PAYLOAD_TC_RETRY", now, PL_UNIT=p.label, PL_TC_SERVICE=tc.service,
                          PL_TC_SUBSERVICE=tc.subservice, PL_ATTEMPT=min(fw.attempts, 0xFF))
            self.fsw.send_to_unit(p.system, fw.raw)
            fw.timer = self.fsw.timers.call_at(now + p.policy.response_timeout_s,
                                               lambda t, r=rid: self._fw_timeout(p, r, t))
            return
        del p.forwarded[rid]
        p.timeouts += 1
        p.reservations.pop(rid, None)
        self.fsw.emit("PAYLOAD_TC_TIMEOUT", now, PL_UNIT=p.label, PL_TC_SERVICE=tc.service,
                      PL_TC_SUBSERVICE=tc.subservice)
        self.fsw.send_tm(self.fsw.verifier.reject(tc, "TIMEOUT", now))

    def _drop_forwarded(self, p: Payload, now: float) -> None:
        """The payload stopped answering (off, power cycle, fault): its watched TCs will never be answered."""
        for rid, fw in list(p.forwarded.items()):
            if fw.timer is not None:
                fw.timer.cancel()
            self.fsw.send_tm(self.fsw.verifier.reject(fw.tc, "PAYLOAD_UNPOWERED", now))
        p.forwarded.clear()

    # ======================================================================================
    # gates and vetoes
    # ======================================================================================
    def _gate(self, unit: System, tc: PusTc, now: float) -> str | None:
        p = self._by_apid.get(unit.apid)
        if p is None:
            if self.power is not None and unit is self.power.pdu:
                return self._gate_pdu(tc, now)
            return None
        code = REQUESTS[p.state]["FORWARD"]
        if code is not None:
            return code
        cmd = self.d.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None:
            return None  # the payload itself reports an unknown command
        try:
            args = self.d.args_codec(cmd).decode(tc.app_data)
        except ArgumentError:
            return None  # ... and a malformed one
        if cmd.modes and p.mode not in cmd.modes:
            return "WRONG_MODE"
        target = self.target_mode(p, cmd, args)
        if target is not None:
            if not self.fsw.phases.current.allows_mode(p.name, target):
                return "PHASE_FORBIDS"
            extra = self._mode_power(p, target) - self.payload_committed_w(p)
            if extra > 0 and self.committed_w() + extra > self.allocation_w() + 1e-9:
                return "POWER_BUDGET"
        self._gate_cache[tc.request_id] = (cmd, target)
        if len(self._gate_cache) > 64:
            self._gate_cache.pop(next(iter(self._gate_cache)))
        return None

    def target_mode(self, p: Payload, cmd: Command, args: Mapping[str, Any]) -> str | None:
        """The mode a command takes the payload to, from its dictionary ``effects`` (None: no mode change)."""
        if p.mode_param is None or p.mode_param not in cmd.effects:
            return None
        src = cmd.effects[p.mode_param]
        value = args[src] if isinstance(src, str) and src in args else src
        return str(value) if value in p.system.modes else None

    def _gate_pdu(self, tc: PusTc, now: float) -> str | None:
        """Ground's own PDU_SWITCH ON obeys the same phase and budget rules; actuators are the deploy manager's."""
        assert self.power is not None and self.power.pdu is not None
        cmd = self.d.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None or cmd.name != f"{self.power.pdu.name}_SWITCH":
            return None
        try:
            args = self.d.args_codec(cmd).decode(tc.app_data)
        except ArgumentError:
            return None
        if args.get("state") != "ON":
            return None
        info = self.power.channels.get(str(args.get("channel")))
        if info is None:
            return None
        if info.kind == "actuator":
            return "NOT_ARMED"  # an actuator is powered only by the deploy manager's ARM sequence
        hit = self._by_channel.get(info.name)
        if hit is None:
            return None
        p, heater = hit
        return self._heater_on_check(p) if heater else self._power_on_check(p)

    def _routed_pdu(self, tc: PusTc, now: float) -> None:
        """Ground switched a payload's main channel on at the PDU: it is booting (and its power committed)."""
        assert self.power is not None
        cmd = self.d.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None or cmd.name != f"{self.power.pdu.name}_SWITCH":
            return
        try:
            args = self.d.args_codec(cmd).decode(tc.app_data)
        except ArgumentError:
            return
        hit = self._by_channel.get(str(args.get("channel")))
        if hit is None or args.get("state") != "ON":
            return
        p, heater = hit
        hold = now + max(2 * self.power.hk_period_s, self.power.stale_after_s) + self.power.timeout_s
        if heater:
            p.heater_hold_until = hold
        elif p.state not in POWERED:
            self.fire(p, "CHANNEL_ON", now)
            p.hold_until = hold

    def _power_on_check(self, p: Payload) -> str | None:
        phase = self.fsw.phases.current
        if p.state in POWERED:
            return None
        code = REQUESTS[p.state]["POWER_ON"]
        if code is not None:
            return code
        if not phase.payload_power or not phase.allows_mode(p.name, p.boot_mode):
            return "PHASE_FORBIDS"
        if self.committed_w() + self._mode_power(p, p.boot_mode) > self.allocation_w() + 1e-9:
            return "POWER_BUDGET"
        return None

    def _heater_on_check(self, p: Payload) -> str | None:
        if p.heater is None:
            return "UNKNOWN_ID"
        if not self.fsw.phases.current.heaters:
            return "PHASE_FORBIDS"
        if not self.heater_on(p) and self.committed_w() + self._heater_w(p) > self.allocation_w() + 1e-9:
            return "POWER_BUDGET"
        return None

    def _phase_veto(self, new: Phase, now: float) -> str | None:
        assert self.power is not None
        for p in self.payloads.values():
            powered = p.state in POWERED or self.power.state(p.channel).on
            if powered:
                if not new.payload_power:
                    return "PHASE_FORBIDS"
                modes = {p.mode if p.state in POWERED else p.boot_mode}
                modes.update(r.mode for r in p.reservations.values())
                if any(not new.allows_mode(p.name, m) for m in modes):
                    return "PHASE_FORBIDS"
            if self.heater_on(p) and not new.heaters:
                return "PHASE_FORBIDS"
        if self.committed_w() > new.power_w + 1e-9:
            return "POWER_BUDGET"
        return None

    # ======================================================================================
    # power accounting
    # ======================================================================================
    def _mode_power(self, p: Payload, mode: str) -> float:
        return float(p.system.power_w.get(mode, 0.0))

    def _heater_w(self, p: Payload) -> float:
        assert self.power is not None
        return self.power.channels[p.heater].heater_w if p.heater is not None else 0.0

    def heater_on(self, p: Payload) -> bool:
        """The heater is on, being switched, just switched on by ground, or in an unknown state (counted on)."""
        assert self.power is not None
        if p.heater is None:
            return False
        st = self.power.state(p.heater)
        return st.on or st.updated_at is None or p.heater_op or self._now < p.heater_hold_until

    def payload_committed_w(self, p: Payload) -> float:
        """Budgeted power of a payload's main channel (see the module docstring).

        Unknowns count at the payload's highest mode power: a channel the PDU has not reported since the
        flight software started.  A payload found on, whose mode has not been heard yet, counts at the
        declared mode power its measured current shows (see :meth:`_inferred_power`).
        """
        assert self.power is not None
        st = self.power.state(p.channel)
        if p.state not in POWERED and st.updated_at is None and p.state not in LATCHED:
            return max(p.system.power_w.values(), default=0.0)
        if p.state == "BOOTING" and p.adopted:
            return self._inferred_power(p)
        if p.state in POWERED:
            w = self._mode_power(p, p.mode if p.state in ANSWERING else p.boot_mode)
        elif st.on or p.op == "ON":
            w = self._mode_power(p, p.boot_mode)
        else:
            return 0.0
        for r in p.reservations.values():
            w = max(w, r.watts)
        return w

    def _inferred_power(self, p: Payload) -> float:
        """The declared mode power the PDU's reading of the payload's main channel shows: the highest one
        not above the reading (plus noise), and at least the boot mode's.  A reading above every mode is a
        transient (an inrush tail caught by the sample): a real overdraw trips the channel instead."""
        assert self.power is not None
        st = self.power.state(p.channel)
        declared = list(p.system.power_w.values())
        if st.updated_at is None or not declared:
            return max(declared, default=0.0)
        measured = st.current_a * self.power.bus_v
        below = [w for w in declared if w <= measured + INFER_TOLERANCE_W]
        return max(below + [self._mode_power(p, p.boot_mode)])

    def committed_w(self) -> float:
        """Budgeted power of every payload, heater and actuator channel."""
        assert self.power is not None
        total = 0.0
        for p in self.payloads.values():
            total += self.payload_committed_w(p)
            if self.heater_on(p):
                total += self._heater_w(p)
        for ch in self.power.channels.values():
            st = self.power.state(ch.name)
            if ch.kind == "actuator" and (st.on or st.updated_at is None or self.power.pending(ch.name, True)):
                total += ch.power_w
        return total

    def allocation_w(self) -> float:
        return float(self.fsw.phases.current.power_w)

    def payload_power_w(self, p: Payload, now: float, fresh: bool | None = None) -> float:
        """Measured main + heater power (declared powers while PDU data is stale)."""
        assert self.power is not None
        if fresh is None:
            fresh = self.power.last_hk is not None and now - self.power.last_hk <= self.power.stale_after_s
        if fresh:
            w = self.power.state(p.channel).current_a * self.power.bus_v
            if p.heater is not None:
                w += self.power.state(p.heater).current_a * self.power.bus_v
            return w
        w = self._mode_power(p, p.mode) if p.state in POWERED else 0.0
        return w + (self._heater_w(p) if self.heater_on(p) else 0.0)

    # ======================================================================================
    # lander commands
    # ======================================================================================
    def _payload(self, args: Mapping[str, Any]) -> Payload:
        from .flight import CommandFailure
        p = self.payloads.get(str(args["unit"]))
        if p is None:
            raise CommandFailure("UNKNOWN_ID", stage="accept")
        return p

    def _need_pdu(self) -> None:
        """Switching needs the PDU's line: refuse (LINK_DOWN) before changing anything."""
        from .flight import CommandFailure
        assert self.power is not None and self.power.pdu is not None
        if not self.fsw.port_stats[self.power.pdu.port].up:
            raise CommandFailure("LINK_DOWN", stage="accept")

    def _cmd_power_on(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending | None":
        from .flight import CommandFailure
        self._now = now
        p = self._payload(args)
        if p.op is not None or p.cycling:
            raise CommandFailure("BUSY", stage="accept")
        code = self._power_on_check(p)
        if code is not None:
            raise CommandFailure(code, int(round(self.committed_w())) if code == "POWER_BUDGET" else 0, stage="accept")
        if p.state in POWERED:
            return None  # already on
        self._need_pdu()
        pending = self.fsw.pending(tc)
        p.power_cmd = pending
        self.fire(p, "POWER_ON", now)
        return pending

    def _cmd_power_off(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending | None":
        self._now = now
        p = self._payload(args)
        assert self.power is not None
        if p.state in POWERED or self.power.state(p.channel).on or self.power.pending(p.channel):
            self._need_pdu()
        if p.power_cmd is not None:
            old, p.power_cmd = p.power_cmd, None
            old.fail("EXECUTION_FAILED", now)  # superseded by the power-off
        p.cycling = False
        pending = self.fsw.pending(tc)

        def done(ok: bool, code: str | None, t: float) -> None:
            if ok:
                pending.complete(t)
            else:
                pending.fail(code if code in self.d.failure_codes.values else "EXECUTION_FAILED", t)
        if p.state in POWERED:
            self.fire(p, "POWER_OFF", now, on_done=done)
            return pending
        if self.power.state(p.channel).on or self.power.pending(p.channel):
            # off as far as the manager knows, but the PDU says on (or a switch is under way): make sure
            self._act_switch_off(p, now, on_done=done)
            return pending
        return None

    def _cmd_heater_on(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending | None":
        from .flight import CommandFailure
        self._now = now
        p = self._payload(args)
        if p.heater_op:
            raise CommandFailure("BUSY", stage="accept")
        code = self._heater_on_check(p)
        if code is not None:
            raise CommandFailure(code, int(round(self.committed_w())) if code == "POWER_BUDGET" else 0, stage="accept")
        assert self.power is not None and p.heater is not None
        if self.power.state(p.heater).on:
            return None
        self._need_pdu()
        return self._heater_switch(p, True, tc, now)

    def _cmd_heater_off(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending | None":
        from .flight import CommandFailure
        self._now = now
        p = self._payload(args)
        if p.heater is None:
            raise CommandFailure("UNKNOWN_ID", stage="accept")
        if p.heater_op:
            raise CommandFailure("BUSY", stage="accept")
        self._need_pdu()
        return self._heater_switch(p, False, tc, now)

    def _heater_switch(self, p: Payload, on: bool, tc: PusTc, now: float) -> "Pending":
        assert p.heater is not None
        pending = self.fsw.pending(tc)
        p.heater_op = True

        def done(pp: Payload, ok: bool, code: str | None, t: float) -> None:
            pp.heater_op = False
            if ok:
                pending.complete(t)
            else:
                self._switch_failed_event(pp, True, on, code, t)
                pending.fail(code if code in self.d.failure_codes.values else "EXECUTION_FAILED", t)
        self._switch(p, p.heater, on, now, done)
        return pending

    def _cmd_reset(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending | None":
        from .flight import CommandFailure
        self._now = now
        p = self._payload(args)
        if p.op is not None:
            raise CommandFailure("BUSY", stage="accept")
        code = REQUESTS[p.state]["RESET"]
        if code is not None:
            raise CommandFailure(code, STATES.index(p.state), stage="accept")
        assert self.power is not None
        if any(ch is not None and self.power.state(ch).tripped for ch in (p.channel, p.heater)):
            self._need_pdu()
        pending = self.fsw.pending(tc)

        def done(ok: bool, code: str | None, t: float) -> None:
            if ok:
                pending.complete(t)
            else:
                pending.fail(code if code in self.d.failure_codes.values else "EXECUTION_FAILED", t)
        self.fire(p, "RESET", now, on_done=lambda ok, c, t: self.fsw.timers.call_at(t, lambda t2: done(ok, c, t2)))
        return pending

    # ======================================================================================
    # housekeeping and durable state
    # ======================================================================================
    def _persist(self, now: float) -> None:
        self._accrue(now)
        self._last_persist = now
        rec = {name: {"hb_total": p.hb_total, "strikes": p.strikes,
                      "latched": p.state if p.state in LATCHED else None,
                      "energy_wh": round(p.energy_wh, 6), "packets": p.packets, "bytes": p.bytes,
                      "sci_bytes": p.sci_bytes, "drops": p.drops, "retries": p.retries, "timeouts": p.timeouts}
               for name, p in self.payloads.items()}
        save_record(self.fsw.store, RECORD, rec)

    def _default_hk_period(self, p: Payload) -> float:
        period = self._hk_periods.get(p.name)
        if period is None:
            period = self._hk_periods[p.name] = self._declared_hk_period(p)
        return period

    def _declared_hk_period(self, p: Payload) -> float:
        s = p.system
        for pk in s.telemetry:
            if pk.category == "hk" and p.mode_param in {prm.name for prm in pk.params}:
                return pk.period_s or s.hk_period_s
        return s.hk_period_s

    def _payload_hk(self, now: float) -> list[dict[str, Any]]:
        out = []
        assert self.power is not None
        self._accrue(now)
        fresh = self.power.last_hk is not None and now - self.power.last_hk <= self.power.stale_after_s
        for p in self.payloads.values():
            if p.rate_mark is not None and now > p.rate_mark[0]:
                p.rate_bps = (p.bytes - p.rate_mark[1]) * 8.0 / (now - p.rate_mark[0])
            p.rate_mark = (now, p.bytes)
            if p.drops > p.drops_reported:
                self.fsw.emit("PAYLOAD_DATA_LOST", now, PL_UNIT=p.label, PL_LOST=min(p.drops - p.drops_reported,
                                                                                     0xFFFFFFFF))
                p.drops_reported = p.drops
            heard = 0xFFFF if p.last_heard is None else min(int(now - p.last_heard), 0xFFFF)
            out.append({
                "PL_UNIT": p.label, "PL_STATE": p.state,
                "PL_MODE": p.system.modes.index(p.mode) if p.mode in p.system.modes else 0,
                "PL_HEATER": self.heater_on(p), "PL_POWER": min(self.payload_power_w(p, now, fresh), 655.35),
                "PL_ENERGY": min(p.energy_wh, 4294967.295), "PL_PACKETS": p.packets & 0xFFFFFFFF,
                "PL_BYTES": p.bytes, "PL_SCI_BYTES": p.sci_bytes, "PL_RATE": min(int(p.rate_bps), 0xFFFFFFFF),
                "PL_DROPS": min(p.drops, 0xFFFFFFFF), "PL_LAST_HEARD": heard, "PL_HB_FAILS": min(p.hb_total, 0xFFFF),
                "PL_HB_STRIKES": min(p.strikes, 0xFF), "PL_RETRIES": p.retries, "PL_TIMEOUTS": p.timeouts,
            })
        return out

    def _power_hk(self, now: float) -> dict[str, Any]:
        assert self.power is not None
        age = self.power.pdu_age(now)
        st = self.power.stats
        return {
            "POWER_BUS_W": min(self.power.bus_power_w(), 655.35), "POWER_COMMITTED_W": min(self.committed_w(), 655.35),
            "POWER_ALLOC_W": min(self.allocation_w(), 655.35),
            "POWER_PDU_STALE": age is None or age > self.power.stale_after_s,
            "POWER_PDU_AGE": 0xFFFF if age is None else min(int(age), 0xFFFF),
            "POWER_TRIPS": min(st.trips, 0xFFFF), "POWER_SWITCH_TC": st.tc_sent,
            "POWER_SWITCH_FAILS": st.failures, "POWER_SWITCH_RETRIES": st.retries,
        }
