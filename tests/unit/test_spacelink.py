"""The two ends of the space link: SpaceLinkOnboard (fsw/core) and SpaceLinkGround (ground), pure."""

from __future__ import annotations

import pytest

from fsw.core.farm1 import FarmState
from fsw.core.spacelink import SpaceLinkConfig, SpaceLinkOnboard
from fsw.core.state import MemoryStore, load_record
from fsw.core.storage import OVERWRITE, StorageManager, StoreConfig
from fsw.protocol.pus import PusTc, PusTm
from fsw.protocol.tcframe import TcFrame, TcSegmenter, cltu_encode
from fsw.protocol.tmframe import (
    VC_IDLE, VC_PLAYBACK, VC_REALTIME, CaduDeframer, TmFrame, TmFrameConfig, VcReassembler,
)
from ground.spacelink import GroundLinkConfig, PacketTracker, SpaceLinkGround, dictionary_tc_factory
from tests.unit.test_storage import reader_with_link

TM = TmFrameConfig(frame_len=128)
SCID = TM.scid


def tm(apid: int, seq: int, t: float, svc: int = 3, n: int = 30) -> bytes:
    return PusTm(apid, svc, 25, bytes(n), seq_count=seq, time=t).pack()


def onboard(state: MemoryStore | None = None, **kw) -> SpaceLinkOnboard:
    stores = [StoreConfig(1, "HK", 1 << 20, 0, OVERWRITE), StoreConfig(2, "SCI", 1 << 20, 1)]
    sm = StorageManager(stores, state, router=lambda a, s, ss: 2 if s == 130 else 1)
    cfg = SpaceLinkConfig(tm=TM, downlink_bps=kw.pop("bps", 128_000.0), **kw)
    link = SpaceLinkOnboard(cfg, sm, state)
    link.start(0.0)
    return link


def run(link: SpaceLinkOnboard, until: float) -> list[tuple[float, bytes]]:
    """Drive the frame clock like a runner would; returns (time, CADU)."""
    out = []
    t = link.next_deadline()
    while t <= until:
        link.run_due(t)
        out += [(t, c) for c in link.take_output()]
        t = max(link.next_deadline(), t + 1e-9)
    return out


def frames_of(cadus: list[bytes]) -> list[TmFrame]:
    d = CaduDeframer(TM)
    return [f for c in cadus for f in d.feed(c) if isinstance(f, TmFrame)]


class TestOnboardUplink:
    def test_tcs_come_out_in_order(self) -> None:
        link = onboard()
        tcs = [PusTc(0x10, 17, 1, bytes(i), seq_count=i).pack() for i in range(3)]
        data = b"".join(cltu_encode(TcFrame.ad(SCID, 0, i, b"\xc0" + t).pack()) for i, t in enumerate(tcs))
        link.receive(data, 1.0)
        assert link.take_tcs() == tcs and link.farm.vr == 3

    def test_blocked_and_segmented(self) -> None:
        link = onboard()
        small = [PusTc(0x10, 17, 1, seq_count=i).pack() for i in range(4)]
        big = PusTc(0x10, 8, 1, bytes(range(256)) * 6, seq_count=9).pack()
        frames = [TcFrame.ad(SCID, 0, 0, b"\xc0" + b"".join(small))]
        frames += [TcFrame.ad(SCID, 0, 1 + i, s) for i, s in enumerate(TcSegmenter(512).split(big))]
        link.receive(b"".join(cltu_encode(f.pack()) for f in frames), 1.0)
        assert link.take_tcs() == small + [big]

    def test_bad_frames_are_counted_by_reason(self) -> None:
        link = onboard()
        good = TcFrame.ad(SCID, 0, 0, b"\xc0" + PusTc(0x10, 17, 1).pack()).pack()
        bad_fecf = bytearray(good)
        bad_fecf[-1] ^= 1
        link.receive(cltu_encode(bytes(bad_fecf)), 0.0)
        link.receive(cltu_encode(TcFrame.ad(SCID + 1, 0, 0, b"x").pack()), 0.0)
        link.receive(cltu_encode(TcFrame.ad(SCID, 9, 0, b"x").pack()), 0.0)
        link.receive(b"\x00\x01junk", 0.0)
        assert dict(link.frame_errors) == {"fecf": 1, "scid": 1, "vcid": 1}
        hk = link.hk_link(1.0)
        assert hk["TC_DISCARD_INVALID"] == 3 and hk["TC_DISCARD_FECF"] == 1 and hk["CLTU_DROPPED_BYTES"] > 0
        assert [e[0] for e in link.take_events()] == ["TC_FRAMES_DISCARDED"]
        link.hk_link(2.0)
        assert link.take_events() == []           # only when the counts grew

    def test_lockout_events_and_durable_farm_state(self) -> None:
        state = MemoryStore()
        link = onboard(state)
        link.receive(cltu_encode(TcFrame.ad(SCID, 0, 100, b"x").pack()), 0.0)
        assert link.farm.state is FarmState.LOCKOUT
        assert load_record(state, SpaceLinkOnboard.FARM_RECORD) == {"vr": 0, "lockout": True, "farm_b": 0}
        again = onboard(state)                     # a restart keeps the lockout and V(R)
        assert again.farm.state is FarmState.LOCKOUT
        link.receive(cltu_encode(TcFrame.unlock(SCID, 0).pack()), 1.0)
        link.receive(cltu_encode(TcFrame.set_vr(SCID, 0, 9).pack()), 1.0)
        assert [e[0] for e in link.take_events()] == ["COP_LOCKOUT", "COP_UNLOCKED", "COP_VR_SET"]
        assert onboard(state).farm.vr == 9


