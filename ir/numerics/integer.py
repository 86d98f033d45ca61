"""Integer numerics: saturation, rounding right shifts, dyadic (Q31) requantization and the
integer datapath's stages built on them (``centre_and_shift``, ``rounded_mean``).

A dyadic multiplier represents a real scale as ``multiplier * 2**-shift`` with ``multiplier`` in
[2**30, 2**31); ``requantize`` computes ``clamp(round(acc * multiplier / 2**shift) + zero_point)``
with a single exact rounding in int64.  Every function is vectorized (arrays or scalars in).

Rounding modes (``ROUNDING_MODES``), for the exact quotient ``v``:
``half_even`` nearest, ties to even; ``half_up`` nearest, ties toward +inf;
``half_away`` nearest, ties away from zero; ``floor`` toward -inf (a plain arithmetic shift).
"""
import numpy as np

from ._arrays import along_axis, as_float64, as_int64, unwrap

INT8_MIN, INT8_MAX = -(2**7), 2**7 - 1
UINT8_MIN, UINT8_MAX = 0, 2**8 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ROUNDING_MODES = ("half_even", "half_up", "half_away", "floor")

# |acc * multiplier| must stay below this so the product is exact in int64 and shifts beyond 63
# can be clamped to 63 without changing the rounded result (see multiply_by_quantized_multiplier).
_PRODUCT_LIMIT = 2**62
_OUT_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64)


def _check_mode(mode: str) -> None:
    if mode not in ROUNDING_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}; expected one of {', '.join(ROUNDING_MODES)}")


def integer_range(dtype_or_bits, signed: bool = True) -> tuple[int, int]:
    """(min, max) of a numpy integer dtype, or of a ``bits``-wide signed/unsigned integer."""
    if isinstance(dtype_or_bits, (int, np.integer)) and not isinstance(dtype_or_bits, bool):
        bits = int(dtype_or_bits)
        if not 1 <= bits <= 64 or (signed and bits < 2):
            raise ValueError(f"unsupported integer width {bits}")
        return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    info = np.iinfo(np.dtype(dtype_or_bits))
    return int(info.min), int(info.max)


def int_dtype_for_range(lo: int, hi: int) -> np.dtype:
    """The smallest of int8, uint8, int16, uint16, int32, int64 holding [lo, hi]."""
    for dt in _OUT_DTYPES:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    raise ValueError(f"no integer dtype holds [{lo}, {hi}]")


def saturate(x, dtype_or_bits, signed: bool = True):
    """Clamp integers to a dtype's range (returned in that dtype) or a bit width's (as int64).

    ``signed`` only applies when a bit width is given.
    """
    lo, hi = integer_range(dtype_or_bits, signed)
    arr = as_int64(x, "x")
    out = np.clip(arr, lo, hi)
    if not isinstance(dtype_or_bits, (int, np.integer)):
        out = out.astype(np.dtype(dtype_or_bits))
    return unwrap(out)


def rounding_right_shift(x, shift, mode: str = "half_even"):
    """``round(x / 2**shift)`` in the given mode, exactly, as int64.

    Exact for every int64 ``x`` and every ``shift`` in [0, 63] (shift 0 is the identity): the
    floor part is an arithmetic shift and the rounding increment is at most 1 on a value at most
    2**62 in magnitude, so nothing can wrap.  Shifts outside [0, 63] raise ValueError.
    """
    _check_mode(mode)
    xa = as_int64(x, "x")
    s = as_int64(shift, "shift")
    if s.size and (s.min() < 0 or s.max() > 63):
        raise ValueError(f"shift must be in [0, 63], got range [{s.min()}, {s.max()}]")
    if mode in ("half_even", "half_up") and s.size and s.min() > 0 and xa.size \
            and -2**62 < xa.min() and xa.max() < 2**62:
        # Fast form, exact while x + 2**(s-1) cannot wrap: half_up is floor((x + half) / 2**s);
        # half_even adds half - 1 plus the floor quotient's low bit, which tips exact ties to even.
        half = np.left_shift(np.int64(1), s - 1)
        if mode == "half_up":
            return unwrap(np.right_shift(xa + half, s))
        out = np.right_shift(xa, s)
        if not isinstance(out, np.ndarray):
            return unwrap(np.right_shift(xa + (half - 1) + np.bitwise_and(out, 1), s))
        np.bitwise_and(out, 1, out=out)  # in place: the same sum, without a temporary per term
        out += xa
        out += half - 1
        return unwrap(np.right_shift(out, s, out=out))
    xa, s = np.broadcast_arrays(xa, s)
    floor_q = np.right_shift(xa, s)
    if mode == "floor":
        return unwrap(np.array(floor_q))
    rem = np.bitwise_and(xa, ~np.left_shift(np.int64(-1), s))  # low `s` bits, in [0, 2**s)
    half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
    above, tie = rem > half, rem == half
    if mode == "half_up":
        inc = above | tie
    elif mode == "half_away":
        inc = above | (tie & (xa >= 0))
    else:  # half_even
        inc = above | (tie & (np.bitwise_and(floor_q, 1) == 1))
    inc &= s > 0
    return unwrap(floor_q + inc.astype(np.int64))


