"""Onboard scheduling on the simulated bench: time-tagged TCs, sequences and planned activities, end to end."""

from __future__ import annotations

from pathlib import Path

from fsw.core.schedule import encode_insert
from fsw.protocol.pus import PusTc, PusTm
from tests.sim.helpers import Bench


def verif(b: Bench, tc: PusTc) -> list[tuple[int, float]]:
    """(subservice, packet time) of every PUS-1 report the ground received for ``tc``."""
    out = []
    for tm in b.probe.tms(service=1):
        sd = tm.source_data
        if int.from_bytes(sd[:2], "big") == 0x1800 | tc.apid and int.from_bytes(sd[2:4], "big") & 0x3FFF == tc.seq_count:
            out.append((tm.subservice, tm.time))
    return out


def raw_tc(b: Bench, name: str, data: bytes) -> PusTc:
    cmd = b.d.command(name)
    fid = cmd.function_id.to_bytes(2, "big") if cmd.function_id is not None else b""
    tc = PusTc(cmd.apid, cmd.service, cmd.subservice, fid + data, seq_count=b.seq)
    b.seq += 1
    b.probe.send_tc(tc)
    return tc


def events(b: Bench, name: str) -> list[tuple[float, dict]]:
    evt = b.d.lander.event(name)
    return [(tm.time, b.d.event_codec(evt).decode(tm.source_data[2:])) for tm in b.probe.tms(5, apid=b.d.lander.apid)
            if int.from_bytes(tm.source_data[:2], "big") == evt.id]


def unit_mode(b: Bench, unit: str) -> str:
    s = b.d.system(unit)
    hk = s.packet(f"{unit}_HK")
    last: PusTm = [t for t in b.probe.tms(3, 25, apid=s.apid) if t.source_data[:2] == hk.sid.to_bytes(2, "big")][-1]
    return b.d.codec(hk).decode(last.source_data)[f"{unit}_MODE"]


def test_time_tagged_commands_are_released_in_simulated_time_with_verification_to_ground() -> None:
    b = Bench()
    b.run(6)  # payloads booted
    t0 = b.clock.now()
    ping = b.tc("PING")
    mode = b.tc("FSS_SET_MODE", mode="SCIENCE")
    fss_ping = b.tc("PING", "FSS")
    ins = raw_tc(b, "SCHED_INSERT", encode_insert([(t0 + 120, mode), (t0 + 30, ping), (t0 + 120, fss_ping)]))
    b.run(10)
    assert [s for s, _ in verif(b, ins)] == [1, 3, 7]
    assert verif(b, ping) == [] and unit_mode(b, "FSS") != "SCIENCE"
    b.run(150)
    lander = verif(b, ping)
    assert [s for s, _ in lander] == [1, 3, 7] and all(t0 + 30 <= t < t0 + 31 for _, t in lander)
    fss = verif(b, mode)  # the FSS's own reports, routed through the lander to ground
    assert [s for s, _ in fss] == [1, 3, 7] and all(t0 + 120 <= t < t0 + 121 for _, t in fss)
    assert [s for s, _ in verif(b, fss_ping)] == [1, 3, 7]
    assert b.probe.tms(17, 2, apid=b.d.system("FSS").apid)
    assert unit_mode(b, "FSS") == "SCIENCE"
    released = [e["SCHED_EVT_SEQ"] for _, e in events(b, "SCHED_RELEASED")]
    assert released == [ping.seq_count, mode.seq_count, fss_ping.seq_count]  # ties in filing order


