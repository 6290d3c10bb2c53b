"""Checkout of LuSEE-Lite (radio spectrometer): boot, modes, a full set of spectra, integration time.

Steps: the checkout phase (PRELAUNCH); power on (LuSEE boots in ANALOG); ON, then SCIENCE: one
spectrum per correlation product each integration, every channel present, the
sky falling with frequency; a shorter integration shows in housekeeping and in
the spectra; an integration time outside the dictionary's range is refused on
the ground before anything is sent; the output FIFO dropped nothing; back to
the default integration and ANALOG; power off.
"""

from __future__ import annotations

from fsw.dictionary import ArgumentError
from ground.procedures import Procedure
from ground.procedures_examples._common import CHECKOUT_PHASE, ensure_phase, power_off, power_on, science


def spectra_of_one_integration(proc: Procedure, products: list[str], integ_ms: int) -> dict[str, dict]:
    """Every product's spectrum of the next complete integration made with ``integ_ms``."""
    first = science(proc, "LUSEE_SPECTRUM", timeout=5, LUSEE_INTEG_MS=integ_ms,
                    LUSEE_PRODUCT_ID=products[0])["params"]
    got = {products[0]: first}
    for product in products[1:]:
        got[product] = proc.wait_tm(
            lambda rec, p=product: (rec["name"] == "LUSEE_SPECTRUM" and rec["params"]["LUSEE_PRODUCT_ID"] == p
                                    and rec["params"]["LUSEE_SPEC_SEQ"] == first["LUSEE_SPEC_SEQ"]),
            timeout=3)["params"]
    return got


def test_lusee_checkout(proc: Procedure) -> None:
    """Power on LuSEE-Lite, check a full set of spectra at two integration times, power off."""
    d = proc.dictionary
    cfg = d.system("LUSEE").config
    products = list(cfg["products"])
    channels = d.packet("LUSEE_SPECTRUM").param("LUSEE_POWER").count
    ensure_phase(proc, CHECKOUT_PHASE)
    power_on(proc, "LUSEE")
    assert proc.wait_tm("LUSEE_MODE", timeout=3) == cfg["boot_mode"]

    proc.step("ON, then SCIENCE")
    proc.send_and_assert("LUSEE_SET_MODE", mode="ON")
    proc.send_and_assert("LUSEE_SET_MODE", mode="SCIENCE")
    proc.wait_event("LUSEE_MODE_CHANGED", LUSEE_NEW_MODE="SCIENCE", timeout=3)
    spectra = spectra_of_one_integration(proc, products, cfg["integration_ms"])
    for product, s in spectra.items():
        power = s["LUSEE_POWER"]
        assert len(power) == channels, product
        # galactic synchrotron: the low band is far brighter than the high band
        assert sum(power[:16]) > 10 * sum(power[-16:]), product

    proc.step("a shorter integration")
    proc.send_and_assert("LUSEE_SET_INTEGRATION", integration_ms=500)
    proc.wait_tm("LUSEE_INTEGRATION", "==", 500, timeout=3)
    spectra_of_one_integration(proc, products, 500)
    try:
        proc.send("LUSEE_SET_INTEGRATION", integration_ms=50)
    except ArgumentError as exc:       # checked against the dictionary: nothing was sent
        assert exc.code == "ARG_OUT_OF_RANGE"
    else:
        raise AssertionError("an integration of 50 ms should be refused before sending")
    hk = proc.wait_tm(lambda rec: rec["name"] == "LUSEE_HK", timeout=3, since="now")
    assert hk["params"]["LUSEE_TX_DROPS"] == 0

    proc.step("back to the defaults")
    proc.send_and_assert("LUSEE_SET_INTEGRATION", integration_ms=cfg["integration_ms"])
    proc.send_and_assert("LUSEE_SET_MODE", mode="ANALOG")
    power_off(proc, "LUSEE")
