"""End to end over real pseudo-terminals: ground (space link) <-> relay emulator process <-> fsw --space-link.

hw-sim, the flight software (``fsw --space-link``) and the relay emulator
(``hw-sim relay``, with seeded loss and duplication both ways) run as their
own processes (:func:`ground.procs.start_bench` with ``relay=``); the ground
is a :class:`ground.session.GroundSession` with ``space_link=True`` in this
process, then ``ground --space-link send`` as a process of its own, then the
console's backend (``ground --space-link console``).
Checked: every PING is verified exactly once (one report per stage, no copy
arriving later), housekeeping arrives, the relay carried bytes both ways, and
every process stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsw.dictionary import load_dictionary
from ground.console import LiveBackend
from ground.procs import start_bench
from ground.session import GroundSession

from .bench_procs import ground, processes_mentioning
from .conftest import wait_until

pytestmark = pytest.mark.bench

def test_pings_verified_once_and_telemetry_through_the_relay_process(tmp_path: Path) -> None:
    d = load_dictionary()
    stats_path = tmp_path / "relay.json"
    relay_args = ["--phase", "SURFACE", "--always-in-contact", "--delay", "0.2", "--loss", "0.01",
                  "--duplicate", "0.05", "--dup-delay", "0.3", "--seed", "3", "--stats", str(stats_path),
                  "--stats-interval", "0.5"]
    bench = start_bench(tmp_path / "run", phase="PRELAUNCH", space_link=True, relay=relay_args)
    try:
        with GroundSession(bench.ground_link, d, space_link=True, drain_s=8.0) as s:
            assert s.wait_connected(5.0), bench.log_text("relay")
            assert s.wait_for(lambda r: r.get("name") == "LANDER_HK", timeout=10.0) is not None, \
                (s.space_stats(), bench.log_text("fsw")[-2000:])
            tcs = []
            for _ in range(5):
                tc = s.submit("PING", timeout=15.0)
                tcs.append(tc)
                result = s.wait(tc)
                assert result.state == "SUCCESS", (result, s.space_stats())
            s.poll(1.0)                                   # a late copy of a report would show up now
            for tc in tcs:
                st = s.tracker.status(tc)
                assert [(r.stage, r.success) for r in st.reports] == [
                    ("acceptance", True), ("start", True), ("completion", True)], st.reports
            assert s.drain(8.0)
            link = s.space_stats()
        assert link["cop_indeterminate"] == 0 and link["tcs_delivered"] >= 5
        # the ground tool as its own process, starting its own FOP-1 after the session above
        r = ground("--space-link", "send", "--link", bench.ground_link, "--json", "--timeout", "15", "PING")
        assert r.returncode == 0, r.stderr
        sent, *stages, result = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert [(x["stage"], x["success"]) for x in stages] == [
            ("acceptance", True), ("start", True), ("completion", True)]
        assert result["state"] == "SUCCESS"
        # the operator console's backend (ground --space-link console) over the same ptys, a third FOP-1
        console = LiveBackend(bench.ground_link, d, space_link=True)
        console.start()
        try:
            assert console.session.wait_connected(5.0)
            handle = console.send("PING", None, {}, None, 15.0)
            assert wait_until(lambda: (console.poll() or True) and console.status(handle) is not None
                              and console.status(handle).state == "SUCCESS", 20.0), console.status(handle)
            assert "FOP-1 ACTIVE" in console.link_stats()["space_link"]
        finally:
            console.stop()
        assert wait_until(lambda: stats_path.exists() and json.loads(stats_path.read_text())["up"]["writes_in"] > 0,
                          5.0)
        rs = json.loads(stats_path.read_text())
        assert rs["in_contact"] and rs["down"]["bytes_out"] > 0 and rs["up"]["bytes_out"] > 0
    except BaseException:
        for name in bench.procs:
            print(f"---- {name} log\n" + bench.log_text(name)[-3000:])
        raise
    finally:
        codes = bench.stop()
    assert codes == {"hw-sim": 0, "fsw": 0, "relay": 0}, codes
    assert not processes_mentioning(str(bench.run_dir))
