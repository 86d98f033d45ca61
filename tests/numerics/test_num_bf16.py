"""bf16 emulation: exhaustive conversions, ml_dtypes agreement, arithmetic against exact references."""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics_reference import ref_bf16_bits, ref_round

from tcc.ir.numerics import (
    BF16_MAX, BF16_NAN, ROUNDING_MODES, bf16_add, bf16_fma, bf16_max, bf16_min, bf16_mul,
    bf16_mul_add, bf16_round, bf16_sub, bf16_sum, bf16_to_int8, from_bf16, int8_to_bf16, to_bf16,
)

ALL_BITS = np.arange(65536, dtype=np.uint16)
ALL_VALUES = ALL_BITS.view(ml_dtypes.bfloat16).astype(np.float32)
FINITE_BITS = ALL_BITS[np.isfinite(ALL_VALUES)]


def ml_bits(x32) -> np.ndarray:
    return np.asarray(x32, np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def random_bf16(rng, size, finite=True) -> np.ndarray:
    bits = FINITE_BITS if finite else ALL_BITS
    return from_bf16(rng.choice(bits, size))


def test_from_bf16_exhaustive_matches_ml_dtypes():
    assert np.array_equal(from_bf16(ALL_BITS).view(np.uint32), ALL_VALUES.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_bf16_round_trips_every_pattern(dtype):
    values = from_bf16(ALL_BITS).astype(dtype)
    back = to_bf16(values)
    nan = np.isnan(values)
    assert np.array_equal(back[~nan], ALL_BITS[~nan])
    assert np.array_equal(back[nan], np.where(ALL_BITS[nan] & 0x8000, 0xFFC0, BF16_NAN))


def test_to_bf16_matches_ml_dtypes_on_random_float32():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    # ties (low half exactly 0x8000), near-overflow, subnormals, zeros, infinities, NaNs
    edges = np.array([0x3F808000, 0x3F818000, 0x7F7F8000, 0x7F7F7FFF, 0x7F7FFFFF, 0xFF7F8000,
                      0x00008000, 0x00018000, 0x00007FFF, 0x00000001, 0x80000001, 0x807FFFFF,
                      0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001,
                      0x7F800001, 0x7FFFFFFF], np.uint32)
    x = np.concatenate([bits, edges]).view(np.float32)
    assert np.array_equal(to_bf16(x), ml_bits(x))
    assert np.array_equal(to_bf16(x.astype(np.float64)), ml_bits(x))  # float32 values: one rounding


@pytest.mark.parametrize("lanes", [64, 32768], ids=["cast", "integer passes"])
def test_round32_bits_into_on_every_high_half_and_rounding_low_half(lanes):
    """Both forms of round32_bits_into (ml_dtypes' cast on short lanes, integer passes on long ones):
    every float32 high half with the low halves that decide RNE (0, 1, below, at and above the tie,
    all ones), against ml_dtypes with NaN made canonical."""
    from tcc.ir.numerics.bf16 import round32_bits_into

    low = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF], np.uint32)
    x = ((ALL_BITS.astype(np.uint32)[:, None] << 16) | low).reshape(-1).view(np.float32)
    with np.errstate(invalid="ignore"):
        want = np.where(np.isnan(x), BF16_NAN, ml_bits(x)).astype(np.uint16)
    got = np.empty_like(want)
    with np.errstate(invalid="ignore"):  # NaN lanes (the simulator runs with float errors ignored)
        for start in range(0, x.size, lanes):
            chunk = slice(start, start + lanes)
            round32_bits_into(x[chunk], got[chunk], np.empty(x[chunk].size, np.uint32))
    assert np.array_equal(got, want)


