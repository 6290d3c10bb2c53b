"""Relay-satellite deploy, end to end in simulated time: ground -> flight software -> release controllers.

Scenarios of docs/deploy.md: the nominal two-step release of each unit, the
redundant actuator, both actuators failing, spacing, arm time-out, phases,
inhibits, unknown state and override, restarts and kills at every write,
faulty switches, silent and babbling controllers, PDU trips.  Every scenario
checks the hardware's own record of what fired (``model.fire_log``), not
only what the flight software says.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from fsw.core.deploy import DeployOptions, record_key, validate_record
from fsw.core.state import MemoryStore, load_record, seal
from fsw.dictionary import load_dictionary
from tests.sim.deploy_bench import UNITS, DeployBench

OK = [1, 3, 7]
FIRE_OK_1 = [1, 3, 5, 7]           # accepted, started, progress (attempt 1), completed
FIRE_OK_2 = [1, 3, 5, 5, 7]        # ... and progress (attempt 2)


def bench(**kw) -> DeployBench:
    kw.setdefault("deploy", {"spacing_s": 300.0})
    b = DeployBench(**kw)
    b.settle_safe()
    return b


def subs(b: DeployBench, tc) -> list[int]:
    return [s for s, _ in b.reports(tc)]


def rejected_with(b: DeployBench, tc) -> str | None:
    """The failure code of an acceptance failure (the only report a rejected TC gets)."""
    r = b.reports(tc)
    assert len(r) == 1 and r[0][0] == 2, r
    return r[0][1]


def cmd(b: DeployBench, name: str, unit: str, run: float = 0.5, **args):
    tc = b.send(name, unit=unit, **args)
    b.run(run)
    return tc


def fire_and_wait(b: DeployBench, unit: str, timeout: float = 90.0):
    tc = b.send("DEPLOY_FIRE", unit=unit)
    b.run_until(lambda: any(s in (7, 8) for s in subs(b, tc)) or any(s == 2 for s in subs(b, tc)), timeout)
    return tc


def record(b: DeployBench, unit: str) -> dict | None:
    return validate_record(load_record(b.store, record_key(unit)), unit)


def names(b: DeployBench, unit: str | None = None) -> list[str]:
    """The deploy events ground received, in order (optionally for one unit)."""
    return [e["_name"] for e in b.events() if e["_name"].startswith("DEPLOY_")
            and (unit is None or e.get("EVT_DEP_UNIT") == unit)]


def hw_safe(b: DeployBench, unit: str) -> bool:
    m = b.models[unit]
    return not (m.bus_relay or m.arm_relay or m.fire_switch or b.pdu_on(unit))


# ---------------------------------------------------------------------------------------------
# nominal
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pdu", ["real", "fake"])
def test_nominal_alpine_split_spool_release(pdu: str) -> None:
    b = bench(pdu=pdu)
    m = b.models["ALPINE"]
    arm = b.arm("ALPINE")
    assert subs(b, arm) == OK
    assert b.unit_state("ALPINE") == "ARMED"
    assert m.bus_relay and m.arm_relay and not m.fire_switch and b.pdu_on("ALPINE")   # two inhibits removed
    b.run(1.0)
    hk = b.deploy_hk("ALPINE")
    assert hk["DEP_STATE"] == "ARMED" and 115 <= hk["DEP_ARM_LEFT"] <= 120 and hk["DEP_BUS_RELAY"]
    t0 = b.now
    fire = fire_and_wait(b, "ALPINE", 10)
    assert subs(b, fire) == FIRE_OK_1
    assert b.unit_state("ALPINE") == "RELEASED"
    # the hardware fired once, actuator A, with every inhibit removed, and released
    assert [(f.actuator, f.bus_power, f.bus_relay, f.arm_relay, f.released) for f in m.fire_log] == \
        [("A", True, True, True, True)]
    assert m.released_by == "A" and m.released_at - t0 < 0.1
    rel = b.events("DEPLOY_RELEASED")[-1]
    assert rel["EVT_DEP_ACTUATOR"] == "A" and rel["EVT_DEP_ATTEMPT"] == 1
    assert 0 < rel["EVT_DEP_SEP_MS"] < 1000  # inside Alpine's expected 1 s
    rec = record(b, "ALPINE")
    assert rec["state"] == "RELEASED" and rec["attempts"] == 1 and rec["actuator"] == "A"
    assert rec["fired_at"] <= rec["released_at"]
    # afterwards every inhibit is back in place, and housekeeping says so
    b.run(2.0)
    assert names(b, "ALPINE") == ["DEPLOY_SAFED", "DEPLOY_ARMED", "DEPLOY_FIRING", "DEPLOY_RELEASED",
                                  "DEPLOY_SAFED"]
    assert hw_safe(b, "ALPINE")
    hk = b.deploy_hk("ALPINE")
    assert hk["DEP_STATE"] == "RELEASED" and hk["DEP_HW_SAFE"] and hk["DEP_SW1_OPEN"] and hk["DEP_SW2_OPEN"]
    assert hk["DEP_ATTEMPTS"] == 1 and hk["DEP_ACTUATOR"] == "A" and hk["DEP_RELEASED_AT"] > 0
    # the controller's reports to the flight software's own commands stayed on board
    assert not [tm for _, tm in b.probe.log if tm.apid == m.system.apid and tm.service == 1]
    # the controller's own status and events did reach ground
    assert [tm for _, tm in b.probe.log if tm.apid == m.system.apid and tm.service == 3]
    assert b.events("ALPINE_SEPARATED", "ALPINE")
    # Lupine was never touched
    assert b.models["LUPINE"].fire_log == [] and b.unit_state("LUPINE") == "SAFE"


@pytest.mark.parametrize("pdu", ["real", "fake"])
def test_nominal_lupine_burn_wire_draws_30_w_for_seconds(pdu: str) -> None:
    b = bench(pdu=pdu)
    m = b.models["LUPINE"]
    assert subs(b, b.arm("LUPINE")) == OK
    fire = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(2.0)
    # burning: 30 W from the actuator bus, seen by the controller and by the PDU
    assert m.power_w(b.now) == pytest.approx(30.0)
    assert b.pdu_current("LUPINE") == pytest.approx(30.0 / 28.0)
    hk = b.deploy_hk("LUPINE")
    assert hk["DEP_STATE"] == "FIRING" and hk["DEP_FIRE_SW"]
    # the flight software's power controller reads the burn from the PDU's current sensor
    assert b.fsw.power.state("LUPINE").on
    assert b.fsw.power.state("LUPINE").current_a == pytest.approx(30 / 28, abs=0.02)
    assert hk["DEP_PDU_ON"] and hk["DEP_PDU_I"] == pytest.approx(30 / 28, abs=0.02)
    assert hk["DEP_ACT_A_I"] == pytest.approx(30 / 28, abs=0.002) and hk["DEP_ACT_B_I"] == 0
    b.run_until(lambda: 7 in subs(b, fire), 20)
    assert subs(b, fire) == FIRE_OK_1 and b.unit_state("LUPINE") == "RELEASED"
    # the wire parted after its release time: the current stopped before the end of the pulse
    assert m.fire_log[0].current_s == pytest.approx(4.0, abs=0.01)
    assert m.power_w(b.now) == 0.0
    sep = b.events("DEPLOY_RELEASED")[-1]["EVT_DEP_SEP_MS"]
    assert 4000 < sep < 10000  # seconds, inside Lupine's expected 10 s


# ---------------------------------------------------------------------------------------------
# redundancy and failure
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", UNITS)
def test_open_circuit_primary_is_recovered_on_the_redundant_actuator(unit: str) -> None:
    b = bench()
    m = b.models[unit]
    m.inject_open_circuit("A", b.now)
    b.arm(unit)
    fire = fire_and_wait(b, unit)
    assert subs(b, fire) == FIRE_OK_2
    assert b.unit_state(unit) == "RELEASED"
    assert [f.actuator for f in m.fire_log] == ["A", "B"]
    assert m.fire_log[0].current_s == 0 and m.fire_log[1].released and m.released_by == "B"
    b.run(1.0)
    assert names(b, unit)[1:] == ["DEPLOY_ARMED", "DEPLOY_FIRING", "DEPLOY_RETRY", "DEPLOY_FIRING",
                                  "DEPLOY_RELEASED", "DEPLOY_SAFED"]
    retry = b.events("DEPLOY_RETRY")[0]
    assert retry["EVT_DEP_ACTUATOR"] == "B" and retry["EVT_DEP_REASON"] == "NO_SEPARATION"
    # the redundant actuator waited for the cool-down
    firing = [e["_t"] for e in b.events("DEPLOY_FIRING")]
    cfg = b.d.system(unit).config
    assert firing[1] - firing[0] >= cfg["separation"]["expected_s"] + cfg["cooldown_s"]
    assert b.events(f"{unit}_NO_CURRENT", unit)  # the controller reported the dead actuator
    assert record(b, unit)["attempts"] == 2 and record(b, unit)["actuator"] == "B"


def test_stuck_release_fails_after_both_actuators_and_blocks_until_override() -> None:
    b = bench()
    m = b.models["ALPINE"]
    m.inject_stuck_release()
    b.arm("ALPINE")
    fire = fire_and_wait(b, "ALPINE")
    assert b.reports(fire)[-1] == (8, "EXECUTION_FAILED")
    assert b.failure_data(fire)[-1] == b.d.lander.enums["DEPLOY_REASON"].values["NO_SEPARATION"]
    assert b.unit_state("ALPINE") == "FAILED"
    assert [f.actuator for f in m.fire_log] == ["A", "B"] and m.released_at is None
    failed = b.events("DEPLOY_FAILED")
    assert len(failed) == 1 and failed[0]["EVT_DEP_REASON"] == "NO_SEPARATION"
    assert record(b, "ALPINE")["state"] == "FAILED"
    b.run(1.0)
    assert hw_safe(b, "ALPINE")
    # nothing more fires without ground's decision
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "ALREADY_DONE"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "ALREADY_DONE"
    # a restart keeps FAILED
    b.restart()
    b.settle_safe()
    assert b.unit_state("ALPINE") == "FAILED"
    # ground looked (cameras): still stowed; it overrides, and may arm again
    ov = cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="STOWED")
    assert subs(b, ov) == OK and b.unit_state("ALPINE") == "SAFE"
    assert record(b, "ALPINE")["overrides"] == 1 and record(b, "ALPINE")["attempts"] == 2
    b.settle_safe()
    assert subs(b, b.arm("ALPINE")) == OK


@pytest.mark.parametrize("pdu", ["real", "fake"])
def test_pdu_trip_during_burn_fails_the_deploy(pdu: str) -> None:
    b = bench(pdu=pdu)
    m = b.models["LUPINE"]
    b.arm("LUPINE")
    fire = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(1.0)
    b.short_circuit("LUPINE")
    b.run(3.0)
    assert b.unit_state("LUPINE") == "FAILED"
    assert b.reports(fire)[-1] == (8, "EXECUTION_FAILED")
    assert b.events("DEPLOY_FAILED")[-1]["EVT_DEP_REASON"] == "PDU_TRIP"
    assert m.released_at is None and len(m.fire_log) == 1  # no retry without actuator power
    assert any(e["EVT_DEP_REASON"] == "PDU_TRIP" for e in b.events("DEPLOY_FAULT"))


# ---------------------------------------------------------------------------------------------
# prerequisites, one at a time
# ---------------------------------------------------------------------------------------------

def test_spacing_between_alpine_and_lupine() -> None:
    b = bench(deploy={"spacing_s": 300.0})
    b.arm("ALPINE")
    fire_and_wait(b, "ALPINE", 10)
    t_fire = record(b, "ALPINE")["fired_at"]
    b.settle_safe()
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "LUPINE")) == "SPACING"
    b.run(t_fire + 299.0 - b.now)
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "LUPINE", run=0.2)) == "SPACING"
    b.run(t_fire + 300.5 - b.now)
    assert subs(b, b.arm("LUPINE")) == OK
    assert subs(b, fire_and_wait(b, "LUPINE", 20)) == FIRE_OK_1
    starts = [m.fire_log[0].t for m in b.models.values()]
    assert abs(starts[1] - starts[0]) >= 300.0


def test_default_spacing_is_one_deployment_orbit() -> None:
    # 100 x 8,700 km lunar orbit: a = 1737.4 + 4400 km, T = 2 pi sqrt(a^3 / mu) with mu = 4902.8 km^3/s^2
    import math
    a = 1737.4 + (100 + 8700) / 2
    period = 2 * math.pi * math.sqrt(a ** 3 / 4902.8)
    assert DeployOptions().spacing_s == pytest.approx(period, rel=0.01)


def test_spacing_is_kept_across_a_restart() -> None:
    b = bench(deploy={"spacing_s": 300.0})
    b.arm("ALPINE")
    fire_and_wait(b, "ALPINE", 10)
    b.restart()
    b.settle_safe()
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "LUPINE")) == "SPACING"


def test_arm_times_out() -> None:
    b = bench(deploy={"spacing_s": 300.0, "arm_timeout_s": 30.0})
    m = b.models["ALPINE"]
    b.arm("ALPINE")
    b.run(29.0)
    assert b.unit_state("ALPINE") == "ARMED"
    b.run(2.0)
    assert b.unit_state("ALPINE") == "SAFE"
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "ARM_TIMEOUT"
    b.run(1.0)
    assert hw_safe(b, "ALPINE")
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    assert m.fire_log == []


def test_fire_inside_the_arm_window_works() -> None:
    b = bench(deploy={"spacing_s": 300.0, "arm_timeout_s": 30.0})
    b.arm("ALPINE")
    b.run(28.0)
    assert subs(b, fire_and_wait(b, "ALPINE", 10)) == FIRE_OK_1


def test_phase_forbids_arm_fire_and_override_but_never_disarm() -> None:
    b = bench(phase="LUNAR_ORBIT")
    for name in ("DEPLOY_ARM", "DEPLOY_FIRE"):
        assert rejected_with(b, cmd(b, name, "ALPINE")) == "PHASE_FORBIDS"
    assert rejected_with(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="STOWED")) == "PHASE_FORBIDS"
    assert subs(b, cmd(b, "DEPLOY_DISARM", "ALPINE")) == OK
    assert all(m.fire_log == [] for m in b.models.values())
    # into DEPLOY, the same commands go through
    sp = b.send("SET_PHASE", phase="DEPLOY")
    b.run(0.5)
    assert subs(b, sp) == OK
    b.settle_safe()
    assert subs(b, b.arm("ALPINE")) == OK


def test_phase_change_clears_the_arm_and_is_refused_while_firing() -> None:
    b = bench()
    b.arm("ALPINE")
    sp = b.send("SET_PHASE", phase="DEPLOY")
    b.run(0.5)
    assert subs(b, sp) == OK
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "PHASE_CHANGE"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    # while Lupine's wire burns, no phase change
    b.settle_safe()
    b.arm("LUPINE")
    b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(1.0)
    sp = b.send("SET_PHASE", phase="LUNAR_ORBIT")  # its 45 W budget takes the 30 W burn: the deploy veto decides
    b.run(0.5)
    assert b.reports(sp)[-1] == (4, "BUSY")
    assert b.fsw.phases.current.name == "DEPLOY"


def test_ground_safing_a_controller_clears_the_arm() -> None:
    b = bench()
    b.arm("ALPINE")
    safe = b.send("ALPINE_SAFE")  # allowed: safing is never hazardous
    b.run(0.5)
    assert subs(b, safe) == OK
    assert b.unit_state("ALPINE") == "SAFE"
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "INHIBIT_LOST"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    assert b.models["ALPINE"].fire_log == []


@pytest.mark.parametrize("relay_cmd", ["ALPINE_BUS_ENABLE", "ALPINE_ARM", "ALPINE_FIRE"])
def test_ground_cannot_command_the_relays_directly(relay_cmd: str) -> None:
    b = bench()
    m = b.models["ALPINE"]
    b.arm("ALPINE")
    args = {"actuator": "A"} if relay_cmd.endswith("FIRE") else {}
    tc = b.send(relay_cmd, **args)
    b.run(0.5)
    assert rejected_with(b, tc) == "ONBOARD_ONLY"
    assert b.events("DEPLOY_REJECTED")[-1]["EVT_DEP_CODE"] == "ONBOARD_ONLY"
    # a hazardous command other than the armed unit's FIRE clears the arm
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "OTHER_HAZARD"
    assert m.fire_log == [] and [r for _, r in m.commands_seen if r == "FIRE"] == []


def test_ping_and_housekeeping_commands_still_reach_a_controller() -> None:
    b = bench()
    ping = b.send("PING", "ALPINE")
    b.run(0.5)
    assert subs(b, ping) == OK


def test_controller_fault_refuses_arm() -> None:
    b = bench()
    b.models["ALPINE"].inject_fault("controller_fault")
    b.run(1.5)
    arm = cmd(b, "DEPLOY_ARM", "ALPINE")
    assert rejected_with(b, arm) == "FAULT_ACTIVE"
    assert any(e["EVT_DEP_REASON"] == "CONTROLLER_FAULT" for e in b.events("DEPLOY_FAULT"))
    assert b.deploy_hk("ALPINE")["DEP_FAULTS"] & (1 << (b.d.lander.enums["DEPLOY_REASON"].values["CONTROLLER_FAULT"] - 1))


def test_failed_switch_stuck_open_blocks_arm() -> None:
    b = bench()
    b.models["ALPINE"].inject_failed_switch(0, "open", b.now)
    b.run(1.5)
    arm = cmd(b, "DEPLOY_ARM", "ALPINE")
    assert rejected_with(b, arm) == "FAULT_ACTIVE"
    from fsw.core.deploy import ARM_CONDITIONS
    mask = b.failure_data(arm)[0]
    assert {n for i, (n, _) in enumerate(ARM_CONDITIONS) if mask >> i & 1} == {"switches_closed", "no_fault"}
    assert any(e["EVT_DEP_REASON"] == "SWITCH_DISAGREE" for e in b.events("DEPLOY_FAULT"))


def test_rejection_data_names_every_unmet_condition() -> None:
    b = bench(phase="LUNAR_ORBIT")
    b.models["ALPINE"].silent = True
    b.run(5.0)
    arm = cmd(b, "DEPLOY_ARM", "ALPINE")
    assert rejected_with(b, arm) == "PHASE_FORBIDS"
    from fsw.core.deploy import ARM_CONDITIONS
    mask = b.failure_data(arm)[0]
    unmet = {name for i, (name, _) in enumerate(ARM_CONDITIONS) if mask >> i & 1}
    assert unmet == {"phase_allows", "tm_fresh"}


# ---------------------------------------------------------------------------------------------
# commands out of order, duplicated, replayed
# ---------------------------------------------------------------------------------------------

def test_fire_without_arm_is_refused() -> None:
    b = bench()
    for unit in UNITS:
        assert rejected_with(b, cmd(b, "DEPLOY_FIRE", unit)) == "NOT_ARMED"
    assert all(m.fire_log == [] for m in b.models.values())


def test_second_arm_clears_the_first_and_is_refused_until_safe() -> None:
    b = bench()
    b.arm("ALPINE")
    again = cmd(b, "DEPLOY_ARM", "ALPINE", run=0.0)
    assert rejected_with(b, again) == "BUSY"
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "OTHER_HAZARD"
    assert b.unit_state("ALPINE") == "SAFE"
    b.settle_safe()
    assert subs(b, b.arm("ALPINE")) == OK


def test_fire_for_the_other_unit_clears_the_arm() -> None:
    b = bench()
    b.arm("ALPINE")
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "LUPINE")) == "NOT_ARMED"
    assert b.unit_state("ALPINE") == "SAFE"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    assert all(m.fire_log == [] for m in b.models.values())


def test_arming_the_other_unit_clears_the_first() -> None:
    b = bench()
    b.arm("ALPINE")
    lup = cmd(b, "DEPLOY_ARM", "LUPINE", run=0.0)
    assert rejected_with(b, lup) == "BUSY"  # Alpine's channel is still being switched off
    assert b.unit_state("ALPINE") == "SAFE"
    b.settle_safe()
    assert subs(b, b.arm("LUPINE")) == OK


def test_disarm_clears_and_is_idempotent() -> None:
    b = bench()
    assert subs(b, cmd(b, "DEPLOY_DISARM", "LUPINE")) == OK  # nothing armed: still fine
    b.arm("ALPINE")
    assert subs(b, cmd(b, "DEPLOY_DISARM", "LUPINE")) == OK  # any unit's DISARM clears every arm
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "DISARM"
    b.run(1.0)
    assert hw_safe(b, "ALPINE") and b.unit_state("ALPINE") == "SAFE"


def test_disarm_aborts_a_burn_in_progress() -> None:
    b = bench()
    m = b.models["LUPINE"]
    b.arm("LUPINE")
    fire = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(2.0)
    assert m.power_w(b.now) == 30.0
    dis = cmd(b, "DEPLOY_DISARM", "LUPINE")
    assert subs(b, dis) == OK
    assert m.power_w(b.now) == 0.0 and hw_safe(b, "LUPINE") and m.released_at is None
    assert b.unit_state("LUPINE") == "FAILED" and record(b, "LUPINE")["reason"] == "DISARM"
    assert b.reports(fire)[-1] == (8, "EXECUTION_FAILED")
    assert b.failure_data(fire)[-1] == b.d.lander.enums["DEPLOY_REASON"].values["DISARM"]
    b.run(60.0)
    assert len(m.fire_log) == 1  # no retry after an abort


def test_replayed_fire_after_release_does_not_fire_again() -> None:
    b = bench()
    b.arm("ALPINE")
    fire = b.tc("DEPLOY_FIRE", unit="ALPINE")
    b.send_tc(fire)
    b.run(3.0)
    assert b.unit_state("ALPINE") == "RELEASED"
    for _ in range(3):
        b.send_tc(fire)  # the very same bytes
        b.run(0.5)
    assert [s for s, _ in b.reports(fire)].count(2) == 3
    assert {c for s, c in b.reports(fire) if s == 2} == {"ALREADY_DONE"}
    arm = cmd(b, "DEPLOY_ARM", "ALPINE")
    assert rejected_with(b, arm) == "ALREADY_DONE"
    assert len(b.models["ALPINE"].fire_log) == 1


def test_duplicate_fire_while_firing_is_refused() -> None:
    b = bench()
    b.arm("LUPINE")
    first = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(1.0)
    dup = cmd(b, "DEPLOY_FIRE", "LUPINE")
    assert rejected_with(b, dup) == "NOT_ARMED"  # the arm was used by the first FIRE
    b.run_until(lambda: 7 in subs(b, first), 20)
    assert len(b.models["LUPINE"].fire_log) == 1


def test_every_rejection_gets_a_failure_report_and_two_events() -> None:
    b = bench(phase="CRUISE")
    sent = [cmd(b, "DEPLOY_ARM", "ALPINE"), cmd(b, "DEPLOY_FIRE", "LUPINE"),
            cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="RELEASED")]
    for tc in sent:
        assert rejected_with(b, tc) == "PHASE_FORBIDS"
    rej = b.events("TC_REJECTED")
    dep = b.events("DEPLOY_REJECTED")
    assert [e["REJ_CODE"] for e in rej] == ["PHASE_FORBIDS"] * 3
    assert [(e["EVT_DEP_UNIT"], e["EVT_DEP_FUNCTION"], e["EVT_DEP_CODE"]) for e in dep] == [
        ("ALPINE", 16, "PHASE_FORBIDS"), ("LUPINE", 17, "PHASE_FORBIDS"), ("ALPINE", 19, "PHASE_FORBIDS")]
    b.run_until(lambda: b.deploy_hk("LUPINE") is not None, 60.0)  # cruise: housekeeping is slow
    assert b.deploy_hk("ALPINE")["DEP_REJECTS"] == 2 and b.deploy_hk("LUPINE")["DEP_REJECTS"] == 1
    assert b.fsw.counters.tc_rejected == 3


# ---------------------------------------------------------------------------------------------
# durable state, restarts, kills
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "corrupt", "truncated", "other_unit"])
def test_lost_record_reads_unknown_until_ground_override(damage: str) -> None:
    b = bench()
    key = record_key("ALPINE")
    if damage == "missing":
        del b.store.data[key]
    elif damage == "corrupt":
        raw = bytearray(b.store.data[key])
        raw[12] ^= 0x40
        b.store.data[key] = bytes(raw)
    elif damage == "truncated":
        b.store.data[key] = b.store.data[key][:-3]
    else:
        b.store.data[key] = b.store.data[record_key("LUPINE")]  # sealed fine, but Lupine's
    b.restart()
    b.settle_safe()
    assert b.unit_state("ALPINE") == "UNKNOWN" and b.unit_state("LUPINE") == "SAFE"
    unk = b.events("DEPLOY_STATE_UNKNOWN")
    assert unk[-1]["EVT_DEP_REASON"] == ("RECORD_MISSING" if damage == "missing" else "RECORD_CORRUPT")
    b.run(1.0)
    assert b.deploy_hk("ALPINE")["DEP_STATE"] == "UNKNOWN"
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "STATE_UNKNOWN"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "STATE_UNKNOWN"
    # the other unit cannot show its spacing from a unit whose history is lost
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "LUPINE")) == "SPACING"
    # a restart does not make it known
    b.restart()
    b.settle_safe()
    assert b.unit_state("ALPINE") == "UNKNOWN"
    # ground overrides (a hazardous command itself: phase-checked)
    ov = cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="STOWED")
    assert subs(b, ov) == OK
    assert b.events("DEPLOY_OVERRIDDEN")[-1]["EVT_DEP_STATE"] == "SAFE"
    assert record(b, "ALPINE")["state"] == "SAFE" and record(b, "ALPINE")["overrides"] == 1
    b.settle_safe()
    b.arm("ALPINE")
    assert subs(b, fire_and_wait(b, "ALPINE", 10)) == FIRE_OK_1


def test_override_of_a_known_state_is_refused() -> None:
    b = bench()
    assert rejected_with(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="RELEASED")) == "WRONG_MODE"
    b.arm("ALPINE")
    fire_and_wait(b, "ALPINE", 10)
    assert rejected_with(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="STOWED")) == "WRONG_MODE"


def test_unprovisioned_store_reads_unknown_for_both_units() -> None:
    b = bench(provisioned=False)
    assert [b.unit_state(u) for u in UNITS] == ["UNKNOWN", "UNKNOWN"]
    for u in UNITS:
        assert rejected_with(b, cmd(b, "DEPLOY_ARM", u)) == "STATE_UNKNOWN"
    for u in UNITS:
        assert subs(b, cmd(b, "DEPLOY_OVERRIDE", u, state="STOWED")) == OK
    b.settle_safe()
    assert subs(b, b.arm("ALPINE")) == OK


def test_restart_while_armed_clears_the_arm_and_safes_the_hardware() -> None:
    b = bench()
    b.arm("ALPINE")
    assert not hw_safe(b, "ALPINE")
    b.restart()
    b.run(1.0)
    assert hw_safe(b, "ALPINE") and b.unit_state("ALPINE") == "SAFE"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    assert b.models["ALPINE"].fire_log == []


def test_restarts_never_refire_a_released_unit() -> None:
    b = bench()
    b.arm("ALPINE")
    fire = b.tc("DEPLOY_FIRE", unit="ALPINE")
    b.send_tc(fire)
    b.run(3.0)
    for _ in range(3):
        b.restart()
        b.settle_safe()
        assert b.unit_state("ALPINE") == "RELEASED"
        assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "ALREADY_DONE"
        b.send_tc(fire)
        b.run(0.5)
    assert len(b.models["ALPINE"].fire_log) == 1
    assert b.fsw.restarts == 4


def _crash_during_fire(k: int, open_circuit: bool, pdu: str = "real") -> DeployBench:
    """Arm Alpine, then kill the flight software at the (k+1)-th durable write from the FIRE on."""
    b = bench(pdu=pdu)
    if open_circuit:
        b.models["ALPINE"].inject_open_circuit("A", b.now)
    b.arm("ALPINE")
    b.crash_at_write(k)
    b.send("DEPLOY_FIRE", unit="ALPINE")
    b.run(30.0)
    return b


# the writes of a fire sequence: FIRING(A), then RELEASED; with A open-circuit: FIRING(A), RETRY, FIRING(B), RELEASED
@pytest.mark.parametrize("open_circuit, writes", [(False, ["FIRING", "RELEASED"]),
                                                  (True, ["FIRING", "RETRY", "FIRING", "RELEASED"])])
@pytest.mark.parametrize("pdu", ["real", "fake"])
def test_kill_at_every_write_of_a_fire_sequence(open_circuit: bool, writes: list[str], pdu: str) -> None:
    for k in range(len(writes) + 1):
        b = _crash_during_fire(k, open_circuit, pdu)
        m = b.models["ALPINE"]
        if k == len(writes):
            assert not b.host.crash_log, "no crash: the whole sequence completed"
            assert b.unit_state("ALPINE") == "RELEASED"
            continue
        assert b.host.crash_log and not b.host.alive
        # the record holds the last write that completed, never a half-written one
        rec = record(b, "ALPINE")
        assert rec["state"] == (writes[k - 1] if k else "SAFE"), k
        # the actuations before the crash: none if the FIRING record was not written
        fired = [f.actuator for f in m.fire_log]
        expect = {0: [], 1: ["A"], 2: ["A"], 3: ["A", "B"]}[k]
        assert fired == expect, (k, fired)
        b.store.crash_after = None
        for _ in range(3):  # restarts never fire
            b.restart()
            b.settle_safe()
            expect_state = "SAFE" if k == 0 else "UNKNOWN"
            assert b.unit_state("ALPINE") == expect_state, k
            if expect_state == "UNKNOWN":
                assert b.events("DEPLOY_STATE_UNKNOWN")[-1]["EVT_DEP_REASON"] == "RECORD_INTERRUPTED"
                assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "STATE_UNKNOWN"
        assert [f.actuator for f in m.fire_log] == expect, k
        if k == 0:
            # nothing had fired: the unit may be armed and fired, once
            b.arm("ALPINE")
            assert subs(b, fire_and_wait(b, "ALPINE")) in (FIRE_OK_1, FIRE_OK_2)
            assert m.released_at is not None
        elif m.released_at is not None:
            # it did release: the switches show it, and ground affirms it
            assert b.fsw.deploy.units["ALPINE"].tm.sw1_open
            assert subs(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="RELEASED")) == OK
            assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "ALREADY_DONE"


def test_store_error_before_actuation_fails_the_fire_without_firing() -> None:
    class FullStore(MemoryStore):  # a store whose disk is full from now on
        full = False

        def save(self, key: str, data: bytes) -> None:
            if self.full:
                raise OSError(28, "No space left on device")
            super().save(key, data)

    store = FullStore()
    b = bench(store=store)
    b.arm("ALPINE")
    store.full = True
    fire = b.send("DEPLOY_FIRE", unit="ALPINE")
    b.run(1.0)
    assert b.reports(fire) == [(1, None), (4, "EXECUTION_FAILED")]
    assert b.models["ALPINE"].fire_log == []
    assert b.unit_state("ALPINE") == "SAFE"
    assert any(e["EVT_DEP_REASON"] == "STORE_ERROR" for e in b.events("DEPLOY_FAULT"))


# ---------------------------------------------------------------------------------------------
# faulty hardware
# ---------------------------------------------------------------------------------------------

def test_silent_controller_before_arm_is_stale() -> None:
    b = bench()
    b.models["ALPINE"].silent = True
    b.run(4.0)
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "TIMEOUT"
    assert b.deploy_hk("ALPINE")["DEP_TM_AGE"] > 3.0


def test_silent_controller_while_armed_clears_the_arm() -> None:
    b = bench()
    b.arm("ALPINE")
    b.models["ALPINE"].silent = True
    b.run(5.0)
    assert b.unit_state("ALPINE") == "SAFE"
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "TM_STALE"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    # the safe command went unanswered: the manager keeps asking and says so
    b.run(12.0)
    assert any(e["EVT_DEP_REASON"] == "SAFE_TIMEOUT" for e in b.events("DEPLOY_FAULT"))
    b.models["ALPINE"].silent = False
    b.run(12.0)
    assert hw_safe(b, "ALPINE") and not b.fsw.deploy.units["ALPINE"].safing


def test_silent_controller_during_burn_fails_then_ground_affirms_release() -> None:
    b = bench()
    m = b.models["LUPINE"]
    b.arm("LUPINE")
    fire = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run(0.5)
    m.silent = True  # it still burns the wire: the hardware does not depend on being heard
    b.run_until(lambda: any(s == 8 for s in subs(b, fire)), 60)
    assert b.unit_state("LUPINE") == "FAILED"
    assert b.events("DEPLOY_FAILED")[-1]["EVT_DEP_REASON"] == "TM_STALE"
    assert m.released_at is not None and len(m.fire_log) == 1  # no blind retry
    m.silent = False
    b.run(3.0)
    assert b.deploy_hk("LUPINE")["DEP_SW1_OPEN"] and b.deploy_hk("LUPINE")["DEP_SW2_OPEN"]
    assert subs(b, cmd(b, "DEPLOY_OVERRIDE", "LUPINE", state="RELEASED")) == OK
    assert b.unit_state("LUPINE") == "RELEASED"


def test_garbage_on_the_controller_line_does_not_stop_the_release() -> None:
    b = bench()
    junk = bytes(range(256)) * 2 + b"\x1a\xcf\xfc\x1d\xff\xff\x00"
    b.inject_bytes("alpine", junk)
    b.arm("ALPINE")
    b.inject_bytes("alpine", junk)
    fire = b.send("DEPLOY_FIRE", unit="ALPINE")
    b.inject_bytes("alpine", junk)
    b.run(3.0)
    assert subs(b, fire) == FIRE_OK_1
    assert b.fsw.deframers["alpine"].dropped_bytes >= len(junk)


def test_babbling_controller_is_stale() -> None:
    b = bench()
    b.models["ALPINE"].babble = True
    b.run(4.0)
    assert rejected_with(b, cmd(b, "DEPLOY_ARM", "ALPINE")) == "TIMEOUT"
    assert b.fsw.deframers["alpine"].dropped_bytes > 0


def test_chatter_on_a_stowed_switch_is_not_a_release() -> None:
    b = bench()
    m = b.models["ALPINE"]
    b.arm("ALPINE")
    m.inject_chatter(0, b.now, duration_s=0.2, half_period_s=0.003)
    b.run(1.0)
    assert m.switches[0].changes > 50
    assert b.unit_state("ALPINE") == "ARMED" and not b.fsw.deploy.units["ALPINE"].tm.sw1_open
    assert subs(b, fire_and_wait(b, "ALPINE", 10)) == FIRE_OK_1


def test_chatter_at_release_is_debounced() -> None:
    b = bench()
    m = b.models["LUPINE"]
    b.arm("LUPINE")
    fire = b.send("DEPLOY_FIRE", unit="LUPINE")
    b.run_until(lambda: m.released_at is not None, 10)
    m.inject_chatter(1, b.now + 0.45, duration_s=0.1, half_period_s=0.004)  # as switch 2 opens
    b.run_until(lambda: 7 in subs(b, fire), 15)
    assert subs(b, fire) == FIRE_OK_1 and m.switches[1].changes > 10
    seen = [tm for _, tm in b.probe.log if tm.apid == m.system.apid and tm.service == 3]
    sw2 = [b.d.codec(m.system.packet("LUPINE_STATUS")).decode(t.source_data)["LUPINE_SW2_OPEN"] for t in seen]
    # the debounced reading went from closed to open once, never back
    assert sw2.count(True) >= 1 and sw2[sw2.index(True):].count(False) == 0


def test_failed_switch_stuck_closed_retries_then_fails_and_ground_affirms() -> None:
    b = bench()
    m = b.models["ALPINE"]
    m.inject_failed_switch(1, "closed", b.now)
    b.arm("ALPINE")
    fire = fire_and_wait(b, "ALPINE")
    assert b.reports(fire)[-1] == (8, "EXECUTION_FAILED")
    # the unit did release on A; B was fired too, harmlessly, because only one switch said so
    assert m.released_by == "A" and [f.actuator for f in m.fire_log] == ["A", "B"]
    assert b.unit_state("ALPINE") == "FAILED"
    b.run(1.5)
    hk = b.deploy_hk("ALPINE")
    assert hk["DEP_SW1_OPEN"] and not hk["DEP_SW2_OPEN"]
    assert any(e["EVT_DEP_REASON"] == "SWITCH_DISAGREE" for e in b.events("DEPLOY_FAULT"))
    assert subs(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="RELEASED")) == OK
    assert b.unit_state("ALPINE") == "RELEASED"


def test_a_wrong_override_does_not_lead_to_a_second_fire() -> None:
    """Released on A with switch 2 failed closed: FAILED.  Ground wrongly overrides STOWED: the open
    switch still refuses the arm and the fire (the switches are checked whatever the record says)."""
    b = bench()
    m = b.models["ALPINE"]
    m.inject_failed_switch(1, "closed", b.now)
    b.arm("ALPINE")
    fire_and_wait(b, "ALPINE")
    assert b.unit_state("ALPINE") == "FAILED" and m.released_at is not None
    assert subs(b, cmd(b, "DEPLOY_OVERRIDE", "ALPINE", state="STOWED")) == OK
    b.settle_safe()
    arm = cmd(b, "DEPLOY_ARM", "ALPINE")
    assert rejected_with(b, arm) == "FAULT_ACTIVE"
    from fsw.core.deploy import ARM_CONDITIONS
    mask = b.failure_data(arm)[0]
    assert {n for i, (n, _) in enumerate(ARM_CONDITIONS) if mask >> i & 1} == {"switches_closed", "no_fault"}
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"
    assert len(m.fire_log) == 2  # A, then B in the same sequence; nothing after


def test_one_switch_opening_is_not_a_release() -> None:
    """A stuck release, and switch 1 fails open during the fire: one open switch does not make RELEASED."""
    b = bench()
    m = b.models["ALPINE"]
    m.inject_stuck_release()
    b.arm("ALPINE")
    fire = b.send("DEPLOY_FIRE", unit="ALPINE")
    b.run(0.2)
    m.inject_failed_switch(0, "open", b.now)
    b.run_until(lambda: any(s == 8 for s in subs(b, fire)), 30)
    assert b.unit_state("ALPINE") == "FAILED" and m.released_at is None
    assert [f.actuator for f in m.fire_log] == ["A", "B"]
    assert not b.events("DEPLOY_RELEASED")


def test_inhibit_removed_without_reason_is_put_back() -> None:
    """A relay closing on its own (or by a stray command) is a fault: the manager commands safe again."""
    b = bench()
    m = b.models["ALPINE"]
    m.bus_relay = True
    m._update(b.now)  # noqa: SLF001 - the relay closed: the controller reports it
    b.run(1.0)
    assert any(e["EVT_DEP_REASON"] == "INHIBIT_LOST" for e in b.events("DEPLOY_FAULT"))
    assert not m.bus_relay


# ---------------------------------------------------------------------------------------------
# the prerequisites are gathered from the right sources
# ---------------------------------------------------------------------------------------------

def _armed_alpine() -> DeployBench:
    b = bench()
    b.arm("ALPINE")
    b.run(0.5)
    return b


# perturbation -> the conditions it must (and alone may) make false
FIRE_SOURCES = {
    "phase": {"phase_allows"},
    "unknown": {"state_known", "armed", "no_fault"},  # and relays closed outside an arm: INHIBIT_LOST
    "released_switches": {"not_done", "switches_closed", "no_fault"},
    "expired": {"armed"},
    "other_busy": {"other_idle"},
    "other_fired": {"spacing_ok"},
    "link": {"link_up"},
    "stale": {"tm_fresh"},
    "pdu_off": {"pdu_on"},
    "bus_relay": {"bus_relay_closed"},
    "arm_relay": {"arm_relay_closed"},
    "fire_sw": {"fire_switch_open"},
    "one_switch": {"switches_closed", "no_fault"},
    "controller_fault": {"no_fault"},
}


def _perturb(b: DeployBench, what: str) -> None:
    dm = b.fsw.deploy
    u, o = dm.units["ALPINE"], dm.units["LUPINE"]
    if what == "phase":
        b.fsw.phases.current = b.d.phases["LUNAR_ORBIT"]
    elif what == "unknown":
        u.state = "UNKNOWN"
    elif what == "released_switches":
        u.tm = replace(u.tm, sw1_open=True, sw2_open=True)
    elif what == "expired":
        u.armed_until = b.now
    elif what == "other_busy":
        o.state = "FIRING"
    elif what == "other_fired":
        o.record = {**o.record, "fired_at": b.now - 10.0}
    elif what == "link":
        b.fsw.port_stats["alpine"].up = False
    elif what == "stale":
        u.tm = replace(u.tm, at=b.now - 10.0)
    elif what == "pdu_off":
        b.force_power_view("ALPINE", on=False)
    elif what == "bus_relay":
        u.tm = replace(u.tm, bus_relay=False)
    elif what == "arm_relay":
        u.tm = replace(u.tm, arm_relay=False)
    elif what == "fire_sw":
        u.tm = replace(u.tm, fire_sw=True)
    elif what == "one_switch":
        u.tm = replace(u.tm, sw2_open=True)
    elif what == "controller_fault":
        u.tm = replace(u.tm, mode="FAULT")
    else:  # pragma: no cover
        raise AssertionError(what)


@pytest.mark.parametrize("what", sorted(FIRE_SOURCES))
def test_fire_prerequisites_come_from_their_sources(what: str) -> None:
    b = _armed_alpine()
    dm = b.fsw.deploy
    u = dm.units["ALPINE"]
    before = dm.fire_prereqs(u, b.now)
    assert all(getattr(before, f) for f in before.__dataclass_fields__), before
    _perturb(b, what)
    after = dm.fire_prereqs(u, b.now)
    false = {f for f in after.__dataclass_fields__ if not getattr(after, f)}
    assert false == FIRE_SOURCES[what]


def test_every_fire_condition_has_a_source_test() -> None:
    from fsw.core.deploy import FIRE_CONDITIONS
    covered = set().union(*FIRE_SOURCES.values())
    assert covered == {n for n, _ in FIRE_CONDITIONS}


ARM_SOURCES = {
    "phase": {"phase_allows"},
    "unknown": {"state_known", "unit_idle"},
    "released_switches": {"not_done", "switches_closed", "no_fault"},
    "link": {"link_up"},
    "stale": {"tm_fresh"},
    "safing": {"unit_idle"},
    "other_busy": {"other_idle"},
    "other_fired": {"spacing_ok"},
    "bus_relay": {"inhibits_in_place", "no_fault"},
    "pdu_on": {"inhibits_in_place", "no_fault"},
    "one_switch": {"switches_closed", "no_fault"},
    "controller_fault": {"no_fault"},
}


@pytest.mark.parametrize("what", sorted(ARM_SOURCES))
def test_arm_prerequisites_come_from_their_sources(what: str) -> None:
    b = bench()
    dm = b.fsw.deploy
    u = dm.units["ALPINE"]
    b.run(1.0)
    before = dm.arm_prereqs(u, b.now)
    assert all(getattr(before, f) for f in before.__dataclass_fields__), before
    if what == "safing":
        u.safing = True
    elif what == "bus_relay":
        u.tm = replace(u.tm, bus_relay=True)
    elif what == "pdu_on":
        b.force_power_view("ALPINE", on=True)
    else:
        _perturb(b, what)
    after = dm.arm_prereqs(u, b.now)
    false = {f for f in after.__dataclass_fields__ if not getattr(after, f)}
    assert false == ARM_SOURCES[what]


# ---------------------------------------------------------------------------------------------
# any other hazardous command clears the arm
# ---------------------------------------------------------------------------------------------

def test_another_hazardous_lander_command_clears_the_arm(tmp_path: Path) -> None:
    """With LANDER_RESET_COUNTERS declared hazardous (a copy of the reference mission), sending it disarms."""
    src = Path(load_dictionary.__code__.co_filename).resolve().parents[1] / "missions" / "reference"
    dst = tmp_path / "mission"
    shutil.copytree(src, dst)
    text = (dst / "lander.yaml").read_text()
    marker = "  - name: LANDER_RESET_COUNTERS\n"
    assert marker in text
    (dst / "lander.yaml").write_text(text.replace(marker, marker + "    hazardous: true\n"))
    d = load_dictionary(str(dst))
    assert d.command("LANDER_RESET_COUNTERS").hazardous
    b = bench(dictionary=d)
    b.arm("ALPINE")
    rc = b.send("LANDER_RESET_COUNTERS")
    b.run(0.5)
    assert subs(b, rc) == OK  # the command itself runs
    assert b.events("DEPLOY_ARM_CLEARED")[-1]["EVT_DEP_REASON"] == "OTHER_HAZARD"
    assert rejected_with(b, cmd(b, "DEPLOY_FIRE", "ALPINE")) == "NOT_ARMED"


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown deploy option"):
        DeployOptions.from_mapping({"spacing": 1})
    with pytest.raises(ValueError, match="non-negative"):
        DeployOptions.from_mapping({"spacing_s": -1})
    assert DeployOptions.from_mapping({"arm_timeout_s": 60}).arm_timeout_s == 60.0


def test_sealed_record_format_is_stable() -> None:
    """The durable record is a sealed JSON object (docs/deploy.md): this is what an operator would read."""
    b = bench()
    raw = b.store.data[record_key("ALPINE")]
    assert raw[:4] == b"LPE1"
    assert raw == seal(record(b, "ALPINE"))
    assert set(record(b, "ALPINE")) == {"v", "unit", "state", "attempts", "actuator", "fired_at", "released_at",
                                        "reason", "overrides", "writes"}
