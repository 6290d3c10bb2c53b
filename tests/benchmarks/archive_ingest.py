"""Benchmark: decoding plus archiving, packets per second (not a test; run it by hand).

    .venv/bin/python -m tests.benchmarks.archive_ingest [N]

Builds N (default 100,000) housekeeping packets of every unit, then times in
the same run: decoding alone, and decoding plus archiving into a fresh WAL
archive (batched inserts, commit every 5000 packets, background writer,
``synchronous=NORMAL``) until everything is acknowledged.  Quote the ratio,
not the absolute numbers: a loaded machine moves both.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from fsw.dictionary import load_dictionary
from fsw.protocol import PusTm
from ground.archive import ArchiveWriter
from ground.decoding import PacketDecoder
from ground.replay import ingest_capture


def build(n: int) -> bytes:
    d = load_dictionary()
    rng = random.Random(1)
    kinds = [(s.apid, p) for s in d.systems for p in s.telemetry if p.category == "hk"]
    out = []
    for i in range(n):
        apid, p = kinds[i % len(kinds)]
        raw = {prm.name: (rng.choice(list(prm.enum.values.values())) if prm.enum is not None else rng.randrange(100))
               for prm in p.params}
        out.append(PusTm(apid, p.service, p.subservice, d.encode_tm(p, raw, eng=False), seq_count=i & 0x3FFF,
                         time=1000 + i * 0.001).pack())
    return b"".join(out)


def main(n: int = 100_000) -> None:
    d = load_dictionary()
    data = build(n)
    dec = PacketDecoder(d)
    from ground.replay import iter_capture
    t, c = time.perf_counter(), time.process_time()
    count = sum(1 for _ in iter_capture(data, dec, "raw"))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"decode only: {count / wall:,.0f} packets/s wall, {count / cpu:,.0f} per CPU-second "
          f"({len(data) / count:.0f} B average packet, {count} packets)")
    with tempfile.TemporaryDirectory() as tmp:
        for threaded in (False, True):
            db = Path(tmp) / f"bench-{threaded}.db"
            t, c = time.perf_counter(), time.process_time()
            w = ArchiveWriter(db, commit_every=5000, threaded=threaded)
            ingest_capture(w, data, PacketDecoder(d), "bench", "raw")
            acked = w.close()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            print(f"decode + archive ({'background writer' if threaded else 'inline writer'}): "
                  f"{acked / wall:,.0f} packets/s wall, {acked / cpu:,.0f} per CPU-second acknowledged; "
                  f"{db.stat().st_size / n:.0f} B/packet on disk")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
