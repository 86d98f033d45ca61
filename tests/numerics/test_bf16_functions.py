"""The vector unit's bf16 functions against float32: the error table of docs/overlay-machine.md is
measured here over every finite bf16 input and must hold; RMSNorm and LRN on random rows; the
lane operations' own rules (window sum of squares order, integer conversion)."""
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tcc.ir import numerics
from tcc.ir.interpreter.kernels_norm import lrn as lrn_float
from tcc.ir.numerics import bf16_functions as spec
from tcc.ir.numerics import bf16_lanes, from_bf16

DOC = Path(__file__).resolve().parents[2] / "docs" / "overlay-machine.md"
ALL = from_bf16(np.arange(65536))
FINITE = ALL[np.isfinite(ALL)]
_erf = np.vectorize(lambda v: np.float32(math.erf(float(v))), otypes=[np.float32])
F32 = np.float32


def sigmoid32(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, F32(1) / (F32(1) + np.exp(-x)), np.exp(x) / (F32(1) + np.exp(x))).astype(F32)


def gelu32(x):
    return (F32(0.5) * x * (F32(1) + _erf(x / F32(math.sqrt(2))))).astype(F32)


def gelu_tanh32(x):
    return (F32(0.5) * x * (F32(1) + np.tanh(F32(math.sqrt(2 / math.pi)) * (x + F32(0.044715) * x**3)))).astype(F32)


# name: (bf16 function, float32 function, domain); the bounds are docs/overlay-machine.md's table
FUNCTIONS = {
    "exp": (numerics.bf16_exp, np.exp, FINITE),
    "reciprocal": (numerics.bf16_reciprocal, lambda x: F32(1) / x, FINITE[FINITE != 0]),
    "rsqrt": (numerics.bf16_rsqrt, lambda x: F32(1) / np.sqrt(x), FINITE[FINITE > 0]),
    "sqrt": (numerics.bf16_sqrt, np.sqrt, FINITE[FINITE >= 0]),
    "tanh": (numerics.bf16_tanh, np.tanh, FINITE),
    "erf": (numerics.bf16_erf, _erf, FINITE),
    "sigmoid": (numerics.bf16_sigmoid, sigmoid32, FINITE),
    "silu": (numerics.bf16_silu, lambda x: x * sigmoid32(x), FINITE[FINITE >= -87]),
    "hard_swish": (numerics.bf16_hard_swish, lambda x: x * np.clip(x / F32(6) + F32(0.5), 0, 1), FINITE),
    "gelu": (numerics.bf16_gelu, gelu32, FINITE[FINITE >= -2]),
    "gelu_tanh": (lambda x: numerics.bf16_gelu(x, "tanh"), gelu_tanh32, FINITE[FINITE >= -2]),
}


def documented() -> dict[str, tuple[float, float]]:
    rows = re.findall(r"^\| (\w+) \| [^|]+ \| ([\d.]+) \| ([\d.e+-]+) \|$", DOC.read_text(), re.M)
    return {name: (float(ulp), float(rel)) for name, ulp, rel in rows}


def measure(name: str) -> tuple[float, float]:
    """(max ulp, max relative error) of the bf16 function against float32 on its domain."""
    f, g, x = FUNCTIONS[name]
    with np.errstate(all="ignore"):
        y = np.asarray(f(x), np.float64)
        t = np.asarray(g(x.astype(F32)), F32).astype(np.float64)
        both_inf = np.isinf(y) & (y == numerics.bf16_round(t))
        _, e = np.frexp(np.where(np.isinf(t), 2.0**128, t))
        ulp = np.abs(np.where(np.isinf(y), np.copysign(2.0**128, y), y) - t) / np.ldexp(1.0, np.maximum(e - 8, -133))
        ulp = np.where(both_inf, 0.0, ulp)
        normal = np.isfinite(t) & (np.abs(t) >= 2.0**-126)
        rel = np.abs(y - t)[normal] / np.abs(t[normal])
    return float(np.max(ulp)), float(np.max(rel))


