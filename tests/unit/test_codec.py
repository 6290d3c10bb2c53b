"""Packet field codecs compiled from the dictionary.

* every telemetry packet and event of the reference mission: raw values within their types
  survive encode_tm(eng=False) -> decode_raw, and engineering values survive encode -> decode;
* every telecommand: valid arguments survive encode_command -> args_codec.decode, and the packet
  is found again by its key;
* argument validation: each kind of mistake gives an ArgumentError with its failure code, and the
  ground's check before sending agrees with the unit's check on receipt.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.dictionary import (
    ArgsCodec, Argument, ArgumentError, Calibration, Command, Enumeration, Event, PacketCodec, Parameter,
    TmPacket, load_dictionary, to_eng, to_raw,
)
from fsw.dictionary.model import INT_RANGES, Limits
from fsw.protocol import DecodeError, PusTc, PusTm, parse_packet
from tests.conftest import examples

D = load_dictionary()
TICK = 2.0**-16
F32_MAX = struct.unpack(">f", bytes.fromhex("7f7fffff"))[0]

PACKETS: list[TmPacket] = list(D.standard_packets) + [p for s in D.systems for p in s.telemetry]
COMMANDS: list[Command] = [c for s in D.systems for c in s.commands if not getattr(c, "raw", False)]
EVENTS: list[Event] = [e for s in D.systems for e in s.events]


def _id(x) -> str:
    return f"{x.system}.{x.name}"


# -- strategies -----------------------------------------------------------------------------------

def raw_scalar(p: Parameter | Argument) -> st.SearchStrategy:
    if p.type == "time":
        return st.integers(0, 2**48 - 1).map(lambda t: t / 65536)
    if p.type == "f32":
        return st.floats(width=32, allow_nan=False)
    if p.type == "f64":
        return st.floats(allow_nan=False)
    return st.integers(*INT_RANGES[p.type])


def raw_value(p: Parameter) -> st.SearchStrategy:
    one = raw_scalar(p)
    return st.tuples(*[one] * p.count) if p.count > 1 else one


def raw_values(params: tuple[Parameter, ...]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({p.name: raw_value(p) for p in params})


def eng_scalar(p: Parameter) -> st.SearchStrategy:
    """Raw values that have an engineering form which maps back (enumerations: declared labels)."""
    if p.enum is not None:
        return st.sampled_from(sorted(p.enum.values.values()))
    return raw_scalar(p)


def arg_value(a: Argument) -> st.SearchStrategy:
    """Valid operator input for an argument."""
    if a.enum is not None:
        return st.sampled_from(list(a.enum.values))
    if a.type == "bool":
        return st.booleans()
    if a.type == "time":
        lo = 0 if a.min is None else max(0, math.ceil(a.min * 65536))
        hi = 2**48 - 1 if a.max is None else min(2**48 - 1, math.floor(a.max * 65536))
        return st.integers(lo, hi).map(lambda t: t / 65536)
    if a.type in ("f32", "f64"):
        return st.floats(a.min, a.max, allow_nan=False, allow_infinity=False,
                         width=32 if a.type == "f32" else 64)
    tlo, thi = INT_RANGES[a.type]
    lo = tlo if a.min is None else max(tlo, math.ceil(a.min))
    hi = thi if a.max is None else min(thi, math.floor(a.max))
    return st.integers(lo, hi)


def args_for(cmd: Command) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({a.name: arg_value(a) for a in cmd.args})


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


# -- telemetry -------------------------------------------------------------------------------------

def test_the_reference_mission_has_packets_commands_and_events() -> None:
    assert len(PACKETS) > 10 and len(COMMANDS) > 10 and len(EVENTS) > 5


@pytest.mark.parametrize("pkt", PACKETS, ids=_id)
@settings(max_examples=examples(40))
@given(data=st.data())
def test_tm_raw_round_trip_for_every_packet(pkt: TmPacket, data: st.DataObject) -> None:
    values = data.draw(raw_values(pkt.params))
    codec = D.codec(pkt)
    src = D.encode_tm(pkt, values, eng=False)
    assert len(src) == codec.size
    if pkt.sid is not None:
        assert src[:2] == pkt.sid.to_bytes(2, "big")
    assert codec.decode_raw(src) == [values[p.name] for p in pkt.params]
    # the whole way: packet on the wire, parsed, recognised by its key, decoded
    apid = pkt.apid if pkt.apid is not None else D.lander.apid
    tm = parse_packet(PusTm(apid, pkt.service, pkt.subservice, src, time=1234.5).pack())
    assert D.packet_by_key(tm.apid, tm.service, tm.subservice, tm.source_data) is pkt
    assert codec.decode_raw(tm.source_data) == [values[p.name] for p in pkt.params]


@pytest.mark.parametrize("pkt", [p for p in PACKETS if p.params], ids=_id)
@settings(max_examples=examples(25))
@given(data=st.data())
def test_tm_engineering_round_trip_for_every_packet(pkt: TmPacket, data: st.DataObject) -> None:
    raws = {p.name: data.draw(st.tuples(*[eng_scalar(p)] * p.count) if p.count > 1 else eng_scalar(p))
            for p in pkt.params}
    eng = {p.name: to_eng(p, raws[p.name]) for p in pkt.params}
    codec = D.codec(pkt)
    src = D.encode_tm(pkt, eng)
    back = codec.decode_raw(src)
    for p, r in zip(pkt.params, back):
        assert r == raws[p.name], p.name  # calibrations invert exactly back to the integer
    assert codec.decode(src) == eng


@pytest.mark.parametrize("evt", EVENTS, ids=_id)
@settings(max_examples=examples(25))
@given(data=st.data())
def test_event_round_trip_for_every_event(evt: Event, data: st.DataObject) -> None:
    raws = {p.name: data.draw(eng_scalar(p)) for p in evt.args}
    eng = {p.name: to_eng(p, raws[p.name]) for p in evt.args}
    src = D.encode_event(evt, eng)
    assert int.from_bytes(src[:2], "big") == evt.id
    assert D.event_by_id(evt.apid, evt.id) is evt
    assert D.event_codec(evt).decode(src[2:]) == eng
    assert D.event_codec(evt).decode_raw(src, 2) == [raws[p.name] for p in evt.args]


def messy_scalar(p: Parameter) -> st.SearchStrategy:
    """Anything a simulator or a script might hand the encoder: in or out of range, floats, labels, junk."""
    opts = [st.integers(-2**65, 2**65), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
            raw_scalar(p)]
    if p.enum is not None:
        opts.append(st.sampled_from(sorted(p.enum.values)))
    return st.one_of(*opts)


def messy_value(p: Parameter) -> st.SearchStrategy:
    one = messy_scalar(p)
    if p.count == 1:
        return one
    n = st.integers(p.count - 1, p.count + 1)
    return st.one_of(one, n.flatmap(lambda k: st.lists(one, min_size=k, max_size=k)),
                     st.lists(raw_scalar(p), min_size=p.count, max_size=p.count),
                     st.lists(st.floats(-1e6, 1e6), min_size=p.count, max_size=p.count))


def _careful_bytes(codec: PacketCodec, values: dict, eng: bool) -> bytes | type:
    try:
        return codec.struct.pack(*codec._flat(values, eng))
    except Exception as exc:  # noqa: BLE001 - the reference's exception type is what is compared
        return type(exc)


@pytest.mark.parametrize("pkt", PACKETS, ids=_id)
@given(data=st.data(), eng=st.booleans())
@settings(max_examples=40)
def test_compiled_encoders_give_the_reference_encoding(pkt: TmPacket, data: st.DataObject, eng: bool) -> None:
    """The per-parameter fast paths pack exactly what the careful per-value encoder packs, or fail alike."""
    codec = D.codec(pkt)
    values = data.draw(st.fixed_dictionaries({p.name: messy_value(p) for p in pkt.params}))
    want = _careful_bytes(codec, values, eng)
    try:
        got: bytes | type = codec.encode(values, sid=pkt.sid, eng=eng)
        if pkt.sid is not None:
            got = got[2:]
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == want


def test_decoding_short_source_data_is_a_decode_error() -> None:
    pkt = next(p for p in PACKETS if p.params)
    src = D.encode_tm(pkt, {}, eng=False)
    for n in range(len(src)):
        with pytest.raises(DecodeError) as ei:  # a ValueError, not struct.error
            D.codec(pkt).decode(src[:n])
        assert ei.value.reason == "short"
    assert D.codec(pkt).decode(src + b"extra") == D.codec(pkt).decode(src)  # trailing octets are ignored


def _codec(*params: Parameter) -> PacketCodec:
    return PacketCodec(tuple(params))


@pytest.mark.parametrize("typ", sorted(INT_RANGES))
def test_integer_encoding_saturates_like_a_sensor(typ: str) -> None:
    lo, hi = INT_RANGES[typ]
    c = _codec(Parameter("X", typ))
    for given_, expect in [(hi + 1, hi), (lo - 1, lo), (10**30, hi), (-10**30, lo), (math.inf, hi),
                           (-math.inf, lo), (math.nan, max(lo, 0)), (float(hi) + 0.4, hi), (0.5, 0), (1.5, 2)]:
        assert c.decode_raw(c.encode({"X": given_}, eng=False)) == [min(max(expect, lo), hi)], given_


def test_float_and_time_encoding_saturates() -> None:
    c = _codec(Parameter("F", "f32"), Parameter("G", "f64"), Parameter("T", "time"))
    out = c.decode_raw(c.encode({"F": 1e39, "G": 1e300, "T": 2.0**33}, eng=False))
    assert out == [math.inf, 1e300, 2**32 - TICK]
    out = c.decode_raw(c.encode({"F": -1e39, "G": -0.0, "T": -5.0}, eng=False))
    assert out == [-math.inf, 0.0, 0.0]
    out = c.decode_raw(c.encode({"F": F32_MAX, "T": math.inf}, eng=False))
    assert out == [F32_MAX, 0.0, 2**32 - TICK]
    assert math.isnan(c.decode_raw(c.encode({"F": math.nan}, eng=False))[0])
    assert c.decode_raw(c.encode({"T": math.nan}, eng=False))[2] == 0.0


def test_missing_values_pack_as_zero_and_arrays_broadcast() -> None:
    c = _codec(Parameter("A", "u8", count=3), Parameter("B", "i16"))
    assert c.decode_raw(c.encode({})) == [(0, 0, 0), 0]
    assert c.decode_raw(c.encode({"A": 7})) == [(7, 7, 7), 0]
    with pytest.raises(ValueError):
        c.encode({"A": [1, 2]})


def test_packet_with_sid_needs_one() -> None:
    c = PacketCodec((Parameter("A", "u8"),), has_sid=True)
    with pytest.raises(ValueError):
        c.encode({"A": 1})
    assert c.encode({"A": 1}, sid=0x0102) == b"\x01\x02\x01"


def test_enumerated_and_boolean_engineering_values() -> None:
    e = Enumeration("E", {"OFF": 0, "ON": 1, "FAULT": 7})
    p, b = Parameter("P", "u8", enum=e), Parameter("B", "bool")
    assert [to_eng(p, r) for r in (0, 1, 7, 9)] == ["OFF", "ON", "FAULT", "UNKNOWN(9)"]
    assert to_raw(p, "FAULT") == 7 and to_raw(p, 1) == 1
    with pytest.raises(ValueError):
        to_raw(p, "SIDEWAYS")
    assert (to_eng(b, 0), to_eng(b, 1), to_raw(b, True), to_raw(b, 0)) == (False, True, 1, 0)


@settings(max_examples=examples(200))
@given(st.integers(-30000, 30000), st.floats(0.001, 100), st.floats(-1000, 1000))
def test_linear_calibration_inverts(raw: int, gain: float, offset: float) -> None:
    cal = Calibration(poly=(offset, gain))
    assert round(cal.invert(cal.apply(raw))) == raw


@settings(max_examples=examples(200))
@given(st.floats(-50, 150))
def test_spline_calibration_interpolates_and_inverts(x: float) -> None:
    cal = Calibration(spline=((0.0, -40.0), (100.0, 10.0), (200.0, 160.0)))
    assert cal.apply(0.0) == -40.0 and cal.apply(100.0) == 10.0 and cal.apply(50.0) == -15.0
    assert cal.apply(-100.0) == -90.0  # extrapolates along the end segments
    assert cal.invert(cal.apply(x)) == pytest.approx(x, abs=1e-9)


def test_cubic_calibration_inverts_by_bisection() -> None:
    cal = Calibration(poly=(1.0, 0.5, 0.0, 0.001))
    for raw in (-100.0, -3.0, 0.0, 12.5, 400.0):
        assert cal.invert(cal.apply(raw)) == pytest.approx(raw, abs=1e-6)


def test_limits() -> None:
    lim = Limits(warn_low=-30, warn_high=55, alarm_low=-40, alarm_high=70)
    assert [lim.check(v) for v in (0, -30, 55, -35, 60, -41, 71)] == ["ok", "ok", "ok", "warn", "warn",
                                                                       "alarm", "alarm"]
    assert Limits(warn_high=0.6).check(1e9) == "warn" and Limits().check(-1e9) == "ok"


# -- telecommand arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", COMMANDS, ids=_id)
@settings(max_examples=examples(20))
@given(data=st.data())
def test_command_round_trip_for_every_command(cmd: Command, data: st.DataObject) -> None:
    args = data.draw(args_for(cmd))
    app = D.encode_command(cmd, args)
    assert len(app) == D.args_codec(cmd).size
    if cmd.function_id is not None:
        assert app[:2] == cmd.function_id.to_bytes(2, "big")
    assert D.args_codec(cmd).decode(app) == args
    # on the wire and back, and found again by its key
    tc = parse_packet(PusTc(cmd.apid, cmd.service, cmd.subservice, app, seq_count=9).pack())
    assert D.command_by_key(tc.apid, tc.service, tc.subservice, tc.app_data) is cmd
    assert D.args_codec(cmd).decode(tc.app_data) == args


def _cmd_with(pred) -> tuple[Command, Argument]:
    for c in COMMANDS:
        for a in c.args:
            if pred(a):
                return c, a
    raise LookupError("no such argument in the reference mission")


def _valid(cmd: Command) -> dict:
    return {a.name: _first_valid(a) for a in cmd.args}


def _first_valid(a: Argument):
    if a.enum is not None:
        return next(iter(a.enum.values))
    if a.type == "bool":
        return True
    lo = a.min if a.min is not None else 0
    return lo if a.type in ("f32", "f64", "time") else max(int(math.ceil(lo)), INT_RANGES[a.type][0])


def _code(cmd: Command, args: dict) -> str:
    with pytest.raises(ArgumentError) as ei:
        D.encode_command(cmd, args)
    assert isinstance(ei.value, ValueError)
    return ei.value.code


def test_unknown_argument() -> None:
    cmd = COMMANDS[0]
    assert _code(cmd, {**_valid(cmd), "bogus": 1}) == "UNKNOWN_ARGUMENT"


def test_missing_argument() -> None:
    cmd, a = _cmd_with(lambda a: a.default is None)
    args = _valid(cmd)
    del args[a.name]
    assert _code(cmd, args) == "MISSING_ARGUMENT"


def test_missing_argument_with_a_default_takes_the_default() -> None:
    cmd, a = _cmd_with(lambda a: a.default is not None)
    args = _valid(cmd)
    del args[a.name]
    assert D.args_codec(cmd).decode(D.encode_command(cmd, args))[a.name] == a.default


def test_out_of_declared_range() -> None:
    cmd, a = _cmd_with(lambda a: a.min is not None and a.max is not None and a.type in INT_RANGES)
    for bad in (math.floor(a.min) - 1, math.ceil(a.max) + 1):
        if INT_RANGES[a.type][0] <= bad <= INT_RANGES[a.type][1]:
            assert _code(cmd, {**_valid(cmd), a.name: bad}) == "ARG_OUT_OF_RANGE"
    assert D.args_codec(cmd).decode(D.encode_command(cmd, {**_valid(cmd), a.name: int(a.max)}))[a.name] == a.max


def test_out_of_type_range() -> None:
    cmd, a = _cmd_with(lambda a: a.min is None and a.max is None and a.enum is None and a.type in INT_RANGES
                       and a.type != "bool")
    lo, hi = INT_RANGES[a.type]
    assert _code(cmd, {**_valid(cmd), a.name: hi + 1}) == "ARG_OUT_OF_RANGE"
    assert _code(cmd, {**_valid(cmd), a.name: lo - 1}) == "ARG_OUT_OF_RANGE"


def test_bad_enumeration_label_or_value() -> None:
    cmd, a = _cmd_with(lambda a: a.enum is not None)
    assert _code(cmd, {**_valid(cmd), a.name: "NOT_A_LABEL"}) == "ARG_OUT_OF_RANGE"
    unused = max(a.enum.values.values()) + 1
    assert _code(cmd, {**_valid(cmd), a.name: unused}) == "ARG_OUT_OF_RANGE"
    assert _code(cmd, {**_valid(cmd), a.name: 1.0}) == "BAD_TYPE"
    label, value = next(iter(a.enum.values.items()))
    assert D.args_codec(cmd).decode(D.encode_command(cmd, {**_valid(cmd), a.name: value}))[a.name] == label


@pytest.mark.parametrize("bad", ["ten", "1.5", 1.5, True, None, [1], b"\x01"])
def test_wrong_type_for_an_integer(bad: object) -> None:
    cmd, a = _cmd_with(lambda a: a.enum is None and a.type in INT_RANGES and a.type != "bool")
    assert _code(cmd, {**_valid(cmd), a.name: bad}) == "BAD_TYPE"


def test_numbers_typed_as_text_are_accepted() -> None:
    cmd, a = _cmd_with(lambda a: a.enum is None and a.type in INT_RANGES and a.type != "bool"
                       and (a.max is None or a.max >= 16) and (a.min is None or a.min <= 16))
    assert D.args_codec(cmd).decode(D.encode_command(cmd, {**_valid(cmd), a.name: "0x10"}))[a.name] == 16
    assert D.args_codec(cmd).decode(D.encode_command(cmd, {**_valid(cmd), a.name: 16.0}))[a.name] == 16


BOOL = Argument("flag", "bool")


@pytest.mark.parametrize("given_,expect", [(True, True), (False, False), (1, True), (0, False), ("true", True),
                                           ("OFF", False), ("yes", True), ("0", False)])
def test_boolean_inputs(given_: object, expect: bool) -> None:
    codec = ArgsCodec((BOOL,), None)
    assert codec.decode(codec.encode({"flag": given_})) == {"flag": expect}


@pytest.mark.parametrize("given_,code", [("maybe", "BAD_TYPE"), (1.0, "BAD_TYPE"), (None, "BAD_TYPE"),
                                         (2, "ARG_OUT_OF_RANGE"), (-1, "ARG_OUT_OF_RANGE")])
def test_boolean_rejects_what_is_not_a_boolean(given_: object, code: str) -> None:
    # 2 or 1.0 used to become True silently
    with pytest.raises(ArgumentError) as ei:
        ArgsCodec((BOOL,), None).encode({"flag": given_})
    assert ei.value.code == code


# -- the unit's checks on receipt ---------------------------------------------------------------------

def test_receipt_checks_give_declared_failure_codes() -> None:
    cmd, a = _cmd_with(lambda a: a.enum is not None)
    codec = D.args_codec(cmd)
    good = D.encode_command(cmd, _valid(cmd))
    codes = set()
    for app in (good[:-1], good + b"\x00", b""):
        if len(app) != len(good):
            with pytest.raises(ArgumentError) as ei:
                codec.decode(app)
            codes.add(ei.value.code)
    assert codes == {"BAD_LENGTH"}
    # an enumeration value that no label has
    unused = max(a.enum.values.values()) + 1
    offset = (2 if cmd.function_id is not None else 0) + sum(
        x.size for x in cmd.args[:cmd.args.index(a)])
    bad = bytearray(good)
    bad[offset + a.size - 1] = unused & 0xFF
    with pytest.raises(ArgumentError) as ei:
        codec.decode(bytes(bad))
    assert ei.value.code == "ARG_OUT_OF_RANGE"
    for code in ("BAD_LENGTH", "ARG_OUT_OF_RANGE"):  # the unit reports them in PUS-1 failures
        assert code in D.failure_codes.values


def test_receipt_checks_ranges_booleans_and_finite_floats() -> None:
    ranged = Argument("n", "u16", min=10, max=20)
    codec = ArgsCodec((ranged, BOOL, Argument("f", "f64")), function_id=3)
    good = codec.encode({"n": 15, "flag": True, "f": 1.5})
    assert good[:2] == b"\x00\x03"
    assert codec.decode(good) == {"n": 15, "flag": True, "f": 1.5}
    for n, flag, f in [(9, 1, 0.0), (21, 1, 0.0), (15, 2, 0.0), (15, 1, math.nan), (15, 1, math.inf)]:
        with pytest.raises(ArgumentError) as ei:
            codec.decode(b"\x00\x03" + struct.pack(">HBd", n, flag, f))
        assert ei.value.code == "ARG_OUT_OF_RANGE"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "nan"])
def test_non_finite_floats_are_refused(bad: object) -> None:
    for typ in ("f32", "f64"):
        with pytest.raises(ArgumentError) as ei:
            ArgsCodec((Argument("f", typ),), None).encode({"f": bad})
        assert ei.value.code == "ARG_OUT_OF_RANGE"


def test_f32_beyond_single_precision_is_out_of_range_not_an_overflow() -> None:
    codec = ArgsCodec((Argument("f", "f32"),), None)
    with pytest.raises(ArgumentError) as ei:  # used to escape as OverflowError from struct
        codec.encode({"f": 1e39})
    assert ei.value.code == "ARG_OUT_OF_RANGE"
    assert codec.decode(codec.encode({"f": F32_MAX}))["f"] == F32_MAX


@pytest.mark.parametrize("bad", [-TICK, 2.0**32, math.nan, math.inf])
def test_time_outside_cuc_range(bad: float) -> None:
    with pytest.raises(ArgumentError) as ei:
        ArgsCodec((Argument("t", "time"),), None).encode({"t": bad})
    assert ei.value.code == "ARG_OUT_OF_RANGE"


@settings(max_examples=examples(300))
@given(st.floats(-1e6, 1e6), st.floats(0, 1e6), st.data())
def test_ground_and_unit_agree_on_f32_limits(lo: float, span: float, data: st.DataObject) -> None:
    # regression: 0.1 passed the ground's check against max=0.1 but was sent as f32(0.1) > 0.1,
    # so the unit refused what the ground had accepted
    a = Argument("f", "f32", min=lo, max=lo + span)
    x = data.draw(st.floats(a.min, a.max))
    codec = ArgsCodec((a,), None)
    got = codec.decode(codec.encode({"f": x}))["f"]
    assert got == struct.unpack(">f", struct.pack(">f", x))[0]


@settings(max_examples=examples(300))
@given(st.floats(0, 1e6), st.floats(0, 1e6), st.data())
def test_ground_and_unit_agree_on_time_limits(lo: float, span: float, data: st.DataObject) -> None:
    # same with times: a value at min was floored to the tick below min on the wire
    a = Argument("t", "time", min=lo, max=lo + span)
    x = data.draw(st.floats(a.min, a.max))
    codec = ArgsCodec((a,), None)
    got = codec.decode(codec.encode({"t": x}))["t"]
    assert got <= x < got + TICK


def test_limit_values_typed_exactly_are_accepted() -> None:
    for a, v in [(Argument("f", "f32", min=-0.1, max=0.1), 0.1), (Argument("f", "f32", min=-0.1, max=0.1), -0.1),
                 (Argument("t", "time", min=10.3, max=20.7), 10.3), (Argument("t", "time", min=10.3, max=20.7), 20.7)]:
        codec = ArgsCodec((a,), None)
        assert codec.decode(codec.encode({a.name: v}))[a.name] == pytest.approx(v, abs=TICK)