def test_to_bf16_edge_values():
    assert to_bf16(np.float32(1 + 2**-8)) == 0x3F80  # tie to even
    assert to_bf16(np.float32(1 + 3 * 2**-8)) == 0x3F82  # tie to even, upward
    assert to_bf16(BF16_MAX) == 0x7F7F
    half_way = np.array([0x7F7F8000], np.uint32).view(np.float32)  # between BF16_MAX and 2**128
    assert to_bf16(half_way) == 0x7F80  # tie: the even neighbour is inf
    assert to_bf16(np.nextafter(half_way, np.float32(0))) == 0x7F7F
    assert to_bf16(2.0**-133) == 0x0001  # smallest subnormal kept
    assert to_bf16(2.0**-134) == 0x0000  # tie with zero goes to even (zero)
    assert to_bf16(-(2.0**-135)) == 0x8000
    assert to_bf16(-np.inf) == 0xFF80


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_to_bf16_float64_is_one_rounding(x):
    assert to_bf16(x) == ref_bf16_bits(Fraction(x), math.copysign(1, x) < 0)


def test_to_bf16_float64_does_not_double_round():
    x = 1 + 2**-8 + 2**-30  # via float32 this would tie and round down to 1.0
    assert to_bf16(np.float32(x)) == 0x3F80  # the double rounding that one rounding avoids
    assert to_bf16(x) == 0x3F81


@pytest.mark.parametrize("source", [np.float64, np.int64])
def test_casts_to_bf16_round_once_whatever_ml_dtypes_does(source):
    """Every bf16 the interpreter, folder, parser and session make goes through dtypes.cast, which
    rounds by to_bf16 (ml_dtypes 0.6 rounded float64 through float32, 0.7 rounds once)."""
    from tcc.ir.dtypes import cast
    from tcc.ir.interpreter.kernels_tensor import cast as cast_kernel

    x = np.array([1 + 2**-8 + 2**-30, 257, -(2.0**-134) * 3], source if source is np.float64 else np.float64)
    x = x.astype(source) if source is np.int64 else x
    want = to_bf16(x)
    assert np.array_equal(cast(x, "bf16").view(np.uint16), want)
    assert np.array_equal(cast_kernel({"to": "bf16"}, x).view(np.uint16), want)


def test_bf16_round_values():
    x = np.array([1.0, 1.00390625, 3.14159, -2.5e-40, np.inf], np.float32)
    assert np.array_equal(bf16_round(x), x.astype(ml_dtypes.bfloat16).astype(np.float32))
    assert bf16_round(x).dtype == np.float32


def _mass_pairs(rng):
    """Every bf16 pattern against 48 random partners (3.1M pairs, specials included)."""
    a = np.repeat(ALL_VALUES, 48)
    b = random_bf16(rng, a.size, finite=False)
    return a, b


def _same_bits(got, want_bits):
    got_bits = to_bf16(got)
    nan = np.isnan(got)
    assert np.array_equal(np.isnan(from_bf16(want_bits)), nan)
    assert np.all(got_bits[nan] == BF16_NAN)  # canonical NaN
    assert np.array_equal(got_bits[~nan], want_bits[~nan])


def test_add_sub_mass_against_float32_then_ml_dtypes():
    # f32 has 24 >= 2*8+2 bits, so rounding a sum of two bf16 values to f32 and then to bf16 is
    # the correctly rounded result (Figueroa); f32 holds bf16's subnormal sums exactly.
    rng = np.random.default_rng(2)
    a, b = _mass_pairs(rng)
    with np.errstate(invalid="ignore", over="ignore"):
        _same_bits(bf16_add(a, b), ml_bits(a + b))
        _same_bits(bf16_sub(a, b), ml_bits(a - b))


def test_mul_mass_against_float32_then_ml_dtypes():
    # the same argument holds for products whose float32 result is normal (or inf/nan/zero)
    rng = np.random.default_rng(3)
    a, b = _mass_pairs(rng)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        p32 = a * b
    keep = ~((np.abs(p32) < 2.0**-126) & (p32 != 0)) & ~((p32 == 0) & (a != 0) & (b != 0))
    _same_bits(bf16_mul(a[keep], b[keep]), ml_bits(p32[keep]))


# any finite pattern, or one with an exponent near 1 so sums cancel and land on ties often
finite_bf16 = st.one_of(
    st.sampled_from(FINITE_BITS.tolist()),
    st.builds(lambda sign, exp, mant: sign << 15 | exp << 7 | mant,
              st.integers(0, 1), st.integers(124, 131), st.integers(0, 127)),
).map(lambda b: float(from_bf16(b)))


