"""The test-procedure API (ground.procedures) and every example procedure, on the simulated bench.

The same example procedures run over real pseudo-terminals in
tests/bench/test_procedures_pty.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from fsw.core.state import MemoryStore
from fsw.dictionary import ArgumentError
from ground import procedures_cli
from ground.commanding import HazardousCommandError
from ground.procedures import (
    Procedure, ProcedureFailure, SimBackend, WaitTimeout, describe_result, open_backend,
)
from ground.procedures_cli import collect_procedures, load_procedure_file
from ground.procedures_examples import example_files, example_path
from ground.simbench import SimBench

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [(path, name) for path in example_files() for name, _ in collect_procedures(load_procedure_file(path))[0]]


def procedure_of(path: Path, name: str) -> Callable[[Procedure], None]:
    return getattr(load_procedure_file(path), name)


def new_proc(log: list[str] | None = None, **bench_kw) -> Procedure:
    return Procedure(SimBackend(SimBench(**bench_kw)), log=None if log is None else log.append)


# ---------------------------------------------------------------------------------------------------------------
# the examples
# ---------------------------------------------------------------------------------------------------------------

def test_there_are_examples_for_every_payload_and_the_deploy() -> None:
    stems = {p.stem for p, _ in EXAMPLES}
    assert {"checkout_fss", "checkout_lister", "checkout_lms", "checkout_lusee", "deploy_alpine"} <= stems


@pytest.mark.parametrize("path, name", EXAMPLES, ids=[f"{p.stem}::{n}" for p, n in EXAMPLES])
def test_example_on_the_simulated_bench(path: Path, name: str) -> None:
    log: list[str] = []
    proc = new_proc(log)
    try:
        procedure_of(path, name)(proc)
    finally:
        print("\n".join(log))
    assert proc.simulated and proc.results and any(r.ok for r in proc.results)
    # every command a procedure sent was accounted for; only the aborted LISTER measurement is still
    # pending: it reports at its scheduled end (see checkout_lister.py)
    pending = [r.command for r in proc.backend.bench.ground.tracker.pending]
    assert pending == (["LISTER_MEASURE"] if name == "test_lister_checkout" else [])


def test_examples_share_one_bench_in_any_order() -> None:
    """As on a real bench: the examples run in turn on one lander, in file order and reversed."""
    for order in (EXAMPLES, list(reversed(EXAMPLES))):
        backend = SimBackend(SimBench())
        for path, name in order:
            with Procedure(backend) as proc:
                procedure_of(path, name)(proc)
        # afterwards every payload is off and Alpine is released
        with Procedure(backend) as proc:
            proc.sleep(1.5)
            for unit in ("FSS", "LISTER", "LMS", "LUSEE"):
                assert proc.value("PL_STATE", where={"PL_UNIT": unit}) == "OFF", unit
            assert proc.value("DEP_STATE", where={"DEP_UNIT": "ALPINE"}) == "RELEASED"


def test_deploy_example_on_an_unprovisioned_store_overrides_then_refuses_to_refire() -> None:
    log: list[str] = []
    backend = SimBackend(SimBench(store=MemoryStore()))   # a state directory never provisioned
    fn = procedure_of(example_path("deploy_alpine"), "test_deploy_alpine")
    with Procedure(backend, log=log.append) as proc:
        fn(proc)
        overridden = [e["params"]["EVT_DEP_UNIT"] for e in proc.events("DEPLOY_OVERRIDDEN", since="start")]
        assert overridden == ["ALPINE", "LUPINE"]
        assert proc.events("DEPLOY_RELEASED", since="start", EVT_DEP_UNIT="ALPINE")
    assert any("durable state UNKNOWN: ground affirms STOWED" in line for line in log)
    # run again: already released, so it only checks that a FIRE is refused
    with Procedure(backend, log=log.append) as proc:
        fn(proc)
        assert [r.command for r in proc.results] == ["DEPLOY_FIRE"]
        assert proc.results[0].failure == "ALREADY_DONE"
    assert backend.bench.hardware.unit("ALPINE").fire_count == 1   # the hardware fired once


# ---------------------------------------------------------------------------------------------------------------
# commanding
# ---------------------------------------------------------------------------------------------------------------

def test_send_returns_the_verification_and_logs_every_stage() -> None:
    log: list[str] = []
    proc = new_proc(log)
    r = proc.send("PING", system="PDU")
    assert r.ok and r.system == "PDU" and [s.stage for s in r.reports] == ["acceptance", "start", "completion"]
    assert any("send PING to PDU" in line for line in log)
    assert any("PING completion OK from PDU" in line for line in log)
    assert proc.results == [r]


def test_send_and_assert_raises_with_the_code_and_the_stages() -> None:
    proc = new_proc()
    with pytest.raises(ProcedureFailure) as info:
        proc.send_and_assert("FSS_SET_MODE", mode="SCIENCE")    # the FSS is not powered
    msg = str(info.value)
    assert "FSS_SET_MODE did not succeed: FAILED PAYLOAD_UNPOWERED" in msg
    assert "acceptance FAILED PAYLOAD_UNPOWERED from LANDER" in msg
    assert info.value.result is not None and info.value.result.failure == "PAYLOAD_UNPOWERED"
    assert isinstance(info.value, AssertionError)


def test_expect_failure_checks_the_code_and_the_stage() -> None:
    proc = new_proc()
    r = proc.expect_failure("FSS_SET_MODE", "PAYLOAD_UNPOWERED", stage="acceptance", mode="SCIENCE")
    assert r.state == "FAILED"
    with pytest.raises(ProcedureFailure, match="should have failed with WRONG_MODE"):
        proc.expect_failure("FSS_SET_MODE", "WRONG_MODE", mode="SCIENCE")
    with pytest.raises(ProcedureFailure, match="should have failed at completion"):
        proc.expect_failure("FSS_SET_MODE", "PAYLOAD_UNPOWERED", stage="completion", mode="SCIENCE")
    with pytest.raises(ProcedureFailure, match="should have failed with WRONG_MODE: SUCCESS"):
        proc.expect_failure("PING", "WRONG_MODE")
    with pytest.raises(KeyError, match="did you mean WRONG_MODE"):
        proc.expect_failure("PING", "WRONG_MOOD")
    with pytest.raises(ValueError, match="stage"):
        proc.expect_failure("PING", "WRONG_MODE", stage="launch")


def test_a_command_without_its_final_report_in_time_is_a_timeout_on_the_simulated_clock() -> None:
    proc = new_proc()
    t0 = proc.now
    r = proc.send("PING", timeout=0.01)
    assert r.state == "TIMEOUT" and r.timed_out and "TIMEOUT" in describe_result(r)
    assert proc.now - t0 < 1.5    # waited for the deadline (plus a grace), not for the dictionary's 5 s
    proc.expect_failure("PING", "TIMEOUT", timeout=0.01)


def test_a_command_the_dictionary_refuses_is_never_sent() -> None:
    log: list[str] = []
    proc = new_proc(log)
    ground = proc.backend.bench.ground
    with pytest.raises(ArgumentError):
        proc.send("LUSEE_SET_INTEGRATION", integration_ms=50)
    with pytest.raises(KeyError, match="unknown command"):
        proc.send("FSS_SET_MOOD", mode="SCIENCE")
    with pytest.raises(HazardousCommandError):
        proc.send("DEPLOY_ARM", unit="ALPINE")                   # no confirmation
    with pytest.raises(HazardousCommandError):
        proc.send("DEPLOY_ARM", unit="ALPINE", confirm="LANDER")  # confirms the unit it acts on: ALPINE
    assert ground.counts["tc_sent"] == 0 and proc.results == []
    assert sum("refused, nothing sent" in line for line in log) == 4


def test_arguments_may_be_given_as_a_mapping() -> None:
    proc = new_proc()
    assert proc.send("HK_SET_PERIOD", args={"sid": 1, "period_ms": 2000}).ok
    assert proc.submit("PING", args={}).seq_count == 1


# ---------------------------------------------------------------------------------------------------------------
# telemetry and events
# ---------------------------------------------------------------------------------------------------------------

def test_wait_tm_forms() -> None:
    proc = new_proc()
    assert proc.wait_tm("PHASE", timeout=3) == "PRELAUNCH"
    assert proc.wait_tm("PHASE", "PRELAUNCH", timeout=3) == "PRELAUNCH"
    assert proc.wait_tm("UPTIME", ">=", 2, timeout=5) >= 2
    assert proc.wait_tm("PHASE", "in", ("PRELAUNCH", "SURFACE"), timeout=3) == "PRELAUNCH"
    assert proc.wait_tm("UPTIME", lambda v: v % 2 == 1, timeout=5) % 2 == 1
    rec = proc.wait_tm(lambda r: r["name"] == "LANDER_HK", timeout=3)
    assert rec["system"] == "LANDER" and "UPTIME" in rec["params"]
    # a label compared with a number is no match (and no TypeError)
    assert proc.wait_tm("PHASE", ">", 3, timeout=1, default="none") == "none"


def test_wait_tm_where_picks_a_row_of_a_packet_sent_per_unit() -> None:
    proc = settled_proc()
    proc.send_and_assert("PAYLOAD_POWER_ON", unit="LMS")
    assert proc.wait_tm("PL_STATE", "==", "IDLE", where={"PL_UNIT": "LMS"}, timeout=3) == "IDLE"
    assert proc.value("PL_STATE", where={"PL_UNIT": "FSS"}) == "OFF"
    assert proc.value("PL_STATE", where={"PL_UNIT": "LMS"}) == "IDLE"
    assert proc.wait_tm("PL_POWER", ">", 0, where={"PL_UNIT": lambda u: u != "FSS"}, timeout=3) > 0
    with pytest.raises(KeyError, match="not in the same packet"):
        proc.wait_tm("PL_STATE", where={"DEP_UNIT": "ALPINE"})


def test_wait_timeout_runs_the_simulated_clock_and_reports_the_last_value() -> None:
    log: list[str] = []
    proc = new_proc(log)
    proc.wait_tm("PHASE", timeout=3)
    t0 = proc.now
    with pytest.raises(WaitTimeout, match="PHASE == SURFACE within 4 s; last value PRELAUNCH"):
        proc.wait_tm("PHASE", "==", "SURFACE", timeout=4)
    assert proc.now == pytest.approx(t0 + 4)
    assert proc.wait_event("PHASE_CHANGED", 2, default=None) is None
    assert proc.now == pytest.approx(t0 + 6)
    assert any("TIMEOUT after 4 s" in line for line in log)
    assert isinstance(WaitTimeout("x"), AssertionError)


def settled_proc() -> Procedure:
    """A procedure on a new bench whose PDU readings are in (before them the power budget is conservative)."""
    proc = new_proc()
    proc.wait_tm("POWER_PDU_STALE", "==", False, timeout=3)
    return proc


def test_since_decides_where_a_wait_starts() -> None:
    proc = settled_proc()
    proc.send_and_assert("SET_PHASE", phase="SURFACE")
    # the event came while send() waited for the completion: the default (since the command) sees it
    evt = proc.wait_event("PHASE_CHANGED", timeout=0, PHASE_TO="SURFACE")
    assert evt["params"]["PHASE_FROM"] == "PRELAUNCH"
    assert proc.wait_event("PHASE_CHANGED", 2, since="now", default=None) is None
    mark = proc.mark()
    proc.send_and_assert("SET_PHASE", phase="DEPLOY")
    proc.send_and_assert("PING")
    # the default moved on with the PING; a mark reaches back
    assert proc.wait_event("PHASE_CHANGED", 0, default=None) is None
    assert proc.wait_event("PHASE_CHANGED", 0, since=mark)["params"]["PHASE_TO"] == "DEPLOY"
    assert [e["params"]["PHASE_TO"] for e in proc.events("PHASE_CHANGED", since="start")] == ["SURFACE", "DEPLOY"]
    with pytest.raises(ValueError, match="since"):
        proc.wait_event("PHASE_CHANGED", 0, since="yesterday")


def test_wait_event_filters_arguments_with_values_and_predicates() -> None:
    proc = settled_proc()
    proc.send_and_assert("SET_PHASE", phase="SURFACE")
    proc.send_and_assert("SET_PHASE", phase="DEPLOY")
    assert proc.wait_event("PHASE_CHANGED", 0, since="start", PHASE_FROM="SURFACE")["params"]["PHASE_TO"] == "DEPLOY"
    rec = proc.wait_event("PHASE_CHANGED", 0, since="start", system="lander", PHASE_TO=lambda p: p != "SURFACE")
    assert rec["params"]["PHASE_TO"] == "DEPLOY" and rec["system"] == "LANDER"
    assert proc.wait_event("PHASE_CHANGED", 0, since="start", system="FSS", default=None) is None
    with pytest.raises(ProcedureFailure, match="unexpected event LANDER PHASE_CHANGED"):
        proc.assert_no_event("PHASE_CHANGED", since="start")
    proc.assert_no_event("PHASE_CHANGED", 1.0, since="now")


def test_unknown_names_raise_before_anything_happens() -> None:
    proc = new_proc()
    t0 = proc.now
    with pytest.raises(KeyError, match="did you mean FSS_MODE"):
        proc.wait_tm("FSS_MOD")
    with pytest.raises(KeyError, match="did you mean PHASE_CHANGED"):
        proc.wait_event("PHASE_CHANGE")
    with pytest.raises(KeyError, match="has no argument PHASE"):
        proc.wait_event("PHASE_CHANGED", PHASE="SURFACE")
    with pytest.raises(KeyError):
        proc.value("NO_SUCH_PARAMETER")
    with pytest.raises(ValueError, match="unknown operator"):
        proc.wait_tm("UPTIME", "~", 3)
    with pytest.raises(ValueError):
        proc.wait_tm(lambda r: True, "==", 3)
    with pytest.raises(ValueError):
        proc.sleep(-1)
    with pytest.raises(ValueError):
        proc.wait_tm("UPTIME", timeout=-1)
    assert proc.now == t0


def test_sleep_runs_the_simulated_clock_and_nothing_is_lost() -> None:
    proc = new_proc()
    t0 = proc.now
    proc.sleep(3.5)
    assert proc.now == pytest.approx(t0 + 3.5) and proc.elapsed == pytest.approx(3.5)
    uptimes = [r["params"]["UPTIME"] for r in proc.records(since="start", name="LANDER_HK")]
    assert uptimes == [1, 2, 3]      # one housekeeping packet a second, none lost


def test_a_later_procedure_sees_the_history_of_its_backend() -> None:
    backend = SimBackend(SimBench())
    with Procedure(backend) as first:
        first.sleep(2.0)
        n = len(first.records(since="start"))
    with Procedure(backend) as second:
        assert second.value("PHASE") == "PRELAUNCH"        # from history, without waiting
        assert second.records(since="start") == []
        assert len(second.records(since="history")) == n
        assert second.elapsed == 0


def test_the_journal_is_bounded() -> None:
    proc = Procedure(SimBackend(SimBench()), journal_size=50)
    proc.sleep(10.0)
    assert len(proc.records(since="start")) == 50
    assert proc.wait_tm("UPTIME", timeout=2) is not None


def test_a_closed_procedure_stops_journalling() -> None:
    backend = SimBackend(SimBench())
    proc = Procedure(backend)
    proc.close()
    backend.bench.run_for(2.0)
    assert proc.records(since="history") == [] and len(backend.recent) > 0


def test_open_backend_rejects_unknown_kinds_and_a_link_without_a_spec() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        with open_backend("carrier-pigeon"):
            pass
    with pytest.raises(ValueError, match="needs a link spec"):
        with open_backend("link"):
            pass
    with open_backend("sim", phase="SURFACE", seed=3) as b:
        assert b.kind == "sim" and b.bench.fsw.phases.current.name == "SURFACE"


# ---------------------------------------------------------------------------------------------------------------
# the command-line runner
# ---------------------------------------------------------------------------------------------------------------

PROCS = textwrap.dedent('''
    """Procedures for the runner tests."""

    def helper(proc):
        raise AssertionError("not a procedure: never run")

    def test_ping(proc):
        """PING the lander."""
        proc.send_and_assert("PING")

    def test_fails(proc):
        proc.step("about to fail")
        proc.send_and_assert("FSS_SET_MODE", mode="SCIENCE")

    def test_errors(proc):
        {}["missing"]

    def test_needs_a_fixture(proc, tmp_path):
        pass
''')


@pytest.fixture
def procs_file(tmp_path: Path) -> Path:
    f = tmp_path / "my_procs.py"
    f.write_text(PROCS)
    return f


def test_runner_prints_steps_and_verdicts_and_exits_1_on_a_failure(procs_file: Path, capsys) -> None:
    code = procedures_cli.main(["run", str(procs_file), "--sim"])
    cap = capsys.readouterr()
    out = cap.out
    assert code == 1
    assert "=== test_ping (my_procs.py) on sim" in out and "PASSED test_ping" in out
    assert "== about to fail" in out
    assert "FAILED test_fails: FSS_SET_MODE did not succeed: FAILED PAYLOAD_UNPOWERED" in out
    line = PROCS.splitlines().index('    proc.send_and_assert("FSS_SET_MODE", mode="SCIENCE")') + 1
    assert f'at my_procs.py:{line}: proc.send_and_assert("FSS_SET_MODE", mode="SCIENCE")' in out
    assert "ERROR test_errors: KeyError: 'missing'" in out
    assert out.rstrip().endswith("== 1 passed, 1 failed, 1 error")
    assert "skipping test_needs_a_fixture" in cap.err
    assert out.index("test_ping") < out.index("test_fails") < out.index("test_errors")   # file order


def test_runner_selects_with_k_and_stops_at_the_first_failure_with_x(procs_file: Path, capsys) -> None:
    assert procedures_cli.main(["run", str(procs_file), "--sim", "-k", "PING", "-q"]) == 0
    out = capsys.readouterr().out
    assert "PASSED test_ping" in out and "test_fails" not in out and "send PING" not in out   # -q: verdicts only
    assert procedures_cli.main(["run", str(procs_file), "--sim", "-x", "-k", "fails", "-k", "errors"]) == 1
    out = capsys.readouterr().out
    assert "FAILED test_fails" in out and "test_errors" not in out and "1 not run" in out


def test_runner_usage_errors_exit_2(procs_file: Path, tmp_path: Path, capsys) -> None:
    assert procedures_cli.main(["run", str(procs_file), "--sim", "-k", "nothing"]) == 2
    assert "has no procedure matching nothing" in capsys.readouterr().err
    assert procedures_cli.main(["run", str(tmp_path / "absent.py"), "--sim"]) == 2
    assert procedures_cli.main(["run", "no_such_example", "--sim"]) == 2
    assert "no example procedure" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nimport no_such_module_here\n")
    assert procedures_cli.main(["run", str(broken), "--sim"]) == 2
    assert "does not import (line 2): ModuleNotFoundError" in capsys.readouterr().err
    assert procedures_cli.main(["run", str(procs_file)]) == 2            # --sim, --pty or --link is required
    assert procedures_cli.main(["run", str(procs_file), "--sim", "--phase", "NAP"]) == 2


def test_runner_runs_bundled_examples_by_name(capsys) -> None:
    assert procedures_cli.main(["run", "checkout_lusee", "--sim", "--phase", "PRELAUNCH"]) == 0
    out = capsys.readouterr().out
    assert "PASSED test_lusee_checkout" in out and "LUSEE_SET_MODE completion OK from LUSEE" in out
    assert "mission phase" not in out     # the bench started in the checkout phase: no SET_PHASE needed


def test_the_example_in_the_user_docs_runs(tmp_path: Path, capsys) -> None:
    text = (ROOT / "docs" / "procedures.md").read_text()
    start = text.index("# my_procedures.py\n")
    f = tmp_path / "my_procedures.py"
    f.write_text(text[start:text.index("```", start)])
    assert procedures_cli.main(["run", str(f), "--sim"]) == 0
    assert "PASSED test_lusee_science" in capsys.readouterr().out


def test_list_and_examples(procs_file: Path, capsys) -> None:
    assert procedures_cli.main(["list", str(procs_file)]) == 0
    out = capsys.readouterr().out
    assert "test_ping" in out and "PING the lander." in out and "(not runnable here) test_needs_a_fixture" in out
    assert procedures_cli.main(["examples"]) == 0
    out = capsys.readouterr().out
    for path in example_files():
        assert path.stem in out and str(path) in out
    assert "_common" not in out


def test_every_action_has_help(capsys) -> None:
    for argv in (["--help"], ["run", "--help"], ["list", "--help"], ["examples", "--help"]):
        assert procedures_cli.main(argv) == 0
        assert "usage: ground procedure" in capsys.readouterr().out
    assert procedures_cli.main([]) == 2


# ---------------------------------------------------------------------------------------------------------------
# the pytest plugin
# ---------------------------------------------------------------------------------------------------------------

def test_pytest_plugin_runs_procedures_and_shows_the_steps_of_a_failure(procs_file: Path, tmp_path: Path) -> None:
    # under pytest, a procedure may also take other fixtures
    procs_file.write_text(PROCS.replace("def test_needs_a_fixture(proc, tmp_path):",
                                        "def test_fixture_mix(proc, tmp_path):"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "ground.pytest_plugin", "--procedure-backend", "sim",
                        str(procs_file), "-p", "no:cacheprovider", "-q", "-rN", "--rootdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "2 failed, 2 passed" in out                     # test_ping and test_fixture_mix pass
    assert "test_ping[sim]" in out or "my_procs.py" in out
    assert "== about to fail" in out                        # the steps of the failed procedure are shown
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "ground.pytest_plugin", "--procedure-backend", "tv",
                        str(procs_file), "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 4 and "unknown backend(s) tv" in r.stderr
