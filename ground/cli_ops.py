"""Command-line front ends of the archive, replay, exports, plots and dictionary exports.

Registered by :mod:`ground.cli`: ``add_archive_parser``, ``add_replay_parser``,
``add_export_parser`` and ``add_plot_parser`` go in its ``SUBCOMMANDS``, and
``add_dictionary_export_parser`` in its ``DICTIONARY_ACTIONS``.  Every
handler returns an exit code; bad input raises ``ground.cli.UsageError``
(one line on stderr, exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

EXIT_OK, EXIT_USAGE = 0, 2
DEFAULT_DB = "run/archive.db"

__all__ = ["add_archive_parser", "add_dictionary_export_parser", "add_export_parser", "add_plot_parser",
           "add_replay_parser"]


# -- shared helpers (ground.cli is imported lazily: it imports this module to register the parsers) -----------

def _cli() -> Any:
    from . import cli
    return cli


def _usage(message: str) -> Exception:
    return _cli().UsageError(message)


def _out(line: str = "") -> None:
    _cli().out(line)


def _dictionary(args: argparse.Namespace) -> Any:
    return _cli().get_dictionary(args)


def _printable(text: Any) -> str:
    """Text from data, safe for a terminal: control characters (escape sequences) are shown escaped."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def default_db() -> str:
    return os.environ.get("GROUND_DB", DEFAULT_DB)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="PATH", default=None,
                   help=f"archive file (SQLite; default: $GROUND_DB or {DEFAULT_DB})")


def _add_range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", metavar="TIME", default=None,
                   help="start of the time range: ISO-8601 UTC (2027-03-01T00:10:00Z) or mission seconds "
                        "(default: the beginning)")
    p.add_argument("--end", metavar="TIME", default=None,
                   help="end of the time range, inclusive, same forms as --start (default: the end)")


def _range(args: argparse.Namespace, d: Any) -> tuple[float | None, float | None]:
    from .archive_query import parse_time
    try:
        start = parse_time(args.start, d, "--start")
        end = parse_time(args.end, d, "--end")
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if start is not None and end is not None and end < start:
        raise _usage(f"--end ({args.end}) is before --start ({args.start})")
    return start, end


def _open_archive(args: argparse.Namespace) -> Any:
    from .archive import Archive, ArchiveError
    try:
        return Archive(args.db or default_db())
    except ArchiveError as exc:
        raise _usage(str(exc)) from None


