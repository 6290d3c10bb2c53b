"""The ground end of the space link: the packet tracker's bookkeeping and request policy, and the caches of
SpaceLinkGround (its next deadline, the CLCW of repeated OCFs), which must never change what it does."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fsw.protocol.pus import PusTc, PusTm
from ground.spacelink import GroundLinkConfig, PacketTracker, SpaceLinkGround
from tests.conftest import examples
from tests.unit.test_spacelink import TM, onboard, run


def tm(apid: int, seq: int, t: float) -> bytes:
    return PusTm(apid, 3, 25, bytes(8), seq_count=seq & 0x3FFF, time=t).pack()


def ranges(requests) -> list[tuple[int, int]]:
    return [(r.first, r.last) for r in requests]


# -- the gap bookkeeping ------------------------------------------------------------------------------------

def scanned_gaps(order: list[tuple[int, int]]) -> set:
    """Every pair of neighbours with counts missing between them, found by walking the whole order."""
    return {(p, q) for p, q in zip(order, order[1:]) if (q[1] - p[1] - 1) & 0x3FFF}


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["new", "lost", "late", "again", "jump", "check"]),
                          st.integers(0, 2**16)), min_size=1, max_size=300),
       st.sampled_from([0.0, 30.0]), st.sampled_from([1, 3]))
def test_the_gaps_kept_up_to_date_are_the_gaps_of_the_order(ops, wait, max_requests):
    """``add`` keeps each APID's gaps as packets arrive (appended, inserted, late, repeated) and ``gaps``
    prunes them: they are always what a walk of the whole order finds."""
    t = PacketTracker(gap_wait_s=wait, request_retry_s=wait, max_requests=max_requests, ack_hold_s=20.0)
    rng = random.Random(len(ops))
    seq, now, sent = 0, 10.0, []
    for op, x in ops:
        now += 1.0
        if op in ("new", "lost"):
            seq = (seq + 1) & 0x3FFF
            p = tm(0x10, seq, now - x % 3)
            if op == "new":
                t.add(p, now)
            sent.append(p)
        elif op in ("late", "again") and sent:
            t.add(sent[x % len(sent)], now)
        elif op == "jump":
            seq = x & 0x3FFF       # a restart, or a jump too big for the source's rate
        else:
            t.gaps(now)
            if rng.random() < 0.5:
                t.acks(now)
        for a in t.apids.values():
            assert a.live == scanned_gaps(a.order)
            assert a.order == sorted(set(a.order))


def test_a_copy_the_dedup_memory_forgot_is_still_a_duplicate() -> None:
    t = PacketTracker(dedup_memory=2, gap_wait_s=0.0)
    for seq in (0, 1, 3, 4):
        assert t.add(tm(0x10, seq, float(seq)), 0.0)
    assert ranges(t.acks(1.0)) == [(0, 1), (3, 4)]
    # seq 1 is forgotten by the memory of 2, but still listed in the order (behind the open gap at 2)
    assert not t.add(tm(0x10, 1, 1.0), 2.0)
    assert t.counters["duplicates"] == 1 and t.counters["packets"] == 4
    assert ranges(t.acks(3.0)) == [(1, 1)]      # the lander still has it: acknowledged again


# -- acknowledgements batched per APID ----------------------------------------------------------------------

def test_an_apid_is_acknowledged_at_once_then_at_most_every_batch() -> None:
    t = PacketTracker(ack_batch_s=120.0)
    t.add(tm(0x10, 0, 0.0), 0.0)
    assert ranges(t.acks(30.0)) == [(0, 0)]              # the first packets go at the next check
    for i in range(1, 9):
        t.add(tm(0x10, i, 30.0 + 10 * i), 30.0 + 10 * i)
    assert t.acks(60.0) == [] and t.acks(120.0) == []
    assert ranges(t.acks(150.0)) == [(1, 8)]            # one range instead of three
    t.add(tm(0x11, 0, 151.0), 151.0)
    assert ranges(t.acks(180.0)) == [(0, 0)]            # each APID has its own batch


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.floats(0.0, 40.0), min_size=1, max_size=60), st.lists(st.booleans(), min_size=60, max_size=60),
       st.sampled_from([0.0, 60.0, 120.0]))
def test_every_packet_is_acknowledged_within_the_batch_or_the_hold(gaps_s, lost, batch):
    """A packet is acknowledged at most ``ack_batch_s`` plus one interval after it arrived, or ``ack_hold_s``
    plus two intervals when it waited behind a young gap: well inside the lander's 300 s."""
    interval, hold = 30.0, 120.0
    t = PacketTracker(gap_wait_s=1e9, ack_hold_s=hold, ack_batch_s=batch)
    arrived: dict[int, float] = {}
    acked: dict[int, float] = {}
    now, tick, seq = 0.0, interval, 0

    def rounds_until(limit: float) -> None:
        nonlocal tick
        while tick <= limit:
            t.gaps(tick)
            for r in t.acks(tick):
                for s in range(r.first, r.last + 1):
                    acked.setdefault(s, tick)
            tick += interval

    for dt, lose in zip(gaps_s, lost):
        now += dt
        rounds_until(now)
        if not lose:
            t.add(tm(0x10, seq, now), now)
            arrived[seq] = now
        seq += 1
    rounds_until(now + max(batch + interval, hold + 2 * interval) + interval)
    assert set(acked) == set(arrived)
    for s, at in arrived.items():
        assert acked[s] - at <= max(batch + interval, hold + 2 * interval)


