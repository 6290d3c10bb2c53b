"""Load the mission dictionary from its YAML data files into validated, frozen objects.

A mission directory holds ``mission.yaml`` (mission settings, failure codes,
the standard PUS commands and reports every unit speaks, and the list of
unit files) and one YAML file per unit.  Any problem raises
:class:`DictionaryError` naming the file, the entry and what is wrong.

The loader is pure: it is handed file *contents* by :func:`load_dictionary`'s
reader callback, which defaults to reading the package's own files.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import PurePosixPath
from typing import Any, Callable, Mapping

import yaml

from .codec import ArgumentError, _arg_to_raw
from .model import (
    INT_RANGES, SCALAR_TYPES, SEVERITIES, SYSTEM_KINDS, Argument, Calibration, Command, Enumeration, Event,
    Limits, Parameter, Phase, System, TmPacket, frozen_map,
)

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


#: libyaml's parser when PyYAML was built with it (8x faster); resolving and constructing stay in Python
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """YAML 1.2 booleans: only true/false.  (YAML 1.1 reads mode names ON, OFF, YES, NO as booleans.)

    A key written twice in one mapping is an error (PyYAML silently keeps the
    last one); keys that override a ``<<`` merge are not duplicates.
    """

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # runs on every mapping before its merges are expanded (merge sources too), once per node
        if not getattr(node, "_keys_checked", False):
            node._keys_checked = True  # type: ignore[attr-defined]
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                k = (key_node.tag, key_node.value)
                if k in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add(k)
        super().flatten_mapping(node)


_YamlLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML with the dictionary's rules (safe, YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass


class DictionaryError(ValueError):
    """A dictionary file is malformed.  The message reads ``file: entry: problem``."""

    def __init__(self, file: str, entry: str, problem: str) -> None:
        super().__init__(f"{file}: {entry}: {problem}")
        self.file = file
        self.entry = entry
        self.problem = problem


class _Ctx:
    """Where we are, for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, entry: str, problem: str) -> DictionaryError:
        return DictionaryError(self.file, entry, problem)


def _expect(ctx: _Ctx, entry: str, obj: Any, kind: type | tuple, what: str) -> Any:
    if not isinstance(obj, kind) or isinstance(obj, bool) and kind in (int, float, (int, float)):
        raise ctx.fail(entry, f"{what} must be {getattr(kind, '__name__', 'a number')}, got {obj!r}")
    return obj


def _keys(ctx: _Ctx, entry: str, d: Any, required: set[str], optional: set[str]) -> dict:
    if not isinstance(d, dict):
        raise ctx.fail(entry, f"expected a mapping, got {type(d).__name__}")
    missing = required - set(d)
    if missing:
        raise ctx.fail(entry, f"missing key(s): {', '.join(sorted(missing))}")
    unknown = set(d) - required - optional
    if unknown:
        raise ctx.fail(entry, f"unknown key(s): {', '.join(sorted(map(str, unknown)))}; "
                       f"allowed: {', '.join(sorted(required | optional))}")
    return d


def _label(entry: str, d: Any) -> str:
    """``commands[3]`` -> ``commands[3] (LMS_DEPLOY)`` when the entry has a usable name."""
    if isinstance(d, dict) and isinstance(d.get("name"), str):
        return f"{entry} ({d['name']})"
    return entry


def _name(ctx: _Ctx, entry: str, v: Any) -> str:
    if not isinstance(v, str) or not NAME_RE.match(v):
        raise ctx.fail(entry, f"name {v!r} must be an identifier (letters, digits, underscores)")
    return v


