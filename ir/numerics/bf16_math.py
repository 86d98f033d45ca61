"""Non-linear functions of tcc's bf16 SIMD lane, each a fixed sequence of ``bf16`` operations.

Every step is a ``bf16.py`` primitive (multiply, add, max/min, each rounded to nearest even),
a compare/select, an exact integer operation on the bf16 bit pattern (exponent and mantissa
fields), an exact round-to-integer, or a bf16 constant.  No library transcendental is used, so
a simulator that runs the same sequence reproduces every result bit for bit.

Measured error (``tests/numerics/test_bf16_math.py`` prints this table) against float64 truth
of the same function on the same bf16 inputs, over EVERY finite bf16 input unless stated; 1 ulp
is the bf16 spacing at the true value (a correctly rounded result is within 0.5 ulp):

=================  ==========================================================  ==============
function           method                                                      max error
=================  ==========================================================  ==============
exp                x = n ln2 + r, n = rint(x log2e); r by Cody-Waite with        0.96 ulp
                   ln2 in 4-bit pieces (n split in two 4-bit halves, so each
                   product is exact); e^r by degree-4 Taylor/Horner; times 2^n
                   through the exponent field (two steps: one final rounding)
reciprocal         x = m 2^e, m in [1,2); seed 24/17 - 8/17 m; two Newton        0.92 ulp
                   steps t + t (1 - m t); times 2^-e
rsqrt              x = m 2^2k, m in [1,4); seed 0x5F37 - (bits >> 1); two        0.93 ulp
                   Newton steps t + t (0.5 - (0.5 m) t^2); times 2^-k
sqrt               x * rsqrt(x)                                                  1.58 ulp
div(a, b)          a * reciprocal(b) (random operands, 1/b normal)               <= 2 ulp
tanh               |x| < 0.5: x + x x^2 P(x^2) (Taylor to x^9);                  1.00 ulp
                   else 1 - 2 reciprocal(exp(2|x|) + 1); odd symmetry
erf                |x| < 1: x + x Q(x^2) (Taylor to x^13); else 1 - erfc,        1.23 ulp
                   erfc by Abramowitz-Stegun 7.1.26 (t = 1/(1 + p|x|),
                   5-term Horner, times exp(-x^2)); odd symmetry
sigmoid            e = exp(-|x|), s = reciprocal(1 + e); x >= 0: s, else e s      2.24 ulp
silu               x * sigmoid(x) (x >= -87; below, |err| <= 4e-39)              2.28 ulp
hard_swish         x * (min(max(x + 3, 0), 6) * bf16(1/6))                       2.15 ulp
gelu "none"        x * 0.5 (1 + erf(x / sqrt2)); for x / sqrt2 <= -1 the         see below
                   sum is erfc(|x| / sqrt2) directly (no cancellation)
gelu "tanh"        x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), which equals    see below
                   0.5 x (1 + tanh(...)) without its cancellation for x < 0
softmax            max, x - max, exp, bf16_sum, reciprocal, multiply             see below
layer_norm         mean = bf16_sum(x) bf16(1/n); d = x - mean;                   see below
                   var = bf16_sum(d d) bf16(1/n) (two-pass E[(x-mu)^2]);
                   r = rsqrt(var + bf16(eps)); (d r) gamma + beta
=================  ==========================================================  ==============

gelu: "none" <= 6.81 ulp for x >= -2, |err| <= 7.8e-4 (< 2^-10) for x < -2; "tanh" <= 5.09 ulp
  for x >= -2, |err| <= 1.1e-3 (< 2^-9) for x < -2.  Both limits come from rounding the
  argument (x^2, x / sqrt2) to bf16, magnified by the function's condition number ~x^2 there.
softmax: |y - y64| <= 2^-8 + 2^-5 y64 and |sum(y) - 1| <= 2^-5 (measured <= 0.011) on random
  rows of length 1..64 (the rounding of x - max dominates).
layer_norm: |y - y64| <= 2^-4 (1 + |y64|) (measured <= 0.031) on random rows with
  |mean| <= 4 std, gamma 1, beta 0; the bf16 rounding of the mean dominates.
Specials follow IEEE: NaN in -> NaN out; exp(+inf) = inf, exp(-inf) = 0; reciprocal(+-0) = +-inf;
rsqrt(-0) = -inf; rsqrt/sqrt of negatives = NaN; silu(-inf) = gelu(-inf) = hard_swish(-inf) = -0.
"""
import functools

