"""The ground's end of the space link, pure: telecommands in -> CLTUs out; CADUs in -> packets out.

:class:`SpaceLinkGround` puts together:

uplink
    TC packet -> segments (if longer than a frame) -> :class:`~ground.fop1.CopUplink`
    (FOP-1 with automatic initialisation and recovery; no telecommand is
    ever sent twice into execution) -> TC frames -> one CLTU each, from
    :meth:`take_output`.  Bypass (BD) frames for emergencies.
downlink
    octets -> :class:`~fsw.protocol.tmframe.CaduDeframer` -> per virtual
    channel :class:`~fsw.protocol.tmframe.VcReassembler` -> packets; the CLCW
    of every frame goes to FOP-1, stale ones (from frames overtaken by newer
    ones) filtered out by the master channel frame count.
store-and-forward
    :class:`PacketTracker` follows each APID's sequence counts: it removes
    duplicates (a packet sent live and played back, or played back twice),
    acknowledges what arrived (``STORE_ACK_RANGE``, so the lander deletes it)
    and asks again for the gaps (``STORE_RETRANSMIT_RANGE``) once they are old
    enough.  The requests are telecommands made by the ``make_tc`` callback
    (:func:`dictionary_tc_factory` builds them from the mission dictionary)
    and go up through COP-1 like any other, one range each: so the tracker
    batches an APID's acknowledgements (``ack_batch_s``, ``ack_hold_s``) and
    asks for nearby gaps in one range (``request_merge_packets``), always well
    inside the lander's own time-out for resending what is not acknowledged.
"""

from __future__ import annotations

import bisect
import itertools
import math
import struct
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from fsw.protocol.framing import Dropped
from fsw.protocol.pus import PusTc
from fsw.protocol.tcframe import MAX_TC_FRAME_LEN, TcSegmenter, cltu_encode
from fsw.protocol.tmframe import (
    DEFAULT_SCID, VC_IDLE, VC_PLAYBACK, VC_REALTIME, CaduDeframer, Clcw, TmFrame, TmFrameConfig, VcReassembler,
)

from .fop1 import CopUplink, Fop1, FopState, UplinkEvent

#: make_tc(command name, arguments) -> a packed TC packet
TcFactory = Callable[[str, dict], bytes]