def rounding_divide(num, den, mode: str = "half_even"):
    """``round(num / den)`` exactly, as int64, for int64 ``num`` and positive int64 ``den``."""
    _check_mode(mode)
    n, d = np.broadcast_arrays(as_int64(num, "num"), as_int64(den, "den"))
    if d.size and d.min() <= 0:
        raise ValueError("rounding_divide needs a positive divisor")
    q, r = np.divmod(n, d)  # floor quotient, 0 <= r < d
    if mode == "floor":
        return unwrap(q)
    twice = 2 * r
    above, tie = twice > d, twice == d
    if mode == "half_up":
        inc = above | tie
    elif mode == "half_away":
        inc = above | (tie & (n >= 0))
    else:
        inc = above | (tie & (q % 2 == 1))
    return unwrap(q + inc.astype(np.int64))


def round_to_integer(x, mode: str = "half_even"):
    """Round float values to int64 exactly in the given mode (no intermediate float rounding).

    Inputs must be finite with magnitude below 2**62; this is the one place where a float enters
    an integer path, and it is exact for every float64 input.
    """
    _check_mode(mode)
    v = as_float64(x, "x")
    if not np.all(np.isfinite(v)) or (v.size and np.max(np.abs(v)) >= 2.0**62):
        raise ValueError("round_to_integer needs finite values below 2**62 in magnitude")
    if mode == "floor":
        r = np.floor(v)
    elif mode == "half_even":
        r = np.rint(v)
    else:
        a = np.abs(v) if mode == "half_away" else v
        f = np.floor(a)
        # a non-integer has |a| < 2**52, so f + 0.5 is exact and the comparison is exact
        r = np.where((a != f) & (a >= f + 0.5), f + 1.0, f)
        if mode == "half_away":
            r = np.copysign(r, v)
    return unwrap(r.astype(np.int64))


def quantize_multiplier(real):
    """Dyadic form of a real scale: ``(multiplier, shift)`` with ``real ~= multiplier * 2**-shift``.

    ``multiplier`` is in [2**30, 2**31) (Q31), ``shift`` >= 0, for ``real`` in (0, 2**31); real == 0
    gives (0, 0).  The Q31 mantissa is rounded to nearest, ties up (TFLite's QuantizeMultiplier),
    so the relative error is at most 2**-31.  Scalars give Python ints, arrays give int64 arrays.
    """
    r = as_float64(real, "real")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("quantize_multiplier needs finite, non-negative reals")
    mant, exp = np.frexp(r)  # r = mant * 2**exp, mant in [0.5, 1)
    q = mant * 2.0**31  # exact: a power-of-two scaling
    mult = np.floor(q + 0.5).astype(np.int64)  # q < 2**31 has ulp <= 2**-22, so q + 0.5 is exact
    exp = exp.astype(np.int64)
    if np.any(exp > 31):
        raise ValueError("quantize_multiplier needs real < 2**31")
    # Rounding up to 2**31 carries into the exponent; in the top binade (shift would become -1)
    # keep 2**31 - 1 instead, still within a relative 2**-32 of real.
    carry = (mult == 2**31) & (exp < 31)
    mult = np.where(carry, 2**30, np.minimum(mult, 2**31 - 1))
    exp = exp + carry
    shift = np.where(r == 0, 0, 31 - exp)
    if mult.ndim == 0:
        return int(mult), int(shift)
    return mult, shift


def multiply_by_quantized_multiplier(acc, multiplier, shift, mode: str = "half_even"):
    """``round(acc * multiplier / 2**shift)`` as int64 with one exact rounding.

    The product is formed exactly in int64: it must stay below 2**62 in magnitude, which holds
    for any int32 accumulator times a Q31 multiplier (2**31 * (2**31 - 1) < 2**62); wider
    accumulators are accepted when their product with the multiplier fits, else ValueError.
    Since |product| < 2**62, any shift >= 63 gives the same result as 63 (the quotient's
    magnitude is below 1/2), so large shifts are clamped there.  Unlike gemmlowp's
    SaturatingRoundingDoublingHighMul + RoundingDivideByPOT this rounds once, not twice.
    """
    _check_mode(mode)
    a = as_int64(acc, "acc")
    m = as_int64(multiplier, "multiplier")
    s = as_int64(shift, "shift")
    if m.size and m.min() < 0:
        raise ValueError("multiplier must be non-negative")
    if s.size and s.min() < 0:
        raise ValueError("shift must be non-negative")
    bound = (_PRODUCT_LIMIT - 1) // np.maximum(m, 1)
    if a.size and _magnitude(a) > int(np.min(bound)) and np.any((a > bound) | (a < -bound)):
        raise ValueError("acc * multiplier would reach 2**62 and could overflow int64; "
                         "use int32 accumulators or a smaller multiplier")
    return rounding_right_shift(a * m, np.minimum(s, 63), mode)


