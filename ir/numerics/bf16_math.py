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
import numpy as np

from ._arrays import unwrap
from .bf16 import (
    BF16_MIN_NORMAL, bf16_add, bf16_max, bf16_min, bf16_mul, bf16_mul_add, bf16_round, bf16_sub,
    bf16_sum, from_bf16, to_bf16,
)

_NAN = np.float32(np.nan)
_INF = np.float32(np.inf)


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
    """Input bf16 values as a flat float32 array (refuses values that are not bf16 values)."""
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    r = bf16_round(v)
    if not np.all((r == v) | np.isnan(v)):
        raise ValueError("inputs hold values that are not bf16 values; apply bf16_round first")
    return np.asarray(r, np.float32).reshape(-1)


def _out(y: np.ndarray, like) -> np.ndarray:
    return unwrap(np.asarray(y, np.float32).reshape(np.shape(like)))


def _bits(v: np.ndarray) -> np.ndarray:
    return np.asarray(to_bf16(v), np.int64)


def _from_bits(b: np.ndarray) -> np.ndarray:
    return np.asarray(from_bf16(np.asarray(b, np.int64)), np.float32)


def _pow2(k: np.ndarray) -> np.ndarray:
    """2**k for integers k in [-126, 127], built in the exponent field."""
    return _from_bits((np.asarray(k, np.int64) + 127) << 7)


