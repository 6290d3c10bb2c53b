"""FOP-1 (232.1-B-2 section 5) and the COP-1 management layer of the ground."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.farm1 import Farm1
from fsw.protocol.tcframe import FrameType, TcFrame, parse_control_command
from fsw.protocol.tmframe import Clcw
from ground.fop1 import (
    CLCW_TABLE, E1, E2, E3, E4, E5, E6, E7, E8, E9, E10, E11, E12, E13, E14, E101, E102, E103, Alert,
    CopUplink, Fop1, FopState,
)
from tests.conftest import examples

SCID = 0x1A5
S1, S2, S3, S4, S5, S6 = (FopState(i) for i in range(1, 7))


def clcw(nr: int, lockout: bool = False, wait: bool = False, retransmit: bool = False, vcid: int = 0) -> Clcw:
    return Clcw(vcid, nr, lockout=lockout, wait=wait, retransmit=retransmit)


def frames(fop: Fop1) -> list[TcFrame]:
    return [TcFrame.unpack(f) for f in fop.take_frames()]


def active(n_sent: int = 0, **kw) -> Fop1:
    """FOP-1 in S1 with V(S) = NN(R) = 10 and ``n_sent`` AD frames outstanding."""
    fop = Fop1(SCID, 0, **kw)
    fop.set_vs(10)
    assert fop.init_ad_without_clcw(0.0)
    for i in range(n_sent):
        fop.request_ad(b"fdu%d" % i, 0.0)
    fop.take_frames()
    fop.take_notices()
    return fop


class TestClassification:
    """The CLCW events, with V(S) = 13 and NN(R) = 10 (three frames outstanding)."""

    @pytest.mark.parametrize("c, tx_limit, count, event", [
        (clcw(13), 5, 1, E2),                                   # all acknowledged, new acknowledgements
        (clcw(13, wait=True), 5, 1, E3),
        (clcw(13, retransmit=True), 5, 1, E4),
        (clcw(10), 5, 1, E5),
        (clcw(11), 5, 1, E6),
        (clcw(11, wait=True), 5, 1, E7),
        (clcw(11, retransmit=True), 1, 1, E101),
        (clcw(10, retransmit=True), 1, 1, E102),
        (clcw(11, retransmit=True), 5, 1, E8),
        (clcw(11, retransmit=True, wait=True), 5, 1, E9),
        (clcw(10, retransmit=True), 5, 1, E10),
        (clcw(10, retransmit=True, wait=True), 5, 1, E11),
        (clcw(10, retransmit=True), 5, 5, E12),
        (clcw(10, retransmit=True, wait=True), 5, 5, E103),
        (clcw(9), 5, 1, E13),                                   # below NN(R)
        (clcw(14), 5, 1, E13),                                  # above V(S)
        (clcw(11, lockout=True), 5, 1, E14),
    ])
    def test_events(self, c: Clcw, tx_limit: int, count: int, event: int) -> None:
        fop = active(3, tx_limit=tx_limit)
        fop.transmission_count = count
        assert fop.classify_clcw(c) == event

    def test_e1(self) -> None:
        assert active().classify_clcw(clcw(10)) == E1

    def test_wrap_around(self) -> None:
        fop = Fop1(SCID, 0, window=10)
        fop.set_vs(250)
        fop.init_ad_without_clcw(0.0)
        for i in range(10):
            fop.request_ad(b"x", 0.0)
        assert fop.vs == 4 and [f.seq for f in frames(fop)] == [250, 251, 252, 253, 254, 255, 0, 1, 2, 3]
        assert fop.classify_clcw(clcw(2)) == E6 and fop.classify_clcw(clcw(249)) == E13
        fop.on_clcw(clcw(2), 1.0)
        assert fop.nnr == 2 and fop.outstanding == 2

    def test_table_is_complete(self) -> None:
        clcw_events = {E1, E2, E3, E4, E5, E6, E7, E8, E9, E10, E11, E12, E13, E14, E101, E102, E103, 16, 104, 17, 18}
        for state in FopState:
            assert set(CLCW_TABLE[state]) == clcw_events


class TestDirectives:
    def test_initial_state_rejects_data(self) -> None:
        fop = Fop1(SCID, 0)
        assert fop.state is S6
        assert fop.request_ad(b"x", 0.0) is None
        assert [n.kind for n in fop.take_notices()] == ["reject"]
        assert fop.take_frames() == []

    def test_init_without_clcw(self) -> None:
        fop = Fop1(SCID, 0)
        assert fop.init_ad_without_clcw(0.0) and fop.state is S1
        assert not fop.init_ad_without_clcw(0.0)      # only from S6
        assert not fop.set_vs(3)

    def test_init_with_clcw(self) -> None:
        fop = Fop1(SCID, 0, t1=5.0)
        fop.set_vs(7)
        assert fop.init_ad_with_clcw(0.0) and fop.state is S4
        assert fop.next_deadline() == 5.0
        fop.on_clcw(clcw(3), 1.0)                       # N(R) outside NN(R)..V(S): alert
        assert fop.state is S6 and fop.alerts[Alert.NN_R] == 1
        fop.init_ad_with_clcw(2.0)
        fop.on_clcw(clcw(7), 2.5)
        assert fop.state is S1 and fop.next_deadline() == math.inf
        assert "init_done" in [n.kind for n in fop.take_notices()]

    def test_init_with_clcw_times_out(self) -> None:
        fop = Fop1(SCID, 0, t1=5.0)
        fop.init_ad_with_clcw(0.0)
        fop.run_due(4.9)
        assert fop.state is S4
        fop.run_due(5.0)
        assert fop.state is S6 and fop.alerts[Alert.T1] == 1

    def test_init_with_unlock(self) -> None:
        fop = Fop1(SCID, 0, t1=5.0, tx_limit=2)
        fop.set_vs(7)
        fop.init_ad_with_unlock(0.0)
        [bc] = frames(fop)
        assert bc.kind == FrameType.BC and parse_control_command(bc.data) == ("unlock", None)
        assert fop.state is S5
        fop.on_clcw(clcw(7, lockout=True), 1.0)        # still locked: ignored while initialising
        assert fop.state is S5
        fop.run_due(5.0)                                # BC frame sent again
        assert [f.kind for f in frames(fop)] == [FrameType.BC] and fop.state is S5
        fop.on_clcw(clcw(7), 6.0)
        assert fop.state is S1 and fop.next_deadline() == math.inf

    def test_init_with_unlock_gives_up(self) -> None:
        fop = Fop1(SCID, 0, t1=5.0, tx_limit=2)
        fop.init_ad_with_unlock(0.0)
        fop.run_due(5.0)
        fop.run_due(10.0)
        assert fop.state is S6 and fop.alerts[Alert.T1] == 1

    def test_init_with_set_vr(self) -> None:
        fop = Fop1(SCID, 0)
        fop.init_ad_with_set_vr(200, 0.0)
        [bc] = frames(fop)
        assert parse_control_command(bc.data) == ("set_vr", 200)
        assert (fop.vs, fop.nnr, fop.state) == (200, 200, S5)
        fop.on_clcw(clcw(5), 1.0)                       # the FARM has not seen it yet
        assert fop.state is S5
        fop.on_clcw(clcw(200), 2.0)
        assert fop.state is S1
        with pytest.raises(ValueError):
            Fop1(SCID, 0).init_ad_with_set_vr(256, 0.0)

    def test_terminate_purges(self) -> None:
        fop = active(3)
        fop.terminate(1.0)
        notices = fop.take_notices()
        assert [n.kind for n in notices] == ["negative"] * 3 + ["alert"]
        assert notices[-1].code == Alert.TERM and fop.state is S6 and fop.outstanding == 0

    def test_parameters(self) -> None:
        for kw in ({"window": 0}, {"window": 256}, {"t1": 0}, {"t1": math.inf}, {"tx_limit": 0},
                   {"timeout_type": 2}):
            with pytest.raises(ValueError):
                Fop1(SCID, 0, **kw)
        fop = Fop1(SCID, 0)
        fop.set_params(window=3, t1=2.0, tx_limit=9, timeout_type=1)
        assert (fop.k, fop.t1, fop.tx_limit, fop.timeout_type) == (3, 2.0, 9, 1)
        with pytest.raises(ValueError):
            fop.set_params(window=0)
        with pytest.raises(ValueError):
            Fop1(SCID, 0, max_wait=0)
        with pytest.raises(ValueError):
            active().request_ad(b"", 0.0)


class TestTransfer:
    def test_window_limits_outstanding_frames(self) -> None:
        fop = active(window=3, max_wait=5)
        for i in range(6):
            fop.request_ad(b"%d" % i, 0.0)
        assert [f.seq for f in frames(fop)] == [10, 11, 12]
        assert len(fop.wait_queue) == 3
        fop.on_clcw(clcw(12), 1.0)                      # two acknowledged: two more go
        assert [f.seq for f in frames(fop)] == [13, 14]
        kinds = [(n.kind, n.ns) for n in fop.take_notices()]
        assert ("positive", 10) in kinds and ("positive", 11) in kinds and ("accept", 14) in kinds

    def test_wait_queue_full_rejects(self) -> None:
        fop = active(window=1)
        assert fop.request_ad(b"a", 0.0) is not None
        assert fop.request_ad(b"b", 0.0) is not None     # waits
        assert fop.request_ad(b"c", 0.0) is None         # E20
        assert fop.counters["rejected"] == 1

    def test_timer_retransmits_then_alerts(self) -> None:
        fop = active(t1=4.0, tx_limit=3)
        fop.request_ad(b"a", 0.0)
        fop.request_ad(b"b", 0.0)
        first = fop.take_frames()
        fop.run_due(4.0)
        assert fop.take_frames() == first and fop.transmission_count == 2 and fop.state is S1
        fop.run_due(8.0)
        assert fop.take_frames() == first and fop.transmission_count == 3
        fop.take_notices()
        fop.run_due(12.0)
        assert fop.state is S6 and fop.alerts[Alert.T1] == 1
        assert [n.kind for n in fop.take_notices()] == ["negative", "negative", "alert"]

    def test_timeout_type_1_suspends_and_resumes(self) -> None:
        fop = active(t1=4.0, tx_limit=1, timeout_type=1)
        fop.request_ad(b"a", 0.0)
        fop.run_due(4.0)
        assert fop.state is S6 and fop.suspend_state == 1 and fop.outstanding == 1
        assert not fop.set_vs(0)                        # not while suspended
        assert fop.resume(5.0) and fop.state is S1 and fop.next_deadline() == 9.0
        assert not fop.resume(5.0)

    def test_retransmit_flag(self) -> None:
        fop = active(tx_limit=3)
        for b in (b"a", b"b", b"c"):
            fop.request_ad(b, 0.0)
        sent = fop.take_frames()
        fop.on_clcw(clcw(11, retransmit=True), 1.0)     # E8: first acknowledged, the rest again
        assert fop.state is S2 and fop.take_frames() == sent[1:]
        fop.on_clcw(clcw(11, retransmit=True), 1.5)     # E10 in S2: already retransmitting
        assert fop.take_frames() == []
        fop.on_clcw(clcw(11, retransmit=True, wait=True), 2.0)
        assert fop.state is S3
        fop.run_due(100.0)                              # waiting: the timer does nothing
        assert fop.take_frames() == [] and fop.state is S3
        fop.on_clcw(clcw(13), 3.0)                      # E2: everything acknowledged
        assert fop.state is S1 and fop.outstanding == 0

    def test_limit_reached_on_retransmit_flag(self) -> None:
        fop = active(tx_limit=2)
        fop.request_ad(b"a", 0.0)
        fop.take_frames()
        fop.on_clcw(clcw(10, retransmit=True), 1.0)     # E10: count 1 -> 2
        assert fop.state is S2 and len(fop.take_frames()) == 1
        fop.on_clcw(clcw(10, retransmit=True), 2.0)     # E12: at the limit, no more
        assert fop.take_frames() == [] and fop.state is S2
        fop.run_due(100.0)                              # E17
        assert fop.state is S6 and fop.alerts[Alert.T1] == 1

    @pytest.mark.parametrize("c, alert", [
        (clcw(10, lockout=True), Alert.LOCKOUT), (clcw(11, wait=True), Alert.CLCW), (clcw(9), Alert.NN_R),
        (clcw(13, retransmit=True), Alert.SYNCH),
    ])
    def test_alerts(self, c: Clcw, alert: str) -> None:
        fop = active(3)
        fop.on_clcw(c, 1.0)
        assert fop.state is S6 and fop.alerts[alert] == 1 and fop.outstanding == 0

    def test_transmission_limit_1(self) -> None:
        fop = active(2, tx_limit=1)
        fop.on_clcw(clcw(11, retransmit=True), 1.0)     # E101: acknowledge one, then alert
        notices = fop.take_notices()
        assert ("positive", 10) in [(n.kind, n.ns) for n in notices] and fop.alerts[Alert.LIMIT] == 1

    def test_bypass_in_every_state(self) -> None:
        fop = Fop1(SCID, 0)
        fop.request_bd(b"emergency", 0.0)
        [f] = frames(fop)
        assert f.kind == FrameType.BD and f.data == b"emergency" and fop.state is S6

    def test_other_channel_or_cop_ignored(self) -> None:
        fop = active(1)
        assert fop.on_clcw(clcw(11, vcid=3), 1.0) is None
        assert fop.on_clcw(Clcw(0, 11, cop_in_effect=0), 1.0) is None
        assert fop.outstanding == 1


# -- FOP-1 against FARM-1, no link in between ------------------------------------------------------------
@settings(max_examples=examples(150))
@given(st.lists(st.sampled_from(["submit", "deliver", "lose", "dup", "clcw", "tick", "take"]), max_size=150),
       st.integers(1, 10))
def test_fop_farm_loopback(ops: list[str], k: int) -> None:
    """A lossy, duplicating in-order pipe between FOP-1 and FARM-1: delivered is always a prefix of sent."""
    farm = Farm1(0, window=2 * k if 2 * k <= 254 else 254, buffer_size=4)
    fop = Fop1(SCID, 0, window=k, t1=1.0, tx_limit=50)
    cop = CopUplink(fop, settle_s=0.5)
    pipe: list[bytes] = []
    sent: list[bytes] = []
    got: list[bytes] = []
    now = 0.0
    for op in ops:
        if op == "submit":
            sent.append(b"tc%04d" % len(sent))
            cop.submit(sent[-1], now)
        elif op in ("deliver", "lose", "dup") and pipe:
            f = pipe.pop(0)
            if op == "dup":
                pipe.insert(0, f)
            if op != "lose":
                farm.receive(TcFrame.unpack(f))
        elif op == "clcw":
            cop.on_clcw(farm.clcw(), now)
        elif op == "tick":
            now += 0.6
            cop.run_due(now)
        else:
            got += [d.data for d in farm.take() if d.kind == "AD"]
        pipe += cop.take_frames()
        assert got == sent[:len(got)]
    assert cop.indeterminate == 0


class TestCopUplink:
    def test_first_clcw_synchronises(self) -> None:
        cop = CopUplink(Fop1(SCID, 0), settle_s=1.0)
        ids = [cop.submit(b"a", 0.0), cop.submit(b"b", 0.0)]
        assert cop.take_frames() == []                  # no CLCW yet: nothing goes
        cop.on_clcw(clcw(77), 0.5)
        fs = [TcFrame.unpack(f) for f in cop.take_frames()]
        assert [f.seq for f in fs] == [77, 78] and cop.phase == CopUplink.RUNNING
        cop.on_clcw(clcw(79), 1.0)
        assert [e.fdu_id for e in cop.take_events() if e.kind == "delivered"] == ids

    def test_lockout_at_start_unlocks(self) -> None:
        cop = CopUplink(Fop1(SCID, 0))
        cop.on_clcw(clcw(5, lockout=True), 0.0)
        [f] = [TcFrame.unpack(f) for f in cop.take_frames()]
        assert parse_control_command(f.data) == ("unlock", None) and cop.fop.state is S5

    def test_recovery_counts_the_delivered_and_resends_the_rest(self) -> None:
        fop = Fop1(SCID, 0, window=5)
        cop = CopUplink(fop, settle_s=10.0)
        cop.on_clcw(clcw(0), 0.0)
        ids = [cop.submit(b"%d" % i, 0.0) for i in range(7)]
        assert [TcFrame.unpack(f).seq for f in cop.take_frames()] == [0, 1, 2, 3, 4]
        cop.on_clcw(clcw(2, lockout=True), 1.0)         # 0, 1 made it, then a lockout
        assert cop.phase == CopUplink.SETTLING
        cop.on_clcw(clcw(2, lockout=True), 5.0)         # too early: frames may still be on the way
        assert cop.take_frames() == []
        cop.run_due(11.0)
        cop.on_clcw(clcw(3, lockout=True), 12.0)        # a late frame (2) landed before the lockout froze V(R)
        delivered = [e.fdu_id for e in cop.take_events() if e.kind == "delivered"]
        assert delivered == ids[:3]
        cop.on_clcw(clcw(3), 13.0)                      # the unlock worked
        fs = [TcFrame.unpack(f) for f in cop.take_frames()]
        assert fs[0].kind == FrameType.BC
        assert [(f.seq, f.data) for f in fs[1:]] == [(3, b"3"), (4, b"4"), (5, b"5"), (6, b"6")]
        assert cop.pending == 4 and cop.recoveries == 1 and cop.indeterminate == 0

    def test_foreign_vr_makes_purged_frames_indeterminate(self) -> None:
        fop = Fop1(SCID, 0, window=5)
        cop = CopUplink(fop, settle_s=1.0)
        cop.on_clcw(clcw(0), 0.0)
        for i in range(3):
            cop.submit(b"%d" % i, 0.0)
        cop.take_frames()
        cop.on_clcw(clcw(0, lockout=True), 1.0)
        cop.run_due(2.0)
        cop.on_clcw(clcw(100), 3.0)                     # the FARM was reset to something else
        kinds = [e.kind for e in cop.take_events()]
        assert kinds.count("indeterminate") == 3 and cop.indeterminate == 3
        assert cop.fop.vs == 100 and cop.pending == 0

    def test_a_frame_landing_after_the_settle_time_is_never_repeated(self) -> None:
        """Recovery keeps each FDU's N(S): a straggler accepted late is counted, not sent under a new number."""
        fop = Fop1(SCID, 0, window=5, t1=2.0, tx_limit=2)
        cop = CopUplink(fop, settle_s=1.0)
        farm = Farm1(0, window=10)
        cop.on_clcw(farm.clcw(), 0.0)
        ids = [cop.submit(b"%d" % i, 0.0) for i in range(3)]
        straggler = cop.take_frames()[0]                # N(S) 0, delayed far beyond the settle time
        farm.receive(TcFrame.ad(SCID, 0, 200, b"?"))    # something else locks the FARM out
        cop.on_clcw(farm.clcw(), 1.0)
        cop.run_due(2.0)
        cop.on_clcw(farm.clcw(), 2.5)                   # recovery: V(R) 0, unlock
        unlock = [TcFrame.unpack(f) for f in cop.take_frames()]
        assert [f.kind for f in unlock] == [FrameType.BC]
        farm.receive(TcFrame.unpack(straggler))         # still locked out: discarded
        farm.receive(unlock[0])
        farm.receive(TcFrame.unpack(straggler))         # now the straggler is accepted
        assert farm.vr == 1
        # the BC frame's acknowledgement is lost; FOP-1 sees N(R) = 1 but expects 0: ignored in S5
        cop.on_clcw(farm.clcw(), 3.0)
        cop.run_due(4.5)
        cop.run_due(6.5)                                # BC limit reached: alert, recover again
        cop.run_due(8.0)
        cop.on_clcw(farm.clcw(), 8.5)
        assert cop.delivered == 1 and [e.fdu_id for e in cop.take_events() if e.kind == "delivered"] == ids[:1]
        fs = [TcFrame.unpack(f) for f in cop.take_frames()]
        for f in fs:
            farm.receive(f)
        got = [d.data for d in farm.take() if d.kind == "AD"]
        assert got == [b"0", b"1", b"2"]                # each exactly once
        assert cop.indeterminate == 0

    def test_suspend_then_resume_on_clcw(self) -> None:
        fop = Fop1(SCID, 0, t1=2.0, tx_limit=1, timeout_type=1)
        cop = CopUplink(fop)
        cop.on_clcw(clcw(0), 0.0)
        cop.submit(b"a", 0.0)
        cop.take_frames()
        cop.run_due(2.0)
        assert cop.phase == CopUplink.SUSPENDED
        cop.on_clcw(clcw(1), 3.0)
        assert cop.phase == CopUplink.RUNNING and cop.delivered == 1

    def test_submit_checks(self) -> None:
        with pytest.raises(ValueError):
            CopUplink(Fop1(SCID, 0)).submit(b"", 0.0)
