"""Checkout of the Farside Seismic Suite (FSS): boot, modes, both seismometers, calibration, levelling.

Steps: the checkout phase (PRELAUNCH); power on (the FSS boots in SURVIVAL, housekeeping only);
a levelling command in SURVIVAL is refused (WRONG_MODE) without effect;
CHECKOUT streams both seismometers with full packets of consecutive samples;
the 1 Hz calibration sine shows in the very-broadband samples; a small
levelling move ends with FSS_LEVELLED at the target; housekeeping stays
inside its alarm limits with nothing dropped; power off.
"""

from __future__ import annotations

from ground.procedures import Procedure
from ground.procedures_examples._common import CHECKOUT_PHASE, ensure_phase, power_off, power_on, science


def test_fss_checkout(proc: Procedure) -> None:
    """Power on the FSS, stream both seismometers in CHECKOUT, calibrate, level, power off."""
    d = proc.dictionary
    cfg = d.system("FSS").config
    ensure_phase(proc, CHECKOUT_PHASE)
    power_on(proc, "FSS")
    proc.step("boot mode and a refused command")
    assert proc.wait_tm("FSS_MODE", timeout=3) == cfg["boot_mode"]
    proc.expect_failure("FSS_LEVEL", "WRONG_MODE", target_urad=0)

    proc.step("CHECKOUT: both seismometers stream")
    proc.send_and_assert("FSS_SET_MODE", mode="CHECKOUT")
    proc.wait_event("FSS_MODE_CHANGED", FSS_NEW_MODE="CHECKOUT", timeout=3)
    vbb = science(proc, "FSS_VBB_SCI")
    sp = science(proc, "FSS_SP_SCI")
    vbb_count = d.packet("FSS_VBB_SCI").param("FSS_VBB_V").count
    assert len(vbb["params"]["FSS_VBB_V"]) == vbb_count
    for axis in ("FSS_SP_X", "FSS_SP_Y", "FSS_SP_Z"):
        assert len(sp["params"][axis]) == d.packet("FSS_SP_SCI").param(axis).count, axis
    quiet = max(abs(v) for v in vbb["params"]["FSS_VBB_V"])

    proc.step("calibration sine")
    cal_from = proc.mark()
    assert proc.send("FSS_CALIBRATE", duration_s=1).ok
    science(proc, "FSS_VBB_SCI")                 # the packet holding the end of the calibration
    packets = proc.records(since=cal_from, name="FSS_VBB_SCI")
    firsts = [r["params"]["FSS_VBB_FIRST"] for r in packets]
    assert firsts == [firsts[0] + k * vbb_count for k in range(len(firsts))], "VBB packets must be consecutive"
    peak = max(abs(v) for r in packets for v in r["params"]["FSS_VBB_V"])
    assert peak > cfg["cal_amplitude_counts"] / 2 > 10 * quiet, (peak, quiet)

    proc.step("levelling")
    tilt = proc.value("FSS_TILT")
    target = int(tilt) - 20
    proc.send_and_assert("FSS_LEVEL", target_urad=target)
    evt = proc.wait_event("FSS_LEVELLED", timeout=3)
    assert abs(evt["params"]["FSS_TILT_EVT"] - target) <= 5

    proc.step("housekeeping inside its alarm limits")
    hk = proc.wait_tm(lambda rec: rec["name"] == "FSS_HK", timeout=3)
    alarms = {k: v for k, v in hk["limits"].items() if v == "alarm"}
    assert not alarms, f"FSS_HK parameters in alarm: {alarms}"
    assert hk["params"]["FSS_TX_DROPS"] == 0 and not hk["params"]["FSS_CAL_ACTIVE"]
    assert proc.value("PL_STATE", where={"PL_UNIT": "FSS"}) == "OPERATING"

    power_off(proc, "FSS")
