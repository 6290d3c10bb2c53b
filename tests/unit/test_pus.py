"""PUS-C telecommands and telemetry (ECSS-E-ST-70-41C 7.4.3/7.4.4).

Round trips, validation, strict decoding, and byte-for-byte interoperability
with the independent ``spacepackets`` implementation in both directions.
"""

from __future__ import annotations

import math

import pytest
import spacepackets.ecss as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ecss.tm import MiscParams

from fsw.protocol import (
    MAX_APID, MAX_SEQ_COUNT, MIN_TC_LEN, MIN_TM_LEN, TC_HEADER_LEN, TM_HEADER_LEN, BytesTooShortError, CucTime,
    DecodeError, LocalProtocolError, PacketType, PrimaryHeader, PusTc, PusTm, SeqFlags, crc16, parse_packet,
    parse_packet_nothrow, split_request_id,
)
from fsw.protocol.pus import PUS_VERSION, TC_SEC_HDR_LEN, TM_SEC_HDR_LEN
from tests.conftest import examples

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
apids = st.integers(0, MAX_APID)
seq_counts = st.integers(0, MAX_SEQ_COUNT)
payloads = st.binary(max_size=200)


def tcs(seq_flags: st.SearchStrategy = st.sampled_from(SeqFlags)) -> st.SearchStrategy[PusTc]:
    return st.builds(PusTc, apid=apids, service=u8, subservice=u8, app_data=payloads, seq_count=seq_counts,
                     source_id=u16, ack_flags=st.integers(0, 15), seq_flags=seq_flags)


def tms(seq_flags: st.SearchStrategy = st.sampled_from(SeqFlags)) -> st.SearchStrategy[PusTm]:
    return st.builds(PusTm, apid=apids, service=u8, subservice=u8, source_data=payloads, seq_count=seq_counts,
                     msg_counter=u16, dest_id=u16, time_coarse=st.integers(0, 0xFFFF_FFFF), time_fine=u16,
                     time_ref_status=st.integers(0, 15), seq_flags=seq_flags)


packets = st.one_of(tcs(), tms())


# -- layout ------------------------------------------------------------------------------------------

def test_header_lengths() -> None:
    assert (TC_SEC_HDR_LEN, TM_SEC_HDR_LEN) == (5, 13)
    assert (TC_HEADER_LEN, TM_HEADER_LEN) == (11, 19)
    assert (MIN_TC_LEN, MIN_TM_LEN) == (13, 21)


@settings(max_examples=examples(300))
@given(tcs())
def test_tc_layout(tc: PusTc) -> None:
    raw = tc.pack()
    assert len(raw) == TC_HEADER_LEN + len(tc.app_data) + 2
    h = PrimaryHeader.unpack(raw)
    assert (h.packet_type, h.sec_hdr_flag, h.apid, h.seq_count, h.seq_flags) == (
        PacketType.TC, True, tc.apid, tc.seq_count, tc.seq_flags)
    assert h.packet_len == len(raw)
    assert raw[6] == (PUS_VERSION << 4) | tc.ack_flags
    assert (raw[7], raw[8], int.from_bytes(raw[9:11], "big")) == (tc.service, tc.subservice, tc.source_id)
    assert raw[TC_HEADER_LEN:-2] == tc.app_data
    assert int.from_bytes(raw[-2:], "big") == crc16(raw[:-2])
    assert tc.packet_id == int.from_bytes(raw[:2], "big")
    assert tc.request_id == int.from_bytes(raw[:4], "big")


