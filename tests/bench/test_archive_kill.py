"""Acknowledged means durable: kill -9 an ingesting process, reopen, and find at least what it acknowledged.

A child process stores packets as fast as it can and prints the acknowledged
(committed) count after every commit.  Once it has acknowledged enough, it
is killed with SIGKILL in the middle of later batches.  The archive must
then open cleanly, pass SQLite's integrity check, and hold at least the
acknowledged packets, each intact, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ground.archive import Archive

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
from fsw.dictionary import load_dictionary
from fsw.protocol import PusTm
from ground.archive import ArchiveWriter
from ground.decoding import PacketDecoder

d = load_dictionary()
dec = PacketDecoder(d)
pkt = d.packet("LANDER_HK")
w = ArchiveWriter(sys.argv[1], commit_every=500, commit_interval=0.05,
                  on_commit=lambda n: print(f"ACK {n}", flush=True))
i = 0
while True:  # until killed
    raw = PusTm(d.lander.apid, 3, 25, d.encode_tm(pkt, {"UPTIME": i}), seq_count=i & 0x3FFF, time=i).pack()
    w.add(raw, dec.decode(raw), rx_time=float(i), link="bench")
    i += 1
"""


@pytest.mark.bench
@pytest.mark.parametrize("kill_after", [3000, 12000])
def test_acknowledged_packets_survive_kill_9(tmp_path: Path, kill_after: int) -> None:
    db = tmp_path / "kill.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=env)
    acknowledged = 0
    deadline = time.monotonic() + 8.0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ACK "):
                acknowledged = int(line.split()[1])
                if acknowledged >= kill_after:
                    break
            if time.monotonic() > deadline:
                break
        child.send_signal(signal.SIGKILL)  # mid-stream: later batches are being written
        child.wait(5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    assert child.returncode == -signal.SIGKILL
    assert acknowledged >= kill_after, f"child acknowledged only {acknowledged}: {child.stderr.read()}"
    with Archive(db) as a:
        assert a.integrity() == ["ok"]
        rows = list(a.packets())
        assert len(rows) >= acknowledged
        ups = [r[1] for r in rows]
        assert ups == [float(i) for i in range(len(rows))]  # every one present, in order, none twice
