"""bf16 lane approximations against float64 truth: exhaustive sweeps, specials, rows, determinism.

``python tests/numerics/test_bf16_math.py`` prints the measured error table of bf16_math's docstring.
"""
import hashlib
import inspect
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcc.ir.numerics import (
    bf16_div, bf16_erf, bf16_exp, bf16_gelu, bf16_hard_swish, bf16_layer_norm, bf16_math,
    bf16_reciprocal, bf16_round, bf16_rsqrt, bf16_sigmoid, bf16_silu, bf16_softmax, bf16_log_softmax, bf16_sqrt,
    bf16_tanh, from_bf16, to_bf16,
)

ALL = from_bf16(np.arange(65536))
FINITE = ALL[np.isfinite(ALL)]
_erf64 = np.frompyfunc(math.erf, 1, 1)
_erfc64 = np.frompyfunc(math.erfc, 1, 1)


def ulp_error(y, truth):
    """|y - truth| in bf16 ulps at truth; an infinite y counts as 2**128 (the next grid point),
    and exact when truth rounds to the same infinity."""
    t = np.asarray(truth, np.float64)
    y = np.asarray(y, np.float64)
    both_inf = np.isinf(y) & (y == bf16_round(t))
    y = np.where(np.isinf(y), np.copysign(2.0**128, y), y)
    _, e = np.frexp(np.where(np.isinf(t), 2.0**128, t))
    with np.errstate(invalid="ignore"):
        err = np.abs(y - t) / np.ldexp(1.0, np.maximum(e - 8, -133))
    return np.where(both_inf, 0.0, err)


def sigmoid64(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def gelu64(x):
    return 0.5 * x * _erfc64(-x / math.sqrt(2)).astype(np.float64)


def gelu_tanh64(x):
    return x * sigmoid64(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))


# name: (function, float64 truth, input domain, max ulp error asserted on that domain)
SWEEPS = {
    "exp": (bf16_exp, np.exp, FINITE, 1.0),
    "reciprocal": (bf16_reciprocal, lambda x: 1 / x, FINITE[FINITE != 0], 1.0),
    "rsqrt": (bf16_rsqrt, lambda x: 1 / np.sqrt(x), FINITE[FINITE > 0], 1.0),
    "sqrt": (bf16_sqrt, np.sqrt, FINITE[FINITE >= 0], 1.6),
    "tanh": (bf16_tanh, np.tanh, FINITE, 1.1),
    "erf": (bf16_erf, lambda x: _erf64(x).astype(np.float64), FINITE, 1.3),
    "sigmoid": (bf16_sigmoid, sigmoid64, FINITE, 2.3),
    "silu": (bf16_silu, lambda x: x * sigmoid64(x), FINITE[FINITE >= -87], 2.3),
    "hard_swish": (bf16_hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), FINITE, 2.2),
    "gelu": (bf16_gelu, gelu64, FINITE[FINITE >= -2], 7.0),
    "gelu_tanh": (lambda x: bf16_gelu(x, "tanh"), gelu_tanh64, FINITE[FINITE >= -2], 5.2),
}
# name: (function, truth, domain, max absolute error) where relative error means little
ABSOLUTE = {
    "silu x<-87": (bf16_silu, lambda x: x * sigmoid64(x), FINITE[FINITE < -87], 2.0**-125),
    "gelu x<-2": (bf16_gelu, gelu64, FINITE[FINITE < -2], 2.0**-10),
    "gelu_tanh x<-2": (lambda x: bf16_gelu(x, "tanh"), gelu_tanh64, FINITE[FINITE < -2], 2.0**-9),
}


def measured(name):
    f, truth, x, _ = SWEEPS[name]
    with np.errstate(all="ignore"):
        return ulp_error(f(x), truth(x.astype(np.float64))).max()


def measured_absolute(name):
    f, truth, x, _ = ABSOLUTE[name]
    with np.errstate(all="ignore"):
        return np.abs(f(x).astype(np.float64) - truth(x.astype(np.float64))).max()


@pytest.mark.parametrize("name", SWEEPS)
def test_exhaustive_sweep_within_documented_ulps(name):
    assert measured(name) <= SWEEPS[name][3]


@pytest.mark.parametrize("name", ABSOLUTE)
def test_exhaustive_sweep_within_documented_absolute_error(name):
    assert measured_absolute(name) <= ABSOLUTE[name][3]


def test_div_on_random_operands():
    rng = np.random.default_rng(0)
    a = bf16_round(rng.standard_normal(20000) * np.exp2(rng.integers(-60, 60, 20000)))
    b = bf16_round(rng.standard_normal(20000) * np.exp2(rng.integers(-60, 60, 20000)))
    assert ulp_error(bf16_div(a, b), a.astype(np.float64) / b).max() <= 2.0


