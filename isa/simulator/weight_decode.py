"""The matrix unit's weight decoder: packed rows of codes in wbuf -> integer weights.

Written apart from the compiler's packer (backends/overlay/weight_packing.py); the two share only
the format's code table (tcc.ir.numerics.weight_format) and the packing rule of isa/table.py:
code j of a row occupies bits [j*b, (j+1)*b) counted from bit 0 of the row's first byte.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import numerics
from tcc.ir.numerics import WeightFormat


def unpack_codes(rows: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Codes (int64, N x k) of ``bits``-bit fields packed LSB-first in each uint8 row of ``rows``."""
    if bits == 8:
        return rows[:, :k].astype(np.int64)
    if bits == 16:
        return rows[:, 0:2 * k:2].astype(np.int64) | (rows[:, 1:2 * k:2].astype(np.int64) << 8)
    if 8 % bits == 0:  # whole codes per byte: shift each byte's fields down
        per_byte = 8 // bits
        fields = (rows[:, :, None] >> (np.arange(per_byte, dtype=np.uint8) * bits)) & ((1 << bits) - 1)
        return fields.reshape(rows.shape[0], -1)[:, :k].astype(np.int64)
    # codes straddle bytes (3, 5, 6, 7 bits): gather each code's bits one by one
    start = np.arange(k, dtype=np.int64) * bits
    codes = np.zeros((rows.shape[0], k), np.int64)
    for b in range(bits):
        position = start + b
        bit = (rows[:, position >> 3] >> (position & 7).astype(np.uint8)) & 1
        codes |= bit.astype(np.int64) << b
    return codes


def decode_rows(rows: np.ndarray, k: int, fmt: WeightFormat, caps: np.ndarray | None = None) -> np.ndarray:
    """Integer weights (int32, N x k) of packed rows (uint8, N x row bytes) in format ``fmt``;
    for a per-row format, row n reads the code table of its cap ``caps[n]`` (each checked by the
    caller to lie in [0, bits - 1])."""
    codes = unpack_codes(rows, k, fmt.bits)
    if not fmt.row_caps:
        return numerics.code_values(fmt)[codes]
    tables = np.stack([numerics.code_values(numerics.row_format(fmt, cap)) for cap in range(fmt.bits)])
    return tables[np.asarray(caps, np.int64)[:, None], codes]


def one_byte_codes(fmt: WeightFormat) -> bool:
    """Whether each code of ``fmt`` is one whole byte with one code table (``decode_transposed`` reads those)."""
    return fmt.bits == 8 and not fmt.row_caps


def int8_codes(fmt: WeightFormat) -> bool:
    """Whether ``fmt``'s codes are one byte each whose value is the byte read as int8 (two's
    complement): the packed rows are the weights themselves."""
    return one_byte_codes(fmt) and np.array_equal(numerics.code_values(fmt), _AS_INT8)


def int16_codes(fmt: WeightFormat) -> bool:
    """Whether ``fmt``'s codes are two bytes each (little-endian) whose value is the pair read as
    int16: the packed rows are the weights themselves, as int16."""
    return fmt.bits == 16 and not fmt.row_caps and np.array_equal(numerics.code_values(fmt), _AS_INT16)


_AS_INT16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16)


def decode_transposed(rows: np.ndarray, k: int, fmt: WeightFormat, dtype) -> np.ndarray:
    """``decode_rows(rows, k, fmt).T`` as ``dtype`` for a format of ``one_byte_codes`` (k x N, a
    transposed view BLAS reads as it is): the bytes index the code table in ``dtype``, one pass; a
    table that is the bytes read as int8 (two's complement int8) is that conversion, without the
    index arrays numpy's take makes.  OverflowError when a value of the table does not fit ``dtype``."""
    table = numerics.code_values(fmt)
    if not np.array_equal(table.astype(dtype).astype(table.dtype), table):
        raise OverflowError(f"{fmt.name} has values that {np.dtype(dtype).name} does not hold")
    if np.array_equal(table, _AS_INT8):
        return rows[:, :k].view(np.int8).astype(dtype, copy=False).T
    return np.take(table.astype(dtype), rows[:, :k]).T


_AS_INT8 = np.arange(256, dtype=np.uint8).view(np.int8)
