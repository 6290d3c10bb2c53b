"""Ground decoding: every dictionary packet, event, report and command; damaged input; whole captures."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsw.dictionary import load_dictionary
from fsw.dictionary.model import INT_RANGES
from fsw.protocol import ASM, Dropped, PusTc, PusTm, crc16, frame
from ground.commanding import confirm_target, build_tc
from ground.decoding import (
    STAGE_OF_SUBSERVICE, PacketDecoder, decode_dropped, detect_format, iter_file_records,
)

D = load_dictionary()
DEC = PacketDecoder(D)
BASE_KEYS = {"apid", "seq_count", "packet_type", "service", "subservice", "time", "utc", "name", "system",
             "params", "limits"}
T0 = 86400.5  # one day and a half second after the epoch


def strict_json(rec: dict) -> dict:
    """The record survives strict JSON (no NaN) unchanged."""
    return json.loads(json.dumps(rec, allow_nan=False))


# -- value generation from the dictionary --------------------------------------------------------------------

RAW_BY_TYPE = {"u8": 7, "u16": 300, "u32": 70000, "u64": 2**40, "i8": -5, "i16": -1234, "i32": -70000,
               "i64": -2**40, "f32": 1.5, "f64": 2.25, "bool": 1, "time": 1234.5}


def raw_value(p):
    if p.enum is not None:
        v = sorted(p.enum.values.values())[-1]
    else:
        v = RAW_BY_TYPE[p.type]
    return [v] * p.count if p.count > 1 else v


def eng_of(p, raw):
    if isinstance(raw, list):
        return [eng_of(p, r) for r in raw]
    if p.enum is not None:
        return p.enum.labels[raw]
    if p.type == "bool":
        return bool(raw)
    if p.calibration is not None and p.type != "time":
        return p.calibration.apply(raw)
    return raw


def expected_limits(params, eng):
    out = {}
    for p in params:
        if p.limits is None:
            continue
        vals = eng[p.name] if isinstance(eng[p.name], list) else [eng[p.name]]
        states = {p.limits.check(v) for v in vals if not isinstance(v, (str, bool))}
        if "alarm" in states:
            out[p.name] = "alarm"
        elif "warn" in states:
            out[p.name] = "warn"
    return out


def assert_params(actual, expected):
    assert actual.keys() == expected.keys()
    for k, v in expected.items():
        if isinstance(v, float):
            assert actual[k] == pytest.approx(v), k
        elif isinstance(v, list) and v and isinstance(v[0], float):
            assert actual[k] == pytest.approx(v), k
        else:
            assert actual[k] == v, k


def every_packet():
    """(apid, TmPacket) for each unit packet, and each standard packet from every unit."""
    cases = []
    for s in D.systems:
        for p in s.telemetry:
            cases.append((s.apid, p))
        for p in D.standard_packets:
            cases.append((s.apid, p))
    return cases


def tm_bytes(apid, pkt, raw, time=T0, seq=5):
    data = D.encode_tm(pkt, raw, eng=False)
    return PusTm(apid, pkt.service, pkt.subservice, data, seq_count=seq, time=time).pack()


# -- every packet --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("apid,pkt", every_packet(), ids=lambda x: x if isinstance(x, int) else x.name)
def test_every_dictionary_packet_decodes(apid, pkt):
    raw = {p.name: raw_value(p) for p in pkt.params}
    if pkt.service == 1:  # a report about a TC: request fields must make sense
        raw.update(TC_PACKET_ID=0x1800 | 0x20, TC_SEQ_CTRL=0xC000 | 42)
    if pkt.service == 5:
        raw["EVENT_ID"] = 0xFFFF  # no such event: decoded as an unknown event
    rec = DEC.decode(tm_bytes(apid, pkt, raw), link="ground", rx_time=12.0)
    assert BASE_KEYS <= rec.keys()
    assert "error" not in rec, rec
    assert rec["packet_type"] == "TM" and rec["apid"] == apid and rec["seq_count"] == 5
    assert (rec["service"], rec["subservice"]) == (pkt.service, pkt.subservice)
    assert rec["name"] == pkt.name
    assert rec["system"] == D.system_by_apid(apid).name
    assert rec["link"] == "ground" and rec["rx_time"] == 12.0
    assert rec["time"] == pytest.approx(T0)
    assert rec["utc"] == D.epoch.iso(T0) and rec["utc"].endswith("Z")
    assert strict_json(rec) == rec
    if pkt.service == 5:
        assert rec["event"] is None and rec["event_id"] == 0xFFFF
        return
    eng = {p.name: eng_of(p, raw[p.name]) for p in pkt.params}
    assert_params(rec["params"], eng)
    assert rec["limits"] == expected_limits(pkt.params, eng)
    if pkt.service == 1:
        stage, ok = STAGE_OF_SUBSERVICE[pkt.subservice]
        assert rec["request"] == {"apid": 0x20, "seq_count": 42}
        assert rec["stage"] == stage and rec["success"] is ok
        if ok:
            assert rec["failure"] is None
        else:
            assert rec["failure"] == eng["FAILURE_CODE"]


def raw_strategy(p):
    """Any raw value of the parameter's type (times on the CUC grid; labels as their numbers, known or not)."""
    if p.type == "time":
        one = st.integers(0, 2**48 - 1).map(lambda t: t / 65536)
    elif p.type == "f32":
        one = st.floats(width=32, allow_nan=False, allow_infinity=False)
    elif p.type == "f64":
        one = st.floats(allow_nan=False, allow_infinity=False)
    else:
        one = st.integers(*INT_RANGES[p.type])
    return st.lists(one, min_size=p.count, max_size=p.count) if p.count > 1 else one


