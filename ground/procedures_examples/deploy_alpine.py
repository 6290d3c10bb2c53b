"""Release of the Alpine relay satellite: the two-step hazardous sequence, with every check on the way.

Steps: DEPLOY phase (payloads must be off or in the modes it allows); wait for
the deploy manager's housekeeping to show Alpine safe with fresh controller
telemetry; a unit whose durable state reads UNKNOWN (a bench whose state
directory was never provisioned) is affirmed STOWED by ground with
DEPLOY_OVERRIDE after checking that both its separation switches read closed
(Lupine too: with its history lost, the spacing between the two releases
could not be shown, and the ARM would be refused with SPACING), and waits
for telemetry to confirm the unit safe again (DEPLOY_SAFED: until then an
ARM is refused with BUSY); FIRE without ARM is
refused (NOT_ARMED): no single command fires; ARM removes two inhibits
(DEPLOY_ARMED, relays closed, PDU channel on); FIRE releases (DEPLOY_FIRING,
DEPLOY_RELEASED within Alpine's expected separation time, both switches open,
ALPINE_SEPARATED); the inhibits go back in place (DEPLOY_SAFED); a second FIRE
is refused (ALREADY_DONE): never re-fire.

Run again on a bench where Alpine is already released, it checks only the
last point.  A hazardous command is confirmed with the name of the unit it
acts on: ``DEPLOY_FIRE unit=ALPINE`` with ALPINE.
"""

from __future__ import annotations

from ground.procedures import Procedure
from ground.procedures_examples._common import ensure_phase

UNIT = "ALPINE"


def deploy_hk(proc: Procedure, unit: str = UNIT, timeout: float = 5.0, since: object = "now",
              **want: object) -> dict:
    """The next DEPLOY_HK row of ``unit`` (whose parameters equal ``want``) received since ``since``."""
    def match(rec: dict) -> bool:
        p = rec["params"]
        return (rec["name"] == "DEPLOY_HK" and p["DEP_UNIT"] == unit
                and all(p[k] == v for k, v in want.items()))
    match.__name__ = f"DEPLOY_HK {unit} " + " ".join(f"{k}={v}" for k, v in want.items())
    return proc.wait_tm(match, timeout=timeout, since=since)["params"]


def affirm_stowed_if_unknown(proc: Procedure, unit: str, start: int) -> str:
    """Ground's override of a unit whose record is lost, after checking its switches; returns its state.

    ``start``: a journal mark from which the unit's housekeeping is fresh enough.  An override also
    commands the unit's inhibits in place: the unit is busy until telemetry confirms that (DEPLOY_SAFED).
    """
    hk = deploy_hk(proc, unit, since=start, DEP_HW_SAFE=True)
    if hk["DEP_STATE"] != "UNKNOWN":
        return hk["DEP_STATE"]
    proc.step(f"{unit}: durable state UNKNOWN: ground affirms STOWED")
    assert not hk["DEP_SW1_OPEN"] and not hk["DEP_SW2_OPEN"], "the separation switches must read closed"
    proc.send_and_assert("DEPLOY_OVERRIDE", unit=unit, state="STOWED", confirm=unit)
    state = proc.wait_event("DEPLOY_OVERRIDDEN", EVT_DEP_UNIT=unit, timeout=3)["params"]["EVT_DEP_STATE"]
    proc.wait_event("DEPLOY_SAFED", EVT_DEP_UNIT=unit, timeout=5)
    return state


def test_deploy_alpine(proc: Procedure) -> None:
    """Arm and fire Alpine in the DEPLOY phase; check the release, the inhibits and that it never re-fires."""
    expected_sep_ms = proc.dictionary.system(UNIT).config["separation"]["expected_s"] * 1000
    fresh = proc.mark()   # housekeeping from here on is recent
    ensure_phase(proc, "DEPLOY")
    proc.step("Alpine safe, controller telemetry fresh")
    hk = deploy_hk(proc, DEP_HW_SAFE=True, since=fresh)
    assert hk["DEP_TM_AGE"] < 3.0, hk
    if hk["DEP_STATE"] == "RELEASED":
        proc.step("already released: never re-fire")
        proc.expect_failure("DEPLOY_FIRE", "ALREADY_DONE", stage="acceptance", unit=UNIT, confirm=UNIT)
        return
    for unit in proc.dictionary.lander.enums["DEPLOY_UNIT"].values:
        state = affirm_stowed_if_unknown(proc, unit, fresh)
        if unit == UNIT:
            assert state == "SAFE", state
        else:
            assert state in ("SAFE", "RELEASED"), (unit, state)

    proc.step("no single command can fire")
    proc.expect_failure("DEPLOY_FIRE", "NOT_ARMED", stage="acceptance", unit=UNIT, confirm=UNIT)
    proc.wait_event("DEPLOY_REJECTED", EVT_DEP_UNIT=UNIT, EVT_DEP_CODE="NOT_ARMED", timeout=3)

    proc.step("ARM")
    proc.send_and_assert("DEPLOY_ARM", unit=UNIT, confirm=UNIT)
    proc.wait_event("DEPLOY_ARMED", EVT_DEP_UNIT=UNIT, timeout=3)
    hk = deploy_hk(proc, DEP_STATE="ARMED")
    assert hk["DEP_BUS_RELAY"] and hk["DEP_ARM_RELAY"] and not hk["DEP_FIRE_SW"] and hk["DEP_PDU_ON"], hk
    assert hk["DEP_ARM_LEFT"] > 0

    proc.step("FIRE")
    proc.send_and_assert("DEPLOY_FIRE", unit=UNIT, confirm=UNIT)
    proc.wait_event("DEPLOY_FIRING", EVT_DEP_UNIT=UNIT, EVT_DEP_ACTUATOR="A", timeout=3)
    released = proc.wait_event("DEPLOY_RELEASED", EVT_DEP_UNIT=UNIT, timeout=3)
    assert 0 < released["params"]["EVT_DEP_SEP_MS"] < expected_sep_ms, released["params"]
    proc.wait_event("ALPINE_SEPARATED", timeout=3)
    proc.wait_event("DEPLOY_SAFED", EVT_DEP_UNIT=UNIT, timeout=15)
    hk = deploy_hk(proc, DEP_STATE="RELEASED", DEP_HW_SAFE=True)
    assert hk["DEP_SW1_OPEN"] and hk["DEP_SW2_OPEN"] and not hk["DEP_PDU_ON"], hk
    assert hk["DEP_RELEASED_AT"] >= hk["DEP_FIRED_AT"] > 0

    proc.step("never re-fire")
    proc.expect_failure("DEPLOY_FIRE", "ALREADY_DONE", stage="acceptance", unit=UNIT, confirm=UNIT)
