"""The relay emulator as a node: raw serial bytes between the ground and the lander, through the space link.  Pure.

:class:`RelayNode` has two ports, ``ground`` and ``lander``.  Bytes read on
``ground`` travel *up* to ``lander``; bytes read on ``lander`` travel *down*
to ``ground``.  Each direction is one :class:`~hw_sim.models.relay.RelayChannel`
of a shared :class:`~hw_sim.models.relay.RelayLinkModel` (contact windows by
mission phase, rate cap, light time and relay hop), optionally followed by
seeded impairments (a :class:`hw_sim.faults.LinkImpairer` or a
:class:`hw_sim.faults.Chain`).  Every piece that survives is delivered at
``now + delay`` from the node's own queue (``next_deadline`` / ``run_due``);
pieces due at the same time leave in the order they were made.

The relay knows nothing of framing.  A write (one chunk as the runner read
it) is the unit of loss, duplication and reordering, so a lost or corrupted
write damages whatever frame it belonged to: the space link's framing
(CLTUs, CADUs, COP-1, store-and-forward) is what copes with that.

Statistics (:meth:`RelayNode.stats`): per direction, writes and bytes in,
pieces and bytes out, bytes still in flight, writes lost by reason (the
channel's ``lost_*`` and the impairer's), plus the impairer's other
counters; and the contact state (phase, in contact, acquisitions and losses
of signal, the next change).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import replace
from typing import Any

from fsw.core.node import Node

from .relay import DOWN, DTE, UP, Impairment, LinkPlan, RelayChannel, RelayLinkModel

GROUND = "ground"
LANDER = "lander"
#: the port a direction's bytes come in on, and the port they leave by
ROUTES = {UP: (GROUND, LANDER), DOWN: (LANDER, GROUND)}


def override_plan(plan: LinkPlan, *, delay_s: float | None = None, always_in_contact: bool = False,
                  up_Bps: float | None = None, down_Bps: float | None = None) -> LinkPlan:
    """``plan`` with bench overrides: a fixed one-way delay (replacing light time and hop), continuous
    contact (keeping the phase's rates; a phase with no contact gets none the less), other rate caps."""
    if delay_s is not None:
        if not (delay_s >= 0 and math.isfinite(delay_s)):
            raise ValueError(f"the one-way delay must be a finite number >= 0, got {delay_s!r}")
        plan = replace(plan, light_time=float(delay_s), hop_s=0.0)
    if always_in_contact:
        plan = replace(plan, kind=DTE)
    if up_Bps is not None:
        plan = replace(plan, up_Bps=float(up_Bps))
    if down_Bps is not None:
        plan = replace(plan, down_Bps=float(down_Bps))
    return plan


def impairment_stats(imp: object) -> Counter[str]:
    """The counters of an impairment: its own ``stats``, or the sum over a chain's ``stages``."""
    total: Counter[str] = Counter()
    if imp is None:
        return total
    own = getattr(imp, "stats", None)
    if isinstance(own, Counter):
        total.update(own)
    for stage in getattr(imp, "stages", ()):
        total.update(impairment_stats(stage))
    return total


class _Direction:
    __slots__ = ("channel", "src", "dst", "counts")

    def __init__(self, channel: RelayChannel, src: str, dst: str) -> None:
        self.channel = channel
        self.src = src
        self.dst = dst
        self.counts: Counter[str] = Counter()


class RelayNode(Node):
    """See the module docstring.  ``up_impair`` / ``down_impair`` run after the relay delay of each direction."""

    def __init__(self, model: RelayLinkModel, up_impair: Impairment | None = None,
                 down_impair: Impairment | None = None, max_queue_s: float = 30.0, name: str = "relay") -> None:
        super().__init__(name, [GROUND, LANDER])
        self.model = model
        self.dirs = {d: _Direction(model.channel(d, imp, max_queue_s), *ROUTES[d])
                     for d, imp in ((UP, up_impair), (DOWN, down_impair))}
        self._by_port = {v.src: v for v in self.dirs.values()}
        #: (due, order, direction, bytes)
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = 0
        self._contact: bool | None = None
        self._next_change = math.inf
        self.contact_counts: Counter[str] = Counter()

    # -- contact ---------------------------------------------------------------------------------
    def _update_contact(self, now: float) -> None:
        c = self.model.in_contact(now)
        if self._contact is not None and c != self._contact:
            self.contact_counts["aos" if c else "los"] += 1
        self._contact = c
        self._next_change = self.model.next_change(now)

    @property
    def in_contact(self) -> bool:
        return bool(self._contact)

    def set_phase(self, phase: str, now: float) -> None:
        """Follow the mission phase (its contact kind, rates and delay); unknown phases raise ValueError.
        Pieces already in flight keep their delivery times."""
        self.model.set_phase(phase)
        self.contact_counts["phase_changes"] += 1
        self._update_contact(now)

    # -- runner interface ------------------------------------------------------------------------
    def start(self, now: float) -> None:
        self._update_contact(now)

    def receive(self, port: str, data: bytes, now: float) -> None:
        """Raw bytes from ``port``: into that direction's channel.  Never raises for any content."""
        d = self._by_port.get(port)
        if d is None:
            raise ValueError(f"{self.name}: no port {port!r}")
        if not data:
            return
        if self._contact is None or now >= self._next_change:
            self._update_contact(now)
        st = self.port_stats[port]
        st.rx_bytes += len(data)
        st.last_rx = now
        d.counts["writes_in"] += 1
        d.counts["bytes_in"] += len(data)
        direction = UP if d.src == GROUND else DOWN
        for delay, piece in d.channel.apply(bytes(data), now):
            heapq.heappush(self._queue, (now + max(0.0, delay), self._order, direction, piece))
            self._order += 1
            d.counts["bytes_in_flight"] += len(piece)
        self._deliver(now)

    def line_idle(self, port: str, now: float) -> None:
        """Nothing to flush: the relay holds no partial frames."""

    def next_deadline(self) -> float:
        t = self._next_change
        if self._queue:
            t = min(t, self._queue[0][0])
        return t

    def run_due(self, now: float) -> None:
        if now >= self._next_change:
            self._update_contact(now)
        self._deliver(now)

    def _deliver(self, now: float) -> None:
        q = self._queue
        while q and q[0][0] <= now:
            _, _, direction, piece = heapq.heappop(q)
            d = self.dirs[direction]
            d.counts["pieces_out"] += 1
            d.counts["bytes_out"] += len(piece)
            d.counts["bytes_in_flight"] -= len(piece)
            st = self.port_stats[d.dst]
            st.tx_bytes += len(piece)
            self._out.append((d.dst, piece))

    # -- statistics ------------------------------------------------------------------------------
    def direction_stats(self, direction: str) -> dict[str, Any]:
        d = self.dirs[direction]
        ch = d.channel
        imp_stats = impairment_stats(ch.impair)
        lost = {k[5:]: v for k, v in ch.stats.items() if k.startswith("lost_") and v}
        for k, v in imp_stats.items():
            if k.startswith("lost_") and v:
                lost[k[5:]] = lost.get(k[5:], 0) + v
        out: dict[str, Any] = {k: d.counts[k] for k in ("writes_in", "bytes_in", "pieces_out", "bytes_out",
                                                        "bytes_in_flight")}
        out["writes_carried"] = ch.stats["carried"]
        out["lost"] = lost
        out["writes_lost"] = sum(lost.values())
        out["rate_Bps"] = self.model.rate(direction)
        out["impairments"] = {k: v for k, v in imp_stats.items() if not k.startswith("lost_") and v}
        return out

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """A JSON-able snapshot (``now`` adds the current one-way delay and queue backlogs)."""
        nc = self._next_change
        out: dict[str, Any] = {
            "phase": self.model.phase, "contact_kind": self.model.plan.kind, "in_contact": self.in_contact,
            "next_contact_change": None if math.isinf(nc) else nc,
            "aos": self.contact_counts["aos"], "los": self.contact_counts["los"],
            "phase_changes": self.contact_counts["phase_changes"],
            UP: self.direction_stats(UP), DOWN: self.direction_stats(DOWN),
        }
        if now is not None:
            out["one_way_delay_s"] = self.model.one_way_delay(now)
            for d in (UP, DOWN):
                out[d]["backlog_s"] = self.dirs[d].channel.backlog(now)
        return out
