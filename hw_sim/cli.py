"""``hw-sim``: serve the simulated lander hardware, each unit on its own serial port.

By default every unit of the dictionary (the power distribution unit, the
science payloads and the deploy units) gets a pseudo-terminal whose path is
published as a symlink ``RUN_DIR/<port>.pty``, and its output is paced at the
unit's baud (8N1) because a pseudo-terminal ignores baud.  Any unit can be put
on a real UART or a serial server instead with ``--unit NAME=SPEC``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fsw.io.cliutil import (
    add_run_options, dictionary_or_none, link_event_printer, parse_pairs, run_until_signalled,
)

EPILOG = """\
unit specs (NAME=SPEC, repeatable; NAME is a unit name from the dictionary, e.g. FSS, PDU, ALPINE):
  FSS=pty:run/fss.pty            create a pseudo-terminal and publish it (the default)
  FSS=/dev/ttyUSB1               serve the unit on a real UART, e.g. towards a flight computer
  FSS=socket://0.0.0.0:7001      (any pyserial URL)

faults (repeatable): --fault FSS=silent   the unit stops answering
                     --fault LISTER=babble  the unit sends garbage between its packets
                     --fault PDU=overcurrent:FSS  the FSS channel draws beyond its limit

the far-side relay link emulator is a separate process:  hw-sim relay --help

examples:
  hw-sim                          # every unit on ptys in ./run, paced at each unit's baud
  hw-sim --only FSS,PDU --seed 7
  hw-sim --unit FSS=/dev/ttyUSB1 --baud FSS=38400
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hw-sim", description="Serve the simulated lander hardware on serial ports.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dictionary", metavar="DIR", help="mission dictionary directory (default: the reference mission)")
    p.add_argument("--run-dir", default="run", metavar="DIR", help="where pty symlinks are published (default ./run)")
    p.add_argument("--unit", action="append", default=[], metavar="NAME=SPEC", help="serial link for a unit (repeatable)")
    p.add_argument("--baud", action="append", default=[], metavar="NAME=BAUD", help="override a unit's baud rate")
    p.add_argument("--only", metavar="NAMES", help="comma-separated units to serve (default: all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated noise (default 1)")
    p.add_argument("--no-pace", action="store_true", help="do not pace output at the baud rate")
    p.add_argument("--fault", action="append", default=[], metavar="UNIT=KIND", help="inject a fault (see below)")
    add_run_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        from .relay import main as relay_main

        return relay_main(argv[1:])
    args = build_parser().parse_args(argv)
    dictionary = dictionary_or_none("hw-sim", args.dictionary)
    if dictionary is None:
        return 2
    try:
        specs = parse_pairs(args.unit, "--unit", upper=True)
        bauds = {k: int(v) for k, v in parse_pairs(args.baud, "--baud", upper=True).items()}
        faults = parse_pairs(args.fault, "--fault", upper=True)
    except ValueError as exc:
        print(f"hw-sim: {exc}", file=sys.stderr)
        return 2
    from fsw.io.clock import RealClock
    from fsw.io.link import Link
    from fsw.io.runner import RealTimeRunner

    from .assembly import build_hardware
    from .models.unit import LINE

    hw = build_hardware(dictionary, args.seed)
    names = list(hw.units)
    if args.only:
        wanted = [n.strip().upper() for n in args.only.split(",") if n.strip()]
        bad = [n for n in wanted if n not in hw.units]
        if bad:
            print(f"hw-sim: unknown unit(s) {', '.join(bad)}; units are {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    bad = sorted((set(specs) | set(bauds) | set(faults)) - set(hw.units))
    if bad:
        print(f"hw-sim: unknown unit(s) {', '.join(bad)}; units are {', '.join(hw.units)}", file=sys.stderr)
        return 2
    for unit, kind in faults.items():
        try:
            hw.inject(unit, kind)
        except (ValueError, KeyError) as exc:
            print(f"hw-sim: --fault {unit}={kind}: {exc}", file=sys.stderr)
            return 2
    run_dir = Path(args.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"hw-sim: cannot create {run_dir}: {exc}", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("hw-sim: --rate must be positive", file=sys.stderr)
        return 2
    clock = RealClock(dictionary.epoch, start=args.start_time, rate=args.rate)
    runner = RealTimeRunner(clock)

    report = link_event_printer("hw-sim: ", args.quiet)
    for name in names:
        unit = hw.units[name]
        system = dictionary.system(name)
        spec = specs.get(name, f"pty:{run_dir / (system.port + '.pty')}")
        try:
            link = Link(spec, name=name, baud=bauds.get(name, system.baud), pace=not args.no_pace,
                        on_event=report(name))
        except ValueError as exc:
            print(f"hw-sim: --unit {name}: {exc}", file=sys.stderr)
            return 2
        runner.add(unit, {LINE: link})
    # units not served on a port still run (the PDU powers them, they draw current)
    for name, unit in hw.units.items():
        if name not in names:
            runner.add(unit, {})
    if not args.quiet:
        print(f"hw-sim: serving {', '.join(names)} in {run_dir}/", file=sys.stderr, flush=True)
    run_until_signalled(runner, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
