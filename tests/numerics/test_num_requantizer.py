"""numerics.Requantizer (the prepared form) against numerics.requantize and an exact Fraction
reference: bit-identical at the extremes of every operand, per channel, in every rounding mode."""
import itertools
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_num_integer import ref_requantize

from tcc.ir.numerics import INT32_MAX, INT32_MIN, ROUNDING_MODES, Requantizer, requantize

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
