"""A ground station as a sans-I/O node: commanding with verification tracking, decoding, a parameter table.

The simulated-time mission runner wires this node to the flight software's
ground port in memory; the same decoding and verification code serves the
real-time :class:`ground.session.GroundSession`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Mapping

from fsw.core.node import Node
from fsw.dictionary import Dictionary
from fsw.protocol.framing import Dropped
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow

from .commanding import GROUND_SOURCE_ID, SequenceCounter, build_tc, resolve_command
from .decoding import PacketDecoder, decode_dropped
from .verification import VerificationResult, VerificationTracker

PORT = "link"


class GroundNode(Node):
    """Ground end of a link.  ``on_record`` observers see every decoded record (archive, console ...)."""

    def __init__(self, dictionary: Dictionary, name: str = "ground", source_id: int = GROUND_SOURCE_ID) -> None:
        super().__init__(name, [PORT], dictionary.max_packet)
        self.dictionary = dictionary
        self.decoder = PacketDecoder(dictionary)
        self.tracker = VerificationTracker(dictionary)
        self.seq = SequenceCounter()
        self.source_id = source_id
        self.latest: dict[str, tuple[float, Any]] = {}   # parameter -> (time, engineering value)
        self.events: list[dict] = []
        self.counts: Counter[str] = Counter()
        self.results: list[VerificationResult] = []
        self._observers: list[Callable[[dict], None]] = []
        self._expiry = None
        self._lander = dictionary.lander.name
        self._finished: set[int] = set()  # request ids whose outcome is counted (a TC counts once)

    def on_record(self, fn: Callable[[dict], None]) -> None:
        self._observers.append(fn)

    # -- commanding ------------------------------------------------------------------------------
    def send(self, name: str, now: float, system: str | None = None, confirm: str | None = None,
             args: Mapping[str, Any] | None = None, timeout: float | None = None) -> PusTc:
        """Validate against the dictionary, send, and track; raises before sending on bad input."""
        cmd = resolve_command(self.dictionary, name, system)
        tc = build_tc(self.dictionary, cmd.name, dict(args or {}), cmd.system, self.seq.peek(cmd.apid),
                      self.source_id, confirm=confirm)
        self.seq.advance(cmd.apid)
        self.send_packet(PORT, tc.pack())
        self.tracker.add_tc(tc, now, timeout if timeout is not None else cmd.timeout_s, cmd.name)
        self.counts["tc_sent"] += 1
        self._arm_expiry()
        return tc

    def send_raw(self, name: str, app_data: bytes, now: float, system: str | None = None,
                 timeout: float | None = None) -> PusTc:
        """Send a command whose dictionary entry is ``raw`` (its application data is built by the caller,
        e.g. a PUS 11 insert made with :func:`fsw.core.schedule.encode_insert`)."""
        cmd = resolve_command(self.dictionary, name, system)
        if not cmd.raw:
            raise ValueError(f"{cmd.name} is not a raw command: use send()")
        head = b"" if cmd.function_id is None else cmd.function_id.to_bytes(2, "big")
        tc = PusTc(cmd.apid, cmd.service, cmd.subservice, head + bytes(app_data), seq_count=self.seq.peek(cmd.apid),
                   source_id=self.source_id)
        self.seq.advance(cmd.apid)
        self.send_packet(PORT, tc.pack())
        self.tracker.add_tc(tc, now, timeout if timeout is not None else cmd.timeout_s, cmd.name)
        self.counts["tc_sent"] += 1
        self._arm_expiry()
        return tc

    def prepare(self, name: str, now: float, release: float, system: str | None = None,
                confirm: str | None = None, args: Mapping[str, Any] | None = None) -> PusTc:
        """Build (not send) a command for the onboard schedule, tracked until ``release`` plus its time-out."""
        cmd = resolve_command(self.dictionary, name, system)
        tc = build_tc(self.dictionary, cmd.name, dict(args or {}), cmd.system, self.seq.peek(cmd.apid),
                      self.source_id, confirm=confirm)
        self.seq.advance(cmd.apid)
        self.tracker.add_tc(tc, now, max(0.0, release - now) + cmd.timeout_s, cmd.name)
        self.counts["tc_scheduled"] += 1
        self._arm_expiry()
        return tc

    def status(self, tc: PusTc) -> VerificationResult | None:
        return self.tracker.status(tc)

    def _arm_expiry(self) -> None:
        d = self.tracker.next_deadline()
        if d is None:
            return
        if self._expiry is not None and not self._expiry.cancelled and self._expiry.when <= d:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = self.timers.call_at(d, self._expire)

    def _expire(self, now: float) -> None:
        self._expiry = None
        for upd in self.tracker.expire(now):
            if upd.result.request_id not in self._finished:
                self._finished.add(upd.result.request_id)
                self.results.append(upd.result)
                self.counts["tc_timeout"] += 1
        self._arm_expiry()

    # -- receiving ---------------------------------------------------------------------------------
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        pkt = parse_packet_nothrow(packet)
        if isinstance(pkt, Exception):
            rec = self.decoder.decode(packet, link=port, rx_time=now)
        else:
            rec = self.decoder.decode_parsed(pkt, link=port, rx_time=now)
            if isinstance(pkt, PusTm) and pkt.service == 1:
                upd = self.tracker.add_tm(pkt, now)
                if upd is not None and upd.result.done and upd.result.request_id not in self._finished:
                    self._finished.add(upd.result.request_id)
                    self.results.append(upd.result)
                    self.counts["tc_ok" if upd.result.ok else "tc_failed"] += 1
        self._absorb(rec, now)

    def _absorb(self, rec: dict, now: float) -> None:
        self.counts["packets"] += 1
        if "error" in rec:
            self.counts["errors"] += 1
        elif rec.get("event"):
            self.events.append(rec)
            self.counts[f"event_{rec.get('severity', 'INFO')}"] += 1
        params = rec.get("params")
        if params and rec.get("packet_type") == "TM":
            t = rec.get("time", now)
            latest = self.latest
            for k, v in params.items():
                latest[k] = (t, v)
            if rec.get("system") == self._lander and not rec.get("event"):
                # per-instance lander reports (PAYLOAD_HK per unit, DEPLOY_HK, LINK_HK per port): keyed by
                # their first, enumerated parameter too, as PARAM@INSTANCE (e.g. DEP_STATE@ALPINE)
                first = next(iter(params.values()))
                if isinstance(first, str):
                    for k, v in params.items():
                        latest[f"{k}@{first}"] = (t, v)
        for fn in self._observers:
            fn(rec)

    def on_dropped(self, port: str, dropped: Dropped, now: float) -> None:
        self.counts["dropped_bytes"] += dropped.nbytes
        rec = decode_dropped(dropped)
        for fn in self._observers:
            fn(rec)

    def value(self, name: str, default: Any = None) -> Any:
        """Latest value of ``PARAM`` or, for per-instance lander reports, ``PARAM@INSTANCE``."""
        v = self.latest.get(name)
        return default if v is None else v[1]
