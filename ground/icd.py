"""Interface control documents generated from the mission dictionary: Markdown per unit, and JSON.

Pure: dictionary in, text or plain data out.  :func:`unit_icd` writes the
document a payload team needs for one unit: its link and framing, modes and
power (and what each mission phase allows), every command with its
arguments, byte offsets, ranges, enumerations and hazardous flag, every
telemetry packet with byte offsets, types, units, calibration and limits,
and its events.  Text taken from the dictionary is escaped, so a description
is always shown as text, never interpreted as Markdown or HTML.
"""

from __future__ import annotations

from typing import Any, Iterable

from fsw.dictionary import Argument, Command, Dictionary, Event, Parameter, System, TmPacket
from fsw.dictionary.model import SCALAR_TYPES
from fsw.protocol import TC_HEADER_LEN, TM_HEADER_LEN

__all__ = ["GENERATED_NOTE", "dictionary_to_data", "icd_files", "unit_icd"]

GENERATED_NOTE = ("Generated from the mission dictionary by `ground dictionary export --markdown`. "
                  "Do not edit by hand: change the dictionary YAML and regenerate.")
CRC_LEN = 2
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#~!{}"} | {"\n": " ", "\r": " "})
_ENUM_INLINE = 12


def md(text: Any) -> str:
    """Dictionary text as literal Markdown (table-safe: no pipes, no HTML, no line breaks)."""
    return str(text).translate(_MD_SPECIAL).replace("&", "&amp;")


def code(text: Any) -> str:
    """An identifier in a code span (backticks inside are not possible in our names, but are handled)."""
    s = str(text).replace("\n", " ")
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if float(v).is_integer() and abs(v) < 2**63:
        return str(int(v))
    return f"{v:g}"


def _type_text(typ: str, count: int = 1) -> str:
    size = SCALAR_TYPES[typ][1]
    base = {"time": "CUC 4+2 time", "bool": "bool (u8)"}.get(typ, typ)
    return f"{base}[{count}] ({size * count} octets)" if count > 1 else f"{base}"


def _enum_text(e: Any, d_enums_section: set[str]) -> str:
    if e is None:
        return ""
    items = sorted(e.values.items(), key=lambda kv: kv[1])
    if len(items) <= _ENUM_INLINE:
        return ", ".join(f"{code(k)}={v}" for k, v in items)
    d_enums_section.add(e.name)
    return f"{code(e.name)} (see Enumerations)"


def _calib_text(p: Parameter) -> str:
    c = p.calibration
    if c is None:
        return ""
    if c.poly:
        terms = []
        for i, k in enumerate(c.poly):
            if k == 0:
                continue
            terms.append(f"{k:g}" if i == 0 else f"{k:g}·raw" if i == 1 else f"{k:g}·raw^{i}")
        return "eng = " + (" + ".join(terms) if terms else "0")
    return "piecewise linear (raw→eng): " + ", ".join(f"{r:g}→{e:g}" for r, e in c.spline)


def _limits_text(p: Parameter) -> str:
    lim = p.limits
    if lim is None:
        return ""
    parts = []
    for kind, lo, hi in (("warn", lim.warn_low, lim.warn_high), ("alarm", lim.alarm_low, lim.alarm_high)):
        conds = []
        if lo is not None:
            conds.append(f"< {lo:g}")
        if hi is not None:
            conds.append(f"> {hi:g}")
        if conds:
            parts.append(f"{kind} {' or '.join(conds)}")
    return "; ".join(parts)


def _param_rows(params: Iterable[Parameter], offset: int, enums: set[str]) -> tuple[list[str], int]:
    rows = []
    for p in params:
        size = p.size
        desc = md(p.description)
        enum = _enum_text(p.enum, enums)
        rows.append(f"| {offset} | {size} | {code(p.name)} | {_type_text(p.type, p.count)} | {md(p.unit)} | "
                    f"{enum or _calib_text(p)} | {_limits_text(p)} | {desc} |")  # our own text: no markup in it
        offset += size
    return rows, offset


_PARAM_HEAD = ["| offset | octets | parameter | type | unit | enumeration / calibration | limits | description |",
               "|---:|---:|---|---|---|---|---|---|"]


