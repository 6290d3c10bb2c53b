"""Encoding and decoding of packet fields, compiled from the dictionary.

Each packet layout compiles once to a precompiled :class:`struct.Struct`;
decoding is one ``unpack_from`` plus per-parameter conversion.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Callable, Iterable, Mapping

from ..protocol.errors import BytesTooShortError
from ..protocol.timecode import seconds_to_cuc_fields
from .model import INT_RANGES, SCALAR_TYPES, Argument, Parameter

_F32 = struct.Struct(">f")


class ArgumentError(ValueError):
    """A command argument is missing, unknown, of the wrong type or out of range.

    ``code`` is the PUS-1 failure code name the flight software reports.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _fmt_of(items: Iterable[Parameter | Argument]) -> str:
    parts = []
    for it in items:
        code = SCALAR_TYPES[it.type][0]
        count = getattr(it, "count", 1)
        parts.append(code * count)
    return ">" + "".join(parts)


class PacketCodec:
    """Source-data layout of one telemetry packet (after the structure id, if any)."""

    __slots__ = ("params", "struct", "size", "_plan", "has_sid", "_enc", "convs", "_names")

    def __init__(self, params: tuple[Parameter, ...], has_sid: bool = False) -> None:
        self.params = params
        self.has_sid = has_sid
        self.struct = struct.Struct(_fmt_of(params))
        self.size = self.struct.size + (2 if has_sid else 0)
        # plan: (name, kind, width) where kind tells how to fold raw struct values
        plan = []
        for p in params:
            width = 2 if p.type == "time" else 1
            plan.append((p, width * p.count, p.type == "time", p.count > 1))
        self._plan = tuple(plan)
        self._names = tuple(p.name for p in params)
        # raw -> engineering, compiled once: (index, converter); arrays without conversion become lists
        convs: list[tuple[int, Callable[[Any], Any]]] = []
        for i, p in enumerate(params):
            conv = converter(p)
            if p.count > 1:
                convs.append((i, list if conv is None else _array_of(conv)))
            elif conv is not None:
                convs.append((i, conv))
        #: raw -> engineering per parameter index (arrays become lists), shared with ground decoding
        self.convs = tuple(convs)
        self._enc: dict[bool, tuple] = {}

    def decode_raw(self, data: bytes, offset: int = 0) -> list[Any]:
        """Raw values in parameter order; arrays as tuples, times as mission seconds."""
        off = offset + (2 if self.has_sid else 0)
        if len(data) - off < self.struct.size:
            raise BytesTooShortError(self.size, max(0, len(data) - offset), "source data")
        flat = self.struct.unpack_from(data, off)
        out = []
        i = 0
        for p, n, is_time, is_array in self._plan:
            if is_time:
                vals = [flat[i + 2 * k] + flat[i + 2 * k + 1] / 65536.0 for k in range(p.count)]
                out.append(tuple(vals) if is_array else vals[0])
            elif is_array:
                out.append(flat[i:i + n])
            else:
                out.append(flat[i])
            i += n
        return out

    def decode(self, data: bytes, offset: int = 0) -> dict[str, Any]:
        """Engineering values by parameter name."""
        raws = self.decode_raw(data, offset)
        for i, conv in self.convs:
            raws[i] = conv(raws[i])
        return dict(zip(self._names, raws))

    def encode(self, values: Mapping[str, Any], sid: int | None = None, eng: bool = True) -> bytes:
        """Pack values (engineering by default; raw with ``eng=False``).  Missing values pack as 0."""
        fast = self._enc.get(eng)
        if fast is None:
            fast = self._enc[eng] = _compile_encoder(self.params, eng)
        try:
            body = self.struct.pack(*fast(values))
        except Exception:  # noqa: BLE001 - anything unusual: the careful encoder decides (and raises if it must)
            body = self.struct.pack(*self._flat(values, eng))
        if self.has_sid:
            if sid is None:
                raise ValueError("packet has a structure id: pass sid")
            return struct.pack(">H", sid) + body
        return body

    def _flat(self, values: Mapping[str, Any], eng: bool) -> list[Any]:
        flat: list[Any] = []
        for p in self.params:
            _careful(p, values.get(p.name, 0), flat, eng)
        return flat


