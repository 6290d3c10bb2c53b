"""Simulated-time bench for the deploy tests: flight software + the two release controllers + a PDU stand-in.

* :class:`FswHost` runs the flight software as a process that can be killed
  (a :class:`~fsw.core.state.CrashNow` from the store at a chosen write) and
  restarted on the same durable store, while the hardware keeps running.
* by default the real PDU model sits on the flight software's PDU port and
  feeds both controllers' actuator buses, and the flight software uses its own
  power controller; with ``pdu="fake"``, :class:`FakePdu` (the actuator
  channels only) and :class:`FakePowerController` (the power API alone:
  ``switch``, ``state``, ``is_stale``, ``on_trip``) stand in for both.
* :class:`GroundProbe` is the ground end: it sends TCs and keeps every TM with
  its arrival time.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, NamedTuple

from fsw.core.clock import SimClock
from fsw.core.deploy import provision
from fsw.core.flight import FlightSoftware, build_flight_software
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.core.state import CrashNow, MemoryStore, StateStore
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow
from hw_sim.models.deploy import DeployControllerModel
from hw_sim.models.pdu import PduModel
from hw_sim.models.unit import LINE

UNITS = ("ALPINE", "LUPINE")


class ChannelState(NamedTuple):
    on: bool
    current_a: float
    limit_a: float
    tripped: bool
    updated_at: float


class FakePdu:
    """The actuator channels of the PDU: power to each controller's actuator bus, current sensing, trips."""

    def __init__(self, models: dict[str, DeployControllerModel], bus_v: float = 28.0, limit_a: float = 1.5) -> None:
        self.models = models
        self.bus_v = bus_v
        self.limit_a = limit_a
        self.on = {u: False for u in models}
        self.tripped = {u: False for u in models}
        self.responding = True
        self.switch_log: list[tuple[float, str, bool]] = []

    def set(self, ch: str, on: bool, now: float) -> bool:
        if on and self.tripped[ch]:
            return False
        self.switch_log.append((now, ch, on))
        self.on[ch] = on
        self.models[ch].set_bus_power(on, now)
        return True

    def trip(self, ch: str, now: float) -> None:
        self.tripped[ch] = True
        self.on[ch] = False
        self.models[ch].set_bus_power(False, now)

    def current(self, ch: str, now: float) -> float:
        return self.models[ch].power_w(now) / self.bus_v if self.on[ch] else 0.0


class FakePowerController:
    """The flight software's power-controller API over :class:`FakePdu` (1 Hz readings, 20 ms switching)."""

    def __init__(self, fsw: FlightSoftware, pdu: FakePdu, delay_s: float = 0.02, poll_s: float = 1.0,
                 stale_s: float = 3.5) -> None:
        self.fsw, self.pdu = fsw, pdu
        self.delay_s, self.poll_s, self.stale_s = delay_s, poll_s, stale_s
        self._snap: dict[str, ChannelState] = {}
        self._trip_fns: list[Callable[..., None]] = []
        self.requests: list[tuple[float, str, bool]] = []
        fsw.on_start(self._start)

    def _start(self, now: float) -> None:
        self._poll(now)
        self.fsw.timers.every(self.poll_s, self._poll, now + self.poll_s)

    def _poll(self, now: float) -> None:
        if not self.pdu.responding:
            return
        for ch in self.pdu.on:
            self._read(ch, now)

    def _read(self, ch: str, now: float) -> None:
        was = self._snap.get(ch)
        st = ChannelState(self.pdu.on[ch], self.pdu.current(ch, now), self.pdu.limit_a, self.pdu.tripped[ch], now)
        self._snap[ch] = st
        if st.tripped and not (was and was.tripped):
            for fn in self._trip_fns:
                fn(ch, now)

    def switch(self, channel: str, on: bool, now: float, on_done: Callable[[bool, Any], None]) -> None:
        self.requests.append((now, channel, on))

        def do(t: float) -> None:
            ok = self.pdu.responding and self.pdu.set(channel, on, t)
            if self.pdu.responding:
                self._read(channel, t)
            on_done(ok, None if ok else "FAULT_ACTIVE")
        self.fsw.timers.call_at(now + self.delay_s, do)

    def state(self, channel: str) -> ChannelState:
        return self._snap[channel]

    def is_stale(self, channel: str, now: float) -> bool:
        return now - self._snap[channel].updated_at > self.stale_s

    def on_trip(self, fn: Callable[..., None]) -> None:
        self._trip_fns.append(fn)


