"""The relay emulator node on the simulated clock: timing, order, contact, rate caps, seeded impairments."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.clock import SimClock
from hw_sim.faults import Chain, LinkImpairer
from hw_sim.models.relay import DEFAULT_PLANS, DOWN, DTE, RELAY, UP, LinkPlan, RelayGeometry, RelayLinkModel
from hw_sim.models.relay_node import GROUND, LANDER, RelayNode, override_plan


def fixed_model(delay: float = 2.5, up_Bps: float = 1000.0, down_Bps: float = 4000.0) -> RelayLinkModel:
    return RelayLinkModel(plans={"BENCH": LinkPlan(DTE, up_Bps=up_Bps, down_Bps=down_Bps, light_time=delay)},
                          phase="BENCH")


class Driver:
    """Feeds a node at given times and runs its deadlines on a SimClock, recording (time, port, bytes) out."""

    def __init__(self, node: RelayNode, start: float = 0.0) -> None:
        self.node = node
        self.clock = SimClock(start)
        self.out: list[tuple[float, str, bytes]] = []
        node.start(start)

    def _collect(self) -> None:
        self.out += [(self.clock.now(), p, b) for p, b in self.node.take_output()]

    def run_until(self, t: float) -> None:
        while self.node.next_deadline() <= t:
            self.clock.advance_to(max(self.clock.now(), self.node.next_deadline()))
            self.node.run_due(self.clock.now())
            self._collect()
        self.clock.advance_to(max(self.clock.now(), t))

    def write(self, t: float, port: str, data: bytes) -> None:
        self.run_until(t)
        self.node.receive(port, data, self.clock.now())
        self._collect()

    def to(self, port: str) -> list[tuple[float, bytes]]:
        return [(t, b) for t, p, b in self.out if p == port]


writes_strategy = st.lists(st.tuples(st.floats(0.0, 0.5), st.sampled_from([GROUND, LANDER]),
                                     st.binary(min_size=1, max_size=300)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(writes_strategy)
def test_clean_link_delivers_everything_in_order_at_rate_plus_delay(writes) -> None:
    model = fixed_model()
    node = RelayNode(model)
    drv = Driver(node)
    t = 0.0
    busy = {GROUND: 0.0, LANDER: 0.0}
    rate = {GROUND: 1000.0, LANDER: 4000.0}
    expected: dict[str, list[tuple[float, bytes]]] = {GROUND: [], LANDER: []}
    for dt, port, data in writes:
        t += dt
        drv.write(t, port, data)
        end = max(t, busy[port]) + len(data) / rate[port]
        busy[port] = end
        dst = LANDER if port == GROUND else GROUND
        expected[dst].append((end + 2.5, data))
    drv.run_until(1e9)
    for dst in (GROUND, LANDER):
        got = drv.to(dst)
        assert [b for _, b in got] == [b for _, b in expected[dst]]          # order and content
        for (tg, _), (te, _) in zip(got, expected[dst]):
            assert tg == pytest.approx(te, abs=1e-9)                         # serialisation + one-way delay
    s = node.stats()
    assert s[UP]["bytes_in"] == s[UP]["bytes_out"] == sum(len(d) for _, p, d in writes if p == GROUND)
    assert s[DOWN]["bytes_in"] == s[DOWN]["bytes_out"] == sum(len(d) for _, p, d in writes if p == LANDER)
    assert s[UP]["writes_lost"] == s[DOWN]["writes_lost"] == 0
    assert s[UP]["bytes_in_flight"] == s[DOWN]["bytes_in_flight"] == 0
    assert node.next_deadline() == float("inf")


def test_nothing_passes_out_of_contact() -> None:
    node = RelayNode(RelayLinkModel(phase="LAUNCH"))
    drv = Driver(node)
    for i in range(20):
        drv.write(i * 0.1, GROUND if i % 2 else LANDER, b"x" * 50)
    drv.run_until(1000.0)
    assert drv.out == []
    s = node.stats()
    assert not s["in_contact"] and s["contact_kind"] == "none"
    assert s[UP]["lost"] == {"no_contact": 10} and s[DOWN]["lost"] == {"no_contact": 10}


def test_contact_windows_acquisition_and_loss_of_signal() -> None:
    plans = {"SURFACE": LinkPlan(RELAY, up_Bps=100.0, down_Bps=100.0, hop_s=1.0, light_time=0.5)}
    model = RelayLinkModel(plans=plans, relays=RelayGeometry(names=("A",), period_s=100.0, view_s=60.0, aos_s=(0.0,)),
                           phase="SURFACE")
    node = RelayNode(model)
    drv = Driver(node)
    assert node.in_contact and node.next_deadline() == pytest.approx(60.0)
    drv.write(10.0, GROUND, b"a" * 10)           # in view: 0.1 s on the line + 1.5 s
    drv.write(59.95, GROUND, b"b" * 10)          # would still be on the line at LOS: lost
    drv.write(70.0, LANDER, b"c" * 10)           # occulted
    drv.write(100.0, LANDER, b"d" * 10)          # rises again at 100
    drv.run_until(250.0)
    assert drv.to(LANDER) == [(pytest.approx(11.6), b"a" * 10)]
    assert drv.to(GROUND) == [(pytest.approx(101.6), b"d" * 10)]
    s = node.stats()
    assert s[UP]["lost"] == {"contact_end": 1} and s[DOWN]["lost"] == {"no_contact": 1}
    assert (s["los"], s["aos"]) == (2, 2)        # LOS at 60 and 160, AOS at 100 and 200
    assert s["next_contact_change"] == pytest.approx(260.0)


def test_rate_cap_and_bounded_queue() -> None:
    model = fixed_model(delay=0.0, up_Bps=100.0)
    node = RelayNode(model, max_queue_s=5.0)
    drv = Driver(node)
    for _ in range(10):
        drv.write(0.0, GROUND, b"z" * 100)        # each takes 1 s on the line
    drv.run_until(100.0)
    times = [t for t, _ in drv.to(LANDER)]
    assert times == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])   # queued up to 5 s behind, then tail drop
    assert node.stats()[UP]["lost"] == {"queue_full": 4}


def test_set_phase_follows_the_mission() -> None:
    node = RelayNode(RelayLinkModel(phase="PRELAUNCH"))
    drv = Driver(node)
    drv.write(0.0, GROUND, b"p" * 115)
    drv.run_until(1.0)
    assert drv.to(LANDER) == [(pytest.approx(115 / 11520), b"p" * 115)]   # umbilical: 11 520 B/s, no light time
    node.set_phase("LAUNCH", 1.0)
    drv.write(1.5, GROUND, b"q")
    node.set_phase("CRUISE", 2.0)
    drv.write(2.0, LANDER, b"r" * 250)
    drv.run_until(10.0)
    assert [b for _, b in drv.to(LANDER)] == [b"p" * 115]
    (t, b), = drv.to(GROUND)
    assert b == b"r" * 250 and 2.0 + 1.0 + 1.19 <= t <= 2.0 + 1.0 + 1.36          # 2 kbps + light time
    s = node.stats(now=10.0)
    assert s["phase"] == "CRUISE" and s["phase_changes"] == 2 and s["aos"] == 1 and s["los"] == 1
    assert 1.19 <= s["one_way_delay_s"] <= 1.36
    with pytest.raises(ValueError, match="no link plan"):
        node.set_phase("NOWHERE", 11.0)


def test_override_plan() -> None:
    p = override_plan(DEFAULT_PLANS["SURFACE"], delay_s=0.25, always_in_contact=True, up_Bps=5.0)
    assert (p.kind, p.light_time, p.hop_s, p.up_Bps) == (DTE, 0.25, 0.0, 5.0)
    assert p.down_Bps == DEFAULT_PLANS["SURFACE"].down_Bps
    with pytest.raises(ValueError):
        override_plan(p, delay_s=-1.0)


def _impaired_run(seed: int, writes) -> tuple[list, dict]:
    rng = random.Random(seed)
    up = LinkImpairer(random.Random(rng.random()), loss=0.2, ber=1e-3, duplicate=0.2, dup_delay=0.5,
                      reorder=0.2, reorder_delay=0.3, jitter=0.05)
    down = Chain(LinkImpairer(random.Random(rng.random()), burst=None, loss=0.1),
                 LinkImpairer(random.Random(rng.random()), duplicate=0.3))
    node = RelayNode(fixed_model(delay=1.0, up_Bps=1e6, down_Bps=1e6), up, down)
    drv = Driver(node)
    for t, port, data in writes:
        drv.write(t, port, data)
    drv.run_until(1e6)
    return drv.out, node.stats()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), writes_strategy)
def test_same_seed_same_bytes(seed, writes) -> None:
    t = 0.0
    timed = []
    for dt, port, data in writes:
        t += dt
        timed.append((t, port, data))
    a = _impaired_run(seed, timed)
    b = _impaired_run(seed, timed)
    assert a == b
    out, s = a
    for d in (UP, DOWN):
        assert s[d]["bytes_in_flight"] == 0
        assert s[d]["writes_in"] == s[d]["writes_carried"]                # always in contact, rate to spare
        assert s[d]["writes_lost"] == s[d]["lost"].get("random", 0)      # only the impairer loses here


def test_seeded_impairments_are_counted_and_differ_by_seed() -> None:
    writes = [(i * 0.01, GROUND if i % 2 else LANDER, bytes([i % 256]) * 40) for i in range(2000)]
    out1, s1 = _impaired_run(1, writes)
    out2, _ = _impaired_run(2, writes)
    assert out1 != out2
    up = s1[UP]
    assert 150 <= up["lost"]["random"] <= 250                          # 20 % of 1000
    assert up["impairments"]["duplicated"] > 100 and up["impairments"]["reordered"] > 100
    assert up["impairments"]["bit_errors"] > 100                       # 1e-3 of 320 000 bits
    assert up["pieces_out"] == 1000 - up["lost"]["random"] + up["impairments"]["duplicated"]
    down = s1[DOWN]
    assert 60 <= down["lost"]["random"] <= 140
    # reordering shows: some uplink pieces arrive out of their write order
    sent = [b for _, p, b in out1 if p == LANDER]
    firsts = [b[0] for b in sent]
    assert any(x > y for x, y in zip(firsts, firsts[1:]))


def test_garbage_and_unknown_port() -> None:
    node = RelayNode(fixed_model())
    drv = Driver(node)
    drv.write(0.0, GROUND, b"")
    assert node.stats()[UP]["writes_in"] == 0
    with pytest.raises(ValueError, match="no port"):
        node.receive("nowhere", b"x", 0.0)


# -- the command line of the relay process (hw_sim/relay.py), without running it ---------------------------------

def relay_node(*argv: str) -> RelayNode:
    from hw_sim.relay import build_node, build_parser

    return build_node(build_parser().parse_args(list(argv)))


def test_relay_options_build_the_node() -> None:
    n = relay_node()
    assert n.model.phase == "SURFACE" and n.model.plan == DEFAULT_PLANS["SURFACE"]
    assert n.dirs[UP].channel.impair is None and n.dirs[DOWN].channel.impair is None
    n = relay_node("--phase", "CRUISE", "--delay", "0.4", "--always-in-contact", "--up-rate", "16000",
                   "--max-queue", "3", "--relay-period", "600", "--relay-view", "400", "--relay-aos", "0,100")
    p = n.model.plan
    assert (p.kind, p.light_time, p.hop_s, p.up_Bps) == (DTE, 0.4, 0.0, 2000.0)
    assert p.down_Bps == DEFAULT_PLANS["CRUISE"].down_Bps
    assert n.dirs[UP].channel.max_queue_s == 3.0
    assert (n.model.relays.period_s, n.model.relays.view_s, n.model.relays.aos_s) == (600.0, 400.0, (0.0, 100.0))


def test_relay_impairments_per_direction_and_seeded() -> None:
    a = relay_node("--loss", "0.1", "--burst", "0.01,0.3,0,1", "--duplicate", "0.2", "--seed", "9")
    up, down = a.dirs[UP].channel.impair, a.dirs[DOWN].channel.impair
    assert up.imp.loss == down.imp.loss == 0.1 and up.imp.dup_delay == 0.5
    assert up.imp.burst is not down.imp.burst                  # each direction has its own channel state
    b = relay_node("--loss", "0.1", "--burst", "0.01,0.3,0,1", "--duplicate", "0.2", "--seed", "9")
    draws = [up.rng.random(), down.rng.random()]
    assert draws == [b.dirs[UP].channel.impair.rng.random(), b.dirs[DOWN].channel.impair.rng.random()]
    assert draws[0] != draws[1]
    only_down = relay_node("--ber", "1e-4", "--impair", "down", "--seed", "9")
    assert only_down.dirs[UP].channel.impair is None
    assert only_down.dirs[DOWN].channel.impair.rng.random() == draws[1]   # the same stream as with both


@pytest.mark.parametrize("argv, message", [
    (["--phase", "MARS"], "unknown phase"),
    (["--relay-aos", "0"], "--relay-aos needs 2 times"),
])
def test_relay_bad_options_raise_value_error(argv, message) -> None:
    with pytest.raises(ValueError, match=message):
        relay_node(*argv)


@pytest.mark.parametrize("argv", [["--loss", "2"], ["--burst", "0.1,0.2"], ["--burst", "0.1,0.2,0,x"],
                                  ["--delay", "-1"], ["--up-rate", "0"], ["--jitter", "inf"]])
def test_relay_bad_option_values_are_usage_errors(argv, capsys) -> None:
    from hw_sim.relay import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2 and "error" in capsys.readouterr().err


def test_hw_sim_relay_subcommand_help(capsys) -> None:
    from hw_sim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["relay", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--ground", "--lander", "--phase", "--seed", "--burst", "--jitter", "--delay", "--always-in-contact",
                "--time-scale", "--stats", "examples:"):
        assert opt in text


def test_relay_node_between_two_nodes_in_the_simulated_runner() -> None:
    """In the mission runner the relay is a node of its own, on instantaneous wires (baud=None)."""
    from fsw.core.node import Node
    from fsw.core.simrunner import SimRunner

    class End(Node):
        def __init__(self, name: str, sends: list[tuple[float, bytes]]) -> None:
            super().__init__(name, ["rf"])
            self.got: list[tuple[float, bytes]] = []
            self.sends = sends

        def start(self, now: float) -> None:
            for t, data in self.sends:
                self.timers.call_at(t, lambda now, d=data: self._out.append(("rf", d)))

        def receive(self, port: str, data: bytes, now: float) -> None:
            self.got.append((now, data))

    runner = SimRunner(SimClock(0.0))
    ground = runner.add(End("ground", [(1.0, b"tc-1"), (2.0, b"tc-2")]))
    lander = runner.add(End("lander", [(1.5, b"tm" * 50)]))
    relay = runner.add(RelayNode(fixed_model(delay=2.5, up_Bps=1000.0, down_Bps=100.0)))
    runner.connect(ground, "rf", relay, GROUND)
    runner.connect(relay, LANDER, lander, "rf")
    runner.run_until(20.0)
    assert lander.got == [(pytest.approx(1.0 + 0.004 + 2.5), b"tc-1"), (pytest.approx(2.0 + 0.004 + 2.5), b"tc-2")]
    assert ground.got == [(pytest.approx(1.5 + 1.0 + 2.5), b"tm" * 50)]


@settings(max_examples=100, deadline=None)
@given(writes_strategy, st.integers(0, 2**16), st.floats(0.0, 0.5), st.floats(0.0, 0.5), st.floats(1.0, 20.0))
def test_every_write_is_accounted_for_through_windows_and_impairments(writes, seed, loss, dup, view) -> None:
    """Carried + lost (by the channel) = written; what comes out = carried - lost by the impairer + duplicates."""
    plans = {"SURFACE": LinkPlan(RELAY, up_Bps=2000.0, down_Bps=500.0, hop_s=0.2, light_time=0.1)}
    model = RelayLinkModel(plans=plans, relays=RelayGeometry(names=("A",), period_s=20.0, view_s=view, aos_s=(3.0,)),
                           phase="SURFACE")
    rng = random.Random(seed)
    node = RelayNode(model, LinkImpairer(random.Random(rng.random()), loss=loss, duplicate=dup, dup_delay=0.2),
                     LinkImpairer(random.Random(rng.random()), loss=loss, duplicate=dup, reorder=0.3,
                                  reorder_delay=0.4), max_queue_s=0.5)
    drv = Driver(node)
    t = 0.0
    for dt, port, data in writes:
        t += dt * 10
        drv.write(t, port, data)
    drv.run_until(t + 100.0)
    s = node.stats()
    for d, dst in ((UP, LANDER), (DOWN, GROUND)):
        x = s[d]
        channel_lost = sum(v for k, v in x["lost"].items() if k in ("no_contact", "contact_end", "queue_full",
                                                                   "no_rate"))
        assert x["writes_in"] == x["writes_carried"] + channel_lost
        imp = x["impairments"]
        assert x["pieces_out"] == x["writes_carried"] - x["lost"].get("random", 0) + imp.get("duplicated", 0)
        assert x["bytes_in_flight"] == 0
        assert x["bytes_out"] == sum(len(b) for _, p, b in drv.out if p == dst)
