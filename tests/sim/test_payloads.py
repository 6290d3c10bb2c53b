"""Each reference payload's checkout and science run, in simulated time, through the flight software.

Every test powers its payload through the flight software (PAYLOAD_POWER_ON),
checks it out with the commands its dictionary entry declares, runs its
science, and measures what reached the ground against what the payload
produced and what its line carries (115200 baud, 8N1: 11520 octets a second).
"""

from __future__ import annotations

import math

import pytest

from hw_sim.models.unit import LINE
from tests.sim.helpers import Bench

LINE_BPS = 115200 / 10  # octets a second on an 8N1 line


def tap(b: Bench, unit: str) -> list[tuple[float, int]]:
    """(time, octets) of every write the unit makes on its line."""
    log: list[tuple[float, int]] = []
    b.runner.wire_from(b.units[unit], LINE).taps.append(lambda t, data: log.append((t, len(data))))
    return log


def science(b: Bench, packet: str, since: float = -math.inf) -> list[tuple[float, dict]]:
    """(packet time, values) of the science packets ``packet`` ground received, generated at or after ``since``."""
    pkt = b.d.packet(packet)
    out = []
    for tm in b.probe.tms(pkt.service, pkt.subservice, apid=pkt.apid):
        if tm.time >= since:
            out.append((tm.time, b.d.codec(pkt).decode(tm.source_data)))
    return out


def powered(unit: str, run: float = 7.0, **kw) -> Bench:
    b = Bench(power=(), **kw)
    tcs = b.power_on(unit, run=run)
    assert b.verif(tcs[unit]) == [1, 3, 5, 7]  # accepted, started, switched on, heard
    assert b.fsw.payloads.payloads[unit].state == "IDLE"
    return b


def pdu_current(b: Bench, channel: str) -> float:
    return b.hk("PDU_HK")[-1][f"PDU_{channel}_I"]


