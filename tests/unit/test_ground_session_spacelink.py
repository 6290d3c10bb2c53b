"""GroundSession with the space link, on the simulated clock, through the relay node with loss and duplicates.

The fake link behind the session is the whole far end in memory: the relay
node (seeded loss and duplication both ways, 0.5 s one-way delay), the
lander's end of the space link (:class:`fsw.core.spacelink.SpaceLinkOnboard`:
CLTU decoder, FARM-1, TM frames with the CLCW, packet stores) and a fake flight software that
answers each telecommand with its PUS-1 reports.  ``read(timeout)`` runs
that far end up to the next byte for the ground, moving the clock, so the
waits take no real time.
"""

from __future__ import annotations

import random

import pytest

from fsw.core.clock import SimClock
from fsw.core.spacelink import SpaceLinkConfig, SpaceLinkOnboard
from fsw.core.state import MemoryStore
from fsw.core.storage import StorageManager, default_stores, dictionary_router
from fsw.protocol import Deframer, PusTm, parse_packet
from ground import cli
from ground.session import GroundSession
from hw_sim.faults import LinkImpairer
from hw_sim.models.relay import DTE, LinkPlan, RelayLinkModel
from hw_sim.models.relay_node import GROUND, LANDER, RelayNode
from tests.unit.test_ground_cli import D, T0, FakeFlightSoftware, hk_frame


class FarEnd:
    """A link object (open/close/read/write/connected) whose far side is relay + onboard space link + fake fsw."""

    def __init__(self, clock: SimClock, seed: int = 3, loss: float = 0.05, duplicate: float = 0.05) -> None:
        self.clock = clock
        self.connected = True
        rng = random.Random(seed)
        model = RelayLinkModel(plans={"BENCH": LinkPlan(DTE, up_Bps=20_000.0, down_Bps=200_000.0, light_time=0.5)},
                               phase="BENCH")
        imp = {"loss": loss, "duplicate": duplicate, "dup_delay": 1.0}
        self.relay = RelayNode(model, LinkImpairer(random.Random(rng.random()), **imp),
                               LinkImpairer(random.Random(rng.random()), **imp))
        state = MemoryStore()
        stores = default_stores(D)
        storage = StorageManager(stores, state, router=dictionary_router(D, stores), ack_timeout_s=60.0)
        self.onboard = SpaceLinkOnboard(SpaceLinkConfig(downlink_bps=400_000.0), storage, state)
        self.fsw = FakeFlightSoftware(D)
        self.rx = bytearray()
        self.seq: dict[int, int] = {}
        self.relay.start(clock.now())
        self.onboard.start(clock.now())

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _route(self, now: float) -> None:
        for port, data in self.relay.take_output():
            if port == GROUND:
                self.rx += data
                continue
            self.onboard.receive(data, now)
            for tc in self.onboard.take_tcs():
                for framed in self.fsw(tc):
                    self.send_tm(framed)
        for cadu in self.onboard.take_output():
            self.relay.receive(LANDER, cadu, now)

    def send_tm(self, framed: bytes) -> None:
        """Like the flight software: each packet gets its APID's next sequence count and the current time."""
        now = self.clock.now()
        for pkt in Deframer().feed(framed):
            tm = parse_packet(pkt)
            n = self.seq.get(tm.apid, 0)
            self.seq[tm.apid] = n + 1
            self.onboard.send_packet(PusTm(tm.apid, tm.service, tm.subservice, tm.source_data, seq_count=n & 0x3FFF,
                                           time=now).pack(), now)
        self._route(now)

    def read(self, timeout: float) -> bytes:
        end = self.clock.now() + max(timeout, 0.0)
        while not self.rx:
            t = min(self.relay.next_deadline(), self.onboard.next_deadline())
            if t > end:
                self.clock.advance_to(end)
                return b""
            now = max(self.clock.now(), t)
            self.clock.advance_to(now)
            if self.onboard.next_deadline() <= now:
                self.onboard.run_due(now)
            if self.relay.next_deadline() <= now:
                self.relay.run_due(now)
            self._route(now)
            self._route(now)
        data = bytes(self.rx)
        self.rx.clear()
        return data

    def write(self, data: bytes) -> None:
        self.relay.receive(GROUND, data, self.clock.now())
        self._route(self.clock.now())


