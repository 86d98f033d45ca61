"""Element-wise kernels against onnxruntime."""
import math

import numpy as np
import pytest
from onnx import helper

from interpreter_oracle import check_against_ort, rand
from tcc.ir.interpreter.kernels_elementwise import erf

BINARIES = [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"), ("pow", "Pow"), ("max", "Max"),
            ("min", "Min")]
BROADCASTS = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((1, 3, 1), (2, 1, 5)), ((), (3, 2)), ((5, 1), ())]


@pytest.mark.parametrize("shapes", BROADCASTS)
@pytest.mark.parametrize("kind,onnx_op", BINARIES)
def test_binary_f32(kind, onnx_op, shapes):
    rng = np.random.default_rng(0)
    a, b = rand(rng, *shapes[0]), rand(rng, *shapes[1])
    if kind == "pow":
        a = np.asarray(np.abs(a) + 0.5)
    if kind == "div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    check_against_ort(kind, {}, [a, b], helper.make_node(onnx_op, ["x0", "x1"], ["y0"]))


@pytest.mark.parametrize("kind,onnx_op", [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"),
                                          ("max", "Max"), ("min", "Min")])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_binary_int(kind, onnx_op, dtype):
    rng = np.random.default_rng(1)
    a = rng.integers(-50, 50, (4, 6)).astype(dtype)
    b = rng.integers(1, 9, (6,)).astype(dtype) * rng.choice([-1, 1], 6).astype(dtype)
    check_against_ort(kind, {}, [a, b], helper.make_node(onnx_op, ["x0", "x1"], ["y0"]), exact=True)


UNARIES = [("relu", "Relu", {}), ("sigmoid", "Sigmoid", {}), ("tanh", "Tanh", {}), ("erf", "Erf", {}),
           ("sqrt", "Sqrt", {}), ("exp", "Exp", {}), ("neg", "Neg", {}), ("abs", "Abs", {}),
           ("reciprocal", "Reciprocal", {}), ("hard_swish", "HardSwish", {}),
           ("leaky_relu", "LeakyRelu", {"alpha": 0.1}), ("hard_sigmoid", "HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
           ("gelu", "Gelu", {"approximate": "none"}), ("gelu", "Gelu", {"approximate": "tanh"})]


@pytest.mark.parametrize("kind,onnx_op,attrs", UNARIES, ids=[f"{u[0]}{u[2]}" for u in UNARIES])
def test_unary(kind, onnx_op, attrs):
    x = rand(np.random.default_rng(2), 3, 50) * 4
    if kind == "sqrt":
        x = np.abs(x)
    if kind == "reciprocal":
        x = np.where(np.abs(x) < 0.2, 0.5, x).astype(np.float32)
    if kind == "sigmoid":
        x = np.concatenate([x, np.array([[-120.0, 120.0] * 25], np.float32)])  # exp overflows, result must not
    check_against_ort(kind, attrs, [x], helper.make_node(onnx_op, ["x0"], ["y0"], **attrs))


@pytest.mark.parametrize("low,high", [(0.0, 6.0), (-1.0, float("inf")), (float("-inf"), 0.5)])
def test_clip(low, high):
    x = rand(np.random.default_rng(3), 4, 9) * 5
    node = helper.make_node("Clip", ["x0", "low", "high"], ["y0"])
    initializers = {"low": np.array(low, np.float32), "high": np.array(high, np.float32)}
    check_against_ort("clip", {"min": low, "max": high}, [x], node, initializers, exact=True)


def test_erf_matches_math_erf_to_float64_precision():
    z = np.linspace(-7, 7, 20001)
    expected = np.array([math.erf(v) for v in z])
    assert np.abs(erf(z) - expected).max() < 1e-8
    assert erf(np.float32([0.5])).dtype == np.float32