# ---------------------------------------------------------------------------------------------------------
# FSS
# ---------------------------------------------------------------------------------------------------------
def test_fss_checkout_and_science_run() -> None:
    b = powered("FSS")
    fss = b.payloads["FSS"]
    pl = b.fsw.payloads.payloads["FSS"]
    assert pl.mode == "SURVIVAL" and pdu_current(b, "FSS") == pytest.approx(8 / 28, abs=0.01)
    # checkout: mode, connection test, gain, calibration sine, levelling
    co = b.send("FSS_SET_MODE", mode="CHECKOUT")
    b.run(2)
    assert b.verif(co) == [1, 3, 7] and (pl.state, pl.mode) == ("OPERATING", "CHECKOUT")
    t_cal = b.clock.now()
    tcs = [b.send("PING", "FSS"), b.send("FSS_SET_GAIN", gain="MID"), b.send("FSS_CALIBRATE", duration_s=10),
           b.send("FSS_LEVEL", target_urad=0)]
    b.run(13)
    assert [b.verif(tc) for tc in tcs] == [[1, 3, 7]] * 4
    assert b.probe.tms(17, 2, apid=0x20)
    (_, levelled), = b.events("FSS", "FSS_LEVELLED")
    assert levelled == {"FSS_TILT_EVT": 0}
    hk = b.hk("FSS_HK")
    assert abs(hk[-1]["FSS_TILT"]) < 20 and hk[-1]["FSS_VBB_GAIN"] == "MID"
    assert any(h["FSS_CAL_ACTIVE"] for h in hk) and not hk[-1]["FSS_CAL_ACTIVE"]
    cal = [v for t, v in science(b, "FSS_VBB_SCI", t_cal + 2) if t < t_cal + 9]
    assert cal and max(abs(x) for v in cal for x in v["FSS_VBB_V"]) > 0.8 * 20000 * 4  # the sine, at gain MID
    assert b.hk("PDU_HK")[-1]["PDU_FSS_I"] == pytest.approx(15 / 28, abs=0.01)  # 15 W in CHECKOUT
    # science: 20 sps VBB and 3 x 100 sps short period, without a gap, at the declared rate
    sci = b.send("FSS_SET_MODE", mode="SCIENCE")
    b.run(1)
    assert b.verif(sci) == [1, 3, 7]
    line = tap(b, "FSS")
    t0 = b.clock.now()
    bytes0, drops0 = pl.bytes, pl.drops
    b.run(60)
    vbb = science(b, "FSS_VBB_SCI")
    sp = science(b, "FSS_SP_SCI")
    firsts = [v["FSS_VBB_FIRST"] for _, v in vbb]
    assert firsts == list(range(firsts[0], firsts[0] + 20 * len(firsts), 20))  # contiguous since checkout
    firsts = [v["FSS_SP_FIRST"] for _, v in sp]
    assert firsts == list(range(firsts[0], firsts[0] + 100 * len(firsts), 100))
    window_vbb = [v for t, v in vbb if t >= t0]
    window_sp = [v for t, v in sp if t >= t0]
    assert 59 <= len(window_vbb) <= 61 and 59 <= len(window_sp) <= 61
    assert all(len(v["FSS_SP_X"]) == len(v["FSS_SP_Y"]) == len(v["FSS_SP_Z"]) == 100 for v in window_sp)
    assert pl.drops == drops0 == 0 and fss.stats["tx_overflow"] == 0
    rate = (pl.bytes - bytes0) / 60  # octets a second received by the flight software
    assert 1300 < rate < 1500  # 1389 B/s declared in fss.yaml: 12 % of the line
    assert sum(n for _, n in line) / 60 < 0.15 * LINE_BPS
    last = b.payload_hk("FSS")[-1]
    assert last["PL_STATE"] == "OPERATING" and 10_000 < last["PL_RATE"] < 12_000 and last["PL_DROPS"] == 0
    assert last["PL_SCI_BYTES"] > 0.9 * (last["PL_BYTES"] - 60 * 51)
    assert last["PL_POWER"] == pytest.approx(15.0, abs=0.5) and last["PL_ENERGY"] > 0
    # handover: the FSS keeps recording but sends science through its own radio
    hand = b.send("FSS_SET_MODE", mode="HANDOVER")
    b.run(2)
    n_sci, samples = len(b.probe.tms(128, apid=0x20)), fss.samples
    b.run(10)
    assert b.verif(hand) == [1, 3, 7]
    assert len(b.probe.tms(128, apid=0x20)) == n_sci and fss.samples >= samples + 10 * 320 - 320


