"""A deadline queue: the one place where core code keeps "things to do later".

``call_at(t, fn)`` files a callback, ``next_deadline()`` tells a runner when
to wake up, ``run_due(now)`` runs everything due, in time order and, for
equal times, in the order filed.  Pure: the caller says what time it is.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Callable


class Timer:
    __slots__ = ("when", "fn", "cancelled")

    def __init__(self, when: float, fn: Callable[[float], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def call_at(self, when: float, fn: Callable[[float], None]) -> Timer:
        """Run ``fn(now)`` once ``run_due`` reaches ``when``."""
        if not math.isfinite(when):
            raise ValueError(f"deadline must be finite, got {when!r}")
        t = Timer(when, fn)
        heapq.heappush(self._heap, (when, next(self._seq), t))
        return t

    def every(self, period: float, fn: Callable[[float], None], start: float) -> "Periodic":
        """Run ``fn(now)`` at ``start``, ``start + period`` ... on a fixed grid (no drift)."""
        return Periodic(self, period, fn, start)

    def next_deadline(self) -> float:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def run_due(self, now: float) -> int:
        """Run every timer due at or before ``now``; returns how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, t = heapq.heappop(heap)
            if not t.cancelled:
                t.cancelled = True
                t.fn(now)
                ran += 1
        return ran

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)


class Periodic:
    """A repeating timer on a fixed grid; its period can change while it runs."""

    __slots__ = ("_q", "period", "_fn", "_next", "_timer")

    def __init__(self, q: TimerQueue, period: float, fn: Callable[[float], None], start: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        self._q = q
        self.period = period
        self._fn = fn
        self._next = start
        self._timer: Timer | None = q.call_at(start, self._fire)

    def _fire(self, now: float) -> None:
        self._next += self.period
        if self._next <= now:  # a runner that fell behind skips missed slots, it does not burst
            self._next += (math.floor((now - self._next) / self.period) + 1) * self.period
        self._timer = self._q.call_at(self._next, self._fire)
        self._fn(now)

    def set_period(self, period: float, now: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        self.period = period
        self.cancel()
        self._next = now + period
        self._timer = self._q.call_at(self._next, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def active(self) -> bool:
        return self._timer is not None
