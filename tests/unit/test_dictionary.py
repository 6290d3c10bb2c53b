"""The mission dictionary loader: the reference mission loads, and every class of mistake in a
mission file gives a DictionaryError that names the file, the entry and the problem.

Bad missions are built in tmp_path: copy fsw/missions/reference, change one file, load with
parse_mission(directory_reader(path)).  Targets are looked up in the loaded reference dictionary,
never hard-coded, so the tests follow the mission as it grows.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fsw.dictionary import Dictionary, DictionaryError, System, load_dictionary
from fsw.dictionary.loader import directory_reader, load_yaml, parse_mission
from fsw.protocol import IDLE_APID, MissionEpoch

REFERENCE = Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference"


@pytest.fixture(scope="module")
def ref() -> Dictionary:
    return load_dictionary()


class Mission:
    """A copy of the reference mission in a temporary directory, to break one file at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root / "mission"
        shutil.copytree(REFERENCE, self.root)

    def text(self, file: str) -> str:
        return (self.root / file).read_text(encoding="utf-8")

    def write(self, file: str, text: str) -> None:
        (self.root / file).write_text(text, encoding="utf-8")

    def edit(self, file: str, change: Callable[[dict], Any]) -> None:
        """Load ``file``, let ``change`` mutate the mapping, and write it back as YAML."""
        d = load_yaml(self.text(file))
        change(d)
        self.write(file, yaml.safe_dump(d, sort_keys=False))

    def load(self) -> Dictionary:
        return parse_mission(directory_reader(str(self.root)))

    def error(self) -> DictionaryError:
        with pytest.raises(DictionaryError) as ei:
            self.load()
        e = ei.value
        assert str(e) == f"{e.file}: {e.entry}: {e.problem}"
        assert isinstance(e, ValueError)
        return e


@pytest.fixture
def mission(tmp_path: Path) -> Mission:
    return Mission(tmp_path)


def _payload(ref: Dictionary, need: Callable[[System], bool] = lambda s: True) -> System:
    return next(s for s in ref.systems if s.kind == "payload" and need(s))


def _find(items: list[dict], name: str) -> dict:
    return next(i for i in items if i["name"] == name)


def _std_count(ref: Dictionary) -> int:
    return len(ref.standard_command_names)


# -- the reference mission -----------------------------------------------------------------------------

def test_reference_mission_loads_from_the_package_and_from_a_directory(mission: Mission, ref: Dictionary) -> None:
    copy_ = mission.load()
    assert [s.name for s in copy_.systems] == [s.name for s in ref.systems]
    assert copy_.command_names == ref.command_names
    assert [p.name for p in copy_.standard_packets] == [p.name for p in ref.standard_packets]
    assert load_dictionary(str(mission.root)).command_names == ref.command_names


def test_reference_mission_settings_come_from_mission_yaml(ref: Dictionary) -> None:
    m = load_yaml((REFERENCE / "mission.yaml").read_text())
    assert ref.mission == m["mission"]["name"]
    assert ref.max_packet == m["mission"]["max_packet"]
    assert ref.epoch == MissionEpoch.parse(str(m["mission"]["epoch"]))
    assert dict(ref.failure_codes.values) == m["failure_codes"]
    assert ref.standard_command_names == tuple(c["name"] for c in m["standard"]["commands"])


def test_reference_units_are_consistent(ref: Dictionary) -> None:
    assert len(ref.systems_of_kind("lander")) == 1 and ref.lander.kind == "lander"
    apids = [s.apid for s in ref.systems]
    assert len(set(apids)) == len(apids)
    assert all(0 <= a < IDLE_APID for a in apids)
    ports = [s.port for s in ref.systems]
    assert len(set(ports)) == len(ports)
    for s in ref.systems:
        assert ref.system(s.name) is s and ref.system(s.name.lower()) is s
        assert ref.system_by_apid(s.apid) is s and ref.system_by_port(s.port) is s
        for m in s.power_w:
            assert m in s.modes
        for std in ref.standard_command_names:  # every unit answers the standard commands
            assert s.command(std).apid == s.apid
    with pytest.raises(KeyError):
        ref.system("NO_SUCH_UNIT")


