"""Ground-side tracking of PUS-1 command verification: a pure state machine fed with values.

``add_tc(tc, now, timeout_s)`` starts tracking a sent telecommand;
``add_tm(pkt, now)`` (or ``add_record(record, now)`` for a record from
:class:`~ground.decoding.PacketDecoder`) matches a TM[1,x] report to it by
request id (APID and sequence count of the TC; the report may come from any
APID, e.g. the lander rejecting a TC routed to a payload); ``expire(now)``
times out overdue ones.  Nothing here reads a clock: ``now`` is passed in.

States, as a table::

    PENDING --success of the final requested stage--> SUCCESS
    PENDING --any failure report--------------------> FAILED
    PENDING --expire(now >= deadline)---------------> TIMEOUT
    SUCCESS --failure report (contradiction)--------> FAILED   (conflict=True)
    TIMEOUT --late final success / late failure-----> SUCCESS / FAILED   (timed_out stays True)

A telecommand is *done* in every state but PENDING.  Reports for a done
telecommand are still recorded in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from fsw.dictionary import Dictionary
from fsw.protocol import MAX_SEQ_COUNT, PusTc, PusTm, split_request_id

from .decoding import STAGE_OF_SUBSERVICE, PacketDecoder

__all__ = [
    "ACK_ACCEPTANCE", "ACK_COMPLETION", "ACK_PROGRESS", "ACK_START", "STAGES", "State", "StageReport",
    "VerificationResult", "VerificationTracker", "VerificationUpdate",
]

STAGES: Final = ("acceptance", "start", "progress", "completion")
#: PUS-C acknowledgement flag bits of a TC secondary header, by the stage they request
ACK_ACCEPTANCE: Final = 0b0001
ACK_START: Final = 0b0010
ACK_PROGRESS: Final = 0b0100
ACK_COMPLETION: Final = 0b1000


class State:
    PENDING: Final = "PENDING"
    SUCCESS: Final = "SUCCESS"
    FAILED: Final = "FAILED"
    TIMEOUT: Final = "TIMEOUT"


def final_stage(ack_flags: int) -> str | None:
    """The last success report a TC with these acknowledgement flags asks for (``None``: none)."""
    if ack_flags & ACK_COMPLETION:
        return "completion"
    if ack_flags & ACK_START:
        return "start"
    if ack_flags & ACK_ACCEPTANCE:
        return "acceptance"
    return None


@dataclass(frozen=True, slots=True)
class StageReport:
    """One TM[1,x] report as the tracker saw it."""

    stage: str                 # acceptance, start, progress, completion
    success: bool
    failure: str | None        # failure code name on failure
    step: int | None           # progress step number
    reporter_apid: int         # who sent the report
    reporter: str | None       # its unit name
    received: float            # ``now`` when the tracker got it
    tm_time: float | None = None  # the report's own time stamp

    def to_dict(self) -> dict:
        return {"stage": self.stage, "success": self.success, "failure": self.failure, "step": self.step,
                "reporter": self.reporter, "reporter_apid": self.reporter_apid, "received": self.received,
                "tm_time": self.tm_time}


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """A snapshot of one telecommand's verification."""

    apid: int
    seq_count: int
    request_id: int
    command: str | None
    system: str | None
    sent_at: float
    deadline: float
    state: str
    reports: tuple[StageReport, ...] = ()
    failure: str | None = None
    timed_out: bool = False
    conflict: bool = False

    @property
    def done(self) -> bool:
        return self.state != State.PENDING

    @property
    def ok(self) -> bool:
        return self.state == State.SUCCESS

    def stage(self, name: str) -> StageReport | None:
        """The first report of stage ``name`` (a failure, if one came), or ``None``."""
        first = None
        for r in self.reports:
            if r.stage == name:
                if not r.success:
                    return r
                if first is None:
                    first = r
        return first

    def to_dict(self) -> dict:
        return {"command": self.command, "system": self.system, "apid": self.apid, "seq_count": self.seq_count,
                "request_id": self.request_id, "state": self.state, "failure": self.failure,
                "timed_out": self.timed_out, "conflict": self.conflict, "sent_at": self.sent_at,
                "deadline": self.deadline, "reports": [r.to_dict() for r in self.reports]}


@dataclass(frozen=True, slots=True)
class VerificationUpdate:
    """What one report (or a timeout) changed."""

    result: VerificationResult
    report: StageReport | None   # ``None`` for a timeout
    late: bool = False           # the report came after the TC had timed out


@dataclass(slots=True)
class _Entry:
    apid: int
    seq_count: int
    request_id: int
    command: str | None
    system: str | None
    sent_at: float
    deadline: float
    final: str | None
    state: str = State.PENDING
    reports: list[StageReport] = field(default_factory=list)
    failure: str | None = None
    timed_out: bool = False
    conflict: bool = False

    def snapshot(self) -> VerificationResult:
        return VerificationResult(self.apid, self.seq_count, self.request_id, self.command, self.system,
                                  self.sent_at, self.deadline, self.state, tuple(self.reports), self.failure,
                                  self.timed_out, self.conflict)