def requantize(acc, multiplier, shift, zero_point=0, qmin: int = INT8_MIN, qmax: int = INT8_MAX,
               mode: str = "half_even", axis=None, out_dtype=None):
    """``clamp(round(acc * multiplier / 2**shift) + zero_point, qmin, qmax)``, exact.

    Per-channel: pass 1-d ``multiplier``/``shift``/``zero_point`` with ``axis`` naming the channel
    axis of ``acc``, or pre-shaped arrays that broadcast.  The result dtype is ``out_dtype`` or
    the smallest integer dtype holding [qmin, qmax] (int8 for the defaults).
    """
    if qmin > qmax:
        raise ValueError(f"qmin {qmin} > qmax {qmax}")
    a = as_int64(acc, "acc")
    m = along_axis(as_int64(multiplier, "multiplier"), a.shape, axis, "multiplier")
    s = along_axis(as_int64(shift, "shift"), a.shape, axis, "shift")
    zp = along_axis(as_int64(zero_point, "zero_point"), a.shape, axis, "zero_point")
    if zp.size and (zp.min() < INT32_MIN or zp.max() > INT32_MAX):
        raise ValueError("zero_point must be within int32")
    scaled = np.asarray(multiply_by_quantized_multiplier(a, m, s, mode))
    if scaled.ndim and np.broadcast_shapes(scaled.shape, zp.shape) == scaled.shape:  # a new array: in place
        scaled += zp
        out = np.clip(scaled, qmin, qmax, out=scaled)
    else:
        out = np.clip(scaled + zp, qmin, qmax)
    dtype = np.dtype(out_dtype) if out_dtype is not None else int_dtype_for_range(qmin, qmax)
    return unwrap(out.astype(dtype))


def centre_and_shift(x, zero_point, pre_shift: int = 0, headroom: int = 0):
    """``(x - zero_point) << pre_shift`` as int64: the requantizer's input stage, before the multiplier.

    ``pre_shift`` must be in [0, 62] and ``|x - zero_point| << pre_shift`` plus ``headroom`` (the
    largest magnitude added afterwards, such as a bias) must stay below 2**62, so neither the shift
    nor that addition can wrap int64; otherwise ValueError.
    """
    if not 0 <= pre_shift <= 62:
        raise ValueError(f"pre_shift = {pre_shift} must be in [0, 62]")
    v = as_int64(x, "x") - as_int64(zero_point, "zero_point")
    largest = _magnitude(v)
    if (largest << pre_shift) + headroom >= _PRODUCT_LIMIT:
        raise ValueError(f"pre_shift = {pre_shift} shifts |{largest}| beyond 2**62")
    return unwrap(np.left_shift(v, pre_shift) if pre_shift else v)


def _magnitude(v) -> int:
    """The largest |element| of an integer array (0 when empty), without an array of magnitudes."""
    v = np.asarray(v)
    return max(-int(v.min()), int(v.max())) if v.size else 0


def rounded_mean(total, count, multiplier: int, shift: int, zero_point: int = 0, qmin: int = INT8_MIN,
                 qmax: int = INT8_MAX):
    """Average pooling's output: ``clamp(round_half_even(total * multiplier / (count << shift)) + zero_point)``.

    ``total`` is a window's exact integer sum of ``x - zero_point_in`` and ``count`` its divisor;
    one exact rounding (``rounding_divide``), int64 out.  ``multiplier`` must be >= 0, ``shift`` in
    [0, 50] and ``count`` >= 1, so ``count << shift`` and the product stay exact; else ValueError.
    """
    if multiplier < 0 or not 0 <= shift <= 50:
        raise ValueError(f"a rounded mean needs multiplier >= 0 and shift in [0, 50], got {multiplier}, {shift}")
    t = as_int64(total, "total")
    c = as_int64(count, "count")
    if c.size and c.min() < 1:
        raise ValueError("a rounded mean needs window counts >= 1")
    if t.size and int(np.abs(t).max()) * multiplier >= _PRODUCT_LIMIT:
        raise ValueError("total * multiplier would reach 2**62 and could overflow int64")
    mean = np.asarray(rounding_divide(t * np.int64(multiplier), np.left_shift(c, shift), "half_even"))
    return unwrap(np.clip(mean + zero_point, qmin, qmax))


def dyadic_error(real, multiplier, shift):
    """Relative error ``(multiplier * 2**-shift - real) / real`` of a dyadic approximation.

    For real == 0 the error is 0 when the multiplier is 0 and inf otherwise.  Reporting only:
    computed in float64.
    """
    r = as_float64(real, "real")
    approx = np.ldexp(as_int64(multiplier, "multiplier").astype(np.float64),
                      -as_int64(shift, "shift"))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(r == 0, np.where(approx == 0, 0.0, np.inf), (approx - r) / np.where(r == 0, 1, r))
    return unwrap(rel)
