"""The payload manager on the whole simulated bench: budget, phases, heartbeat, faults, forwarding, the PDU.

Scenario tests, each a story with a known outcome; the rule-based state
machine (test_payload_manager_state.py) explores the interleavings.
"""

from __future__ import annotations

import pytest

from fsw.core.payloads import LIFECYCLE, REQUESTS, STATES
from fsw.protocol.pus import PusTm
from tests.sim.helpers import Bench


def received(b: Bench, unit: str) -> int:
    return b.payloads[unit].stats["tc_received"]


def pdu_switches(b: Bench, channel: str) -> list[str]:
    return [e["PDU_SW_STATE"] for _, e in b.events("PDU", "PDU_SWITCHED") if e["PDU_SW_CH"] == channel]


def state(b: Bench, unit: str) -> str:
    return b.fsw.payloads.payloads[unit].state


def test_the_life_cycle_table_is_complete_and_closed() -> None:
    states = set(STATES)
    for (s, _event), (nxt, action) in LIFECYCLE.items():
        assert s in states and nxt in states
        assert action is None or hasattr(__import__("fsw.core.payloads", fromlist=["PayloadManager"]).PayloadManager,
                                         "_act_" + action)
    assert set(REQUESTS) == states
    # fault protection has a row wherever a payload can be powered; nothing latched can be powered
    for s in ("BOOTING", "IDLE", "OPERATING"):
        assert {"SILENT", "SILENT_SAFE", "SILENT_OFF", "TRIP", "POWER_OFF"} <= {e for (x, e) in LIFECYCLE if x == s}
    for s in ("SAFE", "FAULT"):
        assert LIFECYCLE[(s, "CHANNEL_ON")] == (s, "switch_off") and REQUESTS[s]["POWER_ON"] == "FAULT_ACTIVE"


def test_power_budget_refuses_before_anything_is_switched_or_forwarded() -> None:
    b = Bench()                                          # all four payloads on, 19.4 W of 60 W in PRELAUNCH
    b.run(7)
    assert b.fsw.payloads.committed_w() == pytest.approx(19.4)
    drill = b.send("LISTER_DRILL_STEP", step_cm=10, measure_s=0)   # +35 W -> 54.4 W
    b.run(1)
    assert b.verif(drill) == [1, 3]
    before = received(b, "LUSEE")
    sci = b.send("LUSEE_SET_MODE", mode="SCIENCE")     # +10.1 W -> 64.5 W > 60 W
    b.run(1)
    assert b.failure(sci) == "POWER_BUDGET" and b.verif(sci) == [2]
    assert received(b, "LUSEE") == before               # never forwarded
    assert b.payloads["LUSEE"].mode == "ANALOG"
    heater = b.send("HEATER_ON", unit="FSS")            # +6 W -> 60.4 W > 60 W: also refused, nothing switched
    b.run(1)
    assert b.failure(heater) == "POWER_BUDGET" and pdu_switches(b, "FSS_HTR") == []
    power = b.hk("POWER_HK")[-1]
    assert power["POWER_COMMITTED_W"] == pytest.approx(54.4) and power["POWER_ALLOC_W"] == 60
    assert power["POWER_BUS_W"] == pytest.approx(54.4, abs=1.0)   # what the PDU measures agrees
    (_, rej), *_ = [e for e in b.events("LANDER", "TC_REJECTED") if e[1]["REJ_CODE"] == "POWER_BUDGET"]
    assert rej["REJ_APID"] == b.d.system("LUSEE").apid
    b.run(200)                                          # the step is done: LISTER back to 5 W
    ok = b.send("LUSEE_SET_MODE", mode="SCIENCE")
    b.run(2)
    assert b.verif(ok) == [1, 3, 7] and b.fsw.payloads.committed_w() == pytest.approx(19.4 + 10.1)


