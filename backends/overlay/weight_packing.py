"""Weights as the matrix unit stores them: integer weight values -> codes of their format, packed
densely per row (isa/table.py: code j in bits [j*b, (j+1)*b) of the row, rows padded to bytes).

The simulator's decoder (isa/simulator/weight_decode.py) is written apart from this packer; the
two share only the code tables of tcc.ir.numerics.weight_format.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Value
from tcc.ir import numerics
from tcc.ir.numerics import WeightFormat
from tcc.isa.weights import row_bytes


def weight_format_of(value: Value, values: np.ndarray) -> WeightFormat:
    """The format a weight constant is stored in: its quantization format (int4, dybitN...) or,
    for plain integers, int8 when every value fits and int16 otherwise."""
    q = value.type.quant
    if q is not None and q.format:
        return numerics.parse_weight_format(q.format)
    return integer_format(values)


def integer_format(values: np.ndarray) -> WeightFormat:
    """int8 when every value fits a byte, else int16."""
    v = np.asarray(values)
    fits = v.size == 0 or (int(v.min()) >= numerics.INT8_MIN and int(v.max()) <= numerics.INT8_MAX)
    return WeightFormat("int", 8 if fits else 16)


def pack_rows(values: np.ndarray, fmt: WeightFormat) -> np.ndarray:
    """N x K integer weights -> N x row_bytes(K) uint8, each value replaced by its code."""
    v = np.asarray(values).reshape(values.shape[0], -1)
    n, k = v.shape
    codes = numerics.value_codes(fmt, v).astype(np.uint32)
    width = row_bytes(k, fmt) * 8
    bits = np.zeros((n, width), np.uint8)  # one entry per bit of the packed row, LSB first
    for b in range(fmt.bits):
        bits[:, b:k * fmt.bits:fmt.bits] = (codes >> b) & 1
    return np.packbits(bits, axis=1, bitorder="little")
