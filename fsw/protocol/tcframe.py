"""CCSDS TC Space Data Link Protocol transfer frames (232.0-B-4) and CLTUs (231.0-B-4).

TC transfer frame::

    primary header (5 octets)
      version (2) = 00 | bypass flag (1) | control command flag (1) | spare (2) = 00
      | spacecraft id (10) | virtual channel id (6) | frame length - 1 (10) | frame sequence number N(S) (8)
    frame data field (1 .. 1017 octets)
    frame error control field (2 octets, CRC-16/CCITT-FALSE over everything before it)

The bypass and control command flags give the frame type: ``00`` AD
(sequence-controlled, COP-1), ``10`` BD (expedited, no sequence control),
``11`` BC (COP-1 control commands: Unlock, Set V(R)); ``01`` is illegal.

The FECF is computed from the first octet of the frame header, so it is not
the degenerate "CRC over data that already ends in its own CRC" of
``reliability.md`` item 3 even though the frame data field usually is a PUS
packet ending in its own CRC: the two CRCs start from different registers.

On the line each frame travels in a Communications Link Transmission Unit:
start sequence ``EB90``, BCH(63,56) codeblocks (7 information octets + 1
parity octet, fill ``55``), tail sequence ``C5C5C5C5C5C5C579``.  The
:class:`CltuDecoder` never raises on received bytes; it corrects single
bit errors per codeblock (or only detects them, if told so), ends a CLTU at
the first codeblock it cannot decode (the tail sequence is built to be such
a block) and reports every discarded octet with a reason.

Segment header (optional, MAP service): one octet after the frame header,
sequence flags (2) and MAP id (6); :class:`TcSegmenter` and
:class:`SegmentReassembler` split and join packets larger than one frame.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from typing import Final, Iterator

from .crc import _crc_fun
from .errors import DecodeError, LocalProtocolError
from .framing import Dropped

TC_HEADER_LEN: Final = 5
FECF_LEN: Final = 2
MAX_TC_FRAME_LEN: Final = 1024
MIN_TC_FRAME_LEN: Final = TC_HEADER_LEN + 1 + FECF_LEN
#: largest frame data field with an FECF
MAX_TC_DATA_LEN: Final = MAX_TC_FRAME_LEN - TC_HEADER_LEN - FECF_LEN
MAX_SCID: Final = 0x3FF
MAX_TC_VCID: Final = 0x3F

#: control commands carried by BC frames (232.1-B-2 section 4.1.3.3)
UNLOCK: Final = b"\x00"
SET_VR_PREFIX: Final = b"\x82\x00"

_HDR = struct.Struct(">HHB")


class FrameType:
    AD = "AD"
    BD = "BD"
    BC = "BC"


class TcDropReason:
    """Reason codes for discarded TC frames and CLTU octets (stable strings for telemetry)."""

    NO_SYNC = "no_sync"            # octets outside any CLTU
    CLTU_SHORT = "cltu_short"      # CLTU ended before a whole frame
    FILL = "fill"                  # CLTU ended before any frame header (only fill)
    TOO_SHORT = "too_short"        # fewer octets than a frame header + FECF
    VERSION = "version"
    ILLEGAL_TYPE = "illegal_type"  # bypass 0 with control command 1
    LENGTH = "length"              # frame length field disagrees with the octets received
    FECF = "fecf"
    SCID = "scid"                  # not our spacecraft
    VCID = "vcid"                  # virtual channel not configured
    BAD_CONTROL = "bad_control"    # BC frame whose data is neither Unlock nor Set V(R)


@dataclass(frozen=True, slots=True)
class TcFrame:
    """One TC transfer frame; ``seq`` is N(S)."""

    scid: int
    vcid: int
    seq: int
    data: bytes
    bypass: bool = False
    control: bool = False

    def __post_init__(self) -> None:
        _check("spacecraft id", self.scid, 0, MAX_SCID)
        _check("virtual channel id", self.vcid, 0, MAX_TC_VCID)
        _check("frame sequence number", self.seq, 0, 0xFF)
        if not isinstance(self.data, (bytes, bytearray)):
            raise LocalProtocolError(f"frame data must be bytes, not {type(self.data).__name__}")
        if not 1 <= len(self.data) <= MAX_TC_DATA_LEN:
            raise LocalProtocolError(f"frame data field of {len(self.data)} octets outside 1..{MAX_TC_DATA_LEN}")
        if self.control and not self.bypass:
            raise LocalProtocolError("a control command frame must have the bypass flag set (type BC)")

    @property
    def kind(self) -> str:
        if not self.bypass:
            return FrameType.AD
        return FrameType.BC if self.control else FrameType.BD

    def pack(self) -> bytes:
        n = TC_HEADER_LEN + len(self.data) + FECF_LEN
        body = _HDR.pack(
            (int(self.bypass) << 13) | (int(self.control) << 12) | self.scid,
            (self.vcid << 10) | (n - 1),
            self.seq,
        ) + bytes(self.data)
        return body + _crc_fun(body).to_bytes(2, "big")

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> "TcFrame":
        """Strict parse of exactly one frame; raises :class:`DecodeError` with a :class:`TcDropReason`."""
        r = parse_tc_frame(data)
        if isinstance(r, DecodeError):
            raise r
        return r

    # -- constructors --------------------------------------------------------
    @classmethod
    def ad(cls, scid: int, vcid: int, seq: int, data: bytes) -> "TcFrame":
        return cls(scid, vcid, seq, bytes(data))

    @classmethod
    def bd(cls, scid: int, vcid: int, data: bytes) -> "TcFrame":
        return cls(scid, vcid, 0, bytes(data), bypass=True)

    @classmethod
    def unlock(cls, scid: int, vcid: int) -> "TcFrame":
        return cls(scid, vcid, 0, UNLOCK, bypass=True, control=True)

    @classmethod
    def set_vr(cls, scid: int, vcid: int, vr: int) -> "TcFrame":
        _check("V(R)", vr, 0, 0xFF)
        return cls(scid, vcid, 0, SET_VR_PREFIX + bytes([vr]), bypass=True, control=True)


def _check(what: str, v: object, lo: int, hi: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise LocalProtocolError(f"{what} {v!r} outside {lo}..{hi}")


def parse_tc_frame(data: bytes | bytearray | memoryview, check_fecf: bool = True) -> TcFrame | DecodeError:
    """Parse one complete frame; the error comes back as a value (reason in ``.reason``).

    Lengths are checked before use: the buffer against the header, the
    frame length field against the buffer, and against the 1024-octet limit.
    """
    n = len(data)
    if n < MIN_TC_FRAME_LEN:
        return DecodeError(TcDropReason.TOO_SHORT, f"{n} octets, a TC frame needs at least {MIN_TC_FRAME_LEN}")
    w0, w1, seq = _HDR.unpack_from(data)
    if w0 >> 14:
        return DecodeError(TcDropReason.VERSION, f"transfer frame version {w0 >> 14}, expected 0")
    bypass = bool((w0 >> 13) & 1)
    control = bool((w0 >> 12) & 1)
    if control and not bypass:
        return DecodeError(TcDropReason.ILLEGAL_TYPE, "control command flag without bypass flag")
    flen = (w1 & 0x3FF) + 1
    if flen != n:
        return DecodeError(TcDropReason.LENGTH, f"frame length field says {flen} octets, got {n}")
    if check_fecf and _crc_fun(memoryview(data)[:-2]) != ((data[-2] << 8) | data[-1]):
        return DecodeError(TcDropReason.FECF, "frame error control field does not match")
    return TcFrame(w0 & MAX_SCID, w1 >> 10, seq, bytes(data[TC_HEADER_LEN:-2]), bypass, control)


def frame_length(header: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Total frame length announced by the header at ``offset`` (at least 2 octets there)."""
    return (((header[offset + 2] << 8) | header[offset + 3]) & 0x3FF) + 1


