"""Stored command sequences: a text format people write by hand, its parser, and the onboard runner.

The format (full description in docs/scheduling.md)::

    # fss_checkout.seq -- '#' starts a comment; blank lines are ignored
    sequence FSS_CHECKOUT                      # first line: the name (a SEQ_ID label)
      PING@FSS                                 # a command; @SYSTEM picks the unit of a standard command
      at +5s   FSS_SET_MODE mode=CHECKOUT      # 'at +D': D after the previous step finished
      wait FSS_MODE == CHECKOUT timeout 120s   # until telemetry shows it, or abort after 120 s
      wait FSS_TILT < 1500 timeout 10m else continue
      wait 30s                                 # a plain pause
      at +1h30m FSS_SET_MODE mode=SCIENCE

Durations: a number with a unit ``ms s m h d`` (``90s``, ``1h30m``, ``0.5s``);
a bare number is seconds.  Conditions compare one telemetry parameter (any
the dictionary declares, in engineering units; enumerations by label, with
``==`` and ``!=`` only) with ``== != < <= > >=``.  Every wait needs a
time-out; ``else abort`` (the default) ends the sequence, ``else continue``
goes on with the next step.

The parser is pure and validates everything against the dictionary: command
and argument names, argument values and ranges (encoded exactly as they will
be sent), parameter names and comparison values.  Hazardous and raw
commands are refused: a sequence cannot fire a deploy actuator.  Any error
raises :class:`SequenceError`, which names the line.

The runner (:class:`Sequencer`) runs up to one sequence per slot (the
dictionary's ``SEQ_SLOT_ID`` count) at once.  A command step waits for its
PUS-1 outcome: completion goes on, any failure aborts, no answer within the
command's ``timeout_s`` aborts.  Waits are satisfied only by a sample that
arrives *after* the wait started (a stale value never satisfies a wait).
Progress goes out in ``SCHED_HK`` (SID 6) and events.
"""

from __future__ import annotations

import difflib
import operator
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..dictionary import ArgumentError
from ..dictionary.model import frozen_map
from ..protocol.pus import PusTc, PusTm
from .pusgen import ACK_ALL
from .state import load_record, save_record

if TYPE_CHECKING:
    from ..dictionary import Command, Dictionary, System
    from .flight import FlightSoftware
    from .schedule import ScheduleService
    from .timers import Timer