def _exact(x):
    return Fraction(float(x))


@settings(max_examples=2000, deadline=None)
@given(finite_bf16, finite_bf16, finite_bf16)
def test_arithmetic_against_fractions(a, b, c):
    def check(got, exact, neg_zero):
        assert to_bf16(got) == ref_bf16_bits(exact, neg_zero)

    fa, fb, fc = _exact(a), _exact(b), _exact(c)
    nz = lambda *xs: all(math.copysign(1, x) < 0 for x in xs)  # noqa: E731
    check(bf16_add(a, b), fa + fb, nz(a, b))
    check(bf16_sub(a, b), fa - fb, nz(a, -b))
    product_negative = (math.copysign(1, a) * math.copysign(1, b)) < 0
    check(bf16_mul(a, b), fa * fb, product_negative)
    check(bf16_fma(a, b, c), fa * fb + fc, product_negative and math.copysign(1, c) < 0)


def test_fma_rounds_once_mul_add_twice():
    # 17 * 17 = 289 is half-way between bf16 288 and 290; a tiny addend decides the direction
    assert bf16_mul(17, 17) == 288
    assert bf16_fma(17, 17, 2.0**-100) == 290
    assert bf16_fma(17, 17, -(2.0**-100)) == 288
    assert bf16_mul_add(17, 17, 2.0**-100) == 288
    assert bf16_fma(np.inf, 0, 1) != bf16_fma(np.inf, 0, 1)  # NaN


def test_mul_add_is_mul_then_add():
    rng = np.random.default_rng(4)
    a, b, c = (random_bf16(rng, 5000) for _ in range(3))
    with np.errstate(over="ignore", invalid="ignore"):
        want = bf16_add(bf16_mul(a, b), c)
        assert np.array_equal(bf16_mul_add(a, b, c), want, equal_nan=True)


def test_special_values():
    assert to_bf16(bf16_add(np.inf, -np.inf)) == BF16_NAN
    assert to_bf16(bf16_mul(np.inf, 0.0)) == BF16_NAN
    assert to_bf16(bf16_add(-0.0, -0.0)) == 0x8000
    assert to_bf16(bf16_add(-0.0, 0.0)) == 0x0000
    assert to_bf16(bf16_sub(1.0, 1.0)) == 0x0000
    assert to_bf16(bf16_mul(-(2.0**-100), 2.0**-100)) == 0x8000  # underflow keeps the sign
    assert bf16_add(BF16_MAX, BF16_MAX) == np.inf
    assert bf16_add(BF16_MAX, 2.0**119) == np.inf  # exactly half-way to 2**128: ties to even (inf)
    assert bf16_add(BF16_MAX, 2.0**118) == BF16_MAX


def test_max_min():
    rng = np.random.default_rng(5)
    a, b = random_bf16(rng, 10000, finite=False), random_bf16(rng, 10000, finite=False)
    assert np.array_equal(bf16_max(a, b), np.maximum(a, b), equal_nan=True)
    assert np.array_equal(bf16_min(a, b), np.minimum(a, b), equal_nan=True)
    assert to_bf16(bf16_max(-0.0, 0.0)) == 0 and to_bf16(bf16_max(0.0, -0.0)) == 0
    assert to_bf16(bf16_min(0.0, -0.0)) == 0x8000 and to_bf16(bf16_min(-0.0, 0.0)) == 0x8000
    assert to_bf16(bf16_max(np.nan, 1.0)) == BF16_NAN and to_bf16(bf16_min(1.0, -np.nan)) == BF16_NAN


def ref_tree_sum(values):
    """The documented order, written as plain recursion over Python floats."""
    level = list(values)
    if not level:
        return 0.0
    while len(level) > 1:
        nxt = [float(bf16_add(level[i], level[i + 1])) for i in range(0, len(level) - 1, 2)]
        level = nxt + level[len(level) - len(level) % 2:]
    return level[0]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 5, 8, 13, 100])
