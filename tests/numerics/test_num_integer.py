"""Integer numerics against exact Python-int / Fraction references."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics_reference import ref_round

from tcc.ir.numerics import (
    INT32_MAX, INT32_MIN, ROUNDING_MODES, dyadic_error, multiply_by_quantized_multiplier,
    quantize_multiplier, requantize, round_to_integer, rounding_right_shift, saturate,
)


def ref_requantize(acc, mult, shift, zp, qmin, qmax, mode):
    v = ref_round(Fraction(int(acc) * int(mult), 2 ** int(shift)), mode) + int(zp)
    return min(max(v, qmin), qmax)


modes = st.sampled_from(ROUNDING_MODES)
int32s = st.integers(INT32_MIN, INT32_MAX)
scales = st.floats(1e-6, 1e3, exclude_max=True)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_rounding_right_shift_exhaustive_small(mode):
    x = np.arange(-600, 601, dtype=np.int64)
    for shift in range(0, 10):
        got = rounding_right_shift(x, shift, mode)
        want = [ref_round(Fraction(int(v), 2**shift), mode) for v in x]
        assert got.tolist() == want, (mode, shift)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20),
       st.integers(0, 63), modes)
def test_rounding_right_shift_full_int64(xs, shift, mode):
    got = rounding_right_shift(np.array(xs, np.int64), shift, mode)
    assert got.tolist() == [ref_round(Fraction(v, 2**shift), mode) for v in xs]


def test_rounding_right_shift_array_shift_and_scalars():
    x = np.array([[5, -5, 6, -6]])
    shift = np.array([[0], [1], [2]])
    got = rounding_right_shift(x, shift, "half_even")
    assert got.tolist() == [[5, -5, 6, -6], [2, -2, 3, -3], [1, -1, 2, -2]]
    assert rounding_right_shift(7, 1, "half_up") == 4
    assert isinstance(rounding_right_shift(7, 1), np.integer)


def test_rounding_right_shift_rejects():
    with pytest.raises(ValueError):
        rounding_right_shift(1, 64)
    with pytest.raises(ValueError):
        rounding_right_shift(1, -1)
    with pytest.raises(ValueError):
        rounding_right_shift(1, 1, "nearest")
    with pytest.raises(TypeError):
        rounding_right_shift(1.5, 1)


def test_saturate():
    assert saturate([300, -300, 5], np.int8).tolist() == [127, -128, 5]
    assert saturate([300, -300, 5], np.int8).dtype == np.int8
    assert saturate([300, -3], 4, signed=False).tolist() == [15, 0]
    assert saturate([300, -300], 4).tolist() == [7, -8]
    assert saturate(2**40, np.int32) == INT32_MAX
    with pytest.raises(TypeError):
        saturate([1.5], np.int8)


@settings(max_examples=300, deadline=None)
@given(st.floats(-(2.0**61), 2.0**61, allow_nan=False), modes)
def test_round_to_integer_matches_fraction(x, mode):
    assert round_to_integer(x, mode) == ref_round(Fraction(x), mode)


def test_round_to_integer_edges():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.0**52 + 1, -(2.0**52) - 1, 0.49999999999999994])
    assert round_to_integer(x, "half_even").tolist() == [-2, -2, 0, 0, 2, 2, 2**52 + 1, -(2**52) - 1, 0]
    assert round_to_integer(x, "half_up").tolist() == [-2, -1, 0, 1, 2, 3, 2**52 + 1, -(2**52) - 1, 0]
    assert round_to_integer(x, "half_away").tolist() == [-3, -2, -1, 1, 2, 3, 2**52 + 1, -(2**52) - 1, 0]
    with pytest.raises(ValueError):
        round_to_integer(np.nan)
    with pytest.raises(ValueError):
        round_to_integer(2.0**62)


@settings(max_examples=500, deadline=None)
@given(st.one_of(scales, st.floats(5e-324, 2.0**31, exclude_max=True)))
def test_quantize_multiplier_q31_and_error(real):
    mult, shift = quantize_multiplier(real)
    assert isinstance(mult, int) and isinstance(shift, int)
    assert 2**30 <= mult < 2**31 and shift >= 0
    rel = (Fraction(mult, 2**shift) - Fraction(real)) / Fraction(real)
    assert abs(rel) <= Fraction(1, 2**31) < Fraction(1, 2**30)
    if real > 1e-290:  # the float64 report loses precision only for subnormal approximations
        assert abs(dyadic_error(real, mult, shift) - float(rel)) <= 1e-6 * abs(float(rel)) + 1e-300


def test_quantize_multiplier_special_cases():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(0.5) == (2**30, 31)
    assert quantize_multiplier(1.0) == (2**30, 30)
    assert quantize_multiplier(1 - 2.0**-40) == (2**30, 30)  # Q31 mantissa carries into the exponent
    assert quantize_multiplier(2.0**31 - 0.25) == (2**31 - 1, 0)  # no carry out of the top binade
    for bad in (-1.0, float("nan"), float("inf"), 2.0**31):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


def test_quantize_multiplier_vectorized_matches_scalar():
    reals = np.array([0.0, 1e-6, 0.0123, 0.5, 1.0, 3.75, 999.9])
    mults, shifts = quantize_multiplier(reals)
    assert mults.dtype == np.int64 and shifts.dtype == np.int64
    assert list(zip(mults.tolist(), shifts.tolist())) == [quantize_multiplier(float(r)) for r in reals]


@settings(max_examples=200, deadline=None)
@given(st.lists(int32s, min_size=1, max_size=40), scales, st.integers(-128, 127), modes)
def test_requantize_matches_fraction(accs, real, zp, mode):
    mult, shift = quantize_multiplier(real)
    got = requantize(np.array(accs, np.int32), mult, shift, zp, mode=mode)
    assert got.dtype == np.int8
    assert got.tolist() == [ref_requantize(a, mult, shift, zp, -128, 127, mode) for a in accs]


@settings(max_examples=100, deadline=None)
@given(st.lists(int32s, min_size=6, max_size=6), st.lists(scales, min_size=3, max_size=3),
       st.lists(st.integers(0, 255), min_size=3, max_size=3), modes)
def test_requantize_per_channel(accs, reals, zps, mode):
    acc = np.array(accs, np.int64).reshape(2, 3)
    mults, shifts = quantize_multiplier(np.array(reals))
    got = requantize(acc, mults, shifts, zps, qmin=0, qmax=255, mode=mode, axis=1)
    assert got.dtype == np.uint8
    want = [[ref_requantize(acc[i, c], mults[c], shifts[c], zps[c], 0, 255, mode) for c in range(3)]
            for i in range(2)]
    assert got.tolist() == want
    # pre-shaped parameters broadcast the same way
    again = requantize(acc, mults[None, :], shifts[None, :], np.array(zps)[None, :], 0, 255, mode)
    assert again.tolist() == want


@settings(max_examples=200, deadline=None)
@given(int32s, st.integers(0, 2**31 - 1), st.integers(0, 200), modes)
def test_multiply_by_quantized_multiplier_any_shift(acc, mult, shift, mode):
    got = multiply_by_quantized_multiplier(acc, mult, shift, mode)
    assert got == ref_round(Fraction(acc * mult, 2**shift), mode)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**20), 2**20), scales)
def test_requantize_close_to_real_scale(acc, real):
    # the dyadic form is within 2**-31 of the real scale, so unclamped results are within 1
    mult, shift = quantize_multiplier(real)
    got = int(requantize(acc, mult, shift, qmin=INT32_MIN, qmax=INT32_MAX))
    assert abs(got - acc * real) <= 0.5 + abs(acc * real) * 2.0**-30 + 1e-9


def test_requantize_rejects_overflow_risk():
    with pytest.raises(ValueError):
        multiply_by_quantized_multiplier(2**40, 2**30, 31)
    with pytest.raises(ValueError):
        multiply_by_quantized_multiplier(1, -1, 3)
    assert multiply_by_quantized_multiplier(2**40, 2**15, 40) == 2**15  # wide acc, small multiplier
    with pytest.raises(ValueError):
        requantize(np.zeros((2, 3), np.int32), [1, 2], [3, 4], axis=1)


def test_dyadic_error_zero_real():
    assert dyadic_error(0.0, 0, 0) == 0.0
    assert dyadic_error(0.0, 5, 3) == np.inf
    assert dyadic_error(0.25, 2**30, 32) == 0.0


@settings(max_examples=300, deadline=None)
@given(num=st.integers(-2**50, 2**50), den=st.integers(1, 2**40),
       mode=st.sampled_from(["half_even", "half_up", "half_away", "floor"]))
def test_rounding_divide_matches_fraction(num, den, mode):
    from fractions import Fraction

    from tcc.ir.numerics import rounding_divide

    exact = Fraction(num, den)
    floor = exact.numerator // exact.denominator
    frac = exact - floor
    if mode == "floor":
        expected = floor
    elif frac > Fraction(1, 2):
        expected = floor + 1
    elif frac < Fraction(1, 2):
        expected = floor
    elif mode == "half_up":
        expected = floor + 1
    elif mode == "half_away":
        expected = floor + 1 if num >= 0 else floor
    else:
        expected = floor + (floor % 2)
    assert int(rounding_divide(num, den, mode)) == expected


@settings(max_examples=200, deadline=None)
@given(totals=st.lists(st.integers(-255 * 64, 255 * 64), min_size=1, max_size=8), count=st.integers(1, 64),
       mult=st.integers(0, 2**31 - 1), shift=st.integers(0, 50), zp=st.integers(-128, 127))
def test_rounded_mean_matches_fraction(totals, count, mult, shift, zp):
    from tcc.ir.numerics import rounded_mean

    expected = [min(max(ref_round(Fraction(t * mult, count << shift), "half_even") + zp, -128), 127)
                for t in totals]
    assert np.asarray(rounded_mean(np.array(totals), count, mult, shift, zp)).tolist() == expected


def test_rounded_mean_rejects():
    from tcc.ir.numerics import rounded_mean

    for bad in ((1, -1, 0), (1, 1, 51), (0, 1, 0)):
        count, mult, shift = bad
        with pytest.raises(ValueError):
            rounded_mean(np.array([5]), count, mult, shift)


@settings(max_examples=200, deadline=None)
@given(xs=st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=8), zp=st.integers(-128, 127),
       pre_shift=st.integers(0, 62))
def test_centre_and_shift_is_exact_or_refuses(xs, zp, pre_shift):
    from tcc.ir.numerics import centre_and_shift

    exact = [(x - zp) * 2**pre_shift for x in xs]
    if max(abs(v) for v in exact) >= 2**62:
        with pytest.raises(ValueError, match="beyond 2\\*\\*62"):
            centre_and_shift(np.array(xs), zp, pre_shift)
    else:
        assert np.asarray(centre_and_shift(np.array(xs), zp, pre_shift)).tolist() == exact
    with pytest.raises(ValueError, match="must be in"):
        centre_and_shift(np.array(xs), zp, 63)
