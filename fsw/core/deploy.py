"""The deploy manager: releasing the relay satellites (Alpine, Lupine) safely.

Hazard: firing a release actuator at the wrong time, twice, or by a single
command.  The controls (docs/deploy.md has the full tables):

* **Two steps.**  ``DEPLOY_ARM`` powers the unit's PDU actuator channel and
  closes two of its three inhibits (bus-enable relay, arm relay); it completes
  once telemetry shows them.  ``DEPLOY_FIRE`` for the *same* unit, within
  the arm window, closes the third (the fire switch) on actuator A.  The arm
  is cleared by its time-out, ``DEPLOY_DISARM``, a restart, a phase change,
  a lost inhibit or stale telemetry, and by any hazardous command other than
  the armed unit's FIRE.
* **Prerequisites.**  The ARM and FIRE decisions are pure functions
  (:func:`arm_decision`, :func:`fire_decision`) of a record of booleans
  (:class:`ArmPrereqs`, :class:`FirePrereqs`) gathered from the phase table,
  the durable record, the other unit, the controller's status, the PDU and
  the link.  Every unmet condition maps to a PUS-1 failure code; a refused
  command gets that code, the unmet conditions as a bit mask in the
  failure data, and a ``DEPLOY_REJECTED`` event.
* **Never re-fire.**  The unit's durable record (:data:`RECORD_KEY`) is
  written before each actuation (``FIRING``) and after it (``RETRY``,
  ``RELEASED``, ``FAILED``).  At start a record that is missing, corrupt,
  or says a fire was under way reads as ``UNKNOWN``: firing is blocked until
  ground sends ``DEPLOY_OVERRIDE`` (itself hazardous).  A restart never
  fires anything; it commands every unit safe.
* **Redundancy.**  If both separation switches do not read open within the
  unit's expected time, actuator B is fired after a cool-down (every
  prerequisite except the arm is checked again); if that fails too the unit
  is ``FAILED``.

The manager commands the controllers itself (``<UNIT>_BUS_ENABLE``, ``_ARM``,
``_FIRE``, ``_SAFE``) with the lander's APID as source id and acknowledgement
flags 0: a controller reports only failures, addressed to the lander, which
the manager consumes (they are not forwarded to ground).  Ground may not send those relay
commands (route gate: ``ONBOARD_ONLY``); it may send ``<UNIT>_SAFE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..dictionary import Command, System, TmPacket
from ..protocol.pus import PusTc, PusTm
from .state import StateStore, save_record, unseal
from .timers import Timer

if TYPE_CHECKING:
    from .flight import FlightSoftware, Pending

# ---------------------------------------------------------------------------------------------
# The decisions: pure functions of a record of booleans (MC/DC-tested in tests/unit/test_fire_decision.py)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of a decision: accepted, or the code of the first unmet condition and all unmet ones."""

    ok: bool
    code: str | None = None
    unmet: tuple[str, ...] = ()
    #: bit i set when condition i (in priority order) is unmet: the PUS-1 failure data
    mask: int = 0


class _Prereqs:
    __slots__ = ()

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            if type(getattr(self, f.name)) is not bool:
                raise TypeError(f"{type(self).__name__}.{f.name} must be a bool, got {getattr(self, f.name)!r}")


@dataclass(frozen=True, slots=True)
class FirePrereqs(_Prereqs):
    """Everything DEPLOY_FIRE checks; each field True when its condition holds."""

    phase_allows: bool       # the mission phase allows DEPLOY_FIRE
    state_known: bool        # the durable state is known (not UNKNOWN)
    not_done: bool           # not RELEASED or FAILED, and the switches do not both read open
    armed: bool              # a valid ARM for this unit, inside its window
    other_idle: bool         # the other unit is not arming, armed or firing, and its PDU channel is off
    spacing_ok: bool         # the minimum spacing since the other unit's last fire has passed
    link_up: bool            # the controller's serial link is up
    tm_fresh: bool           # controller status and PDU readings are fresh
    pdu_on: bool             # the PDU actuator channel is on (ARM switched it on)
    bus_relay_closed: bool   # inhibit 1 removed, as ARM left it
    arm_relay_closed: bool   # inhibit 2 removed, as ARM left it
    fire_switch_open: bool   # inhibit 3 still in place
    switches_closed: bool    # both separation switches read closed (stowed)
    no_fault: bool           # no active deploy fault (PDU trip, controller FAULT, sneak current ...)


#: (condition, failure code) in priority order: the first unmet one names the rejection
FIRE_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("phase_allows", "PHASE_FORBIDS"),
    ("state_known", "STATE_UNKNOWN"),
    ("not_done", "ALREADY_DONE"),
    ("armed", "NOT_ARMED"),
    ("other_idle", "BUSY"),
    ("spacing_ok", "SPACING"),
    ("link_up", "LINK_DOWN"),
    ("tm_fresh", "TIMEOUT"),
    ("pdu_on", "INHIBIT_ACTIVE"),
    ("bus_relay_closed", "INHIBIT_ACTIVE"),
    ("arm_relay_closed", "INHIBIT_ACTIVE"),
    ("fire_switch_open", "FAULT_ACTIVE"),
    ("switches_closed", "FAULT_ACTIVE"),
    ("no_fault", "FAULT_ACTIVE"),
)


@dataclass(frozen=True, slots=True)
class ArmPrereqs(_Prereqs):
    """Everything DEPLOY_ARM checks; each field True when its condition holds."""

    phase_allows: bool       # the mission phase allows DEPLOY_ARM
    state_known: bool
    not_done: bool
    link_up: bool
    tm_fresh: bool
    unit_idle: bool          # SAFE, and no safing still waiting for telemetry
    other_idle: bool
    spacing_ok: bool
    inhibits_in_place: bool  # all three inhibits in place and the PDU channel off, per telemetry
    switches_closed: bool
    no_fault: bool