@settings(max_examples=examples(300))
@given(tms())
def test_tm_layout(tm: PusTm) -> None:
    raw = tm.pack()
    assert len(raw) == TM_HEADER_LEN + len(tm.source_data) + 2
    h = PrimaryHeader.unpack(raw)
    assert (h.packet_type, h.sec_hdr_flag, h.apid, h.seq_count, h.seq_flags) == (
        PacketType.TM, True, tm.apid, tm.seq_count, tm.seq_flags)
    assert h.packet_len == len(raw)
    assert raw[6] == (PUS_VERSION << 4) | tm.time_ref_status
    assert (raw[7], raw[8]) == (tm.service, tm.subservice)
    assert int.from_bytes(raw[9:11], "big") == tm.msg_counter
    assert int.from_bytes(raw[11:13], "big") == tm.dest_id
    assert CucTime.unpack(raw, 13) == CucTime(tm.time_coarse, tm.time_fine)  # implicit P-field
    assert raw[TM_HEADER_LEN:-2] == tm.source_data
    assert int.from_bytes(raw[-2:], "big") == crc16(raw[:-2])
    assert tm.packet_id == int.from_bytes(raw[:2], "big")


# -- round trips ---------------------------------------------------------------------------------------

@settings(max_examples=examples(500))
@given(tcs())
def test_tc_round_trip(tc: PusTc) -> None:
    raw = tc.pack()
    assert parse_packet(raw) == tc
    assert PusTc.unpack(raw) == tc
    assert parse_packet(bytearray(raw)) == tc
    assert parse_packet(memoryview(raw)) == tc
    assert type(parse_packet(raw)) is PusTc


@settings(max_examples=examples(500))
@given(tms())
def test_tm_round_trip(tm: PusTm) -> None:
    raw = tm.pack()
    assert parse_packet(raw) == tm
    assert PusTm.unpack(raw) == tm
    assert parse_packet(memoryview(bytearray(raw))) == tm
    assert type(parse_packet(raw)) is PusTm


@settings(max_examples=examples(300))
@given(st.floats(0, 2.0**32, exclude_max=True))
def test_tm_time_in_seconds(t: float) -> None:
    tm = PusTm(0x10, 3, 25, time=t)
    c = CucTime.from_seconds(t)
    assert (tm.time_coarse, tm.time_fine) == (c.coarse, c.fine)
    assert tm.time == c.seconds
    assert tm.time <= t < tm.time + 2.0**-16
    assert parse_packet(tm.pack()).time == tm.time


@settings(max_examples=examples(200))
@given(tcs())
def test_request_id_names_the_tc(tc: PusTc) -> None:
    assert split_request_id(tc.request_id) == (tc.apid, tc.seq_count)
    assert tc.request_id >> 16 == tc.packet_id


# -- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(apid=-1), dict(apid=MAX_APID + 1), dict(apid=1.0),
    dict(service=-1), dict(service=256), dict(subservice=-1), dict(subservice=256), dict(service=1.5),
    dict(seq_count=-1), dict(seq_count=MAX_SEQ_COUNT + 1),
    dict(source_id=-1), dict(source_id=0x10000),
    dict(ack_flags=-1), dict(ack_flags=16),
    dict(seq_flags=4), dict(seq_flags=-1),
])
def test_tc_fields_are_validated(kwargs: dict) -> None:
    args = dict(apid=1, service=17, subservice=1) | kwargs
    with pytest.raises(LocalProtocolError):
        PusTc(**args)


@pytest.mark.parametrize("kwargs", [
    dict(apid=-1), dict(apid=MAX_APID + 1),
    dict(service=256), dict(subservice=256),
    dict(seq_count=MAX_SEQ_COUNT + 1), dict(seq_flags=4),
    dict(msg_counter=-1), dict(msg_counter=0x10000), dict(dest_id=0x10000),
    dict(time_coarse=-1), dict(time_coarse=2**32), dict(time_fine=0x10000), dict(time_fine=0.5),
    dict(time_ref_status=16),
    dict(time=-2.0**-16), dict(time=2.0**32), dict(time=math.nan), dict(time=math.inf),
])
def test_tm_fields_are_validated(kwargs: dict) -> None:
    args = dict(apid=1, service=3, subservice=25) | kwargs
    with pytest.raises(LocalProtocolError):
        PusTm(**args)