@pytest.mark.parametrize("apid,pkt", [c for c in every_packet() if c[1].service not in (1, 5)][::3],
                         ids=lambda x: x if isinstance(x, int) else x.name)
@given(data=st.data())
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
def test_compiled_decoding_gives_the_reference_values_and_limits(apid, pkt, data):
    """The generated per-layout decoder agrees with the dictionary's reference conversion and limit check."""
    raw = data.draw(st.fixed_dictionaries({p.name: raw_strategy(p) for p in pkt.params}))
    rec = DEC.decode(tm_bytes(apid, pkt, raw))
    assert "error" not in rec, rec
    eng = {p.name: (eng_of(p, raw[p.name]) if p.enum is None or all(
        r in p.enum.labels for r in (raw[p.name] if p.count > 1 else [raw[p.name]])) else None)
        for p in pkt.params}
    for prm in pkt.params:
        if eng[prm.name] is None:  # an unknown enumeration value: labelled, never raised
            got = rec["params"][prm.name]
            assert all(str(g).startswith("UNKNOWN(") or g in prm.enum.values for g in (got if prm.count > 1 else [got]))
            eng[prm.name] = got
    assert_params(rec["params"], eng)
    assert rec["limits"] == expected_limits(pkt.params, rec["params"])


def every_event():
    return [(s.apid, e) for s in D.systems for e in s.events]


@pytest.mark.parametrize("apid,evt", every_event(), ids=lambda x: x if isinstance(x, int) else x.name)
def test_every_event_decodes(apid, evt):
    raw = {a.name: raw_value(a) for a in evt.args}
    data = evt.id.to_bytes(2, "big") + D.event_codec(evt).encode(raw, eng=False)
    rec = DEC.decode(PusTm(apid, 5, evt.subservice, data, seq_count=1, time=T0).pack())
    assert BASE_KEYS <= rec.keys() and "error" not in rec
    assert rec["event"] == evt.name and rec["event_id"] == evt.id
    assert rec["severity"] == evt.severity
    assert rec["system"] == evt.system
    assert rec["name"].startswith("EVENT_")
    eng = {a.name: eng_of(a, raw[a.name]) for a in evt.args}
    assert_params(rec["params"], eng)
    strict_json(rec)


def test_event_with_short_arguments_is_an_error_record():
    evt = next(e for s in D.systems for e in s.events if e.args)
    rec = DEC.decode(PusTm(evt.apid, 5, evt.subservice, evt.id.to_bytes(2, "big"), time=T0).pack())
    assert rec["error"] == "short_params" and rec["event"] == evt.name and rec["hex"]


def every_command():
    return [c for s in D.systems for c in s.commands]


