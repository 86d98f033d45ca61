"""Integer and bf16 kernels: the integer reference semantics of the quantized op kinds.

These kernels read quantization parameters from the op's value types, so they take the op
itself: ``kernel(op, *arrays)``.  Integer matrix work runs through the float BLAS kernels, exactly
(exact_matmul.py: float32 over reductions short enough that no partial sum passes 2**24, summed in
float64).  All rounding goes through ``tcc.ir.numerics``; nothing here rounds inline.
"""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..dtypes import to_numpy
from ..pool_geometry import window_divisors
from ..errors import InterpreterError
from ..types import TensorType
from . import kernels_pool
from .exact_matmul import exact_conv, exact_linear, exact_matmul

INT32_MIN, INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX


def quant_of(t: TensorType, what: str):
    if t.quant is None:
        raise InterpreterError(f"{what} of type {t} carries no quantization parameters")
    return t.quant


def zero_point_array(t: TensorType, rank: int) -> np.ndarray:
    """The zero point broadcastable against a tensor of the type (per-tensor or per-axis)."""
    q = t.quant
    if q is None:
        return np.zeros((), np.int64)
    zp = np.asarray(q.zero_point, np.int64)
    if q.axis is None:
        return zp.reshape(())
    shape = [1] * rank
    shape[q.axis] = len(zp)
    return zp.reshape(shape)


def centred(array: np.ndarray, t: TensorType) -> np.ndarray:
    """``q - zero_point`` as exact float64 (what the integer datapath multiplies)."""
    return centred_exact(array, t).astype(np.float64)


def centred_exact(array: np.ndarray, t: TensorType) -> np.ndarray:
    """``q - zero_point`` as exact floats: float32 for operands of up to 16 bits (|q - zp| < 2**17,
    an integer float32 holds), float64 for wider ones -- what exact_matmul.py multiplies."""
    zp = zero_point_array(t, array.ndim)
    if array.dtype.itemsize <= 2 and np.abs(zp).max(initial=0) < 1 << 16:
        return array.astype(np.float32) - zp.astype(np.float32)
    return (array.astype(np.int64) - zp).astype(np.float64)


def to_int32(acc: np.ndarray, op) -> np.ndarray:
    """Exact float64 integer sums -> int32, refusing accumulator overflow instead of wrapping."""
    if acc.size and (acc.max() > INT32_MAX or acc.min() < INT32_MIN):
        raise InterpreterError(f"int32 accumulator overflow in {op.kind} at {op.loc!r} "
                               f"(range [{acc.min():.0f}, {acc.max():.0f}])")
    return acc.astype(np.int64).astype(np.int32)


def _bias(b) -> np.ndarray | None:
    return None if b is None else b.astype(np.float64)


def qconv(op, x, w, b=None):
    return to_int32(exact_conv(op.attrs, centred_exact(x, op.x.type), centred_exact(w, op.w.type), _bias(b)), op)


def qlinear(op, x, w, b=None):
    return to_int32(exact_linear(centred_exact(x, op.x.type), centred_exact(w, op.w.type), _bias(b)), op)


def qmatmul(op, a, b):
    return to_int32(exact_matmul(centred_exact(a, op.a.type), centred_exact(b, op.b.type)), op)


# Elements per block of a large requantize: the int64 temporaries of its ten or so passes stay in
# the cache instead of streaming through memory (half the time on ResNet-50's maps).
REQUANTIZE_BLOCK = 1 << 17


