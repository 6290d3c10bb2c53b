"""Store-and-forward end to end: the flight software behind SpaceLinkOnboard, the relay, SpaceLinkGround.

This is also the integration sketch for the lead: :class:`LinkedFsw` shows the
few overrides that put the space link on the flight software's ground port
(bytes -> CLTU decoder -> FARM-1 -> ``handle_tc``; every packet for the ground
-> ``SpaceLinkService.downlink``), with the PUS-15 commands, STORAGE_HK,
LINK_COP_HK and the link events coming from :class:`SpaceLinkService`.

The relay geometry is scaled down (contact 1000 s of every 1200 s) and both
directions lose and duplicate frames.  Science is generated throughout,
through the contact gaps and a restart of the flight software.  At the end
the ground has every packet the flight software ever sent, exactly once,
every telecommand ran exactly once in order, and the stores are empty.
"""

from __future__ import annotations

import random

import pytest

from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.core.spacelink import SpaceLinkConfig, SpaceLinkOnboard, SpaceLinkService
from fsw.core.state import MemoryStore
from fsw.core.storage import StorageManager, default_stores, dictionary_router
from fsw.dictionary.loader import parse_mission
from fsw.protocol.pus import PusTc, PusTm, parse_packet, parse_packet_nothrow
from fsw.protocol.tmframe import TmFrameConfig
from ground.spacelink import GroundLinkConfig, SpaceLinkGround, dictionary_tc_factory
from hw_sim.faults import LinkImpairer
from hw_sim.models.relay import RELAY, LinkPlan, RelayGeometry, RelayLinkModel
from tests.unit.test_storage import reader_with_link

TM = TmFrameConfig(frame_len=512)


@pytest.fixture(scope="module")
def dictionary():
    return parse_mission(reader_with_link())


class LinkedFsw(FlightSoftware):
    """The flight software with the space link on its ground port (what the lead will build in)."""

    def __init__(self, dictionary, store: MemoryStore, relay: RelayLinkModel) -> None:
        super().__init__(dictionary, store)
        storage = StorageManager(default_stores(dictionary), store,
                                 router=dictionary_router(dictionary, default_stores(dictionary)),
                                 ack_timeout_s=120.0)
        self.link = SpaceLinkOnboard(SpaceLinkConfig(tm=TM, downlink_bps=40_000.0), storage, store)
        self.service = SpaceLinkService(self, self.link)
        self.relay = relay
        self.t = 0.0
        self.sent_to_ground: list[bytes] = []
        self.executed: list[PusTc] = []
        self.lusee = dictionary.system("LUSEE")
        self.sci = next(p for p in self.lusee.telemetry if p.category == "science")
        self.sci_seq = 0
        self.science_on = True

    def start(self, now: float) -> None:
        self.t = now
        super().start(now)
        self.hk.set_period(2, 60.0, now)          # LINK_HK of every port: less often, to keep the test quick
        self.timers.every(0.5, self._science, now)
        self.timers.every(1.0, self._radio, now)

    def _science(self, now: float) -> None:
        """Stands in for LuSEE science forwarded through the payload port."""
        if not self.science_on:
            return
        data = bytes([self.sci_seq & 0xFF]) * 200
        self.send_tm(PusTm(self.lusee.apid, self.sci.service, self.sci.subservice, data,
                           seq_count=self.sci_seq & 0x3FFF, time=now).pack())
        self.sci_seq += 1

    def _radio(self, now: float) -> None:
        """The radio's lock indication follows the relay's contact windows."""
        self.link.set_rf(self.relay.in_contact(now), now)
        self.service.pump_events(now)

    # -- the ground port through the space link ------------------------------------------------
    def receive(self, port: str, data: bytes, now: float) -> None:
        self.t = now
        if port != self.GROUND:
            return super().receive(port, data, now)
        self.link.receive(data, now)
        for raw in self.link.take_tcs():
            tc = parse_packet_nothrow(raw)
            if isinstance(tc, PusTc):
                self.executed.append(tc)
                self.handle_tc(tc, now)
        self.service.pump_events(now)

    def send_packet(self, port: str, packet: bytes) -> None:
        if port != self.GROUND:
            return super().send_packet(port, packet)
        self.sent_to_ground.append(packet)
        self.service.downlink(packet, self.t)

    def next_deadline(self) -> float:
        return min(super().next_deadline(), self.link.next_deadline())

    def run_due(self, now: float) -> None:
        self.t = now
        super().run_due(now)
        self.link.run_due(now)
        self.service.pump_events(now)

    def take_output(self) -> list[tuple[str, bytes]]:
        return super().take_output() + [(self.GROUND, c) for c in self.link.take_output()]


