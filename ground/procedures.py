"""The test-procedure API: write a procedure once, run it on the simulated bench or over a real link.

A *procedure* is a Python function that takes a :class:`Procedure` (called
``proc`` by convention) and drives the lander through it, pytest style::

    def test_fss_checkout(proc):
        proc.send_and_assert("PAYLOAD_POWER_ON", unit="FSS")
        proc.expect_failure("FSS_LEVEL", "WRONG_MODE", target_urad=0)    # not in SURVIVAL
        proc.send_and_assert("FSS_SET_MODE", mode="CHECKOUT")
        proc.wait_tm("FSS_MODE", "==", "CHECKOUT", timeout=5)
        proc.wait_event("FSS_MODE_CHANGED", FSS_NEW_MODE="CHECKOUT")

The :class:`Procedure` talks to a *backend*:

* :class:`SimBackend` over a :class:`~ground.simbench.SimBench` (flight
  software, every device model and a ground node in one process on the
  simulated clock): waiting *runs the simulation*, so a 10 s time-out costs
  milliseconds and the same seed gives the same bytes every time;
* :class:`LinkBackend` over a :class:`~ground.session.GroundSession` (a real
  serial link or pseudo-terminal to a flight software process): waiting
  polls the link on the real clock.

Time-outs are mission seconds on the backend's clock in both cases.

What the ground received is kept in a *journal* (every decoded record, in
arrival order, bounded).  Waits search the journal from a starting point
``since`` and then wait for new records:

* ``None`` (the default): from the moment the last command of the procedure
  was submitted (or the procedure started), so an event or a housekeeping
  sample that arrived while :meth:`Procedure.send` was waiting for the
  command's completion is not missed;
* ``"now"``: only records that arrive from now on;
* ``"start"``: from the start of the procedure;
* ``"history"``: also what the backend received before the procedure started
  (a backend keeps its last few thousand records for the next procedure);
* an ``int`` returned by :meth:`Procedure.mark`.

:meth:`Procedure.value` (the latest value of a parameter) sees that history too.

Failures raise :class:`ProcedureFailure` (an ``AssertionError``, so pytest
reports it as a test failure) with the command's verification stages or what
was awaited; misuse of the API (an unknown parameter, event or operator)
raises ``KeyError``/``ValueError`` before anything is sent, and so does a
command the dictionary refuses (unknown command, argument out of range, a
hazardous command without confirmation).

See docs/procedures.md.
"""

from __future__ import annotations

import difflib
import operator
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from fsw.dictionary import Dictionary
from fsw.protocol.pus import PusTc

from .verification import State, VerificationResult

__all__ = [
    "BACKEND_KINDS", "DEFAULT_TIMEOUT", "Backend", "LinkBackend", "Procedure", "ProcedureFailure", "SimBackend",
    "WaitTimeout", "describe_result", "open_backend",
]

#: default time-out of a wait, in seconds of the backend's clock
DEFAULT_TIMEOUT = 10.0
#: how long after a command's verification deadline its result is still awaited
VERIFICATION_GRACE_S = 1.0

_RAISE = object()

#: comparison operators of :meth:`Procedure.wait_tm`
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


class ProcedureFailure(AssertionError):
    """A procedure step failed: a command did not verify as expected, or a wait timed out.

    ``result`` is the command's :class:`VerificationResult` when a command failed.
    """

    def __init__(self, message: str, result: VerificationResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class WaitTimeout(ProcedureFailure):
    """Nothing matching arrived within the time-out."""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list) and len(v) > 4:
        return "[" + ", ".join(_fmt(x) for x in v[:4]) + f", ...({len(v)})]"
    return repr(v) if isinstance(v, str) and not v.isidentifier() else str(v)


def describe_result(result: VerificationResult) -> str:
    """One line: state, failure and every stage report, e.g. ``FAILED WRONG_MODE: acceptance OK from FSS, ...``."""
    stages = []
    for r in result.reports:
        step = f" {r.step}" if r.step is not None else ""
        verdict = "OK" if r.success else f"FAILED {r.failure}"
        stages.append(f"{r.stage}{step} {verdict} from {r.reporter or hex(r.reporter_apid)}")
    head = result.state
    if result.failure and result.state != State.TIMEOUT:
        head += f" {result.failure}"
    if result.timed_out and result.state != State.TIMEOUT:
        head += " (after its time-out)"
    return f"{head}: {', '.join(stages) if stages else 'no report'}"


