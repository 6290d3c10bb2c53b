"""Mission scenarios: a timeline of ground actions and success criteria, as data.

A scenario is a YAML file (the reference one is
``fsw/missions/reference/scenario.yaml``)::

    scenario: reference
    description: Launch to lunar night.
    end: L+49d
    steps:
      - {at: L+0, phase: LAUNCH}
      - {at: L+1h, send: HEATER_ON, args: {unit: FSS}}
      - {at: L+1d, send: PAYLOAD_POWER_ON, args: {unit: FSS}, expect: ok}
      - {at: L+1d+10m, wait: "FSS_MODE == SURVIVAL", timeout: 5m, criterion: FSS heartbeat checkout}
      - {at: L+30d, send: DEPLOY_ARM, args: {unit: ALPINE}, confirm: ALPINE}

Times are ``L+`` (or ``L-``) offsets from launch with units ``d``, ``h``,
``m``, ``s`` (``L+1d+10m``), or plain seconds; ``start`` (default ``L+0``)
is when the run begins, e.g. ``L-1h`` to power up on the pad.  Step kinds:

* ``send: COMMAND`` with ``args``, ``system`` (for standard commands such as
  PING), ``confirm`` (hazardous commands) and ``expect: ok|fail|FAILURE_CODE``
  (default ``ok``; ``none`` when no link will carry the verification, e.g. entering LAUNCH);
  a step with ``criterion`` counts as a success criterion;
* ``phase: NAME``: shorthand for ``send: SET_PHASE`` with ``expect: ok``;
* ``schedule: COMMAND`` with ``release: L+...`` (and ``args``, ``confirm``, ``expect``): uplink the
  command into the onboard time-based schedule (PUS 11) now, to run at ``release`` without ground in the
  loop (for example during launch, when there is no link); ``expect`` applies to its execution;
* ``wait: "PARAM OP VALUE"`` with ``timeout``: the condition must become true
  in ground telemetry within the time-out (a criterion when named);
  ``PARAM@INSTANCE`` picks one instance of a per-unit lander report, e.g.
  ``DEP_STATE@ALPINE == RELEASED`` or ``PL_STATE@FSS == SCIENCE``;
* ``note: text``: printed in the progress log.

The parser is pure and reports every problem with the step number.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Any

from fsw.dictionary import Dictionary
from fsw.dictionary.loader import load_yaml

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_TERM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*$")
_OPS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le, ">": operator.gt,
        "<": operator.lt}
_COND = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*(?:@[A-Za-z][A-Za-z0-9_]*)?)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the step."""


