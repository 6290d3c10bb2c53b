"""Benchmarks (``make bench``, ``python -m tests.benchmarks``): not tests, never collected by pytest.

Each module here that defines ``run(quick: bool) -> list[dict]`` is one
benchmark; :mod:`tests.benchmarks.__main__` runs them all, prints a table and
writes the same figures as JSON (``.bench/results.json``).  A row is::

    {"figure": str, "ours": float, "peer": float | None, "ratio": float | None,
     "goal": str | None, "met": bool | None, "unit": str, "note": str}

Absolute figures move with the machine's load; quote ratios against a peer
measured in the same run (docs/benchmarks.md).  The helpers below are shared
by the modules.
"""

from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["row", "best_time", "interleaved_best", "percentile"]


def row(figure: str, ours: float, *, peer: float | None = None, ratio: float | None = None, goal: str | None = None,
        met: bool | None = None, unit: str = "", note: str = "") -> dict[str, Any]:
    """One result row.  ``ratio`` defaults to ours/peer when a peer is given."""
    if ratio is None and peer:
        ratio = ours / peer
    return {"figure": figure, "ours": ours, "peer": peer, "ratio": ratio, "goal": goal, "met": met,
            "unit": unit, "note": note}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` wall-clock runs of ``fn()`` (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def interleaved_best(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each contender, run in turn ``repeats`` times, so that a burst of load on a shared
    machine hits all of them alike rather than only the one that happened to be running."""
    best = {k: float("inf") for k in contenders}
    for _ in range(repeats):
        for k, fn in contenders.items():
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


#: where the figures go (relative to the working directory, which ``make bench`` sets to the repository)
RESULTS_DIR = ".bench"
RESULTS_FILE = "results.json"


def record(name: str, result: dict[str, Any]) -> None:
    """Store one module's free-form figures under ``name`` in ``.bench/results.json`` (kept by the runner too).

    For modules written as ``main()`` scripts (e.g. ``mission_time``): the file is read, the key set and the
    file written back, so a module run on its own leaves its figures there as well.
    """
    import json
    from pathlib import Path

    path = Path(RESULTS_DIR) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data.setdefault("records", {})[name] = result
    RECORDS[name] = result
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


#: everything :func:`record` stored during this process (the runner puts it into the final JSON)
RECORDS: dict[str, dict[str, Any]] = {}
