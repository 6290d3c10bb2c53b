"""The PDU model: switching, current sensing with inrush, programmable limits, trips, and how loads follow power.

The PDU is driven over its serial line by a small ground probe, in simulated
time, with its real loads from ``build_hardware``.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.clock import SimClock
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.dictionary import load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet
from hw_sim.assembly import build_hardware
from hw_sim.models.pdu import PduModel, channel_params
from hw_sim.models.unit import LINE, UnitModel
from tests.conftest import examples

D = load_dictionary()
PDU = D.system("PDU")
BUS_V = float(PDU.config["bus_v"])


class Ground(Node):
    """Stands in for the flight software on each unit's line; records what comes back."""

    def __init__(self, ports: list[str]) -> None:
        super().__init__("ground", ports)
        self.tms: list[tuple[str, float, PusTm]] = []
        self.seq = 0

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        pkt = parse_packet(packet)
        if isinstance(pkt, PusTm):
            self.tms.append((port, now, pkt))

    def tc(self, name: str, system: str = "PDU", **args) -> PusTc:
        cmd = D.command(name, system)
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, D.encode_command(cmd, args), seq_count=self.seq)
        self.seq += 1
        self.send_packet(D.system(system).port, tc.pack())
        return tc

    def reports(self, tc: PusTc) -> list[tuple[int, str | None]]:
        out = []
        for _, _, tm in self.tms:
            sd = tm.source_data
            if tm.service == 1 and int.from_bytes(sd[:2], "big") == tc.packet_id \
                    and int.from_bytes(sd[2:4], "big") & 0x3FFF == tc.seq_count:
                out.append((tm.subservice, D.failure_name(int.from_bytes(sd[4:6], "big"))
                            if tm.subservice in (2, 4, 6, 8) else None))
        return out

    def events(self, name: str, system: str = "PDU") -> list[tuple[float, dict]]:
        evt = D.event(system, name)
        return [(t, D.event_codec(evt).decode(tm.source_data, 2)) for _, t, tm in self.tms
                if tm.service == 5 and tm.apid == evt.apid and int.from_bytes(tm.source_data[:2], "big") == evt.id]

    def last_hk(self, packet: str = "PDU_HK") -> dict:
        pkt = D.packet(packet)
        for _, _, tm in reversed(self.tms):
            if tm.apid == pkt.apid and (tm.service, tm.subservice) == (pkt.service, pkt.subservice) \
                    and int.from_bytes(tm.source_data[:2], "big") == pkt.sid:
                return D.codec(pkt).decode(tm.source_data)
        raise AssertionError(f"no {packet} received")


class Rig:
    def __init__(self, pdu_system=PDU, seed: int = 3) -> None:
        self.hw = build_hardware(D, seed)
        if pdu_system is not PDU:  # a PDU with a modified configuration, same loads
            pdu = PduModel(D, pdu_system, random.Random(seed))
            for ch in pdu.channels.values():
                if ch.kind != "heater" and ch.unit in self.hw.units:
                    pdu.attach(ch.name, self.hw.units[ch.unit])
            self.hw.units["PDU"] = pdu
            self.hw.pdu = pdu
        self.pdu = self.hw.pdu
        self.clock = SimClock(100.0)
        self.runner = SimRunner(self.clock)
        self.units = {n: m for n, m in self.hw.units.items() if n in ("PDU", "FSS", "LISTER", "LUSEE")}
        self.ground = Ground([D.system(n).port for n in self.units])
        self.runner.add(self.ground)
        for n, m in self.units.items():
            self.runner.add(m)
            self.runner.connect(self.ground, D.system(n).port, m, LINE, baud=D.system(n).baud)

    def run(self, dt: float) -> None:
        self.runner.run_for(dt)

    def now(self) -> float:
        return self.clock.now()


def test_channels_come_from_the_dictionary_and_loads_are_wired_by_build_hardware() -> None:
    hw = build_hardware(D, 1)
    pdu = hw.pdu
    assert isinstance(pdu, PduModel)
    enum = PDU.enums["PDU_CHANNEL"].values
    assert list(pdu.channels) == sorted(enum, key=enum.get)
    kinds = {ch.name: ch.kind for ch in pdu.channels.values()}
    assert kinds["FSS"] == "main" and kinds["FSS_HTR"] == "heater" and kinds["ALPINE"] == "actuator"
    for ch in pdu.channels.values():
        if ch.kind == "main":
            assert ch.load is hw.units[ch.unit] and not ch.load.powered  # payloads start unpowered
            assert ch.load._power_requested is False
        elif ch.kind == "actuator":
            assert ch.load is hw.units[ch.unit]
        else:
            assert ch.load is None and ch.heater_w > 0
        for name in channel_params("PDU", ch.name).values():
            PDU.packet("PDU_HK").param(name)  # every channel's housekeeping is declared
    assert set(hw.units) == {s.name for s in D.systems if s.kind != "lander"}


