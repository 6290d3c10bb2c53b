"""PUS 11 time-based scheduling: codecs, ordering, ties, the past, a full schedule, reports, restarts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.flight import FlightSoftware
from fsw.core.planning import ActivityPlanner
from fsw.core.pusgen import TmSource
from fsw.core.schedule import (
    TICKS_PER_S, ScheduleError, ScheduleService, TimeSchedule, decode_detail_report, decode_insert, decode_rids,
    decode_summary_report, encode_insert, encode_rids, rid_of,
)
from fsw.core.sequences import Sequencer
from fsw.core.state import MemoryStore, save_record
from fsw.dictionary import load_dictionary
from fsw.protocol.framing import Deframer
from fsw.protocol.pus import PusTc, PusTm, parse_packet
from tests.conftest import examples

T0 = 1000.0


class Harness:
    """The flight software core with only the scheduling components, stepped by hand on simulated time."""

    def __init__(self, store: MemoryStore | None = None, t0: float = T0, capacity: int = 64,
                 library: Any = (), planning: Any = None, late_window_s: float = 60.0,
                 initial_phase: str = "PRELAUNCH") -> None:
        self.d = load_dictionary()
        self.store = store if store is not None else MemoryStore()
        self.fsw = FlightSoftware(self.d, self.store, initial_phase=initial_phase)
        self.sched = ScheduleService(self.fsw, capacity, late_window_s=late_window_s)
        self.seq = Sequencer(self.fsw, self.sched, library)
        self.planner = ActivityPlanner(self.fsw, self.sched, planning)
        self.now = t0
        self.tm: list[tuple[float, PusTm]] = []
        self.to_units: dict[str, list[tuple[float, PusTc]]] = defaultdict(list)
        self._deframers = {p: Deframer(self.d.max_packet) for p in self.fsw.ports}
        self.seqno = 0
        self.fsw.start(t0)
        self._collect()

    # -- driving -----------------------------------------------------------------------------------------
    def _collect(self) -> None:
        for port, data in self.fsw.take_output():
            for item in self._deframers[port].feed(data):
                pkt = parse_packet(item)
                if port == "ground":
                    self.tm.append((self.now, pkt))
                else:
                    self.to_units[port].append((self.now, pkt))

    def run_until(self, t: float) -> None:
        while True:
            deadline = self.fsw.next_deadline()
            if deadline > t:
                break
            self.now = max(self.now, deadline)
            self.fsw.run_due(self.now)
            self._collect()
        self.now = t

    def run(self, dt: float) -> None:
        self.run_until(self.now + dt)

    def tc(self, name: str, system: str | None = None, raw: bytes | None = None, **args: Any) -> PusTc:
        cmd = self.d.command(name, system)
        data = self.d.encode_command(cmd, args) if raw is None else (
            (cmd.function_id.to_bytes(2, "big") if cmd.function_id is not None else b"") + raw)
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, data, seq_count=self.seqno)
        self.seqno += 1
        return tc

    def send(self, tc: PusTc) -> PusTc:
        self.fsw.handle_tc(tc, self.now)
        self._collect()
        self.run(0)
        return tc

    def command(self, name: str, system: str | None = None, raw: bytes | None = None, **args: Any) -> PusTc:
        return self.send(self.tc(name, system, raw, **args))

    def unit_tm(self, unit: str, packet: str, values: dict[str, Any]) -> None:
        """A unit's housekeeping packet arrives at the flight software."""
        s = self.d.system(unit)
        data = TmSource(self.d, s.apid).packet(s.packet(packet), values, self.now)
        self.fsw.link_changed(s.port, True, self.now)
        self.fsw.on_packet(s.port, data, self.now)
        self._collect()
        self.run(0)

    def unit_report(self, tc: PusTc, subservice: int, code: str | None = None) -> None:
        """A unit's PUS-1 report for ``tc`` arrives."""
        s = self.d.system_by_apid(tc.apid)
        src = (0x1800 | tc.apid).to_bytes(2, "big") + ((tc.seq_flags << 14) | tc.seq_count).to_bytes(2, "big")
        if code is not None:
            src += self.d.failure_code(code).to_bytes(2, "big") + bytes(4)
        self.fsw.on_packet(s.port, TmSource(self.d, s.apid).make(1, subservice, src, self.now), self.now)
        self._collect()
        self.run(0)

    # -- looking ----------------------------------------------------------------------------------------
    def verif(self, tc: PusTc) -> list[tuple[int, str | None, int]]:
        """(subservice, failure code, failure data) of the lander's PUS-1 reports for ``tc``."""
        out = []
        for _, tm in self.tm:
            if tm.service != 1 or tm.apid != self.d.lander.apid:
                continue
            sd = tm.source_data
            if int.from_bytes(sd[:2], "big") == 0x1800 | tc.apid and int.from_bytes(sd[2:4], "big") & 0x3FFF \
                    == tc.seq_count:
                if tm.subservice in (2, 4, 6, 8):
                    off = 5 if tm.subservice == 6 else 4
                    out.append((tm.subservice, self.d.failure_name(int.from_bytes(sd[off:off + 2], "big")),
                                int.from_bytes(sd[off + 2:off + 6], "big")))
                else:
                    out.append((tm.subservice, None, 0))
        return out

    def events(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        evt = self.d.lander.event(name)
        return [(t, self.d.event_codec(evt).decode(tm.source_data[2:])) for t, tm in self.tm
                if tm.service == 5 and tm.apid == self.d.lander.apid
                and int.from_bytes(tm.source_data[:2], "big") == evt.id]

    def pings(self) -> list[float]:
        """Times of the lander's TM[17,2] replies."""
        return [t for t, tm in self.tm if tm.service == 17 and tm.subservice == 2]

    def hk(self) -> dict[str, Any]:
        pkt = self.d.lander.packet("SCHED_HK")
        self.fsw.hk.send_now(pkt.sid, self.now)
        self._collect()
        tm = next(tm for _, tm in reversed(self.tm) if tm.service == 3 and tm.source_data[:2] == b"\x00\x06")
        return self.d.codec(pkt).decode(tm.source_data)


def insert(h: Harness, *items: tuple[float, PusTc]) -> PusTc:
    return h.command("SCHED_INSERT", raw=encode_insert(items))


# -- codecs ---------------------------------------------------------------------------------------------
_tcs = st.builds(PusTc, apid=st.integers(0, 0x7FE), service=st.integers(1, 255), subservice=st.integers(1, 255),
                 app_data=st.binary(max_size=40), seq_count=st.integers(0, 0x3FFF),
                 source_id=st.integers(0, 0xFFFF), ack_flags=st.integers(0, 15), seq_flags=st.integers(0, 3))


@given(st.lists(st.tuples(st.integers(0, 2**40), _tcs), max_size=8))
@settings(max_examples=examples(100))
def test_insert_codec_round_trips(items: list[tuple[int, PusTc]]) -> None:
    data = encode_insert([(ticks / TICKS_PER_S, tc) for ticks, tc in items])
    assert decode_insert(data) == [(ticks, tc.pack()) for ticks, tc in items]
    assert decode_detail_report(data) == [(ticks / TICKS_PER_S, tc) for ticks, tc in items]


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0x7FF), st.integers(0, 0x3FFF)), max_size=10),
       st.integers(-2**31, 2**31 - 1))
