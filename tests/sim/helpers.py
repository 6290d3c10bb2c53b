"""Shared helpers for simulated-time tests: the whole bench wired in memory."""

from __future__ import annotations

import math
from typing import Any, Iterable

from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware, build_flight_software
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.core.state import MemoryStore, StateStore
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet
from hw_sim.assembly import Hardware, build_hardware
from hw_sim.models.unit import LINE, UnitModel


class Probe(Node):
    """A minimal ground end: sends TCs, keeps every packet it receives."""

    def __init__(self, name: str = "probe") -> None:
        super().__init__(name, ["link"])
        self.received: list[PusTm | PusTc] = []
        self.raw: list[bytes] = []
        self.arrival: list[float] = []

    def send_tc(self, tc: PusTc) -> None:
        self.send_packet("link", tc.pack())

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        self.raw.append(packet)
        self.received.append(parse_packet(packet))
        self.arrival.append(now)

    def tms(self, service: int | None = None, subservice: int | None = None, apid: int | None = None) -> list[PusTm]:
        return [p for p in self.received if isinstance(p, PusTm)
                and (service is None or p.service == service)
                and (subservice is None or p.subservice == subservice)
                and (apid is None or p.apid == apid)]


class Bench:
    """FSW + the whole simulated hardware (``build_hardware``: PDU, payloads, deploy units) + a ground probe.

    Payloads start unpowered, as on the lander.  ``power`` names the payloads the bench switches on through
    the flight software at the start (PAYLOAD_POWER_ON from the probe, like ground would): ``"all"`` (the
    default), or an iterable of names (``()`` for none).  ``kinds`` limits which units are wired (the PDU
    always is).
    """

    def __init__(self, dictionary: Dictionary | None = None, seed: int = 1, baud: int | None = 115200,
                 kinds: tuple[str, ...] | None = None, start: float = 1000.0,
                 power: str | Iterable[str] = "all", store: StateStore | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.d = dictionary or load_dictionary()
        self.clock = SimClock(start)
        self.store: StateStore = store if store is not None else MemoryStore()
        self.options = options
        self.baud = baud
        self.kinds = kinds
        self.hw: Hardware = build_hardware(self.d, seed)
        self.units: dict[str, UnitModel] = {n: m for n, m in self.hw.units.items()
                                            if kinds is None or m.system.kind in kinds or m.system.kind == "pdu"}
        self.payloads: dict[str, UnitModel] = {n: m for n, m in self.units.items() if m.system.kind == "payload"}
        self.seq = 0
        self.probe = Probe()
        self._wire(build_flight_software(self.d, self.store, options))
        names = list(self.payloads) if power == "all" else list(power)
        self.power_tcs = self.power_on(*names) if names else {}

    def _wire(self, fsw: FlightSoftware) -> None:
        self.fsw = fsw
        self.runner = SimRunner(self.clock)
        self.runner.add(self.fsw)
        self.runner.add(self.probe)
        self.runner.connect(self.probe, "link", self.fsw, "ground", baud=self.baud)
        for name, m in self.units.items():
            s = self.d.system(name)
            self.runner.add(m)
            self.runner.connect(self.fsw, s.port, m, LINE, baud=s.baud)

    @property
    def pdu(self):
        return self.hw.pdu

    def restart_fsw(self) -> FlightSoftware:
        """Kill the flight software and start a new one on the same durable store; the hardware keeps running.

        Bytes on the wires at that instant are lost, as they would be.
        """
        self._wire(build_flight_software(self.d, self.store, self.options))
        self.runner.start()
        return self.fsw

    def tc(self, name: str, system: str | None = None, ack_flags: int = 0b1111, **args) -> PusTc:
        cmd = self.d.command(name, system)
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, args), seq_count=self.seq,
                   ack_flags=ack_flags)
        self.seq = (self.seq + 1) & 0x3FFF
        return tc

    def send(self, name: str, system: str | None = None, **args) -> PusTc:
        tc = self.tc(name, system, **args)
        self.probe.send_tc(tc)
        return tc

    def run(self, dt: float) -> None:
        self.runner.run_for(dt)

    def wait_pdu(self, limit_s: float = 90.0) -> None:
        """Run until the flight software knows the PDU's channels (its first PDU housekeeping after a start):
        until then unknown channels count at full power and power-on is refused (POWER_BUDGET)."""
        if self.fsw.power.last_hk is not None:
            return
        self.runner.run_for(limit_s, stop=lambda: self.fsw.power.last_hk is not None)
        self.runner.run_until(math.ceil(self.clock.now()))  # on to a whole second: tests compute times from it

    def power_on(self, *names: str, run: float = 0.0) -> dict[str, PusTc]:
        """Send PAYLOAD_POWER_ON for each name (through the flight software); optionally run a while."""
        self.wait_pdu()
        tcs = {n: self.send("PAYLOAD_POWER_ON", unit=n) for n in names}
        if run:
            self.run(run)
        return tcs

    def slow_lander_hk(self, period_s: float, keep: tuple[str, ...] = ()) -> None:
        """Ground slows the lander's own housekeeping (HK_SET_PERIOD), as surface operations would on a thin
        link; long simulated runs then spend their time on the payloads.  ``keep`` names packets left alone."""
        for sid, e in self.fsw.hk.entries.items():
            if e.packet.name not in keep:
                self.send("HK_SET_PERIOD", sid=sid, period_ms=int(period_s * 1000))

    # -- reading what the ground received -----------------------------------------------------
    def verif(self, tc: PusTc) -> list[int]:
        """Subservices of the PUS-1 reports ground received for ``tc``, in arrival order."""
        out = []
        for tm in self.probe.tms(service=1):
            sd = tm.source_data
            if int.from_bytes(sd[:2], "big") == 0x1800 | tc.apid and int.from_bytes(sd[2:4], "big") & 0x3FFF \
                    == tc.seq_count:
                out.append(tm.subservice)
        return out

    def failure(self, tc: PusTc) -> str | None:
        """The failure code name of the first failure report for ``tc`` (None if it did not fail)."""
        for tm in self.probe.tms(service=1):
            sd = tm.source_data
            if tm.subservice in (2, 4, 6, 8) and int.from_bytes(sd[:2], "big") == 0x1800 | tc.apid \
                    and int.from_bytes(sd[2:4], "big") & 0x3FFF == tc.seq_count:
                return self.d.failure_name(int.from_bytes(sd[4:6], "big"))
        return None

    def events(self, system: str, name: str) -> list[tuple[float, dict]]:
        """(packet time, arguments) of every ``name`` event of ``system`` the ground received."""
        evt = self.d.event(system, name)
        s = self.d.system(system)
        return [(tm.time, self.d.event_codec(evt).decode(tm.source_data, 2)) for tm in self.probe.tms(5, apid=s.apid)
                if int.from_bytes(tm.source_data[:2], "big") == evt.id]

    def hk(self, packet: str) -> list[dict]:
        """Decoded values of every ``packet`` (a housekeeping or science packet) the ground received."""
        pkt = self.d.packet(packet)
        out = []
        for tm in self.probe.tms(pkt.service, pkt.subservice):
            if pkt.apid is not None and tm.apid != pkt.apid:
                continue
            if pkt.sid is not None and int.from_bytes(tm.source_data[:2], "big") != pkt.sid:
                continue
            out.append(self.d.codec(pkt).decode(tm.source_data))
        return out

    def payload_hk(self, unit: str) -> list[dict]:
        return [r for r in self.hk("PAYLOAD_HK") if r["PL_UNIT"] == unit]
