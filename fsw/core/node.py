"""The sans-I/O component shape shared by the flight software and every simulated device.

A node talks framed space packets on named ports.  It never touches a port,
a thread or a clock: a runner hands it bytes with ``receive(port, data, now)``,
wakes it with ``run_due(now)`` at ``next_deadline()``, and collects the bytes
it wants to send with ``take_output()``.  The simulated-time runner and the
real-time runner drive the very same node objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..protocol.framing import DEFAULT_MAX_PACKET, Deframer, Dropped, frame
from .timers import TimerQueue


@dataclass(slots=True)
class PortStats:
    """What one port has seen; the deframer keeps the drop counters."""

    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    link_ups: int = 0
    link_downs: int = 0
    up: bool = False
    last_rx: float | None = None
    rejected: int = 0  # packets that deframed but were refused by the node
    extra: dict = field(default_factory=dict)


class Node:
    """Base class: per-port deframers and statistics, an outbox and a timer queue."""

    def __init__(self, name: str, ports: Iterable[str], max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self.name = name
        self.timers = TimerQueue()
        self._out: list[tuple[str, bytes]] = []
        self.max_packet = max_packet
        self.deframers: dict[str, Deframer] = {}
        self.port_stats: dict[str, PortStats] = {}
        for p in ports:
            self.add_port(p)

    # -- wiring ---------------------------------------------------------------
    def add_port(self, port: str) -> None:
        if port in self.deframers:
            raise ValueError(f"{self.name}: port {port!r} declared twice")
        self.deframers[port] = Deframer(max_packet=self.max_packet)
        self.port_stats[port] = PortStats()

    @property
    def ports(self) -> tuple[str, ...]:
        return tuple(self.deframers)

    # -- runner interface -----------------------------------------------------
    def start(self, now: float) -> None:
        """Called once by the runner before anything else."""

    def receive(self, port: str, data: bytes, now: float) -> None:
        """Bytes arrived on ``port``.  Never raises for any content of ``data``."""
        try:
            deframer = self.deframers[port]
        except KeyError:
            raise ValueError(f"{self.name}: no port {port!r}") from None
        st = self.port_stats[port]
        st.rx_bytes += len(data)
        for item in deframer.feed(data):
            if type(item) is Dropped:
                self.on_dropped(port, item, now)
            else:
                st.rx_packets += 1
                st.last_rx = now
                self.on_packet(port, item, now)

    def line_idle(self, port: str, now: float) -> None:
        """The line has been quiet for longer than a frame takes: flush a stale partial frame."""
        st = self.port_stats[port]
        for item in self.deframers[port].flush():
            if type(item) is Dropped:
                self.on_dropped(port, item, now)
            else:
                st.rx_packets += 1
                st.last_rx = now
                self.on_packet(port, item, now)

    def link_changed(self, port: str, up: bool, now: float) -> None:
        """The adapter (re)connected or lost ``port``."""
        st = self.port_stats[port]
        if up and not st.up:
            st.link_ups += 1
        elif not up and st.up:
            st.link_downs += 1
        st.up = up

    def next_deadline(self) -> float:
        return self.timers.next_deadline()

    def run_due(self, now: float) -> None:
        self.timers.run_due(now)

    def take_output(self) -> list[tuple[str, bytes]]:
        out = self._out
        self._out = []
        return out

    # -- for subclasses -------------------------------------------------------
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        """A packet with a valid length and CRC arrived."""

    def on_dropped(self, port: str, dropped: Dropped, now: float) -> None:
        """The deframer discarded bytes (already counted by the deframer)."""

    def send_packet(self, port: str, packet: bytes) -> None:
        if port not in self.port_stats:
            raise ValueError(f"{self.name}: no port {port!r}")
        st = self.port_stats[port]
        st.tx_packets += 1
        st.tx_bytes += len(packet) + 4
        self._out.append((port, frame(packet)))

    def link_stats(self, port: str) -> dict[str, int]:
        st = self.port_stats[port]
        d = self.deframers[port].stats()
        d.update(rx_packets=st.rx_packets, rx_bytes=st.rx_bytes, tx_packets=st.tx_packets,
                 tx_bytes=st.tx_bytes, link_ups=st.link_ups, link_downs=st.link_downs,
                 up=int(st.up), rejected=st.rejected)
        return d
