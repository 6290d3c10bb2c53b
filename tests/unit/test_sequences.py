"""Stored command sequences: parsing (good and bad files, line-numbered errors), waits, time-outs, the runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.pusgen import TmSource
from fsw.core.sequences import (
    SEQ_COUNT_BASE, ParameterTable, SequenceError, parse_duration, parse_sequence, sequence_name,
)
from fsw.core.state import MemoryStore
from fsw.dictionary import load_dictionary
from fsw.protocol.pus import PusTc, parse_packet
from tests.conftest import examples
from tests.unit.test_schedule import T0, Harness

D = load_dictionary()
SEQ_DIR = Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference" / "sequences"
REFERENCE = sorted(SEQ_DIR.glob("*.seq"))


# -- parsing -------------------------------------------------------------------------------------------------
def test_there_are_reference_sequences() -> None:
    assert len(REFERENCE) >= 4


@pytest.mark.parametrize("path", REFERENCE, ids=lambda p: p.name)
def test_reference_sequences_validate_against_the_dictionary(path: Path) -> None:
    seq = parse_sequence(path.read_text(), D, path.name)
    assert seq.name in D.lander.enums["SEQ_ID"].values
    assert seq.steps and all(s.line > 0 for s in seq.steps)
    assert sequence_name(path.read_text()) == seq.name


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("2", 2), ("0.5s", 0.5), ("500ms", 0.5), ("1h30m", 5400), ("2m", 120), ("1d", 86400),
    ("1h0m5s", 3605)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "-5s", "1.5.5s", "5 s", "31d", "h1"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_sequence_parses_into_validated_steps() -> None:
    seq = parse_sequence("""
# comment line
sequence USER_1            # trailing comment
  PING@fss
  at +1m30s fss_set_mode mode=checkout
  wait FSS_MODE == CHECKOUT timeout 2m else continue
  at +5s wait 10s
  wait FSS_TILT < -12.5 timeout 30s
  LUSEE_SET_INTEGRATION integration_ms=0x3E8
