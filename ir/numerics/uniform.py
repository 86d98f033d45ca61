"""Uniform (affine) integer quantization, ONNX QuantizeLinear / DequantizeLinear semantics.

``quantize_affine``: ``clamp(round_half_even(float32(x) / float32(scale)) + zero_point)``, the
division in float32 as ONNX specifies; ``dequantize_affine``: ``(q - zero_point) * scale`` in
float32.  ``int_quantize`` is the symmetric, narrow-range int-N form ([-(2**(N-1)-1), 2**(N-1)-1],
zero point 0) used to compare against DyBit.
"""
import numpy as np

from ._arrays import along_axis, as_int64, unwrap
from .integer import INT8_MAX, INT8_MIN, int_dtype_for_range
from .scale_search import search_scale_mse


def _check_scale(s: np.ndarray) -> None:
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("scale must be finite and positive (as float32)")


def quantize_affine(x, scale, zero_point=0, qmin: int = INT8_MIN, qmax: int = INT8_MAX,
                    axis=None, out_dtype=None, precision=np.float32):
    """``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)`` with the division in float32
    (or ``precision``: ONNX divides in the scale's type, float16 for a float16 scale).

    +-inf saturates; NaN maps to ``zero_point``.  Result dtype: ``out_dtype`` or the smallest
    integer dtype holding [qmin, qmax].
    """
    x32 = np.asarray(x, precision)
    s = along_axis(np.asarray(scale, precision), x32.shape, axis, "scale")
    _check_scale(s)
    zp = along_axis(as_int64(zero_point, "zero_point"), x32.shape, axis, "zero_point")
    if zp.size and (zp.min() < -2**24 or zp.max() > 2**24):
        raise ValueError("zero_point must be within +-2**24")
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.asarray(x32 / s)  # a 0-d operand gives a numpy scalar, which is read-only
    dtype = np.dtype(out_dtype) if out_dtype is not None else int_dtype_for_range(qmin, qmax)
    # rint of a float32 is exact (round half to even; large values are integers already), and the
    # clip bounds are small integers, so float32 arithmetic here rounds exactly once.
    if t.ndim and zp.size == 1 and t.dtype == np.float32 and max(abs(qmin), abs(qmax), abs(int(zp.flat[0]))) < 2**23:
        # one zero point and small bounds: qmin - zp, qmax - zp and every clipped value plus zp are
        # integers below 2**24, exact in float32, so the clamp and the add stay in place in t
        t[np.isnan(t)] = 0
        z = np.float32(zp.flat[0])
        np.clip(np.rint(t, out=t), np.float32(qmin) - z, np.float32(qmax) - z, out=t)
        return np.add(t, z, out=t).astype(dtype)
    t = np.where(np.isnan(t), t.dtype.type(0), t)
    lo, hi = (qmin - zp).astype(np.float64), (qmax - zp).astype(np.float64)
    r = np.clip(np.rint(t), lo, hi)
    return unwrap((r.astype(np.int64) + zp).astype(dtype))


def dequantize_affine(q, scale, zero_point=0, axis=None):
    """``(q - zero_point) * scale`` as float32 (one float32 rounding of the exact product)."""
    qa = as_int64(q, "q")
    s = along_axis(np.asarray(scale, np.float32), qa.shape, axis, "scale")
    zp = along_axis(as_int64(zero_point, "zero_point"), qa.shape, axis, "zero_point")
    d = qa - zp
    if d.size and np.max(np.abs(d)) > 2**24:
        raise ValueError("|q - zero_point| must be at most 2**24 to be exact in float32")
    return unwrap(d.astype(np.float32) * s)


def int_max_level(bits: int) -> int:
    """Largest code of the symmetric narrow-range int-N grid: 2**(bits-1) - 1."""
    if not 2 <= bits <= 32:
        raise ValueError(f"int-N width must be in [2, 32], got {bits}")
    return 2 ** (bits - 1) - 1


def int_quantize(x, bits: int, scale, axis=None):
    """Symmetric int-N codes of ``x`` (zero point 0, narrow range), in the smallest int dtype."""
    top = int_max_level(bits)
    return quantize_affine(x, scale, 0, -top, top, axis=axis)


def int_dequantize(q, scale, axis=None):
    """Values of symmetric int-N codes, as float32."""
    return dequantize_affine(q, scale, 0, axis=axis)


def search_scale_uniform(x, bits: int, axis=None, candidates=None, inputs=None):
    """MSE-optimal symmetric int-N scale, per tensor or per channel (see scale_search; ``inputs``:
    the layer-output MSE on those rows instead of the weights').

    Default factors span [1/16, 1.25] of the max-abs scale: from clipping hard (ternary-like
    low widths want about 0.4) to a little beyond max-abs.
    """
    def fake_quantize(v, scale):
        return np.asarray(int_dequantize(int_quantize(v, bits, scale), scale), np.float64)

    levels = np.arange(int_max_level(bits) + 1, dtype=np.float64)  # rint, then clip: the nearest level
    return search_scale_mse(x, fake_quantize, int_max_level(bits), (1 / 16, 1.25), axis, candidates, inputs, levels)
