"""Serial line pacing: when bytes would leave a UART at a given baud.

A pseudo-terminal (or an in-memory wire) moves bytes as fast as it can, so
a simulated device has to pace itself to behave like a real UART.  With 8N1
framing each byte costs 10 bit times.  :class:`LinePacer` is the pure
bookkeeping; the real-time link sleeps on it, the simulated wire delivers on it.
"""

from __future__ import annotations


class LinePacer:
    """Tracks when the line is free.  ``reserve(n, now)`` books ``n`` bytes and says when they finish."""

    __slots__ = ("baud", "bits_per_byte", "byte_time", "busy_until", "bytes_sent")

    def __init__(self, baud: int, bits_per_byte: int = 10) -> None:
        if not baud > 0:
            raise ValueError(f"baud must be positive, got {baud}")
        if not bits_per_byte > 0:
            raise ValueError(f"bits_per_byte must be positive, got {bits_per_byte}")
        self.baud = baud
        self.bits_per_byte = bits_per_byte
        self.byte_time = bits_per_byte / baud
        self.busy_until = 0.0
        self.bytes_sent = 0

    @property
    def bytes_per_second(self) -> float:
        return self.baud / self.bits_per_byte

    def reserve(self, nbytes: int, now: float) -> tuple[float, float]:
        """Book ``nbytes`` on the line; returns (start, end) of their transmission."""
        if nbytes < 0:
            raise ValueError(f"cannot reserve {nbytes} bytes")
        start = self.busy_until if self.busy_until > now else now
        end = start + nbytes * self.byte_time
        self.busy_until = end
        self.bytes_sent += nbytes
        return start, end

    def backlog(self, now: float) -> float:
        """Seconds of transmission still queued ahead of ``now``."""
        return self.busy_until - now if self.busy_until > now else 0.0
