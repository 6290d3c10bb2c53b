"""SpaceLinkOnboard.next_deadline() remembers its answer: it must be the answer computed afresh, always.

Two links get the same calls.  One answers from its caches (the link's, the
packet stores', the multiplexer's CLCW); the other forgets them before every
query, which is how the link computed everything before the caches.  They
must agree on every deadline (a cached one late would stall the downlink, an
early one wakes the runner for nothing), send the same CADUs byte for byte,
and keep the same queues.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fsw.core.spacelink import SpaceLinkConfig, SpaceLinkOnboard
from fsw.core.state import MemoryStore
from fsw.core.storage import OVERWRITE, StorageManager, StoreConfig
from fsw.protocol.pus import PusTc, PusTm
from fsw.protocol.tcframe import TcFrame, cltu_encode
from fsw.protocol.tmframe import TmFrameConfig
from tests.conftest import examples
from tests.unit.test_storage import recomputing, store_view

TM = TmFrameConfig(frame_len=128)


def onboard() -> SpaceLinkOnboard:
    state = MemoryStore()
    stores = [StoreConfig(1, "HK", 4000, 0, OVERWRITE), StoreConfig(2, "SCI", 6000, 1)]
    sm = StorageManager(stores, state, router=lambda a, s, ss: 2 if s == 130 else 1, ack_timeout_s=5.0,
                        flush_interval_s=0.5, flush_every=16)
    cfg = SpaceLinkConfig(tm=TM, downlink_bps=20_000.0, clcw_interval_s=2.0, rt_queue_bytes=300,
                          ack_timeout_s=5.0, flush_interval_s=0.5)
    link = SpaceLinkOnboard(cfg, sm, state)
    link.start(0.0)
    return link


def afresh(link: SpaceLinkOnboard) -> SpaceLinkOnboard:
    """``link`` with every remembered answer forgotten."""
    link._changed()
    link._ocf_key = None
    recomputing(link.storage)
    return link


def link_view(link: SpaceLinkOnboard) -> tuple:
    chans = [(list(c.queue), None if c.partial is None else bytes(c.partial), c.partial_idle, c.vc_count)
             for c in link.mux._order]
    return (list(link._rt), link.rf, link.playback, link._next_slot, link._last_frame, link._clcw_dirty,
            link._dirty_at, chans, store_view(link.storage))


class CachedDeadline(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.a = onboard()
        self.b = onboard()
        self.now = 0.0
        self.seq = 0
        self.ns = 0

    def both(self, call, q: bool) -> None:
        assert call(self.a) == call(self.b)
        if q:
            self.query()

    @rule(n=st.integers(1, 4), science=st.booleans(), size=st.sampled_from([10, 60, 200]), q=st.booleans())
    def send(self, n: int, science: bool, size: int, q: bool) -> None:
        for _ in range(n):
            p = PusTm(0x23 if science else 0x10, 130 if science else 3, 25, bytes(size), seq_count=self.seq,
                      time=float(self.seq)).pack()
            self.seq += 1
            self.both(lambda link: link.send_packet(p, self.now, realtime=not science), q)

    @rule(dt=st.sampled_from([0.0, 0.001, 0.02, 0.06, 0.3, 1.1, 6.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    def _run(self, q: bool) -> None:
        self.both(lambda link: (link.run_due(self.now), link.take_output(), link.take_events())[1:], q)

    @rule(q=st.booleans())
    def run_due(self, q: bool) -> None:
        self._run(q)

    @rule(q=st.booleans())
    def wake(self, q: bool) -> None:
        """What a runner does: jump to the link's deadline (when it is near) and run what is due."""
        t = self.deadline()
        if t <= self.now + 3.0:
            self.now = max(self.now, t)
            self._run(q)

    @rule(on=st.booleans(), q=st.booleans())
    def rf(self, on: bool, q: bool) -> None:
        self.both(lambda link: link.set_rf(on, self.now), q)

    @rule(on=st.booleans(), q=st.booleans())
    def playback(self, on: bool, q: bool) -> None:
        self.both(lambda link: link.set_playback(on), q)

    @rule(kind=st.sampled_from(["next", "far", "unlock"]), q=st.booleans())
    def telecommand(self, kind: str, q: bool) -> None:
        """A TC frame: in sequence, far out of the window (lockout), or an unlock: the CLCW changes."""
        if kind == "unlock":
            frame = TcFrame.unlock(TM.scid, 0)
        else:
            ns = self.ns if kind == "next" else (self.ns + 100) & 0xFF
            frame = TcFrame.ad(TM.scid, 0, ns, b"\xc0" + PusTc(0x10, 17, 1, seq_count=self.ns).pack())
        self.ns = (self.ns + (kind == "next")) & 0xFF
        cltu = cltu_encode(frame.pack())
        self.both(lambda link: (link.receive(cltu, self.now), link.take_tcs())[1], q)

    @rule(data=st.data(), how=st.sampled_from(["ack", "retransmit", "delete_up_to", "retrieve_time"]),
          q=st.booleans())
    def store_command(self, data: st.DataObject, how: str, q: bool) -> None:
        """The ground's PUS-15 requests act on the stores directly, not through the link."""
        if not self.seq:
            return
        a = data.draw(st.integers(0, self.seq - 1))
        b = data.draw(st.integers(a, min(self.seq - 1, a + 8)))
        if how in ("ack", "retransmit"):
            apid = data.draw(st.sampled_from([0x10, 0x23]))
            self.both(lambda link: getattr(link.storage, how)(0, apid, a, b, float(a), float(b)), q)
        elif how == "delete_up_to":
            self.both(lambda link: link.storage.delete_up_to(0, float(a)), q)
        else:
            self.both(lambda link: link.storage.retrieve_time(0, float(a), float(b)), q)

    @rule(store=st.sampled_from([0, 1, 2]), on=st.booleans(), q=st.booleans())
    def enable(self, store: int, on: bool, q: bool) -> None:
        """A disabled store refuses packets: a live one still goes out, with no change in the stores."""
        self.both(lambda link: link.storage.enable(store, on), q)

    @rule(q=st.booleans())
    def stop(self, q: bool) -> None:
        self.both(lambda link: link.stop(self.now), q)

    def deadline(self) -> float:
        t = self.a.next_deadline()
        assert t == afresh(self.b).next_deadline()
        return t

    @rule()
    def query(self) -> None:
        self.deadline()

    @invariant()
    def same_state(self) -> None:
        assert link_view(self.a) == link_view(self.b)


CachedDeadline.TestCase.settings = settings(max_examples=examples(150), stateful_step_count=50, deadline=None)
TestCachedDeadline = CachedDeadline.TestCase


def test_the_ocf_follows_every_change_of_the_clcw() -> None:
    link = onboard()
    seen = []
    for i, frame in enumerate([TcFrame.ad(TM.scid, 0, 0, b"\xc0" + PusTc(0x10, 17, 1).pack()),
                               TcFrame.ad(TM.scid, 0, 77, b"x"), TcFrame.unlock(TM.scid, 0)]):
        link.receive(cltu_encode(frame.pack()), float(i))
        link.take_tcs()
        seen.append((link._ocf(), link.farm.clcw(no_rf=not link.rf).pack()))
    link.set_rf(False, 5.0)
    seen.append((link._ocf(), link.farm.clcw(no_rf=True).pack()))
    assert all(a == b for a, b in seen) and len({a for a, _ in seen}) == 4