def test_largest_packets() -> None:
    # the packet data field holds at most 65536 octets: secondary header + data + CRC
    tc = PusTc(1, 2, 3, bytes(0x10000 - TC_SEC_HDR_LEN - 2))
    assert parse_packet(tc.pack()) == tc
    assert len(tc.pack()) == 6 + 0x10000
    with pytest.raises(LocalProtocolError):
        PusTc(1, 2, 3, bytes(0x10000 - TC_SEC_HDR_LEN - 1))
    assert bytes(_theirs_tc(tc).pack()) == tc.pack()
    assert bytes(sp.PusTc.unpack(tc.pack()).app_data) == tc.app_data
    tm = PusTm(1, 2, 3, bytes(0x10000 - TM_SEC_HDR_LEN - 2))
    assert parse_packet(tm.pack()) == tm
    assert bytes(_theirs_tm(tm).pack()) == tm.pack()
    assert bytes(sp.PusTm.unpack(tm.pack(), timestamp_len=6).source_data) == tm.source_data
    with pytest.raises(LocalProtocolError):
        PusTm(1, 2, 3, bytes(0x10000 - TM_SEC_HDR_LEN - 1))


# -- strict decoding: one reason per defect -----------------------------------------------------------

def _recrc(raw: bytes | bytearray) -> bytes:
    body = bytes(raw[:-2])
    return body + crc16(body).to_bytes(2, "big")


@pytest.mark.parametrize("n", range(6))
def test_shorter_than_a_primary_header(n: int) -> None:
    with pytest.raises(BytesTooShortError) as ei:
        parse_packet(PusTc(1, 17, 1).pack()[:n])
    assert ei.value.reason == "short" and ei.value.bytes_len == n


def test_wrong_version() -> None:
    raw = bytearray(PusTc(1, 17, 1).pack())
    raw[0] |= 0x20
    with pytest.raises(DecodeError) as ei:
        parse_packet(_recrc(raw))
    assert ei.value.reason == "version"


def test_no_secondary_header() -> None:
    raw = bytearray(PusTm(1, 3, 25).pack())
    raw[0] &= ~0x08
    with pytest.raises(DecodeError) as ei:
        parse_packet(_recrc(raw))
    assert ei.value.reason == "no_sec_hdr"


@pytest.mark.parametrize("cut", [1, 2, 5])
def test_buffer_shorter_than_the_length_field(cut: int) -> None:
    raw = PusTc(1, 17, 1, b"abcdef").pack()
    with pytest.raises(DecodeError) as ei:
        parse_packet(raw[:-cut])
    assert ei.value.reason == "length"


@pytest.mark.parametrize("extra", [b"\x00", b"junk"])
def test_buffer_longer_than_the_length_field(extra: bytes) -> None:
    with pytest.raises(DecodeError) as ei:
        parse_packet(PusTc(1, 17, 1).pack() + extra)
    assert ei.value.reason == "length"


@pytest.mark.parametrize("kind,total", [("tc", n) for n in range(7, MIN_TC_LEN)] + [("tm", n) for n in range(7, MIN_TM_LEN)])
def test_consistent_length_but_shorter_than_the_secondary_header(kind: str, total: int) -> None:
    # the length field agrees with the buffer, yet there is no room for the PUS headers and CRC
    first = 0x18 if kind == "tc" else 0x08
    body = bytes([first, 0x01, 0xC0, 0x00]) + (total - 7).to_bytes(2, "big") + bytes(total - 6)
    raw = _recrc(body) if total >= 8 else body
    with pytest.raises(BytesTooShortError) as ei:
        parse_packet(raw)
    assert ei.value.reason == "short"
    assert ei.value.expected_len == (MIN_TC_LEN if kind == "tc" else MIN_TM_LEN)


@pytest.mark.parametrize("make", [lambda: PusTc(1, 17, 1, b"xy"), lambda: PusTm(1, 17, 2, b"xy")])
def test_crc_mismatch(make) -> None:
    raw = bytearray(make().pack())
    raw[-3] ^= 0x01
    with pytest.raises(DecodeError) as ei:
        parse_packet(bytes(raw))
    assert ei.value.reason == "crc"
    # without the CRC check the same bytes decode, damage included
    assert parse_packet(bytes(raw), check_crc=False).pack()[:-2] == bytes(raw[:-2])