ARM_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("phase_allows", "PHASE_FORBIDS"),
    ("state_known", "STATE_UNKNOWN"),
    ("not_done", "ALREADY_DONE"),
    ("link_up", "LINK_DOWN"),
    ("tm_fresh", "TIMEOUT"),
    ("unit_idle", "BUSY"),
    ("other_idle", "BUSY"),
    ("spacing_ok", "SPACING"),
    ("inhibits_in_place", "FAULT_ACTIVE"),
    ("switches_closed", "FAULT_ACTIVE"),
    ("no_fault", "FAULT_ACTIVE"),
)


@dataclass(frozen=True, slots=True)
class OverridePrereqs(_Prereqs):
    phase_allows: bool       # the mission phase allows DEPLOY_OVERRIDE
    not_busy: bool           # the unit is not firing or cooling down between attempts
    overridable: bool        # the unit reads UNKNOWN or FAILED


OVERRIDE_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("phase_allows", "PHASE_FORBIDS"),
    ("not_busy", "BUSY"),
    ("overridable", "WRONG_MODE"),
)


def decide(p: Any, conditions: tuple[tuple[str, str], ...]) -> Decision:
    """Accept when every condition holds; else name the first unmet one (priority order)."""
    unmet = tuple(name for name, _ in conditions if not getattr(p, name))
    if not unmet:
        return Decision(True)
    codes = dict(conditions)
    mask = sum(1 << i for i, (name, _) in enumerate(conditions) if name in unmet)
    return Decision(False, codes[unmet[0]], unmet, mask)


def fire_decision(p: FirePrereqs) -> Decision:
    return decide(p, FIRE_CONDITIONS)


def arm_decision(p: ArmPrereqs) -> Decision:
    return decide(p, ARM_CONDITIONS)


def override_decision(p: OverridePrereqs) -> Decision:
    return decide(p, OVERRIDE_CONDITIONS)


# ---------------------------------------------------------------------------------------------
# Durable record
# ---------------------------------------------------------------------------------------------

RECORD_VERSION = 1
#: states a durable record may hold; FIRING and RETRY mean "a fire sequence was under way"
RECORD_STATES = ("SAFE", "FIRING", "RETRY", "RELEASED", "FAILED")


def record_key(unit: str) -> str:
    return f"deploy_{unit.lower()}"


RECORD_KEY = "deploy_<unit>"


def new_record(unit: str) -> dict[str, Any]:
    """The record of a stowed unit that never fired (written at integration, see :func:`provision`)."""
    return {"v": RECORD_VERSION, "unit": unit, "state": "SAFE", "attempts": 0, "actuator": "",
            "fired_at": None, "released_at": None, "reason": "", "overrides": 0, "writes": 0}


def validate_record(obj: Any, unit: str) -> dict[str, Any] | None:
    """The record if it is well formed for ``unit``, else ``None`` (reads as corrupt)."""
    if not isinstance(obj, dict) or obj.get("v") != RECORD_VERSION or obj.get("unit") != unit:
        return None
    if obj.get("state") not in RECORD_STATES or obj.get("actuator") not in ("", "A", "B"):
        return None
    for k in ("attempts", "overrides", "writes"):
        if type(obj.get(k)) is not int or obj[k] < 0:
            return None
    for k in ("fired_at", "released_at"):
        v = obj.get(k)
        if v is not None and type(v) not in (int, float):
            return None
    if not isinstance(obj.get("reason"), str):
        return None
    return obj


def provision(store: StateStore, units: list[str] | tuple[str, ...], overwrite: bool = False) -> list[str]:
    """Write the "stowed, never fired" record of each unit (integration step); returns the units written.

    Without a record a unit reads UNKNOWN and cannot be fired before a ground override: that is the
    safe reading of a lost record, so a fresh store has to be provisioned once, before flight.
    """
    done = []
    for u in units:
        if overwrite or store.load(record_key(u)) is None:
            save_record(store, record_key(u), new_record(u))
            done.append(u)
    return done


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployOptions:
    arm_timeout_s: float = 120.0      # the arm window, from the armed confirmation
    arming_timeout_s: float = 10.0    # ARM fails if telemetry does not show the armed state by then
    spacing_s: float = 43_200.0       # one orbit of the 100 x 8,700 km deployment orbit (about 12 h)
    tm_stale_s: float = 3.0           # controller status older than this is stale (status is 1 Hz)
    sep_margin_s: float = 2.0         # added to the unit's expected separation time (telemetry latency)
    safe_timeout_s: float = 10.0      # safing not confirmed by then: fault event, request repeated
    current_threshold_a: float = 0.1  # actuator current above this outside a fire is a sneak path
    tick_s: float = 1.0               # monitoring period

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> "DeployOptions":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown deploy option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        opts = cls(**{k: float(v) for k, v in d.items()})
        for f in fields(cls):
            if not getattr(opts, f.name) >= 0:
                raise ValueError(f"deploy option {f.name} must be non-negative")
        if opts.tick_s <= 0:
            raise ValueError("deploy option tick_s must be positive")
        return opts


# ---------------------------------------------------------------------------------------------
# The manager
# ---------------------------------------------------------------------------------------------

#: manager states in which a unit's inhibits are (being) removed on purpose
ACTIVE = ("ARMING", "ARMED", "FIRING", "COOLDOWN")
#: controller status parameters the manager reads: role -> parameter suffix
STATUS_ROLES = {"mode": "MODE", "bus_relay": "BUS_RELAY", "arm_relay": "ARM_RELAY", "fire_sw": "FIRE_SW",
                "bus_v": "BUS_V", "act_a_i": "ACT_A_I", "act_b_i": "ACT_B_I", "sw1_open": "SW1_OPEN",
                "sw2_open": "SW2_OPEN"}