# ---------------------------------------------------------------------------------------------------------
# LISTER
# ---------------------------------------------------------------------------------------------------------
def test_lister_checkout_and_a_drilling_step_with_its_measurement() -> None:
    b = powered("LISTER")
    b.slow_lander_hk(30.0)
    lister = b.payloads["LISTER"]
    pl = b.fsw.payloads.payloads["LISTER"]
    ping = b.send("PING", "LISTER")
    early = b.send("LISTER_SET_MODE", mode="DRILL")  # only a drilling step may drill
    b.run(2)
    assert b.verif(ping) == [1, 3, 7] and b.failure(early) == "ARG_OUT_OF_RANGE"
    assert pl.mode == "STANDBY"
    # one 0.5 m step at 0.5 mm/s, then a 5-minute gradient and conductivity measurement
    t0 = b.clock.now()
    step = b.send("LISTER_DRILL_STEP", step_cm=50, measure_s=300)
    b.run(30)
    assert b.verif(step) == [1, 3] and pl.mode == "DRILL" and pl.state == "OPERATING"
    assert pdu_current(b, "LISTER") == pytest.approx(40 / 28, abs=0.02)  # drilling power
    again = b.send("LISTER_DRILL_STEP", step_cm=50)  # not while drilling: refused on board, never forwarded
    received = lister.stats["tc_received"]
    b.run(1)
    assert b.failure(again) == "WRONG_MODE" and lister.stats["tc_received"] == received
    b.run(1000)
    assert b.verif(step) == [1, 3, 7]
    (t_step, done), = b.events("LISTER", "LISTER_STEP_DONE")
    assert done == {"LISTER_DEPTH_EVT": 500} and t_step - t0 == pytest.approx(1000, abs=2)
    assert pl.mode == "MEASURE" and pdu_current(b, "LISTER") == pytest.approx(10 / 28, abs=0.02)
    b.run(320)
    (_, measured), = b.events("LISTER", "LISTER_MEASURED")
    (_, result), = [x for x in science(b, "LISTER_RESULT")]
    assert result["LISTER_RES_DEPTH"] == pytest.approx(0.5) and result["LISTER_RES_DURATION"] == 300
    # the fit recovers the regolith model (1.6 K/m, 0.012 W/m/K) from the noisy probe temperatures
    assert result["LISTER_GRADIENT"] == pytest.approx(1.6, rel=0.1)
    assert result["LISTER_CONDUCTIVITY"] == pytest.approx(0.012, rel=0.1)
    assert result["LISTER_HEAT_FLOW"] == pytest.approx(1.6 * 0.012 * 1000, rel=0.2)
    assert measured["LISTER_DEPTH_MEAS"] == 500
    temps = science(b, "LISTER_TEMPS")
    assert 295 <= len(temps) <= 300 and all(len(v["LISTER_T"]) == 16 for _, v in temps)
    assert temps[-1][1]["LISTER_T"][0] > temps[0][1]["LISTER_T"][0] + 5  # the needle heater warmed the regolith
    assert pl.mode == "STANDBY" and b.hk("LISTER_HK")[-1]["LISTER_STEPS_DONE"] == 1
    # the data rate while measuring, against the line
    rate = sum(21 + 68 for _ in temps) / 300 + 41
    assert rate * 8 == pytest.approx(1070, rel=0.05) and rate < 0.02 * LINE_BPS
    # energy: 1000 s at 40 W + 300 s at 10 W + standby, about 12 Wh, from the PDU's current readings
    energy = b.fsw.payloads.payloads["LISTER"].energy_wh
    assert energy == pytest.approx((1000 * 40 + 300 * 10 + 50 * 5) / 3600, rel=0.05)
    # a second, short step without a measurement continues from 0.5 m
    step2 = b.send("LISTER_DRILL_STEP", step_cm=5, measure_s=0)
    b.run(105)
    assert b.verif(step2) == [1, 3, 7] and lister.depth == pytest.approx(0.55) and pl.mode == "STANDBY"


# ---------------------------------------------------------------------------------------------------------
# LMS
# ---------------------------------------------------------------------------------------------------------
def test_lms_checkout_electrode_deployment_and_field_sampling() -> None:
    b = powered("LMS", run=5)
    b.slow_lander_hk(30.0)
    pl = b.fsw.payloads.payloads["LMS"]
    assert pl.mode == "SAFE"  # boots quiet, 3 W
    assert pdu_current(b, "LMS") == pytest.approx(3 / 28, abs=0.01)
    early = b.send("LMS_DEPLOY", item="ELECTRODE_1")  # DEPLOY mode first
    ping = b.send("PING", "LMS")
    b.run(1)
    assert b.failure(early) == "WRONG_MODE" and b.verif(ping) == [1, 3, 7]
    dep = b.send("LMS_SET_MODE", mode="DEPLOY")
    b.run(2)
    assert b.verif(dep) == [1, 3, 7] and pl.mode == "DEPLOY"
    items = ["ELECTRODE_1", "ELECTRODE_2", "ELECTRODE_3", "ELECTRODE_4", "MAST"]
    for item in items:
        tc = b.send("LMS_DEPLOY", item=item)
        b.run(6 if item != "MAST" else 61)
        assert b.verif(tc) == [1, 3, 7], item
    assert [e["LMS_ITEM"] for _, e in b.events("LMS", "LMS_ITEM_DEPLOYED")] == items
    twice = b.send("LMS_DEPLOY", item="ELECTRODE_2")
    b.run(1)
    assert b.failure(twice) == "ALREADY_DONE"
    hk = b.hk("LMS_HK")[-1]
    assert hk["LMS_ELECTRODES_OUT"] == 4 and hk["LMS_MAST_DEPLOYED"] is True
    sci = b.send("LMS_SET_MODE", mode="SCIENCE")
    b.run(1)
    t0 = b.clock.now()
    bytes0 = pl.bytes
    b.run(120)
    assert b.verif(sci) == [1, 3, 7]
    fields = science(b, "LMS_FIELDS", t0)
    assert 119 <= len(fields) <= 121 and all(v["LMS_DIPOLES"] == 7 for _, v in fields)
    firsts = [v["LMS_SCI_FIRST"] for _, v in fields]
    assert firsts == list(range(firsts[0], firsts[0] + 20 * len(firsts), 20))  # 20 sps, no gap
    # magnetotellurics: the electric field follows the magnetic one through the surface impedance
    e1 = [x for _, v in fields for x in v["LMS_E1"]]
    by = [x for _, v in fields for x in v["LMS_BY"]]
    assert _corr(e1, by) > 0.9
    assert max(abs(x) for x in by) > 0.5  # a few nT of natural variation
    rate = (pl.bytes - bytes0) / 120 * 8
    assert rate == pytest.approx(2140, rel=0.05)  # about 2 kbit/s: 2 % of the line
    assert pdu_current(b, "LMS") == pytest.approx(11 / 28, abs=0.01)


