"""Convolution, Gemm/MatMul, normalization, pooling and reduction ONNX ops against onnxruntime."""
import numpy as np
import pytest

from onnx_case import C, X, assert_matches_onnxruntime, case, rand

W = rand(4, 3, 3, 3, seed=1)
B = rand(4, seed=2)

CONV = [
    case("Conv", X(1, 3, 8, 8), C(W), C(B), opset=7, id="Conv7-bias"),
    case("Conv", X(2, 3, 8, 8), C(W), opset=11, id="Conv11-no-bias"),
    case("Conv", X(1, 3, 9, 9), C(W), C(B), strides=[2, 2], pads=[1, 0, 2, 1], id="Conv-stride-asym-pads"),
    case("Conv", X(1, 3, 11, 11), C(W), dilations=[2, 3], id="Conv-dilation"),
    case("Conv", X(1, 4, 7, 7), C(rand(6, 2, 3, 3)), C(rand(6)), group=2, id="Conv-group2"),
    case("Conv", X(1, 4, 7, 7), C(rand(4, 1, 3, 3)), group=4, pads=[1, 1, 1, 1], id="Conv-depthwise"),
    case("Conv", X(1, 3, 9, 10), C(W), strides=[2, 2], auto_pad="SAME_UPPER", id="Conv-same-upper"),
    case("Conv", X(1, 3, 9, 10), C(W), strides=[2, 3], auto_pad="SAME_LOWER", id="Conv-same-lower"),
    case("Conv", X(1, 3, 9, 10), C(W), auto_pad="VALID", id="Conv-valid"),
    case("Conv", X(1, 3, 12), C(rand(5, 3, 4)), strides=[3], pads=[1, 2], id="Conv-1d"),
    case("Conv", X(1, 3, 8, 8), X(4, 3, 3, 3), kernel_shape=[3, 3], id="Conv-runtime-weight"),
]

CONV_TRANSPOSE = [
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), C(B), opset=7, id="ConvT-basic"),
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), strides=[2, 2], output_padding=[1, 1],
         id="ConvT-stride-outpad"),
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), strides=[2, 2], pads=[1, 1, 0, 2], id="ConvT-pads"),
    case("ConvTranspose", X(1, 4, 5, 5), C(rand(4, 3, 3, 3)), group=2, dilations=[2, 1], id="ConvT-group-dilation"),
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), strides=[2, 2], output_shape=[10, 11],
         id="ConvT-output-shape"),
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), strides=[2, 2], auto_pad="SAME_UPPER",
         id="ConvT-same-upper"),
    case("ConvTranspose", X(1, 3, 5, 5), C(rand(3, 4, 3, 3)), strides=[2, 2], auto_pad="SAME_LOWER",
         id="ConvT-same-lower"),
]

GEMM = [
    case("Gemm", X(2, 5), C(rand(5, 4)), C(rand(4)), opset=7, id="Gemm7-constB-bias"),
    case("Gemm", X(2, 5), C(rand(4, 5)), C(rand(1, 4)), transB=1, alpha=0.5, beta=2.0, id="Gemm-transB-alpha-beta"),
    case("Gemm", X(5, 2), C(rand(5, 4)), C(np.float32(0.3)), transA=1, id="Gemm-transA-scalar-c"),
    case("Gemm", X(3, 5), C(rand(5, 4)), C(rand(3, 4)), beta=0.5, id="Gemm-full-c"),
    case("Gemm", X(3, 5), C(rand(5, 4)), C(rand(3, 1)), id="Gemm-column-c"),
    case("Gemm", X(3, 5), C(rand(5, 4)), opset=11, id="Gemm11-no-c"),
    case("Gemm", X(3, 5), X(4, 5), X(4), transB=1, alpha=2.0, id="Gemm-runtime-b"),
    case("Gemm", X(5, 3), X(5, 4), X(3, 4), transA=1, beta=0.25, opset=9, id="Gemm9-runtime-all"),
    case("Gemm", X(3, 5), X(5, 4), C(rand(4)), beta=3.0, id="Gemm-runtime-b-const-c"),
    case("Gemm", X(3, 5), C(rand(5, 4)), C(rand(4)), beta=0.0, id="Gemm-beta0"),
]

MATMUL = [
    case("MatMul", X(3, 5), X(5, 4), id="MatMul-2d"),
    case("MatMul", X(2, 3, 5), C(rand(5, 4)), id="MatMul-batched-const"),
    case("MatMul", X(2, 1, 3, 5), X(4, 5, 2), id="MatMul-broadcast-batch"),
    case("MatMul", X(5), X(2, 5, 3), id="MatMul-vector-left"),
    case("MatMul", X(2, 3, 5), X(5), opset=9, id="MatMul-vector-right"),
]

