"""QR code encoding (ISO/IEC 18004) for the invoice PDF, up to module placement, fast.

The invoice's appendix carries one QR code per charging session, about 30 per invoice, each the
URL of the session's transparency file. segno made them (`segno.make_qr(text, error="m",
boost_error=False, mask=0)`, ~1.1 ms per 90-character URL); this module does the same steps for
the one case the invoice needs (byte mode, UTF-8, level M, the smallest version, mask pattern 0)
in ~0.04 ms, everything that depends on the version alone being computed once per version.
`invoices.pdf` then scores the eight masks itself. segno stays the reference: the tests compare
every version and many texts with it.

One deliberate difference: segno 1.6 writes a 0x00 codeword after the terminator whenever the
bit stream already ends on a codeword boundary, which in byte mode is always (segno issue #148).
Here the pad codewords follow the terminator directly, as 7.4.10 says. Both read the same (a
reader stops at the terminator); the symbols differ wherever padding is needed.
"""

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

MAX_BYTES = 2331  # byte mode capacity of version 40 at level M (Table 7)

# Table 9, level M: per version, (error correction codewords per block, blocks in group 1, data
# codewords per block in group 1, blocks in group 2); a group 2 block holds one more data codeword.
_BLOCKS_M: tuple[tuple[int, int, int, int], ...] = (
    (10, 1, 16, 0), (16, 1, 28, 0), (26, 1, 44, 0), (18, 2, 32, 0), (24, 2, 43, 0),  # 1-5
    (16, 4, 27, 0), (18, 4, 31, 0), (22, 2, 38, 2), (22, 3, 36, 2), (26, 4, 43, 1),  # 6-10
    (30, 1, 50, 4), (22, 6, 36, 2), (22, 8, 37, 1), (24, 4, 40, 5), (24, 5, 41, 5),  # 11-15
    (28, 7, 45, 3), (28, 10, 46, 1), (26, 9, 43, 4), (26, 3, 44, 11), (26, 3, 41, 13),  # 16-20
    (26, 17, 42, 0), (28, 17, 46, 0), (28, 4, 47, 14), (28, 6, 45, 14), (28, 8, 47, 13),  # 21-25
    (28, 19, 46, 4), (28, 22, 45, 3), (28, 3, 45, 23), (28, 21, 45, 7), (28, 19, 47, 10),  # 26-30
    (28, 2, 46, 29), (28, 10, 46, 23), (28, 14, 46, 21), (28, 14, 46, 23), (28, 12, 47, 26),
    (28, 6, 47, 34), (28, 29, 46, 14), (28, 13, 46, 32), (28, 40, 47, 7), (28, 18, 47, 31),
)

# Annex E, Table E.1: row/column coordinates of the alignment pattern centres, versions 2 to 40.
_ALIGNMENT: tuple[tuple[int, ...], ...] = (
    (), (6, 18), (6, 22), (6, 26), (6, 30), (6, 34),
    (6, 22, 38), (6, 24, 42), (6, 26, 46), (6, 28, 50), (6, 30, 54), (6, 32, 58), (6, 34, 62),
    (6, 26, 46, 66), (6, 26, 48, 70), (6, 26, 50, 74), (6, 30, 54, 78), (6, 30, 56, 82),
    (6, 30, 58, 86), (6, 34, 62, 90),
    (6, 28, 50, 72, 94), (6, 26, 50, 74, 98), (6, 30, 54, 78, 102), (6, 28, 54, 80, 106),
    (6, 32, 58, 84, 110), (6, 30, 58, 86, 114), (6, 34, 62, 90, 118),
    (6, 26, 50, 74, 98, 122), (6, 30, 54, 78, 102, 126), (6, 26, 52, 78, 104, 130),
    (6, 30, 56, 82, 108, 134), (6, 34, 60, 86, 112, 138), (6, 30, 58, 86, 114, 142),
    (6, 34, 62, 90, 118, 146),
    (6, 30, 54, 78, 102, 126, 150), (6, 24, 50, 76, 102, 128, 154),
    (6, 28, 54, 80, 106, 132, 158), (6, 32, 58, 84, 110, 136, 162),
    (6, 26, 54, 82, 110, 138, 166), (6, 30, 58, 86, 114, 142, 170),
)

_BYTE_MODE = 0b0100  # mode indicator (Table 2)
_LEVEL_M = 0b00  # error correction level indicator (Table 12)
_FORMAT_MASK = 0b101010000010010  # 7.9.1
_FORMAT_GENERATOR = 0b10100110111  # BCH (15, 5), 7.9.1
_VERSION_GENERATOR = 0b1111100100101  # BCH (18, 6), 7.10
_PAD_CODEWORDS = b"\xec\x11" * 1200  # 7.4.10
_TO_MODULES = bytes.maketrans(b"01", b"\x00\x01")