@settings(max_examples=examples(100))
def test_rid_codec_round_trips(rids: list[tuple[int, int, int]], offset: int) -> None:
    assert decode_rids(encode_rids(rids)) == (0, rids)
    assert decode_rids(encode_rids(rids, offset), with_offset=True) == (offset, rids)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x01", b"\x00\x01" + bytes(8),
                                  encode_insert([(5.0, PusTc(0x10, 17, 1))]) + b"\x00",
                                  encode_insert([(5.0, PusTc(0x10, 17, 1))])[:-1]])
def test_truncated_or_padded_insert_data_is_bad_length(data: bytes) -> None:
    with pytest.raises(ScheduleError) as exc:
        decode_insert(data)
    assert exc.value.code == "BAD_LENGTH"


# -- the schedule data structure ------------------------------------------------------------------------
@given(st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=4), max_size=10))
@settings(max_examples=examples(200))
def test_order_is_release_time_then_filing_order(batches: list[list[int]]) -> None:
    s = TimeSchedule(capacity=100)
    filed: list[tuple[int, int]] = []  # (ticks, seq)
    n = 0
    for batch in batches:
        items = []
        for t in batch:
            items.append((t * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=n)))
            filed.append((t * TICKS_PER_S, n))
            n += 1
        s.insert(items, 0)
    got = [(a.ticks, a.tc.seq_count) for a in s]
    assert got == sorted(filed, key=lambda x: x[0])  # stable sort: ties keep filing order


