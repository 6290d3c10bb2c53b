"""A stand-in flight software that echoes every packet, on a pty it publishes: ``python -m tests.bench.echo_child PATH [SECONDS]``.

Shared by the real-pty round-trip test (tests/bench/test_runner.py) and the latency benchmark
(tests/benchmarks/latency.py).  Prints ``ready`` once the pty exists.
"""

from __future__ import annotations

import sys

from fsw.core.node import Node
from fsw.io.clock import RealClock
from fsw.io.link import Link
from fsw.io.runner import RealTimeRunner


class Echo(Node):
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        self.send_packet(port, packet)


def main(argv: list[str]) -> int:
    runner = RealTimeRunner(RealClock())
    runner.add(Echo("fsw", ["gnd"]), {"gnd": Link("pty:" + argv[0], reconnect_min=0.01)})
    print("ready", flush=True)
    try:
        runner.run(duration=float(argv[1]) if len(argv) > 1 else 30.0)  # the caller usually kills us sooner
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
