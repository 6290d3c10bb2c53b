"""The real clock: mission seconds from the wall clock, for benches and live runs."""

from __future__ import annotations

import time

from ..protocol.timecode import MissionEpoch


class RealClock:
    """Mission seconds now, derived from ``time.time()`` at start and ``time.monotonic()`` after.

    Using the monotonic clock between readings keeps time from jumping if the
    host's wall clock is stepped while a bench runs.  ``rate`` > 1 runs a
    scaled real-time demonstration (mission time moves ``rate`` times faster).
    """

    def __init__(self, epoch: MissionEpoch | None = None, start: float | None = None, rate: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._mono0 = time.monotonic()
        if start is not None:
            self._t0 = float(start)
        elif epoch is not None:
            self._t0 = time.time() - epoch.unix_offset()
        else:
            self._t0 = 0.0

    def now(self) -> float:
        return self._t0 + (time.monotonic() - self._mono0) * self.rate

    def sleep_time(self, deadline: float) -> float:
        """Real seconds to sleep until mission time ``deadline`` (never negative)."""
        dt = (deadline - self.now()) / self.rate
        return dt if dt > 0 else 0.0
