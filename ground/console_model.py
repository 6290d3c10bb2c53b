"""The operator console's pure parts: command-line model, pane models, limit colouring, synthetic load.

No I/O, no clock, no Textual: records and ``now`` (mission seconds) go in,
rows of ``(text, style token)`` come out.  :mod:`ground.console_app` draws
them; the tests drive them directly.

Everything from the link is data.  Text that came over the link (values,
names, error details) is passed through :func:`clean` (control characters
made visible, length bounded) and the console only ever puts it into styled
text objects, never into markup; :func:`escape_markup` exists for the few
places where a caller must build markup around it.

Pieces:

* :func:`parse_line`, :class:`Completer` (Tab completion), :func:`validate`,
  :class:`History`: the command line.
* :class:`TelemetryModel`: the latest value of every parameter, one row per
  (packet, instance, parameter).  A packet whose first parameter is an
  enumeration of unit or port names (``LINK_HK``'s ``LINK_PORT``,
  ``PAYLOAD_HK``'s ``PL_UNIT`` ...) comes once per unit: its rows are kept
  apart per instance.
* :class:`GridView`: a packet shown transposed (parameters down, instances
  across): payloads, power, deploy units, links.
* :class:`EventLog`, :class:`CommandLog`, :class:`LinkMonitor`.
* :class:`SyntheticTelemetry`: N parameters at R Hz, for the load benchmark.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from fsw.dictionary import ArgumentError, Command, Dictionary, Enumeration, Parameter, TmPacket

from .commanding import confirm_target as commanding_confirm_target
from .commanding import resolve_command
from .verification import STAGES, VerificationResult

__all__ = [
    "CellRef", "CommandLog", "Completer", "Completion", "EventEntry", "EventLog", "GridRow", "GridView", "Hint",
    "History", "LinkMonitor", "ParsedLine", "Row", "STYLE_TOKENS", "SyntheticTelemetry", "TabCycler",
    "TelemetryModel", "Validation", "clean", "confirm_target", "escape_markup", "fmt_value", "grid_views",
    "instance_param", "limit_token", "parse_line", "severity_token", "unit_enum", "validate",
]

#: every style token the model hands out (the app maps each to a colour)
STYLE_TOKENS = (
    "plain", "nominal", "warn", "alarm", "stale", "dim", "header", "key",
    "INFO", "LOW", "MEDIUM", "HIGH", "error", "dropped", "link", "note",
    "good", "bad", "pending", "timeout", "hazard",
)

#: longest piece of link text shown in one cell or line
TEXT_LIMIT = 160


# -- text from the link ------------------------------------------------------------------------------------

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


def clean(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as one printable line: control characters escaped (no terminal sequences), length bounded."""
    s = value if isinstance(value, str) else str(value)
    if not s.isprintable():
        s = s.translate(_CONTROL)
        # other non-printables (unassigned, separators ...) as code points
        s = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in s)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    return s


#: a "[" with the backslashes before it, and (group 2) the rest of a tag if one starts there
_BRACKET = re.compile(r"(\\*)\[(?=([a-z#/@][^[]*?\])?)")


def _escape_bracket(m: re.Match) -> str:
    n = len(m.group(1))
    if m.group(2) is not None:  # would open a tag: n literal backslashes, then an escaped "["
        return "\\" * (2 * n + 1) + "["
    return "\\" * (n + 1 if n else 0) + "["  # Rich turns any other "\[" into "[": keep the backslashes


def escape_markup(text: str) -> str:
    """``text`` made inert inside Rich markup: between two tags it renders as exactly ``text``.

    Whatever could open a tag (``[`` then a letter, ``#``, ``/`` or ``@``, up
    to ``]``) is escaped with the backslashes before it doubled; backslashes
    before any other ``[`` get one more; trailing backslashes are doubled, so
    that the tag the caller puts after the text (a closing tag) still counts.
    Rich also replaces emoji codes such as ``:a:``, which no escape prevents:
    render with ``emoji=False``.  (The console itself never builds markup
    from link text: it draws Rich ``Text`` and ``Segment`` objects.)
    """
    s = _BRACKET.sub(_escape_bracket, text)
    trailing = len(s) - len(s.rstrip("\\"))
    return s + "\\" * trailing


