"""The deadline queue, periodic timers on a fixed grid, the simulated clock and line pacing.

Everything runs on simulated time: the tests say what time it is.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fsw.core.clock import Clock, SimClock
from fsw.core.pacing import LinePacer
from fsw.core.timers import Periodic, TimerQueue
from tests.conftest import examples


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, tag: str):
        return lambda now: self.calls.append((tag, now))

    @property
    def tags(self) -> list[str]:
        return [t for t, _ in self.calls]


def run_until(q: TimerQueue, clock: SimClock, end: float) -> int:
    """A simulated runner: jump the clock to each deadline up to ``end``."""
    ran = 0
    while q.next_deadline() <= end:
        clock.advance_to(q.next_deadline())
        ran += q.run_due(clock.now())
    clock.advance_to(end)
    return ran + q.run_due(end)


# -- TimerQueue ------------------------------------------------------------------------------------

def test_runs_in_time_order_not_filing_order() -> None:
    q, log = TimerQueue(), Log()
    for t in (5.0, 1.0, 3.0, 2.0, 4.0):
        q.call_at(t, log(f"t{t:g}"))
    assert q.next_deadline() == 1.0 and len(q) == 5
    assert q.run_due(3.0) == 3
    assert log.calls == [("t1", 3.0), ("t2", 3.0), ("t3", 3.0)]  # each gets the runner's now
    assert q.next_deadline() == 4.0 and len(q) == 2
    assert q.run_due(10.0) == 2
    assert log.tags == ["t1", "t2", "t3", "t4", "t5"]
    assert q.next_deadline() == math.inf and len(q) == 0


def test_nothing_runs_before_its_deadline() -> None:
    q, log = TimerQueue(), Log()
    q.call_at(2.0, log("a"))
    assert q.run_due(math.nextafter(2.0, 0.0)) == 0 and log.calls == []
    assert q.run_due(2.0) == 1  # due at exactly its deadline


def test_ties_run_in_filing_order() -> None:
    q, log = TimerQueue(), Log()
    for k in range(50):
        q.call_at(7.0, log(str(k)))
    q.call_at(6.0, log("early"))
    q.run_due(7.0)
    assert log.tags == ["early"] + [str(k) for k in range(50)]


def test_cancel() -> None:
    q, log = TimerQueue(), Log()
    a = q.call_at(1.0, log("a"))
    b = q.call_at(2.0, log("b"))
    a.cancel()
    assert q.next_deadline() == 2.0 and len(q) == 1
    assert q.run_due(5.0) == 1 and log.tags == ["b"]
    b.cancel()  # cancelling a timer that already ran changes nothing
    a.cancel()
    assert q.run_due(5.0) == 0 and log.tags == ["b"]


def test_callback_may_file_and_cancel_timers() -> None:
    q, log = TimerQueue(), Log()
    later = q.call_at(3.0, log("later"))

    def first(now: float) -> None:
        log("first")(now)
        q.call_at(now, log("same instant"))  # due already: runs in this run_due, after first
        q.call_at(now + 10, log("much later"))
        later.cancel()
    q.call_at(1.0, first)
    assert q.run_due(4.0) == 2
    assert log.tags == ["first", "same instant"]
    assert q.next_deadline() == 14.0  # the callback ran at now = 4.0


@pytest.mark.parametrize("when", [math.nan, math.inf, -math.inf])
def test_deadline_must_be_finite(when: float) -> None:
    with pytest.raises(ValueError):
        TimerQueue().call_at(when, lambda now: None)


class TimerQueueMachine(RuleBasedStateMachine):
    """Random filing, cancelling and running against a simple model."""

    @initialize()
    def setup(self) -> None:
        self.q = TimerQueue()
        self.now = 0.0
        self.ran: list[int] = []
        self.timers: dict[int, tuple[float, object]] = {}  # id -> (when, Timer)
        self.cancelled: set[int] = set()
        self.next_id = 0

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 2.5]) | st.floats(0, 20))
    def file(self, dt: float) -> None:
        k = self.next_id
        self.next_id += 1
        when = self.now + dt
        self.timers[k] = (when, self.q.call_at(when, lambda now, k=k: self.ran.append(k)))

    @precondition(lambda self: self.timers)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        k = data.draw(st.sampled_from(sorted(self.timers)))
        self.timers[k][1].cancel()
        self.cancelled.add(k)

    @rule(dt=st.floats(0, 10))
    def run(self, dt: float) -> None:
        self.now += dt
        before = len(self.ran)
        expected = sorted((w, k) for k, (w, _) in self.timers.items()
                          if w <= self.now and k not in self.cancelled and k not in self.ran)
        assert self.q.run_due(self.now) == len(expected)
        assert self.ran[before:] == [k for _, k in expected]  # time order, then filing order

    @invariant()
    def consistent(self) -> None:
        pending = [w for k, (w, _) in self.timers.items() if k not in self.cancelled and k not in self.ran]
        assert len(self.q) == len(pending)
        assert self.q.next_deadline() == (min(pending) if pending else math.inf)
        assert len(set(self.ran)) == len(self.ran)        # nothing runs twice


TimerQueueMachine.TestCase.settings = settings(max_examples=examples(60), stateful_step_count=30)
test_timer_queue_state_machine = TimerQueueMachine.TestCase


# -- Periodic ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("period,start", [(1.0, 0.0), (0.1, 0.0), (0.3, 12.7), (1 / 3, 5.0)])
def test_periodic_fires_on_a_fixed_grid(period: float, start: float) -> None:
    q, clock, log = TimerQueue(), SimClock(start), Log()
    p = q.every(period, log("tick"), start)
    assert isinstance(p, Periodic) and p.active
    run_until(q, clock, start + 1000 * period + period / 2)
    times = [t for _, t in log.calls]
    assert len(times) == 1001
    # exactly on the grid, with no accumulated floating-point drift (0.1 added 10,000 times is not 1000.0)
    assert times == [start + k * period for k in range(1001)]


def test_periodic_grids_of_related_periods_coincide() -> None:
    q, clock, log = TimerQueue(), SimClock(), Log()
    q.every(0.1, log("fast"), 0.0)
    q.every(1.0, log("slow"), 0.0)
    run_until(q, clock, 100.0)
    fast = {t for tag, t in log.calls if tag == "fast"}
    slow = {t for tag, t in log.calls if tag == "slow"}
    assert len(fast) == 1001 and len(slow) == 101
    assert fast == {k * 0.1 for k in range(1001)}
    assert sum(1 for t in slow if t in fast) == sum(1 for k in range(101) if k * 1.0 in fast)


def test_a_late_runner_keeps_the_grid() -> None:
    q, log = TimerQueue(), Log()
    q.every(1.0, log("t"), 0.0)
    q.run_due(0.25)  # runs late: fn sees the runner's now
    assert log.calls == [("t", 0.25)]
    assert q.next_deadline() == 1.0  # not 1.25: no drift


def test_missed_slots_are_skipped_after_a_jump() -> None:
    q, log = TimerQueue(), Log()
    q.every(1.0, log("t"), 0.0)
    q.run_due(0.0)
    assert q.run_due(10.5) == 1  # once, not a burst of ten
    assert log.calls == [("t", 0.0), ("t", 10.5)]
    assert q.next_deadline() == 11.0


def test_a_jump_landing_exactly_on_a_grid_point_schedules_the_next_one() -> None:
    q, log = TimerQueue(), Log()
    q.every(0.5, log("t"), 2.0)
    q.run_due(2.0)
    q.run_due(7.0)
    assert q.next_deadline() == 7.5 and len(log.calls) == 2


@settings(max_examples=examples(300))
@given(st.floats(1e-3, 1e3), st.floats(0, 1e6), st.lists(st.floats(0, 50), min_size=1, max_size=20))
def test_periodic_invariants_under_arbitrary_runner_steps(period: float, start: float, steps: list[float]) -> None:
    q, log = TimerQueue(), Log()
    p = q.every(period, log("t"), start)
    now = start
    for s in steps:
        now += s * period
        before = len(log.calls)
        q.run_due(now)
        assert len(log.calls) - before <= 1  # never a burst
        nxt = q.next_deadline()
        assert nxt > now  # the next slot is in the future
        k = round((nxt - start) / period)
        assert nxt == start + k * period  # and on the grid
        if len(log.calls) > before:  # it fired: the next slot is the first grid point after now
            assert k == 0 or start + (k - 1) * period <= now
        assert p.next_time == nxt


def test_set_period_restarts_on_a_new_grid() -> None:
    q, clock, log = TimerQueue(), SimClock(), Log()
    p = q.every(1.0, log("t"), 0.0)
    run_until(q, clock, 3.2)
    p.set_period(0.5, clock.now())
    assert q.next_deadline() == 3.2 + 0.5 and len(q) == 1  # the old slot at 4.0 is gone
    run_until(q, clock, 6.0)
    assert [t for _, t in log.calls] == [0.0, 1.0, 2.0, 3.0] + [3.7 + k * 0.5 for k in range(5)]
    assert p.period == 0.5


def test_set_period_from_inside_the_callback() -> None:
    q, log = TimerQueue(), Log()
    holder: dict[str, Periodic] = {}

    def fn(now: float) -> None:
        log("t")(now)
        if now == 2.0:
            holder["p"].set_period(5.0, now)
    holder["p"] = q.every(1.0, fn, 0.0)
    for t in (0.0, 1.0, 2.0, 3.0, 7.0):
        q.run_due(t)
    assert [t for _, t in log.calls] == [0.0, 1.0, 2.0, 7.0]
    assert len(q) == 1


def test_cancel_periodic_from_outside_and_inside() -> None:
    q, log = TimerQueue(), Log()
    p = q.every(1.0, log("a"), 0.0)
    q.run_due(0.0)
    p.cancel()
    assert not p.active and p.next_time is None and len(q) == 0
    q.run_due(100.0)
    assert log.tags == ["a"]
    p.cancel()  # twice is fine

    holder: dict[str, Periodic] = {}

    def once(now: float) -> None:
        log("b")(now)
        holder["p"].cancel()
    holder["p"] = q.every(1.0, once, 200.0)
    q.run_due(500.0)
    assert log.tags == ["a", "b"] and len(q) == 0


@pytest.mark.parametrize("period", [0.0, -1.0, math.nan, math.inf])
def test_period_must_be_positive_and_finite(period: float) -> None:
    q = TimerQueue()
    with pytest.raises(ValueError):
        q.every(period, lambda now: None, 0.0)
    p = q.every(1.0, lambda now: None, 0.0)
    with pytest.raises(ValueError):
        p.set_period(period, 0.0)
    assert p.active and p.period == 1.0


# -- SimClock --------------------------------------------------------------------------------------

def test_sim_clock_moves_only_when_told() -> None:
    c = SimClock(100.0)
    assert isinstance(c, Clock)
    assert c.now() == c.now() == 100.0
    c.advance(2.5)
    c.advance_to(110.0)
    c.advance_to(110.0)  # standing still is allowed
    c.advance(0.0)
    assert c.now() == 110.0


def test_sim_clock_refuses_to_go_backwards() -> None:
    c = SimClock(10.0)
    with pytest.raises(ValueError, match="backwards"):
        c.advance_to(9.999)
    with pytest.raises(ValueError, match="backwards"):
        c.advance(-0.001)
    assert c.now() == 10.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_sim_clock_refuses_non_finite_times(bad: float) -> None:
    # NaN used to slip past the "backwards" comparison and freeze every later comparison
    c = SimClock(10.0)
    with pytest.raises(ValueError):
        c.advance_to(bad)
    with pytest.raises(ValueError):
        c.advance(bad)
    with pytest.raises(ValueError):
        SimClock(bad)
    assert c.now() == 10.0


def test_hours_of_simulated_time_run_instantly() -> None:
    q, clock, log = TimerQueue(), SimClock(), Log()
    q.every(1.0, log("hk"), 0.0)
    q.every(60.0, log("slow"), 30.0)
    assert run_until(q, clock, 6 * 3600.0) == 6 * 3600 + 1 + 6 * 60
    assert clock.now() == 6 * 3600.0


# -- LinePacer ---------------------------------------------------------------------------------------

def test_pacer_books_bytes_back_to_back() -> None:
    p = LinePacer(115200)
    bt = 10 / 115200
    assert p.byte_time == bt and p.bytes_per_second == 11520
    assert p.reserve(100, 5.0) == (5.0, 5.0 + 100 * bt)          # idle line: starts now
    start, end = p.reserve(50, 5.0)                              # busy: queues behind
    assert start == 5.0 + 100 * bt and end == start + 50 * bt
    assert p.backlog(5.0) == pytest.approx(150 * bt)
    assert p.backlog(end + 1) == 0.0
    assert p.reserve(1, 100.0)[0] == 100.0                       # idle again
    assert p.bytes_sent == 151


def test_pacer_other_framings() -> None:
    assert LinePacer(9600, bits_per_byte=11).byte_time == 11 / 9600


@pytest.mark.parametrize("kw", [dict(baud=0), dict(baud=-9600), dict(baud=9600, bits_per_byte=0)])
def test_pacer_rejects_nonsense(kw: dict) -> None:
    with pytest.raises(ValueError):
        LinePacer(**kw)


def test_pacer_rejects_a_negative_reservation() -> None:
    p = LinePacer(9600)
    with pytest.raises(ValueError):
        p.reserve(-1, 0.0)
    assert p.busy_until == 0.0


def test_assigning_the_period_keeps_the_slot_already_due() -> None:
    q, log = TimerQueue(), Log()
    p = q.every(1.0, log("t"), 0.0)
    q.run_due(0.0)
    p.period = 0.25  # from the next slot on: 1.0 stays, then every 0.25 s
    assert q.next_deadline() == 1.0
    for t in (1.0, 1.25, 1.5):
        q.run_due(t)
    assert [t for _, t in log.calls] == [0.0, 1.0, 1.25, 1.5]
    with pytest.raises(ValueError):
        p.period = 0.0
