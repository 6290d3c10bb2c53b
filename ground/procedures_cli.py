"""``ground procedure``: run test procedures on the simulated bench, on a pty bench, or over a link.

Registered by :mod:`ground.cli` (``add_procedure_parser`` in its ``SUBCOMMANDS``).

A procedure file is a Python module; its procedures are the module-level
functions named ``test_*`` that take one argument, ``proc`` (a
:class:`ground.procedures.Procedure`).  The same file runs under pytest with
``pytest -p ground.pytest_plugin FILE``.  This runner needs no pytest: it
imports the file, runs the selected procedures in file order against one
bench, prints every step, and ends with a summary.

Exit codes: 0 every procedure passed, 1 one failed (or the link was not
available), 2 usage error (no such file, nothing selected, the file does not
import).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import itertools
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

__all__ = ["add_procedure_parser", "collect_procedures", "load_procedure_file", "run_procedures"]

_counter = itertools.count()


def _cli() -> Any:
    from . import cli  # imported lazily: ground.cli imports this module to register the parser
    return cli


# -- loading ----------------------------------------------------------------------------------------------------

def resolve_file(name: str) -> Path:
    """A procedure file: a path, or the name of a bundled example (``checkout_fss``)."""
    p = Path(name)
    if p.is_file():
        return p
    from .procedures_examples import example_path

    if os.sep not in name and "/" not in name:
        try:
            return example_path(name)
        except KeyError as exc:
            raise _cli().UsageError(f"no procedure file {name!r} ({exc.args[0]})") from None
    raise _cli().UsageError(f"no procedure file {name!r}")


def load_procedure_file(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (never cached: each run sees the file as it is now)."""
    mod_name = f"_ground_procedure_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise _cli().UsageError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's file: report it as one line
        where = ""
        tb = traceback.extract_tb(exc.__traceback__)
        for fr in reversed(tb):
            if Path(fr.filename).resolve() == path.resolve():
                where = f" (line {fr.lineno})"
                break
        raise _cli().UsageError(f"{path} does not import{where}: {type(exc).__name__}: {exc}") from None
    return module


def collect_procedures(module: ModuleType) -> tuple[list[tuple[str, Callable[..., Any]]], list[str]]:
    """(procedures in file order, names of ``test_*`` functions that cannot run here and why)."""
    found: list[tuple[int, str, Callable[..., Any]]] = []
    skipped: list[str] = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not inspect.isfunction(fn) or fn.__module__ != module.__name__:
            continue
        params = list(inspect.signature(fn).parameters)
        if params != ["proc"]:
            skipped.append(f"{name}: takes ({', '.join(params)}); a procedure takes only proc")
            continue
        found.append((fn.__code__.co_firstlineno, name, fn))
    found.sort(key=lambda t: t[0])
    return [(n, f) for _, n, f in found], skipped


Procs = list[tuple[str, Callable[..., Any]]]


def select(procs: Procs, patterns: list[str] | None) -> Procs:
    """Procedures whose name contains any of ``patterns`` (case-insensitive); all if none given."""
    if not patterns:
        return procs
    pats = [p.lower() for p in patterns]
    return [(n, f) for n, f in procs if any(p in n.lower() for p in pats)]


# -- running ----------------------------------------------------------------------------------------------------

def _failure_site(exc: BaseException, path: Path) -> str:
    """``file:line`` of the innermost frame of the exception inside the procedure file."""
    site = ""
    for fr in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(fr.filename).resolve() == path.resolve():
                site = f"{path.name}:{fr.lineno}: {fr.line or ''}".rstrip()
        except OSError:
            continue
    return site


