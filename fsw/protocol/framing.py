"""Framing of space packets over a serial byte stream, and the sans-I/O deframer.

On the wire each packet is preceded by the 32-bit attached sync marker
``1ACFFC1D`` (CCSDS 131.0-B) and nothing else: the packet's own length field
says where it ends and its own CRC-16 says whether it is intact.  There is
deliberately no outer CRC: a CRC-16/CCITT-FALSE computed over data that
already ends in its own CRC-16/CCITT-FALSE is always zero, so it would check
nothing (see ``shared/reference/reliability.md`` item 3).

:class:`Deframer` takes arbitrary chunks and returns packets and
:class:`Dropped` records.  It never raises on received bytes, checks every
length before using it, keeps at most ``max_packet + 3`` bytes buffered, and
after any failure resynchronises on the next sync marker, so a good frame
right after noise is never lost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Final

from .crc import CRC_LEN, CRC_TABLE, _crc_c
from .spacepacket import PRIMARY_HEADER_LEN

ASM: Final = b"\x1a\xcf\xfc\x1d"
ASM_LEN: Final = 4
#: shortest PUS-C packet with its CRC: primary (6) + TC secondary header (5) + CRC (2)
DEFAULT_MIN_PACKET: Final = 13
DEFAULT_MAX_PACKET: Final = 4096


class DropReason:
    """Reason codes of :class:`Dropped` records (plain strings, stable for telemetry)."""

    NO_SYNC = "no_sync"            # bytes outside any frame
    BAD_VERSION = "bad_version"    # packet version number is not 0
    LENGTH_SHORT = "length_short"  # length field below the minimum packet size
    LENGTH_LONG = "length_long"    # length field above the configured maximum
    CRC = "crc"                    # packet error control mismatch
    TRUNCATED = "truncated"        # frame cut short by an idle gap or end of stream

    ALL: Final = ("no_sync", "bad_version", "length_short", "length_long", "crc", "truncated")


@dataclass(frozen=True, slots=True)
class Dropped:
    """Bytes the deframer discarded, and why."""

    reason: str
    nbytes: int


def frame(packet: bytes | bytearray) -> bytes:
    """The bytes to send for one packet."""
    return ASM + bytes(packet)


class Deframer:
    """Sans-I/O deframer: ``feed(bytes) -> [bytes | Dropped, ...]``.

    Counters (``packets``, ``bytes_in`` and ``drops`` by reason, plus
    ``dropped_bytes``) accumulate over the deframer's life.
    """

    __slots__ = ("max_packet", "min_packet", "check_crc", "_buf", "packets", "bytes_in",
                 "drops", "dropped_bytes")

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET, min_packet: int = DEFAULT_MIN_PACKET,
                 check_crc: bool = True) -> None:
        # with a CRC check the packet error control must not overlap the primary header
        least = PRIMARY_HEADER_LEN + (CRC_LEN if check_crc else 1)
        if not least <= min_packet <= max_packet:
            raise ValueError(f"need {least} <= min_packet ({min_packet}) <= max_packet ({max_packet})")
        if max_packet > PRIMARY_HEADER_LEN + 0x10000:
            raise ValueError(f"max_packet {max_packet} exceeds the largest space packet")
        self.max_packet = max_packet
        self.min_packet = min_packet
        self.check_crc = check_crc
        self._buf = bytearray()
        self.packets = 0
        self.bytes_in = 0
        self.drops: Counter[str] = Counter()
        self.dropped_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    @property
    def overtaken(self) -> bool:
        """Whether a sync marker follows the start of the buffered partial frame.

        On an idle line this tells a dead frame from a slow one.  Bytes arrive
        in order, so once another frame has begun the partial one will never be
        completed, and flushing it (:meth:`flush`) frees what follows.  With
        nothing after it, its missing bytes may still be on their way (a sender
        that stalled mid-frame, a reader thread that has not been scheduled), and
        keeping it loses nothing: whatever comes next either completes it, or
        fails its CRC and is resynchronised past (the following frame intact).
        """
        return self._buf.find(ASM, 1) >= 0

    def _drop(self, out: list, reason: str, n: int) -> None:
        if n > 0:
            out.append(Dropped(reason, n))
            self.drops[reason] += 1
            self.dropped_bytes += n

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | Dropped]:
        """Add received bytes; return the packets completed and bytes dropped, in stream order."""
        out: list[bytes | Dropped] = []
        if not data:
            return out
        self._buf += data
        self.bytes_in += len(data)
        self._scan(out, final=False)
        return out

    def flush(self) -> list[bytes | Dropped]:
        """Give up on a partial frame (idle gap on the line, or end of stream).

        The adapter calls this when the line has been quiet for longer than a
        frame takes.  A partial frame is dropped as ``truncated`` up to the
        next sync marker, and the bytes after it are searched again so that
        nothing good is lost.  Afterwards nothing is buffered.
        """
        out: list[bytes | Dropped] = []
        if self._buf:
            self._scan(out, final=True)
        return out

    def _scan(self, out: list, final: bool) -> None:
        """One pass over the buffer.  ``final``: no more bytes will come for a partial frame.

        Every byte consumed from the buffer goes either into a packet (with
        its marker) or into exactly one :class:`Dropped` record.
        """
        buf = self._buf
        mv = memoryview(buf)  # slices without copies; released before the buffer is resized
        pos = 0
        n = len(buf)
        max_packet = self.max_packet
        min_packet = self.min_packet
        check_crc = self.check_crc
        good = 0
        find = buf.find
        append = out.append
        try:
            while True:
                i = find(ASM, pos)
                if i < 0:
                    # keep a tail that could be the start of a marker (unless the stream is over)
                    keep = n if final else max(pos, n - (ASM_LEN - 1))
                    self._drop(out, DropReason.NO_SYNC, keep - pos)
                    pos = keep
                    break
                if i > pos:
                    self._drop(out, DropReason.NO_SYNC, i - pos)
                    pos = i
                h = i + ASM_LEN
                if n - h < PRIMARY_HEADER_LEN:
                    if not final:
                        break  # wait for the header
                    reason = DropReason.TRUNCATED
                elif buf[h] >> 5:
                    reason = DropReason.BAD_VERSION
                else:
                    total = PRIMARY_HEADER_LEN + ((buf[h + 4] << 8) | buf[h + 5]) + 1
                    if total < min_packet:
                        reason = DropReason.LENGTH_SHORT
                    elif total > max_packet:
                        reason = DropReason.LENGTH_LONG
                    else:
                        end = h + total
                        if end > n:
                            if not final:
                                break  # wait for the rest of the packet
                            reason = DropReason.TRUNCATED
                        # the CRC-16/CCITT-FALSE of a packet followed by its own CRC is zero (and only then):
                        elif check_crc and _crc_c(mv[h:end], 0xFFFF, CRC_TABLE):
                            reason = DropReason.CRC
                        else:
                            append(bytes(mv[h:end]))
                            good += 1
                            pos = end
                            continue
                # a false, damaged or stale frame: discard up to the next marker after this one
                j = find(ASM, i + 1)
                stop = j if j >= 0 else (n if final else max(i + 1, n - (ASM_LEN - 1)))
                self._drop(out, reason, stop - i)
                pos = stop
        finally:
            mv.release()
            self.packets += good
        if pos:
            del buf[:pos]

    def stats(self) -> dict[str, int]:
        d = {"packets": self.packets, "bytes_in": self.bytes_in, "dropped_bytes": self.dropped_bytes}
        for r in DropReason.ALL:
            d[f"drop_{r}"] = self.drops.get(r, 0)
        return d
