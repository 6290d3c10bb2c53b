"""``ground console``: the operator console, and the backends that feed it.

The Textual application itself lives in :mod:`ground.console_app` and its
pure models in :mod:`ground.console_model`; this module holds what does I/O
(the backends) and the command-line entry point, and imports Textual only
when the console actually starts, so the rest of the ``ground`` tool works
without it.

A backend is anything with the :class:`ConsoleBackend` shape:

* :class:`LiveBackend`: a real link (:class:`ground.session.GroundSession`),
  ``ground console --link SPEC``.
* :class:`SimBackend`: the whole bench in this process
  (:class:`ground.simbench.SimBench`) on the simulated clock, advanced in
  step with wall time × ``rate``; ``ground console --sim [--rate X]``.
* :class:`SyntheticBackend`: N parameters at R Hz with no flight software,
  for the load benchmark; ``ground console --synthetic N --hz R``.

Every backend is polled from the console's own event loop (never blocks):
``poll()`` returns the records that arrived since the last call.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from fsw.dictionary import Dictionary

from .console_model import SyntheticTelemetry
from .verification import VerificationResult

__all__ = ["ConsoleBackend", "ConsoleSendError", "LiveBackend", "SimBackend", "SyntheticBackend",
           "add_console_parser", "cmd_console"]


class ConsoleSendError(ConnectionError):
    """The backend cannot send (no link, no flight software); nothing was sent."""


@runtime_checkable
class ConsoleBackend(Protocol):
    """What the console needs from a source of telemetry and a sink of telecommands."""

    #: shown in the status bar ("sim ×1", "link run/ground.pty" ...)
    label: str
    dictionary: Dictionary
    #: False: the console validates commands but this backend sends nothing
    can_command: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def now(self) -> float:
        """Mission seconds."""
        ...

    def poll(self) -> list[dict]:
        """Decoded records (see :mod:`ground.decoding`) that arrived since the last call; never blocks."""
        ...

    def send(self, command: str, system: str | None, args: Mapping[str, Any], confirm: str | None,
             timeout: float | None) -> Any:
        """Validate, send and track a telecommand; returns a handle for :meth:`status`.

        Raises before anything is sent: ``KeyError``/``ValueError`` (bad
        command or argument), :class:`ConnectionError` (no link).
        """
        ...

    def status(self, handle: Any) -> VerificationResult | None:
        """The verification snapshot of a sent telecommand."""
        ...

    def link_stats(self) -> dict[str, Any]:
        """Cumulative counters: connected, rx_packets, rx_bytes, tx_packets, errors, dropped_bytes,
        reconnects, last_rx (mission seconds of the last packet, or None)."""
        ...


# -- the whole bench in process, on the simulated clock ---------------------------------------------------

class SimBackend:
    """Flight software, every simulated device and a ground node, advanced with wall time × ``rate``.

    ``wall`` is the wall clock (seconds, monotonic); tests pass a fake one
    and move it by hand, so a pilot test is deterministic.  The simulation
    never runs more than ``max_step`` simulated seconds in one poll: if the
    host falls behind, simulated time slips rather than racing to catch up.
    """

    can_command = True

    def __init__(self, dictionary: Dictionary | None = None, *, rate: float = 1.0, seed: int = 1,
                 phase: str = "PRELAUNCH", wall: Callable[[], float] = time.monotonic,
                 max_step: float | None = None, bench: Any = None) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if bench is None:
            from .simbench import SimBench

            bench = SimBench(dictionary, seed=seed, phase=phase)
        self.bench = bench
        self.dictionary: Dictionary = bench.dictionary
        self.rate = float(rate)
        self.wall = wall
        self.max_step = max_step
        self.paused = False
        # events the bench produced while it was being built (boot, deploy-state checks ...) come first
        self._records: list[dict] = list(bench.ground.events)
        self.bench.ground.on_record(self._on_record)
        self._wall0 = wall()
        self._sim0 = bench.now

    @property
    def label(self) -> str:
        state = " PAUSED" if self.paused else ""
        return f"sim ×{self.rate:g}{state}"

    def start(self) -> None:
        self._rebase()

    def stop(self) -> None:
        pass

    def _on_record(self, rec: dict) -> None:
        self._records.append(rec)

    def _rebase(self) -> None:
        self._wall0 = self.wall()
        self._sim0 = self.bench.now

    def now(self) -> float:
        return self.bench.now

    def set_rate(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self._rebase()
        self.rate = float(rate)

    def set_paused(self, paused: bool) -> None:
        self._rebase()
        self.paused = paused

    def advance(self, dt: float) -> None:
        """Run ``dt`` simulated seconds now (whatever the wall clock says)."""
        self.bench.run_for(dt)
        self._rebase()

    def poll(self) -> list[dict]:
        if not self.paused:
            target = self._sim0 + (self.wall() - self._wall0) * self.rate
            step = self.max_step if self.max_step is not None else max(2.0, 2.0 * self.rate)
            if target - self.bench.now > step:
                target = self.bench.now + step
                self._wall0, self._sim0 = self.wall(), target
            if target > self.bench.now:
                self.bench.run_until(target)
        out, self._records = self._records, []
        return out

    def send(self, command: str, system: str | None, args: Mapping[str, Any], confirm: str | None,
             timeout: float | None) -> Any:
        return self.bench.ground.send(command, self.bench.now, system=system, confirm=confirm, args=dict(args),
                                      timeout=timeout)

    def status(self, handle: Any) -> VerificationResult | None:
        return self.bench.ground.status(handle)

    def link_stats(self) -> dict[str, Any]:
        g = self.bench.ground
        st = g.port_stats["link"]
        return {"connected": True, "rx_packets": st.rx_packets, "rx_bytes": st.rx_bytes,
                "tx_packets": st.tx_packets, "tx_bytes": st.tx_bytes, "errors": g.counts["errors"],
                "dropped_bytes": g.counts["dropped_bytes"], "reconnects": 0, "last_rx": st.last_rx}

    def inject(self, unit: str, kind: str) -> None:
        """A hardware fault (see :meth:`hw_sim.assembly.Hardware.inject`); raises ValueError/KeyError."""
        self.bench.hardware.inject(unit, kind)


# -- a real link ------------------------------------------------------------------------------------------

class LiveBackend:
    """A :class:`~ground.session.GroundSession` read without blocking from the console's event loop.

    The link's own threads receive; ``poll`` only collects what they
    buffered.  Sending never waits for the link: a link that is down makes
    :meth:`send` raise at once (nothing is sent).
    """

    can_command = True

    def __init__(self, link_spec: str, dictionary: Dictionary, baud: int = 115200, *, session: Any = None,
                 space_link: bool = False) -> None:
        if session is None:
            from .session import GroundSession

            session = GroundSession(link_spec, dictionary, baud=baud, connect_timeout_s=0.0, space_link=space_link)
        self.session = session
        self.dictionary = dictionary
        self.link_spec = link_spec
        self.space_link = getattr(session, "space", None) is not None
        self.label = f"{'space link' if self.space_link else 'link'} {link_spec}"
        self._last_rx: float | None = None

    def start(self) -> None:
        self.session.open()

    def stop(self) -> None:
        self.session.close()

    def now(self) -> float:
        return self.session.clock.now()

    def poll(self) -> list[dict]:
        self.session.poll(0.0)
        out = list(self.session.packets(timeout=0.0))
        if any("apid" in r for r in out):
            self._last_rx = self.now()
        return out

    def send(self, command: str, system: str | None, args: Mapping[str, Any], confirm: str | None,
             timeout: float | None) -> Any:
        return self.session.submit(command, system, confirm, timeout, dict(args))

    def status(self, handle: Any) -> VerificationResult | None:
        return self.session.tracker.status(handle)

    def link_stats(self) -> dict[str, Any]:
        st = self.session.stats
        ls = getattr(self.session.link, "stats", None)
        ls = ls if isinstance(ls, dict) else {}
        out = {"connected": self.session.connected, "rx_packets": st.get("packets", 0),
               "rx_bytes": ls.get("bytes_in", 0), "tx_packets": st.get("tc_sent", 0),
               "tx_bytes": ls.get("bytes_out", 0), "errors": st.get("errors", 0),
               "dropped_bytes": st.get("dropped_bytes", 0), "reconnects": ls.get("reconnects", 0),
               "last_rx": self._last_rx}
        if self.space_link:
            from .spacelink import format_link_status

            # the same line as `ground --space-link monitor --link-status`: FOP-1, COP-1, discards, stores
            out["space_link"] = format_link_status(self.session.link_status())
        return out


# -- synthetic load ------------------------------------------------------------------------------------------

class SyntheticBackend:
    """``n`` parameters at ``hz`` (see :class:`~ground.console_model.SyntheticTelemetry`); sends nothing."""

    can_command = False

    def __init__(self, dictionary: Dictionary, n: int, hz: float, *, per_packet: int = 50,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.dictionary = dictionary
        self.wall = wall
        self._t0 = dictionary.launch_time
        self._wall0 = wall()
        self.gen = SyntheticTelemetry(n, hz, per_packet=per_packet, start=self._t0)
        self.label = f"synthetic {n} params @ {hz:g} Hz"
        self.packets = 0
        self.params = 0
        self._last_rx: float | None = None

    def start(self) -> None:
        self._wall0 = self.wall()

    def stop(self) -> None:
        pass

    def now(self) -> float:
        return self._t0 + (self.wall() - self._wall0)

    def poll(self) -> list[dict]:
        now = self.now()
        out = self.gen.records_until(now)
        if out:
            self.packets += len(out)
            self.params += sum(len(r["params"]) for r in out)
            self._last_rx = now
        return out

    def send(self, command: str, system: str | None, args: Mapping[str, Any], confirm: str | None,
             timeout: float | None) -> Any:
        raise ConsoleSendError("the synthetic backend has no flight software; nothing was sent")

    def status(self, handle: Any) -> VerificationResult | None:
        return None

    def link_stats(self) -> dict[str, Any]:
        return {"connected": True, "rx_packets": self.packets, "rx_bytes": 0, "tx_packets": 0, "errors": 0,
                "dropped_bytes": 0, "reconnects": 0, "last_rx": self._last_rx}


# -- command line -------------------------------------------------------------------------------------------

def add_console_parser(subparsers: Any) -> None:
    """``ground console``: register the subcommand (``handler`` = :func:`cmd_console`)."""
    from .cli import HelpFormatter, add_link_options, positive

    p = subparsers.add_parser(
        "console", help="operator console: live telemetry, events, commanding with verification (terminal UI)",
        description="A keyboard-driven terminal console: telemetry by packet and parameter in engineering units "
                    "coloured by limit state, events coloured by severity, command entry with completion and "
                    "validation from the mission dictionary, a typed confirmation for hazardous commands, each "
                    "command's verification stages, link status, payload power and modes, deploy units. "
                    "Press ? (or F1) inside for the keys.",
        epilog="examples:\n  ground console                       # the flight software on run/ground.pty\n"
               "  ground console --link socket://127.0.0.1:5000\n"
               "  ground --space-link console --link run/relay-ground.pty   # fsw --space-link via hw-sim relay\n"
               "  ground console --sim --rate 10       # the whole bench in this process, 10x real time\n"
               "  ground console --synthetic 1000 --hz 10   # load test: 1000 parameters at 10 Hz",
        formatter_class=HelpFormatter)
    add_link_options(p)
    p.add_argument("--sim", action="store_true",
                   help="run the whole bench (flight software and simulated hardware) inside the console on the "
                        "simulated clock instead of opening a link")
    p.add_argument("--rate", metavar="X", type=positive(float), default=1.0,
                   help="with --sim: simulated seconds per wall-clock second (default: 1)")
    p.add_argument("--seed", metavar="N", type=int, default=1, help="with --sim: seed of the simulated hardware")
    p.add_argument("--phase", metavar="PHASE", default="PRELAUNCH",
                   help="with --sim: mission phase the flight software starts in (default: PRELAUNCH)")
    p.add_argument("--synthetic", metavar="N", type=positive(int), default=None,
                   help="no flight software: N synthetic parameters (load benchmark)")
    p.add_argument("--hz", metavar="R", type=positive(float), default=10.0,
                   help="with --synthetic: update rate of every parameter in Hz (default: 10)")
    p.add_argument("--refresh", metavar="HZ", type=positive(float), default=5.0,
                   help="screen refresh rate in Hz; data is collected in between and drawn in batches (default: 5)")
    p.set_defaults(handler=cmd_console)


def make_backend(args: argparse.Namespace, dictionary: Dictionary) -> Any:
    """The backend ``args`` asks for (raises the CLI's UsageError for conflicting options)."""
    from .cli import UsageError, default_link

    if args.sim and args.synthetic is not None:
        raise UsageError("choose one of --sim and --synthetic")
    space_link = bool(getattr(args, "space_link", False))
    if space_link and (args.sim or args.synthetic is not None):
        raise UsageError("--space-link needs a link: it cannot be combined with --sim or --synthetic")
    if (args.sim or args.synthetic is not None) and args.link is not None:
        raise UsageError("--link cannot be combined with --sim or --synthetic")
    if args.sim:
        phase = args.phase.upper()
        if phase not in dictionary.phases:
            raise UsageError(f"unknown phase {args.phase!r}; phases: {', '.join(dictionary.phases)}")
        return SimBackend(dictionary, rate=args.rate, seed=args.seed, phase=phase)
    if args.synthetic is not None:
        return SyntheticBackend(dictionary, args.synthetic, args.hz)
    link = args.link or default_link()
    try:
        return LiveBackend(link, dictionary, args.baud, space_link=space_link)
    except ValueError as exc:  # a malformed link spec
        raise UsageError(f"bad --link {link!r}: {exc}") from None


def cmd_console(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK, UsageError, get_dictionary

    try:
        from .console_app import ConsoleApp
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("textual", "rich"):
            raise UsageError("ground console needs the Textual package: pip install 'lander-payload-emulator[ground]'"
                             ) from None
        raise
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("ground console needs a terminal (use ground monitor for piped output)")
    d = get_dictionary(args)
    backend = make_backend(args, d)
    app = ConsoleApp(backend, refresh_hz=args.refresh)
    try:
        app.run()
    finally:
        backend.stop()
    return EXIT_OK
