"""CUC 4+2 time code (CCSDS 301.0-B-4 section 3.2) with an implicit P-field, and the mission epoch.

Conversions are checked both ways: seconds <-> CucTime <-> datetime.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.dictionary.loader import load_yaml, package_reader
from fsw.protocol import CUC_LEN, P_FIELD, BytesTooShortError, CucTime, LocalProtocolError, MissionEpoch
from fsw.protocol.timecode import FINE_RESOLUTION, MAX_COARSE, seconds_to_cuc_fields
from tests.conftest import examples

TICK = 2.0**-16

cucs = st.builds(CucTime, st.integers(0, MAX_COARSE), st.integers(0, 0xFFFF))
seconds = st.floats(min_value=0.0, max_value=MAX_COARSE + 1.0, exclude_max=True, allow_nan=False)
epochs = st.datetimes(min_value=datetime(1958, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(timezone.utc)).map(MissionEpoch)


# -- the P-field these settings would have ------------------------------------------------------------

def test_p_field_describes_4_plus_2_agency_epoch() -> None:
    extension, code_id = P_FIELD >> 7, (P_FIELD >> 4) & 0b111
    coarse_octets, fine_octets = ((P_FIELD >> 2) & 0b11) + 1, P_FIELD & 0b11
    assert extension == 0            # no second P-field octet
    assert code_id == 0b010          # level 2: agency-defined epoch
    assert (coarse_octets, fine_octets) == (4, 2)
    assert CUC_LEN == coarse_octets + fine_octets  # the P-field is implicit: not on the wire
    assert FINE_RESOLUTION == TICK


# -- CucTime -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("coarse,fine", [(-1, 0), (MAX_COARSE + 1, 0), (0, -1), (0, 0x10000)])
def test_fields_are_range_checked(coarse: int, fine: int) -> None:
    with pytest.raises(LocalProtocolError):
        CucTime(coarse, fine)


@settings(max_examples=examples(500))
@given(cucs)
def test_pack_unpack_round_trip(c: CucTime) -> None:
    raw = c.pack()
    assert len(raw) == CUC_LEN
    assert int.from_bytes(raw, "big") == (c.coarse << 16) | c.fine
    assert CucTime.unpack(raw) == c
    assert CucTime.unpack(b"\xaa" + raw + b"\x55", 1) == c


@pytest.mark.parametrize("n", range(CUC_LEN))
def test_unpack_too_short(n: int) -> None:
    with pytest.raises(BytesTooShortError) as ei:
        CucTime.unpack(bytes(n))
    assert ei.value.expected_len == CUC_LEN and ei.value.bytes_len == n


@settings(max_examples=examples(500))
@given(cucs)
def test_cuc_to_seconds_to_cuc_is_exact(c: CucTime) -> None:
    # 32 + 16 bits fit a double's 53-bit mantissa: no rounding anywhere
    assert c.seconds == c.coarse + c.fine / 65536
    assert CucTime.from_seconds(c.seconds) == c


@settings(max_examples=examples(500))
@given(seconds)
def test_seconds_to_cuc_rounds_down_to_the_tick(s: float) -> None:
    c = CucTime.from_seconds(s)
    assert c.seconds <= s < c.seconds + TICK
    assert seconds_to_cuc_fields(s) == (c.coarse, c.fine)


@settings(max_examples=examples(300))
@given(cucs, cucs)
def test_order_is_time_order(a: CucTime, b: CucTime) -> None:
    assert (a < b) == (a.seconds < b.seconds)
    assert (a == b) == (a.seconds == b.seconds)


@pytest.mark.parametrize("s", [-TICK, -1.0, float(MAX_COARSE + 1), math.inf, -math.inf, math.nan])
def test_from_seconds_rejects_what_4_plus_2_cannot_hold(s: float) -> None:
    with pytest.raises(LocalProtocolError):
        CucTime.from_seconds(s)


def test_largest_and_smallest_values() -> None:
    assert CucTime.from_seconds(0.0) == CucTime(0, 0)
    top = math.nextafter(MAX_COARSE + 1.0, 0.0)
    assert CucTime.from_seconds(top) == CucTime(MAX_COARSE, 0xFFFF)


@pytest.mark.parametrize("s,expected", [
    (-5.0, (0, 0)), (0.0, (0, 0)), (math.nan, (0, 0)), (-math.inf, (0, 0)),
    (float(MAX_COARSE + 1), (MAX_COARSE, 0xFFFF)), (1e30, (MAX_COARSE, 0xFFFF)), (math.inf, (MAX_COARSE, 0xFFFF)),
])
def test_encoder_fast_path_clamps_instead_of_raising(s: float, expected: tuple[int, int]) -> None:
    assert seconds_to_cuc_fields(s) == expected


# -- MissionEpoch ----------------------------------------------------------------------------------

def test_parse_forms() -> None:
    z = MissionEpoch.parse("2027-03-01T00:00:00Z")
    assert z.epoch == datetime(2027, 3, 1, tzinfo=timezone.utc)
    assert MissionEpoch.parse("2027-03-01T02:00:00+02:00") == z  # normalised to UTC
    assert MissionEpoch.parse("2027-03-01T00:00:00") == z        # naive means UTC
    assert MissionEpoch.parse("2027-03-01 00:00:00+00:00") == z  # what str() of a YAML timestamp gives
    assert MissionEpoch.parse("2027-03-01T02:00:00+02:00").epoch.utcoffset() == timedelta(0)


def test_epoch_must_be_timezone_aware() -> None:
    with pytest.raises(LocalProtocolError):
        MissionEpoch(datetime(2027, 3, 1))
    with pytest.raises(LocalProtocolError):
        MissionEpoch.parse("2027-03-01T00:00:00Z").from_datetime(datetime(2027, 3, 1))
    with pytest.raises(LocalProtocolError):
        MissionEpoch.parse("2027-03-01T00:00:00Z").to_cuc(datetime(2027, 3, 1))


def test_reference_mission_epoch_comes_from_mission_yaml() -> None:
    from fsw.dictionary import load_dictionary

    declared = load_yaml(package_reader()("mission.yaml"))["mission"]["epoch"]
    assert load_dictionary().epoch == MissionEpoch.parse(str(declared))


def test_epoch_is_configurable() -> None:
    a = MissionEpoch.parse("2027-03-01T00:00:00Z")
    b = MissionEpoch.parse("2000-01-01T12:00:00Z")  # J2000
    assert a.to_datetime(3600.0) - a.epoch == b.to_datetime(3600.0) - b.epoch == timedelta(hours=1)
    assert a.to_datetime(0.0) != b.to_datetime(0.0)
    assert b.from_datetime(a.epoch) == (a.epoch - b.epoch).total_seconds()
    assert MissionEpoch.parse("1970-01-01T00:00:00Z").unix_offset() == 0.0
    assert a.unix_offset() == a.epoch.timestamp()


@settings(max_examples=examples(300))
@given(epochs, st.integers(0, (MAX_COARSE << 16) | 0xFFFF))
def test_cuc_to_datetime_to_cuc_is_exact(e: MissionEpoch, ticks: int) -> None:
    # a datetime resolves 1 us, finer than a CUC tick (15.26 us): nothing may be lost
    c = CucTime(ticks >> 16, ticks & 0xFFFF)
    dt = e.from_cuc(c)
    assert dt.tzinfo is not None
    assert abs((dt - e.epoch) / timedelta(microseconds=1) - ticks * 1e6 / 65536) <= 0.5
    assert e.to_cuc(dt) == c


@settings(max_examples=examples(300))
@given(epochs, st.integers(0, MAX_COARSE * 1_000_000))
def test_datetime_to_cuc_to_datetime_is_within_half_a_tick(e: MissionEpoch, us: int) -> None:
    dt = e.epoch + timedelta(microseconds=us)
    c = e.to_cuc(dt)
    back = e.from_cuc(c)
    assert abs(back - dt) <= timedelta(microseconds=TICK / 2 * 1e6 + 1)
    assert e.to_cuc(back) == c


@settings(max_examples=examples(300))
@given(epochs, st.integers(0, MAX_COARSE * 1_000_000))
def test_seconds_and_datetime_round_trip(e: MissionEpoch, us: int) -> None:
    s = us / 1e6
    dt = e.to_datetime(s)
    assert abs(e.from_datetime(dt) - s) <= 1e-6
    assert e.to_datetime(e.from_datetime(dt)) == dt


def test_to_cuc_rejects_times_before_the_epoch_or_past_the_range() -> None:
    e = MissionEpoch.parse("2027-03-01T00:00:00Z")
    with pytest.raises(LocalProtocolError):
        e.to_cuc(e.epoch - timedelta(seconds=1))
    with pytest.raises(LocalProtocolError):
        e.to_cuc(e.epoch + timedelta(seconds=MAX_COARSE + 1))


def test_iso_rendering() -> None:
    e = MissionEpoch.parse("2027-03-01T00:00:00Z")
    assert e.iso(0.0) == "2027-03-01T00:00:00.000Z"
    assert e.iso(86400 + 1.25) == "2027-03-02T00:00:01.250Z"
