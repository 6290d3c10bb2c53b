"""The relay link model: contact windows by phase, light time, rate caps (mission-facts.md, Communications)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.dictionary.loader import package_reader, parse_mission
from hw_sim.faults import LinkImpairer
from hw_sim.models.relay import (
    ANOMALISTIC_MONTH_S, DAY, DEFAULT_PLANS, DOWN, HOUR, UP, LightTime, LinkPlan, OrbitGeometry,
    RelayGeometry, RelayLinkModel, kbps,
)
from tests.conftest import examples


def test_light_time_range_and_period() -> None:
    lt = LightTime()
    samples = [lt.at(t) for t in range(0, int(ANOMALISTIC_MONTH_S), 3600)]
    assert min(samples) == pytest.approx(1.19, abs=1e-3) and max(samples) == pytest.approx(1.36, abs=1e-3)
    assert sum(samples) / len(samples) == pytest.approx(1.275, abs=0.01)
    assert lt.at(0.0) == pytest.approx(1.19)
    assert lt.at(ANOMALISTIC_MONTH_S / 2) == pytest.approx(1.36)


def test_low_lunar_orbit_windows() -> None:
    m = RelayLinkModel(phase="LUNAR_ORBIT")
    period = 118 * 60
    ws = m.windows(0.0, 10 * period)
    assert len(ws) == 10
    assert all(b - a == pytest.approx(71 * 60) for a, b in ws)
    assert m.contact_fraction(0.0, 10 * period) == pytest.approx(71 / 118)
    assert m.in_contact(60.0) and not m.in_contact(80 * 60.0)
    assert m.next_change(60.0) == pytest.approx(71 * 60) and m.next_change(80 * 60.0) == pytest.approx(period)


def test_surface_two_relays_two_gaps_a_day() -> None:
    m = RelayLinkModel(phase="SURFACE")
    g = m.relays
    for name in g.names:
        assert sum(b - a for a, b in g.relay_windows(name, 0.0, DAY)) == pytest.approx(16 * HOUR)
    ws = m.windows(0.0, 10 * DAY)
    gaps = [(b1, a2) for (_, b1), (a2, _) in zip(ws, ws[1:])]
    assert len(ws) == 20 and len(gaps) == 19
    assert all(a2 - b1 == pytest.approx(2 * HOUR) for b1, a2 in gaps)
    assert m.contact_fraction(0.0, 10 * DAY) == pytest.approx(20 / 24)
    assert m.relays.in_view(1 * HOUR) == ("ALPINE",) and m.relays.in_view(3 * HOUR) == ("ALPINE", "LUPINE")
    assert not m.in_contact(10.5 * HOUR) and m.next_change(10.5 * HOUR) == pytest.approx(12 * HOUR)


def test_geometry_is_configurable() -> None:
    g = RelayGeometry(names=("A", "B", "C"), period_s=24 * HOUR, view_s=16 * HOUR, aos_s=(0.0, 12 * HOUR, 6 * HOUR))
    m = RelayLinkModel(relays=g, phase="SURFACE")
    assert m.contact_fraction(0.0, 3 * DAY) == pytest.approx(1.0)
    assert m.next_change(5.0) == math.inf
    o = OrbitGeometry(period_s=100.0, occultation_s=40.0, aos_s=30.0)
    assert o.windows(0.0, 200.0) == [(30.0, 90.0), (130.0, 190.0)]
    assert o.windows(50.0, 150.0) == [(50.0, 90.0), (130.0, 150.0)]
    with pytest.raises(ValueError):
        OrbitGeometry(period_s=10.0, occultation_s=10.0)
    with pytest.raises(ValueError):
        RelayGeometry(names=("A",), aos_s=(0.0, 1.0))
    with pytest.raises(ValueError):
        RelayGeometry(view_s=13 * HOUR)


def test_phases() -> None:
    m = RelayLinkModel()
    m.set_phase("CRUISE")
    assert m.in_contact(123456.0) and m.next_change(0.0) == math.inf
    assert m.rate(UP) == kbps(2) == 250.0 and m.rate(DOWN) == 250.0
    m.set_phase("LAUNCH")
    assert not m.in_contact(0.0) and m.windows(0.0, 100.0) == []
    m.set_phase("PRELAUNCH")
    assert m.one_way_delay(0.0) == 0.0
    m.set_phase("SURFACE")
    assert m.rate(DOWN) == kbps(1300) and m.one_way_delay(0.0) == pytest.approx(1.19 + 1.0)
    with pytest.raises(ValueError):
        m.set_phase("MARS")
    with pytest.raises(ValueError):
        m.rate("sideways")
    with pytest.raises(ValueError):
        LinkPlan("warp", 1.0, 1.0)


def _in_contact_by_geometry(m: RelayLinkModel, t: float) -> bool:
    """The contact test asked afresh: what the model's remembered answer must always equal."""
    kind = m.plan.kind
    if kind in ("none", "umbilical", "dte"):
        return kind != "none"
    if kind == "orbit":
        o = m.orbit
        return (t - o.aos_s) % o.period_s < o.period_s - o.occultation_s
    return bool(m.relays.in_view(t))


