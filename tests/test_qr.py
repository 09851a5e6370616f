"""`invoices.qr.data_matrix` against segno, its reference, and read back as ISO/IEC 18004 has it.

segno 1.6 writes a 0x00 codeword after the terminator when the bit stream ends on a codeword
boundary, always so in byte mode (segno issue #148); `data_matrix` puts the pad codewords right
after the terminator (7.4.10). So the symbols are compared with segno's made with the padding
of the standard (segno's padding step replaced for the call), and with segno's own output
they are equal only when no padding is needed; otherwise the data codewords read back from
both must differ by exactly that 0x00, everything else equal.

`data_matrix` encodes the text as UTF-8 in byte mode; segno's default picks the mode and the
encoding (ISO/IEC 8859-1 first) from the content, so the reference call here names both. For
the invoice's URLs (ASCII, lower-case letters) the two calls agree.
"""

import contextlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st
from segno import consts as segno_consts
from segno import encoder as segno_encoder

from invoices.qr import MAX_BYTES, data_matrix

# segno's internals, untyped: its tables and the building blocks of its encoder.
consts: Any = segno_consts
encoder: Any = segno_encoder

BYTE_MODE = 0b0100
PADS = b"\xec\x11"


def test_every_version_at_and_just_below_its_capacity() -> None:
    rng = random.Random(18004)
    for version in range(1, 41):
        capacity = byte_capacity(version)
        for length in (capacity, capacity - 1):
            text = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789-./:", k=length))
            assert data_matrix(text)[0] == version, (version, length)
            check(text)


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=300))
def test_ascii_texts(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_texts(text: str) -> None:
    check(text)


def test_the_invoice_urls_are_what_segnos_default_call_makes_up_to_the_padding() -> None:
    rng = random.Random(7)
    for _ in range(20):
        session = uuid.UUID(int=rng.getrandbits(128), version=4)
        url = f"https://ladebuch.example/v1/sessions/{session}/transparency.xml"
        version, modules = data_matrix(url)
        code = segno.make_qr(url, error="m", boost_error=False, mask=0)
        assert (code.mode, int(code.version)) == ("byte", version)
        assert (version, matrix_bytes(code)) == segno_symbol(url, standard_padding=False)
        check(url)


def test_non_ascii_is_utf8() -> None:
    version, modules = data_matrix("Grüße €")
    data, _ = parse_byte_mode(read_data_codewords(version, modules), version)
    assert data == "Grüße €".encode()


def test_too_long_a_text_is_refused() -> None:
    assert data_matrix("x" * MAX_BYTES)[0] == 40
    with pytest.raises(ValueError, match="2332 bytes .* at most 2331 bytes"):
        data_matrix("x" * (MAX_BYTES + 1))
    with pytest.raises(ValueError, match="2332 bytes"):
        data_matrix("é" * 1166)  # 1166 characters, two bytes each in UTF-8


# --- The checks -----------------------------------------------------------------------------


def check(text: str) -> None:
    """The symbol is segno's with the standard's padding; it reads back to the text with pad
    codewords right after the terminator; segno's own symbol differs by issue #148 only."""
    version, modules = data_matrix(text)
    assert (version, modules) == segno_symbol(text, standard_padding=True), text
    codewords = read_data_codewords(version, modules)
    data, padding = parse_byte_mode(codewords, version)
    assert data == text.encode("utf-8")
    assert padding == (PADS * len(padding))[: len(padding)]

    segno_version, segno_modules = segno_symbol(text, standard_padding=False)
    assert segno_version == version
    if not padding:
        assert segno_modules == modules
        return
    assert [modules[i] for i in function_region(version)] == [
        segno_modules[i] for i in function_region(version)
    ]
    theirs = read_data_codewords(version, segno_modules)
    used = len(codewords) - len(padding)
    assert theirs == codewords[:used] + (b"\x00" + padding)[: len(padding)]


def segno_symbol(text: str, standard_padding: bool) -> tuple[int, bytes]:
    """segno's symbol in UTF-8 byte mode, level M, mask 0; with `standard_padding`, segno's
    padding step does what 7.4.10 says: zero bits up to the codeword boundary, if any."""
    with padded_as_the_standard() if standard_padding else contextlib.nullcontext():
        code = segno.make_qr(
            text, error="m", boost_error=False, mask=0, mode="byte", encoding="utf-8"
        )
    return int(code.version), matrix_bytes(code)


@contextlib.contextmanager
def padded_as_the_standard() -> Iterator[None]:
    original = encoder.write_padding_bits

    def write_padding_bits(buff: Any, version: int, length: int) -> None:
        if length % 8:
            original(buff, version, length)

    encoder.write_padding_bits = write_padding_bits
    try:
        yield
    finally:
        encoder.write_padding_bits = original


def matrix_bytes(code: segno.QRCode) -> bytes:
    return bytes(module for row in code.matrix for module in row)


# --- Reading a symbol back (7.7.3, 7.6, 7.5.2, 7.4), independent of invoices.qr --------------


def byte_capacity(version: int) -> int:
    """Bytes that fit: the data bits less 4 mode bits and 8 or 16 count bits (Tables 3, 7)."""
    data_bits: int = consts.SYMBOL_CAPACITY[version][consts.ERROR_LEVEL_M]
    return (data_bits - 4 - (8 if version < 10 else 16)) // 8


def function_region(version: int) -> list[int]:
    size = 17 + 4 * version
    data = set(data_region_order(version))
    return [i for i in range(size * size) if i not in data]


def data_region_order(version: int) -> list[int]:
    """The data region's modules (row * size + column) in placement order: two-module columns
    from the right, alternately up and down, column 6 (timing) skipped. The function patterns
    are segno's, from its own building blocks."""
    size = 17 + 4 * version
    matrix = encoder.make_matrix(size, size)
    encoder.add_finder_patterns(matrix, size, size)
    encoder.add_alignment_patterns(matrix, size, size)
    matrix[-8][8] = 1  # the dark module
    rights = [column - 1 if column <= 6 else column for column in range(size - 1, 0, -2)]
    order = []
    for pair, right in enumerate(rights):
        rows = range(size - 1, -1, -1) if pair % 2 == 0 else range(size)
        for row in rows:
            for column in (right, right - 1):
                if matrix[row][column] == 0x2:
                    order.append(row * size + column)
    return order


def read_data_codewords(version: int, modules: bytes) -> bytes:
    """Unmask (pattern 0), read the codewords in placement order, de-interleave the blocks,
    check each block's error correction codewords; the data codewords in order."""
    size = 17 + 4 * version
    bits = "".join(
        str(modules[i] ^ ((i // size + i % size) % 2 == 0)) for i in data_region_order(version)
    )
    stream = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - 7, 8))
    assert set(bits[8 * len(stream) :]) <= {"0"}  # remainder bits
    blocks = [
        (ec.num_data, ec.num_total - ec.num_data)
        for ec in consts.ECC[version][consts.ERROR_LEVEL_M]
        for _ in range(ec.num_blocks)
    ]
    data_blocks, rest = deinterleave(stream, [length for length, _ in blocks])
    ec_blocks, rest = deinterleave(rest, [length for _, length in blocks])
    assert rest == b""
    for data, correction in zip(data_blocks, ec_blocks, strict=True):
        assert reed_solomon(data, len(correction)) == correction
    return b"".join(data_blocks)


def deinterleave(stream: bytes, lengths: list[int]) -> tuple[list[bytes], bytes]:
    blocks = [bytearray() for _ in lengths]
    taken = 0
    for index in range(max(lengths)):
        for block, length in zip(blocks, lengths, strict=True):
            if index < length:
                block.append(stream[taken])
                taken += 1
    return [bytes(block) for block in blocks], stream[taken:]


def reed_solomon(data: bytes, count: int) -> bytes:
    """The remainder of data(x) * x^count by (x - a^0)...(x - a^(count-1)), long division."""
    generator = [1]
    for power in range(count):
        root = gf_power(power)
        generator = [
            high ^ gf_multiply(low, root)
            for high, low in zip(generator + [0], [0] + generator, strict=True)
        ]
    remainder = list(data) + [0] * count
    for index in range(len(data)):
        factor = remainder[index]
        for offset, coefficient in enumerate(generator):
            remainder[index + offset] ^= gf_multiply(coefficient, factor)
    return bytes(remainder[len(data) :])


def gf_multiply(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return product


def gf_power(exponent: int) -> int:
    value = 1
    for _ in range(exponent):
        value = gf_multiply(value, 2)
    return value


def parse_byte_mode(codewords: bytes, version: int) -> tuple[bytes, bytes]:
    """One byte mode segment and the terminator: (the bytes, the codewords after them)."""
    bits = "".join(f"{codeword:08b}" for codeword in codewords)
    count_bits = 8 if version < 10 else 16
    assert int(bits[:4], 2) == BYTE_MODE
    count = int(bits[4 : 4 + count_bits], 2)
    start = 4 + count_bits
    end = start + 8 * count
    data = bytes(int(bits[i : i + 8], 2) for i in range(start, end, 8))
    assert bits[end : end + 4] == "0000"  # terminator: always room for it in byte mode
    assert (end + 4) % 8 == 0
    return data, codewords[(end + 4) // 8 :]
