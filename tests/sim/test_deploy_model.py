"""The release controller model (hw_sim/models/deploy.py) on its own, in simulated time.

Independent inhibits in series, actuator profiles, the 30 W draw, separation switches with
their delays and debouncing, and every injectable fault.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.clock import SimClock
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.dictionary import load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow
from hw_sim.models import MODEL_CLASSES, make_model
from hw_sim.models.deploy import ActuatorProfile, DeployControllerModel, SepSwitch
from hw_sim.models.unit import LINE


class Line(Node):
    def __init__(self) -> None:
        super().__init__("probe", ["link"])
        self.log: list[tuple[float, PusTm]] = []

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        pkt = parse_packet_nothrow(packet)
        if isinstance(pkt, PusTm):
            self.log.append((now, pkt))


class ModelBench:
    """One controller on its line, a probe at the other end, the actuator bus switchable."""

    def __init__(self, unit: str = "ALPINE") -> None:
        self.d = load_dictionary()
        self.s = self.d.system(unit)
        self.clock = SimClock(100.0)
        self.runner = SimRunner(self.clock)
        self.m = DeployControllerModel(self.d, self.s, random.Random(3))
        self.p = Line()
        self.runner.add(self.m)
        self.runner.add(self.p)
        self.runner.connect(self.p, "link", self.m, LINE, baud=None)
        self.seq = 0
        self.runner.run_for(1.0)  # boot

    @property
    def now(self) -> float:
        return self.clock.now()

    def send(self, role: str, **args) -> PusTc:
        cmd = self.d.command(f"{self.s.name}_{role}")
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, self.d.encode_command(cmd, args), seq_count=self.seq)
        self.seq += 1
        self.p.send_packet("link", tc.pack())
        self.runner._collect(self.now)  # noqa: SLF001
        self.runner.run_for(0.001)
        return tc

    def verdict(self, tc: PusTc) -> list[tuple[int, str | None]]:
        out = []
        for _, tm in self.p.log:
            if tm.service == 1 and int.from_bytes(tm.source_data[2:4], "big") & 0x3FFF == tc.seq_count:
                code = self.d.failure_name(int.from_bytes(tm.source_data[4:6], "big")) \
                    if tm.subservice in (2, 4, 8) else None
                out.append((tm.subservice, code))
        return out

    def status(self) -> dict:
        pkt = self.s.packet(f"{self.s.name}_STATUS")
        last = [tm for _, tm in self.p.log if tm.service == 3][-1]
        return self.d.codec(pkt).decode(last.source_data)

    def events(self, name: str) -> list[float]:
        eid = self.s.event(name).id
        return [t for t, tm in self.p.log if tm.service == 5 and int.from_bytes(tm.source_data[:2], "big") == eid]

    def arm(self, power: bool = True) -> None:
        self.m.set_bus_power(power, self.now)
        self.send("BUS_ENABLE")
        self.send("ARM")


def test_registered_in_the_model_registry() -> None:
    d = load_dictionary()
    for unit in ("ALPINE", "LUPINE"):
        assert MODEL_CLASSES[unit] is DeployControllerModel
        assert isinstance(make_model(d, d.system(unit), random.Random(1)), DeployControllerModel)


def test_refuses_a_unit_that_is_not_a_deploy_unit() -> None:
    d = load_dictionary()
    with pytest.raises(ValueError, match="not a deploy unit"):
        DeployControllerModel(d, d.system("FSS"), random.Random(1))


@pytest.mark.parametrize("bad, match", [({"type": "pyro"}, "type"), ({"pulse_s": 61}, "pulse_s"),
                                        ({"pulse_s": 0}, "pulse_s"), ({"release_s": 0}, "release_s"),
                                        ({"power_w": -1}, "power_w")])
def test_actuator_profile_is_validated(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActuatorProfile.from_config("A", {"type": "burn_wire", "pulse_s": 8, "release_s": 4, **bad})


def test_fire_needs_both_relays_closed() -> None:
    b = ModelBench()
    tc = b.send("FIRE", actuator="A")
    assert b.verdict(tc) == [(2, "WRONG_MODE")]
    b.send("BUS_ENABLE")
    assert b.verdict(b.send("FIRE", actuator="A")) == [(2, "WRONG_MODE")]
    b.send("SAFE")
    b.send("ARM")
    assert b.verdict(b.send("FIRE", actuator="A")) == [(2, "WRONG_MODE")]
    assert b.m.fire_log == [] and b.m.released_at is None


@pytest.mark.parametrize("power, bus, arm", list(itertools.product([False, True], repeat=3)))
def test_current_flows_only_with_every_inhibit_removed(power: bool, bus: bool, arm: bool) -> None:
    """Physics, not the command interlock: with the fire switch forced closed, the current still needs the
    bus power, the bus-enable relay and the arm relay (three independent series elements)."""
    b = ModelBench()
    m = b.m
    m.set_bus_power(power, b.now)
    m.bus_relay, m.arm_relay = bus, arm
    m.fire_switch, m.firing = True, "A"   # as if the fire switch were welded closed
    m._update(b.now)  # noqa: SLF001
    flows = power and bus and arm
    assert (m.flowing() == "A") == flows
    assert m.power_w(b.now) == (30.0 if flows else 0.0)
    b.runner.run_for(0.1)
    assert (m.released_at is not None) == flows


def test_split_spool_profile_pulse_release_and_switches() -> None:
    b = ModelBench("ALPINE")
    b.arm()
    hk_before = b.m.stats["hk_sent"]
    t0 = b.now
    assert b.verdict(b.send("FIRE", actuator="A")) == [(1, None), (3, None), (7, None)]
    assert b.m.power_w(b.now) == 30.0
    assert b.m.stats["hk_sent"] > hk_before  # a status at once on the change
    b.runner.run_for(0.5)
    m = b.m
    assert m.released_at == pytest.approx(t0 + 0.025, abs=0.002) and m.released_by == "A"
    assert m.fire_log[0].current_s == pytest.approx(0.05, abs=1e-6)  # a spool keeps the whole pulse
    assert not m.fire_switch and m.firing is None
    # each switch opens after its delay, and reads open once debounced
    for i, delay in enumerate((0.06, 0.09)):
        sw = m.switches[i]
        assert sw.times[0] == pytest.approx(m.released_at + delay)
        assert not sw.debounced(sw.times[0] + 0.009) and sw.debounced(sw.times[0] + 0.0101)
    assert len(b.events("ALPINE_SEPARATED")) == 1
    st_ = b.status()
    assert st_["ALPINE_SW1_OPEN"] and st_["ALPINE_SW2_OPEN"] and st_["ALPINE_MODE"] == "RELEASED"
    assert st_["ALPINE_FIRE_COUNT"] == 1


def test_burn_wire_draws_30_w_until_it_parts() -> None:
    b = ModelBench("LUPINE")
    b.arm()
    b.send("FIRE", actuator="B")
    b.runner.run_for(2.0)
    st_ = b.status()
    assert st_["LUPINE_ACT_B_I"] == pytest.approx(30 / 28, abs=0.001) and st_["LUPINE_ACT_A_I"] == 0
    assert st_["LUPINE_BUS_V"] == pytest.approx(28.0) and st_["LUPINE_FIRE_SW"]
    b.runner.run_for(3.0)
    assert b.m.released_by == "B" and b.m.burnt["B"]
    assert b.m.power_w(b.now) == 0.0 and b.m.fire_switch  # wire parted, pulse not over yet
    b.runner.run_for(5.0)
    assert not b.m.fire_switch and b.m.fire_log[0].current_s == pytest.approx(4.0, abs=1e-6)


def test_safe_during_a_burn_stops_it_before_release() -> None:
    b = ModelBench("LUPINE")
    b.arm()
    b.send("FIRE", actuator="A")
    b.runner.run_for(1.0)
    b.send("SAFE")
    b.runner.run_for(10.0)
    assert b.m.released_at is None and b.m.fire_log[0].current_s == pytest.approx(1.0, abs=0.01)
    assert not (b.m.bus_relay or b.m.arm_relay or b.m.fire_switch)


def test_bus_power_lost_during_a_burn_stops_it() -> None:
    b = ModelBench("LUPINE")
    b.arm()
    b.send("FIRE", actuator="A")
    b.runner.run_for(2.0)
    b.m.set_bus_power(False, b.now)
    b.runner.run_for(10.0)
    assert b.m.released_at is None


def test_open_circuit_actuator_draws_nothing_and_says_so() -> None:
    b = ModelBench()
    b.m.inject_open_circuit("A", b.now)
    b.arm()
    b.send("FIRE", actuator="A")
    b.runner.run_for(1.0)
    assert b.m.released_at is None and b.m.fire_log[0].current_s == 0
    assert len(b.events("ALPINE_NO_CURRENT")) == 1
    b.send("FIRE", actuator="B")
    b.runner.run_for(1.0)
    assert b.m.released_by == "B"


def test_no_bus_power_fire_gives_no_current() -> None:
    b = ModelBench()
    b.arm(power=False)
    assert b.verdict(b.send("FIRE", actuator="A"))[0] == (1, None)  # the controller cannot see the PDU
    b.runner.run_for(1.0)
    assert b.m.released_at is None and len(b.events("ALPINE_NO_CURRENT")) == 1


def test_stuck_release_never_opens_the_switches() -> None:
    b = ModelBench()
    b.m.inject_stuck_release()
    b.arm()
    b.send("FIRE", actuator="A")
    b.runner.run_for(1.0)
    b.send("FIRE", actuator="B")
    b.runner.run_for(1.0)
    assert b.m.released_at is None and all(f.current_s > 0 for f in b.m.fire_log)
    assert not any(sw.debounced(b.now) for sw in b.m.switches)


@pytest.mark.parametrize("stuck", ["closed", "open"])
def test_failed_switch(stuck: str) -> None:
    b = ModelBench()
    b.m.inject_failed_switch(1, stuck, b.now)
    b.runner.run_for(0.1)
    b.arm()
    b.send("FIRE", actuator="A")
    b.runner.run_for(1.0)
    assert b.m.released_at is not None
    assert b.m.switches[0].debounced(b.now)
    assert b.m.switches[1].debounced(b.now) == (stuck == "open")


def test_chatter_shorter_than_the_debounce_never_shows() -> None:
    b = ModelBench()
    b.m.inject_chatter(0, b.now, duration_s=0.3, half_period_s=0.004)
    statuses = len([tm for _, tm in b.p.log if tm.service == 3])
    b.runner.run_for(0.5)
    sw = b.m.switches[0]
    assert sw.changes >= 70 and not sw.raw(b.now)
    assert not any(sw.debounced(b.now - k * 0.001) for k in range(500))
    # the raw changes are counted in the status, the reading itself never moved
    b.runner.run_for(1.0)
    st_ = b.status()
    assert st_["ALPINE_SW1_CHANGES"] == sw.changes and not st_["ALPINE_SW1_OPEN"]
    assert len([tm for _, tm in b.p.log if tm.service == 3]) - statuses <= 3  # periodic only: no change seen


def test_silent_controller_still_fires_what_it_was_told() -> None:
    b = ModelBench("LUPINE")
    b.arm()
    b.send("FIRE", actuator="A")
    b.m.silent = True
    n = len(b.p.log)
    b.runner.run_for(6.0)
    assert len(b.p.log) == n  # not a word
    assert b.m.released_at is not None
    tc = b.send("SAFE")
    assert b.verdict(tc) == [] and b.m.bus_relay  # commands ignored too
    b.m.silent = False
    b.runner.run_for(3.0)  # past the end of the 8 s pulse
    assert b.status()["LUPINE_MODE"] == "RELEASED"


@pytest.mark.parametrize("kind, check", [
    ("open_circuit:B", lambda m: m.open_circuit == {"B"}),
    ("stuck_release", lambda m: m.stuck_release),
    ("failed_switch:2:open", lambda m: m.switches[1].stuck == "open"),
    ("failed_switch:1", lambda m: m.switches[0].stuck == "closed"),
    ("chatter:2", lambda m: len(m.timers) > 5),
    ("controller_fault", lambda m: m.internal_fault and m.derived_mode(0.0) == "FAULT"),
])
def test_faults_by_name(kind: str, check) -> None:
    b = ModelBench()
    b.m.inject_fault(kind)
    assert check(b.m)
    b.m.inject_fault("clear_deploy")
    assert not (b.m.open_circuit or b.m.stuck_release or b.m.internal_fault)


@pytest.mark.parametrize("kind", ["melt", "open_circuit:C", "failed_switch:3", "failed_switch:1:sideways"])
def test_unknown_faults_are_refused(kind: str) -> None:
    with pytest.raises(ValueError):
        ModelBench().m.inject_fault(kind)


# -- the debouncer against an independent reference ---------------------------------------------------

def _reference_debounce(times: list[float], levels: list[bool], debounce: float, t: float, dt: float) -> bool:
    """A sampled debouncer: scan time in steps of ``dt``; the output takes the input once the input has
    not changed for ``debounce``."""
    out, s, k, level, last_change = False, 0.0, 0, False, float("-inf")
    while s <= t + 1e-12:
        while k < len(times) and times[k] <= s + 1e-12:
            level, last_change = levels[k], times[k]
            k += 1
        if s - last_change >= debounce - 1e-12:
            out = level
        s += dt
    return out


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.integers(min_value=1, max_value=30), max_size=25),
       queries=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=8))
def test_debounce_matches_a_sampled_reference(gaps: list[int], queries: list[int]) -> None:
    """Edges on a 1 ms grid, queries on the half-millisecond: no boundary ties between the two methods."""
    sw = SepSwitch(0.010)
    t, level = 0.0, False
    for g in gaps:
        t += g * 0.001
        level = not level
        sw.set_raw(t, level)
    for q in queries:
        tq = q * 0.001 + 0.0005
        assert sw.debounced(tq) == _reference_debounce(sw.times, sw.levels, 0.010, tq, 0.0005)


def test_switch_changes_must_come_in_time_order() -> None:
    sw = SepSwitch(0.01)
    sw.set_raw(1.0, True)
    with pytest.raises(ValueError):
        sw.set_raw(0.5, False)
