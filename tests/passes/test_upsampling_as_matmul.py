"""resize-as-matmul and conv-transpose-as-conv: decoders' upsampling on the systolic array.

Float: each rewrite against onnxruntime over a grid of attributes (the rewritten module has no
resize / conv_transpose left).  Overlay: a small decoder (conv, ConvTranspose, bilinear Resize,
conv) compiles with every op on the device, the simulator equals the integer reference bit for
bit, and the output is close to float onnxruntime.
"""
import itertools

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE

RNG = np.random.default_rng(7)


def _model(nodes, inputs, initializers, opset=19):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check_float(model, shape, pass_name, gone):
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + (pass_name, "dce"))
    assert gone not in [op.kind for op in module.ops]
    data = RNG.standard_normal(shape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    got = run_module(module, {"x": data})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


RESIZES = [  # mode, coordinate mode, antialias, output size
    ("linear", "half_pixel", 0, (10, 14)), ("linear", "align_corners", 0, (9, 20)),
    ("linear", "asymmetric", 0, (10, 7)), ("linear", "pytorch_half_pixel", 0, (1, 11)),
    ("linear", "half_pixel_symmetric", 0, (8, 9)), ("cubic", "half_pixel", 0, (10, 14)),
    ("cubic", "align_corners", 0, (3, 4)), ("linear", "half_pixel", 1, (3, 4)), ("cubic", "half_pixel", 1, (2, 5)),
]


@pytest.mark.parametrize("mode, ctm, antialias, size", RESIZES)
def test_resize_as_matmul_matches_onnxruntime(mode, ctm, antialias, size):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 7])
    sizes = numpy_helper.from_array(np.array([1, 3, *size], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, coordinate_transformation_mode=ctm,
                            antialias=antialias)
    _check_float(_model([node], [x], [sizes]), (1, 3, 5, 7), "resize-as-matmul", "resize")


CONV_TRANSPOSES = [(k, s, p, extra, g) for k, s, p, extra, g in itertools.product(
    (1, 2, 3, 4), (1, 2, 3), (0, 1), (0, 1), (1, 2)) if p < k and extra < s]


@pytest.mark.parametrize("k, s, p, extra, group", CONV_TRANSPOSES)
def test_conv_transpose_as_conv_matches_onnxruntime(k, s, p, extra, group):
    """Kernel k, stride s, pads p (begin) and p or p + 1 (end), output_padding, grouped."""
    c, m = 4, 6
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 5, 6])
    w = numpy_helper.from_array(RNG.standard_normal((c, m // group, k, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(RNG.standard_normal(m).astype(np.float32), "b")
    end = p + 1 if p + 1 < k else p
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[s, s], pads=[p, p, end, p],
                            output_padding=[extra, extra], group=group)
    _check_float(_model([node], [x], [w, b], opset=17), (1, c, 5, 6), "conv-transpose-as-conv", "conv_transpose")


def _decoder():
    """conv 8->16 stride 2, ReLU, ConvTranspose 16->8 (k4 s2 p1), ReLU, bilinear 2x Resize, conv 8->4."""
    def w(*shape):
        return (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = [numpy_helper.from_array(w(16, 8, 3, 3), "w1"), numpy_helper.from_array(w(16, 8, 4, 4), "w2"),
             numpy_helper.from_array(w(4, 8, 3, 3), "w3"), numpy_helper.from_array(np.full(8, 0.1, np.float32), "b2"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("ConvTranspose", ["ar", "w2", "b2"], ["u"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["u"], ["ur"]),
             helper.make_node("Resize", ["ur", "", "scales"], ["r"], mode="linear"),
             helper.make_node("Conv", ["r", "w3"], ["y"], pads=[1, 1, 1, 1])]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])], inits)


def test_a_decoder_runs_wholly_on_the_overlay(tmp_path):
    from tcc.explain import explain

    run_wholly_on_the_overlay(_decoder(), tmp_path, RNG, min_sqnr=30)
    placed = explain(tmp_path / "m.onnx", calib=tmp_path / "calib.npz")
    assert placed.device_mac_fraction == 1.0 and not placed.host_nodes()
