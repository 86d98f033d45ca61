"""Convolution and matrix-product kernels against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from interpreter_oracle import check_against_ort, rand
from tcc.ir.interpreter import kernels_conv

# (x shape, w shape, strides, pads, dilations, group, with bias)
CONV_CASES = {
    "3x3_same": ((1, 8, 10, 10), (16, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    "1x1": ((2, 16, 7, 7), (8, 16, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),
    "1x1_stride2": ((1, 16, 9, 9), (8, 16, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, False),
    "7x7_stride2": ((1, 3, 32, 32), (8, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, True),
    "asymmetric_pads": ((1, 4, 9, 11), (6, 4, 3, 2), (2, 1), (0, 1, 2, 0), (1, 1), 1, True),
    "dilated": ((1, 4, 15, 15), (5, 4, 3, 3), (1, 1), (2, 2, 2, 2), (2, 3), 1, False),
    "grouped": ((2, 12, 8, 8), (9, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, True),
    "depthwise": ((1, 16, 12, 12), (16, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16, True),
    "depthwise_multiplier": ((1, 4, 8, 8), (8, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 4, False),
    "conv1d": ((2, 3, 20), (4, 3, 5), (3,), (2, 1), (2,), 1, True),
    "conv3d": ((1, 2, 6, 7, 5), (3, 2, 3, 2, 3), (1, 2, 1), (1, 0, 1, 1, 1, 0), (1, 1, 2), 1, True),
    "wide_k": ((1, 64, 14, 14), (32, 64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv(case):
    xs, ws, strides, pads, dilations, group, bias = case
    rng = np.random.default_rng(0)
    arrays = [rand(rng, *xs), rand(rng, *ws)] + ([rand(rng, ws[0])] if bias else [])
    attrs = dict(strides=strides, pads=pads, dilations=dilations, group=group)
    node = helper.make_node("Conv", [f"x{i}" for i in range(len(arrays))], ["y0"], kernel_shape=ws[2:], **attrs)
    check_against_ort("conv", attrs, arrays, node)


# (x shape, w shape, strides, pads, dilations, group, output_padding, with bias)
CONV_TRANSPOSE_CASES = {
    "stride2_k4": ((1, 8, 5, 5), (8, 4, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, (0, 0), True),
    "stride2_output_padding": ((1, 6, 4, 5), (6, 3, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, (1, 1), True),
    "grouped": ((2, 6, 4, 4), (6, 2, 3, 3), (2, 1), (0, 1, 1, 0), (1, 1), 3, (1, 0), False),
    "depthwise": ((1, 4, 6, 6), (4, 1, 2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 4, (0, 0), True),
    "dilated": ((1, 3, 5, 5), (3, 2, 3, 3), (1, 1), (2, 2, 1, 1), (2, 2), 1, (0, 0), True),
    "stride3_asymmetric": ((1, 2, 3, 4), (2, 5, 3, 2), (3, 2), (0, 1, 2, 0), (1, 1), 1, (2, 1), True),
    "conv1d": ((1, 4, 7), (4, 3, 3), (2,), (1, 0), (1,), 1, (1,), True),
}


@pytest.mark.parametrize("case", CONV_TRANSPOSE_CASES.values(), ids=CONV_TRANSPOSE_CASES.keys())
def test_conv_transpose(case):
    xs, ws, strides, pads, dilations, group, output_padding, bias = case
    rng = np.random.default_rng(1)
    arrays = [rand(rng, *xs), rand(rng, *ws)] + ([rand(rng, ws[1] * group)] if bias else [])
    attrs = dict(strides=strides, pads=pads, dilations=dilations, group=group, output_padding=output_padding)
    node = helper.make_node("ConvTranspose", [f"x{i}" for i in range(len(arrays))], ["y0"],
                            kernel_shape=ws[2:], **attrs)
    check_against_ort("conv_transpose", attrs, arrays, node)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((4, 5), (5, 3)), ((2, 3, 4, 5), (5, 6)), ((7,), (7, 3)), ((3, 7), (7,)), ((2, 1, 4, 5), (3, 5, 2)),
    ((5,), (5,)),
])
def test_matmul(a_shape, b_shape):
    rng = np.random.default_rng(2)
    arrays = [rand(rng, *a_shape), rand(rng, *b_shape)]
    check_against_ort("matmul", {}, arrays, helper.make_node("MatMul", ["x0", "x1"], ["y0"]))


@pytest.mark.parametrize("x_shape,bias", [((4, 16), True), ((1, 2048), True), ((3, 16), False)])
def test_linear_is_gemm_with_transposed_weight(x_shape, bias):
    rng = np.random.default_rng(3)
    arrays = [rand(rng, *x_shape), rand(rng, 10, x_shape[-1])] + ([rand(rng, 10)] if bias else [])
    node = helper.make_node("Gemm", [f"x{i}" for i in range(len(arrays))], ["y0"], transB=1)
    check_against_ort("linear", {}, arrays, node)


def test_linear_with_leading_dims_is_matmul_by_transpose_plus_bias():
    rng = np.random.default_rng(4)
    arrays = [rand(rng, 2, 3, 8), rand(rng, 5, 8), rand(rng, 5)]
    nodes = [helper.make_node("Transpose", ["x1"], ["wt"]), helper.make_node("MatMul", ["x0", "wt"], ["xw"]),
             helper.make_node("Add", ["xw", "x2"], ["y0"])]
    check_against_ort("linear", {}, arrays, nodes)


@pytest.mark.parametrize("case", ["7x7_stride2", "dilated", "grouped", "conv3d"])
def test_conv_in_row_blocks_when_patches_are_large(case, monkeypatch):
    monkeypatch.setattr(kernels_conv, "IM2COL_MAX_ELEMENTS", 500)
    test_conv(CONV_CASES[case])
