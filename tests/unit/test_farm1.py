"""FARM-1 (232.1-B-2 section 6): every window edge, every state, every event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.farm1 import TABLE, DiscardReason, Farm1, FarmEvent, FarmState, check_window
from fsw.protocol.tcframe import TcFrame
from tests.conftest import examples

SCID = 0x1A5


def ad(ns: int, data: bytes = b"x") -> TcFrame:
    return TcFrame.ad(SCID, 0, ns, data)


def farm_in(state: FarmState, vr: int, w: int) -> Farm1:
    """A FARM-1 brought into ``state`` with V(R) = vr through its public events only."""
    f = Farm1(0, window=w, buffer_size=1, vr=vr)
    if state is FarmState.WAIT:
        f.receive(ad(vr))            # fills the one-frame buffer; V(R) = vr + 1
        f.receive(TcFrame.set_vr(SCID, 0, vr))
        f.receive(ad(vr))            # E2: no buffer -> Wait
    elif state is FarmState.LOCKOUT:
        f.receive(ad((vr + 128) & 0xFF))  # the middle of the lockout area, for every W
    assert f.state is state and f.vr == vr
    return f


def window_sets(vr: int, w: int) -> tuple[frozenset[int], frozenset[int]]:
    """The standard's picture of the window: positive V(R)..V(R)+PW-1, negative V(R)-NW..V(R)-1."""
    pw = nw = w // 2
    return (frozenset((vr + k) % 256 for k in range(pw)), frozenset((vr - k) % 256 for k in range(1, nw + 1)))


_SETS: dict[tuple[int, int], tuple[frozenset[int], frozenset[int]]] = {}
FRAMES = [ad(ns, bytes([ns])) for ns in range(256)]


def expected_event(vr: int, ns: int, w: int, buffer_free: bool) -> FarmEvent:
    """The classification written out independently of the implementation's offset arithmetic."""
    sets = _SETS.get((vr, w))
    if sets is None:
        sets = _SETS[(vr, w)] = window_sets(vr, w)
    positive, negative = sets
    if ns == vr:
        return FarmEvent.AD_IN_SEQUENCE if buffer_free else FarmEvent.AD_NO_BUFFER
    if ns in positive:
        return FarmEvent.AD_POSITIVE_WINDOW
    if ns in negative:
        return FarmEvent.AD_NEGATIVE_WINDOW
    return FarmEvent.AD_LOCKOUT_AREA


def check_outcome(f: Farm1, start: FarmState, vr: int, ns: int, w: int) -> None:
    """State, flags, V(R) and delivery after one AD frame, against the table of the standard."""
    ev = expected_event(vr, ns, w, buffer_free=start is not FarmState.WAIT)
    taken_before = f.buffered
    r = f.receive(FRAMES[ns])
    assert r.event is ev, (start, vr, ns, w)
    if start is FarmState.OPEN:
        if ev is FarmEvent.AD_IN_SEQUENCE:
            assert r.accepted and f.vr == (vr + 1) % 256 and f.state is FarmState.OPEN and not f.retransmit
            assert f.buffered == taken_before + 1
        elif ev is FarmEvent.AD_POSITIVE_WINDOW:
            assert not r.accepted and f.retransmit and f.state is FarmState.OPEN and f.vr == vr
        elif ev is FarmEvent.AD_NEGATIVE_WINDOW:
            assert not r.accepted and not f.retransmit and f.state is FarmState.OPEN and f.vr == vr
        else:
            assert not r.accepted and f.lockout and f.state is FarmState.LOCKOUT and f.vr == vr
    elif start is FarmState.WAIT:
        assert not r.accepted and f.vr == vr and f.wait
        assert f.state is (FarmState.LOCKOUT if ev is FarmEvent.AD_LOCKOUT_AREA else FarmState.WAIT)
    else:
        assert not r.accepted and f.vr == vr and f.lockout and f.state is FarmState.LOCKOUT
        assert r.reason == DiscardReason.LOCKOUT
    if not r.accepted:
        assert f.buffered == taken_before   # nothing queued before (or after) the checks


