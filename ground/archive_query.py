"""Pure helpers of the archive: time arguments, where a parameter lives, command states, CSV-safe text.

No I/O here (no sqlite3, no clock): :mod:`ground.archive` does the storing
and querying and calls these for the parts that are plain logic.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from fsw.dictionary import Dictionary, Parameter
from fsw.dictionary.model import SEVERITIES

__all__ = [
    "ParamLocation", "command_state", "csv_safe", "locate_parameter", "parse_time", "severities_at_least",
]

#: verification stages in the order PUS-1 reports them
STAGES = ("acceptance", "start", "progress", "completion")


def parse_time(text: str | float | None, dictionary: Dictionary, what: str = "time") -> float | None:
    """A time argument as mission seconds: a number (mission seconds) or ISO-8601 UTC.

    ``None`` and ``""`` give ``None`` (unbounded).  Raises :class:`ValueError`
    with a readable message for anything else.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ValueError(f"{what} {text!r} is not a finite number")
        return float(text)
    s = str(text).strip()
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(v):
            raise ValueError(f"{what} {s!r} is not a finite number")
        return v
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {s!r} is neither mission seconds nor an ISO-8601 UTC time "
                         "(e.g. 2027-03-01T00:10:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dictionary.epoch.from_datetime(dt)


@dataclass(frozen=True)
class ParamLocation:
    """Where a parameter's values are stored: in packets (by packet name) or in events (by event name)."""

    name: str
    parameter: Parameter
    packets: tuple[str, ...] = ()
    events: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        return self.parameter.unit


def locate_parameter(dictionary: Dictionary, name: str) -> ParamLocation:
    """Where ``name`` lives; raises :class:`KeyError` with close matches if no packet or event declares it."""
    packets: list[str] = []
    events: list[str] = []
    found: Parameter | None = None
    for s in dictionary.systems:
        for p in s.telemetry:
            for prm in p.params:
                if prm.name == name:
                    packets.append(p.name)
                    found = found or prm
        for e in s.events:
            for prm in e.args:
                if prm.name == name:
                    events.append(e.name)
                    found = found or prm
    for p in dictionary.standard_packets:
        for prm in p.params:
            if prm.name == name:
                packets.append(p.name)
                found = found or prm
    if found is None:
        known = sorted(_all_parameter_names(dictionary))
        close = difflib.get_close_matches(name.upper(), known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see: ground dictionary list"
        raise KeyError(f"unknown parameter {name!r}{hint}")
    return ParamLocation(name, found, tuple(dict.fromkeys(packets)), tuple(dict.fromkeys(events)))


def _all_parameter_names(d: Dictionary) -> set[str]:
    names = {prm.name for p in d.standard_packets for prm in p.params}
    for s in d.systems:
        names |= {prm.name for p in s.telemetry for prm in p.params}
        names |= {a.name for e in s.events for a in e.args}
    return names


def severities_at_least(level: str) -> tuple[str, ...]:
    """``"MEDIUM"`` -> ``("MEDIUM", "HIGH")``; raises :class:`ValueError` for an unknown level."""
    lv = level.upper()
    if lv not in SEVERITIES:
        raise ValueError(f"severity {level!r} must be one of {', '.join(SEVERITIES)}")
    return SEVERITIES[SEVERITIES.index(lv):]


def command_state(ack_flags: int | None, stages: Iterable[Mapping[str, Any]], timed_out: bool = False) -> str:
    """The verification state of a command from its stage reports (in arrival order).

    ``SUCCESS`` once the last stage the command's acknowledgement flags ask
    for succeeded, ``FAILED`` on any failure report, ``TIMEOUT`` if the
    session recorded a timeout and nothing final came, else ``PENDING``
    (``SENT`` when no report came at all).
    """
    from .verification import final_stage  # pure

    final = final_stage(ack_flags if ack_flags is not None else 0b1111)
    state = "SENT"
    for st in stages:
        if st.get("stage") == "timeout":
            continue
        if not st.get("success"):
            return "FAILED"
        state = "PENDING"
        if st.get("stage") == final:
            state = "SUCCESS"
    if state != "SUCCESS" and timed_out:
        return "TIMEOUT"
    if final is None and state == "SENT":
        return "SENT"
    return state


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A cell value that a spreadsheet shows as text: strings that start like a formula get a leading quote.

    Numbers stay numbers (a negative number is data, not a formula).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
