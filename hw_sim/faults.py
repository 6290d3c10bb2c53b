"""Seeded line and link impairments, with the knobs of Linux netem.

:class:`LinkImpairer` implements the simulated runner's ``Impairment``
protocol, ``apply(data, now) -> [(extra_delay, bytes), ...]``: each write
(for a space link, one CLTU or one CADU) may be lost, damaged, duplicated,
delayed or held back so that later writes overtake it.  It is pure: the
random numbers come from the ``rng`` handed in (anything with
``random()`` and ``gauss(mu, sigma)``, normally a seeded
:class:`random.Random`), so one seed gives one run, byte for byte.

Knobs (:class:`Impairments`), all off by default:

* ``loss``: independent loss probability per write;
* ``burst``: Gilbert-Elliott two-state loss (:class:`GilbertElliott`):
  ``p`` good->bad and ``r`` bad->good per write, loss probability
  ``loss_good`` / ``loss_bad`` in each state; mean burst length ``1/r``;
* ``ber``: bit error rate (every bit flips independently);
* ``corrupt``: probability per write of one flipped bit (netem ``corrupt``);
* ``duplicate``: probability of a second copy, ``dup_delay`` s later at most;
* ``reorder`` / ``reorder_delay``: probability a write is held back that long;
* ``delay`` / ``jitter``: base delay and its Gaussian standard deviation
  (never negative in total);
* ``truncate``: probability a write is cut at a random point;
* ``garbage`` / ``garbage_len``: probability of random octets before a write.

Every decision is counted in :attr:`LinkImpairer.stats`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields, replace
from typing import Protocol


class Rng(Protocol):
    def random(self) -> float: ...
    def gauss(self, mu: float, sigma: float) -> float: ...


@dataclass
class GilbertElliott:
    """Two-state bursty loss.  Stationary loss rate: (r*loss_good + p*loss_bad) / (p + r)."""

    p: float = 0.0
    r: float = 1.0
    loss_good: float = 0.0
    loss_bad: float = 1.0
    bad: bool = False

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_good", "loss_bad"):
            _prob(name, getattr(self, name))

    def step(self, rng: Rng) -> bool:
        """Advance one write; True if it is lost."""
        if self.bad:
            if rng.random() < self.r:
                self.bad = False
        elif rng.random() < self.p:
            self.bad = True
        return rng.random() < (self.loss_bad if self.bad else self.loss_good)

    @property
    def mean_loss(self) -> float:
        if self.p + self.r == 0:
            return self.loss_bad if self.bad else self.loss_good
        return (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)


def _prob(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a probability in 0..1, got {v!r}")


def _nonneg(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass
class Impairments:
    loss: float = 0.0
    burst: GilbertElliott | None = None
    ber: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    dup_delay: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    truncate: float = 0.0
    garbage: float = 0.0
    garbage_len: int = 8

    def __post_init__(self) -> None:
        for n in ("loss", "ber", "corrupt", "duplicate", "reorder", "truncate", "garbage"):
            _prob(n, getattr(self, n))
        for n in ("dup_delay", "reorder_delay", "delay", "jitter"):
            _nonneg(n, getattr(self, n))
        if not isinstance(self.garbage_len, int) or self.garbage_len < 1:
            raise ValueError(f"garbage_len must be a positive integer, got {self.garbage_len!r}")

    @property
    def clean(self) -> bool:
        return (self.loss == self.ber == self.corrupt == self.duplicate == self.reorder == self.truncate
                == self.garbage == 0.0 and self.burst is None)

    @property
    def max_delay(self) -> float:
        """An upper bound of the extra delay, ignoring the Gaussian tail beyond 4 sigma."""
        return (self.delay + 4 * self.jitter + (self.reorder_delay if self.reorder else 0.0)
                + (self.dup_delay if self.duplicate else 0.0))


class LinkImpairer:
    """Seeded impairments for one direction of a link; see the module docstring."""

    def __init__(self, rng: Rng, impairments: Impairments | None = None, **knobs: object) -> None:
        self.rng = rng
        self.imp = impairments if impairments is not None else Impairments()
        if knobs:
            self.imp = replace(self.imp, **knobs)  # type: ignore[arg-type]
        self.blackout = False
        self.stats: Counter[str] = Counter()

    def set(self, **knobs: object) -> None:
        """Change knobs while running (e.g. ``set(loss=0.1)``); unknown names raise ValueError."""
        names = {f.name for f in fields(Impairments)}
        bad = set(knobs) - names
        if bad:
            raise ValueError(f"unknown impairment(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(names))}")
        self.imp = replace(self.imp, **knobs)  # type: ignore[arg-type]

    def heal(self) -> None:
        """All impairments off (delay and jitter too) and the blackout lifted."""
        self.imp = Impairments()
        self.blackout = False

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        st = self.stats
        st["writes"] += 1
        st["bytes"] += len(data)
        if self.blackout:
            st["lost_blackout"] += 1
            return []
        imp = self.imp
        rng = self.rng
        if imp.burst is not None and imp.burst.step(rng):
            st["lost_burst"] += 1
            return []
        if imp.loss and rng.random() < imp.loss:
            st["lost_random"] += 1
            return []
        copies = 2 if imp.duplicate and rng.random() < imp.duplicate else 1
        if copies == 2:
            st["duplicated"] += 1
        out = []
        for k in range(copies):
            chunk = self._damage(data)
            d = imp.delay
            if imp.jitter:
                d = max(0.0, d + rng.gauss(0.0, imp.jitter))
            if imp.reorder and rng.random() < imp.reorder:
                d += imp.reorder_delay
                st["reordered"] += 1
            if k:
                d += rng.random() * imp.dup_delay
            out.append((d, chunk))
        return out

    def _damage(self, data: bytes) -> bytes:
        imp = self.imp
        rng = self.rng
        st = self.stats
        buf: bytearray | None = None
        nbits = 8 * len(data)
        if imp.ber and nbits:
            flips = 0
            if imp.ber >= 1.0:
                buf = bytearray(b ^ 0xFF for b in data)
                flips = nbits
            else:
                # the gap to the next flipped bit is geometric; most writes get none, and no copy
                log_q = math.log1p(-imp.ber)
                pos = -1
                while True:
                    u = rng.random()
                    pos += 1 + int(math.log1p(-u) / log_q) if u < 1.0 else nbits
                    if pos >= nbits:
                        break
                    if buf is None:
                        buf = bytearray(data)
                    buf[pos >> 3] ^= 0x80 >> (pos & 7)
                    flips += 1
            if flips:
                st["bit_errors"] += flips
                st["corrupted"] += 1
        if imp.corrupt and nbits and rng.random() < imp.corrupt:
            if buf is None:
                buf = bytearray(data)
            pos = min(nbits - 1, int(rng.random() * nbits))
            buf[pos >> 3] ^= 0x80 >> (pos & 7)
            st["bit_errors"] += 1
            st["corrupted"] += 1
        if imp.truncate and len(data) > 1 and rng.random() < imp.truncate:
            cut = 1 + int(rng.random() * (len(data) - 1))
            buf = (buf if buf is not None else bytearray(data))[:cut]
            st["truncated"] += 1
        if imp.garbage and rng.random() < imp.garbage:
            junk = bytes(int(rng.random() * 256) & 0xFF for _ in range(imp.garbage_len))
            buf = bytearray(junk) + (buf if buf is not None else bytearray(data))
            st["garbage"] += 1
        return bytes(buf) if buf is not None else data


class Chain:
    """Impairments in series: each piece from the first goes through the second, delays add."""

    def __init__(self, *stages: "object") -> None:
        self.stages = stages

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        pieces = [(0.0, data)]
        for st in self.stages:
            nxt = []
            for d, chunk in pieces:
                for d2, c2 in st.apply(chunk, now + d):  # type: ignore[attr-defined]
                    nxt.append((d + d2, c2))
            pieces = nxt
        return pieces
