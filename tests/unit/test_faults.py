"""Seeded link impairments (hw_sim.faults): determinism, and each knob doing what it says."""

from __future__ import annotations

import random

import pytest

from hw_sim.faults import Chain, GilbertElliott, Impairments, LinkImpairer

DATA = bytes(range(100))
N = 4000


def run(imp: LinkImpairer, n: int = N, data: bytes = DATA) -> list[list[tuple[float, bytes]]]:
    return [imp.apply(data, float(i)) for i in range(n)]


def test_same_seed_same_run() -> None:
    knobs = dict(loss=0.1, ber=1e-3, duplicate=0.1, dup_delay=1.0, reorder=0.1, reorder_delay=2.0, jitter=0.2,
                 truncate=0.05, garbage=0.05, burst=GilbertElliott(0.05, 0.3))
    a = run(LinkImpairer(random.Random(42), **{**knobs, "burst": GilbertElliott(0.05, 0.3)}), 500)
    b = run(LinkImpairer(random.Random(42), **{**knobs, "burst": GilbertElliott(0.05, 0.3)}), 500)
    c = run(LinkImpairer(random.Random(43), **{**knobs, "burst": GilbertElliott(0.05, 0.3)}), 500)
    assert a == b and a != c


def test_clean_by_default() -> None:
    imp = LinkImpairer(random.Random(1))
    assert imp.imp.clean
    assert all(r == [(0.0, DATA)] for r in run(imp, 100))


def test_random_loss_rate() -> None:
    imp = LinkImpairer(random.Random(2), loss=0.2)
    lost = sum(1 for r in run(imp) if not r)
    assert 0.17 * N < lost < 0.23 * N
    assert imp.stats["lost_random"] == lost


def test_gilbert_elliott_bursts() -> None:
    ge = GilbertElliott(p=0.02, r=0.25)
    assert ge.mean_loss == pytest.approx(0.02 / 0.27)
    imp = LinkImpairer(random.Random(3), burst=ge)
    pattern = [not r for r in run(imp, 20000)]
    rate = sum(pattern) / len(pattern)
    assert 0.05 < rate < 0.1
    bursts, cur = [], 0
    for lost in pattern:
        if lost:
            cur += 1
        elif cur:
            bursts.append(cur)
            cur = 0
    mean_burst = sum(bursts) / len(bursts)
    assert 3.0 < mean_burst < 5.0      # 1/r = 4 writes, far from the ~1.08 of independent loss
    # the same mean loss without memory gives short bursts
    iid = [not r for r in run(LinkImpairer(random.Random(3), loss=rate), 20000)]
    runs = sum(1 for a, b in zip(iid, iid[1:]) if a and not b)
    assert sum(iid) / max(runs, 1) < 1.3


def test_bit_error_rate() -> None:
    imp = LinkImpairer(random.Random(4), ber=1e-3)
    out = run(imp, 2000)
    flips = sum(bin(a ^ b).count("1") for r in out for _, d in r for a, b in zip(d, DATA))
    expected = 1e-3 * 8 * len(DATA) * 2000
    assert 0.85 * expected < flips < 1.15 * expected
    assert imp.stats["bit_errors"] == flips
    every = LinkImpairer(random.Random(4), ber=1.0).apply(DATA, 0.0)
    assert every == [(0.0, bytes(b ^ 0xFF for b in DATA))]


def test_bit_errors_draw_the_same_stream_whether_or_not_a_bit_flips() -> None:
    # a write is copied only once a bit flips; the draws (one per flipped bit, and one past the end) do not change
    rare, ref = random.Random(8), random.Random(8)
    imp = LinkImpairer(rare, ber=1e-7)
    out = [imp.apply(DATA, 0.0) for _ in range(50)]
    assert all(r == [(0.0, DATA)] for r in out) and imp.stats["corrupted"] == imp.stats["bit_errors"] == 0
    for _ in range(50):
        ref.random()
    assert rare.random() == ref.random()


def test_corrupt_flips_one_bit() -> None:
    imp = LinkImpairer(random.Random(5), corrupt=1.0)
    for r in run(imp, 200):
        [(_, d)] = r
        assert sum(bin(a ^ b).count("1") for a, b in zip(d, DATA)) == 1


def test_duplicates_and_their_delay() -> None:
    imp = LinkImpairer(random.Random(6), duplicate=0.3, dup_delay=2.0)
    out = run(imp)
    dups = [r for r in out if len(r) == 2]
    assert 0.25 * N < len(dups) < 0.35 * N
    assert all(r[0][1] == r[1][1] == DATA and 0 <= r[1][0] <= 2.0 for r in dups)


def test_reorder_jitter_delay() -> None:
    imp = LinkImpairer(random.Random(7), reorder=0.5, reorder_delay=3.0, delay=1.0, jitter=0.5)
    delays = [r[0][0] for r in run(imp)]
    assert min(delays) >= 0.0
    held = sum(1 for d in delays if d > 2.5)
    assert 0.4 * N < held < 0.6 * N
    # later writes overtake held ones: arrival order differs from send order
    arrivals = sorted(range(N), key=lambda i: i + delays[i])
    assert arrivals != list(range(N))


def test_truncate_and_garbage() -> None:
    imp = LinkImpairer(random.Random(8), truncate=1.0)
    assert all(0 < len(r[0][1]) < len(DATA) and DATA.startswith(r[0][1]) for r in run(imp, 200))
    imp = LinkImpairer(random.Random(9), garbage=1.0, garbage_len=5)
    assert all(len(r[0][1]) == len(DATA) + 5 and r[0][1].endswith(DATA) for r in run(imp, 200))


def test_blackout_set_and_heal() -> None:
    imp = LinkImpairer(random.Random(10))
    imp.blackout = True
    assert imp.apply(DATA, 0.0) == [] and imp.stats["lost_blackout"] == 1
    imp.heal()
    imp.set(loss=1.0)
    assert imp.apply(DATA, 0.0) == []
    imp.heal()
    assert imp.apply(DATA, 0.0) == [(0.0, DATA)]
    with pytest.raises(ValueError):
        imp.set(lose=0.1)


@pytest.mark.parametrize("knobs", [{"loss": 1.5}, {"ber": -0.1}, {"delay": -1.0}, {"jitter": float("inf")},
                                   {"garbage_len": 0}, {"duplicate": float("nan")}])
def test_bad_knobs(knobs: dict) -> None:
    with pytest.raises(ValueError):
        Impairments(**knobs)


def test_bad_gilbert_elliott() -> None:
    with pytest.raises(ValueError):
        GilbertElliott(p=2.0)


def test_max_delay_bound() -> None:
    imp = Impairments(delay=1.0, jitter=0.1, reorder=0.1, reorder_delay=2.0, duplicate=0.1, dup_delay=3.0)
    assert imp.max_delay == pytest.approx(6.4)


def test_chain_adds_delays_in_series() -> None:
    a = LinkImpairer(random.Random(11), delay=1.0, duplicate=1.0, dup_delay=0.0)
    b = LinkImpairer(random.Random(12), delay=0.5)
    out = Chain(a, b).apply(DATA, 0.0)
    assert out == [(1.5, DATA), (1.5, DATA)]


def test_empty_write() -> None:
    imp = LinkImpairer(random.Random(13), ber=0.1, corrupt=1.0, truncate=1.0)
    assert imp.apply(b"", 0.0) == [(0.0, b"")]
