"""The real-time runner driving sans-I/O nodes over real pseudo-terminals (fsw.io.runner)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from fsw.core.node import Node
from fsw.io.clock import RealClock
from fsw.io.link import Link
from fsw.io.runner import RealTimeRunner
from fsw.protocol import Deframer, Dropped, PusTc, frame

from .conftest import EventLog, raw_peer, wait_until

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]


def packet(i: int, size: int = 20) -> bytes:
    return PusTc(0x42, 17, 1, bytes([i & 0xFF]) * size, seq_count=i).pack()


class EchoNode(Node):
    """Sends every packet back on the port it came from, and remembers what the runner told it."""

    def __init__(self, name: str = "echo", ports: tuple[str, ...] = ("gnd",), max_packet: int = 256) -> None:
        super().__init__(name, ports, max_packet=max_packet)
        self.started_at: float | None = None
        self.changes: list[tuple[str, bool]] = []
        self.idles: list[str] = []
        self.dropped: list[tuple[str, Dropped]] = []
        self.packets: list[bytes] = []

    def start(self, now: float) -> None:
        self.started_at = now

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        self.packets.append(packet)
        self.send_packet(port, packet)

    def on_dropped(self, port: str, dropped: Dropped, now: float) -> None:
        self.dropped.append((port, dropped))

    def link_changed(self, port: str, up: bool, now: float) -> None:
        super().link_changed(port, up, now)
        self.changes.append((port, up))

    def line_idle(self, port: str, now: float) -> None:
        self.idles.append(port)
        super().line_idle(port, now)


class Bench:
    """A runner serving nodes on published ptys, run in a background thread."""

    def __init__(self, **runner_kw: object) -> None:
        self.runner = RealTimeRunner(RealClock(), **runner_kw)  # type: ignore[arg-type]
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        def main() -> None:
            try:
                self.runner.run(stop=self.stop)
            except BaseException as e:  # surfaced by the test through .error
                self.error = e
        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5)
            assert not self.thread.is_alive(), "run() returns once stop is set"
        self.runner.close()
        assert self.error is None, self.error


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench()
    yield b
    b.close()


def read_packets(fd: int, n: int, timeout: float = 5.0) -> list[bytes]:
    """Deframe ``n`` packets from a raw descriptor."""
    d = Deframer()
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    while len(out) < n and time.monotonic() < deadline:
        if select.select([fd], [], [], deadline - time.monotonic())[0]:
            out += [p for p in d.feed(os.read(fd, 65536)) if isinstance(p, bytes)]
    return out


def test_frames_go_in_and_come_out(bench: Bench, pty_dir: Path) -> None:
    node = EchoNode()
    path = pty_dir / "fsw.pty"
    bench.runner.add(node, {"gnd": Link(f"pty:{path}", reconnect_min=0.01)})
    assert path.is_symlink(), "add() opens the link, so the pty is published at once"
    bench.start()
    with raw_peer(path) as fd:
        assert wait_until(lambda: node.port_stats["gnd"].up)
        sent = [packet(i) for i in range(5)]
        os.write(fd, b"".join(frame(p) for p in sent[:3]))   # three frames in one write
        for b in frame(sent[3]):                              # one frame a byte at a time
            os.write(fd, bytes([b]))
        os.write(fd, b"\x00junk\xff" + frame(sent[4]))        # one after line noise
        assert read_packets(fd, 5) == sent
    assert node.started_at is not None
    assert node.packets == sent
    assert [d.reason for _, d in node.dropped] == ["no_sync"]


def test_line_idle_keeps_a_slow_frame_and_flushes_a_dead_one(pty_dir: Path) -> None:
    bench = Bench(idle_gap=0.05)
    node = EchoNode()
    path = pty_dir / "fsw.pty"
    bench.runner.add(node, {"gnd": Link(f"pty:{path}", reconnect_min=0.01)})
    bench.start()
    try:
        with raw_peer(path) as fd:
            assert wait_until(lambda: node.port_stats["gnd"].up)
            whole = frame(packet(1, size=100))
            os.write(fd, whole[:40])  # the sender stalls mid-frame for several idle gaps
            assert wait_until(lambda: node.deframers["gnd"].buffered == 40)
            assert not wait_until(lambda: node.idles or node.dropped, timeout=0.3)
            os.write(fd, whole[40:])  # ... and the rest comes after all: the frame is not lost
            assert read_packets(fd, 1) == [packet(1, size=100)]
            assert node.idles == [] and node.dropped == []
            os.write(fd, whole[:40])  # now the sender dies mid-frame and starts over
            t0 = time.monotonic()
            os.write(fd, frame(packet(2)))
            assert read_packets(fd, 1) == [packet(2)]  # the stale bytes go at the next idle gap
            assert time.monotonic() - t0 >= 0.05, "not before the idle gap"
            assert node.idles == ["gnd"]
            assert [d.reason for _, d in node.dropped] == ["truncated"]
            assert node.deframers["gnd"].buffered == 0
    finally:
        bench.close()


def test_default_idle_gap_is_a_max_packet_at_the_baud(pty_dir: Path) -> None:
    bench = Bench()
    slow = EchoNode("slow", max_packet=4096)
    bench.runner.add(slow, {"gnd": Link(f"pty:{pty_dir / 'slow.pty'}", baud=9600)})
    bench.start()
    try:
        with raw_peer(pty_dir / "slow.pty") as fd:
            assert wait_until(lambda: slow.port_stats["gnd"].up)
            os.write(fd, frame(packet(1))[:10])
            # 4100 bytes at 960 B/s: no flush for more than four seconds; see that none comes early
            assert not wait_until(lambda: slow.idles, timeout=0.3)
    finally:
        bench.close()


def test_link_up_and_down_reach_the_node(bench: Bench, pty_dir: Path) -> None:
    node = EchoNode()
    path = pty_dir / "fsw.pty"
    bench.runner.add(node, {"gnd": Link(f"pty:{path}", reconnect_min=0.01)})
    bench.start()
    assert node.changes == []
    with raw_peer(path):
        assert wait_until(lambda: node.changes == [("gnd", True)])
    assert wait_until(lambda: node.changes == [("gnd", True), ("gnd", False)])
    with raw_peer(path) as fd:
        assert wait_until(lambda: len(node.changes) == 3)
        os.write(fd, frame(packet(9)))
        assert read_packets(fd, 1) == [packet(9)]
    assert wait_until(lambda: len(node.changes) == 4)
    st = node.link_stats("gnd")
    assert node.changes[2:] == [("gnd", True), ("gnd", False)]
    assert st["link_ups"] == 2 and st["link_downs"] == 2 and st["up"] == 0


def test_a_device_side_link_that_connects_late_reports_up(bench: Bench, pty_dir: Path) -> None:
    """The node's port is a device path that does not exist yet (hw-sim not started)."""
    path = pty_dir / "late.pty"
    node = EchoNode()
    log = EventLog()
    bench.runner.add(node, {"gnd": Link(str(path), reconnect_min=0.01, reconnect_max=0.05, on_event=log)})
    bench.start()
    assert log.wait_for("open_failed")
    peer = Link(f"pty:{path}")
    peer.open()
    try:
        assert wait_until(lambda: node.changes == [("gnd", True)])
        assert wait_until(lambda: peer.connected)
        peer.write(frame(packet(3)))
        d = Deframer()
        got: list[bytes | Dropped] = []
        assert wait_until(lambda: bool(got.extend(d.feed(peer.read(0.01))) or got))
        assert got == [packet(3)]
    finally:
        peer.close()
    assert wait_until(lambda: node.changes[-1] == ("gnd", False))


