"""PUS-15 packet stores: priorities, nothing deleted before the ground has it, full-store policies, restarts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fsw.core.state import CrashNow, MemoryStore, seal, seal_json, unseal
from fsw.core.storage import (
    OVERWRITE, STOP, StorageManager, StoreConfig, default_stores, dictionary_router, packet_keys,
)
from fsw.dictionary.loader import package_reader, parse_mission
from fsw.protocol.crc import crc16
from fsw.protocol.pus import PusTm
from tests.conftest import examples

HK, SCI = 1, 2


def pkt(apid: int, seq: int, t: float, n: int = 20, svc: int = 3) -> bytes:
    return PusTm(apid, svc, 25, bytes([seq & 0xFF]) * n, seq_count=seq & 0x3FFF, time=t).pack()


def manager(state: MemoryStore | None = None, hk_cap: int = 10_000, sci_cap: int = 10_000,
            sci_policy: str = STOP, **kw) -> StorageManager:
    stores = [StoreConfig(HK, "HK", hk_cap, priority=0, policy=OVERWRITE),
              StoreConfig(SCI, "SCI", sci_cap, priority=1, policy=sci_policy)]
    return StorageManager(stores, state, router=lambda apid, svc, sub: SCI if svc == 130 else HK, **kw)


def drain(m: StorageManager, now: float = 0.0) -> list[bytes]:
    out = []
    while (p := m.next_playback(now)) is not None:
        out.append(p)
    return out


def reader_with_link():
    """The reference mission with lander_link.yaml added to its systems (as the lead will do)."""
    base = package_reader()

    def read(name: str) -> str:
        text = base(name)
        if name == "mission.yaml" and "lander_link.yaml" not in text:
            text = text.replace("  - lander_deploy.yaml\n", "  - lander_deploy.yaml\n  - lander_link.yaml\n")
        return text
    return read


@pytest.fixture(scope="module")
def dictionary():
    return parse_mission(reader_with_link())


class TestPlayback:
    def test_priority_then_age(self) -> None:
        m = manager()
        s1 = pkt(0x23, 0, 1.0, svc=130)
        h1 = pkt(0x10, 0, 2.0)
        s2 = pkt(0x23, 1, 3.0, svc=130)
        h2 = pkt(0x10, 1, 4.0)
        for p in (s1, h1, s2, h2):
            m.store_packet(p, 0.0)
        assert drain(m) == [h1, h2, s1, s2]
        assert not m.has_playback()

    def test_realtime_copies_are_not_played_back_unless_unacknowledged(self) -> None:
        m = manager(ack_timeout_s=100.0)
        p = pkt(0x10, 0, 1.0)
        m.store_packet(p, 0.0, sent=True)
        assert drain(m) == []
        assert m.next_deadline() == 100.0
        m.run_due(100.0)                         # no acknowledgement: it goes again
        assert drain(m, 100.0) == [p]
        assert m.store(HK).counters["resent"] == 1

    def test_ack_deletes_and_stops_resending(self) -> None:
        m = manager(ack_timeout_s=100.0)
        ps = [pkt(0x10, i, float(i)) for i in range(10)]
        for p in ps:
            m.store_packet(p, 0.0)
        assert drain(m) == ps
        assert m.ack(0, 0x10, 2, 5, 2.0, 5.0) == 4
        assert m.ack(0, 0x10, 2, 5, 2.0, 5.0) == 0             # idempotent
        assert m.ack(HK, 0x10, 0, 1, 0.0, 0.5) == 1            # the time window bounds the range
        m.run_due(100.0)
        assert drain(m, 100.0) == [ps[1]] + ps[6:]
        assert m.store(HK).counters["acked"] == 5

    def test_retransmit_request_goes_first_and_reports_what_is_missing(self) -> None:
        m = manager()
        ps = [pkt(0x10, i, float(i)) for i in range(6)]
        for p in ps[:4]:
            m.store_packet(p, 0.0)
        drain(m)
        for p in ps[4:]:
            m.store_packet(p, 0.0)
        assert m.retransmit(0, 0x10, 1, 2, 0.0, 3.0) == 2
        assert drain(m) == [ps[1], ps[2], ps[4], ps[5]]
        assert m.retransmit(0, 0x10, 8, 9, 0.0, 10.0) == 0
        [ev] = m.take_events()
        assert ev == ("STORE_RANGE_NOT_HELD", {"STORE": 0, "RANGE_APID": 0x10, "RANGE_FIRST": 8,
                                               "RANGE_LAST": 9, "RANGE_FOUND": 0})

    def test_sequence_count_wrap_is_resolved_by_time(self) -> None:
        m = manager(hk_cap=10**7)
        old = pkt(0x10, 5, 10.0)
        new = pkt(0x10, 5, 20000.0)             # the same 14-bit count, one wrap later
        m.store_packet(old, 0.0)
        m.store_packet(new, 0.0)
        assert m.ack(0, 0x10, 5, 5, 19000.0, 21000.0) == 1
        assert drain(m) == [old]

    def test_ranges_wrap_and_are_bounded(self) -> None:
        m = manager()
        for seq in (16382, 16383, 0, 1):
            m.store_packet(pkt(0x10, seq, float(seq % 7)), 0.0)
        assert m.ack(0, 0x10, 16382, 1, 0.0, 10.0) == 4
        with pytest.raises(ValueError):
            m.ack(0, 0x10, 0, 8192, 0.0, 1.0)             # 8193 counts
        with pytest.raises(ValueError):
            m.retransmit(0, 0x10, 16384, 0, 0.0, 1.0)
        with pytest.raises(KeyError):
            m.ack(9, 0x10, 0, 0, 0.0, 1.0)

    def test_retrieve_by_time_and_delete_up_to(self) -> None:
        m = manager()
        ps = [pkt(0x10, i, 10.0 * i) for i in range(5)]
        for p in ps:
            m.store_packet(p, 0.0)
        drain(m)
        assert m.retrieve_time(HK, 15.0, 35.0) == 2
        assert drain(m) == ps[2:4]
        assert m.delete_up_to(0, 20.0) == 3
        assert len(m.store(HK).entries) == 2

    def test_rf_loss_resends_the_last_moments(self) -> None:
        m = manager()
        ps = [pkt(0x10, i, float(i)) for i in range(4)]
        for i, p in enumerate(ps):
            m.store_packet(p, float(i), sent=True)
        assert m.rf_lost(3.0, window_s=1.5) == 2
        assert drain(m, 3.0) == ps[2:]

    def test_requeue_and_unrouted(self) -> None:
        m = StorageManager([StoreConfig(1, "A", 1000)], router=lambda a, s, ss: None)
        assert m.store_packet(pkt(0x10, 0, 0.0), 0.0) is None and m.unrouted == 1
        m2 = manager()
        sid, ssn = m2.store_packet(pkt(0x10, 0, 0.0), 0.0, sent=True)
        assert m2.requeue(sid, ssn) and drain(m2) == [pkt(0x10, 0, 0.0)]
        assert not m2.requeue(sid, 999)


class TestFullStores:
    def test_stop_policy_refuses_and_reports_once_per_episode(self) -> None:
        m = manager(sci_cap=200)
        size = len(pkt(0x23, 0, 0.0, svc=130))
        stored = [m.store_packet(pkt(0x23, i, float(i), svc=130), 0.0) for i in range(10)]
        kept = sum(1 for s in stored if s is not None)
        assert kept == 200 // size
        st_ = m.store(SCI)
        assert st_.counters["rejected_full"] == 10 - kept and st_.used <= 200
        events = m.take_events()
        assert [e[0] for e in events] == ["STORE_FULL"] and events[0][1]["STORE_POLICY"] == "STOP"
        # the ground takes everything: the episode ends, a new one reports again
        m.ack(0, 0x23, 0, kept - 1, 0.0, 100.0)
        for i in range(10, 20):
            m.store_packet(pkt(0x23, i, float(i), svc=130), 0.0)
        assert [e[0] for e in m.take_events()] == ["STORE_FULL"]

    def test_overwrite_policy_deletes_the_oldest_and_counts(self) -> None:
        m = manager(hk_cap=200)
        ps = [pkt(0x10, i, float(i)) for i in range(10)]
        for p in ps:
            m.store_packet(p, 0.0)
        st_ = m.store(HK)
        out = drain(m)
        assert out == ps[-len(out):] and st_.counters["overwritten"] == 10 - len(out)
        assert [e[0] for e in m.take_events()] == ["STORE_FULL"]

    def test_too_big_and_disabled(self) -> None:
        m = manager(sci_cap=100)
        assert m.store_packet(pkt(0x23, 0, 0.0, n=200, svc=130), 0.0) is None
        assert m.store(SCI).counters["rejected_full"] == 1
        m.enable(SCI, False)
        assert m.store_packet(pkt(0x23, 1, 0.0, svc=130), 0.0) is None
        assert m.store(SCI).counters["refused_disabled"] == 1
        m.enable(0, True)
        assert m.store_packet(pkt(0x23, 2, 0.0, svc=130), 0.0) is not None

    def test_config_checks(self) -> None:
        with pytest.raises(ValueError):
            StoreConfig(0, "x", 1000)
        with pytest.raises(ValueError):
            StoreConfig(1, "x", 10)
        with pytest.raises(ValueError):
            StoreConfig(1, "x", 1000, policy="drop")
        with pytest.raises(ValueError):
            StorageManager([StoreConfig(1, "a", 1000), StoreConfig(1, "b", 1000)])
        with pytest.raises(ValueError):
            StorageManager([])


class TestPersistence:
    def test_restart_restores_everything_not_acknowledged(self) -> None:
        state = MemoryStore()
        m = manager(state)
        ps = [pkt(0x10, i, float(i)) for i in range(50)]
        for p in ps:
            m.store_packet(p, 0.0)
        drain(m)
        m.ack(0, 0x10, 10, 19, 0.0, 100.0)
        m.flush(1.0)
        m2 = manager(state)
        assert m2.restore(2.0) == 40
        assert drain(m2) == ps[:10] + ps[20:]
        assert m2.store(HK).counters["acked"] == 10
        assert [e[0] for e in m2.take_events()] == ["STORE_RESTORED"]

    def test_writes_grow_with_the_new_data_not_with_the_store(self) -> None:
        state = MemoryStore()
        m = manager(state, hk_cap=10**8)
        for i in range(2000):
            m.store_packet(pkt(0x10, i, float(i)), 0.0)
        m.flush(0.0)
        before_writes = state.writes
        before = sum(map(len, state.data.values()))
        m.store_packet(pkt(0x10, 2000, 2000.0), 0.0)
        m.flush(1.0)
        assert state.writes - before_writes <= 3   # one log record, the meta records
        written = sum(map(len, state.data.values())) - before
        assert written < 1000                      # not the 60 kB the store holds

    def test_old_records_are_deleted_once_everything_in_them_is_acknowledged(self) -> None:
        state = MemoryStore()
        m = manager(state, flush_every=10)
        for i in range(100):
            m.store_packet(pkt(0x10, i, float(i)), 0.0)
        m.flush(0.0)
        assert sum(1 for k, v in state.data.items() if "/r" in k and v) == 10
        m.ack(0, 0x10, 0, 94, 0.0, 1000.0)
        m.flush(1.0)
        live = [k for k, v in state.data.items() if "/r" in k and v]
        assert len(live) <= 2
        m2 = manager(state)
        m2.restore(0.0)
        assert len(m2.store(HK).entries) == 5

    def test_record_written_before_the_meta_update_is_found(self) -> None:
        state = MemoryStore()
        m = manager(state)
        m.store_packet(pkt(0x10, 0, 0.0), 0.0)
        m.flush(0.0)
        m.store_packet(pkt(0x10, 1, 1.0), 0.0)
        state.crash_after = state.writes + 1      # the log record gets written, the meta record not
        with pytest.raises(CrashNow):
            m.flush(1.0)
        state.crash_after = None
        m2 = manager(state)
        assert m2.restore(2.0) == 2

    def test_torn_record_is_reported_never_invented(self) -> None:
        state = MemoryStore()
        m = manager(state, flush_every=1)
        for i in range(3):
            m.store_packet(pkt(0x10, i, float(i)), 0.0)
        key = next(k for k in state.data if k.endswith("/r1"))
        state.data[key] = state.data[key][:-3]
        m2 = manager(state)
        assert m2.restore(0.0) == 2
        assert m2.store(HK).counters["lost_on_restore"] == 1
        ev = [e for e in m2.take_events() if e[0] == "STORE_RESTORED"]
        assert ev[0][1]["STORE_LOST_RECORDS"] == 1

    def test_flush_timer(self) -> None:
        state = MemoryStore()
        m = manager(state, flush_interval_s=2.0)
        m.restore(0.0)
        m.store_packet(pkt(0x10, 0, 0.0), 0.5)
        assert m.next_deadline() == 2.0
        m.run_due(2.0)
        assert manager(state).restore(3.0) == 1

    def test_without_a_state_store(self) -> None:
        m = manager(None)
        m.store_packet(pkt(0x10, 0, 0.0), 0.0)
        m.flush(0.0)
        assert m.restore(0.0) == 0 and len(m.store(HK).entries) == 1


class StoreWithRestarts(RuleBasedStateMachine):
    """Stores, acknowledges, crashes at any write and restarts: nothing stored and flushed is ever lost,
    nothing acknowledged and flushed comes back, and nothing appears that was not stored."""

    def __init__(self) -> None:
        super().__init__()
        self.state = MemoryStore()
        self.m = manager(self.state, hk_cap=10**7, flush_every=10**9)
        self.seq = 0
        self.stored: dict[bytes, bool] = {}       # packet -> durable (flushed)
        self.acked_durable: set[bytes] = set()
        self.acked_pending: set[bytes] = set()
        self.now = 0.0

    @rule(n=st.integers(1, 8))
    def store(self, n: int) -> None:
        for _ in range(n):
            p = pkt(0x10, self.seq, float(self.seq))
            self.seq += 1
            assert self.m.store_packet(p, self.now) is not None
            self.stored[p] = False

    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        if not self.seq:
            return
        a = data.draw(st.integers(0, self.seq - 1))
        b = data.draw(st.integers(a, min(self.seq - 1, a + 20)))
        self.m.ack(0, 0x10, a & 0x3FFF, b & 0x3FFF, float(a), float(b))
        for p in list(self.stored):
            _, seq, _, _, _ = packet_keys(p)
            if a <= seq <= b:
                self.acked_pending.add(p)

    @rule()
    def flush(self) -> None:
        self.m.flush(self.now)
        for p in self.stored:
            self.stored[p] = True
        self.acked_durable |= self.acked_pending
        self.acked_pending.clear()

    @rule(after=st.integers(0, 3))
    def crash_and_restart(self, after: int) -> None:
        self.state.crash_after = self.state.writes + after
        try:
            self.m.flush(self.now)
            for p in self.stored:
                self.stored[p] = True
            self.acked_durable |= self.acked_pending
        except CrashNow:
            pass
        self.state.crash_after = None
        self.m = manager(self.state, hk_cap=10**7, flush_every=10**9)
        self.m.restore(self.now)
        present = {e.data for e in self.m.store(HK).entries.values()}
        for p, durable in list(self.stored.items()):
            # packets stored or acknowledged since the last complete flush may go either way
            if durable and p not in self.acked_durable and p not in self.acked_pending:
                assert p in present, "a flushed, unacknowledged packet was lost"
            if p in self.acked_durable:
                assert p not in present, "an acknowledged packet came back"
        assert present <= set(self.stored), "a packet appeared that was never stored"
        self.acked_durable |= {p for p in self.acked_pending if p not in present}
        self.acked_pending.clear()
        self.stored = {p: True for p in present}
        self.now += 1.0

    @invariant()
    def accounting(self) -> None:
        s = self.m.store(HK)
        assert s.used == sum(len(e.data) for e in s.entries.values())
        assert s.queued + s.unacked == len(s.entries)


StoreWithRestarts.TestCase.settings = settings(max_examples=examples(50), stateful_step_count=25, deadline=None)
TestStoreWithRestarts = StoreWithRestarts.TestCase


def recomputing(m: StorageManager) -> StorageManager:
    """``m`` with its remembered answers forgotten: its next query computes afresh, as before the caches."""
    m.revision += 1
    return m


def store_view(m: StorageManager) -> list:
    """Everything the queries read or trim, store by store."""
    return [(list(s.retx), list(s.fresh), list(s.sent_fifo), s.n_sent,
             [(e.ssn, e.state, e.sent_at) for e in s.entries.values()]) for s in m._order]


class CachedQueries(RuleBasedStateMachine):
    """next_deadline() and has_playback() remember their answers: two managers get the same calls, one
    answers from its caches, the other computes every answer afresh (as before the caches).  They must
    agree at every query -- the deadline is never late, nor early -- and hold the same queues: the stale
    heads a query drops are the same, also when a stale copy becomes valid again (a packet sent, sent back
    to its queue and sent again in one instant).  Each step may be followed by a query (``q``), or not."""

    def __init__(self) -> None:
        super().__init__()
        kw = dict(hk_cap=600, sci_cap=800, ack_timeout_s=30.0, flush_interval_s=2.0, flush_every=9)
        self.a = manager(MemoryStore(), **kw)
        self.b = manager(MemoryStore(), **kw)
        self.now = 0.0
        self.seq = 0

    def both(self, call, q: bool) -> None:
        assert call(self.a) == call(self.b)
        if q:
            self.query()

    @rule(n=st.integers(1, 3), science=st.booleans(), sent=st.booleans(), q=st.booleans())
    def store(self, n: int, science: bool, sent: bool, q: bool) -> None:
        for _ in range(n):
            p = pkt(0x23 if science else 0x10, self.seq, float(self.seq), svc=130 if science else 3)
            self.seq += 1
            self.both(lambda m: m.store_packet(p, self.now, sent=sent), q)

    @rule(dt=st.sampled_from([0.0, 0.0, 0.5, 3.0, 31.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(k=st.integers(1, 3), q=st.booleans())
    def play(self, k: int, q: bool) -> None:
        for _ in range(k):
            self.both(lambda m: m.next_playback(self.now), q)

    @rule(q=st.booleans())
    def run_due(self, q: bool) -> None:
        self.both(lambda m: m.run_due(self.now), q)

    @rule(q=st.booleans())
    def flush(self, q: bool) -> None:
        self.both(lambda m: m.flush(self.now), q)

    @rule(data=st.data(), how=st.sampled_from(["ack", "retransmit"]), q=st.booleans())
    def ground_range(self, data: st.DataObject, how: str, q: bool) -> None:
        if not self.seq:
            return
        a = data.draw(st.integers(0, self.seq - 1))
        b = data.draw(st.integers(a, min(self.seq - 1, a + 6)))
        apid = data.draw(st.sampled_from([0x10, 0x23]))
        self.both(lambda m: getattr(m, how)(0, apid, a, b, float(a), float(b)), q)

    @rule(data=st.data(), q=st.booleans())
    def requeue(self, data: st.DataObject, q: bool) -> None:
        sid = data.draw(st.sampled_from([HK, SCI]))
        ssns = sorted(self.a.store(sid).entries)
        if ssns:
            ssn = data.draw(st.sampled_from(ssns))
            self.both(lambda m: m.requeue(sid, ssn), q)

    @rule(t=st.floats(0.0, 60.0), delete=st.booleans(), q=st.booleans())
    def by_time(self, t: float, delete: bool, q: bool) -> None:
        if delete:
            self.both(lambda m: m.delete_up_to(0, t), q)
        else:
            self.both(lambda m: m.retrieve_time(0, 0.0, t), q)

    @rule(window=st.sampled_from([0.0, 1.0, 10.0]), q=st.booleans())
    def rf_lost(self, window: float, q: bool) -> None:
        self.both(lambda m: m.rf_lost(self.now, window), q)

    @rule()
    def query(self) -> None:
        assert self.a.next_deadline() == recomputing(self.b).next_deadline()
        assert self.a.has_playback() == recomputing(self.b).has_playback()

    @invariant()
    def same_stores(self) -> None:
        assert store_view(self.a) == store_view(self.b)


CachedQueries.TestCase.settings = settings(max_examples=examples(150), stateful_step_count=40, deadline=None)
TestCachedQueries = CachedQueries.TestCase


class TestMetaRecord:
    def test_the_hand_encoded_meta_record_is_the_sealed_json(self) -> None:
        state = MemoryStore()
        m = manager(state, hk_cap=400)
        for i in range(40):
            m.store_packet(pkt(0x10, i, float(i)), 0.0, sent=i % 3 == 0)
        drain(m)
        m.ack(0, 0x10, 3, 9, 0.0, 100.0)
        m.retransmit(0, 0x10, 30, 35, 0.0, 100.0)
        m.enable(SCI, False)
        m.flush(1.0)
        for sid, s in m.stores.items():
            assert state.data[f"pus15/{sid}/m"] == seal(s.meta())
        assert m.store(HK).meta()["counters"]["overwritten"] > 0 and not m.store(SCI).meta()["enabled"]

    @given(st.lists(st.integers(0, 2**40), max_size=30))
    def test_seal_json_frames_like_seal(self, values: list[int]) -> None:
        obj = {"b": values, "a": {"y": 1, "x": True}}
        body = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        head = b"LPE1" + len(body).to_bytes(4, "big")
        assert seal_json(body) == seal(obj) == head + body + crc16(head + body).to_bytes(2, "big")
        assert unseal(seal(obj)) == obj


class TestDictionary:
    def test_hk_rows_match_the_dictionary(self, dictionary) -> None:
        m = StorageManager(default_stores(dictionary))
        pkt_def = dictionary.lander.packet("STORAGE_HK")
        rows = m.hk_rows()
        assert len(rows) == 6
        assert set(rows[0]) == {p.name for p in pkt_def.params}
        for r in rows:
            dictionary.encode_tm(pkt_def, r)

    def test_default_stores_and_router(self, dictionary) -> None:
        stores = default_stores(dictionary)
        by = {s.name: s for s in stores}
        assert by["HK_EVENTS"].policy == OVERWRITE and by["HK_EVENTS"].priority == 0
        assert by["LUSEE_SCI"].policy == STOP
        route = dictionary_router(dictionary, stores)
        lusee = dictionary.system("LUSEE")
        sci = next(p for p in lusee.telemetry if p.category == "science")
        hk = next(p for p in lusee.telemetry if p.category == "hk")
        assert route(lusee.apid, sci.service, sci.subservice) == by["LUSEE_SCI"].store_id
        assert route(lusee.apid, hk.service, hk.subservice) == by["HK_EVENTS"].store_id
        assert route(0x7F0, 3, 25) == by["OTHER"].store_id

    def test_events_match_the_dictionary(self, dictionary) -> None:
        m = manager(sci_cap=100)
        for i in range(5):
            m.store_packet(pkt(0x23, i, 0.0, svc=130), 0.0)
        m.retransmit(0, 0x10, 1, 2, 0.0, 1.0)
        for name, args in m.take_events():
            evt = dictionary.event("LANDER", name)
            dictionary.encode_event(evt, args)
