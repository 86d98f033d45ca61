"""numerics.Requantizer (the prepared form) against numerics.requantize and an exact Fraction
reference: bit-identical at the extremes of every operand, per channel, in every rounding mode."""
import itertools
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_num_integer import ref_requantize

from tcc.ir.numerics import INT32_MAX, INT32_MIN, ROUNDING_MODES, AffineRequantizer, Requantizer, requantize

# Accumulators at the int32 edges, ties and near-ties of small shifts, and past int32 (a
# requantizer's input after bias and pre-shift is int64) up to where acc * (2**31 - 1) nears 2**62.
ACCS = sorted({0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 2**15, -(2**15), INT32_MAX, INT32_MIN, INT32_MAX - 1,
               INT32_MIN + 1, 2**31, -(2**31) - 1, 2**32 + 7, -(2**32) - 7, (2**62 - 1) // (2**31 - 1),
               -((2**62 - 1) // (2**31 - 1))})
MULTIPLIERS = (0, 1, 3, 2**30, 2**30 + 1, 2**31 - 1)
SHIFTS = (0, 1, 2, 30, 31, 32, 61, 62, 63, 64, 100)
RANGES = ((-128, 127), (0, 127), (-128, -128), (INT32_MIN, INT32_MAX), (-(2**40), 2**40))


def outcome(fn, *args):
    """The result as a list, or the ValueError's message."""
    try:
        return fn(*args).tolist()
    except ValueError as exc:
        return str(exc)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_extremes_match_requantize_and_exact(mode):
    for mult, shift, (qmin, qmax), zp in itertools.product(MULTIPLIERS, SHIFTS, RANGES, (0, -128, 127, INT32_MIN)):
        fits = np.array([a for a in ACCS if abs(a) * mult < 2**62], np.int64)  # and all of them: the error
        for acc in (fits, np.array(ACCS, np.int64)):
            want = outcome(partial(requantize, multiplier=mult, shift=shift, zero_point=zp, qmin=qmin, qmax=qmax,
                                   mode=mode, out_dtype=np.int64), acc)
            got = outcome(Requantizer(mult, shift, zp, qmin, qmax, mode), acc)
            assert got == want, (mult, shift, qmin, qmax, zp)
    small = [a for a in ACCS if abs(a) < 2**32]
    exact = [ref_requantize(a, 2**30 + 1, 31, 3, -128, 127, mode) for a in small]
    assert Requantizer(2**30 + 1, 31, 3, -128, 127, mode)(np.array(small, np.int64)).tolist() == exact


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_per_channel_with_zero_shift_and_large_shift(mode):
    mult = np.array([2**31 - 1, 2**30, 0, 1234567890], np.int64)
    shift = np.array([0, 63, 5, 40], np.int64)
    zp = np.array([0, -7, 127, INT32_MIN], np.int64)
    acc = np.array([[a, -a, a + 1, a - 1] for a in ACCS if abs(a) < 2**32], np.int64)
    want = requantize(acc, mult, shift, zp, INT32_MIN, INT32_MAX, mode, axis=1, out_dtype=np.int64)
    assert Requantizer(mult, shift, zp, INT32_MIN, INT32_MAX, mode)(acc).tolist() == want.tolist()


def test_overflowing_accumulator_raises_as_requantize_does():
    acc = np.array([2**40], np.int64)
    with pytest.raises(ValueError) as direct:
        requantize(acc, 2**30, 31)
    with pytest.raises(ValueError) as prepared:
        Requantizer(2**30, 31)(acc)
    assert str(prepared.value) == str(direct.value)
    # past the coarse bound of the largest channel but inside each element's own bound: no error
    mult = np.array([2**31 - 1, 1], np.int64)
    acc = np.array([[1, 2**50]], np.int64)
    want = requantize(acc, mult, np.array([31, 3]), axis=1, qmin=-(2**60), qmax=2**60, out_dtype=np.int64)
    assert Requantizer(mult, np.array([31, 3]), 0, -(2**60), 2**60)(acc).tolist() == want.tolist()


@pytest.mark.parametrize("bad, message", [
    (dict(multiplier=-1), "multiplier must be non-negative"), (dict(shift=-1), "shift must be non-negative"),
    (dict(zero_point=2**31), "zero_point must be within int32"), (dict(qmin=5, qmax=4), "qmin 5 > qmax 4"),
    (dict(mode="nearest"), "unknown rounding mode")])
def test_bad_parameters_refused(bad, message):
    args = dict(multiplier=2**30, shift=31, zero_point=0, qmin=-128, qmax=127, mode="half_even") | bad
    with pytest.raises(ValueError, match=message):
        Requantizer(**args)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=16), st.integers(0, 2**31 - 1),
       st.integers(0, 70), st.integers(INT32_MIN, INT32_MAX), st.sampled_from(ROUNDING_MODES))
def test_random_match_requantize(accs, mult, shift, zp, mode):
    acc = np.array(accs, np.int64)
    want = outcome(lambda a: requantize(a, mult, shift, zp, INT32_MIN, INT32_MAX, mode, out_dtype=np.int64), acc)
    assert outcome(Requantizer(mult, shift, zp, INT32_MIN, INT32_MAX, mode), acc) == want


def test_scalar_accumulator():
    assert int(Requantizer(2**30, 31, 1)(np.int64(-3))) == int(requantize(-3, 2**30, 31, 1, out_dtype=np.int64))


# -- AffineRequantizer: the whole stage, its float64 path against the integer rule --------------

def affine_rule(x, x_zp, pre_shift, bias, mult, shift, zp, qmin, qmax, mode):
    """The integer rule the stage must equal: centre_and_shift, + bias, requantize."""
    from tcc.ir.numerics import centre_and_shift

    largest_bias = int(np.abs(np.asarray(bias)).max())
    v = centre_and_shift(np.asarray(x, np.int64), x_zp, pre_shift, largest_bias) + np.asarray(bias, np.int64)
    return requantize(v, mult, shift, zp, qmin, qmax, mode, out_dtype=np.int64)


def test_affine_float_path_is_taken_up_to_its_bound_and_not_past_it():
    # int8 out, zero point 0: B = 129, 2**e >= B + 1 with e = 8, so shifts up to 44
    assert AffineRequantizer(0, 0, 2**31, [0], [2**30], [44], 0, -128, 127, "half_even").uses_float
    assert not AffineRequantizer(0, 0, 2**31, [0], [2**30], [45], 0, -128, 127, "half_even").uses_float
    # int32 out: B = 2**31 + 1, e = 32, shifts up to 20
    assert AffineRequantizer(0, 0, 2**31, [0], [2**30], [20], 0, INT32_MIN, INT32_MAX, "half_even").uses_float
    assert not AffineRequantizer(0, 0, 2**31, [0], [2**30], [21], 0, INT32_MIN, INT32_MAX, "half_even").uses_float
    assert not AffineRequantizer(0, 0, 2**31, [0], [2**30], [30], 0, -128, 127, "half_away").uses_float


@pytest.mark.parametrize("mode", ["half_even", "half_up", "floor"])
@pytest.mark.parametrize("x_zp, bias, zp", [(0, 0, 0), (-5, 17, -128), (3, -1000, 127)])
def test_affine_ties_and_nearest_non_ties_at_the_bound(mode, x_zp, bias, zp):
    """t = v * mult / 2**shift exactly on a half-integer or an integer, and 2**-shift (the closest
    a non-tie gets) either side, over the whole int8 range and past its clamps, for multipliers
    whose odd part is small (ties inside the range) and for multiplier 1 (steps of 2**-shift), up
    to the largest shift the float path takes."""
    bound = 52 - (max(abs(-128 - zp), abs(127 - zp)) + 1).bit_length()
    assert not AffineRequantizer(x_zp, 0, 2**62, [bias], [1], [bound + 1], zp, -128, 127, mode).uses_float
    for shift, mult in itertools.product((1, 30, bound), (1, 3 * 2**28, 5 * 2**27, 2**31 - 1)):
        # mult = odd * 2**j: t is a half-integer or an integer exactly at multiples of 2**(shift - j - 1)
        step = 2 ** max(shift - (mult & -mult).bit_length(), 0)
        base = np.arange(-300, 301, dtype=np.int64) * step
        v = np.unique(np.concatenate([base, base + 1, base - 1]))
        v = v[[abs(int(a)) * mult < 2**62 for a in v]]
        x = (v - bias + x_zp).reshape(-1, 1)
        stage = AffineRequantizer(x_zp, 0, 2**62, [bias], [mult], [shift], zp, -128, 127, mode)
        assert stage.uses_float
        want = affine_rule(x, x_zp, 0, [bias], [mult], [shift], zp, -128, 127, mode)
        assert stage(x).astype(np.int64).tolist() == want.tolist(), (shift, mult)
        into = stage(x, np.empty(x.shape, np.int8))  # written into an int8 destination, as the simulator does
        assert into.dtype == np.int8 and into.astype(np.int64).tolist() == want.tolist(), (shift, mult)


def test_affine_large_inputs_take_the_integer_path_and_raise_as_the_rule_does():
    small = AffineRequantizer(0, 0, 2**62, [0], [2**8], [44], 0, -128, 127, "half_even")
    assert small.uses_float
    for x in ([[2**53], [-(2**53)], [5]], [[2**53 - 1], [-(2**53 - 1)], [5]]):  # past exact doubles; the last ones
        want = affine_rule(np.array(x), 0, 0, [0], [2**8], [44], 0, -128, 127, "half_even")
        assert small(np.array(x, np.int64)).astype(np.int64).tolist() == want.tolist()
    stage = AffineRequantizer(0, 0, 2**62, [0], [2**30], [31], 0, -128, 127, "half_even")
    with pytest.raises(ValueError) as direct:
        affine_rule(np.array([[2**40]]), 0, 0, [0], [2**30], [31], 0, -128, 127, "half_even")
    with pytest.raises(ValueError) as prepared:
        stage(np.array([[2**40]], np.int64))
    assert str(prepared.value) == str(direct.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=1, max_size=12), st.integers(0, 2**31 - 1),
       st.integers(0, 50), st.integers(-128, 127), st.integers(-(2**20), 2**20), st.integers(-128, 127),
       st.integers(0, 3), st.sampled_from(ROUNDING_MODES), st.sampled_from([(-128, 127), (0, 127), (-5, 5)]))
