"""The space link as a product option: ``build_flight_software(..., {"space_link": ...})``, GroundNode(space_link=...),
SimBench(space_link=...), ``fsw --space-link`` and the mission runner's link report.

The main test wires the product flight software (with its payload manager, scheduler ... and the space link on
its ground port) to a GroundNode with the space link, over a scaled-down relay (contact 800 s of every 1000 s)
with bit errors, bursty loss, reordering and duplicates both ways.  A stand-in LuSEE on its serial port sends
science throughout, gaps included.  Every PING runs once, in order; every science packet reaches the ground
once; no telecommand runs twice.
"""

from __future__ import annotations

import json
import random

import pytest

from fsw.cli import build_parser
from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware, build_flight_software
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.core.spacelink import SpaceLinkConfig, SpaceLinkService, TcLedger
from fsw.core.state import MemoryStore
from fsw.dictionary import load_dictionary
from fsw.protocol.framing import frame
from fsw.protocol.pus import PusTc, PusTm
from fsw.protocol.tmframe import TmFrameConfig
from ground.mission import MissionRun, format_report
from ground.node import PORT, GroundNode
from ground.scenario import parse_scenario
from ground.simbench import SimBench
from ground.spacelink import GroundLinkConfig
from hw_sim.faults import GilbertElliott, LinkImpairer
from hw_sim.models.relay import RELAY, LinkPlan, RelayGeometry, RelayLinkModel

D = load_dictionary()
TM = TmFrameConfig(frame_len=512)
LUSEE = D.system("LUSEE")
SCIENCE = next(p for p in LUSEE.telemetry if p.category == "science")


class ScienceSource(Node):
    """Stands in for LuSEE on its serial port: one science packet every 0.5 s while ``on``."""

    def __init__(self) -> None:
        super().__init__("lusee", [LUSEE.port])
        self.sent = 0
        self.on = True

    def start(self, now: float) -> None:
        self.timers.every(0.5, self._tick, now + 0.5)

    def _tick(self, now: float) -> None:
        if self.on:
            pkt = PusTm(LUSEE.apid, SCIENCE.service, SCIENCE.subservice, bytes([self.sent & 0xFF]) * 120,
                        seq_count=self.sent & 0x3FFF, time=now).pack()
            self._out.append((LUSEE.port, frame(pkt)))
            self.sent += 1


class Contact(Node):
    """Opens and closes the ground line at the relay's acquisition and loss of signal."""

    def __init__(self, runner: SimRunner, fsw: FlightSoftware, relay: RelayLinkModel) -> None:
        super().__init__("contact", [])
        self.runner, self.fsw, self.relay = runner, fsw, relay

    def start(self, now: float) -> None:
        self._update(now)

    def _update(self, now: float) -> None:
        self.runner.set_line(self.fsw, FlightSoftware.GROUND, self.relay.in_contact(now))
        self.timers.call_at(self.relay.next_change(now) + 1e-6, self._update)


def impairer(seed: float) -> LinkImpairer:
    return LinkImpairer(random.Random(seed), ber=1e-5, burst=GilbertElliott(p=0.01, r=0.3), reorder=0.01,
                        reorder_delay=0.3, duplicate=0.01, dup_delay=1.0)