def _archive_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn archive failures met while reading (a file corrupt past its header) into a usage error."""
    def run(args: argparse.Namespace) -> int:
        from .archive import ArchiveError
        try:
            return fn(args)
        except ArchiveError as exc:
            raise _usage(str(exc)) from None
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def _locate(d: Any, names: list[str]) -> list[Any]:
    from .archive_query import locate_parameter
    out = []
    for n in names:
        try:
            out.append(locate_parameter(d, n))
        except KeyError as exc:
            raise _usage(str(exc.args[0])) from None
    return out


def _positive(kind: type) -> Callable[[str], Any]:
    return _cli().positive(kind)


def _fmt_time(d: Any, t: float | None) -> str:
    return "-" if t is None else d.epoch.iso(t)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ",".join(_fmt_value(x) for x in v) + "]"
    return _printable(v)


# -- ground archive ---------------------------------------------------------------------------------------------

def add_archive_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "archive", help="store packets in the archive and query it",
        description="The ground archive (SQLite, WAL mode): every packet with its raw bytes, reception time and "
                    "link; decoded parameters and events; command history with every verification stage.",
        epilog="examples:\n  ground archive ingest run/ground-rx.bin --db run/archive.db\n"
               "  ground archive query param FSS_TEMP_VBB --start 2027-03-01T00:00:00Z --end 3600\n"
               "  ground archive query events --min-severity MEDIUM\n  ground archive query commands --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="archive_action", metavar="ACTION")
    p.set_defaults(handler=lambda args: _no_action(p))

    ing = sub.add_parser("ingest", help="decode capture files and store everything in them",
                         description="Decode capture files (sync-marked frames or raw space packets) and store "
                                     "every packet, and every damaged stretch marked as such, in the archive. "
                                     "Prints how many packets are acknowledged, i.e. committed and durable.")
    ing.add_argument("files", metavar="FILE", nargs="+", help="capture files to ingest")
    _add_db(ing)
    ing.add_argument("--link", metavar="NAME", default=None,
                     help="link name recorded with the packets (default: file:<name of the file>)")
    ing.add_argument("--format", choices=("auto", "raw", "framed"), default="auto",
                     help="capture format (default: auto-detect)")
    ing.add_argument("--commit-every", metavar="N", type=_positive(int), default=5000,
                     help="commit after this many packets (default: 5000)")
    ing.add_argument("--commit-interval", metavar="S", type=_positive(float), default=0.5,
                     help="commit at least this often, in seconds (default: 0.5)")
    ing.add_argument("--sync", choices=("normal", "full"), default="normal",
                     help="SQLite synchronous mode: normal survives a killed process, full also a power loss "
                          "(default: normal)")
    ing.add_argument("--progress", action="store_true", help="print the acknowledged count after every commit")
    ing.set_defaults(handler=cmd_archive_ingest)

    q = sub.add_parser("query", help="query parameters, events or command history",
                       description="Query the archive.")
    qsub = q.add_subparsers(dest="query_kind", metavar="KIND")
    q.set_defaults(handler=lambda args: _no_action(q))

    qp = qsub.add_parser("param", help="one parameter over a time range",
                         description="Values of one parameter over a time range, with their limit state "
                                     "(WARN/ALARM), from the packets or events that carry it.")
    qp.add_argument("name", metavar="NAME", help="parameter name (see: ground dictionary show PACKET)")
    _add_db(qp)
    _add_range(qp)
    qp.add_argument("--csv", action="store_true", help="print CSV (time, utc, parameter, value, unit, limit, ...)")
    qp.add_argument("--json", action="store_true", help="print one JSON object per line")
    qp.add_argument("--limit", metavar="N", type=_positive(int), default=None, help="at most N values")
    qp.set_defaults(handler=cmd_query_param)

    qe = qsub.add_parser("events", help="events, by severity",
                         description="Events stored in the archive, oldest first.")
    _add_db(qe)
    _add_range(qe)
    qe.add_argument("--severity", metavar="LEVEL", action="append", default=None,
                    type=str.upper, choices=("INFO", "LOW", "MEDIUM", "HIGH"),
                    help="only this severity (repeat for several)")
    qe.add_argument("--min-severity", metavar="LEVEL", default=None, type=str.upper,
                    choices=("INFO", "LOW", "MEDIUM", "HIGH"), help="this severity and above")
    qe.add_argument("--unit", metavar="NAME", default=None, help="only events of this unit")
    qe.add_argument("--json", action="store_true", help="print one JSON object per line")
    qe.set_defaults(handler=cmd_query_events)

    qc = qsub.add_parser("commands", help="command history with verification stages",
                         description="Commands sent or seen, oldest first: when, what, from which session, "
                                     "the arguments, every PUS-1 verification stage and the final state.")
    _add_db(qc)
    _add_range(qc)
    qc.add_argument("--command", metavar="NAME", default=None, help="only this command")
    qc.add_argument("--session", metavar="NAME", default=None, help="only commands from this session")
    qc.add_argument("--json", action="store_true", help="print one JSON object per line")
    qc.set_defaults(handler=cmd_query_commands)

    info = sub.add_parser("info", help="what the archive holds; --check verifies the file",
                          description="Counts and time span of an archive; with --check, SQLite's integrity check.")
    _add_db(info)
    info.add_argument("--check", action="store_true", help="run PRAGMA integrity_check (reads the whole file)")
    info.set_defaults(handler=cmd_archive_info)


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def cmd_archive_ingest(args: argparse.Namespace) -> int:
    from .archive import ArchiveError, ArchiveWriter
    from .decoding import PacketDecoder
    from .replay import ingest_capture

    d = _dictionary(args)
    db = args.db or default_db()
    blobs = []
    for f in args.files:  # read everything first: a missing file changes nothing in the archive
        try:
            blobs.append((f, Path(f).read_bytes()))
        except OSError as exc:
            raise _usage(f"cannot read {f}: {exc.strerror or exc}") from None
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    progress = (lambda n: _out(f"acknowledged {n}")) if args.progress else None
    try:
        writer = ArchiveWriter(db, mission=d.mission, session="ingest", commit_every=args.commit_every,
                               commit_interval=args.commit_interval, synchronous=args.sync.upper(),
                               on_commit=progress, threaded=False)  # all data at hand: commit inline
    except ArchiveError as exc:
        raise _usage(str(exc)) from None
    decoder = PacketDecoder(d)
    try:
        for f, data in blobs:
            writer.session = f"ingest:{Path(f).name}"
            counts = ingest_capture(writer, data, decoder, args.link or f"file:{Path(f).name}", args.format)
            _out(f"{_printable(f)}: {len(data)} bytes, {counts['packets']} packets, {counts['errors']} damaged or "
                 f"undecodable, {counts['dropped_bytes']} bytes outside packets")
        n = writer.close()
    except ArchiveError as exc:
        raise _cli().CliError(str(exc), 1) from None
    _out(f"archive {_printable(db)}: {n} records acknowledged (committed)")
    return EXIT_OK


@_archive_errors
def cmd_query_param(args: argparse.Namespace) -> int:
    d = _dictionary(args)
    (loc,) = _locate(d, [args.name])
    start, end = _range(args, d)
    with _open_archive(args) as archive:
        if args.csv:
            from .export import export_csv
            export_csv(archive, d, [loc], sys.stdout, start, end)
            return EXIT_OK
        samples = archive.param_series(loc, start, end, args.limit)
    unit = loc.unit
    for s in samples:
        if args.json:
            _out(json.dumps({"time": s.time, "utc": _fmt_time(d, s.time), "parameter": loc.name, "value": s.value,
                             "unit": unit, "limit": s.limit, "source": s.source, "apid": s.apid}))
        else:
            flag = f"  {s.limit.upper()}" if s.limit else ""
            u = f" {unit}" if unit and not isinstance(s.value, str) else ""
            _out(f"{_fmt_time(d, s.time)}  {loc.name}={_fmt_value(s.value)}{_printable(u)}{flag}  ({s.source})")
    if not args.json:
        _out(f"-- {len(samples)} values of {loc.name}")
    return EXIT_OK


@_archive_errors
def cmd_query_events(args: argparse.Namespace) -> int:
    from .archive_query import severities_at_least
    d = _dictionary(args)
    start, end = _range(args, d)
    sev: list[str] | None = list(args.severity) if args.severity else None
    if args.min_severity:
        atleast = severities_at_least(args.min_severity)
        sev = [s for s in (sev or atleast) if s in atleast]
    with _open_archive(args) as archive:
        events = archive.events(sev, start, end, args.unit)
    for e in events:
        if args.json:
            _out(json.dumps({**e, "utc": _fmt_time(d, e["time"])}))
        else:
            params = " ".join(f"{k}={_fmt_value(v)}" for k, v in e["params"].items())
            name = e["event"] or f"event #{e['event_id']} (not in the dictionary)"
            _out(f"{_fmt_time(d, e['time'])}  {_printable(e['system'] or '?'):<7} {e['severity'] or '?':<6} "
                 f"{_printable(name)}{'  ' + params if params else ''}")
    if not args.json:
        _out(f"-- {len(events)} events")
    return EXIT_OK


@_archive_errors
def cmd_query_commands(args: argparse.Namespace) -> int:
    d = _dictionary(args)
    start, end = _range(args, d)
    with _open_archive(args) as archive:
        cmds = archive.commands(start, end, args.command, args.session)
    for c in cmds:
        if args.json:
            _out(json.dumps({**c, "utc": _fmt_time(d, c["sent_at"])}))
            continue
        shown = " ".join(f"{k}={_fmt_value(v)}" for k, v in c["args"].items())
        _out(f"{_fmt_time(d, c['sent_at'])}  {_printable(c['command'] or '?')}{' ' + shown if shown else ''} -> "
             f"{_printable(c['system'] or '?')} (apid 0x{(c['apid'] or 0):03X} seq {c['seq_count']})  "
             f"session {_printable(c['session'] or '-')}: {c['state']}")
        for st in c["stages"]:
            verdict = "OK" if st["success"] else f"FAILED {_printable(st['failure'])}"
            step = f" step {st['step']}" if st["step"] is not None else ""
            _out(f"    {st['stage'] + step:<13} {verdict}  from {_printable(st['reporter'] or '-')}")
    if not args.json:
        _out(f"-- {len(cmds)} commands")
    return EXIT_OK


@_archive_errors
def cmd_archive_info(args: argparse.Namespace) -> int:
    d = _dictionary(args)
    with _open_archive(args) as archive:
        s = archive.summary()
        _out(f"archive {_printable(archive.path)} (schema {s['schema_version']}, mission {_printable(s['mission'])})")
        _out(f"  packets  {s['packets']} ({s['errors']} damaged or undecodable, {s['sent']} sent)")
        _out(f"  events   {s['events']}")
        _out(f"  commands {s['commands']}")
        _out(f"  time     {_fmt_time(d, s['first_time'])} .. {_fmt_time(d, s['last_time'])}")
        if args.check:
            problems = archive.integrity()
            if problems != ["ok"]:
                raise _usage(f"archive {archive.path} is corrupt: {'; '.join(problems[:5])}")
            _out("  integrity ok")
    return EXIT_OK


# -- ground replay -------------------------------------------------------------------------------------------

def add_replay_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="replay an archive or a capture file through the decoders",
        description="Decode the packets of an archive (re-decoded with the current dictionary) or of a capture "
                    "file, paced by their time stamps: --speed 1 is real time, --speed 60 a minute per second, "
                    "--max as fast as possible. Damaged or truncated data comes out as marked records.",
        epilog="examples:\n  ground replay run/archive.db --max --json\n  ground replay capture.bin --speed 10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="an archive (.db) or a capture file (framed or raw packets)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", metavar="X", type=_positive(float), default=1.0,
                      help="replay speed factor relative to the recorded times (default: 1, real time)")
    pace.add_argument("--max", action="store_true", help="as fast as possible, no pacing")
    p.add_argument("--max-gap", metavar="S", type=_positive(float), default=None,
                   help="shorten recorded gaps longer than S seconds to S")
    p.add_argument("--format", choices=("auto", "raw", "framed"), default="auto",
                   help="capture format for a capture file (default: auto-detect)")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(handler=cmd_replay)


@_archive_errors
def cmd_replay(args: argparse.Namespace) -> int:
    from .decoding import PacketDecoder
    from .replay import iter_source, pace

    d = _dictionary(args)
    src = Path(args.source)
    if not src.exists():
        raise _usage(f"no such file: {args.source}")
    if src.is_dir():
        raise _usage(f"{args.source} is a directory, not an archive or capture file")
    decoder = PacketDecoder(d)
    try:
        items = iter_source(src, decoder, args.format)
    except OSError as exc:
        raise _usage(f"cannot read {args.source}: {exc.strerror or exc}") from None
    cli = _cli()
    fmt = cli.RecordFormatter(d)
    counts = {"packets": 0, "errors": 0, "dropped": 0}

    def timed() -> Iterator[tuple[float | None, dict]]:
        for t, _raw, rec in items:
            yield t, rec

    for rec in pace(timed(), None if args.max else args.speed, max_gap=args.max_gap):
        if "dropped" in rec:
            counts["dropped"] += rec.get("bytes", 0)
            if rec.get("error"):
                counts["errors"] += 1
        elif "error" in rec:
            counts["errors"] += 1
        else:
            counts["packets"] += 1
        _out(cli.to_json(rec) if args.json else _printable(fmt(rec)))
    if not args.json:
        _out(f"-- replayed {_printable(args.source)}: {counts['packets']} packets, {counts['errors']} damaged or "
             f"undecodable, {counts['dropped']} bytes outside packets")
    return EXIT_OK


# -- ground export --------------------------------------------------------------------------------------------

def add_export_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export parameters to CSV or packets to a raw file",
        description="Export from the archive.",
        epilog="examples:\n  ground export csv FSS_TEMP_VBB FSS_BATT_V --out fss.csv\n"
               "  ground export raw --apid 0x20 --out fss.bin   (read it with ccsdspy or space-packet-parser)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="export_kind", metavar="KIND")
    p.set_defaults(handler=lambda args: _no_action(p))
    c = sub.add_parser("csv", help="parameters to CSV (one row per value)",
                       description="One row per value: time (mission s), utc, parameter, value, unit, limit "
                                   "(warn/alarm), source packet or event, apid; sorted by time.")
    c.add_argument("params", metavar="PARAM", nargs="+", help="parameter names")
    _add_db(c)
    c.add_argument("--out", metavar="FILE", required=True, help="CSV file to write ('-' for standard output)")
    _add_range(c)
    c.set_defaults(handler=cmd_export_csv)
    r = sub.add_parser("raw", help="packets as raw concatenated space packets",
                       description="Intact packets back to back with nothing between them: the file format "
                                   "ccsdspy and space-packet-parser read. Damaged bytes are not exported.")
    _add_db(r)
    r.add_argument("--out", metavar="FILE", required=True, help="file to write")
    r.add_argument("--apid", metavar="N", action="append", type=_apid, default=None,
                   help="only this APID (decimal or 0x hex; repeat for several)")
    r.add_argument("--include-sent", action="store_true", help="also the telecommands the ground sent")
    _add_range(r)
    r.set_defaults(handler=cmd_export_raw)


def _apid(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an APID (decimal or 0x hex)") from None
    if not 0 <= v <= 0x7FF:
        raise argparse.ArgumentTypeError(f"APID {text} outside 0..2047")
    return v


def _open_out(path: str, binary: bool) -> Any:
    if path == "-":
        return sys.stdout.buffer if binary else sys.stdout
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb" if binary else "w", newline="" if not binary else None,  # noqa: SIM115
                    encoding=None if binary else "utf-8")
    except OSError as exc:
        raise _usage(f"cannot write {path}: {exc.strerror or exc}") from None


@_archive_errors
def cmd_export_csv(args: argparse.Namespace) -> int:
    from .export import export_csv
    d = _dictionary(args)
    locs = _locate(d, args.params)
    start, end = _range(args, d)
    with _open_archive(args) as archive:
        f = _open_out(args.out, binary=False)
        try:
            n = export_csv(archive, d, locs, f, start, end)
        finally:
            if f is not sys.stdout:
                f.close()
    if args.out != "-":
        _out(f"wrote {n} values of {', '.join(l.name for l in locs)} to {_printable(args.out)}")
    return EXIT_OK


@_archive_errors
def cmd_export_raw(args: argparse.Namespace) -> int:
    from .export import export_raw
    d = _dictionary(args)
    start, end = _range(args, d)
    with _open_archive(args) as archive:
        f = _open_out(args.out, binary=True)
        try:
            n, size = export_raw(archive, f, args.apid, start, end, args.include_sent)
        finally:
            if f is not sys.stdout.buffer:
                f.close()
    if args.out != "-":
        _out(f"wrote {n} packets ({size} bytes) to {_printable(args.out)}")
    return EXIT_OK


# -- ground plot ------------------------------------------------------------------------------------------------

def add_plot_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot", help="plot parameters over time into a PNG, with limits",
        description="Draw one or more parameters from the archive over a time range into a PNG. Warning "
                    "limits are dashed, alarm limits dotted, in the colour of their parameter; a second unit "
                    "gets the right-hand axis.",
        epilog="example:\n  ground plot FSS_TEMP_VBB FSS_TEMP_EBOX --out temps.png --start 0 --end 3600",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("params", metavar="PARAM", nargs="+", help="parameter names")
    _add_db(p)
    p.add_argument("--out", metavar="FILE.png", required=True, help="PNG file to write")
    _add_range(p)
    p.add_argument("--title", metavar="TEXT", default=None, help="plot title (default: the parameter names)")
    p.add_argument("--size", metavar="WxH", default="10x5", type=_size,
                   help="figure size in inches (default: 10x5, at 100 dpi)")
    p.set_defaults(handler=cmd_plot)


def _size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH, e.g. 10x5") from None
    if not (1 <= w <= 100 and 1 <= h <= 100):
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be 1..100 inches")
    return w, h


@_archive_errors
def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import PlotError, PlotSeries, plot_series
    d = _dictionary(args)
    locs = _locate(d, args.params)
    start, end = _range(args, d)
    with _open_archive(args) as archive:
        series = [PlotSeries(loc, archive.param_series(loc, start, end)) for loc in locs]
    if not args.out.lower().endswith(".png"):
        raise _usage(f"--out {args.out}: the plot is written as PNG; name the file .png")
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        drawn = plot_series(series, args.out, d, args.title, *args.size)
    except PlotError as exc:
        raise _usage(str(exc)) from None
    except OSError as exc:
        raise _usage(f"cannot write {args.out}: {exc.strerror or exc}") from None
    parts = [f"{name} ({info['samples']} values, {len(info['limits'])} limit lines)" for name, info in drawn.items()]
    _out(f"wrote {_printable(args.out)}: {', '.join(parts)}")
    return EXIT_OK


# -- ground dictionary export ----------------------------------------------------------------------------------

def add_dictionary_export_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="export the dictionary as XTCE 1.2, Markdown interface documents or JSON",
        description="Generate documents from the mission dictionary (never edit them by hand). XTCE 1.2 "
                    "validates against the OMG schema and decodes our packets in space-packet-parser; the "
                    "Markdown interface control documents are one per unit.",
        epilog="examples:\n  ground dictionary export --xtce out/mission.xtce.xml\n"
               "  ground dictionary export --markdown out/icd --json out/dictionary.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--xtce", metavar="OUT.xml", default=None, help="write XTCE 1.2 to this file")
    p.add_argument("--markdown", metavar="DIR", default=None,
                   help="write one Markdown interface control document per unit (and README.md) into DIR")
    p.add_argument("--json", metavar="OUT.json", default=None, help="write the dictionary as JSON")
    p.add_argument("--max-enum-entries", metavar="N", type=_positive(int), default=None,
                   help="XTCE: spell out enumerations up to N raw values (default: 65536); wider ones use ranges")
    p.set_defaults(handler=cmd_dictionary_export)


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _usage(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_dictionary_export(args: argparse.Namespace) -> int:
    if not (args.xtce or args.markdown or args.json):
        raise _usage("dictionary export: give at least one of --xtce OUT.xml, --markdown DIR, --json OUT.json")
    d = _dictionary(args)
    if args.xtce:
        from .xtce import MAX_ENUM_ENTRIES, build_xtce
        doc = build_xtce(d, args.max_enum_entries or MAX_ENUM_ENTRIES)
        _write_text(Path(args.xtce), doc.xml)
        _out(f"wrote {_printable(args.xtce)} (XTCE 1.2, {len(doc.containers)} packet containers)")
        for note in doc.notes:
            _out(f"  note: {note}")
    if args.markdown:
        from .icd import icd_files
        root = Path(args.markdown)
        if root.exists() and not root.is_dir():
            raise _usage(f"--markdown {args.markdown} is a file; give a directory")
        files = icd_files(d)
        for name, text in files.items():
            _write_text(root / name, text)
        _out(f"wrote {len(files)} Markdown files to {_printable(args.markdown)}")
    if args.json:
        from .icd import dictionary_to_data
        _write_text(Path(args.json), json.dumps(dictionary_to_data(d), indent=2) + "\n")
        _out(f"wrote {_printable(args.json)}")
    return EXIT_OK