def data_matrix(text: str) -> tuple[int, bytes]:
    """The QR code of `text` (UTF-8, byte mode, level M, the smallest version, no ECI) with
    mask pattern 0: (version, modules), the modules row by row, one byte each, 1 dark. Format
    and version information are those of mask 0. Raises ValueError if the text does not fit."""
    data = text.encode("utf-8")
    layout = _layout(_version_for(len(data)))
    message = _final_message(_data_codewords(data, layout), layout)
    stream = (int.from_bytes(message) << layout.remainder_bits) ^ layout.mask_flips
    # The stream's bits as "0"/"1", then the two constants the function modules point to.
    source = f"{stream:0{layout.stream_length}b}01".encode("ascii")
    return layout.version, bytes(layout.place(source)).translate(_TO_MODULES)


@dataclass(frozen=True, slots=True)
class _Layout:
    """What every symbol of one version shares."""

    version: int
    count_bits: int  # character count indicator length, byte mode (Table 3)
    data_codewords: int
    block_lengths: tuple[int, ...]  # data codewords of each block, in order
    ec_length: int  # error correction codewords per block
    ec_table: tuple[int, ...]  # per codeword value c: c * generator(x) without x^ec_length
    remainder_bits: int  # 7.6: modules left over after the last codeword
    stream_length: int  # data region modules: codeword bits plus remainder bits
    mask_flips: int  # mask pattern 0 over the data region, in placement order (7.8.2)
    # per module, row by row: the index of its bit in the stream, or of a constant "0" or "1"
    place: Callable[[bytes], tuple[int, ...]]


def _version_for(length: int) -> int:
    for version, capacity in enumerate(_CAPACITIES, start=1):
        if length <= capacity:
            return version
    raise ValueError(
        f"text of {length} bytes (UTF-8) is too long for a QR code: at level M in byte mode "
        f"version 40 holds at most {MAX_BYTES} bytes"
    )


def _data_codewords(data: bytes, layout: _Layout) -> bytes:
    """7.4: mode indicator, character count, the bytes and the 4-bit terminator, then the pad
    codewords. The header and terminator make a whole number of codewords in every version
    (4 + 8 or 16 + 8n + 4 bits); the terminator always fits, as each version's capacity in
    bytes (`_CAPACITIES`) leaves at least 4 bits for it."""
    header = _BYTE_MODE << layout.count_bits | len(data)
    stream = (header << 8 * len(data) | int.from_bytes(data)) << 4
    used = (layout.count_bits + 8) // 8 + len(data)
    return stream.to_bytes(used) + _PAD_CODEWORDS[: layout.data_codewords - used]


def _final_message(codewords: bytes, layout: _Layout) -> bytes:
    """7.6: the data blocks, each followed in its own order by its error correction codewords,
    interleaved: data codewords block by block, then error correction codewords."""
    blocks = []
    start = 0
    for length in layout.block_lengths:
        blocks.append(codewords[start : start + length])
        start += length
    corrections = [_error_correction(block, layout) for block in blocks]
    return _interleaved(blocks) + _interleaved(corrections)


def _error_correction(block: bytes, layout: _Layout) -> bytes:
    """7.5.2: the remainder of block(x) * x^n divided by the generator polynomial, n being
    the number of error correction codewords; the register holds the n coefficients as one
    integer, highest coefficient in the highest byte."""
    table = layout.ec_table
    top = 8 * (layout.ec_length - 1)
    low = (1 << top) - 1
    register = 0
    for codeword in block:
        register = (register & low) << 8 ^ table[register >> top ^ codeword]
    return register.to_bytes(layout.ec_length)


def _interleaved(blocks: list[bytes]) -> bytes:
    """Column by column over the blocks; group 2 blocks (the last ones) have one more."""
    count = len(blocks)
    shortest = len(blocks[0])
    result = bytearray(count * shortest)
    for index, block in enumerate(blocks):
        result[index::count] = block[:shortest]
    return bytes(result) + bytes(block[-1] for block in blocks if len(block) > shortest)


# --- What depends on the version alone -------------------------------------------------------


def _data_codeword_count(version: int) -> int:
    _, group1, length, group2 = _BLOCKS_M[version - 1]
    return group1 * length + group2 * (length + 1)


# Byte mode capacity: data codewords less the header (4 + 8 or 16 bits) and 4 terminator bits.
_CAPACITIES = tuple(
    _data_codeword_count(version) - (2 if version < 10 else 3) for version in range(1, 41)
)