def test_product_flight_software_and_ground_node_over_the_impaired_relay() -> None:
    relay = RelayLinkModel(plans={"PRELAUNCH": LinkPlan(RELAY, up_Bps=2000.0, down_Bps=8000.0, hop_s=1.0)},
                           relays=RelayGeometry(period_s=600.0, view_s=400.0, aos_s=(0.0, 100.0)))
    runner = SimRunner(SimClock(100.0))
    fsw = build_flight_software(D, MemoryStore(), {
        "space_link": SpaceLinkConfig(tm=TM, downlink_bps=64_000.0, ack_timeout_s=200.0)})
    assert isinstance(fsw.spacelink, SpaceLinkService) and fsw.ground_link is fsw.spacelink
    ground = GroundNode(D, space_link=GroundLinkConfig(tm=TM, ack_interval_s=5.0, gap_wait_s=20.0,
                                                       max_requests_per_interval=256, ack_hold_s=30.0))
    lusee = ScienceSource()
    for n in (fsw, ground, lusee):
        runner.add(n)
    rng = random.Random(6)
    runner.connect(ground, PORT, fsw, FlightSoftware.GROUND, baud=None,
                   impair_ab=relay.channel("up", impairer(rng.random())),
                   impair_ba=relay.channel("down", impairer(rng.random())))
    runner.connect(lusee, LUSEE.port, fsw, LUSEE.port, baud=None)
    runner.add(Contact(runner, fsw, relay))
    executed: list[PusTc] = []
    handle = fsw.handle_tc

    def spy(tc: PusTc, now: float) -> None:
        executed.append(tc)
        handle(tc, now)
    fsw.handle_tc = spy  # type: ignore[method-assign]

    pings = []
    for k in range(6):                               # PINGs in and out of contact (gap 500-600 s mod 600)
        runner.run_until(150.0 + 130.0 * k)
        pings.append(ground.send("PING", runner.clock.now(), system="LANDER", timeout=600.0))
    runner.run_until(1150.0)                         # through two gaps
    lusee.on = False
    runner.run_until(1450.0)                         # in contact from 1200 s on: the stores drain

    assert [(t.apid, t.seq_count) for t in executed if t.service == 17 and t.source_id == pings[0].source_id] \
        == [(t.apid, t.seq_count) for t in pings]
    assert all(ground.status(t).ok for t in pings), [ground.status(t) for t in pings]
    assert fsw.spacelink.ledger.duplicates == 0 and fsw.spacelink.ledger.executed == len(executed)
    assert lusee.sent > 2000 and ground.science_received["LUSEE"] == lusee.sent
    status = ground.link_status()
    assert status["contact"] and status["fop_state"] == "ACTIVE" and status["cop"]["indeterminate"] == 0
    assert status["stores"]["LUSEE_SCI"]["fill_pct"] == 0.0     # from STORAGE_HK, as the ground received it
    assert status["downlink_discarded"] and status["tracker"]["duplicates"] > 0
    onboard = fsw.spacelink.status()
    assert onboard["stores"]["LUSEE_SCI"]["packets"] == 0 and onboard["stored_without_rf"] > 0
    assert fsw.port_stats[FlightSoftware.GROUND].rx_packets == len(executed)


def test_without_the_option_the_ground_port_frames_packets_with_the_asm() -> None:
    fsw = build_flight_software(D, MemoryStore(), {})
    assert fsw.spacelink is None and fsw.ground_link is None
    fsw.start(10.0)
    fsw.link_changed(FlightSoftware.GROUND, True, 10.0)
    fsw.emit("COUNTERS_RESET", 10.0)
    out = [d for p, d in fsw.take_output() if p == FlightSoftware.GROUND]
    assert out and all(d[:4] == frame(b"\x00" * 7)[:4] for d in out)   # the ASM of fsw.protocol.framing


def test_space_link_option_values() -> None:
    assert build_flight_software(D, MemoryStore(), {"space_link": True}).spacelink.link.cfg == SpaceLinkConfig()
    fsw = build_flight_software(D, MemoryStore(), {"space_link": {"downlink_bps": 8000.0}})
    assert fsw.spacelink.link.downlink_bps == 8000.0
    with pytest.raises(ValueError):
        build_flight_software(D, MemoryStore(), {"space_link": "yes"})
    fsw.start(5.0)
    fsw.emit("COUNTERS_RESET", 5.0)
    fsw.run_due(5.2)
    cadus = [d for p, d in fsw.take_output() if p == FlightSoftware.GROUND]
    assert cadus and all(len(c) == SpaceLinkConfig().tm.cadu_len for c in cadus)
    fsw.receive(FlightSoftware.GROUND, bytes(range(256)) * 4, 6.0)     # garbage: counted, never raises
    assert fsw.spacelink.link.cltu.dropped_bytes > 0


def test_tc_ledger_tells_a_repeat_from_a_wrapped_count() -> None:
    ledger = TcLedger(memory=4)
    tcs = [PusTc(0x10, 17, 1, seq_count=i, source_id=3) for i in range(6)]
    assert all(ledger.add(t, t.pack()) for t in tcs)
    assert not ledger.add(tcs[5], tcs[5].pack()) and ledger.duplicates == 1
    assert ledger.add(tcs[0], tcs[0].pack())       # beyond the memory: a legitimate reuse after a wrap
    other = PusTc(0x10, 17, 1, seq_count=5, source_id=4)
    assert ledger.add(other, other.pack())         # another source's stream