def test_packets_a_hold_releases_do_not_wait_for_the_batch() -> None:
    t = PacketTracker(gap_wait_s=1e9, ack_hold_s=60.0, ack_batch_s=120.0)
    for seq in (0, 1, 3, 4):                 # 2 is missing
        t.add(tm(0x10, seq, float(seq)), 1.0)
    t.gaps(10.0)
    assert ranges(t.acks(10.0)) == [(0, 1)]  # 3 and 4 wait behind the young gap
    t.gaps(40.0)
    assert t.acks(40.0) == []
    t.gaps(70.0)
    assert ranges(t.acks(70.0)) == [(3, 4)]  # the hold is over: at once, not at 10 + 120


def test_the_config_batches_as_long_as_it_holds_unless_told() -> None:
    assert SpaceLinkGround(GroundLinkConfig(tm=TM, ack_hold_s=120.0)).tracker.ack_batch_s == 120.0
    assert SpaceLinkGround(GroundLinkConfig(tm=TM)).tracker.ack_batch_s == 0.0
    assert SpaceLinkGround(GroundLinkConfig(tm=TM, ack_hold_s=120.0, ack_batch_s=0.0)).tracker.ack_batch_s == 0.0


# -- nearby gaps asked for in one range ---------------------------------------------------------------------

def tracker_with(seqs, merge: int = 2, **kw) -> PacketTracker:
    t = PacketTracker(gap_wait_s=0.0, request_retry_s=30.0, merge_packets=merge, **kw)
    for s in seqs:
        t.add(tm(0x10, s, float(s)), 0.0)
    return t


def test_gaps_a_packet_or_two_apart_are_asked_for_in_one_range() -> None:
    t = tracker_with([0, 2, 3, 5, 7, 8, 10])
    [r] = t.gaps(1.0)
    assert (r.first, r.last, r.t_from, r.t_to) == (1, 9, 0.0, 10.0)    # 2, 3, 5, 7 and 8 are asked for again
    assert t.counters["gaps_merged"] == 3 and t.counters["retransmit_ranges"] == 1
    t = tracker_with([0, 2, 3, 4, 6])                                     # three packets between
    assert ranges(t.gaps(1.0)) == [(1, 1), (5, 5)]
    assert ranges(tracker_with([0, 2, 4], merge=0).gaps(1.0)) == [(1, 1), (3, 3)]


def test_packets_acknowledged_already_are_not_asked_for_again() -> None:
    t = tracker_with([0, 2])
    t.acks(0.5)                                # 2 is acknowledged: the lander may have deleted it
    t.add(tm(0x10, 4, 4.0), 0.6)
    assert ranges(t.gaps(1.0)) == [(1, 1), (3, 3)]


def test_repeated_requests_get_a_range_each() -> None:
    """A gap asked for again may be packets the lander never kept: its own range lets the lander's "not held"
    answer settle it."""
    t = tracker_with([0, 2, 4])
    assert ranges(t.gaps(1.0)) == [(1, 3)]
    assert ranges(t.gaps(31.0)) == [(1, 1), (3, 3)]
    assert t.not_held(0x10, 3, 0) and ranges(t.gaps(61.0)) == [(1, 1)]