NORM = [
    case("BatchNormalization", X(2, 3, 4, 4), C(rand(3)), C(rand(3)), C(rand(3)), C(rand(3, positive=True)),
         opset=7, id="BN7"),
    case("BatchNormalization", X(2, 3, 4), C(rand(3)), C(rand(3)), C(rand(3)), C(rand(3, positive=True)),
         epsilon=1e-3, opset=9, id="BN9-rank3-eps"),
    case("BatchNormalization", X(2, 3, 4, 4), C(rand(3)), C(rand(3)), C(rand(3)), C(rand(3, positive=True)),
         opset=14, id="BN14"),
    case("BatchNormalization", X(2, 3, 4, 4), C(rand(3)), C(rand(3)), C(rand(3)), C(rand(3, positive=True)),
         training_mode=0, opset=15, id="BN15"),
    case("LayerNormalization", X(2, 3, 8), C(rand(8)), C(rand(8)), opset=17, id="LN-last"),
    case("LayerNormalization", X(2, 3, 8), C(rand(3, 8)), axis=1, epsilon=1e-3, opset=17, id="LN-axis1-no-bias"),
    case("LRN", X(1, 6, 4, 4), size=3, opset=7, id="LRN-3"),
    case("LRN", X(1, 6, 4, 4), size=5, alpha=1e-3, beta=0.5, bias=2.0, opset=13, id="LRN-5"),
]

POOL = [
    case("MaxPool", X(1, 2, 8, 8), kernel_shape=[2, 2], strides=[2, 2], opset=7, id="MaxPool7"),
    case("MaxPool", X(1, 2, 9, 9), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], opset=12),
    case("MaxPool", X(1, 2, 8, 8), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, opset=10, id="MaxPool-ceil"),
    case("MaxPool", X(1, 2, 9, 9), kernel_shape=[2, 2], dilations=[2, 2], opset=12, id="MaxPool-dilation"),
    case("MaxPool", X(1, 2, 9, 10), kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER", id="MaxPool-same"),
    case("MaxPool", X(1, 2, 10), kernel_shape=[3], strides=[2], opset=11, id="MaxPool-1d"),
    case("MaxPool", X(1, 2, 8, 8), kernel_shape=[2, 2], opset=8, outputs=1, storage_order=0, id="MaxPool8"),
    case("AveragePool", X(1, 2, 8, 8), kernel_shape=[2, 2], strides=[2, 2], opset=7, id="AvgPool7"),
    case("AveragePool", X(1, 2, 7, 7), kernel_shape=[3, 3], pads=[1, 1, 1, 1], id="AvgPool-pads-exclude"),
    case("AveragePool", X(1, 2, 7, 7), kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1,
         id="AvgPool-pads-include"),
    case("AveragePool", X(1, 2, 8, 8), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, opset=10, id="AvgPool-ceil"),
    case("AveragePool", X(1, 2, 9, 10), kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER",
         id="AvgPool-same-lower"),
    case("AveragePool", X(1, 2, 9, 9), kernel_shape=[2, 2], dilations=[2, 2], opset=19, id="AvgPool19-dilation"),
    case("GlobalAveragePool", X(2, 3, 5, 4), opset=7),
    case("GlobalAveragePool", X(2, 3, 5), opset=13, id="GlobalAveragePool-1d"),
    case("GlobalMaxPool", X(2, 3, 5, 4), opset=13),
]

REDUCE = [
    case("ReduceMean", X(2, 3, 4), axes=[1], opset=13, id="ReduceMean13-attr"),
    case("ReduceMean", X(2, 3, 4), axes=[-1, 0], keepdims=0, opset=11, id="ReduceMean11-neg-nokeep"),
    case("ReduceMean", X(2, 3, 4), opset=13, id="ReduceMean13-all"),
    case("ReduceMean", X(2, 3, 4), C(np.array([2], np.int64)), opset=18, id="ReduceMean18-input"),
    case("ReduceSum", X(2, 3, 4), axes=[1, 2], opset=11, id="ReduceSum11-attr"),
    case("ReduceSum", X(2, 3, 4), C(np.array([-2], np.int64)), keepdims=0, opset=13, id="ReduceSum13-input"),
    case("ReduceSum", X(2, 3, 4), opset=13, id="ReduceSum13-all"),
    case("ReduceSum", X(2, 3, 4), noop_with_empty_axes=1, opset=13, id="ReduceSum13-noop"),
    case("ReduceMax", X(2, 3, 4), axes=[0, 2], opset=13, id="ReduceMax13-attr"),
    case("ReduceMax", X(2, 3, 4), C(np.array([1], np.int64)), keepdims=0, opset=18, id="ReduceMax18-input"),
]


@pytest.mark.parametrize("model,feeds", CONV + CONV_TRANSPOSE + GEMM + MATMUL + NORM + POOL + REDUCE)
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds)