def parse_offset(text: Any, what: str = "time") -> float:
    """Seconds after launch of ``L+1d+2h+30m`` (terms joined by ``+``), ``90m``, or a plain number."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ScenarioError(f"{what} {text!r} must be seconds or a time like L+1d+2h")
    s = text.strip()
    sign = 1.0
    if s.upper().startswith("L"):
        s = s[1:].lstrip()
        if not s:
            return 0.0
        if s[0] not in "+-":
            raise ScenarioError(f"{what} {text!r}: expected L+offset or L-offset")
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    total = 0.0
    for term in s.split("+"):
        m = _TERM.match(term)
        if not m:
            raise ScenarioError(f"{what} {text!r}: cannot read {term!r} (use numbers with d, h, m or s)")
        total += float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return sign * total


@dataclass(frozen=True)
class Condition:
    param: str
    op: str
    value: Any

    def holds(self, actual: Any) -> bool:
        if actual is None:
            return False
        try:
            if isinstance(self.value, (int, float)) and not isinstance(actual, str):
                return bool(_OPS[self.op](float(actual), float(self.value)))
            return bool(_OPS[self.op](str(actual), str(self.value)))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return f"{self.param} {self.op} {self.value}"


@dataclass(frozen=True)
class Step:
    index: int
    at: float
    kind: str                          # send | wait | note
    command: str | None = None
    system: str | None = None
    args: dict = field(default_factory=dict)
    confirm: str | None = None
    expect: str = "ok"
    condition: Condition | None = None
    timeout: float = 60.0
    criterion: str | None = None
    text: str = ""
    #: for ``schedule`` steps: when the onboard schedule releases the command (seconds after launch)
    release: float | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    end: float
    steps: tuple[Step, ...]
    seed: int = 1
    #: when the run starts, relative to launch (negative: before launch)
    start: float = 0.0

    @property
    def criteria(self) -> list[Step]:
        return [s for s in self.steps if s.criterion]


_STEP_KEYS = {"at", "send", "phase", "wait", "note", "schedule", "release", "args", "system", "confirm", "expect",
              "timeout", "criterion"}


def parse_scenario(text: str, dictionary: Dictionary, file: str = "scenario") -> Scenario:
    try:
        d = load_yaml(text)
    except Exception as exc:  # noqa: BLE001 - YAML errors come in several classes
        raise ScenarioError(f"{file}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(d, dict) or "steps" not in d:
        raise ScenarioError(f"{file}: expected a mapping with 'scenario', 'end' and 'steps'")
    unknown = set(d) - {"scenario", "description", "start", "end", "steps", "seed"}
    if unknown:
        raise ScenarioError(f"{file}: unknown key(s) {', '.join(sorted(unknown))}")
    end = parse_offset(d.get("end", 0), f"{file}: end")
    start = parse_offset(d.get("start", 0), f"{file}: start")
    steps: list[Step] = []
    last = start
    for i, raw in enumerate(d["steps"] or [], start=1):
        where = f"{file}: step {i}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        bad = set(raw) - _STEP_KEYS
        if bad:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(bad))}")
        if "at" not in raw:
            raise ScenarioError(f"{where}: needs 'at'")
        at = parse_offset(raw["at"], f"{where}: at")
        if at < last:
            raise ScenarioError(f"{where}: at {raw['at']} is earlier than the step before (or the start)")
        last = at
        kinds = [k for k in ("send", "phase", "wait", "note", "schedule") if k in raw]
        if len(kinds) != 1:
            raise ScenarioError(f"{where}: give exactly one of send, phase, schedule, wait, note")
        release = None
        if kind_is_schedule := (kinds[0] == "schedule"):
            if "release" not in raw:
                raise ScenarioError(f"{where}: a schedule step needs 'release' (when the command runs on board)")
            release = parse_offset(raw["release"], f"{where}: release")
            if release <= at:
                raise ScenarioError(f"{where}: release must come after 'at'")
        elif "release" in raw:
            raise ScenarioError(f"{where}: 'release' belongs to schedule steps")
        kind = kinds[0]
        criterion = raw.get("criterion")
        timeout = parse_offset(raw.get("timeout", 60), f"{where}: timeout")
        if kind == "note":
            steps.append(Step(i, at, "note", text=str(raw["note"])))
            continue
        if kind == "wait":
            m = _COND.match(str(raw["wait"]))
            if not m:
                raise ScenarioError(f"{where}: wait {raw['wait']!r} must look like 'PARAM == VALUE'")
            param, op, value = m.groups()
            if param.split("@")[0] not in dictionary.parameters:
                raise ScenarioError(f"{where}: {param} is not a telemetry parameter")
            v: Any = value.strip("'\"")
            try:
                v = float(v)
            except ValueError:
                pass
            steps.append(Step(i, at, "wait", condition=Condition(param, op, v), timeout=timeout,
                              criterion=criterion))
            continue
        if kind == "phase":
            name, args, system = "SET_PHASE", {"phase": raw["phase"]}, None
        else:
            name = str(raw["schedule"] if kind_is_schedule else raw["send"])
            args, system = dict(raw.get("args") or {}), raw.get("system")
        try:
            cmd = dictionary.command(name, system)
            dictionary.encode_command(cmd, args)
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            raise ScenarioError(f"{where}: {name}: {msg}") from None
        if cmd.hazardous and raw.get("confirm") is None:
            raise ScenarioError(f"{where}: {name} is hazardous: add confirm: <unit name>")
        expect = str(raw.get("expect", "ok"))
        if expect not in ("ok", "fail", "none") and expect not in dictionary.failure_codes.values:
            raise ScenarioError(f"{where}: expect must be ok, fail, none (no link to verify it) or a failure code")
        steps.append(Step(i, at, "schedule" if kind_is_schedule else "send", command=cmd.name, system=cmd.system,
                          args=args, confirm=raw.get("confirm"), expect=expect, timeout=timeout if "timeout" in raw
                          else cmd.timeout_s, criterion=criterion, release=release))
    if steps and end < steps[-1].at:
        raise ScenarioError(f"{file}: end comes before the last step")
    seed = d.get("seed", 1)
    if not isinstance(seed, int):
        raise ScenarioError(f"{file}: seed must be an integer")
    if end <= start:
        raise ScenarioError(f"{file}: end must come after start")
    return Scenario(str(d.get("scenario", file)), str(d.get("description", "")), end, tuple(steps), seed, start)