def test_exact_cases():
    p2 = np.exp2(np.arange(-126, 127)).astype(np.float32)
    assert np.array_equal(bf16_reciprocal(p2), (1 / p2.astype(np.float64)).astype(np.float32))
    p4 = np.exp2(np.arange(-126, 127, 2)).astype(np.float32)
    assert np.array_equal(bf16_sqrt(p4), np.exp2(np.arange(-63, 64)).astype(np.float32))
    assert bf16_exp(0.0) == 1 and bf16_tanh(0.0) == 0 and bf16_erf(0.0) == 0
    assert bf16_sigmoid(0.0) == 0.5 and bf16_gelu(0.0) == 0 and bf16_hard_swish(-3.0) == 0


def bits(x):
    return [hex(int(b)) for b in np.atleast_1d(to_bf16(np.asarray(x, np.float32)))]


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-133, -(2.0**-133),
                     float.fromhex("0x1.fep127"), -float.fromhex("0x1.fep127")], np.float32)
EXPECTED_SPECIALS = {  # +0, -0, +inf, -inf, nan, tiny, -tiny, max, -max
    "exp": [1.0, 1.0, np.inf, 0.0, np.nan, 1.0, 1.0, np.inf, 0.0],
    "reciprocal": [np.inf, -np.inf, 0.0, -0.0, np.nan, np.inf, -np.inf, 2.0**-128, -(2.0**-128)],
    "rsqrt": [np.inf, -np.inf, 0.0, np.nan, np.nan, 2.0**66.5, np.nan, None, np.nan],
    "sqrt": [0.0, -0.0, np.inf, np.nan, np.nan, None, np.nan, None, np.nan],
    "tanh": [0.0, -0.0, 1.0, -1.0, np.nan, 2.0**-133, -(2.0**-133), 1.0, -1.0],
    "erf": [0.0, -0.0, 1.0, -1.0, np.nan, 2.0**-133, -(2.0**-133), 1.0, -1.0],
    "sigmoid": [0.5, 0.5, 1.0, 0.0, np.nan, 0.5, 0.5, 1.0, 0.0],
    "silu": [0.0, -0.0, np.inf, -0.0, np.nan, 2.0**-133 / 2, None, None, -0.0],
    "hard_swish": [0.0, -0.0, np.inf, -0.0, np.nan, None, None, None, -0.0],
    "gelu": [0.0, -0.0, np.inf, -0.0, np.nan, None, None, None, -0.0],
    "gelu_tanh": [0.0, -0.0, np.inf, -0.0, np.nan, None, None, None, -0.0],
}


@pytest.mark.parametrize("name", EXPECTED_SPECIALS)
def test_special_values(name):
    with np.errstate(all="ignore"):
        got = SWEEPS[name][0](SPECIALS)
    for x, y, want in zip(SPECIALS, got, EXPECTED_SPECIALS[name]):
        if want is None:
            continue
        want = bf16_round(np.float64(want))
        assert bits(y) == bits(want), f"{name}({x}) = {y}, expected {want}"


def test_scalars_and_shapes():
    assert np.shape(bf16_exp(1.0)) == ()
    assert bf16_tanh(np.zeros((2, 3), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match="not bf16 values"):
        bf16_exp(0.1)
    with pytest.raises(ValueError, match="approximate"):
        bf16_gelu(1.0, "fast")


rows = st.integers(1, 64).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-8, 8, width=32), min_size=n, max_size=n), st.floats(-30, 30, width=32)))


