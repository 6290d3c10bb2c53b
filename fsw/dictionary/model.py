"""Frozen objects the mission dictionary loads into.

Everything that talks about commands, telemetry, events, APIDs, modes,
power or limits reads them from here: the flight software, the simulators,
the ground tool, the docs and the exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

#: scalar wire types: name -> (struct code, octets)
SCALAR_TYPES: Mapping[str, tuple[str, int]] = MappingProxyType({
    "u8": ("B", 1), "u16": ("H", 2), "u32": ("I", 4), "u64": ("Q", 8),
    "i8": ("b", 1), "i16": ("h", 2), "i32": ("i", 4), "i64": ("q", 8),
    "f32": ("f", 4), "f64": ("d", 8), "bool": ("B", 1),
    # CUC 4+2 time: decoded to mission seconds
    "time": ("IH", 6),
})

INT_RANGES: Mapping[str, tuple[int, int]] = MappingProxyType({
    "u8": (0, 0xFF), "u16": (0, 0xFFFF), "u32": (0, 0xFFFF_FFFF), "u64": (0, 2**64 - 1),
    "i8": (-0x80, 0x7F), "i16": (-0x8000, 0x7FFF), "i32": (-2**31, 2**31 - 1), "i64": (-2**63, 2**63 - 1),
    "bool": (0, 1),
})

SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH")
#: PUS-5 subtype of each severity
SEVERITY_SUBTYPE: Mapping[str, int] = MappingProxyType({"INFO": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4})
SYSTEM_KINDS = ("lander", "payload", "pdu", "deploy")


def frozen_map(d: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, slots=True)
class Enumeration:
    """Named integer values.  ``labels`` maps value -> name."""

    name: str
    values: Mapping[str, int]

    @property
    def labels(self) -> Mapping[int, str]:
        return MappingProxyType({v: k for k, v in self.values.items()})

    def value_of(self, label: str) -> int:
        return self.values[label]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Raw -> engineering conversion: a polynomial, or a piecewise-linear spline."""

    poly: tuple[float, ...] = ()
    spline: tuple[tuple[float, float], ...] = ()

    def apply(self, raw: float) -> float:
        if self.poly:
            acc = 0.0
            for c in reversed(self.poly):
                acc = acc * raw + c
            return acc
        pts = self.spline
        if raw <= pts[0][0]:
            (x0, y0), (x1, y1) = pts[0], pts[1]
        elif raw >= pts[-1][0]:
            (x0, y0), (x1, y1) = pts[-2], pts[-1]
        else:
            for k in range(1, len(pts)):
                if raw <= pts[k][0]:
                    (x0, y0), (x1, y1) = pts[k - 1], pts[k]
                    break
        return y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def invert(self, eng: float) -> float:
        """Engineering -> raw, for linear polynomials and monotonic splines (used by simulators)."""
        if self.poly:
            if len(self.poly) == 1:
                return 0.0
            if len(self.poly) == 2 or all(c == 0 for c in self.poly[2:]):
                return (eng - self.poly[0]) / self.poly[1]
            lo, hi = -1e9, 1e9  # bisection on a monotonic higher-order polynomial
            inc = self.apply(hi) > self.apply(lo)
            for _ in range(200):
                mid = (lo + hi) / 2
                if (self.apply(mid) < eng) == inc:
                    lo = mid
                else:
                    hi = mid
            return (lo + hi) / 2
        pts = [(y, x) for x, y in self.spline]
        pts.sort()
        return Calibration(spline=tuple(pts)).apply(eng)


@dataclass(frozen=True, slots=True)
class Limits:
    """Ground and onboard limits in engineering units; ``None`` means unbounded."""

    warn_low: float | None = None
    warn_high: float | None = None
    alarm_low: float | None = None
    alarm_high: float | None = None

    def check(self, value: float) -> str:
        """``"ok"``, ``"warn"`` (yellow) or ``"alarm"`` (red)."""
        if (self.alarm_low is not None and value < self.alarm_low) or (
                self.alarm_high is not None and value > self.alarm_high):
            return "alarm"
        if (self.warn_low is not None and value < self.warn_low) or (
                self.warn_high is not None and value > self.warn_high):
            return "warn"
        return "ok"