def fmt_value(value: Any, prm: Parameter | None = None, iso: Any = None) -> str:
    """An engineering value as the console shows it (no unit).  ``iso`` formats ``time`` parameters."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if prm is not None and prm.type == "time" and iso is not None and math.isfinite(value):
            try:
                return iso(value)[:19].replace("T", " ")
            except (ValueError, OverflowError):
                return f"{value:.3f}"
        if value == 0:
            return "0"
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        head = ",".join(fmt_value(v) for v in value[:4])
        return f"[{head}{',…' if len(value) > 4 else ''}]({len(value)})"
    return clean(value)


def limit_token(state: str | None, has_limits: bool) -> str:
    """The style token of a value in limit state ``state`` (``"warn"``, ``"alarm"`` or ``None``)."""
    if state == "alarm":
        return "alarm"
    if state == "warn":
        return "warn"
    return "nominal" if has_limits else "plain"


def severity_token(severity: Any) -> str:
    return severity if severity in ("INFO", "LOW", "MEDIUM", "HIGH") else "MEDIUM"


# -- multiplexed packets -----------------------------------------------------------------------------------

def _unit_names(d: Dictionary) -> frozenset[str]:
    names = {"GROUND"}
    for s in d.systems:
        names.add(s.name)
        if s.port:
            names.add(s.port.upper())
    return frozenset(names)


def instance_param(d: Dictionary, pkt: TmPacket, units: frozenset[str] | None = None) -> Parameter | None:
    """The parameter that says which unit a one-per-unit packet describes, or ``None``.

    The rule, from the data alone: the packet's first parameter is an
    enumeration every label of which names a unit, a port or the ground.
    """
    if not pkt.params:
        return None
    p = pkt.params[0]
    if p.enum is None or p.count != 1 or not p.enum.values:
        return None
    names = units if units is not None else _unit_names(d)
    return p if all(label in names for label in p.enum.values) else None


def unit_enum(d: Dictionary, prm: Parameter, unit: str) -> Enumeration | None:
    """The enumeration that labels plain integer ``prm`` in a packet about ``unit``, or ``None``.

    ``PL_MODE`` ("a value of its <UNIT>_MODE enumeration") about FSS is an
    ``FSS_MODE`` label: a plain integer named ``<PREFIX>_<X>`` takes the
    unit's ``<UNIT>_<X>`` enumeration when the unit declares one.
    """
    if prm.enum is not None or not prm.type.startswith(("u", "i")) or "_" not in prm.name:
        return None
    try:
        s = d.system(unit)
    except KeyError:
        return None
    return s.enums.get(f"{s.name}_{prm.name.split('_', 1)[1]}")


confirm_target = commanding_confirm_target  # the one definition lives in ground.commanding


# -- the command line --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str


def _tokens(text: str) -> list[Token]:
    out = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        j = i
        while j < n and not text[j].isspace():
            j += 1
        out.append(Token(i, j, text[i:j]))
        i = j
    return out


@dataclass
class ParsedLine:
    """A command line split into its parts: ``NAME [--to UNIT] [--timeout S] [arg=value ...]``."""

    name: str = ""
    to: str | None = None
    timeout: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


OPTIONS = ("--to", "--timeout")


def parse_line(text: str) -> ParsedLine:
    """Split a command line; problems go to ``errors`` (nothing raises)."""
    p = ParsedLine()
    toks = [t.text for t in _tokens(text)]
    if not toks:
        return p
    p.name = toks[0]
    i = 1
    while i < len(toks):
        tok = toks[i]
        if tok.startswith("--"):
            opt, eq, val = tok.partition("=")
            if opt not in OPTIONS:
                p.errors.append(f"unknown option {clean(opt)} (options: {', '.join(OPTIONS)})")
                i += 1
                continue
            if not eq:
                if i + 1 >= len(toks):
                    p.errors.append(f"{opt} needs a value")
                    i += 1
                    continue
                val = toks[i + 1]
                i += 1
            if opt == "--to":
                p.to = val
            else:
                p.timeout = val
        else:
            name, eq, val = tok.partition("=")
            if not eq:
                p.errors.append(f"argument {clean(tok)!r} must be written name=value")
            elif not name:
                p.errors.append(f"argument {clean(tok)!r} has no name before '='")
            elif name in p.args:
                p.errors.append(f"argument {clean(name)} given twice")
            else:
                p.args[name] = val
        i += 1
    return p


@dataclass(frozen=True)
class Validation:
    """What :func:`validate` concluded about a command line.

    ``level``: ``"empty"``, ``"incomplete"`` (a required argument is still
    missing: fine while typing), ``"error"`` or ``"ok"``.
    """

    level: str
    message: str
    command: Command | None = None
    system: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    hazardous: bool = False
    target: str | None = None   # the name to type to confirm a hazardous command

    @property
    def ok(self) -> bool:
        return self.level == "ok"

    def summary(self) -> str:
        if self.command is None:
            return ""
        shown = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.command.name}{' ' + shown if shown else ''} → {self.system}"


def _normalise_args(cmd: Command, args: Mapping[str, str]) -> dict[str, str]:
    """Enumeration labels typed in any case become the dictionary's label."""
    out = {}
    for k, v in args.items():
        try:
            a = cmd.arg(k)
        except KeyError:
            out[k] = v
            continue
        if a.enum is not None and v not in a.enum.values:
            match = [label for label in a.enum.values if label.upper() == v.upper()]
            out[k] = match[0] if match else v
        else:
            out[k] = v
    return out


def validate(d: Dictionary, text: str) -> Validation:
    """Check a command line against the dictionary exactly as sending would (nothing is sent)."""
    p = parse_line(text)
    if not p.name:
        return Validation("empty", "")
    if p.errors:
        return Validation("error", p.errors[0])
    try:
        cmd = resolve_command(d, p.name, p.to)
    except KeyError as exc:
        return Validation("error", clean(exc.args[0] if exc.args else exc))
    if cmd.raw:
        return Validation("error", f"{cmd.name} carries variable-length data built by other tools; "
                                   "it cannot be typed here", cmd, cmd.system)
    timeout = None
    if p.timeout is not None:
        try:
            timeout = float(p.timeout)
        except ValueError:
            timeout = math.nan
        if not (timeout > 0 and math.isfinite(timeout)):
            return Validation("error", f"--timeout takes a positive number of seconds, not {clean(p.timeout)!r}",
                              cmd, cmd.system)
    args = _normalise_args(cmd, p.args)
    target = confirm_target(d, cmd, args) if cmd.hazardous else None
    try:
        d.encode_command(cmd, args)
    except ArgumentError as exc:
        level = "incomplete" if exc.code == "MISSING_ARGUMENT" else "error"
        return Validation(level, f"{cmd.name}: {clean(exc)}", cmd, cmd.system, args, timeout, cmd.hazardous, target)
    if cmd.hazardous:
        msg = f"HAZARDOUS: Enter asks you to type {target} to confirm"
    else:
        msg = "ready: Enter sends"
    return Validation("ok", msg, cmd, cmd.system, args, timeout, cmd.hazardous, target)


@dataclass(frozen=True)
class Completion:
    """The result of one Tab: the new line and cursor, and what could have gone there."""

    text: str
    cursor: int
    candidates: tuple[str, ...] = ()
    chosen: int = -1   # index in candidates now in the line (-1: none, e.g. only a common prefix)


@dataclass(frozen=True)
class Hint:
    """Argument hints for the line being typed: lines of ``(text, style token)`` pieces."""

    lines: tuple[tuple[tuple[str, str], ...], ...]

    @property
    def plain(self) -> str:
        return "\n".join("".join(t for t, _ in line) for line in self.lines)


