"""``hw-sim relay`` (also ``python -m hw_sim.relay``): the far-side relay link as a process between two serial ports.

It reads raw bytes on the ground's port and on the lander's port and hands
each write to the other side through :class:`hw_sim.models.relay_node.RelayNode`:
contact windows of the mission phase, rate cap per direction, one-way light
time plus the relay hop, and seeded impairments in both directions.  It runs
on the real-time runner and the real clock; ``--rate`` (alias ``--time-scale``)
runs mission time faster, which shortens every delay and window alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from fsw.io.cliutil import add_run_options, dictionary_or_none

from .faults import GilbertElliott, Impairments, LinkImpairer
from .models.relay import DEFAULT_PLANS, HOUR, RelayGeometry, RelayLinkModel
from .models.relay_node import GROUND, LANDER, RelayNode, override_plan

DEFAULT_GROUND = "pty:{run_dir}/relay-ground.pty"
DEFAULT_LANDER = "{run_dir}/ground.pty"

DESCRIPTION = """\
Carry raw serial bytes between the ground tool and the flight software through the emulated far-side space
link: contact windows from the mission phase and the relay geometry, a rate cap per direction, the one-way
light time plus the relay hop, and seeded impairments (random and bursty loss, bit errors, duplication,
reordering, jitter) in both directions.  The relay knows nothing of framing: a write (one chunk as read from
the port) is the unit of loss, so the space link's framing (fsw --space-link, ground --space-link) must cope."""

EPILOG = """\
phases and their default links (see docs/spacelink.md):
  PRELAUNCH   umbilical, continuous, 115 200 baud, no delay
  LAUNCH      no contact: nothing passes
  CRUISE      direct to Earth, continuous, 2/2 kbps, light time 1.19-1.36 s
  LUNAR_ORBIT, DEPLOY   direct to Earth 71 min of every 118, 8/55 kbps, light time
  DESCENT, NIGHT_SAFE   relays (two 2-hour gaps a day), 8/55 kbps, light time + 1 s hop
  SURFACE     relays, 8/1300 kbps, light time + 1 s hop

statistics: every --stats-interval seconds one JSON line on stderr (unless -q) and, with --stats FILE,
the same snapshot rewritten atomically in FILE (and once more at exit).  Per direction ("up": ground to
lander, "down": lander to ground): writes_in, bytes_in, pieces_out, bytes_out, bytes_in_flight, lost
{reason: writes}, impairments {duplicated, reordered, bit_errors, corrupted ...}; and phase, in_contact,
aos, los, next_contact_change, one_way_delay_s.

examples:
  fsw --space-link --run-dir run &                    # the lander's RF port: pty run/ground.pty
  hw-sim relay --phase SURFACE --always-in-contact --loss 0.01 --duplicate 0.01 --seed 7 &
  ground --space-link send --link run/relay-ground.pty PING
  hw-sim relay --lander /dev/ttyUSB0 --ground socket://0.0.0.0:7000 --phase CRUISE
  hw-sim relay --phase SURFACE --rate 600 --relay-period 43200 --relay-view 28800   # gaps every few minutes
  hw-sim relay --delay 0.2 --always-in-contact --burst 0.01,0.3,0,1 --stats run/relay.json
"""


def _prob(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in 0..1")
    return v


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return v


def _positive(text: str) -> float:
    v = _seconds(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _burst(text: str) -> tuple[float, ...]:
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"{text!r} must be p,r,loss_good,loss_bad (four probabilities)")
    try:
        return tuple(_prob(x.strip()) for x in parts)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"--burst {text!r}: {exc}") from None