def valid_args(cmd):
    out = {}
    for a in cmd.args:
        if a.enum is not None:
            out[a.name] = next(iter(a.enum.values))
        elif a.default is not None:
            out[a.name] = a.default
        elif a.type == "bool":
            out[a.name] = True
        elif a.min is not None:
            out[a.name] = a.min if a.type in ("f32", "f64", "time") else int(a.min)
        else:
            out[a.name] = 0
    return out


@pytest.mark.parametrize("cmd", every_command(), ids=lambda c: f"{c.system}.{c.name}")
def test_every_command_decodes_as_tc(cmd):
    args = valid_args(cmd)
    tc = build_tc(D, cmd.name, args, cmd.system, seq_count=9,
                  confirm=confirm_target(D, cmd, args) if cmd.hazardous else None)
    rec = DEC.decode(tc.pack())
    assert BASE_KEYS <= rec.keys() and "error" not in rec, rec
    assert rec["packet_type"] == "TC" and rec["name"] == cmd.name and rec["system"] == cmd.system
    assert rec["time"] is None and rec["utc"] is None and rec["seq_count"] == 9
    assert rec["params"] == D.args_codec(cmd).decode(tc.app_data)
    assert rec["hazardous"] is cmd.hazardous
    strict_json(rec)


def test_tc_with_bad_arguments_is_an_error_record_naming_the_failure_code():
    cmd = D.command("FSS_LEVEL")
    app = cmd.function_id.to_bytes(2, "big") + struct.pack(">h", 30000)  # beyond the +-2000 range
    rec = DEC.decode(PusTc(cmd.apid, cmd.service, cmd.subservice, app).pack())
    assert rec["error"] == "bad_args" and rec["failure"] == "ARG_OUT_OF_RANGE" and rec["name"] == "FSS_LEVEL"


def test_unknown_command_and_unknown_packet_have_no_name_but_keep_their_data():
    lander = D.lander
    rec = DEC.decode(PusTc(lander.apid, 200, 9, b"\x01\x02").pack())
    assert rec["name"] is None and rec["data"] == "0102" and "error" not in rec
    rec = DEC.decode(PusTm(lander.apid, 201, 7, b"\xab", time=T0).pack())
    assert rec["name"] is None and rec["data"] == "ab" and "error" not in rec
    assert rec["system"] == lander.name


# -- limits and engineering values ---------------------------------------------------------------------------

def test_limit_flags_warn_and_alarm():
    pkt = D.packet("FSS_HK")
    base = {"FSS_TEMP_VBB": 20.0, "FSS_TEMP_EBOX": 20.0, "FSS_BATT_V": 29.0, "FSS_BATT_SOC": 90, "FSS_MODE": "SCIENCE"}
    apid = D.system("FSS").apid

    def decode(**over):
        data = D.encode_tm(pkt, {**base, **over})
        return DEC.decode(PusTm(apid, pkt.service, pkt.subservice, data, time=T0).pack())

    nominal = decode()
    assert nominal["limits"] == {} and nominal["params"]["FSS_MODE"] == "SCIENCE"
    assert nominal["params"]["FSS_TEMP_VBB"] == pytest.approx(20.0)
    assert decode(FSS_TEMP_VBB=50.0)["limits"] == {"FSS_TEMP_VBB": "warn"}
    assert decode(FSS_TEMP_VBB=70.0, FSS_BATT_SOC=10)["limits"] == {"FSS_TEMP_VBB": "alarm", "FSS_BATT_SOC": "alarm"}


def test_unknown_enum_value_is_labelled_not_raised():
    pkt = D.packet("FSS_HK")
    data = D.encode_tm(pkt, {"FSS_MODE": 200}, eng=False)
    rec = DEC.decode(PusTm(D.system("FSS").apid, 3, 25, data, time=T0).pack())
    assert rec["params"]["FSS_MODE"] == "UNKNOWN(200)"