@dataclass(frozen=True, slots=True, eq=False)
class Parameter:
    """A telemetry parameter (or event argument): one field of a packet."""

    name: str
    type: str
    description: str = ""
    unit: str = ""
    count: int = 1  # fixed-size array when > 1
    enum: Enumeration | None = None
    calibration: Calibration | None = None
    limits: Limits | None = None
    #: simulator hints: nominal value, noise, per-mode values ... (data only)
    sim: Mapping[str, Any] = field(default_factory=frozen_map)

    @property
    def size(self) -> int:
        return SCALAR_TYPES[self.type][1] * self.count


@dataclass(frozen=True, slots=True, eq=False)
class Argument:
    """A telecommand argument, validated on ground before sending and on board on receipt."""

    name: str
    type: str
    description: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    enum: Enumeration | None = None
    default: Any = None

    @property
    def size(self) -> int:
        return SCALAR_TYPES[self.type][1]


@dataclass(frozen=True, slots=True, eq=False)
class Command:
    name: str
    system: str
    apid: int
    service: int
    subservice: int
    function_id: int | None = None
    args: tuple[Argument, ...] = ()
    description: str = ""
    hazardous: bool = False
    #: seconds the sender should wait for completion
    timeout_s: float = 5.0
    #: modes the command is valid in (empty: any powered mode)
    modes: tuple[str, ...] = ()
    #: what the simulator does: parameter name -> argument name or literal value
    effects: Mapping[str, Any] = field(default_factory=frozen_map)
    #: variable-length application data (e.g. TC[11,4] carries whole TCs): no args; the handler parses it
    raw: bool = False

    @property
    def key(self) -> tuple[int, int, int, int | None]:
        return (self.apid, self.service, self.subservice, self.function_id)

    def arg(self, name: str) -> Argument:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(name)


@dataclass(frozen=True, slots=True, eq=False)
class TmPacket:
    name: str
    system: str
    apid: int | None  # None: any APID (standard PUS reports)
    service: int
    subservice: int
    sid: int | None = None
    params: tuple[Parameter, ...] = ()
    description: str = ""
    period_s: float | None = None  # nominal generation period (housekeeping)
    #: "hk", "science", "event", "verification", "time", "test"
    category: str = "hk"

    @property
    def key(self) -> tuple[int | None, int, int, int | None]:
        return (self.apid, self.service, self.subservice, self.sid)

    def param(self, name: str) -> Parameter:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    name: str
    system: str
    apid: int
    id: int
    severity: str
    args: tuple[Parameter, ...] = ()
    description: str = ""

    @property
    def subservice(self) -> int:
        return SEVERITY_SUBTYPE[self.severity]


@dataclass(frozen=True, slots=True, eq=False)
class System:
    """One addressable unit: the lander's payload manager, a payload, the PDU, a deploy unit."""

    name: str
    kind: str
    apid: int
    description: str = ""
    port: str = ""            # the flight software's port name for this unit's serial link
    baud: int = 115200
    modes: tuple[str, ...] = ()
    #: mode -> watts drawn on the switched 28 V line
    power_w: Mapping[str, float] = field(default_factory=frozen_map)
    boot_time_s: float = 0.0
    hk_period_s: float = 1.0
    #: free-form configuration for the unit's model (data only)
    config: Mapping[str, Any] = field(default_factory=frozen_map)
    commands: tuple[Command, ...] = ()
    telemetry: tuple[TmPacket, ...] = ()
    events: tuple[Event, ...] = ()
    enums: Mapping[str, Enumeration] = field(default_factory=frozen_map)
    source: str = ""          # the file it came from

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name:
                return c
        raise KeyError(name)

    def packet(self, name: str) -> TmPacket:
        for p in self.telemetry:
            if p.name == name:
                return p
        raise KeyError(name)

    def event(self, name: str) -> Event:
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(name)


@dataclass(frozen=True, slots=True, eq=False)
class Phase:
    """A mission phase and what it allows."""

    name: str
    value: int
    power_w: float
    payload_power: bool = True
    heaters: bool = True
    hk_factor: float = 1.0
    hazardous: tuple[str, ...] = ()
    #: unit name -> allowed modes (a unit absent here may use any of its modes)
    modes: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)
    #: unit kind -> housekeeping period multiplier for the units of that kind (0: reports disabled)
    unit_hk: Mapping[str, float] = field(default_factory=frozen_map)

    def unit_hk_factor(self, kind: str) -> float:
        return float(self.unit_hk.get(kind, self.hk_factor))

    def allows_mode(self, unit: str, mode: str) -> bool:
        allowed = self.modes.get(unit)
        return allowed is None or mode in allowed

    def allows_hazard(self, command: str) -> bool:
        return command in self.hazardous