class Completer:
    """Completion candidates and hints for the command line, from the dictionary."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.d = dictionary
        self.names = tuple(dictionary.command_names)
        self.std = frozenset(dictionary.standard_command_names)
        self.units = tuple(s.name for s in dictionary.systems)

    # -- context -------------------------------------------------------------------------------------------
    def _command(self, name: str, to: str | None = None) -> Command | None:
        try:
            return resolve_command(self.d, name, to)
        except KeyError:
            try:
                return resolve_command(self.d, name)
            except KeyError:
                return None

    def _context(self, text: str, cursor: int) -> tuple[str, Token, list[Token]]:
        """(kind, token under the cursor, tokens before it); kind: command, option, unit, arg, value."""
        before = _tokens(text[:cursor])
        if not before or text[:cursor][-1:].isspace():
            tok = Token(cursor, cursor, "")
            prior = before
        else:
            tok = before[-1]
            # the token may go on past the cursor
            end = tok.end
            while end < len(text) and not text[end].isspace():
                end += 1
            tok = Token(tok.start, end, text[tok.start:end])
            prior = before[:-1]
        if not prior:
            return "command", tok, prior
        if prior[-1].text == "--to":
            return "unit", tok, prior
        if tok.text.startswith("--to="):
            return "unit=", tok, prior
        if tok.text.startswith("-"):
            return "option", tok, prior
        if "=" in tok.text:
            return "value", tok, prior
        return "arg", tok, prior

    def candidates(self, text: str, cursor: int | None = None) -> tuple[str, Token, list[str]]:
        """(context kind, token, candidate replacements for the token)."""
        cursor = len(text) if cursor is None else cursor
        kind, tok, prior = self._context(text, cursor)
        word = tok.text
        if kind == "command":
            return kind, tok, _match(word, self.names)
        cmd_name = prior[0].text
        parsed = parse_line(" ".join(t.text for t in prior))
        cmd = self._command(cmd_name, parsed.to)
        if kind in ("unit", "unit="):
            units = self._units_for(cmd_name)
            prefix = "--to=" if kind == "unit=" else ""
            return kind, tok, [prefix + u for u in _match(word[len(prefix):], units)]
        if kind == "option":
            return kind, tok, _match(word, [o for o in OPTIONS if o != "--to" or cmd_name.upper() in self.std])
        if cmd is None:
            return kind, tok, []
        if kind == "arg":
            given = set(parsed.args)
            names = [a.name + "=" for a in cmd.args if a.name not in given]
            return kind, tok, _match(word, names)
        name, _, val = word.partition("=")
        try:
            a = cmd.arg(name)
        except KeyError:
            return kind, tok, []
        if a.enum is not None:
            values = list(a.enum.values)
        elif a.type == "bool":
            values = ["true", "false"]
        else:
            values = []
        return kind, tok, [f"{name}={v}" for v in _match(val, values)]

    def _units_for(self, cmd_name: str) -> list[str]:
        name = cmd_name.upper()
        return [s.name for s in self.d.systems if any(c.name == name for c in s.commands)] or list(self.units)

    def complete(self, text: str, cursor: int | None = None) -> Completion:
        """One Tab: a single candidate goes in whole; several go in as far as they agree."""
        cursor = len(text) if cursor is None else cursor
        kind, tok, cands = self.candidates(text, cursor)
        if not cands:
            return Completion(text, cursor, ())
        if len(cands) == 1:
            return self.apply(text, tok, cands[0], kind, cands, 0)
        common = _common_prefix(cands)
        if len(common) > len(tok.text) and common.upper().startswith(tok.text.upper()):
            return self.apply(text, tok, common, kind, cands, -1, final=False)
        return Completion(text, cursor, tuple(cands))

    def apply(self, text: str, tok: Token, word: str, kind: str, cands: Sequence[str], chosen: int,
              final: bool = True) -> Completion:
        """Put ``word`` in place of ``tok``; a finished word gets a trailing space (an arg name gets none)."""
        tail = text[tok.end:]
        add_space = final and not word.endswith("=") and not tail.startswith(" ")
        new = text[:tok.start] + word + (" " if add_space else "")
        return Completion(new + tail, len(new), tuple(cands), chosen)

    def suggest(self, text: str) -> str | None:
        """Inline suggestion for the whole line (the greyed rest after the cursor), or ``None``."""
        if not text or text[-1].isspace():
            return None
        _kind, tok, cands = self.candidates(text)
        word = tok.text
        for c in cands:
            if c.upper().startswith(word.upper()) and len(c) > len(word):
                return text + c[len(word):]
        return None

    # -- hints -----------------------------------------------------------------------------------------------
    def hint(self, text: str, cursor: int | None = None) -> Hint:
        cursor = len(text) if cursor is None else cursor
        toks = _tokens(text)
        if not toks:
            return Hint(((("Type a command; Tab completes, ↑/↓ history, Enter sends, ? help, Esc leaves the line. "
                           "/TEXT filters telemetry.", "dim"),),))
        kind, tok, cands = self.candidates(text, cursor)
        cmd_name = toks[0].text
        parsed = parse_line(text)
        cmd = self._command(cmd_name, parsed.to)
        if cmd is None or kind == "command":
            if not cands:
                return Hint((((f"no command matches {clean(cmd_name)!r}", "bad"),),))
            shown = " ".join(cands[:12]) + (f" … (+{len(cands) - 12})" if len(cands) > 12 else "")
            first: list[tuple[str, str]] = [(f"{len(cands)} command{'s' if len(cands) != 1 else ''}: ", "dim"),
                                            (shown, "plain")]
            if cmd is not None:
                return Hint((tuple(first), *self._signature(cmd, None)))
            return Hint((tuple(first),))
        current = None
        if kind in ("arg", "value"):
            current = tok.text.partition("=")[0] or None
        lines = list(self._signature(cmd, current))
        if kind in ("unit", "unit="):
            lines.append((("units: ", "dim"), (" ".join(self._units_for(cmd.name)), "plain")))
        elif kind == "arg" and cands and not tok.text:
            lines.append((("arguments left: ", "dim"), (" ".join(c.rstrip("=") for c in cands), "plain")))
        return Hint(tuple(lines))

    def _signature(self, cmd: Command, current: str | None) -> tuple[tuple[tuple[str, str], ...], ...]:
        sig: list[tuple[str, str]] = [(cmd.name, "key"), (f" → {cmd.system}", "dim")]
        for a in cmd.args:
            if a.enum is not None:
                shape = "|".join(a.enum.values)
            elif a.type == "bool":
                shape = "true|false"
            else:
                shape = a.type + (f" {a.unit}" if a.unit else "")
                if a.min is not None or a.max is not None:
                    lo = "" if a.min is None else f"{a.min:g}"
                    hi = "" if a.max is None else f"{a.max:g}"
                    shape += f" {lo}..{hi}"
            opt = a.default is not None
            piece = f" {'[' if opt else ''}{a.name}=<{shape}>{']' if opt else ''}"
            sig.append((piece, "key" if a.name == current else "plain"))
        sig.append((f"   timeout {cmd.timeout_s:g} s", "dim"))
        if cmd.hazardous:
            sig.append(("   HAZARDOUS", "hazard"))
        lines: list[tuple[tuple[str, str], ...]] = [tuple(sig)]
        detail = ""
        if current is not None:
            try:
                a = cmd.arg(current)
            except KeyError:
                detail = f"{cmd.name} has no argument {clean(current)!r}"
            else:
                what = a.description or (f"one of the {a.enum.name} labels" if a.enum is not None else
                                         a.type + (f" in {a.unit}" if a.unit else ""))
                detail = f"{a.name}: {what}"
                if a.default is not None:
                    detail += f" (default {a.default})"
        elif cmd.description:
            detail = cmd.description
        if cmd.modes:
            detail += f"  [modes: {', '.join(cmd.modes)}]"
        if detail:
            lines.append(((clean(detail.strip(), 300), "dim"),))
        return tuple(lines)


def _match(word: str, choices: Iterable[str]) -> list[str]:
    """Choices starting with ``word`` (any case); failing that, containing it; failing that, close ones."""
    w = word.upper()
    choices = list(choices)
    pre = [c for c in choices if c.upper().startswith(w)]
    if pre or not w:
        return pre
    sub = [c for c in choices if w in c.upper()]
    if sub:
        return sub
    return difflib.get_close_matches(w, choices, n=5, cutoff=0.6)


def _common_prefix(words: Sequence[str]) -> str:
    if not words:
        return ""
    first = words[0]
    n = len(first)
    for w in words[1:]:
        n = min(n, len(w))
        for i in range(n):
            if w[i].upper() != first[i].upper():
                n = i
                break
    return first[:n]


class TabCycler:
    """Tab, Tab, Tab: the first completes, the next ones cycle through the candidates.

    Any edit in between starts over (the line no longer matches what the last Tab left).
    """

    def __init__(self, completer: Completer) -> None:
        self.completer = completer
        self._last: tuple[str, int] | None = None
        self._state: tuple[str, Token, str, tuple[str, ...], int] | None = None

    def reset(self) -> None:
        self._last = None
        self._state = None

    def tab(self, text: str, cursor: int) -> Completion:
        if self._state is not None and self._last == (text, cursor):
            base, tok, kind, cands, idx = self._state
            idx = (idx + 1) % len(cands)
            comp = self.completer.apply(base, tok, cands[idx], kind, cands, idx)
            self._state = (base, tok, kind, cands, idx)
            self._last = (comp.text, comp.cursor)
            return comp
        comp = self.completer.complete(text, cursor)
        self._state = None
        if len(comp.candidates) > 1:
            # remember where the word starts, so that the next Tab can put each candidate there
            kind, tok, _c = self.completer.candidates(comp.text, comp.cursor)
            self._state = (comp.text, tok, kind, comp.candidates, -1)
        self._last = (comp.text, comp.cursor)
        return comp


class History:
    """Command-line history: ↑ goes back, ↓ forward; the line being typed is kept while browsing."""

    def __init__(self, limit: int = 500, entries: Iterable[str] = ()) -> None:
        self.limit = limit
        self.entries: list[str] = []
        for e in entries:
            self.add(e)
        self._pos: int | None = None
        self._draft = ""

    def add(self, line: str) -> None:
        line = line.strip()
        if line and (not self.entries or self.entries[-1] != line):
            self.entries.append(line)
            del self.entries[:-self.limit]
        self._pos = None

    def back(self, current: str) -> str:
        if not self.entries:
            return current
        if self._pos is None:
            self._draft = current
            self._pos = len(self.entries)
        self._pos = max(0, self._pos - 1)
        return self.entries[self._pos]

    def forward(self, current: str) -> str:
        if self._pos is None:
            return current
        self._pos += 1
        if self._pos >= len(self.entries):
            self._pos = None
            return self._draft
        return self.entries[self._pos]


# -- telemetry ---------------------------------------------------------------------------------------------

class Row:
    """Latest value of one parameter of one packet (of one instance, for one-per-unit packets)."""

    __slots__ = ("key", "label", "param", "prm", "order", "value", "limit", "time", "rx", "version",
                 "prev_value", "prev_time", "stale_after", "search", "enum", "_text", "_text_version")

    def __init__(self, key: tuple, label: str, param: str, prm: Parameter | None, order: tuple,
                 stale_after: float, system: str) -> None:
        self.key = key
        self.label = label            # "PACKET" or "PACKET[INSTANCE]"
        self.param = param
        self.prm = prm
        self.order = order
        self.value: Any = None
        self.limit: str | None = None
        self.time: float | None = None
        self.rx: float | None = None
        self.version = 0
        self.prev_value: Any = None
        self.prev_time: float | None = None
        self.stale_after = stale_after
        self.search = f"{label} {param} {system}".upper()
        self.enum: Enumeration | None = None   # labels a plain integer (see unit_enum)
        self._text = "—"
        self._text_version = 0

    @property
    def unit(self) -> str:
        return self.prm.unit if self.prm is not None else ""

    @property
    def has_limits(self) -> bool:
        return self.prm is not None and self.prm.limits is not None

    def rate(self) -> float | None:
        """Change per second between the last two samples (counters), or ``None``."""
        v, p, t, pt = self.value, self.prev_value, self.time, self.prev_time
        if (type(v) in (int, float) and type(p) in (int, float) and t is not None and pt is not None
                and t > pt and v >= p):
            return (v - p) / (t - pt)
        return None

    def stale(self, now: float) -> bool:
        return self.rx is None or now - self.rx > self.stale_after


class _PacketPlan:
    __slots__ = ("name", "key_param", "order", "prms", "system", "stale_after", "rows")

    def __init__(self, name: str, key_param: str | None, order: tuple, prms: dict[str, tuple[int, Parameter]],
                 system: str, stale_after: float) -> None:
        self.name = name
        self.key_param = key_param
        self.order = order
        self.prms = prms
        self.system = system
        self.stale_after = stale_after
        self.rows: dict[Any, dict[str, Row]] = {}


class TelemetryModel:
    """Latest values, one :class:`Row` per parameter, sorted by unit, packet, instance and declaration order.

    ``ingest(record, now)`` is cheap (a few dictionary look-ups per
    parameter); formatting waits until a row is drawn.  Rows whose value or
    limit state changed are collected for :meth:`take_dirty`, so a view
    repaints only those.
    """

    def __init__(self, dictionary: Dictionary, stale_factor: float = 3.0, default_period: float = 10.0) -> None:
        self.d = dictionary
        self.stale_factor = stale_factor
        self.default_period = default_period
        self._units = _unit_names(dictionary)
        self._sys_index = {s.name: i for i, s in enumerate(dictionary.systems)}
        self._plans: dict[tuple, _PacketPlan] = {}
        self._rows: dict[tuple, Row] = {}
        self._sorted: list[Row] = []
        self.visible: list[Row] = []
        self.structure = 0          # bumped whenever ``visible`` changes shape
        self._dirty: set[Row] = set()
        self.filter_text = ""
        self._words: list[str] = []
        self.limits_only = False
        self.ingested = 0           # parameter samples taken in
        self.changed = 0            # of which changed a value or limit state
        self._iso = dictionary.epoch.iso

    # -- input -----------------------------------------------------------------------------------------------
    def _plan(self, rec: dict) -> _PacketPlan:
        name = rec.get("name") or f"APID_{rec.get('apid')}_{rec.get('service')}_{rec.get('subservice')}"
        system = rec.get("system") or "?"
        key = (system, name)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        pkt = None
        try:
            s = self.d.system(system)
            pkt = s.packet(name)
        except KeyError:
            pkt = None
        if pkt is not None:
            kp = instance_param(self.d, pkt, self._units)
            idx = list(self.d.system(system).telemetry).index(pkt)
            order: tuple = (self._sys_index.get(system, 999), idx, name)
            prms = {p.name: (i, p) for i, p in enumerate(pkt.params)}
            period = pkt.period_s or self.d.system(system).hk_period_s or self.default_period
            if pkt.category == "science":
                period = max(period, self.default_period)
            plan = _PacketPlan(name, kp.name if kp is not None else None, order, prms, system,
                               period * self.stale_factor)
        else:
            plan = _PacketPlan(name, None, (len(self.d.systems) + 1, 0, name), {}, system,
                               self.default_period * self.stale_factor)
        self._plans[key] = plan
        return plan

    def ingest(self, rec: dict, now: float) -> int:
        """Take one decoded record; returns how many rows changed.  Ignores all but telemetry with parameters."""
        params = rec.get("params")
        if (not params or rec.get("packet_type") != "TM" or "error" in rec or "request" in rec
                or "event_id" in rec):
            return 0
        plan = self._plan(rec)
        limits = rec.get("limits") or {}
        t = rec.get("time")
        inst = None
        if plan.key_param is not None:
            inst = params.get(plan.key_param)
        rows = plan.rows.get(inst)
        if rows is None:
            rows = plan.rows[inst] = {}
        changed = 0
        dirty = self._dirty
        for name, v in params.items():
            if name == plan.key_param:
                continue
            row = rows.get(name)
            if row is None:
                row = self._new_row(plan, inst, name)
                rows[name] = row
            lim = limits.get(name)
            if v != row.value or lim != row.limit or row.time is None:
                row.prev_value, row.prev_time = row.value, row.time
                row.value = v
                row.limit = lim
                row.version += 1
                dirty.add(row)
                changed += 1
            elif t is not None and row.time is not None and t > row.time:
                row.prev_value, row.prev_time = row.value, row.time  # a flat counter has rate 0
            row.time = t
            row.rx = now
        self.ingested += len(params)
        self.changed += changed
        return changed

    def _new_row(self, plan: _PacketPlan, inst: Any, name: str) -> Row:
        idx_prm = plan.prms.get(name)
        idx = idx_prm[0] if idx_prm is not None else len(plan.prms) + len(plan.rows.get(inst, ()))
        prm = idx_prm[1] if idx_prm is not None else None
        label = plan.name if inst is None else f"{plan.name}[{clean(inst, 24)}]"
        inst_order = ""
        if inst is not None and plan.key_param is not None and plan.key_param in plan.prms:
            enum = plan.prms[plan.key_param][1].enum
            inst_order = f"{enum.values.get(inst, 999):04d}" if enum is not None else str(inst)
        order = (*plan.order, inst_order, idx, name)
        key = (plan.system, plan.name, inst, name)
        row = Row(key, label, name, prm, order, plan.stale_after, plan.system)
        if prm is not None and isinstance(inst, str):
            row.enum = unit_enum(self.d, prm, inst)
        self._rows[key] = row
        bisect.insort(self._sorted, row, key=lambda r: r.order)
        if self._matches(row):
            bisect.insort(self.visible, row, key=lambda r: r.order)
            self.structure += 1
        return row

    # -- queries -------------------------------------------------------------------------------------------
    def get(self, packet: str, instance: Any, param: str, system: str | None = None) -> Row | None:
        if system is None:
            try:
                system = self.d.packet(packet).system
            except KeyError:
                return None
        return self._rows.get((system, packet, instance, param))

    def __len__(self) -> int:
        return len(self._rows)

    def take_dirty(self) -> set[Row]:
        d, self._dirty = self._dirty, set()
        return d

    def text(self, row: Row) -> str:
        if row._text_version != row.version:
            v = row.value
            if row.enum is not None and type(v) is int:
                row._text = row.enum.labels.get(v, f"UNKNOWN({v})")
            else:
                row._text = fmt_value(v, row.prm, self._iso)
            row._text_version = row.version
        return row._text

    def token(self, row: Row, now: float) -> str:
        if row.version == 0:
            return "dim"
        if row.stale(now):
            return "stale"
        return limit_token(row.limit, row.has_limits)

    def time_text(self, row: Row) -> str:
        if row.time is None:
            return ""
        try:
            return self._iso(row.time)[11:23]
        except (ValueError, OverflowError):
            return f"{row.time:.3f}"

    def out_of_limits(self, now: float | None = None) -> list[Row]:
        """Rows whose latest value is out of limits (with ``now``: only those still fresh)."""
        return [r for r in self._sorted if r.limit is not None and (now is None or not r.stale(now))]

    # -- filtering -----------------------------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        """Show rows whose packet, instance, parameter or unit name contain every word; ``!`` alone (or as a
        word) keeps only rows out of limits."""
        words = text.upper().split()
        self.limits_only = "!" in words
        self._words = [w for w in words if w != "!"]
        self.filter_text = text.strip()
        self.refilter()

    def _matches(self, row: Row) -> bool:
        if self.limits_only and row.limit is None:
            return False
        return all(w in row.search for w in self._words)

    def refilter(self) -> bool:
        """Recompute the visible rows (the limits-only filter changes as values do); True if they changed."""
        new = [r for r in self._sorted if self._matches(r)] if (self._words or self.limits_only) else \
            list(self._sorted)
        if new != self.visible:
            self.visible = new
            self.structure += 1
            return True
        return False


# -- transposed views of one-per-unit packets --------------------------------------------------------------

@dataclass(frozen=True)
class CellRef:
    """Where a grid cell's value comes from; ``enum`` relabels a plain integer, ``rate`` shows change/s."""

    packet: str
    system: str
    instance: Any
    param: str
    enum: Enumeration | None = None
    rate: bool = False


