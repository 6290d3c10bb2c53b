"""Load benchmark: a flight-software process serving 16 payload links at 921,600 baud, all saturated.

The child process is a flight-software-like node under the real :class:`fsw.io.runner.RealTimeRunner`:
16 unit ports plus a ground port, each a :class:`fsw.io.link.Link` on a pty.  For every packet from a
unit it does what the flight software's routing does for unit telemetry: deframe (CRC checked), parse
the PUS header (``parse_packet``) and forward the packet to the ground port.  The benchmark process
publishes the 16 unit ptys with *paced* links at 921,600 baud (a pty ignores baud) and gives each more
packets than the measurement window can carry, so every line stays saturated; it reads the ground
port and counts what arrives.

- frames lost: sent by the units - forwarded to ground (and any drop the node's deframers counted);
- the child's share of one core: its user+system CPU time (``/proc/PID/stat``, all threads) over the
  wall time of the window.
Goals: no frame lost; under half a core.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from fsw.io.link import Link
from fsw.protocol import Deframer, PusTm, frame

from . import row

ROOT = Path(__file__).resolve().parents[2]
UNITS = 16
BAUD = 921_600

_CHILD = """
import json, sys
from fsw.core.node import Node
from fsw.io.clock import RealClock
from fsw.io.link import Link
from fsw.io.runner import RealTimeRunner
from fsw.protocol.pus import parse_packet

run_dir, n, baud = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
units = [f"u{i:02d}" for i in range(n)]

class Router(Node):
    def __init__(self):
        super().__init__("fsw", ["ground", *units], max_packet=4096)
        self.bad = 0
    def on_packet(self, port, packet, now):
        if port == "ground":
            return
        parse_packet(packet)   # header and CRC already checked by the deframer; a failure would raise
        self.send_packet("ground", packet)

node = Router()
links = {"ground": Link(f"pty:{run_dir}/ground.pty", baud=baud * n, reconnect_min=0.01)}
links.update({u: Link(f"{run_dir}/{u}.pty", baud=baud, reconnect_min=0.01) for u in units})
runner = RealTimeRunner(RealClock())
runner.add(node, links)
import signal
signal.signal(signal.SIGTERM, lambda *a: runner.stop())
print("ready", flush=True)
try:
    runner.run(duration=float(sys.argv[4]))
finally:
    runner.close()
    st = {p: {"rx": s.rx_packets, "tx": s.tx_packets} for p, s in node.port_stats.items()}
    drops = {p: d.stats()["dropped_bytes"] for p, d in node.deframers.items()}
    reasons = {}
    for d in node.deframers.values():
        for k, v in d.stats().items():
            if k.startswith("drop_") and v:
                reasons[k[5:]] = reasons.get(k[5:], 0) + v
    print(json.dumps({"ports": st, "dropped_bytes": drops, "reasons": reasons}), flush=True)
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(window: float) -> dict:
    import json

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        units = [f"u{i:02d}" for i in range(UNITS)]
        writers = {u: Link(f"pty:{tmp}/{u}.pty", baud=BAUD, pace=True, reconnect_min=0.01, tx_buffer=4 << 20)
                   for u in units}
        for w in writers.values():
            w.open()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen([sys.executable, "-c", _CHILD, tmp, str(UNITS), str(BAUD), str(window + 30)],
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            gpath = Path(tmp) / "ground.pty"
            end = time.monotonic() + 10
            while not (gpath.exists() and all(w.connected for w in writers.values())) and time.monotonic() < end:
                time.sleep(0.01)
            assert all(w.connected for w in writers.values()), "the flight-software process did not open every unit"
            gfd = os.open(gpath, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(gfd)
            received = [0]
            stop = threading.Event()

            def reader() -> None:
                d = Deframer(max_packet=4096)
                while not stop.is_set():
                    if select.select([gfd], [], [], 0.1)[0]:
                        received[0] += sum(1 for x in d.feed(os.read(gfd, 1 << 16)) if isinstance(x, bytes))

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            time.sleep(0.3)  # the ground link notices its peer
            rate = BAUD / 10
            per_link = {}
            for k, (u, w) in enumerate(writers.items()):
                # 64 B frames (60 B packets), as many as the line carries in the window
                pk = [frame(PusTm(0x100 + k, 3, 25, bytes([k]) * 39, seq_count=i & 0x3FFF).pack())
                      for i in range(int(rate * window / 64))]
                per_link[u] = len(pk)
                w.write(b"".join(pk))
            sent = sum(per_link.values())
            t0, c0 = time.monotonic(), _cpu_seconds(child.pid)
            while any(w.tx_pending for w in writers.values()) and time.monotonic() < t0 + window * 2 + 10:
                time.sleep(0.05)
            t1, c1 = time.monotonic(), _cpu_seconds(child.pid)
            # frames still on their way are late, not lost: wait while they keep coming (3 s without one ends it)
            last, end = received[0], time.monotonic() + 3
            while received[0] < sent and time.monotonic() < end:
                time.sleep(0.05)
                if received[0] != last:
                    last, end = received[0], time.monotonic() + 3
            lag = time.monotonic() - t1
            stop.set()
            th.join(2)
            os.close(gfd)
            child.terminate()
            out, _ = child.communicate(timeout=15)
            stats = json.loads(out.strip().splitlines()[-1])
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(5)
            for w in writers.values():
                w.close()
    rx = sum(v["rx"] for p, v in stats["ports"].items() if p != "ground")
    return {"sent": sent, "rx": rx, "ground": received[0], "cpu": c1 - c0, "wall": t1 - t0,
            "dropped_bytes": sum(stats["dropped_bytes"].values()), "reasons": stats["reasons"], "lag": lag, "offered": sent * 64 / (t1 - t0) / UNITS}


def run(quick: bool) -> list[dict]:
    m = measure(2.0 if quick else 8.0)
    lost = m["sent"] - m["ground"]
    share = m["cpu"] / m["wall"]
    return [
        row(f"{UNITS} saturated payload links at {BAUD:,} baud: frames lost", float(lost), goal="0", met=lost == 0,
            unit="frames",
            note=f"{m['sent']:,} frames sent, {m['rx']:,} received by the fsw process, {m['ground']:,} forwarded to "
                 f"ground; {m['dropped_bytes']} bytes dropped by its deframers {m['reasons'] or ''}; "
                 f"{m['offered']:,.0f} B/s per link over {m['wall']:.1f} s (line rate {BAUD / 10:,.0f}); the last "
                 f"frame reached ground {m['lag']:.2f} s after the units finished"),
        row(f"{UNITS} saturated payload links at {BAUD:,} baud: fsw-process CPU, share of one core", share,
            goal="< 0.5", met=share < 0.5, unit="cores",
            note="a flight-software-like router node (deframe, CRC, PUS parse, forward to ground) under the real "
                 "RealTimeRunner and Links; user+system time of all its threads"),
    ]