def _int(ctx: _Ctx, entry: str, v: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ctx.fail(entry, f"{what} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise ctx.fail(entry, f"{what} {v} outside {lo}..{hi}")
    return v


def _num(ctx: _Ctx, entry: str, v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ctx.fail(entry, f"{what} must be a number, got {v!r}")
    return float(v)


def _enum(ctx: _Ctx, entry: str, name: str, d: Any) -> Enumeration:
    if not isinstance(d, dict) or not d:
        raise ctx.fail(entry, f"enumeration {name} must be a non-empty mapping LABEL: value")
    seen: dict[int, str] = {}
    for label, value in d.items():
        _name(ctx, f"{entry}.{label}", label)
        _int(ctx, f"{entry}.{label}", value, 0, 0xFFFF_FFFF, "enumeration value")
        if value in seen:
            raise ctx.fail(entry, f"labels {seen[value]} and {label} share value {value}")
        seen[value] = label
    return Enumeration(name, frozen_map(d))


def _list(ctx: _Ctx, entry: str, v: Any) -> list:
    """An optional list (absent or empty in YAML: ``[]``)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise ctx.fail(entry, f"expected a list, got {type(v).__name__}")
    return v


def _mapping(ctx: _Ctx, entry: str, v: Any) -> dict:
    """An optional mapping (absent or empty in YAML: ``{}``)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ctx.fail(entry, f"expected a mapping, got {type(v).__name__}")
    return v


def _type(ctx: _Ctx, entry: str, t: Any) -> str:
    if t not in SCALAR_TYPES:
        raise ctx.fail(entry, f"type {t!r} unknown; use one of {', '.join(SCALAR_TYPES)}")
    return t


def _enum_ref(ctx: _Ctx, entry: str, v: Any, enums: Mapping[str, Enumeration], typ: str) -> Enumeration | None:
    if v is None:
        return None
    if isinstance(v, str):
        if v not in enums:
            raise ctx.fail(entry, f"enumeration {v!r} is not declared (known: {', '.join(sorted(enums)) or 'none'})")
        e = enums[v]
    else:
        e = _enum(ctx, entry, f"{entry}.enum", v)
    if typ not in INT_RANGES:
        raise ctx.fail(entry, f"an enumeration needs an integer type, not {typ}")
    lo, hi = INT_RANGES[typ]
    for label, value in e.values.items():
        if not lo <= value <= hi:
            raise ctx.fail(entry, f"enumeration value {label}={value} does not fit {typ}")
    return e


def _param(ctx: _Ctx, entry: str, d: Any, enums: Mapping[str, Enumeration]) -> Parameter:
    entry = _label(entry, d)  # name the entry in every message, even about its own keys
    _keys(ctx, entry, d, {"name", "type"}, {"description", "unit", "count", "enum", "calib", "limits", "sim"})
    name = _name(ctx, entry, d["name"])
    typ = _type(ctx, entry, d["type"])
    count = _int(ctx, entry, d.get("count", 1), 1, 4096, "count")
    enum = _enum_ref(ctx, entry, d.get("enum"), enums, typ)
    calib = None
    if "calib" in d:
        c = _keys(ctx, f"{entry}.calib", d["calib"], set(), {"poly", "spline"})
        if ("poly" in c) == ("spline" in c):
            raise ctx.fail(f"{entry}.calib", "give exactly one of poly or spline")
        if enum is not None:
            raise ctx.fail(entry, "a parameter cannot be both enumerated and calibrated")
        if typ in ("bool", "time"):
            raise ctx.fail(f"{entry}.calib", f"a {typ} parameter cannot be calibrated")
        if "poly" in c:
            coeffs = c["poly"]
            if not isinstance(coeffs, list) or not coeffs:
                raise ctx.fail(f"{entry}.calib.poly", "expected a list of coefficients c0, c1, ...")
            calib = Calibration(poly=tuple(_num(ctx, f"{entry}.calib.poly", x, "coefficient") for x in coeffs))
        else:
            pts = c["spline"]
            if not isinstance(pts, list) or len(pts) < 2:
                raise ctx.fail(f"{entry}.calib.spline", "expected at least two [raw, eng] points")
            pairs = []
            for p in pts:
                if not isinstance(p, list) or len(p) != 2:
                    raise ctx.fail(f"{entry}.calib.spline", f"point {p!r} is not [raw, eng]")
                pairs.append((_num(ctx, entry, p[0], "raw"), _num(ctx, entry, p[1], "eng")))
            if any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:])):
                raise ctx.fail(f"{entry}.calib.spline", "raw values must increase")
            calib = Calibration(spline=tuple(pairs))
    limits = None
    if "limits" in d:
        lim = _keys(ctx, f"{entry}.limits", d["limits"], set(), {"warn", "alarm"})
        vals: dict[str, float | None] = {}
        for kind in ("warn", "alarm"):
            if kind in lim:
                pair = lim[kind]
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ctx.fail(f"{entry}.limits.{kind}", "expected [low, high] (null for none)")
                lo = None if pair[0] is None else _num(ctx, entry, pair[0], "limit")
                hi = None if pair[1] is None else _num(ctx, entry, pair[1], "limit")
                if lo is not None and hi is not None and lo > hi:
                    raise ctx.fail(f"{entry}.limits.{kind}", f"low {lo} above high {hi}")
                vals[f"{kind}_low"], vals[f"{kind}_high"] = lo, hi
        wl, al = vals.get("warn_low"), vals.get("alarm_low")
        wh, ah = vals.get("warn_high"), vals.get("alarm_high")
        if (wl is not None and al is not None and al > wl) or (wh is not None and ah is not None and ah < wh):
            raise ctx.fail(f"{entry}.limits", "alarm limits must lie outside the warning limits")
        limits = Limits(**vals)
    sim = d.get("sim", {})
    if not isinstance(sim, dict):
        raise ctx.fail(f"{entry}.sim", "expected a mapping of simulator hints")
    desc = d.get("description", "")
    unit = d.get("unit", "")
    if not isinstance(desc, str) or not isinstance(unit, str):
        raise ctx.fail(entry, "description and unit must be text")
    return Parameter(name, typ, desc, unit, count, enum, calib, limits, frozen_map(sim))


