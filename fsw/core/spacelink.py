"""The lander's end of the space link, pure: CLTUs in -> telecommands out; packets in -> CADUs out.

:class:`SpaceLinkOnboard` puts together the pieces of the space link for
the flight software's ground port:

uplink
    bytes -> :class:`~fsw.protocol.tcframe.CltuDecoder` -> TC frame checks
    (length, FECF, spacecraft and channel ids) -> :class:`~fsw.core.farm1.Farm1`
    -> segment reassembly -> TC packets, in order, from :meth:`take_tcs`.
    Every discarded octet or frame is counted with its reason.
downlink
    :meth:`send_packet` stores every packet (:class:`~fsw.core.storage.StorageManager`)
    and, if it is real-time and the radio has the link, queues it on the
    real-time virtual channel; the playback channel pulls from the stores.
    A frame clock paced to the downlink rate makes fixed-length frames
    (:class:`~fsw.protocol.tmframe.TmMultiplexer`), each with the current
    CLCW in its OCF; with nothing to send it still sends an idle frame every
    ``clcw_interval_s`` (and soon after the CLCW changes) so that the ground's
    FOP-1 hears from FARM-1.  CADUs (ASM + frame) come out of :meth:`take_output`.

It is driven like a :class:`~fsw.core.node.Node`: ``receive(data, now)``,
``next_deadline()``, ``run_due(now)``, ``take_output()``.  The radio's
view of the link (the relay model's contact windows, on a bench) comes in
through :meth:`set_rf`: without RF nothing is sent, the real-time queue
goes back to the stores, and what was sent just before the loss is queued
for playback again.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol.pus import PusTc, parse_packet_nothrow
from ..protocol.tcframe import (
    CltuDecoder, CltuFrameBytes, SegmentReassembler, TcDropReason, parse_tc_frame, split_packets,
)
from ..protocol.errors import DecodeError
from ..protocol.framing import Dropped
from ..protocol.tmframe import (
    DEFAULT_SCID, VC_PLAYBACK, VC_REALTIME, TmFrameConfig, TmMultiplexer, cadu,
)
from .farm1 import Farm1, FarmEvent, FarmState
from .state import StateStore, load_record, save_record
from .storage import StorageManager, default_stores, dictionary_router, science_keys


@dataclass(frozen=True)
class SpaceLinkConfig:
    scid: int = DEFAULT_SCID
    #: the TC virtual channel of COP-1 (one FARM-1)
    tc_vcid: int = 0
    farm_window: int = 32
    farm_buffer: int = 16
    #: TC frames carry a segment header (MAP service), so a packet may span frames
    segment_header: bool = True
    cltu_correct: bool = True
    tm: TmFrameConfig = field(default_factory=TmFrameConfig)
    downlink_bps: float = 1_300_000.0
    #: longest silence on the downlink: an idle frame carries the CLCW at least this often
    clcw_interval_s: float = 1.0
    #: after the CLCW changes, a frame goes out within this delay even with nothing to send
    clcw_prompt_s: float = 0.05
    #: frames are built up to this far ahead of their slot, to wake the runner less often
    burst_s: float = 0.05
    rt_queue_bytes: int = 256 * 1024
    playback: bool = True
    #: on loss of RF, packets sent this long before are sent again
    rf_guard_s: float = 10.0
    max_packet: int = 65542
    #: packet stores: a packet the ground has not acknowledged this long after it went out is sent again
    ack_timeout_s: float = 300.0
    #: packet stores: what was stored is made durable at most this long after (a crash loses the rest)
    flush_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.downlink_bps > 0:
            raise ValueError("downlink_bps must be positive")
        if not self.clcw_interval_s > 0:
            raise ValueError("clcw_interval_s must be positive")
        if self.tm.scid != self.scid:
            raise ValueError(f"TM spacecraft id {self.tm.scid} differs from the link's {self.scid}")
        if not (self.ack_timeout_s > 0 and self.flush_interval_s > 0):
            raise ValueError("ack_timeout_s and flush_interval_s must be positive")


class SpaceLinkOnboard:
    FARM_RECORD = "spacelink/farm"

    def __init__(self, config: SpaceLinkConfig | None = None, storage: StorageManager | None = None,
                 state: StateStore | None = None) -> None:
        self.cfg = cfg = config or SpaceLinkConfig()
        self.storage = storage
        self.state = state
        self.farm = Farm1(cfg.tc_vcid, cfg.farm_window, cfg.farm_buffer)
        self.cltu = CltuDecoder(correct=cfg.cltu_correct)
        self._seg_ad = SegmentReassembler(cfg.max_packet)
        self._seg_bd = SegmentReassembler(cfg.max_packet)
        self.mux = TmMultiplexer(cfg.tm, ocf_source=self._ocf, idle_frames=True)
        self.mux.set_feeder(VC_REALTIME, self._feed_rt)
        self.mux.set_feeder(VC_PLAYBACK, self._feed_pb)
        self.rf = True
        self.playback = cfg.playback
        self.downlink_bps = cfg.downlink_bps
        self._rt: deque[tuple[bytes, tuple[int, int] | None]] = deque()
        self._rt_bytes = 0
        self._out: list[bytes] = []
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._now = 0.0
        self._next_slot = 0.0
        self._last_frame = -math.inf
        self._clcw_dirty = True
        self._dirty_at = -math.inf
        self._persisted: dict[str, Any] | None = None
        self.frame_errors: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self._discard_seen = (0, 0)
        # next_deadline() remembers its answer while none of its inputs moved (see _changed)
        self._deadline: float | None = None
        self._deadline_srev = self._deadline_mrev = -1   # the stores' and the multiplexer's revisions then
        self._ocf_key: tuple | None = None
        self._ocf_bytes = b""

    # -- life cycle ------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Restore FARM-1's V(R) and Lockout, and the packet stores, from durable state."""
        self._now = now
        self._next_slot = now
        self._changed()
        if self.state is not None:
            rec = load_record(self.state, self.FARM_RECORD)
            self.farm.restore(rec)
            self._persisted = self.farm.snapshot()
        if self.storage is not None:
            self.storage.restore(now)
            self._events.extend(self.storage.take_events())

    def stop(self, now: float) -> None:
        """An orderly shutdown: make everything stored durable (a crash loses what came since the last flush)."""
        if self.storage is not None:
            self.storage.flush(now)

    @property
    def frame_time(self) -> float:
        """Seconds one CADU takes at the downlink rate."""
        return self.cfg.tm.cadu_len * 8.0 / self.downlink_bps

    # -- uplink --------------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """Octets from the uplink.  Never raises for any content."""
        self._now = now
        self._handle(self.cltu.feed(data), now)

    def line_idle(self, now: float) -> None:
        """The uplink has been quiet: end a CLTU whose tail was lost."""
        self._handle(self.cltu.flush(), now)

    def _handle(self, items: list[CltuFrameBytes | Dropped], now: float) -> None:
        farm = self.farm
        for item in items:
            if isinstance(item, Dropped):
                continue  # counted by the CLTU decoder
            f = parse_tc_frame(item.data)
            if isinstance(f, DecodeError):
                self.frame_errors[f.reason] += 1
                farm.invalid(f.reason)
                continue
            if f.scid != self.cfg.scid:
                self.frame_errors[TcDropReason.SCID] += 1
                farm.invalid(TcDropReason.SCID)
                continue
            if f.vcid != self.cfg.tc_vcid:
                self.frame_errors[TcDropReason.VCID] += 1
                farm.invalid(TcDropReason.VCID)
                continue
            before = (farm.state, farm.vr)
            r = farm.receive(f)
            self._dirty(now)
            if r.event is FarmEvent.AD_LOCKOUT_AREA and before[0] is not FarmState.LOCKOUT:
                self._events.append(("COP_LOCKOUT", {"COP_VR": farm.vr, "COP_NS": f.seq}))
            elif r.event is FarmEvent.UNLOCK:
                self._events.append(("COP_UNLOCKED", {"COP_VR": farm.vr}))
            elif r.event is FarmEvent.SET_VR and farm.state is not FarmState.LOCKOUT:
                self._events.append(("COP_VR_SET", {"COP_VR": farm.vr}))
            elif r.event is FarmEvent.AD_NO_BUFFER and before[0] is FarmState.OPEN:
                self._events.append(("COP_WAIT", {"COP_VR": farm.vr}))
            elif r.event is FarmEvent.INVALID and r.reason == "bad_control":
                self.frame_errors[TcDropReason.BAD_CONTROL] += 1
            self._persist()

    def _persist(self) -> None:
        if self.state is None:
            return
        snap = self.farm.snapshot()
        if snap != self._persisted:
            save_record(self.state, self.FARM_RECORD, snap)
            self._persisted = snap

    def take_tcs(self) -> list[bytes]:
        """Telecommand packets accepted by FARM-1, in order (BD ones in arrival order)."""
        out: list[bytes] = []
        for d in self.farm.take():
            if self.cfg.segment_header:
                seg = self._seg_ad if d.kind == "AD" else self._seg_bd
                body = seg.feed(d.data)
                if body is None:
                    continue
            else:
                body = d.data
            pkts, junk = split_packets(body)
            out.extend(pkts)
            if junk:
                self.counters["tc_octets_not_packets"] += junk
        if out:
            self._dirty(self._now)
        self.counters["tcs_delivered"] += len(out)
        return out

    def clcw(self):
        return self.farm.clcw(no_rf=not self.rf)

    def _ocf(self) -> bytes:
        """The CLCW for the next frame's OCF, packed again only when one of its fields changed."""
        f = self.farm
        key = (f.vcid, f.vr, f.lockout, f.wait, f.retransmit, f.farm_b, self.rf)
        if key != self._ocf_key:
            self._ocf_bytes = f.clcw(no_rf=not self.rf).pack()
            self._ocf_key = key
        return self._ocf_bytes

    # -- downlink -------------------------------------------------------------------------------
    def send_packet(self, packet: bytes, now: float, realtime: bool = True) -> None:
        """A telemetry packet for the ground.  Stored always; sent live too when ``realtime`` and RF is up."""
        self._now = now
        self._changed()
        live = realtime and self.rf
        ref = None
        if self.storage is not None:
            ref = self.storage.store_packet(packet, now, sent=live)
            self._events.extend(self.storage.take_events())
        if not live:
            if ref is None and realtime:
                self.counters["rt_not_sent"] += 1
            return
        if self._rt_bytes + len(packet) > self.cfg.rt_queue_bytes:
            self.counters["rt_overflow"] += 1
            if ref is not None:
                self.storage.requeue(*ref)  # type: ignore[union-attr]
            return
        self._rt.append((bytes(packet), ref))
        self._rt_bytes += len(packet)

    def _feed_rt(self, room: int) -> bytes | None:
        if not self._rt:
            return None
        pkt, _ = self._rt.popleft()
        self._rt_bytes -= len(pkt)
        return pkt

    def _feed_pb(self, room: int) -> bytes | None:
        if not (self.playback and self.rf) or self.storage is None:
            return None
        return self.storage.next_playback(self._now)

    def set_rf(self, available: bool, now: float) -> None:
        """The radio acquired (True) or lost (False) the space link."""
        if available == self.rf:
            return
        self.rf = available
        self._now = now
        self._changed()
        self._dirty(now)
        if available:
            self._next_slot = max(self._next_slot, now)
            self._events.append(("RF_ACQUIRED", {}))
            return
        self._events.append(("RF_LOST", {}))
        while self._rt:
            _, ref = self._rt.popleft()
            if ref is not None and self.storage is not None:
                self.storage.requeue(*ref)
        self._rt_bytes = 0
        if self.storage is not None:
            self.counters["resent_after_rf_loss"] += self.storage.rf_lost(now, self.cfg.rf_guard_s)

    def set_downlink_rate(self, bps: float) -> None:
        if not bps > 0:
            raise ValueError("the downlink rate must be positive")
        self.downlink_bps = float(bps)

    def set_playback(self, on: bool) -> None:
        self.playback = bool(on)
        self._changed()

    def set_farm_window(self, w: int) -> None:
        from .farm1 import check_window

        check_window(w)
        self.farm.window = w
        self.farm.pw = self.farm.nw = w // 2

    # -- frame clock ----------------------------------------------------------------------------
    def _has_data(self) -> bool:
        if self._rt:
            return True
        if self.mux.has_data():
            return True
        return bool(self.playback and self.storage is not None and self.storage.has_playback())

    def _idle_due(self) -> float:
        """When the next frame is due with nothing to send: the CLCW's time."""
        t = self._last_frame + self.cfg.clcw_interval_s
        if self._clcw_dirty:
            t = min(t, self._dirty_at + self.cfg.clcw_prompt_s)
        return max(t, self._next_slot)

    def _frame_due(self) -> float:
        """When the runner should wake for the next frame."""
        if self._has_data():
            return self._next_slot - self.cfg.burst_s
        return self._idle_due()

    def _dirty(self, now: float) -> None:
        """The CLCW changed: a frame should carry it soon."""
        if not self._clcw_dirty:
            self._clcw_dirty = True
            self._dirty_at = now
            self._changed()

    def _changed(self) -> None:
        """Something next_deadline() reads changed here (RF, the real-time queue, playback, the frame clock).

        Changes in the stores and in the multiplexer are seen through their own
        revision counters, so commands acting on the stores directly are covered.
        """
        self._deadline = None

    def next_deadline(self) -> float:
        """The next frame or store deadline; remembered until something it depends on changes.

        Recomputing it while nothing changed would give the same time and change
        nothing (the stores' queries are idempotent), so the cache is exact.
        """
        st = self.storage
        srev = st.revision if st is not None else 0
        mrev = self.mux.revision
        t = self._deadline
        if t is not None and srev == self._deadline_srev and mrev == self._deadline_mrev:
            return t
        t = self._frame_due() if self.rf else math.inf
        if st is not None:
            d = st.next_deadline()
            if d < t:
                t = d
        self._deadline = t
        self._deadline_srev = srev
        self._deadline_mrev = mrev
        return t

    def run_due(self, now: float) -> None:
        self._now = now
        self._changed()
        if self.storage is not None:
            self.storage.run_due(now)
            self._events.extend(self.storage.take_events())
        if not self.rf:
            return
        ft = self.frame_time
        horizon = now + self.cfg.burst_s
        if self._next_slot < now:
            self._next_slot = now  # the line was idle: no catching up
        n = 0
        out = self._out
        mux = self.mux
        while True:
            if self._has_data():
                if self._next_slot > horizon:
                    break
            elif self._idle_due() > now:
                break
            frame = mux.next_frame()
            if frame is None:
                break
            out.append(cadu(frame))
            n += 1
            self._last_frame = self._next_slot
            self._next_slot += ft
            self._clcw_dirty = False
        if n:
            self.counters["frames"] += n

    def take_output(self) -> list[bytes]:
        out = self._out
        self._out = []
        return out

    def take_events(self) -> list[tuple[str, dict[str, Any]]]:
        out = self._events
        self._events = []
        return out

    # -- housekeeping ----------------------------------------------------------------------------
    def hk_link(self, now: float) -> dict[str, Any]:
        """The LINK_COP_HK values; also raises TC_FRAMES_DISCARDED when discards grew since last time."""
        f = self.farm
        fs = f.stats()
        cl = self.cltu.stats()
        mx = self.mux.stats()
        invalid = sum(v for k, v in f.discarded.items() if k not in (
            "no_buffer", "wait", "positive_window", "negative_window", "lockout_area", "lockout"))
        discards = sum(f.discarded.values())
        seen_frames, seen_bytes = self._discard_seen
        if discards > seen_frames or self.cltu.dropped_bytes > seen_bytes:
            self._events.append(("TC_FRAMES_DISCARDED", {"DISCARD_FRAMES": discards - seen_frames,
                                                         "DISCARD_BYTES": self.cltu.dropped_bytes - seen_bytes}))
        self._discard_seen = (discards, self.cltu.dropped_bytes)
        m32 = 0xFFFFFFFF
        return {
            "FARM_STATE": int(f.state), "FARM_VR": f.vr, "FARM_LOCKOUT": f.lockout, "FARM_WAIT": f.wait,
            "FARM_RETRANSMIT": f.retransmit, "FARM_B_COUNTER": f.farm_b, "FARM_WINDOW": f.window,
            "TC_AD_ACCEPTED": fs["accepted_ad"] & m32, "TC_BD_ACCEPTED": fs["accepted_bd"] & m32,
            "TC_BC_ACCEPTED": fs["accepted_bc"] & m32,
            "TC_DISCARD_WINDOW": (fs["discard_positive_window"] + fs["discard_negative_window"]) & m32,
            "TC_DISCARD_LOCKOUT": (fs["discard_lockout_area"] + fs["discard_lockout"]) & m32,
            "TC_DISCARD_WAIT": (fs["discard_no_buffer"] + fs["discard_wait"]) & m32,
            "TC_DISCARD_INVALID": invalid & m32, "TC_DISCARD_FECF": self.frame_errors["fecf"] & m32,
            "CLTU_RECEIVED": cl["cltus"] & m32, "CLTU_BITS_CORRECTED": cl["corrected_bits"] & m32,
            "CLTU_DROPPED_BYTES": cl["dropped_bytes"] & m32,
            "TM_FRAMES_SENT": mx["frames"] & m32, "TM_RT_FRAMES": mx[f"vc{VC_REALTIME}_frames"] & m32,
            "TM_PB_FRAMES": mx[f"vc{VC_PLAYBACK}_frames"] & m32, "TM_IDLE_FRAMES": mx["idle_frames"] & m32,
            "TM_RT_QUEUE_BYTES": self._rt_bytes & m32, "DOWNLINK_RATE": int(self.downlink_bps) & m32,
            "RF_AVAILABLE": self.rf, "PLAYBACK_ENABLED": self.playback,
        }


