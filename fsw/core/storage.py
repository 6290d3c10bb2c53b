"""On-board storage and retrieval (PUS service 15): packet stores that keep everything until the ground has it.

Pure.  Persistence goes through a :class:`~fsw.core.state.StateStore`.

What a store does
-----------------
* Every telemetry packet bound for the ground is routed to one store (by a
  router function: APID, service, subtype -> store id) and kept there with a
  store sequence number (SSN), its APID, its 14-bit sequence count and its
  CUC time.  Packets also sent live on the real-time channel are stored as
  *sent*; the others wait for playback.
* Playback (:meth:`StorageManager.next_playback`) hands out packets store by
  store in priority order (lower number first), retransmissions before new
  data, oldest first.  A packet handed out is *sent*; it is sent again if
  the ground has not acknowledged it within ``ack_timeout_s``, if the ground
  asks for it, or if the radio loses the link right after (:meth:`rf_lost`).
* Nothing is deleted before the ground has it: packets leave a store only
  when the ground acknowledges them (:meth:`ack`, a range of sequence counts
  of one APID within a time window), when the ground deletes explicitly
  (:meth:`delete_up_to`), or under the ``overwrite`` policy of a full store.
* A full store follows its policy and says so: ``stop`` refuses new
  packets, ``overwrite`` deletes its oldest packets.  Both are counted per
  store (``rejected_full``, ``overwritten``) and raise the ``STORE_FULL``
  event once per episode (an episode ends when the fill drops below 90 %).

Keys of the ground's requests: an APID, a range of 14-bit sequence counts
(at most 8192, so it is never ambiguous) and a CUC time window.  The ground
knows the times of the packets on either side of a gap, so it can always
bracket what it misses; the time window keeps a range unambiguous across
sequence-count wrap-arounds.

Persistence: an append-only log
--------------------------------
Each store writes, at each :meth:`flush`, one log record with the packets
stored since the last flush and the SSNs deleted since then (tombstones),
then a small meta record (first and next log record, next SSN, the lowest
live SSN, counters).  Nothing already written is ever rewritten; a record is
deleted once none of its packets is alive and none of its tombstones is
still needed.  A restart reads the meta record, then the log records, and
also picks up a log record written just before a crash that the meta record
does not mention yet.  Records carry a CRC: a torn record reads as missing
and is reported (``lost_on_restore``), it never yields wrong packets.
Packets stored after the last flush are lost by a crash: flush often
(``flush_interval_s``, or ``flush_every`` packets).
"""

from __future__ import annotations

import math
import struct
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Final, Iterable, Iterator

from ..protocol.crc import crc16
from .state import StateStore, load_record, seal_json

STOP: Final = "stop"
OVERWRITE: Final = "overwrite"
POLICIES: Final = (STOP, OVERWRITE)
#: a store is "full" again only after its fill dropped below this fraction
FULL_HYSTERESIS: Final = 0.9
MAX_RANGE: Final = 8192

UNSENT: Final = 0
SENT: Final = 1

_LOG_MAGIC = b"PS15"
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">II")

#: router(apid, service, subtype) -> store id, or None to keep the packet out of storage
Router = Callable[[int, "int | None", "int | None"], "int | None"]


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_id: int
    name: str
    capacity: int
    priority: int = 10
    policy: str = STOP

    def __post_init__(self) -> None:
        if not 1 <= self.store_id <= 255:
            raise ValueError(f"store id {self.store_id} outside 1..255 (0 means every store)")
        if self.capacity < 64:
            raise ValueError(f"store {self.name}: capacity {self.capacity} B is too small")
        if self.policy not in POLICIES:
            raise ValueError(f"store {self.name}: policy {self.policy!r} must be one of {POLICIES}")


@dataclass(slots=True)
class Entry:
    ssn: int
    apid: int
    seq: int
    cuc: int            # CUC time in ticks of 2**-16 s
    data: bytes
    state: int = UNSENT
    sent_at: float = -math.inf
    log: int | None = None   # log record holding it (None: not flushed yet)


