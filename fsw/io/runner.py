"""The real-time runner: drives sans-I/O nodes from real links and a real clock.

One thread, the caller's, makes every call into the nodes; the links' own
threads only move bytes.  Every link posts what happens (bytes, up, down) to
one queue, and the loop blocks on that queue until the earliest of: an item
arrives, a node's next timer deadline, a port's idle gap running out, or the
end of the run.  So a reply goes out as soon as the request is in, with no
polling interval in between, and an idle bench costs nothing.

Several nodes can share a runner (hw-sim serves several devices, each on its
own port, from one process).
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
import traceback
from typing import Callable, Protocol

from ..core.node import Node
from ..protocol.framing import ASM_LEN, DEFAULT_MAX_PACKET
from .link import CONNECTED, DISCONNECTED, Link

__all__ = ["RealTimeRunner"]

#: shortest idle gap; below it, scheduling jitter could split a frame in flight
MIN_IDLE_GAP = 0.05
#: with a ``stop`` event or an ``until`` predicate, look at them at least this often
CHECK_INTERVAL = 0.05
#: link events handled before the nodes' output is written (bounds the delay a busy loop adds to a reply)
BATCH = 64


def _coalesce(out: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Consecutive output for the same port joined into one write (a busy router forwards many frames
    per read: one write, one system call, instead of one per frame).  The order on each port is kept."""
    merged: list[tuple[str, bytes]] = []
    port, parts = out[0][0], [out[0][1]]
    for p, data in out[1:]:
        if p == port:
            parts.append(data)
        else:
            merged.append((port, parts[0] if len(parts) == 1 else b"".join(parts)))
            port, parts = p, [data]
    merged.append((port, parts[0] if len(parts) == 1 else b"".join(parts)))
    return merged


class _Clock(Protocol):
    def now(self) -> float: ...
    def sleep_time(self, deadline: float) -> float: ...


class _Entry:
    __slots__ = ("node", "links", "gaps", "partial", "started")

    def __init__(self, node: Node, links: dict[str, Link], gaps: dict[str, float]) -> None:
        self.node = node
        self.links = links
        self.gaps = gaps
        self.partial: dict[str, float] = {}  # port -> monotonic time at which its partial frame goes stale
        self.started = False


