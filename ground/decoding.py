"""Decode space packets into JSON-ready records of engineering values, driven by the mission dictionary.

Pure code: bytes in, plain ``dict`` records out.  No I/O, no clock, no printing.

Every record has the same base keys, so a consumer can rely on them:

``apid``, ``seq_count``, ``packet_type`` ("TM"/"TC"), ``service``, ``subservice``,
``time`` (TM: mission seconds) and ``utc`` (ISO-8601), ``name`` (dictionary
packet or command name, ``None`` if unknown), ``system`` (owning unit),
``params`` (engineering values) and ``limits`` ({param: "warn"|"alarm"}).

Events (service 5) add ``event``, ``event_id`` and ``severity``; ``params``
holds the event arguments.  Verification reports (service 1) add ``request``
({"apid", "seq_count"} of the telecommand), ``stage``, ``success`` and
``failure`` (failure code name, or ``None``).  Telecommands add ``source_id``
and ``ack_flags``; their ``params`` are the decoded command arguments.

Bytes that cannot be decoded never raise: the record carries ``error`` (a
short reason code), ``detail`` (one readable sentence) and ``hex``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

from fsw.dictionary import ArgumentError, Dictionary, Parameter, TmPacket
from fsw.dictionary.model import SEVERITY_SUBTYPE
from fsw.protocol import (
    ASM, IDLE_APID, MAX_APID, MAX_SEQ_COUNT, PRIMARY_HEADER_LEN, Deframer, Dropped, PusTc, PusTm, DecodeError,
    parse_packet,
)
from fsw.protocol.crc import check_crc

__all__ = [
    "PacketDecoder", "decode_dropped", "detect_format", "iter_file_records", "iter_framed_records",
    "iter_raw_records", "STAGE_OF_SUBSERVICE",
]

#: PUS-1 subservice -> (stage name, success)
STAGE_OF_SUBSERVICE: dict[int, tuple[str, bool]] = {
    1: ("acceptance", True), 2: ("acceptance", False),
    3: ("start", True), 4: ("start", False),
    5: ("progress", True), 6: ("progress", False),
    7: ("completion", True), 8: ("completion", False),
}
_SEVERITY_OF_SUBTYPE = {v: k for k, v in SEVERITY_SUBTYPE.items()}

#: an unknown sid/event id must not grow the plan caches without bound
_CACHE_LIMIT = 4096
#: longest hex dump put in one error record of a capture file (octets)
_HEX_LIMIT = 512

_MISSING = object()


def decode_dropped(dropped: Dropped) -> dict:
    """The record of bytes a deframer discarded."""
    return {"dropped": dropped.reason, "bytes": dropped.nbytes}


# -- per-parameter conversion plans -------------------------------------------------------------------------

_INF = float("inf")


def _limit_state(lim: tuple[float, float, float, float], value: Any) -> str | None:
    """``"alarm"``, ``"warn"`` or ``None``; lists are judged by their worst element, labels never."""
    if isinstance(value, list):
        worst = None
        for v in value:
            s = _limit_state(lim, v)
            if s == "alarm":
                return s
            worst = worst or s
        return worst
    if type(value) is not float and type(value) is not int:  # bool, enum label, None: no limits
        return None
    alo, ahi, wlo, whi = lim
    if value < alo or value > ahi:  # NaN compares False: never flagged
        return "alarm"
    if value < wlo or value > whi:
        return "warn"
    return None


def _limit_bounds(p: Parameter) -> tuple[float, float, float, float]:
    lim = p.limits
    assert lim is not None

    def bound(v: float | None, default: float) -> float:
        return default if v is None else float(v)
    return (bound(lim.alarm_low, -_INF), bound(lim.alarm_high, _INF),
            bound(lim.warn_low, -_INF), bound(lim.warn_high, _INF))


class _ParamPlan:
    """How to turn a codec's raw values into engineering values and limit flags."""

    __slots__ = ("codec", "names", "convs", "limits", "size", "json_safe", "skip", "_fast")

    def __init__(self, codec: Any, params: tuple[Parameter, ...]) -> None:
        self.codec = codec
        self.names = tuple(p.name for p in params)
        self.convs = codec.convs   # the dictionary codec's conversion plan (fsw.dictionary.codec.converter)
        self.limits = tuple((i, p.name, _limit_bounds(p)) for i, p in enumerate(params) if p.limits is not None)
        self.size = codec.size
        self.skip = 2 if codec.has_sid else 0
        # floats can be NaN/inf on the wire (strict JSON has no such numbers): only float types need a look
        self.json_safe = not any(p.type in ("f32", "f64") for p in params)
        self._fast: Callable[[bytes, int], tuple[dict, dict]] | None = None

    def decode(self, data: bytes, offset: int = 0) -> tuple[dict, dict]:
        """(engineering values, limit flags); the caller has checked that ``size`` octets are there."""
        fast = self._fast
        if fast is None:
            fast = self._fast = _compile_decoder(self)
        params, flags = fast(data, offset + self.skip)
        if not self.json_safe:
            for k, v in params.items():
                if isinstance(v, float) and not math.isfinite(v):
                    params[k] = str(v)
                elif isinstance(v, list):
                    params[k] = [str(x) if isinstance(x, float) and not math.isfinite(x) else x for x in v]
        return params, flags


