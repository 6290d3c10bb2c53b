"""A live ground session archives what it sends and receives (issue 7: command history with its session)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ground.archive import Archive
from ground.procs import start_bench

pytestmark = pytest.mark.bench


def _ground(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ground", *args], capture_output=True, text=True, timeout=60)


def test_send_and_monitor_archive_live_traffic(tmp_path) -> None:
    db = tmp_path / "live.db"
    with start_bench(tmp_path / "run", fsw_args=["-q"], hw_args=["-q"]) as bench:
        link = bench.ground_link
        sent = _ground("send", "PING", "--link", link, "--archive", str(db))
        assert sent.returncode == 0, sent.stderr
        mon = _ground("monitor", "--link", link, "--count", "15", "--archive", str(db))
        assert mon.returncode == 0, mon.stderr
        codes = bench.stop()
    assert codes == {"hw-sim": 0, "fsw": 0}
    with Archive(db) as a:
        cmds = list(a.commands())
        assert len(cmds) == 1
        c = cmds[0]
        assert c["command"] == "PING" and c["state"] == "SUCCESS", c
        assert c["session"].startswith("ground send")
        assert [r["stage"] for r in c["stages"]] == ["acceptance", "start", "completion"], c
        assert a.summary()["packets"] >= 15 + 1 + 3  # monitored packets, the TC, its three reports
