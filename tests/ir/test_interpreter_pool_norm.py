"""Pooling, normalization, softmax and reduction kernels against onnxruntime."""
import math

import numpy as np
import pytest
from onnx import helper

from interpreter_oracle import check_against_ort, one_op_module, rand
from tcc.ir.interpreter import run_module

# (x shape, kernel, strides, pads, dilations, ceil_mode)
POOL_CASES = {
    "2x2_stride2": ((1, 3, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    "3x3_stride2_pad1": ((2, 4, 11, 11), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),
    "ceil_mode": ((1, 2, 10, 9), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    "ceil_mode_padded": ((1, 2, 7, 8), (3, 2), (2, 3), (1, 0, 1, 1), (1, 1), 1),
    "asymmetric_pads": ((1, 3, 9, 7), (3, 3), (1, 2), (0, 2, 1, 0), (1, 1), 0),
    "dilated": ((1, 2, 12, 12), (3, 2), (1, 2), (1, 1, 1, 1), (2, 3), 0),
    "dilated_ceil": ((1, 2, 11, 10), (2, 2), (2, 2), (0, 0, 0, 0), (2, 2), 1),
    "pool1d": ((2, 3, 15), (4,), (3,), (1, 2), (1,), 1),
    "pool3d": ((1, 2, 5, 6, 7), (2, 3, 2), (2, 1, 2), (0, 1, 1, 1, 1, 0), (1, 1, 1), 0),
}


def _pool_attrs(case):
    _, kernel, strides, pads, dilations, ceil_mode = case
    return dict(kernel=kernel, strides=strides, pads=pads, dilations=dilations, ceil_mode=ceil_mode)


def _onnx_pool_attrs(attrs):
    onnx_attrs = dict(attrs, kernel_shape=attrs["kernel"])
    del onnx_attrs["kernel"]
    return onnx_attrs


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_max_pool(case):
    x = rand(np.random.default_rng(0), *case[0]) - 3.0  # all-negative data: padding must never win
    attrs = _pool_attrs(case)
    node = helper.make_node("MaxPool", ["x0"], ["y0"], **_onnx_pool_attrs(attrs))
    check_against_ort("max_pool", attrs, [x], node, exact=True)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_avg_pool(case, count_include_pad):
    x = rand(np.random.default_rng(1), *case[0])
    attrs = dict(_pool_attrs(case), count_include_pad=count_include_pad)
    node = helper.make_node("AveragePool", ["x0"], ["y0"], **_onnx_pool_attrs(attrs))
    check_against_ort("avg_pool", attrs, [x], node)


@pytest.mark.parametrize("shape", [(2, 8, 7, 7), (1, 3, 5), (1, 2, 3, 4, 5)])
def test_global_avg_pool(shape):
    x = rand(np.random.default_rng(2), *shape)
    check_against_ort("global_avg_pool", {}, [x], helper.make_node("GlobalAveragePool", ["x0"], ["y0"]))


@pytest.mark.parametrize("shape", [(2, 6, 5, 5), (1, 4, 3)])
def test_batch_norm(shape):
    rng = np.random.default_rng(3)
    c = shape[1]
    arrays = [rand(rng, *shape), rand(rng, c), rand(rng, c), rand(rng, c), np.abs(rand(rng, c)) + 0.1]
    node = helper.make_node("BatchNormalization", [f"x{i}" for i in range(5)], ["y0"], epsilon=1e-3)
    check_against_ort("batch_norm", {"epsilon": 1e-3}, arrays, node)


@pytest.mark.parametrize("axis,bias", [(-1, True), (1, True), (2, False)])
def test_layer_norm(axis, bias):
    rng = np.random.default_rng(4)
    shape = (2, 3, 16)
    norm_shape = shape[axis:]
    arrays = [rand(rng, *shape) * 3 + 1, rand(rng, *norm_shape)] + ([rand(rng, *norm_shape)] if bias else [])
    node = helper.make_node("LayerNormalization", [f"x{i}" for i in range(len(arrays))], ["y0"], axis=axis,
                            epsilon=1e-5)
    check_against_ort("layer_norm", {"axis": axis, "epsilon": 1e-5}, arrays, node)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size):
    x = rand(np.random.default_rng(5), 2, 7, 4, 4) * 5
    attrs = dict(size=size, alpha=2e-2, beta=0.75, bias=2.0)
    check_against_ort("lrn", attrs, [x], helper.make_node("LRN", ["x0"], ["y0"], **attrs))


def test_lrn_even_size_follows_the_onnx_formula():
    # onnxruntime rejects even sizes (and onnx.reference loops over the wrong dim), so spell out the spec:
    # square_sum[c] sums x^2 over channels max(0, c - floor((size-1)/2)) .. min(C-1, c + ceil((size-1)/2)).
    x = rand(np.random.default_rng(5), 2, 6, 3, 3) * 5
    size, alpha, beta, bias = 4, 2e-2, 0.75, 2.0
    square_sum = np.zeros_like(x)
    for c in range(x.shape[1]):
        low, high = max(0, c - math.floor((size - 1) / 2)), min(x.shape[1] - 1, c + math.ceil((size - 1) / 2))
        square_sum[:, c] = (x[:, low:high + 1] ** 2).sum(axis=1)
    expected = x / (bias + alpha / size * square_sum) ** beta
    attrs = dict(size=size, alpha=alpha, beta=beta, bias=bias)
    ours = run_module(one_op_module("lrn", attrs, [x]), {"x0": x})["y0"]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(axis):
    x = rand(np.random.default_rng(6), 3, 4, 10) * 30  # large logits: only a stable softmax survives
    check_against_ort("softmax", {"axis": axis}, [x], helper.make_node("Softmax", ["x0"], ["y0"], axis=axis))


@pytest.mark.parametrize("kind,onnx_op", [("reduce_mean", "ReduceMean"), ("reduce_sum", "ReduceSum"),
                                          ("reduce_max", "ReduceMax")])
@pytest.mark.parametrize("axes,keepdims", [((1,), 1), ((-1, 0), 0), ((0, 1, 2), 0), ((2,), 1)])
def test_reductions(kind, onnx_op, axes, keepdims):
    x = rand(np.random.default_rng(7), 3, 4, 5)
    node = helper.make_node(onnx_op, ["x0", "axes"], ["y0"], keepdims=keepdims)
    check_against_ort(kind, {"axes": axes, "keepdims": keepdims}, [x], node,
                      {"axes": np.array(axes, np.int64)}, exact=kind == "reduce_max")