def _argument(ctx: _Ctx, entry: str, d: Any, enums: Mapping[str, Enumeration]) -> Argument:
    entry = _label(entry, d)  # name the entry in every message, even about its own keys
    _keys(ctx, entry, d, {"name", "type"}, {"description", "unit", "min", "max", "enum", "default"})
    name = _name(ctx, entry, d["name"])
    typ = _type(ctx, entry, d["type"])
    enum = _enum_ref(ctx, entry, d.get("enum"), enums, typ)
    lo = None if d.get("min") is None else _num(ctx, entry, d["min"], "min")
    hi = None if d.get("max") is None else _num(ctx, entry, d["max"], "max")
    if lo is not None and hi is not None and lo > hi:
        raise ctx.fail(entry, f"min {lo} above max {hi}")
    if typ in INT_RANGES:
        tlo, thi = INT_RANGES[typ]
        if (lo is not None and lo < tlo) or (hi is not None and hi > thi):
            raise ctx.fail(entry, f"range {lo}..{hi} does not fit {typ}")
    default = d.get("default")
    if default is not None and enum is not None and default not in enum.values:
        raise ctx.fail(entry, f"default {default!r} is not one of {', '.join(enum.values)}")
    arg = Argument(name, typ, d.get("description", ""), d.get("unit", ""), lo, hi, enum, default)
    if default is not None:
        try:  # the default must pass the very checks a value typed by an operator passes
            _arg_to_raw(arg, default)
        except ArgumentError as exc:
            raise ctx.fail(entry, f"default {default!r} is invalid: {exc}") from None
    return arg


_CMD_KEYS = {"description", "function_id", "args", "hazardous", "timeout_s", "modes", "effects", "raw"}


