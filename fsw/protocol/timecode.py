"""CCSDS Unsegmented Time Code (CUC, CCSDS 301.0-B-4 section 3.2).

The mission uses 4 octets of coarse time (seconds) and 2 octets of fine time
(units of 2**-16 s) counted from an agency-defined epoch, with the P-field
implicit (not transmitted).  Were it transmitted it would read
:data:`P_FIELD` = 0x2E: no extension, time code id ``010`` (agency epoch),
4 coarse octets, 2 fine octets.

Times inside the software are plain ``float`` seconds since the mission
epoch ("mission seconds").  :class:`MissionEpoch` converts between mission
seconds and UTC datetimes; :class:`CucTime` is the on-the-wire value.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import BytesTooShortError, LocalProtocolError

COARSE_OCTETS = 4
FINE_OCTETS = 2
CUC_LEN = COARSE_OCTETS + FINE_OCTETS
#: the P-field these settings would have if it were sent (it is implicit)
P_FIELD = 0b0_010_11_10
FINE_RESOLUTION = 1.0 / 65536.0
MAX_COARSE = 0xFFFF_FFFF

_CUC = struct.Struct(">IH")
_ONE_US = timedelta(microseconds=1)
_MAX_TICKS = (MAX_COARSE << 16) | 0xFFFF


@dataclass(frozen=True, slots=True, order=True)
class CucTime:
    """A 4+2 octet CUC value."""

    coarse: int
    fine: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.coarse <= MAX_COARSE:
            raise LocalProtocolError(f"CUC coarse time {self.coarse} outside 0..{MAX_COARSE}")
        if not 0 <= self.fine <= 0xFFFF:
            raise LocalProtocolError(f"CUC fine time {self.fine} outside 0..65535")

    @classmethod
    def from_seconds(cls, seconds: float) -> "CucTime":
        """Round ``seconds`` (since the epoch) down to the nearest 2**-16 s."""
        if not math.isfinite(seconds) or seconds < 0 or seconds >= MAX_COARSE + 1:
            raise LocalProtocolError(f"{seconds!r} s cannot be expressed as 4+2 octet CUC")
        ticks = int(seconds * 65536.0)
        return cls(ticks >> 16, ticks & 0xFFFF)

    @property
    def seconds(self) -> float:
        return self.coarse + self.fine * FINE_RESOLUTION

    def pack(self) -> bytes:
        return _CUC.pack(self.coarse, self.fine)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> "CucTime":
        if len(data) - offset < CUC_LEN:
            raise BytesTooShortError(CUC_LEN, max(0, len(data) - offset), "CUC time")
        coarse, fine = _CUC.unpack_from(data, offset)
        return cls(coarse, fine)


def seconds_to_cuc_fields(seconds: float) -> tuple[int, int]:
    """Fast path used by the packet encoders: (coarse, fine), clamped to range.

    NaN and values at or below zero give (0, 0); values beyond the range
    (infinity included) give the largest CUC value.
    """
    if not seconds > 0:  # also NaN
        return 0, 0
    if seconds >= MAX_COARSE + 1:  # also +inf, which int() cannot convert
        return MAX_COARSE, 0xFFFF
    ticks = int(seconds * 65536.0)
    return ticks >> 16, ticks & 0xFFFF


@dataclass(frozen=True, slots=True)
class MissionEpoch:
    """The mission's time origin, and conversions to and from UTC."""

    epoch: datetime

    def __post_init__(self) -> None:
        if self.epoch.tzinfo is None:
            raise LocalProtocolError("mission epoch must be timezone-aware (UTC)")

    @classmethod
    def parse(cls, text: str) -> "MissionEpoch":
        """Parse an ISO-8601 string such as ``2027-01-01T00:00:00Z``."""
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return cls(dt.astimezone(timezone.utc))

    def to_datetime(self, mission_seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=mission_seconds)

    def from_datetime(self, dt: datetime) -> float:
        if dt.tzinfo is None:
            raise LocalProtocolError("datetime must be timezone-aware")
        return (dt - self.epoch).total_seconds()

    def unix_offset(self) -> float:
        """Unix time of the epoch: ``unix = mission_seconds + unix_offset()``."""
        return self.epoch.timestamp()

    def to_cuc(self, dt: datetime) -> CucTime:
        """The CUC value nearest to ``dt`` (exact integer arithmetic on microseconds).

        A datetime resolves 1 us and a CUC tick is 2**-16 s (about 15.3 us), so
        rounding to the nearest tick makes ``to_cuc(from_cuc(c)) == c`` for
        every ``c``; rounding down would lose a tick about half the time.
        """
        if dt.tzinfo is None:
            raise LocalProtocolError("datetime must be timezone-aware")
        us = (dt - self.epoch) // _ONE_US
        ticks = (us * 65536 + 500_000) // 1_000_000
        if not 0 <= ticks <= _MAX_TICKS:
            raise LocalProtocolError(f"{dt.isoformat()} cannot be expressed as 4+2 octet CUC from this epoch")
        return CucTime(ticks >> 16, ticks & 0xFFFF)

    def from_cuc(self, cuc: CucTime) -> datetime:
        """The UTC datetime of ``cuc``, to the nearest microsecond."""
        ticks = (cuc.coarse << 16) | cuc.fine
        return self.epoch + timedelta(microseconds=(ticks * 1_000_000 + 32768) >> 16)

    def iso(self, mission_seconds: float) -> str:
        return self.to_datetime(mission_seconds).isoformat(timespec="milliseconds").replace("+00:00", "Z")