import numpy as np

from ._arrays import unwrap
from .bf16 import (
    BF16_MIN_NORMAL, add32, as_bf16_lanes, bf16_add, bf16_max, bf16_min, bf16_round, mul32,
    mul_add32, sub32, sum32,
)

# The lanes are float32 arrays holding bf16 values (low 16 bits zero; NaNs 0x7FC0 or 0xFFC0), so
# an operation on the uint32 pattern's top half is the same operation on the bf16 bit pattern.
_NAN = np.float32(np.nan)
_INF = np.float32(np.inf)
_ONE, _TWO, _HALF = np.float32(1), np.float32(2), np.float32(0.5)
_SIGN = np.uint32(0x8000_0000)
_MAGNITUDE = np.uint32(0x7FFF_FFFF)
_MANTISSA = np.uint32(0x007F_0000)
_TWO_TO_64 = np.float32(2.0**64)


def _k(value: float) -> np.float32:
    """A bf16 constant (value rounded once to bf16)."""
    return np.float32(bf16_round(np.float64(value)))


_LOG2E = _k(1.4426950408889634)
_LN2_PIECES = (_k(0.6875), _k(0.005859375), _k(-0.000213623046875))  # 4 significant bits each
_LN2_REST = _k(1.4286068202862268e-06)  # ln2 minus the pieces
_EXP_POLY = (_k(1 / 24), _k(1 / 6), _k(0.5), _k(1.0), _k(1.0))  # e^r, Horner, highest first
_EXP_HI, _EXP_LO = _k(89.0), _k(-93.0)  # bf16 inputs at/above overflow, at/below underflow
_RECIP_SEED = (_k(24 / 17), _k(8 / 17))
_TANH_POLY = (_k(62 / 2835), _k(-17 / 315), _k(2 / 15), _k(-1 / 3))  # x + x*x2*P(x2)
_ERF_POLY = (_k(0.0001205533298), _k(-0.0008548327023), _k(0.005223977625), _k(-0.02686617065),
             _k(0.1128379167), _k(-0.376126389), _k(0.1283791671))  # x + x*Q(x2); Q ends in 2/sqrt(pi) - 1
_AS_P = _k(0.3275911)
_AS_POLY = (_k(1.061405429), _k(-1.453152027), _k(1.421413741), _k(-0.284496736),
            _k(0.254829592))
_TANH_SERIES_LIMIT = _k(0.5)  # tanh uses its series below this |x|
_ERF_SERIES_LIMIT = _k(1.0)  # erf (and gelu's erf) use their series below this |x|
_INV_SQRT2 = _k(0.7071067811865476)
_GELU_K1 = _k(1.5957691216057308)  # 2 sqrt(2/pi)
_GELU_K3 = _k(1.5957691216057308 * 0.044715)
_SIXTH = _k(1 / 6)


def _lanes(x) -> np.ndarray:
    """Input bf16 values as a flat float32 array (refuses values that are not bf16 values).

    A NaN becomes 0x7FC0 or 0xFFC0 (its sign kept), as ``bf16_round`` makes it.
    """
    v = as_bf16_lanes(x, "input").reshape(-1)
    nan = np.isnan(v)
    if nan.any():
        bits = v.view(np.uint32)
        v = np.where(nan, (bits & _SIGN) | np.uint32(0x7FC0_0000), bits).view(np.float32)
    return v


def _out(y: np.ndarray, like) -> np.ndarray:
    return unwrap(np.asarray(y, np.float32).reshape(np.shape(like)))


def _bits(v: np.ndarray) -> np.ndarray:
    return v.view(np.uint32)


def _from_bits(b: np.ndarray) -> np.ndarray:
    return b.astype(np.uint32, copy=False).view(np.float32)