def test_an_unpowered_payload_is_silent_then_boots_and_draws_its_mode_power() -> None:
    r = Rig()
    r.run(3)
    fss = r.units["FSS"]
    assert not fss.powered and fss.stats["hk_sent"] == 0
    ping = r.ground.tc("PING", "FSS")
    r.run(1)
    assert r.ground.reports(ping) == [] and fss.stats["tc_unpowered"] == 1  # off: silent
    t_on = r.now()
    sw = r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")
    r.run(0.5)
    assert [s for s, _ in r.ground.reports(sw)] == [1, 3, 7]
    assert fss.powered and not fss.answering(r.now())
    ping = r.ground.tc("PING", "FSS")
    r.run(1)
    assert r.ground.reports(ping) == []  # still booting (5 s)
    r.run(t_on + D.system("FSS").boot_time_s + 0.5 - r.now())
    assert fss.answering(r.now())
    boot_mode = D.system("FSS").config["boot_mode"]
    steady = r.pdu.current(r.pdu.channel("FSS"), r.now())
    assert steady == pytest.approx(D.system("FSS").power_w[boot_mode] / BUS_V)
    r.ground.tc("FSS_SET_MODE", "FSS", mode="SCIENCE")
    r.run(2.1)
    assert r.pdu.current(r.pdu.channel("FSS"), r.now()) == pytest.approx(D.system("FSS").power_w["SCIENCE"] / BUS_V)
    hk = r.ground.last_hk()
    assert hk["PDU_FSS_ON"] is True and hk["PDU_FSS_I"] == pytest.approx(15 / BUS_V, abs=0.01)
    assert hk["PDU_LISTER_ON"] is False and hk["PDU_LISTER_I"] == 0
    # switching off: the payload goes silent at once
    r.ground.tc("PDU_SWITCH", channel="FSS", state="OFF")
    r.run(0.1)
    sent = fss.stats["hk_sent"]
    r.run(3)
    assert not fss.powered and fss.stats["hk_sent"] == sent and fss.mode == "OFF"


def test_switch_on_draws_an_inrush_that_settles_and_is_reported() -> None:
    r = Rig()
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="LISTER", state="ON")
    r.run(0.05)
    ch = r.pdu.channel("LISTER")
    t0 = ch.on_since
    peak = r.pdu.current(ch, t0)
    steady = D.system("LISTER").power_w["STANDBY"] / BUS_V
    assert peak == pytest.approx(ch.inrush_a)
    assert r.pdu.current(ch, t0 + ch.inrush_tau_s) == pytest.approx(steady + (ch.inrush_a - steady) / math.e)
    assert r.pdu.current(ch, t0 + 10 * ch.inrush_tau_s) == pytest.approx(steady, rel=1e-3)
    assert r.pdu.current(ch, t0 + 0.1) == steady
    (_, evt), = r.ground.events("PDU_SWITCHED")
    assert evt == {"PDU_SW_CH": "LISTER", "PDU_SW_STATE": "ON", "PDU_SW_INRUSH": pytest.approx(ch.inrush_a, abs=0.001)}
    assert not ch.tripped  # the inrush is above the limit for far less than the trip delay