def _compile_decoder(plan: _ParamPlan) -> Callable[[bytes, int], tuple[dict, dict]]:
    """Straight-line ``(data, offset) -> (params, flags)`` for one layout: one ``unpack_from``, each value
    folded (times, arrays) and converted (labels, calibrations) in place, limits compared inline."""
    codec = plan.codec
    ns: dict[str, Any] = {"S": codec.struct, "_limit_state": _limit_state}
    conv = dict(plan.convs)
    lims = {i: (name, lim) for i, name, lim in plan.limits}
    lines = ["def fast(data, off):", "    v = S.unpack_from(data, off)"]
    items = []
    i = 0
    for k, p in enumerate(codec.params):
        is_time = p.type == "time"
        n = p.count * (2 if is_time else 1)
        if is_time and p.count == 1:
            expr = f"v[{i}] + v[{i + 1}] / 65536.0"
        elif is_time:
            expr = f"tuple(v[{i} + 2 * j] + v[{i} + 2 * j + 1] / 65536.0 for j in range({p.count}))"
        elif p.count > 1:
            expr = f"v[{i}:{i + n}]"
        else:
            expr = f"v[{i}]"
        if k in conv:
            ns[f"C{k}"] = conv[k]
            expr = f"C{k}({expr})"
        lines.append(f"    x{k} = {expr}")
        items.append(f"{plan.names[k]!r}: x{k}")
        i += n
    lines.append("    f = {}")
    for k, (name, lim) in lims.items():
        ns[f"L{k}"] = lim
        ns[f"AL{k}"], ns[f"AH{k}"], ns[f"WL{k}"], ns[f"WH{k}"] = lim
        lines += [
            f"    if x{k}.__class__ is float or x{k}.__class__ is int:",
            f"        if x{k} < AL{k} or x{k} > AH{k}: f[{name!r}] = 'alarm'",
            f"        elif x{k} < WL{k} or x{k} > WH{k}: f[{name!r}] = 'warn'",
            "    else:",
            f"        s = _limit_state(L{k}, x{k})",
            f"        if s is not None: f[{name!r}] = s",
        ]
    lines.append("    return {" + ", ".join(items) + "}, f")
    exec("\n".join(lines), ns)  # noqa: S102 - generated from the dictionary's own layout, no outside text
    return ns["fast"]


class _TmPlan:
    __slots__ = ("pkt", "name", "kind", "params", "event_offset")

    def __init__(self, pkt: TmPacket, params: _ParamPlan) -> None:
        self.pkt = pkt
        self.name = pkt.name
        self.params = params
        if pkt.service == 5 and pkt.apid is None:
            self.kind = "event"
        elif pkt.service == 1 and pkt.subservice in STAGE_OF_SUBSERVICE:
            self.kind = "verification"
        else:
            self.kind = "tm"
        self.event_offset = params.size


# -- the decoder ---------------------------------------------------------------------------------------------