def test_an_uploaded_sequence_waits_on_payload_telemetry() -> None:
    b = Bench()
    b.run(6)
    text = b"""sequence USER_1
  FSS_SET_MODE mode=CHECKOUT
  wait FSS_MODE == CHECKOUT timeout 30s
  at +20s FSS_SET_MODE mode=SCIENCE
  wait FSS_MODE == SCIENCE timeout 30s
  wait LUSEE_MODE == SCIENCE timeout 10s else continue
"""
    seq_id = b.d.lander.enums["SEQ_ID"].values["USER_1"]
    up = raw_tc(b, "SEQ_UPLOAD", bytes([seq_id]) + text)
    b.run(1)
    start = b.send("SEQ_START", seq="USER_1")
    t0 = b.clock.now()
    b.run(120)
    assert [s for s, _ in verif(b, up)] == [1, 3, 7] and [s for s, _ in verif(b, start)] == [1, 3, 7]
    progress = events(b, "SEQ_PROGRESS")
    assert [e["SEQ_EVT_LINE"] for _, e in progress] == [2, 3, 4, 5, 6]
    # the first wait ended on the next FSS housekeeping packet (1 s period), the mode command 20 s later
    assert progress[1][0] - t0 < 2.5 and 20 <= progress[2][0] - progress[1][0] < 21
    (t_timeout, _), = events(b, "SEQ_WAIT_TIMEOUT")
    assert t_timeout - progress[3][0] == 10.0
    (t_done, done), = events(b, "SEQ_COMPLETED")
    assert done == {"SEQ_EVT_ID": "USER_1", "SEQ_EVT_STEPS": 5} and t_done == t_timeout
    assert unit_mode(b, "FSS") == "SCIENCE"


def test_a_planned_activity_switches_the_payload_in_and_out_of_its_mode() -> None:
    b = Bench()
    b.run(6)
    t0 = b.clock.now()
    lusee = b.d.system("LUSEE")
    tc = b.send("PLAN_ACTIVITY", unit="LUSEE", mode=lusee.modes.index("SCIENCE"), start=t0 + 30, duration_s=60)
    b.run(50)
    assert [s for s, _ in verif(b, tc)] == [1, 3, 7]
    assert unit_mode(b, "LUSEE") == "SCIENCE"
    b.run(60)
    assert unit_mode(b, "LUSEE") == "OFF"  # PRELAUNCH has no baseline: back to OFF
    too_much = b.send("PLAN_ACTIVITY", unit="LISTER", mode=b.d.system("LISTER").modes.index("DRILL"),
                      start=b.clock.now() + 50, duration_s=100)
    also = b.send("PLAN_ACTIVITY", unit="LUSEE", mode=lusee.modes.index("SCIENCE"),
                  start=b.clock.now() + 60, duration_s=100)
    b.send("PLAN_ACTIVITY", unit="LMS", mode=b.d.system("LMS").modes.index("SCIENCE"),
           start=b.clock.now() + 70, duration_s=100)
    b.run(5)
    assert [s for s, _ in verif(b, too_much)] == [1, 3, 7] and [s for s, _ in verif(b, also)] == [1, 3, 7]
    (_, refused), = events(b, "PLAN_REJECTED")  # 40 + 13.5 + 11 W > the 60 W PRELAUNCH allocation
    assert refused["PLAN_EVT_BUDGET"] == "POWER" and refused["PLAN_EVT_UNIT"] == "LMS"


def test_a_reference_sequence_runs_against_the_payload_models() -> None:
    """LMS_DEPLOYMENT from the onboard library: power on, deploy four electrodes and the mast, start science."""
    seq_dir = Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference" / "sequences"
    texts = [p.read_text() for p in sorted(seq_dir.glob("*.seq"))]
    b = Bench(power=(), options={"sequences": texts, "initial_phase": "SURFACE"})
    b.run(5)
    start = b.send("SEQ_START", seq="LMS_DEPLOYMENT")
    b.run(400)
    assert [s for s, _ in verif(b, start)] == [1, 3, 7]
    assert not events(b, "SEQ_ABORTED")
    (_, done), = events(b, "SEQ_COMPLETED")
    assert done["SEQ_EVT_ID"] == "LMS_DEPLOYMENT"
    assert len(events(b, "SEQ_PROGRESS")) == done["SEQ_EVT_STEPS"]
    lms = b.d.system("LMS")
    hk = lms.packet("LMS_HK")
    last = [t for t in b.probe.tms(3, 25, apid=lms.apid) if t.source_data[:2] == hk.sid.to_bytes(2, "big")][-1]
    values = b.d.codec(hk).decode(last.source_data)
    assert (values["LMS_MODE"], values["LMS_ELECTRODES_OUT"], values["LMS_MAST_DEPLOYED"]) == ("SCIENCE", 4, True)
