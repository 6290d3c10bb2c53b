"""The ground session over a real pseudo-terminal, against a tiny fake flight software in a thread.

The responder owns the master side of an ``os.openpty()`` pair; the ground
session opens the slave device through :class:`fsw.io.link.Link`, exactly as
it opens the flight software's published ``run/ground.pty``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import tty

import pytest

from fsw.dictionary import load_dictionary
from fsw.protocol import Deframer
from ground import cli
from ground.session import GroundSession, LinkUnavailable
from tests.unit.test_ground_cli import FakeFlightSoftware, hk_frame

pytestmark = pytest.mark.bench

D = load_dictionary()


class PtyResponder:
    """Answers TCs on the master side of a pty; sends an FSS_HK every ``hk_period`` seconds."""

    def __init__(self, behaviour=None, hk_period=0.05):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo of our own frames before pyserial configures the port
        self.path = os.ttyname(self.slave)
        self.fsw = FakeFlightSoftware(D, behaviour)
        self.hk_period = hk_period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-fsw", daemon=True)
        self.hk_sent = 0

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        os.close(self.master)
        os.close(self.slave)

    def _run(self):
        deframer = Deframer()
        next_hk = time.monotonic()
        while not self.stop.is_set():
            wait = max(0.0, next_hk - time.monotonic())
            ready = select.select([self.master], [], [], min(wait, 0.05))[0]
            out = b""
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                for item in deframer.feed(data):
                    if isinstance(item, bytes):
                        out += b"".join(self.fsw(item))
            if time.monotonic() >= next_hk:
                out += hk_frame(seq=self.hk_sent & 0x3FFF)
                self.hk_sent += 1
                next_hk += self.hk_period
            if out:
                os.write(self.master, out)


def test_send_and_verify_over_a_pty():
    with PtyResponder({"FSS_LEVEL": "fail:start:WRONG_MODE"}) as fsw:
        with GroundSession(fsw.path, D) as s:
            assert s.wait_connected(5.0)
            seen = []
            r = s.send("FSS_SET_MODE", mode="SCIENCE", on_update=seen.append)
            assert r.state == "SUCCESS", r
            assert [u.report.stage for u in seen] == ["acceptance", "start", "progress", "completion"]
            r = s.send("FSS_LEVEL", target_urad=5)
            assert r.state == "FAILED" and r.failure == "WRONG_MODE"
            hk = s.wait_for(lambda rec: rec.get("name") == "FSS_HK", timeout=5.0)
            assert hk is not None and hk["params"]["FSS_MODE"] == "SCIENCE" and hk["link"] == fsw.path
            assert s.link.stats["bytes_out"] > 0 and s.stats["packets"] > 4
        assert [rec["name"] for rec in fsw.fsw.received] == ["FSS_SET_MODE", "FSS_LEVEL"]


def test_timeout_in_real_time_over_a_pty():
    with PtyResponder({"PING": "silent"}) as fsw:
        with GroundSession(fsw.path, D) as s:
            t0 = time.monotonic()
            r = s.send("PING", timeout=0.5)
            elapsed = time.monotonic() - t0
    assert r.state == "TIMEOUT" and 0.45 <= elapsed < 3.0


def test_no_peer_raises_link_unavailable(tmp_path):
    with GroundSession(str(tmp_path / "absent.pty"), D, connect_timeout_s=0.3) as s:
        with pytest.raises(LinkUnavailable):
            s.send("PING")


def test_cli_send_and_monitor_over_a_pty(capsys):
    with PtyResponder() as fsw:
        code = cli.main(["send", "--link", fsw.path, "--json", "PING", "--to", "FSS"])
        out = capsys.readouterr().out
        assert code == 0, out
        objs = [json.loads(line) for line in out.splitlines()]
        assert objs[-1]["state"] == "SUCCESS" and objs[-1]["system"] == "FSS"
        code = cli.main(["monitor", "--link", fsw.path, "--count", "3", "--duration", "5"])
        lines = [ln for ln in capsys.readouterr().out.splitlines() if "FSS_HK" in ln]
        assert code == 0 and len(lines) == 3


def test_python_m_ground_monitor_json_in_a_subprocess():
    with PtyResponder() as fsw:
        proc = subprocess.run([sys.executable, "-m", "ground", "monitor", "--link", fsw.path, "--json",
                               "--count", "2", "--duration", "8"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    packets = [o for o in objs if "apid" in o]
    assert len(packets) == 2 and all(o["name"] == "FSS_HK" for o in packets)