class GroundNode(Node):
    def __init__(self, link: SpaceLinkGround) -> None:
        super().__init__("ground", ["rf"])
        self.link = link
        self.packets: list[bytes] = []

    def receive(self, port: str, data: bytes, now: float) -> None:
        self.link.receive(data, now)
        self.packets += [p for _, p in self.link.take_packets()]

    def next_deadline(self) -> float:
        return self.link.next_deadline()

    def run_due(self, now: float) -> None:
        self.link.run_due(now)

    def take_output(self) -> list[tuple[str, bytes]]:
        return [("rf", c) for c in self.link.take_output()]


def test_nothing_lost_nothing_twice_through_gaps_loss_and_a_restart(dictionary) -> None:
    plans = {"PRELAUNCH": LinkPlan(RELAY, up_Bps=2000.0, down_Bps=20_000.0, hop_s=1.0)}
    relay = RelayLinkModel(plans=plans, relays=RelayGeometry(period_s=1200.0, view_s=800.0, aos_s=(0.0, 200.0)),
                           phase="PRELAUNCH")
    state = MemoryStore()
    rng = random.Random(2024)
    runner = SimRunner(SimClock(0.0))
    fsw = LinkedFsw(dictionary, state, relay)
    ground = GroundNode(SpaceLinkGround(GroundLinkConfig(tm=TM, ack_interval_s=5.0, gap_wait_s=30.0),
                                        make_tc=dictionary_tc_factory(dictionary)))
    runner.add(fsw)
    runner.add(ground)
    up = LinkImpairer(random.Random(rng.random()), loss=0.03, duplicate=0.02, dup_delay=1.0)
    down = LinkImpairer(random.Random(rng.random()), loss=0.03, duplicate=0.02, dup_delay=1.0)
    runner.connect(ground, "rf", fsw, FlightSoftware.GROUND, baud=None,
                   impair_ab=relay.channel("up", up), impair_ba=relay.channel("down", down))
    ping = dictionary.command("PING", "LANDER")
    pings = []

    def send_pings(n: int) -> None:
        for _ in range(n):
            tc = PusTc(ping.apid, ping.service, ping.subservice, seq_count=len(pings), source_id=7)
            pings.append(tc)
            ground.link.send_tc(tc.pack(), runner.clock.now())

    runner.start()
    send_pings(5)
    runner.run_until(1500.0)                      # through the first contact gap (1000-1200 s)
    send_pings(5)
    runner.run_until(1900.0)
    # an orderly restart of the flight software: a new node on the same durable state
    fsw.link.stop(runner.clock.now())
    sent_before = fsw.sent_to_ground
    executed_before = fsw.executed
    runner.nodes.remove(fsw)
    fsw2 = LinkedFsw(dictionary, state, relay)
    fsw2.sci_seq = fsw.sci_seq
    runner.add(fsw2)
    for key, w in list(runner.wires.items()):
        if w.dst is fsw:
            w.dst = fsw2
    runner.wires[(id(fsw2), FlightSoftware.GROUND)] = runner.wires.pop((id(fsw), FlightSoftware.GROUND))
    fsw2.link_changed(FlightSoftware.GROUND, True, runner.clock.now())
    send_pings(5)
    runner.run_until(2500.0)                      # and through the second gap (2200-2400 s)
    # the science stops; the links heal; everything stored must come down and be acknowledged
    fsw2.science_on = False
    up.heal()
    down.heal()
    runner.run_until(4000.0)

    sent = sent_before + fsw2.sent_to_ground
    got = ground.packets
    key = lambda p: (p[:4], p[13:19])  # noqa: E731 - APID, sequence count and CUC time
    # the ground has every packet sent while the FSW ran, once; the last few HK may still be in flight
    missing = {key(p) for p in sent} - {key(p) for p in got}
    late = [p for p in sent if key(p) in missing]
    assert all(parse_packet(p).time > 3990.0 for p in late), f"{len(late)} packets lost"
    assert len(got) == len({key(p) for p in got}), "a packet reached the ground twice"
    assert {key(p) for p in got} <= {key(p) for p in sent}
    sci = [p for p in got if ((p[0] << 8 | p[1]) & 0x7FF) == dictionary.system("LUSEE").apid]
    assert len(sci) == fsw2.sci_seq >= 4000       # every science packet, none lost in the gaps
    # every PING exactly once, in order, across the restart
    executed = [t for t in executed_before + fsw2.executed if t.source_id == 7]
    assert executed == pings
    # the stores emptied: the ground acknowledged everything but the last seconds' housekeeping
    st = fsw2.link.storage
    left = [e for s in st.stores.values() for e in s.entries.values()]
    assert all(e.cuc / 65536.0 > 3970.0 for e in left), sorted(e.cuc / 65536.0 for e in left)[:5]
    stats = ground.link.stats()
    assert stats["cop_indeterminate"] == 0 and stats["tracker_duplicates"] > 0
    assert stats["vc1_packets"] > 0 and fsw2.link.hk_link(4000.0)["RF_AVAILABLE"]