def test_no_range_across_another_gap_or_over_8192_counts() -> None:
    t = tracker_with([0, 2, 4, 6], max_requests=1)
    t.gaps(1.0)                                   # asked once, given up (max_requests=1)
    t.add(tm(0x10, 8, 8.0), 2.0)
    t.add(tm(0x10, 10, 10.0), 2.0)
    assert ranges(t.gaps(3.0)) == [(7, 9)]        # the gaps after 6 only
    assert ranges(tracker_with([0, 8000, 8190], max_rate=1e6).gaps(1.0)) == [(1, 8189)]
    assert ranges(tracker_with([0, 8100, 8300], max_rate=1e6).gaps(1.0)) == [(1, 8099), (8101, 8299)]


# -- SpaceLinkGround's caches -------------------------------------------------------------------------------

class GroundLinkMachine(RuleBasedStateMachine):
    """A ground link driven at random against a lander over a lossy link.  Its cached deadline must always be
    the one computed afresh, and a run_due called early must change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.g = SpaceLinkGround(GroundLinkConfig(tm=TM, ack_interval_s=5.0, gap_wait_s=0.0, fop_window=3,
                                                  t1_s=2.0, settle_s=1.0),
                                 make_tc=lambda n, a: PusTc(0x10, 15, 128).pack())
        self.link = onboard()
        self.now = 0.0
        self.seq = 0
        self.rng = random.Random(7)

    def fresh_deadline(self) -> float:
        return min(self.g.cop.next_deadline(), self.g._next_ack)

    @rule(dt=st.floats(0.01, 4.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        for _t, cadu in run(self.link, self.now):
            if self.rng.random() > 0.1:           # some frames are lost on the way down
                self.g.receive(cadu, self.now)
        if self.g.next_deadline() <= self.now:
            self.g.run_due(self.now)
        up = self.g.take_output()
        if up and self.rng.random() > 0.2:
            self.link.receive(b"".join(up), self.now)
        self.link.take_tcs()

    @rule(n=st.integers(1, 4))
    def telemetry(self, n: int) -> None:
        for _ in range(n):
            self.link.send_packet(tm(0x10, self.seq, self.now), self.now)
            self.seq += 1

    @rule(n=st.integers(1, 5))
    def telecommands(self, n: int) -> None:
        for i in range(n):
            self.g.send_tc(PusTc(0x10, 17, 1, seq_count=i).pack(), self.now)

    @rule()
    def bypass(self) -> None:
        self.g.send_bypass(PusTc(0x10, 17, 1).pack(), self.now)

    @precondition(lambda self: self.g.next_deadline() > self.now)
    @rule()
    def early_run_due(self) -> None:
        out = self.g.take_output()
        self.g.take_events()
        before = (self.g.next_deadline(), self.g.uplink_pending, self.g.stats())
        self.g.run_due(self.now)
        assert (self.g.next_deadline(), self.g.uplink_pending, self.g.stats()) == before
        assert self.g.take_output() == [] and self.g.take_events() == []
        self.link.receive(b"".join(out), self.now)

    @invariant()
    def deadline_is_fresh(self) -> None:
        assert self.g.next_deadline() == self.fresh_deadline()


GroundLinkMachine.TestCase.settings = settings(max_examples=examples(40), stateful_step_count=40, deadline=None)
TestGroundLinkCaches = GroundLinkMachine.TestCase


def test_a_repeated_ocf_is_parsed_once_and_a_new_one_again() -> None:
    g = SpaceLinkGround(GroundLinkConfig(tm=TM))
    link = onboard()
    g.receive(b"".join(c for _, c in run(link, 0.5)), 0.5)
    first = g._ocf_clcw
    assert first is not None and g.cop.last_clcw is first
    g.send_tc(PusTc(0x10, 17, 1).pack(), 0.6)
    link.receive(b"".join(g.take_output()), 0.7)
    g.receive(b"".join(c for _, c in run(link, 1.5)), 1.5)
    assert g._ocf_clcw.report_value == first.report_value + 1 and g.cop.last_clcw is g._ocf_clcw
    assert g.uplink_pending == 0