def run_procedures(procs: list[tuple[str, Callable[..., Any]]], backend: Any, path: Path,
                   out: Callable[[str], None], stop_on_failure: bool = False,
                   quiet: bool = False, label: str | None = None) -> dict[str, str]:
    """Run each procedure against ``backend`` in turn; returns {name: "passed"|"failed"|"error"}."""
    from .procedures import Procedure

    outcome: dict[str, str] = {}
    for name, fn in procs:
        out(f"=== {name} ({path.name}) on {label or backend.kind}")
        proc = Procedure(backend, log=None if quiet else out, name=name)
        wall0 = time.monotonic()
        try:
            fn(proc)
        except AssertionError as exc:
            outcome[name] = "failed"
            site = _failure_site(exc, path)
            out(f"FAILED {name}: {exc}" + (f"\n  at {site}" if site else ""))
        except Exception as exc:  # noqa: BLE001 - one procedure's error must not stop the report
            outcome[name] = "error"
            site = _failure_site(exc, path)
            out(f"ERROR {name}: {type(exc).__name__}: {exc}" + (f"\n  at {site}" if site else ""))
            if os.environ.get("GROUND_DEBUG"):
                traceback.print_exc()
        else:
            outcome[name] = "passed"
            clock = f"{proc.elapsed:.1f} s simulated, " if backend.kind == "sim" else ""
            out(f"PASSED {name} ({clock}{time.monotonic() - wall0:.1f} s wall)")
        finally:
            proc.close()
        if stop_on_failure and outcome[name] != "passed":
            break
    return outcome


# -- the parser -------------------------------------------------------------------------------------------------

EPILOG = """examples:
  ground procedure examples
  ground procedure run checkout_fss --sim
  ground procedure run checkout_fss --pty
  ground procedure run my_procs.py --link run/ground.pty -k deploy
  ground --space-link procedure run checkout_fss --link run/relay-ground.pty
  ground procedure list deploy_alpine"""


def add_procedure_parser(subparsers: Any) -> None:
    cli = _cli()
    p = subparsers.add_parser(
        "procedure", help="run test procedures (simulated bench, pty bench or a live link)",
        description="Run test procedures: functions named test_* taking one argument, proc, in a Python file "
                    "(or a bundled example named without .py). Every step is printed; the exit code is 0 when "
                    "all selected procedures pass, 1 when one fails.",
        epilog=EPILOG, formatter_class=cli.HelpFormatter)
    sub = p.add_subparsers(dest="procedure_action", metavar="ACTION")
    p.set_defaults(handler=lambda args: _no_action(p))

    r = sub.add_parser("run", help="run the procedures of a file",
                       description="Run the procedures of FILE in file order against one bench.",
                       epilog=EPILOG, formatter_class=cli.HelpFormatter)
    r.add_argument("file", metavar="FILE", help="procedure file, or the name of a bundled example")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--sim", action="store_true",
                       help="the whole bench in this process on the simulated clock (waits cost no real time)")
    where.add_argument("--pty", action="store_true",
                       help="start hw-sim and fsw as separate processes on pseudo-terminals, run over the "
                            "ground pty in real time, stop them at the end")
    where.add_argument("--link", metavar="SPEC",
                       help="a flight software already running: its ground port (pty path, device, "
                            "socket://host:port ...)")
    r.add_argument("-k", dest="patterns", metavar="NAME", action="append", default=[],
                   help="run only procedures whose name contains NAME (repeatable: any of them)")
    r.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failed procedure")
    r.add_argument("--seed", type=int, default=1, help="seed of the simulated hardware (--sim, --pty; default 1)")
    r.add_argument("--phase", default=None, metavar="PHASE",
                   help="mission phase the bench starts in (--sim, --pty; default PRELAUNCH)")
    r.add_argument("--run-dir", default=None, metavar="DIR",
                   help="--pty: where the bench publishes its ptys, logs and state (default: a temporary directory)")
    r.add_argument("--baud", metavar="N", type=cli.positive(int), default=115200,
                   help="line rate of a real serial port (--link; default 115200)")
    r.add_argument("--connect-timeout", metavar="S", type=cli.positive(float), default=5.0,
                   help="seconds to wait for the link to connect (--link, --pty; default 5)")
    r.add_argument("-q", "--quiet", action="store_true", help="print only each procedure's verdict")
    r.set_defaults(handler=cmd_procedure_run)

    ls = sub.add_parser("list", help="list the procedures of a file", formatter_class=cli.HelpFormatter)
    ls.add_argument("file", metavar="FILE", help="procedure file, or the name of a bundled example")
    ls.set_defaults(handler=cmd_procedure_list)

    ex = sub.add_parser("examples", help="list the bundled example procedure files",
                        formatter_class=cli.HelpFormatter)
    ex.set_defaults(handler=cmd_procedure_examples)


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _first_line(fn_or_mod: Any) -> str:
    doc = inspect.getdoc(fn_or_mod) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def cmd_procedure_examples(args: argparse.Namespace) -> int:
    from .procedures_examples import example_files

    out = _cli().out
    for p in example_files():
        out(f"{p.stem:<18} {_first_line(load_procedure_file(p))}")
        out(f"{'':<18} {p}")
    return 0


