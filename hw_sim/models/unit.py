"""Simulated units driven by the dictionary alone.

:class:`UnitModel` is one device on one serial line (port ``"line"``).  It
answers the commands its dictionary entry declares with PUS-1 verification,
sends its housekeeping at the declared periods with plausible values, and
follows the lander's time-at-the-tone reports.  Power comes from outside
(:meth:`set_power`, driven by the PDU model or left on): an unpowered unit
is silent, and after switch-on it boots for ``boot_time_s`` before it
answers.

Plausible values come from each parameter's ``sim`` hints in the dictionary:
``nominal`` and ``noise`` (Gaussian, from the seeded generator handed in),
``counter`` (increments per second), ``by_mode`` (value per mode).  A
command's ``effects`` set parameters from its arguments.  Reference payload
models subclass this and override :meth:`execute` and :meth:`hk_values`.
"""

from __future__ import annotations

from typing import Any, Protocol

from fsw.core.node import Node
from fsw.core.pusgen import TmSource, Verifier
from fsw.core.timers import Periodic
from fsw.dictionary import ArgumentError, Command, Dictionary, System, TmPacket
from fsw.dictionary.codec import to_eng_scalar
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow

LINE = "line"


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
        self.clock_offset = 0.0        # payload clock minus true time, seconds
        self.last_sync: float | None = None
        self.drift_ppm = float(system.config.get("clock_drift_ppm", 20.0))
        self.silent = False            # fault: stops answering
        self.babble = False            # fault: sends garbage (see hw_sim.faults)
        self.stats = {"tc_received": 0, "tc_accepted": 0, "tc_rejected": 0, "ignored_unpowered": 0,
                      "time_syncs": 0, "hk_sent": 0, "science_sent": 0, "science_bytes": 0, "foreign": 0}

    # -- configuration -------------------------------------------------------------
    def initial_mode(self) -> str:
        """The mode the unit reports after boot: the first mode that is not OFF."""
        for m in self.modes:
            if m != "OFF":
                return m
        return self.modes[0] if self.modes else ""

    @property
    def hk_packets(self) -> list[TmPacket]:
        return [p for p in self.system.telemetry if p.category == "hk"]

    # -- power -------------------------------------------------------------------------
    def start(self, now: float) -> None:
        if self._power_requested:
            self.set_power(True, now)

    def set_power(self, on: bool, now: float) -> None:
        if on == self.powered:
            return
        self.powered = on
        if on:
            self.boot_done = now + self.system.boot_time_s
            self.mode = self.initial_mode()
            self.values = {}
            self.clock_offset = 0.0
            self.last_sync = None
            self.timers.call_at(self.boot_done, self._booted)
        else:
            self.boot_done = float("inf")
            self.mode = "OFF" if "OFF" in self.modes else self.mode
            for t in self._hk_timers.values():
                t.cancel()
            self._hk_timers.clear()
            self.on_power_off(now)

    def answering(self, now: float) -> bool:
        return self.powered and now >= self.boot_done and not self.silent

    def _booted(self, now: float) -> None:
        if not self.powered:
            return
        for pkt in self.hk_packets:
            period = pkt.period_s or self.system.hk_period_s
            self._hk_enabled.setdefault(pkt.sid, True)
            self._hk_timers[pkt.sid] = self.timers.every(period, lambda t, p=pkt: self._send_hk(p, t), now)
        self.on_boot(now)

    def on_boot(self, now: float) -> None:
        """Subclass hook: the unit finished booting."""

    def on_power_off(self, now: float) -> None:
        """Subclass hook: power was removed (stop activities)."""

    def power_w(self, now: float) -> float:
        """Power drawn from the 28 V line in the current mode (boot counts as the first powered mode)."""
        if not self.powered:
            return 0.0
        return float(self.system.power_w.get(self.mode, 0.0))

    # -- time ----------------------------------------------------------------------------
    def local_time(self, now: float) -> float:
        """The unit's own clock: true time plus its offset, drifting since the last sync."""
        since = now - (self.last_sync if self.last_sync is not None else 0.0)
        return now + self.clock_offset + since * self.drift_ppm * 1e-6

    def _time_sync(self, tm: PusTm, now: float) -> None:
        try:
            vals = self.dictionary.codec(self.dictionary.packet("TIME_REPORT")).decode(tm.source_data)
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

    def send(self, packet: bytes | None) -> None:
        if packet is not None:
            self.send_packet(LINE, packet)

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
            self.timers.call_at(done, lambda n, tc=tc: self._complete_later(tc, n))

    def _complete_later(self, tc: PusTc, now: float) -> None:
        if self.answering(now):
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
            if sid not in self._hk_timers:
                raise UnitFailure("UNKNOWN_ID", data=sid)
            if name == "HK_SET_PERIOD":
                self._hk_timers[sid].set_period(args["period_ms"] / 1000.0, now)
            else:
                self._hk_enabled[sid] = name == "HK_ENABLE"
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
        self.mode = mode
        if changed:
            evt = f"{self.system.name}_MODE_CHANGED"
            if any(e.name == evt for e in self.system.events):
                e = self.system.event(evt)
                self.send(self.tm.event(self.system.name, evt, self.local_time(now),
                                        **{e.args[0].name: mode}) if e.args else
                          self.tm.event(self.system.name, evt, self.local_time(now)))

    def emit(self, name: str, now: float, **args: Any) -> None:
        self.send(self.tm.event(self.system.name, name, self.local_time(now), **args))

    # -- housekeeping ----------------------------------------------------------------------
    def _send_hk(self, pkt: TmPacket, now: float) -> None:
        if not self.answering(now) or not self._hk_enabled.get(pkt.sid, True):
            return
        self.stats["hk_sent"] += 1
        self.send(self.tm.packet(pkt, self.hk_values(pkt, now), self.local_time(now)))

    def hk_values(self, pkt: TmPacket, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in pkt.params:
            out[p.name] = self.param_value(p, now)
        return out

    def param_value(self, p: Any, now: float) -> Any:
        if p.name == self.mode_param:
            return self.mode
        if p.name.endswith("_TIME_ERR"):
            return int((self.local_time(now) - now) * 1e6) if self.last_sync is not None else 0
        if p.name in self.values:
            return self.values[p.name]
        sim = p.sim
        if "by_mode" in sim and self.mode in sim["by_mode"]:
            return sim["by_mode"][self.mode]
        if "counter" in sim:
            return int(max(0.0, now - (self.boot_done if self.boot_done != float("inf") else now))
                       * float(sim["counter"]))
        if p.enum is not None:
            return to_eng_scalar(p, min(p.enum.labels))
        if "nominal" in sim:
            v = float(sim["nominal"])
            noise = float(sim.get("noise", 0.0))
            if noise:
                v += self.rng.gauss(0.0, noise)
            lim = p.limits
            if lim is not None:  # a healthy unit stays inside its warning limits
                if lim.warn_low is not None:
                    v = max(v, lim.warn_low)
                if lim.warn_high is not None:
                    v = min(v, lim.warn_high)
            return v
        return 0
