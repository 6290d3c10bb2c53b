"""Injected time.

Core code never reads a clock: it is handed ``now`` (mission seconds, a
float counted from the mission epoch) or a :class:`Clock`.  The real clock
lives in :mod:`fsw.io.clock`; :class:`SimClock` moves only when a runner
jumps it, to the next deadline, so hours of mission run in milliseconds.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Mission seconds."""
        ...


class SimClock:
    """A clock that moves only when told to."""

    __slots__ = ("_t",)

    def __init__(self, start: float = 0.0) -> None:
        self._t = _finite(start)

    def now(self) -> float:
        return self._t

    def advance_to(self, t: float) -> None:
        t = _finite(t)
        if t < self._t:
            raise ValueError(f"time can't go backwards ({t} < {self._t})")
        self._t = t

    def advance(self, dt: float) -> None:
        dt = _finite(dt)
        if dt < 0:
            raise ValueError(f"time can't go backwards (dt={dt})")
        self._t += dt


def _finite(t: float) -> float:
    """NaN or infinity would freeze or poison every comparison against the clock."""
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"simulated time must be finite, got {t!r}")
    return t