#: PUS source id of the telecommands the sequencer sends
SOURCE_SEQUENCER = 0x0A02
#: onboard-generated TCs use sequence counts 0x2000-0x3FFF; the sequencer takes 0x3000-0x3FFF
SEQ_COUNT_BASE = 0x3000
MAX_DURATION_S = 30 * 86400.0

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d+)?)(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_WAIT = re.compile(r"^(\w+)\s*(==|!=|<=|>=|<|>)\s*(\S+)\s+timeout\s+(\S+)(?:\s+else\s+(\S+))?$")
OPS: Mapping[str, Callable[[Any, Any], bool]] = frozen_map({
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge})


class SequenceError(ValueError):
    """A sequence text is invalid.  ``line`` is 1-based; ``kind`` is a SEQ_ERROR label."""

    def __init__(self, source: str, line: int, kind: str, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Condition:
    param: str
    op: str
    value: Any

    def holds(self, value: Any) -> bool:
        try:
            return bool(OPS[self.op](value, self.value))
        except TypeError:  # e.g. an UNKNOWN(n) label compared with <
            return False

    def __str__(self) -> str:
        return f"{self.param} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class Step:
    line: int
    kind: str                      # "command", "wait" or "delay"
    delay: float = 0.0             # seconds after the previous step finished
    command: "Command | None" = None
    app_data: bytes = b""
    args: Mapping[str, Any] = field(default_factory=frozen_map)
    condition: Condition | None = None
    timeout: float = 0.0
    on_timeout: str = "abort"      # or "continue"


@dataclass(frozen=True, slots=True)
class Sequence:
    name: str
    steps: tuple[Step, ...]
    source: str = ""
    header_line: int = 1


# -- parsing -----------------------------------------------------------------------------------------
def parse_duration(text: str) -> float:
    """``"90s"``, ``"1h30m"``, ``"500ms"``, ``"2"`` (seconds) -> seconds; raises ``ValueError``."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        secs = float(text)
    elif _DURATION.fullmatch(text):
        secs = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text))
    else:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 1h30m, 500ms)")
    if secs > MAX_DURATION_S:
        raise ValueError(f"{text} is longer than {MAX_DURATION_S / 86400:.0f} days")
    return secs


def _strip(line: str) -> str:
    return line.split("#", 1)[0].strip()


def sequence_name(text: str) -> str | None:
    """The name on a text's ``sequence NAME`` line (the first line that is not blank or a comment)."""
    for raw in text.splitlines():
        line = _strip(raw)
        if line:
            toks = line.split()
            return toks[1] if len(toks) == 2 and toks[0] == "sequence" else None
    return None


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def parse_sequence(text: str, dictionary: "Dictionary", source: str = "<sequence>") -> Sequence:
    """Parse and validate one sequence text; raises :class:`SequenceError` naming the line."""
    name: str | None = None
    header = 0
    steps: list[Step] = []
    last = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        last = lineno
        line = _strip(raw)
        if not line:
            continue

        def fail(kind: str, message: str, lineno: int = lineno) -> SequenceError:
            return SequenceError(source, lineno, kind, message)

        toks = line.split()
        if toks[0] == "sequence":
            if name is not None:
                raise fail("SYNTAX", f"one sequence per file: {name} was declared on line {header}")
            if len(toks) != 2 or not _NAME.match(toks[1]):
                raise fail("SYNTAX", "expected 'sequence NAME' (a name of letters, digits and underscores)")
            name, header = toks[1], lineno
            continue
        if name is None:
            raise fail("SYNTAX", "the first line must be 'sequence NAME'")
        delay = 0.0
        if toks[0] == "at":
            if len(toks) < 3:
                raise fail("SYNTAX", "expected 'at +DURATION' then a command or a wait")
            if not toks[1].startswith("+"):
                raise fail("BAD_DURATION", f"times are relative to the previous step: write 'at +{toks[1]}'")
            try:
                delay = parse_duration(toks[1][1:])
            except ValueError as exc:
                raise fail("BAD_DURATION", str(exc)) from None
            toks = toks[2:]
        if toks[0] == "wait":
            steps.append(_parse_wait(toks[1:], delay, lineno, dictionary, fail))
        else:
            steps.append(_parse_command(toks, delay, lineno, dictionary, fail))
    if name is None:
        raise SequenceError(source, max(last, 1), "EMPTY", "no 'sequence NAME' line")
    if not steps:
        raise SequenceError(source, header, "EMPTY", f"sequence {name} has no steps")
    return Sequence(name, tuple(steps), source, header)


def _parse_wait(toks: list[str], delay: float, lineno: int, d: "Dictionary",
                fail: Callable[[str, str], SequenceError]) -> Step:
    if len(toks) == 1 and toks[0][:1].isdigit():
        try:
            return Step(lineno, "delay", delay + parse_duration(toks[0]))
        except ValueError as exc:
            raise fail("BAD_DURATION", str(exc)) from None
    m = _WAIT.match(" ".join(toks))
    if m is None:
        if "timeout" not in toks or toks[-1] == "timeout":
            raise fail("SYNTAX", "a wait needs a time-out: 'wait PARAM OP VALUE timeout DURATION'")
        raise fail("SYNTAX", "expected 'wait PARAM OP VALUE timeout DURATION [else abort|else continue]'")
    pname, op, text, tmo, otherwise = m.groups()
    pname = pname.upper()
    found = d.parameters.get(pname)
    if found is None:
        raise fail("UNKNOWN_PARAMETER", f"no telemetry parameter {pname}{_suggest(pname, d.parameters)}")
    prm = found[1]
    if prm.count > 1:
        raise fail("NOT_ALLOWED", f"{pname} is an array; conditions take single values")
    value: Any
    if prm.enum is not None:
        value = text.upper()
        if value not in prm.enum.values:
            raise fail("BAD_VALUE", f"{pname} is one of {', '.join(prm.enum.values)}, not {text}")
        if op not in ("==", "!="):
            raise fail("BAD_VALUE", f"{pname} is an enumeration: compare it with == or !=")
    elif prm.type == "bool":
        if text.lower() not in ("true", "false"):
            raise fail("BAD_VALUE", f"{pname} is true or false, not {text}")
        value = text.lower() == "true"
        if op not in ("==", "!="):
            raise fail("BAD_VALUE", f"{pname} is a boolean: compare it with == or !=")
    else:
        try:
            value = float(text)
        except ValueError:
            raise fail("BAD_VALUE", f"{pname} is a number{' in ' + prm.unit if prm.unit else ''}, not {text}") from None
    try:
        timeout = parse_duration(tmo)
    except ValueError as exc:
        raise fail("BAD_DURATION", str(exc)) from None
    if otherwise not in (None, "abort", "continue"):
        raise fail("SYNTAX", f"after 'else' write abort or continue, not {otherwise}")
    return Step(lineno, "wait", delay, condition=Condition(pname, op, value), timeout=timeout,
                on_timeout=otherwise or "abort")


def _parse_command(toks: list[str], delay: float, lineno: int, d: "Dictionary",
                   fail: Callable[[str, str], SequenceError]) -> Step:
    cname, _, system = toks[0].partition("@")
    cname = cname.upper()
    if system:
        try:
            d.system(system)
        except KeyError:
            raise fail("UNKNOWN_COMMAND", f"no system {system.upper()}"
                       f"{_suggest(system.upper(), [s.name for s in d.systems])}") from None
    try:
        cmd = d.command(cname, system.upper() or None)
    except KeyError:
        raise fail("UNKNOWN_COMMAND", f"no command {cname}{' for ' + system.upper() if system else ''}"
                   f"{_suggest(cname, d.command_names)}") from None
    if cmd.hazardous:
        raise fail("NOT_ALLOWED", f"{cname} is hazardous: it cannot be sent by a sequence")
    if cmd.raw:
        raise fail("NOT_ALLOWED", f"{cname} takes raw data: it cannot be written in a sequence")
    args: dict[str, Any] = {}
    names = {a.name for a in cmd.args}
    for tok in toks[1:]:
        key, eq, value = tok.partition("=")
        if not eq or not key or not value:
            raise fail("SYNTAX", f"expected name=value, got {tok!r}")
        if key not in names and key.lower() in names:
            key = key.lower()
        if key in args:
            raise fail("SYNTAX", f"argument {key} given twice")
        if key in names and cmd.arg(key).enum is not None:
            value = value.upper()
        args[key] = value
    try:
        app_data = d.encode_command(cmd, args)
    except ArgumentError as exc:
        raise fail("BAD_ARGUMENT", f"{cname}: {exc}") from None
    return Step(lineno, "command", delay, cmd, app_data, frozen_map(d.args_codec(cmd).decode(app_data)))


# -- the latest-value table ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    value: Any
    time: float
    mark: int     # update counter: a wait needs a sample newer than its start


class ParameterTable:
    """Latest engineering value of every telemetry parameter seen, keyed by name (pure).

    A unit's packet is decoded only when one of its values is asked for: most packets (science at
    several a second) are superseded before anyone looks, and a sequence's wait reads one value.
    """

    def __init__(self, dictionary: "Dictionary") -> None:
        self.d = dictionary
        self.values: dict[str, Sample] = {}
        self.mark = 0
        self.undecodable = 0
        self._plans: dict[Any, tuple[Any, list[str]]] = {}
        # parameter -> the newest packet holding it that is not decoded yet: (codec, data, time, mark, names)
        self._raw: dict[str, tuple] = {}

    def update(self, values: Mapping[str, Any], now: float) -> list[str]:
        self.mark += 1
        raw = self._raw
        for k, v in values.items():
            self.values[k] = Sample(v, now, self.mark)
            if raw:
                raw.pop(k, None)
        return list(values)

    def update_from_tm(self, tm: PusTm, now: float) -> list[str]:
        """Take a unit's packet (decoded later, on demand); standard reports (PUS 1, 5, 9, 17) are skipped."""
        pkt = self.d.packet_by_key(tm.apid, tm.service, tm.subservice, tm.source_data)
        if pkt is None or pkt.apid is None or not pkt.params:
            return []
        plan = self._plans.get(pkt)
        if plan is None:
            plan = self._plans[pkt] = (self.d.codec(pkt), [p.name for p in pkt.params])
        codec, names = plan
        if len(tm.source_data) < codec.size:  # short packet: counted, never raised
            self.undecodable += 1
            return []
        self.mark += 1
        entry = (codec, tm.source_data, now, self.mark, names)
        raw = self._raw
        for n in names:
            raw[n] = entry
        return names

    def get(self, name: str) -> Sample | None:
        entry = self._raw.get(name)
        if entry is not None:
            self._decode(entry)
        return self.values.get(name)

    def _decode(self, entry: tuple) -> None:
        codec, data, t, mark, names = entry
        values = codec.decode(data)   # the length was checked on arrival
        raw = self._raw
        for n in names:
            if raw.get(n) is entry:
                del raw[n]
                self.values[n] = Sample(values[n], t, mark)


def tee_housekeeping(fsw: "FlightSoftware", table: ParameterTable,
                     on_update: Callable[[list[str], float], None] | None = None) -> None:
    """Record the flight software's own housekeeping values as they are sent (single-packet reports).

    Reports sent as several packets (LINK_HK: one per port) are not recorded: a
    name would hold whichever port came last.
    """
    for entry in fsw.hk.entries.values():
        inner = entry.provider

        def tee(now: float, inner: Callable[[float], Any] = inner) -> Any:
            values = inner(now)
            if isinstance(values, Mapping):
                names = table.update(values, now)
                if on_update is not None:
                    on_update(names, now)
            return values
        entry.provider = tee


class _VerifierTap:
    """Wraps the flight software's PUS-1 verifier to learn the outcome of every lander-handled TC."""

    def __init__(self, inner: Any, on_done: Callable[[PusTc, "str | None", float], None]) -> None:
        self._inner = inner
        self._on_done = on_done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _name(self, code: "str | int") -> str:
        return code if isinstance(code, str) else self._inner.tm.dictionary.failure_name(code)

    def reject(self, tc: PusTc, code: "str | int", now: float, data: int = 0) -> bytes:
        out = self._inner.reject(tc, code, now, data)
        self._on_done(tc, self._name(code), now)
        return out

    def start_fail(self, tc: PusTc, code: "str | int", now: float, data: int = 0) -> bytes:
        out = self._inner.start_fail(tc, code, now, data)
        self._on_done(tc, self._name(code), now)
        return out

    def progress_fail(self, tc: PusTc, step: int, code: "str | int", now: float, data: int = 0) -> bytes:
        out = self._inner.progress_fail(tc, step, code, now, data)
        self._on_done(tc, self._name(code), now)
        return out

    def complete_fail(self, tc: PusTc, code: "str | int", now: float, data: int = 0) -> bytes:
        out = self._inner.complete_fail(tc, code, now, data)
        self._on_done(tc, self._name(code), now)
        return out

    def complete(self, tc: PusTc, now: float) -> "bytes | None":
        out = self._inner.complete(tc, now)
        self._on_done(tc, None, now)
        return out


# -- the runner ------------------------------------------------------------------------------------------
class Run:
    """One running sequence in one slot."""

    __slots__ = ("seq_id", "label", "seq", "slot", "index", "state", "manual", "timer", "pending", "mark", "gen")

    def __init__(self, seq_id: int, label: str, seq: Sequence, slot: int, manual: bool) -> None:
        self.seq_id = seq_id
        self.label = label
        self.seq = seq
        self.slot = slot
        self.index = 0
        self.state = "DELAY"
        self.manual = manual
        self.timer: Timer | None = None
        self.pending: tuple[int, int] | None = None
        self.mark = 0
        self.gen = 0  # bumped at every transition: stale callbacks see a different value

    @property
    def step(self) -> Step:
        return self.seq.steps[self.index]


class Sequencer:
    """Loads sequences from the onboard library, runs several at once, reports progress."""

    RECORD = "seq_library"

    def __init__(self, fsw: "FlightSoftware", schedule: "ScheduleService",
                 library: "Mapping[str, str] | Iterable[str]" = ()) -> None:
        from .flight import CommandFailure

        self._failure = CommandFailure
        self.fsw = fsw
        self.d = fsw.dictionary
        self.ids = self.d.lander.enums["SEQ_ID"]
        self.slots: list[Run | None] = [None] * self.d.lander.packet("SCHED_HK").param("SEQ_SLOT_ID").count
        self.library: dict[str, str] = {}
        texts = library.values() if isinstance(library, Mapping) else library
        for text in texts:
            name = sequence_name(text)
            if name is None or name not in self.ids.values or name == "NONE":
                raise ValueError(f"library sequence {name!r} is not a SEQ_ID label "
                                 f"({', '.join(n for n in self.ids.values if n != 'NONE')})")
            if name in self.library:
                raise ValueError(f"library sequence {name} given twice")
            self.library[name] = text
        self.loaded: dict[str, Sequence] = {}
        self.table = ParameterTable(self.d)
        self._pending: dict[tuple[int, int], Run] = {}
        self._seq_count = 0
        self.counters = {"started": 0, "completed": 0, "aborted": 0, "stopped": 0, "commands": 0}
        fsw.verifier = _VerifierTap(fsw.verifier, self._verified)
        fsw.add_tm_listener(self._on_tm)
        fsw.on_start(self._start)
        for name, handler in (("SEQ_LOAD", self._cmd_load), ("SEQ_START", self._cmd_start),
                              ("SEQ_STOP", self._cmd_stop), ("SEQ_STEP", self._cmd_step),
                              ("SEQ_UPLOAD", self._cmd_upload)):
            fsw.register_command(name, handler)
        schedule.hk_parts.append(self._hk)

    # -- public API ---------------------------------------------------------------------------------------
    def run_of(self, label: str) -> Run | None:
        return next((r for r in self.slots if r is not None and r.label == label), None)

    def load(self, label: str, now: float) -> Sequence:
        """Parse the library text of ``label``; raises CommandFailure (and emits SEQ_INVALID) when bad."""
        text = self.library.get(label)
        if text is None:
            raise self._failure("UNKNOWN_ID", self.ids.values[label], stage="start",
                                message=f"no library text for {label}")
        seq = self._parse(label, text, now, "EXECUTION_FAILED", "start")
        self.loaded[label] = seq
        self.fsw.emit("SEQ_LOADED", now, SEQ_EVT_ID=label, SEQ_EVT_STEPS=min(len(seq.steps), 0xFFFF))
        return seq

    # -- internals ----------------------------------------------------------------------------------------
    def _parse(self, label: str, text: str, now: float, code: str, stage: str) -> Sequence:
        try:
            seq = parse_sequence(text, self.d, label)
            if seq.name != label:
                raise SequenceError(label, seq.header_line, "NAME_MISMATCH",
                                    f"the text declares sequence {seq.name}, expected {label}")
        except SequenceError as exc:
            self.fsw.emit("SEQ_INVALID", now, SEQ_EVT_ID=label, SEQ_EVT_LINE=min(exc.line, 0xFFFF),
                          SEQ_EVT_ERROR=exc.kind)
            raise self._failure(code, exc.line, stage=stage, message=str(exc)) from None
        return seq

    def _start(self, now: float) -> None:
        rec = load_record(self.fsw.store, self.RECORD)
        if isinstance(rec, dict):
            for label, text in rec.items():
                if label in self.ids.values and isinstance(text, str):
                    self.library[label] = text
        tee_housekeeping(self.fsw, self.table, self.check_waits)

    def _label(self, label: str) -> str:
        """The decoded ``seq`` argument (a SEQ_ID label); NONE names no sequence."""
        if label == "NONE":
            raise self._failure("UNKNOWN_ID", 0, stage="accept", message="sequence NONE")
        return label

    def _next_seq_count(self) -> int:
        n = SEQ_COUNT_BASE + self._seq_count
        self._seq_count = (self._seq_count + 1) % 0x1000
        return n

    def _later(self, run: Run, fn: Callable[[Run, float], None], when: float) -> None:
        """Call ``fn(run, t)`` at ``when`` unless the run moved on in between."""
        gen = run.gen

        def fire(t: float) -> None:
            if self.slots[run.slot] is run and run.gen == gen:
                fn(run, t)
        if run.timer is not None:
            run.timer.cancel()
        run.timer = self.fsw.timers.call_at(when, fire)

    def _transition(self, run: Run, state: str) -> None:
        run.gen += 1
        run.state = state
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
        if run.pending is not None:
            self._pending.pop(run.pending, None)
            run.pending = None

    def _advance(self, run: Run, now: float) -> None:
        if run.index >= len(run.seq.steps):
            self._finish(run)
            self.counters["completed"] += 1
            self.fsw.emit("SEQ_COMPLETED", now, SEQ_EVT_ID=run.label, SEQ_EVT_STEPS=min(len(run.seq.steps), 0xFFFF))
            return
        if run.manual:
            self._transition(run, "PAUSED")
            return
        self._transition(run, "DELAY")
        self._later(run, self._execute, now + run.step.delay)

    def _execute(self, run: Run, now: float) -> None:
        step = run.step
        if step.kind == "delay":
            self._step_done(run, now)
        elif step.kind == "wait":
            self._transition(run, "WAIT")
            run.mark = self.table.mark
            self._later(run, self._wait_timeout, now + step.timeout)
        else:
            cmd = step.command
            assert cmd is not None
            tc = PusTc(cmd.apid, cmd.service, cmd.subservice, step.app_data, seq_count=self._next_seq_count(),
                       source_id=SOURCE_SEQUENCER, ack_flags=ACK_ALL)
            self._transition(run, "VERIFY")
            run.pending = (tc.apid, tc.seq_count)
            self._pending[run.pending] = run
            self._later(run, self._cmd_timeout, now + cmd.timeout_s)
            self.counters["commands"] += 1
            self.fsw.handle_tc(tc, now)

    def _step_done(self, run: Run, now: float) -> None:
        step = run.step
        self.fsw.emit("SEQ_PROGRESS", now, SEQ_EVT_ID=run.label, SEQ_EVT_STEP=min(run.index + 1, 0xFFFF),
                      SEQ_EVT_LINE=min(step.line, 0xFFFF))
        run.index += 1
        self._advance(run, now)

    def _abort(self, run: Run, why: str, code: str, now: float) -> None:
        self._finish(run)
        self.counters["aborted"] += 1
        self.fsw.emit("SEQ_ABORTED", now, SEQ_EVT_ID=run.label, SEQ_EVT_STEP=min(run.index + 1, 0xFFFF),
                      SEQ_EVT_LINE=min(run.step.line, 0xFFFF), SEQ_EVT_WHY=why, SEQ_EVT_CODE=code)

    def _finish(self, run: Run) -> None:
        self._transition(run, "IDLE")
        self.slots[run.slot] = None

    def _cmd_timeout(self, run: Run, now: float) -> None:
        self._abort(run, "CMD_TIMEOUT", "TIMEOUT", now)

    def _wait_timeout(self, run: Run, now: float) -> None:
        if run.step.on_timeout == "continue":
            self.fsw.emit("SEQ_WAIT_TIMEOUT", now, SEQ_EVT_ID=run.label, SEQ_EVT_LINE=min(run.step.line, 0xFFFF))
            self._step_done(run, now)
        else:
            self._abort(run, "WAIT_TIMEOUT", "TIMEOUT", now)

    def _outcome(self, key: tuple[int, int], code: "str | None", now: float) -> None:
        run = self._pending.pop(key, None)
        if run is None:
            return
        run.pending = None
        # continue after the current packet's reports have gone out, never inside another handler
        if code is None:
            self._later(run, self._step_done, now)
        else:
            self._later(run, lambda r, t: self._abort(r, "CMD_FAILED", code, t), now)

    def _verified(self, tc: PusTc, code: "str | None", now: float) -> None:
        self._outcome((tc.apid, tc.seq_count), code, now)

    def _on_tm(self, unit: "System", tm: PusTm, now: float) -> None:
        if tm.service == 1:
            if len(tm.source_data) >= 4 and tm.subservice in (2, 4, 6, 7, 8):
                key = (int.from_bytes(tm.source_data[:2], "big") & 0x7FF,
                       int.from_bytes(tm.source_data[2:4], "big") & 0x3FFF)
                code = None
                if tm.subservice != 7:
                    raw = int.from_bytes(tm.source_data[4:6], "big") if len(tm.source_data) >= 6 else 0
                    code = self.d.failure_name(raw)
                    if code not in self.d.failure_codes.values:
                        code = "EXECUTION_FAILED"
                self._outcome(key, code, now)
            return
        names = self.table.update_from_tm(tm, now)
        if names:
            self.check_waits(names, now)

    def check_waits(self, names: Iterable[str], now: float) -> None:
        """Re-evaluate the waits on ``names`` (called for every telemetry update)."""
        changed = set(names)
        for run in list(self.slots):
            if run is None or run.state != "WAIT":
                continue
            cond = run.step.condition
            assert cond is not None
            if cond.param not in changed:
                continue
            s = self.table.get(cond.param)
            if s is not None and s.mark > run.mark and cond.holds(s.value):
                self._transition(run, "DELAY")
                self._later(run, self._step_done, now)

    def _hk(self, now: float) -> dict[str, Any]:
        runs = self.slots
        return {
            "SEQ_RUNNING": sum(1 for r in runs if r is not None),
            "SEQ_SLOT_ID": [r.label if r else "NONE" for r in runs],
            "SEQ_SLOT_STATE": [r.state if r else "IDLE" for r in runs],
            "SEQ_SLOT_STEP": [min(r.index + 1, 0xFFFF) if r else 0 for r in runs],
            "SEQ_SLOT_STEPS": [min(len(r.seq.steps), 0xFFFF) if r else 0 for r in runs],
            "SEQ_SLOT_LINE": [r.step.line if r and r.index < len(r.seq.steps) else 0 for r in runs],
        }

    # -- command handlers ---------------------------------------------------------------------------------
    def _cmd_load(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        label = self._label(args["seq"])
        if self.run_of(label) is not None:
            raise self._failure("BUSY", self.ids.values[label], stage="start", message=f"{label} is running")
        self.load(label, now)

    def _cmd_start(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        label = self._label(args["seq"])
        seq_id = self.ids.values[label]
        if self.run_of(label) is not None:
            raise self._failure("BUSY", seq_id, stage="start", message=f"{label} is already running")
        slot = next((i for i, r in enumerate(self.slots) if r is None), None)
        if slot is None:
            raise self._failure("BUSY", seq_id, stage="start", message="every sequence slot is in use")
        seq = self.loaded.get(label) or self.load(label, now)
        run = Run(seq_id, label, seq, slot, bool(args.get("manual", False)))
        self.slots[slot] = run
        self.counters["started"] += 1
        self.fsw.emit("SEQ_STARTED", now, SEQ_EVT_ID=label, SEQ_EVT_MANUAL=run.manual)
        # the first step runs after this command's own reports
        self._later(run, self._advance, now)

    def _cmd_stop(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        label = self._label(args["seq"])
        run = self.run_of(label)
        if run is None:
            raise self._failure("WRONG_MODE", self.ids.values[label], stage="start", message=f"{label} is not running")
        step = run.index + 1
        self._finish(run)
        self.counters["stopped"] += 1
        self.fsw.emit("SEQ_STOPPED", now, SEQ_EVT_ID=label, SEQ_EVT_STEP=min(step, 0xFFFF))

    def _cmd_step(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        label = self._label(args["seq"])
        run = self.run_of(label)
        if run is None or not run.manual:
            raise self._failure("WRONG_MODE", self.ids.values[label], stage="start",
                                message=f"{label} is not running in manual mode")
        if run.state != "PAUSED":
            raise self._failure("BUSY", self.ids.values[label], stage="start", message=f"{label} is still in its step")
        self._transition(run, "DELAY")
        self._later(run, self._execute, now)

    def _cmd_upload(self, cmd: "Command", args: dict, tc: PusTc, now: float) -> None:
        data = args["raw"]
        if len(data) < 2:
            raise self._failure("BAD_LENGTH", len(data), stage="accept", message="SEQ_ID and text expected")
        label = self.ids.labels.get(data[0])
        if label is None or label == "NONE":
            raise self._failure("ARG_OUT_OF_RANGE", data[0], stage="accept", message="not a SEQ_ID value")
        if self.run_of(label) is not None:
            raise self._failure("BUSY", data[0], stage="start", message=f"{label} is running")
        try:
            text = bytes(data[1:]).decode("utf-8")
        except UnicodeDecodeError:
            self.fsw.emit("SEQ_INVALID", now, SEQ_EVT_ID=label, SEQ_EVT_LINE=0, SEQ_EVT_ERROR="NOT_TEXT")
            raise self._failure("ARG_OUT_OF_RANGE", 0, stage="accept", message="the text is not UTF-8") from None
        seq = self._parse(label, text, now, "ARG_OUT_OF_RANGE", "accept")
        self.library[label] = text
        self.loaded[label] = seq
        uploads = load_record(self.fsw.store, self.RECORD)
        uploads = dict(uploads) if isinstance(uploads, dict) else {}
        uploads[label] = text
        save_record(self.fsw.store, self.RECORD, uploads)
        self.fsw.emit("SEQ_UPLOADED", now, SEQ_EVT_ID=label, SEQ_EVT_BYTES=min(len(data) - 1, 0xFFFF))
        self.fsw.emit("SEQ_LOADED", now, SEQ_EVT_ID=label, SEQ_EVT_STEPS=min(len(seq.steps), 0xFFFF))
