"""The whole payload suite powered and producing science at paced rates, over real pseudo-terminals.

hw-sim and fsw run as separate processes; each payload's output is paced at
its line rate by hw-sim (a pseudo-terminal ignores baud).  Every payload is
switched on and put in the mode in which it produces science; then, over a
few seconds of real time, each payload's data rate is measured twice:

* on board: the payload manager's byte counters in PAYLOAD_HK (PL_BYTES,
  PL_SCI_BYTES), differenced between two housekeeping cycles;
* on the ground: the science packets that arrived, each counted at its packet
  size, over the same stretch of mission time.

Each rate is checked against the payload's declared data rate for that mode
(planning.yaml ``data_rate_bps``, the figure the data budgets use) and against
its line's capacity, baud / 10 octets a second (8N1), which it may never
exceed; and the two measurements must agree (nothing lost between the
payload and the ground, no sequence gap on board).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fsw.core.planning import parse_planning
from fsw.io.library import onboard_library
from fsw.protocol.pus import PusTm
from ground.procedures import LinkBackend, Procedure

from .bench_procs import running_bench

pytestmark = pytest.mark.bench

#: how each payload enters the mode in which it produces science: (mode, command, arguments)
SCIENCE = {
    "FSS": ("SCIENCE", "FSS_SET_MODE", {"mode": "SCIENCE"}),
    "LISTER": ("MEASURE", "LISTER_MEASURE", {"duration_s": 600}),   # completes at its end: not awaited
    "LMS": ("SCIENCE", "LMS_SET_MODE", {"mode": "SCIENCE"}),
    "LUSEE": ("SCIENCE", "LUSEE_SET_MODE", {"mode": "SCIENCE"}),
}
#: measured over at least this much mission time (s)
WINDOW_S = 4.0
#: the declared rates are budget figures: a payload's measured rate must lie within this factor of its own.
#: (A factor 2 off, e.g. a doubled cadence or a missing product, fails; see the report of the FSS below.)
DECLARED_TOLERANCE = 1.5


def packet_size(d, name: str) -> int:
    """Octets of one fixed-layout packet on the wire (without the frame's sync marker)."""
    pkt = d.packet(name)
    return len(PusTm(pkt.apid or 0, pkt.service, pkt.subservice, bytes(d.codec(pkt).size)).pack())


def hk_cycle(proc: Procedure, units: list[str], timeout: float = 3.0) -> dict[str, dict]:
    """One complete PAYLOAD_HK cycle (a row per payload, the same time stamp) from now on."""
    rows: dict[str, dict] = {}

    def match(rec: dict) -> bool:
        if rec["name"] != "PAYLOAD_HK":
            return False
        p = dict(rec["params"], _time=rec["time"])
        if rows and next(iter(rows.values()))["_time"] != rec["time"]:
            rows.clear()
        rows[p["PL_UNIT"]] = p
        return set(units) <= set(rows)
    match.__name__ = "a PAYLOAD_HK cycle"
    proc.wait_tm(match, timeout=timeout, since="now")
    return rows


def test_whole_suite_at_paced_rates_within_the_line_rate(tmp_path: Path) -> None:
    # PRELAUNCH (integration and test): every mode allowed, 60 W for the 49.5 W of the four science modes,
    # and PAYLOAD_HK every second
    with running_bench(tmp_path / "run", phase="PRELAUNCH") as bench:
        backend = LinkBackend.connect(bench.ground_link)
        try:
            lines: list[str] = []
            proc = Procedure(backend, log=lines.append)
            try:
                measure(proc)
            finally:
                print("\n".join(lines[-60:]))
        finally:
            backend.close()


def measure(proc: Procedure) -> None:
    d = proc.dictionary
    planning = parse_planning(onboard_library()["planning"], d)
    units = [s.name for s in d.systems_of_kind("payload")]
    assert sorted(units) == sorted(SCIENCE), "a payload without a science mode in this test"

    proc.step("power every payload")
    proc.wait_tm("POWER_PDU_STALE", "==", False, timeout=5)
    tcs = [proc.submit("PAYLOAD_POWER_ON", unit=u) for u in units]       # they boot in parallel
    for tc in tcs:
        r = proc.wait(tc)
        assert r.ok, r

    proc.step("science modes")
    for unit in units:
        mode, cmd, args = SCIENCE[unit]
        if cmd.endswith("_SET_MODE"):
            proc.send_and_assert(cmd, **args)
        else:
            proc.submit(cmd, **args)
    for unit in units:
        mode = SCIENCE[unit][0]
        proc.wait_tm(f"{unit}_MODE", "==", mode, timeout=3)
    start = hk_cycle(proc, units)
    # every payload OPERATING in its science mode at the start of the window
    for unit in units:
        row = start[unit]
        assert row["PL_STATE"] == "OPERATING", (unit, row)
        assert d.system(unit).modes[row["PL_MODE"]] == SCIENCE[unit][0], (unit, row)
    window_from = proc.mark()
    proc.sleep(WINDOW_S - 0.5)
    end = hk_cycle(proc, units)
    t0, t1 = start[units[0]]["_time"], end[units[0]]["_time"]
    assert t1 - t0 >= WINDOW_S - 1.0

    # ground side: the science packets generated in (t0, t1], by their own time stamps
    sizes = {p.name: packet_size(d, p.name) for s in d.systems for p in s.telemetry if p.category == "science"}
    ground_bytes = {u: 0 for u in units}
    for rec in proc.records(since=window_from):
        if rec.get("name") in sizes and t0 < rec["time"] <= t1:
            ground_bytes[rec["system"]] += sizes[rec["name"]]

    report = [f"{'unit':<7} {'mode':<8} {'science B/s':>11} {'ground B/s':>10} {'total B/s':>9} "
              f"{'declared B/s':>12} {'line B/s':>8}"]
    failures = []
    total_all = 0.0
    for unit in units:
        s = d.system(unit)
        dt = end[unit]["_time"] - start[unit]["_time"]
        sci = (end[unit]["PL_SCI_BYTES"] - start[unit]["PL_SCI_BYTES"]) / dt
        total = (end[unit]["PL_BYTES"] - start[unit]["PL_BYTES"]) / dt
        ground = ground_bytes[unit] / dt
        declared = planning.rate(unit, SCIENCE[unit][0]) / 8.0
        line = s.baud / 10.0
        total_all += total
        report.append(f"{unit:<7} {SCIENCE[unit][0]:<8} {sci:11.0f} {ground:10.0f} {total:9.0f} {declared:12.0f} "
                      f"{line:8.0f}")
        if not sci > 0:
            failures.append(f"{unit}: no science data")
        if not total <= line:
            failures.append(f"{unit}: {total:.0f} B/s is above its line rate of {line:.0f} B/s")
        if abs(ground - sci) > 0.1 * sci + 50:
            failures.append(f"{unit}: the ground received {ground:.0f} B/s of science, the payload manager "
                            f"counted {sci:.0f} B/s")
        if end[unit]["PL_DROPS"] != start[unit]["PL_DROPS"]:
            failures.append(f"{unit}: {end[unit]['PL_DROPS'] - start[unit]['PL_DROPS']} packets lost on its line")
        if not declared / DECLARED_TOLERANCE <= total <= declared * DECLARED_TOLERANCE:
            failures.append(f"{unit}: {total * 8:.0f} bit/s against {declared * 8:.0f} bit/s declared")
    # what the flight software forwards must fit the ground line too (115200 baud, 8N1)
    report.append(f"all payloads: {total_all:.0f} B/s of the ground line's 11520 B/s")
    print("\n" + "\n".join(report))
    assert total_all <= 115200 / 10
    assert not failures, "\n".join(failures + report)
    # no output FIFO overflowed on any payload
    for unit, param in (("FSS", "FSS_TX_DROPS"), ("LISTER", "LISTER_TX_DROPS"), ("LMS", "LMS_TX_DROPS"),
                        ("LUSEE", "LUSEE_TX_DROPS")):
        assert proc.value(param) == 0, (unit, param)

    proc.step("power off")
    for unit in units:
        proc.send_and_assert("PAYLOAD_POWER_OFF", unit=unit)