def parse_control_command(data: bytes) -> tuple[str, int | None] | None:
    """``("unlock", None)``, ``("set_vr", V*(R))`` or ``None`` for anything else."""
    if data == UNLOCK:
        return ("unlock", None)
    if len(data) == 3 and data[:2] == SET_VR_PREFIX:
        return ("set_vr", data[2])
    return None


# ---------------------------------------------------------------------------------------------
# Segment header (MAP service)
# ---------------------------------------------------------------------------------------------
SEG_CONTINUATION: Final = 0b00
SEG_FIRST: Final = 0b01
SEG_LAST: Final = 0b10
SEG_UNSEGMENTED: Final = 0b11


class TcSegmenter:
    """Splits a packet into frame data units, each starting with a segment header."""

    def __init__(self, max_frame_len: int = MAX_TC_FRAME_LEN, map_id: int = 0) -> None:
        _check("MAP id", map_id, 0, 0x3F)
        _check("maximum frame length", max_frame_len, MIN_TC_FRAME_LEN + 1, MAX_TC_FRAME_LEN)
        self.map_id = map_id
        self.room = max_frame_len - TC_HEADER_LEN - FECF_LEN - 1

    def split(self, packet: bytes) -> list[bytes]:
        if not packet:
            raise LocalProtocolError("cannot segment an empty packet")
        room = self.room
        if len(packet) <= room:
            return [bytes([(SEG_UNSEGMENTED << 6) | self.map_id]) + bytes(packet)]
        out = []
        for i in range(0, len(packet), room):
            flags = SEG_FIRST if i == 0 else (SEG_LAST if i + room >= len(packet) else SEG_CONTINUATION)
            out.append(bytes([(flags << 6) | self.map_id]) + bytes(packet[i:i + room]))
        return out