def _command(ctx: _Ctx, entry: str, d: Any, system: str, apid: int, enums: Mapping[str, Enumeration],
             modes: tuple[str, ...]) -> Command:
    entry = _label(entry, d)  # name the entry in every message, even about its own keys
    _keys(ctx, entry, d, {"name", "service", "subservice"}, _CMD_KEYS)
    name = _name(ctx, entry, d["name"])
    svc = _int(ctx, entry, d["service"], 1, 255, "service")
    sub = _int(ctx, entry, d["subservice"], 1, 255, "subservice")
    fid = d.get("function_id")
    if fid is not None:
        fid = _int(ctx, entry, fid, 0, 0xFFFF, "function_id")
    args_d = d.get("args", [])
    if not isinstance(args_d, list):
        raise ctx.fail(entry, "args must be a list")
    args = tuple(_argument(ctx, f"{entry}.args[{i}]", a, enums) for i, a in enumerate(args_d))
    if len({a.name for a in args}) != len(args):
        raise ctx.fail(entry, "argument names repeat")
    cmd_modes = d.get("modes", [])
    if not isinstance(cmd_modes, list) or any(m not in modes for m in cmd_modes):
        raise ctx.fail(entry, f"modes must be a list drawn from {', '.join(modes) or '(no modes declared)'}")
    eff = d.get("effects", {})
    if not isinstance(eff, dict):
        raise ctx.fail(entry, "effects must be a mapping PARAMETER: argument-or-value")
    hz = d.get("hazardous", False)
    if not isinstance(hz, bool):
        raise ctx.fail(entry, "hazardous must be true or false")
    timeout = _num(ctx, entry, d.get("timeout_s", 5.0), "timeout_s")
    if timeout <= 0:
        raise ctx.fail(entry, "timeout_s must be positive")
    raw = d.get("raw", False)
    if not isinstance(raw, bool) or (raw and args):
        raise ctx.fail(entry, "raw must be true or false, and a raw command declares no args")
    return Command(name, system, apid, svc, sub, fid, args, d.get("description", ""), hz, timeout,
                   tuple(cmd_modes), frozen_map(eff), raw)


def _packet(ctx: _Ctx, entry: str, d: Any, system: str, apid: int | None,
            enums: Mapping[str, Enumeration], default_period: float | None) -> TmPacket:
    entry = _label(entry, d)  # name the entry in every message, even about its own keys
    _keys(ctx, entry, d, {"name", "service", "subservice"},
          {"sid", "params", "description", "period_s", "category"})
    name = _name(ctx, entry, d["name"])
    svc = _int(ctx, entry, d["service"], 1, 255, "service")
    sub = _int(ctx, entry, d["subservice"], 1, 255, "subservice")
    sid = d.get("sid")
    if sid is not None:
        sid = _int(ctx, entry, sid, 0, 0xFFFF, "sid")
    params_d = d.get("params", [])
    if not isinstance(params_d, list):
        raise ctx.fail(entry, "params must be a list")
    params = tuple(_param(ctx, f"{entry}.params[{i}]", p, enums) for i, p in enumerate(params_d))
    if len({p.name for p in params}) != len(params):
        raise ctx.fail(entry, "parameter names repeat")
    cat = d.get("category", "hk" if svc == 3 else "science" if svc >= 128 else "report")
    if cat not in ("hk", "science", "report"):
        raise ctx.fail(entry, f"category {cat!r} must be hk, science or report")
    period = d.get("period_s", default_period if cat == "hk" else None)
    if period is not None:
        period = _num(ctx, entry, period, "period_s")
        if period <= 0:
            raise ctx.fail(entry, "period_s must be positive")
    return TmPacket(name, system, apid, svc, sub, sid, params, d.get("description", ""), period, cat)


def _event(ctx: _Ctx, entry: str, d: Any, system: str, apid: int, enums: Mapping[str, Enumeration]) -> Event:
    entry = _label(entry, d)  # name the entry in every message, even about its own keys
    _keys(ctx, entry, d, {"name", "id", "severity"}, {"args", "description"})
    name = _name(ctx, entry, d["name"])
    eid = _int(ctx, entry, d["id"], 0, 0xFFFF, "id")
    sev = d["severity"]
    if sev not in SEVERITIES:
        raise ctx.fail(entry, f"severity {sev!r} must be one of {', '.join(SEVERITIES)}")
    args_d = d.get("args", [])
    if not isinstance(args_d, list):
        raise ctx.fail(entry, "args must be a list")
    args = tuple(_param(ctx, f"{entry}.args[{i}]", a, enums) for i, a in enumerate(args_d))
    if len({a.name for a in args}) != len(args):
        raise ctx.fail(entry, "argument names repeat")
    return Event(name, system, apid, eid, sev, args, d.get("description", ""))