class TestOnboardDownlink:
    def test_frames_are_paced_at_the_downlink_rate(self) -> None:
        link = onboard(bps=64_000.0, burst_s=0.0)
        for i in range(40):
            link.send_packet(tm(0x10, i, 0.0), 0.0)
        out = run(link, 10.0)
        data = [t for t, c in out if frames_of([c])[0].vcid == VC_REALTIME]
        ft = TM.cadu_len * 8 / 64_000.0
        assert len(data) >= 10
        assert all(b - a == pytest.approx(ft) for a, b in zip(data, data[1:]))

    def test_idle_frames_carry_the_clcw_when_there_is_nothing_to_send(self) -> None:
        link = onboard(clcw_interval_s=2.0)
        out = run(link, 10.0)
        fs = frames_of([c for _, c in out])
        assert all(f.vcid == VC_IDLE for f in fs) and 5 <= len(fs) <= 7
        assert fs[0].clcw.report_value == 0
        # a received TC changes the CLCW: a frame follows promptly
        link.receive(cltu_encode(TcFrame.ad(SCID, 0, 0, b"\xc0" + PusTc(0x10, 17, 1).pack()).pack()), 10.5)
        link.take_tcs()
        after = run(link, 10.6)
        assert after and frames_of([after[0][1]])[0].clcw.report_value == 1

    def test_realtime_first_then_playback_and_stored_copies(self) -> None:
        link = onboard()
        hk = [tm(0x10, i, float(i)) for i in range(3)]
        sci = [tm(0x23, i, float(i), svc=130) for i in range(3)]
        for s in sci:
            link.send_packet(s, 0.0, realtime=False)
        for h in hk:
            link.send_packet(h, 0.0)
        fs = frames_of([c for _, c in run(link, 1.0)])
        vcs = [f.vcid for f in fs if f.vcid != VC_IDLE]
        assert vcs[0] == VC_REALTIME and VC_PLAYBACK in vcs
        r = {v: VcReassembler() for v in (0, 1)}
        got = {0: [], 1: []}
        for f in fs:
            if f.vcid in r:
                got[f.vcid] += r[f.vcid].feed(f)
        assert got[0] == hk and got[1] == sci      # HK went live and was stored as sent: no replay

    def test_rf_loss_sends_to_the_stores_and_back(self) -> None:
        link = onboard()
        link.set_rf(False, 0.0)
        for i in range(3):
            link.send_packet(tm(0x10, i, float(i)), 1.0)
        assert run(link, 5.0) == []
        assert link.storage.store(1).queued == 3
        link.set_rf(True, 6.0)
        assert [e[0] for e in link.take_events()] == ["RF_LOST", "RF_ACQUIRED"]
        fs = frames_of([c for _, c in run(link, 7.0)])
        assert any(f.vcid == VC_PLAYBACK for f in fs) and not fs[0].clcw.no_rf

    def test_rf_loss_requeues_the_realtime_queue(self) -> None:
        link = onboard(bps=1000.0)
        for i in range(5):
            link.send_packet(tm(0x10, i, float(i)), 0.0)
        link.set_rf(False, 0.01)
        s = link.storage.store(1)
        assert s.queued == 5 and link.hk_link(0.0)["TM_RT_QUEUE_BYTES"] == 0

    def test_realtime_queue_overflow_goes_to_playback(self) -> None:
        link = onboard(rt_queue_bytes=200)
        for i in range(10):
            link.send_packet(tm(0x10, i, float(i)), 0.0)
        assert link.counters["rt_overflow"] > 0
        assert link.storage.store(1).queued == link.counters["rt_overflow"]

    def test_commands_for_rate_playback_window(self) -> None:
        link = onboard()
        link.set_downlink_rate(2000.0)
        assert link.frame_time == pytest.approx(TM.cadu_len * 8 / 2000.0)
        with pytest.raises(ValueError):
            link.set_downlink_rate(0)
        link.set_playback(False)
        link.send_packet(tm(0x23, 0, 0.0, svc=130), 0.0, realtime=False)
        assert all(frames_of([c])[0].vcid == VC_IDLE for _, c in run(link, 3.0))
        link.set_farm_window(64)
        assert link.farm.window == 64 and link.farm.pw == 32
        with pytest.raises(ValueError):
            link.set_farm_window(63)

    def test_hk_matches_the_dictionary(self) -> None:
        from fsw.dictionary.loader import parse_mission

        d = parse_mission(reader_with_link())
        link = onboard()
        pkt = d.lander.packet("LINK_COP_HK")
        values = link.hk_link(0.0)
        assert set(values) == {p.name for p in pkt.params}
        d.encode_tm(pkt, values)
        link.set_rf(False, 0.0)
        for name, args in link.take_events():
            d.encode_event(d.event("LANDER", name), args)

    def test_config_checks(self) -> None:
        with pytest.raises(ValueError):
            SpaceLinkConfig(downlink_bps=0)
        with pytest.raises(ValueError):
            SpaceLinkConfig(scid=1, tm=TmFrameConfig(scid=2))
        with pytest.raises(ValueError):
            GroundLinkConfig(scid=1, tm=TmFrameConfig(scid=2))


