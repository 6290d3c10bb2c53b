"""The power controller: the flight software's view and use of the PDU.

It keeps the latest state of every PDU channel (:class:`ChannelState`, from
the PDU's housekeeping, by the ``<PDU>_<CHANNEL>_ON/_I/_LIMIT/_TRIP``
naming convention) and switches channels on request.

:meth:`PowerController.switch` sends a ``<PDU>_SWITCH`` telecommand of the
flight software's own on the PDU's port.  These telecommands carry the
lander's APID as their source id and their own sequence counter; the PDU's
PUS-1 reports to them come back with that destination id and are consumed
here, never forwarded to ground (ground's request ids could be the same).
The caller's ``on_done(ok, failure_code_name_or_None)`` runs exactly once,
from the timer queue (never inside ``switch`` itself), on completion,
failure or time-out.  Switching is idempotent, so a request without an
answer within ``config.fsw_response_timeout_s`` is re-sent, up to
``config.fsw_retries`` times, before it fails with ``TIMEOUT``.

Trips are seen from the PDU's ``<PDU>_TRIP`` event at once (and from the
housekeeping flag if the event was lost); each trip is announced once to
the :meth:`on_trip` listeners.  Channel data older than
``config.stale_periods`` PDU housekeeping periods is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from ..dictionary import ArgumentError, System
from ..protocol.pus import PusTc, PusTm
from .pusgen import ACK_ACCEPTANCE, ACK_COMPLETION
from .timers import Timer

if TYPE_CHECKING:
    from .flight import FlightSoftware

#: on_done(ok, failure code name or None)
SwitchDone = Callable[[bool, "str | None"], None]
TripListener = Callable[[str, float], None]

KINDS = ("main", "heater", "actuator")


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A PDU channel as the latest PDU housekeeping (or a confirmed switch) shows it."""

    on: bool = False
    current_a: float = 0.0
    limit_a: float = 0.0
    tripped: bool = False
    updated_at: float | None = None   # None: never reported


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel's configuration, from the PDU's dictionary entry."""

    name: str
    value: int
    unit: str
    kind: str
    limit_a: float
    heater_w: float = 0.0
    power_w: float = 0.0


@dataclass
class _Op:
    channel: str
    on: bool | None     # None: a trip reset, not a switch
    tc: PusTc
    callbacks: list[SwitchDone] = field(default_factory=list)
    attempts: int = 1
    accepted: bool = False
    timer: Timer | None = None
    done: bool = False


@dataclass
class PowerStats:
    tc_sent: int = 0
    retries: int = 0
    failures: int = 0
    timeouts: int = 0
    late_reports: int = 0
    trips: int = 0
    hk_received: int = 0


class PowerController:
    """See the module docstring.  Constructed by ``build_flight_software`` as ``fsw.power``."""

    def __init__(self, fsw: "FlightSoftware") -> None:
        self.fsw = fsw
        d = fsw.dictionary
        pdus = d.systems_of_kind("pdu")
        if len(pdus) > 1:
            raise ValueError(f"more than one PDU in the dictionary: {', '.join(p.name for p in pdus)}")
        self.pdu: System | None = pdus[0] if pdus else None
        self.channels: dict[str, ChannelInfo] = {}
        self._state: dict[str, ChannelState] = {}
        self._params: dict[str, dict[str, str]] = {}
        self.stats = PowerStats()
        self._ops: dict[int, _Op] = {}
        self._seq = 0
        self._trip_listeners: list[TripListener] = []
        self._update_listeners: list[Callable[[float], None]] = []
        self.last_hk: float | None = None
        self.now = 0.0
        self.source_id = fsw.lander.apid
        self.bus_v = 28.0
        self.timeout_s = 1.0
        self.retries = 2
        self.hk_period_s = 1.0
        self._stale_base_s = 3.0
        if self.pdu is None:
            return
        p = self.pdu
        cfg = p.config
        self.bus_v = float(cfg.get("bus_v", 28.0))
        self.timeout_s = float(cfg.get("fsw_response_timeout_s", 1.0))
        self.retries = int(cfg.get("fsw_retries", 2))
        self.hk_period_s = p.hk_period_s
        self._hk = p.packet(f"{p.name}_HK")
        self.hk_period_s = self._hk.period_s or p.hk_period_s
        self._stale_base_s = float(cfg.get("stale_periods", 3)) * self.hk_period_s
        self._switch_cmd = p.command(f"{p.name}_SWITCH")
        self._reset_cmd = p.command(f"{p.name}_RESET_TRIP")
        self._trip_evt = p.event(f"{p.name}_TRIP")
        self._trip_arg = self._trip_evt.args[0].name
        enum = p.enums.get(f"{p.name}_CHANNEL")
        ch_cfg = cfg.get("channels") or {}
        if enum is None or not isinstance(ch_cfg, dict) or set(ch_cfg) != set(enum.values):
            raise ValueError(f"{p.name}: config.channels must configure exactly the {p.name}_CHANNEL labels")
        names = {prm.name for prm in self._hk.params}
        for name, value in sorted(enum.values.items(), key=lambda kv: kv[1]):
            c = ch_cfg[name]
            kind = c.get("kind")
            if kind not in KINDS:
                raise ValueError(f"{p.name}: channel {name}: kind must be one of {', '.join(KINDS)}")
            self.channels[name] = ChannelInfo(name, value, str(c.get("unit", "")), kind, float(c.get("limit_a", 0)),
                                              float(c.get("heater_w", 0.0)), float(c.get("power_w", 0.0)))
            prm = {"on": f"{p.name}_{name}_ON", "current": f"{p.name}_{name}_I", "limit": f"{p.name}_{name}_LIMIT",
                   "trip": f"{p.name}_{name}_TRIP"}
            missing = [v for v in prm.values() if v not in names]
            if missing:
                raise ValueError(f"{p.name}: {self._hk.name} lacks {', '.join(missing)}")
            self._params[name] = prm
            self._state[name] = ChannelState(limit_a=float(c.get("limit_a", 0.0)))
        fsw.add_tm_listener(self._on_tm)
        fsw.add_tm_consumer(self._consume)
        fsw.add_link_listener(self._on_link)

    @property
    def stale_after_s(self) -> float:
        """PDU data older than this is stale: a few report periods at the rate the current phase sets."""
        if self.pdu is None:
            return self._stale_base_s
        return self._stale_base_s * max(1.0, self.fsw.unit_hk_factor(self.pdu))

    # -- the API ------------------------------------------------------------------------
    def switch(self, channel: str, on: bool, now: float, on_done: SwitchDone | None = None) -> None:
        """Switch ``channel``; ``on_done(ok, code)`` runs once, later, from the timer queue.

        :raises KeyError: no such channel.
        """
        ch = self._channel(channel)
        if self.pdu is None:  # pragma: no cover - _channel raises first
            raise KeyError(channel)
        if not self.fsw.port_stats[self.pdu.port].up:
            self.stats.failures += 1
            self._later(now, on_done, False, "LINK_DOWN")
            return
        seq = self._seq
        self._seq = (seq + 1) & 0x3FFF
        app = self.fsw.dictionary.encode_command(self._switch_cmd, {"channel": ch.name, "state": "ON" if on else "OFF"})
        tc = PusTc(self.pdu.apid, self._switch_cmd.service, self._switch_cmd.subservice, app, seq_count=seq,
                   source_id=self.source_id, ack_flags=ACK_ACCEPTANCE | ACK_COMPLETION)
        op = _Op(ch.name, bool(on), tc, [on_done] if on_done is not None else [])
        self._ops[seq] = op
        self._send(op, now)

    def reset_trip(self, channel: str, now: float, on_done: SwitchDone | None = None) -> None:
        """Clear a channel's latched trip at the PDU (``<PDU>_RESET_TRIP``)."""
        ch = self._channel(channel)
        assert self.pdu is not None
        if not self.fsw.port_stats[self.pdu.port].up:
            self.stats.failures += 1
            self._later(now, on_done, False, "LINK_DOWN")
            return
        seq = self._seq
        self._seq = (seq + 1) & 0x3FFF
        app = self.fsw.dictionary.encode_command(self._reset_cmd, {"channel": ch.name})
        tc = PusTc(self.pdu.apid, self._reset_cmd.service, self._reset_cmd.subservice, app, seq_count=seq,
                   source_id=self.source_id, ack_flags=ACK_ACCEPTANCE | ACK_COMPLETION)
        op = _Op(ch.name, None, tc, [on_done] if on_done is not None else [])
        self._ops[seq] = op
        self._send(op, now)

    def state(self, channel: str) -> ChannelState:
        """The channel's latest state.  :raises KeyError: no such channel."""
        st = self._state.get(channel)
        return st if st is not None else self._state[self._channel(channel).name]

    def is_stale(self, channel: str, now: float) -> bool:
        """True when the channel's data is older than the staleness limit (or was never reported)."""
        st = self.state(channel)
        return st.updated_at is None or now - st.updated_at > self.stale_after_s

    def on_trip(self, fn: TripListener) -> None:
        """``fn(channel, now)`` once per trip of any channel."""
        self._trip_listeners.append(fn)

    def on_update(self, fn: Callable[[float], None]) -> None:
        """``fn(now)`` after each PDU housekeeping report has been applied."""
        self._update_listeners.append(fn)

    # -- helpers for the managers ----------------------------------------------------------
    def channel_of(self, unit: str, kind: str = "main") -> str | None:
        """The channel of ``kind`` that feeds ``unit`` (None if there is none)."""
        for ch in self.channels.values():
            if ch.unit == unit and ch.kind == kind:
                return ch.name
        return None

    def pending(self, channel: str, on: bool | None = None) -> bool:
        """A switch or reset request for the channel is under way (``on``: only a switch to that state)."""
        return any(op.channel == channel and not op.done and (on is None or op.on is on) for op in self._ops.values())

    def bus_power_w(self) -> float:
        return sum(st.current_a for st in self._state.values()) * self.bus_v

    def pdu_age(self, now: float) -> float | None:
        return None if self.last_hk is None else now - self.last_hk

    # -- internals ----------------------------------------------------------------------------
    def _channel(self, channel: str) -> ChannelInfo:
        try:
            return self.channels[str(channel).upper()]
        except KeyError:
            raise KeyError(f"no PDU channel {channel!r}; channels: {', '.join(self.channels) or 'none (no PDU)'}") \
                from None

    def _later(self, now: float, fn: SwitchDone | None, ok: bool, code: str | None) -> None:
        if fn is not None:
            self.fsw.timers.call_at(now, lambda t: self._callback(t, fn, ok, code))

    def _callback(self, t: float, fn: SwitchDone, ok: bool, code: str | None) -> None:
        self.now = t   # callers that need the time of the callback read it here
        fn(ok, code)

    def _send(self, op: _Op, now: float) -> None:
        assert self.pdu is not None
        self.stats.tc_sent += 1
        self.fsw.send_to_unit(self.pdu, op.tc.pack())
        if op.timer is not None:
            op.timer.cancel()
        op.timer = self.fsw.timers.call_at(now + self.timeout_s, lambda t, s=op.tc.seq_count: self._timeout(s, t))

    def _timeout(self, seq: int, now: float) -> None:
        op = self._ops.get(seq)
        if op is None or op.done:
            return
        if op.attempts <= self.retries and self.pdu is not None and self.fsw.port_stats[self.pdu.port].up:
            op.attempts += 1
            self.stats.retries += 1
            self._send(op, now)
            return
        self.stats.timeouts += 1
        self._finish(seq, op, False, "TIMEOUT", now)

    def _finish(self, seq: int, op: _Op, ok: bool, code: str | None, now: float) -> None:
        op.done = True
        if op.timer is not None:
            op.timer.cancel()
            op.timer = None
        self._ops.pop(seq, None)
        if not ok:
            self.stats.failures += 1
        else:
            st = self._state[op.channel]
            if op.on is None:
                self._state[op.channel] = replace(st, tripped=False)
            else:
                self._state[op.channel] = replace(st, on=op.on)
        for fn in op.callbacks:
            self._later(now, fn, ok, code)

    def _on_link(self, port: str, up: bool, now: float) -> None:
        if self.pdu is None or port != self.pdu.port or up:
            return
        for seq, op in list(self._ops.items()):
            self._finish(seq, op, False, "LINK_DOWN", now)

    def _consume(self, unit: System, tm: PusTm, now: float) -> bool:
        """Reports to the flight software's own PDU telecommands stay on board."""
        if unit is not self.pdu or tm.service != 1 or tm.dest_id != self.source_id:
            return False
        data = tm.source_data
        if len(data) < 4:
            return True
        seq = int.from_bytes(data[2:4], "big") & 0x3FFF
        pid = int.from_bytes(data[0:2], "big")
        op = self._ops.get(seq)
        if op is None or pid != op.tc.packet_id:
            self.stats.late_reports += 1
            return True
        sub = tm.subservice
        if sub in (2, 4, 6, 8):
            code_val = int.from_bytes(data[4:6], "big") if len(data) >= 6 else 0
            self._finish(seq, op, False, self.fsw.dictionary.failure_name(code_val), now)
        elif sub == 7:
            self._finish(seq, op, True, None, now)
        elif sub == 1 and not op.accepted:
            # accepted: the PDU has it; allow it the rest of the time-out to complete, no more retries
            op.accepted = True
            op.attempts = self.retries + 1
        return True

    def _on_tm(self, unit: System, tm: PusTm, now: float) -> None:
        if unit is not self.pdu:
            return
        if tm.service == 5 and len(tm.source_data) >= 2:
            eid = int.from_bytes(tm.source_data[:2], "big")
            if eid == self._trip_evt.id:
                try:
                    args = self.fsw.dictionary.event_codec(self._trip_evt).decode(tm.source_data, 2)
                except (ValueError, ArgumentError):
                    return
                ch = args.get(self._trip_arg)
                if isinstance(ch, str) and ch in self._state:
                    self._tripped(ch, now)
            return
        if (tm.service, tm.subservice) != (self._hk.service, self._hk.subservice):
            return
        if len(tm.source_data) < 2 or int.from_bytes(tm.source_data[:2], "big") != self._hk.sid:
            return
        try:
            vals = self.fsw.dictionary.codec(self._hk).decode(tm.source_data)
        except ValueError:
            return
        self.stats.hk_received += 1
        self.last_hk = now
        newly: list[str] = []
        for name, prm in self._params.items():
            old = self._state[name]
            tripped = bool(vals[prm["trip"]])
            on = bool(vals[prm["on"]])
            self._state[name] = ChannelState(on, float(vals[prm["current"]]), float(vals[prm["limit"]]), tripped, now)
            if tripped and not old.tripped:
                newly.append(name)
        for name in newly:
            self._announce(name, now)
        for fn in self._update_listeners:
            fn(now)

    def _tripped(self, channel: str, now: float) -> None:
        st = self._state[channel]
        if st.tripped:
            return
        self._state[channel] = replace(st, on=False, tripped=True, current_a=0.0)
        self._announce(channel, now)

    def _announce(self, channel: str, now: float) -> None:
        self.stats.trips += 1
        for fn in self._trip_listeners:
            fn(channel, now)

    def describe(self) -> dict[str, Any]:
        return {n: {"kind": c.kind, "unit": c.unit, "limit_a": c.limit_a} for n, c in self.channels.items()}