def test_the_documented_table_lists_every_function():
    assert set(documented()) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_error_against_float32_within_the_documented_bound(name):
    ulp, rel = measure(name)
    doc_ulp, doc_rel = documented()[name]
    # the table gives the measured values rounded to its digits
    assert ulp <= doc_ulp + 0.005 and rel <= doc_rel * 1.005, (ulp, rel)


def test_rms_norm_rows_against_float32():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 65))
        x = numerics.bf16_round(rng.standard_normal((8, n)) * np.exp(rng.uniform(-3, 3)))
        g = numerics.bf16_round(rng.standard_normal(n))
        y = numerics.bf16_rms_norm(x, g, epsilon=1e-6).astype(np.float64)
        x32 = x.astype(F32)
        truth = (x32 / np.sqrt((x32 * x32).mean(-1, keepdims=True) + F32(1e-6)) * g).astype(np.float64)
        assert np.all(np.abs(y - truth) <= 2.0**-6 * (1 + np.abs(truth)))


def test_lrn_against_float32():
    rng = np.random.default_rng(1)
    for _ in range(60):
        x = numerics.bf16_round(rng.standard_normal((1, int(rng.integers(2, 20)), 4, 4)) * np.exp(rng.uniform(-2, 5)))
        attrs = {"size": int(rng.integers(1, 6)), "alpha": float(rng.choice([1e-4, 1e-3, 1e-2])),
                 "beta": float(rng.choice([0.5, 0.75, 1.0])), "bias": float(rng.choice([1.0, 2.0]))}
        y = numerics.bf16_lrn(x, **attrs).astype(np.float64)
        truth = lrn_float(attrs, x.astype(F32)).astype(np.float64)
        assert np.all(np.abs(y - truth) <= 2.0**-4 * np.abs(truth))


def test_lrn_beta_three_quarters_against_float32():
    """The beta = 0.75 sequence (pow_minus_three_quarters) over wide ranges of inputs and attributes."""
    rng = np.random.default_rng(2)
    for _ in range(200):
        x = numerics.bf16_round(rng.standard_normal((1, int(rng.integers(2, 20)), 4, 4)) * np.exp(rng.uniform(-2, 8)))
        attrs = {"size": int(rng.integers(1, 6)), "alpha": float(rng.choice([1e-4, 5e-4, 1e-2, 1.0])),
                 "beta": 0.75, "bias": float(rng.choice([1.0, 2.0, 1e-3]))}
        y = numerics.bf16_lrn(x, **attrs).astype(np.float64)
        truth = lrn_float(attrs, x.astype(F32)).astype(np.float64)
        assert np.all(np.abs(y - truth) <= 2.0**-5.5 * np.abs(truth))


def test_pow_minus_three_quarters_on_every_bf16_base():
    base = FINITE[FINITE >= 2.0**-120]
    patterns = (base.astype(F32).view(np.uint32) >> 16).astype(np.uint16)
    with np.errstate(all="ignore"):
        y = from_bf16(spec.pow_minus_three_quarters(bf16_lanes.NumpyLanes, patterns)).astype(np.float64)
        special = from_bf16(spec.pow_minus_three_quarters(bf16_lanes.NumpyLanes, np.array([0x7F80, 0x7FC0], np.uint16)))
    truth = (base.astype(F32) ** F32(-0.75)).astype(np.float64)
    _, e = np.frexp(truth)
    assert np.max(np.abs(y - truth) / np.ldexp(1.0, e - 8)) <= 1.63  # ulp, docs/overlay-machine.md
    assert np.max(np.abs(y - truth) / truth) <= 8.8e-3
    assert special[0] == from_bf16(spec.pow_minus_three_quarters(bf16_lanes.NumpyLanes, np.uint16(0x7F7F)))
    assert np.isnan(special[1])


