"""The bf16 vector unit's non-linear functions, each written once as a sequence of lane operations.

Every function here takes ``L`` (an implementation of the lane operations of ``bf16_lanes``) and
operand handles, and returns the result handle.  The reference interpreter runs them with
``bf16_lanes.NumpyLanes`` (through ``bf16_math``); the overlay compiler runs them with a recorder
that emits one vector instruction per operation (backends/overlay/vector_program.py), which the
simulator then executes with its own arithmetic.  Error bounds: ``bf16_math``'s table and
docs/overlay-machine.md.

Operand kinds: ``x`` is a vector (rows x cols); row reductions give one value per row; LayerNorm's
gamma/beta are one value per column; ``L.const``/``L.pattern`` are constants.  The first operand
of a two-operand operation may be a constant only when the second is not.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from .bf16 import to_bf16

SIGN, MAGNITUDE = 0x8000, 0x7FFF
NAN, INF, NEG_INF = 0x7FC0, 0x7F80, 0xFF80
MANTISSA, ONE_BITS = 0x007F, 0x3F80
MIN_NORMAL = 2.0**-126
MIN_NORMAL_BITS = 0x0080  # the pattern of MIN_NORMAL

LOG2E = 1.4426950408889634
LN2_PIECES = (0.6875, 0.005859375, -0.000213623046875)  # 4 significant bits each
LN2_REST = 1.4286068202862268e-06  # ln2 minus the pieces
EXP_POLY = (1 / 24, 1 / 6, 0.5, 1.0, 1.0)  # e^r, Horner, highest first
EXP_HI, EXP_LO = 89.0, -93.0  # bf16 inputs at/above overflow, at/below underflow
RECIP_SEED = (24 / 17, 8 / 17)
RSQRT_MAGIC = 0x5F37
TANH_POLY = (62 / 2835, -17 / 315, 2 / 15, -1 / 3)  # x + x*x2*P(x2)
ERF_POLY = (0.0001205533298, -0.0008548327023, 0.005223977625, -0.02686617065,
            0.1128379167, -0.376126389, 0.1283791671)  # x + x*Q(x2); Q ends in 2/sqrt(pi) - 1
LN2 = 0.6931471805599453
LOG_POLY = (1 / 7, 1 / 5, 1 / 3)  # ln m = 2 s (1 + s2 (1/3 + s2 (1/5 + s2 / 7)))
QUARTER_ROOT_MAGIC = 0x4F57  # seed of b**-1/4: this minus (bits >> 2), the best of its neighbours
MAX_FINITE = 0x7F7F  # the largest finite bf16
LRN_FAST_BIAS = 2.0**-120  # the beta = 0.75 sequence needs a normal base whose quarter keeps exact
AS_P = 0.3275911
AS_POLY = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
TANH_SERIES_LIMIT = 0.5
ERF_SERIES_LIMIT = 1.0
INV_SQRT2 = 0.7071067811865476
GELU_K1 = 1.5957691216057308  # 2 sqrt(2/pi)
GELU_K3 = 1.5957691216057308 * 0.044715


def _abs(L, v):
    return L.and_(v, L.pattern(MAGNITUDE))


def _neg(L, v):
    return L.xor(v, L.pattern(SIGN))


def _copysign(L, mag, sign_of):
    return L.or_(mag, L.and_(sign_of, L.pattern(SIGN)))


def _nan_to_canonical(L, v, y):
    """y, or the canonical NaN where v is NaN (v == v is false only for NaN)."""
    return L.select(L.eq(v, v), y, L.pattern(NAN))


def _horner(L, x, coeffs):
    acc = L.fma(x, L.const(coeffs[0]), L.const(coeffs[1]))  # c0 x + c1 (the product commutes)
    for c in coeffs[2:]:
        acc = L.fma(acc, x, L.const(c))
    return acc


def _scale(L, t, k):
    """t * 2**k for t in [0.5, 2] and an int16 k in [-256, 252]: two multiplies by powers of two
    built in the exponent field; the first (by 2**floor(k/2)) is exact, the second rounds once."""
    h = L.shr(L.iadd(k, L.pattern(256)), 1)  # floor(k / 2) + 128
    first = L.isub(L.shl(h, 7), L.pattern(128))  # pattern of 2**floor(k/2)
    second = L.shl(L.iadd(L.isub(k, h), L.pattern(255)), 7)  # pattern of 2**(k - floor(k/2))
    return L.mul(L.mul(t, first), second)


def _normal(L, a):
    """(a scaled to a normal value, the tiny mask) for a > 0: a subnormal a times 2**64 (exact)."""
    tiny = L.lt(a, L.const(MIN_NORMAL))
    return L.select(tiny, L.mul(a, L.const(2.0**64)), a), tiny


def _exp_reduce(L, x):
    """(n, r) with x = n ln2 + r, n = rint(x log2e): r by Cody-Waite with ln2 in 4-bit pieces (n
    split into two 4-bit halves, so each product is exact)."""
    n = L.rint(L.mul(x, L.const(LOG2E)))
    n_hi = L.and_(n, L.pattern(0xFFF0))  # top 4 significant bits of n
    n_lo = L.sub(n, n_hi)  # the rest: at most 4 significant bits (exact)
    r = x
    for c in LN2_PIECES:  # r - n c as r + n (-c): each product is exact
        r = L.fma(n_lo, L.const(-c), L.fma(n_hi, L.const(-c), r))
    return n, L.fma(n, L.const(-LN2_REST), r)


def exp(L, v):
    """e**v: v = n ln2 + r, n = rint(v log2e); r by Cody-Waite with ln2 in 4-bit pieces (n split
    into two 4-bit halves, so each product is exact); e^r by degree-4 Taylor/Horner; times 2^n."""
    inside = L.and_(L.lt(v, L.const(EXP_HI)), L.gt(v, L.const(EXP_LO)))  # false for NaN
    n, r = _exp_reduce(L, L.select(inside, v, L.pattern(0)))
    y = _scale(L, _horner(L, r, EXP_POLY), L.ftoi(n))
    y = L.select(L.le(v, L.const(EXP_LO)), L.pattern(0), y)
    y = L.select(L.ge(v, L.const(EXP_HI)), L.pattern(INF), y)
    return _nan_to_canonical(L, v, y)


def exp_nonpositive(L, v):
    """``exp`` of a v <= 0 or NaN (x - max in a softmax, -|x| in a sigmoid, -(a a) in erfc): the
    same bits in 22 operations instead of 35.  No overflow, and no select into the clamped range:
    v is raised to EXP_LO at least, where the sequence itself gives 0 (e^-93 is below half the
    least subnormal); n = rint(v log2e) is in [-134, 0], so 2^n is one multiply by the pattern of
    2^(n + 64) of a polynomial whose coefficients carry the 2^-64 (exact: every Horner value stays
    normal, so it is the same value times 2^-64, and the product rounds once, as ``_scale``'s
    second multiply does); one select for NaN.  tests/numerics: equal to ``exp`` on every bf16
    pattern of the domain.  No select for NaN either: a NaN v stays NaN through the clamp (max), the
    reduction and the polynomial (every rounded operation's NaN is the canonical 0x7FC0), ftoi makes
    its n 0, so the power is finite, and the last multiply gives the canonical NaN (20 operations)."""
    n, r = _exp_reduce(L, L.max(v, L.const(EXP_LO)))
    t = _horner(L, r, tuple(c * 2.0**-64 for c in EXP_POLY))
    power = L.shl(L.iadd(L.ftoi(n), L.pattern(127 + 64)), 7)  # the pattern of 2^(n + 64)
    return L.mul(t, power)


def _recip_newton(L, minus_m, t):
    """Two Newton steps t + t (1 - m t) toward 1 / m, from ``minus_m`` = -m (exact): the residual
    1 - m t is one multiply-add fma(-m, t, 1) = round(round(-(m t)) + 1) = round(1 - round(m t)),
    as negation is exact (the residual form ends on t exactly when t = 1/m)."""
    for _ in range(2):
        t = L.fma(t, L.fma(minus_m, t, L.const(1.0)), t)
    return t


def _minus_mantissa(L, v):
    """-m for v = m 2^e, m in [1, 2): v's mantissa under the sign and exponent of -1."""
    return L.or_(L.and_(v, L.pattern(MANTISSA)), L.pattern(SIGN | ONE_BITS))


def _recip_seed(L, minus_m):
    """24/17 - 8/17 m (from -m: the product's sign is exact)."""
    return L.fma(minus_m, L.const(RECIP_SEED[1]), L.const(RECIP_SEED[0]))


def reciprocal(L, v):
    """1 / v: v = m 2^e, m in [1, 2); seed 24/17 - 8/17 m; two Newton steps t + t (1 - m t); times 2^-e."""
    a = _abs(L, v)
    ordinary = L.and_(L.gt(a, L.pattern(0)), L.lt(a, L.pattern(INF)))  # not 0, inf or NaN
    scaled, tiny = _normal(L, L.select(ordinary, a, L.const(1.0)))
    biased = L.isub(L.shr(scaled, 7), L.and_(tiny, L.pattern(64)))  # exponent field, 64 less if scaled
    minus_m = _minus_mantissa(L, scaled)
    t = _recip_newton(L, minus_m, _recip_seed(L, minus_m))
    y = _scale(L, t, L.isub(L.pattern(127), biased))
    y = L.select(L.eq(a, L.pattern(0)), L.pattern(INF), y)
    y = L.select(L.eq(a, L.pattern(INF)), L.pattern(0), y)
    return _nan_to_canonical(L, v, _copysign(L, y, v))


def reciprocal_at_least_one(L, v):
    """``reciprocal`` of a v in [1, 2^126) or NaN (a softmax's row sum: its largest term is
    exp(0) = 1 and it has fewer than 2^16 terms of at most 1; 1 + exp(-|x|) in a sigmoid): the same
    bits in 12 operations instead of 36, 8 of them a dependent chain.  No sign, zero, infinity or
    subnormal; 2^-e is normal, so t 2^-e is one exact multiply by the pattern (254 - biased) << 7
    = 0x7F00 - (v's exponent field).  A NaN v makes that power NaN instead (a select beside the
    Newton steps: the product of the finite t and NaN is the canonical NaN).
    tests/numerics: equal to ``reciprocal`` on every pattern of the domain."""
    minus_m = _minus_mantissa(L, v)
    t = _recip_newton(L, minus_m, _recip_seed(L, minus_m))
    power = L.isub(L.pattern(0x7F00), L.and_(v, L.pattern(INF)))
    return L.mul(t, L.select(L.eq(v, v), power, L.pattern(NAN)))


def _rsqrt_parts(L, a):
    """For a positive normal a = m 2^2k, m in [1, 4): (the exponent field, whether (field - 127) is
    odd, m, the seed 0x5F37 - (bits(m) >> 1)).  m keeps a's mantissa under the exponent 128 - (the
    field's lowest bit), built in three steps: (a & 0xFF) ^ 0x80 plus the pattern of 1; the seed
    from a's bits directly, as ((a >> 1) & 0x7F) ^ 0x40 is bits(m) >> 1 less 0x1FC0."""
    biased = L.shr(a, 7)
    odd = L.xor(L.and_(biased, L.pattern(1)), L.pattern(1))  # (biased - 127) is odd
    m = L.iadd(L.xor(L.and_(a, L.pattern(0xFF)), L.pattern(0x80)), L.pattern(ONE_BITS))  # in [1, 4)
    t = L.isub(L.pattern(RSQRT_MAGIC - (ONE_BITS >> 1)), L.xor(L.and_(L.shr(a, 1), L.pattern(0x7F)), L.pattern(0x40)))
    return biased, odd, m, t


def _rsqrt_newton(L, m, t):
    """Two Newton steps t + t (0.5 - (0.5 m) t^2) toward 1 / sqrt(m).  The residual is one
    multiply-add of -0.5 m (exact): round(round(-p) + 0.5) = round(0.5 - round(p)), as negation
    is exact."""
    minus_half_m = L.mul(m, L.const(-0.5))  # exact
    for _ in range(2):  # t (1.5 - h t^2) in the residual form t + t (0.5 - h t^2)
        t = L.fma(t, L.fma(minus_half_m, L.mul(t, t), L.const(0.5)), t)
    return t


def rsqrt(L, v):
    """1 / sqrt(v): v = m 2^2k, m in [1, 4) (subnormals scaled by 2**64 first); seed 0x5F37 -
    (bits >> 1); two Newton steps t + t (0.5 - (0.5 m) t^2); times 2^-k.  rsqrt(+-0) = +-inf,
    rsqrt(inf) = 0, negatives NaN."""
    ordinary = L.and_(L.gt(v, L.pattern(0)), L.lt(v, L.pattern(INF)))
    a, tiny = _normal(L, L.select(ordinary, v, L.const(1.0)))
    biased, odd, m, t = _rsqrt_parts(L, a)
    # -k = (127 + odd - biased) / 2 + 32 if scaled; 383 keeps the halved value positive
    half = L.shr(L.iadd(L.isub(L.pattern(383), biased), odd), 1)
    k = L.iadd(L.isub(half, L.pattern(128)), L.and_(tiny, L.pattern(32)))
    y = _scale(L, _rsqrt_newton(L, m, t), k)
    y = L.select(L.eq(v, L.pattern(0)), _copysign(L, L.pattern(INF), v), y)
    y = L.select(L.eq(v, L.pattern(INF)), L.pattern(0), y)
    y = L.select(L.lt(v, L.pattern(0)), L.pattern(NAN), y)
    return _nan_to_canonical(L, v, y)


def _rsqrt_newton_normal(L, v):
    """``rsqrt`` of a positive normal v as the seed and two Newton steps times 2^k (k in [-64, 63],
    so t 2^k is one exact multiply by the pattern of the power): the values ``rsqrt_table`` holds."""
    biased, odd, m, t = _rsqrt_parts(L, v)
    half = L.shr(L.iadd(L.isub(L.pattern(383), biased), odd), 1)  # k + 128
    power = L.shl(L.isub(half, L.pattern(1)), 7)  # the pattern of 2^k: (k + 127) << 7
    return L.mul(_rsqrt_newton(L, m, t), power)


@cache
def rsqrt_table() -> np.ndarray:
    """The 256 patterns of ``rsqrt_normal``'s lookup: entry i is the Newton value of the positive
    normal v = 0x3F00 + i (exponent field 126 + the index's top bit, its mantissa the low 7 bits)
    plus (v >> 1), modulo 2**16."""
    from .bf16_lanes import NumpyLanes

    v = np.arange(256, dtype=np.uint16) + np.uint16(0x3F00)
    with np.errstate(all="ignore"):
        return NumpyLanes.iadd(_rsqrt_newton_normal(NumpyLanes, v), NumpyLanes.shr(v, 1))


def rsqrt_normal(L, v):
    """``rsqrt`` of a v known to be a positive normal number, +inf or NaN (a variance plus a normal
    epsilon): the same result in 3 dependent operations instead of 10.  For a positive normal v =
    m 2^2k (m in [1, 4)) the Newton value t(m) 2^-k is normal and t(m) is in (0.5, 1], so its
    pattern is t(m)'s plus (-k << 7); m depends only on v's low byte (the exponent's lowest bit and
    the mantissa) and k on the bits above it, one step of the exponent field's high 7 bits per
    step of k, which is what subtracting (v >> 1) does (its low 7 bits cancelling against the
    table's).  So the result is ``rsqrt_table()[v & 0xFF] - (v >> 1)`` (a lane table lookup and an
    integer subtraction beside a shift).  +inf gives 0 and NaN the canonical NaN by a select
    whose mask and alternative run beside.  tests/numerics: equal to ``rsqrt`` on every pattern of
    the domain."""
    y = L.isub(L.lookup(v, rsqrt_table()), L.shr(v, 1))
    special = L.select(L.eq(v, L.pattern(INF)), L.pattern(0), L.pattern(NAN))
    return L.select(L.lt(v, L.pattern(INF)), y, special)


def _rsqrt_of_mean(L, total, n: int, epsilon: float):
    """rsqrt(total bf16(1/n) + bf16(epsilon)) of a total >= 0 (or +inf, NaN): the mean and the sum
    as one multiply-add (round(round(total / n) + eps): the same two roundings).  Sums at or above a
    normal epsilon are normal (a rounded sum of non-negatives is at least either term), so
    ``rsqrt_normal`` gives the same result as ``rsqrt`` in fewer operations."""
    s = L.fma(total, L.const(1 / n), L.const(epsilon))
    bits = int(to_bf16(np.float64(epsilon)))
    normal = not bits & SIGN and MIN_NORMAL_BITS <= bits < INF
    return rsqrt_normal(L, s) if normal else rsqrt(L, s)


def sqrt(L, v):
    """v * rsqrt(v); +-0 and +inf map to themselves."""
    y = L.mul(v, rsqrt(L, v))
    keep = L.or_(L.eq(v, L.pattern(0)), L.eq(v, L.pattern(INF)))
    return L.select(keep, v, y)


def div(L, a, b):
    """a * reciprocal(b) (so a / b overflows when 1 / b does)."""
    return L.mul(a, reciprocal(L, b))


def tanh(L, v):
    """|x| < 0.5: x + x x^2 P(x^2) (Taylor to x^9); else 1 - 2 reciprocal(exp(2|x|) + 1); odd."""
    a = _abs(L, v)
    x2 = L.mul(a, a)
    series = L.add(a, L.mul(a, L.mul(x2, _horner(L, x2, TANH_POLY))))
    e = L.add(exp(L, L.add(a, a)), L.const(1.0))
    tail = L.sub(L.const(1.0), L.mul(reciprocal(L, e), L.const(2.0)))
    y = _copysign(L, L.select(L.lt(a, L.const(TANH_SERIES_LIMIT)), series, tail), v)
    return _nan_to_canonical(L, v, y)


def _erfc_positive(L, a):
    """erfc(a) for a >= 0 by Abramowitz-Stegun 7.1.26 (a may be +inf)."""
    t = reciprocal(L, L.fma(a, L.const(AS_P), L.const(1.0)))
    p = L.mul(t, _horner(L, t, AS_POLY))
    g = exp_nonpositive(L, _neg(L, L.mul(a, a)))
    return L.mul(p, g)


def _erf_series(L, x):
    return L.add(x, L.mul(x, _horner(L, L.mul(x, x), ERF_POLY)))


def erf(L, v):
    """|x| < 1: x + x Q(x^2) (Taylor to x^13); else 1 - erfc (Abramowitz-Stegun); odd."""
    a = _abs(L, v)
    tail = L.sub(L.const(1.0), _erfc_positive(L, L.select(L.eq(a, a), a, L.pattern(0))))
    y = _copysign(L, L.select(L.lt(a, L.const(ERF_SERIES_LIMIT)), _erf_series(L, a), tail), v)
    return _nan_to_canonical(L, v, y)


def sigmoid(L, v):
    """e = exp(-|x|), s = reciprocal(1 + e); x >= 0: s, else e s."""
    e = exp_nonpositive(L, L.or_(v, L.pattern(SIGN)))
    s = reciprocal_at_least_one(L, L.add(e, L.const(1.0)))
    return L.select(L.ge(v, L.pattern(0)), s, L.mul(e, s))  # NaN: e s is NaN


def _times(L, x, f):
    """x * f for a factor f in [0, 1]; -inf * 0 is -0 (the functions' limit), not NaN."""
    return L.select(L.eq(x, L.pattern(NEG_INF)), L.pattern(SIGN), L.mul(x, f))


def silu(L, v):
    """x * sigmoid(x)."""
    return _times(L, v, sigmoid(L, v))


def hard_swish(L, v):
    """x * (min(max(x + 3, 0), 6) * bf16(1/6))."""
    t = L.min(L.max(L.add(v, L.const(3.0)), L.pattern(0)), L.const(6.0))
    return _times(L, v, L.mul(t, L.const(1 / 6)))


def gelu_tanh(L, v):
    """x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)): 0.5 x (1 + tanh(...)) without its cancellation."""
    w = L.fma(L.mul(v, v), L.const(GELU_K3), L.const(GELU_K1))
    return _times(L, v, sigmoid(L, L.mul(v, w)))


def gelu_erf(L, v):
    """x * 0.5 (1 + erf(x / sqrt2)); for x / sqrt2 <= -1 the sum is erfc(|x| / sqrt2) directly."""
    z = L.mul(v, L.const(INV_SQRT2))
    a = _abs(L, z)
    q = _erfc_positive(L, L.select(L.eq(a, a), a, L.pattern(0)))
    near = L.add(_erf_series(L, z), L.const(1.0))
    far = L.select(L.gt(z, L.pattern(0)), L.sub(L.const(2.0), q), q)
    two_phi = L.select(L.lt(a, L.const(ERF_SERIES_LIMIT)), near, far)
    return _times(L, v, L.mul(two_phi, L.const(0.5)))


def softmax(L, x):
    """Along each row: e = exp(x - max); e * reciprocal(row_sum(e)) (x - max <= 0 and the sum in
    [1, cols] or NaN: the short sequences of those domains)."""
    return softmax_of_max(L, x, L.row_max(x))


def softmax_of_max(L, x, top):
    """``softmax`` with each row's maximum ``top`` (one value per row) given: the overlay takes the
    maximum of a row of int8 scores before their conversion to bf16, which is monotone, so ``top``
    is the bits ``L.row_max`` gives (backends/overlay/row_max.py)."""
    e = exp_nonpositive(L, L.sub(x, top))
    return L.mul(e, reciprocal_at_least_one(L, L.row_sum(e)))


def log_softmax(L, x):
    """Along each row: d = x - max; d - log(row_sum(exp(d))) (the sum in [1, cols] or NaN: ``log``'s
    normal domain, and the short exp)."""
    return log_softmax_of_max(L, x, L.row_max(x))


def log_softmax_of_max(L, x, top):
    """``log_softmax`` with each row's maximum ``top`` given (as ``softmax_of_max``).  A NaN sum (a
    NaN in the row) gives NaN: ``log`` reads the bits of normal numbers only."""
    d = L.sub(x, top)
    total = L.row_sum(exp_nonpositive(L, d))
    return L.sub(d, _nan_to_canonical(L, total, log(L, total)))


def layer_norm(L, x, gamma, beta, n: int, epsilon: float):
    """mean = row_sum(x) bf16(1/n); d = x - mean; var = row_sum(d d) bf16(1/n) (two passes);
    (d rsqrt(var + bf16(eps))) gamma + beta."""
    d = L.sub(x, L.mul(L.row_sum(x), L.const(1 / n)))
    r = _rsqrt_of_mean(L, L.row_sum(L.mul(d, d)), n, epsilon)
    return L.fma(L.mul(d, r), gamma, beta)


def rms_norm(L, x, gamma, n: int, epsilon: float):
    """(x rsqrt(row_sum(x x) bf16(1/n) + bf16(eps))) gamma."""
    return L.mul(L.mul(x, _rsqrt_of_mean(L, L.row_sum(L.mul(x, x)), n, epsilon)), gamma)


def log(L, v):
    """ln(v) for normal v > 0: v = m 2^e, m in [1, 2); ln m = 2 s (1 + s^2/3 + s^4/5 + s^6/7) with
    s = (m - 1) / (m + 1) in [0, 1/3); plus e ln2 (one multiply-add)."""
    e = L.itof(L.isub(L.shr(v, 7), L.pattern(127)))
    m = L.or_(L.and_(v, L.pattern(MANTISSA)), L.pattern(ONE_BITS))
    s = L.mul(L.sub(m, L.const(1.0)), reciprocal(L, L.add(m, L.const(1.0))))
    s2 = L.mul(s, s)
    series = L.fma(s2, _horner(L, s2, LOG_POLY), L.const(1.0))
    return L.fma(e, L.const(LN2), L.mul(L.mul(s, L.const(2.0)), series))


def pow_minus_three_quarters(L, b):
    """b**-0.75 for b >= 2**-120 (b above the largest finite bf16 is taken as it): y = b**-1/4 from
    the seed 0x4F57 - (bits >> 2) and two Newton steps y + y (1/4 - (b/4) y^2 y^2) (one left 2.10 ulp
    and cost AlexNet 0.11 dB of logits SQNR; two: 1.63 ulp, +3 instructions); w = b**-1/2 from
    y^2 and one Newton step w + w (1/2 - (b/2) w w); y w.  Products are ordered so that nothing
    underflows (b y^2 and b w stay near sqrt(b))."""
    b = L.min(b, L.pattern(MAX_FINITE))
    quarter = L.mul(b, L.const(-0.25))  # exact, as is its double below (b is normal)
    y = L.isub(L.pattern(QUARTER_ROOT_MAGIC), L.shr(b, 2))
    y2 = L.mul(y, y)
    y = L.fma(y, L.fma(L.mul(y2, quarter), y2, L.const(0.25)), y)
    y2 = L.mul(y, y)
    y = L.fma(y, L.fma(L.mul(y2, quarter), y2, L.const(0.25)), y)
    w = L.mul(y, y)
    w = L.fma(w, L.fma(L.mul(w, L.mul(quarter, L.const(2.0))), w, L.const(0.5)), w)
    return L.mul(y, w)


def lrn(L, x, size: int, alpha: float, beta: float, bias: float):
    """ONNX LRN with rows as channels: x times base**-beta, base = bias + alpha/size * window_sum_squares(x);
    base**-0.75 by ``pow_minus_three_quarters`` when beta is 0.75 and bias >= 2**-120, else
    exp(-beta ln(base)).  The base must be a normal positive number (bias > 0)."""
    total = L.window_sum_squares(x, (size - 1) // 2, size // 2)
    base = L.fma(total, L.const(alpha / size), L.const(bias))
    if beta == 0.75 and bias >= LRN_FAST_BIAS:
        return L.mul(x, pow_minus_three_quarters(L, base))
    return L.mul(x, exp(L, L.mul(log(L, base), L.const(-beta))))


#: Element-wise functions of one operand by IR op kind (gelu by its ``approximate`` attribute; SiLU
#: has no op kind of its own: ONNX graphs spell it x * sigmoid(x)).
def neg(L, v):
    """-x: the sign bit flipped (exact for every pattern: zeros, infinities, NaN)."""
    return L.xor(v, L.pattern(SIGN))


UNARY = {"neg": neg, "exp": exp, "reciprocal": reciprocal, "sqrt": sqrt, "tanh": tanh, "erf": erf,
         "sigmoid": sigmoid, "hard_swish": hard_swish}
GELU = {"none": gelu_erf, "tanh": gelu_tanh}