def test_port_enumeration_is_ground_then_the_units(ref: Dictionary) -> None:
    port = ref.enums["PORT"].values
    assert port["GROUND"] == 0
    units = [s.port.upper() for s in ref.systems if s.kind != "lander"]
    assert [k for k in port if k != "GROUND"] == units
    assert sorted(port.values()) == list(range(len(units) + 1))


def test_every_command_packet_and_event_is_found_by_name_and_by_key(ref: Dictionary) -> None:
    for s in ref.systems:
        for c in s.commands:
            assert ref.command(c.name, s.name) is c
            fid = c.function_id.to_bytes(2, "big") if c.function_id is not None else b""
            assert ref.command_by_key(c.apid, c.service, c.subservice, fid + bytes(8)) is c
        for p in s.telemetry:
            assert ref.packet(p.name) is p
            sid = p.sid.to_bytes(2, "big") if p.sid is not None else b""
            assert ref.packet_by_key(s.apid, p.service, p.subservice, sid + bytes(8)) is p
        for e in s.events:
            assert ref.event_by_id(s.apid, e.id) is e and ref.event(s.name, e.name) is e
    for p in ref.standard_packets:  # standard reports answer for any APID
        for s in ref.systems:
            assert ref.packet_by_key(s.apid, p.service, p.subservice, bytes(8)) is p
    with pytest.raises(KeyError):
        ref.command("NO_SUCH_COMMAND")


def test_failure_codes_both_ways(ref: Dictionary) -> None:
    for name, code in ref.failure_codes.values.items():
        assert ref.failure_code(name) == code and ref.failure_name(code) == name
    unused = max(ref.failure_codes.values.values()) + 1
    assert ref.failure_name(unused) == f"UNKNOWN({unused})"
    with pytest.raises(KeyError):
        ref.failure_code("NO_SUCH_CODE")


def test_yaml_1_1_booleans_stay_mode_names(ref: Dictionary) -> None:
    # YAML 1.1 reads OFF/ON/YES/NO as booleans; a unit with a mode OFF would lose it
    with_off = [s for s in ref.systems if "OFF" in s.modes]
    assert with_off, "the reference mission has units with a mode named OFF"
    for s in with_off:
        assert all(type(m) is str for m in s.modes)
        if s.power_w:
            assert "OFF" in s.power_w and False not in s.power_w
        assert s.enums[f"{s.name}_MODE"].values["OFF"] == s.modes.index("OFF")
    assert set(ref.enums["ON_OFF"].values) == {"OFF", "ON"}
    loaded = load_yaml("m: [OFF, ON, off, on, Yes, no, Y, n]\nt: true\nf: False\nq: 'OFF'")
    assert loaded["m"] == ["OFF", "ON", "off", "on", "Yes", "no", "Y", "n"]
    assert loaded["t"] is True and loaded["f"] is False and loaded["q"] == "OFF"


def test_yaml_merge_keys_may_override_without_being_duplicates() -> None:
    d = load_yaml("a: &a {x: 1, y: 2}\nb: {<<: *a, y: 3}\n")
    assert d["b"] == {"x": 1, "y": 3}


# -- one test per class of mistake ---------------------------------------------------------------------

def test_bad_yaml_in_a_unit_file(mission: Mission, ref: Dictionary) -> None:
    f = _payload(ref).source
    mission.write(f, mission.text(f) + "\nbroken: [unclosed\n")
    e = mission.error()
    assert (e.file, e.entry) == (f, "(file)") and "not valid YAML" in e.problem


def test_bad_yaml_in_mission_yaml(mission: Mission) -> None:
    mission.write("mission.yaml", mission.text("mission.yaml") + "\n  - : : {\n")
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "(file)") and "not valid YAML" in e.problem


def test_duplicate_key_in_a_mapping(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref)
    mission.write(s.source, f"apid: {s.apid + 100}\n" + mission.text(s.source))
    e = mission.error()
    assert e.file == s.source and "duplicate key 'apid'" in e.problem and "line" in e.problem


def test_unit_file_missing(mission: Mission, ref: Dictionary) -> None:
    f = _payload(ref).source
    (mission.root / f).unlink()
    e = mission.error()
    assert (e.file, e.entry) == (f, "(file)") and "cannot read" in e.problem


def test_unit_file_outside_the_mission(mission: Mission) -> None:
    mission.edit("mission.yaml", lambda d: d["systems"].append("../elsewhere.yaml"))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "systems") and "elsewhere" in e.problem