class SegmentReassembler:
    """Joins segments back into packets, per MAP id.  Never raises on received data.

    Feed the data field of every accepted AD frame in order (COP-1 guarantees
    the order).  A segment out of its place (a continuation without a first
    segment, a first segment while another packet is open) is counted in
    ``errors`` and the partial packet is discarded.  ``max_packet`` bounds memory.
    """

    def __init__(self, max_packet: int = 65542) -> None:
        self.max_packet = max_packet
        self._open: dict[int, bytearray] = {}
        self.errors: Counter[str] = Counter()

    def feed(self, fdu: bytes) -> bytes | None:
        if not fdu:
            self.errors["empty"] += 1
            return None
        flags, map_id, body = fdu[0] >> 6, fdu[0] & 0x3F, fdu[1:]
        cur = self._open.get(map_id)
        if flags == SEG_UNSEGMENTED or flags == SEG_FIRST:
            if cur is not None:
                self.errors["unterminated"] += 1
                del self._open[map_id]
            if flags == SEG_UNSEGMENTED:
                return bytes(body)
            self._open[map_id] = bytearray(body)
            return None
        if cur is None:
            self.errors["orphan_segment"] += 1
            return None
        cur += body
        if len(cur) > self.max_packet:
            self.errors["too_long"] += 1
            del self._open[map_id]
            return None
        if flags == SEG_LAST:
            del self._open[map_id]
            return bytes(cur)
        return None


def split_packets(data: bytes, min_len: int = 7) -> tuple[list[bytes], int]:
    """Space packets blocked back to back in one frame data unit, and the count of octets that are not.

    Each length field is checked against what is left before it is used; the
    rest of the data after a malformed header is returned as a count, never
    as a packet.
    """
    out = []
    pos = 0
    n = len(data)
    while n - pos >= 6:
        if data[pos] >> 5:
            break
        total = 7 + ((data[pos + 4] << 8) | data[pos + 5])
        if total < min_len or pos + total > n:
            break
        out.append(bytes(data[pos:pos + total]))
        pos += total
    return out, n - pos


# ---------------------------------------------------------------------------------------------
# CLTU: start sequence, BCH(63,56) codeblocks, tail sequence
# ---------------------------------------------------------------------------------------------
CLTU_START: Final = b"\xeb\x90"
CLTU_TAIL: Final = b"\xc5\xc5\xc5\xc5\xc5\xc5\xc5\x79"
CLTU_FILL: Final = 0x55
CODEBLOCK_INFO: Final = 7
CODEBLOCK_LEN: Final = 8
#: g(x) = x^7 + x^6 + x^2 + 1 without its x^7 term
_BCH_POLY = 0x45