# ---------------------------------------------------------------------------------------------
# The flight software's ground port through the space link
# ---------------------------------------------------------------------------------------------
class TcLedger:
    """Every telecommand the link handed to the flight software, to show that none ran twice.

    A telecommand is identified by its APID, source id, sequence count and
    its octets.  A sender never reuses a sequence count within 16384
    telecommands of one (APID, source) stream, so the same telecommand seen
    again among the last ``memory`` of its stream was executed twice.  What
    lies further back is forgotten: only a delivery that old could repeat
    legitimately, after the count wrapped.
    """

    def __init__(self, memory: int = 16384) -> None:
        if memory < 1:
            raise ValueError("memory must be at least 1")
        self.memory = memory
        self.executed = 0
        self.duplicates = 0
        self.last_duplicate: tuple[int, int, int] | None = None
        self._streams: dict[tuple[int, int], tuple[deque, set]] = {}

    def add(self, tc: PusTc, raw: bytes) -> bool:
        """Record one execution; False if this very telecommand was executed before."""
        self.executed += 1
        stream = self._streams.get((tc.apid, tc.source_id))
        if stream is None:
            stream = self._streams[(tc.apid, tc.source_id)] = (deque(), set())
        order, seen = stream
        key = (tc.seq_count, bytes(raw))
        if key in seen:
            self.duplicates += 1
            self.last_duplicate = (tc.apid, tc.seq_count, tc.source_id)
            return False
        seen.add(key)
        order.append(key)
        if len(order) > self.memory:
            seen.discard(order.popleft())
        return True