def test_unknown_key(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    name = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], name).update(colour="red"))
    e = mission.error()
    assert e.file == s.source and name in e.entry
    assert "unknown key(s): colour" in e.problem and "allowed:" in e.problem


def test_missing_key(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    mission.edit(s.source, lambda d: _find(d["telemetry"], pkt.name)["params"][0].pop("type"))
    e = mission.error()
    assert e.file == s.source and pkt.name in e.entry and "params[0]" in e.entry
    assert "missing key(s): type" in e.problem


def test_missing_top_level_key(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.pop("kind"))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, "(top level)") and "missing key(s): kind" in e.problem


def test_bad_type_name(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    prm = pkt.params[-1].name
    mission.edit(s.source, lambda d: _find(_find(d["telemetry"], pkt.name)["params"], prm).update(type="u12"))
    e = mission.error()
    assert e.file == s.source and pkt.name in e.entry and prm in e.entry
    assert "type 'u12' unknown" in e.problem


def test_duplicate_command_name_in_a_unit(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    name = s.commands[_std_count(ref)].name

    def dup(d: dict) -> None:
        c = copy.deepcopy(_find(d["commands"], name))
        c["function_id"] = 0xFFFF
        c["subservice"] = 200
        d["commands"].append(c)
    mission.edit(s.source, dup)
    e = mission.error()
    assert (e.file, e.entry) == (s.source, f"command {name}") and "declared twice" in e.problem


def test_duplicate_command_name_across_units(mission: Mission, ref: Dictionary) -> None:
    units = [s for s in ref.systems if s.kind == "payload" and len(s.commands) > _std_count(ref)]
    a, b = units[0], units[1]
    taken = a.commands[_std_count(ref)].name
    renamed = b.commands[_std_count(ref)].name
    mission.edit(b.source, lambda d: _find(d["commands"], renamed).update(name=taken))
    e = mission.error()
    assert e.file == b.source and taken in e.entry and f"already used by system {a.name}" in e.problem


def test_same_command_key_twice(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    first = s.commands[_std_count(ref)]

    def clash(d: dict) -> None:
        c = copy.deepcopy(_find(d["commands"], first.name))
        c["name"] = "A_NEW_COMMAND"
        d["commands"].append(c)
    mission.edit(s.source, clash)
    e = mission.error()
    assert e.file == s.source and "A_NEW_COMMAND" in e.entry and first.name in e.problem


def test_duplicate_apid(mission: Mission, ref: Dictionary) -> None:
    a, b = [s for s in ref.systems if s.kind == "payload"][:2]
    mission.edit(b.source, lambda d: d.update(apid=a.apid))
    e = mission.error()
    assert (e.file, e.entry) == (b.source, "apid") and f"already used by {a.name}" in e.problem


def test_duplicate_port(mission: Mission, ref: Dictionary) -> None:
    a, b = [s for s in ref.systems if s.kind == "payload"][:2]
    mission.edit(b.source, lambda d: d.update(port=a.port))
    e = mission.error()
    assert (e.file, e.entry) == (b.source, "port") and a.name in e.problem


@pytest.mark.parametrize("apid", [IDLE_APID, IDLE_APID + 1, -1, "0x22"])
def test_apid_outside_the_usable_range(mission: Mission, ref: Dictionary, apid: object) -> None:
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.update(apid=apid))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, "apid") and "APID" in e.problem


def test_enum_value_out_of_range_for_its_type(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: any(p.type == "u8" for t in s.telemetry for p in t.params))
    pkt = next(t for t in s.telemetry if any(p.type == "u8" for p in t.params))
    prm = next(p for p in pkt.params if p.type == "u8")

    def change(d: dict) -> None:
        p = _find(_find(d["telemetry"], pkt.name)["params"], prm.name)
        p.pop("calib", None)
        p["enum"] = {"SMALL": 1, "HUGE": 256}
    mission.edit(s.source, change)
    e = mission.error()
    assert e.file == s.source and prm.name in e.entry and "HUGE=256 does not fit u8" in e.problem


def test_enum_labels_sharing_a_value(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.setdefault("enums", {}).update(TWINS={"A": 1, "B": 1}))
    e = mission.error()
    assert e.file == s.source and "TWINS" in e.entry and "share value 1" in e.problem


def test_unknown_enum_reference(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(
        args=[{"name": "what", "type": "u8", "enum": "NO_SUCH_ENUM"}]))
    e = mission.error()
    assert e.file == s.source and cmd in e.entry and "what" in e.entry
    assert "'NO_SUCH_ENUM' is not declared" in e.problem


@pytest.mark.parametrize("kind", ["warn", "alarm"])
def test_limits_inverted(mission: Mission, ref: Dictionary, kind: str) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    prm = next(p for p in pkt.params if p.enum is None and p.type not in ("bool", "time"))

    def change(d: dict) -> None:
        p = _find(_find(d["telemetry"], pkt.name)["params"], prm.name)
        p["limits"] = {kind: [10, -10]}
    mission.edit(s.source, change)
    e = mission.error()
    assert e.file == s.source and prm.name in e.entry and e.entry.endswith(f"limits.{kind}")
    assert "low 10.0 above high -10.0" in e.problem


def test_alarm_limits_inside_the_warning_limits(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    prm = next(p for p in pkt.params if p.enum is None and p.type not in ("bool", "time"))
    mission.edit(s.source, lambda d: _find(_find(d["telemetry"], pkt.name)["params"], prm.name).update(
        limits={"warn": [-10, 10], "alarm": [-5, 20]}))
    e = mission.error()
    assert e.file == s.source and prm.name in e.entry and "outside the warning limits" in e.problem


def test_bad_mode_in_power_w(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: bool(s.power_w))
    mission.edit(s.source, lambda d: d["power_w"].update(WARP=99))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, "power_w.WARP") and "not a declared mode" in e.problem


def test_negative_power(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: bool(s.power_w))
    mode = next(iter(s.power_w))
    mission.edit(s.source, lambda d: d["power_w"].update({mode: -1}))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, f"power_w.{mode}") and "negative" in e.problem