def test_several_nodes_in_one_runner(bench: Bench, pty_dir: Path) -> None:
    a = EchoNode("dev-a", ports=("p",))
    b = EchoNode("dev-b", ports=("p", "q"))
    bench.runner.add(a, {"p": Link(f"pty:{pty_dir / 'a.pty'}", reconnect_min=0.01)})
    bench.runner.add(b, {"p": Link(f"pty:{pty_dir / 'b.pty'}", reconnect_min=0.01),
                         "q": Link(f"pty:{pty_dir / 'c.pty'}", reconnect_min=0.01)})
    bench.start()
    with raw_peer(pty_dir / "a.pty") as fa, raw_peer(pty_dir / "b.pty") as fb, raw_peer(pty_dir / "c.pty") as fc:
        assert wait_until(lambda: a.port_stats["p"].up and b.port_stats["p"].up and b.port_stats["q"].up)
        os.write(fa, frame(packet(1)))
        os.write(fb, frame(packet(2)))
        os.write(fc, frame(packet(3)))
        assert read_packets(fa, 1) == [packet(1)]
        assert read_packets(fb, 1) == [packet(2)]
        assert read_packets(fc, 1) == [packet(3)]
    # each port has its own reader thread: order across ports is not defined, within a port it is
    assert a.packets == [packet(1)] and sorted(b.packets) == sorted([packet(2), packet(3)])


