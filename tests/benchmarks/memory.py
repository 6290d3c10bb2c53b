"""Memory benchmark: the flight software's memory stays flat over a long simulated run (no growth per packet).

In a fresh child process a :class:`ground.simbench.SimBench` (flight software, every device model and a
ground node, on the simulated clock) runs in PRELAUNCH with every payload powered (housekeeping of every
unit every second).  After a warm-up, memory is measured at two run lengths, the second twice the
first:

- the Python heap allocated by code under ``fsw/`` and still alive (``tracemalloc``, started after the
  warm-up, so only what the run itself keeps counts), and
- the process's resident set (``/proc/self/statm``; the whole process, ground and devices included).

Growth per packet = (memory at the end - memory after the first length) / flight-software packets
(received and sent on all its ports) in between.  Goal: under 1 byte per packet for the flight
software's heap (a leak of even one small object per packet is tens of bytes).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from . import row

ROOT = Path(__file__).resolve().parents[2]


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: peak RSS is the best there is
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(warmup: float, length: float) -> dict:
    import tracemalloc

    from ground.simbench import SimBench

    sb = SimBench(phase="PRELAUNCH")
    sb.run_for(5)
    for s in sb.dictionary.systems_of_kind("payload"):
        sb.send("PAYLOAD_POWER_ON", unit=s.name)  # some may be refused by the power budget: fine, counted below

    def packets() -> int:
        return sum(st.rx_packets + st.tx_packets for st in sb.fsw.port_stats.values())

    def fsw_heap() -> int:
        gc.collect()
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, str(ROOT / "fsw") + "/*")])
        return sum(st.size for st in snap.statistics("filename"))

    sb.run_for(warmup)
    tracemalloc.start()
    out = {}
    for label, dt in (("a", length), ("b", 2 * length)):
        sb.run_for(dt)
        gc.collect()
        out[label] = {"packets": packets(), "fsw_heap": fsw_heap(), "rss": _rss(), "sim_s": sb.now}
    tracemalloc.stop()
    return out


def run(quick: bool) -> list[dict]:
    warmup, length = (300.0, 600.0) if quick else (600.0, 1200.0)
    code = f"import json; from tests.benchmarks.memory import _child; print(json.dumps(_child({warmup}, {length})))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{res.stderr[-2000:]}")
    m = json.loads(res.stdout.strip().splitlines()[-1])
    a, b = m["a"], m["b"]
    pk = b["packets"] - a["packets"]
    heap_per = (b["fsw_heap"] - a["fsw_heap"]) / pk
    rss_per = (b["rss"] - a["rss"]) / pk
    return [
        row("flight software heap growth per packet (tracemalloc, fsw/ code)", heap_per, goal="< 1 B/packet",
            met=heap_per < 1.0, unit="B/packet",
            note=f"{a['fsw_heap'] / 1024:.0f} KiB after {length:.0f} s simulated, {b['fsw_heap'] / 1024:.0f} KiB "
                 f"after {3 * length:.0f} s; {pk:,} fsw packets in between"),
        row("whole SimBench process RSS growth per packet", rss_per, unit="B/packet",
            note=f"RSS {a['rss'] / 2**20:.1f} MiB -> {b['rss'] / 2**20:.1f} MiB (fsw, device models and ground "
                 f"in one process; page-granular)"),
    ]