# ---------------------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------------------

class Backend(Protocol):
    """What a :class:`Procedure` needs from a bench."""

    #: ``"sim"`` (simulated clock) or ``"link"`` (real clock)
    kind: str
    dictionary: Dictionary

    @property
    def now(self) -> float: ...

    #: the last records received (history for a procedure that starts now)
    recent: deque[dict]

    def add_sink(self, fn: Callable[[dict], None]) -> None: ...

    def remove_sink(self, fn: Callable[[dict], None]) -> None: ...

    def submit(self, name: str, system: str | None, confirm: str | None, timeout: float | None,
               args: Mapping[str, Any]) -> PusTc: ...

    def status(self, tc: PusTc) -> VerificationResult | None: ...

    def advance(self, until: float, stop: Callable[[], bool]) -> None:
        """Let time pass until mission time ``until`` or until ``stop()`` is true (checked as records arrive)."""

    def refresh(self) -> None:
        """Take in what has already arrived, without letting time pass."""

    def close(self) -> None: ...


class _Sinks:
    """Fan-out of received records to procedures, keeping the most recent ones as history for the next."""

    #: records a backend keeps for procedures started later (their journal begins with them)
    RECENT = 5000

    def __init__(self) -> None:
        self._sinks: list[Callable[[dict], None]] = []
        self.recent: deque[dict] = deque(maxlen=self.RECENT)

    def add_sink(self, fn: Callable[[dict], None]) -> None:
        self._sinks.append(fn)

    def remove_sink(self, fn: Callable[[dict], None]) -> None:
        if fn in self._sinks:
            self._sinks.remove(fn)

    def _emit(self, rec: dict) -> None:
        self.recent.append(rec)
        for fn in list(self._sinks):
            fn(rec)


class SimBackend(_Sinks):
    """A :class:`~ground.simbench.SimBench` on the simulated clock: waiting runs the simulation.

    ``SimBackend()`` makes a bench with the default options; pass a bench
    (``SimBackend(SimBench(phase="SURFACE", seed=3))``) to choose them.
    """

    kind = "sim"

    def __init__(self, bench: Any = None) -> None:
        super().__init__()
        if bench is None:
            from .simbench import SimBench

            bench = SimBench()
        self.bench = bench
        self.dictionary: Dictionary = bench.dictionary
        bench.ground.on_record(self._emit)

    @property
    def now(self) -> float:
        return self.bench.now

    def submit(self, name: str, system: str | None, confirm: str | None, timeout: float | None,
               args: Mapping[str, Any]) -> PusTc:
        return self.bench.ground.send(name, self.bench.now, system=system, confirm=confirm, args=args,
                                      timeout=timeout)

    def status(self, tc: PusTc) -> VerificationResult | None:
        return self.bench.ground.status(tc)

    def advance(self, until: float, stop: Callable[[], bool]) -> None:
        self.bench.run_until(until, stop)

    def refresh(self) -> None:
        pass  # records reach the sinks as the simulation produces them

    def close(self) -> None:
        pass


class LinkBackend(_Sinks):
    """A :class:`~ground.session.GroundSession` on a real link, on the real clock.

    The session is opened here; :meth:`close` closes it only when this
    backend made it (:meth:`connect`).
    """

    kind = "link"

    def __init__(self, session: Any, *, owns_session: bool = False, connect_timeout: float = 5.0) -> None:
        super().__init__()
        self.session = session
        self.dictionary: Dictionary = session.dictionary
        self.owns_session = owns_session
        session.open()
        session.wait_connected(connect_timeout)

    @classmethod
    def connect(cls, link_spec: str, dictionary: Dictionary | None = None, *, baud: int = 115200,
                connect_timeout: float = 5.0, space_link: bool = False) -> "LinkBackend":
        """Open a new ground session on ``link_spec`` (a pty path, a device, ``socket://`` ...); with
        ``space_link`` through TC/TM transfer frames and COP-1 (a flight software run with --space-link)."""
        from fsw.dictionary import load_dictionary

        from .session import GroundSession

        session = GroundSession(link_spec, dictionary or load_dictionary(), baud=baud, space_link=space_link)
        try:
            return cls(session, owns_session=True, connect_timeout=connect_timeout)
        except BaseException:
            session.close()
            raise

    @property
    def now(self) -> float:
        return self.session.clock.now()

    def _drain(self) -> None:
        for rec in self.session.packets(timeout=0):
            self._emit(rec)

    def submit(self, name: str, system: str | None, confirm: str | None, timeout: float | None,
               args: Mapping[str, Any]) -> PusTc:
        self._drain()
        tc = self.session.submit(name, system, confirm, timeout, dict(args))
        self._drain()
        return tc

    def status(self, tc: PusTc) -> VerificationResult | None:
        return self.session.tracker.status(tc)

    def advance(self, until: float, stop: Callable[[], bool]) -> None:
        s = self.session
        while True:
            self._drain()
            if stop():
                return
            remaining = until - self.now
            if remaining <= 0:
                return
            s.poll(min(remaining, s.poll_interval_s))

    def refresh(self) -> None:
        self.session.poll(0.0)
        self._drain()

    def close(self) -> None:
        self._drain()
        if self.owns_session:
            self.session.close()