def _compile_encoder(params: tuple[Parameter, ...], eng: bool) -> Callable[[Mapping[str, Any]], tuple]:
    """Generate ``values -> tuple of struct values`` for one layout: straight-line code, one line per parameter.

    The common cases become plain expressions: integers (``struct.pack`` checks their range), enumeration
    labels, linear calibrations, floats and booleans.  Other parameters (times, arrays, non-linear
    calibrations) call their :func:`_encoder`.  Whatever the generated code or ``struct.pack`` cannot
    take raises, and :meth:`PacketCodec.encode` then uses the careful per-value encoder, so the bytes are
    always the reference encoding's.
    """
    ns: dict[str, Any] = {}
    lines = ["def fast(values):", "    g = values.get"]
    out = []
    for k, p in enumerate(params):
        name = repr(p.name)
        cal = p.calibration if eng and p.type != "time" else None
        linear = cal is not None and bool(cal.poly) and len(cal.poly) >= 2 and not any(cal.poly[2:]) \
            and cal.poly[1] != 0
        enum = eng and p.enum is not None
        v = f"v{k}"
        if p.count == 1 and p.type in INT_RANGES and p.type != "bool" and cal is None:
            lines.append(f"    {v} = g({name}, 0)")
            if enum:
                ns[f"L{k}"] = dict(p.enum.values)
                lines.append(f"    if {v}.__class__ is str: {v} = L{k}[{v}]")
            out.append(v)
        elif p.count == 1 and p.type in INT_RANGES and p.type != "bool" and linear and not enum:
            ns[f"A{k}"], ns[f"B{k}"] = float(cal.poly[0]), float(cal.poly[1])
            lines.append(f"    {v} = round((float(g({name}, 0)) - A{k}) / B{k})")
            out.append(v)
        elif p.count == 1 and p.type in ("f32", "f64") and (cal is None or linear):
            if linear:
                ns[f"A{k}"], ns[f"B{k}"] = float(cal.poly[0]), float(cal.poly[1])
                lines.append(f"    {v} = (float(g({name}, 0)) - A{k}) / B{k}")
            else:
                lines.append(f"    {v} = g({name}, 0)")
                lines.append(f"    if {v}.__class__ is not float and {v}.__class__ is not int: raise _NotFast")
            out.append(v)
        elif p.count == 1 and p.type == "bool" and eng and not enum:
            lines.append(f"    {v} = 1 if g({name}, 0) else 0")
            out.append(v)
        else:
            ns[f"E{k}"] = _encoder(p, eng)
            lines.append(f"    {v} = []")
            lines.append(f"    E{k}(g({name}, 0), {v})")
            out.append("*" + v)
    lines.append("    return (" + "".join(o + ", " for o in out) + ")")
    ns["_NotFast"] = _NotFast
    exec("\n".join(lines), ns)  # noqa: S102 - generated from the dictionary's own layout, no outside text
    return ns["fast"]


def _careful(p: Parameter, v: Any, flat: list, eng: bool) -> None:
    """The reference encoding of one parameter's value: conversion, rounding and saturation per element."""
    if p.count > 1:
        seq = list(v) if isinstance(v, (list, tuple)) else [v] * p.count
        if len(seq) != p.count:
            raise ValueError(f"{p.name}: expected {p.count} values, got {len(seq)}")
        for x in seq:
            _flatten(p, to_raw(p, x) if eng else x, flat)
    else:
        _flatten(p, to_raw(p, v) if eng else v, flat)


def _encoder(p: Parameter, eng: bool) -> Callable[[Any, list], None]:
    """An encoder for one parameter the generated code does not inline: appends its struct values to ``flat``.

    Arrays of in-range integers (and linearly calibrated integer arrays) are converted as a whole;
    raw booleans, times and the rest go through :func:`_careful`.  The fast path produces exactly what
    the careful path would, and falls back to it whenever it is not sure.
    """
    def careful(v: Any, flat: list, _p: Parameter = p, _eng: bool = eng) -> None:
        _careful(_p, v, flat, _eng)

    rng = INT_RANGES.get(p.type) if p.type != "bool" else None
    if p.count == 1 or rng is None or (eng and p.enum is not None):
        return careful
    lo, hi = rng
    cal = p.calibration if eng else None
    linear = cal is not None and bool(cal.poly) and len(cal.poly) >= 2 and not any(cal.poly[2:]) and cal.poly[1] != 0
    if cal is not None and not linear:
        return careful
    c0 = float(cal.poly[0]) if linear else 0.0
    c1 = float(cal.poly[1]) if linear else 1.0
    count = p.count

    def array(v: Any, flat: list) -> None:
        if type(v) is not list and type(v) is not tuple or len(v) != count:
            careful(v, flat)
            return
        raw = v
        if cal is not None:
            try:  # the same arithmetic as Calibration.invert + round(); NaN/inf raise and go careful
                raw = [round((float(x) - c0) / c1) for x in v]
            except (ValueError, OverflowError, TypeError):
                careful(v, flat)
                return
        if lo <= min(raw) and max(raw) <= hi:
            flat.extend(raw)   # a float left in an integer array makes struct.pack refuse: careful path
        else:
            careful(v, flat)
    return array


def _array_of(conv: Callable[[Any], Any]) -> Callable[[Any], list]:
    def array_conv(raw: Any, _c: Callable[[Any], Any] = conv) -> list:
        return [_c(r) for r in raw]
    return array_conv


