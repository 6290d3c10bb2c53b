"""Link latency over pseudo-terminals, with real processes (not a test).

- runner echo: a ground-side :class:`fsw.io.link.Link` sends a 40 B TC to a child process running a
  :class:`fsw.io.runner.RealTimeRunner` with an echo node on a published pty; the time until the same
  packet is back.  (This timing used to be an assertion in tests/bench/test_runner.py.)
- PING: the real bench (``ground.procs.start_bench``: hw-sim and the flight software as separate
  processes on ptys) and a :class:`ground.session.GroundSession`; a PING to the lander, from submit to
  its verification completion (TM[1,1], TM[17,2], TM[1,7] decoded and tracked by the ground).
- payload PING: after PAYLOAD_POWER_ON of FSS, a PING to FSS goes through the flight software to the
  FSS simulator on its own pty (115,200 baud, paced) and back.

p50 and p99 of the round trip after a warm-up; goal: p99 <= 2 ms for the lander PING and the echo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fsw.dictionary import load_dictionary
from fsw.io.link import Link
from fsw.protocol import Deframer, PusTc, frame

from . import percentile, row

ROOT = Path(__file__).resolve().parents[2]

def _summary(rtts: list[float]) -> tuple[float, float, float]:
    s = sorted(rtts)
    return percentile(s, 50), percentile(s, 99), s[-1]


def echo_rtts(n: int, warmup: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-echo-") as tmp:
        path = Path(tmp) / "fsw.pty"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen([sys.executable, "-m", "tests.bench.echo_child", str(path), "120"], stdout=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            ground = Link(str(path))
            ground.open()
            try:
                assert ground.connected
                d = Deframer()
                rtts = []
                for i in range(warmup + n):
                    p = PusTc(0x42, 17, 1, bytes([i & 0xFF]) * 40, seq_count=i & 0x3FFF).pack()
                    t0 = time.perf_counter()
                    ground.write(frame(p))
                    got: list = []
                    while not got:
                        chunk = ground.read(2.0)
                        assert chunk, f"no echo for ping {i}"
                        got = d.feed(chunk)
                    rtt = time.perf_counter() - t0
                    assert got == [p], got
                    if i >= warmup:
                        rtts.append(rtt)
                return rtts
            finally:
                ground.close()
        finally:
            child.kill()
            child.wait(5)


def bench_rtts(n: int, warmup: int, n_payload: int) -> tuple[list[float], list[float], float]:
    from ground.procs import start_bench
    from ground.session import GroundSession

    d = load_dictionary()
    with start_bench() as bench:
        with GroundSession(bench.ground_link, d) as s:
            assert s.wait_connected(10), "ground link did not connect"

            def ping(system: str | None) -> float:
                t0 = time.perf_counter()
                r = s.send("PING", system=system)
                dt = time.perf_counter() - t0
                assert r.ok, r
                return dt

            for _ in range(warmup):
                ping(None)
            lander = [ping(None) for _ in range(n)]
            # the power budget is unknown (POWER_BUDGET refusal) until the PDU's telemetry has arrived
            ok = s.wait_for(lambda r: (r.get("params") or {}).get("POWER_PDU_STALE") is False, timeout=15)
            assert ok is not None, "no POWER_PDU_STALE == False from the flight software"
            t0 = time.perf_counter()
            r = s.send("PAYLOAD_POWER_ON", unit="FSS", timeout=30)
            power_on = time.perf_counter() - t0
            assert r.ok, r
            for _ in range(5):
                ping("FSS")
            payload = [ping("FSS") for _ in range(n_payload)]
    return lander, payload, power_on


def run(quick: bool) -> list[dict]:
    rows = []
    n, warm = (100, 20) if quick else (1000, 200)
    p50, p99, mx = _summary(echo_rtts(n, warm))
    rows.append(row("runner echo between processes over a pty, p99 (p50 in note)", p99 * 1e3, goal="<= 2 ms",
                    met=p99 <= 2e-3, unit="ms",
                    note=f"{n} pings of a 40 B TC after {warm} warm-up; p50 {p50 * 1e3:.3f} ms, max {mx * 1e3:.2f} ms"))
    lander, payload, power_on = bench_rtts(n // 2, warm // 2, 30 if quick else 200)
    p50, p99, mx = _summary(lander)
    rows.append(row("PING lander, ground -> fsw -> ground to completion, p99", p99 * 1e3, goal="<= 2 ms",
                    met=p99 <= 2e-3, unit="ms",
                    note=f"{len(lander)} PINGs with start_bench (hw-sim + fsw processes) and a GroundSession; "
                         f"p50 {p50 * 1e3:.3f} ms, max {mx * 1e3:.2f} ms"))
    p50, p99, mx = _summary(payload)
    rows.append(row("PING FSS through the fsw to the payload simulator and back, p99", p99 * 1e3, unit="ms",
                    note=f"{len(payload)} PINGs after PAYLOAD_POWER_ON FSS (completed in {power_on:.2f} s); "
                         f"p50 {p50 * 1e3:.3f} ms, max {mx * 1e3:.2f} ms; unit line 115,200 baud, paced"))
    return rows