def test_phase_rules_for_commands_power_and_the_phase_change_itself() -> None:
    b = Bench()
    b.run(7)
    b.send("LUSEE_SET_MODE", mode="SCIENCE")
    b.run(2)
    cruise = b.send("SET_PHASE", phase="CRUISE")       # LuSEE may not run SCIENCE in cruise: vetoed
    b.run(1)
    assert b.failure(cruise) == "PHASE_FORBIDS" and b.fsw.phases.current.name == "PRELAUNCH"
    b.send("LUSEE_SET_MODE", mode="ANALOG")
    b.run(2)
    cruise = b.send("SET_PHASE", phase="CRUISE")
    b.run(1)
    assert b.verif(cruise) == [1, 3, 7] and b.fsw.phases.current.name == "CRUISE"
    before = received(b, "FSS")
    sci = b.send("FSS_SET_MODE", mode="SCIENCE")        # not a cruise mode for the FSS
    chk = b.send("FSS_SET_MODE", mode="CHECKOUT")       # the L+1 d heartbeat checkout is
    b.run(2)
    assert b.failure(sci) == "PHASE_FORBIDS" and b.verif(chk) == [1, 3, 7]
    assert received(b, "FSS") == before + 1
    launch = b.send("SET_PHASE", phase="LAUNCH")        # payloads must be off for launch: vetoed, nothing switched
    b.run(1)
    assert b.failure(launch) == "PHASE_FORBIDS" and all(state(b, u) != "OFF" for u in b.payloads)
    offs = [b.send("PAYLOAD_POWER_OFF", unit=u) for u in b.payloads]
    b.run(1)
    assert [b.verif(t) for t in offs] == [[1, 3, 7]] * 4 and all(state(b, u) == "OFF" for u in b.payloads)
    assert all(not m.powered for m in b.payloads.values())
    launch = b.send("SET_PHASE", phase="LAUNCH")
    b.run(1)
    assert b.verif(launch) == [1, 3, 7]
    on = b.send("PAYLOAD_POWER_ON", unit="FSS")
    heat = b.send("HEATER_ON", unit="FSS")
    b.run(1)
    assert b.failure(on) == "PHASE_FORBIDS" and b.failure(heat) == "PHASE_FORBIDS"
    assert not b.payloads["FSS"].powered and pdu_switches(b, "FSS_HTR") == []


def test_a_silent_payload_is_power_cycled_then_latched_safe_and_that_survives_a_restart() -> None:
    b = Bench(power=("FSS", "LUSEE"))
    b.run(7)
    b.send("LUSEE_SET_MODE", mode="SCIENCE")
    b.run(2)
    fss = b.payloads["FSS"]
    pl = b.fsw.payloads.payloads["FSS"]
    fss.silent = True                                    # dead, whatever its power does
    last = pl.last_heard
    b.run(8)
    (t_silent, silent), = b.events("LANDER", "PAYLOAD_SILENT")
    assert silent == {"PL_UNIT": "FSS", "PL_STRIKES": 1, "PL_SILENT_S": 5}
    assert 5 < t_silent - last <= 6.01                   # 5 housekeeping periods of silence, 1 s monitoring
    b.run(60)
    strikes = [e["PL_STRIKES"] for _, e in b.events("LANDER", "PAYLOAD_SILENT")]
    assert strikes == [1, 2, 3]
    assert pdu_switches(b, "FSS") == ["ON", "OFF", "ON", "OFF", "ON", "OFF"]   # two power cycles, then off
    (_, safed), = b.events("LANDER", "PAYLOAD_SAFED")
    assert safed == {"PL_UNIT": "FSS", "PL_TO": "SAFE", "PL_STRIKES": 3}
    assert pl.state == "SAFE" and not fss.powered and fss.stats["power_cycles"] == 3
    b.run(120)                                           # latched: no reset loop
    assert len(pdu_switches(b, "FSS")) == 6
    on = b.send("PAYLOAD_POWER_ON", unit="FSS")
    ping = b.send("PING", "FSS")
    b.run(1)
    assert b.failure(on) == "FAULT_ACTIVE" and b.failure(ping) == "FAULT_ACTIVE"
    assert b.fsw.payloads.payloads["LUSEE"].state == "OPERATING" and b.fsw.payloads.payloads["LUSEE"].drops == 0
    hk = b.payload_hk("FSS")[-1]
    assert hk["PL_STATE"] == "SAFE" and hk["PL_HB_FAILS"] == 3 and hk["PL_HB_STRIKES"] == 3
    # a restart of the flight software remembers the latch and the counts
    b.restart_fsw()
    b.run(3)
    assert state(b, "FSS") == "SAFE" and b.fsw.payloads.payloads["FSS"].hb_total == 3
    assert len(pdu_switches(b, "FSS")) == 6 and state(b, "LUSEE") == "OPERATING"   # LuSEE adopted as it runs
    # ground clears it; the payload is repaired; power-on works again
    reset = b.send("PAYLOAD_RESET", unit="FSS")
    b.run(1)
    assert b.verif(reset) == [1, 3, 7] and state(b, "FSS") == "OFF"
    pl = b.fsw.payloads.payloads["FSS"]
    assert pl.strikes == 0 and pl.hb_total == 3
    fss.silent = False
    on = b.send("PAYLOAD_POWER_ON", unit="FSS")
    b.run(7)
    assert b.verif(on) == [1, 3, 5, 7] and state(b, "FSS") == "IDLE"
    again = b.send("PAYLOAD_RESET", unit="FSS")
    b.run(1)
    assert b.failure(again) == "WRONG_MODE"


