"""Checkout of the Lunar Magnetotelluric Sounder (LMS): boot, one electrode, fields in SCIENCE.

Steps: the checkout phase (PRELAUNCH); power on (the LMS boots quiet, in SAFE); deploying is
refused outside DEPLOY mode (WRONG_MODE); in DEPLOY mode the next electrode
still stowed is thrown (LMS_ITEM_DEPLOYED, one more electrode out in
housekeeping), and throwing it again is refused (ALREADY_DONE): a deploy
never happens twice; SCIENCE streams the field packet with its full layout
and the dipole mask matching what is deployed; back to SAFE; power off.

Electrodes stay out, so running this again throws the next one (after the
fourth, the throw is skipped).
"""

from __future__ import annotations

from ground.procedures import Procedure
from ground.procedures_examples._common import CHECKOUT_PHASE, ensure_phase, power_off, power_on, science

ELECTRODES = ("ELECTRODE_1", "ELECTRODE_2", "ELECTRODE_3", "ELECTRODE_4")


def test_lms_checkout(proc: Procedure) -> None:
    """Power on the LMS, throw the next electrode, stream fields in SCIENCE, power off."""
    d = proc.dictionary
    ensure_phase(proc, CHECKOUT_PHASE)
    power_on(proc, "LMS")
    proc.step("boot mode and a refused deploy")
    assert proc.wait_tm("LMS_MODE", timeout=3) == d.system("LMS").config["boot_mode"]
    out = proc.wait_tm("LMS_ELECTRODES_OUT", timeout=3)
    proc.expect_failure("LMS_DEPLOY", "WRONG_MODE", item="ELECTRODE_1")

    proc.send_and_assert("LMS_SET_MODE", mode="DEPLOY")
    if out < len(ELECTRODES):
        item = ELECTRODES[out]
        proc.step(f"throw {item}")
        proc.send_and_assert("LMS_DEPLOY", item=item)
        proc.wait_event("LMS_ITEM_DEPLOYED", LMS_ITEM=item, timeout=3)
        proc.expect_failure("LMS_DEPLOY", "ALREADY_DONE", item=item)
        out += 1
    deployed = proc.mark()

    proc.step("SCIENCE: the field packet")
    proc.send_and_assert("LMS_SET_MODE", mode="SCIENCE")
    fields = science(proc, "LMS_FIELDS", timeout=3)
    p = fields["params"]
    layout = d.packet("LMS_FIELDS")
    for ch in ("LMS_E1", "LMS_E2", "LMS_BX", "LMS_BY", "LMS_BZ"):
        assert len(p[ch]) == layout.param(ch).count, ch
    # a dipole is valid once both of its electrodes are out (bit 0: electrodes 1-2, bit 1: 3-4)
    mast = proc.value("LMS_MAST_DEPLOYED")
    expected = (1 if out >= 2 else 0) | (2 if out >= 4 else 0) | (4 if mast else 0)
    assert p["LMS_DIPOLES"] == expected, (p["LMS_DIPOLES"], out, mast)
    if not expected & 1:
        assert not any(p["LMS_E1"]), "an invalid dipole must read zero"
    later = science(proc, "LMS_FIELDS", timeout=3)
    assert later["params"]["LMS_SCI_FIRST"] == p["LMS_SCI_FIRST"] + layout.param("LMS_E1").count
    proc.wait_tm("LMS_ELECTRODES_OUT", "==", out, timeout=3, since=deployed)   # housekeeping agrees

    proc.send_and_assert("LMS_SET_MODE", mode="SAFE")
    power_off(proc, "LMS")