@pytest.mark.parametrize("make", [lambda: PusTc(1, 17, 1), lambda: PusTm(1, 17, 2)])
@pytest.mark.parametrize("version", [0, 1, 3, 15])
def test_wrong_pus_version(make, version: int) -> None:
    raw = bytearray(make().pack())
    raw[6] = (version << 4) | (raw[6] & 0xF)
    with pytest.raises(DecodeError) as ei:
        parse_packet(_recrc(raw))
    assert ei.value.reason == "pus_version"


def test_unpack_checks_the_type() -> None:
    with pytest.raises(DecodeError) as ei:
        PusTc.unpack(PusTm(1, 3, 25).pack())
    assert ei.value.reason == "type"
    with pytest.raises(DecodeError) as ei:
        PusTm.unpack(PusTc(1, 17, 1).pack())
    assert ei.value.reason == "type"


def test_nothrow_returns_the_error_as_a_value() -> None:
    err = parse_packet_nothrow(b"\x18")
    assert isinstance(err, DecodeError) and err.reason == "short"
    tc = PusTc(1, 17, 1)
    assert parse_packet_nothrow(tc.pack()) == tc


def test_decode_error_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError) as ei:
        parse_packet(b"\xff" * 20)
    assert isinstance(ei.value, DecodeError)
    assert str(ei.value).startswith(ei.value.reason + ":")


# -- garbage never crashes the decoder -----------------------------------------------------------------

def _check_decode(data: bytes) -> None:
    """parse_packet either returns the packet these exact bytes encode, or raises DecodeError."""
    try:
        pkt = parse_packet(data)
    except DecodeError as exc:
        assert exc.reason in {"short", "version", "no_sec_hdr", "length", "crc", "pus_version"}
        assert parse_packet_nothrow(data).reason == exc.reason
        return
    assert pkt.pack() == bytes(data)  # every bit is captured by a field: the decode is canonical