def converter(p: Parameter) -> Callable[[Any], Any] | None:
    """Raw -> engineering conversion of one scalar of ``p``, compiled; ``None`` for identity.

    The same values as :func:`to_eng_scalar`, faster: enumerations by a snapshot of their labels,
    linear polynomials as ``c1 * raw + c0`` (the same float as ``Calibration.apply``).
    """
    if p.enum is not None:
        labels = dict(p.enum.labels)  # Enumeration.labels builds a new mapping per call: snapshot once

        def enum_label(raw: Any, _labels: dict = labels) -> Any:
            label = _labels.get(raw)
            return label if label is not None else f"UNKNOWN({raw})"
        return enum_label
    if p.type == "bool":
        return bool
    cal = p.calibration
    if cal is not None and p.type != "time":
        if cal.poly and (len(cal.poly) <= 2 or not any(cal.poly[2:])):
            c0 = float(cal.poly[0])
            c1 = float(cal.poly[1]) if len(cal.poly) > 1 else 0.0
            return lambda raw, _a=c0, _b=c1: _b * raw + _a
        return cal.apply
    return None


class _NotFast(Exception):
    """Internal: the value needs the careful encoder."""


def _flatten(p: Parameter, raw: Any, flat: list) -> None:
    """Append the struct values of one raw value, saturating to the type like the integers do."""
    if p.type == "time":
        flat.extend(seconds_to_cuc_fields(float(raw)))
        return
    if p.type == "f32":
        flat.append(_f32_saturated(float(raw)))
        return
    if p.type == "f64":
        flat.append(float(raw))
        return
    lo, hi = INT_RANGES[p.type]
    if isinstance(raw, float):
        if raw != raw:  # NaN: no meaningful integer; pack 0 like a missing value
            flat.append(min(max(0, lo), hi))
            return
        if math.isinf(raw):
            flat.append(hi if raw > 0 else lo)
            return
        raw = round(raw)
    iv = int(raw)
    flat.append(min(max(iv, lo), hi))


def _f32_saturated(x: float) -> float:
    """``x`` as the nearest single-precision value; beyond the f32 range, +-inf (IEEE overflow)."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def to_eng(p: Parameter, raw: Any) -> Any:
    """Raw wire value -> engineering value (enumeration label, calibrated float, bool)."""
    if isinstance(raw, tuple):
        return [to_eng_scalar(p, r) for r in raw]
    return to_eng_scalar(p, raw)


def to_eng_scalar(p: Parameter, raw: Any) -> Any:
    if p.enum is not None:
        label = p.enum.labels.get(raw)
        return label if label is not None else f"UNKNOWN({raw})"
    if p.type == "bool":
        return bool(raw)
    if p.calibration is not None:
        return p.calibration.apply(raw)
    return raw


def to_raw(p: Parameter, value: Any) -> Any:
    """Engineering value -> raw wire value (inverse of :func:`to_eng_scalar`)."""
    if p.enum is not None and isinstance(value, str):
        try:
            return p.enum.values[value]
        except KeyError:
            raise ValueError(f"{p.name}: {value!r} is not one of {sorted(p.enum.values)}") from None
    if p.type == "bool":
        return int(bool(value))
    if p.calibration is not None and p.type != "time":
        return p.calibration.invert(float(value))
    return value


class ArgsCodec:
    """Application-data layout of one telecommand (after the function id, if any)."""

    __slots__ = ("args", "struct", "fid")

    def __init__(self, args: tuple[Argument, ...], function_id: int | None) -> None:
        self.args = args
        self.fid = function_id
        self.struct = struct.Struct(_fmt_of(args))

    @property
    def size(self) -> int:
        return self.struct.size + (2 if self.fid is not None else 0)

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Validate and pack; raises :class:`ArgumentError` naming the argument."""
        names = {a.name for a in self.args}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ArgumentError("UNKNOWN_ARGUMENT", f"unknown argument(s) {', '.join(unknown)}; "
                                f"expected {', '.join(a.name for a in self.args) or 'none'}")
        flat = []
        for a in self.args:
            if a.name in values:
                v = values[a.name]
            elif a.default is not None:
                v = a.default
            else:
                raise ArgumentError("MISSING_ARGUMENT", f"argument {a.name} is required")
            flat.extend(_arg_to_raw(a, v))
        body = self.struct.pack(*flat)
        if self.fid is not None:
            return struct.pack(">H", self.fid) + body
        return body

    def decode(self, app_data: bytes) -> dict[str, Any]:
        """Unpack and validate on board; raises :class:`ArgumentError` with a failure code name."""
        off = 2 if self.fid is not None else 0
        if len(app_data) != self.struct.size + off:
            raise ArgumentError("BAD_LENGTH", f"application data is {len(app_data)} octets, "
                                f"expected {self.struct.size + off}")
        flat = self.struct.unpack_from(app_data, off)
        out: dict[str, Any] = {}
        i = 0
        for a in self.args:
            if a.type == "time":
                raw: Any = flat[i] + flat[i + 1] / 65536.0
                i += 2
            else:
                raw = flat[i]
                i += 1
            check_arg(a, raw)
            out[a.name] = a.enum.labels[raw] if a.enum is not None else (bool(raw) if a.type == "bool" else raw)
        return out


