"""Framing (ASM + packet) and the sans-I/O Deframer.

Promises (shared/reference/reliability.md items 1-3): received bytes never
raise; memory stays bounded; every byte is accounted for; every length field
is checked before it is used; a good frame right after noise is never lost.

Accounting: the Deframer accounts for every byte *exactly*.  At any moment
``bytes fed == sum(len(packet) + 4 for each packet) + sum(Dropped.nbytes) + buffered``,
and after ``flush()`` nothing is buffered.  (Only the 3-byte tail that could be
the start of a marker, and a partial frame, stay buffered between feeds.)
"""

from __future__ import annotations

import random
import struct
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.protocol import (
    ASM, IDLE_APID, MAX_APID, Deframer, DropReason, Dropped, PusTc, PusTm, crc16, frame, parse_packet,
)
from fsw.protocol.framing import DEFAULT_MAX_PACKET, DEFAULT_MIN_PACKET
from tests.conftest import examples

MAX = 300      # max_packet of most deframers here
SLACK = 3      # bytes a deframer may hold beyond max_packet (a partial marker)


# -- helpers -----------------------------------------------------------------------------------------

class Checked:
    """A Deframer wrapper that checks the promises after every call and collects the output."""

    def __init__(self, **kw) -> None:
        self.d = Deframer(**kw)
        self.fed = 0
        self.out: list[bytes | Dropped] = []
        self._in_packets = 0
        self._dropped = 0
        self._reasons: Counter[str] = Counter()

    def feed(self, data: bytes) -> list[bytes | Dropped]:
        got = self.d.feed(data)
        self.fed += len(data)
        self._check(got)
        return got

    def flush(self) -> list[bytes | Dropped]:
        got = self.d.flush()
        self._check(got)
        assert self.d.buffered == 0
        return got

    def _check(self, got: list) -> None:
        self.out += got
        d = self.d
        for o in got:
            if isinstance(o, Dropped):
                assert o.nbytes > 0 and o.reason in DropReason.ALL
                self._dropped += o.nbytes
                self._reasons[o.reason] += 1
            else:  # whatever comes out has a consistent length and a good CRC
                assert type(o) is bytes
                assert d.min_packet <= len(o) <= d.max_packet
                assert len(o) == 6 + int.from_bytes(o[4:6], "big") + 1
                assert crc16(o) == 0
                self._in_packets += len(o) + len(ASM)
        assert d.buffered <= d.max_packet + SLACK
        # exact accounting: every byte fed is in a packet (+ its marker), a drop record, or the buffer
        assert self._in_packets + self._dropped + d.buffered == self.fed
        assert d.bytes_in == self.fed
        assert d.packets == len(self.out) - sum(self._reasons.values())
        assert d.dropped_bytes == self._dropped
        assert d.drops == self._reasons

    @property
    def packets(self) -> list[bytes]:
        return [o for o in self.out if isinstance(o, bytes)]

    @property
    def drops(self) -> list[Dropped]:
        return [o for o in self.out if isinstance(o, Dropped)]


def tc(apid: int = 0x22, data: bytes = b"", seq: int = 0) -> bytes:
    return PusTc(apid, 8, 1, data, seq_count=seq).pack()


def fake_header(data_length: int, first: int = 0x18) -> bytes:
    """A primary header with the given data length field, version 0 unless ``first`` says otherwise."""
    return struct.pack(">BBHH", first, 0x22, 0xC000, data_length)