@settings(max_examples=examples(500))
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    _check_decode(data)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(packets).pack())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "extend", "delete", "insert", "length", "recrc"]))
        if op == "flip" and raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(u8)
        elif op == "truncate":
            del raw[draw(st.integers(0, len(raw))):]
        elif op == "extend":
            raw += draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            i = draw(st.integers(0, len(raw) - 1))
            del raw[i:i + draw(st.integers(1, 4))]
        elif op == "insert":
            i = draw(st.integers(0, len(raw)))
            raw[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "length" and len(raw) >= 6:
            raw[4:6] = draw(st.sampled_from([0, 1, 5, 6, 12, 0x7FFF, 0xFFFF, len(raw) - 7, len(raw) - 6]
                                            )).to_bytes(2, "big") if len(raw) >= 7 else b"\x00\x00"
        elif op == "recrc" and len(raw) >= 2:
            raw[:] = _recrc(raw)  # a damaged packet with a valid CRC reaches the structural checks
    return bytes(raw)


@settings(max_examples=examples(500))
@given(mutated_packets())
def test_mutated_packets_raise_only_decode_error(data: bytes) -> None:
    _check_decode(data)


# -- interoperability with spacepackets (independent implementation), both directions ------------------

def _theirs_tc(tc: PusTc) -> sp.PusTc:
    return sp.PusTc(service=tc.service, message_subtype=tc.subservice, apid=tc.apid, app_data=tc.app_data,
                    seq_count=tc.seq_count, source_id=tc.source_id, ack_flags=tc.ack_flags)


def _theirs_tm(tm: PusTm) -> sp.PusTm:
    return sp.PusTm(service=tm.service, message_subtype=tm.subservice,
                    timestamp=CucTime(tm.time_coarse, tm.time_fine).pack(), source_data=tm.source_data,
                    apid=tm.apid, seq_count=tm.seq_count, message_counter=tm.msg_counter,
                    destination_id=tm.dest_id, misc_params=MiscParams(spacecraft_time_ref=tm.time_ref_status))


# spacepackets builds unsegmented packets only, so that direction fixes the sequence flags
@settings(max_examples=examples(300))
@given(tcs(st.just(SeqFlags.UNSEGMENTED)))
def test_tc_pack_equals_spacepackets_pack(tc: PusTc) -> None:
    assert tc.pack() == bytes(_theirs_tc(tc).pack())


@settings(max_examples=examples(300))
@given(tms(st.just(SeqFlags.UNSEGMENTED)))
def test_tm_pack_equals_spacepackets_pack(tm: PusTm) -> None:
    assert tm.pack() == bytes(_theirs_tm(tm).pack())


@settings(max_examples=examples(300))
@given(tcs(st.just(SeqFlags.UNSEGMENTED)))
def test_we_parse_spacepackets_tc(tc: PusTc) -> None:
    ours = parse_packet(bytes(_theirs_tc(tc).pack()))
    assert isinstance(ours, PusTc)
    assert ours == tc
    assert (ours.apid, ours.service, ours.subservice, ours.app_data, ours.seq_count, ours.source_id,
            ours.ack_flags) == (tc.apid, tc.service, tc.subservice, tc.app_data, tc.seq_count, tc.source_id,
                                tc.ack_flags)


@settings(max_examples=examples(300))
@given(tms(st.just(SeqFlags.UNSEGMENTED)))
def test_we_parse_spacepackets_tm(tm: PusTm) -> None:
    ours = parse_packet(bytes(_theirs_tm(tm).pack()))
    assert isinstance(ours, PusTm)
    assert ours == tm
    assert (ours.time_coarse, ours.time_fine, ours.msg_counter, ours.dest_id, ours.time_ref_status) == (
        tm.time_coarse, tm.time_fine, tm.msg_counter, tm.dest_id, tm.time_ref_status)


@settings(max_examples=examples(300))
@given(tcs())
def test_spacepackets_parses_our_tc(tc: PusTc) -> None:
    theirs = sp.PusTc.unpack(tc.pack())
    assert theirs.apid == tc.apid
    assert theirs.service == tc.service and theirs.message_subtype == tc.subservice
    assert bytes(theirs.app_data) == tc.app_data
    assert theirs.seq_count == tc.seq_count
    assert theirs.source_id == tc.source_id
    assert theirs.pus_tc_sec_header.ack_flags == tc.ack_flags
    assert int(theirs.sp_header.seq_flags) == tc.seq_flags
    assert int(theirs.packet_type) == PacketType.TC
    assert bytes(theirs.pack()) == tc.pack()


@settings(max_examples=examples(300))
@given(tms())
def test_spacepackets_parses_our_tm(tm: PusTm) -> None:
    theirs = sp.PusTm.unpack(tm.pack(), timestamp_len=6)
    assert theirs.apid == tm.apid
    assert theirs.service == tm.service and theirs.message_subtype == tm.subservice
    assert bytes(theirs.source_data) == tm.source_data
    assert theirs.seq_count == tm.seq_count
    assert theirs.pus_tm_sec_header.message_counter == tm.msg_counter
    assert theirs.pus_tm_sec_header.dest_id == tm.dest_id
    assert theirs.pus_tm_sec_header.spacecraft_time_ref == tm.time_ref_status
    assert bytes(theirs.timestamp) == CucTime(tm.time_coarse, tm.time_fine).pack()
    assert int(theirs.sp_header.seq_flags) == tm.seq_flags
    assert bytes(theirs.pack()) == tm.pack()


def test_spacepackets_and_we_both_refuse_a_bad_crc() -> None:
    from spacepackets.ecss.tc import InvalidTcCrc16Error

    raw = bytearray(PusTc(0x22, 8, 1, b"\x00\x01").pack())
    raw[-1] ^= 0xFF
    with pytest.raises(DecodeError):
        parse_packet(bytes(raw))
    with pytest.raises(InvalidTcCrc16Error):
        sp.PusTc.unpack(bytes(raw))
