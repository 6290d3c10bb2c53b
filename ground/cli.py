"""``ground``: the command-line ground tool.

Subcommands are registered from :data:`SUBCOMMANDS`: each is an
``add_<name>_parser(subparsers)`` function that adds its parser and sets
``handler`` to a function ``(args) -> exit code``.  To add one, write both
functions and append the ``add_`` function to the list.

Exit codes: 0 success, 1 the command failed (verification failure, timeout,
link unavailable), 2 usage error (bad option, unknown command, argument out
of range, unreadable file).  Errors are one line on stderr, never a
traceback (set ``GROUND_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from fsw.dictionary import ArgumentError, Dictionary, DictionaryError, load_dictionary

from .commanding import HazardousCommandError, build_tc, confirm_target, parse_cli_args, resolve_command
from .decoding import detect_format, iter_file_records
from .spacelink import format_link_status
from .verification import VerificationResult, VerificationUpdate

DEFAULT_LINK = "run/ground.pty"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An error reported as one line on stderr with exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class CommandFailed(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_FAILED)


# -- shared helpers ------------------------------------------------------------------------------------------

def out(line: str = "") -> None:
    """Print one line of results (flushed: monitor output is live)."""
    print(line, flush=True)


def default_link() -> str:
    return os.environ.get("GROUND_LINK", DEFAULT_LINK)


def get_dictionary(args: argparse.Namespace) -> Dictionary:
    try:
        return load_dictionary(args.dictionary)
    except DictionaryError as exc:
        raise UsageError(f"cannot load the mission dictionary: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot load the mission dictionary from {args.dictionary}: {exc}") from None


def open_session(link: str, dictionary: Dictionary, baud: int, space_link: bool = False) -> Any:
    """The link session used by ``send`` and ``monitor`` (tests replace this function)."""
    from .session import GroundSession

    return GroundSession(link, dictionary, baud=baud, space_link=space_link)


def make_session(args: argparse.Namespace, dictionary: Dictionary) -> Any:
    link = args.link or default_link()
    extra = {"space_link": True} if getattr(args, "space_link", False) else {}
    try:
        session = open_session(link, dictionary, args.baud, **extra)
    except ValueError as exc:  # fsw.io.link.LinkError: a malformed link spec or line setting
        raise UsageError(f"bad --link {link!r}: {exc}") from None
    db = getattr(args, "archive", None)
    if db:
        from .archive import ArchiveError, ArchiveWriter

        try:
            session.archive = ArchiveWriter(db, mission=dictionary.mission,
                                            session=f"ground {args.subcommand} pid {os.getpid()}")
        except (ArchiveError, OSError) as exc:
            raise UsageError(f"--archive {db}: {exc}") from None
        _ARCHIVES.append(session.archive)
    return session


#: archive writers opened by this invocation, closed (committed) when the command ends
_ARCHIVES: list[Any] = []


def close_archives() -> None:
    while _ARCHIVES:
        w = _ARCHIVES.pop()
        try:
            n = w.close()
            print(f"ground: archived {n} packets in {w.path}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback
            print(f"ground: archive {w.path}: {exc}", file=sys.stderr)


def positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return v
    parse.__name__ = kind.__name__
    return parse


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions; keeps an ``examples:`` epilog line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--link", metavar="SPEC", default=None,
                   help="serial link to the flight software's ground port: a device or pty path, socket://host:port, "
                        f"rfc2217://..., loop:// (default: $GROUND_LINK or {DEFAULT_LINK})")
    p.add_argument("--baud", metavar="N", type=positive(int), default=115200,
                   help="line rate in baud for real serial ports (default: 115200)")
    p.add_argument("--archive", metavar="DB", default=None,
                   help="also store every packet and command (with its verification stages) in this SQLite "
                        "archive (see: ground archive)")


def to_json(rec: Any) -> str:
    return json.dumps(rec, separators=(", ", ": "), default=str)


# -- human formatting of decoded records ---------------------------------------------------------------------

def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        if len(v) > 4:
            return "[" + ",".join(_fmt_value(x) for x in v[:4]) + f",...({len(v)})]"
        return "[" + ",".join(_fmt_value(x) for x in v) + "]"
    return str(v)


class RecordFormatter:
    """One line per decoded record, for ``monitor`` and ``decode``."""

    def __init__(self, dictionary: Dictionary, max_params: int = 10) -> None:
        self.max_params = max_params
        self.units: dict[str, str] = {}
        for s in dictionary.systems:
            for pkt in s.telemetry:
                for prm in pkt.params:
                    if prm.unit:
                        self.units[prm.name] = prm.unit
            for evt in s.events:
                for prm in evt.args:
                    if prm.unit:
                        self.units[prm.name] = prm.unit
            for cmd in s.commands:
                for a in cmd.args:
                    if a.unit:
                        self.units.setdefault(a.name, a.unit)

    def params(self, params: dict, limits: dict | None = None) -> str:
        items = []
        for k, v in list(params.items())[:self.max_params]:
            unit = self.units.get(k, "")
            flag = ""
            if limits and k in limits:
                flag = "!" if limits[k] == "warn" else "!!"
            if isinstance(v, str) or isinstance(v, bool):
                unit = ""
            items.append(f"{k}={_fmt_value(v)}{unit}{flag}")
        if len(params) > self.max_params:
            items.append(f"(+{len(params) - self.max_params} more)")
        return " ".join(items)

    def __call__(self, rec: dict) -> str:
        if "dropped" in rec:
            at = f" at offset {rec['offset']}" if "offset" in rec else ""
            return f"-- dropped {rec['bytes']} bytes ({rec['dropped']}){at}"
        if "link_event" in rec:
            return f"-- link {rec.get('link', '')}: {rec['link_event']}"
        when = rec.get("utc") or ("" if rec.get("time") is None else f"{rec['time']:.3f}")
        when = f"{when or '-':<24}"
        system = rec.get("system") or "?"
        if "error" in rec:
            where = ""
            if rec.get("apid") is not None:
                where = f" apid 0x{rec['apid']:03X}"
                if rec.get("service") is not None:
                    where += f" {rec.get('packet_type')}[{rec['service']},{rec['subservice']}]"
            if rec.get("name"):
                where += f" {rec['name']}"
            hx = rec.get("hex", "")
            hx = hx if len(hx) <= 48 else hx[:48] + "..."
            return f"!! {rec['error']}{where}: {rec.get('detail', '')} [{hx}]"
        name = rec.get("name")
        kind = f"{rec['packet_type']}[{rec['service']},{rec['subservice']}]"
        if name is None:
            return f"{when}  {system:<7} {kind} (not in the dictionary) data={rec.get('data', '')}"
        line = f"{when}  {system:<7} "
        if rec["packet_type"] == "TC":
            line += f"TC {name}"
            if rec["params"]:
                line += "  " + self.params(rec["params"])
            return line
        if "request" in rec:
            req = rec["request"]
            target = f"apid 0x{req['apid']:03X} seq {req['seq_count']}"
            if rec.get("command"):
                target = f"{rec['command']} ({target})"
            verdict = "OK" if rec.get("success") else f"FAILED {rec.get('failure')}"
            step = rec["params"].get("STEP")
            step_txt = f" step {step}" if step is not None else ""
            return f"{line}{name:<13} {rec['stage']}{step_txt} {verdict} for {target}"
        if "event_id" in rec:
            evt = rec.get("event") or f"event #{rec['event_id']} (not in the dictionary)"
            line += f"EVENT {rec.get('severity') or '?'} {evt}"
            if rec["params"]:
                line += "  " + self.params(rec["params"], rec.get("limits"))
        else:
            line += f"{name}"
            if rec["params"]:
                line += "  " + self.params(rec["params"], rec.get("limits"))
        if rec.get("limits"):
            marks = ", ".join(f"{k} {v.upper()}" for k, v in rec["limits"].items())
            line += f"  [{marks}]"
        return line


# -- send ------------------------------------------------------------------------------------------------------

def add_send_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "send", help="send one telecommand and follow its verification",
        description="Check a telecommand against the mission dictionary, send it, and print each PUS-1 "
                    "verification stage as it arrives. Nothing is sent if the command or an argument is invalid.",
        epilog="examples:\n  ground send PING --to FSS\n  ground send FSS_SET_MODE mode=SCIENCE\n"
               "  ground send HK_SET_PERIOD --to LMS sid=1 period_ms=500 --json",
        formatter_class=HelpFormatter)
    add_link_options(p)
    p.add_argument("--to", metavar="SYSTEM", default=None,
                   help="unit to address (default: the unit that owns the command; standard commands such as "
                        "PING go to the lander)")
    p.add_argument("--timeout", metavar="S", type=positive(float), default=None,
                   help="seconds to wait for completion (default: the command's timeout_s in the dictionary; "
                        "with --space-link 20 s more, for the far side's round trip and a COP-1 retransmission)")
    p.add_argument("--confirm", metavar="SYSTEM", default=None,
                   help="for hazardous commands: the name of the unit the command acts on (e.g. ALPINE for "
                        "DEPLOY_FIRE unit=ALPINE), typed out as confirmation")
    p.add_argument("--json", action="store_true", help="print one JSON object per line instead of text")
    p.add_argument("command", metavar="COMMAND", help="command name (see: ground dictionary list)")
    p.add_argument("args", metavar="arg=value", nargs="*", help="command arguments, e.g. mode=SCIENCE")
    p.set_defaults(handler=cmd_send)


def _confirm_interactively(cmd: Any, target: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError(f"{cmd.name} is hazardous: pass --confirm {target} to send it (no terminal to ask); "
                         "nothing was sent")
    print(f"{cmd.name} is HAZARDOUS: {cmd.description or 'no description'}", file=sys.stderr)
    print(f"Type the unit name ({target}) to send it: ", end="", file=sys.stderr, flush=True)
    try:
        typed = input()  # the prompt went to stderr: stdout stays clean for --json
    except EOFError:
        typed = ""
    if typed.strip().upper() != target:
        raise UsageError(f"{cmd.name} not confirmed; nothing was sent")
    return typed.strip()


def _show_hazard_state(session: Any, d: Any, cmd: Any, cli_args: dict) -> None:
    """Before a hazardous command goes out, show the arm and fire state of the unit it acts on."""
    target = confirm_target(d, cmd, cli_args)
    if target not in {u.name for u in d.systems_of_kind("deploy")} or not session.wait_connected():
        return
    try:
        hk = d.lander.packet("DEPLOY_HK")
    except KeyError:
        return
    first = hk.params[0].name if hk.params else ""
    wait = (hk.period_s or d.lander.hk_period_s) * 3 + 1.0
    rec = session.wait_for(lambda r: r.get("name") == hk.name and (r.get("params") or {}).get(first) == target,
                           wait)
    if rec is None:
        out(f"{target}: no {hk.name} received in {wait:g} s; its arm and fire state is unknown here")
        return
    p = rec["params"]
    inhibits = ", ".join(f"{k}={'closed' if v else 'open'}" for k, v in p.items()
                         if k in ("DEP_BUS_RELAY", "DEP_ARM_RELAY", "DEP_FIRE_SW"))
    out(f"{target}: state {p.get('DEP_STATE')}, arm window {p.get('DEP_ARM_LEFT')} s, attempts "
        f"{p.get('DEP_ATTEMPTS')}; inhibits: {inhibits}")


def _stage_line(upd: VerificationUpdate) -> str:
    r = upd.report
    st = upd.result
    if r is None:
        return f"  no completion within {st.deadline - st.sent_at:.1f} s: TIMEOUT"
    verdict = "OK" if r.success else f"FAILED  {r.failure}"
    step = f" step {r.step}" if r.step is not None else ""
    late = "  (after the timeout)" if upd.late else ""
    return f"  {r.stage + step:<13} {verdict:<8}  from {r.reporter or hex(r.reporter_apid)}" \
           f"  +{r.received - st.sent_at:.3f} s{late}"


def cmd_send(args: argparse.Namespace) -> int:
    d = get_dictionary(args)
    try:
        cli_args = parse_cli_args(args.args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        cmd = resolve_command(d, args.command, args.to)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    confirm = args.confirm
    if cmd.hazardous and confirm is None:
        try:
            target = confirm_target(d, cmd, cli_args)
        except (KeyError, ValueError):
            target = cmd.system
        confirm = _confirm_interactively(cmd, target)
    try:
        build_tc(d, cmd.name, cli_args, cmd.system, 0, confirm=confirm)  # validate before opening the link
    except ArgumentError as exc:
        raise UsageError(f"{cmd.name}: {exc}; nothing was sent") from None
    except HazardousCommandError as exc:
        raise UsageError(str(exc)) from None
    from .session import LinkUnavailable

    session = make_session(args, d)
    default_timeout = getattr(session, "default_timeout", None)
    timeout = args.timeout if args.timeout is not None else (
        default_timeout(cmd) if default_timeout is not None else cmd.timeout_s)
    with session:
        if cmd.hazardous and not args.json:
            _show_hazard_state(session, d, cmd, cli_args)
        try:
            tc = session.submit(cmd.name, cmd.system, confirm, timeout, cli_args)
        except LinkUnavailable as exc:
            raise CommandFailed(f"{exc} (is the flight software running?); nothing was sent") from None
        if args.json:
            out(to_json({"type": "sent", "command": cmd.name, "system": cmd.system, "apid": tc.apid,
                         "seq_count": tc.seq_count, "args": cli_args, "timeout": timeout}))
        else:
            shown = " ".join(f"{k}={v}" for k, v in cli_args.items())
            out(f"sent {cmd.name}{' ' + shown if shown else ''} to {cmd.system} (apid 0x{tc.apid:03X}, "
                f"seq {tc.seq_count}); waiting up to {timeout:g} s")

        def show(upd: VerificationUpdate) -> None:
            if args.json:
                rec = {"type": "timeout" if upd.report is None else "stage", "command": cmd.name,
                       "seq_count": tc.seq_count}
                if upd.report is not None:
                    rec.update(upd.report.to_dict())
                    rec["late"] = upd.late
                out(to_json(rec))
            else:
                out(_stage_line(upd))

        result: VerificationResult = session.wait(tc, show)
    if args.json:
        out(to_json({"type": "result", **result.to_dict()}))
    else:
        why = f" ({result.failure})" if result.failure and result.state != "TIMEOUT" else ""
        out(f"{cmd.name}: {result.state}{why}")
    return EXIT_OK if result.ok else EXIT_FAILED


# -- monitor ------------------------------------------------------------------------------------------------

def add_monitor_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "monitor", help="show live decoded telemetry and events",
        description="Decode everything arriving on the ground link: one line per packet (time, unit, packet, "
                    "parameters, limit flags; '!' marks a warning limit, '!!' an alarm), or JSON lines.",
        epilog="examples:\n  ground monitor\n  ground monitor --duration 10 --json > tm.jsonl\n"
               "  ground monitor --count 5",
        formatter_class=HelpFormatter)
    add_link_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--duration", metavar="S", type=positive(float), default=None,
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--count", metavar="N", type=positive(int), default=None,
                   help="stop after N packets")
    p.add_argument("--link-status", metavar="S", type=float, default=10.0,
                   help="with --space-link: every S seconds (and at the end) also show the link state: contact, "
                        "FOP-1 state, COP-1 counters, discarded frames, open gaps and the lander's store fill "
                        "levels (a 'link_status' object with --json); 0: never (default: 10)")
    p.set_defaults(handler=cmd_monitor)


def cmd_monitor(args: argparse.Namespace) -> int:
    d = get_dictionary(args)
    fmt = RecordFormatter(d)
    link = args.link or default_link()
    session = make_session(args, d)
    count = 0
    every = args.link_status if getattr(session, "space", None) is not None and args.link_status > 0 else None

    def status() -> None:
        st = session.link_status()
        out(to_json({"link_status": st}) if args.json else format_link_status(st))

    try:
        with session:
            if not session.connected:
                print(f"ground: waiting for the link {link}", file=sys.stderr, flush=True)
            next_status = time.monotonic() + every if every else None
            for rec in session.packets(timeout=args.duration):
                out(to_json(rec) if args.json else fmt(rec))
                if next_status is not None and time.monotonic() >= next_status:
                    status()
                    next_status = time.monotonic() + every
                if "apid" in rec:
                    count += 1
                    if args.count is not None and count >= args.count:
                        break
            if every:
                status()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


# -- decode ---------------------------------------------------------------------------------------------------

def add_decode_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decode", help="decode a capture file of packets",
        description="Decode a capture file: either sync-marked frames (1ACFFC1D + packet, as on the serial link) "
                    "or raw space packets back to back (the ccsdspy file format). Damaged stretches are "
                    "reported with their offset and decoding continues after them.",
        epilog="examples:\n  ground decode run/ground-rx.bin\n  ground decode packets.bin --format raw --json",
        formatter_class=HelpFormatter)
    p.add_argument("file", metavar="FILE", help="capture file to decode")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--format", choices=("auto", "raw", "framed"), default="auto",
                   help="capture format (default: auto-detect)")
    p.set_defaults(handler=cmd_decode)


def cmd_decode(args: argparse.Namespace) -> int:
    d = get_dictionary(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    fmt_name = detect_format(data) if args.format == "auto" else args.format
    fmt = RecordFormatter(d)
    packets = errors = dropped = 0
    for rec in iter_file_records(data, d, fmt_name):
        if "dropped" in rec:
            dropped += rec["bytes"]
        elif "error" in rec:
            errors += 1
        else:
            packets += 1
        out(to_json(rec) if args.json else fmt(rec))
    if not args.json:
        out(f"-- {args.file}: {len(data)} bytes, {fmt_name} capture: {packets} packets decoded, "
            f"{errors} errors, {dropped} bytes dropped")
    return EXIT_OK


# -- dictionary -----------------------------------------------------------------------------------------------

def add_dictionary_parser(subparsers: Any) -> Any:
    """``ground dictionary``; returns its own subparsers so more actions (export ...) can be added."""
    p = subparsers.add_parser(
        "dictionary", help="browse the mission dictionary (commands, packets, events)",
        description="Look up what the mission dictionary declares.")
    sub = p.add_subparsers(dest="dictionary_action", metavar="ACTION")
    for add in DICTIONARY_ACTIONS:
        add(sub)
    p.set_defaults(handler=lambda args: _no_action(p))
    return sub


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def add_dictionary_list_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list commands, telemetry packets and events",
                       description="List the commands, telemetry packets and events of the mission.")
    p.add_argument("--kind", choices=("all", "commands", "packets", "events"), default="all",
                   help="what to list (default: all)")
    p.add_argument("--system", metavar="NAME", default=None, help="only this unit (and the standard reports)")
    p.set_defaults(handler=cmd_dictionary_list)


def add_dictionary_show_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="show one command, packet or event in detail",
                       description="Show a command with its arguments, or a packet or event with its parameters.")
    p.add_argument("name", metavar="NAME", help="command, packet or event name (case-insensitive)")
    p.set_defaults(handler=cmd_dictionary_show)


DICTIONARY_ACTIONS: list[Callable[[Any], None]] = [add_dictionary_list_parser, add_dictionary_show_parser]


def _args_summary(args: Iterable[Any]) -> str:
    parts = []
    for a in args:
        if a.enum is not None:
            parts.append(f"{a.name}={'|'.join(a.enum.values)}")
        else:
            parts.append(f"{a.name}:{a.type}")
    return " ".join(parts)


def _selected_systems(d: Dictionary, name: str | None) -> list[Any]:
    if name is None:
        return list(d.systems)
    try:
        return [d.system(name)]
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None


def cmd_dictionary_list(args: argparse.Namespace) -> int:
    d = get_dictionary(args)
    systems = _selected_systems(d, args.system)
    std = set(d.standard_command_names)
    if args.kind in ("all", "commands"):
        out("COMMANDS")
        out(f"  {'name':<24} {'unit':<8} {'TC':<9} {'fid':>4}  arguments")
        shown_std = False
        for s in systems:
            for c in s.commands:
                if c.name in std:
                    if shown_std and args.system is None:
                        continue
                    unit = "(any)" if args.system is None else s.name
                else:
                    unit = s.name
                fid = "" if c.function_id is None else str(c.function_id)
                flag = "  HAZARDOUS" if c.hazardous else ""
                out(f"  {c.name:<24} {unit:<8} {f'[{c.service},{c.subservice}]':<9} {fid:>4}  "
                    f"{_args_summary(c.args)}{flag}")
            shown_std = True
    if args.kind in ("all", "packets"):
        out("PACKETS")
        out(f"  {'name':<24} {'unit':<8} {'TM':<9} {'sid':>4}  parameters")
        for s in systems:
            for p in s.telemetry:
                sid = "" if p.sid is None else str(p.sid)
                out(f"  {p.name:<24} {s.name:<8} {f'[{p.service},{p.subservice}]':<9} {sid:>4}  {len(p.params)}")
        for p in d.standard_packets:
            out(f"  {p.name:<24} {'(any)':<8} {f'[{p.service},{p.subservice}]':<9} {'':>4}  {len(p.params)}")
    if args.kind in ("all", "events"):
        out("EVENTS")
        out(f"  {'name':<24} {'unit':<8} {'id':>4}  {'severity':<8} arguments")
        for s in systems:
            for e in s.events:
                out(f"  {e.name:<24} {s.name:<8} {e.id:>4}  {e.severity:<8} "
                    f"{' '.join(a.name for a in e.args)}")
    return EXIT_OK


def _range(a: Any) -> str:
    if a.enum is not None:
        return ", ".join(f"{k}={v}" for k, v in a.enum.values.items())
    lo = "" if a.min is None else f"{a.min:g}"
    hi = "" if a.max is None else f"{a.max:g}"
    return f"{lo}..{hi}" if lo or hi else ""


def _example_value(a: Any) -> str:
    if a.enum is not None:
        return str(a.default if a.default is not None else next(iter(a.enum.values)))
    for v in (a.default, a.min, a.max):
        if v is not None:
            return f"{v:g}" if isinstance(v, float) else str(v)
    return "0"


def _param_details(p: Any) -> str:
    bits = [p.type + (f"[{p.count}]" if p.count > 1 else "")]
    if p.unit:
        bits.append(p.unit)
    if p.enum is not None:
        bits.append("enum " + p.enum.name)
    if p.calibration is not None:
        bits.append("calibrated")
    if p.limits is not None:
        lim = p.limits
        for kind, lo, hi in (("warn", lim.warn_low, lim.warn_high), ("alarm", lim.alarm_low, lim.alarm_high)):
            if lo is not None and hi is not None:
                bits.append(f"{kind} outside {lo:g}..{hi:g}")
            elif lo is not None:
                bits.append(f"{kind} below {lo:g}")
            elif hi is not None:
                bits.append(f"{kind} above {hi:g}")
    return ", ".join(bits)


def cmd_dictionary_show(args: argparse.Namespace) -> int:
    d = get_dictionary(args)
    want = args.name.upper()
    found = False
    std = set(d.standard_command_names)
    # commands (a standard command appears once, with every unit listed)
    cmds = [(s, c) for s in d.systems for c in s.commands if c.name.upper() == want]
    if cmds:
        found = True
        s0, c = cmds[0]
        units = ", ".join(f"{s.name} (0x{s.apid:03X})" for s, _ in cmds)
        out(f"command {c.name}" + ("   ** HAZARDOUS **" if c.hazardous else ""))
        out(f"  unit:        {units}" + ("   (standard: every unit answers it)" if c.name in std else ""))
        out(f"  TC:          [{c.service},{c.subservice}]" +
            (f"  function id {c.function_id}" if c.function_id is not None else ""))
        if c.description:
            out(f"  description: {c.description}")
        out(f"  timeout:     {c.timeout_s:g} s")
        if c.modes:
            out(f"  modes:       {', '.join(c.modes)}")
        if c.args:
            out("  arguments:")
            for a in c.args:
                extra = []
                rng = _range(a)
                if rng:
                    extra.append(rng)
                if a.default is not None:
                    extra.append(f"default {a.default}")
                unit = f" {a.unit}" if a.unit else ""
                desc = f"  {a.description}" if a.description else ""
                out(f"    {a.name:<16} {a.type}{unit}  {'; '.join(extra)}{desc}")
        else:
            out("  arguments:   none")
        example = " ".join(f"{a.name}={_example_value(a)}" for a in c.args)
        to = f" --to {s0.name}" if c.name in std else ""
        out(f"  example:     ground send {c.name}{to}{' ' + example if example else ''}")
    pkts = [p for p in [*d.standard_packets, *(p for s in d.systems for p in s.telemetry)] if p.name.upper() == want]
    for p in pkts:
        found = True
        unit = p.system if p.apid is not None else "any unit (standard report)"
        out(f"packet {p.name}")
        out(f"  unit:        {unit}" + (f" (0x{p.apid:03X})" if p.apid is not None else ""))
        out(f"  TM:          [{p.service},{p.subservice}]" + (f"  sid {p.sid}" if p.sid is not None else ""))
        if p.period_s:
            out(f"  period:      {p.period_s:g} s")
        if p.description:
            out(f"  description: {p.description}")
        out("  parameters:")
        for prm in p.params:
            desc = f"  {prm.description}" if prm.description else ""
            out(f"    {prm.name:<24} {_param_details(prm)}{desc}")
    evts = [e for s in d.systems for e in s.events if e.name.upper() == want]
    for e in evts:
        found = True
        out(f"event {e.name}")
        out(f"  unit:        {e.system}   id {e.id}   severity {e.severity} (TM[5,{e.subservice}])")
        if e.description:
            out(f"  description: {e.description}")
        if e.args:
            out("  arguments:")
            for prm in e.args:
                out(f"    {prm.name:<24} {_param_details(prm)}")
    if not found:
        names = set(d.command_names) | {p.name for p in d.standard_packets}
        names |= {p.name for s in d.systems for p in s.telemetry} | {e.name for s in d.systems for e in s.events}
        close = difflib.get_close_matches(want, sorted(names), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see: ground dictionary list"
        raise UsageError(f"nothing called {args.name!r} in the dictionary{hint}")
    return EXIT_OK


# -- the parser -------------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _operations() -> list[Callable[[Any], Any]]:
    """Archive, replay, export and plot subcommands (ground.cli_ops), and ``dictionary export``."""
    from . import cli_ops

    if cli_ops.add_dictionary_export_parser not in DICTIONARY_ACTIONS:
        DICTIONARY_ACTIONS.append(cli_ops.add_dictionary_export_parser)
    return [cli_ops.add_archive_parser, cli_ops.add_replay_parser, cli_ops.add_export_parser,
            cli_ops.add_plot_parser]


def _more() -> list[Callable[[Any], Any]]:
    """Missions, the pseudo-terminal demo, procedures and the console (each imported lazily)."""
    def lazy(module: str, name: str) -> Callable[[Any], Any]:
        def add(subparsers: Any) -> Any:
            import importlib

            return getattr(importlib.import_module(module, __package__), name)(subparsers)
        add.__name__ = name  # code that checks what is registered goes by the name
        return add
    return [lazy(".mission", "add_mission_parser"), lazy(".demo", "add_demo_parser"),
            lazy(".procedures_cli", "add_procedure_parser"), lazy(".console", "add_console_parser")]


#: every subcommand: ``add_<name>_parser(subparsers)``; append new ones here
SUBCOMMANDS: list[Callable[[Any], Any]] = [add_send_parser, add_monitor_parser, add_decode_parser,
                                           add_dictionary_parser, *_operations(), *_more()]


#: the subcommands that honour ``--space-link`` (their sessions come from make_session)
SPACE_LINK_COMMANDS = ("send", "monitor", "console", "procedure run --link")
SPACE_LINK_HANDLERS = ("cmd_send", "cmd_monitor", "cmd_console", "cmd_procedure_run")   # by name: lazily loaded


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ground",
        description="Ground tool of the lander payload emulator: send verified telecommands, monitor "
                    "telemetry and events, decode captures, browse the mission dictionary.",
        epilog="exit codes: 0 ok, 1 command failed (verification failure, timeout, no link), 2 usage error")
    parser.add_argument("--dictionary", metavar="PATH", default=None,
                        help="mission directory to load (holds mission.yaml; default: the reference mission)")
    parser.add_argument("--space-link", action="store_true",
                        help="speak the far-side space link on --link (for fsw --space-link, usually through "
                             "'hw-sim relay'): telecommands go up through COP-1 as CLTUs, telemetry comes down "
                             "as CADUs, duplicates are dropped and store-and-forward acknowledgements sent "
                             "(see docs/spacelink.md)")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ground`` console script and ``python -m ground``; returns the exit code."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # "send CMD --to X a=1": argparse leaves arguments after an option unparsed; take them back
            if isinstance(getattr(args, "args", None), list) and not any(e.startswith("-") for e in extras):
                args.args.extend(extras)
            else:
                parser.error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.space_link and getattr(handler, "__name__", "") not in SPACE_LINK_HANDLERS:
        print(f"ground: --space-link works with {', '.join(SPACE_LINK_COMMANDS)} only, not with "
              f"{args.subcommand}", file=sys.stderr)
        return EXIT_USAGE
    try:
        try:
            return handler(args)
        finally:
            close_archives()
    except CliError as exc:
        print(f"ground: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("ground: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - swallow the interpreter's final flush
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback
        if os.environ.get("GROUND_DEBUG"):
            raise
        print(f"ground: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