@functools.cache
def _layout(version: int) -> _Layout:
    ec_length, group1, length, group2 = _BLOCKS_M[version - 1]
    size = 17 + 4 * version
    fixed = _function_modules(version)
    order = _placement_order(size, fixed)
    codeword_bits = 8 * (_data_codeword_count(version) + (group1 + group2) * ec_length)
    remainder_bits = len(order) - codeword_bits
    if not 0 <= remainder_bits < 8:
        raise AssertionError(f"version {version}: {len(order)} data modules, blocks wrong")
    position = {module: index for index, module in enumerate(order)}
    constants = (len(order), len(order) + 1)  # the "0" and "1" after the stream
    place = [
        constants[fixed[module]] if module in fixed else position[module]
        for module in range(size * size)
    ]
    flips = "".join("1" if (module // size + module % size) % 2 == 0 else "0" for module in order)
    return _Layout(
        version=version,
        count_bits=8 if version < 10 else 16,
        data_codewords=_data_codeword_count(version),
        block_lengths=(length,) * group1 + (length + 1,) * group2,
        ec_length=ec_length,
        ec_table=_generator_table(ec_length),
        remainder_bits=remainder_bits,
        stream_length=len(order),
        mask_flips=int(flips, 2),
        place=operator.itemgetter(*place),
    )


def _function_modules(version: int) -> dict[int, int]:
    """Every module outside the data region (row * size + column: 0 light, 1 dark): finder
    patterns with separators, timing patterns, alignment patterns, format information (level M,
    mask 0), the dark module and version information."""
    size = 17 + 4 * version
    modules: dict[int, int] = {}

    def put(row: int, column: int, dark: bool | int) -> None:
        modules[row * size + column] = int(dark)

    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):  # 6.3.3, separators 6.3.4
        for row in range(max(top - 1, 0), min(top + 8, size)):
            for column in range(max(left - 1, 0), min(left + 8, size)):
                ring = max(abs(row - top - 3), abs(column - left - 3))
                put(row, column, ring in (0, 1, 3))
    for index in range(8, size - 8):  # 6.3.5
        put(6, index, index % 2 == 0)
        put(index, 6, index % 2 == 0)
    centres = _ALIGNMENT[version - 1]
    corners = {(6, 6), (6, size - 7), (size - 7, 6)}  # taken by the finder patterns
    for row_centre in centres:  # 6.3.6
        for column_centre in centres:
            if (row_centre, column_centre) in corners:
                continue
            for row in range(row_centre - 2, row_centre + 3):
                for column in range(column_centre - 2, column_centre + 3):
                    ring = max(abs(row - row_centre), abs(column - column_centre))
                    put(row, column, ring != 1)
    format_word = _bch(_LEVEL_M << 3 | 0, _FORMAT_GENERATOR) ^ _FORMAT_MASK
    for bit, row, column in _format_cells(size):  # 7.9.1, Figure 25
        put(row, column, format_word >> bit & 1)
    put(size - 8, 8, True)  # the dark module
    if version >= 7:  # 7.10, Figure 27
        version_word = _bch(version, _VERSION_GENERATOR)
        for bit in range(18):
            dark = version_word >> bit & 1
            put(size - 11 + bit % 3, bit // 3, dark)
            put(bit // 3, size - 11 + bit % 3, dark)
    return modules


def _format_cells(size: int) -> list[tuple[int, int, int]]:
    """(bit, row, column) of both copies of the 15 format bits, bit 0 least significant; the
    module at (size - 8, 8) is the dark module, not a format bit."""
    cells = []
    for bit in range(8):
        cells.append((bit, bit if bit < 6 else bit + 1, 8))  # column 8, skipping timing row 6
        cells.append((bit, 8, size - 1 - bit))
    for bit in range(8, 15):
        cells.append((bit, 8, 14 - bit if bit > 8 else 7))  # row 8, skipping timing column 6
        cells.append((bit, size - 15 + bit, 8))
    return cells


def _bch(value: int, generator: int) -> int:
    """`value` followed by the remainder of its division by `generator` over GF(2) (Annex C, D)."""
    degree = generator.bit_length() - 1
    remainder = value << degree
    while remainder.bit_length() > degree:
        remainder ^= generator << (remainder.bit_length() - 1 - degree)
    return value << degree | remainder


def _placement_order(size: int, fixed: dict[int, int]) -> list[int]:
    """7.7.3: the data region's modules in the order the bits go, two-module-wide columns from
    the right, alternately upwards and downwards, the vertical timing pattern's column skipped."""
    order = []
    upwards = True
    right = size - 1
    while right > 0:
        if right == 6:
            right = 5
        rows = range(size - 1, -1, -1) if upwards else range(size)
        for row in rows:
            for column in (right, right - 1):
                module = row * size + column
                if module not in fixed:
                    order.append(module)
        upwards = not upwards
        right -= 2
    return order


# --- Reed-Solomon over GF(2^8) with the prime polynomial x^8 + x^4 + x^3 + x^2 + 1 (7.5.2) ----


def _gf_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = exp[power + 255] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    return tuple(exp), tuple(log)


_EXP, _LOG = _gf_tables()


def _multiply(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


@functools.cache
def _generator_table(degree: int) -> tuple[int, ...]:
    """For the generator (x - 2^0)(x - 2^1)...(x - 2^(degree-1)) (Annex A) and every value c:
    c times its coefficients below x^degree, as one integer, highest coefficient first."""
    generator = [1]  # coefficients, highest power first
    for power in range(degree):
        factor = _EXP[power]
        generator = [
            high ^ _multiply(low, factor)
            for high, low in zip(generator + [0], [0] + generator)
        ]
    return tuple(
        int.from_bytes(bytes(_multiply(value, coefficient) for coefficient in generator[1:]))
        for value in range(256)
    )
