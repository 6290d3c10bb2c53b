"""XTCE export: schema-valid XTCE 1.2 that space-packet-parser decodes exactly like our own decoder.

Every telemetry packet type of the reference mission (unit packets, standard
reports, every event) is encoded with random valid values through the
dictionary, packed with :class:`fsw.protocol.PusTm`, and decoded twice: by
:class:`ground.decoding.PacketDecoder` and by space-packet-parser from the
exported XTCE.  The values must agree.  A second, synthetic mission covers
what the reference mission does not use (arrays, splines, floats, 64-bit
integers, a name clash between units).
"""

from __future__ import annotations

import math
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from fsw.dictionary import Dictionary, Parameter, load_dictionary
from fsw.dictionary.model import INT_RANGES
from fsw.protocol import PusTm
from ground.decoding import PacketDecoder
from ground.xtce import CRC_FIELD, ROOT_CONTAINER, XTCE_NS, build_xtce

lxml_etree = pytest.importorskip("lxml.etree")
spp_defs = pytest.importorskip("space_packet_parser.xtce.definitions")
spp_validation = pytest.importorskip("space_packet_parser.xtce.validation")

REF = Path(__file__).resolve().parents[2] / "fsw" / "missions" / "reference"


# -- helpers ------------------------------------------------------------------------------------------------

def _schema() -> Any:
    xsd = (spp_validation._BUNDLED_SCHEMA_DIR / "SpaceSystem.xsd").read_bytes()
    # the OMG schema references xml:base without importing it; the package applies the same fix when it validates
    return lxml_etree.XMLSchema(lxml_etree.XML(spp_validation._fix_known_schema_issues(xsd)))


def _random_raw(p: Parameter, rng: random.Random) -> Any:
    def one() -> Any:
        if p.type == "time":
            return rng.randrange(0, 2**32) + rng.randrange(0, 65536) / 65536.0
        if p.type in ("f32", "f64"):
            return rng.uniform(-1e6, 1e6)
        lo, hi = INT_RANGES[p.type]
        if p.enum is not None and rng.random() < 0.8:
            return rng.choice(list(p.enum.values.values()))  # mostly declared labels, sometimes a gap
        return rng.randint(lo, hi)
    return [one() for _ in range(p.count)] if p.count > 1 else one()


def _same(ours: Any, theirs: Any, where: str) -> None:
    if isinstance(ours, float) or isinstance(theirs, float):
        assert math.isclose(float(ours), float(theirs), rel_tol=1e-12, abs_tol=1e-12), \
            f"{where}: {ours!r} != {theirs!r}"
    else:
        assert ours == theirs, f"{where}: ours {ours!r} != space-packet-parser {theirs!r}"
        assert type(ours) is type(theirs) or isinstance(theirs, type(ours)), \
            f"{where}: type {type(ours).__name__} != {type(theirs).__name__}"


def _cases(d: Dictionary, rng: random.Random, per_type: int) -> list[tuple[str, bytes]]:
    """(container key, packet bytes) for every telemetry packet type and event of ``d``."""
    out: list[tuple[str, bytes]] = []
    seq = 0

    def tm(apid: int, svc: int, sub: int, data: bytes) -> bytes:
        nonlocal seq
        seq = (seq + 1) & 0x3FFF
        return PusTm(apid, svc, sub, data, seq_count=seq, msg_counter=rng.randrange(65536),
                     dest_id=rng.randrange(65536), time=rng.uniform(0, 2e9)).pack()

    for _ in range(per_type):
        for s in d.systems:
            for p in s.telemetry:
                raw = {prm.name: _random_raw(prm, rng) for prm in p.params}
                out.append((p.name, tm(s.apid, p.service, p.subservice, d.encode_tm(p, raw, eng=False))))
            for e in s.events:
                raw = {a.name: _random_raw(a, rng) for a in e.args}
                data = e.id.to_bytes(2, "big") + d.event_codec(e).encode(raw, eng=False)
                out.append((f"EVENT:{e.system}:{e.name}", tm(s.apid, 5, e.subservice, data)))
        for p in d.standard_packets:
            if p.service == 5:
                continue  # event reports are covered per event above
            raw = {prm.name: _random_raw(prm, rng) for prm in p.params}
            apid = rng.choice([s.apid for s in d.systems])
            out.append((p.name, tm(apid, p.service, p.subservice, d.encode_tm(p, raw, eng=False))))
    return out


