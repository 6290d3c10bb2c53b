"""Activity planning: budgets over time windows, refusals that say which budget, when and by how much."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fsw.core.planning import Activity, Plan, PhaseBudget, PlanningConfig, parse_planning
from fsw.core.schedule import decode_summary_report
from fsw.core.state import MemoryStore
from fsw.dictionary import DictionaryError, load_dictionary
from fsw.protocol.pus import PusTc
from tests.conftest import examples
from tests.unit.test_schedule import T0, Harness

D = load_dictionary()
PLANNING = (Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference" / "planning.yaml").read_text()
CFG = parse_planning(PLANNING, D)
PAYLOADS = [s for s in D.systems_of_kind("payload")]


def power_of(unit: str, mode: str) -> float:
    return float(D.system(unit).power_w.get(mode, 0.0))


# -- the planning file -------------------------------------------------------------------------------------
def test_reference_planning_file_is_valid_and_uses_dictionary_power() -> None:
    surface = CFG.budget(D.phases["SURFACE"])
    assert surface.power_w == D.phases["SURFACE"].power_w
    assert set(surface.baseline) == {s.name for s in PAYLOADS}
    assert CFG.rate("LUSEE", "SCIENCE") > CFG.rate("LUSEE", "ANALOG") > 0
    assert CFG.budget(D.phases["LAUNCH"]).baseline == {}  # not listed: everything OFF


@pytest.mark.parametrize("text, entry, words", [
    ("units: {MARS: {}}", "units.MARS", "not a unit"),
    ("units: {PDU: {}}", "units.PDU", "not a payload"),
    ("units: {FSS: {data_rate_bps: {DANCE: 5}}}", "units.FSS.data_rate_bps.DANCE", "not a mode"),
    ("units: {FSS: {data_rate_bps: {SCIENCE: -5}}}", "units.FSS.data_rate_bps.SCIENCE", "non-negative"),
    ("phases: {BRUNCH: {}}", "phases.BRUNCH", "not a phase"),
    ("phases: {CRUISE: {baseline: {LISTER: DRILL}}}", "phases.CRUISE.baseline.LISTER", "does not allow"),
    ("phases: {NIGHT_SAFE: {other_w: 15, baseline: {FSS: SURVIVAL}}}", "phases.NIGHT_SAFE", "baseline alone"),
    ("phases: {SURFACE: {data_bytes_per_day: 0}}", "phases.SURFACE.data_bytes_per_day", "positive"),
    ("phases: {SURFACE: {data_bytes_per_day: 4.0e8}}", "phases.SURFACE.data_bytes_per_day", "is text"),
    ("phases: {SURFACE: {power_w: 5}}", "phases.SURFACE", "unknown key"),
    ("colour: blue", "(top level)", "unknown key"),
    ("units: [1, 2", "(file)", "not valid YAML"),
])
def test_planning_file_errors_name_the_entry(text: str, entry: str, words: str) -> None:
    with pytest.raises(DictionaryError) as exc:
        parse_planning(text, D)
    assert (exc.value.file, exc.value.entry) == ("planning.yaml", entry)
    assert words in exc.value.problem


# -- the pure plan ------------------------------------------------------------------------------------------
def test_power_conflict_reports_the_worst_instant_and_the_overage() -> None:
    plan = Plan(power_of, CFG.rate)
    budget = CFG.budget(D.phases["PRELAUNCH"])  # 60 W, nothing on outside activities
    plan.add(Activity(1, "LISTER", "DRILL", 100, 1000))
    plan.add(Activity(2, "LUSEE", "SCIENCE", 200, 2000))
    c = plan.check(Activity(3, "LMS", "SCIENCE", 50, 700), budget)
    assert c is not None and c.budget == "POWER"
    assert (c.at, c.limit) == (200, 60.0)
    assert c.over == pytest.approx(40 + 13.5 + 11 - 60)
    assert c.failure_code == "POWER_BUDGET" and c.failure_data == 4500  # mW
    assert plan.check(Activity(3, "LMS", "SCIENCE", 1000, 1500), budget) is None  # after the drill


def test_data_conflict_names_the_day_and_the_bytes() -> None:
    plan = Plan(power_of, CFG.rate, CFG.day_s)
    budget = CFG.budget(D.phases["SURFACE"])
    day = 5 * 86400
    c = plan.check(Activity(1, "LUSEE", "SCIENCE", day + 3600, day + 3600 + 20 * 3600), budget)
    base = sum(CFG.rate(u, m) for u, m in budget.baseline.items()) * 86400
    extra = (CFG.rate("LUSEE", "SCIENCE") - CFG.rate("LUSEE", "ANALOG")) * 20 * 3600
    over = (base + extra) / 8 - budget.data_bytes_per_day
    assert c is not None and (c.budget, c.at, c.limit) == ("DATA", day + 3600, budget.data_bytes_per_day)
    assert c.over == pytest.approx(over) and c.failure_data == math.ceil(c.over)
    assert plan.check(Activity(1, "LUSEE", "SCIENCE", day + 3600, day + 3600 + 10 * 3600), budget) is None


def test_one_mode_at_a_time_and_phase_rules() -> None:
    plan = Plan(power_of, CFG.rate)
    cruise = CFG.budget(D.phases["CRUISE"])
    plan.add(Activity(1, "FSS", "CHECKOUT", 100, 200))
    busy = plan.check(Activity(2, "FSS", "SURVIVAL", 150, 300), cruise)
    assert busy is not None and (busy.budget, busy.at, busy.over, busy.failure_code) == ("UNIT_BUSY", 150, 50, "BUSY")
    assert plan.check(Activity(2, "FSS", "SURVIVAL", 200, 300), cruise) is None  # back to back is fine
    forbidden = plan.check(Activity(2, "LISTER", "DRILL", 500, 600), cruise)
    assert forbidden is not None and forbidden.failure_code == "PHASE_FORBIDS"
    descent = CFG.budget(D.phases["DESCENT"])  # payload power off
    assert plan.check(Activity(2, "LUSEE", "ANALOG", 500, 600), descent).budget == "PHASE"


UNIT_MODES = [(s.name, m) for s in PAYLOADS for m in s.modes]
requests = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from(UNIT_MODES), st.integers(0, 300), st.integers(1, 120)),
    st.tuples(st.just("cancel"), st.integers(0, 20))), max_size=25)


@given(requests, st.integers(5, 80), st.integers(0, 10), st.integers(50, 3000),
       st.dictionaries(st.sampled_from([s.name for s in PAYLOADS]), st.integers(0, 3)),
       st.dictionaries(st.sampled_from(UNIT_MODES), st.integers(0, 300)))
@settings(max_examples=examples(200))
def test_no_accepted_plan_ever_exceeds_a_budget(ops, power_w, other_w, data_budget, base_idx, rates) -> None:
    """Random requests against random budgets; every accepted plan is checked second by second."""
    day = 100  # short days so that activities cross day boundaries
    baseline = {u: D.system(u).modes[i % len(D.system(u).modes)] for u, i in base_idx.items()}
    budget = PhaseBudget("TEST", float(power_w), float(other_w), baseline, float(data_budget))
    rate = {u: {} for u, _ in UNIT_MODES}
    for (u, m), r in rates.items():
        rate[u][m] = float(r)
    plan = Plan(power_of, lambda u, m: rate[u].get(m, 0.0), day)

    def mode_at(acts: list[Activity], unit: str, t: int) -> str | None:
        covering = [a.mode for a in acts if a.unit == unit and a.start <= t < a.end]
        assert len(covering) <= 1, "a unit in two modes at once"
        return covering[0] if covering else baseline.get(unit)

    def watts(acts: list[Activity], t: int) -> float:
        return other_w + sum(power_of(u, m) for u in {x for x, _ in UNIT_MODES}
                             for m in [mode_at(acts, u, t)] if m is not None)

    def day_bytes(acts: list[Activity], k: int) -> float:
        return sum(rate[u].get(m, 0.0) for t in range(k * day, (k + 1) * day)
                   for u in {x for x, _ in UNIT_MODES} for m in [mode_at(acts, u, t)] if m is not None) / 8

    next_id = 1
    for op in ops:
        if op[0] == "cancel":
            if plan.activities:
                plan.remove(plan.activities[op[1] % len(plan.activities)].id)
            continue
        _, (unit, mode), start, dur = op
        cand = Activity(next_id, unit, mode, start, start + dur)
        next_id += 1
        c = plan.check(cand, budget)
        event("accepted" if c is None else f"refused: {c.budget}")
        if c is None:
            plan.add(cand)
        elif c.budget == "POWER":  # a refusal is real: the reported instant is over by the reported amount
            assert watts(plan.activities + [cand], int(c.at)) == pytest.approx(c.limit + c.over)
            assert c.over > 0 and cand.start <= c.at < cand.end
        elif c.budget == "DATA":
            assert day_bytes(plan.activities + [cand], int(c.at) // day) == pytest.approx(c.limit + c.over)
            assert c.over > 0
        acts = plan.activities
        # the invariant: inside every accepted activity, power and each touched day's data fit
        for t in sorted({t for a in acts for t in range(int(a.start), int(a.end))}):
            assert watts(acts, t) <= power_w + 1e-6
        for k in sorted({k for a in acts for k in range(int(a.start) // day, (int(a.end) - 1) // day + 1)}):
            assert day_bytes(acts, k) <= data_budget + 1e-3


# -- in the flight software ----------------------------------------------------------------------------------
def mode_value(unit: str, mode: str) -> int:
    return D.system(unit).modes.index(mode)


def plan(h: Harness, unit: str, mode: str, start: float, duration: int) -> PusTc:
    return h.command("PLAN_ACTIVITY", unit=unit, mode=mode_value(unit, mode), start=start, duration_s=duration)


def surface(store: MemoryStore | None = None, phase: str = "SURFACE", t0: float = T0) -> Harness:
    return Harness(store, t0=t0, planning=PLANNING, initial_phase=phase)


def test_an_accepted_activity_becomes_two_scheduled_mode_commands() -> None:
    h = surface()
    tc = plan(h, "LUSEE", "SCIENCE", T0 + 100, 600)
    assert [v[0] for v in h.verif(tc)] == [1, 3, 7]
    (_, e), = h.events("PLAN_ACCEPTED")
    assert e == {"PLAN_EVT_ID": 1, "PLAN_EVT_UNIT": "LUSEE", "PLAN_EVT_MODE": mode_value("LUSEE", "SCIENCE"),
                 "PLAN_EVT_START": T0 + 100, "PLAN_EVT_DURATION": 600}
    entries = list(h.sched.schedule)
    cmd = D.command("LUSEE_SET_MODE")
    assert [(a.release, D.args_codec(cmd).decode(a.tc.app_data)["mode"]) for a in entries] == [
        (T0 + 100, "SCIENCE"), (T0 + 700, "ANALOG")]  # back to the SURFACE baseline
    hk = h.hk()
    base = CFG.budget(D.phases["SURFACE"])
    assert hk["PLAN_COUNT"] == 1
    assert hk["PLAN_PEAK_W"] == pytest.approx(Plan(power_of, CFG.rate).load_at(0, base) + 13.5 - 3.4, rel=1e-6)
    h.fsw.link_changed("lusee", True, h.now)
    h.run(800)
    routed = [(t, p) for t, p in h.to_units["lusee"] if isinstance(p, PusTc) and p.service == 8]
    assert [t for t, _ in routed] == [T0 + 100, T0 + 700]
    assert h.hk()["PLAN_COUNT"] == 0


def test_power_refusal_carries_the_overage_in_failure_data_and_an_event() -> None:
    h = surface(phase="NIGHT_SAFE")  # 20 W: FSS survival 8 W + heaters 10 W leave 2 W
    tc = plan(h, "FSS", "HANDOVER", T0 + 60, 600)
    assert h.verif(tc)[-1] == (4, "POWER_BUDGET", 5000)  # 15 - 8 - 2 = 5 W over, in mW
    (_, e), = h.events("PLAN_REJECTED")
    assert e["PLAN_EVT_BUDGET"] == "POWER" and e["PLAN_EVT_UNIT"] == "FSS"
    assert (e["PLAN_EVT_AT"], e["PLAN_EVT_LIMIT"]) == (T0 + 60, 20.0)
    assert e["PLAN_EVT_OVER"] == pytest.approx(5.0)
    assert len(h.sched.schedule) == 0 and h.hk()["PLAN_REFUSED"] == 1


def test_data_refusal_says_which_day_and_how_many_bytes() -> None:
    h = surface()
    tc = plan(h, "LUSEE", "SCIENCE", T0 + 60, 20 * 3600)
    code, data = h.verif(tc)[-1][1:]
    (_, e), = h.events("PLAN_REJECTED")
    assert code == "POWER_BUDGET" and e["PLAN_EVT_BUDGET"] == "DATA"
    assert (e["PLAN_EVT_AT"], e["PLAN_EVT_LIMIT"]) == (T0 + 60, 4e8)
    assert data == pytest.approx(e["PLAN_EVT_OVER"], rel=1e-6)  # the event's f32 against the exact u32


@pytest.mark.parametrize("unit, mode, start, duration, phase, code", [
    ("LISTER", "DRILL", T0 + 10, 100, "CRUISE", "PHASE_FORBIDS"),
    ("FSS", "SCIENCE", T0 - 10, 100, "SURFACE", "BAD_TIME"),
])
def test_other_refusals(unit, mode, start, duration, phase, code) -> None:
    h = surface(phase=phase)
    tc = plan(h, unit, mode, start, duration)
    assert h.verif(tc)[-1][:2] == (4, code)
    assert h.events("PLAN_REJECTED") and len(h.sched.schedule) == 0


def test_overlap_on_one_payload_and_bad_mode_are_refused() -> None:
    h = surface()
    plan(h, "LISTER", "DRILL", T0 + 100, 1000)
    tc = plan(h, "LISTER", "MEASURE", T0 + 500, 1000)
    assert h.verif(tc)[-1] == (4, "BUSY", 600)
    tc = h.command("PLAN_ACTIVITY", unit="LMS", mode=9, start=T0 + 100, duration_s=10)
    assert h.verif(tc) == [(2, "ARG_OUT_OF_RANGE", 9)]


def test_a_full_schedule_refuses_the_plan() -> None:
    h = Harness(capacity=3, planning=PLANNING, initial_phase="SURFACE")
    plan(h, "LMS", "SCIENCE", T0 + 100, 100)
    tc = plan(h, "LUSEE", "ON", T0 + 100, 100)
    assert h.verif(tc)[-1][:2] == (4, "SCHEDULE_FULL")
    assert h.events("PLAN_REJECTED")[-1][1]["PLAN_EVT_BUDGET"] == "SCHEDULE"
    assert len(h.planner.plan.activities) == 1


def test_cancel_before_and_during_the_activity() -> None:
    h = surface()
    h.fsw.link_changed("lms", True, h.now)
    plan(h, "LMS", "SCIENCE", T0 + 100, 1000)
    plan(h, "LUSEE", "ON", T0 + 100, 1000)
    h.command("PLAN_CANCEL", activity=2)
    assert [a.tc.apid for a in h.sched.schedule] == [D.system("LMS").apid] * 2
    h.run(200)  # LMS is in SCIENCE now
    tc = h.command("PLAN_CANCEL", activity=1)
    assert [v[0] for v in h.verif(tc)] == [1, 3, 7]
    modes = [D.args_codec(D.command("LMS_SET_MODE")).decode(p.app_data)["mode"]
             for _, p in h.to_units["lms"] if isinstance(p, PusTc) and p.service == 8]
    assert modes == ["SCIENCE", "SAFE"]  # returned to its baseline at once
    assert len(h.sched.schedule) == 0 and [e["PLAN_EVT_ID"] for _, e in h.events("PLAN_CANCELLED")] == [2, 1]
    unknown = h.command("PLAN_CANCEL", activity=7)
    assert h.verif(unknown)[-1] == (4, "UNKNOWN_ID", 7)


def test_the_plan_survives_a_restart() -> None:
    store = MemoryStore()
    h = surface(store)
    plan(h, "LISTER", "DRILL", T0 + 100, 1000)
    h2 = surface(store, t0=T0 + 50)
    tc = plan(h2, "LISTER", "MEASURE", T0 + 600, 100)
    assert h2.verif(tc)[-1][:2] == (4, "BUSY")
    ok = plan(h2, "LISTER", "MEASURE", T0 + 1100, 100)
    assert [v[0] for v in h2.verif(ok)] == [1, 3, 7]
    h2.command("SCHED_SUMMARY_ALL")
    summary = [tm for _, tm in h2.tm if (tm.service, tm.subservice) == (11, 13)][-1]
    rids = [rid for _, rid in decode_summary_report(summary.source_data)]
    assert len(set(rids)) == 4  # the planner's request ids stay unique across the restart
    assert h2.events("PLAN_ACCEPTED")[0][1]["PLAN_EVT_ID"] == 2


def test_a_phase_change_that_breaks_the_plan_is_reported() -> None:
    h = surface()
    plan(h, "LUSEE", "SCIENCE", T0 + 100, 1000)
    h.command("SET_PHASE", phase="NIGHT_SAFE")
    (_, e), = h.events("PLAN_CONFLICT")
    assert e["PLAN_EVT_BUDGET"] == "PHASE" and e["PLAN_EVT_AT"] == T0 + 100


def test_budget_config_can_be_given_as_an_object() -> None:
    cfg = PlanningConfig()
    h = Harness(planning=cfg)
    assert h.planner.config is cfg
