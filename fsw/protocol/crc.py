"""Packet error control: CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740).

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR, as
ECSS-E-ST-70-41C annex B asks for the PUS packet error control field.
``crc16(b"123456789") == 0x29B1``.

crcmod silently falls back to pure Python when its C extension did not
build; :data:`USING_C_EXTENSION` says which one runs, and a test insists on C.
"""

from __future__ import annotations

import sys

import crcmod.predefined

#: the crcmod catalogue name of the PUS CRC
CRC_NAME = "crc-ccitt-false"

_crc_fun = crcmod.predefined.mkPredefinedCrcFun(CRC_NAME)

# crcmod's function is a Python wrapper, ``crcfun(data, crc=init, table=..., fun=...)``, that returns
# ``fun(data, crc, table)`` (this CRC has no final XOR).  Hot paths call that C routine directly with
# :data:`CRC_TABLE`, one Python call less per packet: ``_crc_c(data, 0xFFFF, CRC_TABLE)``.
_CRC_INIT, CRC_TABLE, _crc_c = _crc_fun.__defaults__  # type: ignore[misc]
if _CRC_INIT != 0xFFFF or _crc_c(b"123456789", 0xFFFF, CRC_TABLE) != 0x29B1:  # pragma: no cover
    raise ImportError("crcmod's crc-ccitt-false routine is not the expected CRC-16/CCITT-FALSE")

#: True when crcmod runs its C extension (``_crcfunext``), not the fallback.
USING_C_EXTENSION: bool = bool(getattr(sys.modules["crcmod.crcmod"], "_usingExtension", False))

#: length of the packet error control field, in octets
CRC_LEN = 2


def crc16(data: bytes | bytearray | memoryview, initial: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data``; ``initial`` lets a caller chain chunks."""
    if initial == 0xFFFF:
        return _crc_fun(data)
    return _crc_fun(data, initial)


def append_crc(data: bytes | bytearray) -> bytes:
    """``data`` followed by its CRC, big-endian."""
    return bytes(data) + _crc_fun(data).to_bytes(2, "big")


def check_crc(packet: bytes | bytearray | memoryview) -> bool:
    """True when the last two octets of ``packet`` are the CRC of the rest."""
    if len(packet) < CRC_LEN:
        return False
    mv = memoryview(packet)
    return _crc_fun(mv[:-2]) == ((mv[-2] << 8) | mv[-1])