def _arg_rows(args: Iterable[Argument], offset: int, enums: set[str]) -> tuple[list[str], int]:
    rows = []
    for a in args:
        size = a.size
        if a.enum is not None:
            rng = _enum_text(a.enum, enums)
        elif a.min is not None or a.max is not None:
            rng = f"{_num(a.min)} .. {_num(a.max)}"
        else:
            rng = "any " + a.type
        default = "" if a.default is None else md(a.default)
        rows.append(f"| {offset} | {size} | {code(a.name)} | {_type_text(a.type)} | {md(a.unit)} | {rng} | "
                    f"{default} | {md(a.description)} |")
        offset += size
    return rows, offset


def _command(c: Command, enums: set[str], heading: str = "###") -> list[str]:
    fid = f", function id {c.function_id}" if c.function_id is not None else ""
    out = [f"{heading} {code(c.name)}: TC[{c.service},{c.subservice}]{fid}", ""]
    if c.hazardous:
        out += ["**HAZARDOUS**: the ground asks for the unit name as confirmation, and the flight software "
                "applies the arm/fire rules of its phase.", ""]
    if c.description:
        out += [md(c.description), ""]
    facts = [f"completion timeout {c.timeout_s:g} s"]
    if c.modes:
        facts.append("allowed in modes " + ", ".join(code(m) for m in c.modes))
    offset = TC_HEADER_LEN
    rows: list[str] = []
    if c.function_id is not None:
        rows.append(f"| {offset} | 2 | function id | u16 |  | = {c.function_id} |  | selects the function |")
        offset += 2
    arg_rows, offset = _arg_rows(c.args, offset, enums)
    rows += arg_rows
    total = offset + CRC_LEN
    facts.append(f"packet length {total} octets (application data {offset - TC_HEADER_LEN})")
    out += ["- " + f for f in facts] + [""]
    if rows:
        out += ["| offset | octets | argument | type | unit | range / values | default | description |",
                "|---:|---:|---|---|---|---|---|---|"] + rows + [""]
    else:
        out += ["No arguments.", ""]
    return out


def _packet(p: TmPacket, enums: set[str], heading: str = "###") -> list[str]:
    sid = f", SID {p.sid}" if p.sid is not None else ""
    out = [f"{heading} {code(p.name)}: TM[{p.service},{p.subservice}]{sid}", ""]
    if p.description:
        out += [md(p.description), ""]
    offset = TM_HEADER_LEN
    rows: list[str] = []
    if p.sid is not None:
        rows.append(f"| {offset} | 2 | structure id | u16 |  | = {p.sid} |  | housekeeping structure id |")
        offset += 2
    prm_rows, offset = _param_rows(p.params, offset, enums)
    rows += prm_rows
    total = offset + CRC_LEN
    facts = [f"packet length {total} octets (source data {offset - TM_HEADER_LEN}), CRC at offset {offset}"]
    if p.period_s:
        facts.append(f"sent every {p.period_s:g} s (housekeeping period; the phase may stretch it)")
    facts.append(f"category {p.category}")
    out += ["- " + f for f in facts] + [""]
    out += (_PARAM_HEAD + rows + [""]) if rows else ["No parameters.", ""]
    return out


def _event(e: Event, enums: set[str]) -> list[str]:
    out = [f"### {code(e.name)}: event id {e.id}, {e.severity} (TM[5,{e.subservice}])", ""]
    if e.description:
        out += [md(e.description), ""]
    offset = TM_HEADER_LEN
    rows = [f"| {offset} | 2 | event id | u16 |  | = {e.id} |  |  |"]
    offset += 2
    arg_rows, offset = _param_rows(e.args, offset, enums)
    rows += arg_rows
    out += [f"- packet length {offset + CRC_LEN} octets", ""] + _PARAM_HEAD + rows + [""]
    return out


