"""Shared helpers for simulated-time tests: the whole bench wired in memory."""

from __future__ import annotations

import random

from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware, build_flight_software
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet
from hw_sim.models.unit import LINE, UnitModel


class Probe(Node):
    """A minimal ground end: sends TCs, keeps every packet it receives."""

    def __init__(self, name: str = "probe") -> None:
        super().__init__(name, ["link"])
        self.received: list[PusTm | PusTc] = []
        self.raw: list[bytes] = []

    def send_tc(self, tc: PusTc) -> None:
        self.send_packet("link", tc.pack())

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        self.raw.append(packet)
        self.received.append(parse_packet(packet))

    def tms(self, service: int | None = None, subservice: int | None = None, apid: int | None = None) -> list[PusTm]:
        return [p for p in self.received if isinstance(p, PusTm)
                and (service is None or p.service == service)
                and (subservice is None or p.subservice == subservice)
                and (apid is None or p.apid == apid)]


class Bench:
    """FSW + one dictionary-driven model per payload + a probe on the ground port, on a SimClock."""

    def __init__(self, dictionary: Dictionary | None = None, seed: int = 1, baud: int | None = 115200,
                 kinds: tuple[str, ...] = ("payload",), start: float = 1000.0) -> None:
        self.d = dictionary or load_dictionary()
        self.clock = SimClock(start)
        self.runner = SimRunner(self.clock)
        self.fsw: FlightSoftware = build_flight_software(self.d)
        self.probe = Probe()
        self.units: dict[str, UnitModel] = {}
        self.runner.add(self.fsw)
        self.runner.add(self.probe)
        self.runner.connect(self.probe, "link", self.fsw, "ground", baud=baud)
        rng = random.Random(seed)
        for s in self.d.systems_of_kind(*kinds):
            m = UnitModel(self.d, s, random.Random(rng.random()))
            self.units[s.name] = m
            self.runner.add(m)
            self.runner.connect(self.fsw, s.port, m, LINE, baud=s.baud)
        self.seq = 0

    def tc(self, name: str, system: str | None = None, **args) -> PusTc:
        cmd = self.d.command(name, system)
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, args), seq_count=self.seq)
        self.seq += 1
        return tc

    def send(self, name: str, system: str | None = None, **args) -> PusTc:
        tc = self.tc(name, system, **args)
        self.probe.send_tc(tc)
        return tc

    def run(self, dt: float) -> None:
        self.runner.run_for(dt)