@dataclass(frozen=True)
class GroundLinkConfig:
    scid: int = DEFAULT_SCID
    tc_vcid: int = 0
    #: FOP sliding window K; keep K <= W/2 of the FARM so that one lost frame never causes a lockout
    fop_window: int = 15
    t1_s: float = 12.0
    tx_limit: int = 5
    timeout_type: int = 0
    #: after an alert, wait this long for frames still on the link before reading V(R)
    settle_s: float = 15.0
    segment_header: bool = True
    #: several short telecommands share one frame when they queue up (packet blocking)
    blocking: bool = True
    max_tc_frame: int = MAX_TC_FRAME_LEN
    tm: TmFrameConfig = field(default_factory=TmFrameConfig)
    vcids: tuple[int, ...] = (VC_REALTIME, VC_PLAYBACK, VC_IDLE)
    #: a CLCW from a frame older than the newest one seen is ignored, unless the newest is this old
    clcw_stale_s: float = 5.0
    max_packet: int = 65542
    # store-and-forward
    ack_interval_s: float = 10.0
    max_requests_per_interval: int = 16
    gap_wait_s: float = 60.0
    request_retry_s: float = 120.0
    max_requests: int = 5
    dedup_memory: int = 200_000
    #: a gap of more packets than an APID makes at this rate over its time span is a counter restart
    max_packet_rate: float = 500.0
    #: a duplicate of a packet already acknowledged is acknowledged again only after this long
    reack_s: float = 60.0
    #: APIDs whose gaps are never requested (their packets are not stored on board)
    no_request_apids: frozenset = frozenset()
    #: 0: acknowledge every run of consecutive counts at once.  Above 0: hold back the packets behind a gap
    #: younger than this (acknowledge only up to it), so that once the gap is filled one range covers the lot:
    #: on a lossy link every gap would otherwise split an acknowledgement in two, doubling the uplink traffic
    ack_hold_s: float = 0.0
    #: acknowledge each APID's packets together, one round at most this often (0: at every ``ack_interval_s``;
    #: the first packets of an APID, and those a hold releases, go at the next check).  Every range is a
    #: telecommand, and most APIDs are slow (the PDU's and the relays' housekeeping: one to three packets a
    #: range when acknowledged every 30 s), so this divides their acknowledgements by the ratio.  ``None``:
    #: ``ack_hold_s``, the delay the link already accepts for an acknowledgement to save uplink traffic.  An
    #: acknowledgement then leaves at most ``ack_batch_s`` plus ``ack_interval_s`` after its packet arrived
    #: (``ack_hold_s`` plus two intervals behind a gap): keep both well inside the lander's ``ack_timeout_s``
    #: (5 min, :class:`fsw.core.spacelink.SpaceLinkConfig`), after which it sends the packet again, with room
    #: for the uplink, the relays' delay and a COP-1 retransmission or two.
    ack_batch_s: float | None = None
    #: one retransmission request covers two gaps of an APID due together when no more than this many
    #: packets lie between them, all still unacknowledged (so still on board): the lander sends those again
    #: too, and the ground drops the copies.  A few packets more on the downlink for one telecommand less on
    #: the uplink: a frame lost on the fast surface downlink often cuts several runs of one APID.  0: never
    request_merge_packets: int = 2

    def __post_init__(self) -> None:
        if self.tm.scid != self.scid:
            raise ValueError(f"TM spacecraft id {self.tm.scid} differs from the link's {self.scid}")


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """An acknowledgement or a retransmission request for one APID's sequence counts."""

    kind: str            # "ack" or "retransmit"
    apid: int
    first: int
    last: int
    t_from: float
    t_to: float

    def args(self, store: int = 0) -> dict[str, Any]:
        return {"store": store, "apid": self.apid, "first_seq": self.first, "last_seq": self.last,
                "t_from": self.t_from, "t_to": self.t_to}


_HEAD = struct.Struct(">HH").unpack_from
_HEAD_CUC = struct.Struct(">HH9xIH").unpack_from   # with the CUC time of a PUS-C TM secondary header


def _key_of(packet: bytes) -> tuple[int, int, int]:
    """(APID, sequence count, CUC ticks) of a packet (ticks 0 without a PUS secondary header)."""
    if len(packet) >= 19:
        w0, w1, coarse, fine = _HEAD_CUC(packet)
        return w0 & 0x7FF, w1 & 0x3FFF, ((coarse << 16) | fine) if w0 & 0x800 else 0
    w0, w1 = _HEAD(packet)
    return w0 & 0x7FF, w1 & 0x3FFF, 0


class _Apid:
    __slots__ = ("order", "unacked", "live", "gaps", "pruned", "next_ack")

    def __init__(self) -> None:
        self.pruned = False                             # older packets were forgotten (all known or given up)
        self.next_ack = -math.inf                       # no acknowledgement round before this (``ack_batch_s``)
        self.order: list[tuple[int, int]] = []          # (cuc, seq) received, time order, each once
        self.unacked: list[tuple[int, int]] = []        # held back last time (sorted), then new arrivals
        #: every pair of neighbours in ``order`` with sequence counts missing between them, kept up to date by
        #: ``PacketTracker.add`` (and the pruning of ``order``), so that ``gaps`` need not walk ``order``
        self.live: set[tuple[tuple[int, int], tuple[int, int]]] = set()
        #: the gaps as ``PacketTracker.gaps`` last saw them: (left, right neighbour) -> [first seen, last req, n]
        self.gaps: dict[tuple[tuple[int, int], tuple[int, int]], list[float]] = {}

    def insert(self, i: int, item: tuple[int, int]) -> None:
        """Put ``item`` at ``order[i]`` (not the end), and update ``live`` for its new neighbours."""
        order = self.order
        order.insert(i, item)
        live = self.live
        seq = item[1]
        nxt = order[i + 1]
        if i > 0:
            p = order[i - 1]
            live.discard((p, nxt))
            if (seq - p[1] - 1) & 0x3FFF:
                live.add((p, item))
        if (nxt[1] - seq - 1) & 0x3FFF:
            live.add((item, nxt))


