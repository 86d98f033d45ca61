"""DyBit: sign-magnitude codes whose magnitude field is a run of k leading 1s (closed by a 0)
followed by an r = max(w-k-1, 0)-bit mantissa f; magnitude f / 2**r when k = 0, else
2**(k-1) * (1 + f / 2**r).  n = 2..8 total bits, w = n-1 magnitude bits, sign in bit n-1.

The family member is chosen by a cap c (0..w) on the exponent run: the run stops at c ones
without a closing 0 (so r = w-k when k = c, else w-k-1), and cap 0 has no exponent field at all
(magnitude f / 2**(w-1), f of w bits: the uniform grid of intN).  Cap w is the full run above;
cap 1 gives the same magnitudes as cap 0 (one 1 without a closing 0 is just the top mantissa
bit), so a search tries 0, 2..w.  Smaller caps trade range for resolution at the top: n = 4
gives tops of 1.75 (c 0), 3 (c 2) and 4 (c 3).  ``cap=None`` means c = w everywhere.

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


def check_cap(n: int, cap: int | None) -> int:
    """The exponent-run cap of n-bit DyBit: ``cap`` checked to lie in [0, n-1], or n-1 for None."""
    w = _check_bits(n) - 1
    if cap is None:
        return w
    if not isinstance(cap, (int, np.integer)) or not 0 <= cap <= w:
        raise ValueError(f"the exponent-run cap of {n}-bit DyBit must be an integer in [0, {w}], got {cap!r}")
    return int(cap)


@functools.lru_cache(maxsize=None)
def _magnitude_ints(n: int, cap: int) -> np.ndarray:
    """Magnitude of every magnitude code, in units of 2**-(w-1), indexed by code."""
    w = n - 1
    codes = np.arange(2**w, dtype=np.int64)
    k = np.zeros_like(codes)
    run = np.ones(codes.shape, bool)
    for bit in range(w - 1, w - 1 - cap, -1):  # count the leading 1s from the top bit down, at most cap
        run &= ((codes >> bit) & 1) == 1
        k += run
    r = np.where(k == cap, w - k, w - k - 1)  # a run that reaches the cap has no closing 0
    if cap == 0:
        r = np.full_like(k, w - 1)  # no exponent field: f is the whole magnitude, in the same units
        f = codes
    else:
        f = codes & ((np.left_shift(1, r)) - 1)
    # k = 0: f / 2**(w-1), i.e. f fine units;
    # k >= 1: 2**(k-1) * (2**r + f) / 2**r, i.e. (2**r + f) << (k-1 + w-1 - r) fine units
    mags = np.where(k == 0, f, (np.left_shift(1, r) + f) << np.maximum(k + w - 2 - r, 0))
    mags.setflags(write=False)
    return mags


@functools.lru_cache(maxsize=None)
def _midpoints(n: int, cap: int) -> np.ndarray:
    m = dybit_magnitudes(n, cap)
    mids = (m[:-1] + m[1:]) / 2  # exact: small dyadic rationals
    mids.setflags(write=False)
    return mids


def dybit_magnitudes(n: int, cap: int | None = None) -> np.ndarray:
    """The 2**(n-1) magnitudes of n-bit DyBit as float64, indexed by magnitude code (ascending)."""
    cap = check_cap(n, cap)
    return np.ldexp(_magnitude_ints(n, cap).astype(np.float64), -FINE_SHIFT[n])


def magnitude_ints(n: int, cap: int | None = None) -> np.ndarray:
    """The magnitudes as integers on the fine grid 2**-FINE_SHIFT[n], indexed by magnitude code."""
    return _magnitude_ints(n, check_cap(n, cap))


def max_magnitude(n: int, cap: int | None = None) -> float:
    """Largest n-bit DyBit magnitude: 2**(n-2) for the full run, less for smaller caps."""
    return float(dybit_magnitudes(n, cap)[-1])


def max_decode_int(n: int, cap: int | None = None) -> int:
    """Largest |decode_int| of n-bit DyBit with this cap (MAX_DECODE_INT[n] for the full run)."""
    return int(magnitude_ints(n, cap)[-1])


def decode_int(codes, n: int, cap: int | None = None):
    """Values of DyBit codes as int32 multiples of 2**-FINE_SHIFT[n] (sign-magnitude decoded)."""
    cap = check_cap(n, cap)
    c = as_int64(codes, "codes")
    if c.size and (c.min() < 0 or c.max() >= 2**n):
        raise ValueError(f"{n}-bit DyBit codes must be in [0, {2**n - 1}]")
    mag = _magnitude_ints(n, cap)[c & (2 ** (n - 1) - 1)]
    return unwrap(np.where((c >> (n - 1)) & 1 == 1, -mag, mag).astype(np.int32))


def decode(codes, n: int, cap: int | None = None):
    """Values of DyBit codes as float64 (exact)."""
    return unwrap(np.ldexp(np.asarray(decode_int(codes, n, cap), np.float64), -FINE_SHIFT[n]))


def encode(values, n: int, cap: int | None = None):
    """Nearest n-bit DyBit codes (uint8) of values; ties to the even code, saturating."""
    cap = check_cap(n, cap)
    v = as_float64(values, "values")
    if np.any(np.isnan(v)):
        raise ValueError("NaN has no DyBit code")
    mids = _midpoints(n, cap)
    a = np.abs(v)
    code = np.searchsorted(mids, a, side="left")  # midpoints strictly below |v|: the lower code
    tie = mids[np.minimum(code, mids.size - 1)] == a
    code = np.where(tie & (code % 2 == 1), code + 1, code)
    negative = (v < 0) & (code > 0)
    return unwrap((code | (negative.astype(np.int64) << (n - 1))).astype(np.uint8))


def quantize(x, n: int, scale, axis=None, cap: int | None = None):
    """DyBit codes of ``x / scale``, the division in float32 (like ONNX QuantizeLinear)."""
    x32 = np.asarray(x, np.float32)
    s = along_axis(np.asarray(scale, np.float32), x32.shape, axis, "scale")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("scale must be finite and positive (as float32)")
    with np.errstate(over="ignore"):
        return encode(x32 / s, n, cap)


def dequantize(codes, n: int, scale, axis=None, cap: int | None = None):
    """``decode(codes) * scale`` as float32: the product is exact in float64, rounded once."""
    d = np.asarray(decode(codes, n, cap), np.float64)
    s = along_axis(np.asarray(scale, np.float32), d.shape, axis, "scale")
    return unwrap((d * s.astype(np.float64)).astype(np.float32))


def search_scale(x, n: int, axis=None, candidates=None, cap: int | None = None, inputs=None):
    """MSE-optimal DyBit scale, per tensor or per channel along ``axis`` (see scale_search;
    ``inputs``: the layer-output MSE on those rows instead of the weights').

    Default factors span [1/8, 1.25 * max_magnitude(n)] of the max-abs scale (for the full run):
    bell-shaped data often does best mapping max|x| well below the top magnitude (whose steps are
    coarse), as far down as 1 (factor max_magnitude), where only the fine fixed-point range
    [0, 1) is used.
    """
    cap = check_cap(n, cap)

    def fake_quantize(v, scale):
        return np.asarray(dequantize(quantize(v, n, scale, cap=cap), n, scale, cap=cap), np.float64)

    top = max_magnitude(n, cap)
    low = 1 / 8 if cap == n - 1 else 1 / 2
    return search_scale_mse(x, fake_quantize, top, (low, 1.25 * top if cap == n - 1 else 1.25), axis, candidates,
                            inputs, dybit_magnitudes(n, cap))
