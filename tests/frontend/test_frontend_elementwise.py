"""Element-wise ONNX ops, activations, Softmax, Cast and pass-through ops against onnxruntime."""
import numpy as np
import pytest

from onnx_case import C, X, assert_matches_onnxruntime, case, rand

BINARY = [
    case("Add", X(2, 3, 4), X(4), opset=7, id="Add-broadcast-op7"),
    case("Add", X(2, 3, 4), C(rand(3, 1)), id="Add-const-column"),
    case("Sub", C(np.float32(1.5)), X(2, 3), id="Sub-scalar-const-first"),
    case("Sub", X(2, 3), X(2, 3), opset=14),
    case("Mul", X(1, 3, 1, 1), X(2, 3, 4, 4), id="Mul-broadcast-both"),
    case("Mul", X(2, 3, 4, 4), C(rand(3, 1, 1)), opset=7, id="Mul-const-channel-op7"),
    case("Div", X(2, 3), C(rand(3, positive=True)), id="Div-const"),
    case("Div", X(2, 3), X(2, 3, kind="positive"), opset=14),
    case("Pow", X(2, 3, kind="positive"), C(np.float32(2.0)), id="Pow-const-f32"),
    case("Pow", X(2, 3, kind="positive"), C(np.int64(3)), opset=13, id="Pow-const-i64-exponent"),
    case("Pow", X(2, 3, kind="positive"), X(2, 3, kind="int", dtype=np.int64), opset=15, id="Pow-runtime-i64-exponent"),
    case("Pow", X(2, 3, kind="positive"), X(3), opset=7, id="Pow-runtime-op7"),
]

VARIADIC = [
    case("Sum", X(2, 3), opset=8, id="Sum-one"),
    case("Sum", X(2, 3), X(2, 3), opset=7, id="Sum-two-op7"),
    case("Sum", X(2, 3), X(3), C(rand(2, 1)), opset=13, id="Sum-three-broadcast"),
    case("Max", X(2, 3), X(2, 3), X(3), opset=13, id="Max-three"),
    case("Min", X(2, 3), C(rand(3)), opset=8, id="Min-const"),
]

UNARY = [case(op, X(2, 3, 5), opset=opset)
         for op, opset in [("Relu", 7), ("Relu", 14), ("Sigmoid", 13), ("Tanh", 13), ("Erf", 13),
                           ("Exp", 13), ("Neg", 13), ("Abs", 13), ("HardSwish", 14), ("Identity", 16)]]
UNARY += [case("Sqrt", X(2, 3, kind="positive"), opset=13),
          case("Reciprocal", X(2, 3, kind="positive"), opset=13)]

ACTIVATIONS = [
    case("LeakyRelu", X(2, 3, 4), opset=7, id="LeakyRelu-default"),
    case("LeakyRelu", X(2, 3, 4), alpha=0.2, opset=16),
    case("HardSigmoid", X(2, 3, 4), opset=7, id="HardSigmoid-default"),
    case("HardSigmoid", X(2, 3, 4), alpha=0.3, beta=0.4),
    case("Gelu", X(2, 3, 4), opset=20, id="Gelu-exact"),
    case("Gelu", X(2, 3, 4), approximate="tanh", opset=20),
    case("PRelu", X(2, 3, 4, 4), C(rand(3, 1, 1)), opset=9, id="PRelu-const-slope"),
    case("PRelu", X(2, 3, 4, 4), X(4), opset=16, id="PRelu-runtime-slope"),
]

CLIP = [
    case("Clip", X(3, 4), min=-0.5, max=0.5, opset=7, id="Clip6-attrs"),
    case("Clip", X(3, 4), min=-0.5, opset=7, id="Clip6-min-only"),
    case("Clip", X(3, 4), opset=7, id="Clip6-none"),
    case("Clip", X(3, 4), C(np.float32(-0.3)), opset=11, id="Clip11-min"),
    case("Clip", X(3, 4), None, C(np.float32(0.2)), opset=11, id="Clip11-max"),
    case("Clip", X(3, 4), C(np.float32(-0.3)), C(np.float32(0.2)), opset=13, id="Clip13-both"),
    case("Clip", X(3, 4), opset=13, id="Clip13-none"),
    case("Clip", X(3, 4), X(), C(np.float32(1.0)), opset=13, id="Clip13-runtime-min"),
    case("Clip", X(3, 4), X(), X(), opset=13, id="Clip13-runtime-both"),
]

SOFTMAX = [
    case("Softmax", X(2, 3, 4), opset=11, id="Softmax11-default-axis1-flattens"),
    case("Softmax", X(2, 3, 4), axis=0, opset=11, id="Softmax11-axis0-flattens"),
    case("Softmax", X(2, 3, 4), axis=2, opset=11, id="Softmax11-last"),
    case("Softmax", X(2, 3, 4), axis=-1, opset=7, id="Softmax7-minus1"),
    case("Softmax", X(2, 5), opset=7, id="Softmax7-2d"),
    case("Softmax", X(2, 3, 4), opset=13, id="Softmax13-default"),
    case("Softmax", X(2, 3, 4), axis=1, opset=13, id="Softmax13-axis1"),
]

CAST = [
    case("Cast", X(2, 3), to=6, opset=13, id="Cast-f32-to-i32"),
    case("Cast", X(2, 3, kind="int", dtype=np.int64), to=1, opset=13, id="Cast-i64-to-f32"),
    case("Cast", X(2, 3), to=1, opset=9, id="Cast-noop"),
]

DROPOUT = [
    case("Dropout", X(2, 3), ratio=0.3, opset=7, id="Dropout7"),
    case("Dropout", X(2, 3), opset=12, outputs=2, id="Dropout12-mask"),
    case("Dropout", X(2, 3), C(np.float32(0.5)), opset=13, id="Dropout13-ratio-input"),
    case("Dropout", X(2, 3), C(np.float32(0.5)), C(np.bool_(False)), opset=13, outputs=2,
         id="Dropout13-training-false-mask"),
]


@pytest.mark.parametrize("model,feeds", BINARY + VARIADIC + UNARY + ACTIVATIONS + CLIP + SOFTMAX + CAST + DROPOUT)
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds)
