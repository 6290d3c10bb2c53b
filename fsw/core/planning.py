"""Activity planning: a payload activity is accepted only if the power and data budgets fit its whole window.

An *activity* is a payload, a mode, a start and a duration.  The planner
keeps the accepted activities (the *plan*) and checks a new one against the
current mission phase's budgets:

* **power**: at every instant of the window, ``other_w`` (always-on loads
  such as survival heaters, from the planning file) plus each payload's mode
  power (the dictionary's ``power_w``) must stay within the phase's
  ``power_w`` allocation (the dictionary's phase table).  Outside activities a
  payload sits in its *baseline* mode for the phase (planning file; absent
  means OFF, 0 W);
* **data**: on every mission day the window touches (days counted from the
  epoch), the volume produced by every payload (mode data rate x time) must
  stay within the phase's ``data_bytes_per_day``;
* a payload is in one mode at a time: overlapping activities on one payload
  are refused (``UNIT_BUSY``), and so is a mode the phase does not allow
  (``PHASE``).

A refusal names the budget, the time and the amount (W or bytes) by which
the limit would be exceeded.  :class:`Plan` is pure; :class:`ActivityPlanner`
wires it to the flight software as ``PLAN_ACTIVITY`` / ``PLAN_CANCEL``: an
accepted activity becomes two time-tagged mode commands in the PUS 11
schedule (the mode at the start, back to the baseline mode at the end).

Budgets live in ``fsw/missions/reference/planning.yaml`` (handed over as
text by the composition root, like the sequences); data rates may also come
from a unit's dictionary ``config: {data_rate_bps: {MODE: bps}}``, which wins
over the planning file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..dictionary.loader import DictionaryError, load_yaml
from ..dictionary.model import frozen_map
from ..protocol.pus import PusTc
from .schedule import Rid, ScheduleError, rid_of
from .state import load_record, save_record

if TYPE_CHECKING:
    from ..dictionary import Command, Dictionary, System
    from ..dictionary.model import Phase
    from .flight import FlightSoftware
    from .schedule import ScheduleService

#: PUS source id of the telecommands the planner schedules
SOURCE_PLANNER = 0x0A01
#: the planner's sequence counts: 0x2000-0x2FFF (the sequencer uses 0x3000-0x3FFF)
SEQ_COUNT_BASE = 0x2000
POWER_EPS_W = 1e-6
DATA_EPS_B = 1e-3


@dataclass(frozen=True, slots=True)
class Activity:
    id: int
    unit: str
    mode: str
    start: float
    end: float
    rids: tuple[Rid, ...] = ()

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class PhaseBudget:
    phase: str
    power_w: float
    other_w: float = 0.0
    baseline: Mapping[str, str] = field(default_factory=frozen_map)
    data_bytes_per_day: float | None = None
    payload_power: bool = True
    #: unit -> allowed modes (absent: any)
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)

    def allows(self, unit: str, mode: str) -> bool:
        modes = self.allowed.get(unit)
        return modes is None or mode in modes


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why an activity does not fit: ``budget`` is a PLAN_BUDGET label."""

    budget: str
    at: float
    over: float
    limit: float
    message: str

    @property
    def failure_code(self) -> str:
        return {"POWER": "POWER_BUDGET", "DATA": "POWER_BUDGET", "UNIT_BUSY": "BUSY",
                "PHASE": "PHASE_FORBIDS"}.get(self.budget, "EXECUTION_FAILED")

    @property
    def failure_data(self) -> int:
        """The overage as PUS-1 failure data: milliwatts for power, bytes for data, seconds otherwise."""
        scale = 1000.0 if self.budget == "POWER" else 1.0
        return min(0xFFFF_FFFF, max(0, math.ceil(self.over * scale)))


# -- budgets from the planning file --------------------------------------------------------------------
@dataclass(frozen=True)
class PlanningConfig:
    day_s: float = 86400.0
    other_w: Mapping[str, float] = field(default_factory=frozen_map)
    baseline: Mapping[str, Mapping[str, str]] = field(default_factory=frozen_map)
    data_bytes_per_day: Mapping[str, float] = field(default_factory=frozen_map)
    #: unit -> mode -> bits per second
    rates: Mapping[str, Mapping[str, float]] = field(default_factory=frozen_map)

    def budget(self, phase: "Phase") -> PhaseBudget:
        return PhaseBudget(phase.name, phase.power_w, self.other_w.get(phase.name, 0.0),
                           frozen_map(self.baseline.get(phase.name, {})),
                           self.data_bytes_per_day.get(phase.name), phase.payload_power, phase.modes)

    def rate(self, unit: str, mode: str) -> float:
        return self.rates.get(unit, {}).get(mode, 0.0)