class TickNode(Node):
    """Sends a packet every 20 ms of mission time from start."""

    def __init__(self) -> None:
        super().__init__("tick", ["gnd"])
        self.ticks = 0

    def start(self, now: float) -> None:
        self.timers.every(0.02, self._tick, now + 0.02)

    def _tick(self, now: float) -> None:
        self.ticks += 1
        self.send_packet("gnd", packet(self.ticks))


def test_timers_wake_the_runner_and_until_ends_the_run(pty_dir: Path) -> None:
    node = TickNode()
    unserved = TickNode()  # added with no links: it still runs, its output is discarded and counted
    unserved.name = "unserved"
    path = pty_dir / "tick.pty"
    runner = RealTimeRunner(RealClock())
    link = Link(f"pty:{path}", reconnect_min=0.01)
    runner.add(node, {"gnd": link})
    runner.add(unserved, {})
    try:
        with raw_peer(path) as fd:
            t0 = time.monotonic()
            runner.run(until=lambda: node.ticks >= 10, duration=5)
            elapsed = time.monotonic() - t0
            assert node.ticks == 10
            assert 0.2 - 0.005 <= elapsed < 2.0, elapsed
            # ticks sent before the link noticed the peer are dropped and counted; the rest arrive in order
            delivered = 10 - link.stats["write_drops"]
            assert delivered >= 5
            assert read_packets(fd, delivered, timeout=2) == [packet(i) for i in range(11 - delivered, 11)]
        t0 = time.monotonic()
        runner.run(duration=0.1)
        assert 0.1 <= time.monotonic() - t0 < 1.0
        assert node.ticks >= 13
        assert unserved.ticks == node.ticks
        assert runner.unlinked_bytes == {"unserved": unserved.port_stats["gnd"].tx_bytes}
    finally:
        runner.close()


def test_stop_from_another_thread(pty_dir: Path) -> None:
    runner = RealTimeRunner(RealClock())
    runner.add(EchoNode(), {"gnd": Link(f"pty:{pty_dir / 'x.pty'}")})
    timer = threading.Timer(0.05, runner.stop)
    timer.start()
    t0 = time.monotonic()
    runner.run()  # nothing else would end it
    assert time.monotonic() - t0 < 2.0
    timer.join()
    runner.close()


class Broken(EchoNode):
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        raise RuntimeError("node bug")


def test_node_exceptions_are_logged_and_reraised(pty_dir: Path, capfd: pytest.CaptureFixture) -> None:
    path = pty_dir / "fsw.pty"
    runner = RealTimeRunner(RealClock())
    runner.add(Broken("broken"), {"gnd": Link(f"pty:{path}", reconnect_min=0.01)})
    try:
        with raw_peer(path) as fd:
            os.write(fd, frame(packet(1)))
            with pytest.raises(RuntimeError, match="node bug"):
                runner.run(duration=5)
    finally:
        runner.close()
    err = capfd.readouterr().err
    assert "node 'broken' raised in receive('gnd')" in err and "node bug" in err


def test_add_checks_the_ports(pty_dir: Path) -> None:
    runner = RealTimeRunner(RealClock())
    node = EchoNode(ports=("a", "b"))
    with pytest.raises(ValueError, match="no link given for port.*b"):
        runner.add(node, {"a": Link("loop://")})
    with pytest.raises(ValueError, match="has no port.*c"):
        runner.add(node, {"a": Link("loop://"), "b": Link("loop://"), "c": Link("loop://")})
    shared = Link("loop://")
    with pytest.raises(ValueError, match="only one port"):
        runner.add(node, {"a": shared, "b": shared})
    with pytest.raises(ValueError, match="idle_gap"):
        RealTimeRunner(RealClock(), idle_gap=0)
    runner.close()


def test_ping_round_trip_between_processes(pty_dir: Path) -> None:
    """ground -> fsw -> ground over ptys, each side in its own process as on a bench: every packet comes back.

    Functional only: how fast the round trip is (p50/p99) is measured by the benchmark suite
    (``make bench``, tests/benchmarks/latency.py), not asserted here.
    """
    path = pty_dir / "fsw.pty"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "tests.bench.echo_child", str(path)], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        ground = Link(str(path))
        ground.open()
        try:
            assert ground.connected
            d = Deframer()
            for seq in range(100):
                p = packet(seq, size=40)
                ground.write(frame(p))
                got: list[bytes | Dropped] = []
                while not got:
                    chunk = ground.read(2.0)
                    assert chunk, f"no echo for ping {seq}"
                    got = d.feed(chunk)
                assert got == [p], f"ping {seq}: {got}"
            assert d.stats()["dropped_bytes"] == 0 and d.buffered == 0
        finally:
            ground.close()
    finally:
        child.kill()
        child.wait(5)
