"""Ground commanding: argument parsing, validation against the dictionary, hazardous confirmation, counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.dictionary import ArgumentError, load_dictionary
from fsw.protocol import MAX_SEQ_COUNT, PusTc
from ground.commanding import (
    GROUND_SOURCE_ID, HazardousCommandError, SequenceCounter, build_tc, parse_cli_args, resolve_command,
)

D = load_dictionary()

# A small self-contained mission for cases the reference mission may not have (a hazardous payload
# command, float parameters).  Tests must not depend on the reference mission's hazardous commands.
MISSION_YAML = """
mission: {name: test mission, epoch: 2030-01-01T00:00:00Z, max_packet: 1024}
failure_codes: {ILLEGAL_APID: 1, BAD_LENGTH: 2, ARG_OUT_OF_RANGE: 6, WRONG_MODE: 7, TIMEOUT: 11, NOT_CONFIRMED: 24}
standard:
  commands:
    - {name: PING, service: 17, subservice: 1, timeout_s: 2}
  telemetry:
    - &ok {name: ACCEPT_OK, service: 1, subservice: 1, category: report,
           params: [{name: TC_PACKET_ID, type: u16}, {name: TC_SEQ_CTRL, type: u16}]}
    - &fail {name: ACCEPT_FAIL, service: 1, subservice: 2, category: report,
             params: [{name: TC_PACKET_ID, type: u16}, {name: TC_SEQ_CTRL, type: u16},
                      {name: FAILURE_CODE, type: u16, enum: FAILURE_CODE}, {name: FAILURE_DATA, type: u32}]}
    - {<<: *ok, name: START_OK, subservice: 3}
    - {<<: *fail, name: START_FAIL, subservice: 4}
    - {name: PROGRESS_OK, service: 1, subservice: 5, category: report,
       params: [{name: TC_PACKET_ID, type: u16}, {name: TC_SEQ_CTRL, type: u16}, {name: STEP, type: u8}]}
    - {name: PROGRESS_FAIL, service: 1, subservice: 6, category: report,
       params: [{name: TC_PACKET_ID, type: u16}, {name: TC_SEQ_CTRL, type: u16}, {name: STEP, type: u8},
                {name: FAILURE_CODE, type: u16, enum: FAILURE_CODE}, {name: FAILURE_DATA, type: u32}]}
    - {<<: *ok, name: COMPLETE_OK, subservice: 7}
    - {<<: *fail, name: COMPLETE_FAIL, subservice: 8}
    - {name: EVENT_INFO, service: 5, subservice: 1, category: report, params: [{name: EVENT_ID, type: u16}]}
    - {name: EVENT_LOW, service: 5, subservice: 2, category: report, params: [{name: EVENT_ID, type: u16}]}
    - {name: PING_REPLY, service: 17, subservice: 2, category: report}
systems: [base.yaml, pay.yaml]
"""

BASE_YAML = """
system: BASE
kind: lander
apid: 0x010
modes: [NOMINAL]
events:
  - {name: BOOT, id: 1, severity: INFO, args: [{name: BOOT_COUNT, type: u16}]}
"""

PAY_YAML = """
system: PAY
kind: payload
apid: 0x030
modes: [OFF, ON]
commands:
  - name: PAY_SET_MODE
    service: 8
    subservice: 1
    function_id: 1
    args: [{name: mode, type: u8, enum: PAY_MODE}]
  - name: PAY_INTEGRATE
    service: 8
    subservice: 1
    function_id: 3
    args:
      - {name: ms, type: u16, min: 10, max: 1000, default: 100}
      - {name: mode, type: u8, enum: PAY_MODE, default: ON}
  - name: PAY_CUT_CABLE
    service: 8
    subservice: 1
    function_id: 2
    hazardous: true
    description: Cut the restraint cable.
    args: [{name: seconds, type: f32, min: 0.5, max: 10.0}]
    timeout_s: 3