def _pow2(k: np.ndarray) -> np.ndarray:
    """2**k for integers k in [-126, 127], built in the exponent field."""
    return _from_bits((k + 127).astype(np.uint32) << 23)


def _scale(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """y * 2**k for y in [0.5, 2]: the first multiply is exact, the second rounds (once).

    |k // 2| <= 67 here, so y 2**(k // 2) is a normal bf16 value and its rounding is skipped.
    """
    k1 = k // 2
    return mul32(y * _pow2(k1), _pow2(k - k1))


def _horner(x: np.ndarray, coeffs) -> np.ndarray:
    acc = np.full(x.shape, coeffs[0], np.float32)
    for c in coeffs[1:]:
        acc = mul_add32(acc, x, c)
    return acc


def _abs(v: np.ndarray) -> np.ndarray:
    return _from_bits(_bits(v) & _MAGNITUDE)


def _copysign(mag: np.ndarray, sign_of: np.ndarray) -> np.ndarray:
    return _from_bits(_bits(mag) | (_bits(sign_of) & _SIGN))


def _exp(v: np.ndarray) -> np.ndarray:
    nan, hi, lo = np.isnan(v), v >= _EXP_HI, v <= _EXP_LO
    x = np.where(nan | hi | lo, np.float32(0), v)
    n = np.rint(mul32(x, _LOG2E))  # exact round to integer
    n_hi = _from_bits(_bits(n) & np.uint32(0xFFF0_0000))  # top 4 significant bits of n
    n_lo = sub32(n, n_hi)  # the rest: at most 4 significant bits (exact)
    r = x
    for c in _LN2_PIECES:
        # 4-bit pieces times 4-bit halves of n: every product has <= 8 significant bits and is 0 or
        # at least 2^-15, a bf16 value exactly, so its rounding (the identity) is skipped
        r = sub32(sub32(r, n_hi * c), n_lo * c)
    r = sub32(r, mul32(n, _LN2_REST))
    y = _scale(_horner(r, _EXP_POLY), n.astype(np.int64))
    y = np.where(hi, _INF, np.where(lo, np.float32(0), y))
    return np.where(nan, _NAN, y)


def _normal_exponent(a: np.ndarray):
    """(a scaled to a normal value, its bit pattern, whether it was subnormal) for a > 0.

    a 2^64 of a subnormal a is a normal bf16 value (exact, so not rounded).
    """
    tiny = a < BF16_MIN_NORMAL
    a = np.where(tiny, a * _TWO_TO_64, a)
    return a, _bits(a), tiny


def _reciprocal(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    special = np.isnan(v) | (a == 0) | np.isinf(a)
    a, bits, tiny = _normal_exponent(np.where(special, _ONE, a))
    e = (bits >> 23).astype(np.int64) - 127 - np.where(tiny, 64, 0)
    m = _from_bits((bits & _MANTISSA) | np.uint32(0x3F80_0000))
    t = sub32(_RECIP_SEED[0], mul32(_RECIP_SEED[1], m))
    for _ in range(2):  # t + t (1 - m t): the residual form ends on t exactly when t = 1/m
        t = mul_add32(t, sub32(_ONE, mul32(m, t)), t)
    y = _scale(t, -e)
    y = np.where(np.isinf(v), np.float32(0), np.where(v == 0, _INF, y))
    y = _copysign(y, v)
    return np.where(np.isnan(v), _NAN, y)


def _rsqrt(v: np.ndarray) -> np.ndarray:
    special = np.isnan(v) | (v <= 0) | np.isinf(v)
    a, bits, tiny = _normal_exponent(np.where(special, _ONE, v))
    e = (bits >> 23).astype(np.int64) - 127
    odd = e & 1
    m = _from_bits((bits & _MANTISSA) | ((127 + odd) << 23).astype(np.uint32))  # m in [1, 4)
    k = (e - odd) // 2 - np.where(tiny, 32, 0)  # a = m * 2**(e - odd)
    t = _from_bits(np.uint32(0x5F37_0000) - ((_bits(m) >> 1) & np.uint32(0xFFFF_0000)))
    half_m = m * _HALF  # m / 2 in [0.5, 2) is a bf16 value: exact, not rounded
    for _ in range(2):  # t (1.5 - h t^2) in the residual form t + t (0.5 - h t^2)
        u = sub32(_HALF, mul32(half_m, mul32(t, t)))
        t = mul_add32(t, u, t)
    y = _scale(t, -k)
    y = np.where(v == 0, _copysign(np.full(v.shape, _INF), v), y)
    y = np.where(v == _INF, np.float32(0), y)
    return np.where(np.isnan(v) | (v < 0), _NAN, y)


def _tanh(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    x2 = mul32(a, a)
    series = add32(a, mul32(a, mul32(x2, _horner(x2, _TANH_POLY))))
    e = add32(_exp(add32(a, a)), _ONE)
    tail = sub32(_ONE, mul32(_TWO, _reciprocal(e)))
    y = _copysign(np.where(a < _TANH_SERIES_LIMIT, series, tail), v)
    return np.where(np.isnan(v), _NAN, y)


def _erfc_positive(a: np.ndarray) -> np.ndarray:
    """erfc(a) for a >= 0 by Abramowitz-Stegun 7.1.26 (a may be +inf)."""
    t = _reciprocal(mul_add32(_AS_P, a, _ONE))
    p = mul32(t, _horner(t, _AS_POLY))
    g = _exp(-mul32(a, a))  # times -1 is exact; _exp maps any NaN to the canonical one
    return mul32(p, g)


def _erf_series(x: np.ndarray) -> np.ndarray:
    x2 = mul32(x, x)
    return add32(x, mul32(x, _horner(x2, _ERF_POLY)))


def _erf(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    tail = sub32(_ONE, _erfc_positive(np.where(np.isnan(a), np.float32(0), a)))
    y = _copysign(np.where(a < _ERF_SERIES_LIMIT, _erf_series(a), tail), v)
    return np.where(np.isnan(v), _NAN, y)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    e = _exp(-_abs(v))  # times -1 is exact; _exp maps any NaN to the canonical one
    s = _reciprocal(add32(_ONE, e))
    return np.where(v >= 0, s, mul32(e, s))  # NaN: e*s is NaN


def _times(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """x * f for a factor f in [0, 1]; -inf * 0 is -0 (the functions' limit), not NaN."""
    return np.where(x == -_INF, np.float32(-0.0), mul32(x, f))


def _quiet(f):
    """Run a lane function with float errors silenced (inf and NaN are results, not errors)."""
    @functools.wraps(f)
    def run(*args, **kwargs):
        with np.errstate(all="ignore"):
            return f(*args, **kwargs)
    return run


@_quiet
def bf16_exp(x):
    """e**x (see the module table)."""
    return _out(_exp(_lanes(x)), x)


@_quiet
def bf16_reciprocal(x):
    """1 / x by a linear seed and two Newton steps."""
    return _out(_reciprocal(_lanes(x)), x)


@_quiet
def bf16_rsqrt(x):
    """1 / sqrt(x) by TATAA's bit-trick seed and two Newton steps."""
    return _out(_rsqrt(_lanes(x)), x)


@_quiet
def bf16_sqrt(x):
    """sqrt(x) as x * rsqrt(x); +-0 and +inf map to themselves."""
    v = _lanes(x)
    y = mul32(v, _rsqrt(v))
    y = np.where((v == 0) | (v == _INF), v, y)
    return _out(y, x)


@_quiet
def bf16_div(a, b):
    """a / b as a * reciprocal(b) (so a / b overflows when 1 / b does)."""
    a_arr, b_arr = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    return _out(mul32(_lanes(a_arr), _reciprocal(_lanes(b_arr))), a_arr)


@_quiet
def bf16_tanh(x):
    """tanh(x): odd series below |x| = 0.5, 1 - 2 / (exp(2|x|) + 1) above."""
    return _out(_tanh(_lanes(x)), x)


@_quiet
def bf16_erf(x):
    """erf(x): odd series below |x| = 0.5, 1 - erfc (Abramowitz-Stegun 7.1.26) above."""
    return _out(_erf(_lanes(x)), x)


@_quiet
def bf16_sigmoid(x):
    """1 / (1 + exp(-x)), as exp(x) / (1 + exp(x)) for x < 0 to keep relative accuracy."""
    return _out(_sigmoid(_lanes(x)), x)


@_quiet
def bf16_silu(x):
    """x * sigmoid(x)."""
    v = _lanes(x)
    return _out(_times(v, _sigmoid(v)), x)


@_quiet
def bf16_hard_swish(x):
    """ONNX HardSwish x * max(0, min(1, x / 6 + 0.5)), computed as x * (relu6(x + 3) * 1/6)."""
    v = _lanes(x)
    t = bf16_min(bf16_max(bf16_add(v, np.float32(3)), np.float32(0)), np.float32(6))
    return _out(_times(v, mul32(t, _SIXTH)), x)


@_quiet
def bf16_gelu(x, approximate: str = "none"):
    """ONNX Gelu: x * Phi(x) with erf ("none") or its tanh form ("tanh")."""
    v = _lanes(x)
    if approximate == "tanh":
        w = mul_add32(_GELU_K3, mul32(v, v), _GELU_K1)
        return _out(_times(v, _sigmoid(mul32(v, w))), x)
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    z = mul32(v, _INV_SQRT2)
    a = _abs(z)
    q = _erfc_positive(np.where(np.isnan(a), np.float32(0), a))
    near = add32(_ONE, _erf_series(z))
    two_phi = np.where(a < _ERF_SERIES_LIMIT, near, np.where(z > 0, sub32(_TWO, q), q))
    return _out(_times(v, mul32(two_phi, _HALF)), x)


@_quiet
def bf16_softmax(x, axis: int = -1):
    """exp(x - max) * reciprocal(bf16_sum(exp(x - max))) along ``axis``."""
    arr = np.moveaxis(np.asarray(x), axis, -1)
    v = _lanes(arr).reshape(arr.shape)
    # The row maximum involves no rounding, so a vectorized max equals the lanes' pairwise one
    # (NaN propagates; a +-0 maximum gives the same x - max for every x but -0, and exp(+-0) = 1).
    m = np.max(v, axis=-1, keepdims=True)
    e = _exp(sub32(v, m).reshape(-1)).reshape(v.shape)
    r = _reciprocal(np.reshape(sum32(e), -1))
    y = mul32(e, r.reshape(v.shape[:-1] + (1,)))
    return unwrap(np.moveaxis(y, -1, axis))


@_quiet
def bf16_layer_norm(x, scale, bias, axis: int = -1, epsilon: float = 1e-5):
    """ONNX LayerNormalization over axes ``axis``..last: (x - mean) * rsqrt(var + eps) * scale + bias.

    mean = bf16_sum(x) * bf16(1/n); var = bf16_sum((x - mean)**2) * bf16(1/n) (two passes);
    ``scale``/``bias`` broadcast against the normalized trailing shape.
    """
    arr = np.asarray(x)
    axis %= arr.ndim
    rows: np.ndarray = arr.reshape(arr.shape[:axis] + (-1,))
    n = rows.shape[-1]
    v = _lanes(rows).reshape(rows.shape)
    inv_n = _k(1 / n)
    mean = mul32(sum32(v), inv_n)[..., None]
    d = sub32(v, mean)
    var = mul32(sum32(mul32(d, d)), inv_n)
    r = _rsqrt(np.reshape(add32(var, _k(epsilon)), -1))
    g = np.broadcast_to(_lanes(scale).reshape(np.shape(scale)), arr.shape[axis:]).reshape(-1)
    b = np.broadcast_to(_lanes(bias).reshape(np.shape(bias)), arr.shape[axis:]).reshape(-1)
    y = mul_add32(mul32(d, r.reshape(rows.shape[:-1] + (1,))), g, b)
    return unwrap(np.asarray(y, np.float32).reshape(arr.shape))