class TestWindowEdges:
    @pytest.mark.parametrize("w", [2, 10, 254])
    @pytest.mark.parametrize("start", list(FarmState))
    def test_every_vr_and_ns(self, w: int, start: FarmState) -> None:
        """All 65536 (V(R), N(S)) pairs in each state, for the smallest, a typical and the largest W."""
        for vr in range(256):
            base = farm_in(start, vr, w)
            snap = (base.state, base.vr, base.lockout, base.wait, base.retransmit, base.buffered)
            for ns in range(256):
                f = base
                # restore the same starting point cheaply (every event below changes at most these)
                f.state, f.vr, f.lockout, f.wait, f.retransmit, f._ad_buffered = snap
                f._out.clear()
                check_outcome(f, start, vr, ns, w)

    @pytest.mark.parametrize("start", list(FarmState))
    def test_every_even_window_every_offset(self, start: FarmState) -> None:
        """All 127 legal W and all 256 offsets, at a V(R) where the window wraps past 255."""
        vr = 250
        for w in range(2, 255, 2):
            base = farm_in(start, vr, w)
            snap = (base.state, base.vr, base.lockout, base.wait, base.retransmit, base.buffered)
            sizes = {e: 0 for e in FarmEvent}
            for ns in range(256):
                base.state, base.vr, base.lockout, base.wait, base.retransmit, base._ad_buffered = snap
                base._out.clear()
                sizes[expected_event(vr, ns, w, True)] += 1
                check_outcome(base, start, vr, ns, w)
            # the areas have the sizes of the standard: PW-1 ahead, NW behind, 256-W locked out
            assert sizes[FarmEvent.AD_POSITIVE_WINDOW] == w // 2 - 1
            assert sizes[FarmEvent.AD_NEGATIVE_WINDOW] == w // 2
            assert sizes[FarmEvent.AD_LOCKOUT_AREA] == 256 - w

    @pytest.mark.parametrize("w", [0, 1, 3, 255, 256, -2, 2.0, True])
    def test_illegal_windows(self, w: object) -> None:
        with pytest.raises(ValueError):
            check_window(w)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            Farm1(0, window=w)  # type: ignore[arg-type]

    def test_legal_windows(self) -> None:
        assert [check_window(w) for w in (2, 4, 128, 254)] == [2, 4, 128, 254]