class PacketDecoder:
    """Decode single packets against one mission dictionary.

    Per-packet layouts are compiled on first sight and cached, so the hot
    path is one header parse with CRC check, one dictionary lookup in a
    plain dict and one ``struct.unpack_from``.
    """

    def __init__(self, dictionary: Dictionary) -> None:
        self.dictionary = dictionary
        self._systems = {s.apid: s.name for s in dictionary.systems}
        self._epoch = dictionary.epoch
        # (apid, service, subservice) triples whose packets carry a structure id
        sid_keys = {(p.apid, p.service, p.subservice) for p in dictionary.standard_packets if p.sid is not None}
        for s in dictionary.systems:
            sid_keys.update((p.apid, p.service, p.subservice) for p in s.telemetry if p.sid is not None)
        self._sid_keys = frozenset(sid_keys)
        # "YYYY-MM-DDTHH:MM" of the UTC minutes of recent mission times, by the mission second that starts the
        # minute (exact only for an epoch on a whole second: then every whole mission second is a whole UTC one)
        self._utc_base: dict[int, str] = {}
        self._utc_fast = dictionary.epoch.epoch.microsecond == 0
        self._epoch_second = dictionary.epoch.epoch.second
        self._tm_plans: dict[tuple, _TmPlan | None] = {}
        self._evt_plans: dict[tuple[int, int], tuple | None] = {}
        self._param_plans: dict[int, _ParamPlan] = {}

    def utc(self, coarse: int, fine: int) -> str:
        """ISO-8601 UTC of a CUC time, exactly as ``dictionary.epoch.iso()`` writes it, but cached per minute
        (UTC as Python's datetime counts it, without leap seconds: every minute has 60 seconds)."""
        if not self._utc_fast:
            return self._epoch.iso(coarse + fine / 65536.0)
        second = (coarse + self._epoch_second) % 60
        minute = coarse - second
        base = self._utc_base.get(minute)
        if base is None:
            if len(self._utc_base) >= _CACHE_LIMIT:
                self._utc_base.clear()
            base = self._utc_base[minute] = self._epoch.iso(float(minute))[:-8]  # drop ":00.000Z"
        # timedelta rounds to the microsecond (half to even), isoformat then truncates to milliseconds
        return f"{base}:{second:02d}.{round(fine * 1_000_000 / 65536) // 1000:03d}Z"

    # -- plans ----------------------------------------------------------------------------------------------
    def _param_plan(self, codec: Any, params: tuple[Parameter, ...]) -> _ParamPlan:
        plan = self._param_plans.get(id(codec))
        if plan is None:
            plan = self._param_plans[id(codec)] = _ParamPlan(codec, params)
        return plan

    def _tm_plan(self, apid: int, service: int, subservice: int, data: bytes) -> _TmPlan | None:
        if ((apid, service, subservice) in self._sid_keys or (None, service, subservice) in self._sid_keys) \
                and len(data) >= 2:
            key: tuple = (apid, service, subservice, (data[0] << 8) | data[1])
        else:
            key = (apid, service, subservice, None)
        plan = self._tm_plans.get(key, _MISSING)
        if plan is _MISSING:
            pkt = self.dictionary.packet_by_key(apid, service, subservice, data)
            plan = None if pkt is None else _TmPlan(pkt, self._param_plan(self.dictionary.codec(pkt), pkt.params))
            if len(self._tm_plans) < _CACHE_LIMIT:
                self._tm_plans[key] = plan
        return plan  # type: ignore[return-value]

    def _event_plan(self, apid: int, event_id: int) -> tuple | None:
        key = (apid, event_id)
        plan = self._evt_plans.get(key, _MISSING)
        if plan is _MISSING:
            evt = self.dictionary.event_by_id(apid, event_id)
            plan = None if evt is None else (evt, self._param_plan(self.dictionary.event_codec(evt), evt.args))
            if len(self._evt_plans) < _CACHE_LIMIT:
                self._evt_plans[key] = plan
        return plan  # type: ignore[return-value]

    # -- public API -----------------------------------------------------------------------------------------
    def decode(self, packet_bytes: bytes | bytearray | memoryview, link: str | None = None,
               rx_time: float | None = None) -> dict:
        """One complete packet -> record.  Never raises for any content of ``packet_bytes``."""
        return self.decode_packet(packet_bytes, link, rx_time)[0]

    def decode_packet(self, packet_bytes: bytes | bytearray | memoryview, link: str | None = None,
                      rx_time: float | None = None) -> tuple[dict, PusTc | PusTm | None]:
        """Like :meth:`decode`, also returning the parsed packet (``None`` if it did not parse)."""
        try:
            pkt = parse_packet(packet_bytes)
        except DecodeError as exc:
            return self._error(packet_bytes, exc.reason, exc.message, link, rx_time), None
        except Exception as exc:  # noqa: BLE001 - the link boundary: never raise on received bytes
            return self._error(packet_bytes, "internal", f"{type(exc).__name__}: {exc}", link, rx_time), None
        return self._decode_parsed(pkt, packet_bytes, link, rx_time), pkt

    def decode_parsed(self, pkt: PusTc | PusTm, link: str | None = None, rx_time: float | None = None) -> dict:
        """Record of a packet already parsed (and CRC-checked) by :func:`fsw.protocol.parse_packet`."""
        return self._decode_parsed(pkt, None, link, rx_time)

    def _decode_parsed(self, pkt: PusTc | PusTm, raw: Any, link: str | None, rx_time: float | None) -> dict:
        try:
            system = self._systems.get(pkt.apid)
            if system is None:
                what = "idle packet" if pkt.apid == IDLE_APID else "no unit owns it"
                return self._error(raw if raw is not None else pkt.pack(), "unknown_apid",
                                   f"APID 0x{pkt.apid:03X}: {what}", link, rx_time, pkt)
            if type(pkt) is PusTm:
                return self._decode_tm(pkt, system, raw, link, rx_time)
            return self._decode_tc(pkt, system, raw, link, rx_time)
        except Exception as exc:  # noqa: BLE001 - the link boundary: never raise on received bytes
            return self._error(raw if raw is not None else b"", "internal", f"{type(exc).__name__}: {exc}",
                               link, rx_time, pkt)

    # -- internals ------------------------------------------------------------------------------------------
    def _base(self, pkt: PusTc | PusTm, system: str | None, link: str | None, rx_time: float | None) -> dict:
        if type(pkt) is PusTm:
            t = pkt.time_coarse + pkt.time_fine / 65536.0
            rec = {"apid": pkt.apid, "seq_count": pkt.seq_count, "packet_type": "TM", "service": pkt.service,
                   "subservice": pkt.subservice, "time": t, "utc": self.utc(pkt.time_coarse, pkt.time_fine),
                   "name": None,
                   "system": system, "params": {}, "limits": {}}
        else:
            rec = {"apid": pkt.apid, "seq_count": pkt.seq_count, "packet_type": "TC", "service": pkt.service,
                   "subservice": pkt.subservice, "time": None, "utc": None, "name": None,
                   "system": system, "params": {}, "limits": {}}
        if link is not None:
            rec["link"] = link
        if rx_time is not None:
            rec["rx_time"] = rx_time
        return rec

    def _error(self, data: bytes | bytearray | memoryview, reason: str, detail: str, link: str | None,
               rx_time: float | None, pkt: PusTc | PusTm | None = None) -> dict:
        if pkt is not None:
            rec = self._base(pkt, self._systems.get(pkt.apid), link, rx_time)
        else:
            rec = _header_guess(data)
            if link is not None:
                rec["link"] = link
            if rx_time is not None:
                rec["rx_time"] = rx_time
        rec["error"] = reason
        rec["detail"] = detail
        rec["hex"] = bytes(data).hex()
        return rec

    def _decode_tm(self, pkt: PusTm, system: str, raw: Any, link: str | None, rx_time: float | None) -> dict:
        rec = self._base(pkt, system, link, rx_time)
        data = pkt.source_data
        plan = self._tm_plan(pkt.apid, pkt.service, pkt.subservice, data)
        if plan is None:
            rec["data"] = data.hex()
            return rec
        rec["name"] = plan.name
        pp = plan.params
        if len(data) < pp.size:
            return self._short(rec, raw, pkt, f"{plan.name} needs {pp.size} octets of source data, got {len(data)}")
        rec["params"], rec["limits"] = pp.decode(data)
        kind = plan.kind
        if kind == "event":
            self._event(rec, pkt, data, plan, raw)
        elif kind == "verification":
            params = rec["params"]
            pid = params.get("TC_PACKET_ID", 0)
            sc = params.get("TC_SEQ_CTRL", 0)
            stage, ok = STAGE_OF_SUBSERVICE[pkt.subservice]
            rec["request"] = {"apid": pid & MAX_APID, "seq_count": sc & MAX_SEQ_COUNT}
            rec["stage"] = stage
            rec["success"] = ok
            rec["failure"] = None if ok else params.get("FAILURE_CODE")
            if len(data) > pp.size:
                rec["trailing"] = data[pp.size:].hex()
        elif len(data) > pp.size:
            rec["trailing"] = data[pp.size:].hex()
        return rec

    def _event(self, rec: dict, pkt: PusTm, data: bytes, plan: _TmPlan, raw: Any) -> None:
        header = rec["params"]
        event_id = next(iter(header.values())) if header else None
        rec["event_id"] = event_id
        rec["severity"] = _SEVERITY_OF_SUBTYPE.get(pkt.subservice)
        ev = self._event_plan(pkt.apid, event_id) if isinstance(event_id, int) else None
        if ev is None:
            rec["event"] = None
            rec["params"] = {}
            rec["data"] = data[plan.event_offset:].hex()
            return
        evt, pp = ev
        rec["event"] = evt.name
        rec["severity"] = evt.severity
        off = plan.event_offset
        if len(data) - off < pp.size:
            self._short(rec, raw, pkt, f"event {evt.name} needs {pp.size} octets of arguments, got {len(data) - off}")
            rec["params"] = {}
            return
        rec["params"], rec["limits"] = pp.decode(data, off)
        if len(data) - off > pp.size:
            rec["trailing"] = data[off + pp.size:].hex()

    @staticmethod
    def _short(rec: dict, raw: Any, pkt: PusTm, detail: str) -> dict:
        rec["error"] = "short_params"
        rec["detail"] = detail
        rec["hex"] = bytes(raw).hex() if raw is not None else pkt.pack().hex()
        return rec

    def _decode_tc(self, pkt: PusTc, system: str, raw: Any, link: str | None, rx_time: float | None) -> dict:
        rec = self._base(pkt, system, link, rx_time)
        rec["source_id"] = pkt.source_id
        rec["ack_flags"] = pkt.ack_flags
        d = self.dictionary
        cmd = d.command_by_key(pkt.apid, pkt.service, pkt.subservice, pkt.app_data)
        if cmd is None:
            rec["data"] = pkt.app_data.hex()
            return rec
        rec["name"] = cmd.name
        rec["hazardous"] = cmd.hazardous
        try:
            args = d.args_codec(cmd).decode(pkt.app_data)
        except ArgumentError as exc:
            rec["error"] = "bad_args"
            rec["detail"] = f"{cmd.name}: {exc} ({exc.code})"
            rec["failure"] = exc.code
            rec["hex"] = bytes(raw).hex() if raw is not None else pkt.pack().hex()
            return rec
        rec["params"] = args
        return rec


