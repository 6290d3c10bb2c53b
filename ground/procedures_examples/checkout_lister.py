"""Checkout of LISTER (heat-flow drill): boot, mode rules, a short measurement with its science, abort.

Steps: the checkout phase (PRELAUNCH); power on (LISTER boots in STANDBY); DRILL and MEASURE
cannot be entered with LISTER_SET_MODE (ARG_OUT_OF_RANGE); LISTER_MEASURE
starts a measurement: MEASURE mode, probe temperatures once a second;
LISTER_ABORT stops it and returns to STANDBY (the aborted measurement's
command then reports EXECUTION_FAILED at its scheduled end; not awaited
here); a measurement needs STANDBY; no drilling happened; power off.
"""

from __future__ import annotations

import math

from ground.procedures import Procedure
from ground.procedures_examples._common import CHECKOUT_PHASE, ensure_phase, power_off, power_on, science


def test_lister_checkout(proc: Procedure) -> None:
    """Power on LISTER, check its mode rules, start a measurement, see its science, abort, power off."""
    d = proc.dictionary
    ensure_phase(proc, CHECKOUT_PHASE)
    power_on(proc, "LISTER")
    proc.step("boot mode and mode rules")
    assert proc.wait_tm("LISTER_MODE", timeout=3) == "STANDBY"
    depth = proc.wait_tm("LISTER_DEPTH", timeout=3)
    proc.expect_failure("LISTER_SET_MODE", "ARG_OUT_OF_RANGE", mode="DRILL")
    proc.expect_failure("LISTER_SET_MODE", "ARG_OUT_OF_RANGE", mode="MEASURE")

    proc.step("a short measurement")
    proc.submit("LISTER_MEASURE", duration_s=60)   # completes at its end: not awaited
    proc.wait_event("LISTER_MODE_CHANGED", LISTER_NEW_MODE="MEASURE", timeout=3)
    temps = science(proc, "LISTER_TEMPS", timeout=3)
    t = temps["params"]["LISTER_T"]
    assert len(t) == d.packet("LISTER_TEMPS").param("LISTER_T").count
    assert all(math.isfinite(x) and -230 < x < 150 for x in t), t
    # another activity is refused while measuring
    proc.expect_failure("LISTER_MEASURE", "WRONG_MODE", duration_s=60)

    proc.step("abort")
    proc.send_and_assert("LISTER_ABORT")
    proc.wait_tm("LISTER_MODE", "==", "STANDBY", timeout=3)
    assert proc.value("LISTER_DEPTH") == depth   # nothing drilled
    power_off(proc, "LISTER")
