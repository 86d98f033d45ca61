"""bfloat16 emulated exactly: 1 sign, 8 exponent, 7 mantissa bits (float32's top half).

Values round to nearest, ties to even (RNE); subnormals are kept (as ml_dtypes does); overflow
rounds to +-inf.  Arithmetic takes bf16 values (bfloat16 or float arrays holding bf16 values),
computes the exact result and rounds it once to bf16; results are float32 arrays holding bf16
values (``to_bf16`` gives the uint16 bit patterns).  Every NaN an operation produces is the
canonical quiet NaN 0x7FC0; ``to_bf16`` keeps a NaN's sign (0x7FC0 / 0xFFC0), like ml_dtypes.
"""
import sys

import numpy as np

from ._arrays import along_axis, as_float64, as_int64, unwrap
from .integer import INT8_MAX, INT8_MIN, int_dtype_for_range, round_to_integer

BF16_NAN = 0x7FC0
BF16_MAX = float.fromhex("0x1.fep127")  # 0x7F7F
BF16_MIN_NORMAL = 2.0**-126
BF16_MIN_SUBNORMAL = 2.0**-133
_MIN_QUANTUM_EXP = -133  # bf16's grid never gets finer than 2**-133 (the subnormal step)
_SIGNIFICAND_BITS = 8
_LOW_HALF = np.uint32(0xFFFF)
_ROUND_BIAS = np.array(0x7FFF, np.uint32)  # plus the kept LSB: round to nearest, ties to even
_ONE = np.array(1, np.uint32)
_SIXTEEN = np.array(16, np.uint32)
_NAN16 = np.array(BF16_NAN, np.uint16)
_HIGH_HALF = 1 if sys.byteorder == "little" else 0  # index of a uint32's high half among its two uint16s
_LEAST_SUBNORMAL32 = np.float32(2.0**-149)