class FswHost(Node):
    """The flight-software process: a node the runner keeps, with a flight software inside that can die.

    A :class:`CrashNow` raised by the store kills the process: what it had already written to its ports
    still goes out (the worst case: a command left before the crash), then it is silent until
    :meth:`boot` starts a new flight software on the same store.
    """

    def __init__(self, make: Callable[[], FlightSoftware], ports: list[str]) -> None:
        super().__init__("fsw-host", ports)
        self.make = make
        self.fsw: FlightSoftware | None = None
        self.links: dict[str, bool] = {}
        self.boots = 0
        self.crashes = 0
        self.crash_log: list[tuple[float, str]] = []
        self._salvaged: list[tuple[str, bytes]] = []

    @property
    def alive(self) -> bool:
        return self.fsw is not None

    def start(self, now: float) -> None:
        self.boot(now)

    def boot(self, now: float) -> None:
        self.kill()
        self.boots += 1
        fsw = self.make()
        self.fsw = fsw
        for p, up in self.links.items():
            fsw.link_changed(p, up, now)
        self._guard(lambda: fsw.start(now), now)

    def kill(self) -> None:
        if self.fsw is not None:
            self.fsw = None

    def _guard(self, fn: Callable[[], None], now: float) -> None:
        fsw = self.fsw
        try:
            fn()
        except CrashNow as exc:
            self.crashes += 1
            self.crash_log.append((now, str(exc)))
            if fsw is not None:
                self._salvaged += fsw.take_output()
            self.fsw = None

    def receive(self, port: str, data: bytes, now: float) -> None:
        if self.fsw is not None:
            fsw = self.fsw
            self._guard(lambda: fsw.receive(port, data, now), now)

    def line_idle(self, port: str, now: float) -> None:
        if self.fsw is not None:
            fsw = self.fsw
            self._guard(lambda: fsw.line_idle(port, now), now)

    def link_changed(self, port: str, up: bool, now: float) -> None:
        self.links[port] = up
        if self.fsw is not None:
            fsw = self.fsw
            self._guard(lambda: fsw.link_changed(port, up, now), now)

    def next_deadline(self) -> float:
        return self.fsw.next_deadline() if self.fsw is not None else math.inf

    def run_due(self, now: float) -> None:
        if self.fsw is not None:
            fsw = self.fsw
            self._guard(lambda: fsw.run_due(now), now)

    def take_output(self) -> list[tuple[str, bytes]]:
        out, self._salvaged = self._salvaged, []
        if self.fsw is not None:
            out += self.fsw.take_output()
        return out


class GroundProbe(Node):
    """The ground end of the link: sends TCs, keeps (arrival time, packet) for every TM."""

    def __init__(self) -> None:
        super().__init__("ground", ["link"])
        self.log: list[tuple[float, PusTm]] = []

    def send_tc(self, tc: PusTc) -> None:
        self.send_packet("link", tc.pack())

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        pkt = parse_packet_nothrow(packet)
        if isinstance(pkt, PusTm):
            self.log.append((now, pkt))


