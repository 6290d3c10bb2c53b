"""The simulated-time runner: every node in one process, links in memory, the clock jumps.

The runner holds nodes (the flight software, device models, a ground
session ...) and wires between their ports.  A wire behaves like a UART at
its baud: bytes written at ``t`` arrive when their last bit would have, one
chunk per write, and the line is busy until then (:class:`LinePacer`).  An
optional ``impair`` hook (see ``hw_sim.faults``) may alter, drop or delay the
bytes of a write.

Each step jumps the clock to the earliest deadline of any node or delivery,
delivers, runs what is due, and collects output.  For a given seed the
result is the same, byte for byte: ties are broken by filing order.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

from .clock import SimClock
from .node import Node
from .pacing import LinePacer
from .timers import TimerQueue


class Impairment(Protocol):
    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Return (extra delay, bytes) pieces to deliver instead of ``data``."""
        ...


@dataclass
class Wire:
    """One direction of a serial line."""

    dst: Node
    dst_port: str
    pacer: LinePacer | None
    impair: Impairment | None = None
    up: bool = True
    bytes_carried: int = 0
    name: str = ""
    #: observers see every chunk as it is written: tap(now, bytes)
    taps: list[Callable[[float, bytes], None]] = field(default_factory=list)


class SimRunner:
    """Runs nodes on a :class:`SimClock`; see the module docstring."""

    def __init__(self, clock: SimClock | None = None, max_steps_per_instant: int = 100_000) -> None:
        self.clock = clock or SimClock()
        self.nodes: list[Node] = []
        self.wires: dict[tuple[int, str], Wire] = {}
        self._heap: list[tuple[float, int, Wire, bytes]] = []
        self._seq = itertools.count()
        self._started = False
        self._dl: list[float] = []
        self._plain: list[bool] = []
        self._plain_nodes: list[Node] = []
        self._index: dict[int, int] = {}
        self._always: list[int] = []
        self._touched: set[int] = set()
        self.max_steps_per_instant = max_steps_per_instant
        self.steps = 0

    def add(self, node: Node) -> Node:
        if any(n is node for n in self.nodes):
            raise ValueError(f"node {node.name} added twice")
        self.nodes.append(node)
        if self._started:
            node.start(self.clock.now())
        return node

    def connect(self, a: Node, a_port: str, b: Node, b_port: str, baud: int | None = None,
                impair_ab: Impairment | None = None, impair_ba: Impairment | None = None) -> tuple[Wire, Wire]:
        """A full-duplex line between ``a.a_port`` and ``b.b_port``; ``baud=None`` is instantaneous."""
        for n, p in ((a, a_port), (b, b_port)):
            if p not in n.ports:
                raise ValueError(f"{n.name} has no port {p!r} (ports: {', '.join(n.ports)})")
            if (id(n), p) in self.wires:
                raise ValueError(f"{n.name}.{p} is already connected")
        ab = Wire(b, b_port, LinePacer(baud) if baud else None, impair_ab, name=f"{a.name}.{a_port}->{b.name}")
        ba = Wire(a, a_port, LinePacer(baud) if baud else None, impair_ba, name=f"{b.name}.{b_port}->{a.name}")
        self.wires[(id(a), a_port)] = ab
        self.wires[(id(b), b_port)] = ba
        now = self.clock.now()
        a.link_changed(a_port, True, now)
        b.link_changed(b_port, True, now)
        return ab, ba

    def wire_from(self, node: Node, port: str) -> Wire:
        return self.wires[(id(node), port)]

    def set_line(self, node: Node, port: str, up: bool) -> None:
        """Cut or restore the line at ``node.port`` (both directions); both ends are told."""
        out = self.wires[(id(node), port)]
        back = next(w for (nid, p), w in self.wires.items() if w.dst is node and w.dst_port == port)
        out.up = back.up = up
        now = self.clock.now()
        node.link_changed(port, up, now)
        out.dst.link_changed(out.dst_port, up, now)

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._started = True
            now = self.clock.now()
            for n in self.nodes:
                n.start(now)
            self._collect(now)

    def next_time(self) -> float:
        self._refresh()
        return self._next_time()

    # Per-node deadlines are cached.  A node whose deadline is only its TimerQueue's (it does not override
    # next_deadline) is asked again only after it ran, received bytes, or its queue reported a new earliest
    # timer (TimerQueue.notify) -- which also covers nodes calling each other directly (the PDU model
    # powering the payload models schedules their timers).  A cached deadline can only be early, never
    # late: an early one costs a run_due that finds nothing.  Nodes with their own next_deadline are asked
    # every round.  The cache is rebuilt whenever control comes back from outside (run_until, step, next_time).
    def _refresh(self) -> None:
        nodes = self.nodes
        self._dl = [n.next_deadline() for n in nodes]
        if len(self._plain) != len(nodes) or any(a is not b for a, b in zip(self._plain_nodes, nodes)):
            self._plain_nodes = list(nodes)
            self._plain = [type(n).take_output is Node.take_output for n in nodes]
            self._index = {id(n): i for i, n in enumerate(nodes)}
            self._always = []
            for i, n in enumerate(nodes):
                q = getattr(n, "timers", None)
                if type(n).next_deadline is Node.next_deadline and isinstance(q, TimerQueue):
                    q.notify = self._notifier(i)
                else:
                    self._always.append(i)
        self._touched.clear()

    def _notifier(self, i: int) -> Callable[[], None]:
        touched = self._touched

        def notify() -> None:
            touched.add(i)
        return notify

    def _next_time(self) -> float:
        t = self._heap[0][0] if self._heap else math.inf
        dl = self._dl
        if dl:
            d = min(dl)
            if d < t:
                t = d
        return t

    def _collect(self, now: float) -> None:
        nodes = self.nodes
        plain = self._plain if len(self._plain) == len(nodes) else [False] * len(nodes)
        for n, p in zip(nodes, plain):
            if p and not n._out:
                continue
            out = n.take_output()
            if not out:
                continue
            for port, data in out:
                w = self.wires.get((id(n), port))
                if w is None or not w.up:
                    continue  # unconnected port: bytes go nowhere, as on an open connector
                for tap in w.taps:
                    tap(now, data)
                pieces = w.impair.apply(data, now) if w.impair is not None else [(0.0, data)]
                for extra, chunk in pieces:
                    if w.pacer is not None:
                        _, end = w.pacer.reserve(len(chunk), now)
                    else:
                        end = now
                    heapq.heappush(self._heap, (end + extra, next(self._seq), w, chunk))

    def step(self) -> bool:
        """Advance to the next instant where anything happens; False when nothing is left to do."""
        self._refresh()
        return self._step()

    def _step(self) -> bool:
        t = self._next_time()
        if t == math.inf:
            return False
        if t > self.clock.now():
            self.clock.advance_to(t)
        now = self.clock.now()
        nodes = self.nodes
        dl = self._dl
        if len(dl) != len(nodes):
            self._refresh()
            dl = self._dl
        rounds = 0
        touched = self._touched
        always = self._always
        index = self._index
        while True:
            rounds += 1
            if rounds > self.max_steps_per_instant:
                raise RuntimeError(f"more than {self.max_steps_per_instant} exchanges at t={now}: a zero-delay loop")
            delivered = False
            heap = self._heap
            while heap and heap[0][0] <= now:
                _, _, w, chunk = heapq.heappop(heap)
                if w.up:
                    w.bytes_carried += len(chunk)
                    w.dst.receive(w.dst_port, chunk, now)
                    j = index.get(id(w.dst))
                    if j is not None:
                        touched.add(j)
                delivered = True
            for i in always:
                dl[i] = nodes[i].next_deadline()
            if touched:
                for i in touched:
                    dl[i] = nodes[i].next_deadline()
                touched.clear()
            ran = False
            if dl and min(dl) <= now:
                for i, d in enumerate(dl):
                    if d <= now:
                        n = nodes[i]
                        n.run_due(now)
                        dl[i] = n.next_deadline()
                        ran = True
            if not delivered and not ran:
                break   # a quiet round: no node did anything, so none has new output
            self._collect(now)
        self.steps += 1
        return True

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> float:
        """Run until mission time ``t_end`` (or ``stop()`` turns true); returns the time reached."""
        self.start()
        self._refresh()
        self._collect(self.clock.now())  # what nodes wrote between runs (a test's TC) leaves now, not later
        while True:
            if stop is not None and stop():
                break
            t = self._next_time()
            if t > t_end:
                break
            if not self._step():
                break
        if self.clock.now() < t_end and (stop is None or not stop()):
            self.clock.advance_to(t_end)
        return self.clock.now()

    def run_for(self, dt: float, stop: Callable[[], bool] | None = None) -> float:
        return self.run_until(self.clock.now() + dt, stop)