def session(seed: int = 3, **kw) -> tuple[GroundSession, FarEnd, SimClock]:
    clock = SimClock(T0)
    far = FarEnd(clock, seed, **kw)
    s = GroundSession("far://", D, link=far, clock=clock, space_link=True, connect_timeout_s=1.0)
    return s, far, clock


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pings_verified_once_each_through_a_lossy_duplicating_relay(seed) -> None:
    s, far, clock = session(seed, loss=0.1, duplicate=0.1)
    with s:
        results = [s.send("PING", timeout=600.0) for _ in range(8)]   # lost reports come again from the store
        assert [r.state for r in results] == ["SUCCESS"] * 8
        assert s.drain(60.0)
    names = [r["name"] for r in far.fsw.received]
    assert names.count("PING") == 8                          # each ran exactly once on board
    seqs = [r["seq_count"] for r in far.fsw.received if r["name"] == "PING"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 8       # in order, no repeat
    st = s.space_stats()
    assert st["tcs_delivered"] >= 8 and st["cop_indeterminate"] == 0
    up, down = far.relay.stats()["up"], far.relay.stats()["down"]
    assert up["writes_lost"] + down["writes_lost"] > 0       # the relay really did lose frames


def test_telemetry_arrives_once_although_the_relay_duplicates() -> None:
    s, far, clock = session(5, loss=0.0, duplicate=0.5)
    with s:
        assert s.wait_connected()
        for i in range(20):
            far.send_tm(hk_frame(FSS_BATT_SOC=i))
            s.poll(0.3)                                  # about one packet per frame
        got = []
        for rec in s.packets(timeout=10.0):
            if rec.get("name") == "FSS_HK":
                got.append(rec["params"]["FSS_BATT_SOC"])
        assert got == list(range(20))
        assert far.relay.stats()["down"]["impairments"]["duplicated"] > 5
        st = s.space_stats()
        assert st["vc0_stale_frames"] + st.get("tracker_duplicates", 0) > 0    # the copies were seen, and dropped
        # CLCWs came with every frame; FOP-1 is running
        assert s.space_stats()["clcws"] > 0


def test_monitor_records_and_idle_flush_never_raise_on_garbage() -> None:
    s, far, clock = session(6, loss=0.0, duplicate=0.0)
    with s:
        far.rx += bytes(range(256)) * 3            # junk before the first CADU
        recs = s.poll(0.5) + s.poll(2.0) + s.poll(2.0)
        assert all("error" not in r for r in recs)
        assert s.space_stats()["tm_dropped_bytes"] >= 768
        assert s.send("PING", timeout=60.0).state == "SUCCESS"


def test_cli_space_link_option_reaches_the_session(monkeypatch, capsys) -> None:
    made = {}

    def open_session(link, dictionary, baud, space_link=False):
        made.update(link=link, space_link=space_link)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "open_session", open_session)
    assert cli.main(["--space-link", "monitor", "--link", "x.pty", "--count", "1"]) == 2
    assert made == {"link": "x.pty", "space_link": True}
    made.clear()
    assert cli.main(["monitor", "--link", "y.pty", "--count", "1"]) == 2
    assert made == {"link": "y.pty", "space_link": False}
    assert "--space-link" in cli.build_parser().format_help()



def test_cli_space_link_refused_where_it_would_be_ignored(capsys) -> None:
    assert cli.main(["--space-link", "dictionary", "list"]) == 2
    assert "--space-link works with send, monitor, console, procedure run --link only" in capsys.readouterr().err


def test_procedures_run_over_the_space_link_only_on_a_link(monkeypatch, capsys) -> None:
    import contextlib

    import ground.procedures as procedures

    real_open_backend = procedures.open_backend
    assert cli.main(["--space-link", "procedure", "run", "checkout_fss", "--sim"]) == 2
    assert "--space-link needs --link" in capsys.readouterr().err
    seen = {}

    @contextlib.contextmanager
    def open_backend(kind, **kw):
        seen.update(kind=kind, **kw)
        raise ValueError("stop here")
        yield  # pragma: no cover

    monkeypatch.setattr(procedures, "open_backend", open_backend)
    assert cli.main(["--space-link", "procedure", "run", "checkout_fss", "--link", "r.pty"]) == 2
    assert seen["kind"] == "link" and seen["link"] == "r.pty" and seen["space_link"] is True
    with pytest.raises(ValueError, match="link backend"):
        with real_open_backend("sim", space_link=True):
            pass