@settings(max_examples=examples(200))
@given(st.sampled_from(sorted(DEFAULT_PLANS)), st.floats(0.0, 60 * DAY),
       st.lists(st.tuples(st.integers(0, 3), st.floats(0.0, 3 * HOUR), st.integers(-3, 3)), max_size=40))
def test_remembered_contact_state_is_the_geometry_at_every_instant(phase: str, start: float, moves: list) -> None:
    # the model keeps the contact state until shortly before the next window edge: asked at any instant, mission
    # time included (seconds since the epoch, where a float's step is tens of nanoseconds), at the edges and a
    # few floats either side of them, and after phase changes, it answers what the geometry says
    m = RelayLinkModel(phase=phase)
    t = 226022400.0 + start
    for kind, dt, ulps in moves:
        if kind == 0:
            t += dt
        elif kind == 1:   # onto a window edge, give or take a few floats
            edge = m.next_change(t)
            if math.isfinite(edge):
                t = edge
                for _ in range(abs(ulps)):
                    t = math.nextafter(t, math.inf if ulps > 0 else -math.inf)
        elif kind == 2:
            m.set_phase(sorted(DEFAULT_PLANS)[ulps % len(DEFAULT_PLANS)])
        else:             # time may also be asked out of order
            t = max(0.0, t - dt)
        assert m.in_contact(t) == _in_contact_by_geometry(m, t), (m.phase, t)


def test_plans_cover_every_mission_phase() -> None:
    d = parse_mission(package_reader())
    assert set(d.enums["PHASE"].values) == set(DEFAULT_PLANS)


class TestChannel:
    def test_delay_is_serialisation_plus_light_time_plus_hop(self) -> None:
        m = RelayLinkModel(phase="SURFACE")
        ch = m.channel(UP)
        [(d, data)] = ch.apply(b"x" * 1000, 3600.0)
        assert data == b"x" * 1000
        assert d == pytest.approx(1000 / kbps(8) + m.light.at(3600.0) + 1.0)

    def test_rate_cap_queues_writes(self) -> None:
        m = RelayLinkModel(phase="CRUISE")
        ch = m.channel(DOWN, max_queue_s=10.0)
        delays = [ch.apply(b"y" * 250, 0.0)[0][0] for _ in range(5)]     # one second each at 2 kbps
        lt = m.light.at(0.0)
        assert [round(d - lt, 6) for d in delays] == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert ch.backlog(0.0) == pytest.approx(5.0)
        for _ in range(6):
            assert ch.apply(b"y" * 250, 0.0)            # waits up to 10 s: still carried
        assert ch.apply(b"y" * 250, 0.0) == [] and ch.stats["lost_queue_full"] == 1

    def test_no_contact_and_contact_ending(self) -> None:
        m = RelayLinkModel(phase="SURFACE")
        ch = m.channel(UP)
        assert ch.apply(b"z", 11 * HOUR) == [] and ch.stats["lost_no_contact"] == 1
        end = 10 * HOUR
        assert ch.apply(b"z" * 1000, end - 0.01) == [] and ch.stats["lost_contact_end"] == 1
        m.set_phase("LAUNCH")
        assert ch.apply(b"z", 0.0) == []

    def test_with_impairments(self) -> None:
        m = RelayLinkModel(phase="CRUISE")
        ch = m.channel(UP, LinkImpairer(random.Random(1), duplicate=1.0, dup_delay=0.0, delay=0.5))
        out = ch.apply(b"w" * 25, 0.0)
        base = 25 / 250.0 + m.light.at(0.0)
        assert [round(d - base, 6) for d, _ in out] == [0.5, 0.5]