def _key(request: int | tuple[int, int] | PusTc) -> tuple[int, int]:
    if isinstance(request, PusTc):
        return request.apid, request.seq_count
    if isinstance(request, tuple):
        return request[0], request[1] & MAX_SEQ_COUNT
    return split_request_id(request)


class VerificationTracker:
    """Matches PUS-1 reports to sent telecommands.

    ``max_done`` bounds memory: beyond it the oldest finished entries are
    forgotten (pending ones never are).
    """

    def __init__(self, dictionary: Dictionary, max_done: int = 1000) -> None:
        self.dictionary = dictionary
        self._decoder = PacketDecoder(dictionary)
        self._entries: dict[tuple[int, int], _Entry] = {}
        self.max_done = max_done
        #: reports that matched no tracked telecommand
        self.unmatched = 0

    # -- input ----------------------------------------------------------------------------------------------
    def add_tc(self, tc: PusTc, now: float, timeout_s: float, command: str | None = None) -> VerificationResult:
        """Track ``tc`` sent at ``now``; it times out at ``now + timeout_s``.

        ``command`` names it in results; by default the dictionary is asked.
        A TC reusing the request id of an older one replaces it.
        """
        if not isinstance(tc, PusTc):
            raise ValueError(f"add_tc takes a PusTc, not {type(tc).__name__}")
        if not timeout_s > 0:
            raise ValueError(f"timeout must be positive, got {timeout_s!r}")
        system = None
        if command is None:
            cmd = self.dictionary.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
            command = cmd.name if cmd is not None else None
        unit = self.dictionary.system_by_apid(tc.apid)
        system = unit.name if unit is not None else None
        key = (tc.apid, tc.seq_count)
        self._entries.pop(key, None)
        e = _Entry(tc.apid, tc.seq_count, tc.request_id, command, system, now, now + timeout_s,
                   final_stage(tc.ack_flags))
        self._entries[key] = e
        self._prune()
        return e.snapshot()

    def add_tm(self, pkt: PusTm, now: float) -> VerificationUpdate | None:
        """Feed any telemetry packet; returns the update if it was a report about a tracked TC."""
        if not isinstance(pkt, PusTm) or pkt.service != 1 or pkt.subservice not in STAGE_OF_SUBSERVICE:
            return None
        return self.add_record(self._decoder.decode_parsed(pkt), now)

    def add_record(self, record: dict[str, Any], now: float) -> VerificationUpdate | None:
        """Feed a decoded record (see :mod:`ground.decoding`); ignores all but PUS-1 reports."""
        req = record.get("request")
        stage = record.get("stage")
        if not isinstance(req, dict) or stage not in STAGES or record.get("error"):
            return None
        e = self._entries.get((req.get("apid"), req.get("seq_count")))
        if e is None:
            self.unmatched += 1
            return None
        success = bool(record.get("success"))
        step = record.get("params", {}).get("STEP") if stage == "progress" else None
        report = StageReport(stage, success, None if success else record.get("failure"), step,
                             record.get("apid", -1), record.get("system"), now, record.get("time"))
        e.reports.append(report)
        late = e.state == State.TIMEOUT
        if not success:
            if e.state == State.SUCCESS:
                e.conflict = True
            if e.state != State.FAILED:
                e.failure = report.failure
            e.state = State.FAILED
        elif stage == e.final and e.state in (State.PENDING, State.TIMEOUT):
            e.state = State.SUCCESS
            e.failure = None
        return VerificationUpdate(e.snapshot(), report, late)

    def expire(self, now: float) -> list[VerificationUpdate]:
        """Mark pending telecommands whose deadline has passed as TIMEOUT; return those updates."""
        out = []
        for e in self._entries.values():
            if e.state == State.PENDING and now >= e.deadline:
                e.state = State.TIMEOUT
                e.timed_out = True
                e.failure = "TIMEOUT"
                out.append(VerificationUpdate(e.snapshot(), None))
        return out

    # -- queries ------------------------------------------------------------------------------------------
    def status(self, request: int | tuple[int, int] | PusTc) -> VerificationResult | None:
        """Snapshot by request id (32-bit), ``(apid, seq_count)`` or the TC itself; ``None`` if unknown."""
        e = self._entries.get(_key(request))
        return e.snapshot() if e is not None else None

    def forget(self, request: int | tuple[int, int] | PusTc) -> None:
        self._entries.pop(_key(request), None)

    @property
    def pending(self) -> list[VerificationResult]:
        return [e.snapshot() for e in self._entries.values() if e.state == State.PENDING]

    def next_deadline(self) -> float | None:
        """Earliest deadline among pending telecommands (for a runner's sleep), ``None`` if none."""
        deadlines = [e.deadline for e in self._entries.values() if e.state == State.PENDING]
        return min(deadlines) if deadlines else None

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self) -> None:
        done = [k for k, e in self._entries.items() if e.state != State.PENDING]
        excess = len(done) - self.max_done
        for k in done[:max(0, excess)]:
            del self._entries[k]