def test_verification_failure_record():
    pkt = D.packet("START_FAIL")
    data = D.encode_tm(pkt, {"TC_PACKET_ID": 0x1822, "TC_SEQ_CTRL": 0xC000 | 77,
                             "FAILURE_CODE": D.failure_code("WRONG_MODE"), "FAILURE_DATA": 3}, eng=False)
    rec = DEC.decode(PusTm(D.lander.apid, 1, 4, data, time=T0).pack())
    assert rec["request"] == {"apid": 0x22, "seq_count": 77}
    assert rec["stage"] == "start" and rec["success"] is False and rec["failure"] == "WRONG_MODE"
    assert rec["system"] == D.lander.name  # the lander reports about a TC routed to a payload


def test_plans_are_cached_per_packet():
    dec = PacketDecoder(D)
    pkt = D.packet("FSS_HK")
    raw = tm_bytes(D.system("FSS").apid, pkt, {})
    first = dec.decode(raw)
    plans = dict(dec._tm_plans)
    for _ in range(5):
        assert dec.decode(raw) == first
    assert dec._tm_plans == plans and len(plans) == 1


# -- damaged input -------------------------------------------------------------------------------------------

def good_packet() -> bytes:
    return tm_bytes(D.system("FSS").apid, D.packet("FSS_HK"), {})


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "crc"),
    (lambda b: b[:-3], "length"),
    (lambda b: b + b"\x00", "length"),
    (lambda b: b[:5], "short"),
    (lambda b: b"", "short"),
    (lambda b: bytes([b[0] | 0xE0]) + b[1:], "version"),
], ids=["crc", "truncated", "trailing", "header-only", "empty", "version"])
def test_damaged_packets_give_error_records(mutate, reason):
    data = mutate(good_packet())
    rec = DEC.decode(data)
    assert rec["error"] == reason and rec["hex"] == data.hex() and rec["detail"]
    assert BASE_KEYS <= rec.keys()
    strict_json(rec)


def test_unknown_apid_is_an_error_record():
    data = PusTm(0x3AB, 3, 25, b"\x00\x01", time=T0).pack()
    rec = DEC.decode(data)
    assert rec["error"] == "unknown_apid" and rec["apid"] == 0x3AB and rec["hex"] == data.hex()
    assert rec["time"] == pytest.approx(T0)  # the header parsed


def test_params_too_short_is_an_error_record():
    pkt = D.packet("FSS_HK")
    data = PusTm(D.system("FSS").apid, 3, 25, pkt.sid.to_bytes(2, "big") + b"\x01", time=T0).pack()
    rec = DEC.decode(data)
    assert rec["error"] == "short_params" and rec["name"] == "FSS_HK" and rec["hex"] == data.hex()


def test_trailing_source_data_is_kept():
    raw = {p.name: raw_value(p) for p in D.packet("FSS_HK").params}
    good = PusTm.unpack(tm_bytes(D.system("FSS").apid, D.packet("FSS_HK"), raw))
    longer = good._replace(source_data=good.source_data + b"\xee")
    rec = DEC.decode(longer.pack())
    assert "error" not in rec and rec["trailing"] == "ee" and rec["name"] == "FSS_HK"


def test_decode_dropped():
    assert decode_dropped(Dropped("crc", 17)) == {"dropped": "crc", "bytes": 17}


def test_non_finite_floats_become_strings(tmp_path):
    # a dictionary with an f32 parameter, to check strict-JSON output
    from tests.unit.test_ground_commanding import write_mission
    d = load_dictionary(write_mission(tmp_path))
    dec = PacketDecoder(d)
    pkt = d.packet("PAY_HK")
    data = d.encode_tm(pkt, {"PAY_RATE": float("nan"), "PAY_VEC": [1.0, float("inf"), 2.0]}, eng=False)
    rec = dec.decode(PusTm(d.system("PAY").apid, 3, 25, data, time=T0).pack())
    assert rec["params"]["PAY_RATE"] == "nan" and rec["params"]["PAY_VEC"] == [1.0, "inf", 2.0]
    strict_json(rec)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data):
    rec = DEC.decode(data)
    assert BASE_KEYS <= rec.keys()
    strict_json(rec)


KNOWN_APIDS = [s.apid for s in D.systems]