_SYS_KEYS = {"description", "port", "baud", "modes", "power_w", "boot_time_s", "hk_period_s", "config",
             "commands", "telemetry", "events", "enums"}


def parse_system(text: str | dict, file: str, shared_enums: Mapping[str, Enumeration],
                 standard: Mapping[str, Any]) -> System:
    """Parse one unit file (its text, or its already-loaded and merged YAML mapping)."""
    ctx = _Ctx(file)
    if isinstance(text, dict):
        d = text
    else:
        try:
            d = load_yaml(text)
        except yaml.YAMLError as exc:
            raise ctx.fail("(file)", f"not valid YAML: {exc}".replace("\n", " ")) from None
    _keys(ctx, "(top level)", d, {"system", "kind", "apid"}, _SYS_KEYS)
    name = _name(ctx, "system", d["system"])
    kind = d["kind"]
    if kind not in SYSTEM_KINDS:
        raise ctx.fail("kind", f"{kind!r} must be one of {', '.join(SYSTEM_KINDS)}")
    apid = _int(ctx, "apid", d["apid"], 0, 0x7FE, "APID (2047 is the idle APID)")
    modes_d = d.get("modes", [])
    if not isinstance(modes_d, list) or any(not isinstance(m, str) or not NAME_RE.match(m) for m in modes_d):
        raise ctx.fail("modes", "expected a list of mode names")
    modes = tuple(modes_d)
    if len(set(modes)) != len(modes):
        raise ctx.fail("modes", "mode names repeat")
    enums: dict[str, Enumeration] = dict(shared_enums)
    if modes:
        enums[f"{name}_MODE"] = Enumeration(f"{name}_MODE", frozen_map({m: i for i, m in enumerate(modes)}))
    for ename, ed in _mapping(ctx, "enums", d.get("enums")).items():
        _name(ctx, f"enums.{ename}", ename)
        if ename in enums:
            raise ctx.fail(f"enums.{ename}", "declared twice (modes make <SYSTEM>_MODE themselves)")
        enums[ename] = _enum(ctx, f"enums.{ename}", ename, ed)
    power = d.get("power_w", {})
    if not isinstance(power, dict):
        raise ctx.fail("power_w", "expected a mapping MODE: watts")
    for m, w in power.items():
        if m not in modes:
            raise ctx.fail(f"power_w.{m}", f"{m} is not a declared mode")
        if _num(ctx, f"power_w.{m}", w, "power") < 0:
            raise ctx.fail(f"power_w.{m}", "power cannot be negative")
    hk_period = _num(ctx, "hk_period_s", d.get("hk_period_s", 1.0), "hk_period_s")
    if hk_period <= 0:
        raise ctx.fail("hk_period_s", "must be positive")
    boot = _num(ctx, "boot_time_s", d.get("boot_time_s", 0.0), "boot_time_s")
    baud = _int(ctx, "baud", d.get("baud", 115200), 300, 16_000_000, "baud")
    config = d.get("config", {})
    if not isinstance(config, dict):
        raise ctx.fail("config", "expected a mapping")
    def origin(entry: Any) -> tuple[_Ctx, Any]:
        """Entries merged from an extension file report errors against that file."""
        if isinstance(entry, dict) and "_from" in entry:
            entry = dict(entry)
            return _Ctx(entry.pop("_from")), entry
        return ctx, entry

    commands = []
    for i, c in enumerate(list(standard.get("commands") or ()) + _list(ctx, "commands", d.get("commands"))):
        cctx, c = origin(c)
        commands.append(_command(cctx, f"commands[{i}]", c, name, apid, enums, modes))
    telemetry = []
    for i, p in enumerate(_list(ctx, "telemetry", d.get("telemetry"))):
        pctx, p = origin(p)
        telemetry.append(_packet(pctx, f"telemetry[{i}]", p, name, apid, enums, hk_period))
    events = []
    for i, e in enumerate(_list(ctx, "events", d.get("events"))):
        ectx, e = origin(e)
        events.append(_event(ectx, f"events[{i}]", e, name, apid, enums))
    for what, items in (("command", commands), ("packet", telemetry), ("event", events)):
        seen: set[str] = set()
        for it in items:
            if it.name in seen:
                raise ctx.fail(f"{what} {it.name}", "name declared twice")
            seen.add(it.name)
    keys: dict = {}
    for c in commands:
        if c.key in keys:
            raise ctx.fail(f"command {c.name}", f"same service/subservice/function id as {keys[c.key]}")
        keys[c.key] = c.name
    keys = {}
    for p in telemetry:
        if p.key in keys:
            raise ctx.fail(f"packet {p.name}", f"same service/subservice/sid as {keys[p.key]}")
        keys[p.key] = p.name
    ids: dict[int, str] = {}
    for e in events:
        if e.id in ids:
            raise ctx.fail(f"event {e.name}", f"id {e.id} already used by {ids[e.id]}")
        ids[e.id] = e.name
    port = d.get("port", name.lower())
    if not isinstance(port, str) or not NAME_RE.match(port):
        raise ctx.fail("port", f"{port!r} must be an identifier")
    own_enums = {k: v for k, v in enums.items() if k not in shared_enums}
    return System(name, kind, apid, d.get("description", ""), port, baud, modes, frozen_map(power), boot,
                  hk_period, frozen_map(config), tuple(commands), tuple(telemetry), tuple(events),
                  frozen_map(own_enums), file)