# ---------------------------------------------------------------------------------------------------------------
# The procedure API
# ---------------------------------------------------------------------------------------------------------------

def _is_tm_sample(rec: dict) -> bool:
    """A telemetry packet with parameters (not an event, a verification report or an error)."""
    return (rec.get("packet_type") == "TM" and "error" not in rec and "event_id" not in rec
            and "request" not in rec and rec.get("name") is not None)


def _matches(actual: Any, wanted: Any) -> bool:
    if callable(wanted):
        return bool(wanted(actual))
    return bool(actual == wanted)


class Procedure:
    """Send verified commands and wait on telemetry and events; see the module docstring.

    ``log`` receives one line per step (the command-line runner prints them,
    the pytest plugin prints them so that pytest shows them for a failed
    test).  ``journal_size`` bounds the records kept.
    """

    def __init__(self, backend: Backend, *, log: Callable[[str], None] | None = None, name: str = "",
                 journal_size: int = 50_000) -> None:
        self.backend = backend
        self.dictionary = backend.dictionary
        self.name = name
        self._log_fn = log
        self._journal: deque[dict] = deque(maxlen=journal_size)
        self._total = 0                      # records ever journalled: the index of the next one
        self._step_mark = 0
        self._latest: dict[str, Any] = {}
        self._t0 = backend.now
        self.results: list[VerificationResult] = []
        self._params = self._index_params(self.dictionary)
        self._events = self._index_events(self.dictionary)
        backend.refresh()
        for rec in backend.recent:   # history: what the ground received before the start
            self._on_record(rec)
        self._step_mark = self._start_mark = self._total
        backend.add_sink(self._on_record)

    # -- set-up ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _index_params(d: Dictionary) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        packets = [p for s in d.systems for p in s.telemetry] + list(getattr(d, "standard_packets", ()))
        for pkt in packets:
            for prm in pkt.params:
                out.setdefault(prm.name, set()).add(pkt.name)
        return out

    @staticmethod
    def _index_events(d: Dictionary) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for s in d.systems:
            for e in s.events:
                out.setdefault(e.name, set()).update(a.name for a in e.args)
        return out

    def close(self) -> None:
        """Stop journalling (the backend stays usable; close it separately)."""
        self.backend.remove_sink(self._on_record)

    def __enter__(self) -> "Procedure":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the journal ----------------------------------------------------------------------------------------------
    def _on_record(self, rec: dict) -> None:
        self._journal.append(rec)
        self._total += 1
        if _is_tm_sample(rec):
            self._latest.update(rec["params"])

    def mark(self) -> int:
        """A position in the journal: pass it as ``since`` to search from here."""
        return self._total

    def _since(self, since: int | str | None) -> int:
        if since is None:
            return self._step_mark
        if since == "now":
            return self._total
        if since == "start":
            return self._start_mark
        if since == "history":
            return 0
        if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
            return since
        raise ValueError(f"since must be None, 'now', 'start', 'history' or a mark from mark(), not {since!r}")

    def records(self, since: int | str | None = None, name: str | None = None) -> list[dict]:
        """Records received since ``since`` (default: the last command), optionally only packets ``name``."""
        first = self._total - len(self._journal)
        start = max(self._since(since), first)
        out = [self._journal[i - first] for i in range(start, self._total)]
        if name is not None:
            out = [r for r in out if r.get("name") == name or r.get("event") == name]
        return out

    def _wait(self, match: Callable[[dict], bool], timeout: float, since: int | str | None) -> dict | None:
        if timeout < 0:
            raise ValueError(f"timeout must not be negative, got {timeout!r}")
        cursor = self._since(since)
        found: list[dict] = []

        def check() -> bool:  # called again after it said True: it must keep saying so
            nonlocal cursor
            if found:
                return True
            first = self._total - len(self._journal)
            i = max(cursor, first)
            while i < self._total:
                rec = self._journal[i - first]
                i += 1
                if match(rec):
                    found.append(rec)
                    cursor = i
                    return True
            cursor = i
            return False

        if not check():
            self.backend.advance(self.now + timeout, check)
        return found[0] if found else None

    # -- time -----------------------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Mission seconds on the backend's clock."""
        return self.backend.now

    @property
    def elapsed(self) -> float:
        """Seconds since the procedure started."""
        return self.backend.now - self._t0

    @property
    def simulated(self) -> bool:
        return self.backend.kind == "sim"

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass: the simulation runs, or the link is read meanwhile (nothing received is lost)."""
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds!r})")
        self._log(f"sleep {seconds:g} s")
        self.backend.advance(self.now + seconds, lambda: False)

    # -- logging --------------------------------------------------------------------------------------------------
    def _log(self, text: str) -> None:
        if self._log_fn is not None:
            self._log_fn(f"[{self.elapsed:9.3f}] {text}")

    def step(self, text: str) -> None:
        """Log a step heading (shown by the runner and in a failed test's output)."""
        self._log(f"== {text}")

    # -- commanding -----------------------------------------------------------------------------------------------
    def submit(self, command: str, *, system: str | None = None, confirm: str | None = None,
               timeout: float | None = None, args: Mapping[str, Any] | None = None, **kwargs: Any) -> PusTc:
        """Send a command without waiting; :meth:`wait` for its result later.

        Waits that follow default to searching from this moment.
        """
        merged = {**(args or {}), **kwargs}
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in merged.items())
        to = f" to {system.upper()}" if system else ""
        self._step_mark = self._total
        try:
            tc = self.backend.submit(command, system, confirm, timeout, merged)
        except (KeyError, ValueError) as exc:  # the dictionary refused it: nothing was sent
            self._log(f"send {command}{to}{' ' + shown if shown else ''}: refused, nothing sent: "
                      f"{exc.args[0] if exc.args else exc}")
            raise
        self._log(f"send {command}{to}{' ' + shown if shown else ''}  (seq {tc.seq_count})")
        return tc

    def wait(self, tc: PusTc) -> VerificationResult:
        """Wait until ``tc``'s verification completes, fails or times out; returns the result."""
        st = self.backend.status(tc)
        if st is None:
            raise KeyError(f"telecommand apid={tc.apid} seq={tc.seq_count} is not tracked")
        seen = len(st.reports)

        def done() -> bool:
            nonlocal seen
            cur = self.backend.status(tc)
            if cur is None:
                return True
            for r in cur.reports[seen:]:
                step = f" {r.step}" if r.step is not None else ""
                verdict = "OK" if r.success else f"FAILED {r.failure}"
                self._log(f"   {cur.command} {r.stage}{step} {verdict} from {r.reporter or hex(r.reporter_apid)}")
            seen = len(cur.reports)
            return cur.done

        if not done():
            self.backend.advance(st.deadline + VERIFICATION_GRACE_S, done)
        final = self.backend.status(tc)
        assert final is not None
        self.results.append(final)
        self._log(f"   {final.command}: {final.state}"
                  + (f" {final.failure}" if final.failure and final.state != State.TIMEOUT else "")
                  + f" after {max(0.0, self.now - final.sent_at):.3f} s")
        return final

    def send(self, command: str, *, system: str | None = None, confirm: str | None = None,
             timeout: float | None = None, args: Mapping[str, Any] | None = None,
             **kwargs: Any) -> VerificationResult:
        """Send a command and wait for its verification; returns the result (whatever it is).

        Arguments go as keywords (``send("FSS_SET_MODE", mode="SCIENCE")``), or
        as ``args={...}`` for an argument whose name clashes with this
        signature.  ``system`` addresses a standard command (``PING``) to a unit;
        ``confirm`` names the addressed unit of a hazardous command; ``timeout``
        replaces the dictionary's ``timeout_s``.
        """
        return self.wait(self.submit(command, system=system, confirm=confirm, timeout=timeout, args=args,
                                     **kwargs))

    def send_and_assert(self, command: str, *, system: str | None = None, confirm: str | None = None,
                        timeout: float | None = None, args: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> VerificationResult:
        """:meth:`send`, and raise :class:`ProcedureFailure` unless it completed successfully."""
        r = self.send(command, system=system, confirm=confirm, timeout=timeout, args=args, **kwargs)
        if not r.ok:
            raise ProcedureFailure(f"{command} did not succeed: {describe_result(r)}", r)
        return r

    def expect_failure(self, command: str, code: str, *, stage: str | None = None, system: str | None = None,
                       confirm: str | None = None, timeout: float | None = None,
                       args: Mapping[str, Any] | None = None, **kwargs: Any) -> VerificationResult:
        """Send a command that must fail with failure code ``code`` (a ``FAILURE_CODE`` name).

        ``stage`` (acceptance, start, progress, completion) also checks where
        it failed.  ``code="TIMEOUT"`` also accepts a command that got no
        final report in time.
        """
        known = self.dictionary.failure_codes.values
        if code not in known:
            raise KeyError(f"unknown failure code {code!r}{_close(code, known)}")
        if stage is not None and stage not in ("acceptance", "start", "progress", "completion"):
            raise ValueError(f"stage must be acceptance, start, progress or completion, not {stage!r}")
        r = self.send(command, system=system, confirm=confirm, timeout=timeout, args=args, **kwargs)
        if r.failure != code or r.state not in (State.FAILED, State.TIMEOUT):
            raise ProcedureFailure(f"{command} should have failed with {code}: {describe_result(r)}", r)
        if stage is not None and not any(rep.stage == stage and not rep.success for rep in r.reports):
            raise ProcedureFailure(f"{command} should have failed at {stage}: {describe_result(r)}", r)
        return r

    # -- telemetry ------------------------------------------------------------------------------------------------
    def _check_param(self, name: str) -> set[str]:
        packets = self._params.get(name)
        if packets is None:
            raise KeyError(f"no telemetry parameter {name!r} in the dictionary{_close(name, self._params)}")
        return packets

    def value(self, param: str, default: Any = None, *, where: Mapping[str, Any] | None = None) -> Any:
        """The latest value of ``param`` the ground received (``default`` if none yet).

        ``where`` picks a row of a packet sent once per unit, e.g.
        ``value("PL_STATE", where={"PL_UNIT": "FSS"})``.
        """
        self._check_param(param)
        if not where:
            return self._latest.get(param, default)
        self._check_where(param, where)
        for rec in reversed(self._journal):
            if _is_tm_sample(rec) and param in rec["params"] and self._where_ok(rec, where):
                return rec["params"][param]
        return default

    def _check_where(self, param: str | None, where: Mapping[str, Any]) -> None:
        for k in where:
            pk = self._check_param(k)
            if param is not None and not (pk & self._params[param]):
                raise KeyError(f"{k} is not in the same packet as {param}")

    @staticmethod
    def _where_ok(rec: dict, where: Mapping[str, Any] | None) -> bool:
        if not where:
            return True
        params = rec["params"]
        return all(k in params and _matches(params[k], v) for k, v in where.items())

    def wait_tm(self, param: str | Callable[[dict], bool], op: Any = None, value: Any = None, *,
                timeout: float = DEFAULT_TIMEOUT, where: Mapping[str, Any] | None = None,
                since: int | str | None = None, default: Any = _RAISE) -> Any:
        """Wait for a telemetry sample and return it.

        * ``wait_tm("FSS_MODE", "==", "SCIENCE")``: a sample of the parameter for which the
          comparison holds (``==  !=  <  <=  >  >=  in  not in``); returns its value.
        * ``wait_tm("FSS_MODE", "SCIENCE")``: the same, for equality.
        * ``wait_tm("FSS_TILT", lambda v: abs(v) < 200)``: a predicate on the value.
        * ``wait_tm("FSS_TEMP_VBB")``: any sample; returns its value.
        * ``wait_tm(lambda rec: ..., timeout=5)``: the first telemetry record (a decoded packet,
          see :mod:`ground.decoding`) for which the predicate holds; returns the record.

        ``where`` restricts to packet rows whose other parameters match
        (``where={"PL_UNIT": "FSS"}``; a value may be a predicate).  On
        time-out raises :class:`WaitTimeout`, or returns ``default`` if given.
        """
        if callable(param):
            if op is not None or value is not None or where:
                raise ValueError("wait_tm(predicate) takes no op, value or where")
            pred = param
            what = getattr(param, "__name__", "predicate")

            def match_rec(rec: dict) -> bool:
                return _is_tm_sample(rec) and bool(pred(rec))
        else:
            self._check_param(param)
            if where:
                self._check_where(param, where)
            test = self._value_test(op, value)
            what = param + self._describe_test(op, value)
            if where:
                what += " where " + ", ".join(f"{k}={_fmt(v)}" for k, v in where.items())

            def match_rec(rec: dict) -> bool:
                if not _is_tm_sample(rec):
                    return False
                params = rec["params"]
                return param in params and self._where_ok(rec, where) and test(params[param])

        t0 = self.now
        rec = self._wait(match_rec, timeout, since)
        if rec is None:
            last = "" if callable(param) else f"; last value {_fmt(self.value(param, where=where))}"
            self._log(f"wait {what}: TIMEOUT after {timeout:g} s{last}")
            if default is not _RAISE:
                return default
            raise WaitTimeout(f"no telemetry with {what} within {timeout:g} s{last}")
        result = rec if callable(param) else rec["params"][param]
        self._log(f"wait {what}: {'matched ' + str(rec.get('name')) if callable(param) else _fmt(result)}"
                  f" after {max(0.0, self.now - t0):.3f} s")
        return result

    @staticmethod
    def _describe_test(op: Any, value: Any) -> str:
        if op is None:
            return ""
        if isinstance(op, str) and op in OPS:
            return f" {op} {_fmt(value)}"
        if callable(op):
            return f" {getattr(op, '__name__', 'predicate')}"
        return f" == {_fmt(op)}"

    @staticmethod
    def _value_test(op: Any, value: Any) -> Callable[[Any], bool]:
        if op is None:
            if value is not None:
                raise ValueError("give an operator with the value, e.g. wait_tm(name, '>=', 3)")
            return lambda v: True
        if isinstance(op, str) and op in OPS:
            fn = OPS[op]

            def compare(v: Any) -> bool:
                try:
                    return bool(fn(v, value))
                except TypeError:  # e.g. a label compared with a number: not a match
                    return False
            return compare
        if callable(op):
            if value is not None:
                raise ValueError("a predicate takes no value")
            return lambda v: bool(op(v))
        if value is not None:
            raise ValueError(f"unknown operator {op!r}; use one of {', '.join(OPS)}")
        return lambda v: v == op  # wait_tm(name, expected)

    # -- events ---------------------------------------------------------------------------------------------------
    def _event_match(self, name: str, system: str | None, filters: Mapping[str, Any]) -> Callable[[dict], bool]:
        args = self._events.get(name)
        if args is None:
            raise KeyError(f"no event {name!r} in the dictionary{_close(name, self._events)}")
        bad = [k for k in filters if k not in args]
        if bad:
            known = ", ".join(sorted(args)) or "none"
            raise KeyError(f"event {name} has no argument {', '.join(bad)} (arguments: {known})")
        unit = system.upper() if system else None

        def match(rec: dict) -> bool:
            return (rec.get("event") == name and "error" not in rec and (unit is None or rec.get("system") == unit)
                    and all(k in rec["params"] and _matches(rec["params"][k], v) for k, v in filters.items()))
        return match

    def wait_event(self, name: str, timeout: float = DEFAULT_TIMEOUT, *, system: str | None = None,
                   since: int | str | None = None, default: Any = _RAISE, **arg_filters: Any) -> Any:
        """Wait for event ``name`` (of unit ``system`` if given) whose arguments match ``arg_filters``.

        A filter value is compared for equality, or called if it is a
        predicate: ``wait_event("DEPLOY_RELEASED", 20, EVT_DEP_UNIT="ALPINE",
        EVT_DEP_SEP_MS=lambda ms: ms < 1000)``.  Returns the event record
        (``rec["params"]`` holds its arguments); on time-out raises
        :class:`WaitTimeout`, or returns ``default`` if given.
        """
        match = self._event_match(name, system, arg_filters)
        what = name + "".join(f" {k}={_fmt(v) if not callable(v) else getattr(v, '__name__', 'predicate')}"
                              for k, v in arg_filters.items())
        t0 = self.now
        rec = self._wait(match, timeout, since)
        if rec is None:
            self._log(f"event {what}: TIMEOUT after {timeout:g} s")
            if default is not _RAISE:
                return default
            raise WaitTimeout(f"no event {what} within {timeout:g} s")
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in rec["params"].items())
        self._log(f"event {rec.get('system')} {name} {shown} after {max(0.0, self.now - t0):.3f} s")
        return rec

    def events(self, name: str | None = None, *, system: str | None = None, since: int | str | None = None,
               **arg_filters: Any) -> list[dict]:
        """Event records already received since ``since`` (default: the last command), optionally filtered."""
        if name is None:
            if arg_filters:
                raise ValueError("argument filters need an event name")
            unit = system.upper() if system else None
            return [r for r in self.records(since) if r.get("event") and (unit is None or r.get("system") == unit)]
        match = self._event_match(name, system, arg_filters)
        return [r for r in self.records(since) if match(r)]

    def assert_no_event(self, name: str, during: float = 0.0, *, system: str | None = None,
                        since: int | str | None = None, **arg_filters: Any) -> None:
        """Raise :class:`ProcedureFailure` if event ``name`` came since ``since`` or comes within ``during`` s."""
        rec = self.wait_event(name, during, system=system, since=since, default=None, **arg_filters)
        if rec is not None:
            shown = " ".join(f"{k}={_fmt(v)}" for k, v in rec["params"].items())
            raise ProcedureFailure(f"unexpected event {rec.get('system')} {name} {shown}")


