"""The mission dictionary: commands, telemetry, events, APIDs, modes, power and limits, as data.

``load_dictionary()`` returns the reference mission; ``load_dictionary(path)``
loads a mission directory on disk.  The returned :class:`Dictionary` is
immutable and indexed for the lookups the flight software, the simulators
and the ground tool make.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..protocol.timecode import MissionEpoch
from .codec import ArgsCodec, ArgumentError, PacketCodec, to_eng, to_raw
from .loader import DictionaryError, directory_reader, package_reader, parse_mission
from .model import (
    SEVERITY_SUBTYPE, Argument, Calibration, Command, Enumeration, Event, Limits, Parameter, System, TmPacket,
)

__all__ = [
    "ArgsCodec", "Argument", "ArgumentError", "Calibration", "Command", "Dictionary", "DictionaryError",
    "Enumeration", "Event", "Limits", "PacketCodec", "Parameter", "System", "TmPacket", "load_dictionary",
    "to_eng", "to_raw",
]


@dataclass(frozen=True)
class Dictionary:
    mission: str
    description: str
    epoch: MissionEpoch
    max_packet: int
    systems: tuple[System, ...]
    standard_packets: tuple[TmPacket, ...]
    enums: Mapping[str, Enumeration]
    phases: Mapping[str, Any] = field(default_factory=dict)
    standard_command_names: tuple[str, ...] = ()
    #: mission seconds of the planned launch (L+0)
    launch_time: float = 0.0

    def __post_init__(self) -> None:
        seen_apid: dict[int, str] = {}
        seen_port: dict[str, str] = {"ground": "(ground link)"}
        for s in self.systems:
            if s.apid in seen_apid:
                raise DictionaryError(s.source, "apid", f"APID {s.apid} already used by {seen_apid[s.apid]}")
            seen_apid[s.apid] = s.name
            if s.port in seen_port:
                raise DictionaryError(s.source, "port", f"port {s.port!r} already used by {seen_port[s.port]}")
            seen_port[s.port] = s.name
        names: dict[str, str] = {}
        std = {c.name for c in self.standard_commands}
        for s in self.systems:
            for c in s.commands:
                if c.name in std:
                    continue
                if c.name in names:
                    raise DictionaryError(s.source, f"command {c.name}",
                                          f"name already used by system {names[c.name]}")
                names[c.name] = s.name
        lander = [s for s in self.systems if s.kind == "lander"]
        if len(lander) != 1:
            raise DictionaryError("mission.yaml", "systems", "exactly one unit of kind 'lander' is needed")

    # -- systems ---------------------------------------------------------------
    @functools.cached_property
    def lander(self) -> System:
        return next(s for s in self.systems if s.kind == "lander")

    @functools.cached_property
    def _by_name(self) -> dict[str, System]:
        return {s.name: s for s in self.systems}

    @functools.cached_property
    def _by_apid(self) -> dict[int, System]:
        return {s.apid: s for s in self.systems}

    @functools.cached_property
    def _by_port(self) -> dict[str, System]:
        return {s.port: s for s in self.systems}

    def system(self, name: str) -> System:
        try:
            return self._by_name[name.upper()]
        except KeyError:
            raise KeyError(f"unknown system {name!r}; known: {', '.join(self._by_name)}") from None

    def system_by_apid(self, apid: int) -> System | None:
        return self._by_apid.get(apid)

    def system_by_port(self, port: str) -> System | None:
        return self._by_port.get(port)

    def systems_of_kind(self, *kinds: str) -> tuple[System, ...]:
        return tuple(s for s in self.systems if s.kind in kinds)

    # -- commands ----------------------------------------------------------------
    @functools.cached_property
    def standard_commands(self) -> tuple[Command, ...]:
        """Commands every unit answers (declared once in mission.yaml, instantiated per unit)."""
        names = set(self.standard_command_names)
        return tuple(c for c in self.lander.commands if c.name in names)

    @functools.cached_property
    def _cmd_by_key(self) -> dict[tuple, Command]:
        return {c.key: c for s in self.systems for c in s.commands}

    @functools.cached_property
    def _cmd_by_name(self) -> dict[tuple[str, str], Command]:
        return {(s.name, c.name): c for s in self.systems for c in s.commands}

    @functools.cached_property
    def _cmd_owner(self) -> dict[str, str]:
        std = {c.name for c in self.standard_commands}
        return {c.name: s.name for s in self.systems for c in s.commands if c.name not in std}

    def command(self, name: str, system: str | None = None) -> Command:
        """A command by name.  Standard commands (PING ...) need ``system``; it defaults to the lander."""
        if system is None:
            system = self._cmd_owner.get(name, self.lander.name)
        try:
            return self._cmd_by_name[(system.upper(), name)]
        except KeyError:
            known = sorted(set(self._cmd_owner) | {c.name for c in self.standard_commands})
            raise KeyError(f"unknown command {name!r} for {system}; known: {', '.join(known)}") from None

    @property
    def command_names(self) -> list[str]:
        return sorted(set(self._cmd_owner) | {c.name for c in self.standard_commands})

    def command_by_key(self, apid: int, service: int, subservice: int, app_data: bytes) -> Command | None:
        """The command a received TC is, by APID, service, subservice and (for function ids) its first octets."""
        c = self._cmd_by_key.get((apid, service, subservice, None))
        if c is not None:
            return c
        if len(app_data) >= 2:
            return self._cmd_by_key.get((apid, service, subservice, (app_data[0] << 8) | app_data[1]))
        return None

    @functools.lru_cache(maxsize=None)
    def args_codec(self, cmd: Command) -> ArgsCodec:
        return ArgsCodec(cmd.args, cmd.function_id)

    def encode_command(self, cmd: Command, args: Mapping[str, Any]) -> bytes:
        """Application data for ``cmd``; raises :class:`ArgumentError` before anything is sent."""
        return self.args_codec(cmd).encode(args)

    # -- telemetry ---------------------------------------------------------------
    @functools.cached_property
    def _pkt_by_key(self) -> dict[tuple, TmPacket]:
        d: dict[tuple, TmPacket] = {p.key: p for p in self.standard_packets}
        for s in self.systems:
            for p in s.telemetry:
                d[p.key] = p
        return d

    @functools.cached_property
    def _sid_services(self) -> frozenset[tuple[int | None, int, int]]:
        return frozenset((k[0], k[1], k[2]) for k in self._pkt_by_key if k[3] is not None)

    def packet_by_key(self, apid: int, service: int, subservice: int, source_data: bytes) -> TmPacket | None:
        d = self._pkt_by_key
        if (apid, service, subservice) in self._sid_services and len(source_data) >= 2:
            p = d.get((apid, service, subservice, (source_data[0] << 8) | source_data[1]))
            if p is not None:
                return p
        return d.get((apid, service, subservice, None)) or d.get((None, service, subservice, None))

    def packet(self, name: str) -> TmPacket:
        for p in self._pkt_by_key.values():
            if p.name == name:
                return p
        raise KeyError(f"unknown telemetry packet {name!r}")

    @functools.lru_cache(maxsize=None)
    def codec(self, pkt: TmPacket) -> PacketCodec:
        return PacketCodec(pkt.params, pkt.sid is not None)

    def encode_tm(self, pkt: TmPacket, values: Mapping[str, Any], eng: bool = True) -> bytes:
        return self.codec(pkt).encode(values, pkt.sid, eng)

    @functools.cached_property
    def parameters(self) -> dict[str, tuple[TmPacket, Parameter]]:
        """Every telemetry parameter by name (names are unique within the mission)."""
        out: dict[str, tuple[TmPacket, Parameter]] = {}
        for s in self.systems:
            for p in s.telemetry:
                for prm in p.params:
                    out.setdefault(prm.name, (p, prm))
        return out

    # -- events ------------------------------------------------------------------
    @functools.cached_property
    def _evt_by_key(self) -> dict[tuple[int, int], Event]:
        return {(e.apid, e.id): e for s in self.systems for e in s.events}

    def event_by_id(self, apid: int, event_id: int) -> Event | None:
        return self._evt_by_key.get((apid, event_id))

    def event(self, system: str, name: str) -> Event:
        return self.system(system).event(name)

    @functools.lru_cache(maxsize=None)
    def event_codec(self, evt: Event) -> PacketCodec:
        return PacketCodec(evt.args, False)

    def encode_event(self, evt: Event, values: Mapping[str, Any]) -> bytes:
        return evt.id.to_bytes(2, "big") + self.event_codec(evt).encode(values)

    # -- failure codes -----------------------------------------------------------
    @property
    def failure_codes(self) -> Enumeration:
        return self.enums["FAILURE_CODE"]

    def failure_code(self, name: str) -> int:
        try:
            return self.failure_codes.values[name]
        except KeyError:
            raise KeyError(f"failure code {name!r} is not declared in mission.yaml") from None

    def failure_name(self, code: int) -> str:
        return self.failure_codes.labels.get(code, f"UNKNOWN({code})")

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None, mission: str) -> Dictionary:
    reader = directory_reader(path) if path else package_reader(mission)
    return parse_mission(reader)


def load_dictionary(path: str | None = None, mission: str = "reference") -> Dictionary:
    """The mission dictionary: a directory on disk, or one shipped in ``fsw/missions``."""
    return _load_cached(str(path) if path else None, mission)


SEVERITY_BY_SUBTYPE = {v: k for k, v in SEVERITY_SUBTYPE.items()}