class TestTable:
    def test_every_state_has_every_event(self) -> None:
        for state in FarmState:
            assert set(TABLE[state]) == set(FarmEvent)

    @pytest.mark.parametrize("start", list(FarmState))
    def test_bd_always_accepted_and_counted_mod_4(self, start: FarmState) -> None:
        f = farm_in(start, 7, 10)
        b0 = f.farm_b
        for i in range(9):
            r = f.receive(TcFrame.bd(SCID, 0, b"bd%d" % i))
            assert r.accepted and f.state is start
        assert f.farm_b == (b0 + 9) % 4
        assert [d.data for d in f.take() if d.kind == "BD"] == [b"bd%d" % i for i in range(9)]

    @pytest.mark.parametrize("start", list(FarmState))
    def test_unlock(self, start: FarmState) -> None:
        f = farm_in(start, 7, 10)
        f.retransmit = True
        f.receive(TcFrame.unlock(SCID, 0))
        assert not f.retransmit and not f.lockout and f.vr == 7
        if start is FarmState.WAIT:
            assert not f.wait and f.state is FarmState.OPEN
        assert f.state is FarmState.OPEN or (f.state is FarmState.WAIT and f.wait)

    def test_unlock_in_lockout_while_the_buffer_is_full_goes_to_wait(self) -> None:
        f = farm_in(FarmState.WAIT, 7, 10)
        f.receive(ad(200))
        assert f.state is FarmState.LOCKOUT and f.wait
        f.receive(TcFrame.unlock(SCID, 0))
        assert f.state is FarmState.WAIT and not f.lockout
        f.take()
        assert f.state is FarmState.OPEN and not f.wait

    @pytest.mark.parametrize("start", list(FarmState))
    def test_set_vr(self, start: FarmState) -> None:
        f = farm_in(start, 7, 10)
        f.receive(TcFrame.set_vr(SCID, 0, 99))
        if start is FarmState.LOCKOUT:
            assert f.vr == 7 and f.state is FarmState.LOCKOUT   # ignored until unlocked
        else:
            assert f.vr == 99 and f.state is FarmState.OPEN and not f.wait and not f.retransmit
        assert f.accepted["BC"] == (2 if start is FarmState.WAIT else 1)

    @pytest.mark.parametrize("start", list(FarmState))
    def test_bad_control_and_invalid(self, start: FarmState) -> None:
        f = farm_in(start, 7, 10)
        r = f.receive(TcFrame(SCID, 0, 0, b"\x01\x02", bypass=True, control=True))
        assert r.event is FarmEvent.INVALID and r.reason == DiscardReason.BAD_CONTROL and f.state is start
        r = f.invalid("fecf")
        assert r.event is FarmEvent.INVALID and f.discarded["fecf"] == 1 and f.state is start
        r = f.receive(TcFrame.ad(SCID, 5, 7, b"other vc"))
        assert not r.accepted and f.discarded["vcid"] == 1

    def test_wait_state_never_raises_and_never_queues(self) -> None:
        """The known peer bug: a frame received in WAIT raised.  Every kind of frame, here, in WAIT."""
        f = farm_in(FarmState.WAIT, 10, 10)
        before = f.buffered
        for ns in range(256):
            r = f.receive(ad(ns))
            assert not r.accepted
            if f.state is FarmState.LOCKOUT:
                f.receive(TcFrame.unlock(SCID, 0))
        assert f.buffered == before
        f.buffer_release()
        assert f.state is FarmState.OPEN

    def test_in_sequence_event_in_wait_is_discarded(self) -> None:
        f = farm_in(FarmState.WAIT, 10, 10)
        f._ad_buffered = 0  # the buffer freed without a release signal: E1 while still in Wait
        r = f.receive(ad(10))
        assert r.event is FarmEvent.AD_IN_SEQUENCE and not r.accepted and r.reason == DiscardReason.WAIT

    def test_clcw_reflects_the_flags(self) -> None:
        f = farm_in(FarmState.LOCKOUT, 33, 10)
        f.receive(TcFrame.bd(SCID, 0, b"b"))
        c = f.clcw(no_rf=True)
        assert (c.vcid, c.report_value, c.lockout, c.wait, c.farm_b, c.no_rf, c.cop_in_effect) == (
            0, 33, True, False, 1, True, 1)

    def test_snapshot_and_restore(self) -> None:
        f = farm_in(FarmState.LOCKOUT, 33, 10)
        g = Farm1(0)
        g.restore(f.snapshot())
        assert (g.vr, g.lockout, g.state) == (33, True, FarmState.LOCKOUT)
        h = Farm1(0)
        h.restore({"vr": 999, "lockout": 0})
        assert h.vr == 0 and h.state is FarmState.OPEN
        h.restore(None)


ops = st.one_of(
    st.tuples(st.just("ad"), st.integers(0, 255)),
    st.tuples(st.just("bd"), st.integers(0, 255)),
    st.tuples(st.just("unlock"), st.just(0)),
    st.tuples(st.just("setvr"), st.integers(0, 255)),
    st.tuples(st.just("badbc"), st.integers(0, 255)),
    st.tuples(st.just("take"), st.just(0)),
)


@settings(max_examples=examples(300))
@given(st.lists(ops, max_size=120), st.sampled_from([2, 6, 10, 64, 254]), st.integers(1, 4))
def test_random_event_sequences(seq: list, w: int, buf: int) -> None:
    """Any sequence of frames: nothing raises, the flags agree with the state, AD frames come out in order."""
    f = Farm1(0, window=w, buffer_size=buf)
    expect = f.vr
    for op, v in seq:
        if op == "ad":
            r = f.receive(ad(v))
            if r.accepted:
                assert v == expect
                expect = (expect + 1) & 0xFF
        elif op == "bd":
            assert f.receive(TcFrame.bd(SCID, 0, b"x")).accepted
        elif op == "unlock":
            f.receive(TcFrame.unlock(SCID, 0))
        elif op == "setvr":
            f.receive(TcFrame.set_vr(SCID, 0, v))
            expect = f.vr
        elif op == "badbc":
            f.receive(TcFrame(SCID, 0, 0, bytes([v, v]), bypass=True, control=True))
        else:
            f.take()
        assert f.lockout == (f.state is FarmState.LOCKOUT)
        if f.state is FarmState.WAIT:
            assert f.wait
        assert f.buffered <= buf