Reader = Callable[[str], str]

_EXT_KEYS = {"extends", "description", "commands", "telemetry", "events", "enums"}


def text_of(y: Any) -> str:
    """A non-mapping YAML document, handed back to parse_system so that it reports the problem."""
    return yaml.safe_dump(y)


def _merge_extension(ctx: _Ctx, y: dict, by_name: dict[str, tuple[str, dict]]) -> None:
    """Append an extension file's entries to the unit it ``extends`` (declared in an earlier file).

    Extensions let one unit's declarations live in several files, e.g. the lander's payload-manager
    and deploy-manager commands, without declaring anything twice.
    """
    _keys(ctx, "(top level)", y, {"extends"}, _EXT_KEYS - {"extends"})
    base = y["extends"]
    if base not in by_name:
        raise ctx.fail("extends", f"{base!r} is not a unit declared in an earlier file")
    base_file, d = by_name[base]
    for key in ("commands", "telemetry", "events"):
        extra = y.get(key) or []
        if not isinstance(extra, list):
            raise ctx.fail(key, "expected a list")
        current = d.get(key) or []
        if not isinstance(current, list):
            raise DictionaryError(base_file, key, "expected a list")
        d[key] = list(current) + [{**e, "_from": ctx.file} if isinstance(e, dict) else e for e in extra]
    enums = y.get("enums") or {}
    if not isinstance(enums, dict):
        raise ctx.fail("enums", "expected a mapping")
    merged = dict(d.get("enums") or {})
    for k, v in enums.items():
        if k in merged:
            raise ctx.fail(f"enums.{k}", f"already declared for {base} in {base_file}")
        merged[k] = v
    d["enums"] = merged


def package_reader(mission: str = "reference") -> Reader:
    root = resources.files("fsw.missions") / mission

    def read(name: str) -> str:
        return (root / name).read_text(encoding="utf-8")
    return read


def directory_reader(path: str) -> Reader:
    """Read a mission from a directory on disk (an adapter: the only file access)."""
    from pathlib import Path

    base = Path(path)

    def read(name: str) -> str:
        return (base / name).read_text(encoding="utf-8")
    return read


