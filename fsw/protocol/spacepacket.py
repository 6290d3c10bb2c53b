"""CCSDS Space Packet primary header (CCSDS 133.0-B-2 section 4.1.3).

The layout is described once, declaratively, with construct
(:data:`PRIMARY_HEADER_FORMAT`), and the hot path uses a precompiled
:class:`struct.Struct` derived from the same field widths.  A test checks
that both agree on every header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import construct as cs

from .errors import BytesTooShortError, DecodeError, LocalProtocolError

PRIMARY_HEADER_LEN: Final = 6
MAX_APID: Final = 0x7FF
IDLE_APID: Final = 0x7FF
MAX_SEQ_COUNT: Final = 0x3FFF
#: the packet data length field counts octets minus one, so 65536 at most
MAX_DATA_LEN: Final = 0x10000
MAX_PACKET_LEN: Final = PRIMARY_HEADER_LEN + MAX_DATA_LEN


class PacketType(IntEnum):
    TM = 0
    TC = 1


class SeqFlags(IntEnum):
    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


#: declarative description of the 48-bit primary header, field by field
PRIMARY_HEADER_FORMAT = cs.BitStruct(
    "version" / cs.BitsInteger(3),
    "packet_type" / cs.BitsInteger(1),
    "sec_hdr_flag" / cs.BitsInteger(1),
    "apid" / cs.BitsInteger(11),
    "seq_flags" / cs.BitsInteger(2),
    "seq_count" / cs.BitsInteger(14),
    "data_length" / cs.BitsInteger(16),
)

#: fast path: three big-endian 16-bit words
_HDR = struct.Struct(">HHH")


def _check_int(what: str, v: object, lo: int, hi: int) -> None:
    """Every header field is an integer (bools and IntEnums count) within its bit width."""
    if not isinstance(v, int):
        raise LocalProtocolError(f"{what} must be an integer, not {v!r}")
    if not lo <= v <= hi:
        raise LocalProtocolError(f"{what} {v} outside {lo}..{hi}")


@dataclass(frozen=True, slots=True)
class PrimaryHeader:
    """The six-octet primary header.

    ``data_length`` is the raw field: octets in the packet data field minus 1.
    """

    packet_type: PacketType
    apid: int
    seq_count: int
    data_length: int
    sec_hdr_flag: bool = True
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED
    version: int = 0

    def __post_init__(self) -> None:
        _check_int("packet version number", self.version, 0, 0)
        _check_int("packet type", self.packet_type, 0, 1)
        _check_int("secondary header flag", self.sec_hdr_flag, 0, 1)
        _check_int("APID", self.apid, 0, MAX_APID)
        _check_int("sequence flags", self.seq_flags, 0, 3)
        _check_int("sequence count", self.seq_count, 0, MAX_SEQ_COUNT)
        _check_int("data length field", self.data_length, 0, 0xFFFF)

    @property
    def packet_len(self) -> int:
        """Total packet length in octets, header included."""
        return PRIMARY_HEADER_LEN + self.data_length + 1

    @property
    def packet_id(self) -> int:
        """The 16-bit packet identification (version, type, flag, APID)."""
        return (int(self.packet_type) << 12) | (int(self.sec_hdr_flag) << 11) | self.apid

    @property
    def seq_ctrl(self) -> int:
        return (int(self.seq_flags) << 14) | self.seq_count

    def pack(self) -> bytes:
        return _HDR.pack(self.packet_id, self.seq_ctrl, self.data_length)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> "PrimaryHeader":
        if len(data) - offset < PRIMARY_HEADER_LEN:
            raise BytesTooShortError(PRIMARY_HEADER_LEN, max(0, len(data) - offset), "primary header")
        w0, w1, dlen = _HDR.unpack_from(data, offset)
        version = w0 >> 13
        if version != 0:
            raise DecodeError("version", f"packet version number {version}, expected 0")
        return cls(
            packet_type=PacketType((w0 >> 12) & 1),
            sec_hdr_flag=bool((w0 >> 11) & 1),
            apid=w0 & MAX_APID,
            seq_flags=SeqFlags(w1 >> 14),
            seq_count=w1 & MAX_SEQ_COUNT,
            data_length=dlen,
        )


def pack_primary_header(
    packet_type: int, apid: int, seq_count: int, data_field_len: int,
    sec_hdr_flag: bool = True, seq_flags: int = SeqFlags.UNSEGMENTED,
) -> bytes:
    """Validated fast builder; ``data_field_len`` is the real octet count (>= 1)."""
    _check_int("packet type", packet_type, 0, 1)
    _check_int("APID", apid, 0, MAX_APID)
    _check_int("sequence count", seq_count, 0, MAX_SEQ_COUNT)
    if not isinstance(data_field_len, int) or not 1 <= data_field_len <= MAX_DATA_LEN:
        raise LocalProtocolError(f"packet data field of {data_field_len} octets outside 1..{MAX_DATA_LEN}")
    _check_int("sequence flags", seq_flags, 0, 3)
    return _HDR.pack(
        packet_type << 12 | (1 << 11 if sec_hdr_flag else 0) | apid,
        (seq_flags << 14) | seq_count,
        data_field_len - 1,
    )


def peek_apid(packet: bytes | bytearray | memoryview) -> int:
    """APID of a packet already known to hold at least two octets."""
    return ((packet[0] << 8) | packet[1]) & MAX_APID


def peek_type(packet: bytes | bytearray | memoryview) -> PacketType:
    return PacketType((packet[0] >> 4) & 1)