def test_command_mode_not_declared(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(modes=["HYPERDRIVE"]))
    e = mission.error()
    assert e.file == s.source and cmd in e.entry and "modes must be a list drawn from" in e.problem


def test_repeated_mode_names(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: bool(s.modes))
    mission.edit(s.source, lambda d: d["modes"].append(s.modes[0]))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, "modes") and "repeat" in e.problem


def test_duplicate_event_id(mission: Mission, ref: Dictionary) -> None:
    s = next(s for s in ref.systems if len(s.events) >= 2 and s.kind == "payload")
    first, second = s.events[0], s.events[1]
    mission.edit(s.source, lambda d: _find(d["events"], second.name).update(id=first.id))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, f"event {second.name}") and first.name in e.problem


def test_event_argument_names_repeat(mission: Mission, ref: Dictionary) -> None:
    s = next(s for s in ref.systems if s.kind == "payload" and s.events)
    evt = s.events[0].name
    mission.edit(s.source, lambda d: _find(d["events"], evt).update(
        args=[{"name": "X", "type": "u8"}, {"name": "X", "type": "u16"}]))
    e = mission.error()
    assert e.file == s.source and evt in e.entry and "argument names repeat" in e.problem


def test_bad_severity(mission: Mission, ref: Dictionary) -> None:
    s = next(s for s in ref.systems if s.kind == "payload" and s.events)
    evt = s.events[0].name
    mission.edit(s.source, lambda d: _find(d["events"], evt).update(severity="APOCALYPTIC"))
    e = mission.error()
    assert e.file == s.source and evt in e.entry and "severity 'APOCALYPTIC'" in e.problem


@pytest.mark.parametrize("typ", ["bool", "time"])
def test_calibration_on_a_non_numeric_type(mission: Mission, ref: Dictionary, typ: str) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    mission.edit(s.source, lambda d: _find(d["telemetry"], pkt.name)["params"].append(
        {"name": "ODD", "type": typ, "calib": {"poly": [0, 2]}}))
    e = mission.error()
    assert e.file == s.source and "ODD" in e.entry and f"a {typ} parameter cannot be calibrated" in e.problem


def test_spline_not_increasing(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: any(p.params for p in s.telemetry))
    pkt = next(p for p in s.telemetry if p.params)
    mission.edit(s.source, lambda d: _find(d["telemetry"], pkt.name)["params"].append(
        {"name": "ODD", "type": "u16", "calib": {"spline": [[0, 0], [10, 1], [5, 2]]}}))
    e = mission.error()
    assert e.file == s.source and "ODD" in e.entry and "raw values must increase" in e.problem