def unit_icd(d: Dictionary, unit: System | str) -> str:
    """The Markdown interface control document of one unit."""
    s = d.system(unit) if isinstance(unit, str) else unit
    enums: set[str] = set()
    std = set(d.standard_command_names)
    out: list[str] = [f"<!-- {GENERATED_NOTE} -->", f"# {md(s.name)} interface control document", "",
                      f"> {GENERATED_NOTE}", ""]
    if s.description:
        out += [md(s.description), ""]
    out += ["## Link", "",
            "| item | value |", "|---|---|",
            f"| mission | {md(d.mission)} |",
            f"| unit kind | {md(s.kind)} |",
            f"| APID | 0x{s.apid:03X} ({s.apid}) |",
            f"| serial port (flight software) | {code(s.port)} |",
            f"| line | {s.baud} baud, 8N1 |",
            "| framing | sync marker `1ACFFC1D` before each space packet; no other framing |",
            "| packets | CCSDS space packets with the PUS-C secondary header, ending in CRC-16/CCITT-FALSE |",
            f"| time | CUC 4+2 octets (coarse seconds, fine 2^-16 s) from {d.epoch.iso(0)} |",
            f"| boot time | {s.boot_time_s:g} s |",
            f"| housekeeping period | {s.hk_period_s:g} s |",
            f"| largest packet | {d.max_packet} octets |", "",
            f"Telecommands: primary header (6 octets) + PUS-C TC secondary header (5) + application data + CRC (2); "
            f"application data starts at offset {TC_HEADER_LEN}.  Telemetry: primary header (6) + PUS-C TM "
            f"secondary header (13, with the time) + source data + CRC (2); source data starts at offset "
            f"{TM_HEADER_LEN}.  All offsets below count octets from the first octet of the packet; all "
            "multi-octet fields are big-endian.", ""]
    # -- modes and power
    out += ["## Modes and power", ""]
    if s.modes:
        out += ["| mode | code | power on the switched 28 V line (W) |", "|---|---:|---:|"]
        for i, m in enumerate(s.modes):
            w = s.power_w.get(m)
            out.append(f"| {code(m)} | {i} | {'' if w is None else f'{w:g}'} |")
        out.append("")
        if d.phases:
            out += ["Modes allowed in each mission phase:", "",
                    "| phase | payload power | modes allowed | phase power allocation (W) |", "|---|---|---|---:|"]
            for ph in d.phases.values():
                allowed = ph.modes.get(s.name)
                modes = "any" if allowed is None else (", ".join(code(m) for m in allowed) or "none")
                out.append(f"| {code(ph.name)} | {'yes' if ph.payload_power else 'no'} | {modes} | "
                           f"{ph.power_w:g} |")
            out.append("")
    else:
        out += ["This unit declares no modes.", ""]
    # -- commands
    own = [c for c in s.commands if c.name not in std]
    out += ["## Commands", ""]
    if own:
        for c in own:
            out += _command(c, enums)
    else:
        out += ["This unit declares no commands of its own.", ""]
    stdc = [c for c in s.commands if c.name in std]
    if stdc:
        out += ["## Standard commands", "", "Every unit answers these, addressed to its own APID.", ""]
        for c in stdc:
            out += _command(c, enums)
    # -- telemetry
    out += ["## Telemetry", ""]
    if s.telemetry:
        for p in s.telemetry:
            out += _packet(p, enums)
    else:
        out += ["This unit declares no telemetry packets of its own.", ""]
    # -- events
    out += ["## Events", "", "Events are PUS-5 reports: the subtype gives the severity (1 INFO, 2 LOW, 3 MEDIUM, "
            "4 HIGH) and the first two octets of the source data the event id.", ""]
    if s.events:
        for e in s.events:
            out += _event(e, enums)
    else:
        out += ["This unit declares no events.", ""]
    # -- standard reports
    out += ["## Standard reports", "", "Reports every unit sends with its own APID:", "",
            "| report | TM | contents |", "|---|---|---|"]
    for p in d.standard_packets:
        fields = ", ".join(f"{code(prm.name)} ({prm.type})" for prm in p.params) or "none"
        out.append(f"| {code(p.name)} | [{p.service},{p.subservice}] | {fields} |")
    out.append("")
    # -- long enumerations
    all_enums = {**d.enums, **s.enums}
    if enums:
        out += ["## Enumerations", ""]
        for name in sorted(enums):
            e = all_enums.get(name)
            if e is None:
                continue
            out += [f"### {code(name)}", "", "| label | value |", "|---|---:|"]
            out += [f"| {code(k)} | {v} |" for k, v in sorted(e.values.items(), key=lambda kv: kv[1])] + [""]
    return "\n".join(out).rstrip() + "\n"