def softmax64(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_softmax_rows_within_documented_bound(row_and_shift):
    row, shift = row_and_shift
    x = bf16_round(np.array(row, np.float64) + shift)
    y = bf16_softmax(x)
    truth = softmax64(x.astype(np.float64))
    assert np.all(np.abs(y - truth) <= 2.0**-8 + 2.0**-5 * truth)
    assert abs(float(np.sum(y, dtype=np.float64)) - 1) <= 2.0**-5


def test_softmax_axis_and_specials():
    rng = np.random.default_rng(1)
    x = bf16_round(rng.standard_normal((3, 5, 4)) * 4)
    got = bf16_softmax(x, axis=1)
    assert np.array_equal(got, np.moveaxis(bf16_softmax(np.moveaxis(x, 1, -1)), -1, 1))
    assert np.array_equal(bf16_softmax(np.array([0.0, -np.inf], np.float32)), [1.0, 0.0])


def log_softmax64(x, axis=-1):
    d = x - x.max(axis=axis, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


@settings(max_examples=300, deadline=None)
@given(rows)
def test_log_softmax_rows_within_documented_bound(row_and_shift):
    row, shift = row_and_shift
    x = bf16_round(np.array(row, np.float64) + shift)
    y = bf16_log_softmax(x)
    truth = log_softmax64(x.astype(np.float64))
    assert np.all(np.abs(y - truth) <= 2.0**-6 * (1 + np.abs(truth)))


def test_log_softmax_axis_and_specials():
    rng = np.random.default_rng(2)
    x = bf16_round(rng.standard_normal((3, 5, 4)) * 4)
    got = bf16_log_softmax(x, axis=1)
    assert np.array_equal(got, np.moveaxis(bf16_log_softmax(np.moveaxis(x, 1, -1)), -1, 1))
    assert np.array_equal(bf16_log_softmax(np.array([0.0, -np.inf], np.float32)), [0.0, -np.inf])
    assert np.all(np.isnan(bf16_log_softmax(np.array([0.0, np.nan, 1.0], np.float32))))  # a NaN's row: NaN


@settings(max_examples=200, deadline=None)
@given(rows, st.floats(0.0625, 16, width=32))
def test_layer_norm_rows_within_documented_bound(row_and_shift, spread):
    row, shift = row_and_shift
    raw = np.array(row, np.float64)
    raw = (raw - raw.mean()) * spread
    x = bf16_round(raw + np.clip(shift, -4 * raw.std(), 4 * raw.std()))
    eps = float(bf16_round(1e-5))
    y = bf16_layer_norm(x, np.float32(1), np.float32(0), epsilon=1e-5)
    x64 = x.astype(np.float64)
    truth = (x64 - x64.mean()) / np.sqrt(x64.var() + eps)
    assert np.all(np.abs(y - truth) <= 2.0**-4 * (1 + np.abs(truth)))


def test_layer_norm_scale_bias_and_axes():
    rng = np.random.default_rng(2)
    x = bf16_round(rng.standard_normal((2, 3, 4)))
    g, b = bf16_round(rng.standard_normal((3, 4))), bf16_round(rng.standard_normal((3, 4)))
    y = bf16_layer_norm(x, g, b, axis=1)
    x64 = x.reshape(2, -1).astype(np.float64)
    z = ((x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5))
    truth = z.reshape(x.shape) * g + b
    assert y.shape == x.shape and np.all(np.abs(y - truth) <= 2.0**-5 * (1 + np.abs(truth)))


def sweep_digest(f):
    with np.errstate(all="ignore"):
        return hashlib.sha256(np.asarray(to_bf16(f(ALL))).tobytes()).hexdigest()[:16]


GOLDEN_DIGESTS = {  # sha256 prefixes of the output bit patterns over all 65536 inputs
    "exp": "8784f7bdd307b4e8",
    "reciprocal": "4cc3e0ce1384b626",
    "rsqrt": "3aacb56712b36265",
    "sqrt": "f153bf08045593ae",
    "tanh": "6aa652a7c4f53137",
    "erf": "74c02c6547b96451",
    "sigmoid": "e118d31e3614eb2c",
    "silu": "5e88c357a2a1f213",
    "hard_swish": "bb38b7a97f68a8a4",
    "gelu": "70242d9e9c2f15b8",
    "gelu_tanh": "974e2ad3a379a7ef",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_DIGESTS))
def test_bit_exact_golden_sweeps(name):
    """Every output of every unary function on all 65536 patterns is pinned: a change of
    semantics must update these digests on purpose (the simulator reproduces these bits)."""
    assert sweep_digest(SWEEPS[name][0]) == GOLDEN_DIGESTS[name]


def test_results_independent_of_float_error_state():
    with np.errstate(all="ignore"):
        a = [SWEEPS[n][0](FINITE[::97]) for n in SWEEPS]
    with np.errstate(all="warn"):
        b = [SWEEPS[n][0](FINITE[::97]) for n in SWEEPS]
    assert all(np.array_equal(to_bf16(p), to_bf16(q)) for p, q in zip(a, b))


def test_uses_no_library_transcendentals():
    source = inspect.getsource(bf16_math)
    banned = re.findall(r"\b(?:np|math)\.(?:exp\w*|log\w*|tanh|sinh|cosh|erf\w*|sqrt|power|"
                        r"divide|true_divide|reciprocal|float_power)\b", source)
    assert banned == []


def error_table():
    lines = [f"{name:<16}{measured(name):6.2f} ulp  (asserted <= {SWEEPS[name][3]})"
             for name in SWEEPS]
    lines += [f"{name:<16}{measured_absolute(name):.3g} abs  (asserted <= {ABSOLUTE[name][3]:.3g})"
              for name in ABSOLUTE]
    return "\n".join(lines)


if __name__ == "__main__":
    print(error_table())
    print({name: sweep_digest(SWEEPS[name][0]) for name in SWEEPS})
