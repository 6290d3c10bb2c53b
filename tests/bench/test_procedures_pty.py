"""Every example procedure over real pseudo-terminals, against hw-sim and fsw running as separate processes.

One bench (one hw-sim + fsw process pair) serves the whole module, as a bench
serves a shift of procedures: the examples run in turn against the same
lander, which is why each one sets up what it needs.  The bench is stopped at
the end and no process may be left behind.  The command-line runner is run
twice here as its own process: over the module's link (``--link``) and on a
bench of its own (``--pty``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ground.procedures import LinkBackend, Procedure, WaitTimeout
from ground.procedures_cli import collect_procedures, load_procedure_file
from ground.procedures_examples import example_files

from .bench_procs import ROOT, processes_mentioning, running_bench

pytestmark = pytest.mark.bench

EXAMPLES = [(path, name) for path in example_files() for name, _ in collect_procedures(load_procedure_file(path))[0]]


class SharedLink:
    """The module's bench and its ground link, opened on demand (the CLI test needs the pty to itself)."""

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self._backend: LinkBackend | None = None

    @property
    def backend(self) -> LinkBackend:
        if self._backend is None:
            self._backend = LinkBackend.connect(self.bench.ground_link)
            assert self._backend.session.connected
        return self._backend

    def release(self) -> None:
        """Close the ground link: a pseudo-terminal has room for one ground tool at a time."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLink]:
    run_dir = tmp_path_factory.mktemp("procbench")
    with running_bench(run_dir) as bench:     # PRELAUNCH, the checkouts' phase
        link = SharedLink(bench)
        try:
            yield link
        finally:
            link.release()
        assert all(bench.alive().values()), "a bench process died during the procedures"
    assert not processes_mentioning(str(run_dir))


def _function(path: Path, name: str) -> Callable[[Procedure], None]:
    return getattr(load_procedure_file(path), name)


@pytest.mark.parametrize("path, name", EXAMPLES, ids=[f"{p.stem}::{n}" for p, n in EXAMPLES])
def test_example_over_ptys(shared: SharedLink, path: Path, name: str) -> None:
    lines: list[str] = []
    with Procedure(shared.backend, log=lines.append, name=name) as proc:
        try:
            _function(path, name)(proc)
        finally:
            print("\n".join(lines))
        assert proc.results and not proc.simulated
        # the procedure really went over the link: its telecommands left through the session
        assert shared.backend.session.stats["tc_sent"] >= len(proc.results)
        assert shared.backend.session.stats["errors"] == 0


def _run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "ground.procedures_cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


QUICK = textwrap.dedent('''
    """Quick link checks."""

    def test_ping_every_unit_that_answers(proc):
        """PING the lander and the PDU; housekeeping flows."""
        proc.send_and_assert("PING")
        proc.send_and_assert("PING", system="PDU")
        proc.wait_tm("UPTIME", ">", 0, timeout=3)

    def test_refused_on_board(proc):
        proc.expect_failure("FSS_SET_MODE", "PAYLOAD_UNPOWERED", mode="SCIENCE")
''')


def test_command_line_runner_over_the_link(shared: SharedLink, tmp_path: Path) -> None:
    shared.release()   # the runner is its own process and needs the pty to itself
    f = tmp_path / "quick_procs.py"
    f.write_text(QUICK)
    r = _run_cli("run", str(f), "--link", shared.bench.ground_link)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "PASSED test_ping_every_unit_that_answers" in out and "PASSED test_refused_on_board" in out
    assert "send PING to PDU" in out and "PING completion OK from PDU" in out
    assert "FSS_SET_MODE acceptance FAILED PAYLOAD_UNPOWERED from LANDER" in out
    assert out.rstrip().endswith("== 2 passed")


def test_command_line_runner_starts_and_stops_its_own_bench(tmp_path: Path) -> None:
    f = tmp_path / "quick_procs.py"
    f.write_text(QUICK)
    run_dir = tmp_path / "own"
    r = _run_cli("run", str(f), "--pty", "--run-dir", str(run_dir), "-k", "ping")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"-- bench: hw-sim and fsw in {run_dir}" in r.stdout
    assert "PASSED test_ping_every_unit_that_answers" in r.stdout and "test_refused_on_board" not in r.stdout
    assert (run_dir / "fsw.log").is_file() and (run_dir / "hw-sim.log").is_file()
    assert not processes_mentioning(str(run_dir)), "the runner left bench processes behind"


def test_link_backend_over_an_in_memory_loop() -> None:
    """The link backend's plumbing in real time without a flight software: nothing answers, commands time out."""
    backend = LinkBackend.connect("loop://", connect_timeout=1.0)
    try:
        assert backend.kind == "link" and backend.session.connected
        proc = Procedure(backend)
        t0 = proc.now
        r = proc.send("PING", timeout=0.3)
        # loop:// sends our own TC back: it is decoded and journalled, and no report ever comes
        assert r.state == "TIMEOUT" and 0.3 <= proc.now - t0 < 3.0
        assert any(rec.get("packet_type") == "TC" and rec.get("name") == "PING" for rec in proc.records())
        t0 = proc.now
        with pytest.raises(WaitTimeout):
            proc.wait_tm("UPTIME", timeout=0.2)
        proc.sleep(0.2)
        assert 0.4 <= proc.now - t0 < 3.0
    finally:
        backend.close()
    assert not backend.session.connected


def test_runner_over_a_missing_link_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "quick_procs.py"
    f.write_text(QUICK)
    r = _run_cli("run", str(f), "--link", str(tmp_path / "no.pty"), "--connect-timeout", "0.3")
    assert r.returncode == 1 and "is not connected" in r.stderr, r.stdout + r.stderr