def icd_files(d: Dictionary) -> dict[str, str]:
    """File name -> Markdown: one document per unit and an index ``README.md``."""
    files = {f"{s.name}.md": unit_icd(d, s) for s in d.systems}
    index = [f"<!-- {GENERATED_NOTE} -->", f"# Interface control documents: {md(d.mission)}", "",
             f"> {GENERATED_NOTE}", "", "| unit | kind | APID | document |", "|---|---|---|---|"]
    for s in d.systems:
        index.append(f"| {code(s.name)} | {md(s.kind)} | 0x{s.apid:03X} | [{s.name}.md]({s.name}.md) |")
    files["README.md"] = "\n".join(index) + "\n"
    return files


# -- JSON ---------------------------------------------------------------------------------------------------

def _param_data(p: Parameter) -> dict:
    out: dict[str, Any] = {"name": p.name, "type": p.type}
    if p.count > 1:
        out["count"] = p.count
    for k in ("description", "unit"):
        if getattr(p, k):
            out[k] = getattr(p, k)
    if p.enum is not None:
        out["enum"] = p.enum.name
    if p.calibration is not None:
        out["calibration"] = ({"poly": list(p.calibration.poly)} if p.calibration.poly
                              else {"spline": [list(x) for x in p.calibration.spline]})
    if p.limits is not None:
        lim = p.limits
        out["limits"] = {"warn": [lim.warn_low, lim.warn_high], "alarm": [lim.alarm_low, lim.alarm_high]}
    return out


def _arg_data(a: Argument) -> dict:
    out: dict[str, Any] = {"name": a.name, "type": a.type}
    for k in ("description", "unit", "min", "max", "default"):
        v = getattr(a, k)
        if v not in (None, ""):
            out[k] = v
    if a.enum is not None:
        out["enum"] = a.enum.name
    return out


def dictionary_to_data(d: Dictionary) -> dict:
    """The whole dictionary as plain JSON-ready data (generated; the YAML stays the source)."""
    def enum_data(enums: Any) -> dict:
        return {name: dict(e.values) for name, e in enums.items()}

    systems = []
    for s in d.systems:
        systems.append({
            "name": s.name, "kind": s.kind, "apid": s.apid, "description": s.description, "port": s.port,
            "baud": s.baud, "modes": list(s.modes), "power_w": dict(s.power_w), "boot_time_s": s.boot_time_s,
            "hk_period_s": s.hk_period_s, "enums": enum_data(s.enums),
            "commands": [{"name": c.name, "service": c.service, "subservice": c.subservice,
                          "function_id": c.function_id, "hazardous": c.hazardous, "timeout_s": c.timeout_s,
                          "modes": list(c.modes), "description": c.description,
                          "args": [_arg_data(a) for a in c.args]} for c in s.commands],
            "telemetry": [{"name": p.name, "service": p.service, "subservice": p.subservice, "sid": p.sid,
                           "period_s": p.period_s, "category": p.category, "description": p.description,
                           "params": [_param_data(x) for x in p.params]} for p in s.telemetry],
            "events": [{"name": e.name, "id": e.id, "severity": e.severity, "description": e.description,
                        "args": [_param_data(x) for x in e.args]} for e in s.events],
        })
    return {
        "generated": GENERATED_NOTE,
        "mission": d.mission, "description": d.description, "epoch": d.epoch.iso(0), "max_packet": d.max_packet,
        "enums": enum_data(d.enums),
        "phases": {name: {"value": ph.value, "power_w": ph.power_w, "payload_power": ph.payload_power,
                          "heaters": ph.heaters, "hk_factor": ph.hk_factor, "hazardous": list(ph.hazardous),
                          "modes": {u: list(m) for u, m in ph.modes.items()}} for name, ph in d.phases.items()},
        "standard_commands": list(d.standard_command_names),
        "standard_telemetry": [{"name": p.name, "service": p.service, "subservice": p.subservice,
                                "description": p.description, "params": [_param_data(x) for x in p.params]}
                               for p in d.standard_packets],
        "systems": systems,
    }
