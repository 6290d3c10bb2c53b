"""TC transfer frames (232.0-B), segmentation and blocking, CLTUs with BCH(63,56) (231.0-B)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.protocol.crc import crc16
from fsw.protocol.errors import DecodeError, LocalProtocolError
from fsw.protocol.framing import Dropped
from fsw.protocol.pus import PusTc
from fsw.protocol.tcframe import (
    CLTU_START, CLTU_TAIL, MAX_TC_DATA_LEN, MAX_TC_FRAME_LEN, CltuDecoder, CltuFrameBytes, FrameType,
    SegmentReassembler, TcDropReason, TcFrame, TcSegmenter, bch_parity, cltu_encode, parse_control_command,
    parse_tc_frame, split_packets,
)
from tests.conftest import examples

# Independent test vectors: the SpacePyLibrary test data (Stefan Korner), as reused by Yamcs'
# BchCltuGeneratorTest: a BD frame of 36 octets for spacecraft 0x2F6 and its CLTU.
YAMCS_FRAME = bytes([
    0x22, 0xF6, 0x00, 0x23, 0x00, 0x82, 0x00, 0x0F, 0x00, 0x1D, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x0F,
    0x00, 0x1E, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x00, 0x1F, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x0F,
    0xAC, 0x8F, 0x00, 0x68])
YAMCS_CLTU = bytes([
    0xEB, 0x90, 0x22, 0xF6, 0x00, 0x23, 0x00, 0x82, 0x00, 0x24, 0x0F, 0x00, 0x1D, 0xFF, 0x00, 0x00,
    0x00, 0x34, 0x00, 0x0F, 0x00, 0x1E, 0xFF, 0x00, 0x00, 0x10, 0x00, 0x00, 0x0F, 0x00, 0x1F, 0xFF,
    0x00, 0xD8, 0x00, 0x00, 0x00, 0x0F, 0xAC, 0x8F, 0x00, 0x90, 0x68, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x06, 0xC5, 0xC5, 0xC5, 0xC5, 0xC5, 0xC5, 0xC5, 0x79])
BCH_VECTORS = [("22F600FF00421A", 0x12), ("8CC00E010D1906", 0x5A), ("301B0009008200", 0x54),
               ("10E4C155555555", 0x3E)]

frames = st.builds(
    lambda kind, scid, vcid, seq, data: (
        TcFrame.ad(scid, vcid, seq, data) if kind == "AD" else
        TcFrame.bd(scid, vcid, data) if kind == "BD" else
        TcFrame.set_vr(scid, vcid, seq) if kind == "SETVR" else TcFrame.unlock(scid, vcid)),
    st.sampled_from(["AD", "BD", "SETVR", "UNLOCK"]), st.integers(0, 0x3FF), st.integers(0, 63),
    st.integers(0, 255), st.binary(min_size=1, max_size=MAX_TC_DATA_LEN))


# -- frames --------------------------------------------------------------------------------------
class TestFrames:
    def test_independent_vector_decodes(self) -> None:
        f = parse_tc_frame(YAMCS_FRAME)
        assert isinstance(f, TcFrame)
        assert (f.scid, f.vcid, f.seq, f.kind) == (0x2F6, 0, 0, FrameType.BD)
        assert f.pack() == YAMCS_FRAME  # and our encoder writes the same octets, FECF included

    def test_layout_by_hand(self) -> None:
        raw = TcFrame.ad(0x1A5, 5, 0x42, b"\xAB").pack()
        # 00 0 0 00 0110100101 | 000101 0000000111 | 01000010 | AB | FECF
        assert raw[:5] == bytes([0x01, 0xA5, 0x14, 0x07, 0x42])
        assert raw[5] == 0xAB and int.from_bytes(raw[6:], "big") == crc16(raw[:6])

    @settings(max_examples=examples(300))
    @given(frames)
    def test_round_trip(self, f: TcFrame) -> None:
        raw = f.pack()
        assert len(raw) <= MAX_TC_FRAME_LEN
        assert parse_tc_frame(raw) == f
        assert TcFrame.unpack(raw) == f

    @settings(max_examples=examples(500))
    @given(st.binary(max_size=1100))
    def test_garbage_never_raises(self, data: bytes) -> None:
        r = parse_tc_frame(data)
        assert isinstance(r, (TcFrame, DecodeError))

    @pytest.mark.parametrize("n, reason", [(0, "too_short"), (4, "too_short"), (7, "too_short")])
    def test_too_short(self, n: int, reason: str) -> None:
        r = parse_tc_frame(bytes(n))
        assert isinstance(r, DecodeError) and r.reason == reason

    def test_length_field_against_buffer(self) -> None:
        raw = TcFrame.ad(1, 0, 0, b"x" * 20).pack()
        assert parse_tc_frame(raw[:-1]).reason == TcDropReason.LENGTH     # field beyond the buffer
        assert parse_tc_frame(raw + b"\0").reason == TcDropReason.LENGTH  # field short of the buffer
        big = TcFrame.ad(1, 0, 0, b"y" * MAX_TC_DATA_LEN).pack()          # the maximum: 1024 octets
        assert len(big) == MAX_TC_FRAME_LEN and isinstance(parse_tc_frame(big), TcFrame)
        assert parse_tc_frame(big + b"\0").reason == TcDropReason.LENGTH  # maximum + 1
        with pytest.raises(LocalProtocolError):
            TcFrame.ad(1, 0, 0, b"y" * (MAX_TC_DATA_LEN + 1))
        with pytest.raises(LocalProtocolError):
            TcFrame.ad(1, 0, 0, b"")

    def test_bad_version_type_and_fecf(self) -> None:
        raw = bytearray(TcFrame.ad(1, 0, 0, b"abc").pack())
        v = bytearray(raw)
        v[0] |= 0x40
        assert parse_tc_frame(bytes(v)).reason in (TcDropReason.VERSION, TcDropReason.FECF)
        assert parse_tc_frame(bytes(v), check_fecf=False).reason == TcDropReason.VERSION
        t = bytearray(raw)
        t[0] |= 0x10  # control command flag without bypass
        assert parse_tc_frame(bytes(t), check_fecf=False).reason == TcDropReason.ILLEGAL_TYPE
        raw[-1] ^= 1
        assert parse_tc_frame(bytes(raw)).reason == TcDropReason.FECF
        with pytest.raises(DecodeError):
            TcFrame.unpack(bytes(raw))

    def test_fecf_is_not_degenerate_over_a_packet_ending_in_its_crc(self) -> None:
        """reliability.md item 3: the FECF starts at the frame header, so it still checks something."""
        fecfs = set()
        for i in range(50):
            pkt = PusTc(0x10, 17, 1, bytes([i]) * i, seq_count=i).pack()
            raw = TcFrame.ad(0x1A5, 0, i, pkt).pack()
            fecfs.add(raw[-2:])
            # a frame truncated right after the packet's own CRC fails the length check
            assert parse_tc_frame(raw[:-2]).reason == TcDropReason.LENGTH
        assert len(fecfs) > 40

    def test_control_commands(self) -> None:
        assert parse_control_command(TcFrame.unlock(1, 0).data) == ("unlock", None)
        assert parse_control_command(TcFrame.set_vr(1, 0, 200).data) == ("set_vr", 200)
        for bad in (b"\x01", b"\x82\x00", b"\x82\x01\x05", b"\x00\x00", b"\x82\x00\x01\x02"):
            assert parse_control_command(bad) is None
        with pytest.raises(LocalProtocolError):
            TcFrame(1, 0, 0, b"\x00", bypass=False, control=True)

    @pytest.mark.parametrize("field, value", [("scid", 1024), ("vcid", 64), ("seq", 256), ("scid", -1)])
    def test_field_ranges(self, field: str, value: int) -> None:
        kw = {"scid": 1, "vcid": 0, "seq": 0, "data": b"x"}
        kw[field] = value
        with pytest.raises(LocalProtocolError):
            TcFrame(**kw)


# -- segments and blocking -----------------------------------------------------------------------------
class TestSegments:
    @settings(max_examples=examples(200))
    @given(st.binary(min_size=1, max_size=5000), st.integers(20, MAX_TC_FRAME_LEN), st.integers(0, 63))
    def test_split_and_join(self, packet: bytes, max_frame: int, map_id: int) -> None:
        seg = TcSegmenter(max_frame, map_id)
        parts = seg.split(packet)
        assert all(len(p) <= max_frame - 7 for p in parts)
        r = SegmentReassembler()
        out = [r.feed(p) for p in parts]
        assert out[:-1] == [None] * (len(parts) - 1) and out[-1] == packet
        assert not r.errors

    def test_out_of_place_segments_are_counted(self) -> None:
        seg = TcSegmenter(20)
        a = seg.split(b"A" * 40)
        r = SegmentReassembler()
        assert r.feed(a[1]) is None and r.errors["orphan_segment"] == 1
        r.feed(a[0])
        assert r.feed(seg.split(b"short")[0]) == b"short"     # a new packet while one is open
        assert r.errors["unterminated"] == 1
        assert r.feed(b"") is None and r.errors["empty"] == 1
        small = SegmentReassembler(max_packet=30)
        for p in a:
            assert small.feed(p) is None
        assert small.errors["too_long"] == 1

    def test_blocked_packets_split(self) -> None:
        pkts = [PusTc(0x10, 17, 1, bytes(i), seq_count=i).pack() for i in range(5)]
        out, junk = split_packets(b"".join(pkts))
        assert out == pkts and junk == 0
        out, junk = split_packets(b"".join(pkts) + b"\x00\x01\x02")
        assert out == pkts and junk == 3
        assert split_packets(pkts[0][:-1]) == ([], len(pkts[0]) - 1)   # length beyond the data
        assert split_packets(b"\xe0" + pkts[0][1:]) == ([], len(pkts[0]))  # version 7


# -- CLTU ------------------------------------------------------------------------------------------------
def _frames_of(items: list) -> list[bytes]:
    return [i.data for i in items if isinstance(i, CltuFrameBytes)]


def _feed_three_ways(blob: bytes, correct: bool = True) -> list[list]:
    whole = CltuDecoder(correct)
    a = whole.feed(blob) + whole.flush()
    byte = CltuDecoder(correct)
    b = []
    for i in range(len(blob)):
        b += byte.feed(blob[i:i + 1])
    b += byte.flush()
    return [_frames_of(a), _frames_of(b)]


class TestCltu:
    @pytest.mark.parametrize("info, parity", BCH_VECTORS)
    def test_bch_vectors(self, info: str, parity: int) -> None:
        assert bch_parity(bytes.fromhex(info)) == parity

    def test_independent_cltu_vector(self) -> None:
        assert cltu_encode(YAMCS_FRAME) == YAMCS_CLTU
        assert _frames_of(CltuDecoder().feed(YAMCS_CLTU)) == [YAMCS_FRAME]

    @settings(max_examples=examples(100))
    @given(st.lists(frames, min_size=1, max_size=4), st.binary(max_size=40))
    def test_round_trip_three_ways(self, fs: list[TcFrame], junk: bytes) -> None:
        raws = [f.pack() for f in fs]
        blob = junk.replace(CLTU_START, b"") + b"".join(cltu_encode(r) for r in raws)
        for got in _feed_three_ways(blob):
            assert got == raws

    def test_every_single_bit_error_is_corrected(self) -> None:
        raw = TcFrame.ad(0x1A5, 0, 9, b"0123456789abcdef").pack()
        c = cltu_encode(raw)
        for bit in range(8 * (len(c) - len(CLTU_START) - len(CLTU_TAIL))):
            bad = bytearray(c)
            pos = len(CLTU_START) + bit // 8
            bad[pos] ^= 0x80 >> (bit % 8)
            d = CltuDecoder()
            out = d.feed(bytes(bad))
            assert _frames_of(out) == [raw], bit
            # the filler bit (last of each codeblock) is outside the code: nothing to correct
            assert d.corrected_bits == (0 if bit % 64 == 63 else 1)

    def test_detect_only_mode_ends_the_cltu(self) -> None:
        raw = TcFrame.ad(0x1A5, 0, 9, b"x" * 30).pack()
        bad = bytearray(cltu_encode(raw))
        bad[3 + 8] ^= 0x01   # second codeblock
        d = CltuDecoder(correct=False)
        out = d.feed(bytes(bad))
        assert _frames_of(out) == []
        assert d.drops[TcDropReason.CLTU_SHORT] == 1

    def test_double_error_is_not_miscorrected(self) -> None:
        raw = TcFrame.ad(0x1A5, 0, 9, b"y" * 30).pack()
        rng = random.Random(7)
        for _ in range(200):
            bad = bytearray(cltu_encode(raw))
            block = rng.randrange((len(bad) - 10) // 8)
            i, j = rng.sample(range(63), 2)
            for b in (i, j):
                bad[2 + 8 * block + b // 8] ^= 0x80 >> (b % 8)
            got = _frames_of(CltuDecoder().feed(bytes(bad)))
            assert got == [], "a double error must end the CLTU, never be 'corrected' into other data"

    def test_good_cltu_after_noise_and_a_broken_one(self) -> None:
        raw = TcFrame.ad(0x1A5, 0, 1, b"good").pack()
        broken = cltu_encode(TcFrame.ad(0x1A5, 0, 0, b"broken" * 5).pack())[:20]
        rng = random.Random(3)
        noise = bytes(rng.randrange(256) for _ in range(300)).replace(CLTU_START, b"")
        for got in _feed_three_ways(noise + broken + noise + cltu_encode(raw)):
            assert got[-1:] == [raw]

    def test_tail_lost_flush_ends_the_cltu(self) -> None:
        raw = TcFrame.ad(0x1A5, 0, 1, b"no tail").pack()
        c = cltu_encode(raw)[:-len(CLTU_TAIL)]
        d = CltuDecoder()
        assert _frames_of(d.feed(c)) == []
        assert _frames_of(d.flush()) == [raw]

    def test_fill_only_cltu(self) -> None:
        d = CltuDecoder()
        out = d.feed(cltu_encode(b"\x55" * 7))
        assert out == [Dropped(TcDropReason.FILL, 7)]

    @settings(max_examples=examples(300))
    @given(st.lists(st.binary(max_size=200), max_size=10))
    def test_fuzz_never_raises_and_stays_bounded(self, chunks: list[bytes]) -> None:
        d = CltuDecoder(max_cltu_data=2048)
        for c in chunks:
            for item in d.feed(c):
                assert isinstance(item, (CltuFrameBytes, Dropped))
            assert len(d._buf) < 8 + len(CLTU_START)
        d.flush()

    def test_mutated_cltus_never_raise_and_count_everything(self) -> None:
        rng = random.Random(11)
        good = cltu_encode(TcFrame.ad(0x1A5, 0, 3, b"payload" * 9).pack())
        for _ in range(300):
            blob = bytearray(good * 3)
            for _ in range(rng.randrange(1, 12)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
            d = CltuDecoder()
            items = d.feed(bytes(blob)) + d.flush()
            consumed = sum(i.nbytes for i in items if isinstance(i, Dropped))
            assert consumed == d.dropped_bytes
            for i in items:
                if isinstance(i, CltuFrameBytes):
                    assert isinstance(parse_tc_frame(i.data), (TcFrame, DecodeError))