def sized_tc(total: int) -> bytes:
    """A valid TC of exactly ``total`` octets."""
    p = PusTc(0x22, 8, 1, (bytes(range(256)) * (total // 256 + 1))[:total - 13]).pack()
    assert len(p) == total
    return p


pus_packets = st.one_of(
    st.builds(lambda a, d, s: PusTc(a, 8, 1, d, seq_count=s).pack(),
              st.integers(0, MAX_APID), st.binary(max_size=120), st.integers(0, 0x3FFF)),
    st.builds(lambda a, d, s, t: PusTm(a, 3, 25, d, seq_count=s, time_coarse=t).pack(),
              st.integers(0, MAX_APID), st.binary(max_size=120), st.integers(0, 0x3FFF),
              st.integers(0, 2**32 - 1)),
)

# junk that holds no complete marker (partial markers included)
junk_pieces = st.one_of(
    st.binary(max_size=12).filter(lambda b: ASM not in b),
    st.sampled_from([ASM[:1], ASM[:2], ASM[:3], b"\x1a\x1a\xcf", ASM[1:], b"\xcf\xfc\x1d"]),
)


@st.composite
def junk(draw: st.DrawFn) -> bytes:
    out = b""
    for piece in draw(st.lists(junk_pieces, max_size=4)):
        if ASM not in out + piece:
            out += piece
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# -- basics ------------------------------------------------------------------------------------------

def test_frame_is_marker_then_packet() -> None:
    assert ASM == bytes.fromhex("1ACFFC1D")
    p = tc(data=b"abc")
    assert frame(p) == ASM + p
    assert frame(bytearray(p)) == ASM + p


@pytest.mark.parametrize("kw", [
    dict(min_packet=6), dict(min_packet=7),              # a CRC would overlap the primary header
    dict(min_packet=50, max_packet=40),
    dict(max_packet=6 + 0x10000 + 1),                     # beyond the largest space packet
])
def test_constructor_rejects_impossible_limits(kw: dict) -> None:
    with pytest.raises(ValueError):
        Deframer(**kw)


def test_constructor_limits_that_are_allowed() -> None:
    assert Deframer(min_packet=8).min_packet == 8
    assert Deframer(min_packet=7, check_crc=False).min_packet == 7
    assert Deframer(max_packet=6 + 0x10000).max_packet == 6 + 0x10000
    d = Deframer()
    assert (d.min_packet, d.max_packet, d.buffered) == (DEFAULT_MIN_PACKET, DEFAULT_MAX_PACKET, 0)


def test_overtaken_tells_a_dead_partial_frame_from_a_slow_one() -> None:
    d = Deframer(max_packet=MAX)
    assert not d.overtaken                      # nothing buffered
    d.feed(ASM[:3])
    assert not d.overtaken                      # a tail that may become a marker
    whole = frame(tc(data=b"q" * 50, seq=1))
    d = Deframer(max_packet=MAX)
    assert d.feed(whole[:30]) == []
    assert not d.overtaken                      # a partial frame, its bytes maybe still on the way
    assert d.feed(whole[30:]) == [whole[4:]]    # ... and they were
    assert d.feed(whole[:30] + frame(tc(seq=2))) == []
    assert d.overtaken                          # a frame began after it: it will never be completed
    got = d.flush()
    assert got == [Dropped(DropReason.TRUNCATED, 30), tc(seq=2)] and d.buffered == 0


def test_empty_feed_and_flush() -> None:
    c = Checked()
    assert c.feed(b"") == []
    assert c.flush() == []


# -- every byte-level sample three ways (as h11's tests do) --------------------------------------------

def _samples() -> dict[str, list[bytes]]:
    return {
        "min_tc": [tc()],
        "tm_with_data": [PusTm(0x20, 3, 25, b"\x01\x02\x03", time=12.5).pack()],
        "marker_inside_data": [tc(data=b"xx" + ASM + b"yy" + ASM)],
        "fake_frame_inside_data": [tc(data=ASM + fake_header(10) + b"z" * 4)],
        "idle_apid": [PusTm(IDLE_APID, 0, 0, b"\xff" * 8).pack()],
        "back_to_back": [tc(seq=1), PusTm(0x21, 1, 1, b"ok").pack(), tc(data=b"q" * 50, seq=2)],
        "max_packet": [sized_tc(MAX)],
        "max_then_min": [sized_tc(MAX), sized_tc(13)],
    }


SAMPLES = _samples()


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_whole(name: str) -> None:
    pkts = SAMPLES[name]
    c = Checked(max_packet=MAX)
    assert c.feed(b"".join(frame(p) for p in pkts)) == pkts
    assert c.flush() == []
    assert c.drops == []


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_one_byte_at_a_time(name: str) -> None:
    pkts = SAMPLES[name]
    stream = b"".join(frame(p) for p in pkts)
    ends = []
    pos = 0
    for p in pkts:
        pos += len(ASM) + len(p)
        ends.append(pos)
    c = Checked(max_packet=MAX)
    for k in range(len(stream)):
        got = c.feed(stream[k:k + 1])
        if k + 1 in ends:  # a packet comes out exactly with its last byte, not before
            assert got == [pkts[ends.index(k + 1)]]
        else:
            assert got == []
    assert c.packets == pkts and c.drops == [] and c.d.buffered == 0


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=examples(40))
@given(before=junk(), after=junk(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_sample_with_junk_around(name: str, before: bytes, after: bytes, cuts: list[int]) -> None:
    pkts = SAMPLES[name]
    stream = before + b"".join(frame(p) for p in pkts) + after
    c = Checked(max_packet=MAX)
    for chunk in split(stream, cuts):
        c.feed(chunk)
    c.flush()
    assert c.packets == pkts
    assert {d.reason for d in c.drops} <= {DropReason.NO_SYNC}
    assert sum(d.nbytes for d in c.drops) == len(before) + len(after)


# -- every length edge case (one regression test each) ---------------------------------------------

GOOD = tc(data=b"good frame, longer than any minimum", seq=77)


def _then_good(c: Checked) -> None:
    """Whatever happened before, the next good frame comes through."""
    c.feed(frame(GOOD))
    c.flush()
    assert c.packets[-1] == GOOD


def test_length_field_zero_gives_seven_octets_below_the_minimum() -> None:
    # the field counts octets - 1, so its smallest value (0) means 7 octets: header + 1
    c = Checked(max_packet=MAX)
    got = c.feed(ASM + fake_header(0) + b"\x00")
    assert [d.reason for d in got if isinstance(d, Dropped)] == [DropReason.LENGTH_SHORT]
    assert c.d.buffered <= SLACK  # rejected from the header alone, without waiting for a body
    _then_good(c)


def test_length_field_below_the_minimum_packet() -> None:
    c = Checked(max_packet=MAX)
    got = c.feed(ASM + fake_header(DEFAULT_MIN_PACKET - 8) + bytes(DEFAULT_MIN_PACKET - 7))
    assert [d.reason for d in got if isinstance(d, Dropped)] == [DropReason.LENGTH_SHORT]
    _then_good(c)


@pytest.mark.parametrize("min_packet", [8, 13, 21])
def test_length_just_below_a_configured_minimum(min_packet: int) -> None:
    c = Checked(max_packet=MAX, min_packet=min_packet)
    c.feed(ASM + fake_header(min_packet - 8) + bytes(20))
    assert c.drops and c.drops[0].reason == DropReason.LENGTH_SHORT
    _then_good(c)


@pytest.mark.parametrize("have", range(0, 6))
def test_frame_cut_inside_its_header_waits_then_flush_drops_it(have: int) -> None:
    # "below the header": fewer octets than a primary header after the marker
    c = Checked(max_packet=MAX)
    assert c.feed(ASM + GOOD[:have]) == []
    assert c.d.buffered == len(ASM) + have
    got = c.flush()
    assert got == [Dropped(DropReason.TRUNCATED, len(ASM) + have)]
    _then_good(c)


def test_exactly_the_minimum_packet() -> None:
    p = sized_tc(DEFAULT_MIN_PACKET)
    c = Checked(max_packet=MAX)
    assert c.feed(frame(p)) == [p]


def test_exactly_the_maximum_packet() -> None:
    p = sized_tc(MAX)
    c = Checked(max_packet=MAX)
    assert c.feed(frame(p)) == [p]
    assert c.d.buffered == 0


def test_maximum_packet_plus_one_is_refused_from_the_header_alone() -> None:
    c = Checked(max_packet=MAX)
    got = c.feed(ASM + fake_header(MAX + 1 - 7))
    assert [d.reason for d in got if isinstance(d, Dropped)] == [DropReason.LENGTH_LONG]
    assert c.d.buffered <= SLACK  # did not wait for MAX + 1 octets
    _then_good(c)


def test_maximum_packet_plus_one_real_packet() -> None:
    c = Checked(max_packet=MAX)
    c.feed(frame(sized_tc(MAX + 1)))
    assert c.packets == [] and c.drops[0].reason == DropReason.LENGTH_LONG
    _then_good(c)


def test_length_beyond_the_buffer_waits_then_completes() -> None:
    p = sized_tc(200)
    f = frame(p)
    c = Checked(max_packet=MAX)
    assert c.feed(f[:100]) == []
    assert c.d.buffered == 100
    assert c.feed(f[100:-1]) == []
    assert c.d.buffered == len(f) - 1
    assert c.feed(f[-1:]) == [p]
    assert c.d.buffered == 0


def test_maximum_ccsds_length_with_a_small_max_packet() -> None:
    c = Checked(max_packet=64)
    got = c.feed(ASM + fake_header(0xFFFF) + b"\x00" * 10)
    assert [d.reason for d in got if isinstance(d, Dropped)] == [DropReason.LENGTH_LONG]
    assert c.d.buffered <= SLACK
    _then_good(c)


def test_maximum_ccsds_length_accepted_when_max_packet_allows() -> None:
    p = PusTc(1, 8, 1, bytes(0x10000 - 7)).pack()
    assert len(p) == 6 + 0x10000
    c = Checked(max_packet=6 + 0x10000)
    assert c.feed(frame(p)) == [p]


@pytest.mark.parametrize("version", range(1, 8))
def test_bad_version_is_refused_from_the_header_alone(version: int) -> None:
    c = Checked(max_packet=MAX)
    got = c.feed(ASM + fake_header(10, first=(version << 5) | 0x18))
    assert [d.reason for d in got if isinstance(d, Dropped)] == [DropReason.BAD_VERSION]
    _then_good(c)


# -- resynchronisation ---------------------------------------------------------------------------------

def test_resync_after_a_crc_error() -> None:
    bad = bytearray(tc(data=b"damaged"))
    bad[-1] ^= 0x40
    c = Checked(max_packet=MAX)
    got = c.feed(frame(bytes(bad)) + frame(GOOD))
    assert got == [Dropped(DropReason.CRC, len(ASM) + len(bad)), GOOD]


def test_crc_check_can_be_disabled() -> None:
    bad = bytearray(tc(data=b"damaged"))
    bad[-1] ^= 0x40
    d = Deframer(max_packet=MAX, check_crc=False)
    assert d.feed(frame(bytes(bad))) == [bytes(bad)]


def test_fake_marker_with_huge_length_then_good_frame_then_flush() -> None:
    c = Checked(max_packet=MAX)
    c.feed(b"noise" + ASM + fake_header(0xFFFF) + b"more noise" + frame(GOOD))
    c.flush()
    assert c.packets == [GOOD]
    assert [d.reason for d in c.drops] == [DropReason.NO_SYNC, DropReason.LENGTH_LONG]


def test_fake_marker_with_plausible_length_then_good_frame_then_flush() -> None:
    # the fake frame claims 250 octets: the good frame sits inside the claimed span, and the line
    # goes quiet before the span fills; flush() gives up on the fake and finds the good frame
    c = Checked(max_packet=MAX)
    assert c.feed(ASM + fake_header(250 - 7) + b"xyz" + frame(GOOD)) == []
    c.flush()
    assert c.packets == [GOOD]
    assert [d.reason for d in c.drops] == [DropReason.TRUNCATED]


def test_fake_marker_with_plausible_length_resolved_by_more_traffic() -> None:
    # no flush: later traffic fills the fake span, its CRC fails, and the frames inside are re-scanned
    later = [tc(data=b"n%02d" % i + bytes(20), seq=i) for i in range(12)]
    assert sum(len(frame(p)) for p in later) > 250
    c = Checked(max_packet=MAX)
    c.feed(ASM + fake_header(250 - 7) + frame(GOOD) + b"".join(frame(p) for p in later))
    assert c.packets == [GOOD, *later]
    assert [d.reason for d in c.drops] == [DropReason.CRC]


def test_flush_gives_up_a_partial_frame_for_good() -> None:
    f = frame(GOOD)
    c = Checked(max_packet=MAX)
    c.feed(f[:20])
    assert c.flush() == [Dropped(DropReason.TRUNCATED, 20)]
    c.feed(f[20:])  # the rest arrives after the gap: it has no marker, it is noise
    c.flush()
    assert c.packets == []
    _then_good(c)


def test_flush_through_a_pile_of_stale_markers() -> None:
    # regression: flush() used to recurse once per stale marker (RecursionError at ~1000 markers)
    fake = ASM + fake_header(60_000)
    c = Checked(max_packet=6 + 0x10000)
    c.feed(fake * 6000 + frame(GOOD))
    assert c.packets == []
    c.flush()
    assert c.packets == [GOOD]
    # one drop record per stale marker (the first few spans fill up with the pile itself: crc)
    assert len(c.drops) == 6000
    assert {d.reason for d in c.drops} <= {DropReason.TRUNCATED, DropReason.CRC}


def test_marker_split_across_feeds_is_found() -> None:
    f = frame(GOOD)
    for k in range(1, len(ASM)):
        c = Checked(max_packet=MAX)
        got = c.feed(b"\x00" * 7 + f[:k])
        assert all(isinstance(d, Dropped) and d.reason == DropReason.NO_SYNC for d in got)
        assert c.d.buffered <= SLACK  # the tail that may start a marker
        assert [o for o in c.feed(f[k:]) if isinstance(o, bytes)] == [GOOD]


def test_stats_report_every_reason() -> None:
    c = Checked(max_packet=MAX)
    bad = bytearray(GOOD)
    bad[-1] ^= 1
    c.feed(b"xx" + ASM + fake_header(0) + ASM + fake_header(0xFFFF) + ASM + fake_header(5, first=0xF8)
           + frame(bytes(bad)) + frame(GOOD) + ASM + GOOD[:9])
    c.flush()
    s = c.d.stats()
    assert s["packets"] == 1 and s["bytes_in"] == c.fed
    assert s["dropped_bytes"] == sum(d.nbytes for d in c.drops)
    for r in DropReason.ALL:
        assert s[f"drop_{r}"] == 1, r


# -- properties ---------------------------------------------------------------------------------------

@st.composite
def noise(draw: st.DrawFn) -> bytes:
    """Noise, often holding fake markers followed by huge, plausible or nonsense lengths."""
    pieces = draw(st.lists(st.one_of(
        st.binary(max_size=40),
        st.builds(lambda n: ASM + fake_header(n), st.integers(0, 0xFFFF)),
        st.builds(lambda: ASM + fake_header(0xFFFF)),
        st.builds(lambda n: ASM + fake_header(n - 7), st.integers(DEFAULT_MIN_PACKET, MAX)),
        st.builds(lambda h: ASM + h, st.binary(min_size=0, max_size=6)),
        st.sampled_from([ASM[:1], ASM[:2], ASM[:3]]),
    ), min_size=1, max_size=8))
    return b"".join(pieces)


@settings(max_examples=examples(500))
@given(noise(), pus_packets, st.lists(st.integers(0, 10_000), max_size=8))
def test_good_frame_after_noise_is_never_lost(pre: bytes, good: bytes, cuts: list[int]) -> None:
    c = Checked(max_packet=MAX)
    for chunk in split(pre + frame(good), cuts):
        c.feed(chunk)
    c.flush()
    assert c.packets and c.packets[-1] == good


@settings(max_examples=examples(400))
@given(st.lists(st.binary(max_size=300), max_size=12), st.sampled_from([16, 64, MAX, 4096]))
def test_arbitrary_chunks_never_raise_and_stay_bounded(chunks: list[bytes], max_packet: int) -> None:
    c = Checked(max_packet=max_packet)
    for ch in chunks:
        c.feed(ch)
    c.flush()


@st.composite
def mutated_stream(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    pkts = draw(st.lists(pus_packets, min_size=1, max_size=6))
    data = bytearray(b"".join(frame(p) for p in pkts))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "dup", "marker", "length"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 20))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=20))
        elif op == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 60))]
        elif op == "marker":
            data[i:i] = ASM + fake_header(draw(st.integers(0, 0xFFFF)))
        elif op == "length" and len(data) >= i + 2:
            data[i:i + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    return pkts, bytes(data)


@settings(max_examples=examples(400))
@given(mutated_stream(), st.lists(st.integers(0, 10_000), max_size=10))
def test_mutated_streams_never_raise_and_account_for_every_byte(sample, cuts: list[int]) -> None:
    _, data = sample
    c = Checked(max_packet=MAX)
    for chunk in split(data, cuts):
        c.feed(chunk)
    c.flush()
    for p in c.packets:  # what comes out is a structurally valid packet...
        parse_packet(p)


@settings(max_examples=examples(300))
@given(st.lists(pus_packets, min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=10))
def test_clean_stream_in_any_chunking_gives_every_packet(pkts: list[bytes], cuts: list[int]) -> None:
    c = Checked(max_packet=MAX)
    for chunk in split(b"".join(frame(p) for p in pkts), cuts):
        c.feed(chunk)
    assert c.d.buffered == 0 and c.flush() == []
    assert c.packets == pkts and c.drops == []


def _corrupt(rng: random.Random, f: bytes) -> bytes:
    b = bytearray(f)
    how = rng.choice(["flip", "truncate", "junk", "length", "marker"])
    if how == "flip":
        bit = rng.randrange(len(b) * 8)
        b[bit // 8] ^= 0x80 >> (bit % 8)
    elif how == "truncate":
        del b[rng.randrange(len(b)):]
    elif how == "junk":
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(rng.randint(1, 30))
    elif how == "length":
        b[8:10] = rng.randrange(0x10000).to_bytes(2, "big")
    else:
        b[rng.randrange(len(b)):] = b""
        b += ASM[:rng.randint(1, 3)]
    return bytes(b)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stream_with_one_percent_damaged_frames_gives_exactly_the_good_ones(seed: int) -> None:
    rng = random.Random(seed)
    expected: list[bytes] = []
    stream = bytearray()
    damaged = 0
    for n in range(3000):
        if rng.random() < 0.5:
            p = PusTc(rng.randrange(0x7FF), 8, 1, rng.randbytes(rng.randint(0, 200)), seq_count=n & 0x3FFF).pack()
        else:
            p = PusTm(rng.randrange(0x7FF), 3, 25, rng.randbytes(rng.randint(0, 200)), seq_count=n & 0x3FFF,
                      time_coarse=n).pack()
        if rng.random() < 0.01:
            stream += _corrupt(rng, frame(p))
            damaged += 1
        else:
            stream += frame(p)
            expected.append(p)
    assert damaged > 10
    c = Checked(max_packet=MAX)
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, 700)
        c.feed(bytes(stream[pos:pos + n]))
        pos += n
    c.flush()
    assert c.packets == expected
    assert len(c.drops) >= damaged