def _rne_into(x32: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """``out`` (uint16) = the RNE bf16 bits of the float32 lanes ``x32`` (1-d, or C-order rows) that are not NaN (NaN
    lanes get garbage): add 0x7FFF plus the kept LSB and keep the high half (in uint32 the largest
    non-NaN pattern 0xFF800000 cannot wrap).  ``work`` is uint32 scratch of x32's length; the
    constants are 0-d arrays: numpy's cheapest operands on short vectors."""
    bits = x32.view(np.uint32)
    np.right_shift(bits, _SIXTEEN, out=work)
    np.bitwise_and(work, _ONE, out=work)
    np.add(work, _ROUND_BIAS, out=work)
    np.add(work, bits, out=work)
    out[...] = work.view(np.uint16)[..., _HIGH_HALF::2]  # (the lanes may have leading axes: a batch's samples)


def _f32_to_bits(x32: np.ndarray) -> np.ndarray:
    """RNE float32 -> bf16 bits; a NaN keeps its sign."""
    flat = np.ascontiguousarray(x32).reshape(-1)
    bits = np.empty(flat.shape, np.uint16)
    _rne_into(flat, bits, np.empty(flat.shape, np.uint32))
    nan = (flat.view(np.uint32) & np.uint32(0x8000_0000)) >> 16 | BF16_NAN
    return np.where(np.isnan(flat), nan.astype(np.uint16), bits).reshape(np.shape(x32))


def _f64_to_bits(x: np.ndarray) -> np.ndarray:
    """RNE float64 -> bf16 bits in one rounding (never through float32, which would round twice)."""
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    _, exp = np.frexp(xf)  # xf = m * 2**exp with |m| in [0.5, 1)
    q_exp = np.maximum(exp - _SIGNIFICAND_BITS, _MIN_QUANTUM_EXP)
    r = np.ldexp(np.rint(np.ldexp(xf, -q_exp)), q_exp)  # scalings by powers of two are exact
    r = np.where(np.abs(r) >= 2.0**128, np.copysign(np.inf, r), r)
    r = np.where(finite, r, x)
    return _f32_to_bits(r.astype(np.float32))  # r is a bf16 value, so this cast is exact


def to_bf16(x):
    """bf16 bit patterns (uint16) of float values, rounded to nearest even.

    float64 inputs are rounded directly (one rounding); other float types are exact in float32.
    """
    arr = np.asarray(x)
    if arr.dtype.name == "bfloat16":
        return unwrap(arr.view(np.uint16).copy())
    if arr.dtype == np.float64 or arr.dtype.kind in "iub":
        return unwrap(_f64_to_bits(arr.astype(np.float64)))
    return unwrap(_f32_to_bits(np.array(arr, dtype=np.float32)))


def from_bf16(bits):
    """float32 values of bf16 bit patterns (exact)."""
    b = as_int64(bits, "bits")
    if b.size and (b.min() < 0 or b.max() > 0xFFFF):
        raise ValueError("bf16 bit patterns must be in [0, 0xFFFF]")
    return unwrap((b.astype(np.uint32) << 16).view(np.float32))


def bf16_round(x):
    """float values rounded to the nearest bf16 value (RNE), as float32."""
    return from_bf16(to_bf16(x))


def as_bf16_array(x) -> np.ndarray:
    """An array of ml_dtypes.bfloat16 holding ``x`` rounded by ``to_bf16`` (one RNE rounding).

    ml_dtypes only stores the 2-byte patterns; tcc never relies on its casts, whose rounding of
    float64 changed between releases (0.6 rounded through float32, 0.7 rounds once).
    """
    import ml_dtypes  # on first use (tcc.ir.dtypes says why)

    return np.asarray(to_bf16(x), np.uint16).view(ml_dtypes.bfloat16)


def _require_subnormals() -> None:
    """The float32 lane arithmetic needs IEEE subnormals (bf16's own subnormals are float32 ones)."""
    if _LEAST_SUBNORMAL32 * np.float32(1) == 0:
        raise FloatingPointError("float32 subnormals are flushed to zero in this thread (FTZ/DAZ, "
                                 "e.g. set by a library built with -ffast-math); bf16 arithmetic "
                                 "needs IEEE subnormals")


def as_bf16_lanes(x, name: str) -> np.ndarray:
    """A bf16 operand as float32 (exact); refuses values that are not bf16 values (round first).

    A float32 is a bf16 value exactly when its low 16 bits are zero (NaNs are accepted as they are);
    other inputs must survive the float64 -> float32 -> float64 round trip and then pass that test.
    """
    _require_subnormals()
    arr = np.asarray(x)
    if arr.dtype.name == "bfloat16":
        return arr.astype(np.float32)
    if arr.dtype != np.float32:
        v = as_float64(arr, name)
        with np.errstate(over="ignore", under="ignore"):
            arr = v.astype(np.float32)
        if not np.all((arr == v) | np.isnan(v)):
            raise ValueError(f"{name} holds values that are not bf16 values; apply bf16_round first")
    low = arr.view(np.uint32) & _LOW_HALF
    if low.any() and not np.all((low == 0) | np.isnan(arr)):
        raise ValueError(f"{name} holds values that are not bf16 values; apply bf16_round first")
    return arr


Lanes = np.ndarray | np.floating  # float32 lanes, or one float32 constant broadcast over them


# Below this many lanes ``round32_bits_into`` rounds by ml_dtypes' float32 -> bfloat16 cast (one
# call, where _rne_into makes five; on long vectors numpy's whole-array integer passes are faster).
# The cast is the same RNE on every non-NaN float32: checked on all 2**32 patterns once, and in
# tests/numerics on every high half with each rounding-relevant low half.  It is used only when
# ml_dtypes is already imported (onnx imports it): importing it just for this costs ~0.7 s, more than
# it saves in a run (`tcc run` of an int8 model with one softmax went 1.3 -> 2.3 s).
_CAST_BELOW = 16384


def _bfloat16() -> np.dtype | None:
    """ml_dtypes' bfloat16 dtype if ml_dtypes is loaded, else None (never imports it)."""
    ml_dtypes = sys.modules.get("ml_dtypes")
    return None if ml_dtypes is None else np.dtype(ml_dtypes.bfloat16)


def round32_bits_into(x32: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """``round32_bits`` of the float32 lanes ``x32`` (1-d, or C-order rows) written into ``out`` (uint16, returned),
    with ``work`` uint32 scratch of their length: nothing allocated but the NaN mask.  The caller
    silences float errors (the cast reports NaN lanes as invalid)."""
    bfloat16 = _bfloat16() if x32.size < _CAST_BELOW else None
    if bfloat16 is not None:
        np.copyto(out.view(bfloat16), x32, casting="unsafe")
    else:
        _rne_into(x32, out, work)
    np.copyto(out, _NAN16, where=np.isnan(x32))
    return out


def round32_bits(x32: Lanes) -> np.ndarray:
    """The bf16 bit patterns (uint16) of float32 values rounded once (RNE); every NaN becomes 0x7FC0."""
    flat = np.ascontiguousarray(x32, np.float32).reshape(-1)
    bits = np.empty(flat.shape, np.uint16)
    _rne_into(flat, bits, np.empty(flat.shape, np.uint32))
    np.copyto(bits, _NAN16, where=np.isnan(flat))
    return bits.reshape(np.shape(x32))


def round32(x32: Lanes) -> np.ndarray:
    """float32 values rounded once (RNE) to bf16 values, as float32; every NaN becomes 0x7FC0."""
    return np.left_shift(round32_bits(x32), _SIXTEEN, dtype=np.uint32).view(np.float32)


# The unchecked lane operations below take float32 arrays holding bf16 values and give the same
# bits as rounding the exact result once to bf16 (callers silence float errors):
# - a * b: the significands have <= 8 bits, so a * b = P 2^q with |P| < 2^16.  If |a b| >= 2^-134
#   then 2^q > 2^-150, so a b is a multiple of 2^-149 below 2^128 with < 24 significant bits,
#   exact in float32, or it overflows, where float32 rounds to a value >= the bf16 overflow
#   threshold 2^128 - 2^119 (or inf) exactly when a b is, and RNE to bf16 then gives inf either
#   way.  If |a b| < 2^-134 (half the least subnormal), float32 rounds it to at most 2^-134 with
#   its sign, and bf16 RNE sends both it and the exact product to zero (2^-134 ties to even, 0).
# - a +- b: float32 has 24 >= 2 * 8 + 2 bits, so rounding the sum to float32 and then to bf16 is
#   the correctly rounded sum (Figueroa's double-rounding theorem); sums below 2^-126 are
#   multiples of 2^-133 under 2^-125, exact in float32; overflow behaves as for products.
def mul32(a: Lanes, b: Lanes) -> np.ndarray:
    """a * b rounded once to bf16 (unchecked float32 lanes)."""
    return round32(a * b)


def add32(a: Lanes, b: Lanes) -> np.ndarray:
    """a + b rounded once to bf16 (unchecked float32 lanes)."""
    return round32(a + b)


def sub32(a: Lanes, b: Lanes) -> np.ndarray:
    """a - b rounded once to bf16 (unchecked float32 lanes)."""
    return round32(a - b)


def mul_add32(a: Lanes, b: Lanes, c: Lanes) -> np.ndarray:
    """a * b + c as the SIMD lane computes it, multiply, round, add, round (unchecked lanes)."""
    return round32(round32(a * b) + c)


def sum32(v: np.ndarray) -> np.ndarray:
    """``bf16_sum`` of float32 lanes along the last axis (unchecked); see bf16_sum for the order."""
    if v.shape[-1] == 0:
        return np.zeros(v.shape[:-1], np.float32)
    while v.shape[-1] > 1:
        pairs = v.shape[-1] // 2
        level = round32(v[..., 0:2 * pairs:2] + v[..., 1:2 * pairs:2])
        odd_last = v[..., 2 * pairs:]
        v = np.concatenate([level, odd_last], axis=-1) if odd_last.shape[-1] else level
    return v[..., 0].copy()


def _finish(r64: np.ndarray) -> np.ndarray:
    """Round float64 results to bf16 values (float32), NaNs made canonical."""
    bits = np.where(np.isnan(r64), np.uint16(BF16_NAN), _f64_to_bits(r64))
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _sum_round_to_odd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x + y rounded to float64 with round-to-odd, so a later RNE to bf16 is a single rounding.

    The error of the float64 sum is recovered exactly by TwoSum; when it is non-zero the result
    moves to whichever neighbour has an odd last bit (53 >= 8 + 2 bits, Boldo-Melquiond).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        s = x + y
        yv = s - x
        err = (x - (s - yv)) + (y - yv)
    inexact = np.isfinite(s) & (err != 0)
    even = (s.view(np.int64) & 1) == 0
    toward = np.nextafter(s, np.where(err > 0, np.inf, -np.inf))
    return np.where(inexact & even, toward, s)


def bf16_add(a, b):
    """a + b rounded once to bf16."""
    x, y = as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b")
    with np.errstate(over="ignore", invalid="ignore"):
        return unwrap(add32(x, y))


def bf16_sub(a, b):
    """a - b rounded once to bf16."""
    x, y = as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b")
    with np.errstate(over="ignore", invalid="ignore"):
        return unwrap(sub32(x, y))


def bf16_mul(a, b):
    """a * b rounded once to bf16."""
    x, y = as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b")
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return unwrap(mul32(x, y))


def bf16_fma(a, b, c):
    """Fused a * b + c with ONE rounding to bf16 (not what tcc's SIMD lane does; see mul_add)."""
    x, y, z = (as_bf16_lanes(v, n).astype(np.float64) for v, n in ((a, "a"), (b, "b"), (c, "c")))
    with np.errstate(invalid="ignore"):
        product = x * y  # exact: two 8-bit significands
    return unwrap(_finish(_sum_round_to_odd(product, z)))


def bf16_mul_add(a, b, c):
    """a * b + c as tcc's bf16 SIMD lane computes it: multiply, round, add, round."""
    x, y, z = as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b"), as_bf16_lanes(c, "c")
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return unwrap(mul_add32(x, y, z))


def _select_canonical(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """r (one of x, y, so already a bf16 value) with the canonical NaN where x or y is NaN."""
    return np.where(np.isnan(x) | np.isnan(y), np.float32(np.nan), r).astype(np.float32)


def bf16_max(a, b):
    """Larger of a and b; NaN if either is NaN; max(+0, -0) is +0."""
    x, y = np.broadcast_arrays(as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b"))
    r = np.where(x > y, x, y)
    r = np.where(x == y, np.where(np.signbit(x), y, x), r)
    return unwrap(_select_canonical(x, y, r))


def bf16_min(a, b):
    """Smaller of a and b; NaN if either is NaN; min(+0, -0) is -0."""
    x, y = np.broadcast_arrays(as_bf16_lanes(a, "a"), as_bf16_lanes(b, "b"))
    r = np.where(x < y, x, y)
    r = np.where(x == y, np.where(np.signbit(x), x, y), r)
    return unwrap(_select_canonical(x, y, r))


def bf16_sum(x, axis=None):
    """Sum along ``axis`` (all elements if None) in a fixed pairwise tree, rounding every add.

    Order: each level adds neighbours (v[0]+v[1], v[2]+v[3], ...) into a new vector; an odd last
    element passes to the next level unchanged; repeat until one value is left.  An empty sum
    is +0.  A simulator reduces in exactly this order.
    """
    v = as_bf16_lanes(x, "x")
    v = v.reshape(-1) if axis is None else np.moveaxis(v, axis, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        return unwrap(sum32(v))


def int8_to_bf16(q, scale, zero_point=0, axis=None):
    """``(q - zero_point) * scale`` rounded once to bf16, as float32.

    ``scale`` is taken as float32 (RNE); the product of |q - zero_point| < 2**29 and a float32 is
    exact in float64, so the only rounding is the final RNE to bf16.  ``axis`` makes
    scale/zero_point per-channel.
    """
    qa = as_int64(q, "q")
    zp = along_axis(as_int64(zero_point, "zero_point"), qa.shape, axis, "zero_point")
    s = along_axis(np.asarray(scale, np.float32), qa.shape, axis, "scale")
    d = qa - zp
    if d.size and np.max(np.abs(d)) >= 2**29:
        raise ValueError("|q - zero_point| must stay below 2**29")
    return unwrap(_finish(d.astype(np.float64) * s.astype(np.float64)))


def bf16_to_int8(x, scale, zero_point=0, mode: str = "half_even", qmin: int = INT8_MIN,
                 qmax: int = INT8_MAX, axis=None, out_dtype=None):
    """``clamp(round(x * (1/scale)) + zero_point, qmin, qmax)`` for bf16 values ``x``.

    The reciprocal is computed in float32 (RNE), as the quantization unit multiplies rather than
    divides; x times it is exact in float64 and is rounded once to an integer in ``mode``.
    +-inf saturates; NaN maps to ``zero_point``.  Result dtype: ``out_dtype`` or the smallest
    integer dtype holding [qmin, qmax].
    """
    v = as_bf16_lanes(x, "x")
    s = along_axis(np.asarray(scale, np.float32), v.shape, axis, "scale")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("scale must be finite and positive")
    zp = along_axis(as_int64(zero_point, "zero_point"), v.shape, axis, "zero_point")
    inv = (np.float32(1) / s).astype(np.float64)
    with np.errstate(invalid="ignore"):
        t = v * inv
    t = np.clip(np.where(np.isnan(t), 0.0, t), -(2.0**40), 2.0**40)  # beyond this, all saturates
    out = np.clip(np.asarray(round_to_integer(t, mode)) + zp, qmin, qmax)
    dtype = np.dtype(out_dtype) if out_dtype is not None else int_dtype_for_range(qmin, qmax)
    return unwrap(out.astype(dtype))