def packet_keys(packet: bytes) -> tuple[int, int, int | None, int | None, int]:
    """(APID, sequence count, service, subtype, CUC ticks) of a packet, with defaults for short ones."""
    n = len(packet)
    if n < 6:
        return 0x7FF, 0, None, None, 0
    apid = ((packet[0] << 8) | packet[1]) & 0x7FF
    seq = ((packet[2] << 8) | packet[3]) & 0x3FFF
    if not (packet[0] >> 3) & 1 or n < 19:
        return apid, seq, None, None, 0
    cuc = (int.from_bytes(packet[13:17], "big") << 16) | ((packet[17] << 8) | packet[18])
    return apid, seq, packet[7], packet[8], cuc


def to_ticks(t: float) -> int:
    """Mission seconds -> CUC ticks (floored, as the CUC encoder does); clamped to the CUC range."""
    if t != t or t <= 0:
        return 0
    if t >= 2.0 ** 32:
        return (1 << 48) - 1
    return int(t * 65536.0)


def _seal_log(entries: list[Entry], tombs: list[int]) -> bytes:
    parts = [_LOG_MAGIC, _U32.pack(len(entries))]
    for e in entries:
        parts.append(_ENTRY.pack(e.ssn, len(e.data)))
        parts.append(e.data)
    parts.append(_U32.pack(len(tombs)))
    parts.extend(_U32.pack(t) for t in tombs)
    body = b"".join(parts)
    return body + crc16(body).to_bytes(2, "big")


def _unseal_log(raw: bytes | None) -> tuple[list[tuple[int, bytes]], list[int]] | None:
    """The entries and tombstones of a log record, or None when missing, torn or corrupt."""
    if not raw or len(raw) < 14 or raw[:4] != _LOG_MAGIC:
        return None
    if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "big"):
        return None
    body = memoryview(raw)[:-2]
    n = len(body)
    pos = 4
    try:
        (count,) = _U32.unpack_from(body, pos)
        pos += 4
        entries = []
        for _ in range(count):
            ssn, ln = _ENTRY.unpack_from(body, pos)
            pos += 8
            if pos + ln > n:
                return None
            entries.append((ssn, bytes(body[pos:pos + ln])))
            pos += ln
        (nt,) = _U32.unpack_from(body, pos)
        pos += 4
        if pos + 4 * nt != n:
            return None
        tombs = [_U32.unpack_from(body, pos + 4 * i)[0] for i in range(nt)]
    except struct.error:
        return None
    return entries, tombs


def _unchanged() -> None:
    pass