_NEW = object()


class PacketTracker:
    """Per-APID bookkeeping of what arrived: duplicates, acknowledgements, gaps.  Pure."""

    def __init__(self, gap_wait_s: float = 60.0, request_retry_s: float = 120.0, max_requests: int = 5,
                 dedup_memory: int = 200_000, no_request_apids: Iterable[int] = (), reack_s: float = 60.0,
                 max_rate: float = 500.0, ack_hold_s: float = 0.0, ack_batch_s: float = 0.0,
                 merge_packets: int = 0) -> None:
        self.ack_hold_s = ack_hold_s
        self.ack_batch_s = ack_batch_s
        self.merge_packets = merge_packets
        self.reack_s = reack_s
        self.max_rate = max_rate
        self.gap_wait_s = gap_wait_s
        self.request_retry_s = request_retry_s
        self.max_requests = max_requests
        self.dedup_memory = dedup_memory
        self.no_request = frozenset(no_request_apids)
        self.apids: dict[int, _Apid] = {}
        #: (APID, seq, CUC) -> when it was last acknowledged (None: not yet)
        self._seen: OrderedDict[tuple[int, int, int], float | None] = OrderedDict()
        self.counters: Counter[str] = Counter()

    def add(self, packet: bytes, now: float) -> bool:
        """Record a packet; False if it is a duplicate (already received)."""
        if len(packet) < 6:
            return True
        apid, seq, cuc = _key_of(packet)
        k = (apid, seq, cuc)
        seen = self._seen
        acked = seen.get(k, _NEW)
        if acked is not _NEW:
            self.counters["duplicates"] += 1
            a = self.apids.get(apid)
            if a is not None and acked is not None and now - acked >= self.reack_s:
                # still on board long after its acknowledgement went up: acknowledge it again
                seen[k] = None
                a.unacked.append((cuc, seq))
                self.counters["reacks"] += 1
            return False
        a = self.apids.get(apid)
        if a is None:
            a = self.apids[apid] = _Apid()
        item = (cuc, seq)
        order = a.order
        copy = False
        if not order or item > order[-1]:
            if order:
                p = order[-1]
                if (seq - p[1] - 1) & 0x3FFF:
                    a.live.add((p, item))
            order.append(item)
        elif a.pruned and item < order[0]:
            self.counters["late_packets"] += 1         # behind what was settled: acknowledge, no gap search
        else:
            i = bisect.bisect_left(order, item)
            if order[i] == item:
                # still listed though the de-duplication memory forgot it (a very late copy): a duplicate, whose
                # acknowledgement is not known any more: acknowledge it again
                copy = True
            else:
                a.insert(i, item)
        seen[k] = None
        if len(seen) > self.dedup_memory:
            seen.popitem(last=False)
        a.unacked.append(item)   # (``acks`` drops the second entry of a packet listed twice)
        self.counters["duplicates" if copy else "packets"] += 1
        return not copy

    def acks(self, now: float = 0.0) -> list[RangeRequest]:
        """Ranges of consecutive sequence counts received and not yet acknowledged (then marked acknowledged).

        An APID's round comes at most every ``ack_batch_s``, except while packets held back behind a young gap
        (``ack_hold_s``) wait: those go as soon as the hold ends.
        """
        out = []
        seen = self._seen
        hold = self.ack_hold_s
        for apid, a in sorted(self.apids.items()):
            if not a.unacked or now < a.next_ack:
                continue
            items = sorted(a.unacked)       # the packets held last time (sorted) and the new ones: two runs
            a.unacked = []
            if hold > 0:
                young = [p for (p, _q), g in a.gaps.items() if g[2] < self.max_requests and now - g[0] < hold]
                if young:
                    i = bisect.bisect_right(items, min(young))   # the packets behind the barrier wait
                    a.unacked = items[i:]
                    del items[i:]
                    self.counters["acks_held"] += len(a.unacked)
            if not a.unacked:
                a.next_ack = now + self.ack_batch_s
            if not items:
                continue
            first = prev = items[0]
            n = 0
            for it in items:
                if n and it == prev:
                    continue            # listed twice (a packet again after the de-duplication memory forgot it)
                cuc, seq = it
                k = (apid, seq, cuc)
                if k in seen:
                    seen[k] = now
                if n and (seq != (prev[1] + 1) & 0x3FFF or n == 8192):
                    out.append(RangeRequest("ack", apid, first[1], prev[1], first[0] / 65536.0, prev[0] / 65536.0))
                    first = it
                    n = 0
                prev = it
                n += 1
            out.append(RangeRequest("ack", apid, first[1], prev[1], first[0] / 65536.0, prev[0] / 65536.0))
        self.counters["ack_ranges"] += len(out)
        return out

    def gaps(self, now: float) -> list[RangeRequest]:
        """Gaps old enough to ask for, and asked for again after ``request_retry_s`` (at most ``max_requests``).

        A gap is a pair of neighbours in an APID's time order with counts missing between them; it is new
        (first seen ``now``) when this call finds it, and forgotten once a packet arrives between the two.
        """
        out: list[RangeRequest] = []
        max_requests = self.max_requests
        for apid, a in sorted(self.apids.items()):
            live = a.live
            gaps = a.gaps
            first_open = None
            prev = None                 # the previous gap (pair of neighbours) in time order
            # the request being made: (left neighbour of its first gap, its last gap, counts from one to the other,
            # whether more gaps may join it)
            req: tuple[tuple[int, int], tuple, int, bool] | None = None
            for key in sorted(live):
                if req is not None and prev != req[1]:
                    self._request(out, apid, req[0], req[1][1])       # another gap lies in between
                    req = None
                prev = key
                p, q = key
                missing = (q[1] - p[1] - 1) & 0x3FFF
                g = gaps.get(key)
                if g is None:
                    g = gaps[key] = [now, -math.inf, 0]
                    if missing > self.max_rate * max(1.0, (q[0] - p[0]) / 65536.0):
                        # more packets "missing" than the source could have made: its counter restarted
                        g[2] = max_requests
                        self.counters["counter_resets"] += 1
                    else:
                        self.counters["gaps_seen"] += 1
                if g[2] >= max_requests:
                    continue  # given up: reported once as lost
                if first_open is None:
                    first_open = key
                if apid in self.no_request or now - g[0] < self.gap_wait_s or now - g[1] < self.request_retry_s:
                    continue
                g[1] = now
                g[2] += 1
                if g[2] == max_requests:
                    self.counters["gaps_given_up"] += 1
                # only first requests are merged: a gap asked for again gets a range of its own, so that the
                # lander's "not held" answer (nothing found) settles it if it is packets the lander never kept
                first_request = g[2] == 1
                if req is not None:
                    between = ((p[1] - req[1][1][1]) & 0x3FFF) + 1      # packets from the last gap to this one
                    if first_request and req[3] and req[2] + between + missing <= 8192 \
                            and self._mergeable(apid, a, req[1][1], between):
                        req = (req[0], key, req[2] + between + missing, True)
                        self.counters["gaps_merged"] += 1
                        continue
                    self._request(out, apid, req[0], req[1][1])
                req = (p, key, missing, first_request)
            if req is not None:
                self._request(out, apid, req[0], req[1][1])
            if len(gaps) > len(live):       # every live pair is in gaps now: the others were filled
                for key in [k for k in gaps if k not in live]:
                    del gaps[key]
            # forget the contiguous prefix (keep its last packet as the left neighbour of what follows); the
            # packets not acknowledged yet are listed apart (``unacked``), so this never loses an acknowledgement
            order = a.order
            cut = bisect.bisect_left(order, first_open[0]) if first_open is not None else len(order) - 1
            if cut > 0:
                del order[:cut]
                a.pruned = True
                # the pairs cut off are the given-up gaps before the first open one
                a.live = {k for k in live if k >= first_open} if first_open is not None else set()
        self.counters["retransmit_ranges"] += len(out)
        return out

    @staticmethod
    def _request(out: list[RangeRequest], apid: int, p: tuple[int, int], q: tuple[int, int]) -> None:
        """Ask for the counts between packets ``p`` and ``q`` (``(cuc, seq)``), at most 8192 a range."""
        first = (p[1] + 1) & 0x3FFF
        n = (q[1] - p[1] - 1) & 0x3FFF
        while n > 0:
            m = min(n, 8192)
            out.append(RangeRequest("retransmit", apid, first, (first + m - 1) & 0x3FFF, p[0] / 65536.0,
                                    q[0] / 65536.0))
            first = (first + m) & 0x3FFF
            n -= m

    def _mergeable(self, apid: int, a: _Apid, q0: tuple[int, int], between: int) -> bool:
        """May a request ask again for the ``between`` packets from ``q0`` on (a run without gaps): few enough,
        and none acknowledged yet (so the lander still has them all)?"""
        if between > self.merge_packets:
            return False
        seen = self._seen
        i = bisect.bisect_left(a.order, q0)
        return all(seen.get((apid, seq, cuc), _NEW) is None for cuc, seq in a.order[i:i + between])

    def not_held(self, apid: int, first: int, found: int) -> bool:
        """The lander answered a request starting at ``first`` with ``found`` packets: none held means the
        gap is packets that were never meant for the ground (e.g. a unit's reports the lander kept): settle
        it now instead of asking again.  True if such an open gap was settled."""
        a = self.apids.get(apid)
        if a is None or found:
            return False
        for (p, _q), g in a.gaps.items():
            if (p[1] + 1) & 0x3FFF == first and g[2] < self.max_requests:
                g[2] = self.max_requests
                self.counters["gaps_not_held"] += 1
                return True
        return False

    def open_gaps(self) -> int:
        return sum(1 for a in self.apids.values() for g in a.gaps.values() if g[2] < self.max_requests)