def _phases(ctx: _Ctx, d: Any, shared: Mapping[str, Enumeration], systems: list[System]) -> dict[str, Phase]:
    if not isinstance(d, dict):
        raise ctx.fail("phases", "expected a mapping PHASE: settings")
    if not d:
        return {}
    if "PHASE" not in shared:
        raise ctx.fail("phases", "declare the PHASE enumeration under enums")
    values = shared["PHASE"].values
    missing = set(values) - set(d)
    if missing:
        raise ctx.fail("phases", f"no settings for phase(s) {', '.join(sorted(missing))}")
    units = {s.name: s for s in systems}
    lander_cmds = {c.name for s in systems if s.kind == "lander" for c in s.commands}
    out = {}
    for name, ph in d.items():
        entry = f"phases.{name}"
        if name not in values:
            raise ctx.fail(entry, f"{name} is not a PHASE value ({', '.join(values)})")
        _keys(ctx, entry, ph, {"power_w"}, {"payload_power", "heaters", "hk_factor", "hazardous", "modes",
                                            "unit_hk"})
        unit_hk = ph.get("unit_hk", {})
        if not isinstance(unit_hk, dict):
            raise ctx.fail(entry, "unit_hk must be a mapping KIND: factor")
        for kind, f in unit_hk.items():
            if kind not in SYSTEM_KINDS or kind == "lander":
                raise ctx.fail(f"{entry}.unit_hk", f"{kind!r} is not a unit kind ({', '.join(SYSTEM_KINDS[1:])})")
            if _num(ctx, f"{entry}.unit_hk.{kind}", f, "factor") < 0:
                raise ctx.fail(f"{entry}.unit_hk.{kind}", "factor cannot be negative (0 disables the reports)")
        power = _num(ctx, entry, ph["power_w"], "power_w")
        if power < 0:
            raise ctx.fail(entry, "power_w cannot be negative")
        hk = _num(ctx, entry, ph.get("hk_factor", 1), "hk_factor")
        if hk <= 0:
            raise ctx.fail(entry, "hk_factor must be positive")
        for flag in ("payload_power", "heaters"):
            if not isinstance(ph.get(flag, True), bool):
                raise ctx.fail(entry, f"{flag} must be true or false")
        hz = ph.get("hazardous", [])
        if not isinstance(hz, list):
            raise ctx.fail(entry, "hazardous must be a list of command names")
        modes = ph.get("modes", {})
        if not isinstance(modes, dict):
            raise ctx.fail(entry, "modes must be a mapping UNIT: [modes]")
        for unit, ms in modes.items():
            if unit not in units:
                raise ctx.fail(f"{entry}.modes", f"{unit} is not a declared unit")
            if not isinstance(ms, list) or any(m not in units[unit].modes for m in ms):
                raise ctx.fail(f"{entry}.modes.{unit}", f"modes must be drawn from {', '.join(units[unit].modes)}")
        out[name] = Phase(name, values[name], power, ph.get("payload_power", True), ph.get("heaters", True), hk,
                          tuple(hz), frozen_map({u: tuple(m) for u, m in modes.items()}),
                          frozen_map({k: float(v) for k, v in unit_hk.items()}))
    # hazardous names are checked once every unit (and every extension) is known
    for ph in out.values():
        for c in ph.hazardous:
            if c not in lander_cmds:
                raise ctx.fail(f"phases.{ph.name}.hazardous", f"{c} is not a lander command")
    return out