def _header_guess(data: bytes | bytearray | memoryview) -> dict:
    """Base keys filled from whatever primary/secondary header octets are there (for error records)."""
    rec: dict = {"apid": None, "seq_count": None, "packet_type": None, "service": None, "subservice": None,
                 "time": None, "utc": None, "name": None, "system": None, "params": {}, "limits": {}}
    n = len(data)
    if n >= 4:
        rec["apid"] = ((data[0] << 8) | data[1]) & MAX_APID
        rec["seq_count"] = ((data[2] << 8) | data[3]) & MAX_SEQ_COUNT
        rec["packet_type"] = "TC" if (data[0] >> 4) & 1 else "TM"
        if n >= 9:
            rec["service"] = data[7]
            rec["subservice"] = data[8]
    return rec


# -- whole captures ------------------------------------------------------------------------------------------

def detect_format(data: bytes | bytearray | memoryview) -> str:
    """``"framed"`` (sync-marked) or ``"raw"`` (space packets back to back, the ccsdspy file format)."""
    if bytes(data[:4]) == ASM:
        return "framed"
    if len(data) >= PRIMARY_HEADER_LEN:
        total = PRIMARY_HEADER_LEN + ((data[4] << 8) | data[5]) + 1
        if data[0] >> 5 == 0 and (data[0] >> 3) & 1 and total <= len(data) and check_crc(data[:total]):
            return "raw"
    return "framed" if ASM in data else "raw"


