"""DyBit: exhaustive code tests per width, nearest-code property, quantization and scale search."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcc.ir.numerics import (
    FINE_SHIFT, MAX_DECODE_INT, decode, decode_int, dequantize, dybit_magnitudes, encode,
    max_magnitude, quantize, search_scale,
)

WIDTHS = range(2, 9)


def magnitudes_from_bit_strings(n: int) -> list[Fraction]:
    """tcc's definition read literally: leading 1s, a closing 0, the rest is the mantissa."""
    w = n - 1
    out = []
    for code in range(2**w):
        bits = format(code, f"0{w}b")
        k = len(bits) - len(bits.lstrip("1"))
        r = max(w - k - 1, 0)
        mantissa = bits[k + 1:]
        assert len(mantissa) == r
        f = int(mantissa, 2) if mantissa else 0
        out.append(Fraction(f, 2**r) if k == 0 else 2 ** (k - 1) * (1 + Fraction(f, 2**r)))
    return out


@pytest.mark.parametrize("n", WIDTHS)
def test_magnitudes_match_the_definition(n):
    want = magnitudes_from_bit_strings(n)
    got = dybit_magnitudes(n)
    assert [Fraction(float(v)) for v in got] == want
    assert np.all(np.diff(got) > 0)  # codes are monotonic in magnitude
    assert got[-1] == max_magnitude(n) == 2 ** (n - 2)


def test_four_bit_magnitudes():
    assert dybit_magnitudes(4).tolist() == [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 4]
    assert decode(np.arange(16), 4).tolist() == [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 4,
                                                 0, -0.25, -0.5, -0.75, -1, -1.5, -2, -4]


@pytest.mark.parametrize("n", WIDTHS)
def test_every_code_round_trips(n):
    codes = np.arange(2**n)
    values = decode(codes, n)
    back = encode(values, n)
    assert back.dtype == np.uint8
    negative_zero = 2 ** (n - 1)
    assert back[negative_zero] == 0  # -0 encodes as +0
    keep = codes != negative_zero
    assert np.array_equal(back[keep], codes[keep])
    assert np.array_equal(decode(back, n), values)


@pytest.mark.parametrize("n", WIDTHS)
def test_decode_int_is_the_fine_grid(n):
    codes = np.arange(2**n)
    ints = decode_int(codes, n)
    assert ints.dtype == np.int32
    assert np.array_equal(ints * 2.0 ** -FINE_SHIFT[n], decode(codes, n))
    assert np.max(np.abs(ints)) == MAX_DECODE_INT[n] == 4 ** (n - 2)
    # the documented int32 accumulator bound: (2**31 - 1) // (128 * max) terms of w * int8
    terms = (2**31 - 1) // (128 * MAX_DECODE_INT[n])
    assert terms == (2**31 - 1) // 2 ** (2 * n + 3)
    acc = np.full(terms, int(ints.min()), np.int64) * -128
    assert acc.sum() <= 2**31 - 1 < acc.sum() + 128 * MAX_DECODE_INT[n]


def brute_force_encode(v: float, n: int) -> int:
    """Nearest of all 2**n codes by exhaustive search; ties to the even magnitude code."""
    mags = [Fraction(float(m)) for m in dybit_magnitudes(n)]
    a = abs(Fraction(v))
    dist = [abs(a - m) for m in mags]
    best = min(dist)
    candidates = [c for c, d in enumerate(dist) if d == best]
    code = next((c for c in candidates if c % 2 == 0), candidates[0])
    return code | (2 ** (n - 1) if v < 0 and code else 0)


@settings(max_examples=600, deadline=None)
@given(st.integers(2, 8), st.floats(-80, 80, allow_nan=False))
def test_encode_is_nearest_code(n, v):
    assert encode(v, n) == brute_force_encode(v, n)


@pytest.mark.parametrize("n", WIDTHS)
def test_ties_go_to_the_even_code(n):
    mags = dybit_magnitudes(n)
    mids = (mags[:-1] + mags[1:]) / 2
    got = encode(np.concatenate([mids, -mids]), n)
    assert [int(c) for c in got] == [brute_force_encode(float(v), n) for v in np.concatenate([mids, -mids])]
    assert np.all(got[: mids.size] % 2 == 0)


def test_saturation_and_specials():
    assert encode([1e9, np.inf, -np.inf, -0.0, -1e-9], 4).tolist() == [7, 7, 15, 0, 0]
    with pytest.raises(ValueError):
        encode(np.nan, 4)
    with pytest.raises(ValueError):
        decode(16, 4)
    with pytest.raises(ValueError):
        dybit_magnitudes(9)


@pytest.mark.parametrize("n", [3, 4, 6, 8])
def test_quantize_dequantize_error_bounded(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((8, 50)).astype(np.float32)
    scale = np.abs(x).max() / max_magnitude(n)
    deq = dequantize(quantize(x, n, scale), n, scale)
    assert deq.dtype == np.float32
    mags = dybit_magnitudes(n) * np.float64(np.float32(scale))
    half_gap = np.max(np.diff(mags)) / 2
    assert np.max(np.abs(deq - x)) <= half_gap * (1 + 1e-6)


def test_per_channel_quantize():
    x = np.array([[1.0, -2.0], [0.5, 4.0]], np.float32)
    codes = quantize(x, 4, [1.0, 0.5], axis=1)
    assert decode(codes, 4).tolist() == [[1.0, -4.0], [0.5, 4.0]]
    assert dequantize(codes, 4, [1.0, 0.5], axis=1).tolist() == [[1.0, -2.0], [0.5, 2.0]]


def mse(x, n, scale, axis=None):
    deq = dequantize(quantize(x, n, scale, axis=axis), n, scale, axis=axis)
    return np.mean((deq.astype(np.float64) - x) ** 2, axis=None if axis is None else 1 - axis)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_search_scale_beats_max_abs_and_every_candidate(n):
    rng = np.random.default_rng(10 + n)
    x = rng.laplace(size=2000).astype(np.float32)
    best = search_scale(x, n)
    max_abs = float(np.abs(x).max()) / max_magnitude(n)
    assert mse(x, n, best) <= mse(x, n, max_abs)
    factors = np.geomspace(0.125, 1.25 * max_magnitude(n), 25)
    explicit = search_scale(x, n, candidates=factors)
    assert explicit in [float(np.float32(max_abs * f)) for f in factors]
    assert all(mse(x, n, explicit) <= mse(x, n, max_abs * f) for f in factors)
    assert mse(x, n, best) <= mse(x, n, explicit) * 1.01  # the refined default is at least as good


def test_search_scale_per_channel_equals_per_tensor_per_row():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 300)) * np.array([[0.1], [1.0], [10.0], [0.0]])
    scales = search_scale(x, 5, axis=0)
    assert scales.shape == (4,)
    for c in range(3):
        assert scales[c] == search_scale(x[c], 5)
    assert scales[3] == 1.0  # all-zero channel
    assert np.allclose(search_scale(x.T, 5, axis=1), scales, rtol=0, atol=0)
