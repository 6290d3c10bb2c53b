"""The far-side relay link: contact windows by mission phase, light time, rate caps.  Pure.

Geometry (``shared/reference/mission-facts.md``, Communications; every
figure is a parameter):

* **Cruise**: direct to Earth, continuous, about 2 kbps each way.
* **Low lunar orbit** (100 km, period about 118 min): Earth is hidden about
  47 min of each orbit, so contact is about 71 min out of every 118.
* **Surface**, through the relays Alpine and Lupine: each relay is in view
  about 16 h of every 24.  The facts also say "phased 12 h apart, which
  leaves about two 2-hour gaps a day"; two single 16-hour windows phased
  12 h apart would overlap into continuous coverage, so the default model
  gives each relay a 12-hour orbit with an 8-hour view per orbit (16 h a
  day) and phases the relays 2 h apart: their union leaves exactly two
  2-hour gaps a day.  :class:`RelayGeometry` changes all three numbers.
* **Light time** Earth-Moon 1.19 s at perigee to 1.36 s at apogee over the
  anomalistic month, plus about 1 s for the relay hop and the ground.

Rates (bytes per second, per direction): S-band lander<->relay 8-55 kbps,
Ka lander->relay and relay->Earth up to 1.3 Mbps, cruise direct to Earth
about 2 kbps.

:class:`RelayChannel` puts one direction of the link into the simulated
runner (its ``Impairment`` protocol): out of contact a write is lost; in
contact it is queued behind earlier writes at the rate cap (a bounded
queue), then delayed by the light time and the hop, then optionally
impaired further by a :class:`hw_sim.faults.LinkImpairer`.  Use it on a
wire with ``baud=None`` so that the rate is applied once.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Protocol

HOUR = 3600.0
DAY = 86400.0
ANOMALISTIC_MONTH_S = 27.554551 * DAY


class Impairment(Protocol):
    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]: ...


@dataclass(frozen=True)
class LightTime:
    """One-way Earth-Moon light time, varying between perigee and apogee."""

    perigee_s: float = 1.19
    apogee_s: float = 1.36
    period_s: float = ANOMALISTIC_MONTH_S
    perigee_epoch_s: float = 0.0

    def at(self, t: float) -> float:
        mid = (self.perigee_s + self.apogee_s) / 2
        amp = (self.apogee_s - self.perigee_s) / 2
        return mid - amp * math.cos(2 * math.pi * (t - self.perigee_epoch_s) / self.period_s)


def _periodic_windows(t0: float, t1: float, period: float, view: float, offset: float) -> list[tuple[float, float]]:
    """Windows [offset + k*period, + view) that meet [t0, t1), clipped to it."""
    if view <= 0 or t1 <= t0:
        return []
    if view >= period:
        return [(t0, t1)]
    k = math.floor((t0 - offset) / period)
    out = []
    while True:
        a = offset + k * period
        if a >= t1:
            break
        b = a + view
        if b > t0:
            out.append((max(a, t0), min(b, t1)))
        k += 1
    return out


def _phase_state(t: float, period: float, view: float, offset: float) -> tuple[bool, float]:
    """Whether ``t`` lies in a window [offset + k*period, + view), and a time before which that stays so.

    The answer is the test ``(t - offset) % period < view`` itself, so that it is the same at every
    instant however it is asked; the time returned stops a margin of many rounding errors short of the
    window edge, where the test is made again.
    """
    phase = (t - offset) % period
    inside = phase < view
    edge = t + ((view - phase) if inside else (period - phase))
    return inside, edge - max(1e-6, 64 * math.ulp(abs(edge)))


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class OrbitGeometry:
    """Direct-to-Earth from a low lunar orbit: in view except during the occultation."""

    period_s: float = 118 * 60.0
    occultation_s: float = 47 * 60.0
    #: a time (mission seconds) at which Earth rises
    aos_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.occultation_s < self.period_s:
            raise ValueError("the occultation must be shorter than the orbit")

    def windows(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _periodic_windows(t0, t1, self.period_s, self.period_s - self.occultation_s, self.aos_s)


@dataclass(frozen=True)
class RelayGeometry:
    """Relay satellites, each in view ``view_s`` of every ``period_s``, rising at its ``aos_s``."""

    names: tuple[str, ...] = ("ALPINE", "LUPINE")
    period_s: float = 12 * HOUR
    view_s: float = 8 * HOUR
    aos_s: tuple[float, ...] = (0.0, 2 * HOUR)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.aos_s) or not self.names:
            raise ValueError("give one rise time (aos_s) per relay name")
        if not 0 < self.view_s <= self.period_s:
            raise ValueError("view_s must be within 0..period_s")

    def relay_windows(self, name: str, t0: float, t1: float) -> list[tuple[float, float]]:
        i = self.names.index(name)
        return _periodic_windows(t0, t1, self.period_s, self.view_s, self.aos_s[i])

    def windows(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return _merge([w for n in self.names for w in self.relay_windows(n, t0, t1)])

    def in_view(self, t: float) -> tuple[str, ...]:
        return tuple(n for n, aos in zip(self.names, self.aos_s) if (t - aos) % self.period_s < self.view_s)


#: contact kinds
UMBILICAL = "umbilical"   # on the pad: a cable, no light time
NO_CONTACT = "none"
DTE = "dte"               # direct to Earth, continuous (cruise)
ORBIT = "orbit"           # direct to Earth from low lunar orbit
RELAY = "relay"           # through Alpine and Lupine


@dataclass(frozen=True)
class LinkPlan:
    """How the space link behaves in one mission phase."""

    kind: str
    up_Bps: float
    down_Bps: float
    hop_s: float = 0.0
    #: "moon" for the Earth-Moon light time, or a fixed one-way light time in seconds
    light_time: str | float = "moon"

    def __post_init__(self) -> None:
        if self.kind not in (UMBILICAL, NO_CONTACT, DTE, ORBIT, RELAY):
            raise ValueError(f"unknown contact kind {self.kind!r}")
        if self.up_Bps < 0 or self.down_Bps < 0 or self.hop_s < 0:
            raise ValueError("rates and hop delay cannot be negative")


def kbps(x: float) -> float:
    """kilobits per second -> bytes per second."""
    return x * 1000.0 / 8.0


#: defaults per mission phase (names of the PHASE enumeration of the dictionary)
DEFAULT_PLANS: Mapping[str, LinkPlan] = {
    "PRELAUNCH": LinkPlan(UMBILICAL, up_Bps=11520.0, down_Bps=11520.0, light_time=0.0),
    "LAUNCH": LinkPlan(NO_CONTACT, up_Bps=0.0, down_Bps=0.0),
    "CRUISE": LinkPlan(DTE, up_Bps=kbps(2), down_Bps=kbps(2), light_time="moon"),
    "LUNAR_ORBIT": LinkPlan(ORBIT, up_Bps=kbps(8), down_Bps=kbps(55)),
    "DEPLOY": LinkPlan(ORBIT, up_Bps=kbps(8), down_Bps=kbps(55)),
    "DESCENT": LinkPlan(RELAY, up_Bps=kbps(8), down_Bps=kbps(55), hop_s=1.0),
    "SURFACE": LinkPlan(RELAY, up_Bps=kbps(8), down_Bps=kbps(1300), hop_s=1.0),
    "NIGHT_SAFE": LinkPlan(RELAY, up_Bps=kbps(8), down_Bps=kbps(55), hop_s=1.0),
}

UP = "up"
DOWN = "down"


class RelayLinkModel:
    """Contact windows, delay and rates of the space link, following the mission phase."""

    def __init__(self, plans: Mapping[str, LinkPlan] | None = None, orbit: OrbitGeometry | None = None,
                 relays: RelayGeometry | None = None, light: LightTime | None = None,
                 phase: str = "PRELAUNCH") -> None:
        self.plans = dict(DEFAULT_PLANS if plans is None else plans)
        self.orbit = orbit or OrbitGeometry()
        self.relays = relays or RelayGeometry()
        self.light = light or LightTime()
        self.phase = ""
        #: (phase, t, next change after t): a channel asks at every write
        self._next_change: tuple[str, float, float] | None = None
        #: (phase, t, until, contact): the contact state holds from t until (about) the next window edge
        self._contact: tuple[str, float, float, bool] | None = None
        self.set_phase(phase)

    def set_phase(self, phase: str) -> None:
        if phase not in self.plans:
            raise ValueError(f"no link plan for phase {phase!r}; known: {', '.join(self.plans)}")
        self.phase = phase

    @property
    def plan(self) -> LinkPlan:
        return self.plans[self.phase]

    def windows(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Contact windows within [t0, t1) for the current phase."""
        kind = self.plan.kind
        if t1 <= t0 or kind == NO_CONTACT:
            return []
        if kind in (UMBILICAL, DTE):
            return [(t0, t1)]
        if kind == ORBIT:
            return self.orbit.windows(t0, t1)
        return self.relays.windows(t0, t1)

    def _horizon(self) -> float:
        return 2 * max(self.orbit.period_s, self.relays.period_s) + 1.0

    def in_contact(self, t: float) -> bool:
        """Whether the link is up at ``t``.  A channel asks at every write: the answer is kept until shortly
        before the next window edge (see :func:`_phase_state`), where it is worked out again."""
        c = self._contact
        if c is not None and c[1] <= t < c[2] and c[0] == self.phase:
            return c[3]
        kind = self.plan.kind
        if kind in (NO_CONTACT, UMBILICAL, DTE):
            contact, until = kind != NO_CONTACT, math.inf
        elif kind == ORBIT:
            o = self.orbit
            contact, until = _phase_state(t, o.period_s, o.period_s - o.occultation_s, o.aos_s)
        else:
            contact, until = False, math.inf
            r = self.relays
            for aos in r.aos_s:
                seen, edge = _phase_state(t, r.period_s, r.view_s, aos)
                contact = contact or seen
                until = min(until, edge)
        self._contact = (self.phase, t, until, contact)
        return contact

    def next_change(self, t: float) -> float:
        """The next acquisition or loss of signal after ``t`` (``inf`` if the contact never changes)."""
        cached = self._next_change
        if cached is not None and cached[0] == self.phase and cached[1] <= t < cached[2]:
            return cached[2]   # no change between the cached instant and that change: it is next for t too
        kind = self.plan.kind
        if kind in (NO_CONTACT, UMBILICAL, DTE):
            return math.inf
        nxt = math.inf
        for a, b in self.windows(t, t + self._horizon()):
            if a > t:
                nxt = a
                break
            if b > t and b < t + self._horizon():
                nxt = b
                break
        self._next_change = (self.phase, t, nxt)
        return nxt

    def one_way_delay(self, t: float) -> float:
        p = self.plan
        lt = self.light.at(t) if p.light_time == "moon" else float(p.light_time)
        return lt + p.hop_s

    def rate(self, direction: str) -> float:
        if direction == UP:
            return self.plan.up_Bps
        if direction == DOWN:
            return self.plan.down_Bps
        raise ValueError(f"direction must be {UP!r} or {DOWN!r}, not {direction!r}")

    def contact_fraction(self, t0: float, t1: float) -> float:
        if t1 <= t0:
            return 0.0
        return sum(b - a for a, b in self.windows(t0, t1)) / (t1 - t0)

    def channel(self, direction: str, impair: Impairment | None = None, max_queue_s: float = 30.0) -> "RelayChannel":
        return RelayChannel(self, direction, impair, max_queue_s)


@dataclass
class RelayChannel:
    """One direction of the relay link as a runner impairment; see the module docstring."""

    model: RelayLinkModel
    direction: str
    impair: Impairment | None = None
    #: a write that would wait longer than this behind earlier ones is dropped (tail drop)
    max_queue_s: float = 30.0
    busy_until: float = 0.0
    stats: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.model.rate(self.direction)  # validates the direction

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        st = self.stats
        st["writes"] += 1
        m = self.model
        if not m.in_contact(now):
            st["lost_no_contact"] += 1
            return []
        rate = m.rate(self.direction)
        if rate <= 0:
            st["lost_no_rate"] += 1
            return []
        start = max(now, self.busy_until)
        if start - now > self.max_queue_s:
            st["lost_queue_full"] += 1
            return []
        end = start + len(data) / rate
        if end > m.next_change(now):
            st["lost_contact_end"] += 1
            return []
        self.busy_until = end
        delay = (end - now) + m.one_way_delay(now)
        st["carried"] += 1
        st["bytes"] += len(data)
        if self.impair is None:
            return [(delay, data)]
        return [(delay + d, c) for d, c in self.impair.apply(data, now)]

    def backlog(self, now: float) -> float:
        return max(0.0, self.busy_until - now)