def _corr(a: list[float], b: list[float]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb)


# ---------------------------------------------------------------------------------------------------------
# LuSEE-Lite
# ---------------------------------------------------------------------------------------------------------
def test_lusee_modes_draw_their_power_and_science_streams_spectra_within_the_line() -> None:
    b = powered("LUSEE")
    pl = b.fsw.payloads.payloads["LUSEE"]
    powers = {}
    for mode in ("ANALOG", "ON", "SCIENCE"):
        tc = b.send("LUSEE_SET_MODE", mode=mode)
        b.run(2.5)
        assert b.verif(tc) == [1, 3, 7] and pl.mode == mode
        powers[mode] = pdu_current(b, "LUSEE") * 28
    assert powers == pytest.approx({"ANALOG": 3.4, "ON": 10.0, "SCIENCE": 13.5}, abs=0.2)
    line = tap(b, "LUSEE")
    t0 = b.clock.now()
    bytes0 = pl.bytes
    b.run(30)
    spectra = science(b, "LUSEE_SPECTRUM", t0 + 0.5)
    products = [v["LUSEE_PRODUCT_ID"] for _, v in spectra]
    assert 29 * 5 <= len(spectra) <= 31 * 5
    assert set(products) == {"AUTO_1", "AUTO_2", "AUTO_3", "AUTO_4", "CROSS_12"}
    # the galactic synchrotron sky: power falls about as f^-2.5 across the band
    s = spectra[0][1]["LUSEE_POWER"]
    assert len(s) == 256
    lo, hi = b.d.system("LUSEE").config["band_mhz"]
    f = [lo + (hi - lo) * (k + 0.5) / 256 for k in (20, 200)]
    slope = math.log(s[200] / s[20]) / math.log(f[1] / f[0])
    assert slope == pytest.approx(-2.5, abs=0.1)
    rate = (pl.bytes - bytes0) / 30
    assert rate * 8 == pytest.approx(42_500, rel=0.03)  # 40 kbit/s class science
    assert rate < 0.5 * LINE_BPS and sum(n for _, n in line) / 30 < 0.5 * LINE_BPS
    assert pl.drops == 0 and b.payloads["LUSEE"].stats["tx_overflow"] == 0