class SpaceLinkService:
    """The space link on a FlightSoftware's ground port, plus its PUS-15 and link commands, HK and events.

    Registers the commands, packets and events of ``lander_link.yaml`` through
    the plug-in API (``register_command``, ``hk.register``, ``on_start``,
    ``emit``).  The flight software hands its ground port to this object
    (``FlightSoftware.ground_link``, set by :func:`install_space_link`):

    * bytes from the port go to :meth:`receive`: CLTU decoder, FARM-1, then
      each telecommand to ``fsw.handle_tc`` (and into :attr:`ledger`);
    * every packet for the ground goes to :meth:`downlink` (science to the
      stores only, everything else live too);
    * :meth:`next_deadline`, :meth:`run_due` and :meth:`take_output` (CADUs)
      join the node's own; :meth:`set_rf` follows the port's link state;
      :meth:`stop` makes the stores durable.

    After each of those the link's events become PUS-5 events.
    """

    COMMANDS = ("STORE_ENABLE", "STORE_DISABLE", "STORE_RETRIEVE_TIME", "STORE_DELETE_UP_TO", "STORE_REPORT",
                "STORE_ACK_RANGE", "STORE_RETRANSMIT_RANGE", "LINK_SET_DOWNLINK_RATE", "LINK_SET_PLAYBACK",
                "FARM_SET_WINDOW")

    def __init__(self, fsw: Any, link: SpaceLinkOnboard) -> None:
        if link.storage is None:
            raise ValueError("the space link service needs the link's packet stores")
        self.fsw = fsw
        self.link = link
        self.storage = link.storage
        self.d = fsw.dictionary
        self.store_ids = dict(fsw.lander.enums["STORE"].values)
        self._science = frozenset(science_keys(self.d))
        self.ledger = TcLedger()
        self.counters: Counter[str] = Counter()
        self.now = 0.0
        for name in self.COMMANDS:
            fsw.register_command(name, getattr(self, "_cmd_" + name.lower()))
        fsw.hk.register("STORAGE_HK", lambda now: self.storage.hk_rows())
        fsw.hk.register("LINK_COP_HK", link.hk_link)
        self._storage_sid = self.d.lander.packet("STORAGE_HK").sid
        fsw.on_start(self._start)

    def _start(self, now: float) -> None:
        self.now = now
        self.link.start(now)
        self.pump_events(now)

    def pump_events(self, now: float) -> None:
        for name, args in self.link.take_events():
            self.fsw.emit(name, now, **args)

    def realtime(self, packet: bytes) -> bool:
        """Science goes to the stores only; everything else also goes out live."""
        if len(packet) < 9 or not (packet[0] >> 3) & 1:
            return True
        return (((packet[0] << 8) | packet[1]) & 0x7FF, packet[7], packet[8]) not in self._science

    def downlink(self, packet: bytes, now: float) -> None:
        self.link.send_packet(packet, now, realtime=self.realtime(packet))

    # -- the ground port -------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """Octets from the ground port (CLTUs).  Never raises for any content."""
        self.now = now
        self.link.receive(data, now)
        self._deliver(now)

    def line_idle(self, now: float) -> None:
        self.now = now
        self.link.line_idle(now)
        self._deliver(now)

    def _deliver(self, now: float) -> None:
        fsw = self.fsw
        for raw in self.link.take_tcs():
            tc = parse_packet_nothrow(raw)
            if not isinstance(tc, PusTc):
                self.counters["not_telecommands"] += 1
                fsw.port_stats[fsw.GROUND].rejected += 1
                continue
            fsw.port_stats[fsw.GROUND].rx_packets += 1
            if not self.ledger.add(tc, raw):
                self.counters["executed_twice"] += 1
            fsw.handle_tc(tc, now)
        self.pump_events(now)

    def send(self, packet: bytes) -> None:
        """A packet for the ground from the flight software (at the time of the last call in)."""
        if not self.link.rf:
            self.counters["stored_without_rf"] += 1
        self.downlink(packet, self.now)

    def next_deadline(self) -> float:
        return self.link.next_deadline()

    def run_due(self, now: float) -> None:
        self.now = now
        self.link.run_due(now)
        self.pump_events(now)

    def take_output(self) -> list[bytes]:
        return self.link.take_output()

    def set_rf(self, available: bool, now: float) -> None:
        self.now = now
        self.link.set_rf(available, now)
        self.pump_events(now)

    def stop(self, now: float) -> None:
        self.link.stop(now)

    def status(self) -> dict[str, Any]:
        """A snapshot for reports and tests (not telemetry: that is LINK_COP_HK and STORAGE_HK)."""
        f = self.link.farm
        return {"rf": self.link.rf, "farm_state": f.state.name, "farm_vr": f.vr,
                "tcs_executed": self.ledger.executed, "tcs_executed_twice": self.ledger.duplicates,
                "frames_discarded": {**{k: v for k, v in f.discarded.items() if v},
                                     **{f"frame_{k}": v for k, v in self.link.frame_errors.items() if v},
                                     "cltu_dropped_bytes": self.link.cltu.dropped_bytes},
                "stores": {s.cfg.name: {"fill": round(s.fill(), 6), "packets": len(s.entries)}
                           for s in self.storage.stores.values()},
                **dict(self.counters), **{f"link_{k}": v for k, v in self.link.counters.items()}}

    # -- commands --------------------------------------------------------------------------------
    def _store(self, label: str) -> int:
        from .flight import CommandFailure

        sid = self.store_ids.get(label)
        if sid is None or (sid != 0 and sid not in self.storage.stores):
            raise CommandFailure("UNKNOWN_ID", sid or 0, stage="accept")
        return sid

    def _cmd_store_enable(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self.storage.enable(self._store(args["store"]), True)

    def _cmd_store_disable(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self.storage.enable(self._store(args["store"]), False)

    def _times(self, a: float, b: float) -> None:
        from .flight import CommandFailure

        if a > b:
            raise CommandFailure("BAD_TIME", stage="accept")

    def _cmd_store_retrieve_time(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self._times(args["t_from"], args["t_to"])
        self.storage.retrieve_time(self._store(args["store"]), args["t_from"], args["t_to"])

    def _cmd_store_delete_up_to(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        sid = self._store(args["store"])
        n = self.storage.delete_up_to(sid, args["t_to"])
        self.fsw.emit("STORE_DELETED", now, STORE=sid, DELETED_COUNT=min(n, 0xFFFFFFFF))

    def _cmd_store_report(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self.fsw.hk.send_now(self._storage_sid, now)

    def _range(self, args: dict, fn: Any) -> None:
        from .flight import CommandFailure

        self._times(args["t_from"], args["t_to"])
        try:
            fn(self._store(args["store"]), args["apid"], args["first_seq"], args["last_seq"], args["t_from"],
               args["t_to"])
        except ValueError:
            raise CommandFailure("ARG_OUT_OF_RANGE", stage="accept") from None

    def _cmd_store_ack_range(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self._range(args, self.storage.ack)

    def _cmd_store_retransmit_range(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self._range(args, self.storage.retransmit)
        self.pump_events(now)

    def _cmd_link_set_downlink_rate(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self.link.set_downlink_rate(args["rate_bps"])

    def _cmd_link_set_playback(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        self.link.set_playback(args["state"] == "ON")

    def _cmd_farm_set_window(self, cmd: Any, args: dict, tc: Any, now: float) -> None:
        from .flight import CommandFailure

        try:
            self.link.set_farm_window(args["width"])
        except ValueError:
            raise CommandFailure("ARG_OUT_OF_RANGE", args["width"], stage="accept") from None


def space_link_config(option: Any) -> SpaceLinkConfig | None:
    """The ``space_link`` option of ``build_flight_software``: falsy, True, a SpaceLinkConfig or a mapping."""
    if not option:
        return None
    if option is True:
        return SpaceLinkConfig()
    if isinstance(option, SpaceLinkConfig):
        return option
    if isinstance(option, dict):
        return SpaceLinkConfig(**option)
    raise ValueError(f"space_link must be True, a SpaceLinkConfig or a mapping, not {type(option).__name__}")


def install_space_link(fsw: Any, config: SpaceLinkConfig) -> SpaceLinkService:
    """Put the space link (packet stores, FARM-1, TM frames) on the flight software's ground port."""
    stores = default_stores(fsw.dictionary)
    storage = StorageManager(stores, fsw.store, router=dictionary_router(fsw.dictionary, stores),
                             ack_timeout_s=config.ack_timeout_s, flush_interval_s=config.flush_interval_s)
    service = SpaceLinkService(fsw, SpaceLinkOnboard(config, storage, fsw.store))
    fsw.ground_link = service
    return service
