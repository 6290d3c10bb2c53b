"""TM transfer frames (132.0-B), the CLCW, CADU sync, packet multiplexing and reassembly."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.tm_frame import TmTransferFrame

from fsw.protocol.crc import crc16
from fsw.protocol.errors import DecodeError, LocalProtocolError
from fsw.protocol.framing import ASM, Dropped
from fsw.protocol.pus import PusTm
from fsw.protocol.spacepacket import IDLE_APID
from fsw.protocol.tmframe import (
    CLCW_FORMAT, FHP_IDLE, FHP_NO_PACKET, MIN_IDLE_PACKET, TM_PRIMARY_HEADER_FORMAT, VC_IDLE, CaduDeframer, Clcw,
    TmDropReason, TmFrame, TmFrameConfig, TmMultiplexer, VcReassembler, cadu, idle_packet, pack_tm_frame,
    parse_clcw, parse_tm_frame,
)
from tests.conftest import examples

CFG = TmFrameConfig(scid=0x1A5, frame_len=64)
CLCW0 = Clcw(0, 0).pack()

clcws = st.builds(Clcw, vcid=st.integers(0, 63), report_value=st.integers(0, 255), lockout=st.booleans(),
                  wait=st.booleans(), retransmit=st.booleans(), farm_b=st.integers(0, 3), no_rf=st.booleans(),
                  no_bitlock=st.booleans(), status=st.integers(0, 7), cop_in_effect=st.integers(0, 3))


def _pkt(i: int, n: int, apid: int = 0x10) -> bytes:
    return PusTm(apid, 3, 25, bytes([i & 0xFF]) * n, seq_count=i & 0x3FFF, time=float(i)).pack()


def _mux(cfg: TmFrameConfig = CFG, **kw) -> TmMultiplexer:
    return TmMultiplexer(cfg, ocf_source=lambda: CLCW0, **kw)


def _drain(mux: TmMultiplexer) -> list[bytes]:
    out = []
    while mux.has_data():
        out.append(mux.next_frame())
    return out


class TestLayouts:
    @settings(max_examples=examples(200))
    @given(st.integers(0, 0x3FF), st.integers(0, 7), st.integers(0, 255), st.integers(0, 255), st.integers(0, 0x7FF))
    def test_header_matches_construct_and_spacepackets(self, scid: int, vcid: int, mc: int, vc: int, fhp: int) -> None:
        cfg = TmFrameConfig(scid=scid, frame_len=40)
        raw = pack_tm_frame(cfg, vcid, mc, vc, fhp, bytes(cfg.data_len), CLCW0)
        c = TM_PRIMARY_HEADER_FORMAT.parse(raw[:6])
        assert (c.version, c.scid, c.vcid, c.ocf_flag, c.mc_count, c.vc_count) == (0, scid, vcid, 1, mc, vc)
        assert (c.sec_hdr_flag, c.sync_flag, c.packet_order, c.segment_len_id, c.fhp) == (0, 0, 0, 3, fhp)
        # spacepackets, an independent implementation, reads the same frame (FECF checked too)
        sp = TmTransferFrame.unpack(raw, 40, True)
        h = sp.primary_header
        assert (h.master_channel_id.spacecraft_id, h.vc_id, h.ocf_flag, h.master_ch_frame_count,
                h.vc_frame_count, h.frame_datafield_status.first_header_pointer) == (scid, vcid, True, mc, vc, fhp)
        assert sp.op_ctrl_field == CLCW0
        assert sp.pack() == raw
        f = parse_tm_frame(raw, cfg)
        assert isinstance(f, TmFrame) and (f.scid, f.vcid, f.mc_count, f.vc_count, f.fhp) == (scid, vcid, mc, vc, fhp)

    @settings(max_examples=examples(200))
    @given(clcws)
    def test_clcw_round_trip_and_construct(self, c: Clcw) -> None:
        raw = c.pack()
        assert Clcw.unpack(raw) == c
        p = CLCW_FORMAT.parse(raw)
        assert (p.control_word_type, p.version, p.status, p.cop_in_effect, p.vcid) == (0, 0, c.status,
                                                                                      c.cop_in_effect, c.vcid)
        assert (bool(p.lockout), bool(p.wait), bool(p.retransmit), p.farm_b, p.report_value) == (
            c.lockout, c.wait, c.retransmit, c.farm_b, c.report_value)
        assert (bool(p.no_rf), bool(p.no_bitlock)) == (c.no_rf, c.no_bitlock)

    def test_parsed_clcws_and_errors_repeat(self) -> None:
        c = Clcw(3, 200, lockout=True, farm_b=2)
        assert parse_clcw(c.pack()) == c and parse_clcw(bytearray(c.pack())) == parse_clcw(c.pack())
        assert isinstance(parse_clcw(b"\x80\0\0\0"), DecodeError)
        assert isinstance(parse_clcw(b"\x80\0\0\0"), DecodeError)   # errors are values made afresh
        for rv in range(256):
            for fb in range(4):
                for w in range(2):
                    assert parse_clcw(Clcw(1, rv, farm_b=fb, wait=bool(w)).pack()).report_value == rv

    def test_clcw_bad_values(self) -> None:
        assert isinstance(parse_clcw(b"\x80\0\0\0"), DecodeError)        # control word type 1
        assert isinstance(parse_clcw(b"\x20\0\0\0"), DecodeError)        # version 1
        assert isinstance(parse_clcw(b"\0\0\0"), DecodeError)
        with pytest.raises(DecodeError):
            Clcw.unpack(b"\x80\0\0\0")
        with pytest.raises(LocalProtocolError):
            Clcw(64, 0)

    def test_frame_config_limits(self) -> None:
        with pytest.raises(ValueError):
            TmFrameConfig(frame_len=10)
        with pytest.raises(ValueError):
            TmFrameConfig(frame_len=2049)
        with pytest.raises(ValueError):
            TmFrameConfig(scid=1024)
        assert TmFrameConfig(frame_len=1115).data_len == 1115 - 12

    def test_builder_checks(self) -> None:
        with pytest.raises(LocalProtocolError):
            pack_tm_frame(CFG, 0, 0, 0, 0, bytes(CFG.data_len - 1), CLCW0)
        with pytest.raises(LocalProtocolError):
            pack_tm_frame(CFG, 8, 0, 0, 0, bytes(CFG.data_len), CLCW0)
        with pytest.raises(LocalProtocolError):
            pack_tm_frame(CFG, 0, 0, 0, 0, bytes(CFG.data_len), None)

    def test_parse_errors(self) -> None:
        raw = bytearray(pack_tm_frame(CFG, 1, 2, 3, 0, bytes(CFG.data_len), CLCW0))
        assert parse_tm_frame(raw[:-1], CFG).reason == TmDropReason.TRUNCATED
        other = TmFrameConfig(scid=0x1A6, frame_len=64)
        assert parse_tm_frame(raw, other).reason == TmDropReason.SCID
        raw[10] ^= 1
        assert parse_tm_frame(raw, CFG).reason == TmDropReason.FECF

    def test_idle_packet(self) -> None:
        p = idle_packet(MIN_IDLE_PACKET)
        assert len(p) == 7 and ((p[0] << 8) | p[1]) & 0x7FF == IDLE_APID
        with pytest.raises(LocalProtocolError):
            idle_packet(6)


class TestMultiplexer:
    @settings(max_examples=examples(150))
    @given(st.lists(st.integers(0, 300), min_size=1, max_size=30), st.integers(25, 300))
    def test_packets_survive_any_cut(self, sizes: list[int], frame_len: int) -> None:
        cfg = TmFrameConfig(frame_len=frame_len)
        mux = _mux(cfg)
        pkts = [_pkt(i, n) for i, n in enumerate(sizes)]
        for p in pkts:
            assert mux.queue(0, p)
        r = VcReassembler()
        got = []
        for f in _drain(mux):
            frame = parse_tm_frame(f, cfg)
            assert isinstance(frame, TmFrame) and len(f) == frame_len
            got += r.feed(frame)
        assert got == pkts
        assert r.drops == {}

    def test_idle_packet_spanning_frames(self) -> None:
        cfg = TmFrameConfig(frame_len=40)            # data field 28 octets
        mux = _mux(cfg)
        first = _pkt(0, 1)                           # 22 octets: 6 left, too few for an idle packet
        mux.queue(0, first)
        f1 = parse_tm_frame(mux.next_frame(), cfg)
        assert not mux.has_data()                    # only the idle tail waits: no frame needed for it
        mux.queue(0, _pkt(1, 1))
        f2 = parse_tm_frame(mux.next_frame(), cfg)
        assert f2.fhp == 1                           # one octet of idle packet first
        r = VcReassembler()
        assert r.feed(f1) == [first] and r.feed(f2) == [_pkt(1, 1)]
        assert r.idle_packets == 1

    def test_priorities_and_idle_frames(self) -> None:
        mux = _mux(channels=((0, 0), (1, 5), (3, 1)))
        mux.queue(1, _pkt(1, 5))
        mux.queue(3, _pkt(3, 5))
        mux.queue(0, _pkt(0, 5))
        order = [parse_tm_frame(mux.next_frame(), CFG).vcid for _ in range(3)]
        assert order == [0, 3, 1]
        idle = parse_tm_frame(mux.next_frame(), CFG)
        assert idle.vcid == VC_IDLE and idle.fhp == FHP_IDLE
        assert _mux(idle_frames=False).next_frame() is None

    def test_frame_counters_wrap(self) -> None:
        mux = _mux()
        counts = [parse_tm_frame(mux.idle_frame(), CFG) for _ in range(300)]
        assert [f.mc_count for f in counts] == [i & 0xFF for i in range(300)]
        assert [f.vc_count for f in counts] == [i & 0xFF for i in range(300)]

    def test_feeder_and_queue_limit(self) -> None:
        src = [_pkt(i, 50) for i in range(5)]
        it = iter(src)
        mux = _mux(max_queue_bytes=100)
        mux.set_feeder(1, lambda room: next(it, None))
        assert mux.queue(0, _pkt(9, 50)) and not mux.queue(0, _pkt(10, 50))
        assert mux.stats()["vc0_rejected"] == 1
        assert mux.pop_oldest(0) == _pkt(9, 50) and mux.pop_oldest(0) is None
        r = VcReassembler()
        got = []
        for _ in range(40):
            f = parse_tm_frame(mux.next_frame(), CFG)
            if f.vcid == 1:
                got += r.feed(f)
        assert got == src

    @settings(max_examples=examples(100))
    @given(st.lists(st.tuples(st.sampled_from(["queue0", "queue1", "pop", "frame"]), st.integers(0, 120)),
                    max_size=40), st.booleans(), st.booleans())
    def test_frames_are_packed_as_by_pack_tm_frame_and_revision_tracks_has_data(
            self, ops: list[tuple[str, int]], ocf: bool, fecf: bool) -> None:
        """The multiplexer's own frame builder writes what pack_tm_frame (and the header layout) says, and
        :attr:`revision` moves at least whenever has_data() may change (callers remember that answer)."""
        cfg = TmFrameConfig(frame_len=64, ocf=ocf, fecf=fecf)
        mux = TmMultiplexer(cfg, ocf_source=(lambda: CLCW0) if ocf else None)
        for i, (op, n) in enumerate(ops):
            rev, had = mux.revision, mux.has_data()
            if op.startswith("queue"):
                mux.queue(int(op[-1]), _pkt(i, n))
            elif op == "pop":
                mux.pop_oldest(0)
            else:
                raw = mux.next_frame()
                f = parse_tm_frame(raw, cfg)
                assert isinstance(f, TmFrame)
                assert raw == pack_tm_frame(cfg, f.vcid, f.mc_count, f.vc_count, f.fhp, f.data, f.ocf)
                head = struct.pack(">HBBH", (cfg.scid << 4) | (f.vcid << 1) | ocf, f.mc_count, f.vc_count,
                                   0x1800 | f.fhp)
                body = head + f.data + (f.ocf or b"")
                assert raw == (body + crc16(body).to_bytes(2, "big") if fecf else body)
            if mux.has_data() != had:
                assert mux.revision != rev

    def test_ocf_required(self) -> None:
        with pytest.raises(ValueError):
            TmMultiplexer(CFG)
        with pytest.raises(ValueError):
            TmMultiplexer(CFG, channels=((7, 0),), ocf_source=lambda: CLCW0)


class TestReassembler:
    @settings(max_examples=examples(150))
    @given(st.lists(st.integers(0, 200), min_size=5, max_size=40), st.sets(st.integers(0, 100), max_size=20))
    def test_lost_frames_never_yield_wrong_packets(self, sizes: list[int], lost: set[int]) -> None:
        mux = _mux()
        pkts = [_pkt(i, n) for i, n in enumerate(sizes)]
        for p in pkts:
            mux.queue(0, p)
        r = VcReassembler()
        got = []
        for k, f in enumerate(_drain(mux)):
            if k in lost:
                continue
            for p in r.feed(parse_tm_frame(f, CFG)):
                if not isinstance(p, Dropped):
                    got.append(p)
        # what comes out is an in-order subsequence of what went in, never a damaged packet
        it = iter(pkts)
        assert all(any(g == p for p in it) for g in got)
        if not lost:
            assert got == pkts

    def test_gap_then_resync(self) -> None:
        mux = _mux()
        pkts = [_pkt(i, 60) for i in range(6)]
        for p in pkts:
            mux.queue(0, p)
        frames = [parse_tm_frame(f, CFG) for f in _drain(mux)]
        r = VcReassembler()
        out = r.feed(frames[0]) + r.feed(frames[2])
        assert r.frames_lost == 1 and r.drops[TmDropReason.VC_GAP] == 1
        for f in frames[3:]:
            out += r.feed(f)
        good = [p for p in out if not isinstance(p, Dropped)]
        assert good[-1] == pkts[-1] and all(p in pkts for p in good)

    def test_late_duplicates_do_not_break_the_stream(self) -> None:
        mux = _mux()
        pkts = [_pkt(i, 60) for i in range(8)]
        for p in pkts:
            mux.queue(0, p)
        frames = [parse_tm_frame(f, CFG) for f in _drain(mux)]
        r = VcReassembler()
        got = []
        for k, f in enumerate(frames):
            got += r.feed(f)
            if k == 3:
                got += r.feed(frames[1])          # a duplicate of an earlier frame arrives late
        assert [p for p in got if not isinstance(p, Dropped)] == pkts
        assert r.stale_frames == 1 and r.frames_lost == 0

    def test_a_restarted_count_is_a_new_stream(self) -> None:
        mux = _mux()
        for i in range(4):
            mux.queue(0, _pkt(i, 60))
        frames = [parse_tm_frame(f, CFG) for f in _drain(mux)]
        r = VcReassembler()
        for f in frames:
            r.feed(f)
        mux2 = _mux()                             # the sender restarted: counts from 0 again
        new = [_pkt(10 + i, 60) for i in range(4)]
        for p in new:
            mux2.queue(0, p)
        got = []
        for f in _drain(mux2):
            got += [p for p in r.feed(parse_tm_frame(f, CFG)) if not isinstance(p, Dropped)]
        assert got and got == new[-len(got):] and r.stale_frames == 1

    def test_pointer_checks(self) -> None:
        r = VcReassembler()
        data = bytes(CFG.data_len)
        assert r.feed_data(0, CFG.data_len, data) == [Dropped(TmDropReason.FHP, CFG.data_len)]
        assert r.feed_data(1, FHP_NO_PACKET, data) == [Dropped(TmDropReason.UNSYNC, CFG.data_len)]
        # a packet that claims more octets than arrive before the next pointer
        p = _pkt(0, 100)
        first = p[:CFG.data_len]
        r2 = VcReassembler()
        assert r2.feed_data(0, 0, first) == []
        nxt = _pkt(1, 1)
        second = (b"\x00" * 3 + nxt + bytes(CFG.data_len))[:CFG.data_len]
        out = r2.feed_data(1, 3, second)
        assert Dropped(TmDropReason.FHP_MISMATCH, len(first) + 3) in out and nxt in out

    def test_bad_header_and_too_long(self) -> None:
        r = VcReassembler(max_packet=100)
        assert r.feed_data(0, 0, b"\xe0" + bytes(CFG.data_len - 1))[0].reason == TmDropReason.BAD_HEADER
        long = _pkt(0, 200)
        assert r.feed_data(1, 0, long[:CFG.data_len])[0].reason == TmDropReason.TOO_LONG

    @settings(max_examples=examples(300))
    @given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0x7FF), st.binary(min_size=52, max_size=52)),
                    max_size=20))
    def test_garbage_frames_never_raise(self, frames: list) -> None:
        r = VcReassembler(max_packet=500)
        for vc, fhp, data in frames:
            for item in r.feed_data(vc, fhp, data):
                assert isinstance(item, (bytes, Dropped))
            assert len(r._part) <= 500 + len(data)


class TestDeframer:
    def _stream(self, n: int = 6) -> tuple[list[bytes], bytes]:
        mux = _mux()
        for i in range(n):
            mux.queue(0, _pkt(i, 30))
        frames = _drain(mux)
        return frames, b"".join(cadu(f) for f in frames)

    def test_three_ways(self) -> None:
        frames, blob = self._stream()
        junk = b"\x13\x37" * 10
        for data in (blob, junk + blob + junk):
            d = CaduDeframer(CFG)
            whole = [f for f in d.feed(data) + d.flush() if isinstance(f, TmFrame)]
            d2 = CaduDeframer(CFG)
            one = []
            for i in range(len(data)):
                one += [f for f in d2.feed(data[i:i + 1]) if isinstance(f, TmFrame)]
            one += [f for f in d2.flush() if isinstance(f, TmFrame)]
            expect = [parse_tm_frame(f, CFG) for f in frames]
            assert whole == expect and one == expect

    def test_bad_candidate_does_not_hide_the_next_frame(self) -> None:
        frames, _ = self._stream(2)
        bad = bytearray(cadu(frames[0]))
        bad[20] ^= 0xFF
        # an ASM inside the damaged frame's data, and the good frame right after
        bad[30:34] = ASM
        d = CaduDeframer(CFG)
        out = d.feed(bytes(bad) + cadu(frames[1]))
        got = [f for f in out if isinstance(f, TmFrame)]
        assert got == [parse_tm_frame(frames[1], CFG)]
        assert d.drops[TmDropReason.FECF] >= 1

    def test_scid_and_vcid_filters(self) -> None:
        other = TmFrameConfig(scid=0x2A5, frame_len=64)
        f = pack_tm_frame(other, 0, 0, 0, 0, bytes(other.data_len), CLCW0)
        d = CaduDeframer(CFG, vcids=(0, 7))
        d.feed(cadu(f))
        assert d.drops[TmDropReason.SCID] == 1
        d.feed(cadu(pack_tm_frame(CFG, 3, 0, 0, 0, bytes(CFG.data_len), CLCW0)))
        assert d.drops[TmDropReason.VCID] == 1
        d.feed(cadu(pack_tm_frame(CFG, 0, 0, 0, 0, bytes(CFG.data_len), CLCW0))[:-5])
        assert [x.reason for x in d.flush()] == [TmDropReason.TRUNCATED]

    @settings(max_examples=examples(300))
    @given(st.lists(st.binary(max_size=300), max_size=8))
    def test_fuzz_bounded_and_never_raises(self, chunks: list[bytes]) -> None:
        d = CaduDeframer(CFG)
        for c in chunks:
            for item in d.feed(c):
                assert isinstance(item, (TmFrame, Dropped))
            assert len(d._buf) <= CFG.cadu_len + 3
        d.flush()
        assert d.bytes_in == sum(map(len, chunks))

    def test_mutated_stream_accounts_for_every_octet(self) -> None:
        frames, blob = self._stream(20)
        rng = random.Random(5)
        for _ in range(100):
            b = bytearray(blob)
            for _ in range(rng.randrange(1, 10)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            d = CaduDeframer(CFG)
            items = d.feed(bytes(b)) + d.flush()
            good = sum(1 for i in items if isinstance(i, TmFrame))
            assert good * CFG.cadu_len + d.dropped_bytes == len(b)
