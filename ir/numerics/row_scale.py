"""Per-row power-of-two activation scales: a tensor quantized row by row (the last axis is a row),
row ``i`` on the grid ``scale * 2**-r[i]`` with the tensor's one zero point.

The row shift ``r[i]`` is the largest integer in [0, ``ROW_SHIFT_MAX``] for which the row, scaled
by ``2**r``, stays inside the int8 range: with ``t = x * float32(1/scale)`` (``bf16_to_int8``'s
product, exact in float64), ``max(t) * 2**r <= qmax - zero_point`` and
``min(t) * 2**r >= qmin - zero_point``; a row that does not fit even at r = 0 (or holds a NaN)
gets r = 0 and saturates as a per-tensor conversion would.  The hardware needs one max and one
min lane reduction per row and an exponent comparison; scaling by ``2**r`` is an exponent add,
exact in bf16.  A matrix product of such rows has row ``i`` of its accumulators on a grid
``2**r[i]`` times finer, which its requantization undoes by shifting right ``r[i]`` bits more:
``requantize(acc, multiplier, shift + r[row])``, one rounding as always.
"""
import numpy as np

from ._arrays import as_int64, unwrap
from .bf16 import as_bf16_lanes, bf16_to_int8
from .integer import INT8_MAX, INT8_MIN

ROW_SHIFT_MAX = 15


def row_shifts(x, scale, zero_point: int = 0, qmin: int = INT8_MIN, qmax: int = INT8_MAX):
    """The shift of every row (last axis) of bf16 values ``x`` (module docstring), as int8 of
    shape ``x.shape[:-1]``."""
    v = as_bf16_lanes(x, "x")
    if v.ndim == 0 or v.shape[-1] == 0:
        raise ValueError("row shifts need rows: an array of rank >= 1 with a non-empty last axis")
    with np.errstate(invalid="ignore"):
        return shift_for_range(np.max(v, axis=-1), np.min(v, axis=-1), scale, zero_point, qmin, qmax)


def shift_for_range(row_max, row_min, scale, zero_point: int = 0, qmin: int = INT8_MIN, qmax: int = INT8_MAX):
    """The shift of rows whose largest and smallest bf16 values are ``row_max`` and ``row_min``
    (the comparison of the module docstring; a NaN bound gives 0), as int8."""
    inv = np.float64(np.float32(1) / np.float32(scale))
    if not (np.isfinite(inv) and inv > 0):
        raise ValueError("scale must be finite and positive")
    hi = np.asarray(row_max, np.float64) * inv  # exact: a bf16 value times a float32
    lo = np.asarray(row_min, np.float64) * inv
    shifts = np.zeros(hi.shape, np.int64)
    for r in range(1, ROW_SHIFT_MAX + 1):  # the fits are monotone in r: count the ones that fit
        with np.errstate(invalid="ignore"):
            shifts += (hi * 2.0**r <= qmax - zero_point) & (lo * 2.0**r >= qmin - zero_point)
    return unwrap(shifts.astype(np.int8))


def bf16_to_int8_rows(x, scale, zero_point, shifts, mode: str = "half_even", qmin: int = INT8_MIN,
                      qmax: int = INT8_MAX):
    """Each row of bf16 ``x`` times ``2**shifts[row]`` (exact), converted as ``bf16_to_int8``."""
    v = as_bf16_lanes(x, "x")
    r = as_int64(shifts, "shifts")
    if r.shape != v.shape[:-1]:
        raise ValueError(f"{r.shape} row shifts for rows of shape {v.shape[:-1]}")
    if r.size and (r.min() < 0 or r.max() > ROW_SHIFT_MAX):
        raise ValueError(f"row shifts must be in [0, {ROW_SHIFT_MAX}]")
    scaled = np.ldexp(v.astype(np.float64), r[..., None])
    return bf16_to_int8(scaled, scale, zero_point, mode, qmin, qmax, out_dtype=np.int8)


def row_shifted(shift, row_shift):
    """The right shift of every accumulator of a requantization: its channel's ``shift`` (an
    array already shaped to broadcast against the accumulators, or a scalar) plus its row's."""
    r = as_int64(row_shift, "row_shift")
    if r.size and (r.min() < 0 or r.max() > ROW_SHIFT_MAX):
        raise ValueError(f"row shifts must be in [0, {ROW_SHIFT_MAX}]")
    return as_int64(shift, "shift") + r[..., None]