def _bch_table() -> list[int]:
    """Byte-at-a-time table of the 7-bit BCH shift register."""
    table = []
    for byte in range(256):
        reg = 0
        for i in range(7, -1, -1):
            fb = ((byte >> i) & 1) ^ ((reg >> 6) & 1)
            reg = (reg << 1) & 0x7F
            if fb:
                reg ^= _BCH_POLY
        table.append(reg)
    return table


_BCH_TAB = _bch_table()


def _bch_reg(info: bytes | bytearray | memoryview, start: int = 0) -> int:
    reg = 0
    tab = _BCH_TAB
    for i in range(start, start + CODEBLOCK_INFO):
        # the 7-bit register aligned to the top of the byte, then 8 input bits at once
        reg = tab[(reg << 1) ^ info[i]]
    return reg


def bch_parity(info: bytes | bytearray | memoryview, start: int = 0) -> int:
    """Parity octet of a 7-octet codeblock: the complemented remainder and a 0 filler bit."""
    return ((~_bch_reg(info, start)) & 0x7F) << 1


def _single_error_syndromes() -> dict[int, int]:
    """Syndrome of a single bit error at each of the 63 code bit positions -> that position."""
    out = {}
    valid = bytes(CODEBLOCK_INFO) + bytes([bch_parity(bytes(CODEBLOCK_INFO))])
    for pos in range(63):  # bit 63 is the filler bit, not covered by the code
        block = bytearray(valid)
        block[pos // 8] ^= 0x80 >> (pos % 8)
        s = _syndrome(block)
        out[s] = pos
    return out


def _syndrome(block: bytes | bytearray | memoryview, start: int = 0) -> int:
    """0 for a valid codeblock; the parity mismatch (7 bits) otherwise.  The filler bit is ignored."""
    expected = _bch_reg(block, start)
    received = ((~block[start + 7]) >> 1) & 0x7F
    return expected ^ received


_SYNDROMES = _single_error_syndromes()


def cltu_encode(frame: bytes | bytearray) -> bytes:
    """The CLTU for one or more concatenated frames."""
    data = bytes(frame)
    if not data:
        raise LocalProtocolError("a CLTU needs at least one octet")
    pad = (-len(data)) % CODEBLOCK_INFO
    data += bytes([CLTU_FILL]) * pad
    out = bytearray(CLTU_START)
    for i in range(0, len(data), CODEBLOCK_INFO):
        out += data[i:i + CODEBLOCK_INFO]
        out.append(bch_parity(data, i))
    out += CLTU_TAIL
    return bytes(out)


@dataclass(frozen=True, slots=True)
class CltuFrameBytes:
    """One candidate frame extracted from a CLTU (bytes still to be validated) and its corrections."""

    data: bytes
    corrected_bits: int = 0


class CltuDecoder:
    """Sans-I/O CLTU decoder: ``feed(bytes) -> [CltuFrameBytes | Dropped]``.

    * ``correct=True``: single bit errors in a codeblock are corrected
      (231.0-B "error correcting mode"); ``False``: detected only.
    * A CLTU ends at the first codeblock that does not decode.  Its data is
      then split into frames by their frame length fields; trailing fill is
      dropped as ``fill``; a frame cut short as ``cltu_short``.
    * Memory: at most ``max_cltu_data`` information octets per CLTU (default
      4 frames); a longer CLTU is split there.
    """

    def __init__(self, correct: bool = True, max_cltu_data: int = 4 * MAX_TC_FRAME_LEN) -> None:
        self.correct = correct
        self.max_cltu_data = max_cltu_data
        self._buf = bytearray()
        self._data: bytearray | None = None  # information octets of the CLTU being decoded
        self._corrected = 0
        self.drops: Counter[str] = Counter()
        self.dropped_bytes = 0
        self.cltus = 0
        self.frames = 0
        self.corrected_bits = 0
        self.bytes_in = 0

    def _drop(self, out: list, reason: str, n: int) -> None:
        if n > 0:
            out.append(Dropped(reason, n))
            self.drops[reason] += 1
            self.dropped_bytes += n

    def feed(self, data: bytes | bytearray | memoryview) -> list[CltuFrameBytes | Dropped]:
        out: list[CltuFrameBytes | Dropped] = []
        if not data:
            return out
        self.bytes_in += len(data)
        self._buf += data
        buf = self._buf
        pos = 0
        n = len(buf)
        while True:
            if self._data is None:
                i = buf.find(CLTU_START, pos)
                if i < 0:
                    keep = max(pos, n - 1)  # the last octet may be the start of EB90
                    self._drop(out, TcDropReason.NO_SYNC, keep - pos)
                    pos = keep
                    break
                self._drop(out, TcDropReason.NO_SYNC, i - pos)
                pos = i + len(CLTU_START)
                self._data = bytearray()
                self._corrected = 0
                self.cltus += 1
                continue
            if n - pos < CODEBLOCK_LEN:
                break
            s = _syndrome(buf, pos)
            if s:
                bit = _SYNDROMES.get(s) if self.correct else None
                if bit is None:
                    # uncorrectable (or the tail sequence): the CLTU ends here
                    self._end(out)
                    if bytes(buf[pos:pos + CODEBLOCK_LEN]) == CLTU_TAIL:
                        pos += CODEBLOCK_LEN
                    # an undecodable block that is not the tail: search for a new start inside it
                    continue
                block = bytearray(buf[pos:pos + CODEBLOCK_INFO])
                if bit < 56:
                    block[bit // 8] ^= 0x80 >> (bit % 8)
                self._corrected += 1
                self.corrected_bits += 1
                self._data += block
            else:
                self._data += buf[pos:pos + CODEBLOCK_INFO]
            pos += CODEBLOCK_LEN
            if len(self._data) >= self.max_cltu_data:
                self._end(out)
        if pos:
            del buf[:pos]
        return out

    def flush(self) -> list[CltuFrameBytes | Dropped]:
        """The line went quiet: end an open CLTU (its tail was lost) and drop buffered octets."""
        out: list[CltuFrameBytes | Dropped] = []
        if self._data is not None:
            self._end(out)
        self._drop(out, TcDropReason.NO_SYNC, len(self._buf))
        self._buf.clear()
        return out

    def _end(self, out: list) -> None:
        data = self._data or bytearray()
        corrected = self._corrected
        self._data = None
        for item in split_frames(data, corrected):
            if isinstance(item, Dropped):
                self._drop(out, item.reason, item.nbytes)
            else:
                self.frames += 1
                out.append(item)

    def stats(self) -> dict[str, int]:
        d = {"cltus": self.cltus, "frames": self.frames, "corrected_bits": self.corrected_bits,
             "bytes_in": self.bytes_in, "dropped_bytes": self.dropped_bytes}
        for r in (TcDropReason.NO_SYNC, TcDropReason.CLTU_SHORT, TcDropReason.FILL):
            d[f"drop_{r}"] = self.drops.get(r, 0)
        return d


def split_frames(data: bytes | bytearray, corrected: int = 0) -> Iterator[CltuFrameBytes | Dropped]:
    """Frames packed back to back in the information octets of one CLTU, then fill."""
    pos = 0
    n = len(data)
    while pos < n:
        rest = data[pos:]
        if all(b == CLTU_FILL for b in rest):
            yield Dropped(TcDropReason.FILL, n - pos)
            return
        if n - pos < 4:
            yield Dropped(TcDropReason.CLTU_SHORT, n - pos)
            return
        flen = frame_length(data, pos)
        if pos + flen > n:
            yield Dropped(TcDropReason.CLTU_SHORT, n - pos)
            return
        yield CltuFrameBytes(bytes(data[pos:pos + flen]), corrected)
        corrected = 0
        pos += flen