def test_a_crashed_payload_recovers_with_one_power_cycle() -> None:
    b = Bench(power=("LMS",))
    b.run(6)
    b.payloads["LMS"].crash(b.clock.now())
    b.run(20)
    pl = b.fsw.payloads.payloads["LMS"]
    assert pl.state == "IDLE" and pl.strikes == 1 and pl.hb_total == 1
    assert pdu_switches(b, "LMS") == ["ON", "OFF", "ON"]
    hk = b.payload_hk("LMS")[-1]
    assert hk["PL_HB_FAILS"] == 1 and hk["PL_LAST_HEARD"] <= 1
    states = [e["PL_TO"] for _, e in b.events("LANDER", "PAYLOAD_STATE_CHANGED") if e["PL_UNIT"] == "LMS"]
    assert states == ["BOOTING", "IDLE", "BOOTING", "IDLE"]


def test_a_babbling_payload_is_contained() -> None:
    b = Bench(power=("LISTER", "LUSEE"))
    b.run(6)
    b.send("LUSEE_SET_MODE", mode="SCIENCE")
    b.run(2)
    lusee_bytes = b.fsw.payloads.payloads["LUSEE"].sci_bytes
    b.payloads["LISTER"].babble = True
    b.run(60)
    lister = b.fsw.payloads.payloads["LISTER"]
    assert lister.state == "SAFE" and b.payloads["LISTER"].stats["babble_bytes"] > 0
    assert b.fsw.deframers["lister"].dropped_bytes > 1000
    assert any(e["EVT_PORT"] == "LISTER" for _, e in b.events("LANDER", "FRAMES_DROPPED"))
    lusee = b.fsw.payloads.payloads["LUSEE"]
    assert lusee.state == "OPERATING" and lusee.drops == 0
    assert (lusee.sci_bytes - lusee_bytes) / 60 == pytest.approx(5280, rel=0.05)  # unaffected science
    ping = b.send("PING", "LUSEE")
    b.run(1)
    assert b.verif(ping) == [1, 3, 7]