def dictionary_tc_factory(dictionary: Any, source_id: int = 0, ack_flags: int = 0) -> TcFactory:
    """TCs from the mission dictionary; ``ack_flags`` 0: no PUS-1 reports except failures."""
    seq = itertools.count()

    def make(name: str, args: dict) -> bytes:
        cmd = dictionary.command(name)
        data = dictionary.encode_command(cmd, args)
        return PusTc(cmd.apid, cmd.service, cmd.subservice, data, seq_count=next(seq) & 0x3FFF,
                     source_id=source_id, ack_flags=ack_flags).pack()
    return make


class SpaceLinkGround:
    """See the module docstring.  Driven like a node: ``receive``, ``next_deadline``, ``run_due``, ``take_output``."""

    def __init__(self, config: GroundLinkConfig | None = None, make_tc: TcFactory | None = None,
                 start: float = 0.0, store_and_forward: bool = True) -> None:
        self.cfg = cfg = config or GroundLinkConfig()
        self.fop = Fop1(cfg.scid, cfg.tc_vcid, cfg.fop_window, cfg.t1_s, cfg.tx_limit, cfg.timeout_type)
        self.cop = CopUplink(self.fop, cfg.settle_s, start)
        self.segmenter = TcSegmenter(cfg.max_tc_frame) if cfg.segment_header else None
        self._room = cfg.max_tc_frame - 7 - (1 if cfg.segment_header else 0)
        self._tc_queue: deque[tuple[int, bytes]] = deque()
        self._fdu_tickets: dict[int, list[int]] = {}
        self._next_ticket = 0
        self.deframer = CaduDeframer(cfg.tm, cfg.vcids)
        self.reassemblers = {v: VcReassembler(cfg.max_packet) for v in cfg.vcids}
        self.tracker = PacketTracker(cfg.gap_wait_s, cfg.request_retry_s, cfg.max_requests, cfg.dedup_memory,
                                     cfg.no_request_apids, cfg.reack_s, cfg.max_packet_rate, cfg.ack_hold_s,
                                     cfg.ack_hold_s if cfg.ack_batch_s is None else cfg.ack_batch_s,
                                     cfg.request_merge_packets)
        self.make_tc = make_tc
        self.store_and_forward = store_and_forward and make_tc is not None
        self._packets: deque[tuple[int, bytes]] = deque()
        self._out: list[bytes] = []
        self._events: list[UplinkEvent] = []
        self._last_mc: int | None = None
        self._last_mc_at = -math.inf
        self._ocf: bytes | None = None           # the last OCF seen and its CLCW (None: not a valid one)
        self._ocf_clcw: Clcw | None = None
        # COP-1 (and its FOP-1) changes state only when this class calls it (submit, submit_bd, on_clcw,
        # run_due), and each such call goes through _cop_touched: until the next one, its frames and events
        # are collected already and next_deadline() is what it was
        self._cop_dirty = False
        self._deadline: float | None = None
        self._next_ack = start + cfg.ack_interval_s
        self._pending_requests: deque[RangeRequest] = deque()
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()

    # -- uplink ------------------------------------------------------------------------------------
    def send_tc(self, packet: bytes, now: float) -> int:
        """Queue a telecommand for sequence-controlled (AD) transfer; returns its ticket.

        Telecommands leave in the order given.  While FOP-1's window is full
        they wait here, and short ones then share a frame (packet blocking).
        Delivery to FARM-1 is reported as an ``UplinkEvent("delivered", ticket)``.
        """
        ticket = self._enqueue(packet)
        self._pump(now)
        self._collect()
        return ticket

    def _enqueue(self, packet: bytes) -> int:
        if len(packet) < 7:
            raise ValueError(f"not a space packet ({len(packet)} octets)")
        ticket = self._next_ticket
        self._next_ticket += 1
        self._tc_queue.append((ticket, bytes(packet)))
        self.counters["tcs_submitted"] += 1
        return ticket

    def send_bypass(self, packet: bytes, now: float) -> None:
        """Expedited (BD) transfer: no sequence control, no retransmission (one frame only)."""
        fdus = self.segmenter.split(packet) if self.segmenter else [bytes(packet)]
        if len(fdus) != 1:
            raise ValueError("a bypass telecommand must fit in one frame")
        self.cop.submit_bd(fdus[0], now)
        self._cop_touched()
        self._collect()

    @property
    def uplink_pending(self) -> int:
        """Telecommands not yet known to be delivered."""
        return len(self._tc_queue) + sum(len(t) for t in self._fdu_tickets.values())

    def _pump(self, now: float) -> None:
        """Turn queued telecommands into frame data units while COP-1 can take them; the caller then collects
        (``_collect``) before it returns, so that every public method leaves the output and events complete."""
        q = self._tc_queue
        cop = self.cop
        room = self._room
        # FDUs are made just in time (when FOP-1 would send them at once), so that queued TCs share frames
        while q and not cop.backlog and cop.phase == CopUplink.RUNNING and self.fop.window_open:
            ticket, pkt = q[0]
            if len(pkt) > room or not self.cfg.blocking:
                q.popleft()
                fdus = self.segmenter.split(pkt) if self.segmenter else [pkt]
                tickets = [ticket]
            else:
                body = bytearray()
                tickets = []
                while q and len(q[0][1]) <= room - len(body):
                    t, p = q.popleft()
                    body += p
                    tickets.append(t)
                    if not self.cfg.blocking:
                        break
                fdus = [bytes([0xC0]) + bytes(body)] if self.segmenter else [bytes(body)]
            for i, f in enumerate(fdus):
                fid = cop.submit(f, now)
                self._cop_touched()
                # the tickets are delivered with the last segment
                self._fdu_tickets[fid] = tickets if i == len(fdus) - 1 else []

    def _cop_touched(self) -> None:
        self._cop_dirty = True
        self._deadline = None

    def _collect(self) -> None:
        if not self._cop_dirty:
            return
        self._cop_dirty = False
        for f in self.cop.take_frames():
            self._out.append(cltu_encode(f))
            self.counters["cltus"] += 1
        for e in self.cop.take_events():
            if e.kind in ("delivered", "indeterminate") and e.fdu_id is not None:
                for t in self._fdu_tickets.pop(e.fdu_id, ()):
                    self._events.append(UplinkEvent(e.kind, t))
                    self.counters[f"tcs_{e.kind}"] += 1
            else:
                self._events.append(e)

    def take_output(self) -> list[bytes]:
        self._collect()
        out = self._out
        self._out = []
        return out

    def take_events(self) -> list[UplinkEvent]:
        self._collect()
        out = self._events
        self._events = []
        return out

    # -- downlink ----------------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """CADU octets from the downlink.  Never raises for any content."""
        self._frames(self.deframer.feed(data), now)

    def line_idle(self, now: float) -> None:
        self._frames(self.deframer.flush(), now)

    def _frames(self, items: list[TmFrame | Dropped], now: float) -> None:
        if not items:
            return
        reassemblers = self.reassemblers
        add = self.tracker.add if self.store_and_forward else None
        packets = self._packets
        drops = self.drops
        queue = self._tc_queue
        for f in items:
            if type(f) is Dropped:
                drops[f.reason] += 1
                continue
            if f.ocf is not None:
                self._clcw(f, now)
            if queue:
                self._pump(now)   # the CLCW may have opened FOP-1's window
            r = reassemblers.get(f.vcid)
            if r is None:
                continue
            vcid = f.vcid
            for p in r.feed(f):
                if type(p) is Dropped:
                    drops[p.reason] += 1
                    continue
                if add is not None and not add(p, now):
                    continue
                packets.append((vcid, p))
        self._collect()

    def _clcw(self, f: TmFrame, now: float) -> None:
        ocf = f.ocf
        if ocf == self._ocf:
            c = self._ocf_clcw      # the same word as the last frame's (most are): its CLCW is immutable
        else:
            c = f.clcw
            self._ocf, self._ocf_clcw = ocf, c
        if c is None:
            return
        last = self._last_mc
        if last is not None and now - self._last_mc_at < self.cfg.clcw_stale_s \
                and not 0 < ((f.mc_count - last) & 0xFF) < 128:
            self.counters["clcw_stale"] += 1
            return
        self._last_mc = f.mc_count
        self._last_mc_at = now
        self.counters["clcws"] += 1
        self.cop.on_clcw(c, now)
        self._cop_touched()

    def take_packets(self) -> list[tuple[int, bytes]]:
        """(virtual channel, packet) in arrival order, duplicates removed."""
        out = list(self._packets)
        self._packets.clear()
        return out

    # -- time ----------------------------------------------------------------------------------------
    def next_deadline(self) -> float:
        """When :meth:`run_due` has something to do.  Asked at every round of a runner: cached until COP-1
        is called again (``_cop_touched``) or ``run_due`` moves the next store-and-forward time."""
        t = self._deadline
        if t is None:
            t = self.cop.next_deadline()
            if self.store_and_forward and self._next_ack < t:
                t = self._next_ack
            self._deadline = t
        return t

    def run_due(self, now: float) -> None:
        self.cop.run_due(now)
        self._cop_touched()
        if self.store_and_forward and now >= self._next_ack:
            self._next_ack = now + self.cfg.ack_interval_s
            self._store_and_forward(now)
        self._pump(now)
        self._collect()

    def _store_and_forward(self, now: float) -> None:
        assert self.make_tc is not None
        q = self._pending_requests
        gaps = self.tracker.gaps(now)        # first: the gaps seen now may hold acknowledgements back
        q.extend(self.tracker.acks(now))
        q.extend(gaps)
        for _ in range(min(len(q), self.cfg.max_requests_per_interval)):
            r = q.popleft()
            name = "STORE_ACK_RANGE" if r.kind == "ack" else "STORE_RETRANSMIT_RANGE"
            # queued together, so that they share TC frames (blocking) instead of taking one each
            self._enqueue(self.make_tc(name, r.args()))
            self.counters[f"{r.kind}_requests"] += 1

    def stats(self) -> dict[str, int]:
        d: dict[str, int] = dict(self.counters)
        d.update({f"fop_{k}": v for k, v in self.fop.stats().items()})
        d.update({f"tm_{k}": v for k, v in self.deframer.stats().items()})
        for v, r in self.reassemblers.items():
            d.update({f"vc{v}_{k}": n for k, n in r.stats().items()})
        d.update({f"tracker_{k}": v for k, v in self.tracker.counters.items()})
        d["cop_pending"] = self.cop.pending
        d["cop_delivered"] = self.cop.delivered
        d["cop_indeterminate"] = self.cop.indeterminate
        return d


