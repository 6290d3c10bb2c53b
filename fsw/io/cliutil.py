"""Small pieces shared by the command-line programs (fsw, hw-sim)."""

from __future__ import annotations

import sys
from typing import Any

from ..dictionary import DictionaryError, load_dictionary


def parse_pairs(items: list[str], what: str, upper: bool = False) -> dict[str, str]:
    """``["fss=/dev/ttyUSB0", ...]`` -> ``{"fss": "/dev/ttyUSB0"}``; raises ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what} {item!r} must look like NAME=VALUE")
        key = key.strip()
        out[key.upper() if upper else key.lower()] = value.strip()
    return out


def dictionary_or_none(prog: str, path: str | None) -> Any:
    """The mission dictionary, or ``None`` after printing one clear line (the caller exits 2)."""
    try:
        return load_dictionary(path)
    except (DictionaryError, OSError) as exc:
        print(f"{prog}: dictionary error: {exc}", file=sys.stderr)
        return None


def add_run_options(p: Any) -> None:
    """--duration, --rate, --start-time and --quiet, shared by the real-time programs."""
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until interrupted)")
    p.add_argument("--rate", type=float, default=1.0, metavar="X",
                   help="mission-time rate for scaled real-time demonstrations (default 1.0)")
    p.add_argument("--start-time", type=float, default=None, metavar="S",
                   help="mission seconds at start (default: from the wall clock and the mission epoch)")
    p.add_argument("-q", "--quiet", action="store_true", help="only print errors")


def link_event_printer(prefix: str, quiet: bool = False) -> Any:
    """``printer(name)`` -> an ``on_event(kind, detail)`` for a Link that prints ``PREFIX NAME: KIND DETAIL``
    on stderr (nothing when ``quiet``)."""
    def printer(name: str) -> Any:
        def on_event(kind: str, detail: str) -> None:
            if not quiet:
                print(f"{prefix}{name}: {kind} {detail}", file=sys.stderr, flush=True)
        return on_event
    return printer


def run_until_signalled(runner: Any, duration: float | None, until: Any = None) -> None:
    """Run a RealTimeRunner until ``duration`` passes, SIGTERM/SIGINT arrives or ``until()`` is true (called on
    the runner's thread at least every 50 ms); always close its links."""
    import signal
    import threading

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner.run(duration=duration, stop=stop, until=until)
    finally:
        runner.close()