def test_affine_random_match_the_integer_rule(xs, mult, shift, x_zp, bias, zp, pre_shift, mode, clamp):
    x = np.array(xs, np.int64).reshape(-1, 1)
    qmin, qmax = clamp
    stage = AffineRequantizer(x_zp, pre_shift, 2**31, [bias], [mult], [shift], zp, qmin, qmax, mode)
    want = outcome(lambda a: affine_rule(a, x_zp, pre_shift, [bias], [mult], [shift], zp, qmin, qmax, mode), x)
    got = outcome(lambda a: stage(a).astype(np.int64), x)
    assert got == want


@pytest.mark.parametrize("zp", [[-128, -128, -128], [-128, 0, 127]])
@pytest.mark.parametrize("mode", ["half_even", "half_up", "floor"])
def test_affine_int32_inputs_skip_the_range_look_and_still_match_the_rule(zp, mode):
    """int32 accumulators (magnitude 2**31) prove |v| in range without looking at x: the extremes of
    int32 and ties, per channel, with one zero point for all channels and with one per channel."""
    bias, mult, shift = [2**20, -(2**20), 7], [2**30, 2**29 + 1, 3 * 2**28], [38, 40, 31]
    stage = AffineRequantizer(-3, 0, 2**31, bias, mult, shift, zp, -128, 127, mode)
    assert stage.uses_float and stage._in_bound
    column = np.array([INT32_MIN, INT32_MIN + 1, -(2**37 // 2**30), -1, 0, 1, 2**7, 2**30, INT32_MAX], np.int64)
    x = np.stack([column + d for d in (0, 1, -1)], axis=1).clip(INT32_MIN, INT32_MAX)
    want = affine_rule(x, -3, 0, bias, mult, shift, zp, -128, 127, mode)
    assert stage(x.astype(np.int32), np.empty(x.shape, np.int8)).astype(np.int64).tolist() == want.tolist()
    assert stage(x).astype(np.int64).tolist() == want.tolist()
    assert not AffineRequantizer(-3, 0, 2**62, bias, mult, shift, zp, -128, 127, mode)._in_bound


@pytest.mark.parametrize("zp", [-128, 0, 5, 127])
@pytest.mark.parametrize("out, clamp", [(np.int8, (-128, 127)), (np.int8, (0, 127)), (np.int32, (INT32_MIN, INT32_MAX))])
def test_affine_rounding_add_into_int8_and_int32_matches_the_rule(zp, out, clamp):
    """half_even written into an int8 or int32 ``out`` with one zero point (even or odd): rint, the
    zero point and the cast are one add of 1.5 * 2**52 and a truncating cast, and the per-channel
    offset and ratio run on a repeated row (pieces of a long tile) or broadcast (a short one): every
    channel its own bias, multiplier and shift, int32 extremes, ties and their neighbours."""
    qmin, qmax = clamp
    rng = np.random.default_rng(5)
    cols = 24
    mult = rng.integers(2**29, 2**31, cols) if out == np.int8 else rng.integers(1, 2**12, cols)
    shift = rng.integers(30, 41, cols) if out == np.int8 else rng.integers(8, 21, cols)
    # channel 0: t = v / 2**8, channel 1: t = v / 2 (ties at odd multiples of 2**7 and at odd v)
    mult[:2], shift[:2] = [1, 1], [8, 1]
    bias = rng.integers(-(2**20), 2**20, cols)
    stage = AffineRequantizer(-3, 0, 2**31, bias, mult, shift, zp, qmin, qmax, "half_even")
    assert stage.uses_float and stage._rounder is not None
    rows = 8192 // cols * 2 + 7  # two repeated rows of 8192 // 24 channel rows each and a shorter piece
    x = rng.integers(INT32_MIN, INT32_MAX, (rows, cols), endpoint=True)
    x[:3] = np.array([INT32_MIN, INT32_MAX, 0])[:, None]
    odd = np.arange(-300, 301, 2)[:rows - 3] + 1  # v = x + 3 + bias
    x[3:3 + odd.size, 0] = odd * 2**7 - 3 - bias[0]
    x[3:3 + odd.size, 1] = odd - 3 - bias[1]
    x[3 + odd.size:, :2] = x[3:rows - odd.size, :2] + 1
    x = x.clip(INT32_MIN, INT32_MAX)
    want = affine_rule(x, -3, 0, bias, mult, shift, zp, qmin, qmax, "half_even")
    got = stage(x.astype(np.int32), np.empty(x.shape, out))
    assert got.dtype == out and got.astype(np.int64).tolist() == want.tolist()
    small = stage(x[:100].astype(np.int32), np.empty((100, cols), out))  # below _SMALL: one broadcast call each
    assert small.astype(np.int64).tolist() == want[:100].tolist()
    column_major = np.empty((cols, rows), out).T  # a strided destination, as a requant with dst_row > cols writes
    assert stage(x.astype(np.int32), column_major).astype(np.int64).tolist() == want.tolist()