def iter_file_records(data: bytes | bytearray | memoryview, dictionary: Dictionary | PacketDecoder,
                      fmt: str = "auto") -> Iterator[dict]:
    """Decode a whole capture; every record gets ``offset`` (octets from the start of ``data``)."""
    decoder = dictionary if isinstance(dictionary, PacketDecoder) else PacketDecoder(dictionary)
    if fmt == "auto":
        fmt = detect_format(data)
    if fmt == "framed":
        return iter_framed_records(data, decoder)
    if fmt == "raw":
        return iter_raw_records(data, decoder)
    raise ValueError(f"unknown capture format {fmt!r}; expected auto, raw or framed")


def iter_framed_records(data: bytes | bytearray | memoryview, decoder: PacketDecoder,
                        chunk: int = 65536) -> Iterator[dict]:
    """Sync-marked frames: deframe (flushing at the end), decode, and report dropped bytes."""
    deframer = Deframer(max_packet=decoder.dictionary.max_packet)
    mv = memoryview(bytes(data))
    cursor = 0

    def emit(items: list) -> Iterator[dict]:
        nonlocal cursor
        for item in items:
            if type(item) is Dropped:
                rec = decode_dropped(item)
                rec["offset"] = cursor
                cursor += item.nbytes
            else:
                rec = decoder.decode(item)
                rec["offset"] = cursor + len(ASM)
                cursor += len(ASM) + len(item)
            yield rec

    for start in range(0, len(mv), chunk):
        yield from emit(deframer.feed(mv[start:start + chunk]))
    yield from emit(deframer.flush())