""", D, "t.seq")
    assert seq.name == "USER_1" and seq.header_line == 3
    ping, mode, wait1, pause, wait2, integ = seq.steps
    assert (ping.line, ping.kind, ping.command.apid, ping.delay) == (4, "command", D.system("FSS").apid, 0.0)
    assert (mode.delay, mode.command.name, dict(mode.args)) == (90.0, "FSS_SET_MODE", {"mode": "CHECKOUT"})
    assert mode.app_data == D.encode_command(D.command("FSS_SET_MODE"), {"mode": "CHECKOUT"})
    assert (wait1.kind, str(wait1.condition), wait1.timeout, wait1.on_timeout) == (
        "wait", "FSS_MODE == CHECKOUT", 120.0, "continue")
    assert (pause.kind, pause.delay) == ("delay", 15.0)
    assert (wait2.condition.value, wait2.on_timeout) == (-12.5, "abort")
    assert dict(integ.args) == {"integration_ms": 1000}


BAD = [
    # (text, line, kind, words in the message)
    ("PING\n", 1, "SYNTAX", "sequence NAME"),
    ("# only comments\n\n", 2, "EMPTY", "no 'sequence"),
    ("sequence X\n# nothing\n", 1, "EMPTY", "no steps"),
    ("sequence X Y\n", 1, "SYNTAX", "sequence NAME"),
    ("sequence X\n  PING\nsequence Y\n", 3, "SYNTAX", "one sequence per file"),
    ("sequence X\n  PING\n  FSS_SET_MOD mode=SCIENCE\n", 3, "UNKNOWN_COMMAND", "did you mean FSS_SET_MODE"),
    ("sequence X\n  PING@MARS\n", 2, "UNKNOWN_COMMAND", "no system MARS"),
    ("sequence X\n\n  FSS_SET_MODE mode=DANCING\n", 3, "BAD_ARGUMENT", "mode"),
    ("sequence X\n  FSS_SET_MODE\n", 2, "BAD_ARGUMENT", "required"),
    ("sequence X\n  FSS_SET_MODE mode=SCIENCE speed=3\n", 2, "BAD_ARGUMENT", "speed"),
    ("sequence X\n  FSS_LEVEL target_urad=5000\n", 2, "BAD_ARGUMENT", "target_urad"),
    ("sequence X\n  FSS_SET_MODE SCIENCE\n", 2, "SYNTAX", "name=value"),
    ("sequence X\n  FSS_SET_MODE mode=SCIENCE mode=OFF\n", 2, "SYNTAX", "twice"),
    ("sequence X\n  at 5s PING\n", 2, "BAD_DURATION", "at +5s"),
    ("sequence X\n  at +5parsecs PING\n", 2, "BAD_DURATION", "not a duration"),
    ("sequence X\n  at +5s\n", 2, "SYNTAX", "at +DURATION"),
    ("sequence X\n  PING\n  wait FSS_MODE == SCIENCE\n", 3, "SYNTAX", "time-out"),
    ("sequence X\n  wait FSS_MODE == SCIENCE timeout\n", 2, "SYNTAX", "time-out"),
    ("sequence X\n  wait FSS_MOOD == SCIENCE timeout 5s\n", 2, "UNKNOWN_PARAMETER", "did you mean FSS_MODE"),
    ("sequence X\n  wait FSS_MODE == PARTY timeout 5s\n", 2, "BAD_VALUE", "one of OFF"),
    ("sequence X\n  wait FSS_MODE > OFF timeout 5s\n", 2, "BAD_VALUE", "== or !="),
    ("sequence X\n  wait FSS_TILT < flat timeout 5s\n", 2, "BAD_VALUE", "number in urad"),
    ("sequence X\n  wait LMS_MAST_DEPLOYED == maybe timeout 5s\n", 2, "BAD_VALUE", "true or false"),
    ("sequence X\n  wait FSS_TILT < 5 timeout 5s else retry\n", 2, "SYNTAX", "abort or continue"),
    ("sequence X\n  wait FSS_TILT < 5 timeout forever\n", 2, "BAD_DURATION", "not a duration"),
    ("sequence X\n  wait SEQ_SLOT_ID == NONE timeout 5s\n", 2, "NOT_ALLOWED", "array"),
    ("sequence X\n  DEPLOY_FIRE unit=ALPINE\n", 2, "NOT_ALLOWED", "hazardous"),
    ("sequence X\n  SCHED_INSERT\n", 2, "NOT_ALLOWED", "raw"),
]


@pytest.mark.parametrize("text, line, kind, words", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_files_name_the_line(text: str, line: int, kind: str, words: str) -> None:
    with pytest.raises(SequenceError) as exc:
        parse_sequence(text, D, "bad.seq")
    e = exc.value
    assert (e.line, e.kind) == (line, kind), str(e)
    assert words in e.message
    assert str(e).startswith(f"bad.seq:{line}: ")
    assert kind in D.lander.enums["SEQ_ERROR"].values


@given(st.text(alphabet=st.sampled_from(list("sequncPIG@=+#< \n:_0159smhFS_MODEwaitout.")), max_size=120))
@settings(max_examples=examples(300))
def test_the_parser_raises_only_sequence_errors(text: str) -> None:
    try:
        seq = parse_sequence(text, D, "fuzz")
    except SequenceError as exc:
        assert 1 <= exc.line <= max(1, text.count("\n") + 1)
    else:
        assert seq.steps


def test_parameter_table_keeps_latest_values_and_skips_standard_reports() -> None:
    table = ParameterTable(D)
    fss = D.system("FSS")
    src = TmSource(D, fss.apid)
    pkt = parse_packet(src.packet(fss.packet("FSS_HK"), {"FSS_MODE": "SCIENCE", "FSS_TILT": 42}, 5.0))
    assert "FSS_MODE" in table.update_from_tm(pkt, 5.0)
    assert (table.get("FSS_MODE").value, table.get("FSS_TILT").value, table.get("FSS_MODE").time) == ("SCIENCE", 42, 5.0)
    ping = parse_packet(src.make(17, 2, b"", 6.0))
    assert table.update_from_tm(ping, 6.0) == []
    short = parse_packet(src.make(3, 25, b"\x00\x01\x02", 7.0))
    assert table.update_from_tm(short, 7.0) == [] and table.undecodable == 1


# -- the runner ------------------------------------------------------------------------------------------
LAB = """
sequence USER_1
  PING
  at +10s PING
  wait 5s
  LANDER_RESET_COUNTERS
