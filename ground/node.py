"""A ground station as a sans-I/O node: commanding with verification tracking, decoding, a parameter table.

The simulated-time mission runner wires this node to the flight software's
ground port in memory; the same decoding and verification code serves the
real-time :class:`ground.session.GroundSession`.

With ``space_link`` (True or a :class:`~ground.spacelink.GroundLinkConfig`)
the port carries the space link instead of ASM-framed packets: telecommands
go up through COP-1 (:meth:`SpaceLinkGround.send_tc`), the received octets
are CADUs whose packets, de-duplicated, take the same decoding path, and the
packet tracker's acknowledgements and retransmission requests go up by
themselves.  :meth:`GroundNode.link_status` shows contact, FOP-1 and the
lander's packet stores.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Mapping

from fsw.core.node import Node
from fsw.dictionary import Dictionary
from fsw.protocol.framing import Dropped
from fsw.core.storage import science_keys
from fsw.protocol.pus import PusTc, PusTm, parse_packet_nothrow

from .commanding import GROUND_SOURCE_ID, SequenceCounter, build_tc, resolve_command
from .decoding import PacketDecoder, decode_dropped
from .spacelink import GroundLinkConfig, SpaceLinkGround, cop_status, dictionary_tc_factory
from .verification import VerificationResult, VerificationTracker

PORT = "link"
#: source id of the space link's own telecommands (store acknowledgements and retransmission requests)
LINK_SOURCE_ID = 0x0F15


class GroundNode(Node):
    """Ground end of a link.  ``on_record`` observers see every decoded record (archive, console ...)."""

    def __init__(self, dictionary: Dictionary, name: str = "ground", source_id: int = GROUND_SOURCE_ID,
                 space_link: "GroundLinkConfig | bool | None" = None) -> None:
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
        self._science = science_keys(dictionary)
        #: science packets received per unit (each once: the space link removes duplicates)
        self.science_received: Counter[str] = Counter()
        self.uplink_events: Counter[str] = Counter()
        self.link: SpaceLinkGround | None = None
        if space_link:
            cfg = space_link if isinstance(space_link, GroundLinkConfig) else GroundLinkConfig()
            # acknowledgements and retransmission requests: their own source id, failures reported only
            self.link = SpaceLinkGround(cfg, make_tc=dictionary_tc_factory(dictionary, source_id=LINK_SOURCE_ID))

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
        self._transmit(tc.pack(), now)
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
        self._transmit(tc.pack(), now)
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

    def _transmit(self, packet: bytes, now: float) -> None:
        if self.link is None:
            self.send_packet(PORT, packet)
            return
        st = self.port_stats[PORT]
        st.tx_packets += 1
        st.tx_bytes += len(packet)
        self.link.send_tc(packet, now)
        self._link_output()

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

    # -- the space link ------------------------------------------------------------------------------
    def receive(self, port: str, data: bytes, now: float) -> None:
        link = self.link
        if link is None:
            return super().receive(port, data, now)
        if port != PORT:
            raise ValueError(f"{self.name}: no port {port!r}")
        st = self.port_stats[port]
        st.rx_bytes += len(data)
        link.receive(data, now)
        self._link_packets(now)

    def line_idle(self, port: str, now: float) -> None:
        if self.link is None:
            return super().line_idle(port, now)
        self.link.line_idle(now)
        self._link_packets(now)

    def _link_packets(self, now: float) -> None:
        packets = self.link.take_packets()  # type: ignore[union-attr]
        if packets:
            st = self.port_stats[PORT]
            on_packet = self.on_packet
            for _vc, packet in packets:
                st.rx_packets += 1
                st.last_rx = now
                on_packet(PORT, packet, now)
        self._link_output()

    def next_deadline(self) -> float:
        t = self.timers.next_deadline()
        if self.link is not None:
            d = self.link.next_deadline()
            if d < t:
                t = d
        return t

    def run_due(self, now: float) -> None:
        self.timers.run_due(now)
        link = self.link
        # (the link has nothing to do before its deadline: a verification time-out does not wake it)
        if link is not None and link.next_deadline() <= now:
            link.run_due(now)
            self._link_output()

    def _link_output(self) -> None:
        link = self.link
        assert link is not None
        for cltu in link.take_output():
            self._out.append((PORT, cltu))
        for e in link.take_events():
            self.uplink_events[e.kind] += 1

    def link_status(self) -> dict[str, Any]:
        """Contact, COP-1 (FOP-1 state and counters) and the lander's packet stores as last reported."""
        out: dict[str, Any] = {"contact": self.port_stats[PORT].up, "space_link": self.link is not None}
        prefix = "STORE_FILL@"
        out["stores"] = {k[len(prefix):]: {"fill_pct": v, "packets": self.value("STORE_PACKETS@" + k[len(prefix):]),
                                           "at": t}
                         for k, (t, v) in sorted(self.latest.items()) if k.startswith(prefix)}
        link = self.link
        if link is None:
            return out
        out.update(cop_status(link))
        return out

    # -- receiving ---------------------------------------------------------------------------------
    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        pkt = parse_packet_nothrow(packet)
        if isinstance(pkt, Exception):
            rec = self.decoder.decode(packet, link=port, rx_time=now)
        else:
            rec = self.decoder.decode_parsed(pkt, link=port, rx_time=now)
            if type(pkt) is PusTm:
                unit = self._science.get((pkt.apid, pkt.service, pkt.subservice))
                if unit is not None:
                    self.science_received[unit] += 1
            if type(pkt) is PusTm and pkt.service == 1:
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
            if self.link is not None and rec["event"] == "STORE_RANGE_NOT_HELD":
                p = rec.get("params") or {}
                self.link.tracker.not_held(p.get("RANGE_APID", -1), p.get("RANGE_FIRST", -1), p.get("RANGE_FOUND", 1))
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
