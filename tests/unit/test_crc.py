"""CRC-16/CCITT-FALSE, the PUS packet error control (ECSS-E-ST-70-41C annex B)."""

from __future__ import annotations

import binascii
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.protocol import USING_C_EXTENSION, append_crc, check_crc, crc16
from fsw.protocol.crc import CRC_LEN, CRC_NAME
from tests.conftest import examples


def test_check_value_of_the_catalogue() -> None:
    # the "check" value every CRC catalogue gives for CRC-16/CCITT-FALSE (= CRC-16/IBM-3740)
    assert crc16(b"123456789") == 0x29B1


def test_empty_input_gives_the_initial_value() -> None:
    assert crc16(b"") == 0xFFFF


def test_crcmod_runs_its_c_extension() -> None:
    # crcmod silently falls back to pure Python (20x slower) when its extension did not build
    assert USING_C_EXTENSION is True
    assert sys.modules["crcmod.crcmod"]._usingExtension is True
    assert "crcmod._crcfunext" in sys.modules


def test_the_catalogue_entry_is_the_pus_one() -> None:
    import crcmod.predefined

    fn = crcmod.predefined.mkPredefinedCrcFun(CRC_NAME)
    assert fn(b"123456789") == 0x29B1


@settings(max_examples=examples(300))
@given(st.binary(max_size=600))
def test_agrees_with_binascii_crc_hqx(data: bytes) -> None:
    assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)


@settings(max_examples=examples(200))
@given(st.binary(max_size=300))
def test_accepts_bytearray_and_memoryview(data: bytes) -> None:
    ba = bytearray(data)
    assert crc16(ba) == crc16(memoryview(ba)) == crc16(memoryview(data)) == crc16(data)


@settings(max_examples=examples(200))
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_chaining_chunks_equals_one_pass(a: bytes, b: bytes) -> None:
    assert crc16(b, crc16(a)) == crc16(a + b)


@settings(max_examples=examples(200))
@given(st.binary(max_size=300))
def test_append_then_check(data: bytes) -> None:
    framed = append_crc(data)
    assert len(framed) == len(data) + CRC_LEN
    assert framed[:-2] == data
    assert int.from_bytes(framed[-2:], "big") == crc16(data)
    assert check_crc(framed)
    assert check_crc(bytearray(framed)) and check_crc(memoryview(framed))


@settings(max_examples=examples(200))
@given(st.binary(max_size=300))
def test_residue_over_data_and_its_own_crc_is_zero(data: bytes) -> None:
    # why an outer CRC of the same kind over a packet ending in its CRC checks nothing
    # (shared/reference/reliability.md item 3)
    assert crc16(append_crc(data)) == 0


@settings(max_examples=examples(300))
@given(st.binary(min_size=1, max_size=200), st.data())
def test_every_single_bit_error_is_detected(data: bytes, draw: st.DataObject) -> None:
    framed = bytearray(append_crc(data))
    bit = draw.draw(st.integers(0, len(framed) * 8 - 1))
    framed[bit // 8] ^= 0x80 >> (bit % 8)
    assert not check_crc(framed)


@settings(max_examples=examples(200))
@given(st.binary(min_size=3, max_size=200), st.data())
def test_every_burst_up_to_16_bits_is_detected(data: bytes, draw: st.DataObject) -> None:
    framed = bytearray(append_crc(data))
    nbits = len(framed) * 8
    length = draw.draw(st.integers(1, 16))
    start = draw.draw(st.integers(0, nbits - length))
    # a burst: first and last bit flipped, anything in between
    pattern = (1 << (length - 1)) | 1 | (draw.draw(st.integers(0, (1 << length) - 1)) & ((1 << length) - 1))
    as_int = int.from_bytes(framed, "big") ^ (pattern << (nbits - start - length))
    assert not check_crc(as_int.to_bytes(len(framed), "big"))


def test_check_crc_on_too_short_input_is_false_not_an_error() -> None:
    assert check_crc(b"") is False
    assert check_crc(b"\x00") is False


@settings(max_examples=examples(200))
@given(st.binary(max_size=300))
def test_the_hot_paths_call_crcmods_c_routine_directly(data: bytes) -> None:
    from fsw.protocol.crc import CRC_TABLE, _crc_c

    assert type(_crc_c).__name__ == "builtin_function_or_method"  # the C routine, not the Python wrapper
    assert _crc_c(data, 0xFFFF, CRC_TABLE) == crc16(data) == binascii.crc_hqx(data, 0xFFFF)
    assert _crc_c(memoryview(data), 0xFFFF, CRC_TABLE) == crc16(data)
