"""The payload manager's flight software, as one sans-I/O node.

Ports: ``ground`` (the space link, or a bench serial line to the ground tool)
and one per unit, named by the unit's ``port`` in the dictionary.

What it does with a packet:

* a TC from ground addressed to the lander's APID is dispatched here, with
  PUS-1 verification (acceptance, start, completion, and failures with a
  code);
* a TC addressed to a unit's APID is routed, unchanged, to that unit's port,
  after the route gates (components such as the payload manager may refuse
  it: a payload that is off gets a PUS-1 failure from the lander);
* a TM from a unit, carrying that unit's APID, is forwarded to ground and
  shown to the listeners (heartbeat monitoring, deploy telemetry checks ...);
* anything else is refused and counted on its port.

Services here: PUS 1 (verification), PUS 3 (housekeeping: LANDER_HK and one
LINK_HK per port, plus whatever components register), PUS 5 (events), PUS 9
(time at the tone to every unit once a second) and PUS 17 (connection test).
Components (payload manager, deploy manager, scheduler ...) plug in through
:meth:`FlightSoftware.register_command`, :meth:`add_route_gate`,
:meth:`add_tm_listener` and :meth:`FlightSoftware.hk.register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..dictionary import ArgumentError, Command, Dictionary, System
from ..protocol.framing import Dropped
from ..protocol.pus import PusTc, PusTm, parse_packet_nothrow
from .deploy import DeployManager
from .node import Node
from .phases import PhaseManager
from .payloads import ANSWERING as ANSWERING_STATES
from .payloads import POWERED as POWERED_STATES
from .payloads import PayloadManager
from .planning import ActivityPlanner
from .power import PowerController
from .pusgen import TmSource, Verifier
from .schedule import ScheduleService
from .sequences import Sequencer
from .spacelink import install_space_link, space_link_config
from .state import MemoryStore, StateStore, load_record, save_record
from .timers import Periodic


class CommandFailure(Exception):
    """Raised by a command handler: the TC fails with this PUS-1 failure code."""

    def __init__(self, code: str, data: int = 0, stage: str = "start", message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.data = data
        self.stage = stage  # "accept", "start" or "complete"


class Pending:
    """Returned by a handler whose command completes later; call :meth:`complete` or :meth:`fail`."""

    def __init__(self, fsw: "FlightSoftware", tc: PusTc) -> None:
        self._fsw = fsw
        self.tc = tc
        self.done = False

    def progress(self, step: int, now: float) -> None:
        if not self.done:
            self._fsw._emit_report(self._fsw.verifier.progress(self.tc, step, now))

    def complete(self, now: float) -> None:
        if not self.done:
            self.done = True
            self._fsw._emit_report(self._fsw.verifier.complete(self.tc, now))

    def fail(self, code: str, now: float, data: int = 0) -> None:
        if not self.done:
            self.done = True
            self._fsw._emit_report(self._fsw.verifier.complete_fail(self.tc, code, now, data))


#: handler(cmd, args, tc, now) -> None (completed) | Pending (completes later); raise CommandFailure to fail
Handler = Callable[[Command, dict, PusTc, float], "Pending | None"]
#: gate(system, tc, now) -> failure code name to refuse the TC, or None to let it through
RouteGate = Callable[[System, PusTc, float], "str | None"]
#: listener(system, tm, now) for every valid TM a unit sends
TmListener = Callable[[System, PusTm, float], None]
#: consumer(system, tm, now) -> True to keep a unit's TM on board (e.g. reports to the flight software's own TCs)
TmConsumer = Callable[[System, PusTm, float], bool]
#: listener(system, tc, now) for every TC routed to a unit (after the gates let it through)
RouteListener = Callable[[System, PusTc, float], None]


class Housekeeping:
    """PUS 3: periodic reports from providers, switchable and re-timable by SID."""

    @dataclass
    class Entry:
        packet: Any
        provider: Callable[[float], "Mapping[str, Any] | list[Mapping[str, Any]]"]
        enabled: bool = True
        timer: Periodic | None = None

    def __init__(self, fsw: "FlightSoftware") -> None:
        self.fsw = fsw
        self.entries: dict[int, Housekeeping.Entry] = {}

    def register(self, packet_name: str, provider: Callable[[float], Any], enabled: bool = True) -> None:
        """``provider(now)`` returns the values of one report, or a list of them (one packet each)."""
        pkt = self.fsw.dictionary.lander.packet(packet_name)
        if pkt.sid is None:
            raise ValueError(f"{packet_name} has no structure id")
        if pkt.sid in self.entries:
            raise ValueError(f"housekeeping structure {pkt.sid} registered twice")
        self.entries[pkt.sid] = Housekeeping.Entry(pkt, provider, enabled)

    def start(self, now: float) -> None:
        for sid, e in self.entries.items():
            period = e.packet.period_s or self.fsw.dictionary.lander.hk_period_s
            e.timer = self.fsw.timers.every(period, lambda t, sid=sid: self._report(sid, t), now + period)

    def _report(self, sid: int, now: float) -> None:
        e = self.entries[sid]
        if not e.enabled:
            return
        self.send_now(sid, now)

    def send_now(self, sid: int, now: float) -> None:
        e = self.entries[sid]
        values = e.provider(now)
        for v in values if isinstance(values, list) else [values]:
            self.fsw.send_tm(self.fsw.tm.packet(e.packet, v, now))

    def set_period(self, sid: int, period: float, now: float) -> None:
        e = self.entries[sid]
        if e.timer is not None:
            e.timer.set_period(period, now)

    def scale_periods(self, factor: float, now: float) -> None:
        """Mission phases slow or speed up all housekeeping (e.g. a heartbeat in cruise)."""
        for e in self.entries.values():
            base = e.packet.period_s or self.fsw.dictionary.lander.hk_period_s
            if e.timer is not None:
                e.timer.set_period(base * factor, now)


@dataclass
class Counters:
    tc_accepted: int = 0
    tc_rejected: int = 0
    tc_routed: int = 0
    tm_forwarded: int = 0
    events_sent: int = 0
    tm_unsent: int = 0   # telemetry produced while the ground link was down (counted, not silently lost)
    extra: dict = field(default_factory=dict)


class FlightSoftware(Node):
    """The whole payload manager; components attach to it."""

    GROUND = "ground"

    def __init__(self, dictionary: Dictionary, store: StateStore | None = None,
                 time_report_period: float = 1.0, initial_phase: str = "PRELAUNCH") -> None:
        self.dictionary = dictionary
        self.lander = dictionary.lander
        self.units = tuple(s for s in dictionary.systems if s.kind != "lander")
        super().__init__("fsw", [self.GROUND] + [u.port for u in self.units], dictionary.max_packet)
        self.store: StateStore = store if store is not None else MemoryStore()
        self.tm = TmSource(dictionary, self.lander.apid)
        # time reports to the units count apart: the ground sees the lander's packets without holes, so the
        # space link's ground can tell a lost packet from one that was never meant for it
        self._tone_tm = TmSource(dictionary, self.lander.apid)
        self.verifier = Verifier(self.tm)
        self.counters = Counters()
        self.hk = Housekeeping(self)
        self.mode = "NOMINAL"
        self.started_at = 0.0
        self.restarts = 0
        self.time_report_period = time_report_period
        self._handlers: dict[str, Handler] = {}
        self._gates: list[RouteGate] = []
        self._tm_listeners: list[TmListener] = []
        self._tm_consumers: list[TmConsumer] = []
        self._route_listeners: list[RouteListener] = []
        self._link_listeners: list[Callable[[str, bool, float], None]] = []
        self._start_hooks: list[Callable[[float], None]] = []
        self._unit_by_port = {u.port: u for u in self.units}
        #: the space link on the ground port (SpaceLinkService), or None for ASM packet framing
        self.ground_link: Any = None
        self._unit_by_apid = {u.apid: u for u in self.units}
        self._drop_seen: dict[str, tuple[int, int]] = {p: (0, 0) for p in self.ports}
        self.port_index = dictionary.enums["PORT"].values
        self._time_report = dictionary.packet("TIME_REPORT")
        self.register_command("PING", self._cmd_ping)
        self.register_command("HK_ENABLE", self._cmd_hk_enable)
        self.register_command("HK_DISABLE", self._cmd_hk_disable)
        self.register_command("HK_SET_PERIOD", self._cmd_hk_period)
        self.register_command("LANDER_RESET_COUNTERS", self._cmd_reset_counters)
        self.hk.register("LANDER_HK", self._lander_hk)
        self.hk.register("LINK_HK", self._link_hk)
        self.phases = PhaseManager(self, initial_phase)
        self._init_unit_hk()

    # -- plug-in points ---------------------------------------------------------
    def register_command(self, name: str, handler: Handler) -> None:
        self.lander.command(name)  # raises KeyError for a name the dictionary does not declare
        if name in self._handlers:
            raise ValueError(f"command {name} already has a handler")
        self._handlers[name] = handler

    def add_route_gate(self, gate: RouteGate) -> None:
        self._gates.append(gate)

    def add_tm_listener(self, listener: TmListener) -> None:
        self._tm_listeners.append(listener)

    def add_tm_consumer(self, consumer: TmConsumer) -> None:
        """``consumer(unit, tm, now)`` returning True keeps the TM on board (not forwarded to ground)."""
        self._tm_consumers.append(consumer)

    def add_route_listener(self, listener: RouteListener) -> None:
        """``listener(unit, tc, now)`` for each TC actually routed to a unit (the payload manager's time-outs)."""
        self._route_listeners.append(listener)

    def add_link_listener(self, listener: Callable[[str, bool, float], None]) -> None:
        self._link_listeners.append(listener)

    def on_start(self, hook: Callable[[float], None]) -> None:
        self._start_hooks.append(hook)

    def unit(self, name: str) -> System:
        return self.dictionary.system(name)

    # -- life cycle -------------------------------------------------------------
    def start(self, now: float) -> None:
        self.started_at = now
        rec = load_record(self.store, "fsw") or {}
        self.restarts = int(rec.get("restarts", 0)) + 1
        save_record(self.store, "fsw", {"restarts": self.restarts})
        self.hk.start(now)
        self._tone = self.timers.every(self.time_report_period, self._time_at_the_tone, now + self.time_report_period)
        self._tone_last: float | None = None
        self.payload_power_changed(now)
        for hook in self._start_hooks:
            hook(now)
        self.emit("BOOT", now, BOOT_RESTARTS=min(self.restarts, 0xFFFF))

    def stop(self, now: float) -> None:
        """An orderly shutdown: the space link makes its packet stores durable."""
        if self.ground_link is not None:
            self.ground_link.stop(now)

    # -- the ground port through the space link (when ground_link is set) -----------
    def receive(self, port: str, data: bytes, now: float) -> None:
        gl = self.ground_link
        if gl is None or port != self.GROUND:
            return super().receive(port, data, now)
        st = self.port_stats[port]
        st.rx_bytes += len(data)
        st.last_rx = now
        gl.receive(data, now)
        self._ground_link_output()

    def line_idle(self, port: str, now: float) -> None:
        gl = self.ground_link
        if gl is None or port != self.GROUND:
            return super().line_idle(port, now)
        gl.line_idle(now)
        self._ground_link_output()

    def send_packet(self, port: str, packet: bytes) -> None:
        gl = self.ground_link
        if gl is None or port != self.GROUND:
            return super().send_packet(port, packet)
        st = self.port_stats[port]
        st.tx_packets += 1
        st.tx_bytes += len(packet)
        gl.send(packet)

    def next_deadline(self) -> float:
        t = self.timers.next_deadline()
        gl = self.ground_link
        if gl is not None:
            d = gl.next_deadline()
            if d < t:
                t = d
        return t

    def run_due(self, now: float) -> None:
        self.timers.run_due(now)
        gl = self.ground_link
        if gl is not None:
            gl.run_due(now)
            self._ground_link_output()

    def _ground_link_output(self) -> None:
        for cadu in self.ground_link.take_output():
            self._out.append((self.GROUND, cadu))

    # -- output helpers ----------------------------------------------------------
    def send_tm(self, packet: bytes) -> None:
        if not self.port_stats[self.GROUND].up:
            self.counters.tm_unsent += 1
        self.send_packet(self.GROUND, packet)

    def _emit_report(self, packet: bytes | None) -> None:
        if packet is not None:
            self.send_tm(packet)

    def emit(self, name: str, now: float, **args: Any) -> None:
        """Send a lander event (PUS 5)."""
        self.counters.events_sent += 1
        self.send_tm(self.tm.event(self.lander.name, name, now, **args))

    def send_to_unit(self, unit: System, packet: bytes) -> None:
        self.send_packet(unit.port, packet)

    # -- receive path --------------------------------------------------------------
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        # the port's deframer checked the CRC of exactly these bytes (unless it was built without the check)
        pkt = parse_packet_nothrow(packet, not self.deframers[port].check_crc)
        if isinstance(pkt, Exception):
            self.port_stats[port].rejected += 1
            return
        if port == self.GROUND:
            if isinstance(pkt, PusTc):
                self.handle_tc(pkt, now)
            else:
                self.port_stats[port].rejected += 1
            return
        unit = self._unit_by_port[port]
        if not isinstance(pkt, PusTm) or pkt.apid != unit.apid:
            self.port_stats[port].rejected += 1
            return
        for listener in self._tm_listeners:
            listener(unit, pkt, now)
        for consumer in self._tm_consumers:
            if consumer(unit, pkt, now):
                return
        self.counters.tm_forwarded += 1
        self.send_tm(packet)

    def handle_tc(self, tc: PusTc, now: float) -> None:
        """Route or dispatch a telecommand (from ground, or released by the onboard scheduler)."""
        if tc.apid == self.lander.apid:
            self._dispatch(tc, now)
            return
        unit = self._unit_by_apid.get(tc.apid)
        if unit is None:
            self._reject(tc, "ILLEGAL_APID", now)
            return
        if not self.port_stats[unit.port].up:
            self._reject(tc, "LINK_DOWN", now)
            return
        for gate in self._gates:
            code = gate(unit, tc, now)
            if code is not None:
                self._reject(tc, code, now)
                return
        self.counters.tc_routed += 1
        self.send_to_unit(unit, tc.pack())
        for listener in self._route_listeners:
            listener(unit, tc, now)

    def _reject(self, tc: PusTc, code: str, now: float, data: int = 0) -> None:
        self.counters.tc_rejected += 1
        self.send_tm(self.verifier.reject(tc, code, now, data))
        self.emit("TC_REJECTED", now, REJ_APID=tc.apid, REJ_SERVICE=tc.service, REJ_SUBSERVICE=tc.subservice,
                  REJ_CODE=code)

    def _dispatch(self, tc: PusTc, now: float) -> None:
        cmd = self.dictionary.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data)
        if cmd is None:
            known_service = any(c.service == tc.service and c.subservice == tc.subservice
                                for c in self.lander.commands)
            self._reject(tc, "UNKNOWN_FUNCTION" if known_service else "UNKNOWN_SERVICE", now)
            return
        handler = self._handlers.get(cmd.name)
        if handler is None:
            self._reject(tc, "UNKNOWN_FUNCTION", now)
            return
        try:
            # a raw command's handler parses its own variable-length data (after the function id, if any)
            args = ({"raw": tc.app_data[0 if cmd.function_id is None else 2:]} if cmd.raw
                    else self.dictionary.args_codec(cmd).decode(tc.app_data))
        except ArgumentError as exc:
            self._reject(tc, exc.code if exc.code in self.dictionary.failure_codes.values else "ARG_OUT_OF_RANGE",
                         now)
            return
        self.execute(cmd, args, tc, now)

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        """Run a validated lander command through its handler with full PUS-1 reporting."""
        handler = self._handlers[cmd.name]
        try:
            # acceptance checks that depend on state are raised with stage "accept"
            result = handler(cmd, args, tc, now)
        except CommandFailure as exc:
            if exc.stage == "accept":
                self._reject(tc, exc.code, now, exc.data)
                return
            self.counters.tc_accepted += 1
            self._emit_report(self.verifier.accept(tc, now))
            if exc.stage == "start":
                self.send_tm(self.verifier.start_fail(tc, exc.code, now, exc.data))
            else:
                self._emit_report(self.verifier.start(tc, now))
                self.send_tm(self.verifier.complete_fail(tc, exc.code, now, exc.data))
            return
        self.counters.tc_accepted += 1
        self._emit_report(self.verifier.accept(tc, now))
        self._emit_report(self.verifier.start(tc, now))
        if result is None:
            self._emit_report(self.verifier.complete(tc, now))
        # a Pending result reports completion itself

    def pending(self, tc: PusTc) -> Pending:
        return Pending(self, tc)

    def on_dropped(self, port: str, dropped: Dropped, now: float) -> None:
        """Counted by the deframer; summarised once per housekeeping period (see _link_hk)."""

    def link_changed(self, port: str, up: bool, now: float) -> None:
        was = self.port_stats[port].up
        super().link_changed(port, up, now)
        if port == self.GROUND and self.ground_link is not None:
            self.ground_link.set_rf(up, now)  # the radio's lock follows the port's link state
            self._ground_link_output()
        if up != was:
            if port in self.port_index:
                self.emit("LINK_UP" if up else "LINK_DOWN", now, EVT_PORT=self.port_index[port.upper()])
            for listener in self._link_listeners:
                listener(port, up, now)

    # -- periodic work -----------------------------------------------------------
    def _time_at_the_tone(self, now: float) -> None:
        """PUS 9: after each 1 PPS pulse, the time of the pulse to every payload that is powered."""
        self._tone_last = now
        data = None
        for u in self.units:
            if u.kind == "payload" and self._listening(u):
                if data is None:
                    data = self.dictionary.encode_tm(self._time_report, {"RATE_EXP": 0, "TONE_TIME": now})
                self.send_to_unit(u, self._tone_tm.make(9, 2, data, now))
        self.payload_power_changed(now)

    def payload_power_changed(self, now: float) -> None:
        """The payload manager powered or unpowered a payload: the tone timer runs only while one is powered
        (it stays on its grid, so the reports go out at the same instants as if it had never stopped)."""
        tone = getattr(self, "_tone", None)
        if tone is None:
            return
        manager = getattr(self, "payloads", None)
        needed = (manager is None or not getattr(manager, "active", False)
                  or any(p.state in POWERED_STATES for p in manager.payloads.values()))
        if needed:
            tone.resume(now, self._tone_last)
        elif tone.active:
            tone.cancel()

    def _listening(self, unit: System, answering: bool = False) -> bool:
        """The unit's line is up and, for a payload, the payload manager has it powered (``answering``:
        booted and heard, so that a command sent now is not lost to a payload still booting)."""
        if not self.port_stats[unit.port].up:
            return False
        manager = getattr(self, "payloads", None)
        p = manager.payloads.get(unit.name) if manager is not None else None
        return p is None or p.state in (ANSWERING_STATES if answering else POWERED_STATES)

    # -- unit housekeeping rates by phase ------------------------------------------
    #: source id of the telecommands this controller sends; their reports stay on board
    HK_CONTROL_SOURCE = 0xFF01

    def _init_unit_hk(self) -> None:
        self._unit_hk_applied: dict[str, float | None] = {u.name: None for u in self.units}
        self._unit_last_hk: dict[str, float] = {}
        self._hk_seq: dict[int, int] = {}
        self.counters.extra["unit_hk_commands"] = 0
        self.add_tm_listener(self._unit_hk_seen)
        self.add_tm_consumer(self._unit_hk_consume)
        self.phases.on_change(lambda old, new, now: self._apply_unit_hk_all(now))
        self.on_start(self._apply_unit_hk_all)

    def unit_hk_factor(self, unit: System) -> float:
        return self.phases.current.unit_hk_factor(unit.kind)

    def _apply_unit_hk_all(self, now: float) -> None:
        for u in self.units:
            if self._listening(u, answering=True):
                self._apply_unit_hk(u, now)
            else:
                self._unit_hk_applied[u.name] = None  # applied when it is next heard

    def _apply_unit_hk(self, unit: System, now: float) -> None:
        """Set each of the unit's housekeeping structures to the phase's rate (or disable it)."""
        factor = self.unit_hk_factor(unit)
        if self._unit_hk_applied.get(unit.name) == factor:
            return
        self._unit_hk_applied[unit.name] = factor
        for pkt in unit.telemetry:
            if pkt.category != "hk" or pkt.sid is None:
                continue
            if factor <= 0:
                self._unit_tc(unit, "HK_DISABLE", {"sid": pkt.sid})
                continue
            base = pkt.period_s or unit.hk_period_s
            period_ms = int(round(base * factor * 1000))
            self._unit_tc(unit, "HK_SET_PERIOD", {"sid": pkt.sid, "period_ms": max(100, period_ms)})
            self._unit_tc(unit, "HK_ENABLE", {"sid": pkt.sid})

    def _unit_tc(self, unit: System, name: str, args: dict) -> None:
        cmd = self.dictionary.command(name, unit.name)
        seq = self._hk_seq.get(unit.apid, 0)
        self._hk_seq[unit.apid] = (seq + 1) & 0x3FFF
        tc = PusTc(unit.apid, cmd.service, cmd.subservice, self.dictionary.encode_command(cmd, args),
                   seq_count=seq, source_id=self.HK_CONTROL_SOURCE, ack_flags=0b1000)
        self.counters.extra["unit_hk_commands"] += 1
        self.send_to_unit(unit, tc.pack())

    def _unit_hk_seen(self, unit: System, tm: PusTm, now: float) -> None:
        if tm.service != 3 or tm.subservice != 25:
            return
        last = self._unit_last_hk.get(unit.name)
        self._unit_last_hk[unit.name] = now
        factor = self.unit_hk_factor(unit)
        expected = unit.hk_period_s * (factor if factor > 0 else 1.0)
        if last is None or now - last > 3 * expected + 5.0 or self._unit_hk_applied.get(unit.name) != factor:
            # first report, or the unit was silent long enough to have been power-cycled: it runs at its
            # default rates again, so the phase's rates are applied anew
            self._unit_hk_applied[unit.name] = None
            self._apply_unit_hk(unit, now)

    def _unit_hk_consume(self, unit: System, tm: PusTm, now: float) -> bool:
        return tm.service == 1 and tm.dest_id == self.HK_CONTROL_SOURCE

    def _lander_hk(self, now: float) -> dict:
        c = self.counters
        return {"UPTIME": int(now - self.started_at), "LANDER_MODE": self.mode, "ONBOARD_TIME": now,
                "PHASE": self.phases.current.name,
                "TC_ACCEPTED": c.tc_accepted, "TC_REJECTED": c.tc_rejected, "TC_ROUTED": c.tc_routed,
                "TM_FORWARDED": c.tm_forwarded, "EVENTS_SENT": c.events_sent, "TM_UNSENT": c.tm_unsent,
                "RESTARTS": min(self.restarts, 0xFFFF)}

    def _link_hk(self, now: float) -> list[dict]:
        out = []
        for port in self.ports:
            s = self.link_stats(port)
            drops = sum(s[f"drop_{r}"] for r in ("no_sync", "bad_version", "length_short", "length_long",
                                                  "crc", "truncated"))
            prev_drops, prev_bytes = self._drop_seen[port]
            if drops > prev_drops:
                self.emit("FRAMES_DROPPED", now, EVT_PORT=self.port_index[port.upper()],
                          DROP_RECORDS=drops - prev_drops, DROP_BYTES=s["dropped_bytes"] - prev_bytes)
            self._drop_seen[port] = (drops, s["dropped_bytes"])
            out.append({
                "LINK_PORT": self.port_index[port.upper()], "LINK_UP": bool(s["up"]),
                "LINK_RX_PACKETS": s["rx_packets"], "LINK_TX_PACKETS": s["tx_packets"],
                "LINK_RX_BYTES": s["rx_bytes"], "LINK_TX_BYTES": s["tx_bytes"],
                "LINK_DROP_NO_SYNC": s["drop_no_sync"], "LINK_DROP_BAD_VERSION": s["drop_bad_version"],
                "LINK_DROP_LENGTH_SHORT": s["drop_length_short"], "LINK_DROP_LENGTH_LONG": s["drop_length_long"],
                "LINK_DROP_CRC": s["drop_crc"], "LINK_DROP_TRUNCATED": s["drop_truncated"],
                "LINK_DROPPED_BYTES": s["dropped_bytes"], "LINK_RECONNECTS": max(0, s["link_ups"] - 1),
                "LINK_REJECTED": s["rejected"],
            })
        return out

    # -- lander command handlers ---------------------------------------------------
    def _cmd_ping(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        self.send_tm(self.tm.make(17, 2, b"", now))

    def _hk_sid(self, args: dict) -> int:
        sid = args["sid"]
        if sid not in self.hk.entries:
            raise CommandFailure("UNKNOWN_ID", sid, stage="accept")
        return sid

    def _cmd_hk_enable(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        self.hk.entries[self._hk_sid(args)].enabled = True

    def _cmd_hk_disable(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        self.hk.entries[self._hk_sid(args)].enabled = False

    def _cmd_hk_period(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        self.hk.set_period(self._hk_sid(args), args["period_ms"] / 1000.0, now)

    def _cmd_reset_counters(self, cmd: Command, args: dict, tc: PusTc, now: float) -> None:
        self.counters = Counters()
        for port in self.ports:
            d = self.deframers[port]
            d.drops.clear()
            d.packets = d.bytes_in = d.dropped_bytes = 0
            st = self.port_stats[port]
            st.rx_packets = st.rx_bytes = st.tx_packets = st.tx_bytes = st.rejected = 0
            self._drop_seen[port] = (0, 0)
        self.emit("COUNTERS_RESET", now)


def build_flight_software(dictionary: Dictionary, store: StateStore | None = None,
                          options: Mapping[str, Any] | None = None) -> FlightSoftware:
    """The composition root of the flight software core: the node plus every component."""
    opts = dict(options or {})
    fsw = FlightSoftware(dictionary, store, initial_phase=opts.get("initial_phase", "PRELAUNCH"))
    fsw.power = PowerController(fsw)  # the PDU: switching, channel states, trips (docs/payloads.md)
    fsw.payloads = PayloadManager(fsw, fsw.power)  # payload life cycle, budget, heartbeat (docs/payloads.md)
    fsw.schedule = ScheduleService(fsw, **opts.get("schedule", {}))  # PUS 11 (docs/scheduling.md)
    fsw.sequencer = Sequencer(fsw, fsw.schedule, opts.get("sequences", ()))  # texts of the onboard library
    fsw.planner = ActivityPlanner(fsw, fsw.schedule, opts.get("planning"))  # text of planning.yaml
    fsw.deploy = DeployManager(fsw, opts.get("deploy"))  # relay-satellite release (docs/deploy.md)
    link_cfg = space_link_config(opts.get("space_link"))
    # the space link on the ground port: TC frames + FARM-1 up, TM frames + packet stores down (docs/spacelink.md)
    fsw.spacelink = install_space_link(fsw, link_cfg) if link_cfg is not None else None
    return fsw