def cmd_procedure_list(args: argparse.Namespace) -> int:
    path = resolve_file(args.file)
    procs, skipped = collect_procedures(load_procedure_file(path))
    out = _cli().out
    for name, fn in procs:
        out(f"{name:<32} {_first_line(fn)}")
    for s in skipped:
        out(f"(not runnable here) {s}")
    if not procs:
        raise _cli().UsageError(f"{path} defines no procedure (a function test_*(proc))")
    return 0


def cmd_procedure_run(args: argparse.Namespace) -> int:
    cli = _cli()
    path = resolve_file(args.file)
    procs, skipped = collect_procedures(load_procedure_file(path))
    for s in skipped:
        print(f"ground: skipping {s}", file=sys.stderr)
    chosen = select(procs, args.patterns)
    if not chosen:
        what = f" matching {', '.join(args.patterns)}" if args.patterns else ""
        raise cli.UsageError(f"{path} has no procedure{what} (procedures: "
                             f"{', '.join(n for n, _ in procs) or 'none'})")
    d = cli.get_dictionary(args)
    if args.phase is not None and args.phase not in d.phases:
        raise cli.UsageError(f"unknown phase {args.phase!r}; phases are {', '.join(d.phases)}")
    from .procedures import open_backend
    from .session import LinkUnavailable

    kind = "sim" if args.sim else "pty" if args.pty else "link"
    space_link = bool(getattr(args, "space_link", False))
    if space_link and kind != "link":
        raise cli.UsageError("--space-link needs --link (a flight software already running with --space-link); "
                             "--sim and --pty start their own bench on the packet link")
    try:
        with open_backend(kind, link=args.link, seed=args.seed, phase=args.phase, dictionary=d, baud=args.baud,
                          run_dir=args.run_dir, connect_timeout=args.connect_timeout,
                          space_link=space_link) as backend:
            if kind != "sim" and not backend.session.connected:
                raise cli.CommandFailed(f"link {backend.session.link_spec} is not connected "
                                        "(is the flight software running?)")
            if kind == "pty":
                cli.out(f"-- bench: hw-sim and fsw in {backend.bench.run_dir}")
            outcome = run_procedures(chosen, backend, path, cli.out, args.exitfirst, args.quiet, kind)
    except LinkUnavailable as exc:
        raise cli.CommandFailed(str(exc)) from None
    except RuntimeError as exc:  # start_bench: a process did not come up; its log follows the first line
        head, *log = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise cli.CommandFailed(f"{head.rstrip(':')}" + (f" ({log[-1]})" if log else "")) from None
    except ValueError as exc:  # a malformed link spec
        raise cli.UsageError(str(exc)) from None
    counts = {k: sum(1 for v in outcome.values() if v == k) for k in ("passed", "failed", "error")}
    not_run = len(chosen) - len(outcome)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    if not_run:
        summary += f", {not_run} not run"
    cli.out(f"== {summary}")
    return 0 if counts["passed"] == len(chosen) else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m ground.procedures_cli ARGS`` is ``ground procedure ARGS``."""
    cli = _cli()
    if not any(getattr(f, "__name__", "") == "add_procedure_parser" for f in cli.SUBCOMMANDS):
        cli.SUBCOMMANDS.append(add_procedure_parser)   # until ground.cli registers it
    return cli.main(["procedure", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
