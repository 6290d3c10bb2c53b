"""The three programs as separate processes over real pseudo-terminals: hw-sim, fsw, and the ground tool.

hw-sim and fsw run for the whole module (ground.procs.start_bench); every
ground action is its own ``python -m ground ...`` process that opens the
flight software's ground pty, does its job and exits, as an operator's
commands would.  Checked: a PING is verified; a payload command is routed to
the payload and answered by it; ``ground monitor --json --count N`` decodes
live telemetry; and ``ground send`` with an unknown command or an argument
out of range exits 2 without sending anything (the flight software's count of
packets received on its ground port does not move).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest

from ground.procs import Bench

from .bench_procs import ground, processes_mentioning, running_bench

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    run_dir = tmp_path_factory.mktemp("three")
    with running_bench(run_dir, phase="PRELAUNCH") as b:   # the lander's housekeeping every second
        yield b
        assert all(b.alive().values()), "hw-sim or fsw died"
    assert not processes_mentioning(str(run_dir))


def send(bench: Bench, *args: str) -> tuple[int, list[dict], str]:
    """``ground send --json ARGS``: (exit code, JSON lines, stderr)."""
    r = ground("send", "--link", bench.ground_link, "--json", *args)
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines() if line.strip()], r.stderr


def monitor(bench: Bench, count: int, duration: float = 8.0) -> list[dict]:
    r = ground("monitor", "--link", bench.ground_link, "--json", "--count", str(count), "--duration", str(duration))
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def ground_port_rx(bench: Bench) -> tuple[float, int]:
    """(time, packets the flight software received on its ground port) from the latest LINK_HK row.

    LINK_HK comes once a second: a 1.2 s monitor sees at least one row generated after it started.
    """
    recs = monitor(bench, 500, duration=1.2)
    rows = [(r["time"], r["params"]["LINK_RX_PACKETS"]) for r in recs
            if r.get("name") == "LINK_HK" and r["params"]["LINK_PORT"] == "GROUND"]
    assert rows, [r.get("name") for r in recs]
    return max(rows)


def wait_power_readings(bench: Bench, tries: int = 4) -> None:
    """Until the PDU's first housekeeping is in, the power budget counts every unknown channel as on (at its
    highest power) and refuses switch-ons with POWER_BUDGET: watch POWER_HK until it says the data are fresh."""
    for _ in range(tries):
        recs = monitor(bench, 500, duration=1.2)
        if any(r.get("name") == "POWER_HK" and r["params"]["POWER_PDU_STALE"] is False for r in recs):
            return
    raise AssertionError("the PDU's readings never became fresh")


def test_ping_is_verified_by_the_lander(bench: Bench) -> None:
    code, out, err = send(bench, "PING")
    assert code == 0, err
    sent, *stages, result = out
    assert sent["type"] == "sent" and sent["system"] == "LANDER"
    assert [(s["stage"], s["success"], s["reporter"]) for s in stages] == [
        ("acceptance", True, "LANDER"), ("start", True, "LANDER"), ("completion", True, "LANDER")]
    assert result["type"] == "result" and result["state"] == "SUCCESS"


def test_payload_command_is_routed_to_the_payload_and_answered(bench: Bench) -> None:
    wait_power_readings(bench)
    code, out, err = send(bench, "PAYLOAD_POWER_ON", "unit=LMS")
    assert code == 0 and out[-1]["state"] == "SUCCESS", (out[-1], err)
    try:
        # the lander routes a standard command addressed to the LMS: the LMS answers it
        code, out, err = send(bench, "PING", "--to", "LMS")
        assert code == 0, err
        assert {s["reporter"] for s in out if s["type"] == "stage"} == {"LMS"}
        # a payload command: the LMS verifies it, and its telemetry shows the new mode
        code, out, err = send(bench, "LMS_SET_MODE", "mode=SCIENCE")
        assert code == 0 and out[-1]["state"] == "SUCCESS", (out, err)
        assert [s["reporter"] for s in out if s["type"] == "stage"][-1] == "LMS"
        recs = monitor(bench, 60)
        packets = [r for r in recs if "apid" in r]
        assert len(packets) == 60 and not [r for r in recs if "error" in r]
        lms = [r for r in packets if r["system"] == "LMS"]
        assert {"LMS_HK", "LMS_FIELDS"} <= {r["name"] for r in lms}
        assert {r["params"]["LMS_MODE"] for r in lms if r["name"] == "LMS_HK"} == {"SCIENCE"}
    finally:
        code, out, err = send(bench, "PAYLOAD_POWER_OFF", "unit=LMS")
        assert code == 0, (out, err)


BAD = [
    (["NO_SUCH_COMMAND"], "unknown command"),
    (["HK_SET_PERIOD", "sid=1", "period_ms=5"], "outside 100"),
    (["FSS_SET_MODE", "mode=WARP"], "nothing was sent"),
    (["PING", "--to", "MARS"], "unknown unit"),
]


def test_bad_commands_exit_2_and_send_nothing(bench: Bench) -> None:
    t_before, before = ground_port_rx(bench)
    with ThreadPoolExecutor(len(BAD)) as pool:   # separate processes, at the same time
        results = list(pool.map(lambda case: send(bench, *case[0]), BAD))
    for (args, words), (code, out, err) in zip(BAD, results):
        assert code == 2 and out == [] and words in err, (args, code, out, err)
        assert err.count("\n") == 1 and "Traceback" not in err          # one line, no traceback
    # a LINK_HK generated after them: the flight software received nothing on its ground port
    t_after, after = ground_port_rx(bench)
    assert t_after > t_before and after == before, (before, after)
    # ... while one good command does move the count: the check can see a packet
    assert send(bench, "PING")[0] == 0
    t_ping, after_ping = ground_port_rx(bench)
    assert t_ping > t_after and after_ping == after + 1