def _compare(d: Dictionary, tmp_path: Path, per_type: int = 3, seed: int = 7) -> int:
    doc = build_xtce(d)
    path = tmp_path / "mission.xtce.xml"
    path.write_text(doc.xml, encoding="utf-8")
    assert _schema().validate(lxml_etree.parse(str(path))), "export does not validate against XTCE 1.2"
    defn = spp_defs.XtcePacketDefinition.from_xtce(path)
    decoder = PacketDecoder(d)
    checked = 0
    for key, raw in _cases(d, random.Random(seed), per_type):
        ours = decoder.decode(raw)
        assert "error" not in ours, ours
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unparsed trailing bit (e.g. a missing CRC field) fails the test
            theirs = defn.parse_bytes(raw)
        container = doc.containers[key]
        where = f"{key} ({container})"
        _same(ours["apid"], int(theirs["PKT_APID"]), f"{where} APID")
        _same(ours["seq_count"], int(theirs["SRC_SEQ_CTR"]), f"{where} sequence count")
        _same(ours["service"], int(theirs["SERVICE"]), f"{where} service")
        _same(ours["subservice"], int(theirs["SUBSERVICE"]), f"{where} subservice")
        _same(ours["time"], float(theirs["PKT_TIME"]), f"{where} time")
        assert int(theirs[CRC_FIELD]) == int.from_bytes(raw[-2:], "big")
        if key.startswith("EVENT:"):
            _, unit, name = key.split(":")
            assert ours["event"] == name and ours["system"] == unit
        else:
            assert ours["name"] == key
        for pname, value in ours["params"].items():
            names = doc.param_names[(container, pname)]
            if isinstance(value, list):
                assert len(names) == len(value)
                for i, (v, n) in enumerate(zip(value, names)):
                    _same(v, _plain(theirs[n]), f"{where} {pname}[{i}]")
            else:
                assert len(names) == 1
                _same(value, _plain(theirs[names[0]]), f"{where} {pname}")
            checked += 1
    return checked


def _plain(v: Any) -> Any:
    """space-packet-parser values subclass int/float/str; compare as the builtin type."""
    if type(v).__name__ == "BoolParameter":  # an int subclass (bool cannot be subclassed)
        return bool(v)
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t(v)
    return v


# -- the reference mission ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ref_doc() -> Any:
    return build_xtce(load_dictionary())