class PacketStore:
    """One packet store.  Use it through :class:`StorageManager`.

    ``on_change()`` is called after every change that can alter what the
    store's queries answer (:meth:`has_playback`, :meth:`next_expiry`): an
    entry added or deleted, sent or unsent, a queue or the sent FIFO grown,
    or an item taken out of them other than by those queries' own trimming.
    The manager counts these calls (:attr:`StorageManager.revision`) to know
    when an answer it remembers still holds.
    """

    COUNTERS: Final = ("stored", "rejected_full", "refused_disabled", "overwritten", "acked", "deleted",
                       "played", "realtime", "resent", "requested", "not_held", "lost_on_restore")

    def __init__(self, cfg: StoreConfig, state: StateStore | None, key_prefix: str,
                 on_change: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self._changed = on_change or _unchanged
        self.state = state
        self.prefix = f"{key_prefix}/{cfg.store_id}"
        self.enabled = True
        self.entries: dict[int, Entry] = {}
        self.by_key: dict[tuple[int, int], list[int]] = {}
        self.used = 0
        self.next_ssn = 0
        self._floor = 0
        self.fresh: deque[int] = deque()      # not yet sent, in SSN order
        self.retx: deque[int] = deque()       # to send again (requests, time-outs), before fresh ones
        self.sent_fifo: deque[tuple[float, int]] = deque()
        self.counters: Counter[str] = Counter({k: 0 for k in self.COUNTERS})
        self.full = False
        self.n_sent = 0
        # persistence
        self.first_log = 0
        self.next_log = 0
        self._log_live: dict[int, int] = {}
        self._log_max_tomb: dict[int, int] = {}
        self._pending: list[int] = []
        self._tombs: list[int] = []
        self._meta_dirty = False

    # -- queries ---------------------------------------------------------------------------
    @property
    def floor(self) -> int:
        """Lowest SSN that may still be alive."""
        while self._floor < self.next_ssn and self._floor not in self.entries:
            self._floor += 1
        return self._floor

    @property
    def queued(self) -> int:
        """Packets waiting for (re)transmission."""
        return len(self.entries) - self.n_sent

    @property
    def unacked(self) -> int:
        """Packets sent and not acknowledged yet."""
        return self.n_sent

    def _mark_sent(self, e: Entry, now: float) -> None:
        if e.state != SENT:
            self.n_sent += 1
        e.state = SENT
        e.sent_at = now
        self.sent_fifo.append((now, e.ssn))
        self._changed()

    def _mark_unsent(self, e: Entry) -> None:
        if e.state == SENT:
            self.n_sent -= 1
        e.state = UNSENT
        e.sent_at = -math.inf
        self._changed()

    def fill(self) -> float:
        return self.used / self.cfg.capacity

    def has_playback(self) -> bool:
        """Anything to play back; drops the stale heads of the queues (not a change: see the class)."""
        self._trim(self.retx)
        self._trim(self.fresh)
        return bool(self.retx or self.fresh)

    def _trim(self, q: deque[int]) -> None:
        ent = self.entries
        while q and (q[0] not in ent or ent[q[0]].state != UNSENT):
            q.popleft()

    # -- storing ---------------------------------------------------------------------------------
    def add(self, packet: bytes, keys: tuple, now: float, sent: bool, events: list) -> int | None:
        if not self.enabled:
            self.counters["refused_disabled"] += 1
            return None
        size = len(packet)
        cap = self.cfg.capacity
        if size > cap:
            self.counters["rejected_full"] += 1
            self._full_event(events)
            return None
        if self.used + size > cap:
            if self.cfg.policy == STOP:
                self.counters["rejected_full"] += 1
                self._full_event(events)
                return None
            self._full_event(events)
            while self.used + size > cap and self.entries:
                self._delete(self.floor, "overwritten")
        elif self.full and self.used + size < FULL_HYSTERESIS * cap:
            self.full = False
        apid, seq, _, _, cuc = keys
        ssn = self.next_ssn
        self.next_ssn += 1
        e = Entry(ssn, apid, seq, cuc, bytes(packet))
        self.entries[ssn] = e
        self.by_key.setdefault((apid, seq), []).append(ssn)
        self.used += size
        self.counters["stored"] += 1
        self._pending.append(ssn)
        if sent:
            self._mark_sent(e, now)
            self.counters["realtime"] += 1
        else:
            self.fresh.append(ssn)
            self._changed()
        return ssn

    def _full_event(self, events: list) -> None:
        if not self.full:
            self.full = True
            events.append(("STORE_FULL", {"STORE": self.cfg.store_id, "STORE_POLICY": self.cfg.policy.upper(),
                                          "STORE_USED": min(self.used, 0xFFFFFFFF)}))

    def _delete(self, ssn: int, counter: str) -> None:
        e = self.entries.pop(ssn)
        if e.state == SENT:
            self.n_sent -= 1
        lst = self.by_key.get((e.apid, e.seq))
        if lst is not None:
            lst.remove(ssn)
            if not lst:
                del self.by_key[(e.apid, e.seq)]
        self.used -= len(e.data)
        self.counters[counter] += 1
        if e.log is None:
            try:
                self._pending.remove(ssn)
            except ValueError:
                pass
        else:
            self._log_live[e.log] -= 1
            self._tombs.append(ssn)
        self._meta_dirty = True
        if self.full and counter != "overwritten" and self.used < FULL_HYSTERESIS * self.cfg.capacity:
            self.full = False
        self._changed()

    # -- playback -----------------------------------------------------------------------------------
    def take(self, now: float) -> Entry | None:
        """The next packet to play back (retransmissions first), marked sent; None if nothing."""
        for q in (self.retx, self.fresh):
            if q:
                self._trim(q)
                if q:
                    e = self.entries[q.popleft()]
                    self._mark_sent(e, now)
                    self.counters["played"] += 1
                    if q is self.retx:
                        self.counters["resent"] += 1
                    return e
        return None

    def requeue(self, ssn: int, front: bool = True) -> bool:
        e = self.entries.get(ssn)
        if e is None:
            return False
        if e.state == SENT:
            self._mark_unsent(e)
            self.retx.append(ssn)
        elif front:
            # waiting already: move it ahead of the fresh data (a stale copy left in ``fresh`` is skipped)
            self.retx.append(ssn)
            self._changed()
        return True

    def expire(self, now: float, timeout: float) -> int:
        """Send again what was sent ``timeout`` ago and never acknowledged."""
        n = 0
        fifo = self.sent_fifo
        if not fifo or fifo[0][0] + timeout > now:
            return 0
        while fifo and fifo[0][0] + timeout <= now:
            t, ssn = fifo.popleft()
            e = self.entries.get(ssn)
            if e is not None and e.state == SENT and e.sent_at == t:
                self._mark_unsent(e)
                self.retx.append(ssn)
                n += 1
        self._changed()
        return n

    def next_expiry(self, timeout: float) -> float:
        """When the oldest packet sent and not acknowledged times out; drops the stale head of the FIFO."""
        fifo = self.sent_fifo
        while fifo:
            t, ssn = fifo[0]
            e = self.entries.get(ssn)
            if e is not None and e.state == SENT and e.sent_at == t:
                return t + timeout
            fifo.popleft()
        return math.inf

    # -- ground requests ---------------------------------------------------------------------------
    def matching(self, apid: int, first: int, last: int, t_from: int, t_to: int) -> Iterator[Entry]:
        count = ((last - first) & 0x3FFF) + 1
        get = self.by_key.get
        for i in range(count):
            ssns = get((apid, (first + i) & 0x3FFF))
            if ssns:
                for ssn in list(ssns):
                    e = self.entries[ssn]
                    if t_from <= e.cuc <= t_to:
                        yield e

    # -- persistence ----------------------------------------------------------------------------------
    def _key(self, n: int) -> str:
        return f"{self.prefix}/r{n}"

    def flush(self) -> bool:
        """Write what changed since the last flush; True if anything was written."""
        if self.state is None:
            self._pending.clear()
            self._tombs.clear()
            return False
        if not self._pending and not self._tombs and not self._meta_dirty:
            return False
        wrote = False
        if self._pending or self._tombs:
            n = self.next_log
            entries = [self.entries[s] for s in self._pending]
            self.state.save(self._key(n), _seal_log(entries, self._tombs))
            for e in entries:
                e.log = n
            self._log_live[n] = len(entries)
            self._log_max_tomb[n] = max(self._tombs, default=-1)
            self.next_log = n + 1
            self._pending = []
            self._tombs = []
            wrote = True
        floor = self.floor
        dead = []
        while self.first_log < self.next_log and self._log_live.get(self.first_log, 0) == 0 \
                and self._log_max_tomb.get(self.first_log, -1) < floor:
            dead.append(self.first_log)
            self._log_live.pop(self.first_log, None)
            self._log_max_tomb.pop(self.first_log, None)
            self.first_log += 1
        self._save_meta()
        for n in dead:
            self._erase(self._key(n))
        return wrote or bool(dead)

    def _erase(self, key: str) -> None:
        assert self.state is not None
        delete = getattr(self.state, "delete", None)
        if callable(delete):
            delete(key)
        else:
            self.state.save(key, b"")

    def meta(self) -> dict[str, Any]:
        """The meta record (what :meth:`restore` reads first)."""
        return {"v": 1, "first_log": self.first_log, "next_log": self.next_log, "next_ssn": self.next_ssn,
                "floor": self.floor, "enabled": self.enabled,
                "counters": {k: int(self.counters[k]) for k in self.COUNTERS}}

    #: :meth:`meta` as JSON text, sorted keys, no spaces (what :func:`~fsw.core.state.seal` writes), fast
    _META_JSON: Final = ('{"counters":{' + ",".join(f'"{k}":%d' for k in sorted(COUNTERS)) + '},'
                         '"enabled":%s,"first_log":%d,"floor":%d,"next_log":%d,"next_ssn":%d,"v":1}')
    _COUNTERS_SORTED: Final = tuple(sorted(COUNTERS))

    def _save_meta(self) -> None:
        """Write the meta record; at every flush, so encoded by hand (a test checks it against json.dumps)."""
        assert self.state is not None
        c = self.counters
        text = self._META_JSON % (*[c[k] for k in self._COUNTERS_SORTED], "true" if self.enabled else "false",
                                  self.first_log, self.floor, self.next_log, self.next_ssn)
        self.state.save(f"{self.prefix}/m", seal_json(text.encode()))
        self._meta_dirty = False

    def restore(self, events: list) -> int:
        """Reload the store after a restart; returns the number of packets recovered."""
        if self.state is None:
            return 0
        meta = load_record(self.state, f"{self.prefix}/m") or {}
        first = int(meta.get("first_log", 0))
        nxt = int(meta.get("next_log", 0))
        floor = int(meta.get("floor", 0))
        next_ssn = int(meta.get("next_ssn", 0))
        self.enabled = bool(meta.get("enabled", True))
        for k, v in (meta.get("counters") or {}).items():
            if k in self.COUNTERS and isinstance(v, int):
                self.counters[k] = v
        loaded: dict[int, tuple[list[tuple[int, bytes]], list[int]]] = {}
        lost_records = 0
        n = first
        while True:
            rec = _unseal_log(self.state.load(self._key(n)))
            if rec is None:
                if n >= nxt:
                    break       # nothing written beyond what the meta record knows
                lost_records += 1
            else:
                loaded[n] = rec
            n += 1
        tombs: set[int] = set()
        for n, (_, ts) in loaded.items():
            tombs.update(ts)
        raw: dict[int, tuple[int, bytes]] = {}
        for n, (ents, _) in sorted(loaded.items()):
            for ssn, data in ents:
                if ssn >= floor and ssn not in tombs:
                    raw[ssn] = (n, data)
                next_ssn = max(next_ssn, ssn + 1)
        self.first_log = first
        self.next_log = max(nxt, max(loaded, default=first - 1) + 1)
        self.next_ssn = next_ssn
        self._floor = floor
        self._log_live = {n: 0 for n in range(self.first_log, self.next_log)}
        self._log_max_tomb = {n: max(loaded[n][1], default=-1) if n in loaded else -1
                              for n in range(self.first_log, self.next_log)}
        for ssn in sorted(raw):
            n, data = raw[ssn]
            apid, seq, _, _, cuc = packet_keys(data)
            e = Entry(ssn, apid, seq, cuc, data, log=n)
            self.entries[ssn] = e
            self.by_key.setdefault((apid, seq), []).append(ssn)
            self.used += len(data)
            self._log_live[n] += 1
            self.fresh.append(ssn)
        if lost_records:
            self.counters["lost_on_restore"] += lost_records
        if self.entries or lost_records:
            events.append(("STORE_RESTORED", {"STORE": self.cfg.store_id, "STORE_PACKETS": len(self.entries),
                                              "STORE_LOST_RECORDS": lost_records}))
        self._meta_dirty = True
        self._changed()
        return len(self.entries)


class StorageManager:
    """All packet stores of the lander, their playback order and the ground's PUS-15 requests.

    :meth:`next_deadline` and :meth:`has_playback` are asked at every round
    of a runner and remember their answer until :attr:`revision` moves.
    Every change they depend on moves it: a store's ``on_change`` (see
    :class:`PacketStore`), a stored packet, a flush, a restore.  Both
    queries are idempotent (their only side effect, dropping stale heads,
    leaves nothing for an immediate second call to drop), so skipping a call
    while nothing changed is exactly the same as making it.
    """

    def __init__(self, stores: Iterable[StoreConfig], state: StateStore | None = None,
                 router: Router | None = None, ack_timeout_s: float = 300.0, flush_interval_s: float = 1.0,
                 flush_every: int = 256, key_prefix: str = "pus15") -> None:
        cfgs = list(stores)
        if not cfgs:
            raise ValueError("at least one packet store")
        ids = [c.store_id for c in cfgs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"store ids repeat: {ids}")
        if not ack_timeout_s > 0:
            raise ValueError("ack_timeout_s must be positive")
        #: moves at every change that may alter next_deadline() or has_playback() (see the class)
        self.revision = 0
        self._deadline_rev = -1
        self._oldest_sent = math.inf
        self._playback_rev = -1
        self._playback = False
        self.stores: dict[int, PacketStore] = {c.store_id: PacketStore(c, state, key_prefix, self._touch)
                                               for c in cfgs}
        self._order = sorted(self.stores.values(), key=lambda s: (s.cfg.priority, s.cfg.store_id))
        default = self._order[-1].cfg.store_id
        self.router: Router = router or (lambda apid, svc, sub: default)
        self.state = state
        self.ack_timeout_s = ack_timeout_s
        self.flush_interval_s = flush_interval_s
        self.flush_every = flush_every
        self._last_flush = -math.inf
        self._since_flush = 0
        self._events: list[tuple[str, dict[str, Any]]] = []
        self.unrouted = 0
        self._restored = False

    def store(self, store_id: int) -> PacketStore:
        try:
            return self.stores[store_id]
        except KeyError:
            raise KeyError(f"no packet store {store_id} (stores: {sorted(self.stores)})") from None

    def _targets(self, store_id: int) -> list[PacketStore]:
        return list(self._order) if store_id == 0 else [self.store(store_id)]

    def _touch(self) -> None:
        self.revision += 1

    # -- life cycle ----------------------------------------------------------------------------------
    def restore(self, now: float) -> int:
        """Reload every store from the state store.  Done once: at start-up, or before the first packet."""
        if self._restored:
            return 0
        self._restored = True
        total = 0
        for s in self._order:
            total += s.restore(self._events)
        self._last_flush = now
        self.revision += 1
        return total

    def next_deadline(self) -> float:
        """The next flush or acknowledgement time-out.  Cheap while nothing changed (see the class)."""
        if self._deadline_rev != self.revision:
            t = math.inf
            for s in self._order:
                if s.sent_fifo:
                    e = s.next_expiry(0.0)
                    if e < t:
                        t = e
            self._oldest_sent = t
            self._deadline_rev = self.revision
        # (x -> x + timeout is monotonic in floating point: the same as the earliest of each store's expiry)
        t = self._oldest_sent + self.ack_timeout_s
        if self._since_flush and self.state is not None:
            f = self._last_flush + self.flush_interval_s
            if f < t:
                t = f
        return t

    def run_due(self, now: float) -> None:
        for s in self._order:
            if s.sent_fifo:
                s.expire(now, self.ack_timeout_s)
        if self._since_flush and now >= self._last_flush + self.flush_interval_s:
            self.flush(now)

    def flush(self, now: float) -> None:
        for s in self._order:
            s.flush()
        self._last_flush = now
        self._since_flush = 0
        self.revision += 1

    def take_events(self) -> list[tuple[str, dict[str, Any]]]:
        out = self._events
        self._events = []
        return out

    # -- data in and out -------------------------------------------------------------------------------
    def store_packet(self, packet: bytes, now: float, sent: bool = False) -> tuple[int, int] | None:
        """Keep a packet; ``sent``: it also went out live.  Returns (store id, SSN) or None (counted)."""
        if not self._restored:
            self.restore(now)
        keys = packet_keys(packet)
        sid = self.router(keys[0], keys[2], keys[3])
        if sid is None or sid not in self.stores:
            self.unrouted += 1
            return None
        ssn = self.stores[sid].add(packet, keys, now, sent, self._events)
        if ssn is None:
            return None
        self._since_flush += 1     # (add() moved the revision, which next_deadline()'s callers rely on)
        if self._since_flush >= self.flush_every:
            self.flush(now)
        return sid, ssn

    def has_playback(self) -> bool:
        """Any store has something to play back.  Cheap while nothing changed (see the class)."""
        if self._playback_rev != self.revision:
            found = False
            for s in self._order:   # (skips the stores with empty queues first)
                if (s.retx or s.fresh) and s.has_playback():
                    found = True
                    break
            self._playback = found
            self._playback_rev = self.revision
        return self._playback

    def next_playback(self, now: float) -> bytes | None:
        """The next packet to play back (highest-priority store first), marked sent; None if nothing."""
        for s in self._order:
            if s.retx or s.fresh:
                e = s.take(now)
                if e is not None:
                    return e.data
        return None

    def next_playback_entry(self, now: float) -> tuple[int, Entry] | None:
        for s in self._order:
            e = s.take(now)
            if e is not None:
                return s.cfg.store_id, e
        return None

    def requeue(self, store_id: int, ssn: int) -> bool:
        """A packet that was meant to go out (live, or in a frame never sent) goes back to playback."""
        return self.store(store_id).requeue(ssn)

    def rf_lost(self, now: float, window_s: float) -> int:
        """The radio lost the link: send again what went out in the last ``window_s``."""
        n = 0
        for s in self._order:
            recent = []
            for t, ssn in reversed(s.sent_fifo):
                if t < now - window_s:
                    break
                e = s.entries.get(ssn)
                if e is not None and e.state == SENT and e.sent_at == t:
                    recent.append(ssn)
            for ssn in reversed(recent):   # oldest first
                s.requeue(ssn)
            n += len(recent)
        return n

    # -- ground requests (PUS 15) ----------------------------------------------------------------------
    @staticmethod
    def _check_range(first: int, last: int) -> int:
        for v in (first, last):
            if not 0 <= v <= 0x3FFF:
                raise ValueError(f"sequence count {v} outside 0..16383")
        count = ((last - first) & 0x3FFF) + 1
        if count > MAX_RANGE:
            raise ValueError(f"range of {count} sequence counts exceeds {MAX_RANGE}")
        return count

    def ack(self, store_id: int, apid: int, first: int, last: int, t_from: float, t_to: float) -> int:
        """The ground has these packets: delete them.  Returns how many were deleted."""
        self._check_range(first, last)
        a, b = to_ticks(t_from), to_ticks(t_to)
        n = 0
        for s in self._targets(store_id):
            for e in list(s.matching(apid, first, last, a, b)):
                s._delete(e.ssn, "acked")
                n += 1
        return n

    def retransmit(self, store_id: int, apid: int, first: int, last: int, t_from: float, t_to: float) -> int:
        """The ground misses these packets: send them again first.  Reports a range not (fully) held."""
        count = self._check_range(first, last)
        a, b = to_ticks(t_from), to_ticks(t_to)
        n = 0
        for s in self._targets(store_id):
            for e in list(s.matching(apid, first, last, a, b)):
                s.requeue(e.ssn)
                s.counters["requested"] += 1
                n += 1
        if n < count:
            for s in self._targets(store_id):
                s.counters["not_held"] += count - n
                break
            self._events.append(("STORE_RANGE_NOT_HELD", {"STORE": store_id, "RANGE_APID": apid,
                                                          "RANGE_FIRST": first, "RANGE_LAST": last,
                                                          "RANGE_FOUND": n}))
        return n

    def retrieve_time(self, store_id: int, t_from: float, t_to: float) -> int:
        """PUS TC[15,9]: play back everything stored between two times (all APIDs)."""
        a, b = to_ticks(t_from), to_ticks(t_to)
        n = 0
        for s in self._targets(store_id):
            for e in list(s.entries.values()):
                if a <= e.cuc <= b:
                    s.requeue(e.ssn)
                    n += 1
        return n

    def delete_up_to(self, store_id: int, t: float) -> int:
        """PUS TC[15,11]: the ground deletes everything up to a time, acknowledged or not."""
        lim = to_ticks(t)
        n = 0
        for s in self._targets(store_id):
            for e in [e for e in s.entries.values() if e.cuc <= lim]:
                s._delete(e.ssn, "deleted")
                n += 1
        return n

    def enable(self, store_id: int, on: bool) -> None:
        for s in self._targets(store_id):
            s.enabled = on
            s._meta_dirty = True

    # -- housekeeping --------------------------------------------------------------------------------
    def hk_rows(self) -> list[dict[str, Any]]:
        """One STORAGE_HK report per store (parameter names of ``lander_link.yaml``)."""
        rows = []
        for s in sorted(self.stores.values(), key=lambda s: s.cfg.store_id):
            c = s.counters
            rows.append({
                "STORE_ID": s.cfg.store_id, "STORE_ENABLED": s.enabled,
                "STORE_FILL": round(100.0 * s.fill(), 3), "STORE_USED_BYTES": min(s.used, 0xFFFFFFFF),
                "STORE_PACKETS": len(s.entries), "STORE_QUEUED": s.queued, "STORE_UNACKED": s.unacked,
                "STORE_STORED": c["stored"] & 0xFFFFFFFF, "STORE_ACKED": c["acked"] & 0xFFFFFFFF,
                "STORE_PLAYED": c["played"] & 0xFFFFFFFF, "STORE_RESENT": c["resent"] & 0xFFFFFFFF,
                "STORE_REJECTED_FULL": c["rejected_full"] & 0xFFFFFFFF,
                "STORE_OVERWRITTEN": c["overwritten"] & 0xFFFFFFFF,
                "STORE_REFUSED_DISABLED": c["refused_disabled"] & 0xFFFFFFFF,
                "STORE_LOST_ON_RESTORE": c["lost_on_restore"] & 0xFFFF,
            })
        return rows


# ---------------------------------------------------------------------------------------------
# Defaults for the reference mission
# ---------------------------------------------------------------------------------------------
def default_stores(dictionary: Any) -> list[StoreConfig]:
    """Store layout of the reference mission, by the labels of the ``STORE`` enumeration.

    ``HK_EVENTS`` (highest priority, overwrite when full), one science store
    per payload (``<UNIT>_SCI``, stop when full, in the declared priority),
    ``OTHER`` for anything else.  Capacities are defaults; change them here.
    """
    labels = dictionary.enums["STORE"].values if "STORE" in dictionary.enums else {}
    if not labels:
        lander = dictionary.lander
        labels = lander.enums.get("STORE").values if "STORE" in lander.enums else {}
    if not labels:
        raise ValueError("the dictionary declares no STORE enumeration (lander_link.yaml)")
    out = []
    for label, sid in labels.items():
        if label == "ALL":
            continue
        if label == "HK_EVENTS":
            out.append(StoreConfig(sid, label, 16 << 20, priority=0, policy=OVERWRITE))
        elif label == "OTHER":
            out.append(StoreConfig(sid, label, 8 << 20, priority=100, policy=STOP))
        else:
            out.append(StoreConfig(sid, label, 128 << 20, priority=sid, policy=STOP))
    return out


def science_keys(dictionary: Any) -> dict[tuple[int, int, int], str]:
    """(APID, service, subtype) of every ``category: science`` packet -> the name of its unit."""
    return {(sys.apid, p.service, p.subservice): sys.name
            for sys in dictionary.systems for p in sys.telemetry if p.category == "science"}


def dictionary_router(dictionary: Any, stores: Iterable[StoreConfig]) -> Router:
    """Science packets of a payload go to ``<UNIT>_SCI``; the rest to ``HK_EVENTS``; unknown APIDs to ``OTHER``."""
    by_name = {c.name: c.store_id for c in stores}
    hk = by_name.get("HK_EVENTS")
    other = by_name.get("OTHER", hk)
    apids = {sys.apid for sys in dictionary.systems}
    science = {key: by_name[f"{unit}_SCI"] for key, unit in science_keys(dictionary).items()
               if f"{unit}_SCI" in by_name}

    def route(apid: int, svc: int | None, sub: int | None) -> int | None:
        if svc is not None and sub is not None:
            sid = science.get((apid, svc, sub))
            if sid is not None:
                return sid
        return hk if apid in apids else other
    return route