def test_argument_min_above_max(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(
        args=[{"name": "level", "type": "u8", "min": 9, "max": 3}]))
    e = mission.error()
    assert e.file == s.source and cmd in e.entry and "level" in e.entry and "min 9.0 above max 3.0" in e.problem


def test_argument_range_wider_than_its_type(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(
        args=[{"name": "level", "type": "i8", "min": -200, "max": 3}]))
    e = mission.error()
    assert e.file == s.source and "level" in e.entry and "does not fit i8" in e.problem


@pytest.mark.parametrize("arg", [
    {"name": "level", "type": "u8", "min": 1, "max": 50, "default": 60},   # out of its own range
    {"name": "level", "type": "u8", "default": "lots"},                     # not a number
    {"name": "flag", "type": "bool", "default": 7},                         # not a boolean
])
def test_invalid_default(mission: Mission, ref: Dictionary, arg: dict) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(args=[arg]))
    e = mission.error()
    assert e.file == s.source and arg["name"] in e.entry and "default" in e.problem and "invalid" in e.problem


def test_default_not_an_enum_label(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: bool(s.modes) and len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(
        args=[{"name": "mode", "type": "u8", "enum": f"{s.name}_MODE", "default": "WARP"}]))
    e = mission.error()
    assert e.file == s.source and "'WARP' is not one of" in e.problem


def test_name_not_an_identifier(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(name="ROCKET GO"))
    e = mission.error()
    assert e.file == s.source and "'ROCKET GO' must be an identifier" in e.problem


def test_hazardous_must_be_a_boolean(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref, lambda s: len(s.commands) > _std_count(ref))
    cmd = s.commands[_std_count(ref)].name
    mission.edit(s.source, lambda d: _find(d["commands"], cmd).update(hazardous="yes"))
    e = mission.error()
    assert e.file == s.source and cmd in e.entry and "hazardous must be true or false" in e.problem


@pytest.mark.parametrize("key,value,expect", [
    ("commands", 5, "expected a list"),
    ("telemetry", {"name": "X"}, "expected a list"),
    ("events", "none", "expected a list"),
    ("enums", ["A", "B"], "expected a mapping"),
])
def test_wrong_container_type(mission: Mission, ref: Dictionary, key: str, value: object, expect: str) -> None:
    # used to escape as TypeError/AttributeError instead of a DictionaryError
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.update({key: value}))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, key) and expect in e.problem


def test_unknown_kind(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.update(kind="rover"))
    e = mission.error()
    assert (e.file, e.entry) == (s.source, "kind") and "'rover'" in e.problem


def test_two_landers(mission: Mission, ref: Dictionary) -> None:
    s = _payload(ref)
    mission.edit(s.source, lambda d: d.update(kind="lander"))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "systems") and "exactly one unit of kind 'lander'" in e.problem


def test_bad_epoch(mission: Mission) -> None:
    mission.edit("mission.yaml", lambda d: d["mission"].update(epoch="next tuesday"))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "mission.epoch") and "ISO-8601" in e.problem


@pytest.mark.parametrize("value", [10, 70000, "big"])
def test_max_packet_out_of_range(mission: Mission, value: object) -> None:
    mission.edit("mission.yaml", lambda d: d["mission"].update(max_packet=value))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "mission.max_packet")


def test_mission_enum_may_not_replace_the_failure_codes(mission: Mission) -> None:
    # used to silently replace FAILURE_CODE (and so every PUS-1 failure code)
    mission.edit("mission.yaml", lambda d: d.setdefault("enums", {}).update(FAILURE_CODE={"OOPS": 1}))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "enums.FAILURE_CODE") and "reserved" in e.problem


def test_standard_section_with_wrong_container(mission: Mission) -> None:
    mission.edit("mission.yaml", lambda d: d["standard"].update(commands={"name": "PING"}))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "standard.commands") and "expected a list" in e.problem


def test_unknown_top_level_key_in_mission_yaml(mission: Mission) -> None:
    mission.edit("mission.yaml", lambda d: d.update(extras=1))
    e = mission.error()
    assert (e.file, e.entry) == ("mission.yaml", "(top level)") and "extras" in e.problem