def test_reference_export_is_valid_xtce_1_2(ref_doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "ref.xml"
    path.write_text(ref_doc.xml, encoding="utf-8")
    tree = lxml_etree.parse(str(path))
    schema = _schema()
    assert schema.validate(tree), schema.error_log
    root = tree.getroot()
    assert root.tag == f"{{{XTCE_NS}}}SpaceSystem"
    loc = root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation")
    assert loc.split()[0] == XTCE_NS and loc.split()[1].endswith("/20180204/SpaceSystem.xsd")
    # the package's own validator resolves the schema from its bundled copy, offline
    result = spp_validation.validate_xtce(path, level="all", print_results=False, raise_on_error=False,
                                          allow_schema_download=False)
    assert result.valid, str(result)


def test_reference_export_structure_follows_the_notes(ref_doc: Any) -> None:
    root = lxml_etree.fromstring(ref_doc.xml.encode())
    ns = {"x": XTCE_NS}
    assert root.findall("x:SpaceSystem", ns) == []  # everything in one space system
    containers = root.findall("x:TelemetryMetaData/x:ContainerSet/x:SequenceContainer", ns)
    by_name = {c.get("name"): c for c in containers}
    base = by_name[ROOT_CONTAINER]
    assert base.get("abstract") == "true"
    entries = [e.get("parameterRef") for e in base.findall("x:EntryList/x:ParameterRefEntry", ns)]
    assert entries[:4] == ["VERSION", "TYPE", "SEC_HDR_FLG", "PKT_APID"] and entries[-1] == "PKT_TIME"
    # comparisons in decimal, and every leaf (a container nobody inherits from) ends with the CRC
    for c in root.iter(f"{{{XTCE_NS}}}Comparison"):
        int(c.get("value"))  # decimal integer, never 0x...
    parents = {c.find("x:BaseContainer", ns).get("containerRef") for c in containers
               if c.find("x:BaseContainer", ns) is not None}
    for name, c in by_name.items():
        if name not in parents and c.get("abstract") != "true":
            last = c.findall("x:EntryList/x:ParameterRefEntry", ns)[-1].get("parameterRef")
            assert last == CRC_FIELD, name
    # integer encodings are unsigned or two's complement only
    for enc in root.iter(f"{{{XTCE_NS}}}IntegerDataEncoding"):
        assert enc.get("encoding") in ("unsigned", "twosComplement")
    # limits become alarms, e.g. FSS_TEMP_VBB warn -40..45 / alarm -55..60
    fss_type = root.find("x:TelemetryMetaData/x:ParameterTypeSet/x:FloatParameterType[@name='FSS_TEMP_VBB_Type']", ns)
    warn = fss_type.find("x:DefaultAlarm/x:StaticAlarmRanges/x:WarningRange", ns)
    crit = fss_type.find("x:DefaultAlarm/x:StaticAlarmRanges/x:CriticalRange", ns)
    assert (float(warn.get("minInclusive")), float(warn.get("maxInclusive"))) == (-40.0, 45.0)
    assert (float(crit.get("minInclusive")), float(crit.get("maxInclusive"))) == (-55.0, 60.0)
    # every raw value of an enumeration has a label (u8 PHASE: 256 entries, declared ones by name)
    phase = root.find("x:TelemetryMetaData/x:ParameterTypeSet/x:EnumeratedParameterType[@name='PHASE_u8_Type']", ns)
    labels = {int(e.get("value")): e.get("label") for e in phase.findall("x:EnumerationList/x:Enumeration", ns)}
    assert sorted(labels) == list(range(256))
    assert labels[6] == "SURFACE" and labels[200] == "UNKNOWN(200)"
    # telecommands: hazardous ones carry a significance, function ids are fixed values
    cmds = {m.get("name"): m for m in root.findall("x:CommandMetaData/x:MetaCommandSet/x:MetaCommand", ns)}
    fire = cmds["LANDER_DEPLOY_FIRE"]
    assert fire.find("x:DefaultSignificance", ns).get("consequenceLevel") == "critical"
    fixed = fire.find("x:CommandContainer/x:EntryList/x:FixedValueEntry", ns)
    assert int(fixed.get("binaryValue"), 16) == 17


def test_space_packet_parser_decodes_every_reference_packet_like_our_decoder(tmp_path: Path) -> None:
    d = load_dictionary()
    checked = _compare(d, tmp_path, per_type=3)
    n_types = sum(len(s.telemetry) + len(s.events) for s in d.systems)
    assert checked > 3 * n_types  # parameters compared, not just packets


def test_unknown_enum_values_decode_to_the_same_text() -> None:
    """A raw value outside the declared labels reads UNKNOWN(n) in both decoders instead of failing the packet."""
    d = load_dictionary()
    doc = build_xtce(d)
    pkt = d.packet("LANDER_HK")
    raw = PusTm(d.lander.apid, 3, 25, d.encode_tm(pkt, {"LANDER_MODE": 77, "PHASE": 250}, eng=False)).pack()
    ours = PacketDecoder(d).decode(raw)
    import io
    defn = spp_defs.XtcePacketDefinition.from_xtce(io.BytesIO(doc.xml.encode("utf-8")))
    theirs = defn.parse_bytes(raw)
    assert ours["params"]["LANDER_MODE"] == "UNKNOWN(77)" == str(theirs["LANDER_MODE"])
    assert ours["params"]["PHASE"] == "UNKNOWN(250)" == str(theirs["PHASE"])


# -- a synthetic mission with what the reference one lacks ----------------------------------------------------

EXTRA_UNIT = """\
system: PROBE
kind: payload
apid: 0x040
port: probe
modes: [OFF, ON]
commands:
  - name: PROBE_SET
    service: 8
    subservice: 1
    function_id: 1
    args:
      - {name: gain, type: f32, min: -1.5, max: 2.5}
      - {name: when, type: time}
      - {name: count, type: i32, min: -5, max: 5, default: 0}
      - {name: flag, type: bool}
telemetry:
  - name: PROBE_HK
    service: 3
    subservice: 25
    sid: 1
    params:
      - {name: PROBE_MODE, type: u8, enum: PROBE_MODE}
      - {name: PROBE_SPECTRUM, type: u16, count: 5, unit: dB, calib: {poly: [-3.0, 0.5, 0.001]}}
      - {name: PROBE_THERM, type: u16, unit: degC, calib: {spline: [[0, -80], [1000, -20], [4000, 40], [65535, 90]]},
         limits: {warn: [-40, 50]}}
      - {name: PROBE_F32, type: f32}
      - {name: PROBE_F64, type: f64, limits: {alarm: [null, 1000]}}
      - {name: PROBE_BIG, type: u64}
      - {name: PROBE_NEG, type: i64}
      - {name: PROBE_OK, type: bool}
      - {name: PROBE_STAMPS, type: time, count: 2}
      - {name: PROBE_SEL, type: i8, enum: {NEG: 0, POS: 1}}
  - name: PROBE_HK2
    service: 3
    subservice: 25
    sid: 2
    params:
      - {name: UPTIME, type: u8, description: a name the lander uses with another type}
  - name: PROBE_SCI
    service: 130
    subservice: 1
    params:
      - {name: PROBE_SAMPLES, type: i16, count: 8}
events:
  - {name: BOOT, id: 1, severity: HIGH, args: [{name: PROBE_CODE, type: u32}]}
"""


@pytest.fixture()
def extra_mission(tmp_path: Path) -> Path:
    root = tmp_path / "mission"
    shutil.copytree(REF, root)
    text = (root / "mission.yaml").read_text()
    (root / "mission.yaml").write_text(text.rstrip() + "\n  - probe.yaml\n")
    (root / "probe.yaml").write_text(EXTRA_UNIT)
    return root


def test_arrays_splines_floats_and_name_clashes_decode_alike(extra_mission: Path, tmp_path: Path) -> None:
    d = load_dictionary(str(extra_mission))
    doc = build_xtce(d)
    assert doc.param_names[("PROBE_HK", "PROBE_SPECTRUM")] == tuple(f"PROBE_SPECTRUM_{i}" for i in range(5))
    # UPTIME already names a u32 lander parameter: the probe's u8 one gets a qualified name
    assert doc.param_names[("PROBE_HK2", "UPTIME")] == ("PROBE_HK2_UPTIME",)
    assert doc.param_names[("LANDER_HK", "UPTIME")] == ("UPTIME",)
    # two units declare an event BOOT: distinct containers
    assert doc.containers["EVENT:PROBE:BOOT"] != doc.containers["EVENT:LANDER:BOOT"]
    assert _compare(d, tmp_path, per_type=4, seed=11) > 0


def test_wide_enumerations_fall_back_to_ranges_with_a_note() -> None:
    d = load_dictionary()
    doc = build_xtce(d, max_enum_entries=256)  # FAILURE_CODE is u16: too wide at this setting
    assert any("FAILURE_CODE" in n and "maxValue" in n for n in doc.notes)
    root = lxml_etree.fromstring(doc.xml.encode())
    ns = {"x": XTCE_NS}
    t = root.find("x:TelemetryMetaData/x:ParameterTypeSet/x:EnumeratedParameterType[@name='FAILURE_CODE_u16_Type']",
                  ns)
    entries = t.findall("x:EnumerationList/x:Enumeration", ns)
    assert entries[0].get("value") == "0" and entries[0].get("maxValue") == "0"
    assert entries[-1].get("maxValue") == "65535"
    assert len(doc.xml) < len(build_xtce(d).xml) / 4  # the u16 enumeration is no longer spelled out
    assert _schema().validate(lxml_etree.fromstring(doc.xml.encode()).getroottree())


def test_descriptions_with_markup_stay_text(tmp_path: Path, extra_mission: Path) -> None:
    text = (extra_mission / "probe.yaml").read_text().replace(
        "description: a name the lander uses with another type",
        "description: '<script>alert(1)</script> & \"quotes\" -- ]]>'")
    (extra_mission / "probe.yaml").write_text(text)
    doc = build_xtce(load_dictionary(str(extra_mission)))
    assert "<script>" not in doc.xml
    root = lxml_etree.fromstring(doc.xml.encode())
    descs = [e.text for e in root.iter(f"{{{XTCE_NS}}}LongDescription")]
    assert '<script>alert(1)</script> & "quotes" -- ]]>' in descs


@pytest.mark.parametrize("module", ["ground/xtce.py", "ground/icd.py", "ground/archive_query.py"])
def test_generators_are_pure(module: str) -> None:
    """The export generators and archive helpers do no I/O (the same rule as tests/unit/test_import_rules.py)."""
    import ast

    from tests.unit.test_import_rules import ALLOWED, FORBIDDEN, ROOT, _imports
    tree = ast.parse((ROOT / module).read_text())
    for name in _imports(tree):
        assert name in ALLOWED or name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"print", "open", "input"}