def test_overcurrent_trips_latches_and_needs_a_reset() -> None:
    r = Rig()
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="LUSEE", state="ON")
    r.run(6)
    lusee = r.units["LUSEE"]
    assert lusee.answering(r.now())
    lusee.extra_load_w = 40.0  # a short inside the payload: 1.6 A on a 1.0 A limit
    t_fault = r.now()
    r.run(1)
    ch = r.pdu.channel("LUSEE")
    assert ch.tripped and not ch.on and not lusee.powered
    (t_trip, trip), = r.ground.events("PDU_TRIP")
    assert trip["PDU_TRIP_CH"] == "LUSEE" and trip["PDU_TRIP_I"] > trip["PDU_TRIP_LIMIT"] == pytest.approx(1.0)
    # tripped within one sample period plus the trip delay
    assert t_trip - t_fault <= r.pdu.sample_period_s * 2 + r.pdu.trip_delay_s + 0.01
    r.run(1.5)
    hk = r.ground.last_hk()
    assert hk["PDU_LUSEE_TRIP"] is True and hk["PDU_LUSEE_ON"] is False and hk["PDU_TRIPS"] == 1
    again = r.ground.tc("PDU_SWITCH", channel="LUSEE", state="ON")
    r.run(0.2)
    assert r.ground.reports(again) == [(2, "FAULT_ACTIVE")] and not lusee.powered
    lusee.extra_load_w = 0.0
    reset = r.ground.tc("PDU_RESET_TRIP", channel="LUSEE")
    r.run(0.2)
    assert [s for s, _ in r.ground.reports(reset)] == [1, 3, 7] and not ch.on  # a reset does not switch on
    on = r.ground.tc("PDU_SWITCH", channel="LUSEE", state="ON")
    r.run(0.2)
    assert [s for s, _ in r.ground.reports(on)] == [1, 3, 7] and lusee.powered


def test_programmable_limits() -> None:
    r = Rig()
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")
    r.run(6)
    cmd = D.command("PDU_SET_LIMIT")
    raw = cmd.function_id.to_bytes(2, "big") + bytes([1]) + (5001).to_bytes(2, "big")  # FSS, 5.001 A
    too_high = PusTc(cmd.apid, cmd.service, cmd.subservice, raw, seq_count=999)
    r.ground.send_packet("pdu", too_high.pack())  # (ground's own check would refuse to send it)
    r.run(0.2)
    assert r.ground.reports(too_high) == [(2, "ARG_OUT_OF_RANGE")]
    lower = r.ground.tc("PDU_SET_LIMIT", channel="FSS", limit_ma=200)  # under the 0.29 A the FSS draws
    r.run(0.5)
    assert [s for s, _ in r.ground.reports(lower)] == [1, 3, 7]
    ch = r.pdu.channel("FSS")
    assert ch.limit_a == pytest.approx(0.2) and ch.tripped and not r.units["FSS"].powered
    r.run(1)
    assert r.ground.last_hk()["PDU_FSS_LIMIT"] == pytest.approx(0.2)


def test_a_limit_below_a_long_inrush_trips_during_switch_on_and_the_switch_fails() -> None:
    cfg = dict(PDU.config)
    chans = {k: dict(v) for k, v in cfg["channels"].items()}
    chans["FSS"].update(inrush_a=3.0, inrush_tau_s=0.1)  # a big capacitor: 0.16 s above 1 A
    cfg["channels"] = chans
    r = Rig(dataclasses.replace(PDU, config=cfg))
    r.run(1)
    sw = r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")
    r.run(0.5)
    ch = r.pdu.channel("FSS")
    assert ch.tripped and not ch.on
    assert r.ground.reports(sw) == [(1, None), (3, None), (8, "FAULT_ACTIVE")]
    (t_arrival, _), = r.ground.events("PDU_TRIP")  # (arrival: the trip plus the event's time on the line)
    assert r.pdu.trip_delay_s <= t_arrival - ch.on_since < r.pdu.trip_delay_s + 0.01


def test_heater_and_actuator_channels() -> None:
    r = Rig()
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="FSS_HTR", state="ON")
    r.ground.tc("PDU_SWITCH", channel="ALPINE", state="ON")
    r.run(1.5)
    htr = r.pdu.channel("FSS_HTR")
    assert r.pdu.current(htr, r.now()) == pytest.approx(htr.heater_w / BUS_V)
    alpine = r.pdu.channel("ALPINE")
    load = alpine.load
    expected = load.power_w(r.now()) / BUS_V if hasattr(load, "set_bus_power") else alpine.power_w / BUS_V
    assert r.pdu.current(alpine, r.now()) == pytest.approx(expected)
    if hasattr(load, "set_bus_power"):
        assert getattr(load, "bus_power", True)
    assert not r.units["FSS"].powered  # the heater is not the payload's main line
    hk = r.ground.last_hk()
    assert hk["PDU_FSS_HTR_ON"] and hk["PDU_ALPINE_ON"]
    assert hk["PDU_TOTAL_I"] == pytest.approx(sum(r.pdu.current(c, r.now()) for c in r.pdu.channels.values()),
                                              abs=0.02)


