"""Pacing benchmark: a paced :class:`fsw.io.link.Link` writer on a pseudo-terminal against its configured baud.

A pty moves bytes as fast as it can, so the link paces itself (``pace=True``).  The writer is given a
few seconds of framed packets at once; a reader on the pty's slave side timestamps every read.  The
achieved rate is the bytes divided by the time from the first ``write()`` to the last read, compared
with the line rate (8N1: baud / 10 bytes/s).  Goal: within 2 % of it and never above.

From the first write: a UART given the same bytes at that moment could not finish sooner.  (Measured
from the first *read*, the rate can come out a little above the line rate when the writer thread is
delayed right at the start: the link makes up a stall of up to ``PACE_CATCH_UP`` by sending the late
bytes at once.)
"""

from __future__ import annotations

import os
import select
import tempfile
import time
import tty
from pathlib import Path

from fsw.io.link import Link
from fsw.protocol import PusTm, frame

from . import row


def measure(baud: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pace-") as tmp:
        path = Path(tmp) / "line.pty"
        link = Link(f"pty:{path}", baud=baud, pace=True, reconnect_min=0.01)
        link.open()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            end = time.monotonic() + 5
            while not link.connected and time.monotonic() < end:
                time.sleep(0.005)
            assert link.connected, "the link did not see its peer"
            rate = baud / link.bits_per_byte
            frames = [frame(PusTm(0x20, 3, 25, bytes(range(i % 7, i % 7 + 40)), seq_count=i & 0x3FFF).pack())
                      for i in range(int(rate * seconds / 66) + 1)]
            total = sum(len(f) for f in frames)
            t_write = time.perf_counter()
            for f in frames:
                link.write(f)
            got = 0
            first_t = last_t = None
            first_n = 0
            deadline = time.monotonic() + seconds * 2 + 5
            while got < total and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    n = len(os.read(fd, 65536))
                    t = time.perf_counter()
                    if first_t is None:
                        first_t, first_n = t, n
                    got += n
                    last_t = t
            stats = link.stats
        finally:
            os.close(fd)
            link.close()
    assert got == total and first_t is not None and last_t is not None, (got, total)
    achieved = got / (last_t - t_write)
    return {"achieved": achieved, "rate": rate, "bytes": total, "drops": stats["write_drops"]}


def run(quick: bool) -> list[dict]:
    rows = []
    for baud in (115_200, 921_600):
        m = measure(baud, 1.0 if quick else 3.0)
        ratio = m["achieved"] / m["rate"]
        rows.append(row(f"paced link throughput at {baud:,} baud / line rate", m["achieved"], peer=m["rate"],
                        ratio=ratio, goal="0.98..1.00", met=0.98 <= ratio <= 1.0, unit="bytes/s",
                        note=f"{m['bytes']:,} B of 66 B frames written at once, read on the pty's slave side; "
                             f"peer = baud/10 (8N1)"))
    return rows