COMMAND_ROLES = ("BUS_ENABLE", "ARM", "FIRE", "SAFE")
OWN_COMMANDS = ("DEPLOY_ARM", "DEPLOY_FIRE", "DEPLOY_DISARM", "DEPLOY_OVERRIDE")


@dataclass
class UnitTm:
    """The controller's last status report."""

    at: float | None = None
    mode: str = ""
    bus_relay: bool = False
    arm_relay: bool = False
    fire_sw: bool = False
    bus_v: float = 0.0
    act_a_i: float = 0.0
    act_b_i: float = 0.0
    sw1_open: bool = False
    sw2_open: bool = False


@dataclass(frozen=True, slots=True)
class PduView:
    on: bool
    current_a: float
    tripped: bool
    fresh: bool


@dataclass(eq=False)
class Unit:
    """What the manager knows about one deploy unit (volatile, except :attr:`record`)."""

    system: System
    value: int                      # DEPLOY_UNIT value
    status_pkt: TmPacket
    cmds: dict[str, Command]
    status_names: dict[str, str]
    expected_sep_s: float
    cooldown_s: float
    state: str = "UNKNOWN"
    unknown_reason: str = ""
    record: dict[str, Any] | None = None
    tm: UnitTm = field(default_factory=UnitTm)
    gen: int = 0                    # bumped on every state change: stale callbacks compare it
    entered_at: float = 0.0
    armed_until: float | None = None
    arm_pending: "Pending | None" = None
    fire_pending: "Pending | None" = None
    attempt: int = 0
    actuator: str = ""
    attempt_started: float | None = None
    timer: Timer | None = None
    safing: bool = False
    safe_sent_at: float = 0.0
    safe_timer: Timer | None = None
    safe_timeout_reported: bool = False
    faults: frozenset[str] = frozenset()
    rejects: int = 0
    sent: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.system.name