"""


def started(h: Harness, name: str = "USER_1", manual: bool = False) -> PusTc:
    return h.command("SEQ_START", seq=name, manual=manual)


def test_a_sequence_runs_its_steps_at_relative_times_and_reports_progress() -> None:
    h = Harness(library=[LAB])
    tc = started(h)
    assert [v[0] for v in h.verif(tc)] == [1, 3, 7]
    h.run(30)
    assert h.pings() == [T0, T0 + 10]
    progress = [(t, e["SEQ_EVT_STEP"], e["SEQ_EVT_LINE"]) for t, e in h.events("SEQ_PROGRESS")]
    assert progress == [(T0, 1, 3), (T0 + 10, 2, 4), (T0 + 15, 3, 5), (T0 + 15, 4, 6)]
    assert h.events("SEQ_COMPLETED")[0] == (T0 + 15, {"SEQ_EVT_ID": "USER_1", "SEQ_EVT_STEPS": 4})
    assert h.events("COUNTERS_RESET")[0][0] == T0 + 15
    # the sequencer's commands carry its own source id and sequence counts, and get PUS-1 reports
    seq_tcs = [PusTc(0x10, 17, 1, seq_count=SEQ_COUNT_BASE + k) for k in range(2)]
    assert [[v[0] for v in h.verif(t)] for t in seq_tcs] == [[1, 3, 7], [1, 3, 7]]


def test_wait_is_satisfied_only_by_fresh_telemetry() -> None:
    h = Harness(library=["sequence USER_1\n  wait PHASE == PRELAUNCH timeout 10s\n  PING\n"])
    h.hk()  # PHASE = PRELAUNCH is already in the table
    started(h)
    h.run(0.5)
    assert h.pings() == []  # the stale sample does not count
    h.run(1)
    assert h.pings() == [T0 + 1]  # the next LANDER_HK (1 s period) satisfies it


def test_wait_on_a_phase_change_from_ground() -> None:
    h = Harness(library=["sequence USER_1\n  wait PHASE == CRUISE timeout 2m\n  PING\n"])
    started(h)
    h.run(20)
    h.command("SET_PHASE", phase="CRUISE")
    factor = load_dictionary().phases["CRUISE"].hk_factor
    h.run(factor + 30)
    # CRUISE slows housekeeping by its hk_factor: the next LANDER_HK comes that many periods after the change
    assert h.pings() == [T0 + 20 + factor * load_dictionary().lander.hk_period_s]
    assert h.events("SEQ_COMPLETED")


def test_wait_on_unit_telemetry() -> None:
    h = Harness(library=["sequence USER_1\n  wait FSS_MODE == SCIENCE timeout 60s\n  at +2s PING\n"])
    started(h)
    h.run(5)
    h.unit_tm("FSS", "FSS_HK", {"FSS_MODE": "CHECKOUT"})
    h.run(5)
    assert h.pings() == []
    h.unit_tm("FSS", "FSS_HK", {"FSS_MODE": "SCIENCE"})
    h.run(5)
    assert h.pings() == [T0 + 12]


def test_wait_timeout_aborts_by_default() -> None:
    h = Harness(library=["sequence USER_1\n  PING\n  wait FSS_MODE == SCIENCE timeout 30s\n  PING\n"])
    started(h)
    h.run(100)
    assert h.pings() == [T0]
    (t, e), = h.events("SEQ_ABORTED")
    assert t == T0 + 30
    assert e == {"SEQ_EVT_ID": "USER_1", "SEQ_EVT_STEP": 2, "SEQ_EVT_LINE": 3, "SEQ_EVT_WHY": "WAIT_TIMEOUT",
                 "SEQ_EVT_CODE": "TIMEOUT"}
    assert h.seq.slots == [None] * len(h.seq.slots)


def test_wait_timeout_can_continue() -> None:
    h = Harness(library=["sequence USER_1\n  wait FSS_MODE == SCIENCE timeout 30s else continue\n  PING\n"])
    started(h)
    h.run(100)
    assert h.pings() == [T0 + 30]
    assert h.events("SEQ_WAIT_TIMEOUT")[0] == (T0 + 30, {"SEQ_EVT_ID": "USER_1", "SEQ_EVT_LINE": 2})
    assert h.events("SEQ_COMPLETED") and not h.events("SEQ_ABORTED")


def test_a_failed_command_aborts_with_its_failure_code() -> None:
    h = Harness(library=["sequence USER_1\n  FSS_SET_MODE mode=SCIENCE\n  PING\n"])
    started(h)  # the FSS line is down: the lander refuses to route
    h.run(10)
    assert h.pings() == []
    (_, e), = h.events("SEQ_ABORTED")
    assert (e["SEQ_EVT_WHY"], e["SEQ_EVT_CODE"], e["SEQ_EVT_LINE"]) == ("CMD_FAILED", "LINK_DOWN", 2)


def test_unit_commands_wait_for_the_units_completion_report() -> None:
    h = Harness(library=["sequence USER_1\n  FSS_SET_MODE mode=SCIENCE\n  PING\n  FSS_SET_MODE mode=OFF\n"])
    h.fsw.link_changed("fss", True, h.now)
    started(h)
    h.run(2)
    (t, sent), = [(t, p) for t, p in h.to_units["fss"] if isinstance(p, PusTc) and p.service == 8]
    assert t == T0 and h.pings() == []
    h.unit_report(sent, 1)
    h.unit_report(sent, 3)
    assert h.pings() == []  # accepted and started are not enough
    h.unit_report(sent, 7)
    assert h.pings() == [T0 + 2]
    second = [p for _, p in h.to_units["fss"] if isinstance(p, PusTc) and p.service == 8][1]
    h.unit_report(second, 8, "WRONG_MODE")
    (_, e), = h.events("SEQ_ABORTED")
    assert (e["SEQ_EVT_WHY"], e["SEQ_EVT_CODE"], e["SEQ_EVT_STEP"]) == ("CMD_FAILED", "WRONG_MODE", 3)


def test_a_unit_that_never_answers_times_the_step_out() -> None:
    h = Harness(library=["sequence USER_1\n  FSS_SET_MODE mode=SCIENCE\n"])
    h.fsw.link_changed("fss", True, h.now)
    started(h)
    h.run(60)
    (t, e), = h.events("SEQ_ABORTED")
    timeout = D.command("FSS_SET_MODE").timeout_s
    assert (t, e["SEQ_EVT_WHY"], e["SEQ_EVT_CODE"]) == (T0 + timeout, "CMD_TIMEOUT", "TIMEOUT")


def test_several_sequences_run_at_once_and_slots_are_reported() -> None:
    lib = [f"sequence USER_{k}\n  at +{10 * k}s PING\n  wait 100s\n" for k in (1, 2, 3, 4)] + \
          ["sequence FSS_HANDOVER\n  PING\n"]
    h = Harness(library=lib)
    for k in (1, 2, 3, 4):
        started(h, f"USER_{k}")
    full = started(h, "FSS_HANDOVER")
    assert h.verif(full)[-1] == (4, "BUSY", D.lander.enums["SEQ_ID"].values["FSS_HANDOVER"])
    again = started(h, "USER_2")
    assert h.verif(again)[-1][:2] == (4, "BUSY")
    h.run(25)
    assert h.pings() == [T0 + 10, T0 + 20]
    hk = h.hk()
    assert hk["SEQ_RUNNING"] == 4
    assert hk["SEQ_SLOT_ID"] == ["USER_1", "USER_2", "USER_3", "USER_4"]
    assert hk["SEQ_SLOT_STATE"] == ["DELAY", "DELAY", "DELAY", "DELAY"]
    assert hk["SEQ_SLOT_STEP"] == [2, 2, 1, 1] and hk["SEQ_SLOT_STEPS"] == [2, 2, 2, 2]
    assert hk["SEQ_SLOT_LINE"] == [3, 3, 2, 2]
    stop = h.command("SEQ_STOP", seq="USER_3")
    assert [v[0] for v in h.verif(stop)] == [1, 3, 7]
    assert h.events("SEQ_STOPPED")[0][1] == {"SEQ_EVT_ID": "USER_3", "SEQ_EVT_STEP": 1}
    h.run(200)
    assert h.pings() == [T0 + 10, T0 + 20, T0 + 40]  # USER_3's ping never went
    assert len(h.events("SEQ_COMPLETED")) == 3
    not_running = h.command("SEQ_STOP", seq="USER_3")
    assert h.verif(not_running)[-1][:2] == (4, "WRONG_MODE")


def test_manual_mode_runs_one_step_per_seq_step() -> None:
    h = Harness(library=[LAB])
    started(h, manual=True)
    h.run(50)
    assert h.pings() == []
    assert h.hk()["SEQ_SLOT_STATE"][0] == "PAUSED"
    h.command("SEQ_STEP", seq="USER_1")
    assert h.pings() == [T0 + 50]
    h.run(3)
    h.command("SEQ_STEP", seq="USER_1")  # its 10 s delay is skipped in manual mode
    assert h.pings() == [T0 + 50, T0 + 53]
    for _ in range(2):
        h.command("SEQ_STEP", seq="USER_1")
    assert h.events("SEQ_COMPLETED")
    wrong = h.command("SEQ_STEP", seq="USER_1")
    assert h.verif(wrong)[-1][:2] == (4, "WRONG_MODE")
    h.seq.library["USER_2"] = LAB.replace("USER_1", "USER_2")
    started(h, "USER_2")
    auto = h.command("SEQ_STEP", seq="USER_2")
    assert h.verif(auto)[-1][:2] == (4, "WRONG_MODE")


def test_a_sequence_can_stop_itself_and_start_another() -> None:
    h = Harness(library=["sequence USER_1\n  SEQ_START seq=USER_2\n  SEQ_STOP seq=USER_1\n  PING\n",
                         "sequence USER_2\n  at +5s PING\n"])
    started(h)
    h.run(10)
    assert h.pings() == [T0 + 5]
    assert h.events("SEQ_STOPPED")[0][1]["SEQ_EVT_ID"] == "USER_1"
    assert [e["SEQ_EVT_ID"] for _, e in h.events("SEQ_COMPLETED")] == ["USER_2"]


def test_loading_a_bad_library_text_fails_with_the_line() -> None:
    h = Harness(library=["sequence USER_1\n  PING\n  wait FSS_MODE == SCIENCE\n"])
    tc = h.command("SEQ_LOAD", seq="USER_1")
    assert h.verif(tc)[-1] == (4, "EXECUTION_FAILED", 3)
    assert h.events("SEQ_INVALID")[0][1] == {"SEQ_EVT_ID": "USER_1", "SEQ_EVT_LINE": 3, "SEQ_EVT_ERROR": "SYNTAX"}
    start = started(h)
    assert h.verif(start)[-1] == (4, "EXECUTION_FAILED", 3)
    missing = h.command("SEQ_LOAD", seq="USER_2")
    assert h.verif(missing)[-1][:2] == (4, "UNKNOWN_ID")
    none = h.command("SEQ_START", seq="NONE")
    assert h.verif(none)[-1][:2] == (2, "UNKNOWN_ID")


def test_upload_validates_persists_and_runs() -> None:
    store = MemoryStore()
    h = Harness(store)
    seq_id = D.lander.enums["SEQ_ID"].values["USER_2"]
    bad = h.command("SEQ_UPLOAD", raw=bytes([seq_id]) + b"sequence USER_2\n  PING\n  FSS_SET_MODE mode=NAP\n")
    assert h.verif(bad) == [(2, "ARG_OUT_OF_RANGE", 3)]
    assert h.events("SEQ_INVALID")[-1][1]["SEQ_EVT_ERROR"] == "BAD_ARGUMENT"
    other = h.command("SEQ_UPLOAD", raw=bytes([seq_id]) + b"sequence USER_3\n  PING\n")
    assert h.verif(other) == [(2, "ARG_OUT_OF_RANGE", 1)]
    assert h.events("SEQ_INVALID")[-1][1]["SEQ_EVT_ERROR"] == "NAME_MISMATCH"
    binary = h.command("SEQ_UPLOAD", raw=bytes([seq_id]) + b"\xff\xfe")
    assert h.verif(binary)[-1][:2] == (2, "ARG_OUT_OF_RANGE")
    text = b"sequence USER_2\n  at +3s PING\n"
    good = h.command("SEQ_UPLOAD", raw=bytes([seq_id]) + text)
    assert [v[0] for v in h.verif(good)] == [1, 3, 7]
    assert h.events("SEQ_UPLOADED")[0][1] == {"SEQ_EVT_ID": "USER_2", "SEQ_EVT_BYTES": len(text)}
    # after a restart the uploaded text is still in the library
    h2 = Harness(store, t0=T0 + 100)
    started(h2, "USER_2")
    h2.run(5)
    assert h2.pings() == [T0 + 103]


def test_library_texts_must_name_a_sequence_slot() -> None:
    with pytest.raises(ValueError, match="SEQ_ID"):
        Harness(library=["sequence NOT_A_SLOT\n  PING\n"])
    with pytest.raises(ValueError, match="twice"):
        Harness(library=[LAB, LAB])
