"""Helpers for the bench tests that run hw-sim and fsw as separate processes (ground.procs.start_bench).

``bench_processes(bench)`` starts nothing: it is the context every such test
uses to stop its bench and prove that no process is left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ground.procs import Bench, start_bench

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":   # a zombie is gone already, only not yet reaped
            continue
        cmd = raw.replace(b"\0", b" ").decode(errors="replace")
        if text in cmd:
            found.append((int(entry.name), cmd.strip()))
    return found


def assert_stopped(bench: Bench) -> None:
    """Every process of ``bench`` exited, and no process refers to its run directory any more."""
    codes = bench.stop()
    assert set(codes) == {"hw-sim", "fsw"}
    assert all(p.poll() is not None for p in bench.procs.values()), codes
    left = processes_mentioning(str(bench.run_dir))
    assert not left, f"processes left behind: {left}"
    # a clean shutdown on SIGTERM: exit code 0, not a kill
    assert codes == {"hw-sim": 0, "fsw": 0}, (codes, bench.log_text("hw-sim")[-2000:], bench.log_text("fsw")[-2000:])


@contextmanager
def running_bench(run_dir: Path, **kwargs: object) -> Iterator[Bench]:
    """hw-sim + fsw started in ``run_dir`` (see :func:`ground.procs.start_bench`); always stopped and checked."""
    bench = start_bench(run_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield bench
    except BaseException:
        print("---- hw-sim log\n" + bench.log_text("hw-sim")[-3000:])
        print("---- fsw log\n" + bench.log_text("fsw")[-3000:])
        bench.stop()
        raise
    assert_stopped(bench)


def ground(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``python -m ground ARGS`` as a separate process (the ground tool's own entry point)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GROUND_LINK", None)
    return subprocess.run([sys.executable, "-m", "ground", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
