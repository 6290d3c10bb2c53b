"""CCSDS Space Packet primary header (CCSDS 133.0-B-2 section 4.1.3).

Every field is validated when a header is built, and the declarative
construct description (PRIMARY_HEADER_FORMAT) and the struct fast path agree
on every header, in both directions.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.protocol import (
    IDLE_APID, MAX_APID, MAX_SEQ_COUNT, PRIMARY_HEADER_LEN, BytesTooShortError, DecodeError, LocalProtocolError,
    PacketType, PrimaryHeader, SeqFlags,
)
from fsw.protocol.spacepacket import (
    MAX_DATA_LEN, MAX_PACKET_LEN, PRIMARY_HEADER_FORMAT, pack_primary_header, peek_apid, peek_type,
)
from tests.conftest import examples

headers = st.builds(
    PrimaryHeader,
    packet_type=st.sampled_from(PacketType),
    apid=st.integers(0, MAX_APID),
    seq_count=st.integers(0, MAX_SEQ_COUNT),
    data_length=st.integers(0, 0xFFFF),
    sec_hdr_flag=st.booleans(),
    seq_flags=st.sampled_from(SeqFlags),
)


def _fields(h: PrimaryHeader) -> dict[str, int]:
    return {"version": h.version, "packet_type": int(h.packet_type), "sec_hdr_flag": int(h.sec_hdr_flag),
            "apid": h.apid, "seq_flags": int(h.seq_flags), "seq_count": h.seq_count,
            "data_length": h.data_length}


def _construct_fields(raw: bytes) -> dict[str, int]:
    c = PRIMARY_HEADER_FORMAT.parse(raw)
    return {k: int(c[k]) for k in ("version", "packet_type", "sec_hdr_flag", "apid", "seq_flags", "seq_count",
                                   "data_length")}


# -- constants ---------------------------------------------------------------------------------------

def test_field_widths_and_constants() -> None:
    assert PRIMARY_HEADER_LEN == 6 == PRIMARY_HEADER_FORMAT.sizeof()
    assert MAX_APID == 2**11 - 1 == 2047
    assert IDLE_APID == 0b111_1111_1111  # CCSDS 133.0-B-2: all ones is the idle packet APID
    assert MAX_SEQ_COUNT == 2**14 - 1
    # the data length field counts octets - 1, so a packet data field holds 1..65536 octets
    assert MAX_DATA_LEN == 0xFFFF + 1
    assert MAX_PACKET_LEN == PRIMARY_HEADER_LEN + MAX_DATA_LEN
    assert [int(f) for f in SeqFlags] == [0, 1, 2, 3]
    assert SeqFlags.UNSEGMENTED == 0b11 and SeqFlags.FIRST == 0b01 and SeqFlags.LAST == 0b10
    assert PacketType.TM == 0 and PacketType.TC == 1


# -- validation, field by field --------------------------------------------------------------------

GOOD = dict(packet_type=PacketType.TC, apid=0x22, seq_count=5, data_length=10)


@pytest.mark.parametrize("field,value", [
    ("version", 1), ("version", 7), ("version", -1),
    ("packet_type", 2), ("packet_type", -1),
    ("sec_hdr_flag", 2),
    ("apid", -1), ("apid", MAX_APID + 1), ("apid", 1.5),
    ("seq_flags", 4), ("seq_flags", -1),
    ("seq_count", -1), ("seq_count", MAX_SEQ_COUNT + 1), ("seq_count", "3"),
    ("data_length", -1), ("data_length", 0x10000),
])
def test_every_field_is_range_checked(field: str, value: object) -> None:
    with pytest.raises(LocalProtocolError) as ei:
        PrimaryHeader(**{**GOOD, field: value})
    assert isinstance(ei.value, ValueError)  # API misuse is a ValueError for callers that only know that


@pytest.mark.parametrize("field,value", [
    ("apid", 0), ("apid", MAX_APID), ("apid", IDLE_APID),
    ("seq_count", 0), ("seq_count", MAX_SEQ_COUNT),
    ("data_length", 0), ("data_length", 0xFFFF),
    ("seq_flags", SeqFlags.CONTINUATION), ("seq_flags", SeqFlags.FIRST), ("seq_flags", SeqFlags.LAST),
    ("packet_type", PacketType.TM), ("sec_hdr_flag", False),
])
def test_field_limits_are_accepted_and_survive_the_wire(field: str, value: object) -> None:
    h = PrimaryHeader(**{**GOOD, field: value})
    back = PrimaryHeader.unpack(h.pack())
    assert getattr(back, field) == value
    assert back == h


def test_idle_apid_is_all_ones_on_the_wire() -> None:
    raw = PrimaryHeader(PacketType.TM, IDLE_APID, 0, 0, sec_hdr_flag=False).pack()
    assert int.from_bytes(raw[:2], "big") & 0x7FF == 0x7FF
    assert peek_apid(raw) == IDLE_APID


# -- derived fields -----------------------------------------------------------------------------------

@settings(max_examples=examples(300))
@given(headers)
def test_derived_fields(h: PrimaryHeader) -> None:
    assert h.packet_len == PRIMARY_HEADER_LEN + h.data_length + 1
    assert h.packet_id == int.from_bytes(h.pack()[0:2], "big")
    assert h.seq_ctrl == int.from_bytes(h.pack()[2:4], "big")
    assert h.packet_id >> 13 == 0  # version 0
    raw = h.pack()
    assert peek_apid(raw) == h.apid
    assert peek_type(raw) == h.packet_type


# -- construct description and struct fast path agree ---------------------------------------------------

@settings(max_examples=examples(500))
@given(headers)
def test_construct_and_struct_agree_on_every_header(h: PrimaryHeader) -> None:
    raw = h.pack()
    assert len(raw) == PRIMARY_HEADER_LEN
    assert PRIMARY_HEADER_FORMAT.build(_fields(h)) == raw
    assert _construct_fields(raw) == _fields(h)
    assert PrimaryHeader.unpack(raw) == h


@settings(max_examples=examples(500))
@given(st.binary(min_size=6, max_size=6))
def test_construct_and_struct_agree_on_every_six_octets(raw: bytes) -> None:
    c = _construct_fields(raw)
    if c["version"] != 0:
        with pytest.raises(DecodeError) as ei:
            PrimaryHeader.unpack(raw)
        assert ei.value.reason == "version"
        return
    h = PrimaryHeader.unpack(raw)
    assert _fields(h) == c
    assert h.pack() == raw
    assert PRIMARY_HEADER_FORMAT.build(c) == raw


@settings(max_examples=examples(300))
@given(headers)
def test_fast_builder_agrees_with_the_dataclass_and_construct(h: PrimaryHeader) -> None:
    raw = pack_primary_header(h.packet_type, h.apid, h.seq_count, h.data_length + 1,
                              sec_hdr_flag=h.sec_hdr_flag, seq_flags=h.seq_flags)
    assert raw == h.pack() == PRIMARY_HEADER_FORMAT.build(_fields(h))


@pytest.mark.parametrize("kwargs", [
    dict(packet_type=2), dict(packet_type=-1),
    dict(apid=-1), dict(apid=MAX_APID + 1),
    dict(seq_count=-1), dict(seq_count=MAX_SEQ_COUNT + 1),
    dict(data_field_len=0), dict(data_field_len=MAX_DATA_LEN + 1),
    dict(seq_flags=4),
])
def test_fast_builder_validates_every_field(kwargs: dict) -> None:
    args = dict(packet_type=1, apid=1, seq_count=1, data_field_len=1) | kwargs
    with pytest.raises(LocalProtocolError):
        pack_primary_header(**args)


def test_fast_builder_accepts_the_data_field_limits() -> None:
    for n in (1, MAX_DATA_LEN):
        raw = pack_primary_header(0, 1, 1, n)
        assert PrimaryHeader.unpack(raw).packet_len == PRIMARY_HEADER_LEN + n


# -- decoding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(PRIMARY_HEADER_LEN))
def test_unpack_too_short(n: int) -> None:
    with pytest.raises(BytesTooShortError) as ei:
        PrimaryHeader.unpack(bytes(n))
    assert ei.value.expected_len == PRIMARY_HEADER_LEN and ei.value.bytes_len == n
    assert ei.value.reason == "short"


@settings(max_examples=examples(200))
@given(headers, st.binary(max_size=10), st.binary(max_size=10))
def test_unpack_at_an_offset(h: PrimaryHeader, before: bytes, after: bytes) -> None:
    buf = before + h.pack() + after
    assert PrimaryHeader.unpack(buf, len(before)) == h
    assert PrimaryHeader.unpack(memoryview(bytearray(buf)), len(before)) == h


def test_unpack_at_an_offset_checks_the_remaining_length() -> None:
    h = PrimaryHeader(**GOOD)
    with pytest.raises(BytesTooShortError) as ei:
        PrimaryHeader.unpack(b"xx" + h.pack()[:5], 2)
    assert ei.value.bytes_len == 5


@pytest.mark.parametrize("version", range(1, 8))
def test_unpack_rejects_every_nonzero_version(version: int) -> None:
    raw = bytearray(PrimaryHeader(**GOOD).pack())
    raw[0] |= version << 5
    with pytest.raises(DecodeError) as ei:
        PrimaryHeader.unpack(bytes(raw))
    assert ei.value.reason == "version"


def test_unpack_gives_enums() -> None:
    h = PrimaryHeader.unpack(PrimaryHeader(**GOOD, seq_flags=SeqFlags.FIRST).pack())
    assert type(h.packet_type) is PacketType and h.packet_type is PacketType.TC
    assert type(h.seq_flags) is SeqFlags and h.seq_flags is SeqFlags.FIRST
    assert h.sec_hdr_flag is True