def test_science_faster_than_the_line_overflows_the_payload_fifo_not_the_flight_software() -> None:
    # the ground end runs at 921600 baud here: the subject is the payload's line, not the downlink
    b = Bench(power=("FSS", "LUSEE"), baud=921600)
    b.run(7)
    b.send("LUSEE_SET_MODE", mode="SCIENCE")
    b.send("FSS_SET_MODE", mode="SCIENCE")
    fast = b.send("LUSEE_SET_INTEGRATION", integration_ms=100)  # 52.8 kB/s of spectra on an 11.5 kB/s line
    b.run(1)
    assert b.verif(fast) == [1, 3, 7]
    lusee = b.payloads["LUSEE"]
    line = tap(b, "LUSEE")
    fifo_peak = 0

    def watch(t: float, data: bytes) -> None:
        nonlocal fifo_peak
        fifo_peak = max(fifo_peak, lusee.fifo_level(t))
    b.runner.wire_from(lusee, LINE).taps.append(watch)
    t0 = b.clock.now()
    b.run(20)
    written = sum(n for _, n in line)
    assert written / 20 <= LINE_BPS * 1.01 + lusee.tx_fifo_bytes / 20  # the payload never outruns its line
    assert written / 20 > 0.9 * LINE_BPS  # ... and uses nearly all of it
    assert fifo_peak <= lusee.tx_fifo_bytes  # bounded
    assert lusee.stats["tx_overflow"] > 0
    hk = b.hk("LUSEE_HK")[-1]
    assert hk["LUSEE_TX_DROPS"] > 0  # counted and reported by the payload
    pl = b.fsw.payloads.payloads["LUSEE"]
    assert pl.drops > 0.9 * hk["LUSEE_TX_DROPS"]  # seen by the flight software as sequence gaps
    assert b.events("LANDER", "PAYLOAD_DATA_LOST")
    # housekeeping and command replies still get through (science may fill only part of the FIFO) ...
    ping = b.send("PING", "LUSEE")
    fss_ping = b.send("PING", "FSS")
    b.run(2)
    assert b.verif(ping) == [1, 3, 7] and pl.state == "OPERATING" and pl.strikes == 0
    # ... and the other payloads are served as before
    assert b.verif(fss_ping) == [1, 3, 7]
    vbb = science(b, "FSS_VBB_SCI", t0)
    assert len(vbb) >= 20 and b.fsw.payloads.payloads["FSS"].drops == 0


def test_every_reference_payload_declares_a_science_rate_its_line_carries() -> None:
    """The data-rate comments of the payload files, recomputed from the dictionary: each payload's busiest
    science plus its housekeeping uses well under its line (8N1, 25 octets of framing per packet)."""
    d = Bench(power=()).d
    per_packet = {"FSS_VBB_SCI": ("vbb_sps", None), "FSS_SP_SCI": ("sp_sps", None), "LMS_FIELDS": ("sample_sps", None)}
    expected = {"FSS": 1389, "LISTER": 134, "LMS": 268, "LUSEE": 5320}
    for s in d.systems_of_kind("payload"):
        per_s = 0.0
        for p in s.telemetry:
            size = d.codec(p).size + 21 + 4
            if p.category == "hk":
                per_s += size / (p.period_s or s.hk_period_s)
            elif p.name in per_packet:   # one packet per `count` samples
                count = max(prm.count for prm in p.params)
                per_s += size * s.config[per_packet[p.name][0]] / count
            elif p.name == "LUSEE_SPECTRUM":   # one spectrum per product per integration
                per_s += size * len(s.config["products"]) * 1000 / s.config["integration_ms"]
            elif p.name == "LISTER_TEMPS":     # once a second while measuring (LISTER_RESULT: once a measurement)
                per_s += size
        assert per_s == pytest.approx(expected[s.name], abs=2), s.name
        assert per_s < 0.5 * s.baud / 10, s.name


def test_ground_decodes_every_packet_of_the_payloads_and_the_manager_by_name() -> None:
    """Per-payload telemetry comes by name from the dictionary: ground's decoder knows every packet."""
    from ground.decoding import PacketDecoder
    b = Bench(baud=None)
    b.run(7)
    for unit, mode in (("FSS", "SCIENCE"), ("LMS", "DEPLOY"), ("LUSEE", "SCIENCE")):
        b.send(f"{unit}_SET_MODE", mode=mode)
    b.send("LISTER_MEASURE", duration_s=60)
    b.run(1)
    b.send("LMS_SET_MODE", mode="SCIENCE")
    b.run(4)
    dec = PacketDecoder(b.d)
    names = set()
    for raw in b.probe.raw:
        rec = dec.decode(raw)
        assert "error" not in rec, rec
        names.add(rec["name"])
    assert {"FSS_VBB_SCI", "FSS_SP_SCI", "LISTER_TEMPS", "LMS_FIELDS", "LUSEE_SPECTRUM", "PDU_HK", "PAYLOAD_HK",
            "POWER_HK", "FSS_HK", "LISTER_HK", "LMS_HK", "LUSEE_HK"} <= names
