"""COP-1 end to end through seeded impairments, on the simulated clock (reliability.md item 4).

FOP-1 (with the ground's COP-1 management) -> TC frames -> CLTUs -> an uplink
:class:`~hw_sim.faults.LinkImpairer` -> CLTU decoder -> frame checks ->
FARM-1 -> delivered telecommands; FARM-1's CLCW -> idle TM frames with an
OCF -> CADUs -> a downlink impairer -> CADU sync -> stale-CLCW filter -> FOP-1.
Every delivery is a timer on a :class:`~fsw.core.timers.TimerQueue` driven by
a :class:`~fsw.core.clock.SimClock`.

Hypothesis drives the run: telecommands submitted in bursts, random and
bursty (Gilbert-Elliott) loss, bit errors, duplication, reordering, delay
jitter, total blackouts in either direction, a stalled consumer on board
(FARM-1 in Wait), bypass frames.  After every step: what was delivered is a
prefix of what was sent (nothing twice, nothing out of order).  At the end
the links heal and everything sent must arrive, with no telecommand of
unknown outcome.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fsw.core.clock import SimClock
from fsw.core.farm1 import Farm1, FarmState
from fsw.core.timers import TimerQueue
from fsw.protocol.errors import DecodeError
from fsw.protocol.tcframe import CltuDecoder, CltuFrameBytes, cltu_encode, parse_tc_frame
from fsw.protocol.tmframe import CaduDeframer, TmFrame, TmFrameConfig, TmMultiplexer, cadu
from ground.fop1 import CopUplink, Fop1
from hw_sim.faults import GilbertElliott, LinkImpairer
from tests.conftest import examples

SCID = 0x1A5
OWLT = 1.3             # one-way light time
CLCW_PERIOD = 1.0
MAX_EXTRA_DELAY = 6.0  # about the impairments' worst extra delay (see profiles); settle_s covers a round trip
STEPS = {"count": 0, "runs": 0}

P = st.sampled_from([0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
SMALL_P = st.sampled_from([0.01, 0.05, 0.1, 0.2])
profiles = st.one_of(
    st.builds(dict, loss=P),
    st.builds(lambda p, r: {"burst": GilbertElliott(p=p, r=r)}, SMALL_P, st.sampled_from([0.1, 0.3, 0.7])),
    st.builds(dict, ber=st.sampled_from([1e-5, 1e-4, 1e-3])),
    st.builds(dict, corrupt=P),
    st.builds(lambda d, dd: {"duplicate": d, "dup_delay": dd}, P, st.sampled_from([0.5, 2.0, 5.0])),
    st.builds(lambda r: {"reorder": r, "reorder_delay": 1.0}, P),
    st.builds(dict, jitter=st.sampled_from([0.1, 0.3, 0.5])),
    st.builds(lambda l, d, j: {"loss": l, "duplicate": d, "dup_delay": 5.0, "jitter": j, "ber": 1e-4},
              SMALL_P, P, st.sampled_from([0.0, 0.2, 0.4])),
    st.builds(lambda p, d, r: {"burst": GilbertElliott(p=p, r=0.3), "duplicate": d, "dup_delay": 2.0,
                               "reorder": r, "reorder_delay": 1.0, "corrupt": 0.1}, SMALL_P, P, P),
    st.just({}),
)


class Cop1Link(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**32 - 1), window=st.sampled_from([2, 4, 10, 32]),
                k_fraction=st.sampled_from([0.5, 1.0]), tx_limit=st.integers(2, 6),
                buffer=st.integers(1, 8), up=profiles, down=profiles)
    def setup(self, seed: int, window: int, k_fraction: float, tx_limit: int, buffer: int, up: dict,
              down: dict) -> None:
        rng = random.Random(seed)
        self.clock = SimClock(0.0)
        self.q = TimerQueue()
        self.up = LinkImpairer(random.Random(rng.random()), **up)
        self.down = LinkImpairer(random.Random(rng.random()), **down)
        k = max(1, int(window // 2 * k_fraction))
        self.k = k
        self.fop = Fop1(SCID, 0, window=k, t1=2 * OWLT + CLCW_PERIOD + 2.0, tx_limit=tx_limit)
        self.cop = CopUplink(self.fop, settle_s=2 * (OWLT + MAX_EXTRA_DELAY) + CLCW_PERIOD + 1.0)
        self.farm = Farm1(0, window=window, buffer_size=buffer)
        self.cltu = CltuDecoder()
        self.tm = TmFrameConfig(scid=SCID, frame_len=24)
        self.mux = TmMultiplexer(self.tm, ocf_source=lambda: self.farm.clcw().pack())
        self.cadus = CaduDeframer(self.tm)
        self.sent: list[bytes] = []
        self.delivered: list[bytes] = []
        self.bd_sent: list[bytes] = []
        self.bd_got: list[bytes] = []
        self.stalled = False
        self.frames_offered = 0
        self.last_mc: int | None = None
        self.last_mc_at = -1e9
        self.q.every(CLCW_PERIOD, self._send_clcw, 0.0)
        STEPS["runs"] += 1

    # -- plumbing ----------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock.now()

    def _pump(self) -> None:
        now = self.now
        for f in self.cop.take_frames():
            for extra, chunk in self.up.apply(cltu_encode(f), now):
                self.q.call_at(now + OWLT + extra, lambda t, c=chunk: self._uplink_rx(c, t))

    def _uplink_rx(self, chunk: bytes, t: float) -> None:
        for item in self.cltu.feed(chunk) + self.cltu.flush():
            if not isinstance(item, CltuFrameBytes):
                continue
            self.frames_offered += 1
            f = parse_tc_frame(item.data)
            if isinstance(f, DecodeError):
                self.farm.invalid(f.reason)
            else:
                self.farm.receive(f)
        if not self.stalled:
            self._drain()
        self.q.call_at(t + 0.05, self._send_clcw)

    def _drain(self) -> None:
        for d in self.farm.take():
            (self.delivered if d.kind == "AD" else self.bd_got).append(d.data)

    def _send_clcw(self, t: float) -> None:
        for extra, chunk in self.down.apply(cadu(self.mux.idle_frame()), t):
            self.q.call_at(t + OWLT + extra, lambda tt, c=chunk: self._downlink_rx(c, tt))

    def _downlink_rx(self, chunk: bytes, t: float) -> None:
        for f in self.cadus.feed(chunk):
            if not isinstance(f, TmFrame) or f.clcw is None:
                continue
            # ignore a CLCW from a frame overtaken by a newer one (reordering on the link)
            if self.last_mc is not None and t - self.last_mc_at < 5.0 and not 0 < ((f.mc_count - self.last_mc) & 0xFF) < 128:
                continue
            self.last_mc, self.last_mc_at = f.mc_count, t
            self.cop.on_clcw(f.clcw, t)
        self._pump()

    def _run(self, dt: float, until_done: bool = False) -> None:
        end = self.now + dt
        while True:
            t = min(self.q.next_deadline(), self.cop.next_deadline())
            if t > end or (until_done and self.cop.pending == 0 and len(self.delivered) == len(self.sent)):
                break
            self.clock.advance_to(t)
            self.q.run_due(t)
            self.cop.run_due(t)
            self._pump()
        if self.now < end and not until_done:
            self.clock.advance_to(end)

    # -- rules ---------------------------------------------------------------------------------------------
    @rule(n=st.integers(1, 30))
    def submit(self, n: int) -> None:
        for _ in range(n):
            tc = b"TC%06d" % len(self.sent)
            self.sent.append(tc)
            self.cop.submit(tc, self.now)
        self._pump()
        STEPS["count"] += 1

    @rule(dt=st.floats(0.2, 120.0))
    def run(self, dt: float) -> None:
        self._run(dt)
        STEPS["count"] += 1

    @rule(knobs=profiles)
    def impair_uplink(self, knobs: dict) -> None:
        self.up.heal()
        self.up.set(**knobs)
        STEPS["count"] += 1

    @rule(knobs=profiles)
    def impair_downlink(self, knobs: dict) -> None:
        self.down.heal()
        self.down.set(**knobs)
        STEPS["count"] += 1

    @rule(up=st.booleans(), on=st.booleans())
    def blackout(self, up: bool, on: bool) -> None:
        (self.up if up else self.down).blackout = on
        STEPS["count"] += 1

    @rule(on=st.booleans())
    def stall_consumer(self, on: bool) -> None:
        self.stalled = on
        if not on:
            self._drain()
        STEPS["count"] += 1

    @rule()
    def bypass(self) -> None:
        tc = b"BD%04d" % len(self.bd_sent)
        self.bd_sent.append(tc)
        self.cop.submit_bd(tc, self.now)
        self._pump()
        STEPS["count"] += 1

    # -- invariants ------------------------------------------------------------------------------------------
    @invariant()
    def delivered_is_a_prefix_of_sent(self) -> None:
        assert self.delivered == self.sent[:len(self.delivered)]

    @invariant()
    def bypass_frames_are_genuine(self) -> None:
        assert set(self.bd_got) <= set(self.bd_sent)

    @invariant()
    def farm_flags_agree_with_state(self) -> None:
        f = self.farm
        assert f.lockout == (f.state is FarmState.LOCKOUT)
        assert f.state is not FarmState.WAIT or f.wait
        assert f.buffered <= f.buffer_size

    @invariant()
    def every_frame_is_accounted_for(self) -> None:
        f = self.farm
        handled = sum(n for e, n in f.events.items() if e != 10)
        assert handled == self.frames_offered

    @invariant()
    def fop_window_holds(self) -> None:
        assert ((self.fop.vs - self.fop.nnr) & 0xFF) <= self.k
        assert self.fop.outstanding <= self.k

    def teardown(self) -> None:
        if not hasattr(self, "cop"):
            return
        self.up.heal()
        self.down.heal()
        self.stalled = False
        self._drain()
        # liveness: a window of K frames moves about K telecommands per round trip (~4 s)
        self._run(300.0 + 10.0 * (len(self.sent) - len(self.delivered)) / self.k, until_done=True)
        self._drain()
        assert self.delivered == self.sent, (len(self.delivered), len(self.sent), self.cop.phase)
        assert self.cop.pending == 0 and self.cop.indeterminate == 0


Cop1Link.TestCase.settings = settings(max_examples=examples(100), stateful_step_count=50, deadline=None)
TestCop1Impaired = Cop1Link.TestCase
