"""Build telecommands from the mission dictionary, validating everything before a byte is sent.

Pure code: no I/O, no clock.  The ground tool's ``send`` command and the
session use these functions; the flight software checks the same things
again on board with the same dictionary codecs.
"""

from __future__ import annotations

import difflib
from typing import Any, Final, Iterable, Mapping

from fsw.dictionary import ArgumentError, Command, Dictionary
from fsw.protocol import MAX_APID, MAX_SEQ_COUNT, PusTc

__all__ = [
    "GROUND_SOURCE_ID", "ArgumentError", "HazardousCommandError", "SequenceCounter", "build_tc",
    "parse_cli_args", "resolve_command",
]

#: PUS source id of telecommands from this ground tool (the PORT enumeration gives the ground link 0)
GROUND_SOURCE_ID: Final = 0


class HazardousCommandError(ValueError):
    """A hazardous command was built without confirming the unit it acts on."""

    def __init__(self, command: Command, confirm: str | None, target: str | None = None) -> None:
        target = target or command.system
        if confirm:
            msg = (f"{command.name} is hazardous: confirmation {confirm!r} does not match the unit "
                   f"{target}; nothing was sent")
        else:
            msg = f"{command.name} is hazardous: confirm it with the unit name {target}; nothing was sent"
        super().__init__(msg)
        self.command = command
        self.target = target


def confirm_target(d: Dictionary, cmd: Command, args: Mapping[str, Any]) -> str:
    """The name an operator must give to confirm a hazardous command: the unit it acts on.

    That is the value of its first argument whose enumeration labels are all unit names
    (``DEPLOY_FIRE unit=ALPINE`` acts on ALPINE), otherwise the unit it is addressed to.
    """
    units = {"GROUND"}
    for s in d.systems:
        units.add(s.name)
        if s.port:
            units.add(s.port.upper())
    for a in cmd.args:
        if a.enum is not None and a.enum.values and all(label in units for label in a.enum.values):
            v = args.get(a.name, a.default)
            if isinstance(v, str) and v.upper() in a.enum.values:
                return v.upper()
            if isinstance(v, int) and not isinstance(v, bool) and v in a.enum.labels:
                return a.enum.labels[v]
    return cmd.system


def _close(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word.upper(), list(choices), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


def parse_cli_args(items: Iterable[str]) -> dict[str, str]:
    """``["mode=SCIENCE", "gain=2"]`` -> ``{"mode": "SCIENCE", "gain": "2"}``.

    Values stay strings: the dictionary codec converts and validates them.
    Raises :class:`ValueError` for an item without ``=``, an empty name or a
    name given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"argument {item!r} must be written name=value")
        if not name:
            raise ValueError(f"argument {item!r} has no name before '='")
        if name in out:
            raise ValueError(f"argument {name} given twice")
        out[name] = value.strip()
    return out


def resolve_command(dictionary: Dictionary, name: str, system: str | None = None) -> Command:
    """The dictionary command ``name`` addressed to ``system`` (default: the unit that owns it).

    Standard commands every unit answers (PING ...) go to the lander unless
    ``system`` names another unit.  Raises :class:`KeyError` with close
    matches for an unknown command or unit, or a command the unit lacks.
    """
    known = dictionary.command_names
    if name not in known and name.upper() in known:
        name = name.upper()
    if name not in known:
        raise KeyError(f"unknown command {name!r}{_close(name, known)}")
    if system is not None:
        units = [s.name for s in dictionary.systems]
        if system.upper() not in units:
            raise KeyError(f"unknown unit {system!r}{_close(system, units)} (units: {', '.join(units)})")
        try:
            return dictionary.command(name, system.upper())
        except KeyError:
            owners = [s.name for s in dictionary.systems if any(c.name == name for c in s.commands)]
            raise KeyError(f"{name} is not a command of {system.upper()}; it belongs to "
                           f"{', '.join(owners)}") from None
    return dictionary.command(name)


def build_tc(dictionary: Dictionary, name: str, args: Mapping[str, Any] | None = None, system: str | None = None,
             seq_count: int = 0, source_id: int = GROUND_SOURCE_ID, confirm: str | None = None,
             ack_flags: int = 0b1111) -> PusTc:
    """A validated telecommand.

    :raises KeyError: unknown command or unit (the message lists close matches)
    :raises ArgumentError: an argument is missing, unknown, of the wrong type or out of range
    :raises HazardousCommandError: ``confirm`` does not name the unit of a hazardous command
    :raises ValueError: ``seq_count`` or ``source_id`` out of range
    """
    cmd = resolve_command(dictionary, name, system)
    if cmd.hazardous:
        target = confirm_target(dictionary, cmd, dict(args or {}))
        if confirm is None or confirm.strip().upper() != target:
            raise HazardousCommandError(cmd, confirm, target)
    app_data = dictionary.encode_command(cmd, dict(args or {}))
    if not 0 <= seq_count <= MAX_SEQ_COUNT:
        raise ValueError(f"sequence count {seq_count} outside 0..{MAX_SEQ_COUNT}")
    if not 0 <= source_id <= 0xFFFF:
        raise ValueError(f"source id {source_id} outside 0..65535")
    return PusTc(cmd.apid, cmd.service, cmd.subservice, app_data, seq_count=seq_count, source_id=source_id,
                 ack_flags=ack_flags)


class SequenceCounter:
    """Packet sequence counts, one 14-bit counter per APID, wrapping 16383 -> 0."""

    __slots__ = ("_next", "_start")

    def __init__(self, start: int = 0) -> None:
        if not 0 <= start <= MAX_SEQ_COUNT:
            raise ValueError(f"start {start} outside 0..{MAX_SEQ_COUNT}")
        self._start = start
        self._next: dict[int, int] = {}

    @staticmethod
    def _check(apid: int) -> None:
        if not 0 <= apid <= MAX_APID:
            raise ValueError(f"APID {apid} outside 0..{MAX_APID}")

    def peek(self, apid: int) -> int:
        """The count the next telecommand to ``apid`` will carry."""
        self._check(apid)
        return self._next.get(apid, self._start)

    def advance(self, apid: int) -> None:
        """Commit the count :meth:`peek` returned (call after the TC was built)."""
        self._next[apid] = (self.peek(apid) + 1) & MAX_SEQ_COUNT

    def next(self, apid: int) -> int:
        """Take the next count for ``apid``."""
        n = self.peek(apid)
        self._next[apid] = (n + 1) & MAX_SEQ_COUNT
        return n
