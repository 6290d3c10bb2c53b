"""Archive ingest benchmark: decoding plus archiving, packets per second (wraps ``archive_ingest``).

The same capture (housekeeping packets of every unit, built by
:func:`tests.benchmarks.archive_ingest.build`) is decoded alone, then decoded and archived into a fresh
WAL archive (``ArchiveWriter``, batched commits every 5,000 packets), with the background writer and
inline, until every packet is acknowledged (committed).  Goal: >= 50,000 packets/s acknowledged with
the background writer.  The peer is decoding alone, measured in the same run: the ratio says what the
archive costs on top of the decoder.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fsw.dictionary import load_dictionary
from ground.archive import ArchiveWriter
from ground.decoding import PacketDecoder
from ground.replay import ingest_capture, iter_capture

from . import row
from .archive_ingest import build

#: archive_ingest's own main() is not run separately by the runner: this module measures the same thing
WRAPS = ("archive_ingest",)


def run(quick: bool) -> list[dict]:
    d = load_dictionary()
    n = 20_000 if quick else 100_000
    data = build(n)
    decode_rates = []
    for _ in range(1 if quick else 2):
        t = time.perf_counter()
        count = sum(1 for _ in iter_capture(data, PacketDecoder(d), "raw"))
        decode_rates.append(count / (time.perf_counter() - t))
    assert count == n, count
    decode = max(decode_rates)
    rates: dict[bool, float] = {}
    sizes: dict[bool, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        for threaded in (True, False):
            db = Path(tmp) / f"bench-{threaded}.db"
            t = time.perf_counter()
            w = ArchiveWriter(db, commit_every=5000, threaded=threaded)
            ingest_capture(w, data, PacketDecoder(d), "bench", "raw")
            acked = w.close()
            rates[threaded] = acked / (time.perf_counter() - t)
            sizes[threaded] = db.stat().st_size / n
            assert acked == n, (acked, n)
    return [
        row("archive ingest, decode + archive (background writer), acknowledged", rates[True], peer=decode,
            goal=">= 50,000/s", met=rates[True] >= 50_000, unit="packets/s",
            note=f"{n:,} HK packets, {len(data) / n:.0f} B average; peer = decoding alone in the same run "
                 f"(ratio: share of the decode-only rate kept); {sizes[True]:.0f} B/packet on disk"),
        row("archive ingest, decode + archive (inline writer), acknowledged", rates[False], peer=decode,
            unit="packets/s", note="same capture, the writer in the decoding thread"),
    ]