@dataclass(frozen=True)
class GridRow:
    label: str
    unit: str
    cells: tuple[CellRef | None, ...]


@dataclass
class GridView:
    """A table with parameters down and instances (units, ports) across."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: list[GridRow]

    def cell(self, model: TelemetryModel, r: int, c: int, now: float) -> tuple[str, str]:
        ref = self.rows[r].cells[c]
        if ref is None:
            return "", "dim"
        row = model.get(ref.packet, ref.instance, ref.param, ref.system)
        if row is None or row.version == 0:
            return "—", "dim"
        if ref.rate:
            rate = row.rate()
            text = "—" if rate is None else _si(rate)
            return text, ("stale" if row.stale(now) else "plain")
        if ref.enum is not None and isinstance(row.value, int) and not isinstance(row.value, bool):
            text = ref.enum.labels.get(row.value, f"UNKNOWN({row.value})")
        else:
            text = model.text(row)
        return text, model.token(row, now)

    def table(self, model: TelemetryModel, now: float) -> list[list[tuple[str, str]]]:
        return [[self.cell(model, r, c, now) for c in range(len(self.columns))] for r in range(len(self.rows))]


def _si(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.3g}M"
    if ax >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.3g}"


def _find_packet(d: Dictionary, name: str) -> TmPacket | None:
    try:
        return d.packet(name)
    except KeyError:
        return None


def packet_grid(d: Dictionary, packet: str, title: str, key: str, rates: bool = False) -> GridView | None:
    """A packet as a grid: one column per instance (one "value" column for a plain packet).

    A plain integer named ``<PREFIX>_<X>`` is shown with the instance unit's
    ``<UNIT>_<X>`` enumeration when it declares one (``PL_MODE`` of FSS as an
    ``FSS_MODE`` label).  With ``rates``, every counter in octets (unit ``B``)
    gets a second row with its rate.
    """
    pkt = _find_packet(d, packet)
    if pkt is None or pkt.apid is None:
        return None
    kp = instance_param(d, pkt)
    columns: tuple[Any, ...] = tuple(kp.enum.values) if kp is not None and kp.enum is not None else (None,)
    rows = []
    for prm in pkt.params:
        if kp is not None and prm.name == kp.name:
            continue
        cells = []
        for inst in columns:
            enum = unit_enum(d, prm, inst) if inst is not None else None
            cells.append(CellRef(pkt.name, pkt.system, inst, prm.name, enum))
        rows.append(GridRow(prm.name, prm.unit, tuple(cells)))
        if rates and prm.unit == "B":
            rows.append(GridRow(f"{prm.name}/s", "B/s",
                                tuple(CellRef(pkt.name, pkt.system, inst, prm.name, rate=True) for inst in columns)))
    names = tuple("value" if c is None else str(c) for c in columns)
    return GridView(key, title, names, rows)


def _pdu_rows(d: Dictionary, units: Sequence[str]) -> list[GridRow]:
    """The PDU channels feeding each unit (PDU config ``channels``; parameters ``PDU_<CHANNEL>_<X>``)."""
    pdus = d.systems_of_kind("pdu")
    if not pdus:
        return []
    pdu = pdus[0]
    channels = pdu.config.get("channels") or {}
    hk = [p for p in pdu.telemetry if p.apid is not None]
    params = {prm.name: (p, prm) for p in hk for prm in p.params}
    rows = []
    kinds = sorted({str(c.get("kind")) for c in channels.values() if isinstance(c, Mapping)},
                   key=lambda k: (k != "main", k))
    for kind in kinds:
        chan_of = {}
        for ch, cfg in channels.items():
            if isinstance(cfg, Mapping) and cfg.get("kind") == kind and cfg.get("unit") in units:
                chan_of[cfg["unit"]] = ch
        if not chan_of:
            continue
        for suffix in ("ON", "I", "TRIP"):
            cells: list[CellRef | None] = []
            unit = ""
            for u in units:
                ch = chan_of.get(u)
                found = params.get(f"PDU_{ch}_{suffix}") if ch is not None else None
                if found is None:
                    cells.append(None)
                else:
                    pkt, prm = found
                    unit = prm.unit
                    cells.append(CellRef(pkt.name, pkt.system, None, prm.name))
            if any(c is not None for c in cells):
                rows.append(GridRow(f"PDU {kind} {suffix}", unit, tuple(cells)))
    return rows


def grid_views(d: Dictionary) -> dict[str, list[GridView]]:
    """The status panes: ``payloads`` (PAYLOAD_HK, PDU channels, POWER_HK), ``deploy`` (DEPLOY_HK) and
    ``link`` (LINK_HK with rates).  A packet the mission does not declare is left out."""
    out: dict[str, list[GridView]] = {"payloads": [], "deploy": [], "link": []}
    pl = packet_grid(d, "PAYLOAD_HK", "Payloads (PAYLOAD_HK; PDU channels from PDU_HK)", "payloads")
    if pl is not None:
        pl.rows.extend(_pdu_rows(d, pl.columns))
        out["payloads"].append(pl)
    pw = packet_grid(d, "POWER_HK", "Power budget (POWER_HK)", "power")
    if pw is not None:
        out["payloads"].append(pw)
    dep = packet_grid(d, "DEPLOY_HK", "Deploy units (DEPLOY_HK)", "deploy")
    if dep is not None:
        out["deploy"].append(dep)
    lk = packet_grid(d, "LINK_HK", "Lander serial ports (LINK_HK)", "link", rates=True)
    if lk is not None:
        out["link"].append(lk)
    return out


# -- events ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventEntry:
    time: str
    source: str
    kind: str       # severity (INFO, LOW, MEDIUM, HIGH), or error, dropped, link, note
    name: str
    text: str
    token: str

    @property
    def line(self) -> str:
        return f"{self.time:<12} {self.source:<7} {self.kind:<7} {self.name} {self.text}".rstrip()


class EventLog:
    """Events (PUS-5), decoding errors, dropped bytes, link changes and the console's own notes.

    Dropped-byte records are summed and reported once per :meth:`flush`
    (a noisy line must not flood the pane).
    """

    def __init__(self, dictionary: Dictionary, limit: int = 5000) -> None:
        self.iso = dictionary.epoch.iso
        self.entries: deque[EventEntry] = deque(maxlen=limit)
        self._new: list[EventEntry] = []
        self.counts: Counter[str] = Counter()
        self._drop_bytes = 0
        self._drop_chunks = 0
        self._drop_reasons: Counter[str] = Counter()
        self.max_new = 500

    def _time(self, t: Any) -> str:
        if isinstance(t, (int, float)) and math.isfinite(t):
            try:
                return self.iso(float(t))[11:23]
            except (ValueError, OverflowError):
                return f"{t:.3f}"
        return "—"

    def _add(self, e: EventEntry) -> None:
        self.entries.append(e)
        self._new.append(e)
        self.counts[e.kind] += 1

    def ingest(self, rec: dict, now: float) -> None:
        if "dropped" in rec:
            self._drop_bytes += int(rec.get("bytes") or 0)
            self._drop_chunks += 1
            self._drop_reasons[clean(rec.get("dropped"), 32)] += 1
            return
        if "link_event" in rec:
            self._add(EventEntry(self._time(now), "link", "link", clean(rec.get("link_event")), "", "link"))
            return
        if "error" in rec:
            where = clean(rec.get("name") or (f"apid 0x{rec['apid']:03X}" if isinstance(rec.get("apid"), int)
                                              else "?"), 40)
            self._add(EventEntry(self._time(rec.get("rx_time", now)), clean(rec.get("system") or "?", 8), "error",
                                 clean(rec.get("error"), 32), f"{where}: {clean(rec.get('detail', ''))}", "error"))
            return
        if "event_id" not in rec:
            return
        sev = rec.get("severity")
        token = severity_token(sev)
        name = rec.get("event") or f"event #{clean(rec.get('event_id'), 12)} (not in the dictionary)"
        params = rec.get("params") or {}
        text = " ".join(f"{clean(k, 32)}={fmt_value(v)}" for k, v in params.items())
        if rec.get("limits"):
            text += "  [" + ", ".join(f"{clean(k, 32)} {clean(v, 8).upper()}" for k, v in rec["limits"].items()) + "]"
        self._add(EventEntry(self._time(rec.get("time")), clean(rec.get("system") or "?", 8),
                             clean(sev or "?", 8), clean(name, 48), clean(text, 400), token))

    def note(self, text: str, now: float, kind: str = "note", token: str = "note") -> None:
        self._add(EventEntry(self._time(now), "console", kind, "", clean(text, 400), token))

    def flush(self, now: float) -> None:
        """Report the dropped bytes summed since the last flush."""
        if self._drop_chunks:
            reasons = ", ".join(f"{r} ×{n}" for r, n in self._drop_reasons.most_common(4))
            self._add(EventEntry(self._time(now), "link", "dropped", f"{self._drop_bytes} bytes",
                                 f"in {self._drop_chunks} stretch{'es' if self._drop_chunks != 1 else ''} ({reasons})",
                                 "dropped"))
            self._drop_bytes = 0
            self._drop_chunks = 0
            self._drop_reasons.clear()

    def take_new(self) -> tuple[list[EventEntry], int]:
        """Entries since the last call (at most ``max_new``) and how many more were left out of the pane."""
        new, self._new = self._new, []
        if len(new) > self.max_new:
            return new[-self.max_new:], len(new) - self.max_new
        return new, 0


# -- commands and their verification ----------------------------------------------------------------------

_STAGE_HEAD = {"acceptance": "acc", "start": "start", "progress": "prog", "completion": "done"}


@dataclass
class CommandEntry:
    id: int
    line: str
    command: str
    system: str
    sent_at: float
    handle: Any = None
    result: VerificationResult | None = None
    error: str | None = None   # the backend refused before anything was sent
    version: int = 0

    @property
    def done(self) -> bool:
        return self.error is not None or (self.result is not None and self.result.done)


class CommandLog:
    """Sent commands and their PUS-1 verification stages, newest last.

    Each stage shows ✓ (success), ✗ (failure), … (awaited), – (never
    reported); the state column says how it ended and when.
    """

    COLUMNS = ("#", "command", *(_STAGE_HEAD[s] for s in STAGES), "state")

    def __init__(self, dictionary: Dictionary, limit: int = 200) -> None:
        self.iso = dictionary.epoch.iso
        self.entries: list[CommandEntry] = []
        self.limit = limit
        self._next = 1
        self.dropped: list[int] = []   # ids pruned since the last take_dropped()

    def add(self, line: str, command: str, system: str, sent_at: float, handle: Any = None,
            error: str | None = None) -> CommandEntry:
        e = CommandEntry(self._next, clean(line, 200), command, system, sent_at, handle, None, error, 1)
        self._next += 1
        self.entries.append(e)
        if len(self.entries) > self.limit:
            old = self.entries.pop(0)
            self.dropped.append(old.id)
        return e

    def update(self, entry: CommandEntry, result: VerificationResult | None) -> bool:
        """Store a new snapshot; True if it differs from the last one."""
        if result is None or result == entry.result:
            return False
        entry.result = result
        entry.version += 1
        return True

    def pending(self) -> list[CommandEntry]:
        return [e for e in self.entries if not e.done]

    def take_dropped(self) -> list[int]:
        d, self.dropped = self.dropped, []
        return d

    def cells(self, e: CommandEntry) -> list[tuple[str, str]]:
        cells = [(str(e.id), "dim"), (e.line, "plain")]
        r = e.result
        if e.error is not None:
            cells += [("", "dim")] * len(STAGES)
            cells.append((f"NOT SENT: {clean(e.error, 80)}", "bad"))
            return cells
        for stage in STAGES:
            cells.append(self._stage_cell(r, stage))
        cells.append(self._state_cell(r, e.sent_at))
        return cells

    @staticmethod
    def _state_cell(r: VerificationResult | None, sent_at: float) -> tuple[str, str]:
        if r is None:
            return "SENDING", "pending"
        if r.state == "SUCCESS":
            last = max((x.received for x in r.reports if x.success), default=sent_at)
            return f"SUCCESS {last - sent_at:.2f}s" + (" (late)" if r.timed_out else ""), "good"
        if r.state == "FAILED":
            bad = next((x for x in r.reports if not x.success), None)
            where = f" at {_STAGE_HEAD.get(bad.stage, bad.stage)}" if bad is not None else ""
            return f"FAILED {clean(r.failure or '?', 32)}{where}", "bad"
        if r.state == "TIMEOUT":
            return f"TIMEOUT {r.deadline - r.sent_at:g}s", "timeout"
        return "PENDING", "pending"

    @staticmethod
    def _stage_cell(r: VerificationResult | None, stage: str) -> tuple[str, str]:
        if r is None:
            return "·", "dim"
        reps = [x for x in r.reports if x.stage == stage]
        if not reps:
            return ("–", "dim") if r.done else ("…", "pending")
        if any(not x.success for x in reps):
            return "✗", "bad"
        if stage == "progress" and len(reps) > 1:
            return f"✓{len(reps)}", "good"
        return "✓", "good"


# -- the ground's own link ---------------------------------------------------------------------------------

class LinkMonitor:
    """Contact, rates and drops of the ground link, from cumulative counters sampled with ``now``.

    ``stats`` keys (all optional): ``connected``, ``rx_packets``, ``rx_bytes``,
    ``tx_packets``, ``errors``, ``dropped_bytes``, ``reconnects``, ``last_rx``.
    Contact means a packet within ``contact_timeout`` seconds; the timeout
    follows the mission phase (the lander's housekeeping period times the
    phase's ``hk_factor``, times three).
    """

    def __init__(self, dictionary: Dictionary, window: float = 5.0) -> None:
        self.d = dictionary
        self.window = window
        self.samples: deque[tuple[float, int, int]] = deque()
        self.stats: dict[str, Any] = {}
        self.phase: str | None = None

    @property
    def contact_timeout(self) -> float:
        factor = 1.0
        ph = self.d.phases.get(self.phase) if self.phase else None
        if ph is not None:
            factor = max(1.0, float(ph.hk_factor))
        return 3.0 * self.d.lander.hk_period_s * factor

    def update(self, stats: Mapping[str, Any], now: float, phase: str | None = None) -> None:
        self.stats = dict(stats)
        if phase is not None:
            self.phase = phase
        self.samples.append((now, int(stats.get("rx_packets", 0)), int(stats.get("rx_bytes", 0))))
        while len(self.samples) > 2 and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    def rates(self) -> tuple[float, float]:
        """(packets/s, bytes/s) over the window."""
        if len(self.samples) < 2:
            return 0.0, 0.0
        (t0, p0, b0), (t1, p1, b1) = self.samples[0], self.samples[-1]
        if t1 <= t0:
            return 0.0, 0.0
        return max(0, p1 - p0) / (t1 - t0), max(0, b1 - b0) / (t1 - t0)

    def contact(self, now: float) -> tuple[str, str]:
        """(label, style token): LINK DOWN, WAITING (nothing heard yet), CONTACT or NO CONTACT."""
        if not self.stats.get("connected", False):
            return "LINK DOWN", "alarm"
        last = self.stats.get("last_rx")
        if last is None:
            return "WAITING", "warn"
        age = now - last
        if age <= self.contact_timeout:
            return "CONTACT", "good"
        return f"NO CONTACT {age:.0f}s", "alarm"

    def summary(self, now: float) -> list[tuple[str, str]]:
        label, token = self.contact(now)
        pps, bps = self.rates()
        st = self.stats
        drops = int(st.get("dropped_bytes", 0))
        errors = int(st.get("errors", 0))
        return [(f" {label} ", token), (f" {pps:.1f} pkt/s {_si(bps)}B/s ", "plain"),
                (f" drop {drops} B · err {errors} ", "warn" if drops or errors else "dim")]


# -- synthetic load ----------------------------------------------------------------------------------------

class SyntheticTelemetry:
    """``n`` parameters updating at ``hz``, as decoded-record dicts, for the console's load benchmark.

    Parameters ``SYN_P0000`` ... go in packets ``SYN_HK_000`` ... of up to
    ``per_packet`` each; every value changes every cycle (a slow sine per
    parameter), and a share of them crosses warning and alarm limits, so
    values and colours both churn.  Deterministic: the values are a function
    of the time alone.
    """

    def __init__(self, n: int, hz: float, per_packet: int = 50, start: float = 0.0, max_backlog: float = 1.0) -> None:
        if n <= 0 or hz <= 0 or per_packet <= 0:
            raise ValueError("n, hz and per_packet must be positive")
        self.n = n
        self.hz = hz
        self.period = 1.0 / hz
        self.next_t = start
        self.max_backlog = max_backlog
        self.seq = 0
        self.skipped_cycles = 0
        self.packets: list[tuple[str, list[tuple[str, float, float]]]] = []
        for k in range(0, n, per_packet):
            names = []
            for i in range(k, min(n, k + per_packet)):
                freq = 0.05 + (i % 17) * 0.013
                phase = (i * 0.618034) % 1.0
                names.append((f"SYN_P{i:04d}", freq, phase))
            self.packets.append((f"SYN_HK_{k // per_packet:03d}", names))

    @staticmethod
    def value(t: float, freq: float, phase: float) -> float:
        return 50.0 + 45.0 * math.sin(2 * math.pi * (t * freq + phase))

    @staticmethod
    def limit(v: float) -> str | None:
        if v > 92.0 or v < 8.0:
            return "alarm"
        if v > 85.0 or v < 15.0:
            return "warn"
        return None

    def records_until(self, t: float) -> list[dict]:
        """Every packet due up to mission time ``t`` (a backlog over ``max_backlog`` s is skipped, not replayed)."""
        if t - self.next_t > self.max_backlog:
            skip = int((t - self.next_t - self.max_backlog) / self.period) + 1
            self.skipped_cycles += skip
            self.next_t += skip * self.period
        out = []
        while self.next_t <= t:
            ts = self.next_t
            for name, plist in self.packets:
                params = {}
                limits = {}
                for pname, freq, phase in plist:
                    v = self.value(ts, freq, phase)
                    params[pname] = round(v, 3)
                    lim = self.limit(v)
                    if lim is not None:
                        limits[pname] = lim
                self.seq = (self.seq + 1) & 0x3FFF
                out.append({"apid": 0x7F0, "seq_count": self.seq, "packet_type": "TM", "service": 3,
                            "subservice": 25, "time": ts, "utc": None, "name": name, "system": "SYNTHETIC",
                            "params": params, "limits": limits, "rx_time": ts})
            self.next_t += self.period
        return out