def parse_mission(read: Reader, file: str = "mission.yaml"):
    """Parse ``mission.yaml`` and every unit file it lists into a :class:`~fsw.dictionary.Dictionary`."""
    from . import Dictionary
    from ..protocol.timecode import MissionEpoch

    ctx = _Ctx(file)
    try:
        text = read(file)
    except (OSError, FileNotFoundError) as exc:
        raise ctx.fail("(file)", f"cannot read: {exc}") from None
    try:
        d = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ctx.fail("(file)", f"not valid YAML: {exc}".replace("\n", " ")) from None
    _keys(ctx, "(top level)", d, {"mission", "systems", "failure_codes"},
          {"standard", "enums", "phases"})
    m = _keys(ctx, "mission", d["mission"], {"name", "epoch"}, {"max_packet", "description", "launch"})
    try:
        epoch = MissionEpoch.parse(str(m["epoch"]))
    except ValueError as exc:
        raise ctx.fail("mission.epoch", f"not an ISO-8601 time: {exc}") from None
    launch = 0.0
    if "launch" in m:
        try:
            launch = epoch.from_datetime(MissionEpoch.parse(str(m["launch"])).epoch)
        except ValueError as exc:
            raise ctx.fail("mission.launch", f"not an ISO-8601 time: {exc}") from None
        if launch < 0:
            raise ctx.fail("mission.launch", "launch lies before the epoch")
    max_packet = _int(ctx, "mission.max_packet", m.get("max_packet", 4096), 64, 65542, "max_packet")
    shared: dict[str, Enumeration] = {"FAILURE_CODE": _enum(ctx, "failure_codes", "FAILURE_CODE",
                                                             d["failure_codes"])}
    for ename, ed in _mapping(ctx, "enums", d.get("enums")).items():
        _name(ctx, f"enums.{ename}", ename)
        if ename in shared:
            raise ctx.fail(f"enums.{ename}", "name reserved (FAILURE_CODE and PORT are built in)")
        shared[ename] = _enum(ctx, f"enums.{ename}", ename, ed)
    std = dict(_keys(ctx, "standard", d.get("standard") or {}, set(), {"commands", "telemetry"}))
    std["commands"] = _list(ctx, "standard.commands", std.get("commands"))
    std["telemetry"] = _list(ctx, "standard.telemetry", std.get("telemetry"))
    std_packets = tuple(_packet(ctx, f"standard.telemetry[{i}]", p, "STANDARD", None, shared, None)
                        for i, p in enumerate(std["telemetry"]))
    files = d["systems"]
    if not isinstance(files, list) or not files:
        raise ctx.fail("systems", "expected a list of unit files")
    # the PORT enumeration is derived from the unit files: ground is 0, units follow in order
    systems = []
    for f in files:
        if not isinstance(f, str) or PurePosixPath(f).is_absolute() or ".." in PurePosixPath(f).parts:
            raise ctx.fail("systems", f"{f!r} must be a relative file name inside the mission")
        try:
            text = read(f)
        except (OSError, FileNotFoundError) as exc:
            raise DictionaryError(f, "(file)", f"cannot read: {exc}") from None
        systems.append((f, text))
    # first pass: YAML, extension files merged into their unit, and the PORT enumeration
    # (ground = 0, then the units' ports in file order) so that any unit can use it
    port_names = ["ground"]
    units: list[tuple[str, dict]] = []
    by_name: dict[str, tuple[str, dict]] = {}
    for f, text in systems:
        try:
            y = load_yaml(text)
        except yaml.YAMLError as exc:
            raise DictionaryError(f, "(file)", f"not valid YAML: {exc}".replace("\n", " ")) from None
        if isinstance(y, dict) and "extends" in y:
            _merge_extension(_Ctx(f), y, by_name)
            continue
        if isinstance(y, dict) and isinstance(y.get("system"), str):
            if y["system"] in by_name:
                raise DictionaryError(f, "system", f"{y['system']} is already declared in {by_name[y['system']][0]}")
            if y.get("kind") != "lander":
                port_names.append(str(y.get("port", y["system"].lower())))
            entry = (f, dict(y))
            by_name[y["system"]] = entry
            units.append(entry)
        else:
            units.append((f, y))
    shared["PORT"] = Enumeration("PORT", frozen_map({p.upper(): i for i, p in enumerate(port_names)}))
    parsed = [parse_system(y if isinstance(y, dict) else text_of(y), f, shared, std) for f, y in units]
    phases = _phases(ctx, d.get("phases") or {}, shared, parsed)
    return Dictionary(
        mission=str(m["name"]), description=str(m.get("description", "")), epoch=epoch, launch_time=launch,
        max_packet=max_packet, systems=tuple(parsed), standard_packets=std_packets,
        enums=frozen_map(shared), phases=frozen_map(phases),
        standard_command_names=tuple(str(c.get("name")) for c in std["commands"] if isinstance(c, dict)),
    )