def cop_status(link: SpaceLinkGround) -> dict[str, Any]:
    """The ground end's view of the link for operators: FOP-1 state, COP-1 counters, discarded downlink
    frames by reason, downlink counters, the gap tracker and the store-and-forward requests."""
    ls = link.stats()
    return {
        "fop_state": FopState(link.fop.state).name,
        "cop": {"tcs_submitted": ls.get("tcs_submitted", 0), "delivered": ls.get("tcs_delivered", 0),
                "indeterminate": ls.get("tcs_indeterminate", 0), "pending": link.uplink_pending,
                "cltus": ls.get("cltus", 0), "recoveries": link.cop.recoveries,
                "alerts": {k[len("fop_alert_"):]: v for k, v in ls.items() if k.startswith("fop_alert_") and v},
                **{k: v for k, v in ls.items() if k.startswith("fop_") and not k.startswith("fop_alert_")}},
        "downlink_discarded": {k: v for k, v in link.drops.items() if v},
        "downlink": {k: v for k, v in ls.items() if k.startswith(("tm_", "vc"))},
        "tracker": {k[len("tracker_"):]: v for k, v in ls.items() if k.startswith("tracker_")},
        "store_requests": {"ack": ls.get("ack_requests", 0), "retransmit": ls.get("retransmit_requests", 0),
                           "open_gaps": link.tracker.open_gaps()},
    }


