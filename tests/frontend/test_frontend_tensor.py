"""Data-movement ONNX ops against onnxruntime."""
import numpy as np
import pytest

from onnx_case import C, X, assert_matches_onnxruntime, case, rand

I64 = np.int64
BIG = np.iinfo(np.int64).max


def ints(*values):
    return C(np.array(values, dtype=I64))


RESHAPE = [
    case("Reshape", X(2, 3, 4), ints(0, -1), opset=7, id="Reshape-zero-minus1"),
    case("Reshape", X(2, 3, 4), ints(4, 0, 2), id="Reshape-zero-middle"),
    case("Reshape", X(2, 3, 4), ints(-1), id="Reshape-flat"),
    case("Reshape", X(2, 3, 4), ints(6, 4), allowzero=1, opset=14, id="Reshape-allowzero"),
    case("Flatten", X(2, 3, 4, 5), opset=9, id="Flatten-default"),
    case("Flatten", X(2, 3, 4, 5), axis=0, opset=9, id="Flatten-axis0"),
    case("Flatten", X(2, 3, 4, 5), axis=3, opset=9, id="Flatten-axis3"),
    case("Flatten", X(2, 3, 4, 5), axis=-2, opset=13, id="Flatten-negative"),
    case("Squeeze", X(1, 3, 1, 4), axes=[0, 2], opset=11, id="Squeeze11-attr"),
    case("Squeeze", X(1, 3, 1, 4), opset=7, id="Squeeze7-all"),
    case("Squeeze", X(1, 3, 1, 4), ints(-2), opset=13, id="Squeeze13-input"),
    case("Squeeze", X(1, 3, 1, 4), opset=13, id="Squeeze13-all"),
    case("Unsqueeze", X(3, 4), axes=[0, 3], opset=11, id="Unsqueeze11-attr"),
    case("Unsqueeze", X(3, 4), ints(-1, 1), opset=13, id="Unsqueeze13-negative"),
    case("Unsqueeze", X(3, 4), axes=[2, 0], opset=7, id="Unsqueeze7-unsorted"),
]

LAYOUT = [
    case("Transpose", X(2, 3, 4), opset=7, id="Transpose-default"),
    case("Transpose", X(2, 3, 4, 5), perm=[0, 2, 3, 1], id="Transpose-nhwc"),
    case("Concat", X(2, 3), X(2, 5), axis=1, opset=7, id="Concat7"),
    case("Concat", X(2, 3), C(rand(4, 3)), X(1, 3), axis=-2, opset=13, id="Concat-const-negative-axis"),
    case("Expand", X(3, 1), ints(2, 3, 4), opset=8, id="Expand-up-rank"),
    case("Expand", X(2, 3, 4), ints(3, 1), opset=13, id="Expand-smaller-shape"),
]

SPLIT = [
    case("Split", X(2, 6), axis=1, outputs=3, opset=7, id="Split7-equal"),
    case("Split", X(5, 2), split=[2, 3], outputs=2, opset=11, id="Split11-attr"),
    case("Split", X(2, 7), ints(3, 4), axis=-1, outputs=2, opset=13, id="Split13-input"),
    case("Split", X(2, 6), axis=1, outputs=2, opset=13, id="Split13-equal"),
    case("Split", X(2, 7), axis=1, num_outputs=3, outputs=3, opset=18, id="Split18-num-outputs-uneven"),
]

SLICE = [
    case("Slice", X(5, 6), starts=[1, 0], ends=[4, 5], opset=7, id="Slice7-attrs"),
    case("Slice", X(5, 6), starts=[-3], ends=[BIG], axes=[1], opset=9, id="Slice9-negative-start"),
    case("Slice", X(5, 6), ints(1), ints(5), ints(1), ints(2), opset=10, id="Slice10-step2"),
    case("Slice", X(5, 6), ints(-1), ints(-BIG - 1), ints(0), ints(-1), id="Slice-reverse-all"),
    case("Slice", X(5, 6), ints(4, 10), ints(0, 1), ints(-2, -1), ints(-2, -3), id="Slice-negative-steps-clamped"),
    case("Slice", X(5, 6), ints(-100), ints(100), ints(1), id="Slice-clamp-both"),
    case("Slice", X(5, 6), ints(-100), ints(-100), ints(0), ints(-1), id="Slice-negative-step-start-clamped"),
    case("Slice", X(5, 6), ints(3), ints(1), id="Slice-empty"),
    case("Slice", X(2, 5, 6), ints(0, 1), ints(1, 4), ints(0, 2), id="Slice-axes-subset"),
]

PAD = [
    case("Pad", X(1, 2, 3, 3), pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5, opset=7, id="Pad2-constant-attr"),
    case("Pad", X(1, 2, 3, 3), pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect", opset=7, id="Pad2-reflect"),
    case("Pad", X(1, 2, 3, 3), ints(0, 0, 1, 2, 0, 0, 2, 1), C(np.float32(-1.0)), opset=11, id="Pad11-constant"),
    case("Pad", X(2, 4, 5), ints(0, 2, 1, 0, 1, 3), mode="reflect", opset=11, id="Pad11-reflect"),
    case("Pad", X(2, 4, 5), ints(0, 2, 1, 0, 1, 3), mode="edge", opset=13, id="Pad13-edge"),
    case("Pad", X(2, 4, 5), ints(0, -1, 1, 0, 1, -2), opset=13, id="Pad13-negative-crops"),
    case("Pad", X(2, 4, 5), ints(1, 2, 3, 1), None, ints(-1, 1), opset=18, id="Pad18-axes"),
]

GATHER = [
    case("Gather", X(5, 4), ints(0, 3, -1), opset=7, id="Gather-axis0-negative"),
    case("Gather", X(3, 5, 2), ints(4, 0), axis=1, opset=13, id="Gather-axis1"),
    case("Gather", X(3, 5, 2), C(np.array(2, I64)), axis=-2, opset=13, id="Gather-scalar-index"),
    case("Gather", C(rand(10, 4)), X(2, 3, kind="int", dtype=I64), opset=13, id="Gather-embedding"),
    case("Gather", X(4, 5), C(np.array([[1, 2], [3, 0]], np.int32)), axis=1, opset=11, id="Gather-i32-2d"),
]


@pytest.mark.parametrize("model,feeds", RESHAPE + LAYOUT + SPLIT + SLICE + PAD + GATHER)
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds)
