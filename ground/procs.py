"""Start and stop a whole bench as separate processes: hw-sim, then the flight software (then the relay emulator).

Used by ``ground demo`` and by the real pseudo-terminal integration tests.
Every process is started in its own process group and is always stopped
(SIGTERM, then SIGKILL) so that nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Bench:
    """A running bench: ``run_dir`` holds the pty symlinks, ``ground_link`` is the ground port."""

    run_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    owns_dir: bool = False

    @property
    def ground_link(self) -> str:
        """Where the ground tool connects: the relay's ground side if a relay runs, else the fsw's ground port."""
        return str(self.run_dir / ("relay-ground.pty" if "relay" in self.procs else "ground.pty"))

    def log_text(self, name: str) -> str:
        p = self.logs.get(name)
        try:
            return p.read_text(errors="replace") if p else ""
        except OSError:
            return ""

    def alive(self) -> dict[str, bool]:
        return {n: p.poll() is None for n, p in self.procs.items()}

    def stop(self, timeout: float = 5.0) -> dict[str, int | None]:
        """Stop every process (SIGTERM, then SIGKILL); returns their exit codes."""
        codes: dict[str, int | None] = {}
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                codes[name] = p.wait(5)
        return codes

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - kept open by the child
    try:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    finally:
        fh.close()


def wait_for_path(path: Path, timeout: float, procs: dict[str, subprocess.Popen] | None = None) -> bool:
    """Poll for ``path`` to exist; give up early if a watched process died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        if procs and any(p.poll() is not None for p in procs.values()):
            return False
        time.sleep(0.02)
    return path.exists()


def _not_started(bench: Bench, name: str, what: str) -> RuntimeError:
    """The error for a bench that did not come up: names a process that died (with its log), else ``name``."""
    dead = [(n, p.poll()) for n, p in bench.procs.items() if p.poll() is not None]
    if dead:
        n, code = dead[0]
        return RuntimeError(f"{n} exited with code {code} before {name} published {what}:\n{bench.log_text(n)}")
    return RuntimeError(f"{name} did not publish {what}:\n{bench.log_text(name)}")


def start_bench(run_dir: str | Path | None = None, *, seed: int = 1, phase: str | None = None, rate: float = 1.0,
                hw_args: list[str] | None = None, fsw_args: list[str] | None = None, start_time: float | None = None,
                timeout: float = 15.0, space_link: bool = False, relay: list[str] | None = None) -> Bench:
    """hw-sim (every unit on its own pty), then the flight software with its ground port on a pty.

    ``space_link``: the flight software runs ``--space-link`` (the ground must too: ``ground --space-link``).
    ``relay``: also start ``hw-sim relay`` with these extra arguments between the fsw's ground port and a new
    pty ``RUN_DIR/relay-ground.pty``, which then is :attr:`Bench.ground_link`.
    """
    owns = run_dir is None
    rd = Path(tempfile.mkdtemp(prefix="lander-bench-")) if run_dir is None else Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    bench = Bench(rd, owns_dir=owns)
    common = ["--run-dir", str(rd), "--rate", str(rate)]
    if start_time is not None:
        common += ["--start-time", str(start_time)]
    try:
        bench.logs["hw-sim"] = rd / "hw-sim.log"
        bench.procs["hw-sim"] = _spawn([sys.executable, "-m", "hw_sim", *common, "--seed", str(seed),
                                        *(hw_args or [])], bench.logs["hw-sim"])
        if not wait_for_path(rd / "pdu.pty", timeout, bench.procs):
            raise _not_started(bench, "hw-sim", "its ports")
        bench.logs["fsw"] = rd / "fsw.log"
        fa = [sys.executable, "-m", "fsw", *common, *(["--space-link"] if space_link else []), *(fsw_args or [])]
        if phase:
            fa += ["--phase", phase]
        bench.procs["fsw"] = _spawn(fa, bench.logs["fsw"])
        if not wait_for_path(rd / "ground.pty", timeout, bench.procs):
            raise _not_started(bench, "fsw", "its ground port")
        if relay is not None:
            bench.logs["relay"] = rd / "relay.log"
            bench.procs["relay"] = _spawn([sys.executable, "-m", "hw_sim", "relay", *common, "--lander",
                                           str(rd / "ground.pty"), "--ground", f"pty:{rd / 'relay-ground.pty'}",
                                           *relay], bench.logs["relay"])
            if not wait_for_path(rd / "relay-ground.pty", timeout, bench.procs):
                raise _not_started(bench, "relay", "its ground port")
    except BaseException:
        bench.stop()
        raise
    return bench