def format_link_status(st: dict[str, Any]) -> str:
    """One line for a console: contact, FOP-1, COP-1 counters, discarded frames, store fill levels."""
    parts = [f"contact {'yes' if st.get('contact') else 'no'}"]
    if not st.get("space_link"):
        return "link: " + parts[0] + ", packet link (no COP-1)"
    cop = st.get("cop", {})
    parts.append(f"FOP-1 {st.get('fop_state', '?')}")
    parts.append(f"TCs {cop.get('delivered', 0)}/{cop.get('tcs_submitted', 0)} delivered, "
                 f"{cop.get('pending', 0)} pending, {cop.get('indeterminate', 0)} indeterminate")
    if cop.get("alerts"):
        parts.append("alerts " + ", ".join(f"{k} {v}" for k, v in sorted(cop["alerts"].items())))
    disc = st.get("downlink_discarded") or {}
    parts.append("frames discarded " + (", ".join(f"{k} {v}" for k, v in sorted(disc.items())) or "none"))
    req = st.get("store_requests") or {}
    parts.append(f"gaps open {req.get('open_gaps', 0)}")
    stores = st.get("stores") or {}
    if stores:
        parts.append("stores " + ", ".join(f"{k} {float(v.get('fill_pct') or 0):.1f}%" for k, v in sorted(stores.items())))
    else:
        parts.append("stores not reported yet")
    return "link: " + "; ".join(parts)