def _scale(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """y * 2**k for y in [0.5, 2]: the first multiply is exact, the second rounds (once)."""
    k1 = k // 2
    return np.asarray(bf16_mul(bf16_mul(y, _pow2(k1)), _pow2(k - k1)), np.float32)


def _horner(x: np.ndarray, coeffs) -> np.ndarray:
    acc = np.full(x.shape, coeffs[0], np.float32)
    for c in coeffs[1:]:
        acc = bf16_mul_add(acc, x, c)
    return np.asarray(acc, np.float32)


def _abs(v: np.ndarray) -> np.ndarray:
    return _from_bits(_bits(v) & 0x7FFF)


def _copysign(mag: np.ndarray, sign_of: np.ndarray) -> np.ndarray:
    return _from_bits(_bits(mag) | (_bits(sign_of) & 0x8000))


def _exp(v: np.ndarray) -> np.ndarray:
    nan, hi, lo = np.isnan(v), v >= _EXP_HI, v <= _EXP_LO
    x = np.where(nan | hi | lo, np.float32(0), v).astype(np.float32)
    n = np.rint(np.asarray(bf16_mul(x, _LOG2E), np.float32))  # exact round to integer
    n_hi = _from_bits(_bits(n) & 0xFFF0)  # top 4 significant bits; n - n_hi has at most 4
    n_lo = np.asarray(bf16_sub(n, n_hi), np.float32)
    r = x
    for c in _LN2_PIECES:  # 4-bit pieces times 4-bit halves of n: every product is exact
        r = bf16_sub(bf16_sub(r, bf16_mul(n_hi, c)), bf16_mul(n_lo, c))
    r = np.asarray(bf16_sub(r, bf16_mul(n, _LN2_REST)), np.float32)
    y = _scale(_horner(r, _EXP_POLY), n.astype(np.int64))
    y = np.where(hi, _INF, np.where(lo, np.float32(0), y))
    return np.where(nan, _NAN, y).astype(np.float32)


def _reciprocal(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    special = np.isnan(v) | (a == 0) | np.isinf(a)
    a = np.where(special, np.float32(1), a).astype(np.float32)
    tiny = a < BF16_MIN_NORMAL
    a = np.where(tiny, bf16_mul(a, _pow2(64)), a).astype(np.float32)  # exact normalization
    bits = _bits(a)
    e = (bits >> 7) - 127 - np.where(tiny, 64, 0)
    m = _from_bits((bits & 0x7F) | 0x3F80)
    t = np.asarray(bf16_sub(_RECIP_SEED[0], bf16_mul(_RECIP_SEED[1], m)), np.float32)
    for _ in range(2):  # t + t (1 - m t): the residual form ends on t exactly when t = 1/m
        t = np.asarray(bf16_mul_add(t, bf16_sub(np.float32(1), bf16_mul(m, t)), t), np.float32)
    y = _scale(t, -e)
    y = np.where(np.isinf(v), np.float32(0), np.where(v == 0, _INF, y))
    y = _copysign(y, v)
    return np.where(np.isnan(v), _NAN, y).astype(np.float32)


def _rsqrt(v: np.ndarray) -> np.ndarray:
    special = np.isnan(v) | (v <= 0) | np.isinf(v)
    a = np.where(special, np.float32(1), v).astype(np.float32)
    tiny = a < BF16_MIN_NORMAL
    a = np.where(tiny, bf16_mul(a, _pow2(64)), a).astype(np.float32)
    bits = _bits(a)
    e = (bits >> 7) - 127
    odd = e & 1
    m = _from_bits((bits & 0x7F) | ((127 + odd) << 7))  # m in [1, 4), a = m * 2**(e - odd)
    k = (e - odd) // 2 - np.where(tiny, 32, 0)
    t = _from_bits(0x5F37 - (_bits(m) >> 1))
    half_m = bf16_mul(m, np.float32(0.5))
    for _ in range(2):  # t (1.5 - h t^2) in the residual form t + t (0.5 - h t^2)
        u = bf16_sub(np.float32(0.5), bf16_mul(half_m, bf16_mul(t, t)))
        t = np.asarray(bf16_mul_add(t, u, t), np.float32)
    y = _scale(t, -k)
    y = np.where(v == 0, _copysign(np.full(v.shape, _INF), v), y)
    y = np.where(v == _INF, np.float32(0), y)
    return np.where(np.isnan(v) | (v < 0), _NAN, y).astype(np.float32)


def _tanh(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    x2 = bf16_mul(a, a)
    series = bf16_add(a, bf16_mul(a, bf16_mul(x2, _horner(np.asarray(x2, np.float32), _TANH_POLY))))
    e = bf16_add(_exp(np.asarray(bf16_add(a, a), np.float32)), np.float32(1))
    tail = bf16_sub(np.float32(1), bf16_mul(np.float32(2), _reciprocal(np.asarray(e, np.float32))))
    y = _copysign(np.where(a < _TANH_SERIES_LIMIT, series, tail).astype(np.float32), v)
    return np.where(np.isnan(v), _NAN, y).astype(np.float32)


def _erfc_positive(a: np.ndarray) -> np.ndarray:
    """erfc(a) for a >= 0 by Abramowitz-Stegun 7.1.26 (a may be +inf)."""
    t = _reciprocal(np.asarray(bf16_mul_add(_AS_P, a, np.float32(1)), np.float32))
    p = bf16_mul(t, _horner(t, _AS_POLY))
    g = _exp(np.asarray(bf16_mul(bf16_mul(a, a), np.float32(-1)), np.float32))
    return np.asarray(bf16_mul(p, g), np.float32)


def _erf_series(x: np.ndarray) -> np.ndarray:
    x2 = np.asarray(bf16_mul(x, x), np.float32)
    return np.asarray(bf16_add(x, bf16_mul(x, _horner(x2, _ERF_POLY))), np.float32)


def _erf(v: np.ndarray) -> np.ndarray:
    a = _abs(v)
    tail = bf16_sub(np.float32(1), _erfc_positive(np.where(np.isnan(a), np.float32(0), a)))
    y = _copysign(np.where(a < _ERF_SERIES_LIMIT, _erf_series(a), tail).astype(np.float32), v)
    return np.where(np.isnan(v), _NAN, y).astype(np.float32)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    e = _exp(np.asarray(bf16_mul(_abs(v), np.float32(-1)), np.float32))
    s = _reciprocal(np.asarray(bf16_add(np.float32(1), e), np.float32))
    return np.where(v >= 0, s, bf16_mul(e, s)).astype(np.float32)  # NaN: e*s is NaN


def _times(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """x * f for a factor f in [0, 1]; -inf * 0 is -0 (the functions' limit), not NaN."""
    y = np.asarray(bf16_mul(x, f), np.float32)
    return np.where(x == -_INF, np.float32(-0.0), y).astype(np.float32)


def bf16_exp(x):
    """e**x (see the module table)."""
    return _out(_exp(_lanes(x)), x)


def bf16_reciprocal(x):
    """1 / x by a linear seed and two Newton steps."""
    return _out(_reciprocal(_lanes(x)), x)


def bf16_rsqrt(x):
    """1 / sqrt(x) by TATAA's bit-trick seed and two Newton steps."""
    return _out(_rsqrt(_lanes(x)), x)


def bf16_sqrt(x):
    """sqrt(x) as x * rsqrt(x); +-0 and +inf map to themselves."""
    v = _lanes(x)
    y = np.asarray(bf16_mul(v, _rsqrt(v)), np.float32)
    y = np.where((v == 0) | (v == _INF), v, y)
    return _out(y, x)


def bf16_div(a, b):
    """a / b as a * reciprocal(b) (so a / b overflows when 1 / b does)."""
    a_arr, b_arr = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    return _out(bf16_mul(_lanes(a_arr), _reciprocal(_lanes(b_arr))), a_arr)


def bf16_tanh(x):
    """tanh(x): odd series below |x| = 0.5, 1 - 2 / (exp(2|x|) + 1) above."""
    return _out(_tanh(_lanes(x)), x)


def bf16_erf(x):
    """erf(x): odd series below |x| = 0.5, 1 - erfc (Abramowitz-Stegun 7.1.26) above."""
    return _out(_erf(_lanes(x)), x)


def bf16_sigmoid(x):
    """1 / (1 + exp(-x)), as exp(x) / (1 + exp(x)) for x < 0 to keep relative accuracy."""
    return _out(_sigmoid(_lanes(x)), x)


def bf16_silu(x):
    """x * sigmoid(x)."""
    v = _lanes(x)
    return _out(_times(v, _sigmoid(v)), x)


def bf16_hard_swish(x):
    """ONNX HardSwish x * max(0, min(1, x / 6 + 0.5)), computed as x * (relu6(x + 3) * 1/6)."""
    v = _lanes(x)
    t = bf16_min(bf16_max(bf16_add(v, np.float32(3)), np.float32(0)), np.float32(6))
    return _out(_times(v, np.asarray(bf16_mul(t, _SIXTH), np.float32)), x)


def bf16_gelu(x, approximate: str = "none"):
    """ONNX Gelu: x * Phi(x) with erf ("none") or its tanh form ("tanh")."""
    v = _lanes(x)
    if approximate == "tanh":
        w = bf16_mul_add(_GELU_K3, bf16_mul(v, v), _GELU_K1)
        return _out(_times(v, _sigmoid(np.asarray(bf16_mul(v, w), np.float32))), x)
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    z = np.asarray(bf16_mul(v, _INV_SQRT2), np.float32)
    a = _abs(z)
    q = _erfc_positive(np.where(np.isnan(a), np.float32(0), a))
    near = bf16_add(np.float32(1), _erf_series(z))
    two_phi = np.where(a < _ERF_SERIES_LIMIT, near, np.where(z > 0, bf16_sub(np.float32(2), q), q))
    phi = np.asarray(bf16_mul(two_phi.astype(np.float32), np.float32(0.5)), np.float32)
    return _out(_times(v, phi), x)


def bf16_softmax(x, axis: int = -1):
    """exp(x - max) * reciprocal(bf16_sum(exp(x - max))) along ``axis``."""
    arr = np.moveaxis(np.asarray(x), axis, -1)
    v = _lanes(arr).reshape(arr.shape)
    # The row maximum involves no rounding, so a vectorized max equals the lanes' pairwise one
    # (NaN propagates; a +-0 maximum gives the same x - max for every x but -0, and exp(+-0) = 1).
    m = np.max(v, axis=-1, keepdims=True)
    e = _exp(np.asarray(bf16_sub(v, m), np.float32).reshape(-1)).reshape(v.shape)
    r = _reciprocal(np.asarray(bf16_sum(e, axis=-1), np.float32).reshape(-1))
    y = bf16_mul(e, r.reshape(v.shape[:-1] + (1,)))
    return unwrap(np.moveaxis(np.asarray(y, np.float32), -1, axis))


def bf16_layer_norm(x, scale, bias, axis: int = -1, epsilon: float = 1e-5):
    """ONNX LayerNormalization over axes ``axis``..last: (x - mean) * rsqrt(var + eps) * scale + bias.

    mean = bf16_sum(x) * bf16(1/n); var = bf16_sum((x - mean)**2) * bf16(1/n) (two passes);
    ``scale``/``bias`` broadcast against the normalized trailing shape.
    """
    arr = np.asarray(x)
    axis %= arr.ndim
    rows = arr.reshape(arr.shape[:axis] + (-1,))
    n = rows.shape[-1]
    v = _lanes(rows).reshape(rows.shape)
    inv_n = _k(1 / n)
    mean = bf16_mul(bf16_sum(v, axis=-1), inv_n)[..., None]
    d = np.asarray(bf16_sub(v, mean), np.float32)
    var = bf16_mul(bf16_sum(bf16_mul(d, d), axis=-1), inv_n)
    r = _rsqrt(np.asarray(bf16_add(var, _k(epsilon)), np.float32).reshape(-1))
    g = np.broadcast_to(_lanes(scale).reshape(np.shape(scale)), arr.shape[axis:]).reshape(-1)
    b = np.broadcast_to(_lanes(bias).reshape(np.shape(bias)), arr.shape[axis:]).reshape(-1)
    y = bf16_mul_add(bf16_mul(d, r.reshape(rows.shape[:-1] + (1,))), g, b)
    return unwrap(np.asarray(y, np.float32).reshape(arr.shape))
