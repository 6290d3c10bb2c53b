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
