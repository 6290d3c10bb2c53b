"""CCSDS TM Space Data Link Protocol (132.0-B-3): fixed-length frames, CLCW, packet (de)multiplexing.

TM transfer frame (every frame of the mission has the same length)::

    primary header (6 octets)
      version (2) = 00 | spacecraft id (10) | virtual channel id (3) | OCF flag (1)
      | master channel frame count (8) | virtual channel frame count (8)
      | data field status (16): secondary header flag (1) = 0 | synchronisation flag (1) = 0
        | packet order flag (1) = 0 | segment length id (2) = 11 | first header pointer (11)
    frame data field: space packets back to back, spanning frames
    operational control field (4 octets): the CLCW of COP-1
    frame error control field (2 octets, CRC-16/CCITT-FALSE)

On the line each frame follows the attached sync marker ``1ACFFC1D``
(131.0-B); ASM + frame is a CADU.

First header pointer: offset of the first packet header that starts in the
frame, ``0x7FF`` when none starts in it (the frame continues a packet),
``0x7FE`` when the frame holds only idle data (an OID frame).

Virtual channels of the mission (defaults, see :data:`VC_REALTIME` ...):
0 real-time housekeeping and events, 1 playback from the packet stores, 7
idle frames.  Gaps in a channel's frame count tell the receiver that frames
were lost; the partial packet is then discarded and the reassembler
resynchronises on the next first header pointer.

Everything here is pure; receivers never raise on received bytes.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Final, Iterable

import construct as cs

from .crc import CRC_TABLE, _crc_c
from .errors import DecodeError, LocalProtocolError
from .framing import ASM, ASM_LEN, Dropped
from .spacepacket import IDLE_APID, PRIMARY_HEADER_LEN

TM_HEADER_LEN: Final = 6
OCF_LEN: Final = 4
FECF_LEN: Final = 2
MAX_TM_FRAME_LEN: Final = 2048
MAX_TM_VCID: Final = 7
FHP_NO_PACKET: Final = 0x7FF
FHP_IDLE: Final = 0x7FE
#: idle packets are at least a primary header and one octet
MIN_IDLE_PACKET: Final = PRIMARY_HEADER_LEN + 1

#: The mission's spacecraft id (10 bits).  Not a SANA-assigned id: the emulator's own.
DEFAULT_SCID: Final = 0x1A5
#: 1115 octets = 5 interleaved Reed-Solomon(255,223) codewords' worth of data, a common CCSDS size
DEFAULT_TM_FRAME_LEN: Final = 1115
VC_REALTIME: Final = 0
VC_PLAYBACK: Final = 1
VC_IDLE: Final = 7
IDLE_FILL: Final = 0x55

#: declarative layouts; the fast paths below use struct and integer arithmetic and a test checks they agree
TM_PRIMARY_HEADER_FORMAT = cs.BitStruct(
    "version" / cs.BitsInteger(2),
    "scid" / cs.BitsInteger(10),
    "vcid" / cs.BitsInteger(3),
    "ocf_flag" / cs.BitsInteger(1),
    "mc_count" / cs.BitsInteger(8),
    "vc_count" / cs.BitsInteger(8),
    "sec_hdr_flag" / cs.BitsInteger(1),
    "sync_flag" / cs.BitsInteger(1),
    "packet_order" / cs.BitsInteger(1),
    "segment_len_id" / cs.BitsInteger(2),
    "fhp" / cs.BitsInteger(11),
)

CLCW_FORMAT = cs.BitStruct(
    "control_word_type" / cs.BitsInteger(1),
    "version" / cs.BitsInteger(2),
    "status" / cs.BitsInteger(3),
    "cop_in_effect" / cs.BitsInteger(2),
    "vcid" / cs.BitsInteger(6),
    "spare0" / cs.BitsInteger(2),
    "no_rf" / cs.BitsInteger(1),
    "no_bitlock" / cs.BitsInteger(1),
    "lockout" / cs.BitsInteger(1),
    "wait" / cs.BitsInteger(1),
    "retransmit" / cs.BitsInteger(1),
    "farm_b" / cs.BitsInteger(2),
    "spare1" / cs.BitsInteger(1),
    "report_value" / cs.BitsInteger(8),
)

_TM_HDR = struct.Struct(">HBBH")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class TmDropReason:
    """Reason codes for discarded downlink octets, frames and partial packets."""

    NO_SYNC = "no_sync"            # octets outside any CADU
    VERSION = "version"
    SCID = "scid"
    VCID = "vcid"                  # virtual channel not configured
    FECF = "fecf"
    TRUNCATED = "truncated"        # CADU cut short by an idle gap or end of stream
    # reassembly
    VC_GAP = "vc_gap"              # frames lost on the channel: the open packet is incomplete
    UNSYNC = "unsync"              # octets before the first packet header after a loss
    FHP = "fhp"                    # first header pointer beyond the data field
    FHP_MISMATCH = "fhp_mismatch"  # the open packet does not end where the pointer says the next starts
    BAD_HEADER = "bad_header"      # packet version not 0
    TOO_LONG = "too_long"          # packet length above the configured maximum
    STALE = "stale"                # a frame behind the channel's count (late duplicate, reordered)

    FRAME_REASONS: Final = ("no_sync", "version", "scid", "vcid", "fecf", "truncated")
    PACKET_REASONS: Final = ("vc_gap", "unsync", "fhp", "fhp_mismatch", "bad_header", "too_long", "stale")


# ---------------------------------------------------------------------------------------------
# CLCW
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Clcw:
    """Communications Link Control Word (232.0-B section 4.2), carried in the OCF."""

    vcid: int
    report_value: int
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b: int = 0
    no_rf: bool = False
    no_bitlock: bool = False
    status: int = 0
    cop_in_effect: int = 1

    def __post_init__(self) -> None:
        for what, v, hi in (("vcid", self.vcid, 63), ("report value", self.report_value, 255),
                            ("FARM-B counter", self.farm_b, 3), ("status", self.status, 7),
                            ("COP in effect", self.cop_in_effect, 3)):
            if not isinstance(v, int) or not 0 <= v <= hi:
                raise LocalProtocolError(f"CLCW {what} {v!r} outside 0..{hi}")

    def to_int(self) -> int:
        return ((self.status << 26) | (self.cop_in_effect << 24) | (self.vcid << 18)
                | (int(self.no_rf) << 15) | (int(self.no_bitlock) << 14) | (int(self.lockout) << 13)
                | (int(self.wait) << 12) | (int(self.retransmit) << 11) | (self.farm_b << 9)
                | self.report_value)

    def pack(self) -> bytes:
        return _U32.pack(self.to_int())

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> "Clcw":
        r = parse_clcw(data)
        if isinstance(r, DecodeError):
            raise r
        return r


def parse_clcw(data: bytes | bytearray | memoryview) -> Clcw | DecodeError:
    """A CLCW from 4 octets; a type-1 word or a non-zero version comes back as an error value."""
    if len(data) != OCF_LEN:
        return DecodeError("length", f"a CLCW is 4 octets, got {len(data)}")
    w = _U32.unpack_from(data)[0]
    if w >> 31:
        return DecodeError("type", "control word type 1 is not a CLCW")
    if (w >> 29) & 3:
        return DecodeError("version", f"CLCW version {(w >> 29) & 3}, expected 0")
    return Clcw(vcid=(w >> 18) & 0x3F, report_value=w & 0xFF, lockout=bool((w >> 13) & 1),
                wait=bool((w >> 12) & 1), retransmit=bool((w >> 11) & 1), farm_b=(w >> 9) & 3,
                no_rf=bool((w >> 15) & 1), no_bitlock=bool((w >> 14) & 1), status=(w >> 26) & 7,
                cop_in_effect=(w >> 24) & 3)


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TmFrameConfig:
    """Managed parameters of the physical channel: every frame has this shape."""

    scid: int = DEFAULT_SCID
    frame_len: int = DEFAULT_TM_FRAME_LEN
    ocf: bool = True
    fecf: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.scid, int) or not 0 <= self.scid <= 0x3FF:
            raise ValueError(f"spacecraft id {self.scid!r} outside 0..1023")
        least = TM_HEADER_LEN + MIN_IDLE_PACKET + (OCF_LEN if self.ocf else 0) + (FECF_LEN if self.fecf else 0)
        if not isinstance(self.frame_len, int) or not least <= self.frame_len <= MAX_TM_FRAME_LEN:
            raise ValueError(f"TM frame length {self.frame_len!r} outside {least}..{MAX_TM_FRAME_LEN}")

    @property
    def data_len(self) -> int:
        return self.frame_len - TM_HEADER_LEN - (OCF_LEN if self.ocf else 0) - (FECF_LEN if self.fecf else 0)

    @property
    def cadu_len(self) -> int:
        return ASM_LEN + self.frame_len


@dataclass(frozen=True, slots=True)
class TmFrame:
    scid: int
    vcid: int
    mc_count: int
    vc_count: int
    fhp: int
    data: bytes
    ocf: bytes | None = None

    @property
    def clcw(self) -> Clcw | None:
        """The CLCW in the OCF (``None`` without an OCF or if it is not a valid CLCW)."""
        if self.ocf is None:
            return None
        c = parse_clcw(self.ocf)
        return None if isinstance(c, DecodeError) else c


def pack_tm_frame(cfg: TmFrameConfig, vcid: int, mc_count: int, vc_count: int, fhp: int,
                  data: bytes | bytearray, ocf: bytes | None = None) -> bytes:
    """Fast builder.  ``data`` must fill the data field exactly; ``ocf`` is required iff ``cfg.ocf``."""
    if len(data) != cfg.data_len:
        raise LocalProtocolError(f"TM frame data field must be {cfg.data_len} octets, got {len(data)}")
    if not 0 <= vcid <= MAX_TM_VCID:
        raise LocalProtocolError(f"TM virtual channel id {vcid} outside 0..7")
    if not 0 <= fhp <= 0x7FF:
        raise LocalProtocolError(f"first header pointer {fhp} outside 0..2047")
    if cfg.ocf != (ocf is not None) or (ocf is not None and len(ocf) != OCF_LEN):
        raise LocalProtocolError("the OCF must be 4 octets when the channel has an OCF, absent otherwise")
    return _build_tm_frame((cfg.scid << 4) | (vcid << 1) | int(cfg.ocf), mc_count, vc_count, fhp, data, ocf,
                           cfg.fecf)


def _build_tm_frame(w0: int, mc_count: int, vc_count: int, fhp: int, data: bytes | bytearray,
                    ocf: bytes | None, fecf: bool) -> bytes:
    """:func:`pack_tm_frame` without the checks; ``w0`` is the first 16 bits of the header."""
    head = _TM_HDR.pack(w0, mc_count & 0xFF, vc_count & 0xFF, 0x1800 | fhp)
    if not fecf:
        return b"".join((head, data, ocf or b""))
    crc = _crc_c(data, _crc_c(head, 0xFFFF, CRC_TABLE), CRC_TABLE)
    if ocf:
        crc = _crc_c(ocf, crc, CRC_TABLE)
    return b"".join((head, data, ocf or b"", _U16.pack(crc)))


def parse_tm_frame(data: bytes | bytearray | memoryview, cfg: TmFrameConfig) -> TmFrame | DecodeError:
    """Parse one frame of the configured length; errors come back as values with a :class:`TmDropReason`."""
    n = len(data)
    if n != cfg.frame_len:
        return DecodeError(TmDropReason.TRUNCATED, f"TM frame of {n} octets, expected {cfg.frame_len}")
    if cfg.fecf and _crc_c(memoryview(data)[:-2], 0xFFFF, CRC_TABLE) != ((data[-2] << 8) | data[-1]):
        return DecodeError(TmDropReason.FECF, "frame error control field does not match")
    w0, mc, vc, status = _TM_HDR.unpack_from(data)
    if w0 >> 14:
        return DecodeError(TmDropReason.VERSION, f"transfer frame version {w0 >> 14}, expected 0")
    scid = (w0 >> 4) & 0x3FF
    if scid != cfg.scid:
        return DecodeError(TmDropReason.SCID, f"spacecraft id {scid}, expected {cfg.scid}")
    if bool(w0 & 1) != cfg.ocf:
        return DecodeError(TmDropReason.VERSION, "OCF flag disagrees with the channel configuration")
    end = TM_HEADER_LEN + cfg.data_len
    ocf = bytes(data[end:end + OCF_LEN]) if cfg.ocf else None
    return TmFrame(scid, (w0 >> 1) & 7, mc, vc, status & 0x7FF, bytes(data[TM_HEADER_LEN:end]), ocf)


def idle_packet(length: int, seq_count: int = 0) -> bytes:
    """An idle packet (APID 2047, no secondary header) of ``length`` octets, filled with 0x55."""
    if not MIN_IDLE_PACKET <= length <= PRIMARY_HEADER_LEN + 0x10000:
        raise LocalProtocolError(f"idle packet length {length} outside {MIN_IDLE_PACKET}..{PRIMARY_HEADER_LEN + 0x10000}")
    return struct.pack(">HHH", IDLE_APID, 0xC000 | (seq_count & 0x3FFF), length - PRIMARY_HEADER_LEN - 1) \
        + bytes([IDLE_FILL]) * (length - PRIMARY_HEADER_LEN)


# ---------------------------------------------------------------------------------------------
# Receive side: CADU synchronisation and packet reassembly
# ---------------------------------------------------------------------------------------------
class CaduDeframer:
    """Sans-I/O: ``feed(bytes) -> [TmFrame | Dropped]``.  Finds the ASM, checks the frame, resynchronises.

    A candidate frame that fails (FECF, version, spacecraft id, unknown
    virtual channel) is dropped up to the next ASM *after its own*, so a good
    frame following noise is never lost.  At most one CADU plus three octets
    stay buffered.
    """

    def __init__(self, cfg: TmFrameConfig, vcids: Iterable[int] | None = None) -> None:
        self.cfg = cfg
        self.vcids = frozenset(range(MAX_TM_VCID + 1) if vcids is None else vcids)
        self._buf = bytearray()
        self.frames = 0
        self.bytes_in = 0
        self.drops: Counter[str] = Counter()
        self.dropped_bytes = 0
        self.frames_by_vc: Counter[int] = Counter()

    def _drop(self, out: list, reason: str, n: int) -> None:
        if n > 0:
            out.append(Dropped(reason, n))
            self.drops[reason] += 1
            self.dropped_bytes += n

    def feed(self, data: bytes | bytearray | memoryview) -> list[TmFrame | Dropped]:
        out: list[TmFrame | Dropped] = []
        if not data:
            return out
        self.bytes_in += len(data)
        self._buf += data
        self._scan(out, final=False)
        return out

    def flush(self) -> list[TmFrame | Dropped]:
        out: list[TmFrame | Dropped] = []
        if self._buf:
            self._scan(out, final=True)
        return out

    def _scan(self, out: list, final: bool) -> None:
        buf = self._buf
        n = len(buf)
        pos = 0
        flen = self.cfg.frame_len
        while True:
            i = buf.find(ASM, pos)
            if i < 0:
                keep = n if final else max(pos, n - (ASM_LEN - 1))
                self._drop(out, TmDropReason.NO_SYNC, keep - pos)
                pos = keep
                break
            self._drop(out, TmDropReason.NO_SYNC, i - pos)
            pos = i
            h = i + ASM_LEN
            if n - h < flen:
                if not final:
                    break
                reason = TmDropReason.TRUNCATED
            else:
                r = parse_tm_frame(memoryview(buf)[h:h + flen], self.cfg)
                if not isinstance(r, DecodeError) and r.vcid not in self.vcids:
                    r = DecodeError(TmDropReason.VCID, f"virtual channel {r.vcid} not configured")
                if not isinstance(r, DecodeError):
                    out.append(r)
                    self.frames += 1
                    self.frames_by_vc[r.vcid] += 1
                    pos = h + flen
                    continue
                reason = r.reason
            j = buf.find(ASM, i + 1)
            stop = j if j >= 0 else (n if final else max(i + 1, n - (ASM_LEN - 1)))
            self._drop(out, reason, stop - i)
            pos = stop
        if pos:
            del buf[:pos]

    def stats(self) -> dict[str, int]:
        d = {"frames": self.frames, "bytes_in": self.bytes_in, "dropped_bytes": self.dropped_bytes}
        for r in TmDropReason.FRAME_REASONS:
            d[f"drop_{r}"] = self.drops.get(r, 0)
        return d


class VcReassembler:
    """Space packets out of the frames of one virtual channel, using the first header pointer.

    ``feed(frame) -> [packet bytes | Dropped]``.  Idle packets are counted and
    not returned.  Never raises; the partial packet is bounded by
    ``max_packet``.  Lost frames (a gap in the channel's frame count) discard
    the open packet, and reassembly restarts at the next first header pointer.
    """

    def __init__(self, max_packet: int = 65542) -> None:
        self.max_packet = max_packet
        self._part = bytearray()
        self._synced = False
        self._expect: int | None = None
        self._stale_next: int | None = None
        self.packets = 0
        self.stale_frames = 0
        self.idle_packets = 0
        self.idle_frames = 0
        self.frames_lost = 0
        self.drops: Counter[str] = Counter()
        self.dropped_bytes = 0

    def _drop(self, out: list, reason: str, n: int) -> None:
        if n > 0:
            out.append(Dropped(reason, n))
            self.drops[reason] += 1
            self.dropped_bytes += n

    def reset(self) -> None:
        """Forget the open packet and the expected frame count (e.g. after a change of contact)."""
        self._part.clear()
        self._synced = False
        self._expect = None

    def feed(self, frame: TmFrame) -> list[bytes | Dropped]:
        return self.feed_data(frame.vc_count, frame.fhp, frame.data)

    def feed_data(self, vc_count: int, fhp: int, data: bytes) -> list[bytes | Dropped]:
        out: list[bytes | Dropped] = []
        if self._expect is not None and vc_count != self._expect and (vc_count - self._expect) & 0x80:
            # "behind" the expected count: a late duplicate or a reordered frame, unless two in a row
            # follow each other (the sender restarted its count): then it is a new stream
            if vc_count != self._stale_next:
                self._stale_next = (vc_count + 1) & 0xFF
                self.stale_frames += 1
                self._drop(out, TmDropReason.STALE, len(data))
                return out
            self._expect = vc_count   # a new stream: resynchronise below
            self._drop(out, TmDropReason.VC_GAP, len(self._part))
            self._part.clear()
            self._synced = False
        self._stale_next = None
        if self._expect is not None and vc_count != self._expect:
            self.frames_lost += (vc_count - self._expect) & 0xFF
            self._drop(out, TmDropReason.VC_GAP, len(self._part))
            self._part.clear()
            self._synced = False
        self._expect = (vc_count + 1) & 0xFF
        if fhp == FHP_IDLE:
            self.idle_frames += 1
            return out
        n = len(data)
        if fhp != FHP_NO_PACKET and fhp >= n:
            self._drop(out, TmDropReason.FHP, n + len(self._part))
            self._part.clear()
            self._synced = False
            return out
        if not self._synced:
            if fhp == FHP_NO_PACKET:
                self._drop(out, TmDropReason.UNSYNC, n)
                return out
            self._drop(out, TmDropReason.UNSYNC, fhp)
            self._part = bytearray(data[fhp:])
            self._synced = True
        elif fhp == FHP_NO_PACKET:
            self._part += data
        else:
            self._part += data[:fhp]
            self._extract(out)
            if self._part:
                # the open packet does not end where the next one starts: drop it, restart at the pointer
                self._drop(out, TmDropReason.FHP_MISMATCH, len(self._part))
            self._part = bytearray(data[fhp:])
            self._synced = True
        self._extract(out)
        return out

    def _extract(self, out: list) -> None:
        part = self._part
        pos = 0
        n = len(part)
        while n - pos >= PRIMARY_HEADER_LEN:
            if part[pos] >> 5:
                self._drop(out, TmDropReason.BAD_HEADER, n - pos)
                pos = n
                self._synced = False
                break
            total = PRIMARY_HEADER_LEN + ((part[pos + 4] << 8) | part[pos + 5]) + 1
            if total > self.max_packet:
                self._drop(out, TmDropReason.TOO_LONG, n - pos)
                pos = n
                self._synced = False
                break
            if n - pos < total:
                break
            if (((part[pos] << 8) | part[pos + 1]) & 0x7FF) == IDLE_APID:
                self.idle_packets += 1
            else:
                out.append(bytes(part[pos:pos + total]))
                self.packets += 1
            pos += total
        if pos:
            del part[:pos]

    def stats(self) -> dict[str, int]:
        d = {"packets": self.packets, "idle_packets": self.idle_packets, "idle_frames": self.idle_frames,
             "frames_lost": self.frames_lost, "stale_frames": self.stale_frames, "dropped_bytes": self.dropped_bytes}
        for r in TmDropReason.PACKET_REASONS:
            d[f"drop_{r}"] = self.drops.get(r, 0)
        return d


# ---------------------------------------------------------------------------------------------
# Send side: the virtual channel multiplexer
# ---------------------------------------------------------------------------------------------
#: feeder(room) -> the next packet for the channel, or None; called when the channel's queue runs dry
Feeder = Callable[[int], "bytes | None"]


@dataclass
class VirtualChannel:
    """One TM virtual channel: a packet queue, the packet being cut across frames, counters."""

    vcid: int
    priority: int
    max_queue_bytes: int = 1 << 20
    feeder: Feeder | None = None
    queue: deque = field(default_factory=deque)
    queued_bytes: int = 0
    partial: memoryview | None = None
    #: the partial packet is the tail of an idle packet (sent with the channel's next frame, whenever)
    partial_idle: bool = False
    vc_count: int = 0
    frames: int = 0
    packets: int = 0
    rejected: int = 0
    idle_octets: int = 0

    def has_data(self) -> bool:
        return bool(self.queue or (self.partial is not None and not self.partial_idle))


class TmMultiplexer:
    """Fills fixed-length frames from per-channel packet queues, by channel priority.

    ``next_frame()`` builds the next frame (bytes, without the ASM) for the
    highest-priority channel with data, queued or from its feeder (a lower
    ``priority`` number wins; ties by channel id), cutting packets across frames and filling the rest
    of a frame with an idle packet.  With nothing to send it returns an idle
    frame on :data:`VC_IDLE` if ``idle_frames`` is true, else ``None``.  The
    OCF of every frame comes from ``ocf_source()`` (the current CLCW).

    :attr:`revision` moves whenever a queue or a frame changes what
    :meth:`has_data` may answer, so a caller can remember that answer.
    """

    def __init__(self, cfg: TmFrameConfig, channels: Iterable[tuple[int, int]] = ((VC_REALTIME, 0), (VC_PLAYBACK, 1)),
                 ocf_source: Callable[[], bytes] | None = None, idle_frames: bool = True,
                 idle_vcid: int = VC_IDLE, max_queue_bytes: int = 1 << 20) -> None:
        if cfg.ocf and ocf_source is None:
            raise ValueError("the channel carries an OCF: give ocf_source")
        self.cfg = cfg
        self.ocf_source = ocf_source
        self.idle_frames = idle_frames
        self.channels: dict[int, VirtualChannel] = {}
        for vcid, prio in channels:
            if not 0 <= vcid <= MAX_TM_VCID or vcid == idle_vcid:
                raise ValueError(f"virtual channel {vcid} invalid (idle frames use {idle_vcid})")
            if vcid in self.channels:
                raise ValueError(f"virtual channel {vcid} declared twice")
            self.channels[vcid] = VirtualChannel(vcid, prio, max_queue_bytes)
        self._order = sorted(self.channels.values(), key=lambda c: (c.priority, c.vcid))
        self.idle = VirtualChannel(idle_vcid, 1 << 30)
        self.mc_count = 0
        self.frames = 0
        self.revision = 0
        self._data_len = cfg.data_len
        self._idle_data = bytes([IDLE_FILL]) * cfg.data_len
        self._idle_packets: dict[int, bytes] = {}   # length -> idle packet filling the end of a frame

    def set_feeder(self, vcid: int, feeder: Feeder | None) -> None:
        self.channels[vcid].feeder = feeder

    def queue(self, vcid: int, packet: bytes) -> bool:
        """Queue a complete space packet on a channel; False (counted) when the queue is full."""
        ch = self.channels[vcid]
        if len(packet) < PRIMARY_HEADER_LEN + 1:
            raise ValueError(f"not a space packet ({len(packet)} octets)")
        if ch.queued_bytes + len(packet) > ch.max_queue_bytes:
            ch.rejected += 1
            return False
        ch.queue.append(packet)
        ch.queued_bytes += len(packet)
        self.revision += 1
        return True

    def pop_oldest(self, vcid: int) -> bytes | None:
        """Take back the oldest queued (not yet started) packet of a channel."""
        ch = self.channels[vcid]
        if not ch.queue:
            return None
        p = ch.queue.popleft()
        ch.queued_bytes -= len(p)
        self.revision += 1
        return p

    def has_data(self, vcid: int | None = None) -> bool:
        if vcid is not None:
            return self.channels[vcid].has_data()
        for c in self._order:   # (VirtualChannel.has_data, inline: asked at every round of a runner)
            if c.queue or (c.partial is not None and not c.partial_idle):
                return True
        return False

    def next_frame(self) -> bytes | None:
        # by priority, counting what each channel's feeder has ready: a packet of a lower channel cut across
        # frames waits while a higher channel has data, queued or in its feeder (the real-time channel is fed
        # from the live queue, playback from the stores)
        for ch in self._order:
            if ch.has_data():
                return self._frame_for(ch)
            if ch.feeder is not None:
                p = ch.feeder(self._data_len)
                if p is not None:
                    ch.queue.append(p)
                    ch.queued_bytes += len(p)
                    return self._frame_for(ch)
        if self.idle_frames:
            return self.idle_frame()
        return None

    def idle_frame(self) -> bytes:
        ch = self.idle
        f = self._emit(ch, FHP_IDLE, self._idle_data)
        ch.idle_octets += self._data_len
        return f

    def _emit(self, ch: VirtualChannel, fhp: int, data: bytes | bytearray) -> bytes:
        # (the data field is exactly data_len octets and the channel ids were checked: pack_tm_frame's checks
        # that remain are the OCF's)
        cfg = self.cfg
        ocf = None
        if cfg.ocf:
            ocf = self.ocf_source()  # type: ignore[misc]
            if len(ocf) != OCF_LEN:
                raise LocalProtocolError(f"the OCF must be {OCF_LEN} octets, ocf_source gave {len(ocf)}")
        f = _build_tm_frame((cfg.scid << 4) | (ch.vcid << 1) | int(cfg.ocf), self.mc_count, ch.vc_count, fhp,
                            data, ocf, cfg.fecf)
        self.mc_count = (self.mc_count + 1) & 0xFF
        ch.vc_count = (ch.vc_count + 1) & 0xFF
        ch.frames += 1
        self.frames += 1
        self.revision += 1
        return f

    def _idle_packet(self, length: int) -> bytes:
        p = self._idle_packets.get(length)
        if p is None:
            p = self._idle_packets[length] = idle_packet(length)
        return p

    def _frame_for(self, ch: VirtualChannel) -> bytes:
        room = self._data_len
        parts: list[bytes | memoryview] = []
        n = 0
        fhp = FHP_NO_PACKET
        partial = ch.partial
        if partial is not None:
            if len(partial) > room:
                parts.append(partial[:room])
                ch.partial = partial[room:]
                n = room
            else:
                parts.append(partial)
                n = len(partial)
                ch.partial = None
                ch.partial_idle = False
        queue = ch.queue
        while n < room:
            space = room - n
            if not queue and ch.feeder is not None:
                p = ch.feeder(space)
                if p is not None:
                    queue.append(p)
                    ch.queued_bytes += len(p)
            is_idle = not queue
            if not is_idle:
                p = queue.popleft()
                ch.queued_bytes -= len(p)
                ch.packets += 1
            else:
                p = self._idle_packet(max(space, MIN_IDLE_PACKET))
                ch.idle_octets += min(space, len(p))
            if fhp == FHP_NO_PACKET:
                fhp = n
            if len(p) <= space:
                parts.append(p)
                n += len(p)
            else:
                mv = memoryview(p)
                parts.append(mv[:space])
                ch.partial = mv[space:]
                ch.partial_idle = is_idle
                n = room
        return self._emit(ch, fhp, b"".join(parts))

    def stats(self) -> dict[str, int]:
        d = {"frames": self.frames, "idle_frames": self.idle.frames}
        for c in self._order:
            d[f"vc{c.vcid}_frames"] = c.frames
            d[f"vc{c.vcid}_packets"] = c.packets
            d[f"vc{c.vcid}_queued_bytes"] = c.queued_bytes
            d[f"vc{c.vcid}_rejected"] = c.rejected
        return d


def cadu(frame: bytes) -> bytes:
    """ASM + frame."""
    return ASM + frame