class RealTimeRunner:
    """Drives one or more sans-I/O :class:`~fsw.core.node.Node` objects from real links and a real clock.

    ``clock`` has ``now()`` (mission seconds) and ``sleep_time(deadline)`` (real
    seconds until a mission-time deadline), like :class:`fsw.io.clock.RealClock`.
    ``idle_gap`` (real seconds) overrides the per-port default: the time
    ``max_packet`` bytes (plus the sync marker) take at the link's baud, at least 50 ms.
    """

    def __init__(self, clock: _Clock, idle_gap: float | None = None) -> None:
        if idle_gap is not None and not idle_gap > 0:
            raise ValueError(f"idle_gap must be positive, got {idle_gap!r}")
        self.clock = clock
        self.idle_gap = idle_gap
        self._entries: list[_Entry] = []
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop_requested = False
        self._running = False
        #: node name -> bytes sent by a node added with no links (discarded)
        self.unlinked_bytes: dict[str, int] = {}
        self._closed = False

    def add(self, node: Node, links: dict[str, Link]) -> None:
        """Serve ``node`` on ``links`` (port name -> Link), which must cover ``node.ports`` exactly.

        Opens each link that is not open yet, so a ``pty:`` link's path exists when this returns.
        An empty mapping runs the node with no lines at all (hw-sim keeps unserved units powered and
        ticking): what it sends is discarded and counted in :attr:`unlinked_bytes`.
        """
        if self._closed:
            raise ValueError("runner is closed")
        ports = set(node.ports)
        missing = sorted(ports - links.keys()) if links else []
        extra = sorted(links.keys() - ports)
        if missing:
            raise ValueError(f"node {node.name!r}: no link given for port(s) {', '.join(missing)}")
        if extra:
            raise ValueError(f"node {node.name!r} has no port(s) {', '.join(extra)}; its ports are "
                             f"{', '.join(node.ports)}")
        used = {id(link) for e in self._entries for link in e.links.values()}
        if any(id(link) in used for link in links.values()) or len({id(v) for v in links.values()}) != len(links):
            raise ValueError(f"node {node.name!r}: a link can serve only one port of one node")
        max_packet = getattr(node, "max_packet", DEFAULT_MAX_PACKET)
        gaps = {port: self.idle_gap if self.idle_gap is not None else
                max(MIN_IDLE_GAP, (max_packet + ASM_LEN) * link.bits_per_byte / link.baud)
                for port, link in links.items()}
        entry = _Entry(node, dict(links), gaps)
        for port, link in entry.links.items():
            link.set_listener(self._poster(entry, port))
        self._entries.append(entry)
        for link in entry.links.values():
            link.open()

    def _poster(self, entry: _Entry, port: str) -> Callable[[str, object], None]:
        put = self._q.put

        def post(kind: str, payload: object) -> None:
            put((entry, port, kind, payload))
        return post

    def stop(self) -> None:
        """Make the current (or, if none is running, the next) :meth:`run` return soon; safe from any thread."""
        self._stop_requested = True
        self._q.put(None)

    def run(self, duration: float | None = None, stop: threading.Event | None = None,
            until: Callable[[], bool] | None = None) -> None:
        """Run until ``duration`` real seconds have passed, ``stop`` is set, ``until()`` is true or
        :meth:`stop` is called (with none of them: until :meth:`stop`).

        Exceptions raised by node code are written to stderr with the node and call named, then re-raised.
        """
        if self._closed:
            raise ValueError("runner is closed")
        if self._running:
            raise ValueError("runner is already running")
        self._running = True
        try:
            self._loop(duration, stop, until)
        finally:
            self._running = False
            self._stop_requested = False  # a stop() that raced ahead of run() still ended that run

    def _loop(self, duration: float | None, stop: threading.Event | None,
              until: Callable[[], bool] | None) -> None:
        clock = self.clock
        entries = self._entries
        mono = time.monotonic
        t_end = mono() + duration if duration is not None else math.inf
        poll = CHECK_INTERVAL if (stop is not None or until is not None) else math.inf
        get = self._q.get
        now = clock.now()
        for e in entries:
            if not e.started:
                e.started = True
                self._call(e, "start", e.node.start, now)
                self._flush(e)
        dirty: list[_Entry] = []  # nodes whose output waits for the end of the batch
        while True:
            # what already arrived, without blocking (a bounded batch); then each node's output in one write per
            # port: under load, one system call per batch instead of one per read
            for _ in range(BATCH):
                try:
                    item = get(block=False)
                except queue.Empty:
                    break
                if item is not None:
                    e = self._handle(item)
                    if e not in dirty:
                        dirty.append(e)
            for e in dirty:
                self._flush(e)
            dirty.clear()
            now = clock.now()
            wake = t_end
            t = mono()
            for e in entries:
                node = e.node
                if node.next_deadline() <= now:
                    self._call(e, "run_due", node.run_due, now)
                    self._flush(e)
                if e.partial:
                    deframers = getattr(node, "deframers", None)
                    for port, stale_at in list(e.partial.items()):
                        if t >= stale_at:
                            del e.partial[port]
                            # a partial frame with nothing after it is kept: its bytes may still be arriving
                            # (a stalled sender, a link thread not yet scheduled), and it holds back no other
                            # frame.  The next bytes re-arm the gap; the flush comes once a frame follows it.
                            if deframers is None or deframers[port].overtaken:
                                self._call(e, f"line_idle({port!r})", node.line_idle, port, now)
                                self._flush(e)
                        elif stale_at < wake:
                            wake = stale_at
            if self._stop_requested or (stop is not None and stop.is_set()) or (until is not None and until()):
                return
            t = mono()
            if t >= t_end:
                return
            timeout = min(wake - t, poll)
            for e in entries:
                d = e.node.next_deadline()
                if d != math.inf:
                    timeout = min(timeout, clock.sleep_time(d))
            if timeout <= 0:
                continue
            try:
                item = get(timeout=None if timeout == math.inf else min(timeout, threading.TIMEOUT_MAX))
            except queue.Empty:
                continue
            if item is not None:
                dirty.append(self._handle(item))

    def _handle(self, item: tuple[_Entry, str, str, object]) -> _Entry:
        """Hand one link event to its node; the caller flushes the node's output."""
        e, port, kind, payload = item
        node = e.node
        now = self.clock.now()
        if kind == "data":
            try:
                node.receive(port, payload, now)
            except Exception:
                self._report(e, f"receive({port!r})")
                raise
            deframers = getattr(node, "deframers", None)
            if deframers is None or deframers[port].buffered:
                e.partial[port] = time.monotonic() + e.gaps[port]
            else:
                e.partial.pop(port, None)
        elif kind == CONNECTED:
            self._call(e, f"link_changed({port!r}, up)", node.link_changed, port, True, now)
        elif kind == DISCONNECTED:
            self._call(e, f"link_changed({port!r}, down)", node.link_changed, port, False, now)
        return e

    def _flush(self, e: _Entry) -> None:
        out = self._call(e, "take_output", e.node.take_output)
        if not out:
            return
        if len(out) > 1:
            out = _coalesce(out)
        for port, data in out:
            link = e.links.get(port)
            if link is not None:
                link.write(data)
            elif e.links:
                raise ValueError(f"node {e.node.name!r} sent on port {port!r}, which has no link")
            else:
                self.unlinked_bytes[e.node.name] = self.unlinked_bytes.get(e.node.name, 0) + len(data)

    @staticmethod
    def _call(e: _Entry, what: str, fn: Callable, *args: object):  # type: ignore[type-arg]
        try:
            return fn(*args)
        except Exception:
            RealTimeRunner._report(e, what)
            raise

    @staticmethod
    def _report(e: _Entry, what: str) -> None:
        sys.stderr.write(f"fsw.io.runner: node {e.node.name!r} raised in {what}:\n{traceback.format_exc()}")
        sys.stderr.flush()

    def close(self) -> None:
        """Close every link.  Idempotent."""
        self._closed = True
        for e in self._entries:
            for link in e.links.values():
                link.set_listener(None)
                link.close()

    def __enter__(self) -> "RealTimeRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