class DeployBench:
    """Flight software (in a :class:`FswHost`), both controllers, a :class:`FakePdu`, a ground probe."""

    def __init__(self, *, seed: int = 1, phase: str = "DEPLOY", provisioned: bool = True,
                 deploy: dict | None = None, baud: int | None = 115200, ground_baud: int | None = None,
                 start: float = 1000.0, store: StateStore | None = None, quiet: bool = False,
                 pdu: str = "real", dictionary: Dictionary | None = None) -> None:
        """``pdu="real"``: the PDU model on its own line and the flight software's own power controller;
        ``pdu="fake"``: :class:`FakePowerController` over :class:`FakePdu` (the power API alone).
        ``quiet``: only the deploy housekeeping (and LANDER_HK) is generated, for speed."""
        if pdu not in ("real", "fake"):
            raise ValueError("pdu is 'real' or 'fake'")
        self.d = dictionary or load_dictionary()
        self.phase = phase
        self.deploy_options = dict(deploy or {})
        self.quiet = quiet
        self.pdu_kind = pdu
        self.clock = SimClock(start)
        self.runner = SimRunner(self.clock)
        self.store = store if store is not None else MemoryStore()
        if provisioned:
            provision(self.store, UNITS)
        rng = random.Random(seed)
        self.models = {s.name: DeployControllerModel(self.d, s, random.Random(rng.random()))
                       for s in self.d.systems_of_kind("deploy")}
        self.fake_pdu = FakePdu(self.models) if pdu == "fake" else None
        self.pdu_model: PduModel | None = None
        self.power: FakePowerController | None = None
        ports = list(build_flight_software(self.d).ports)
        self.host = FswHost(self._make, ports)
        self.probe = GroundProbe()
        self.runner.add(self.host)
        self.runner.add(self.probe)
        self.runner.connect(self.probe, "link", self.host, "ground", baud=ground_baud)
        if pdu == "real":
            psys = self.d.systems_of_kind("pdu")[0]
            self.pdu_model = PduModel(self.d, psys, random.Random(rng.random()))
            for name, m in self.models.items():
                ch = self.pdu_model.channel_of(name, "actuator")
                assert ch is not None, f"no PDU actuator channel for {name}"
                self.pdu_model.attach(ch.name, m)
            self.runner.add(self.pdu_model)
            self.runner.connect(self.host, psys.port, self.pdu_model, LINE, baud=baud and psys.baud)
        for name, m in self.models.items():
            self.runner.add(m)
            self.runner.connect(self.host, m.system.port, m, LINE, baud=baud)
        self.seq = 0
        self.runner.start()

    def _make(self) -> FlightSoftware:
        fsw = build_flight_software(self.d, self.store, {"initial_phase": self.phase, "deploy": self.deploy_options})
        if self.quiet:
            keep = {self.d.lander.packet(n).sid for n in ("LANDER_HK", "DEPLOY_HK")}
            for sid, e in fsw.hk.entries.items():
                e.enabled = sid in keep
        if self.fake_pdu is not None:
            self.power = FakePowerController(fsw, self.fake_pdu)
            fsw.power = self.power
        return fsw

    # -- the PDU, real or fake -------------------------------------------------------------
    def pdu_on(self, unit: str) -> bool:
        if self.fake_pdu is not None:
            return self.fake_pdu.on[unit]
        return self.pdu_model.channel_of(unit, "actuator").on

    def pdu_current(self, unit: str) -> float:
        if self.fake_pdu is not None:
            return self.fake_pdu.current(unit, self.now)
        return self.pdu_model.current(self.pdu_model.channel_of(unit, "actuator"), self.now)

    def short_circuit(self, unit: str) -> None:
        """A short behind the unit's actuator switch: the channel trips (now, or when next switched on)."""
        if self.fake_pdu is not None:
            self.fake_pdu.trip(unit, self.now)
        else:
            self.pdu_model.inject_overcurrent(self.pdu_model.channel_of(unit, "actuator").name)
        self.runner._collect(self.now)  # noqa: SLF001

    def repair_pdu(self, unit: str) -> None:
        """The short removed and the trip reset (ground's PDU_RESET_TRIP)."""
        if self.fake_pdu is not None:
            self.fake_pdu.tripped[unit] = False
        else:
            ch = self.pdu_model.channel_of(unit, "actuator")
            self.pdu_model.clear_fault(ch.name)
            ch.tripped = False

    def force_power_view(self, unit: str, **changes: Any) -> None:
        """Change what the flight software believes of the unit's PDU channel (prerequisite tests)."""
        if self.fake_pdu is not None:
            self.power._snap[unit] = self.power._snap[unit]._replace(**changes)  # noqa: SLF001
        else:
            from dataclasses import replace as _replace
            pc = self.fsw.power
            pc._state[unit] = _replace(pc._state[unit], **changes)  # noqa: SLF001

    # -- driving --------------------------------------------------------------------------
    @property
    def fsw(self) -> FlightSoftware:
        assert self.host.fsw is not None, "the flight software is not running"
        return self.host.fsw

    @property
    def now(self) -> float:
        return self.clock.now()

    def tc(self, name: str, system: str | None = None, **args: Any) -> PusTc:
        cmd = self.d.command(name, system)
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, args), seq_count=self.seq)
        self.seq = (self.seq + 1) & 0x3FFF
        return tc

    def send(self, name: str, system: str | None = None, **args: Any) -> PusTc:
        tc = self.tc(name, system, **args)
        self.send_tc(tc)
        return tc

    def send_tc(self, tc: PusTc) -> None:
        """Send now (the runner otherwise picks the bytes up at its next event)."""
        self.probe.send_tc(tc)
        self.runner._collect(self.now)  # noqa: SLF001

    def inject_bytes(self, port: str, data: bytes) -> None:
        """Bytes straight into the flight software's ``port`` (a babbling line)."""
        self.host.receive(port, data, self.now)
        self.runner._collect(self.now)  # noqa: SLF001

    def run(self, dt: float) -> None:
        self.runner.run_for(dt)

    def run_until(self, pred: Callable[[], bool], timeout: float) -> bool:
        self.runner.run_until(self.now + timeout, pred)
        return pred()

    def restart(self) -> None:
        self.host.boot(self.now)
        self.runner._collect(self.now)  # noqa: SLF001 - hand the new process's first output to the wires

    def crash_at_write(self, k: int) -> None:
        """The (k+1)-th durable write from now on kills the flight software."""
        assert isinstance(self.store, MemoryStore)
        self.store.crash_after = self.store.writes + k

    # -- ground view ----------------------------------------------------------------------
    def reports(self, tc: PusTc, since: int = 0) -> list[tuple[int, str | None]]:
        """(subservice, failure code name or None) of every PUS-1 report about ``tc``, in order
        (from ground-log entry ``since`` on)."""
        out = []
        for _, tm in self.probe.log[since:]:
            if tm.service != 1 or len(tm.source_data) < 4:
                continue
            pid = int.from_bytes(tm.source_data[:2], "big")
            ctrl = int.from_bytes(tm.source_data[2:4], "big")
            if pid == tc.packet_id and ctrl & 0x3FFF == tc.seq_count:
                code = None
                if tm.subservice in (2, 4, 6, 8):
                    off = 5 if tm.subservice == 6 else 4
                    code = self.d.failure_name(int.from_bytes(tm.source_data[off:off + 2], "big"))
                out.append((tm.subservice, code))
        return out

    def failure_data(self, tc: PusTc) -> list[int]:
        out = []
        for _, tm in self.probe.log:
            if tm.service == 1 and tm.subservice in (2, 4, 8) and len(tm.source_data) >= 10:
                pid = int.from_bytes(tm.source_data[:2], "big")
                ctrl = int.from_bytes(tm.source_data[2:4], "big")
                if pid == tc.packet_id and ctrl & 0x3FFF == tc.seq_count:
                    out.append(int.from_bytes(tm.source_data[6:10], "big"))
        return out

    def events(self, name: str | None = None, system: str = "LANDER") -> list[dict[str, Any]]:
        """Decoded events (with ``_name`` and ``_t``) of ``system``, optionally only ``name``."""
        sys = self.d.system(system)
        out = []
        for t, tm in self.probe.log:
            if tm.service != 5 or tm.apid != sys.apid or len(tm.source_data) < 2:
                continue
            evt = self.d.event_by_id(tm.apid, int.from_bytes(tm.source_data[:2], "big"))
            if evt is None or (name is not None and evt.name != name):
                continue
            vals = self.d.event_codec(evt).decode(tm.source_data, 2)
            vals.update(_name=evt.name, _t=t)
            out.append(vals)
        return out

    def deploy_hk(self, unit: str) -> dict[str, Any] | None:
        """The last DEPLOY_HK ground received for ``unit``."""
        pkt = self.d.lander.packet("DEPLOY_HK")
        codec = self.d.codec(pkt)
        last = None
        for t, tm in self.probe.log:
            if (tm.apid == self.d.lander.apid and tm.service == 3 and tm.subservice == 25
                    and tm.source_data[:2] == pkt.sid.to_bytes(2, "big")):
                vals = codec.decode(tm.source_data)
                if vals["DEP_UNIT"] == unit:
                    last = vals
        return last

    def unit_state(self, unit: str) -> str:
        return self.fsw.deploy.units[unit].state

    def arm(self, unit: str, settle: float = 3.0) -> PusTc:
        """Send DEPLOY_ARM and run until it completes (or ``settle`` seconds)."""
        n = len(self.probe.log)
        tc = self.send("DEPLOY_ARM", unit=unit)
        self.await_verdict(tc, settle, n)
        return tc

    def await_verdict(self, tc: PusTc, timeout: float, since: int | None = None) -> bool:
        """Run until ``tc`` is refused, completed or failed (or the flight software dies, or ``timeout``)."""
        first = len(self.probe.log) if since is None else since
        seen = [first]

        def done() -> bool:
            if not self.host.alive:
                return True
            r = self.reports(tc, seen[0])
            seen[0] = len(self.probe.log) if not r else seen[0]
            return any(s in (2, 7, 8) for s, _ in r)
        return self.run_until(done, timeout)

    def settle_safe(self, timeout: float = 5.0) -> None:
        """Run until every unit's hardware is confirmed safe (after a boot)."""
        self.run_until(lambda: self.host.alive and not any(u.safing for u in self.fsw.deploy.units.values()),
                       timeout)