def requantize(op, x, row_shift=None):
    """The op on cache-sized blocks of ``x`` (each element's result depends on it and its channel's
    parameters only), or whole."""
    per_channel = len(op.multiplier) > 1
    zp_x = zero_point_array(op.x.type, x.ndim)
    if row_shift is not None or x.size <= REQUANTIZE_BLOCK or zp_x.size > 1 and not per_channel:
        return _requantize(op, x, zp_x, row_shift=row_shift)
    out = np.empty(x.shape, to_numpy(op.dtype))
    if not per_channel:  # blocks of the flattened tensor
        flat, flat_out = x.reshape(-1), out.reshape(-1)
        for start in range(0, flat.size, REQUANTIZE_BLOCK):
            flat_out[start:start + REQUANTIZE_BLOCK] = _requantize(op, flat[start:start + REQUANTIZE_BLOCK], zp_x)
        return out
    axis = op.axis
    step = max(1, REQUANTIZE_BLOCK * x.shape[axis] // x.size)  # channels per block
    for start in range(0, x.shape[axis], step):
        part = (slice(None),) * axis + (slice(start, start + step),)
        zp_part = zp_x[part] if zp_x.ndim and zp_x.shape[axis] > 1 else zp_x
        out[part] = _requantize(op, x[part], zp_part, slice(start, start + step))
    return out


def _requantize(op, x, zp_x, channels: slice = slice(None), row_shift=None):
    """The op on ``x``, the input's zero point ``zp_x`` broadcastable to it, ``channels`` of the
    per-channel parameters."""
    per_channel = len(op.multiplier) > 1
    axis = op.axis if per_channel else None
    multiplier = np.asarray(op.multiplier)[channels] if per_channel else op.multiplier[0]
    shift = np.asarray(op.shift)[channels] if per_channel else op.shift[0]
    try:
        v = numerics.centre_and_shift(x, zp_x, op.pre_shift)
        if row_shift is not None:  # pre-shaped: the channel's shift plus the row's
            shape = [1] * x.ndim
            if per_channel:
                shape[axis] = len(op.multiplier)
            multiplier = np.reshape(multiplier, shape)
            shift = numerics.row_shifted(np.reshape(shift, shape), row_shift)
            axis = None
        return numerics.requantize(v, multiplier, shift, op.zero_point, op.qmin, op.qmax, op.rounding, axis=axis,
                                   out_dtype=to_numpy(op.dtype))
    except ValueError as exc:
        raise InterpreterError(f"requantize at {op.loc!r}: {exc}") from None


def quantize(op, x):
    out_t = op.result.type
    q = quant_of(out_t, "quantize result")
    lo, hi = numerics.integer_range(out_t.dtype.replace("i", "int").replace("u", "uint"))
    if op.x.type.dtype == "bf16":
        return numerics.bf16_to_int8(x.astype(np.float32), q.scale[0], q.zero_point[0], "half_even", lo, hi,
                                     out_dtype=to_numpy(out_t.dtype))
    return numerics.quantize_affine(x, q.scale[0], q.zero_point[0], lo, hi, out_dtype=to_numpy(out_t.dtype))


def quantize_rows(op, x):
    q = quant_of(op.results[0].type, "quantize_rows result")
    try:
        shifts = numerics.row_shifts(x, q.scale[0], q.zero_point[0])
        return numerics.bf16_to_int8_rows(x, q.scale[0], q.zero_point[0], shifts), shifts
    except ValueError as exc:
        raise InterpreterError(f"quantize_rows at {op.loc!r}: {exc}") from None


def dequantize(op, x):
    q = quant_of(op.x.type, "dequantize operand")
    scale, zp = np.asarray(q.scale, np.float32), np.asarray(q.zero_point, np.int64)
    if q.axis is None:
        scale, zp = scale[0], zp[0]
    if op.dtype == "bf16":
        return numerics.int8_to_bf16(x, scale, zp, axis=q.axis)
    return numerics.dequantize_affine(x, scale, zp, axis=q.axis)


def _rounded_mean(op, total: np.ndarray, counts) -> np.ndarray:
    dtype = to_numpy(op.result.type.dtype)
    try:
        mean = numerics.rounded_mean(np.rint(total).astype(np.int64), counts, op.multiplier, op.shift,
                                     op.zero_point, *numerics.integer_range(dtype))
    except ValueError as exc:
        raise InterpreterError(f"{op.kind} at {op.loc!r}: {exc}") from None
    return np.asarray(mean).astype(dtype)


def qavg_pool(op, x):
    counts = window_divisors(op.attrs, x)
    # avg_pool of (x - zp) times its divisor recovers the exact integer window sum.
    total = np.rint(kernels_pool.avg_pool(op.attrs, centred(x, op.x.type)) * counts)
    return _rounded_mean(op, total, counts)


def qglobal_avg_pool(op, x):
    axes = tuple(range(2, x.ndim))
    total = centred(x, op.x.type).sum(axis=axes, keepdims=True)
    count = int(np.prod([x.shape[a] for a in axes]))
    return _rounded_mean(op, total, count)


def qlut(op, x, table):
    return table[x.astype(np.int64) - numerics.INT8_MIN].astype(np.int8)


OP_KERNEL_TABLE = (
    ("quantize", quantize),
    ("quantize_rows", quantize_rows),
    ("dequantize", dequantize),
    ("qconv", qconv),
    ("qlinear", qlinear),
    ("qmatmul", qmatmul),
    ("requantize", requantize),
    ("qavg_pool", qavg_pool),
    ("qglobal_avg_pool", qglobal_avg_pool),
    ("qlut", qlut),
)
