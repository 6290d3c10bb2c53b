"""XTCE 1.2 export of the mission dictionary: a pure generator, dictionary in, XML text out.

The document follows ``shared/reference/xtce-notes.md`` so that independent
XTCE readers (space-packet-parser in particular) decode our packets to the
same values as :class:`ground.decoding.PacketDecoder`:

* one root ``SpaceSystem`` holding everything (no child space systems);
* the root abstract container ``CCSDSPacket`` carries the CCSDS primary header
  and the PUS-C TM secondary header (CUC 4+2 time as an
  ``AbsoluteTimeParameterType`` scaled to seconds);
* concrete containers restrict on the packet type, the APID (in decimal), the
  service and subservice, and on the structure id or event id where the
  dictionary needs one; every field is listed in wire order (the layouts have
  no padding, so no spare fields are needed) and each leaf ends with the
  packet error control ``PKT_CRC``;
* integers are ``unsigned`` or ``twosComplement``, floats ``IEEE754``;
* calibrations become ``PolynomialCalibrator`` or first-order
  ``SplineCalibrator`` (extrapolating, like the dictionary's);
* enumerations list every raw value of their wire type: declared labels, and
  ``UNKNOWN(n)`` for the gaps (the very text our decoder gives), because an
  XTCE reader fails a whole packet on a value it cannot map;
* arrays are flattened to ``NAME_0 .. NAME_n``;
* limits become ``DefaultAlarm`` static ranges (warning and critical);
* telecommands are described in ``CommandMetaData`` (argument types with
  ranges and enumerations, the function id as a fixed value).

:func:`build_xtce` also returns the name mapping (dictionary parameter ->
XTCE parameter) and the notes on anything a reader loses.  Nothing here does
I/O; the CLI writes the text to a file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable

from fsw.dictionary import Command, Dictionary, Event, Parameter, TmPacket
from fsw.dictionary.model import INT_RANGES, frozen_map

__all__ = ["XTCE_NS", "XTCE_SCHEMA_URL", "XtceDocument", "build_xtce", "to_xtce"]

XTCE_NS = "http://www.omg.org/spec/XTCE/20180204"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XTCE_SCHEMA_URL = "https://www.omg.org/spec/XTCE/20180204/SpaceSystem.xsd"

ROOT_CONTAINER = "CCSDSPacket"
#: enumerations whose wire type has more raw values than this are not filled out value by value
MAX_ENUM_ENTRIES = 65536
#: one CUC fine tick in seconds, written exactly (2**-16)
_CUC_SCALE = "1.52587890625e-05"

#: CCSDS primary header and PUS-C TM secondary header, in wire order: (name, bits, description)
HEADER_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("VERSION", 3, "CCSDS packet version number (0)"),
    ("TYPE", 1, "packet type: 0 telemetry, 1 telecommand"),
    ("SEC_HDR_FLG", 1, "secondary header flag (1)"),
    ("PKT_APID", 11, "application process identifier"),
    ("SEQ_FLGS", 2, "sequence flags (3: unsegmented)"),
    ("SRC_SEQ_CTR", 14, "packet sequence count"),
    ("PKT_LEN", 16, "packet data length: octets in the packet data field minus 1"),
    ("PUS_VERSION", 4, "PUS version number (2: PUS-C)"),
    ("TIME_REF_STATUS", 4, "spacecraft time reference status"),
    ("SERVICE", 8, "PUS service type"),
    ("SUBSERVICE", 8, "PUS message subtype"),
    ("MSG_COUNTER", 16, "message type counter"),
    ("DEST_ID", 16, "destination id"),
)
TIME_FIELD = "PKT_TIME"
SID_FIELD = "PUS_SID"
CRC_FIELD = "PKT_CRC"
#: TC header fields (primary header and PUS-C TC secondary header) in wire order
TC_HEADER_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("TC_VERSION", 3, "CCSDS packet version number (0)"),
    ("TC_TYPE", 1, "packet type (1: telecommand)"),
    ("TC_SEC_HDR_FLG", 1, "secondary header flag (1)"),
    ("TC_APID", 11, "application process identifier"),
    ("TC_SEQ_FLGS", 2, "sequence flags (3: unsegmented)"),
    ("TC_SEQ_CTR", 14, "packet sequence count"),
    ("TC_PKT_LEN", 16, "packet data length: octets in the packet data field minus 1"),
    ("TC_PUS_VERSION", 4, "PUS version number (2: PUS-C)"),
    ("TC_ACK_FLAGS", 4, "acknowledgement flags: acceptance, start, progress, completion"),
    ("TC_SERVICE", 8, "PUS service type"),
    ("TC_SUBSERVICE", 8, "PUS message subtype"),
    ("TC_SOURCE_ID", 16, "source id"),
)
_RESERVED = {n for n, _, _ in HEADER_FIELDS} | {TIME_FIELD, SID_FIELD, CRC_FIELD}

_INT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "bool": 8}
_BAD_NAME = re.compile(r"[./:\[\] ]+")


def _q(tag: str) -> str:
    return f"{{{XTCE_NS}}}{tag}"


def _el(parent: ET.Element | None, tag: str, attrib: dict[str, Any] | None = None, text: str | None = None
        ) -> ET.Element:
    attrs = {k: _attr(v) for k, v in (attrib or {}).items() if v is not None}
    e = ET.Element(_q(tag), attrs) if parent is None else ET.SubElement(parent, _q(tag), attrs)
    if text is not None:
        e.text = text
    return e


def _attr(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    return str(v)


def _name(text: str) -> str:
    """An XTCE NameType: no spaces, dots, slashes, colons or brackets."""
    return _BAD_NAME.sub("_", text).strip("_") or "unnamed"


def _describe(e: ET.Element, text: str) -> None:
    if text:
        _el(e, "LongDescription", text=" ".join(text.split()))


@dataclass
class XtceDocument:
    """The generated document and what a reader needs to map it back to the dictionary."""

    xml: str
    #: (container name, dictionary parameter name) -> XTCE parameter names (arrays: one per element)
    param_names: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    #: dictionary packet name (or ``EVENT:<unit>:<event>``) -> XTCE container name of its leaf
    containers: dict[str, str] = field(default_factory=dict)
    #: what an XTCE reader loses, one sentence each
    notes: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, d: Dictionary, max_enum_entries: int) -> None:
        self.d = d
        self.max_enum_entries = max_enum_entries
        self.notes: list[str] = []
        self.param_names: dict[tuple[str, str], tuple[str, ...]] = {}
        self.containers: dict[str, str] = {}
        self.type_set: ET.Element
        self.param_set: ET.Element
        self.container_set: ET.Element
        self._types: dict[tuple, str] = {}        # type signature -> type name
        self._type_names: set[str] = set()
        self._params: dict[str, tuple] = {}        # XTCE parameter name -> signature
        self._container_names: set[str] = set()
        self._enum_notes: set[str] = set()

    # -- names --------------------------------------------------------------------------------------------------
    def _unique(self, base: str, taken: set[str]) -> str:
        name = _name(base)
        k = 2
        out = name
        while out in taken:
            out = f"{name}_{k}"
            k += 1
        taken.add(out)
        return out

    def container_name(self, base: str) -> str:
        return self._unique(base, self._container_names)

    # -- parameter types ------------------------------------------------------------------------------------------
    def _type_for(self, p: Parameter) -> str:
        """The name of the parameter type of one (scalar) element of ``p``, created on first use."""
        cal = p.calibration
        cal_sig = None if cal is None else (cal.poly, cal.spline)
        lim = p.limits
        lim_sig = None if lim is None else (lim.warn_low, lim.warn_high, lim.alarm_low, lim.alarm_high)
        if p.enum is not None:
            sig: tuple = ("enum", p.type, p.enum.name, tuple(sorted(p.enum.values.items())))
            base = f"{p.enum.name}_{p.type}_Type"
        else:
            sig = ("plain", p.name, p.type, p.unit, cal_sig, lim_sig)
            base = f"{p.name}_Type"
        name = self._types.get(sig)
        if name is not None:
            return name
        name = self._unique(base, self._type_names)
        self._types[sig] = name
        self._make_type(name, p)
        return name

    def _int_encoding(self, parent: ET.Element, typ: str) -> ET.Element:
        return _el(parent, "IntegerDataEncoding", {
            "sizeInBits": _INT_BITS[typ], "encoding": "twosComplement" if typ.startswith("i") else "unsigned"})

    def _make_type(self, name: str, p: Parameter) -> None:
        ts = self.type_set
        if p.type == "time":
            t = _el(ts, "AbsoluteTimeParameterType", {"name": name})
            enc = _el(t, "Encoding", {"units": "seconds", "scale": _CUC_SCALE})
            _el(enc, "IntegerDataEncoding", {"sizeInBits": 48, "encoding": "unsigned"})
            ref = _el(t, "ReferenceTime")
            _el(ref, "Epoch", text=self.d.epoch.epoch.strftime("%Y-%m-%dT%H:%M:%SZ"))
            return
        if p.enum is not None:
            t = _el(ts, "EnumeratedParameterType", {"name": name})
            self._unit(t, p)
            self._int_encoding(t, p.type)
            self._enum_list(t, p)
            return
        if p.type == "bool":
            t = _el(ts, "BooleanParameterType", {"name": name, "zeroStringValue": "False", "oneStringValue": "True"})
            self._unit(t, p)
            self._int_encoding(t, p.type)
            return
        if p.type in ("f32", "f64") or p.calibration is not None:
            bits = 64 if p.type in ("f64", "i64", "u64", "u32", "i32") else 32
            if p.calibration is not None:
                bits = 64  # engineering values are Python floats (double) in our decoder too
            t = _el(ts, "FloatParameterType", {"name": name, "sizeInBits": bits})
            self._unit(t, p)
            if p.type in ("f32", "f64"):
                enc = _el(t, "FloatDataEncoding", {"sizeInBits": 32 if p.type == "f32" else 64,
                                                   "encoding": "IEEE754"})
            else:
                enc = self._int_encoding(t, p.type)
            if p.calibration is not None:
                self._calibrator(enc, p)
            self._alarm(t, p)
            return
        lo, _hi = INT_RANGES[p.type]
        t = _el(ts, "IntegerParameterType", {"name": name, "sizeInBits": _INT_BITS[p.type], "signed": lo < 0})
        self._unit(t, p)
        self._int_encoding(t, p.type)
        self._alarm(t, p)

    @staticmethod
    def _unit(t: ET.Element, p: Parameter) -> None:
        if p.unit:
            us = _el(t, "UnitSet")
            _el(us, "Unit", text=p.unit)

    def _enum_list(self, t: ET.Element, p: Parameter) -> None:
        assert p.enum is not None
        lo, hi = INT_RANGES[p.type]
        labels = dict(p.enum.labels)
        el = _el(t, "EnumerationList")
        if hi - lo + 1 <= self.max_enum_entries:
            for v in range(lo, hi + 1):
                _el(el, "Enumeration", {"value": v, "label": labels.get(v, f"UNKNOWN({v})")})
            return
        # too wide to spell out: declared labels, and each gap as one range (XTCE maxValue)
        prev = lo
        for v in sorted(labels):
            if v > prev:
                _el(el, "Enumeration", {"value": prev, "maxValue": v - 1, "label": f"UNKNOWN({prev}..{v - 1})"})
            _el(el, "Enumeration", {"value": v, "label": labels[v]})
            prev = v + 1
        if prev <= hi:
            _el(el, "Enumeration", {"value": prev, "maxValue": hi, "label": f"UNKNOWN({prev}..{hi})"})
        key = f"{p.enum.name}/{p.type}"
        if key not in self._enum_notes:
            self._enum_notes.add(key)
            self.notes.append(f"enumeration {p.enum.name} on {p.type} has more than {self.max_enum_entries} raw "
                              "values: gaps are declared as ranges (maxValue); a reader that ignores maxValue "
                              "fails packets carrying an undeclared value")

    @staticmethod
    def _calibrator(enc: ET.Element, p: Parameter) -> None:
        cal = p.calibration
        assert cal is not None
        dc = _el(enc, "DefaultCalibrator")
        if cal.poly:
            pc = _el(dc, "PolynomialCalibrator")
            for exp, c in enumerate(cal.poly):
                _el(pc, "Term", {"coefficient": float(c), "exponent": exp})
        else:
            sc = _el(dc, "SplineCalibrator", {"order": 1, "extrapolate": True})
            for raw, eng in cal.spline:
                _el(sc, "SplinePoint", {"raw": float(raw), "calibrated": float(eng)})

    @staticmethod
    def _alarm(t: ET.Element, p: Parameter) -> None:
        lim = p.limits
        if lim is None:
            return
        ranges = []
        if lim.warn_low is not None or lim.warn_high is not None:
            ranges.append(("WarningRange", lim.warn_low, lim.warn_high))
        if lim.alarm_low is not None or lim.alarm_high is not None:
            ranges.append(("CriticalRange", lim.alarm_low, lim.alarm_high))
        if not ranges:
            return
        da = _el(t, "DefaultAlarm")
        sar = _el(da, "StaticAlarmRanges")  # rangeForm "outside" (the default): outside [min, max] alarms
        for tag, lo, hi in ranges:
            _el(sar, tag, {"minInclusive": None if lo is None else float(lo),
                           "maxInclusive": None if hi is None else float(hi)})

    # -- parameters -----------------------------------------------------------------------------------------------
    def _param_sig(self, p: Parameter) -> tuple:
        return (self._type_for(p), p.count)

    def params_of(self, container: str, params: Iterable[Parameter]) -> list[str]:
        """XTCE parameter names of ``params`` (created on first use), arrays flattened, in wire order."""
        out: list[str] = []
        for p in params:
            tname = self._type_for(p)
            base = p.name
            sig = (tname, p.count, p.description)
            existing = self._params.get(base)
            reserved = base in _RESERVED and container != ROOT_CONTAINER
            if reserved or (existing is not None and existing != sig):
                base = f"{container}_{p.name}"
                k = 2
                while base in _RESERVED or (base in self._params and self._params[base] != sig):
                    base = f"{container}_{p.name}_{k}"
                    k += 1
            names: tuple[str, ...]
            if p.count > 1:
                names = tuple(f"{base}_{i}" for i in range(p.count))
            else:
                names = (base,)
            if base not in self._params:
                self._params[base] = sig
                for i, n in enumerate(names):
                    pe = _el(self.param_set, "Parameter", {"name": n, "parameterTypeRef": tname})
                    desc = p.description
                    if p.count > 1:
                        desc = f"{desc} (element {i} of {p.count} of {p.name})".strip()
                    _describe(pe, desc)
            self.param_names[(container, p.name)] = names
            out.extend(names)
        return out

    def header_param(self, name: str, bits: int, desc: str) -> None:
        tname = self._unique(f"{name}_Type", self._type_names)
        t = _el(self.type_set, "IntegerParameterType", {"name": tname, "sizeInBits": max(8, bits), "signed": False})
        _el(t, "IntegerDataEncoding", {"sizeInBits": bits, "encoding": "unsigned"})
        pe = _el(self.param_set, "Parameter", {"name": name, "parameterTypeRef": tname})
        _describe(pe, desc)
        self._params[name] = ("header",)

    # -- containers -----------------------------------------------------------------------------------------------
    def container(self, name: str, entries: list[str], base: str | None, restrictions: list[tuple[str, str, int]],
                  abstract: bool = False, description: str = "") -> ET.Element:
        c = _el(self.container_set, "SequenceContainer", {"name": name, "abstract": True if abstract else None})
        _describe(c, description)
        el = _el(c, "EntryList")
        for e in entries:
            _el(el, "ParameterRefEntry", {"parameterRef": e})
        if base is not None:
            bc = _el(c, "BaseContainer", {"containerRef": base})
            if restrictions:
                rc = _el(bc, "RestrictionCriteria")
                parent = rc if len(restrictions) == 1 else _el(rc, "ComparisonList")
                for pname, op, value in restrictions:
                    _el(parent, "Comparison", {"parameterRef": pname, "value": int(value),
                                               "comparisonOperator": op if op != "==" else None})
        return c


def _signature_conflicts(d: Dictionary) -> dict[tuple[int, int], set[int]]:
    """(service, subservice) -> APIDs that have a unit-specific packet with that service and subservice."""
    out: dict[tuple[int, int], set[int]] = {}
    for s in d.systems:
        for p in s.telemetry:
            out.setdefault((p.service, p.subservice), set()).add(s.apid)
    return out


def build_xtce(dictionary: Dictionary, max_enum_entries: int = MAX_ENUM_ENTRIES) -> XtceDocument:
    """The XTCE 1.2 document of ``dictionary``, with its name mapping and notes."""
    d = dictionary
    b = _Builder(d, max_enum_entries)
    root_name = _name(d.mission)
    ET.register_namespace("xtce", XTCE_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = _el(None, "SpaceSystem", {"name": root_name})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{XTCE_NS} {XTCE_SCHEMA_URL}")
    _describe(root, f"{d.mission}. {d.description} Generated from the mission dictionary by "
                    "`ground dictionary export --xtce`; do not edit by hand.")
    _el(root, "Header", {"validationStatus": "Working", "classification": "NotClassified"})
    tm = _el(root, "TelemetryMetaData")
    b.type_set = _el(tm, "ParameterTypeSet")
    b.param_set = _el(tm, "ParameterSet")
    b.container_set = _el(tm, "ContainerSet")
    b._container_names.add(ROOT_CONTAINER)

    # root container: primary header + PUS-C TM secondary header
    for name, bits, desc in HEADER_FIELDS:
        b.header_param(name, bits, desc)
    time_param = Parameter(TIME_FIELD, "time", "packet time: CUC 4+2 octets, seconds since the mission epoch", "s",
                           sim=frozen_map({}))
    root_entries = [n for n, _, _ in HEADER_FIELDS] + [b.params_of(ROOT_CONTAINER, [time_param])[0]]
    b._params[TIME_FIELD] = ("header",)
    b.container(ROOT_CONTAINER, root_entries, None, [], abstract=True,
                description="CCSDS space packet with the PUS-C telemetry secondary header")
    b.header_param(SID_FIELD, 16, "housekeeping structure id")
    b.header_param(CRC_FIELD, 16, "packet error control (CRC-16/CCITT-FALSE); not checked by most XTCE readers")

    tm_type = ("TYPE", "==", 0)
    # -- unit packets, grouped by (apid, service, subservice) ---------------------------------------------------
    for s in d.systems:
        groups: dict[tuple[int, int], list[TmPacket]] = {}
        for p in s.telemetry:
            groups.setdefault((p.service, p.subservice), []).append(p)
        for (svc, sub), pkts in groups.items():
            head = [tm_type, ("PKT_APID", "==", s.apid), ("SERVICE", "==", svc), ("SUBSERVICE", "==", sub)]
            with_sid = [p for p in pkts if p.sid is not None]
            without = [p for p in pkts if p.sid is None]
            if with_sid:
                gname = b.container_name(f"{s.name}_TM_{svc}_{sub}")
                b.container(gname, [SID_FIELD], ROOT_CONTAINER, head, abstract=True,
                            description=f"{s.name} TM[{svc},{sub}] with a structure id")
                for p in with_sid:
                    cname = b.container_name(p.name)
                    b.containers[p.name] = cname
                    entries = b.params_of(cname, p.params) + [CRC_FIELD]
                    b.container(cname, entries, gname, [(SID_FIELD, "==", int(p.sid or 0))],
                                description=p.description)
                for p in without:
                    b.notes.append(f"{s.name} packet {p.name} shares TM[{svc},{sub}] with structure-id packets "
                                   "and has none itself: XTCE cannot tell it apart, so it is left out")
            else:
                for p in without[:1]:
                    cname = b.container_name(p.name)
                    b.containers[p.name] = cname
                    entries = b.params_of(cname, p.params) + [CRC_FIELD]
                    b.container(cname, entries, ROOT_CONTAINER, head, description=p.description)

    # -- standard reports (any APID) and events -----------------------------------------------------------------
    conflicts = _signature_conflicts(d)
    events_by_sub: dict[int, list[Event]] = {}
    for s in d.systems:
        for e in s.events:
            events_by_sub.setdefault(e.subservice, []).append(e)
    for p in d.standard_packets:
        restr = [tm_type, ("SERVICE", "==", p.service), ("SUBSERVICE", "==", p.subservice)]
        restr += [("PKT_APID", "!=", a) for a in sorted(conflicts.get((p.service, p.subservice), ()))]
        cname = b.container_name(p.name)
        b.containers[p.name] = cname
        is_event = p.service == 5 and bool(p.params)
        if not is_event:
            entries = b.params_of(cname, p.params) + [CRC_FIELD]
            b.container(cname, entries, ROOT_CONTAINER, restr, description=p.description)
            continue
        header = b.params_of(cname, p.params)
        b.container(cname, header, ROOT_CONTAINER, restr, abstract=True, description=p.description)
        id_param = header[0]
        for e in events_by_sub.get(p.subservice, []):
            ename = b.container_name(f"EVT_{e.system}_{e.name}")
            b.containers[f"EVENT:{e.system}:{e.name}"] = ename
            entries = b.params_of(ename, e.args) + [CRC_FIELD]
            b.container(ename, entries, cname, [("PKT_APID", "==", e.apid), (id_param, "==", e.id)],
                        description=f"{e.system} event {e.name} ({e.severity}). {e.description}".strip())
    b.notes.append("packets of an APID, service or event id the dictionary does not declare cannot be "
                   "decoded by an XTCE reader (the abstract containers have no matching inheritor)")
    b.notes.append("the packet error control PKT_CRC is declared as a field; XTCE readers do not check it")

    _command_metadata(root, d, b)
    ET.indent(root, space="  ")
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    notes_xml = "".join(f"\n  - {n.replace('--', '- -')}" for n in b.notes)
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<!-- XTCE 1.2 export of the mission dictionary ({d.mission.replace('--', '- -')}); generated, "
           f"do not edit.\nWhat an XTCE reader loses:{notes_xml}\n-->\n{text}\n")
    return XtceDocument(xml, b.param_names, b.containers, b.notes)


def to_xtce(dictionary: Dictionary) -> str:
    """The XTCE 1.2 document of ``dictionary`` as text."""
    return build_xtce(dictionary).xml


# -- telecommands ---------------------------------------------------------------------------------------------

def _command_metadata(root: ET.Element, d: Dictionary, b: _Builder) -> None:
    cm = _el(root, "CommandMetaData")
    ats = _el(cm, "ArgumentTypeSet")
    mcs = _el(cm, "MetaCommandSet")
    made: dict[tuple, str] = {}
    type_names: set[str] = set()

    def arg_type(name: str, bits: int, signed: bool, lo: float | None = None, hi: float | None = None,
                 unit: str = "", enum: Any = None, kind: str = "int") -> str:
        sig = (bits, signed, lo, hi, unit, None if enum is None else tuple(sorted(enum.values.items())), kind)
        if sig in made:
            return made[sig]
        tname = b._unique(f"{name}_ArgType", type_names)
        made[sig] = tname
        if enum is not None:
            t = _el(ats, "EnumeratedArgumentType", {"name": tname})
            _el(t, "IntegerDataEncoding", {"sizeInBits": bits, "encoding": "twosComplement" if signed else "unsigned"})
            el = _el(t, "EnumerationList")
            for label, v in sorted(enum.values.items(), key=lambda kv: kv[1]):
                _el(el, "Enumeration", {"value": v, "label": label})
            return tname
        if kind == "bool":
            t = _el(ats, "BooleanArgumentType", {"name": tname})
            _el(t, "IntegerDataEncoding", {"sizeInBits": bits, "encoding": "unsigned"})
            return tname
        if kind == "float":
            t = _el(ats, "FloatArgumentType", {"name": tname, "sizeInBits": 64})
            if unit:
                _el(_el(t, "UnitSet"), "Unit", text=unit)
            _el(t, "FloatDataEncoding", {"sizeInBits": bits, "encoding": "IEEE754"})
            if lo is not None or hi is not None:
                vr = _el(t, "ValidRangeSet")
                _el(vr, "ValidRange", {"minInclusive": lo, "maxInclusive": hi})
            return tname
        if kind == "time":
            t = _el(ats, "AbsoluteTimeArgumentType", {"name": tname})
            enc = _el(t, "Encoding", {"units": "seconds", "scale": _CUC_SCALE})
            _el(enc, "IntegerDataEncoding", {"sizeInBits": 48, "encoding": "unsigned"})
            _el(_el(t, "ReferenceTime"), "Epoch", text=d.epoch.epoch.strftime("%Y-%m-%dT%H:%M:%SZ"))
            return tname
        t = _el(ats, "IntegerArgumentType", {"name": tname, "sizeInBits": bits, "signed": signed})
        if unit:
            _el(_el(t, "UnitSet"), "Unit", text=unit)
        _el(t, "IntegerDataEncoding", {"sizeInBits": bits, "encoding": "twosComplement" if signed else "unsigned"})
        if lo is not None or hi is not None:
            vr = _el(t, "ValidRangeSet")
            _el(vr, "ValidRange", {"minInclusive": None if lo is None else int(lo),
                                   "maxInclusive": None if hi is None else int(hi)})
        return tname

    # the abstract PUS-C telecommand: primary header + TC secondary header as arguments
    base = _el(mcs, "MetaCommand", {"name": "PUS_TC", "abstract": True})
    _describe(base, "CCSDS space packet with the PUS-C telecommand secondary header; the packet error control "
                    "(CRC-16/CCITT-FALSE over the whole packet) follows the application data.")
    al = _el(base, "ArgumentList")
    for name, bits, desc in TC_HEADER_FIELDS:
        a = _el(al, "Argument", {"name": name, "argumentTypeRef": arg_type(name, bits, False)})
        _describe(a, desc)
    ce = _el(_el(base, "CommandContainer", {"name": "PUS_TC_Container"}), "EntryList")
    for name, _, _ in TC_HEADER_FIELDS:
        _el(ce, "ArgumentRefEntry", {"argumentRef": name})
    cmd_names: set[str] = {"PUS_TC"}
    crc_type = arg_type("TC_CRC", 16, False)
    for s in d.systems:
        for c in s.commands:
            _meta_command(mcs, c, s.name, s.apid, b, arg_type, cmd_names, crc_type)


def _meta_command(mcs: ET.Element, c: Command, system: str, apid: int, b: _Builder, arg_type: Any,
                  cmd_names: set[str], crc_type: str) -> None:
    name = b._unique(f"{system}_{c.name}", cmd_names)
    mc = _el(mcs, "MetaCommand", {"name": name})
    desc = c.description
    if c.hazardous:
        desc = f"HAZARDOUS. {desc}".strip()
    if c.modes:
        desc = f"{desc} Allowed in modes: {', '.join(c.modes)}.".strip()
    _describe(mc, desc)
    bm = _el(mc, "BaseMetaCommand", {"metaCommandRef": "PUS_TC"})
    aal = _el(bm, "ArgumentAssignmentList")
    for arg, value in (("TC_APID", apid), ("TC_SERVICE", c.service), ("TC_SUBSERVICE", c.subservice)):
        _el(aal, "ArgumentAssignment", {"argumentName": arg, "argumentValue": value})
    al = _el(mc, "ArgumentList")
    arg_names: list[tuple[str, str]] = []
    for a in c.args:
        kind = ("float" if a.type in ("f32", "f64") else "bool" if a.type == "bool"
                else "time" if a.type == "time" else "int")
        bits = 48 if a.type == "time" else _INT_BITS.get(a.type, 32 if a.type == "f32" else 64)
        tname = arg_type(f"{c.name}_{a.name}", bits, a.type.startswith("i"), a.min, a.max, a.unit, a.enum, kind)
        attrs = {"name": a.name, "argumentTypeRef": tname}
        if a.default is not None:
            attrs["initialValue"] = a.default
        ae = _el(al, "Argument", attrs)
        _describe(ae, a.description)
        arg_names.append((a.name, tname))
    _el(al, "Argument", {"name": "TC_CRC", "argumentTypeRef": crc_type})
    cc = _el(mc, "CommandContainer", {"name": f"{name}_Container"})
    el = _el(cc, "EntryList")
    for hname, _, _ in TC_HEADER_FIELDS:  # inherited from PUS_TC; listed so the container reads in wire order
        _el(el, "ArgumentRefEntry", {"argumentRef": hname})
    if c.function_id is not None:
        _el(el, "FixedValueEntry", {"name": "FUNCTION_ID", "binaryValue": f"{c.function_id:04X}",
                                    "sizeInBits": 16})
    for an, _ in arg_names:
        _el(el, "ArgumentRefEntry", {"argumentRef": an})
    _el(el, "ArgumentRefEntry", {"argumentRef": "TC_CRC"})
    if c.hazardous:
        _el(mc, "DefaultSignificance", {"consequenceLevel": "critical",
                                        "reasonForWarning": "hazardous: arm/fire sequence, confirm the unit"})