def test_insert_is_all_or_nothing_and_refuses_the_past_duplicates_and_overflow() -> None:
    s = TimeSchedule(capacity=3)
    ok = (20 * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=1))
    past = (9 * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=2))
    with pytest.raises(ScheduleError) as exc:
        s.insert([ok, past], min_ticks=10 * TICKS_PER_S)
    assert (exc.value.code, exc.value.data, len(s)) == ("BAD_TIME", 1, 0)
    s.insert([ok], 0)
    with pytest.raises(ScheduleError) as exc:
        s.insert([(30 * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=1))], 0)
    assert (exc.value.code, exc.value.data) == ("ARG_OUT_OF_RANGE", 0)
    s.insert([(21 * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=5))], 0)
    with pytest.raises(ScheduleError) as exc:
        s.insert([(22 * TICKS_PER_S, PusTc(0x10, 17, 1, seq_count=k)) for k in (6, 7)], 0)
    assert (exc.value.code, exc.value.data, len(s)) == ("SCHEDULE_FULL", 1, 2)


def test_delete_and_shift_are_all_or_nothing() -> None:
    s = TimeSchedule()
    tcs = [PusTc(0x10, 17, 1, seq_count=k) for k in range(3)]
    s.insert([(k * 10 * TICKS_PER_S, tc) for k, tc in enumerate(tcs, 1)], 0)
    with pytest.raises(ScheduleError) as exc:
        s.delete([rid_of(tcs[0]), (0, 0x10, 99)])
    assert (exc.value.code, exc.value.data, len(s)) == ("UNKNOWN_ID", 1, 3)
    with pytest.raises(ScheduleError) as exc:
        s.shift(-15 * TICKS_PER_S, None, min_ticks=0)  # the first would move to -5 s
    assert exc.value.code == "BAD_TIME"
    assert [a.release for a in s] == [10.0, 20.0, 30.0]
    s.shift(15 * TICKS_PER_S, [rid_of(tcs[0])], 0)
    assert [(a.release, a.tc.seq_count) for a in s] == [(20.0, 1), (25.0, 0), (30.0, 2)]
    s.delete([rid_of(tcs[1])])
    assert [a.tc.seq_count for a in s] == [0, 2]


# -- the service in the flight software --------------------------------------------------------------------
def test_released_tcs_go_through_the_dispatcher_in_time_order_with_ties_in_filing_order() -> None:
    h = Harness()
    a, b, c = h.tc("PING"), h.tc("PING"), h.tc("PING")
    ins = insert(h, (T0 + 10, a), (T0 + 5, b), (T0 + 5, c))
    assert h.verif(ins) == [(1, None, 0), (3, None, 0), (7, None, 0)]
    h.run(4.9)
    assert h.pings() == []
    h.run(10)
    assert h.pings() == [T0 + 5, T0 + 5, T0 + 10]
    for tc in (a, b, c):  # each released TC gets its own verification reports
        assert [v[0] for v in h.verif(tc)] == [1, 3, 7]
    released = [e["SCHED_EVT_SEQ"] for _, e in h.events("SCHED_RELEASED")]
    assert released == [b.seq_count, c.seq_count, a.seq_count]
    hk = h.hk()
    assert (hk["SCHED_COUNT"], hk["SCHED_RELEASED"], hk["SCHED_NEXT"]) == (0, 3, 0.0)