def test_close_does_not_wait_when_nothing_went_up() -> None:
    """Out of contact no CLCW ever comes, FOP-1 never starts, no frame is in flight: close returns at once."""
    s, far, clock = session(7, loss=1.0, duplicate=0.0)         # the relay loses everything
    with s:
        r = s.send("PING", timeout=5.0)
        assert r.state == "TIMEOUT" and s.space.uplink_pending == 1
        t = clock.now()
    assert clock.now() == t and s.space.counters["cltus"] == 0


def test_link_status_shows_contact_cop1_counters_and_the_store_fill_levels() -> None:
    """What `ground --space-link monitor` prints every --link-status seconds."""
    from ground.spacelink import format_link_status

    s, far, clock = session(7, loss=0.0, duplicate=0.0)
    with s:
        assert s.link_status()["stores"] == {}
        assert s.send("PING", timeout=60.0).state == "SUCCESS"
        pkt = D.packet("STORAGE_HK")
        for store, fill in (("HK_EVENTS", 12.5), ("FSS_SCI", 3.0)):
            data = D.encode_tm(pkt, {"STORE_ID": store, "STORE_FILL": fill, "STORE_PACKETS": 40})
            far.onboard.send_packet(PusTm(D.lander.apid, pkt.service, pkt.subservice, data,
                                          seq_count=far.seq.setdefault(D.lander.apid, 0), time=clock.now()).pack(),
                                    clock.now())
            far.seq[D.lander.apid] += 1
        list(s.packets(timeout=5.0))
        st = s.link_status()
    assert st["contact"] is True and st["space_link"] is True and st["fop_state"] == "ACTIVE"
    assert st["cop"]["delivered"] >= 1 and st["cop"]["indeterminate"] == 0
    assert st["stores"]["HK_EVENTS"]["fill_pct"] == 12.5 and st["stores"]["FSS_SCI"]["packets"] == 40
    line = format_link_status(st)
    assert line.startswith("link: contact yes; FOP-1 ACTIVE;") and "HK_EVENTS 12.5%" in line and "FSS_SCI 3.0%" in line
    assert format_link_status({"contact": False, "space_link": False}) == "link: contact no, packet link (no COP-1)"


def test_monitor_with_the_space_link_ends_with_the_link_state(monkeypatch, capsys) -> None:
    s, far, clock = session(8, loss=0.0, duplicate=0.0)
    monkeypatch.setattr(cli, "open_session", lambda link, dictionary, baud, space_link=False: s)
    far.send_tm(hk_frame(FSS_BATT_SOC=5))
    assert cli.main(["--space-link", "monitor", "--link", "x.pty", "--duration", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("FSS_HK" in ln for ln in lines)
    assert lines[-1].startswith("link: contact yes; FOP-1 ")
    s2, far2, _ = session(9, loss=0.0, duplicate=0.0)
    monkeypatch.setattr(cli, "open_session", lambda link, dictionary, baud, space_link=False: s2)
    assert cli.main(["--space-link", "monitor", "--link", "x.pty", "--duration", "1", "--json"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert '"link_status"' in last and '"fop_state"' in last


def test_default_timeouts_allow_for_the_far_side_round_trip() -> None:
    """Through the relays a PING's reports come back after about 5 s, its dictionary time-out: without an
    explicit timeout the session waits the dictionary's time-out plus the link margin."""
    from ground.session import SPACE_LINK_MARGIN_S

    s, far, clock = session(10, loss=0.0, duplicate=0.0)
    ping = D.command("PING")
    assert s.default_timeout(ping) == ping.timeout_s + SPACE_LINK_MARGIN_S
    plain = GroundSession("far://", D, link=far, clock=clock)
    assert plain.default_timeout(ping) == ping.timeout_s and plain.link_margin_s == 0.0
    assert GroundSession("far://", D, link=far, clock=clock, space_link=True, link_margin_s=3.0).link_margin_s == 3.0
    with s:
        tc = s.submit("PING")
        assert s.tracker.status(tc).deadline - clock.now() == pytest.approx(ping.timeout_s + SPACE_LINK_MARGIN_S, abs=1.0)
