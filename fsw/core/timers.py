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
    __slots__ = ("_heap", "_seq", "notify")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        #: called (no arguments) when a new timer becomes the earliest: a runner that caches
        #: ``next_deadline`` learns that it moved earlier.  It only ever moves later by running or cancelling.
        self.notify: Callable[[], None] | None = None

    def call_at(self, when: float, fn: Callable[[float], None]) -> Timer:
        """Run ``fn(now)`` once ``run_due`` reaches ``when``."""
        if not math.isfinite(when):
            raise ValueError(f"deadline must be finite, got {when!r}")
        t = Timer(when, fn)
        heap = self._heap
        if self.notify is not None and (not heap or when < heap[0][0]):
            self.notify()
        heapq.heappush(heap, (when, next(self._seq), t))
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
    """A repeating timer on a fixed grid; its period can change while it runs.

    Deadlines are computed as ``anchor + k * period`` rather than by adding
    the period again and again, so no floating-point error accumulates: the
    ten-thousandth tick of a 0.1 s timer started at 0 is due at exactly
    ``10000 * 0.1``, like a 1 s timer's thousandth tick.
    """

    __slots__ = ("_q", "_period", "_fn", "_anchor", "_k", "_next", "_timer")

    def __init__(self, q: TimerQueue, period: float, fn: Callable[[float], None], start: float) -> None:
        _check_period(period)
        self._q = q
        self._period = period
        self._fn = fn
        self._anchor = start
        self._k = 0
        self._next = start
        self._timer: Timer | None = q.call_at(start, self._fire)

    @property
    def period(self) -> float:
        return self._period

    @period.setter
    def period(self, period: float) -> None:
        """Change the period from the next slot on (the slot already due stays); see also set_period."""
        _check_period(period)
        self._anchor, self._k, self._period = self._next, 0, period

    @property
    def next_time(self) -> float | None:
        """When the timer fires next (``None`` once cancelled)."""
        return self._next if self._timer is not None else None

    def _fire(self, now: float) -> None:
        period = self._period
        k = self._k + 1
        if self._anchor + k * period <= now:  # a runner that fell behind skips missed slots, it does not burst
            k = max(k, math.floor((now - self._anchor) / period) + 1)
            while self._anchor + k * period <= now:  # guard against rounding in the division
                k += 1
        self._k = k
        self._next = self._anchor + k * period
        self._timer = self._q.call_at(self._next, self._fire)
        self._fn(now)

    def set_period(self, period: float, now: float) -> None:
        """Restart on a new grid: next at ``now + period``, then every ``period``."""
        _check_period(period)
        self._period = period
        self.cancel()
        self._anchor = now + period
        self._k = 0
        self._next = self._anchor
        self._timer = self._q.call_at(self._next, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def resume(self, now: float, after: float | None = None) -> None:
        """Re-file a cancelled timer on its own grid: the first slot at or after ``now`` (strictly after
        ``after``, the time it last fired, if given).  A timer that is running is left alone."""
        if self._timer is not None:
            return
        period, anchor = self._period, self._anchor
        k = max(self._k, math.ceil((now - anchor) / period))
        while k > 0 and anchor + (k - 1) * period >= now:  # guard against rounding in the division
            k -= 1
        while anchor + k * period < now or (after is not None and anchor + k * period <= after):
            k += 1
        self._k = k
        self._next = anchor + k * period
        self._timer = self._q.call_at(self._next, self._fire)

    @property
    def active(self) -> bool:
        return self._timer is not None


def _check_period(period: float) -> None:
    if not (period > 0 and math.isfinite(period)):
        raise ValueError(f"period must be positive and finite, got {period!r}")