def test_bad_configuration_is_refused() -> None:
    cfg = dict(PDU.config)
    chans = {k: dict(v) for k, v in cfg["channels"].items()}
    del chans["LMS_HTR"]
    with pytest.raises(ValueError, match="LMS_HTR"):
        PduModel(D, dataclasses.replace(PDU, config={**cfg, "channels": chans}), random.Random(1))
    chans = {k: dict(v) for k, v in cfg["channels"].items()}
    chans["FSS"]["kind"] = "mains"
    with pytest.raises(ValueError, match="kind"):
        PduModel(D, dataclasses.replace(PDU, config={**cfg, "channels": chans}), random.Random(1))
    with pytest.raises(ValueError, match="not a PDU"):
        PduModel(D, D.system("FSS"), random.Random(1))


@settings(max_examples=examples(25))
@given(st.lists(st.tuples(st.sampled_from(["FSS", "LISTER", "LUSEE", "FSS_HTR", "LUSEE_HTR"]),
                          st.sampled_from(["on", "off", "short", "clear", "reset", "limit"]),
                          st.floats(0.0, 1.5)), max_size=12))
def test_whatever_happens_a_tripped_channel_is_off_and_a_load_is_powered_iff_its_channel_is_on(ops) -> None:
    r = Rig()
    r.run(0.5)
    for ch_name, op, dt in ops:
        ch = r.pdu.channel(ch_name)
        if op in ("on", "off"):
            r.ground.tc("PDU_SWITCH", channel=ch_name, state=op.upper())
        elif op == "short":
            r.pdu.inject_overcurrent(ch_name)
        elif op == "clear":
            r.pdu.clear_fault(ch_name)
        elif op == "reset":
            r.ground.tc("PDU_RESET_TRIP", channel=ch_name)
        else:
            r.ground.tc("PDU_SET_LIMIT", channel=ch_name, limit_ma=int(100 + dt * 1000))
        r.run(dt + 0.3)
        for c in r.pdu.channels.values():
            if c.tripped:
                assert not c.on
            if c.kind == "main" and c.load is not None:
                assert c.load.powered == c.on
            if c.on and c.fault_extra_a > c.limit_a:
                pass  # will trip at the next samples
    r.run(1.0)
    for c in r.pdu.channels.values():
        if c.on:
            assert r.pdu.current(c, r.now()) <= c.limit_a  # nothing stays on above its limit
    assert r.pdu.trips == sum(c.trips for c in r.pdu.channels.values()) == len(r.ground.events("PDU_TRIP"))


def test_models_are_registered_and_unknown_units_get_the_generic_model() -> None:
    from hw_sim.models import MODEL_CLASSES, make_model
    assert {"PDU", "FSS", "LISTER", "LMS", "LUSEE"} <= set(MODEL_CLASSES)
    custom = dataclasses.replace(D.system("FSS"), name="NEWPAY")
    m = make_model(D, custom, random.Random(1), powered=False)
    assert type(m) is UnitModel and not m.powered


def test_a_quick_power_cycle_boots_once_and_forgets_what_was_under_way() -> None:
    r = Rig()
    r.run(1)
    fss = r.units["FSS"]
    r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")
    r.run(5.5)
    assert fss.answering(r.now())
    r.ground.tc("FSS_SET_MODE", "FSS", mode="CHECKOUT")
    r.run(0.5)
    level = r.ground.tc("FSS_LEVEL", "FSS", target_urad=-1000)   # 28 s of levelling
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="FSS", state="OFF")
    r.run(2)
    r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")         # on again, well within the first boot's timers
    r.run(1)
    r.ground.tc("PDU_SWITCH", channel="FSS", state="OFF")
    r.run(0.5)
    r.ground.tc("PDU_SWITCH", channel="FSS", state="ON")
    r.run(40)
    hk = [t for port, t, tm in r.ground.tms if port == "fss" and tm.service == 3]
    recent = [t for t in hk if t > r.now() - 10]
    assert len(recent) == 10                                     # one housekeeping stream, not two
    assert [s for s, _ in r.ground.reports(level)] == [1, 3]     # its completion died with the power
    assert fss.stats["power_cycles"] == 3 and fss.mode == "SURVIVAL"
