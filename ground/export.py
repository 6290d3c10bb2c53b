"""Exports from the archive: parameters to CSV, packets to a raw file of concatenated space packets.

The raw file is the format ccsdspy and space-packet-parser read: packets
back to back, nothing between them (no sync markers, no record headers).
Only packets that arrived intact are exported (damaged bytes stay in the
archive, marked, and are never passed off as packets).
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterable

from fsw.dictionary import Dictionary

from .archive import Archive
from .archive_query import ParamLocation, csv_safe

__all__ = ["CSV_COLUMNS", "export_csv", "export_raw"]

CSV_COLUMNS = ("time", "utc", "parameter", "value", "unit", "limit", "source", "apid")


def export_csv(archive: Archive, dictionary: Dictionary, locations: Iterable[ParamLocation], out: IO[str],
               start: float | None = None, end: float | None = None) -> int:
    """Write one row per sample (long format, sorted by time); returns the number of rows.

    ``time`` is mission seconds, ``utc`` ISO-8601.  Text values that a
    spreadsheet would take for a formula are written with a leading quote.
    """
    series = []
    for loc in locations:
        for s in archive.param_series(loc, start, end):
            series.append((s.time if s.time is not None else float("-inf"), loc, s))
    series.sort(key=lambda t: (t[0], t[2].packet_id, t[1].name))
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    epoch = dictionary.epoch
    for _, loc, s in series:
        value: Any = s.value
        if isinstance(value, (list, dict)):
            value = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float):
            value = repr(value)
        utc = epoch.iso(s.time) if s.time is not None else ""
        w.writerow([repr(s.time) if s.time is not None else "", utc, loc.name, csv_safe(value), csv_safe(loc.unit),
                    s.limit or "", s.source, "" if s.apid is None else s.apid])
    return len(series)


def export_raw(archive: Archive, out: IO[bytes], apids: Iterable[int] | None = None, start: float | None = None,
               end: float | None = None, include_sent: bool = False) -> tuple[int, int]:
    """Write intact packets back to back; returns ``(packets, bytes)``."""
    dirs = ("rx", "tx") if include_sent else ("rx",)
    n = size = 0
    for _pid, _rx, _link, _dir, _time, _error, raw in archive.packets(apids, start, end, dirs, valid_only=True):
        out.write(raw)
        n += 1
        size += len(raw)
    return n, size