def iter_raw_records(data: bytes | bytearray | memoryview, decoder: PacketDecoder) -> Iterator[dict]:
    """Space packets back to back, walked by the primary header's length field.

    A damaged stretch (bad version, impossible length, CRC mismatch) gives
    one error record naming its offset; decoding resumes at the next offset
    where a plausible packet with a good CRC starts.  A truncated last packet
    gives a ``truncated`` error record.
    """
    buf = bytes(data)
    n = len(buf)
    apids = set(decoder._systems) | {IDLE_APID}
    max_packet = decoder.dictionary.max_packet
    pos = 0
    while pos < n:
        reason = _raw_problem(buf, pos, max_packet)
        if reason is None:
            total = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1
            rec = decoder.decode(buf[pos:pos + total])
            rec["offset"] = pos
            yield rec
            pos += total
            continue
        if reason == "truncated":
            avail = n - pos
            need = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1 if avail >= 6 else 6
            # a truncated packet could also be a corrupt length: look for a good packet inside first
            nxt = _resync(buf, pos + 1, apids, max_packet)
            if nxt is None:
                yield _region_error("truncated", f"last packet needs {need} octets, only {avail} left", buf, pos, n)
                return
            yield _region_error("bad_length", f"length field says {need} octets, file has {avail} left",
                                buf, pos, nxt)
            pos = nxt
            continue
        nxt = _resync(buf, pos + 1, apids, max_packet)
        end = n if nxt is None else nxt
        yield _region_error(reason, _RAW_DETAIL[reason], buf, pos, end)
        pos = end


_RAW_DETAIL = {
    "bad_version": "packet version number is not 0; skipped to the next good packet",
    "no_sec_hdr": "secondary header flag is 0; skipped to the next good packet",
    "bad_length": "length field outside the mission's packet sizes; skipped to the next good packet",
    "crc": "packet error control does not match; skipped to the next good packet",
}


def _raw_problem(buf: bytes, pos: int, max_packet: int) -> str | None:
    n = len(buf)
    if n - pos < PRIMARY_HEADER_LEN:
        return "truncated"
    b0 = buf[pos]
    if b0 >> 5:
        return "bad_version"
    if not (b0 >> 3) & 1:
        return "no_sec_hdr"
    total = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1
    if total < 13 or total > max_packet:
        return "bad_length"
    if pos + total > n:
        return "truncated"
    if not check_crc(memoryview(buf)[pos:pos + total]):
        return "crc"
    return None


def _resync(buf: bytes, start: int, apids: set[int], max_packet: int) -> int | None:
    """First offset >= ``start`` where a packet of a known APID with a good CRC begins."""
    n = len(buf)
    mv = memoryview(buf)
    for p in range(start, n - PRIMARY_HEADER_LEN + 1):
        b0 = buf[p]
        if b0 >> 5 or not (b0 >> 3) & 1 or ((b0 << 8) | buf[p + 1]) & MAX_APID not in apids:
            continue
        total = PRIMARY_HEADER_LEN + ((buf[p + 4] << 8) | buf[p + 5]) + 1
        if 13 <= total <= max_packet and p + total <= n and check_crc(mv[p:p + total]):
            return p
    return None


def _region_error(reason: str, detail: str, buf: bytes, start: int, end: int) -> dict:
    # header fields mean something only where a packet with a sane header starts (a CRC error, a truncated end)
    rec = _header_guess(buf[start:end] if reason in ("crc", "truncated") else b"")
    rec["error"] = reason
    rec["detail"] = f"at offset {start}: {detail}"
    rec["offset"] = start
    rec["bytes"] = end - start
    rec["hex"] = buf[start:min(end, start + _HEX_LIMIT)].hex()
    return rec
