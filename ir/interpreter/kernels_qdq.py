"""Kernels of quantize_linear / dequantize_linear: ONNX's QuantizeLinear and DequantizeLinear on
their operands (per tensor, per axis, blocked; integer, float8 and float4 types).  Integer
rounding and saturation are ``numerics.quantize_affine``'s; float8/float4 results are casts."""
from __future__ import annotations

import numpy as np

from .. import numerics
from ..dtypes import SATURATING_DTYPES, cast, saturate, to_numpy
from ..errors import InterpreterError

_NARROW_FLOATS = SATURATING_DTYPES + ("f4e2m1",)


def expand_parameter(param: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point broadcastable against a tensor of ``shape``: a scalar as is, a 1-D
    per-axis one along ``axis``, a blocked one repeated ``block_size`` times along ``axis``."""
    if param.ndim == 0 or (param.ndim == 1 and param.size == 1 and not block_size):
        return param.reshape(())
    axis = axis % len(shape)
    if block_size:
        return np.repeat(param, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    target = [1] * len(shape)
    target[axis] = param.size
    return param.reshape(target)


def _integer_range(dtype: np.dtype) -> tuple[int, int]:
    import ml_dtypes

    info = ml_dtypes.iinfo(dtype) if dtype.kind not in "iu" else np.iinfo(dtype)
    return int(info.min), int(info.max)


def quantize_linear(op, x, scale, zero_point=None):
    attrs = op.attrs
    out = to_numpy(attrs["dtype"])
    s = expand_parameter(scale, x.shape, attrs["axis"], attrs["block_size"])
    zp = (np.zeros((), out) if zero_point is None
          else expand_parameter(zero_point, x.shape, attrs["axis"], attrs["block_size"]))
    # The scale's type is the division's precision (float32 for bf16 and narrower types).
    precision = scale.dtype if scale.dtype in (np.float16, np.float64) else np.float32
    if attrs["dtype"] in _NARROW_FLOATS:
        with np.errstate(all="ignore"):
            value = (x.astype(precision) / s.astype(precision)).astype(np.float32) + zp.astype(np.float32)
        if attrs["saturate"] or attrs["dtype"] == "f4e2m1":  # float4 has no infinity: it always saturates
            return saturate(value, attrs["dtype"])
        return cast(value, attrs["dtype"])
    qmin, qmax = _integer_range(out)
    try:
        return np.asarray(numerics.quantize_affine(x, s, zp.astype(np.int64), qmin, qmax, out_dtype=out,
                                                   precision=precision))
    except ValueError as exc:
        raise InterpreterError(str(exc)) from None


def dequantize_linear(op, x, scale, zero_point=None):
    attrs = op.attrs
    s = expand_parameter(scale, x.shape, attrs["axis"], attrs["block_size"]).astype(np.float32)
    zp = None if zero_point is None else expand_parameter(zero_point, x.shape, attrs["axis"], attrs["block_size"])
    if op.operands[0].type.dtype in _NARROW_FLOATS:
        centred = x.astype(np.float32) - (0 if zp is None else zp.astype(np.float32))
        return cast(centred * s, attrs["dtype"])
    zp64 = np.zeros((), np.int64) if zp is None else zp.astype(np.int64)
    centred = x.astype(np.int64) - zp64
    if centred.size and np.abs(centred).max() > 2**24:  # beyond float32's integers: round the exact product once
        return cast(centred * s.astype(np.float64), attrs["dtype"])
    return cast(np.asarray(numerics.dequantize_affine(x.astype(np.int64), s, zp64)), attrs["dtype"])


OP_KERNEL_TABLE = (
    ("quantize_linear", quantize_linear),
    ("dequantize_linear", dequantize_linear),
)