@st.composite
def crc_valid_packets(draw):
    """Structurally valid PUS packets (right length, good CRC) with random service, subservice and data."""
    is_tc = draw(st.booleans())
    apid = draw(st.sampled_from(KNOWN_APIDS + [0x7FF, 0x123]))
    svc = draw(st.sampled_from([1, 3, 5, 8, 9, 17, 200]))
    sub = draw(st.integers(0, 9) | st.integers(0, 255))
    data = draw(st.binary(max_size=80))
    if draw(st.booleans()) and len(data) >= 2:  # a sid/event id/function id the dictionary knows
        data = draw(st.integers(0, 20)).to_bytes(2, "big") + data[2:]
    if is_tc:
        return PusTc(apid, svc, sub, data, seq_count=draw(st.integers(0, 0x3FFF))).pack()
    return PusTm(apid, svc, sub, data, seq_count=draw(st.integers(0, 0x3FFF)),
                 time_coarse=draw(st.integers(0, 2**32 - 1)), time_fine=draw(st.integers(0, 0xFFFF))).pack()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(crc_valid_packets())
def test_valid_frames_with_random_content_never_raise(data):
    rec = DEC.decode(data)
    assert BASE_KEYS <= rec.keys()
    assert rec.get("error") != "internal", rec
    strict_json(rec)


@settings(max_examples=200)
@given(st.integers(0, 10_000), st.integers(0, 7), st.data())
def test_bit_flips_never_raise(pos, bit, data):
    good = good_packet()
    pos %= len(good)
    bad = bytearray(good)
    bad[pos] ^= 1 << bit
    if data.draw(st.booleans()):  # also fix the CRC so the damage reaches the field decoders
        bad[-2:] = crc16(bytes(bad[:-2])).to_bytes(2, "big")
    rec = DEC.decode(bytes(bad))
    assert rec.get("error") != "internal"
    strict_json(rec)


# -- whole captures ------------------------------------------------------------------------------------------

def capture_packets(n=6):
    out = []
    fss = D.system("FSS").apid
    for i in range(n):
        out.append(tm_bytes(fss, D.packet("FSS_HK"), {}, seq=i, time=T0 + i))
    return out


def good_records(recs):
    return [r for r in recs if "error" not in r and "dropped" not in r]


def test_raw_capture_decodes_every_packet_with_offsets():
    pkts = capture_packets()
    data = b"".join(pkts)
    assert detect_format(data) == "raw"
    recs = list(iter_file_records(data, D))
    assert [r["seq_count"] for r in recs] == list(range(len(pkts)))
    assert [r["offset"] for r in recs] == [sum(map(len, pkts[:i])) for i in range(len(pkts))]


def test_raw_capture_truncated_last_packet():
    pkts = capture_packets(3)
    data = b"".join(pkts)[:-5]
    recs = list(iter_file_records(data, D, "raw"))
    assert [r["seq_count"] for r in good_records(recs)] == [0, 1]
    last = recs[-1]
    assert last["error"] == "truncated" and last["offset"] == len(pkts[0]) * 2
    assert str(last["offset"]) in last["detail"] and last["bytes"] == len(pkts[2]) - 5


def test_raw_capture_with_bad_length_in_the_middle_resyncs():
    pkts = capture_packets(4)
    bad = bytearray(pkts[1])
    bad[4:6] = b"\x00\x01"  # a length field that is too short
    data = pkts[0] + bytes(bad) + pkts[2] + pkts[3]
    recs = list(iter_file_records(data, D, "raw"))
    assert [r["seq_count"] for r in good_records(recs)] == [0, 2, 3]
    err = [r for r in recs if "error" in r]
    assert len(err) == 1 and err[0]["error"] == "bad_length" and err[0]["offset"] == len(pkts[0])
    assert err[0]["bytes"] == len(pkts[1])


def test_raw_capture_with_length_beyond_the_file_in_the_middle_resyncs():
    pkts = capture_packets(3)
    bad = bytearray(pkts[0])
    bad[4:6] = b"\x07\xd0"  # 2000 + 7 octets: fits max_packet but runs past the end of the file
    recs = list(iter_file_records(bytes(bad) + pkts[1] + pkts[2], D, "raw"))
    assert [r["seq_count"] for r in good_records(recs)] == [1, 2]
    assert recs[0]["error"] == "bad_length" and recs[0]["offset"] == 0