def test_overcurrent_puts_the_payload_in_fault_until_reset() -> None:
    b = Bench(power=("LUSEE", "FSS"))
    b.run(6)
    b.hw.inject("LUSEE", "overcurrent")
    b.run(2)
    pl = b.fsw.payloads.payloads["LUSEE"]
    assert pl.state == "FAULT" and not b.payloads["LUSEE"].powered
    (_, evt), = b.events("LANDER", "PAYLOAD_OVERCURRENT")
    assert evt == {"PL_UNIT": "LUSEE", "PL_HEATER_TRIP": False}
    assert [e["PDU_TRIP_CH"] for _, e in b.events("PDU", "PDU_TRIP")] == ["LUSEE"]
    assert b.fsw.power.state("LUSEE").tripped
    cmd = b.send("LUSEE_SET_MODE", mode="ON")
    on = b.send("PAYLOAD_POWER_ON", unit="LUSEE")
    fss_ping = b.send("PING", "FSS")
    b.run(1)
    assert b.failure(cmd) == "FAULT_ACTIVE" and b.failure(on) == "FAULT_ACTIVE"
    assert b.verif(fss_ping) == [1, 3, 7]
    b.hw.inject("LUSEE", "clear")
    reset = b.send("PAYLOAD_RESET", unit="LUSEE")
    b.run(1)
    assert b.verif(reset) == [1, 3, 7] and pl.state == "OFF" and not b.fsw.power.state("LUSEE").tripped
    assert not b.pdu.channel("LUSEE").tripped
    on = b.send("PAYLOAD_POWER_ON", unit="LUSEE")
    b.run(6)
    assert b.verif(on) == [1, 3, 5, 7] and pl.state == "IDLE"
    # the flight software's own PDU commands were answered on board, never forwarded to ground
    pdu = b.d.system("PDU")
    assert all(tm.dest_id != b.d.lander.apid for tm in b.probe.tms(1, apid=pdu.apid))
    assert b.fsw.power.stats.tc_sent >= 4 and b.probe.tms(3, 25, apid=pdu.apid)