def check_arg(a: Argument, raw: Any) -> None:
    """Range and enumeration check of a raw argument value; raises :class:`ArgumentError`.

    ``raw`` is the value as it travels (an f32 rounded to single precision, a
    time floored to a CUC tick), and ``min``/``max`` are quantized the same
    way, so the ground's check before sending and the unit's check on receipt
    always agree, even for a value typed exactly at a limit.
    """
    if a.type in ("f32", "f64") and not math.isfinite(raw):
        raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={raw} is not a finite number")
    if a.enum is not None:
        if raw not in a.enum.labels:
            raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={raw} is not a valid {a.enum.name} value")
        return
    if a.type == "bool" and raw not in (0, 1):
        raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={raw} is not a boolean")
    lo, hi = _wire_limit(a, a.min), _wire_limit(a, a.max)
    if (lo is not None and raw < lo) or (hi is not None and raw > hi):
        raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={raw} outside {a.min}..{a.max}")


def _wire_limit(a: Argument, limit: float | None) -> float | None:
    """A limit quantized like the argument's wire value (monotonic, so x <= max implies q(x) <= q(max))."""
    if limit is None:
        return None
    if a.type == "f32":
        return _f32_saturated(limit)
    if a.type == "time" and math.isfinite(limit * 65536.0):
        return math.floor(limit * 65536.0) / 65536.0
    return limit


def _arg_to_raw(a: Argument, v: Any) -> list:
    if a.enum is not None:
        if isinstance(v, str):
            if v not in a.enum.values:
                raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={v!r} is not one of "
                                    f"{', '.join(a.enum.values)}")
            return [a.enum.values[v]]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ArgumentError("BAD_TYPE", f"{a.name} takes one of {', '.join(a.enum.values)}")
        check_arg(a, v)
        return [v]
    if a.type == "bool":
        if isinstance(v, str):
            if v.lower() in ("1", "true", "yes", "on"):
                return [1]
            if v.lower() in ("0", "false", "no", "off"):
                return [0]
            raise ArgumentError("BAD_TYPE", f"{a.name} takes true or false, not {v!r}")
        if isinstance(v, int):  # bool is an int too
            if v not in (0, 1):
                raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={v} is not a boolean (0 or 1)")
            return [int(v)]
        raise ArgumentError("BAD_TYPE", f"{a.name} takes true or false, not {v!r}")
    if a.type == "time":
        t = _number(a, v, float)
        if not 0 <= t < 2**32:  # NaN fails too
            raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={t} outside the CUC range")
        ticks = int(t * 65536.0)
        check_arg(a, ticks / 65536.0)  # the value the unit will decode
        return [ticks >> 16, ticks & 0xFFFF]
    if a.type == "f64":
        x = _number(a, v, float)
        check_arg(a, x)
        return [x]
    if a.type == "f32":
        x = _number(a, v, float)
        try:
            x = _F32.unpack(_F32.pack(x))[0]  # the value the unit will decode (NaN, inf stay)
        except OverflowError:
            raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={x} does not fit f32") from None
        check_arg(a, x)
        return [x]
    iv = _number(a, v, int)
    lo, hi = INT_RANGES[a.type]
    if not lo <= iv <= hi:
        raise ArgumentError("ARG_OUT_OF_RANGE", f"{a.name}={iv} does not fit {a.type} ({lo}..{hi})")
    check_arg(a, iv)
    return [iv]


def _number(a: Argument, v: Any, kind: type) -> Any:
    if isinstance(v, bool):
        raise ArgumentError("BAD_TYPE", f"{a.name} takes a number, not {v!r}")
    if isinstance(v, str):
        try:
            v = int(v, 0) if kind is int else float(v)
        except ValueError:
            raise ArgumentError("BAD_TYPE", f"{a.name} takes {'an integer' if kind is int else 'a number'}, "
                                f"not {v!r}") from None
    if kind is int:
        if isinstance(v, float):
            if not v.is_integer():
                raise ArgumentError("BAD_TYPE", f"{a.name} takes an integer, not {v!r}")
            v = int(v)
        if not isinstance(v, int):
            raise ArgumentError("BAD_TYPE", f"{a.name} takes an integer, not {v!r}")
        return v
    if not isinstance(v, (int, float)):
        raise ArgumentError("BAD_TYPE", f"{a.name} takes a number, not {v!r}")
    return float(v)