def _times(text: str) -> tuple[float, ...]:
    try:
        return tuple(_seconds(x.strip()) for x in text.split(","))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def build_parser(prog: str = "hw-sim relay") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dictionary", metavar="DIR", help="mission dictionary directory (default: the reference mission)")
    p.add_argument("--run-dir", default="run", metavar="DIR",
                   help="directory of the default ports (default ./run)")
    p.add_argument("--ground", metavar="SPEC", default=None,
                   help="the ground tool's side: any pyserial URL, a device path, or pty:PATH to publish a "
                        f"pseudo-terminal (default {DEFAULT_GROUND.format(run_dir='RUN_DIR')})")
    p.add_argument("--lander", metavar="SPEC", default=None,
                   help="the flight software's RF (ground) port, same forms (default "
                        f"{DEFAULT_LANDER.format(run_dir='RUN_DIR')}, the pty that fsw publishes)")
    p.add_argument("--ground-baud", type=int, default=115200, metavar="N",
                   help="line rate of a real UART on the ground side (default 115200; the link's rate cap is "
                        "the phase's, not this)")
    p.add_argument("--lander-baud", type=int, default=115200, metavar="N", help="the same for the lander side")
    g = p.add_argument_group("link geometry and timing")
    g.add_argument("--phase", default="SURFACE", metavar="PHASE",
                   help=f"mission phase whose link to emulate: {', '.join(DEFAULT_PLANS)} (default SURFACE)")
    g.add_argument("--delay", type=_seconds, default=None, metavar="S",
                   help="fixed one-way delay in mission seconds, replacing light time and relay hop")
    g.add_argument("--always-in-contact", action="store_true",
                   help="no contact gaps (benches); the phase's rates stay, and LAUNCH still has no link")
    g.add_argument("--up-rate", type=_positive, default=None, metavar="BPS",
                   help="uplink (ground to lander) rate cap in bits per second (default: the phase's)")
    g.add_argument("--down-rate", type=_positive, default=None, metavar="BPS",
                   help="downlink (lander to ground) rate cap in bits per second (default: the phase's)")
    g.add_argument("--max-queue", type=_seconds, default=30.0, metavar="S",
                   help="a write waiting longer than S behind earlier ones at the rate cap is dropped (default 30)")
    g.add_argument("--relay-period", type=_positive, default=12 * HOUR, metavar="S",
                   help="orbit period of each relay, mission seconds (default 43200)")
    g.add_argument("--relay-view", type=_positive, default=8 * HOUR, metavar="S",
                   help="time each relay is in view per orbit (default 28800)")
    g.add_argument("--relay-aos", type=_times, default=(0.0, 2 * HOUR), metavar="S,S",
                   help="mission time at which each relay (ALPINE, LUPINE) rises; one per relay (default 0,7200)")
    g.add_argument("--time-scale", dest="rate", type=_positive, default=argparse.SUPPRESS, metavar="X",
                   help="the same as --rate: mission time runs X times real time, so delays and windows shrink")
    i = p.add_argument_group("seeded impairments (each write; both directions unless --impair says otherwise)")
    i.add_argument("--seed", type=int, default=1, help="seed of the impairments (default 1): same seed, same run")
    i.add_argument("--impair", choices=("both", "up", "down"), default="both",
                   help="which direction the impairments apply to (default both, each with its own random stream)")
    i.add_argument("--loss", type=_prob, default=0.0, metavar="P", help="independent loss probability per write")
    i.add_argument("--burst", type=_burst, default=None, metavar="p,r,lg,lb",
                   help="Gilbert-Elliott bursty loss: p good->bad, r bad->good, loss probability in good and bad")
    i.add_argument("--ber", type=_prob, default=0.0, metavar="P", help="bit error rate (each bit flips with P)")
    i.add_argument("--corrupt", type=_prob, default=0.0, metavar="P", help="probability of one flipped bit per write")
    i.add_argument("--duplicate", type=_prob, default=0.0, metavar="P", help="probability of a second copy")
    i.add_argument("--dup-delay", type=_seconds, default=0.5, metavar="S",
                   help="the copy comes up to S later (default 0.5)")
    i.add_argument("--reorder", type=_prob, default=0.0, metavar="P",
                   help="probability a write is held back by --reorder-delay, so later ones overtake it")
    i.add_argument("--reorder-delay", type=_seconds, default=0.5, metavar="S",
                   help="how long a reordered write is held back (default 0.5)")
    i.add_argument("--jitter", type=_seconds, default=0.0, metavar="S",
                   help="Gaussian delay jitter, standard deviation S (a write is never early)")
    i.add_argument("--truncate", type=_prob, default=0.0, metavar="P", help="probability a write is cut short")
    i.add_argument("--garbage", type=_prob, default=0.0, metavar="P",
                   help="probability of random octets before a write")
    o = p.add_argument_group("statistics and running")
    o.add_argument("--stats", metavar="FILE", default=None,
                   help="keep a JSON snapshot of the statistics in FILE (rewritten atomically)")
    o.add_argument("--stats-interval", type=_seconds, default=5.0, metavar="S",
                   help="report the statistics every S real seconds (default 5; 0: only at exit)")
    add_run_options(o)
    return p


def impairments_from(args: argparse.Namespace) -> Impairments:
    """The impairment knobs of the options (a fresh Gilbert-Elliott state on every call)."""
    burst = None if args.burst is None else GilbertElliott(*args.burst)
    return Impairments(loss=args.loss, burst=burst, ber=args.ber, corrupt=args.corrupt,
                       duplicate=args.duplicate, dup_delay=args.dup_delay if args.duplicate else 0.0,
                       reorder=args.reorder, reorder_delay=args.reorder_delay if args.reorder else 0.0,
                       jitter=args.jitter, truncate=args.truncate, garbage=args.garbage)