class DeployManager:
    """See the module docstring.  Constructed by :func:`fsw.core.flight.build_flight_software`."""

    def __init__(self, fsw: "FlightSoftware", options: Mapping[str, Any] | DeployOptions | None = None) -> None:
        self.fsw = fsw
        self.d = fsw.dictionary
        self.opts = options if isinstance(options, DeployOptions) else DeployOptions.from_mapping(options)
        lander = self.d.lander
        self.unit_enum = lander.enums["DEPLOY_UNIT"]
        self.reasons = lander.enums["DEPLOY_REASON"]
        systems = {s.name: s for s in self.d.systems_of_kind("deploy")}
        if set(self.unit_enum.values) != set(systems):
            raise ValueError(f"DEPLOY_UNIT labels {sorted(self.unit_enum.values)} must be the deploy units' names "
                             f"{sorted(systems)}")
        self.units: dict[str, Unit] = {}
        for name, value in sorted(self.unit_enum.values.items(), key=lambda kv: kv[1]):
            self.units[name] = self._make_unit(systems[name], value)
        self._by_apid = {u.system.apid: u for u in self.units.values()}
        self._seq = 0
        self._now = 0.0
        self._hk_entry = None
        self._ticker: Any = None           # the monitoring tick: runs only while something may change
        self._tick_last: float | None = None
        for name in OWN_COMMANDS:
            fsw.register_command(name, getattr(self, "_cmd_" + name[len("DEPLOY_"):].lower()))
        fsw.hk.register("DEPLOY_HK", self._hk)
        fsw.add_tm_listener(self._on_tm)
        fsw.add_tm_consumer(self._consume)
        fsw.add_link_listener(self._on_link)
        fsw.add_route_gate(self._gate)
        fsw.phases.add_veto(self._phase_veto)
        fsw.phases.on_change(self._phase_changed)
        fsw.on_start(self._start)

    def _make_unit(self, s: System, value: int) -> Unit:
        n = s.name
        try:
            pkt = s.packet(f"{n}_STATUS")
            cmds = {r: s.command(f"{n}_{r}") for r in COMMAND_ROLES}
        except KeyError as exc:
            raise ValueError(f"deploy unit {n} must declare {n}_STATUS and {n}_<{'|'.join(COMMAND_ROLES)}>: "
                             f"missing {exc}") from None
        names = {role: f"{n}_{suffix}" for role, suffix in STATUS_ROLES.items()}
        have = {p.name for p in pkt.params}
        missing = [v for v in names.values() if v not in have]
        if missing:
            raise ValueError(f"{n}_STATUS lacks {', '.join(missing)}")
        cfg = s.config
        sep = cfg.get("separation") or {}
        return Unit(s, value, pkt, cmds, names, float(sep.get("expected_s", 10.0)), float(cfg.get("cooldown_s", 10.0)))

    # -- life cycle ------------------------------------------------------------------------
    def _start(self, now: float) -> None:
        """Start (and every restart): read the durable records, command every unit safe."""
        self._now = now
        self._watch_other_hazards()
        for u in self.units.values():
            raw = self.fsw.store.load(record_key(u.name))
            rec = validate_record(unseal(raw), u.name)
            u.record = rec
            if rec is None:
                u.state, u.unknown_reason = "UNKNOWN", "RECORD_MISSING" if raw is None else "RECORD_CORRUPT"
            elif rec["state"] in ("FIRING", "RETRY"):
                u.state, u.unknown_reason = "UNKNOWN", "RECORD_INTERRUPTED"
            else:
                u.state = rec["state"]
            if u.state == "UNKNOWN":
                self._emit("DEPLOY_STATE_UNKNOWN", u, now, EVT_DEP_REASON=u.unknown_reason)
            self._safe_hw(u, now)   # a restart clears any arm: the inhibits go back in place
        if self._ticker is not None:
            self._ticker.cancel()
        self._ticker = self.fsw.timers.every(self.opts.tick_s, self._tick, now + self.opts.tick_s)
        power = self._power()
        if power is not None and hasattr(power, "on_trip"):
            power.on_trip(self._on_trip)
        if power is not None and hasattr(power, "on_update"):
            power.on_update(self._wake)

    def _watch_other_hazards(self) -> None:
        """Any hazardous lander command that is not ours clears the arm (wraps its handler).

        FlightSoftware has no public pre-dispatch hook yet; this wraps the registered handlers once all
        components are constructed (at start).  Routed unit commands are watched by :meth:`_gate`.
        """
        handlers = self.fsw._handlers  # noqa: SLF001 - see the docstring
        for name, handler in list(handlers.items()):
            cmd = self.d.lander.command(name)
            if cmd.hazardous and name not in OWN_COMMANDS:
                def wrapped(c: Command, a: dict, tc: PusTc, now: float, _h: Callable = handler) -> Any:
                    self._now = now
                    self._clear_all_arms(now, "OTHER_HAZARD")
                    return _h(c, a, tc, now)
                handlers[name] = wrapped

    # -- helpers -------------------------------------------------------------------------------
    def _power(self) -> Any | None:
        return getattr(self.fsw, "power", None)

    def pdu(self, u: Unit, now: float) -> PduView:
        p = self._power()
        if p is None:
            return PduView(False, 0.0, False, False)
        try:
            st = p.state(u.name)
            stale = bool(p.is_stale(u.name, now))
        except KeyError:
            return PduView(False, 0.0, False, False)
        return PduView(bool(st.on), float(st.current_a or 0.0), bool(st.tripped), not stale)

    def tm_fresh(self, u: Unit, now: float) -> bool:
        return u.tm.at is not None and now - u.tm.at <= self.opts.tm_stale_s

    def other_units(self, u: Unit) -> list[Unit]:
        return [x for x in self.units.values() if x is not u]

    def last_fire_at(self, u: Unit) -> float | None:
        return None if u.record is None else u.record.get("fired_at")

    def _enter(self, u: Unit, state: str, now: float) -> None:
        self._wake(now)
        u.state = state
        u.gen += 1
        u.entered_at = now
        if u.timer is not None:
            u.timer.cancel()
            u.timer = None

    def _at(self, u: Unit, when: float, fn: Callable[[Unit, float], None]) -> None:
        """One state timer per unit; it is void once the unit changes state."""
        gen = u.gen

        def fire(now: float) -> None:
            self._now = now
            if u.gen == gen:
                fn(u, now)
        u.timer = self.fsw.timers.call_at(when, fire)

    def _emit(self, name: str, u: Unit, now: float, **args: Any) -> None:
        self.fsw.emit(name, now, EVT_DEP_UNIT=u.name, **args)

    def _send(self, u: Unit, role: str, **args: Any) -> None:
        """A command to the controller, acknowledgement flags 0: only failures come back."""
        cmd = u.cmds[role]
        seq = self._seq
        self._seq = (seq + 1) & 0x3FFF
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, args), seq_count=seq,
                   source_id=self.d.lander.apid, ack_flags=0)
        if len(u.sent) > 64:
            u.sent.pop(next(iter(u.sent)))
        u.sent[(tc.packet_id, seq)] = role
        self.fsw.send_to_unit(u.system, tc.pack())

    def _switch_pdu(self, u: Unit, on: bool, now: float, done: Callable[[bool, Any], None] | None = None) -> None:
        """Ask the power controller; the outcome is handled from the timer queue, never inside a handler
        (a handler's own acceptance report must go out before any completion)."""
        cb = done or (lambda ok, code: self._pdu_done(u, on, ok))

        def later(ok: bool, code: Any = None) -> None:
            self.fsw.timers.call_at(self._now, lambda t: self._callback(t, cb, ok, code))
        p = self._power()
        if p is None:
            later(False, "no power controller")
            return
        try:
            p.switch(u.name, on, now, later)
        except KeyError:  # the PDU has no channel for this unit
            later(False, "no PDU channel")

    def _callback(self, now: float, cb: Callable[[bool, Any], None], ok: bool, code: Any) -> None:
        self._now = now
        cb(ok, code)

    def _pdu_done(self, u: Unit, on: bool, ok: bool) -> None:
        if not ok:
            self._fault_event(u, "PDU_FAILED", self._now)

    def _write(self, u: Unit, **changes: Any) -> dict[str, Any]:
        """Write the unit's durable record (the store does temp file, fsync, rename); raises OSError."""
        base = dict(u.record) if u.record is not None else new_record(u.name)
        base.update(changes)
        base["writes"] = int(base.get("writes", 0)) + 1
        save_record(self.fsw.store, record_key(u.name), base)
        u.record = base
        return base

    # -- prerequisites -------------------------------------------------------------------------
    def _spacing_ok(self, u: Unit, now: float) -> bool:
        for o in self.other_units(u):
            t = self.last_fire_at(o)
            if o.state == "UNKNOWN" and t is None:
                return False  # the other unit's history is lost: spacing cannot be shown
            if t is not None and now - t < self.opts.spacing_s:
                return False
        return True

    def _other_idle(self, u: Unit, now: float) -> bool:
        return all(o.state not in ACTIVE and not self.pdu(o, now).on for o in self.other_units(u))

    def _not_done(self, u: Unit) -> bool:
        return u.state not in ("RELEASED", "FAILED") and not (u.tm.sw1_open and u.tm.sw2_open)

    def fire_prereqs(self, u: Unit, now: float) -> FirePrereqs:
        tm, pdu = u.tm, self.pdu(u, now)
        return FirePrereqs(
            phase_allows=self.fsw.phases.current.allows_hazard("DEPLOY_FIRE"),
            state_known=u.state != "UNKNOWN",
            not_done=self._not_done(u),
            armed=u.state == "ARMED" and u.armed_until is not None and now < u.armed_until,
            other_idle=self._other_idle(u, now),
            spacing_ok=self._spacing_ok(u, now),
            link_up=self.fsw.port_stats[u.system.port].up,
            tm_fresh=self.tm_fresh(u, now) and pdu.fresh,
            pdu_on=pdu.on,
            bus_relay_closed=tm.bus_relay,
            arm_relay_closed=tm.arm_relay,
            fire_switch_open=not tm.fire_sw,
            switches_closed=not tm.sw1_open and not tm.sw2_open,
            no_fault=not self.faults(u, now),
        )

    def arm_prereqs(self, u: Unit, now: float) -> ArmPrereqs:
        tm, pdu = u.tm, self.pdu(u, now)
        return ArmPrereqs(
            phase_allows=self.fsw.phases.current.allows_hazard("DEPLOY_ARM"),
            state_known=u.state != "UNKNOWN",
            not_done=self._not_done(u),
            link_up=self.fsw.port_stats[u.system.port].up,
            tm_fresh=self.tm_fresh(u, now) and pdu.fresh,
            unit_idle=u.state == "SAFE" and not u.safing,
            other_idle=self._other_idle(u, now),
            spacing_ok=self._spacing_ok(u, now),
            inhibits_in_place=not (tm.bus_relay or tm.arm_relay or tm.fire_sw or pdu.on),
            switches_closed=not tm.sw1_open and not tm.sw2_open,
            no_fault=not self.faults(u, now),
        )

    def override_prereqs(self, u: Unit, now: float) -> OverridePrereqs:
        return OverridePrereqs(
            phase_allows=self.fsw.phases.current.allows_hazard("DEPLOY_OVERRIDE"),
            not_busy=u.state not in ACTIVE,
            overridable=u.state in ("UNKNOWN", "FAILED"),
        )

    def faults(self, u: Unit, now: float) -> frozenset[str]:
        """Active deploy faults of ``u`` (DEPLOY_REASON names), from its latest telemetry."""
        f: set[str] = set()
        pdu = self.pdu(u, now)
        if pdu.tripped:
            f.add("PDU_TRIP")
        tm = u.tm
        if self.tm_fresh(u, now):
            thr = self.opts.current_threshold_a
            if tm.mode == "FAULT":
                f.add("CONTROLLER_FAULT")
            if (tm.act_a_i > thr or tm.act_b_i > thr) and not (u.state == "FIRING" and tm.fire_sw):
                f.add("SNEAK_CURRENT")
            if tm.sw1_open != tm.sw2_open and u.state not in ("FIRING", "COOLDOWN"):
                f.add("SWITCH_DISAGREE")   # (while firing, one switch opening first is normal)
            if tm.sw1_open and tm.sw2_open and u.state not in ("FIRING", "COOLDOWN", "RELEASED"):
                f.add("UNEXPECTED_RELEASE")
            idle = u.state not in ACTIVE and not u.safing
            if idle and (tm.bus_relay or tm.arm_relay or tm.fire_sw or (pdu.fresh and pdu.on)):
                f.add("INHIBIT_LOST")
        return frozenset(f)

    # -- commands --------------------------------------------------------------------------------
    def _unit_of(self, args: dict) -> Unit:
        return self.units[args["unit"]]

    def _refuse(self, u: Unit, cmd: Command, decision: Decision, now: float) -> None:
        from .flight import CommandFailure

        u.rejects += 1
        self._emit("DEPLOY_REJECTED", u, now, EVT_DEP_FUNCTION=cmd.function_id or 0, EVT_DEP_CODE=decision.code)
        raise CommandFailure(decision.code or "EXECUTION_FAILED", decision.mask, stage="accept")

    def _cmd_arm(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending":
        self._now = now
        u = self._unit_of(args)
        self._clear_all_arms(now, "OTHER_HAZARD")   # a second ARM, of either unit, clears the first
        d = arm_decision(self.arm_prereqs(u, now))
        if not d.ok:
            self._refuse(u, cmd, d, now)
        pending = self.fsw.pending(tc)
        self._enter(u, "ARMING", now)
        u.arm_pending = pending
        self._at(u, now + self.opts.arming_timeout_s, lambda u, t: self._clear_arm(u, t, "ARMING_TIMEOUT"))
        gen = u.gen
        self._switch_pdu(u, True, now, lambda ok, code: self._arm_powered(u, gen, ok))
        return pending

    def _arm_powered(self, u: Unit, gen: int, ok: bool) -> None:
        if u.gen != gen or u.state != "ARMING":
            return  # cleared meanwhile; the clearing switched the channel off again
        if not ok:
            self._clear_arm(u, self._now, "PDU_FAILED")
            return
        self._send(u, "BUS_ENABLE")
        self._send(u, "ARM")

    def _armed(self, u: Unit, now: float) -> None:
        pending = u.arm_pending
        self._enter(u, "ARMED", now)
        u.arm_pending = None
        u.armed_until = now + self.opts.arm_timeout_s
        self._at(u, u.armed_until, lambda u, t: self._clear_arm(u, t, "ARM_TIMEOUT"))
        self._emit("DEPLOY_ARMED", u, now, EVT_DEP_WINDOW=int(min(self.opts.arm_timeout_s, 0xFFFF)))
        if pending is not None:
            pending.complete(now)

    def _clear_arm(self, u: Unit, now: float, reason: str) -> None:
        if u.state not in ("ARMING", "ARMED"):
            return
        pending = u.arm_pending
        self._enter(u, "SAFE", now)
        u.arm_pending = None
        u.armed_until = None
        self._safe_hw(u, now)
        self._emit("DEPLOY_ARM_CLEARED", u, now, EVT_DEP_REASON=reason)
        if pending is not None:
            pending.fail("EXECUTION_FAILED", now, self.reasons.values[reason])

    def _clear_all_arms(self, now: float, reason: str, keep: Unit | None = None) -> None:
        for u in self.units.values():
            if u is not keep:
                self._clear_arm(u, now, reason)

    def _cmd_fire(self, cmd: Command, args: dict, tc: PusTc, now: float) -> "Pending":
        from .flight import CommandFailure

        self._now = now
        u = self._unit_of(args)
        self._clear_all_arms(now, "OTHER_HAZARD", keep=u)  # the armed unit's own FIRE does not clear it
        d = fire_decision(self.fire_prereqs(u, now))
        if not d.ok:
            self._refuse(u, cmd, d, now)
        pending = self.fsw.pending(tc)
        u.fire_pending = pending
        try:
            self._attempt(u, "A", 1, now)
        except OSError:
            u.fire_pending = None
            self._enter(u, "SAFE", now)
            u.armed_until = None
            self._safe_hw(u, now)
            self._fault_event(u, "STORE_ERROR", now)
            raise CommandFailure("EXECUTION_FAILED", self.reasons.values["STORE_ERROR"], stage="start") from None
        return pending

    def _attempt(self, u: Unit, actuator: str, n: int, now: float) -> None:
        """Write FIRING durably, then (only then) close the fire switch."""
        self._write(u, state="FIRING", attempts=n, actuator=actuator, fired_at=now, reason="")
        self._enter(u, "FIRING", now)
        u.armed_until = None
        u.attempt, u.actuator, u.attempt_started = n, actuator, now
        self._send(u, "FIRE", actuator=actuator)
        self._emit("DEPLOY_FIRING", u, now, EVT_DEP_ACTUATOR=actuator, EVT_DEP_ATTEMPT=n)
        pending = u.fire_pending
        if pending is not None:  # from the timer queue: after the handler's acceptance and start reports
            self.fsw.timers.call_at(now, lambda t: pending.progress(n, t))
        self._at(u, now + u.expected_sep_s + self.opts.sep_margin_s,
                 lambda u, t: self._attempt_over(u, t, "NO_SEPARATION"))

    def _attempt_over(self, u: Unit, now: float, reason: str) -> None:
        if u.state != "FIRING":
            return
        if u.attempt >= 2:
            self._failed(u, now, reason)
            return
        try:
            self._write(u, state="RETRY", reason=reason)
        except OSError:
            self._fault_event(u, "STORE_ERROR", now)
        self._enter(u, "COOLDOWN", now)
        self._emit("DEPLOY_RETRY", u, now, EVT_DEP_ACTUATOR="B", EVT_DEP_REASON=reason)
        self._at(u, now + u.cooldown_s, self._retry)

    def retry_prereqs(self, u: Unit, now: float) -> FirePrereqs:
        """The FIRE prerequisites again, for the redundant actuator.

        The arm is not asked for (the FIRE authorised both attempts), nor closed switches or switch
        agreement: one switch may have opened, and firing B is then the way to settle it.
        """
        p = self.fire_prereqs(u, now)
        faults = self.faults(u, now) - {"SWITCH_DISAGREE"}
        return FirePrereqs(**{**{f.name: getattr(p, f.name) for f in fields(p)},
                              "armed": True, "switches_closed": True, "no_fault": not faults})

    def _retry(self, u: Unit, now: float) -> None:
        d = fire_decision(self.retry_prereqs(u, now))
        if not d.ok:
            self._failed(u, now, _reason_for(d, self.faults(u, now)))
            return
        try:
            self._attempt(u, "B", 2, now)
        except OSError:
            self._failed(u, now, "STORE_ERROR")

    def _released(self, u: Unit, now: float) -> None:
        pending, started, n, act = u.fire_pending, u.attempt_started or now, u.attempt, u.actuator
        try:
            self._write(u, state="RELEASED", released_at=now, reason="")
        except OSError:
            self._fault_event(u, "STORE_ERROR", now)
        self._enter(u, "RELEASED", now)
        u.fire_pending = None
        self._safe_hw(u, now)
        self._emit("DEPLOY_RELEASED", u, now, EVT_DEP_ACTUATOR=act, EVT_DEP_ATTEMPT=n,
                   EVT_DEP_SEP_MS=int(max(0.0, now - started) * 1000))
        if pending is not None:
            pending.complete(now)

    def _failed(self, u: Unit, now: float, reason: str) -> None:
        pending = u.fire_pending
        try:
            self._write(u, state="FAILED", reason=reason)
        except OSError:
            self._fault_event(u, "STORE_ERROR", now)
        self._enter(u, "FAILED", now)
        u.fire_pending = None
        self._safe_hw(u, now)
        self._emit("DEPLOY_FAILED", u, now, EVT_DEP_REASON=reason)
        if pending is not None:
            pending.fail("EXECUTION_FAILED", now, self.reasons.values[reason])

    def _cmd_disarm(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        """Never refused: clear every arm, and command the named unit's inhibits back in place.

        A fire in progress on the unit is aborted: the unit ends FAILED (reason DISARM), since nobody can
        say whether the interrupted attempt released it; ground then overrides.
        """
        self._now = now
        u = self._unit_of(args)
        was = u.state
        self._clear_all_arms(now, "DISARM")
        if u.state in ("FIRING", "COOLDOWN"):
            self._failed(u, now, "DISARM")
        elif was not in ("ARMING", "ARMED"):
            self._safe_hw(u, now)

    def _cmd_override(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        from .flight import CommandFailure

        self._now = now
        u = self._unit_of(args)
        self._clear_all_arms(now, "OTHER_HAZARD")
        d = override_decision(self.override_prereqs(u, now))
        if not d.ok:
            self._refuse(u, cmd, d, now)
        affirm = args["state"]
        new = "SAFE" if affirm == "STOWED" else "RELEASED"
        changes: dict[str, Any] = {"state": new, "reason": "",
                                   "overrides": (u.record or {}).get("overrides", 0) + 1}
        if u.record is None:
            # history lost: for spacing, a unit affirmed released counts as released now
            changes.update(fired_at=now if new == "RELEASED" else None)
        if new == "RELEASED":
            changes["released_at"] = (u.record or {}).get("released_at") or now
        try:
            self._write(u, **changes)
        except OSError:
            self._fault_event(u, "STORE_ERROR", now)
            raise CommandFailure("EXECUTION_FAILED", self.reasons.values["STORE_ERROR"], stage="start") from None
        self._enter(u, new, now)
        u.unknown_reason = ""
        self._emit("DEPLOY_OVERRIDDEN", u, now, EVT_DEP_STATE=new)
        self._safe_hw(u, now)

    # -- safing ------------------------------------------------------------------------------------
    def _safe_hw(self, u: Unit, now: float) -> None:
        """Command the inhibits back in place and the PDU channel off; telemetry confirms it."""
        self._wake(now)
        u.safing = True
        u.safe_sent_at = now
        self._send(u, "SAFE")
        self._switch_pdu(u, False, now)
        if u.safe_timer is not None:
            u.safe_timer.cancel()

        def check(t: float) -> None:
            self._now = t
            if u.safing:
                if not u.safe_timeout_reported:
                    u.safe_timeout_reported = True
                    self._fault_event(u, "SAFE_TIMEOUT", t)
                self._safe_hw(u, t)
        u.safe_timer = self.fsw.timers.call_at(now + self.opts.safe_timeout_s, check)

    def hw_safe(self, u: Unit, now: float) -> bool:
        tm, pdu = u.tm, self.pdu(u, now)
        return (self.tm_fresh(u, now) and pdu.fresh and not (tm.bus_relay or tm.arm_relay or tm.fire_sw)
                and not pdu.on)

    # -- monitoring ----------------------------------------------------------------------------------
    def _fault_event(self, u: Unit, reason: str, now: float) -> None:
        self._emit("DEPLOY_FAULT", u, now, EVT_DEP_REASON=reason)

    def _tick(self, now: float) -> None:
        self._now = now
        self._tick_last = now
        for u in self.units.values():
            self.evaluate(u, now)
        # Quiescent (every unit idle, not safing, no active fault): with no new input a tick changes
        # nothing (time alone only lets telemetry go stale, which can only remove faults), so the tick
        # stops until the next input (_wake) and resumes on its grid.
        if self._ticker is not None and all(u.state not in ACTIVE and not u.safing and not u.faults
                                            for u in self.units.values()):
            self._ticker.cancel()

    def _wake(self, now: float) -> None:
        """An input that may change what the monitoring tick sees: make sure the tick runs."""
        if self._ticker is not None:
            self._ticker.resume(now, self._tick_last)

    def _on_trip(self, *args: Any) -> None:
        self._wake(self._now)
        for u in self.units.values():
            self.evaluate(u, self._now)

    def _on_link(self, port: str, up: bool, now: float) -> None:
        self._now = now
        self._wake(now)
        for u in self.units.values():
            if u.system.port == port:
                if up and u.safing:
                    self._safe_hw(u, now)
                self.evaluate(u, now)

    def evaluate(self, u: Unit, now: float) -> None:
        """React to the latest telemetry: confirm an arm, watch it, confirm separation, confirm safing."""
        tm, fresh = u.tm, self.tm_fresh(u, now)
        pdu = self.pdu(u, now)
        if u.state == "ARMING":
            if (fresh and tm.at is not None and tm.at >= u.entered_at and tm.bus_relay and tm.arm_relay
                    and not tm.fire_sw and pdu.on and pdu.fresh):
                self._armed(u, now)
        elif u.state == "ARMED":
            reason = None
            if not fresh:
                reason = "TM_STALE"
            elif pdu.tripped:
                reason = "PDU_TRIP"
            elif not (tm.bus_relay and tm.arm_relay and pdu.on) or tm.fire_sw:
                reason = "INHIBIT_LOST"
            else:
                faults = self.faults(u, now)
                if faults:
                    reason = sorted(faults)[0]
            if reason is not None:
                self._clear_arm(u, now, reason)
        elif u.state in ("FIRING", "COOLDOWN"):
            if (fresh and tm.at is not None and u.attempt_started is not None and tm.at >= u.attempt_started
                    and tm.sw1_open and tm.sw2_open):
                self._released(u, now)
            elif pdu.tripped:
                self._failed(u, now, "PDU_TRIP")
        if u.safing and self.hw_safe(u, now) and tm.at is not None and tm.at >= u.safe_sent_at:
            u.safing = False
            u.safe_timeout_reported = False
            if u.safe_timer is not None:
                u.safe_timer.cancel()
                u.safe_timer = None
            self._emit("DEPLOY_SAFED", u, now)
        faults = self.faults(u, now)
        for reason in sorted(faults - u.faults):
            self._fault_event(u, reason, now)
        u.faults = faults
        if "INHIBIT_LOST" in faults and u.state not in ACTIVE and not u.safing:
            self._safe_hw(u, now)   # an inhibit removed without a reason: put it back

    def _on_tm(self, system: System, tm: PusTm, now: float) -> None:
        u = self._by_apid.get(tm.apid)
        if u is None:
            return
        self._now = now
        self._wake(now)
        data = tm.source_data
        if tm.service == 3 and tm.subservice == 25:
            if len(data) < 2 or int.from_bytes(data[:2], "big") != u.status_pkt.sid:
                return
            try:
                vals = self.d.codec(u.status_pkt).decode(data)
            except Exception:  # noqa: BLE001 - bytes from a link never raise
                self.fsw.port_stats[u.system.port].rejected += 1
                return
            n = u.status_names
            u.tm = UnitTm(now, str(vals[n["mode"]]), bool(vals[n["bus_relay"]]), bool(vals[n["arm_relay"]]),
                          bool(vals[n["fire_sw"]]), float(vals[n["bus_v"]]), float(vals[n["act_a_i"]]),
                          float(vals[n["act_b_i"]]), bool(vals[n["sw1_open"]]), bool(vals[n["sw2_open"]]))
            self.evaluate(u, now)

    def _consume(self, system: System, tm: PusTm, now: float) -> bool:
        """PUS-1 reports to the manager's own controller commands stay on board (they are not ground's)."""
        u = self._by_apid.get(tm.apid)
        if u is None or tm.service != 1 or tm.dest_id != self.d.lander.apid:
            return False
        self._now = now
        data = tm.source_data
        if tm.subservice in (2, 4, 6, 8) and len(data) >= 4:
            key = (int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big") & 0x3FFF)
            role = u.sent.pop(key, None)
            if role is not None:
                self._controller_refused(u, role, now)
        return True

    def _controller_refused(self, u: Unit, role: str, now: float) -> None:
        self._fault_event(u, "CONTROLLER_REJECT", now)
        if role in ("BUS_ENABLE", "ARM") and u.state == "ARMING":
            self._clear_arm(u, now, "CONTROLLER_REJECT")
        elif role == "FIRE" and u.state == "FIRING":
            self._attempt_over(u, now, "CONTROLLER_REJECT")

    # -- ground-side gates ---------------------------------------------------------------------------
    def _gate(self, system: System, tc: PusTc, now: float) -> str | None:
        """Routed TCs: a hazardous one clears the arm; a deploy controller's relay commands are ours only."""
        cmd = self.d.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None or not cmd.hazardous:
            return None
        self._now = now
        self._clear_all_arms(now, "OTHER_HAZARD")
        if system.kind == "deploy":
            u = self._by_apid.get(system.apid)
            if u is not None:
                u.rejects += 1
                self._emit("DEPLOY_REJECTED", u, now, EVT_DEP_FUNCTION=cmd.function_id or 0,
                           EVT_DEP_CODE="ONBOARD_ONLY")
            return "ONBOARD_ONLY"
        return None

    def _phase_veto(self, new: Any, now: float) -> str | None:
        if any(u.state in ("FIRING", "COOLDOWN") for u in self.units.values()):
            return "BUSY"
        return None

    def _phase_changed(self, old: Any, new: Any, now: float) -> None:
        self._now = now
        self._wake(now)
        self._clear_all_arms(now, "PHASE_CHANGE")

    # -- housekeeping ----------------------------------------------------------------------------------
    def _hk(self, now: float) -> list[dict[str, Any]]:
        out = []
        for u in self.units.values():
            tm, pdu, rec = u.tm, self.pdu(u, now), u.record or {}
            mask = 0
            for f in self.faults(u, now):
                mask |= 1 << (self.reasons.values[f] - 1)
            out.append({
                "DEP_UNIT": u.name, "DEP_STATE": u.state,
                "DEP_ARM_LEFT": int(max(0.0, (u.armed_until or now) - now)) if u.state == "ARMED" else 0,
                "DEP_HW_SAFE": self.hw_safe(u, now),
                "DEP_BUS_RELAY": tm.bus_relay, "DEP_ARM_RELAY": tm.arm_relay, "DEP_FIRE_SW": tm.fire_sw,
                "DEP_PDU_ON": pdu.on, "DEP_PDU_I": pdu.current_a,
                "DEP_ACT_A_I": tm.act_a_i, "DEP_ACT_B_I": tm.act_b_i,
                "DEP_SW1_OPEN": tm.sw1_open, "DEP_SW2_OPEN": tm.sw2_open,
                "DEP_TM_AGE": min(6553.5, now - tm.at) if tm.at is not None else 6553.5,
                "DEP_ATTEMPTS": min(int(rec.get("attempts", 0)), 0xFF),
                "DEP_ACTUATOR": rec.get("actuator") or "NONE",
                "DEP_FIRED_AT": rec.get("fired_at") or 0.0,
                "DEP_RELEASED_AT": rec.get("released_at") or 0.0,
                "DEP_FAULTS": mask, "DEP_REJECTS": min(u.rejects, 0xFFFF),
            })
        return out


def _reason_for(d: Decision, faults: frozenset[str]) -> str:
    """The DEPLOY_REASON of a retry that cannot go ahead."""
    if d.code == "FAULT_ACTIVE":
        rest = sorted(faults - {"SWITCH_DISAGREE"})
        return rest[0] if rest else "INHIBIT_LOST"
    return {"PHASE_FORBIDS": "PHASE_CHANGE", "LINK_DOWN": "TM_STALE", "TIMEOUT": "TM_STALE",
            "INHIBIT_ACTIVE": "INHIBIT_LOST"}.get(d.code or "", "NO_SEPARATION")