class TestGround:
    def test_telecommands_are_blocked_while_the_window_is_full(self) -> None:
        g = SpaceLinkGround(GroundLinkConfig(tm=TM, fop_window=1))
        link = onboard()
        # the ground hears a CLCW first
        g.receive(b"".join(c for _, c in run(link, 0.1)), 0.1)
        tcs = [PusTc(0x10, 17, 1, seq_count=i).pack() for i in range(5)]
        tickets = [g.send_tc(t, 0.2) for t in tcs]
        out = g.take_output()
        assert len(out) == 1                     # K = 1: one frame out, four TCs wait
        link.receive(b"".join(out), 1.0)
        assert link.take_tcs() == tcs[:1]
        g.receive(b"".join(c for _, c in run(link, 1.2)), 1.2)
        out = g.take_output()
        assert len(out) == 1                     # the four waiting ones share one frame
        link.receive(b"".join(out), 2.0)
        assert link.take_tcs() == tcs[1:]
        g.receive(b"".join(c for _, c in run(link, 2.2)), 2.2)
        delivered = [e.fdu_id for e in g.take_events() if e.kind == "delivered"]
        assert delivered == tickets and g.uplink_pending == 0

    def test_bypass(self) -> None:
        g = SpaceLinkGround(GroundLinkConfig(tm=TM))
        link = onboard()
        g.send_bypass(PusTc(0x10, 17, 1).pack(), 0.0)
        link.receive(b"".join(g.take_output()), 1.0)
        assert link.take_tcs() == [PusTc(0x10, 17, 1).pack()]
        with pytest.raises(ValueError):
            g.send_bypass(PusTc(0x10, 17, 1, bytes(2000)).pack(), 0.0)
        with pytest.raises(ValueError):
            g.send_tc(b"short", 0.0)

    def test_duplicates_removed_and_stale_clcw_ignored(self) -> None:
        g = SpaceLinkGround(GroundLinkConfig(tm=TM), make_tc=lambda n, a: PusTc(0x10, 15, 128).pack())
        link = onboard()
        p = tm(0x10, 0, 1.0)
        link.send_packet(p, 0.0)
        cadus = [c for _, c in run(link, 0.5)]
        g.receive(b"".join(cadus), 1.0)
        g.receive(b"".join(cadus), 1.1)          # the same frames again (a duplicating relay)
        assert [x for _, x in g.take_packets()] == [p]
        # the repeated frames are behind their channel's count: dropped as stale before reassembly
        assert g.stats()["vc0_stale_frames"] >= 1
        assert g.counters["clcw_stale"] == len(cadus)
        # a packet repeated in a new frame (played back) is removed by the tracker
        link.storage.requeue(1, 0)
        g.receive(b"".join(c for _, c in run(link, 1.0)), 2.0)
        assert g.take_packets() == [] and g.tracker.counters["duplicates"] == 1

    def test_acks_and_requests_go_up_as_telecommands(self) -> None:
        d_made = []
        g = SpaceLinkGround(GroundLinkConfig(tm=TM, ack_interval_s=5.0, gap_wait_s=0.0),
                            make_tc=lambda n, a: d_made.append((n, a)) or PusTc(0x10, 15, 128).pack())
        link = onboard()
        for i in (0, 1, 2, 5, 6):
            link.send_packet(tm(0x10, i, float(i)), 0.0)
        g.receive(b"".join(c for _, c in run(link, 1.0)), 1.0)
        g.run_due(5.0)
        kinds = [(n, a["first_seq"], a["last_seq"]) for n, a in d_made]
        assert ("STORE_ACK_RANGE", 0, 2) in kinds and ("STORE_ACK_RANGE", 5, 6) in kinds
        assert ("STORE_RETRANSMIT_RANGE", 3, 4) in kinds
        gap = next(a for n, a in d_made if n == "STORE_RETRANSMIT_RANGE")
        assert (gap["t_from"], gap["t_to"]) == (2.0, 5.0)
        assert g.stats()["tracker_packets"] == 5

    def test_dictionary_tc_factory(self) -> None:
        from fsw.dictionary.loader import parse_mission
        from fsw.protocol.pus import parse_packet

        d = parse_mission(reader_with_link())
        make = dictionary_tc_factory(d)
        raw = make("STORE_ACK_RANGE", {"store": 0, "apid": 16, "first_seq": 1, "last_seq": 2, "t_from": 1.5,
                                       "t_to": 2.5})
        tc = parse_packet(raw)
        cmd = d.command("STORE_ACK_RANGE")
        assert (tc.service, tc.subservice, tc.ack_flags) == (15, 128, 0)
        assert d.args_codec(cmd).decode(tc.app_data)["t_to"] == 2.5


