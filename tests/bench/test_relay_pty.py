"""The relay emulator as its own process between two real pseudo-terminals (``python -m hw_sim relay``).

The relay publishes both ptys; the test opens each as the ground and as the
lander would.  Checked: bytes pass both ways after the configured one-way
delay; in an out-of-contact phase (LAUNCH) nothing passes and every write is
counted as lost; seeded random loss is counted in the relay's statistics,
what passes arrives whole and in order, and the same seed loses the same
writes again; SIGTERM ends the process cleanly with a final statistics file.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import raw_peer, wait_until

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]


class Relay:
    def __init__(self, run_dir: Path, proc: subprocess.Popen, log: Path) -> None:
        self.run_dir = run_dir
        self.proc = proc
        self.log = log
        self.ground = run_dir / "g.pty"
        self.lander = run_dir / "l.pty"
        self.stats_path = run_dir / "relay.json"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stats(self) -> dict:
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise


@contextmanager
def relay(run_dir: Path, *args: str) -> Iterator[Relay]:
    log = run_dir / "relay.log"
    cmd = [sys.executable, "-m", "hw_sim", "relay", "--ground", f"pty:{run_dir / 'g.pty'}",
           "--lander", f"pty:{run_dir / 'l.pty'}", "--stats", str(run_dir / "relay.json"),
           "--stats-interval", "0.1", *args]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    r = Relay(run_dir, proc, log)
    try:
        assert wait_until(lambda: r.ground.exists() and r.lander.exists() or proc.poll() is not None, 10.0)
        assert proc.poll() is None, r.log_text()
        yield r
    except BaseException:
        print("---- relay log\n" + r.log_text()[-3000:])
        r.stop()
        raise
    code = r.stop()
    assert code == 0, r.log_text()[-2000:]
    assert r.stats(), "no final statistics"


@contextmanager
def peers(r: Relay) -> Iterator[tuple[int, int]]:
    """Both ends opened raw, once the relay has seen each peer attach."""
    with raw_peer(r.ground) as g, raw_peer(r.lander) as lnd:
        assert wait_until(lambda: r.log_text().count("connected") >= 2, 5.0), r.log_text()
        yield g, lnd


def read_for(fd: int, n: int, timeout: float) -> tuple[bytes, float]:
    """Up to ``n`` bytes within ``timeout``; (bytes, monotonic time of the last byte)."""
    buf = bytearray()
    t_last = 0.0
    end = time.monotonic() + timeout
    while len(buf) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        buf += os.read(fd, 4096)
        t_last = time.monotonic()
    return bytes(buf), t_last


def test_bytes_pass_both_ways_after_the_configured_delay(pty_dir: Path) -> None:
    with relay(pty_dir, "--phase", "SURFACE", "--always-in-contact", "--delay", "0.3",
               "--up-rate", "1e6", "--down-rate", "1e6") as r, peers(r) as (g, lnd):
        for src, dst, payload in ((g, lnd, b"uplink \x00\xff" * 10), (lnd, g, b"downlink " * 30)):
            t0 = time.monotonic()
            os.write(src, payload)
            got, t1 = read_for(dst, len(payload), 5.0)
            assert got == payload
            assert 0.3 <= t1 - t0 < 0.3 + 0.4, t1 - t0          # never early; late only by scheduling
        assert wait_until(lambda: r.stats().get("up", {}).get("bytes_out") == 90
                          and r.stats().get("down", {}).get("bytes_out") == 270, 5.0), r.stats()
        s = r.stats()
        assert s["in_contact"] and s["one_way_delay_s"] == pytest.approx(0.3)
        assert s["up"]["writes_lost"] == s["down"]["writes_lost"] == 0


def test_nothing_passes_out_of_contact(pty_dir: Path) -> None:
    with relay(pty_dir, "--phase", "LAUNCH", "--delay", "0") as r, peers(r) as (g, lnd):
        for i in range(5):
            os.write(g, b"up%d" % i)
            os.write(lnd, b"down%d" % i)
        assert wait_until(lambda: r.stats().get("up", {}).get("bytes_in") == 15
                          and r.stats().get("down", {}).get("bytes_in") == 25, 5.0), r.stats()
        s = r.stats()
        assert not s["in_contact"] and s["contact_kind"] == "none"
        assert s["up"]["lost"] == {"no_contact": s["up"]["writes_in"]}
        assert s["down"]["lost"] == {"no_contact": s["down"]["writes_in"]}
        assert s["up"]["bytes_out"] == s["down"]["bytes_out"] == 0
        # and indeed nothing came out at either end
        assert not select.select([g, lnd], [], [], 0)[0]


def lossy_run(run_dir: Path, seed: int, n: int = 30) -> tuple[list[int], dict]:
    """``n`` separate uplink writes through 40 % loss: (indices that arrived, final statistics)."""
    run_dir.mkdir(exist_ok=True)
    with relay(run_dir, "--phase", "SURFACE", "--always-in-contact", "--delay", "0.05", "--up-rate", "1e6",
               "--loss", "0.4", "--impair", "up", "--seed", str(seed), "--stats-interval", "0.01") as r, \
            peers(r) as (g, lnd):
        for i in range(n):
            os.write(g, b"<%03d>" % i)
            # one write -> one read by the relay: wait until its statistics count it
            assert wait_until(lambda: r.stats().get("up", {}).get("writes_in") == i + 1, 5.0), r.stats()
        assert wait_until(lambda: r.stats().get("up", {}).get("writes_in") == n
                          and r.stats()["up"]["bytes_in_flight"] == 0, 5.0), r.stats()
        s = r.stats()
        want = s["up"]["bytes_out"]
        got, _ = read_for(lnd, want, 5.0)
        assert len(got) == want and not select.select([lnd], [], [], 0.1)[0]
    s = r.stats()
    assert s["up"]["writes_in"] == n
    assert s["up"]["lost"] == {"random": n - s["up"]["pieces_out"]}
    chunks = [got[k:k + 5] for k in range(0, len(got), 5)]
    assert all(c[:1] == b"<" and c[-1:] == b">" for c in chunks), got        # whole writes only
    idx = [int(c[1:4]) for c in chunks]
    assert idx == sorted(idx)                                                  # in order
    return idx, s


def test_seeded_loss_is_counted_and_repeatable(tmp_path: Path) -> None:
    a, sa = lossy_run(tmp_path / "a", seed=11)
    assert 4 <= sa["up"]["writes_lost"] <= 22          # 40 % of 30, far from none and from all
    b, _ = lossy_run(tmp_path / "b", seed=11)
    assert a == b                                       # same seed, same writes lost
