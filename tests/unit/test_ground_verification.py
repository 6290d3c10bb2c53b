"""Ground verification tracker: stage sequences, failures, timeouts, out-of-order and foreign reports."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fsw.dictionary import load_dictionary
from fsw.protocol import PusTm
from ground.commanding import build_tc
from ground.decoding import PacketDecoder
from ground.verification import State, VerificationTracker, final_stage

D = load_dictionary()
LANDER = D.lander.apid
FSS = D.system("FSS").apid
NAMES = {1: "ACCEPT_OK", 2: "ACCEPT_FAIL", 3: "START_OK", 4: "START_FAIL", 5: "PROGRESS_OK", 6: "PROGRESS_FAIL",
         7: "COMPLETE_OK", 8: "COMPLETE_FAIL"}


def report(tc, subservice, reporter=FSS, code="WRONG_MODE", step=1, t=100.0) -> PusTm:
    """The TM[1,subservice] a unit would send about ``tc``, built from the dictionary."""
    values = {"TC_PACKET_ID": tc.packet_id, "TC_SEQ_CTRL": (tc.seq_flags << 14) | tc.seq_count}
    if subservice in (5, 6):
        values["STEP"] = step
    if subservice % 2 == 0:
        values.update(FAILURE_CODE=D.failure_code(code), FAILURE_DATA=0)
    pkt = D.packet(NAMES[subservice])
    return PusTm(reporter, 1, subservice, D.encode_tm(pkt, values, eng=False), time=t)


def tc_(seq=1, name="FSS_SET_MODE", **args):
    return build_tc(D, name, args or {"mode": "SCIENCE"}, seq_count=seq)


@pytest.fixture
def tracker():
    return VerificationTracker(D)


def test_full_success_sequence(tracker):
    tc = tc_()
    r = tracker.add_tc(tc, now=10.0, timeout_s=5.0)
    assert r.state == State.PENDING and not r.done and r.command == "FSS_SET_MODE" and r.system == "FSS"
    assert r.deadline == 15.0
    u = tracker.add_tm(report(tc, 1, reporter=LANDER), now=10.1)
    assert u.report.stage == "acceptance" and u.report.success and u.report.reporter == "LANDER"
    assert u.result.state == State.PENDING
    tracker.add_tm(report(tc, 3), now=10.2)
    u = tracker.add_tm(report(tc, 5, step=2), now=10.3)
    assert u.report.stage == "progress" and u.report.step == 2
    u = tracker.add_tm(report(tc, 7), now=10.4)
    assert u.result.state == State.SUCCESS and u.result.done and u.result.ok and u.result.failure is None
    assert [x.stage for x in u.result.reports] == ["acceptance", "start", "progress", "completion"]
    assert tracker.status(tc.request_id) == u.result == tracker.status(tc) == tracker.status((tc.apid, tc.seq_count))
    assert tracker.expire(100.0) == []  # done: never times out


@pytest.mark.parametrize("sub,stage", [(2, "acceptance"), (4, "start"), (6, "progress"), (8, "completion")])
def test_any_failure_ends_verification(tracker, sub, stage):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    u = tracker.add_tm(report(tc, sub, code="WRONG_MODE"), 1.0)
    assert u.result.state == State.FAILED and u.result.done and u.result.failure == "WRONG_MODE"
    assert u.report.stage == stage and not u.report.success
    assert u.result.stage(stage) is u.report


def test_lander_rejection_of_a_routed_tc_matches(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    u = tracker.add_tm(report(tc, 2, reporter=LANDER, code="PAYLOAD_UNPOWERED"), 0.5)
    assert u.result.failure == "PAYLOAD_UNPOWERED" and u.report.reporter_apid == LANDER


def test_timeout(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 2.0)
    tracker.add_tm(report(tc, 1), 0.5)
    assert tracker.expire(1.99) == []
    assert tracker.next_deadline() == 2.0
    (u,) = tracker.expire(2.0)
    assert u.report is None and u.result.state == State.TIMEOUT and u.result.timed_out
    assert u.result.failure == "TIMEOUT" and u.result.done
    assert tracker.expire(3.0) == [] and tracker.next_deadline() is None


def test_late_completion_after_timeout_is_recorded(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 1.0)
    tracker.expire(1.5)
    u = tracker.add_tm(report(tc, 7), 2.0)
    assert u.late and u.result.state == State.SUCCESS and u.result.timed_out and u.result.failure is None


def test_out_of_order_reports(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    u = tracker.add_tm(report(tc, 7), 0.1)  # completion overtakes acceptance
    assert u.result.state == State.SUCCESS
    u = tracker.add_tm(report(tc, 1, reporter=LANDER), 0.2)
    assert u.result.state == State.SUCCESS and [r.stage for r in u.result.reports] == ["completion", "acceptance"]
    assert u.result.stage("acceptance").reporter == "LANDER"


def test_failure_after_success_is_a_conflict(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    tracker.add_tm(report(tc, 7), 0.1)
    u = tracker.add_tm(report(tc, 2, code="BUSY"), 0.2)
    assert u.result.state == State.FAILED and u.result.conflict and u.result.failure == "BUSY"


def test_first_failure_code_is_kept(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    tracker.add_tm(report(tc, 4, code="BUSY"), 0.1)
    u = tracker.add_tm(report(tc, 8, code="EXECUTION_FAILED"), 0.2)
    assert u.result.failure == "BUSY" and len(u.result.reports) == 2


def test_reports_for_unknown_tcs_and_other_packets_are_ignored(tracker):
    tc = tc_(seq=1)
    other = tc_(seq=2)
    tracker.add_tc(tc, 0.0, 5.0)
    assert tracker.add_tm(report(other, 1), 0.1) is None
    assert tracker.unmatched == 1
    hk = PusTm(FSS, 3, 25, b"\x00\x01", time=1.0)
    assert tracker.add_tm(hk, 0.1) is None
    assert tracker.add_tm(PusTm(FSS, 1, 9, b"", time=1.0), 0.1) is None
    assert tracker.status(tc).reports == ()


def test_same_seq_to_another_apid_is_a_different_request(tracker):
    a = tc_(seq=3)
    b = build_tc(D, "PING", {}, system="LMS", seq_count=3)
    tracker.add_tc(a, 0.0, 5.0)
    tracker.add_tc(b, 0.0, 5.0)
    tracker.add_tm(report(b, 8, reporter=D.system("LMS").apid, code="BUSY"), 0.1)
    assert tracker.status(a).state == State.PENDING and tracker.status(b).state == State.FAILED


def test_reused_request_id_replaces_the_old_entry(tracker):
    tc = tc_(seq=9)
    tracker.add_tc(tc, 0.0, 1.0)
    tracker.expire(2.0)
    r = tracker.add_tc(tc, 3.0, 1.0)
    assert r.state == State.PENDING and tracker.status(tc).sent_at == 3.0 and len(tracker) == 1


def test_add_record_accepts_decoded_records(tracker):
    tc = tc_()
    tracker.add_tc(tc, 0.0, 5.0)
    rec = PacketDecoder(D).decode(report(tc, 3).pack())
    u = tracker.add_record(rec, 0.1)
    assert u.report.stage == "start"
    assert tracker.add_record({"error": "crc", "request": {"apid": tc.apid, "seq_count": 1}}, 0.1) is None
    assert tracker.add_record({"name": "FSS_HK"}, 0.1) is None


def test_ack_flags_decide_the_final_stage(tracker):
    assert final_stage(0b1111) == "completion" and final_stage(0b0011) == "start"
    assert final_stage(0b0001) == "acceptance" and final_stage(0) is None
    tc = build_tc(D, "PING", {}, seq_count=4, ack_flags=0b0001)
    tracker.add_tc(tc, 0.0, 5.0)
    assert tracker.add_tm(report(tc, 1, reporter=LANDER), 0.1).result.state == State.SUCCESS


def test_bad_input_raises(tracker):
    with pytest.raises(ValueError):
        tracker.add_tc(tc_(), 0.0, 0.0)
    with pytest.raises(ValueError):
        tracker.add_tc("not a tc", 0.0, 1.0)  # type: ignore[arg-type]
    assert tracker.status(0x12345678) is None


def test_finished_entries_are_pruned_but_pending_ones_kept():
    tr = VerificationTracker(D, max_done=3)
    pending = tc_(seq=100)
    tr.add_tc(pending, 0.0, 1000.0)
    for i in range(10):
        tc = tc_(seq=i)
        tr.add_tc(tc, 0.0, 5.0)
        tr.add_tm(report(tc, 7), 0.1)
    tr.add_tc(tc_(seq=50), 0.2, 5.0)
    assert tr.status(pending) is not None and tr.status(pending).state == State.PENDING
    assert sum(1 for i in range(10) if tr.status((FSS, i)) is not None) == 3


class TrackerMachine(RuleBasedStateMachine):
    """Arbitrary interleavings of sends, reports (any stage, any order, duplicates) and clock steps."""

    @initialize()
    def setup(self):
        self.tr = VerificationTracker(D)
        self.now = 0.0
        self.tcs = {}
        self.model = {}  # seq -> {"failed": bool, "completed": bool, "timed_out": bool}

    @rule(seq=st.integers(0, 5), timeout=st.floats(0.5, 10.0))
    def send(self, seq, timeout):
        tc = tc_(seq=seq)
        self.tcs[seq] = tc
        self.tr.add_tc(tc, self.now, timeout)
        self.model[seq] = {"failed": False, "completed": False, "timed_out": False, "deadline": self.now + timeout}

    @precondition(lambda self: self.tcs)
    @rule(data=st.data(), sub=st.integers(1, 8))
    def report(self, data, sub):
        seq = data.draw(st.sampled_from(sorted(self.tcs)))
        u = self.tr.add_tm(report(self.tcs[seq], sub), self.now)
        assert u is not None
        m = self.model[seq]
        if sub % 2 == 0:
            m["failed"] = True
        elif sub == 7:
            m["completed"] = True

    @rule(dt=st.floats(0.0, 4.0))
    def tick(self, dt):
        self.now += dt
        for u in self.tr.expire(self.now):
            m = self.model[u.result.seq_count]
            assert not (m["failed"] or m["completed"]) and self.now >= m["deadline"]
            m["timed_out"] = True

    @invariant()
    def states_follow_the_reports(self):
        if not hasattr(self, "tr"):
            return
        for seq, m in self.model.items():
            r = self.tr.status(self.tcs[seq])
            if m["failed"]:
                assert r.state == State.FAILED and r.failure is not None
            elif m["completed"]:
                assert r.state == State.SUCCESS
            elif m["timed_out"]:
                assert r.state == State.TIMEOUT
            else:
                assert r.state == State.PENDING and self.now < m["deadline"]
            assert r.done == (r.state != State.PENDING)


TrackerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_tracker_state_machine = TrackerMachine.TestCase