def test_insert_refusals_name_the_instruction() -> None:
    h = Harness()
    good = h.tc("PING")
    past = insert(h, (T0 + 5, good), (T0 - 1, h.tc("PING")))
    assert h.verif(past)[-1] == (4, "BAD_TIME", 1)
    bad_crc = h.tc("PING").pack()[:-1] + b"\x00"
    tc = h.command("SCHED_INSERT", raw=encode_insert([(T0 + 5, bad_crc)]))
    assert h.verif(tc)[-1][:2] == (4, "BAD_CRC")
    tc = h.command("SCHED_INSERT", raw=encode_insert([(T0 + 5, PusTc(0x555, 17, 1))]))
    assert h.verif(tc)[-1] == (4, "ILLEGAL_APID", 0)
    lusee = h.d.command("LUSEE_SET_INTEGRATION")
    bad_arg = PusTc(lusee.apid, 8, 1, h.d.encode_command(lusee, {"integration_ms": 1000})[:-2] + b"\x00\x01")
    tc = h.command("SCHED_INSERT", raw=encode_insert([(T0 + 5, good), (T0 + 6, bad_arg)]))
    assert h.verif(tc)[-1] == (4, "ARG_OUT_OF_RANGE", 1)
    tc = h.command("SCHED_INSERT", raw=b"\x00\x02" + bytes(3))
    assert h.verif(tc) == [(2, "BAD_LENGTH", 0)]
    assert len(h.sched.schedule) == 0
    assert h.hk()["SCHED_REFUSED"] == 5


def test_full_schedule_is_refused_without_change() -> None:
    h = Harness(capacity=4)
    insert(h, *[(T0 + 10 + k, h.tc("PING")) for k in range(3)])
    tc = insert(h, (T0 + 20, h.tc("PING")), (T0 + 21, h.tc("PING")))
    assert h.verif(tc)[-1] == (4, "SCHEDULE_FULL", 1)
    assert len(h.sched.schedule) == 3


def test_delete_shift_and_reports() -> None:
    h = Harness()
    tcs = [h.tc("PING") for _ in range(4)]
    insert(h, *[(T0 + 10 * (k + 1), tc) for k, tc in enumerate(tcs)])
    h.command("SCHED_DELETE", raw=encode_rids([rid_of(tcs[1])]))
    h.command("SCHED_SHIFT", raw=encode_rids([rid_of(tcs[0])], offset_ms=25_500))  # 10 s -> 35.5 s
    h.command("SCHED_SHIFT_ALL", offset_ms=-2_000)
    h.command("SCHED_SUMMARY_ALL")
    summary = [tm for _, tm in h.tm if (tm.service, tm.subservice) == (11, 13)][-1]
    assert decode_summary_report(summary.source_data) == [
        (T0 + 28, rid_of(tcs[2])), (T0 + 33.5, rid_of(tcs[0])), (T0 + 38, rid_of(tcs[3]))]
    h.command("SCHED_DETAIL", raw=encode_rids([rid_of(tcs[3])]))
    detail = [tm for _, tm in h.tm if (tm.service, tm.subservice) == (11, 10)][-1]
    assert decode_detail_report(detail.source_data) == [(T0 + 38, tcs[3])]
    unknown = h.command("SCHED_DELETE", raw=encode_rids([rid_of(tcs[1])]))
    assert h.verif(unknown)[-1] == (4, "UNKNOWN_ID", 0)
    into_past = h.command("SCHED_SHIFT_ALL", offset_ms=-60_000)
    assert h.verif(into_past)[-1][:2] == (4, "BAD_TIME")
    h.run(40)
    assert h.pings() == [T0 + 28, T0 + 33.5, T0 + 38]


def test_detail_report_of_a_long_schedule_is_split_over_packets() -> None:
    h = Harness(capacity=300)
    tcs = [h.tc("PING") for _ in range(300)]
    for k in range(0, 300, 100):
        insert(h, *[(T0 + 10 + j, tc) for j, tc in enumerate(tcs[k:k + 100], k)])
    h.command("SCHED_DETAIL_ALL")
    reports = [tm for _, tm in h.tm if (tm.service, tm.subservice) == (11, 10)]
    assert len(reports) >= 2
    assert all(len(tm.pack()) <= h.d.max_packet for tm in reports)
    assert [tc for tm in reports for _, tc in decode_detail_report(tm.source_data)] == tcs


def test_disable_holds_releases_and_enable_releases_or_skips_by_age() -> None:
    h = Harness(late_window_s=30)
    soon, later = h.tc("PING"), h.tc("PING")
    insert(h, (T0 + 5, soon), (T0 + 50, later))
    h.command("SCHED_DISABLE")
    h.run(100)  # both due while disabled
    assert h.pings() == []
    h.command("SCHED_ENABLE")  # soon is 95 s late (skipped), later 50 s late... also skipped
    h.run(1)
    assert h.pings() == []
    assert [e["SCHED_EVT_SEQ"] for _, e in h.events("SCHED_SKIPPED_TC")] == [soon.seq_count, later.seq_count]
    again = h.tc("PING")
    insert(h, (h.now + 5, again))
    h.command("SCHED_DISABLE")
    h.run(20)
    h.command("SCHED_ENABLE")  # 15 s late: within the window, released at once
    assert h.pings() == [h.now]
    assert [v[0] for v in h.verif(again)] == [1, 3, 7]
    assert [t for t, _ in h.events("SCHED_ENABLED")] and h.events("SCHED_DISABLED")


