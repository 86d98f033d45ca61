"""Resize (opsets 10 to 19) and Upsample against onnxruntime."""
import numpy as np
import pytest

from onnx_case import C, X, assert_matches_onnxruntime, case, make_model


def floats(*values):
    return C(np.array(values, dtype=np.float32))


def sizes(*values):
    return C(np.array(values, dtype=np.int64))


EMPTY = floats()
UP = floats(1, 1, 2, 2)

RESIZE_10 = [
    case("Resize", X(1, 2, 3, 4), UP, opset=10, id="Resize10-nearest-up"),
    case("Resize", X(1, 2, 3, 4), floats(1, 1, 2, 3), mode="linear", opset=10, id="Resize10-linear-up"),
    case("Resize", X(1, 2, 6, 8), floats(1, 1, 0.5, 0.5), opset=10, id="Resize10-nearest-down"),
    case("Resize", X(1, 2, 6, 8), floats(1, 1, 0.5, 0.75), mode="linear", opset=10, id="Resize10-linear-down"),
]

NEAREST = [
    case("Resize", X(1, 2, 3, 4), EMPTY, floats(1, 1, 2.5, 1.5), coordinate_transformation_mode=ctm,
         nearest_mode=rounding, opset=11, id=f"Resize11-nearest-{ctm}-{rounding}")
    for ctm, rounding in [("half_pixel", "round_prefer_floor"), ("asymmetric", "floor"),
                          ("align_corners", "round_prefer_ceil"),
                          ("pytorch_half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil")]
]

LINEAR = [
    case("Resize", X(1, 2, 4, 5), EMPTY, floats(1, 1, 1.5, 2), mode="linear", coordinate_transformation_mode=ctm,
         opset=13, id=f"Resize13-linear-{ctm}")
    for ctm in ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"]
]

SIZES = [
    case("Resize", X(1, 2, 5, 5), EMPTY, EMPTY, sizes(1, 2, 7, 3), opset=11, id="Resize11-sizes-nearest"),
    case("Resize", X(1, 2, 5, 5), None, None, sizes(1, 2, 7, 3), mode="linear", opset=13, id="Resize13-sizes-linear"),
    case("Resize", X(1, 2, 6, 6), None, None, sizes(1, 2, 1, 4), mode="linear",
         coordinate_transformation_mode="pytorch_half_pixel", opset=13, id="Resize13-pytorch-size-1"),
    case("Resize", X(1, 2, 8, 8), None, floats(1, 1, 0.5, 0.25), mode="linear", opset=13, id="Resize13-linear-down"),
]

NEWER = [
    case("Resize", X(1, 2, 3, 4), None, floats(2, 3), axes=[2, 3], opset=18, id="Resize18-axes-scales"),
    case("Resize", X(1, 2, 3, 4), None, None, sizes(6, 6), axes=[-2, -1], mode="linear", opset=18,
         id="Resize18-axes-sizes"),
    case("Resize", X(1, 2, 3, 4), None, None, sizes(6, 6), axes=[2, 3], keep_aspect_ratio_policy="not_larger",
         opset=18, id="Resize18-not-larger"),
    case("Resize", X(1, 2, 3, 4), None, None, sizes(6, 6), axes=[2, 3], keep_aspect_ratio_policy="not_smaller",
         mode="linear", opset=18, id="Resize18-not-smaller"),
    case("Resize", X(1, 2, 3, 4), None, floats(1, 1, 2, 1.5), mode="linear",
         coordinate_transformation_mode="half_pixel_symmetric", opset=19, id="Resize19-half-pixel-symmetric"),
]

UPSAMPLE = [
    case("Upsample", X(1, 2, 3, 4), scales=[1.0, 1.0, 2.0, 3.0], opset=7, id="Upsample7-nearest"),
    case("Upsample", X(1, 2, 3, 4), scales=[1.0, 1.0, 2.0, 2.0], mode="linear", opset=7, id="Upsample7-linear"),
    case("Upsample", X(1, 2, 3, 4), floats(1, 1, 2, 2), opset=9, id="Upsample9-nearest"),
    case("Upsample", X(1, 2, 3, 4), floats(1, 1, 1.5, 2.5), mode="linear", opset=9, id="Upsample9-linear"),
]


@pytest.mark.parametrize("model,feeds", RESIZE_10 + NEAREST + LINEAR + SIZES + NEWER + UPSAMPLE)
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds)



# Every coordinate mode against ONNX's reference implementation, with scales that do not divide
# the input evenly (length_resized = in * scale is then not the integer output length: the
# align_corners downsampling case of ONNX's conformance suite was once wrong by 0.27 here).
REFERENCE_MODES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]


@pytest.mark.parametrize("ctm", REFERENCE_MODES)
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [(1, 1, 0.6, 0.6), (1, 1, 1.7, 0.45), (1, 1, 2.5, 3.0), (1, 1, 0.25, 1.0)])
def test_coordinate_modes_match_onnx_reference(ctm, mode, scales):
    from onnx.reference import ReferenceEvaluator

    from tcc.frontend import import_onnx
    from tcc.ir.interpreter import run_module

    model, feeds = make_model("Resize", [X(1, 2, 5, 9), EMPTY, floats(*scales)],
                              {"mode": mode, "coordinate_transformation_mode": ctm}, opset=19)
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    actual = run_module(import_onnx(model), feeds)["out0"]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
