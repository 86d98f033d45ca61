"""Ops ONNX defines as functions and tcc has no lowering for import as ONNX's function body."""
import pytest

from onnx_case import X, assert_matches_onnxruntime, case


@pytest.mark.parametrize("model,feeds", [
    case("Attention", X(2, 3, 4, 8), X(2, 3, 6, 8), X(2, 3, 6, 8), opset=23, id="attention"),
    case("Attention", X(2, 3, 4, 8), X(2, 3, 4, 8), X(2, 3, 4, 8), opset=23, is_causal=1, id="attention-causal"),
    case("Attention", X(1, 4, 24), X(1, 6, 12), X(1, 6, 12), opset=23, q_num_heads=4, kv_num_heads=2,
         id="attention-3d-gqa"),
])
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds, tolerance=1e-5)
