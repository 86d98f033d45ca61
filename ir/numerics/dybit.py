"""DyBit: sign-magnitude codes whose magnitude field is a run of k leading 1s (closed by a 0)
followed by an r = max(w-k-1, 0)-bit mantissa f; magnitude f / 2**r when k = 0, else
2**(k-1) * (1 + f / 2**r).  n = 2..8 total bits, w = n-1 magnitude bits, sign in bit n-1.

This is tcc's definition from the paper's stated principle (arXiv 2302.12510; its exact bit
layout was not available).  Every magnitude is an integer multiple of 2**-(w-1) (``FINE_SHIFT``),
so a DyBit weight times an int8 activation is an exact integer product on that grid.

Encoding rounds to the nearest magnitude; a value exactly between two magnitudes goes to the
even magnitude code (codes are monotonic in magnitude, so exactly one neighbour is even — the
analogue of round-half-to-even).  Magnitudes above the maximum saturate to the maximum code;
-0 and negatives that round to 0 encode as the +0 code.  NaN cannot be encoded (ValueError).
"""
import functools

import numpy as np

from ._arrays import along_axis, as_float64, as_int64, unwrap
from .scale_search import search_scale_mse

MIN_BITS, MAX_BITS = 2, 8
# decode_int(c) * 2**-FINE_SHIFT[n] == decode(c)
FINE_SHIFT = {n: n - 2 for n in range(MIN_BITS, MAX_BITS + 1)}
# max |decode_int| = 2**(w-1) * 2**(w-1) = 4**(n-2): 1, 4, 16, 64, 256, 1024, 4096 for n = 2..8.
# A product with an int8 activation is at most 128 * 4**(n-2) = 2**(2n+3) in magnitude, so an
# int32 accumulator is overflow-free for at most (2**31 - 1) // 2**(2n+3) terms: 4095 for n = 8,
# 65535 for n = 6, 2**20 - 1 for n = 4.  Longer reductions need a wider accumulator.
MAX_DECODE_INT = {n: 4 ** (n - 2) for n in range(MIN_BITS, MAX_BITS + 1)}


def _check_bits(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or not MIN_BITS <= n <= MAX_BITS:
        raise ValueError(f"DyBit width must be an integer in [{MIN_BITS}, {MAX_BITS}], got {n!r}")
    return int(n)


@functools.lru_cache(maxsize=None)
def _magnitude_ints(n: int) -> np.ndarray:
    """Magnitude of every magnitude code, in units of 2**-(w-1), indexed by code."""
    w = n - 1
    codes = np.arange(2**w, dtype=np.int64)
    k = np.zeros_like(codes)
    run = np.ones(codes.shape, bool)
    for bit in range(w - 1, -1, -1):  # count the leading 1s from the top bit down
        run &= ((codes >> bit) & 1) == 1
        k += run
    r = np.maximum(w - k - 1, 0)
    f = codes & ((1 << r) - 1)
    # k = 0: f / 2**r with r = w-1, i.e. f fine units;
    # k >= 1: 2**(k-1) * (2**r + f) / 2**r, i.e. (2**r + f) << (k-1 + w-1 - r) fine units
    mags = np.where(k == 0, f, (np.left_shift(1, r) + f) << np.maximum(k + w - 2 - r, 0))
    mags.setflags(write=False)
    return mags


@functools.lru_cache(maxsize=None)
def _midpoints(n: int) -> np.ndarray:
    m = dybit_magnitudes(n)
    mids = (m[:-1] + m[1:]) / 2  # exact: small dyadic rationals
    mids.setflags(write=False)
    return mids


def dybit_magnitudes(n: int) -> np.ndarray:
    """The 2**(n-1) magnitudes of n-bit DyBit as float64, indexed by magnitude code (ascending)."""
    n = _check_bits(n)
    return np.ldexp(_magnitude_ints(n).astype(np.float64), -FINE_SHIFT[n])


def max_magnitude(n: int) -> float:
    """Largest n-bit DyBit magnitude, 2**(n-2)."""
    return float(2 ** (_check_bits(n) - 2))


def decode_int(codes, n: int):
    """Values of DyBit codes as int32 multiples of 2**-FINE_SHIFT[n] (sign-magnitude decoded)."""
    n = _check_bits(n)
    c = as_int64(codes, "codes")
    if c.size and (c.min() < 0 or c.max() >= 2**n):
        raise ValueError(f"{n}-bit DyBit codes must be in [0, {2**n - 1}]")
    mag = _magnitude_ints(n)[c & (2 ** (n - 1) - 1)]
    return unwrap(np.where((c >> (n - 1)) & 1 == 1, -mag, mag).astype(np.int32))


def decode(codes, n: int):
    """Values of DyBit codes as float64 (exact)."""
    n = _check_bits(n)
    return unwrap(np.ldexp(np.asarray(decode_int(codes, n), np.float64), -FINE_SHIFT[n]))


def encode(values, n: int):
    """Nearest n-bit DyBit codes (uint8) of values; ties to the even code, saturating."""
    n = _check_bits(n)
    v = as_float64(values, "values")
    if np.any(np.isnan(v)):
        raise ValueError("NaN has no DyBit code")
    mids = _midpoints(n)
    a = np.abs(v)
    code = np.searchsorted(mids, a, side="left")  # midpoints strictly below |v|: the lower code
    tie = mids[np.minimum(code, mids.size - 1)] == a
    code = np.where(tie & (code % 2 == 1), code + 1, code)
    negative = (v < 0) & (code > 0)
    return unwrap((code | (negative.astype(np.int64) << (n - 1))).astype(np.uint8))


def quantize(x, n: int, scale, axis=None):
    """DyBit codes of ``x / scale``, the division in float32 (like ONNX QuantizeLinear)."""
    x32 = np.asarray(x, np.float32)
    s = along_axis(np.asarray(scale, np.float32), x32.shape, axis, "scale")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("scale must be finite and positive (as float32)")
    with np.errstate(over="ignore"):
        return encode(x32 / s, n)


def dequantize(codes, n: int, scale, axis=None):
    """``decode(codes) * scale`` as float32: the product is exact in float64, rounded once."""
    d = np.asarray(decode(codes, n), np.float64)
    s = along_axis(np.asarray(scale, np.float32), d.shape, axis, "scale")
    return unwrap((d * s.astype(np.float64)).astype(np.float32))


def search_scale(x, n: int, axis=None, candidates=None):
    """MSE-optimal DyBit scale, per tensor or per channel along ``axis`` (see scale_search).

    Default factors span [1/8, 1.25 * max_magnitude(n)] of the max-abs scale: bell-shaped data
    often does best mapping max|x| well below the top magnitude (whose steps are coarse), as far
    down as 1 (factor max_magnitude), where only the fine fixed-point range [0, 1) is used.
    """
    n = _check_bits(n)

    def fake_quantize(v, scale):
        return np.asarray(dequantize(quantize(v, n, scale), n, scale), np.float64)

    top = max_magnitude(n)
    return search_scale_mse(x, fake_quantize, top, (1 / 8, 1.25 * top), axis, candidates)
