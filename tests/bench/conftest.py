"""Shared helpers for the real pseudo-terminal bench tests.

Everything here waits with a timeout on a condition; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest


class EventLog:
    """An ``on_event`` callback that records ``(kind, detail)`` and lets a test wait for events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.times: list[float] = []  # time.monotonic() when each event was reported
        self._cond = threading.Condition()

    def __call__(self, kind: str, detail: str) -> None:
        t = time.monotonic()
        with self._cond:
            self.events.append((kind, detail))
            self.times.append(t)
            self._cond.notify_all()

    def time_of(self, kind: str, n: int = 1) -> float:
        """When the ``n``-th event of ``kind`` was reported."""
        with self._cond:
            return [t for (k, _), t in zip(self.events, self.times) if k == kind][n - 1]

    def count(self, kind: str) -> int:
        with self._cond:
            return sum(1 for k, _ in self.events if k == kind)

    def kinds(self) -> list[str]:
        with self._cond:
            return [k for k, _ in self.events]

    def wait_for(self, kind: str, n: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``kind`` has been seen at least ``n`` times in all."""
        with self._cond:
            return self._cond.wait_for(lambda: sum(1 for k, _ in self.events if k == kind) >= n, timeout)

    def last(self, kind: str) -> str:
        with self._cond:
            return [d for k, d in self.events if k == kind][-1]


def wait_until(pred: Callable[[], object], timeout: float = 5.0, interval: float = 0.002) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` passes; returns its last truth value."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return bool(pred())
        time.sleep(interval)


def read_exactly(link, n: int, timeout: float = 5.0) -> bytes:  # type: ignore[no-untyped-def]
    """Read from a :class:`fsw.io.link.Link` until ``n`` bytes came or ``timeout`` passed."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        buf += link.read(left)
    return bytes(buf)


@contextmanager
def raw_peer(path: str | os.PathLike) -> Iterator[int]:
    """Open a tty path (e.g. a published pty symlink) as a raw, blocking file descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        yield fd
    finally:
        os.close(fd)


def machine_loaded() -> bool:
    """True when the 1-minute load average is at or above the CPU count (timings then get slack)."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:
        return False


@pytest.fixture
def pty_dir(tmp_path: Path) -> Path:
    """A directory for published pty symlinks (short path, removed after the test)."""
    d = tmp_path / "run"
    d.mkdir()
    return d