def test_simbench_option_and_fsw_cli_flag() -> None:
    bench = SimBench(D, seed=2, space_link=True)
    assert bench.fsw.spacelink.link.downlink_bps == 115200 * 0.8 and bench.ground.link is not None
    assert bench.send("PING", system="LANDER").ok
    assert bench.fsw.spacelink.ledger.executed >= 1
    args = build_parser().parse_args(["--space-link"])
    assert args.space_link
    assert "--space-link" in build_parser().format_help()


SHORT_SURFACE = """
scenario: surface-gap
start: L+0
end: L+34m
seed: 4
steps:
  - {at: L+1m, phase: SURFACE, criterion: on the surface}
  - {at: L+1m, send: PAYLOAD_POWER_ON, args: {unit: LUSEE}}
  - {at: L+1m, wait: "LUSEE_MODE == ANALOG", timeout: 2m}
  - {at: L+3m, send: LUSEE_SET_MODE, args: {mode: ON}}
  - {at: L+4m, send: LUSEE_SET_MODE, args: {mode: SCIENCE}}
  - {at: L+5m, wait: "LUSEE_MODE == SCIENCE", timeout: 2m, criterion: LuSEE science}
  - {at: L+31m, send: PAYLOAD_POWER_OFF, args: {unit: LUSEE}}
"""


def scaled_relay() -> RelayLinkModel:
    """The relays scaled down to a 30-minute orbit (20 min in view each, 5 min apart: a 5-minute gap from
    L+25 min), and a 200 kbps surface downlink, so that the test stays quick."""
    launch = D.launch_time
    plans = {"PRELAUNCH": LinkPlan(RELAY, up_Bps=1000.0, down_Bps=25_000.0, hop_s=1.0),
             "SURFACE": LinkPlan(RELAY, up_Bps=1000.0, down_Bps=25_000.0, hop_s=1.0)}
    return RelayLinkModel(plans=plans, relays=RelayGeometry(period_s=1800.0, view_s=1200.0,
                                                            aos_s=(launch % 1800.0, (launch + 300.0) % 1800.0)))


def test_mission_report_science_produced_equals_received_through_a_relay_gap(tmp_path) -> None:
    """Science through a relay gap with the default impairments; the report as the CLI writes it."""
    import ground.mission as mission
    from ground.cli import main

    path = tmp_path / "surface.yaml"
    path.write_text(SHORT_SURFACE)
    out = tmp_path / "report.json"
    runs: list[MissionRun] = []
    real = mission.MissionRun

    class Scaled(real):  # type: ignore[valid-type, misc]
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, relay=scaled_relay(), **k)
            runs.append(self)
    mission.MissionRun = Scaled
    try:
        assert main(["mission", "--scenario", str(path), "-q", "--json", str(out)]) == 0
    finally:
        mission.MissionRun = real
    assert not runs[0].relay.in_contact(D.launch_time + 26 * 60.0)   # the gap is really there
    rep = json.loads(out.read_text())
    sci = rep["science"]["LUSEE"]
    assert sci["produced"] == sci["received"] > 100
    assert {c["name"]: c["ok"] for c in rep["checks"]} == {"zero science lost": True, "zero TCs executed twice": True}
    sl = rep["space_link"]
    assert sl["tcs_executed_twice"] == 0 and sl["tcs_executed_onboard"] > 0 and sl["drained_at"]
    assert sl["cop1"]["indeterminate"] == 0 and sl["stores_at_end"]["LUSEE_SCI"]["packets"] >= 0
    assert sl["tm_frames_discarded_ground"] and "fecf" in sl["tm_frames_discarded_ground"]
    assert rep["link"]["mode"] == "space link" and rep["link"]["impaired"]["down"]["bit_errors"] > 0
    assert rep["link"]["tm_produced_no_contact"] > 0 and rep["success"]


def test_a_lost_science_packet_fails_the_mission() -> None:
    """The check is honest: the old direct packet line loses what is produced out of contact."""
    run = MissionRun(parse_scenario(SHORT_SURFACE, D), D, space_link=False, relay=scaled_relay())
    r = run.run()
    sci = r.science["LUSEE"]
    assert sci["produced"] > sci["received"] and not r.success
    assert "MISSING" in format_report(r) and r.checks["zero science lost"][0] is False