def test_window_sum_squares_adds_rows_below_then_rows_above_rounding_each_add():
    L = bf16_lanes.NumpyLanes
    column = numerics.to_bf16(np.array([[16.0], [1.0], [1.0], [0.5]], np.float32)).astype(np.uint16)
    got = from_bf16(L.window_sum_squares(column, 1, 1)).reshape(-1).tolist()
    # squares 256, 1, 1, 0.25; row 0: 256 + 1 = 257 -> 256 (tie to even); row 1: (1 + 1) + 256 = 258;
    # row 2: (1 + 0.25) + 1; row 3: 0.25 + 1
    assert got == [256.0, 258.0, 2.25, 1.25]


def test_ftoi_saturates_and_maps_nan_to_zero():
    L = bf16_lanes.NumpyLanes
    x = numerics.to_bf16(np.array([2.5, -3.5, 1e6, -1e6, np.nan], np.float32)).astype(np.uint16)
    assert L.ftoi(x).view(np.int16).tolist() == [2, -4, 32767, -32768, 0]


def test_rsqrt_normal_equals_rsqrt_where_it_applies():
    """LayerNorm's rsqrt of var + eps skips the zero, negative and subnormal cases: on every
    positive normal pattern, +inf and every NaN it must give the general sequence's bits."""
    v = np.arange(65536, dtype=np.uint16)
    applies = ((v >= 0x0080) & (v <= 0x7F80)) | ((v & 0x7FFF) > 0x7F80)
    with np.errstate(all="ignore"):
        general, normal = spec.rsqrt(bf16_lanes.NumpyLanes, v), spec.rsqrt_normal(bf16_lanes.NumpyLanes, v)
    assert applies.sum() > 32000
    np.testing.assert_array_equal(normal[applies], general[applies])
    assert not np.array_equal(normal, general)  # outside it (0, negatives, subnormals) they differ


def test_exp_nonpositive_equals_exp_on_its_domain():
    """softmax's, sigmoid's and erfc's exp of x - max, -|x|, -(a a): without the overflow branch,
    the clamp selects and _scale's two multiplies it must give exp's bits on every bf16 pattern
    <= 0 (both zeros, -inf) and every NaN."""
    v = np.arange(65536, dtype=np.uint16)
    applies = (v >= 0x8000) | (v == 0) | ((v & 0x7FFF) > 0x7F80)
    with np.errstate(all="ignore"):
        general, short = spec.exp(bf16_lanes.NumpyLanes, v), spec.exp_nonpositive(bf16_lanes.NumpyLanes, v)
    assert applies.sum() == 32768 + 1 + 127
    np.testing.assert_array_equal(short[applies], general[applies])
    assert not np.array_equal(short, general)  # above zero it clamps nothing and overflows wrongly


def test_reciprocal_at_least_one_equals_reciprocal_on_its_domain():
    """softmax's 1 / row sum and sigmoid's 1 / (1 + e): on every pattern in [1, 2^126) and every NaN
    the short sequence gives reciprocal's bits."""
    v = np.arange(65536, dtype=np.uint16)
    applies = ((v >= 0x3F80) & (v < 0x7E80)) | ((v & 0x7FFF) > 0x7F80)
    with np.errstate(all="ignore"):
        general = spec.reciprocal(bf16_lanes.NumpyLanes, v)
        short = spec.reciprocal_at_least_one(bf16_lanes.NumpyLanes, v)
    assert applies.sum() == 126 * 128 + 2 * 127  # exponents 2^0 .. 2^125, and the NaNs
    np.testing.assert_array_equal(short[applies], general[applies])
    assert not np.array_equal(short, general)


def test_softmax_records_the_short_sequences():
    """The short exp and reciprocal are what softmax records (instructions over the full tile,
    the row reductions included, and over one value per row)."""
    from tcc.backends.overlay.vector_program import FULL, ROW, Recorder

    def count(build):
        recorder = Recorder()
        build(recorder, recorder.input(FULL))
        return sum(ins.space == FULL for ins in recorder.code), sum(ins.space == ROW for ins in recorder.code)

    assert count(lambda L, x: spec.exp(L, x)) == (35, 0)
    assert count(lambda L, x: spec.exp_nonpositive(L, x)) == (20, 0)
    assert count(spec.softmax) == (2 + 20 + 2, 12)  # row max and sum, sub, exp, mul; the reciprocal