def test_raw_capture_with_crc_error_and_junk():
    pkts = capture_packets(3)
    bad = bytearray(pkts[1])
    bad[-1] ^= 0xFF
    data = pkts[0] + bytes(bad) + b"\xff\xfe\xfd" + pkts[2]
    recs = list(iter_file_records(data, D, "raw"))
    assert [r["seq_count"] for r in good_records(recs)] == [0, 2]
    errs = [r for r in recs if "error" in r]
    assert errs[0]["error"] == "crc" and errs[0]["offset"] == len(pkts[0])
    assert sum(e["bytes"] for e in errs) == len(pkts[1]) + 3


def test_framed_capture_with_junk_and_truncated_end():
    pkts = capture_packets(4)
    data = b"junk" + frame(pkts[0]) + frame(pkts[1]) + b"\x00\x11" + frame(pkts[2]) + frame(pkts[3])[:-4]
    assert detect_format(data) == "framed"
    recs = list(iter_file_records(data, D))
    assert [r["seq_count"] for r in good_records(recs)] == [0, 1, 2]
    dropped = [r for r in recs if "dropped" in r]
    assert {"no_sync", "truncated"} <= {r["dropped"] for r in dropped}
    assert sum(r["bytes"] for r in dropped) == 4 + 2 + len(pkts[3])  # every byte accounted for
    offsets = [r["offset"] for r in good_records(recs)]
    assert offsets[0] == 4 + len(ASM)
    assert data[offsets[1]:offsets[1] + len(pkts[1])] == pkts[1]
    assert data[offsets[2]:offsets[2] + len(pkts[2])] == pkts[2]


def test_framed_capture_fed_in_chunks_gives_the_same_records():
    from ground.decoding import iter_framed_records
    pkts = capture_packets(5)
    data = b"".join(frame(p) for p in pkts)
    whole = list(iter_framed_records(data, DEC))
    chunked = list(iter_framed_records(data, DEC, chunk=7))
    assert whole == chunked and len(good_records(whole)) == 5


def test_detection_of_a_framed_capture_starting_with_junk_and_of_empty_input():
    pkts = capture_packets(2)
    assert detect_format(b"\x00\x00" + frame(pkts[0])) == "framed"
    assert detect_format(b"") == "raw"
    assert list(iter_file_records(b"", D)) == []
    with pytest.raises(ValueError):
        list(iter_file_records(b"", D, "cbor"))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(["auto", "raw", "framed"]))
def test_captures_of_arbitrary_bytes_never_raise(data, fmt):
    for rec in iter_file_records(data, DEC, fmt):
        strict_json(rec)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.binary(max_size=20))
def test_raw_capture_recovers_every_good_packet_after_junk(order, junk):
    pkts = capture_packets(6)
    data = junk + b"".join(pkts[i] for i in order)
    recs = list(iter_file_records(data, DEC, "raw"))
    assert [r["seq_count"] for r in good_records(recs)] == order
    assert sum(r.get("bytes", 0) for r in recs if "error" in r) == len(junk)


@settings(max_examples=500)
@given(st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF))
def test_cached_utc_matches_the_epoch_conversion(coarse, fine):
    assert DEC.utc(coarse, fine) == D.epoch.iso(coarse + fine / 65536.0)


def test_utc_with_an_epoch_off_the_whole_second():
    import dataclasses
    from fsw.protocol import MissionEpoch
    d = dataclasses.replace(D, epoch=MissionEpoch.parse("2027-03-01T00:00:00.123456Z"))
    dec = PacketDecoder(d)
    for coarse, fine in ((0, 0), (5, 65535), (86399, 32768)):
        assert dec.utc(coarse, fine) == d.epoch.iso(coarse + fine / 65536.0)


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF))
def test_cached_utc_with_an_epoch_off_the_whole_minute(coarse, fine):
    # the cache is per UTC minute: the epoch's seconds shift where a mission minute starts
    import dataclasses
    from fsw.protocol import MissionEpoch
    d = dataclasses.replace(D, epoch=MissionEpoch.parse("2027-12-31T23:59:37Z"))
    dec = PacketDecoder(d)
    for c in (coarse, coarse + 1, coarse + 23, coarse + 60):
        assert dec.utc(c, fine) == d.epoch.iso(c + fine / 65536.0)