class TestTracker:
    def test_gap_requests_wait_retry_and_give_up(self) -> None:
        t = PacketTracker(gap_wait_s=10.0, request_retry_s=20.0, max_requests=2)
        for seq in (0, 3):
            t.add(tm(0x10, seq, float(seq)), 0.0)
        assert t.gaps(0.0) == []                  # noticed now: too fresh to ask
        assert t.gaps(5.0) == []
        [r] = t.gaps(10.0)
        assert (r.first, r.last, r.t_from, r.t_to) == (1, 2, 0.0, 3.0)
        assert t.gaps(20.0) == []                 # asked recently
        assert len(t.gaps(30.0)) == 1             # second and last request
        assert t.gaps(100.0) == [] and t.counters["gaps_given_up"] == 1
        t.add(tm(0x10, 1, 1.0), 101.0)
        t.add(tm(0x10, 2, 2.0), 101.0)
        assert t.gaps(200.0) == [] and t.open_gaps() == 0

    def test_wrap_and_large_gaps(self) -> None:
        t = PacketTracker(gap_wait_s=0.0)
        t.add(tm(0x10, 16383, 1.0), 0.0)
        t.add(tm(0x10, 0, 2.0), 0.0)
        assert t.gaps(1.0) == []
        t.add(tm(0x10, 10000, 900.0), 0.0)
        rs = t.gaps(1.0)
        assert [(r.first, r.last) for r in rs] == [(1, 8192), (8193, 9999)]
        acks = t.acks(1.0)
        assert [(a.first, a.last, a.t_from, a.t_to) for a in acks] == [(16383, 0, 1.0, 2.0), (10000, 10000, 900.0, 900.0)]
        assert t.acks(2.0) == []

    def test_reack_after_a_while(self) -> None:
        t = PacketTracker(reack_s=60.0)
        p = tm(0x10, 0, 1.0)
        t.add(p, 0.0)
        assert len(t.acks(0.0)) == 1
        assert not t.add(p, 10.0) and t.acks(10.0) == []      # its acknowledgement is on the way
        assert not t.add(p, 100.0) and len(t.acks(100.0)) == 1
        assert t.counters["reacks"] == 1

    def test_a_counter_restart_is_not_a_gap(self) -> None:
        t = PacketTracker(gap_wait_s=0.0, max_rate=100.0)
        t.add(tm(0x10, 9000, 50.0), 0.0)
        t.add(tm(0x10, 0, 51.0), 0.0)             # 7383 packets in one second: the source restarted
        assert t.gaps(1.0) == [] and t.counters["counter_resets"] == 1 and t.open_gaps() == 0

    def test_a_late_packet_behind_the_settled_part_makes_no_false_gap(self) -> None:
        t = PacketTracker(gap_wait_s=0.0)
        # two sources on one APID at a restart: the old count (5605) and the new one (0, 1, ...)
        for seq, time in ((0, 10.0), (1, 10.0), (5605, 10.0), (3, 11.0), (4, 11.0)):
            t.add(tm(0x10, seq, time), 0.0)
            t.acks(0.0)
            assert t.gaps(0.0) == []
        assert t.counters["counter_resets"] == 2
        t.add(tm(0x10, 2, 10.0), 1.0)              # arrives late, behind what was settled
        assert t.gaps(1.0) == [] and t.counters["late_packets"] == 1
        assert [(a.first, a.last) for a in t.acks(1.0)] == [(2, 2)]

    def test_no_request_apids(self) -> None:
        t = PacketTracker(gap_wait_s=0.0, no_request_apids=[0x10])
        for seq in (0, 5):
            t.add(tm(0x10, seq, float(seq)), 0.0)
        assert t.gaps(10.0) == []