def test_sum_tree_order(length):
    rng = np.random.default_rng(length)
    x = random_bf16(rng, (4, length)) if length else np.zeros((4, 0), np.float32)
    x = bf16_round(np.clip(x, -1e30, 1e30))
    got = bf16_sum(x, axis=1)
    assert got.shape == (4,)
    for row in range(4):
        assert to_bf16(got[row]) == to_bf16(ref_tree_sum(x[row].tolist()))
    assert np.array_equal(bf16_sum(x.T, axis=0), got)


def test_sum_order_is_pairwise_not_sequential():
    x = [1.0] + [2.0**-8] * 4
    # sequential: 1 + 2**-8 ties back to 1 four times -> 1.0;
    # tree: [1 + 2**-8 -> 1, 2**-7, 2**-8] -> [1 + 2**-7, 2**-8] -> tie to even -> 1 + 2**-6
    assert bf16_sum(np.array(x, np.float32)) == ref_tree_sum(x) == 1.015625
    assert bf16_sum(np.ones((2, 3, 4), np.float32)) == 24.0


def test_arithmetic_rejects_non_bf16_values():
    with pytest.raises(ValueError, match="bf16_round"):
        bf16_add(np.float32(1.001), 1.0)
    bf16_add(np.array([1.0], ml_dtypes.bfloat16), 1.0)  # bfloat16 arrays are accepted


def test_int8_to_bf16_exhaustive_against_fractions():
    q = np.arange(-128, 128, dtype=np.int8)
    for scale, zp in [(0.1, 0), (0.0123, -3), (3.7e-5, 17), (1.0, 0)]:
        got = int8_to_bf16(q, scale, zp)
        s = Fraction(float(np.float32(scale)))
        want = [ref_bf16_bits((int(v) - zp) * s) for v in q]
        assert to_bf16(got).tolist() == want


def test_int8_to_bf16_per_channel():
    q = np.array([[1, 2], [3, 4]], np.int8)
    got = int8_to_bf16(q, [0.5, 0.25], [0, 1], axis=1)
    assert got.tolist() == [[0.5, 0.25], [1.5, 0.75]]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FINITE_BITS.tolist()), st.floats(1e-4, 1e2), st.integers(-128, 127),
       st.sampled_from(ROUNDING_MODES))
def test_bf16_to_int8_against_fractions(bits, scale, zp, mode):
    x = float(from_bf16(bits))
    inv = Fraction(float(np.float32(1) / np.float32(scale)))
    want = min(max(ref_round(Fraction(x) * inv, mode) + zp, -128), 127)
    got = bf16_to_int8(np.float32(x), scale, zp, mode)
    assert got.dtype == np.int8 and int(got) == want


def test_bf16_to_int8_specials_and_ties():
    x = np.array([np.inf, -np.inf, np.nan, 0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    assert bf16_to_int8(x, 1.0, 3).tolist() == [127, -128, 3, 3, 5, 5, 3, 1]
    assert bf16_to_int8(x, 1.0, 0, "half_away").tolist() == [127, -128, 0, 1, 2, 3, -1, -3]
    assert bf16_to_int8(x, 1.0, 0, qmin=0, qmax=255).dtype == np.uint8


def test_round32_bits_into_never_imports_ml_dtypes():
    """Short lanes use ml_dtypes' cast only when it is already loaded: importing it costs more than a
    run saves (an int8 model's `tcc run` with one bf16 softmax paid 0.7 s for it)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from tcc.ir.numerics.bf16 import round32_bits_into, round32_bits; "
            "x = np.array([1 + 2**-8, 1 + 3 * 2**-8, -2.5, np.nan], np.float32); "
            "got = round32_bits_into(x, np.empty(4, np.uint16), np.empty(4, np.uint32)); "
            "assert np.array_equal(got, round32_bits(x)), got; "
            "assert 'ml_dtypes' not in sys.modules; print(got.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str([0x3F80, 0x3F82, 0xC020, 0x7FC0])
