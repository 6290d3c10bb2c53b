"""Replay an archive or a raw capture through the decoders, at any speed; ingest captures into an archive.

* :func:`iter_capture` walks a capture file (sync-marked frames, or raw space
  packets back to back) and yields ``(bytes, record)`` for every packet and
  every damaged stretch, so that nothing in the file is skipped silently: a
  truncated last packet comes out as a record with ``error: "truncated"``.
* :func:`iter_archive` yields the archived packets, decoded again with the
  dictionary given (so an archive can be re-read with a newer dictionary).
* :func:`pace` spaces items out in time: ``speed`` 1 is real time, 10 is ten
  times faster, ``None`` is as fast as possible.  The clock and the sleep are
  injected, so tests run without sleeping.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from fsw.protocol import ASM, IDLE_APID, PRIMARY_HEADER_LEN, Deframer, Dropped

from .archive import Archive, ArchiveWriter, is_sqlite_file
from .decoding import PacketDecoder, decode_dropped, detect_format, iter_raw_records

__all__ = ["ReplayItem", "ingest_capture", "iter_archive", "iter_capture", "iter_source", "pace"]

T = TypeVar("T")
ReplayItem = tuple[float | None, bytes, dict]


def iter_capture(data: bytes | bytearray | memoryview, decoder: PacketDecoder, fmt: str = "auto",
                 chunk: int = 65536) -> Iterator[tuple[bytes, dict]]:
    """Every packet and damaged stretch of a capture as ``(bytes, record)``; records carry ``offset``."""
    buf = bytes(data)
    if fmt == "auto":
        fmt = detect_format(buf)
    if fmt == "framed":
        yield from _iter_framed(buf, decoder, chunk)
    elif fmt == "raw":
        yield from _iter_raw(buf, decoder)
    else:
        raise ValueError(f"unknown capture format {fmt!r}; expected auto, raw or framed")


def _iter_raw(buf: bytes, decoder: PacketDecoder) -> Iterator[tuple[bytes, dict]]:
    """Raw packets back to back: the records of :func:`ground.decoding.iter_raw_records`, with their bytes.

    Intact packets take a fast path (one header look, one decode: the CRC is
    checked once); a damaged stretch is handled exactly as the decoding
    module does, with its own helpers.  A test checks both give the same records.
    """
    try:
        from .decoding import _RAW_DETAIL, _raw_problem, _region_error, _resync
    except ImportError:  # the decoding module changed its internals: take the plain (slower) walk
        for rec in iter_raw_records(buf, decoder):
            off = rec["offset"]
            if "bytes" in rec:  # a damaged region or a truncated tail: exactly the bytes it covers
                raw = buf[off:off + rec["bytes"]]
            else:
                raw = buf[off:off + PRIMARY_HEADER_LEN + ((buf[off + 4] << 8) | buf[off + 5]) + 1]
            yield raw, rec
        return
    n = len(buf)
    max_packet = decoder.dictionary.max_packet
    apids = {s.apid for s in decoder.dictionary.systems} | {IDLE_APID}
    decode = decoder.decode
    pos = 0
    while pos < n:
        if n - pos >= PRIMARY_HEADER_LEN:
            b0 = buf[pos]
            total = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1
            if not b0 >> 5 and b0 & 0x08 and 13 <= total <= max_packet and pos + total <= n:
                raw = buf[pos:pos + total]
                rec = decode(raw)
                # an intact packet, or one whose CRC is right although the decoder refused it (as the plain walk)
                if "error" not in rec or _raw_problem(buf, pos, max_packet) is None:
                    rec["offset"] = pos
                    yield raw, rec
                    pos += total
                    continue
        reason = _raw_problem(buf, pos, max_packet)
        if reason is None:  # the header looked wrong to the fast path but the walk accepts it: decode it
            total = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1
            rec = decode(buf[pos:pos + total])
            rec["offset"] = pos
            yield buf[pos:pos + total], rec
            pos += total
            continue
        if reason == "truncated":
            avail = n - pos
            need = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1 if avail >= 6 else 6
            nxt = _resync(buf, pos + 1, apids, max_packet)
            if nxt is None:
                yield buf[pos:], _region_error("truncated", f"last packet needs {need} octets, only {avail} left",
                                               buf, pos, n)
                return
            yield buf[pos:nxt], _region_error("bad_length", f"length field says {need} octets, file has {avail} "
                                              "left", buf, pos, nxt)
            pos = nxt
            continue
        nxt = _resync(buf, pos + 1, apids, max_packet)
        end = n if nxt is None else nxt
        yield buf[pos:end], _region_error(reason, _RAW_DETAIL[reason], buf, pos, end)
        pos = end


def _iter_framed(buf: bytes, decoder: PacketDecoder, chunk: int) -> Iterator[tuple[bytes, dict]]:
    deframer = Deframer(max_packet=decoder.dictionary.max_packet)
    cursor = 0
    n = len(buf)
    mv = memoryview(buf)

    def emit(items: list) -> Iterator[tuple[bytes, dict]]:
        nonlocal cursor
        for item in items:
            if type(item) is Dropped:
                rec = decode_dropped(item)
                rec["offset"] = cursor
                raw = buf[cursor:cursor + item.nbytes]
                if item.reason == "truncated":
                    rec["error"] = "truncated"
                    rec["detail"] = f"at offset {cursor}: frame cut short by the end of the capture"
                cursor += item.nbytes
            else:
                raw = bytes(item)
                rec = decoder.decode(raw)
                rec["offset"] = cursor + len(ASM)
                cursor += len(ASM) + len(raw)
            yield raw, rec

    for start in range(0, n, chunk):
        yield from emit(deframer.feed(mv[start:start + chunk]))
    yield from emit(deframer.flush())


def iter_archive(archive: Archive, decoder: PacketDecoder, include_sent: bool = True) -> Iterator[ReplayItem]:
    """Archived packets in stored order, decoded again: ``(timestamp, bytes, record)``.

    The timestamp is the reception time when the archive has one, else the
    packet's own time (captures carry no reception times).
    """
    dirs = ("rx", "tx") if include_sent else ("rx",)
    for pid, rx_time, link, direction, ptime, error, raw in archive.packets(directions=dirs, valid_only=False):
        raw = bytes(raw)
        if error is not None and error.startswith("dropped:"):
            rec: dict = {"dropped": error.split(":", 1)[1], "bytes": len(raw)}
        else:
            rec = decoder.decode(raw, link, rx_time)
        rec["archive_id"] = pid
        if direction == "tx":
            rec["direction"] = "tx"
        yield (rx_time if rx_time is not None else ptime), raw, rec


def iter_source(path: str | Path, decoder: PacketDecoder, fmt: str = "auto") -> Iterator[ReplayItem]:
    """An archive (detected by its SQLite header) or a capture file, as ``(timestamp, bytes, record)``.

    Raises :class:`ArchiveError` for an unreadable archive and :class:`OSError` for an unreadable file.
    """
    p = Path(path)
    if is_sqlite_file(p):
        archive = Archive(p)

        def gen() -> Iterator[ReplayItem]:
            try:
                yield from iter_archive(archive, decoder)
            finally:
                archive.close()
        return gen()
    data = p.read_bytes()

    def cap() -> Iterator[ReplayItem]:
        for raw, rec in iter_capture(data, decoder, fmt):
            yield rec.get("time"), raw, rec
    return cap()


def pace(items: Iterable[tuple[float | None, T]], speed: float | None, *,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         max_gap: float | None = None) -> Iterator[T]:
    """Yield each item when its time comes: ``(t - t_first) / speed`` after the first.

    ``speed=None`` yields at once.  Items without a time go out immediately.
    Time going backwards restarts the reference (a new recording), and a
    gap longer than ``max_gap`` seconds (of recorded time) is shortened to it.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive, got {speed!r}")
    base_t: float | None = None
    base_wall = 0.0
    last_t: float | None = None
    for t, item in items:
        if speed is not None and t is not None:
            if base_t is None or last_t is None or t < last_t:
                base_t, base_wall = t, clock()
            else:
                if max_gap is not None and t - last_t > max_gap:
                    base_t += (t - last_t) - max_gap
                delay = base_wall + (t - base_t) / speed - clock()
                if delay > 0:
                    sleep(delay)
            last_t = t
        yield item


def ingest_capture(writer: ArchiveWriter, data: bytes, decoder: PacketDecoder, link: str | None,
                   fmt: str = "auto") -> dict[str, int]:
    """Decode a capture and queue everything in it into ``writer``; returns counts by outcome."""
    counts = {"packets": 0, "errors": 0, "dropped_bytes": 0}
    add = writer.add
    for raw, rec in iter_capture(data, decoder, fmt):
        add(raw, rec, None, link)
        if "dropped" in rec:
            counts["dropped_bytes"] += rec["bytes"]
            if rec.get("error"):
                counts["errors"] += 1
        elif "error" in rec:
            counts["errors"] += 1
        else:
            counts["packets"] += 1
    return counts

