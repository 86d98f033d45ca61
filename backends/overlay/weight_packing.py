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


def weight_caps(value: Value, fmt: WeightFormat) -> np.ndarray | None:
    """Each output channel's DyBit cap (uint8) for a per-row format (QuantParams.caps), else None."""
    if not fmt.row_caps:
        return None
    q = value.type.quant
    if q is None or q.caps is None or q.axis != 0:
        raise ValueError(f"{value.name}: {fmt.name} weights need a cap per output channel (quant caps along axis 0)")
    caps = np.asarray(q.caps, np.int64)
    if caps.min() < 0 or caps.max() > fmt.bits - 1:
        raise ValueError(f"{value.name}: {fmt.name} caps must lie in [0, {fmt.bits - 1}]")
    return caps.astype(np.uint8)


def integer_format(values: np.ndarray) -> WeightFormat:
    """int8 when every value fits a byte, else int16."""
    v = np.asarray(values)
    fits = v.size == 0 or (int(v.min()) >= numerics.INT8_MIN and int(v.max()) <= numerics.INT8_MAX)
    return WeightFormat("int", 8 if fits else 16)


def pack_rows(values: np.ndarray, fmt: WeightFormat, caps: np.ndarray | None = None) -> np.ndarray:
    """N x K integer weights -> N x row_bytes(K) uint8, each value replaced by its code (for a
    per-row format, the code in the table of its row's cap ``caps[n]``)."""
    v = np.asarray(values).reshape(values.shape[0], -1)
    n, k = v.shape
    if fmt.row_caps:
        codes = np.zeros((n, k), np.uint32)
        for cap in np.unique(np.asarray(caps)):
            rows = np.asarray(caps) == cap
            codes[rows] = numerics.value_codes(numerics.row_format(fmt, int(cap)), v[rows])
    else:
        codes = numerics.value_codes(fmt, v).astype(np.uint32)
    if fmt.bits in (8, 16):  # whole bytes: a code's bits, LSB first, are its little-endian bytes
        packed = np.zeros((n, row_bytes(k, fmt)), np.uint8)
        packed[:, :k * fmt.bits // 8] = codes.astype(f"<u{fmt.bits // 8}").view(np.uint8).reshape(n, -1)
        return packed
    width = row_bytes(k, fmt) * 8
    bits = np.zeros((n, width), np.uint8)  # one entry per bit of the packed row, LSB first
    for b in range(fmt.bits):
        bits[:, b:k * fmt.bits:fmt.bits] = (codes >> b) & 1
    return np.packbits(bits, axis=1, bitorder="little")
