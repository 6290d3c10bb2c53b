"""PUS-C telecommand and telemetry packets (ECSS-E-ST-70-41C, sections 7.4.3/7.4.4).

TC packet:  primary header (6) | TC secondary header (5) | application data | CRC (2)
  TC secondary header: PUS version (4 bits, = 2) | acknowledgement flags (4 bits)
                       | service type (8) | message subtype (8) | source id (16)

TM packet:  primary header (6) | TM secondary header (13) | source data | CRC (2)
  TM secondary header: PUS version (4 bits, = 2) | spacecraft time reference status (4 bits)
                       | service type (8) | message subtype (8)
                       | message type counter (16) | destination id (16)
                       | time: CUC 4+2, implicit P-field (6)

Both layouts are byte-compatible with the ``spacepackets`` package; tests
check it in both directions.

Packets are immutable named tuples: ``PusTc(...)`` validates its fields,
``PusTc.unpack(data)`` validates the bytes (and raises
:class:`~fsw.protocol.errors.DecodeError`).  Stream code should use
:func:`parse_packet_nothrow`, which turns every failure into a reason code.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from .crc import CRC_TABLE, _crc_c
from .errors import BytesTooShortError, DecodeError, LocalProtocolError
from .spacepacket import MAX_APID, MAX_SEQ_COUNT, PRIMARY_HEADER_LEN, PacketType, SeqFlags
from .timecode import CUC_LEN, seconds_to_cuc_fields

PUS_VERSION: Final = 2
TC_SEC_HDR_LEN: Final = 5
TM_SEC_HDR_LEN: Final = 7 + CUC_LEN
TC_HEADER_LEN: Final = PRIMARY_HEADER_LEN + TC_SEC_HDR_LEN  # 11
TM_HEADER_LEN: Final = PRIMARY_HEADER_LEN + TM_SEC_HDR_LEN  # 19
CRC_LEN: Final = 2
MIN_TC_LEN: Final = TC_HEADER_LEN + CRC_LEN  # 13
MIN_TM_LEN: Final = TM_HEADER_LEN + CRC_LEN  # 21

# primary + secondary header in one precompiled struct each
_TC_HDR = struct.Struct(">HHHBBBH")
_TM_HDR = struct.Struct(">HHHBBBHHIH")
_pack_crc = struct.Struct(">H").pack
_pack_tc_hdr = _TC_HDR.pack
_pack_tm_hdr = _TM_HDR.pack
#: the packet error control is CRC-16/CCITT-FALSE from fsw.protocol.crc (crcmod's C extension)
_UNSEGMENTED: Final = int(SeqFlags.UNSEGMENTED)
_MAX_TC_DATA: Final = 0x10000 - TC_SEC_HDR_LEN - CRC_LEN
_MAX_TM_DATA: Final = 0x10000 - TM_SEC_HDR_LEN - CRC_LEN
_tuple_new = tuple.__new__


def _check_u8(name: str, v: int) -> None:
    if not isinstance(v, int) or not 0 <= v <= 0xFF:
        raise LocalProtocolError(f"{name} {v} outside 0..255")


def _check_u16(name: str, v: int) -> None:
    if not isinstance(v, int) or not 0 <= v <= 0xFFFF:
        raise LocalProtocolError(f"{name} {v} outside 0..65535")


def _check_common(apid: int, seq_count: int, seq_flags: int, body_len: int, hdr_len: int) -> None:
    if not isinstance(apid, int) or not 0 <= apid <= MAX_APID:
        raise LocalProtocolError(f"APID {apid} outside 0..{MAX_APID}")
    if not isinstance(seq_count, int) or not 0 <= seq_count <= MAX_SEQ_COUNT:
        raise LocalProtocolError(f"sequence count {seq_count} outside 0..{MAX_SEQ_COUNT}")
    if not isinstance(seq_flags, int) or seq_flags not in (0, 1, 2, 3):
        raise LocalProtocolError(f"sequence flags {seq_flags} outside 0..3")
    if hdr_len - PRIMARY_HEADER_LEN + body_len + CRC_LEN > 0x10000:
        raise LocalProtocolError(f"packet data field too long ({body_len} octets of data)")


class _TcFields(NamedTuple):
    apid: int
    service: int
    subservice: int
    app_data: bytes
    seq_count: int
    source_id: int
    ack_flags: int
    seq_flags: int


class PusTc(_TcFields):
    """A PUS-C telecommand."""

    __slots__ = ()
    packet_type: Final = PacketType.TC  # type: ignore[misc]

    def __new__(
        cls, apid: int, service: int, subservice: int, app_data: bytes = b"",
        seq_count: int = 0, source_id: int = 0, ack_flags: int = 0b1111,
        seq_flags: int = _UNSEGMENTED,
    ) -> "PusTc":
        # fast path: ints in range, checked with one expression and a single type() call.  For ints (bools
        # included, which the checks below accept too) x & -2**k is 0 exactly when 0 <= x < 2**k, and the
        # result is an int; for anything else it is a TypeError or not an int.  Anything that fails here takes
        # the checks below, which raise with a precise message or accept int subclasses such as SeqFlags.
        try:
            out_of_range = ((apid & -0x800) | ((service | subservice) & -0x100) | (seq_count & -0x4000)
                            | (source_id & -0x10000) | (ack_flags & -0x10) | (seq_flags & -4))
            fast = (type(out_of_range) is int and not out_of_range and type(seq_flags) is int
                    and type(app_data) is bytes and len(app_data) <= 0xFFF9)  # 0xFFF9: _MAX_TC_DATA
        except TypeError:
            fast = False
        if fast:
            return _tuple_new(cls, (apid, service, subservice, app_data, seq_count, source_id, ack_flags, seq_flags))
        _check_common(apid, seq_count, seq_flags, len(app_data), TC_HEADER_LEN)
        _check_u8("service", service)
        _check_u8("subservice", subservice)
        _check_u16("source id", source_id)
        if not isinstance(ack_flags, int) or not 0 <= ack_flags <= 0xF:
            raise LocalProtocolError(f"acknowledgement flags {ack_flags} outside 0..15")
        return tuple.__new__(cls, (apid, service, subservice, bytes(app_data), seq_count,
                                   source_id, ack_flags, int(seq_flags)))

    @property
    def packet_id(self) -> int:
        return 0x1800 | self.apid

    @property
    def request_id(self) -> int:
        """32-bit request id of PUS-1 reports: packet id and sequence control."""
        return ((0x1800 | self.apid) << 16) | (self.seq_flags << 14) | self.seq_count

    def pack(self) -> bytes:
        apid, service, subservice, app_data, seq_count, source_id, ack_flags, seq_flags = self
        # literals rather than named constants on this hot path: 0x20 is PUS_VERSION << 4, and the length
        # field is TC_SEC_HDR_LEN + len(app_data) + CRC_LEN - 1
        body = _pack_tc_hdr(0x1800 | apid, (seq_flags << 14) | seq_count, len(app_data) + 6, 0x20 | ack_flags,
                            service, subservice, source_id) + app_data
        return body + _pack_crc(_crc_c(body, 0xFFFF, CRC_TABLE))

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> "PusTc":
        pkt = parse_packet(data)
        if not isinstance(pkt, PusTc):
            raise DecodeError("type", "packet type bit says TM, expected TC")
        return pkt

    def __repr__(self) -> str:
        return (f"PusTc(apid=0x{self.apid:03X}, TC[{self.service},{self.subservice}], seq={self.seq_count}, "
                f"src={self.source_id}, ack=0b{self.ack_flags:04b}, data={self.app_data.hex()})")


class _TmFields(NamedTuple):
    apid: int
    service: int
    subservice: int
    source_data: bytes
    seq_count: int
    msg_counter: int
    dest_id: int
    time_coarse: int
    time_fine: int
    time_ref_status: int
    seq_flags: int


class PusTm(_TmFields):
    """A PUS-C telemetry packet.  ``time`` is mission seconds (CUC 4+2)."""

    __slots__ = ()
    packet_type: Final = PacketType.TM  # type: ignore[misc]

    def __new__(
        cls, apid: int, service: int, subservice: int, source_data: bytes = b"",
        seq_count: int = 0, msg_counter: int = 0, dest_id: int = 0,
        time: float | None = None, time_coarse: int = 0, time_fine: int = 0,
        time_ref_status: int = 0, seq_flags: int = _UNSEGMENTED,
    ) -> "PusTm":
        # fast path as in PusTc.__new__: the integer fields in range in one expression, the rest below
        try:
            out_of_range = ((apid & -0x800) | ((service | subservice) & -0x100) | (seq_count & -0x4000)
                            | ((msg_counter | dest_id) & -0x10000) | (time_ref_status & -0x10) | (seq_flags & -4))
            fast = (type(out_of_range) is int and not out_of_range and type(seq_flags) is int
                    and type(source_data) is bytes and len(source_data) <= 0xFFF1)  # 0xFFF1: _MAX_TM_DATA
        except TypeError:
            fast = False
        if not fast:
            _check_common(apid, seq_count, seq_flags, len(source_data), TM_HEADER_LEN)
            _check_u8("service", service)
            _check_u8("subservice", subservice)
            _check_u16("message type counter", msg_counter)
            _check_u16("destination id", dest_id)
            if not isinstance(time_ref_status, int) or not 0 <= time_ref_status <= 0xF:
                raise LocalProtocolError(f"time reference status {time_ref_status} outside 0..15")
            source_data, seq_flags = bytes(source_data), int(seq_flags)
        if time is not None:
            if not 0 <= time < 2**32:  # NaN fails too
                raise LocalProtocolError(f"time {time!r} s outside the 4-octet CUC range")
            time_coarse, time_fine = seconds_to_cuc_fields(time)  # in range by construction
        elif (not isinstance(time_coarse, int) or not isinstance(time_fine, int)
                or not 0 <= time_coarse <= 0xFFFFFFFF or not 0 <= time_fine <= 0xFFFF):
            raise LocalProtocolError("CUC time fields out of range")
        return _tuple_new(cls, (apid, service, subservice, source_data, seq_count, msg_counter, dest_id,
                                time_coarse, time_fine, time_ref_status, seq_flags))

    @property
    def time(self) -> float:
        return self.time_coarse + self.time_fine / 65536.0

    @property
    def packet_id(self) -> int:
        return 0x0800 | self.apid

    def pack(self) -> bytes:
        (apid, service, subservice, source_data, seq_count, msg_counter, dest_id, time_coarse, time_fine,
         time_ref_status, seq_flags) = self
        # literals as in PusTc.pack: 0x20 is PUS_VERSION << 4, 14 is TM_SEC_HDR_LEN + CRC_LEN - 1
        body = _pack_tm_hdr(0x0800 | apid, (seq_flags << 14) | seq_count, len(source_data) + 14,
                            0x20 | time_ref_status, service, subservice, msg_counter, dest_id, time_coarse,
                            time_fine) + source_data
        return body + _pack_crc(_crc_c(body, 0xFFFF, CRC_TABLE))

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> "PusTm":
        pkt = parse_packet(data)
        if not isinstance(pkt, PusTm):
            raise DecodeError("type", "packet type bit says TC, expected TM")
        return pkt

    def __repr__(self) -> str:
        return (f"PusTm(apid=0x{self.apid:03X}, TM[{self.service},{self.subservice}], seq={self.seq_count}, "
                f"t={self.time:.6f}, data={self.source_data.hex()})")


def parse_packet(data: bytes | bytearray | memoryview, check_crc: bool = True) -> PusTc | PusTm:
    """Strictly parse one complete PUS-C packet.

    Every length is checked before it is used: the buffer against the
    primary header, the header's length field against the buffer, and the
    secondary header against the data field.  Raises :class:`DecodeError`.
    """
    n = len(data)
    if n >= MIN_TM_LEN and data[0] & 0xF8 == 0x08:
        # fast path for the common case, telemetry: version 0, type TM, secondary header present, and at
        # least a whole TM header; the checks below come in the same order as in the general path
        w0, w1, length, b0, svc, sub, cnt, dest, coarse, fine = _TM_HDR.unpack_from(data)
        if length + PRIMARY_HEADER_LEN + 1 == n and not (check_crc and _crc_c(data, 0xFFFF, CRC_TABLE)) \
                and b0 >> 4 == PUS_VERSION:
            return tuple.__new__(PusTm, (w0 & MAX_APID, svc, sub, bytes(data[TM_HEADER_LEN:-2]), w1 & MAX_SEQ_COUNT,
                                         cnt, dest, coarse, fine, b0 & 0xF, w1 >> 14))
    if n < PRIMARY_HEADER_LEN:
        raise BytesTooShortError(PRIMARY_HEADER_LEN, n, "primary header")
    w0 = (data[0] << 8) | data[1]
    if w0 >> 13:
        raise DecodeError("version", f"packet version number {w0 >> 13}, expected 0")
    if not (w0 >> 11) & 1:
        raise DecodeError("no_sec_hdr", "secondary header flag is 0; PUS packets need one")
    total = PRIMARY_HEADER_LEN + ((data[4] << 8) | data[5]) + 1
    if total != n:
        raise DecodeError("length", f"length field says {total} octets, got {n}")
    is_tc = (w0 >> 12) & 1
    if n < (MIN_TC_LEN if is_tc else MIN_TM_LEN):
        raise BytesTooShortError(MIN_TC_LEN if is_tc else MIN_TM_LEN, n, "PUS-C TC" if is_tc else "PUS-C TM")
    if check_crc and _crc_c(data, 0xFFFF, CRC_TABLE):  # over the packet with its own CRC: zero when intact
        raise DecodeError("crc", "packet error control does not match")
    if is_tc:
        _, w1, _, b0, svc, sub, src = _TC_HDR.unpack_from(data)
        if b0 >> 4 != PUS_VERSION:
            raise DecodeError("pus_version", f"PUS version {b0 >> 4}, expected {PUS_VERSION}")
        return tuple.__new__(PusTc, (w0 & MAX_APID, svc, sub, bytes(data[TC_HEADER_LEN:-2]),
                                     w1 & MAX_SEQ_COUNT, src, b0 & 0xF, w1 >> 14))
    _, w1, _, b0, svc, sub, cnt, dest, coarse, fine = _TM_HDR.unpack_from(data)
    if b0 >> 4 != PUS_VERSION:
        raise DecodeError("pus_version", f"PUS version {b0 >> 4}, expected {PUS_VERSION}")
    return tuple.__new__(PusTm, (w0 & MAX_APID, svc, sub, bytes(data[TM_HEADER_LEN:-2]), w1 & MAX_SEQ_COUNT,
                                 cnt, dest, coarse, fine, b0 & 0xF, w1 >> 14))


def parse_packet_nothrow(data: bytes | bytearray | memoryview, check_crc: bool = True) -> PusTc | PusTm | DecodeError:
    """:func:`parse_packet` for stream code: the error comes back as a value.  ``check_crc=False`` only for
    bytes whose CRC was just checked (a :class:`~fsw.protocol.framing.Deframer` with ``check_crc`` does)."""
    try:
        return parse_packet(data, check_crc)
    except DecodeError as exc:
        return exc


def split_request_id(request_id: int) -> tuple[int, int]:
    """(APID, sequence count) named by a 32-bit PUS-1 request id."""
    return (request_id >> 16) & MAX_APID, request_id & MAX_SEQ_COUNT