class TestGarbage:
    """Bytes from a link never raise, on either end (reliability.md item 1)."""

    def test_onboard_and_ground_take_any_bytes(self) -> None:
        import random

        from fsw.protocol.tcframe import CLTU_START

        rng = random.Random(99)
        link = onboard()
        g = SpaceLinkGround(GroundLinkConfig(tm=TM), make_tc=lambda n, a: PusTc(0x10, 15, 128).pack())
        good_up = cltu_encode(TcFrame.ad(SCID, 0, 0, b"\xc0" + PusTc(0x10, 17, 1).pack()).pack())
        link.send_packet(tm(0x10, 0, 0.0), 0.0)
        good_down = b"".join(c for _, c in run(link, 0.5))
        for i in range(300):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            up = bytearray(good_up + junk + CLTU_START + junk[:20])
            down = bytearray(junk + good_down)
            for buf in (up, down):
                for _ in range(rng.randrange(4)):
                    buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
            link.receive(bytes(up), float(i))
            link.take_tcs()
            link.line_idle(float(i))
            g.receive(bytes(down), float(i))
            g.take_packets()
            g.line_idle(float(i))
        assert link.cltu.dropped_bytes > 0 and sum(g.drops.values()) > 0
        assert len(link.cltu._buf) < 16 and len(g.deframer._buf) <= TM.cadu_len + 3