def _close(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


# ---------------------------------------------------------------------------------------------------------------
# Opening a backend by kind (the command-line runner and the pytest plugin)
# ---------------------------------------------------------------------------------------------------------------

BACKEND_KINDS = ("sim", "pty", "link")


@contextmanager
def open_backend(kind: str, *, link: str | None = None, seed: int = 1, phase: str | None = None,
                 dictionary: Dictionary | None = None, baud: int = 115200, hw_args: Iterable[str] = (),
                 fsw_args: Iterable[str] = (), run_dir: str | None = None,
                 connect_timeout: float = 5.0, space_link: bool = False) -> Iterator[Backend]:
    """A backend of ``kind``, closed (and its processes stopped) on exit.

    * ``"sim"``: a :class:`~ground.simbench.SimBench` (``seed``, ``phase``) on the simulated clock;
    * ``"pty"``: ``hw-sim`` and ``fsw`` started as separate processes on pseudo-terminals
      (:func:`ground.procs.start_bench`, in ``run_dir`` or a temporary directory, with extra
      ``hw_args``/``fsw_args``), and a :class:`LinkBackend` on their ground port; the bench is
      stopped on exit.  The backend's ``bench`` attribute is the :class:`ground.procs.Bench`;
    * ``"link"``: a :class:`LinkBackend` on ``link`` (a pty path, device or URL) to a flight
      software already running.

    ``connect_timeout``: seconds to wait for the link to connect (pty, link).  ``space_link`` (link only):
    speak TC/TM transfer frames and COP-1 to a flight software run with ``--space-link``.
    """
    if kind not in BACKEND_KINDS:
        raise ValueError(f"unknown backend {kind!r}; use one of {', '.join(BACKEND_KINDS)}")
    if space_link and kind != "link":
        raise ValueError("the space link is for the link backend (a flight software already running with "
                         "--space-link), not for sim or pty")
    if kind == "sim":
        from .simbench import SimBench

        yield SimBackend(SimBench(dictionary, seed=seed, phase=phase or "PRELAUNCH"))
        return
    if kind == "link":
        if not link:
            raise ValueError("the link backend needs a link spec")
        backend = LinkBackend.connect(link, dictionary, baud=baud, connect_timeout=connect_timeout,
                                      space_link=space_link)
        try:
            yield backend
        finally:
            backend.close()
        return
    from .procs import start_bench

    bench = start_bench(run_dir, seed=seed, phase=phase, hw_args=list(hw_args), fsw_args=list(fsw_args))
    try:
        backend = LinkBackend.connect(bench.ground_link, dictionary, baud=baud, connect_timeout=connect_timeout)
        backend.bench = bench  # type: ignore[attr-defined]
        try:
            yield backend
        finally:
            backend.close()
    finally:
        bench.stop()