telemetry:
  - name: PAY_HK
    service: 3
    subservice: 25
    sid: 1
    params:
      - {name: PAY_MODE, type: u8, enum: PAY_MODE}
      - {name: PAY_RATE, type: f32, unit: Hz, limits: {warn: [null, 100]}}
      - {name: PAY_VEC, type: f32, count: 3}
"""


def write_mission(tmp_path: Path) -> Path:
    root = tmp_path / "mission"
    root.mkdir(exist_ok=True)
    (root / "mission.yaml").write_text(MISSION_YAML)
    (root / "base.yaml").write_text(BASE_YAML)
    (root / "pay.yaml").write_text(PAY_YAML)
    return root


@pytest.fixture
def test_dictionary(tmp_path):
    return load_dictionary(write_mission(tmp_path))


# -- parse_cli_args ------------------------------------------------------------------------------------------

def test_parse_cli_args_keeps_strings():
    assert parse_cli_args(["mode=SCIENCE", "gain=2", "note=a=b", "empty="]) == \
        {"mode": "SCIENCE", "gain": "2", "note": "a=b", "empty": ""}
    assert parse_cli_args([]) == {}


@pytest.mark.parametrize("items,match", [
    (["mode"], "name=value"),
    (["=3"], "no name"),
    (["a=1", "a=2"], "twice"),
])
def test_parse_cli_args_rejects_malformed_items(items, match):
    with pytest.raises(ValueError, match=match):
        parse_cli_args(items)


# -- build_tc ------------------------------------------------------------------------------------------------

def test_build_tc_encodes_with_the_dictionary():
    tc = build_tc(D, "FSS_SET_MODE", {"mode": "SCIENCE"}, seq_count=12)
    cmd = D.command("FSS_SET_MODE")
    assert isinstance(tc, PusTc)
    assert (tc.apid, tc.service, tc.subservice) == (cmd.apid, cmd.service, cmd.subservice)
    assert tc.seq_count == 12 and tc.source_id == GROUND_SOURCE_ID and tc.ack_flags == 0b1111
    assert D.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data) is cmd
    assert D.args_codec(cmd).decode(tc.app_data) == {"mode": "SCIENCE"}
    assert PusTc.unpack(tc.pack()) == tc


def test_string_values_are_converted_by_the_codec():
    tc = build_tc(D, "FSS_LEVEL", parse_cli_args(["target_urad=-150"]))
    assert D.args_codec(D.command("FSS_LEVEL")).decode(tc.app_data) == {"target_urad": -150}


def test_lowercase_command_names_are_accepted():
    assert build_tc(D, "fss_set_mode", {"mode": "OFF"}) == build_tc(D, "FSS_SET_MODE", {"mode": "OFF"})


def test_standard_commands_go_to_the_lander_unless_addressed():
    assert build_tc(D, "PING", {}).apid == D.lander.apid
    assert build_tc(D, "PING", {}, system="lister").apid == D.system("LISTER").apid


def test_unknown_command_lists_close_matches():
    with pytest.raises(KeyError) as exc:
        build_tc(D, "FSS_SET_MOD", {})
    assert "FSS_SET_MODE" in str(exc.value) and "did you mean" in str(exc.value)


def test_unknown_unit_and_wrong_unit():
    with pytest.raises(KeyError, match="unknown unit"):
        build_tc(D, "PING", {}, system="FSX")
    with pytest.raises(KeyError, match="belongs to FSS"):
        build_tc(D, "FSS_SET_MODE", {"mode": "OFF"}, system="LMS")


#: one beyond FSS_LEVEL's declared range, whatever the reference mission declares
TOO_FAR = str(int(D.command("FSS_LEVEL").arg("target_urad").max) + 1)


@pytest.mark.parametrize("args,code", [
    ({"target_urad": TOO_FAR}, "ARG_OUT_OF_RANGE"),
    ({"target_urad": "abc"}, "BAD_TYPE"),
    ({}, "MISSING_ARGUMENT"),
    ({"target_urad": "1", "speed": "2"}, "UNKNOWN_ARGUMENT"),
])
def test_argument_problems_raise_argument_error_with_a_code(args, code):
    with pytest.raises(ArgumentError) as exc:
        build_tc(D, "FSS_LEVEL", args)
    assert exc.value.code == code


def test_enum_value_not_in_the_enumeration():
    with pytest.raises(ArgumentError, match="SCIENCE"):
        build_tc(D, "FSS_SET_MODE", {"mode": "DANCE"})


def test_defaults_fill_missing_arguments(test_dictionary):
    d = test_dictionary
    codec = d.args_codec(d.command("PAY_INTEGRATE"))
    assert codec.decode(build_tc(d, "PAY_INTEGRATE", {}).app_data) == {"ms": 100, "mode": "ON"}
    assert codec.decode(build_tc(d, "PAY_INTEGRATE", {"ms": "20"}).app_data) == {"ms": 20, "mode": "ON"}


def test_out_of_range_sequence_count_and_source_id():
    with pytest.raises(ValueError):
        build_tc(D, "PING", {}, seq_count=MAX_SEQ_COUNT + 1)
    with pytest.raises(ValueError):
        build_tc(D, "PING", {}, source_id=70000)


def test_hazardous_command_needs_the_unit_name(test_dictionary):
    d = test_dictionary
    with pytest.raises(HazardousCommandError, match="confirm it with the unit name PAY"):
        build_tc(d, "PAY_CUT_CABLE", {"seconds": "2"})
    with pytest.raises(HazardousCommandError, match="does not match"):
        build_tc(d, "PAY_CUT_CABLE", {"seconds": "2"}, confirm="BASE")
    tc = build_tc(d, "PAY_CUT_CABLE", {"seconds": "2"}, confirm="pay")
    assert d.args_codec(d.command("PAY_CUT_CABLE")).decode(tc.app_data) == {"seconds": 2.0}
    # arguments are still checked for a confirmed hazardous command
    with pytest.raises(ArgumentError):
        build_tc(d, "PAY_CUT_CABLE", {"seconds": "60"}, confirm="PAY")


def test_every_reference_hazardous_command_refuses_without_confirmation():
    hazardous = [c for s in D.systems for c in s.commands if c.hazardous]
    for c in hazardous:
        with pytest.raises(HazardousCommandError):
            build_tc(D, c.name, {}, c.system)


def test_resolve_command_returns_the_dictionary_object():
    assert resolve_command(D, "LMS_DEPLOY") is D.command("LMS_DEPLOY")


# -- SequenceCounter -----------------------------------------------------------------------------------------

def test_sequence_counter_per_apid_and_wraps():
    sc = SequenceCounter()
    assert [sc.next(0x20) for _ in range(3)] == [0, 1, 2]
    assert sc.next(0x21) == 0
    sc2 = SequenceCounter(start=MAX_SEQ_COUNT - 1)
    assert [sc2.next(5) for _ in range(3)] == [MAX_SEQ_COUNT - 1, MAX_SEQ_COUNT, 0]


def test_peek_and_advance():
    sc = SequenceCounter()
    assert sc.peek(7) == 0 and sc.peek(7) == 0
    sc.advance(7)
    assert sc.peek(7) == 1 and sc.next(7) == 1 and sc.peek(7) == 2


def test_sequence_counter_rejects_bad_values():
    with pytest.raises(ValueError):
        SequenceCounter(start=-1)
    with pytest.raises(ValueError):
        SequenceCounter().next(0x800)


@given(st.integers(0, MAX_SEQ_COUNT), st.integers(1, 40000))
def test_sequence_counter_is_modulo_2_to_14(start, n):
    sc = SequenceCounter(start)
    for _ in range(n % 50):
        sc.next(1)
    assert sc.peek(1) == (start + n % 50) % (MAX_SEQ_COUNT + 1)