def build_node(args: argparse.Namespace) -> RelayNode:
    """The relay node the options describe.  Raises ValueError for a bad phase or geometry."""
    if args.phase not in DEFAULT_PLANS:
        raise ValueError(f"unknown phase {args.phase!r}; phases are {', '.join(DEFAULT_PLANS)}")
    plans = dict(DEFAULT_PLANS)
    plans[args.phase] = override_plan(
        plans[args.phase], delay_s=args.delay, always_in_contact=args.always_in_contact,
        up_Bps=None if args.up_rate is None else args.up_rate / 8.0,
        down_Bps=None if args.down_rate is None else args.down_rate / 8.0)
    names = RelayGeometry().names
    if len(args.relay_aos) != len(names):
        raise ValueError(f"--relay-aos needs {len(names)} times, one for each of {', '.join(names)}")
    relays = RelayGeometry(names=names, period_s=args.relay_period, view_s=args.relay_view, aos_s=args.relay_aos)
    model = RelayLinkModel(plans=plans, relays=relays, phase=args.phase)
    seeds = random.Random(args.seed)
    impairers = {}
    for direction in ("up", "down"):
        rng = random.Random(seeds.random())      # drawn for both directions, so --impair keeps each stream
        imp = impairments_from(args)
        if args.impair in ("both", direction) and not (imp.clean and imp.jitter == 0):
            impairers[direction] = LinkImpairer(rng, imp)
    return RelayNode(model, impairers.get("up"), impairers.get("down"), max_queue_s=args.max_queue)


class StatsReporter:
    """Called on the runner's thread (as its ``until``): reports every ``interval`` real seconds; never stops it."""

    def __init__(self, node: RelayNode, clock: Any, path: str | None, interval: float, quiet: bool,
                 prog: str = "hw-sim relay") -> None:
        self.node = node
        self.prog = prog
        self.clock = clock
        self.path = Path(path) if path else None
        self.interval = interval
        self.quiet = quiet
        self._next = time.monotonic() + interval if interval > 0 else float("inf")
        self._last_counts = ""

    def snapshot(self) -> dict[str, Any]:
        s = self.node.stats(self.clock.now())
        s["time"] = self.clock.now()
        return s

    def report(self, to_stderr: bool = True) -> None:
        """The snapshot to the file; to stderr too, unless quiet or no counter moved since the last line."""
        s = self.snapshot()
        line = json.dumps(s, sort_keys=True)
        counts = json.dumps({k: v for k, v in s.items() if k not in ("time", "one_way_delay_s")}, sort_keys=True)
        if to_stderr and not self.quiet and counts != self._last_counts:
            self._last_counts = counts
            print(f"{self.prog}: stats {line}", file=sys.stderr, flush=True)
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                tmp.write_text(line + "\n")
                os.replace(tmp, self.path)
            except OSError as exc:
                print(f"{self.prog}: cannot write {self.path}: {exc}", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval
            self.report()
        return False


def main(argv: list[str] | None = None, prog: str = "hw-sim relay") -> int:
    args = build_parser(prog).parse_args(argv)
    dictionary = dictionary_or_none(prog, args.dictionary)
    if dictionary is None:
        return 2
    rate = args.rate
    if not rate > 0:
        print(f"{prog}: --rate must be positive", file=sys.stderr)
        return 2
    try:
        node = build_node(args)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    from fsw.io.clock import RealClock
    from fsw.io.cliutil import link_event_printer, run_until_signalled
    from fsw.io.link import Link
    from fsw.io.runner import RealTimeRunner

    run_dir = Path(args.run_dir)
    specs = {GROUND: args.ground or DEFAULT_GROUND.format(run_dir=run_dir),
             LANDER: args.lander or DEFAULT_LANDER.format(run_dir=run_dir)}
    bauds = {GROUND: args.ground_baud, LANDER: args.lander_baud}

    report = link_event_printer(f"{prog}: ", args.quiet)
    links = {}
    for port, spec in specs.items():
        try:
            links[port] = Link(spec, name=f"relay-{port}", baud=bauds[port], on_event=report(port))
        except ValueError as exc:
            print(f"{prog}: --{port} {spec!r}: {exc}", file=sys.stderr)
            return 2
    clock = RealClock(dictionary.epoch, start=args.start_time, rate=rate)
    runner = RealTimeRunner(clock)
    runner.add(node, links)
    reporter = StatsReporter(node, clock, args.stats, args.stats_interval, args.quiet, prog)
    if not args.quiet:
        plan = node.model.plan
        print(f"{prog}: phase {args.phase} ({plan.kind}), up {plan.up_Bps * 8:g} bps, down {plan.down_Bps * 8:g} bps, "
              f"one-way delay {node.model.one_way_delay(clock.now()):.3f} s; ground {specs[GROUND]}, "
              f"lander {specs[LANDER]}", file=sys.stderr, flush=True)
    try:
        run_until_signalled(runner, args.duration, until=reporter)
    finally:
        reporter.report(to_stderr=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hw_sim.relay"))