class DropFirst:
    """A line impairment: the first ``n`` writes are lost (then the line is clean)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        if self.n > 0 and data:
            self.n -= 1
            return []
        return [(0.0, data)]


class Deaf:
    """The line towards the payload is broken: nothing arrives (its own output still does)."""

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        return []


def test_forwarded_commands_are_retried_then_timed_out_by_policy() -> None:
    b = Bench(power=("FSS", "LISTER"))
    b.run(7)
    wire = b.runner.wire_from(b.fsw, "fss")
    b.run(0.5)
    wire.impair = DropFirst(1)
    ping = b.send("PING", "FSS")                          # lost once, re-sent after 2 s, answered
    b.run(4)
    assert b.verif(ping) == [1, 3, 7]
    (_, retry), = b.events("LANDER", "PAYLOAD_TC_RETRY")
    assert retry == {"PL_UNIT": "FSS", "PL_TC_SERVICE": 17, "PL_TC_SUBSERVICE": 1, "PL_ATTEMPT": 2}
    wire.impair = Deaf()
    ping = b.send("PING", "FSS")                          # FSS policy: 2 retries, then TIMEOUT
    b.run(7)
    assert b.failure(ping) == "TIMEOUT" and b.verif(ping) == [2]
    (_, tmo), = b.events("LANDER", "PAYLOAD_TC_TIMEOUT")
    assert tmo == {"PL_UNIT": "FSS", "PL_TC_SERVICE": 17, "PL_TC_SUBSERVICE": 1}
    pl = b.fsw.payloads.payloads["FSS"]
    assert pl.retries == 3 and pl.timeouts == 1 and pl.state in ("IDLE", "OPERATING")  # its heartbeat is fine
    b.runner.wire_from(b.fsw, "lister").impair = Deaf()
    step = b.send("LISTER_DRILL_STEP", step_cm=5, measure_s=0)   # LISTER policy: no retries (no double drilling)
    b.run(3)
    assert b.failure(step) == "TIMEOUT" and b.fsw.payloads.payloads["LISTER"].retries == 0
    assert b.fsw.payloads.committed_w() == pytest.approx(8 + 5)   # the reservation for DRILL was released
    hk = b.payload_hk("FSS")[-1]
    assert hk["PL_RETRIES"] == 3 and hk["PL_TIMEOUTS"] == 1


def test_ground_commands_to_the_pdu_obey_the_same_rules() -> None:
    b = Bench(power=())
    b.run(3)
    fire = b.send("PDU_SWITCH", channel="ALPINE", state="ON")   # only the deploy manager powers actuators
    b.run(1)
    assert b.failure(fire) == "NOT_ARMED" and not b.pdu.channel("ALPINE").on
    direct = b.send("PDU_SWITCH", channel="FSS", state="ON")    # a payload switched on at the PDU is adopted
    b.run(7)
    assert b.verif(direct) == [1, 3, 7] and state(b, "FSS") == "IDLE"
    assert b.fsw.payloads.committed_w() == pytest.approx(8)
    b.send("PAYLOAD_POWER_OFF", unit="FSS")
    b.run(1)
    b.send("SET_PHASE", phase="DESCENT")
    b.run(1)
    assert b.fsw.phases.current.name == "DESCENT"
    main = b.send("PDU_SWITCH", channel="LUSEE", state="ON")    # no payload power in DESCENT
    heater = b.send("PDU_SWITCH", channel="LUSEE_HTR", state="ON")   # survival heaters are allowed
    b.run(1)
    assert b.failure(main) == "PHASE_FORBIDS" and b.verif(heater) == [1, 3, 7]
    assert b.fsw.payloads.committed_w() == pytest.approx(3)


def test_stale_pdu_data_is_flagged_and_switching_without_the_pdu_is_refused() -> None:
    b = Bench(power=("FSS",))
    b.run(7)
    b.runner.set_line(b.fsw, "pdu", False)
    b.run(6)
    assert b.events("LANDER", "POWER_DATA_STALE")
    assert b.fsw.power.is_stale("FSS", b.clock.now())
    power = b.hk("POWER_HK")[-1]
    assert power["POWER_PDU_STALE"] is True and power["POWER_PDU_AGE"] >= 3
    off = b.send("PAYLOAD_POWER_OFF", unit="FSS")
    on = b.send("PAYLOAD_POWER_ON", unit="LMS")
    b.run(1)
    assert b.failure(off) == "LINK_DOWN" and b.failure(on) == "LINK_DOWN"
    # energy accounting falls back to the declared power while the readings are stale
    e0 = b.fsw.payloads.payloads["FSS"].energy_wh
    b.run(36)
    assert b.fsw.payloads.payloads["FSS"].energy_wh - e0 == pytest.approx(8 * 36 / 3600, rel=0.05)


def test_a_phase_that_speeds_the_pdu_up_does_not_call_its_last_slow_report_stale() -> None:
    """LUNAR_ORBIT polls the PDU every 30 s, DESCENT every second: the staleness limit shrinks at once, but
    the report before the change is not late until the first one at the new rate is.  A PDU that then
    really goes quiet is still flagged."""
    b = Bench(power=(), options={"initial_phase": "LUNAR_ORBIT"})
    b.run(100)
    tc = b.send("SET_PHASE", phase="DESCENT")
    b.run(30)
    assert b.verif(tc) == [1, 3, 7]
    assert b.events("LANDER", "POWER_DATA_STALE") == []
    b.runner.set_line(b.fsw, "pdu", False)
    b.run(10)
    assert len(b.events("LANDER", "POWER_DATA_STALE")) == 1


def test_accounting_survives_a_restart_and_counters_only_grow() -> None:
    b = Bench(power=("LMS",))
    b.run(5)
    b.send("LMS_SET_MODE", mode="DEPLOY")
    b.run(70)                                            # past one persistence period (60 s)
    pl = b.fsw.payloads.payloads["LMS"]
    assert pl.packets > 60 and pl.energy_wh == pytest.approx((11 * 68 + 3 * 2) / 3600, rel=0.1)
    persisted = b.fsw.payloads.payloads["LMS"].packets
    t_restart = b.clock.now()
    b.restart_fsw()
    b.run(10)
    again = b.fsw.payloads.payloads["LMS"]
    assert again.state == "OPERATING" and again.mode == "DEPLOY"   # adopted as it runs
    # what the durable record held came back (at most one persistence period of counts is lost)
    assert again.packets >= persisted - 61 and again.energy_wh >= pl.energy_wh - 11 * 60 / 3600
    pkt = b.d.packet("PAYLOAD_HK")
    before, after = [], []
    for t, tm in zip(b.probe.arrival, b.probe.received):
        if isinstance(tm, PusTm) and tm.apid == b.d.lander.apid and (tm.service, tm.subservice) == (3, 25) \
                and int.from_bytes(tm.source_data[:2], "big") == pkt.sid:
            rec = b.d.codec(pkt).decode(tm.source_data)
            if rec["PL_UNIT"] == "LMS":
                (before if t < t_restart else after).append(rec)
    assert len(before) > 60 and len(after) >= 8
    for seg in (before, after):   # within one run of the flight software, the counters only grow
        for k in ("PL_PACKETS", "PL_BYTES", "PL_ENERGY", "PL_HB_FAILS"):
            assert all(x[k] <= y[k] for x, y in zip(seg, seg[1:])), k


def test_the_documented_life_cycle_is_the_code_s() -> None:
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "payloads.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in STATES and cells[2] in STATES:
            rows[(cells[0], cells[1])] = (cells[2], None if cells[3] == "—" else cells[3])
    assert rows == dict(LIFECYCLE)


def test_a_heater_trip_faults_the_payload_and_switches_its_main_line_off() -> None:
    b = Bench(power=("FSS",))
    b.run(7)
    on = b.send("HEATER_ON", unit="FSS")
    b.run(1)
    assert b.verif(on) == [1, 3, 7] and b.pdu.channel("FSS_HTR").on
    b.hw.inject("PDU", "overcurrent:FSS_HTR")
    b.run(1)
    (_, evt), = b.events("LANDER", "PAYLOAD_OVERCURRENT")
    assert evt == {"PL_UNIT": "FSS", "PL_HEATER_TRIP": True}
    assert state(b, "FSS") == "FAULT" and not b.payloads["FSS"].powered and not b.pdu.channel("FSS_HTR").on
    b.hw.inject("PDU", "clear")
    reset = b.send("PAYLOAD_RESET", unit="FSS")
    b.run(1)
    assert b.verif(reset) == [1, 3, 7] and not b.pdu.channel("FSS_HTR").tripped and state(b, "FSS") == "OFF"


def test_after_a_restart_a_payload_found_on_counts_at_the_power_its_current_shows() -> None:
    """(Found by the state machine: counting it at its highest mode put the books over the allocation.)"""
    b = Bench(power=("FSS", "LISTER"))
    b.run(7)
    b.payloads["LISTER"].silent = True            # it will be power-cycled, silent, in STANDBY (5 W)
    b.send("SET_PHASE", phase="LUNAR_ORBIT")      # 45 W
    b.run(10)
    assert b.fsw.phases.current.name == "LUNAR_ORBIT"
    b.runner.run_until(float(int(b.clock.now()) + 1))
    b.restart_fsw()
    b.wait_pdu()
    b.run(0.5)
    lister = b.fsw.payloads.payloads["LISTER"]
    assert lister.state == "BOOTING" and lister.adopted
    assert b.fsw.payloads.payload_committed_w(lister) == pytest.approx(5.0)   # not DRILL's 40 W
    assert b.fsw.payloads.committed_w() <= 45


def test_an_adopted_payload_read_during_its_inrush_counts_at_its_mode_not_at_its_maximum() -> None:
    """(Found by the state machine: a PDU sample caught the inrush tail of a power-cycled FSS after a restart.)"""
    import dataclasses
    b = Bench(power=("FSS",))
    b.run(7)
    mgr = b.fsw.payloads
    fss = mgr.payloads["FSS"]
    fss.state, fss.adopted = "BOOTING", True
    st = b.fsw.power.state("FSS")
    for watts, expected in ((13.7, 8.0), (15.2, 15.0), (8.1, 8.0), (0.0, 8.0), (70.0, 15.0)):
        b.fsw.power._state["FSS"] = dataclasses.replace(st, current_a=watts / 28.0)
        assert mgr.payload_committed_w(fss) == pytest.approx(expected), watts