def parse_planning(source: "str | Mapping[str, Any] | None", dictionary: "Dictionary",
                   file: str = "planning.yaml") -> PlanningConfig:
    """Validate the planning budgets against the dictionary; errors read ``file: entry: problem``."""
    d = dictionary

    def fail(entry: str, problem: str) -> DictionaryError:
        return DictionaryError(file, entry, problem)

    def number(entry: str, v: Any, positive: bool = False) -> float:
        if isinstance(v, str):
            raise fail(entry, f"{v!r} is text; write numbers as 400000000 or 4.0e+8 (YAML reads 4.0e8 as text)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                or (positive and v == 0):
            raise fail(entry, f"expected a {'positive' if positive else 'non-negative'} number, got {v!r}")
        return float(v)

    def mapping(entry: str, v: Any) -> dict:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise fail(entry, f"expected a mapping, got {type(v).__name__}")
        return v

    def payload(entry: str, name: Any) -> "System":
        try:
            s = d.system(str(name))
        except KeyError:
            raise fail(entry, f"{name} is not a unit of the dictionary") from None
        if s.kind != "payload" or not s.modes:
            raise fail(entry, f"{name} is not a payload with modes")
        return s

    if source is None:
        y: Any = {}
    elif isinstance(source, str):
        try:
            y = load_yaml(source) or {}
        except Exception as exc:  # yaml.YAMLError; the message names the line
            raise fail("(file)", f"not valid YAML: {exc}".replace("\n", " ")) from None
    else:
        y = source
    y = mapping("(top level)", y)
    unknown = set(y) - {"day_s", "units", "phases"}
    if unknown:
        raise fail("(top level)", f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: day_s, units, phases")
    day_s = number("day_s", y.get("day_s", 86400.0), positive=True)
    rates: dict[str, dict[str, float]] = {}
    for uname, ud in mapping("units", y.get("units")).items():
        s = payload(f"units.{uname}", uname)
        ud = mapping(f"units.{uname}", ud)
        if set(ud) - {"data_rate_bps"}:
            raise fail(f"units.{uname}", "only data_rate_bps may be given")
        r = {}
        for mode, bps in mapping(f"units.{uname}.data_rate_bps", ud.get("data_rate_bps")).items():
            if mode not in s.modes:
                raise fail(f"units.{uname}.data_rate_bps.{mode}", f"not a mode of {s.name} ({', '.join(s.modes)})")
            r[mode] = number(f"units.{uname}.data_rate_bps.{mode}", bps)
        rates[s.name] = r
    for s in d.systems_of_kind("payload"):  # a rate in the unit's own dictionary file wins
        own = s.config.get("data_rate_bps")
        if isinstance(own, Mapping):
            rates.setdefault(s.name, {}).update({m: float(v) for m, v in own.items()
                                                 if m in s.modes and isinstance(v, (int, float))})
    other: dict[str, float] = {}
    base: dict[str, Mapping[str, str]] = {}
    data: dict[str, float] = {}
    for pname, pd in mapping("phases", y.get("phases")).items():
        entry = f"phases.{pname}"
        phase = d.phases.get(pname)
        if phase is None:
            raise fail(entry, f"{pname} is not a phase ({', '.join(d.phases)})")
        pd = mapping(entry, pd)
        extra = set(pd) - {"other_w", "baseline", "data_bytes_per_day"}
        if extra:
            raise fail(entry, f"unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                       "allowed: other_w, baseline, data_bytes_per_day")
        if "other_w" in pd:
            other[pname] = number(f"{entry}.other_w", pd["other_w"])
        if pd.get("data_bytes_per_day") is not None:
            data[pname] = number(f"{entry}.data_bytes_per_day", pd["data_bytes_per_day"], positive=True)
        b = {}
        for uname, mode in mapping(f"{entry}.baseline", pd.get("baseline")).items():
            s = payload(f"{entry}.baseline.{uname}", uname)
            if mode not in s.modes:
                raise fail(f"{entry}.baseline.{uname}", f"{mode} is not a mode of {s.name} ({', '.join(s.modes)})")
            if not phase.allows_mode(s.name, mode):
                raise fail(f"{entry}.baseline.{uname}", f"{pname} does not allow {s.name} in {mode}")
            b[s.name] = mode
        base[pname] = frozen_map(b)
        baseline_w = pd.get("other_w", 0) + sum(s.power_w.get(m, 0.0) for s in d.systems for m in [b.get(s.name)]
                                                if m is not None)
        if baseline_w > phase.power_w + POWER_EPS_W:
            raise fail(entry, f"the baseline alone draws {baseline_w:g} W, over the {phase.power_w:g} W allocation")
    return PlanningConfig(day_s, frozen_map(other), frozen_map(base), frozen_map(data),
                          frozen_map({k: frozen_map(v) for k, v in rates.items()}))


# -- the plan (pure) -----------------------------------------------------------------------------------------
class Plan:
    """Accepted activities and the budget arithmetic over them."""

    def __init__(self, power_of: Callable[[str, str], float], rate_of: Callable[[str, str], float],
                 day_s: float = 86400.0) -> None:
        self.power_of = power_of
        self.rate_of = rate_of
        self.day_s = day_s
        self.activities: list[Activity] = []

    def add(self, a: Activity) -> None:
        self.activities.append(a)
        self.activities.sort(key=lambda x: (x.start, x.id))

    def remove(self, activity_id: int) -> Activity | None:
        for a in self.activities:
            if a.id == activity_id:
                self.activities.remove(a)
                return a
        return None

    def get(self, activity_id: int) -> Activity | None:
        return next((a for a in self.activities if a.id == activity_id), None)

    def prune(self, now: float) -> list[Activity]:
        """Forget activities that ended at or before ``now``."""
        gone = [a for a in self.activities if a.end <= now]
        self.activities = [a for a in self.activities if a.end > now]
        return gone

    # -- arithmetic ------------------------------------------------------------------------------------------
    def _units(self, budget: PhaseBudget, acts: Iterable[Activity]) -> set[str]:
        return set(budget.baseline) | {a.unit for a in acts}

    def load_at(self, t: float, budget: PhaseBudget, acts: list[Activity] | None = None) -> float:
        """Planned power (W) at ``t``."""
        acts = self.activities if acts is None else acts
        total = budget.other_w
        for unit in self._units(budget, acts):
            mode = next((a.mode for a in acts if a.unit == unit and a.covers(t)), budget.baseline.get(unit))
            if mode is not None:
                total += self.power_of(unit, mode)
        return total

    def volume(self, t0: float, t1: float, budget: PhaseBudget, acts: list[Activity] | None = None) -> float:
        """Planned data volume (bytes) produced in [t0, t1)."""
        acts = self.activities if acts is None else acts
        bits = 0.0
        for unit in self._units(budget, acts):
            covered = 0.0
            for a in acts:
                if a.unit == unit:
                    dt = min(a.end, t1) - max(a.start, t0)
                    if dt > 0:
                        bits += self.rate_of(unit, a.mode) * dt
                        covered += dt
            mode = budget.baseline.get(unit)
            if mode is not None:
                bits += self.rate_of(unit, mode) * max(0.0, (t1 - t0) - covered)
        return bits / 8.0

    def _power_conflict(self, start: float, end: float, budget: PhaseBudget,
                        acts: list[Activity]) -> Conflict | None:
        points = sorted({start} | {x for a in acts for x in (a.start, a.end) if start < x < end})
        worst_t, worst = start, -math.inf
        for t in points:
            over = self.load_at(t, budget, acts) - budget.power_w
            if over > worst:
                worst_t, worst = t, over
        if worst > POWER_EPS_W:
            return Conflict("POWER", worst_t, worst, budget.power_w,
                            f"power {budget.power_w + worst:g} W at t={worst_t:g} s exceeds the {budget.phase} "
                            f"allocation of {budget.power_w:g} W by {worst:g} W")
        return None

    def _data_conflict(self, start: float, end: float, budget: PhaseBudget,
                       acts: list[Activity]) -> Conflict | None:
        limit = budget.data_bytes_per_day
        if limit is None:
            return None
        day = self.day_s
        for k in range(math.floor(start / day), math.ceil(end / day)):
            vol = self.volume(k * day, (k + 1) * day, budget, acts)
            if vol > limit + DATA_EPS_B:
                at = max(k * day, start)
                return Conflict("DATA", at, vol - limit, limit,
                                f"day {k} (from t={k * day:g} s) would produce {vol:.0f} B, over the {budget.phase} "
                                f"budget of {limit:.0f} B/day by {vol - limit:.0f} B")
        return None

    def check(self, cand: Activity, budget: PhaseBudget) -> Conflict | None:
        """Why ``cand`` does not fit the plan under ``budget``, or None when it does."""
        if cand.end <= cand.start:
            return Conflict("TIME", cand.start, 0.0, 0.0, "the activity has no duration")
        if not budget.payload_power or not budget.allows(cand.unit, cand.mode):
            return Conflict("PHASE", cand.start, 0.0, 0.0,
                            f"phase {budget.phase} does not allow {cand.unit} in {cand.mode}")
        for a in self.activities:
            if a.unit == cand.unit and a.start < cand.end and cand.start < a.end:
                overlap = min(a.end, cand.end) - max(a.start, cand.start)
                return Conflict("UNIT_BUSY", max(a.start, cand.start), overlap, 0.0,
                                f"{cand.unit} is already planned in {a.mode} from t={a.start:g} s to {a.end:g} s "
                                f"(activity {a.id})")
        acts = self.activities + [cand]
        return (self._power_conflict(cand.start, cand.end, budget, acts)
                or self._data_conflict(cand.start, cand.end, budget, acts))

    def audit(self, budget: PhaseBudget, now: float) -> Conflict | None:
        """The first way the accepted plan breaks ``budget`` from ``now`` on (after a phase change)."""
        for a in self.activities:
            if a.end <= now:
                continue
            if not budget.payload_power or not budget.allows(a.unit, a.mode):
                return Conflict("PHASE", max(a.start, now), 0.0, 0.0,
                                f"phase {budget.phase} does not allow {a.unit} in {a.mode}")
            c = (self._power_conflict(max(a.start, now), a.end, budget, self.activities)
                 or self._data_conflict(max(a.start, now), a.end, budget, self.activities))
            if c is not None:
                return c
        return None

    def peak(self, budget: PhaseBudget, since: float) -> float:
        """Highest planned power from ``since`` on."""
        points = {since} | {x for a in self.activities for x in (a.start, a.end) if x >= since}
        return max(self.load_at(t, budget) for t in points)


# -- the lander commands -------------------------------------------------------------------------------------
class ActivityPlanner:
    """PLAN_ACTIVITY / PLAN_CANCEL: the plan, kept in durable state, feeding the PUS 11 schedule."""

    RECORD = "plan"

    def __init__(self, fsw: "FlightSoftware", schedule: "ScheduleService",
                 config: "PlanningConfig | str | Mapping[str, Any] | None" = None) -> None:
        from .flight import CommandFailure

        self._failure = CommandFailure
        self.fsw = fsw
        self.d = fsw.dictionary
        self.schedule = schedule
        self.config = config if isinstance(config, PlanningConfig) else parse_planning(config, self.d)
        self.plan = Plan(self._power, self.config.rate, self.config.day_s)
        self.next_id = 1
        self.next_seq = 0
        self.refused = 0
        fsw.register_command("PLAN_ACTIVITY", self._cmd_plan)
        fsw.register_command("PLAN_CANCEL", self._cmd_cancel)
        fsw.on_start(self._restore)
        fsw.phases.on_change(self._phase_changed)
        schedule.hk_parts.append(self._hk)

    def _power(self, unit: str, mode: str) -> float:
        return float(self.d.system(unit).power_w.get(mode, 0.0))

    @property
    def budget(self) -> PhaseBudget:
        return self.config.budget(self.fsw.phases.current)

    @staticmethod
    def mode_command(unit: "System") -> "tuple[Command, str] | None":
        """The unit's mode command: the one whose ``effects`` set <UNIT>_MODE from an argument."""
        param = f"{unit.name}_MODE"
        for c in unit.commands:
            arg = c.effects.get(param)
            if isinstance(arg, str) and any(a.name == arg and a.enum is not None and a.enum.name == param
                                            for a in c.args):
                return c, arg
        return None

    def _save(self) -> None:
        save_record(self.fsw.store, self.RECORD, {
            "next_id": self.next_id, "next_seq": self.next_seq,
            "activities": [[a.id, a.unit, a.mode, a.start, a.end, [list(r) for r in a.rids]]
                           for a in self.plan.activities]})

    def _restore(self, now: float) -> None:
        rec = load_record(self.fsw.store, self.RECORD)
        if not isinstance(rec, dict):
            return
        try:
            acts = [Activity(int(i), str(u), str(m), float(s), float(e), tuple(tuple(int(x) for x in r) for r in rids))
                    for i, u, m, s, e, rids in rec["activities"]]
            self.next_id, self.next_seq = int(rec["next_id"]), int(rec["next_seq"])
        except (KeyError, TypeError, ValueError):
            return
        for a in acts:
            self.plan.add(a)
        self.plan.prune(now)

    def _tc(self, cmd: "Command", arg: str, mode: str) -> PusTc:
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, {arg: mode}),
                   seq_count=SEQ_COUNT_BASE + self.next_seq, source_id=SOURCE_PLANNER)
        self.next_seq = (self.next_seq + 1) % 0x1000
        return tc

    def _refuse(self, unit: str, c: Conflict, now: float) -> None:
        self.refused += 1
        self.fsw.emit("PLAN_REJECTED", now, PLAN_EVT_UNIT=unit, PLAN_EVT_BUDGET=c.budget, PLAN_EVT_AT=c.at,
                      PLAN_EVT_OVER=c.over, PLAN_EVT_LIMIT=c.limit)

    def _cmd_plan(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        port = args["unit"]  # a PAYLOAD label: the unit's name
        unit = next((u for u in self.fsw.units if u.name == port), None)
        found = self.mode_command(unit) if unit is not None and unit.kind == "payload" else None
        if unit is None or found is None:
            raise self._failure("ARG_OUT_OF_RANGE", 0, stage="accept",
                                message=f"{port} is not a payload with a mode command")
        if not args["mode"] < len(unit.modes):
            raise self._failure("ARG_OUT_OF_RANGE", args["mode"], stage="accept",
                                message=f"{unit.name} has {len(unit.modes)} modes")
        mode = unit.modes[args["mode"]]
        start, end = float(args["start"]), float(args["start"]) + args["duration_s"]
        if start < now + self.schedule.min_lead_s:
            self._refuse(port, Conflict("TIME", start, now - start, 0.0, "start in the past"), now)
            raise self._failure("BAD_TIME", math.ceil(now - start), stage="start", message="start is in the past")
        self.plan.prune(now)
        budget = self.budget
        cand = Activity(self.next_id, unit.name, mode, start, end)
        conflict = self.plan.check(cand, budget)
        if conflict is not None:
            self._refuse(port, conflict, now)
            raise self._failure(conflict.failure_code, conflict.failure_data, stage="start", message=conflict.message)
        mcmd, arg = found
        rest = budget.baseline.get(unit.name) or ("OFF" if "OFF" in unit.modes else unit.modes[0])
        tcs = [(start, self._tc(mcmd, arg, mode)), (end, self._tc(mcmd, arg, rest))]
        try:
            self.schedule.insert_tcs(tcs, now)
        except ScheduleError as exc:
            self._refuse(port, Conflict("SCHEDULE", start, 0.0, float(self.schedule.schedule.capacity), str(exc)), now)
            raise self._failure(exc.code, exc.data, stage="start", message=str(exc)) from None
        act = Activity(self.next_id, unit.name, mode, start, end, tuple(rid_of(t) for _, t in tcs))
        self.next_id = self.next_id % 0xFFFF + 1
        self.plan.add(act)
        self._save()
        self.fsw.emit("PLAN_ACCEPTED", now, PLAN_EVT_ID=act.id, PLAN_EVT_UNIT=port, PLAN_EVT_MODE=args["mode"],
                      PLAN_EVT_START=start, PLAN_EVT_DURATION=args["duration_s"])

    def _cmd_cancel(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        act = self.plan.get(args["activity"])
        if act is None:
            raise self._failure("UNKNOWN_ID", args["activity"], stage="start",
                                message=f"no planned activity {args['activity']}")
        gone = {a.rid: a for a in self.schedule.delete_rids(list(act.rids))}
        self.plan.remove(act.id)
        self._save()
        self.fsw.emit("PLAN_CANCELLED", now, PLAN_EVT_ID=act.id)
        # under way (its start command already released): return the unit to its baseline now,
        # after this command's own reports
        if len(act.rids) == 2 and act.rids[0] not in gone and act.rids[1] in gone:
            end_tc = gone[act.rids[1]].tc
            self.fsw.timers.call_at(now, lambda t: self.fsw.handle_tc(end_tc, t))

    def _phase_changed(self, old: "Phase", new: "Phase", now: float) -> None:
        self.plan.prune(now)
        c = self.plan.audit(self.config.budget(new), now)
        if c is not None:
            self.fsw.emit("PLAN_CONFLICT", now, PLAN_EVT_BUDGET=c.budget, PLAN_EVT_AT=c.at, PLAN_EVT_OVER=c.over,
                          PLAN_EVT_LIMIT=c.limit)

    def _hk(self, now: float) -> dict[str, Any]:
        live = [a for a in self.plan.activities if a.end > now]
        return {"PLAN_COUNT": len(live), "PLAN_REFUSED": self.refused,
                "PLAN_PEAK_W": self.plan.peak(self.budget, now)}