def test_reset_clears_and_disables() -> None:
    h = Harness()
    insert(h, (T0 + 5, h.tc("PING")), (T0 + 6, h.tc("PING")))
    h.command("SCHED_RESET")
    assert len(h.sched.schedule) == 0 and not h.sched.enabled
    assert h.events("SCHED_CLEARED")[-1][1]["SCHED_EVT_COUNT"] == 2
    h.run(10)
    assert h.pings() == []


def test_schedule_survives_a_restart_with_its_order() -> None:
    store = MemoryStore()
    h = Harness(store)
    first, second = h.tc("PING"), h.tc("PING")
    insert(h, (T0 + 100, first), (T0 + 100, second))
    h.run(30)
    # restart at T0+40: a new flight software on the same durable store
    h2 = Harness(store, t0=T0 + 40)
    assert h2.events("SCHED_RESTORED")[0][1] == {"SCHED_EVT_COUNT": 2, "SCHED_EVT_ON": True}
    third = h2.tc("PING")
    third = third._replace(seq_count=99)
    insert(h2, (T0 + 100, third))  # a tie filed after the restart goes after the older ones
    h2.run(100)
    assert h2.pings() == [T0 + 100] * 3
    assert [e["SCHED_EVT_SEQ"] for _, e in h2.events("SCHED_RELEASED")] == [
        first.seq_count, second.seq_count, 99]
    # disabled state survives too
    h2.command("SCHED_DISABLE")
    assert Harness(store, t0=T0 + 300).sched.enabled is False


def test_restart_after_the_release_time_releases_late_only_within_the_window() -> None:
    store = MemoryStore()
    h = Harness(store)
    near, far = h.tc("PING"), h.tc("PING")
    insert(h, (T0 + 10, far), (T0 + 70, near))
    h2 = Harness(store, t0=T0 + 90)  # far is 80 s late, near 20 s late (window 60 s)
    h2.run(0)
    assert h2.pings() == [T0 + 90]
    assert [e["SCHED_EVT_SEQ"] for _, e in h2.events("SCHED_RELEASED")] == [near.seq_count]
    assert [e["SCHED_EVT_SEQ"] for _, e in h2.events("SCHED_SKIPPED_TC")] == [far.seq_count]


def test_a_crash_at_release_never_releases_twice() -> None:
    store = MemoryStore()
    h = Harness(store)
    tc = h.tc("PING")
    insert(h, (T0 + 10, tc))
    store.crash_after = store.writes  # the next durable write fails: the release's own record update
    with pytest.raises(Exception, match="simulated crash"):
        h.run(20)
    assert h.pings() == []
    store.crash_after = None
    h2 = Harness(store, t0=T0 + 15)
    h2.run(0)
    h2.run(100)
    assert h2.pings() == [T0 + 15]  # released once, after the restart
    h3 = Harness(store, t0=T0 + 200)
    h3.run(100)
    assert h3.pings() == []


def test_a_corrupt_record_gives_an_empty_disabled_schedule_and_an_event() -> None:
    store = MemoryStore()
    save_record(store, "schedule", {"enabled": True, "next_order": 3, "entries": [[1, 2, "zz"]]})
    h = Harness(store)
    assert h.events("SCHED_STATE_LOST") and not h.sched.enabled and len(h.sched.schedule) == 0
    store.data["schedule"] = b"LPE1garbage"
    h = Harness(store)
    assert h.events("SCHED_STATE_LOST")


def test_scheduled_commands_for_units_are_routed_at_release() -> None:
    h = Harness()
    h.fsw.link_changed("fss", True, h.now)
    tc = h.tc("FSS_SET_MODE", mode="CHECKOUT")
    insert(h, (T0 + 3, tc))
    h.run(5)
    routed = [(t, p) for t, p in h.to_units["fss"] if isinstance(p, PusTc)]
    assert routed == [(T0 + 3, tc)]
