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
from .storage import StorageManager


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

    def __post_init__(self) -> None:
        if not self.downlink_bps > 0:
            raise ValueError("downlink_bps must be positive")
        if not self.clcw_interval_s > 0:
            raise ValueError("clcw_interval_s must be positive")
        if self.tm.scid != self.scid:
            raise ValueError(f"TM spacecraft id {self.tm.scid} differs from the link's {self.scid}")


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

    # -- life cycle ------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Restore FARM-1's V(R) and Lockout, and the packet stores, from durable state."""
        self._now = now
        self._next_slot = now
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
        return self.farm.clcw(no_rf=not self.rf).pack()

    # -- downlink -------------------------------------------------------------------------------
    def send_packet(self, packet: bytes, now: float, realtime: bool = True) -> None:
        """A telemetry packet for the ground.  Stored always; sent live too when ``realtime`` and RF is up."""
        self._now = now
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

    def _frame_due(self) -> float:
        """When the runner should wake for the next frame."""
        if self._has_data():
            return self._next_slot - self.cfg.burst_s
        t = self._last_frame + self.cfg.clcw_interval_s
        if self._clcw_dirty:
            t = min(t, self._dirty_at + self.cfg.clcw_prompt_s)
        return max(t, self._next_slot)

    def _dirty(self, now: float) -> None:
        """The CLCW changed: a frame should carry it soon."""
        if not self._clcw_dirty:
            self._clcw_dirty = True
            self._dirty_at = now

    def next_deadline(self) -> float:
        t = self._frame_due() if self.rf else math.inf
        if self.storage is not None:
            t = min(t, self.storage.next_deadline())
        return t

    def run_due(self, now: float) -> None:
        self._now = now
        if self.storage is not None:
            self.storage.run_due(now)
            self._events.extend(self.storage.take_events())
        if not self.rf:
            return
        ft = self.frame_time
        horizon = now + self.cfg.burst_s
        if self._next_slot < now:
            self._next_slot = now  # the line was idle: no catching up
        while True:
            if self._has_data():
                if self._next_slot > horizon:
                    break
            elif self._frame_due() > now:
                break
            frame = self.mux.next_frame()
            if frame is None:
                break
            self._out.append(cadu(frame))
            self.counters["frames"] += 1
            self._last_frame = self._next_slot
            self._next_slot += ft
            self._clcw_dirty = False

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
# Glue for the flight software (the lead wires it in; nothing here is called by flight.py yet)
# ---------------------------------------------------------------------------------------------
class SpaceLinkService:
    """PUS-15 and link commands, STORAGE_HK / LINK_COP_HK and link events, on a FlightSoftware.

    Uses only the plug-in API (``register_command``, ``hk.register``,
    ``on_start``, ``emit``) and the commands, packets and events of
    ``lander_link.yaml``.  The ground port itself is the integrator's: bytes
    from it go to :meth:`SpaceLinkOnboard.receive` and the packets of
    :meth:`SpaceLinkOnboard.take_tcs` to ``fsw.handle_tc``; every packet for
    the ground goes to :meth:`downlink`; :meth:`pump_events` turns the link's
    events into PUS-5 events.
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
        for name in self.COMMANDS:
            fsw.register_command(name, getattr(self, "_cmd_" + name.lower()))
        fsw.hk.register("STORAGE_HK", lambda now: self.storage.hk_rows())
        fsw.hk.register("LINK_COP_HK", link.hk_link)
        self._storage_sid = self.d.lander.packet("STORAGE_HK").sid
        fsw.on_start(self._start)

    def _start(self, now: float) -> None:
        self.link.start(now)
        self.pump_events(now)

    def pump_events(self, now: float) -> None:
        for name, args in self.link.take_events():
            self.fsw.emit(name, now, **args)

    def realtime(self, packet: bytes) -> bool:
        """Science goes to the stores only; everything else also goes out live."""
        if len(packet) < 19 or not (packet[0] >> 3) & 1:
            return True
        apid = ((packet[0] << 8) | packet[1]) & 0x7FF
        pkt = self.d.packet_by_key(apid, packet[7], packet[8], packet[19:-2])
        return pkt is None or pkt.category != "science"

    def downlink(self, packet: bytes, now: float) -> None:
        self.link.send_packet(packet, now, realtime=self.realtime(packet))

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
