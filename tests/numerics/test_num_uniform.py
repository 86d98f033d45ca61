"""Affine int-N quantization: onnxruntime agreement, symmetric int-N grid, scale search."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tcc.ir.numerics import (
    dequantize_affine, int_dequantize, int_max_level, int_quantize, quantize_affine,
    search_scale_uniform,
)


def run_ort_qdq(x, scale, zero_point, axis=None):
    """QuantizeLinear then DequantizeLinear in onnxruntime (uint8 when zero_point is uint8)."""
    zp_type = TensorProto.UINT8 if zero_point.dtype == np.uint8 else TensorProto.INT8
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **attrs),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attrs)]
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("q", zp_type, x.shape),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor("s", TensorProto.FLOAT, scale.shape, scale.reshape(-1).tolist()),
         helper.make_tensor("z", zp_type, zero_point.shape, zero_point.reshape(-1).tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("zp_dtype,zp", [(np.int8, -3), (np.uint8, 128)])
def test_quantize_affine_matches_onnxruntime(zp_dtype, zp):
    rng = np.random.default_rng(0)
    scale = np.float32(0.0371)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale  # ties after the f32 division
    x = np.concatenate([rng.normal(0, 3, 4000).astype(np.float32), ties,
                        np.array([1e30, -1e30, 0.0, -0.0], np.float32)])
    q_ort, y_ort = run_ort_qdq(x, np.array(scale), np.array(zp, zp_dtype))
    lo, hi = np.iinfo(zp_dtype).min, np.iinfo(zp_dtype).max
    q = quantize_affine(x, scale, zp, lo, hi)
    assert q.dtype == zp_dtype
    assert np.array_equal(q, q_ort)
    assert np.array_equal(dequantize_affine(q, scale, zp), y_ort)


def test_quantize_affine_per_channel_matches_onnxruntime():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (3, 5, 4)).astype(np.float32)
    scale = np.array([0.01, 0.02, 0.05, 0.1, 0.2], np.float32)
    zp = np.array([0, 1, -2, 3, -4], np.int8)
    q_ort, y_ort = run_ort_qdq(x, scale, zp, axis=1)
    q = quantize_affine(x, scale, zp, axis=1)
    assert np.array_equal(q, q_ort)
    assert np.array_equal(dequantize_affine(q, scale, zp, axis=1), y_ort)


def test_quantize_affine_specials():
    x = np.array([np.nan, np.inf, -np.inf, 2.5, 3.5], np.float32)
    assert quantize_affine(x, 1.0, 5).tolist() == [5, 127, -128, 7, 9]
    with pytest.raises(ValueError):
        quantize_affine(x, 0.0)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_int_quantize_is_nearest_symmetric_level(bits):
    rng = np.random.default_rng(bits)
    x = rng.normal(0, 1, 3000).astype(np.float32)
    scale = np.float32(0.7 * np.abs(x).max() / int_max_level(bits))
    q = int_quantize(x, bits, scale)
    top = int_max_level(bits)
    assert q.min() >= -top and q.max() <= top
    levels = np.arange(-top, top + 1)
    t = (x / scale).astype(np.float64)
    nearest = levels[np.argmin(np.abs(t[:, None] - levels[None, :]), axis=1)]
    assert np.array_equal(q, nearest)  # random data: no exact ties
    assert np.array_equal(int_dequantize(q, scale), q.astype(np.float32) * scale)


def test_search_scale_uniform():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (4, 500))
    for bits in (2, 4, 8):
        s = search_scale_uniform(x, bits)
        max_abs = np.abs(x).max() / int_max_level(bits)

        def mse(scale, bits=bits):
            return np.mean((int_dequantize(int_quantize(x, bits, scale), scale) - x) ** 2)

        assert mse(s) <= mse(max_abs)
    per_channel = search_scale_uniform(x, 4, axis=0)
    assert per_channel.shape == (4,)
    assert [search_scale_uniform(row, 4) for row in x] == per_channel.tolist()


def test_quantize_affine_accepts_scalars_and_0d_arrays():
    from tcc.ir.numerics import quantize_affine

    assert int(quantize_affine(np.float32(0.7), 0.1, 3)) == 10
    assert int(quantize_affine(np.array(0.25, np.float32), 0.5, 0)) == 0  # 0.5 ties to even
    assert int(quantize_affine(np.array(np.nan, np.float32), 0.5, 7)) == 7


@pytest.mark.parametrize("qmin, qmax, zp", [(-128, 127, 0), (0, 255, 128), (-32768, 32767, -5),
                                            (-(2**23) + 1, 2**23 - 1, 2**22), (-(2**31), 2**31 - 1, 7)])
def test_quantize_affine_clamps_exactly_near_the_float32_limits(qmin, qmax, zp):
    """The in-place float32 clamp (small bounds) and the int64 one (large bounds) give the integer rule."""
    rng = np.random.default_rng(qmax)
    scale = np.float32(0.75)
    x = np.concatenate([rng.normal(0, 2.0**24, 2000), [np.nan, np.inf, -np.inf, 0.375, -0.375, 1.125],
                        np.array([qmin, qmax, qmin - 1, qmax + 1, qmin + 1, qmax - 1]) * 0.75]).astype(np.float32)
    q = quantize_affine(x, scale, zp, qmin, qmax, out_dtype=np.int64)
    with np.errstate(invalid="ignore"):
        quotient = (x / scale).astype(np.float64)  # ONNX divides in float32
    t = np.where(np.isnan(quotient), 0.0, np.rint(quotient))
    want = np.clip(np.clip(t, -(2.0**62), 2.0**62).astype(np.int64) + zp, qmin, qmax)
    assert q.tolist() == want.tolist()
