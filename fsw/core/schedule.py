"""PUS 11, time-based scheduling: telecommands released at absolute times.

ECSS-E-ST-70-41C section 6.11 (service definition) and 8.11 (packet layouts).
Subtypes implemented (the dictionary declares them in ``lander_schedule.yaml``):

====================  =======================================================================
TC[11,1]  / [11,2]    enable / disable the time-based schedule execution function
TC[11,3]              reset the time-based schedule (delete everything, disable)
TC[11,4]              insert activities                               (raw application data)
TC[11,5]              delete activities identified by request id      (raw)
TC[11,7]              time-shift activities identified by request id  (raw)
TC[11,9]  -> TM[11,10] detail-report activities identified by request id  (raw)
TC[11,12] -> TM[11,13] summary-report activities identified by request id (raw)
TC[11,15]             time-shift all scheduled activities
TC[11,16] -> TM[11,10] detail-report all activities
TC[11,17] -> TM[11,13] summary-report all activities
====================  =======================================================================

Sub-schedules and groups (TC[11,18..27]) and the filter variants (TC[11,6],
[11,8], [11,11], [11,14]) are not implemented.

Layouts (big-endian; ``RID`` = request id = source id u16, APID u16, sequence
count u16 of the scheduled TC; ``CUC`` = 4+2 octet mission time):

* TC[11,4]:  ``N u16`` then N x (``CUC`` release time, complete TC packet)
* TC[11,5], [11,9], [11,12]: ``N u16`` then N x ``RID``
* TC[11,7]:  ``offset i32 (ms)``, ``N u16``, N x ``RID``
* TM[11,10]: ``N u16`` then N x (``CUC``, complete TC packet); split over packets
* TM[11,13]: ``N u16`` then N x (``CUC``, ``RID``)

Rules (see docs/scheduling.md):

* Every request is all or nothing: one bad instruction fails the whole TC with
  a PUS-1 failure whose data is the instruction's index, and nothing changes.
  (ECSS processes the valid instructions of a partly bad request; all or
  nothing lets the ground know exactly what is on board.)
* Order: by release time, then by insertion order (ties keep filing order,
  across restarts too).
* A release time before ``now + min_lead_s`` is refused (``BAD_TIME``), for
  inserts and shifts alike.  A request id already in the schedule is refused.
* Release: the TC goes to :meth:`FlightSoftware.handle_tc`, exactly as if the
  ground had sent it, so it gets its own verification reports.  The entry is
  removed from durable state *before* the TC is handed on: at most once.
* An activity found more than ``late_window_s`` past its release time (after a
  restart, a long disable or a stalled runner) is dropped with the
  ``SCHED_SKIPPED_TC`` event instead of being released late.
* The schedule (entries, order counter, enabled flag) is a durable record: it
  survives a restart.  A corrupt record reads as an empty, disabled schedule
  and raises ``SCHED_STATE_LOST``.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..dictionary import ArgumentError
from ..protocol.errors import DecodeError
from ..protocol.pus import CRC_LEN, TM_HEADER_LEN, PusTc, parse_packet
from ..protocol.timecode import CUC_LEN, MAX_COARSE
from .state import load_record, save_record

if TYPE_CHECKING:
    from ..dictionary import Command, Dictionary
    from .flight import FlightSoftware
    from .timers import Timer

#: (source id, APID, sequence count) of a scheduled TC
Rid = tuple[int, int, int]

TICKS_PER_S = 65536
MAX_TICKS = (MAX_COARSE << 16) | 0xFFFF
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_CUC = struct.Struct(">IH")
_RID = struct.Struct(">HHH")
_PRIMARY = 6


class ScheduleError(Exception):
    """A schedule request is refused: ``code`` is a FAILURE_CODE name, ``data`` the failure data."""

    def __init__(self, code: str, data: int = 0, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.data = data


def to_ticks(seconds: float) -> int:
    """Mission seconds -> CUC ticks (2**-16 s), rounded down like the wire format."""
    return int(seconds * TICKS_PER_S)


def rid_of(tc: PusTc) -> Rid:
    return (tc.source_id, tc.apid, tc.seq_count)


# -- application data codecs (pure; the ground builds its requests with these) -----------------------
def encode_insert(items: Iterable[tuple[float, "PusTc | bytes"]]) -> bytes:
    """TC[11,4] application data for (release time in mission seconds, TC) pairs."""
    body = []
    for t, tc in items:
        ticks = to_ticks(t)
        if not 0 <= ticks <= MAX_TICKS:
            raise ValueError(f"release time {t!r} s outside the CUC range")
        body.append(_CUC.pack(ticks >> 16, ticks & 0xFFFF) + (tc.pack() if isinstance(tc, PusTc) else bytes(tc)))
    return _U16.pack(len(body)) + b"".join(body)


def encode_rids(rids: Sequence[Rid], offset_ms: int | None = None) -> bytes:
    """TC[11,5]/[11,9]/[11,12] application data; with ``offset_ms`` the TC[11,7] layout."""
    head = b"" if offset_ms is None else _I32.pack(offset_ms)
    return head + _U16.pack(len(rids)) + b"".join(_RID.pack(*r) for r in rids)


def decode_insert(data: bytes) -> list[tuple[int, bytes]]:
    """(release ticks, TC bytes) per instruction; raises :class:`ScheduleError` (data = index)."""
    if len(data) < 2:
        raise ScheduleError("BAD_LENGTH", 0, "no instruction count")
    n = _U16.unpack_from(data)[0]
    off = 2
    out = []
    for i in range(n):
        if len(data) - off < CUC_LEN + _PRIMARY:
            raise ScheduleError("BAD_LENGTH", i, f"instruction {i} is truncated")
        coarse, fine = _CUC.unpack_from(data, off)
        off += CUC_LEN
        size = _PRIMARY + ((data[off + 4] << 8) | data[off + 5]) + 1
        if len(data) - off < size:
            raise ScheduleError("BAD_LENGTH", i, f"instruction {i}: TC needs {size} octets")
        out.append(((coarse << 16) | fine, bytes(data[off:off + size])))
        off += size
    if off != len(data):
        raise ScheduleError("BAD_LENGTH", n, f"{len(data) - off} octets after the last instruction")
    return out


def decode_rids(data: bytes, with_offset: bool = False) -> tuple[int, list[Rid]]:
    """(offset in ms or 0, request ids); raises :class:`ScheduleError`."""
    off = 4 if with_offset else 0
    if len(data) < off + 2:
        raise ScheduleError("BAD_LENGTH", 0, "application data too short")
    offset = _I32.unpack_from(data)[0] if with_offset else 0
    n = _U16.unpack_from(data, off)[0]
    off += 2
    if len(data) != off + n * _RID.size:
        raise ScheduleError("BAD_LENGTH", n, f"{n} request ids need {off + n * _RID.size} octets, got {len(data)}")
    return offset, [_RID.unpack_from(data, off + k * _RID.size) for k in range(n)]


def decode_detail_report(source_data: bytes) -> list[tuple[float, PusTc]]:
    """TM[11,10] source data -> (release time, TC) pairs."""
    return [(ticks / TICKS_PER_S, parse_packet(tc)) for ticks, tc in decode_insert(source_data)]  # type: ignore[misc]


def decode_summary_report(source_data: bytes) -> list[tuple[float, Rid]]:
    """TM[11,13] source data -> (release time, request id) pairs."""
    n = _U16.unpack_from(source_data)[0]
    step = CUC_LEN + _RID.size
    if len(source_data) != 2 + n * step:
        raise ValueError(f"summary report of {n} entries needs {2 + n * step} octets, got {len(source_data)}")
    out = []
    for k in range(n):
        coarse, fine = _CUC.unpack_from(source_data, 2 + k * step)
        out.append((coarse + fine / TICKS_PER_S, _RID.unpack_from(source_data, 2 + k * step + CUC_LEN)))
    return out


# -- the schedule itself (pure data structure) -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Activity:
    ticks: int       # release time, CUC ticks
    order: int       # insertion order: breaks ties
    tc: PusTc

    @property
    def release(self) -> float:
        return self.ticks / TICKS_PER_S

    @property
    def rid(self) -> Rid:
        return rid_of(self.tc)

    @property
    def key(self) -> tuple[int, int]:
        return (self.ticks, self.order)


class TimeSchedule:
    """Activities ordered by (release time, insertion order), with a capacity; every change is atomic."""

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: list[Activity] = []
        self._by_rid: dict[Rid, Activity] = {}
        self.next_order = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    def first(self) -> Activity | None:
        return self._items[0] if self._items else None

    def get(self, rid: Rid) -> Activity | None:
        return self._by_rid.get(rid)

    def insert(self, items: Sequence[tuple[int, PusTc]], min_ticks: int) -> list[Activity]:
        """Insert (ticks, TC) pairs; all or nothing.  Raises :class:`ScheduleError` (data = index)."""
        if len(self._items) + len(items) > self.capacity:
            raise ScheduleError("SCHEDULE_FULL", self.capacity - len(self._items),
                                f"{len(items)} activities do not fit in {self.capacity - len(self._items)} free slots")
        seen: set[Rid] = set()
        for i, (ticks, tc) in enumerate(items):
            if ticks < min_ticks or ticks > MAX_TICKS:
                raise ScheduleError("BAD_TIME", i, f"instruction {i}: release time {ticks / TICKS_PER_S:.3f} s "
                                    f"is before {min_ticks / TICKS_PER_S:.3f} s or out of range")
            rid = rid_of(tc)
            if rid in self._by_rid or rid in seen:
                raise ScheduleError("ARG_OUT_OF_RANGE", i, f"instruction {i}: request id {rid} already scheduled")
            seen.add(rid)
        added = []
        for ticks, tc in items:
            a = Activity(ticks, self.next_order, tc)
            self.next_order += 1
            self._add(a)
            added.append(a)
        return added

    def _add(self, a: Activity) -> None:
        keys = [x.key for x in self._items]
        self._items.insert(bisect.bisect_right(keys, a.key), a)
        self._by_rid[a.rid] = a

    def _check_known(self, rids: Sequence[Rid]) -> None:
        for i, rid in enumerate(rids):
            if tuple(rid) not in self._by_rid:
                raise ScheduleError("UNKNOWN_ID", i, f"request id {tuple(rid)} is not in the schedule")

    def remove(self, a: Activity) -> None:
        self._items.remove(a)
        del self._by_rid[a.rid]

    def delete(self, rids: Sequence[Rid]) -> list[Activity]:
        self._check_known(rids)
        gone = []
        for rid in rids:
            a = self._by_rid.get(tuple(rid))
            if a is not None:  # the same id twice in one request deletes it once
                self.remove(a)
                gone.append(a)
        return gone

    def clear(self) -> int:
        n = len(self._items)
        self._items.clear()
        self._by_rid.clear()
        return n

    def shift(self, delta_ticks: int, rids: Sequence[Rid] | None, min_ticks: int) -> int:
        """Move the given activities (all when ``rids`` is None) by ``delta_ticks``; all or nothing."""
        if rids is None:
            targets = list(self._items)
        else:
            self._check_known(rids)
            targets = list({tuple(r): self._by_rid[tuple(r)] for r in rids}.values())
        for i, a in enumerate(targets):
            t = a.ticks + delta_ticks
            if t < min_ticks or t > MAX_TICKS:
                raise ScheduleError("BAD_TIME", i, f"activity {a.rid} would move to {t / TICKS_PER_S:.3f} s")
        for a in targets:
            self.remove(a)
        for a in targets:
            self._add(Activity(a.ticks + delta_ticks, a.order, a.tc))
        return len(targets)

    def select(self, rids: Sequence[Rid] | None) -> list[Activity]:
        if rids is None:
            return list(self._items)
        self._check_known(rids)
        return [self._by_rid[tuple(r)] for r in rids]

    # -- durable form ----------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {"next_order": self.next_order,
                "entries": [[a.ticks, a.order, a.tc.pack().hex()] for a in self._items]}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], capacity: int) -> "TimeSchedule":
        """Rebuild from :meth:`to_record`; raises ``ValueError`` on a malformed record."""
        s = cls(capacity)
        try:
            s.next_order = int(rec["next_order"])
            for ticks, order, hexed in rec["entries"]:
                tc = parse_packet(bytes.fromhex(hexed))
                if not isinstance(tc, PusTc):
                    raise ValueError("a scheduled packet is not a TC")
                s._add(Activity(int(ticks), int(order), tc))
        except (KeyError, TypeError, DecodeError) as exc:
            raise ValueError(f"malformed schedule record: {exc}") from None
        return s


# -- the PUS 11 service ---------------------------------------------------------------------------------
class ScheduleService:
    """The time-based schedule wired into the flight software: commands, release timer, durable state."""

    RECORD = "schedule"

    def __init__(self, fsw: "FlightSoftware", capacity: int = 64, min_lead_s: float = 0.0,
                 late_window_s: float = 60.0) -> None:
        self.fsw = fsw
        self.d: Dictionary = fsw.dictionary
        self.schedule = TimeSchedule(capacity)
        self.enabled = True
        self.min_lead_s = min_lead_s
        self.late_window_s = late_window_s
        self.counters = {"released": 0, "skipped": 0, "refused": 0}
        self._timer: Timer | None = None
        #: extra SCHED_HK values from the sequencer and the planner: fn(now) -> {name: value}
        self.hk_parts: list[Callable[[float], Mapping[str, Any]]] = []
        self._detail = self.d.lander.packet("SCHED_DETAIL_REPORT")
        self._summary = self.d.lander.packet("SCHED_SUMMARY_REPORT")
        for name, handler in (
                ("SCHED_ENABLE", self._cmd_enable), ("SCHED_DISABLE", self._cmd_disable),
                ("SCHED_RESET", self._cmd_reset), ("SCHED_INSERT", self._cmd_insert),
                ("SCHED_DELETE", self._cmd_delete), ("SCHED_SHIFT", self._cmd_shift),
                ("SCHED_DETAIL", self._cmd_detail), ("SCHED_SUMMARY", self._cmd_summary),
                ("SCHED_SHIFT_ALL", self._cmd_shift_all), ("SCHED_DETAIL_ALL", self._cmd_detail_all),
                ("SCHED_SUMMARY_ALL", self._cmd_summary_all)):
            fsw.register_command(name, self._guard(handler))
        fsw.hk.register("SCHED_HK", self._hk)
        fsw.on_start(self._restore)

    # -- API for other components (the planner) ----------------------------------------------------------
    def insert_tcs(self, items: Sequence[tuple[float, PusTc]], now: float) -> list[Activity]:
        """Validate and insert (release time, TC) pairs; raises :class:`ScheduleError`."""
        checked = []
        for i, (t, tc) in enumerate(items):
            self._check_tc(tc, i)
            checked.append((to_ticks(t), tc))
        added = self.schedule.insert(checked, self._min_ticks(now))
        self._changed()
        return added

    def delete_rids(self, rids: Sequence[Rid]) -> list[Activity]:
        """Delete those of ``rids`` still scheduled (no error for ones already released)."""
        present = [r for r in rids if self.schedule.get(tuple(r)) is not None]
        gone = self.schedule.delete(present)
        if gone:
            self._changed()
        return gone

    def set_enabled(self, on: bool, now: float) -> None:
        if on != self.enabled:
            self.enabled = on
            self.fsw.emit("SCHED_ENABLED" if on else "SCHED_DISABLED", now)
        self._changed()

    # -- internals ---------------------------------------------------------------------------------------
    def _min_ticks(self, now: float) -> int:
        return to_ticks(now + self.min_lead_s)

    def _guard(self, handler: Callable[..., None]) -> Callable[..., None]:
        from .flight import CommandFailure

        def run(cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
            try:
                handler(args, now)
            except ScheduleError as exc:
                self.counters["refused"] += 1
                raise CommandFailure(exc.code, exc.data, stage="accept" if exc.code == "BAD_LENGTH" else "start",
                                     message=str(exc)) from None
        return run

    def _check_tc(self, tc: PusTc, index: int) -> None:
        """An embedded TC must be one the dictionary knows, with valid arguments and a reportable size."""
        d = self.d
        if len(tc.pack()) > d.max_packet - (TM_HEADER_LEN + CRC_LEN + 2 + CUC_LEN):
            raise ScheduleError("BAD_LENGTH", index, "TC too long to appear in a detail report")
        if d.system_by_apid(tc.apid) is None:
            raise ScheduleError("ILLEGAL_APID", index, f"no unit has APID {tc.apid:#x}")
        cmd = d.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None:
            known = any(c.service == tc.service and c.subservice == tc.subservice
                        for c in d.system_by_apid(tc.apid).commands)  # type: ignore[union-attr]
            raise ScheduleError("UNKNOWN_FUNCTION" if known else "UNKNOWN_SERVICE", index)
        if not cmd.raw:
            try:
                d.args_codec(cmd).decode(tc.app_data)
            except ArgumentError as exc:
                code = exc.code if exc.code in d.failure_codes.values else "ARG_OUT_OF_RANGE"
                raise ScheduleError(code, index, f"instruction {index}: {exc}") from None

    def _changed(self) -> None:
        save_record(self.fsw.store, self.RECORD, {"enabled": self.enabled, **self.schedule.to_record()})
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        first = self.schedule.first()
        if self.enabled and first is not None:
            self._timer = self.fsw.timers.call_at(first.release, self._release_due)

    def _release_due(self, now: float) -> None:
        self._timer = None
        while self.enabled:
            a = self.schedule.first()
            if a is None or a.release > now:
                break
            self.schedule.remove(a)
            save_record(self.fsw.store, self.RECORD, {"enabled": self.enabled, **self.schedule.to_record()})
            if now - a.release > self.late_window_s:
                self.counters["skipped"] += 1
                self.fsw.emit("SCHED_SKIPPED_TC", now, SCHED_EVT_APID=a.tc.apid, SCHED_EVT_SEQ=a.tc.seq_count,
                              SCHED_EVT_TIME=a.release)
                continue
            self.counters["released"] += 1
            self.fsw.emit("SCHED_RELEASED", now, SCHED_EVT_APID=a.tc.apid, SCHED_EVT_SERVICE=a.tc.service,
                          SCHED_EVT_SUBSERVICE=a.tc.subservice, SCHED_EVT_SEQ=a.tc.seq_count)
            self.fsw.handle_tc(a.tc, now)
        self._rearm()

    def _restore(self, now: float) -> None:
        raw = self.fsw.store.load(self.RECORD)
        if raw is None:
            self._changed()
            return
        rec = load_record(self.fsw.store, self.RECORD)
        try:
            if not isinstance(rec, dict):
                raise ValueError("unreadable record")
            sched = TimeSchedule.from_record(rec, self.schedule.capacity)
            enabled = bool(rec.get("enabled", True))
        except ValueError:
            self.schedule = TimeSchedule(self.schedule.capacity)
            self.enabled = False
            self.fsw.emit("SCHED_STATE_LOST", now)
            self._changed()
            return
        self.schedule, self.enabled = sched, enabled
        self.fsw.emit("SCHED_RESTORED", now, SCHED_EVT_COUNT=len(sched), SCHED_EVT_ON=enabled)
        self._rearm()

    def _hk(self, now: float) -> dict[str, Any]:
        first = self.schedule.first()
        values: dict[str, Any] = {
            "SCHED_ENABLED": self.enabled, "SCHED_COUNT": len(self.schedule), "SCHED_CAPACITY": self.schedule.capacity,
            "SCHED_NEXT": first.release if first is not None else 0.0, "SCHED_RELEASED": self.counters["released"],
            "SCHED_SKIPPED": self.counters["skipped"], "SCHED_REFUSED": self.counters["refused"],
        }
        for part in self.hk_parts:
            values.update(part(now))
        return values

    def _send_reports(self, pkt: Any, chunks: list[bytes], now: float) -> None:
        """Pack entry chunks into as few reports as fit the maximum packet size."""
        room = self.d.max_packet - TM_HEADER_LEN - CRC_LEN - 2
        batch: list[bytes] = []
        size = 0
        for c in chunks:
            if batch and size + len(c) > room:
                self.fsw.send_tm(self.fsw.tm.make(pkt.service, pkt.subservice,
                                                  _U16.pack(len(batch)) + b"".join(batch), now))
                batch, size = [], 0
            batch.append(c)
            size += len(c)
        self.fsw.send_tm(self.fsw.tm.make(pkt.service, pkt.subservice, _U16.pack(len(batch)) + b"".join(batch), now))

    def _detail_report(self, acts: list[Activity], now: float) -> None:
        self._send_reports(self._detail, [_CUC.pack(a.ticks >> 16, a.ticks & 0xFFFF) + a.tc.pack() for a in acts], now)

    def _summary_report(self, acts: list[Activity], now: float) -> None:
        self._send_reports(self._summary, [_CUC.pack(a.ticks >> 16, a.ticks & 0xFFFF) + _RID.pack(*a.rid)
                                           for a in acts], now)

    # -- command handlers: handler(args, now), raising ScheduleError ----------------------------------------
    def _cmd_enable(self, args: dict, now: float) -> None:
        self.set_enabled(True, now)

    def _cmd_disable(self, args: dict, now: float) -> None:
        self.set_enabled(False, now)

    def _cmd_reset(self, args: dict, now: float) -> None:
        n = self.schedule.clear()
        self.fsw.emit("SCHED_CLEARED", now, SCHED_EVT_COUNT=n)
        self.set_enabled(False, now)

    def _cmd_insert(self, args: dict, now: float) -> None:
        raw = decode_insert(args["raw"])
        if not raw:
            raise ScheduleError("ARG_OUT_OF_RANGE", 0, "no instruction")
        items = []
        for i, (ticks, data) in enumerate(raw):
            try:
                tc = parse_packet(data)
            except DecodeError as exc:
                raise ScheduleError("BAD_CRC" if exc.reason == "crc" else "BAD_LENGTH", i, str(exc)) from None
            if not isinstance(tc, PusTc):
                raise ScheduleError("BAD_LENGTH", i, f"instruction {i} holds a TM packet")
            self._check_tc(tc, i)
            items.append((ticks, tc))
        self.schedule.insert(items, self._min_ticks(now))
        self._changed()

    def _cmd_delete(self, args: dict, now: float) -> None:
        _, rids = decode_rids(args["raw"])
        self.schedule.delete(rids)
        self._changed()

    def _cmd_shift(self, args: dict, now: float) -> None:
        offset_ms, rids = decode_rids(args["raw"], with_offset=True)
        self.schedule.shift(offset_ms * TICKS_PER_S // 1000, rids, self._min_ticks(now))
        self._changed()

    def _cmd_shift_all(self, args: dict, now: float) -> None:
        self.schedule.shift(args["offset_ms"] * TICKS_PER_S // 1000, None, self._min_ticks(now))
        self._changed()

    def _cmd_detail(self, args: dict, now: float) -> None:
        self._detail_report(self.schedule.select(decode_rids(args["raw"])[1]), now)

    def _cmd_summary(self, args: dict, now: float) -> None:
        self._summary_report(self.schedule.select(decode_rids(args["raw"])[1]), now)

    def _cmd_detail_all(self, args: dict, now: float) -> None:
        self._detail_report(self.schedule.select(None), now)

    def _cmd_summary_all(self, args: dict, now: float) -> None:
        self._summary_report(self.schedule.select(None), now)
