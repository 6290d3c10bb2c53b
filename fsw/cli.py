"""``fsw``: run the payload manager's flight software in real time on serial links.

This is the composition root of the flight software process: it loads the
dictionary, builds the sans-I/O core, opens one link per port (any pyserial
URL, a device path, or ``pty:PATH`` to create a pseudo-terminal) and drives
the core with the real clock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .io.cliutil import add_run_options, dictionary_or_none, link_event_printer, parse_pairs, run_until_signalled

EPILOG = """\
link specs (PORT=SPEC, repeatable; PORT is 'ground' or a unit's port name from the dictionary):
  ground=pty:run/ground.pty      create a pseudo-terminal, publish its path as a symlink
  fss=/dev/ttyUSB0               a real UART (RS-422 adapter)
  fss=rfc2217://10.0.0.5:4001    a serial server
  fss=socket://127.0.0.1:5001    raw TCP
  fss=run/fss.pty                a pty published by hw-sim
defaults: ground=pty:RUN_DIR/ground.pty and every unit at RUN_DIR/<port>.pty (as hw-sim publishes them).
A missing port is not an error: the link keeps retrying with back-off and reports when it connects.

examples:
  fsw                                   # bench on pseudo-terminals made by hw-sim in ./run
  fsw --link fss=/dev/ttyUSB0 --baud fss=38400
  fsw --state-dir /var/lib/fsw --phase SURFACE --duration 3600
  fsw --space-link                      # the ground port carries the space link (with hw-sim relay / ground)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fsw", description="Run the lander payload manager flight software on serial links (real time).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dictionary", metavar="DIR", help="mission dictionary directory (default: the reference mission)")
    p.add_argument("--run-dir", default="run", metavar="DIR",
                   help="where default pty symlinks live (default: ./run)")
    p.add_argument("--link", action="append", default=[], metavar="PORT=SPEC",
                   help="link for a port: any pyserial URL, a device path, or pty:PATH (repeatable)")
    p.add_argument("--baud", action="append", default=[], metavar="PORT=BAUD",
                   help="override a port's baud rate (default: the unit's baud from the dictionary; ground 115200)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="durable state directory (restart counters, phase, deploy records); default RUN_DIR/state")
    p.add_argument("--provision", action="store_true",
                   help="integration step: record the deploy units as stowed and never fired in the state "
                        "directory, where no record exists yet (a missing record otherwise reads UNKNOWN and "
                        "blocks firing until a ground override)")
    p.add_argument("--phase", default=None, metavar="PHASE",
                   help="mission phase to start in when no durable state says otherwise (default PRELAUNCH)")
    p.add_argument("--pace-ground", action="store_true",
                   help="pace the ground port at its baud (useful on ptys, which ignore baud)")
    p.add_argument("--space-link", action="store_true",
                   help="carry the space link on the ground port instead of ASM-framed packets: CLTUs with TC "
                        "frames under COP-1 (FARM-1) in, fixed-length TM frames (CADUs) out, every packet for "
                        "the ground kept in the PUS-15 packet stores until the ground acknowledges it "
                        "(docs/spacelink.md); the downlink frame rate follows the ground port's baud")
    add_run_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dictionary = dictionary_or_none("fsw", args.dictionary)
    if dictionary is None:
        return 2
    try:
        links_cfg = parse_pairs(args.link, "--link")
        bauds = {k: int(v) for k, v in parse_pairs(args.baud, "--baud").items()}
    except ValueError as exc:
        print(f"fsw: {exc}", file=sys.stderr)
        return 2
    from .core.flight import build_flight_software
    from .io.clock import RealClock
    from .io.link import Link
    from .io.runner import RealTimeRunner
    from .io.state import FileStore

    run_dir = Path(args.run_dir)
    ports = {"ground": 115200}
    ports.update({u.port: u.baud for u in dictionary.systems if u.kind != "lander"})
    unknown = sorted((set(links_cfg) | set(bauds)) - set(ports))
    if unknown:
        print(f"fsw: unknown port(s) {', '.join(unknown)}; ports are {', '.join(ports)}", file=sys.stderr)
        return 2
    if args.phase is not None and args.phase not in dictionary.phases:
        print(f"fsw: unknown phase {args.phase!r}; phases are {', '.join(dictionary.phases)}", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("fsw: --rate must be positive", file=sys.stderr)
        return 2
    state_dir = Path(args.state_dir) if args.state_dir else run_dir / "state"
    try:
        store = FileStore(state_dir)
    except OSError as exc:
        print(f"fsw: cannot use state directory {state_dir}: {exc}", file=sys.stderr)
        return 2
    from .io.library import onboard_library

    if args.provision:
        from .core.deploy import provision

        done = provision(store, [u.name for u in dictionary.systems_of_kind("deploy")])
        if not args.quiet:
            print(f"fsw: provisioned {', '.join(done) or 'nothing (records already present)'}", file=sys.stderr)

    try:
        library = onboard_library(args.dictionary)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"fsw: cannot read the onboard library: {exc}", file=sys.stderr)
        return 2
    options = {"initial_phase": args.phase or "PRELAUNCH", **library}
    if args.space_link:
        from .core.spacelink import SpaceLinkConfig

        # 8N1 on the ground line: 8 data bits of every 10
        options["space_link"] = SpaceLinkConfig(downlink_bps=bauds.get("ground", ports["ground"]) * 0.8)
    try:
        fsw = build_flight_software(dictionary, store, options)
    except ValueError as exc:
        print(f"fsw: {exc}", file=sys.stderr)
        return 2

    report = link_event_printer("fsw: link ", args.quiet)

    links = {}
    for port, baud in ports.items():
        default = f"pty:{run_dir / 'ground.pty'}" if port == "ground" else str(run_dir / f"{port}.pty")
        spec = links_cfg.get(port, default)
        try:
            links[port] = Link(spec, name=port, baud=bauds.get(port, baud),
                               pace=(port == "ground" and args.pace_ground), on_event=report(port))
        except ValueError as exc:
            print(f"fsw: --link {port}: {exc}", file=sys.stderr)
            return 2
    clock = RealClock(dictionary.epoch, start=args.start_time, rate=args.rate)
    runner = RealTimeRunner(clock)
    runner.add(fsw, links)
    if not args.quiet:
        print(f"fsw: {dictionary.mission}: phase {fsw.phases.current.name}, ports "
              + ", ".join(f"{p}={links[p].spec if hasattr(links[p], 'spec') else ''}" for p in links),
              file=sys.stderr, flush=True)
    run_until_signalled(runner, args.duration)
    fsw.stop(clock.now())   # the space link's packet stores: everything stored made durable
    if not args.quiet:
        c = fsw.counters
        print(f"fsw: stopped: {c.tc_accepted} TC accepted, {c.tc_rejected} rejected, {c.tc_routed} routed, "
              f"{c.tm_forwarded} TM forwarded", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
