"""The flight software's first services, with the simulated payloads, in simulated time.

Payloads start unpowered, as on the lander: each test that talks to a payload
first switches it on through the flight software (PAYLOAD_POWER_ON) and checks
that this succeeded.
"""

from __future__ import annotations

from fsw.protocol.pus import PusTc
from tests.sim.helpers import Bench


def _verif(bench: Bench, tc: PusTc) -> list[int]:
    """Subservices of the PUS-1 reports received for ``tc``, in arrival order."""
    out = []
    for tm in bench.probe.tms(service=1):
        pid, ctrl = int.from_bytes(tm.source_data[:2], "big"), int.from_bytes(tm.source_data[2:4], "big")
        if pid == 0x1800 | tc.apid and ctrl & 0x3FFF == tc.seq_count:
            out.append(tm.subservice)
    return out


def _powered(*names: str) -> Bench:
    """A bench whose named payloads were switched on through the flight software and are answering."""
    b = Bench(power=())
    tcs = b.power_on(*names, run=6)  # longest boot is 5 s
    for name, tc in tcs.items():
        assert _verif(b, tc) == [1, 3, 5, 7], name  # accepted, started, switched (progress), heard (completed)
        assert b.fsw.payloads.payloads[name].state in ("IDLE", "OPERATING"), name
    return b


def test_ping_lander_gets_acceptance_start_completion_and_reply() -> None:
    b = Bench(power=())
    b.run(6)
    tc = b.send("PING")
    b.run(1)
    assert _verif(b, tc) == [1, 3, 7]
    assert b.probe.tms(17, 2, apid=b.d.lander.apid)


def test_ping_each_payload_is_routed_and_answered_by_the_payload() -> None:
    b = _powered(*Bench(power=()).payloads)
    routed_before = b.fsw.counters.tc_routed
    sent = {name: b.send("PING", name) for name in b.payloads}
    b.run(1)
    for name, tc in sent.items():
        assert _verif(b, tc) == [1, 3, 7], name
        assert b.probe.tms(17, 2, apid=b.d.system(name).apid), name
    assert b.fsw.counters.tc_routed - routed_before == len(sent)


def test_a_payload_that_is_off_gets_no_command() -> None:
    b = Bench(power=())
    b.run(6)
    tc = b.send("PING", "FSS")
    b.run(1)
    assert _verif(b, tc) == [2]
    assert b.failure(tc) == "PAYLOAD_UNPOWERED"
    assert b.payloads["FSS"].stats["tc_received"] == 0 and b.payloads["FSS"].stats["tc_unpowered"] == 0


def test_mode_command_changes_payload_housekeeping() -> None:
    b = _powered("FSS")
    tc = b.send("FSS_SET_MODE", mode="SCIENCE")
    b.run(3)
    assert _verif(b, tc) == [1, 3, 7]
    hk = b.d.system("FSS").packet("FSS_HK")
    last = [t for t in b.probe.tms(3, 25, apid=0x20)][-1]
    assert b.d.codec(hk).decode(last.source_data)["FSS_MODE"] == "SCIENCE"


def test_unknown_apid_and_bad_arguments_are_rejected_with_reason() -> None:
    b = _powered("LUSEE")
    rejected_before = b.fsw.counters.tc_rejected
    bad_apid = PusTc(0x555, 17, 1, seq_count=99)
    b.probe.send_tc(bad_apid)
    cmd = b.d.command("LUSEE_SET_INTEGRATION")
    short = PusTc(cmd.apid, 8, 1, b"\x00\x02\x00", seq_count=100)  # one octet short
    b.probe.send_tc(short)
    b.run(1)
    assert _verif(b, bad_apid) == [2]
    assert _verif(b, short) == [2]
    fail = [t for t in b.probe.tms(1, 2)]
    codes = {int.from_bytes(t.source_data[4:6], "big") for t in fail}
    assert codes == {b.d.failure_code("ILLEGAL_APID"), b.d.failure_code("BAD_LENGTH")}
    assert b.fsw.counters.tc_rejected - rejected_before == 1  # the short TC was routed, the payload rejected it


def test_housekeeping_time_at_the_tone_and_link_stats() -> None:
    b = _powered("FSS")
    b.run(20)
    hk = b.probe.tms(3, 25, apid=b.d.lander.apid)
    lander_hk = b.d.lander.packet("LANDER_HK")
    link_hk = b.d.lander.packet("LINK_HK")
    lhk = [b.d.codec(lander_hk).decode(t.source_data) for t in hk if t.source_data[:2] == b"\x00\x01"]
    links = [b.d.codec(link_hk).decode(t.source_data) for t in hk if t.source_data[:2] == b"\x00\x02"]
    assert len(lhk) >= 24
    assert lhk[-1]["UPTIME"] >= 24
    units = {s.port.upper() for s in b.d.systems if s.kind != "lander"}
    assert {r["LINK_PORT"] for r in links} == {"GROUND"} | units
    assert {"PDU", "FSS", "LISTER", "LMS", "LUSEE"} <= units
    # the payload followed the time messages: its clock error is tiny once synced
    fss = b.units["FSS"]
    assert fss.stats["time_syncs"] >= 14
    assert abs(fss.local_time(b.clock.now()) - b.clock.now()) < 0.001


def test_garbage_on_a_payload_line_is_counted_and_does_not_stop_others() -> None:
    b = _powered("FSS", "LISTER")
    # a babbling LISTER: junk straight into the flight software's lister port
    b.fsw.receive("lister", bytes(range(256)) * 4 + b"\x1a\xcf\xfc\x1d\xff\xff", b.clock.now())
    tc = b.send("PING", "FSS")
    b.run(2)
    assert _verif(b, tc) == [1, 3, 7]
    assert b.fsw.deframers["lister"].dropped_bytes > 1000
    events = b.probe.tms(5)
    assert any(int.from_bytes(e.source_data[:2], "big") == 5 for e in events)  # FRAMES_DROPPED


def test_same_seed_same_bytes() -> None:
    def run(seed: int) -> list[bytes]:
        b = Bench(seed=seed)
        b.run(6)
        b.send("FSS_SET_MODE", mode="CHECKOUT")
        b.run(10)
        return b.probe.raw
    assert run(7) == run(7)


def test_phase_change_is_verified_reported_and_survives_restart() -> None:
    from fsw.core.flight import build_flight_software
    b = Bench(power=())
    b.run(2)
    tc = b.send("SET_PHASE", phase="CRUISE")
    b.run(1)
    assert _verif(b, tc) == [1, 3, 7]
    assert b.fsw.phases.current.name == "CRUISE"
    evt = b.d.event("LANDER", "PHASE_CHANGED")
    assert any(int.from_bytes(e.source_data[:2], "big") == evt.id for e in b.probe.tms(5, 1))
    # a restart on the same durable store comes back in CRUISE
    again = build_flight_software(b.d, b.fsw.store)
    again.start(b.clock.now())
    assert again.phases.current.name == "CRUISE" and again.restarts == 2
