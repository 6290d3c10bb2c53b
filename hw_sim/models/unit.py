"""Simulated units driven by the dictionary alone.

:class:`UnitModel` is one device on one serial line (port ``"line"``).  It
answers the commands its dictionary entry declares with PUS-1 verification,
sends its housekeeping at the declared periods with plausible values, and
follows the lander's time-at-the-tone reports.  Power comes from outside
(:meth:`set_power`, driven by the PDU model or left on): an unpowered unit
is silent, and after switch-on it boots for ``boot_time_s`` before it
answers, in its boot mode (``config.boot_mode``, else its first mode that
is not OFF).  Its current draw follows its mode (:meth:`power_w`).

Housekeeping follows HK_ENABLE, HK_DISABLE and HK_SET_PERIOD per structure.
A disabled structure has no timer running, so that a runner in simulated
time never wakes for it; enabled again, it reports on its grid, the slots it
would have had had its timer run all along.  The enabled state outlives a
power cycle (the period does not: after boot it is the declared one again).

Output goes through the unit's own transmit FIFO, which drains at the
line's rate (``baud``, 8N1: 10 bits an octet).  The FIFO holds
``config.tx_fifo_s`` seconds of line time (default 0.5 s, at least one
largest frame) or ``config.tx_fifo_bytes``; a packet that does not fit is
dropped and counted (``stats["tx_overflow"]``, and any housekeeping
parameter named ``<UNIT>_TX_DROPS``).  Science may fill only
``config.tx_science_share`` of it (default 0.75), so that verification
reports, events and housekeeping still get through when science outruns the
line.  A unit therefore never hands a link more than its line carries plus
one FIFO, whatever its science rate.

Faults (set by tests, ``hw_sim.assembly.Hardware.inject`` or the CLI):
``silent`` (stops answering until cleared), :meth:`crash` (stops answering
until the next power cycle), ``babble`` (garbage on the line instead of
packets, until cleared) and ``extra_load_w`` (draws more current).

Plausible values come from each parameter's ``sim`` hints in the dictionary:
``nominal`` and ``noise`` (Gaussian, from the seeded generator handed in),
``counter`` (increments per second), ``by_mode`` (value per mode).  A
command's ``effects`` set parameters from its arguments.  Reference payload
models subclass this and override :meth:`execute` and :meth:`param_source`
(or :meth:`hk_values`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol

import numpy as np

from fsw.core.node import Node
from fsw.core.pacing import LinePacer
from fsw.core.payloads import boot_mode_of
from fsw.core.pusgen import TmSource, Verifier
from fsw.core.timers import Periodic
from fsw.protocol.framing import frame
from fsw.dictionary import ArgumentError, Command, Dictionary, Parameter, System, TmPacket
from fsw.dictionary.codec import to_eng_scalar
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow

LINE = "line"
#: octets a frame adds to a packet (the attached sync marker)
FRAME_OVERHEAD = 4
#: how often a babbling unit writes a burst of garbage, and how much
BABBLE_PERIOD_S = 0.05
BABBLE_BURST = 64


class Rng(Protocol):
    """The part of :class:`random.Random` the models use (seeded by the adapter)."""

    def random(self) -> float: ...
    def gauss(self, mu: float, sigma: float) -> float: ...


class UnitFailure(Exception):
    """Raised by :meth:`UnitModel.execute`: the command fails with this PUS-1 code."""

    def __init__(self, code: str, stage: str = "start", data: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.stage = stage
        self.data = data


class UnitModel(Node):
    """A dictionary-driven simulated unit."""

    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        super().__init__(system.name.lower(), [LINE], dictionary.max_packet)
        self.dictionary = dictionary
        self.system = system
        self.rng = rng
        self._noise: Any = None
        self.tm = TmSource(dictionary, system.apid)
        self.verifier = Verifier(self.tm)
        self.mode_param = f"{system.name}_MODE"
        self.modes = system.modes
        self.mode = self.initial_mode()
        self.values: dict[str, Any] = {}
        self.powered = False
        self.boot_done = float("inf")
        self._power_requested = powered
        self._hk_timers: dict[int | None, Periodic] = {}
        self._hk_enabled: dict[int | None, bool] = {}
        self._hk_fired: dict[int | None, float] = {}     # when each structure's timer last fired
        self._hk_plans: dict[TmPacket, list[tuple[str, Callable[[float], Any]]]] = {}   # see hk_values
        self.clock_offset = 0.0        # payload clock minus true time, seconds
        self.last_sync: float | None = None
        self._time_codec: Any = None   # the TIME_REPORT layout, looked up at the first report
        self.drift_ppm = float(system.config.get("clock_drift_ppm", 20.0))
        self.silent = False            # fault: stops answering (until cleared)
        self.crashed = False           # fault: stops answering until the next power cycle
        self._babble = False           # fault: garbage on the line instead of packets
        self._babble_timer: Periodic | None = None
        self._extra_load_w = 0.0       # fault: extra current draw (a short), watts
        self._power_listeners: list[Callable[[float], None]] = []
        self.tc_unpowered_by_source: dict[int, int] = {}   # TCs lost while off or booting, by TC source id
        self._started = False
        self._power_gen = 0            # power-ons so far: a boot timer from an earlier one is void
        self._now = 0.0                # the latest time the unit was told (for send() without a time)
        cfg = system.config
        self.tx = LinePacer(system.baud)
        largest = dictionary.max_packet + FRAME_OVERHEAD
        if cfg.get("tx_fifo_bytes") is not None:
            self.tx_fifo_bytes = max(largest, int(cfg["tx_fifo_bytes"]))
        else:
            self.tx_fifo_bytes = max(largest, int(self.tx.bytes_per_second * float(cfg.get("tx_fifo_s", 0.5))))
        self.tx_science_share = float(cfg.get("tx_science_share", 0.75))
        if not 0.0 < self.tx_science_share <= 1.0:
            raise ValueError(f"{system.name}: config.tx_science_share must be in (0, 1]")
        self.stats = {"tc_received": 0, "tc_accepted": 0, "tc_rejected": 0, "ignored_unpowered": 0,
                      "tc_unpowered": 0, "time_syncs": 0, "hk_sent": 0, "science_sent": 0, "science_bytes": 0,
                      "foreign": 0, "tx_packets": 0, "tx_bytes": 0, "tx_overflow": 0, "tx_overflow_bytes": 0,
                      "babble_bytes": 0, "power_cycles": 0}

    # -- configuration -------------------------------------------------------------
    def initial_mode(self) -> str:
        """The mode the unit reports after boot: ``config.boot_mode``, else the first mode that is not OFF."""
        return boot_mode_of(self.system)

    @property
    def hk_packets(self) -> list[TmPacket]:
        return [p for p in self.system.telemetry if p.category == "hk"]

    # -- power -------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Called by a runner; a second call (a new runner taking over the same hardware) does nothing."""
        self._now = now
        if self._started:
            return
        self._started = True
        if self._power_requested:
            self.set_power(True, now)

    def receive(self, port: str, data: bytes, now: float) -> None:
        self._now = now
        super().receive(port, data, now)

    def run_due(self, now: float) -> None:
        self._now = now
        super().run_due(now)

    def set_power(self, on: bool, now: float) -> None:
        self._now = now
        if on == self.powered:
            return
        self.powered = on
        # the FIFO empties when power goes (or comes): what was queued is lost
        self.tx.busy_until = now
        if on:
            self.stats["power_cycles"] += 1
            self.crashed = False
            self.boot_done = now + self.system.boot_time_s
            self.mode = self.initial_mode()
            self.values = {}
            self.clock_offset = 0.0
            self.last_sync = None
            self._power_gen += 1
            self.timers.call_at(self.boot_done, lambda t, g=self._power_gen: self._booted(t, g))
        else:
            self.boot_done = float("inf")
            self.mode = "OFF" if "OFF" in self.modes else self.mode
            for t in self._hk_timers.values():
                t.cancel()
            self._hk_timers.clear()
            self.on_power_off(now)
        self._power_changed(now)

    def answering(self, now: float) -> bool:
        return self.powered and now >= self.boot_done and not (self.silent or self.crashed or self._babble)

    # -- faults -----------------------------------------------------------------------------
    def crash(self, now: float) -> None:
        """A software crash: the unit stops answering until its power is cycled."""
        self._now = now
        self.crashed = True

    @property
    def babble(self) -> bool:
        return self._babble

    @babble.setter
    def babble(self, on: bool) -> None:
        """Garbage instead of packets while powered (a crashed unit printing junk); cleared by setting False."""
        on = bool(on)
        if on == self._babble:
            return
        self._babble = on
        if on:
            self._babble_timer = self.timers.every(BABBLE_PERIOD_S, self._babble_burst, self._now)
        elif self._babble_timer is not None:
            self._babble_timer.cancel()
            self._babble_timer = None

    def _babble_burst(self, now: float) -> None:
        if not self.powered:
            return
        junk = bytes(int(self.rng.random() * 256) for _ in range(BABBLE_BURST))
        if self._fifo_room(now, False) >= len(junk):
            self.tx.reserve(len(junk), now)
            self.stats["babble_bytes"] += len(junk)
            self._out.append((LINE, junk))

    def _booted(self, now: float, gen: int | None = None) -> None:
        if not self.powered or (gen is not None and gen != self._power_gen):
            return
        for pkt in self.hk_packets:
            period = pkt.period_s or self.system.hk_period_s
            timer = self.timers.every(period, lambda t, p=pkt: self._send_hk(p, t), now)
            self._hk_timers[pkt.sid] = timer
            self._hk_fired.pop(pkt.sid, None)
            if not self._hk_enabled.setdefault(pkt.sid, True):
                timer.cancel()  # disabled before the power cycle: it stays so, on this boot's grid
        self.on_boot(now)

    def on_boot(self, now: float) -> None:
        """Subclass hook: the unit finished booting."""

    def on_power_off(self, now: float) -> None:
        """Subclass hook: power was removed (stop activities)."""

    def power_w(self, now: float) -> float:
        """Power drawn from the 28 V line in the current mode (booting draws the boot mode's), plus any fault load."""
        if not self.powered:
            return 0.0
        return float(self.system.power_w.get(self.mode, 0.0)) + self._extra_load_w

    @property
    def extra_load_w(self) -> float:
        return self._extra_load_w

    @extra_load_w.setter
    def extra_load_w(self, watts: float) -> None:
        self._extra_load_w = float(watts)
        self._power_changed(self._now)

    def add_power_listener(self, fn: Callable[[float], None]) -> None:
        """``fn(now)`` whenever the power this unit draws may have changed (mode, power, fault load).

        Complete only for units whose :meth:`power_w` is this class's (power follows the mode); the PDU
        samples any other load periodically instead.
        """
        self._power_listeners.append(fn)

    def _power_changed(self, now: float) -> None:
        for fn in self._power_listeners:
            fn(now)

    # -- time ----------------------------------------------------------------------------
    def local_time(self, now: float) -> float:
        """The unit's own clock: true time plus its offset, drifting since the last sync."""
        since = now - (self.last_sync if self.last_sync is not None else 0.0)
        return now + self.clock_offset + since * self.drift_ppm * 1e-6

    def _time_sync(self, tm: PusTm, now: float) -> None:
        try:
            if self._time_codec is None:
                self._time_codec = self.dictionary.codec(self.dictionary.packet("TIME_REPORT"))
            vals = self._time_codec.decode(tm.source_data)
        except Exception:  # noqa: BLE001 - a malformed time report is ignored, like on real hardware
            self.stats["foreign"] += 1
            return
        # the report names the time of the tone; it arrives one frame-time later on the line
        latency = (len(tm.source_data) + 21 + 4) * 10.0 / self.system.baud
        self.clock_offset = (vals["TONE_TIME"] + latency) - now
        self.last_sync = now
        self.stats["time_syncs"] += 1

    # -- receive -------------------------------------------------------------------------
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        if not self.answering(now):
            self.stats["ignored_unpowered"] += 1
            if not self.powered or now < self.boot_done:
                pkt = parse_packet_nothrow(packet)
                if isinstance(pkt, PusTc):  # a telecommand for a unit that is off or booting is lost
                    self.stats["tc_unpowered"] += 1
                    self.tc_unpowered_by_source[pkt.source_id] = self.tc_unpowered_by_source.get(pkt.source_id, 0) + 1
            return
        pkt = parse_packet_nothrow(packet)
        if isinstance(pkt, PusTm):
            if pkt.service == 9 and pkt.subservice == 2:
                self._time_sync(pkt, now)
            else:
                self.stats["foreign"] += 1
            return
        if not isinstance(pkt, PusTc) or pkt.apid != self.system.apid:
            self.stats["foreign"] += 1
            return
        self.stats["tc_received"] += 1
        self.handle_tc(pkt, now)

    # -- output: the transmit FIFO ------------------------------------------------------------
    def _fifo_room(self, now: float, science: bool) -> int:
        """Octets that still fit in the FIFO now (science may use only its share of it)."""
        queued = self.tx.backlog(now) * self.tx.bytes_per_second
        cap = self.tx_fifo_bytes * (self.tx_science_share if science else 1.0)
        return int(cap - queued)

    def fifo_level(self, now: float) -> int:
        """Octets waiting in the transmit FIFO."""
        return int(round(self.tx.backlog(now) * self.tx.bytes_per_second))

    def send(self, packet: bytes | None, now: float | None = None, science: bool = False) -> bool:
        """Queue a packet for the line; False (and counted) when the FIFO has no room for it."""
        if packet is None:
            return False
        t = self._now if now is None else now
        n = len(packet) + FRAME_OVERHEAD
        if self._fifo_room(t, science) < n:
            self.stats["tx_overflow"] += 1
            self.stats["tx_overflow_bytes"] += n
            return False
        self.tx.reserve(n, t)
        self.stats["tx_packets"] += 1
        self.stats["tx_bytes"] += n
        self.send_packet(LINE, packet)
        return True

    @property
    def noise(self) -> Any:
        """A numpy generator for whole blocks of science samples, seeded from the injected ``rng``.

        Created at the first science sample, so a run stays the same for a given seed.
        """
        if self._noise is None:
            self._noise = np.random.Generator(np.random.PCG64(int(self.rng.random() * 2**53)))
        return self._noise

    def send_science(self, pkt: TmPacket, values: dict[str, Any], now: float) -> bool:
        """Build and queue one science packet (dropped and counted when the FIFO is too full)."""
        packet = self.tm.packet(pkt, values, self.local_time(now))
        if self.send(packet, now, science=True):
            self.stats["science_sent"] += 1
            self.stats["science_bytes"] += len(packet)
            return True
        return False

    def handle_tc(self, tc: PusTc, now: float) -> None:
        t = self.local_time(now)
        cmd = self.dictionary.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None:
            code = "UNKNOWN_FUNCTION" if tc.service == 8 else "UNKNOWN_SERVICE"
            self.stats["tc_rejected"] += 1
            self.send(self.verifier.reject(tc, code, t))
            return
        try:
            args = self.dictionary.args_codec(cmd).decode(tc.app_data)
        except ArgumentError as exc:
            self.stats["tc_rejected"] += 1
            code = exc.code if exc.code in self.dictionary.failure_codes.values else "ARG_OUT_OF_RANGE"
            self.send(self.verifier.reject(tc, code, t))
            return
        if cmd.modes and self.mode not in cmd.modes:
            self.stats["tc_rejected"] += 1
            self.send(self.verifier.reject(tc, "WRONG_MODE", t, self.modes.index(self.mode) if self.mode in
                                           self.modes else 0))
            return
        try:
            self.check(cmd, args, now)
        except UnitFailure as exc:
            self.stats["tc_rejected"] += 1
            self.send(self.verifier.reject(tc, exc.code, t, exc.data))
            return
        self.stats["tc_accepted"] += 1
        self.send(self.verifier.accept(tc, t))
        try:
            done = self.execute(cmd, args, tc, now)
        except UnitFailure as exc:
            if exc.stage == "start":
                self.send(self.verifier.start_fail(tc, exc.code, t, exc.data))
            else:
                self.send(self.verifier.start(tc, t))
                self.send(self.verifier.complete_fail(tc, exc.code, t, exc.data))
            return
        self.send(self.verifier.start(tc, t))
        if done is None or done <= now:
            self.send(self.verifier.complete(tc, t))
        else:
            self.timers.call_at(done, lambda n, tc=tc, g=self._power_gen: self._complete_later(tc, n, g))

    def _complete_later(self, tc: PusTc, now: float, gen: int | None = None) -> None:
        # a command under way when the power went is lost with it: no report after the next boot
        if self.answering(now) and (gen is None or gen == self._power_gen):
            self.complete(tc, now)

    def complete(self, tc: PusTc, now: float) -> None:
        """A command whose :meth:`execute` returned a completion time reached it: report completion.

        Subclasses may override to report a failure instead (``self.verifier.complete_fail``).
        """
        self.send(self.verifier.complete(tc, self.local_time(now)))

    # -- behaviour, overridable ---------------------------------------------------------
    def check(self, cmd: Command, args: dict, now: float) -> None:
        """Acceptance checks beyond the dictionary's; raise :class:`UnitFailure`."""

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        """Carry out a command.  Return ``None`` (done now) or the completion time."""
        name = cmd.name
        if name == "PING":
            self.send(self.tm.make(17, 2, b"", self.local_time(now)))
            return None
        if name in ("HK_ENABLE", "HK_DISABLE", "HK_SET_PERIOD"):
            sid = args["sid"]
            timer = self._hk_timers.get(sid)
            if timer is None:
                raise UnitFailure("UNKNOWN_ID", data=sid)
            if name == "HK_SET_PERIOD":
                timer.set_period(args["period_ms"] / 1000.0, now)   # a new grid: next report a period from now
            else:
                self._hk_enabled[sid] = name == "HK_ENABLE"
            # a disabled structure's timer does not run (a runner in simulated time need not wake for it);
            # enabled again, it resumes on its grid, as if it had run all along without reporting: from the
            # first slot not before now, unless that slot's report already went (disabled and enabled at it)
            if self._hk_enabled.get(sid, True):
                timer.resume(now, self._hk_fired.get(sid))
            else:
                timer.cancel()
            return None
        for param, source in cmd.effects.items():
            value = args[source] if isinstance(source, str) and source in args else source
            self.set_value(param, value, now)
        return None

    def set_value(self, param: str, value: Any, now: float) -> None:
        if param == self.mode_param:
            self.set_mode(str(value), now)
        else:
            self.values[param] = value

    def set_mode(self, mode: str, now: float) -> None:
        if mode not in self.modes:
            raise UnitFailure("ARG_OUT_OF_RANGE")
        changed = mode != self.mode
        old = self.mode
        self.mode = mode
        if changed:
            self.on_mode_change(old, mode, now)
            self._power_changed(now)
            evt = f"{self.system.name}_MODE_CHANGED"
            if any(e.name == evt for e in self.system.events):
                e = self.system.event(evt)
                self.send(self.tm.event(self.system.name, evt, self.local_time(now),
                                        **{e.args[0].name: mode}) if e.args else
                          self.tm.event(self.system.name, evt, self.local_time(now)))

    def on_mode_change(self, old: str, new: str, now: float) -> None:
        """Subclass hook: the mode changed (before the mode-changed event is sent)."""

    def emit(self, name: str, now: float, **args: Any) -> None:
        self.send(self.tm.event(self.system.name, name, self.local_time(now), **args))

    # -- housekeeping ----------------------------------------------------------------------
    def _send_hk(self, pkt: TmPacket, now: float) -> None:
        self._hk_fired[pkt.sid] = now
        if not self.answering(now):   # the timer of a disabled structure is not running (see execute)
            return
        self.stats["hk_sent"] += 1
        self.send(self.tm.packet(pkt, self.hk_values(pkt, now), self.local_time(now)))

    def hk_values(self, pkt: TmPacket, now: float) -> dict[str, Any]:
        """The values of one report: each parameter from its source (:meth:`param_source`), in layout order
        (so the noise draws come in the same order every time)."""
        plan = self._hk_plans.get(pkt)
        if plan is None:
            plan = self._hk_plans[pkt] = [(p.name, self.param_source(p)) for p in pkt.params]
        return {name: source(now) for name, source in plan}

    def param_value(self, p: Parameter, now: float) -> Any:
        """The value a report would carry for ``p`` now (one parameter; reports use :meth:`hk_values`)."""
        return self.param_source(p)(now)

    def param_source(self, p: Parameter) -> Callable[[float], Any]:
        """Where ``p`` takes its value from: a function of the time, chosen once per parameter.

        :meth:`hk_values` asks once per packet and keeps the answers, so the work of telling parameters
        apart is not repeated in every report.  A source must therefore read the unit's state when called,
        never copy it.  Subclasses answer for the parameters they model and hand the rest to this one:
        the mode, ``<UNIT>_TX_DROPS``, ``<UNIT>_TIME_ERR``, then a value a command's ``effects`` set, then
        the ``sim`` hints.
        """
        name = p.name
        if name == self.mode_param:
            return lambda now: self.mode
        if name.endswith("_TX_DROPS"):
            return lambda now: self.stats["tx_overflow"]
        if name.endswith("_TIME_ERR"):
            return lambda now: int((self.local_time(now) - now) * 1e6) if self.last_sync is not None else 0
        sim = p.sim
        by_mode = dict(sim.get("by_mode") or {})
        base: Callable[[float], Any] | None = None
        const: Any = 0
        if "counter" in sim:
            rate = float(sim["counter"])

            def counter(now: float) -> Any:
                return int(max(0.0, now - (self.boot_done if self.boot_done != math.inf else now)) * rate)
            base = counter
        elif p.enum is not None:
            const = to_eng_scalar(p, min(p.enum.labels))
        elif "nominal" in sim:
            nominal = float(sim["nominal"])
            noise = float(sim.get("noise", 0.0))
            lim = p.limits
            # a healthy unit stays inside its warning limits
            low = lim.warn_low if lim is not None else None
            high = lim.warn_high if lim is not None else None

            def nominal_value(now: float) -> Any:
                v = nominal
                if noise:
                    v += self.rng.gauss(0.0, noise)
                if low is not None:
                    v = max(v, low)
                if high is not None:
                    v = min(v, high)
                return v
            if noise:
                base = nominal_value
            else:
                const = nominal_value(0.0)

        def source(now: float) -> Any:
            values = self.values
            if name in values:
                return values[name]
            if by_mode and self.mode in by_mode:
                return by_mode[self.mode]
            return const if base is None else base(now)
        return source
