"""Exact integer matrix products (conv, linear, matmul) on float32 BLAS: the integer reference's MACs.

numpy multiplies integer matrices without BLAS, tens of times slower than a float product, so the
integer reference multiplies its centred integer operands as floats, exactly, by this bound:

float32 represents every integer of magnitude <= 2**24 exactly.  Let |a| <= A and |b| <= B for
every element of the two operands (A, B measured on them), and cut the reduction into chunks of
at most ``L = 2**24 // (A * B)`` terms.  Within a chunk every product a_i * b_i is an integer of
magnitude <= A * B <= 2**24, and every partial sum -- over whatever subset of the chunk's terms,
in whatever order or grouping the BLAS kernel adds them, with or without fused multiply-adds -- is
an integer of magnitude <= L * A * B <= 2**24.  The exact result of each floating-point step is
therefore representable, no step rounds, and each chunk's float32 result is the exact integer sum.
The chunks' results are added in float64, exact while the total is below 2**53 (an int32
accumulator is far below; a total leaving int32 is refused by the caller).
Example: int8 weights (|w| <= 127) times int8 activations centred on their zero point
(|x - zp| <= 255) give L = 518 terms per chunk; a 768-deep reduction is two chunks.  Operands
whose single product could exceed 2**24 (A * B > 2**24) run in float64 as one product, exact
while K * A * B < 2**53.
"""
from __future__ import annotations

import numpy as np

from . import kernels_conv

F32_EXACT = 1 << 24  # every integer of magnitude <= 2**24 is a float32


def _bound(array: np.ndarray) -> int:
    return int(np.abs(array).max()) if array.size else 0


def _f32(array: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy (or the array itself): exact for the integers a chunk holds."""
    return np.ascontiguousarray(array, np.float32)


def chunk_terms(a: np.ndarray, b: np.ndarray, terms_per_unit: int = 1) -> int:
    """Reduction units (of ``terms_per_unit`` products each: a conv's input channel spans its kernel
    taps) per float32 chunk by the bound in the module docstring; 0: float32 cannot hold one unit."""
    peak = max(_bound(a) * _bound(b), 1) * terms_per_unit
    return F32_EXACT // peak


def _chunks(units: int, per_chunk: int) -> list[tuple[int, int]]:
    """``units`` cut into equal chunks of at most ``per_chunk``."""
    if units == 0:
        return [(0, 0)]
    count = -(-units // per_chunk)
    step = -(-units // count)
    return [(start, min(start + step, units)) for start in range(0, units, step)]


def _with_bias(acc: np.ndarray, b: np.ndarray | None, channel_axis: int) -> np.ndarray:
    if b is None:
        return acc
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    return acc + b.reshape(shape)


def exact_linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w.T (+ b)`` for integer-valued ``x`` [..., K] and ``w`` [N, K] (any dtype holding them
    exactly), as exact float64 integers."""
    k = x.shape[-1]
    per_chunk = chunk_terms(x, w)
    rows = x.reshape(-1, k)
    if per_chunk == 0:
        acc = rows.astype(np.float64) @ w.T.astype(np.float64)
    else:
        acc = np.zeros((rows.shape[0], w.shape[0]), np.float64)
        for start, stop in _chunks(k, per_chunk):
            acc += _f32(rows[:, start:stop]) @ _f32(w[:, start:stop]).T
    return _with_bias(acc.reshape(*x.shape[:-1], w.shape[0]), b, -1)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (numpy broadcasting of the leading dims) for integer operands, as exact float64."""
    k = a.shape[-1]
    per_chunk = chunk_terms(a, b)
    if per_chunk == 0:
        return np.matmul(a.astype(np.float64), b.astype(np.float64))
    acc = None
    for start, stop in _chunks(k, per_chunk):
        part = np.matmul(_f32(a[..., start:stop]), _f32(b[..., start:stop, :])).astype(np.float64)
        acc = part if acc is None else acc + part
    return acc


def exact_conv(attrs, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """ONNX Conv of integer ``x`` [N, C, ...] and ``w`` [M, C/group, ...], as exact float64: chunks of
    each group's input channels (every group's channels start..stop at once)."""
    group = attrs["group"]
    per_group = w.shape[1]
    taps = int(np.prod(w.shape[2:], dtype=np.int64))
    per_chunk = chunk_terms(x, w, taps)
    if per_chunk == 0:
        acc = kernels_conv.conv(attrs, x.astype(np.float64), w.astype(np.float64))
    else:
        acc = None
        for start, stop in _chunks(per_group, per_chunk):
            channels = (np.arange(group)[:, None] * per_group + np.arange(start, stop)).ravel()
            xs = x if stop - start == per_group else x[:, channels]
            part = kernels_conv.conv(attrs, _f32(xs), _f32(w[:, start:stop]))
            acc = part.astype(np.float64) if acc is None else acc + part
    return _with_bias(acc, b, 1)
