"""as-2d: 1-D and 3-D convolutions and pools (and 1-D transposed convolutions) as 2-D ones.

Float: each rewrite against onnxruntime over a grid of attributes (kernel, stride, dilation,
asymmetric pads, groups, depthwise; the rewritten module has only 2-D convolutions).  Overlay: a
small video classifier (Conv3d, ReLU, a residual Conv3d, global pooling, linear) and a 1-D audio
model compile with every MAC on the device, the simulator equals the integer reference bit for bit,
and the output is close to float onnxruntime.
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

RNG = np.random.default_rng(11)


def _model(nodes, x_shape, initializers, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _weights(*shape, rng=RNG):
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _check_float(model, shape):
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("as-2d", "dce"))
    ranks = {op.x.type.rank for op in module.ops
             if op.kind in ("conv", "conv_transpose", "max_pool", "avg_pool", "global_avg_pool")}
    assert ranks == {4}, ranks
    data = RNG.standard_normal(shape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    got = run_module(module, {"x": data})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


CONV3D = [  # kernel, strides, dilations, pads (begins then ends), group, input [C, T, H, W], output channels
    ((3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1, 1, 1), 1, (4, 5, 6, 6), 6),
    ((3, 7, 7), (1, 2, 2), (1, 1, 1), (1, 3, 3, 1, 3, 3), 1, (3, 4, 12, 12), 4),   # r3d/r(2+1)d stem
    ((3, 1, 1), (2, 1, 1), (1, 1, 1), (1, 0, 0, 1, 0, 0), 1, (4, 7, 5, 5), 4),    # temporal-only, strided
    ((3, 3, 3), (2, 2, 2), (2, 1, 1), (2, 1, 1, 1, 0, 1), 2, (4, 8, 7, 7), 6),    # dilated, asymmetric, grouped
    ((3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1, 1, 1), 4, (4, 3, 5, 5), 4),    # depthwise
    ((2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0, 0, 0, 0), 1, (3, 4, 6, 6), 5),    # patchify (video ViT)
    ((5, 3, 3), (1, 1, 1), (1, 1, 1), (4, 1, 1, 0, 1, 1), 1, (2, 3, 4, 4), 3),    # causal: windows in the padding
]


@pytest.mark.parametrize("kernel, strides, dilations, pads, group, shape, m", CONV3D)
def test_conv3d_as_2d_matches_onnxruntime(kernel, strides, dilations, pads, group, shape, m):
    c = shape[0]
    w = numpy_helper.from_array(_weights(m, c // group, *kernel), "w")
    b = numpy_helper.from_array(RNG.standard_normal(m).astype(np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=list(kernel), strides=list(strides),
                            dilations=list(dilations), pads=list(pads), group=group)
    _check_float(_model([node], (1, *shape), [w, b]), (1, *shape))


CONV1D = [(k, s, d, p, g) for k, s, d, p, g in itertools.product((1, 3, 5), (1, 2), (1, 2), ((0, 0), (2, 1)), (1, 2))]


@pytest.mark.parametrize("k, s, d, pads, group", CONV1D)
def test_conv1d_as_2d_matches_onnxruntime(k, s, d, pads, group):
    c, m = 4, 6
    w = numpy_helper.from_array(_weights(m, c // group, k), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[s], dilations=[d], pads=list(pads), group=group)
    _check_float(_model([node], (2, c, 17), [w]), (2, c, 17))


@pytest.mark.parametrize("k, s, p, extra", [(4, 2, 1, 0), (3, 2, 1, 1), (2, 2, 0, 0), (5, 3, 2, 2)])
def test_conv_transpose_1d_as_2d_matches_onnxruntime(k, s, p, extra):
    c, m = 4, 6
    w = numpy_helper.from_array(_weights(c, m, k), "w")
    b = numpy_helper.from_array(RNG.standard_normal(m).astype(np.float32), "b")
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[s], pads=[p, p],
                            output_padding=[extra])
    _check_float(_model([node], (1, c, 9), [w, b]), (1, c, 9))


POOLS = [  # op, kernel, strides, dilations, pads, ceil_mode, count_include_pad, input [C, T, H, W] or [C, L]
    ("MaxPool", (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1, 1, 1, 1), 0, 0, (3, 7, 9, 9)),   # C3D/I3D pool
    ("MaxPool", (1, 3, 3), (1, 2, 2), (1, 1, 1), (0, 1, 1, 0, 1, 1), 0, 0, (3, 4, 8, 8)),   # spatial only
    ("MaxPool", (2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0, 0, 0, 0), 1, 0, (2, 5, 7, 7)),   # ceil mode
    ("MaxPool", (3, 2, 2), (1, 1, 1), (2, 1, 1), (2, 0, 0, 1, 1, 1), 0, 0, (2, 6, 5, 5)),   # dilated in time
    ("AveragePool", (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1, 1, 1, 1), 0, 0, (3, 7, 9, 9)),
    ("AveragePool", (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1, 1, 1, 1), 0, 1, (3, 7, 9, 9)),
    ("AveragePool", (2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0, 0, 0, 0), 0, 0, (2, 4, 6, 6)),
    ("MaxPool", (3,), (2,), (1,), (1, 1), 0, 0, (4, 15)),
    ("MaxPool", (2,), (2,), (2,), (0, 1), 1, 0, (4, 16)),
    ("AveragePool", (4,), (3,), (1,), (2, 1), 0, 1, (4, 15)),
    ("AveragePool", (3,), (1,), (1,), (1, 1), 0, 0, (4, 15)),
]


@pytest.mark.parametrize("op, kernel, strides, dilations, pads, ceil, include, shape", POOLS)
def test_pools_as_2d_match_onnxruntime(op, kernel, strides, dilations, pads, ceil, include, shape):
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads), "ceil_mode": ceil}
    if op == "AveragePool":
        attrs["count_include_pad"] = include
    if any(d != 1 for d in dilations):
        attrs["dilations"] = list(dilations)
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    _check_float(_model([node], (1, *shape), [], opset=19), (1, *shape))


@pytest.mark.parametrize("shape", [(1, 3, 4, 5, 6), (2, 3, 7)])
def test_global_average_pool_as_2d_matches_onnxruntime(shape):
    _check_float(_model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], shape, []), shape)


def _video_classifier(rng):
    """An R3D/C3D-style clip classifier: Conv3d stem (3x7x7, stride 1x2x2), ReLU, a residual block of
    two 3x3x3 Conv3d, a 2x2x2 MaxPool3d, a strided 3x3x3 Conv3d, global average pooling, a linear
    classifier."""
    def w(*shape):
        return _weights(*shape, rng=rng)

    inits = [numpy_helper.from_array(w(8, 3, 3, 7, 7), "w0"), numpy_helper.from_array(w(8, 8, 3, 3, 3), "w1"),
             numpy_helper.from_array(w(8, 8, 3, 3, 3), "w2"), numpy_helper.from_array(w(12, 8, 3, 3, 3), "w3"),
             numpy_helper.from_array(w(10, 12), "fc"), numpy_helper.from_array(np.full(8, 0.05, np.float32), "b0")]
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["a"], strides=[1, 2, 2], pads=[1, 3, 3, 1, 3, 3]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "w1"], ["c1"], pads=[1] * 6),
             helper.make_node("Relu", ["c1"], ["c1r"]),
             helper.make_node("Conv", ["c1r", "w2"], ["c2"], pads=[1] * 6),
             helper.make_node("Add", ["c2", "ar"], ["s"]),
             helper.make_node("Relu", ["s"], ["sr"]),
             helper.make_node("MaxPool", ["sr"], ["p"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
             helper.make_node("Conv", ["p", "w3"], ["d"], strides=[1, 2, 2], pads=[1] * 6),
             helper.make_node("Relu", ["d"], ["dr"]),
             helper.make_node("GlobalAveragePool", ["dr"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    return _model(nodes, (1, 3, 4, 16, 16), inits)


def _audio_model(rng):
    """A 1-D keyword-spotting-style model: Conv1d stem (k 9, stride 2), a MaxPool1d, a dilated Conv1d, a
    depthwise Conv1d, a 1-D transposed conv (upsampling), global average pooling, a linear classifier."""
    def w(*shape):
        return _weights(*shape, rng=rng)

    inits = [numpy_helper.from_array(w(16, 1, 9), "w0"), numpy_helper.from_array(w(16, 16, 3), "w1"),
             numpy_helper.from_array(w(16, 1, 5), "w2"), numpy_helper.from_array(w(16, 8, 4), "w3"),
             numpy_helper.from_array(w(6, 8), "fc")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], strides=[2], pads=[4, 4]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("MaxPool", ["ar"], ["ap"], kernel_shape=[3], strides=[1], pads=[1, 1]),
             helper.make_node("Conv", ["ap", "w1"], ["b"], dilations=[2], pads=[2, 2]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "w2"], ["c"], group=16, pads=[2, 2]),
             helper.make_node("Relu", ["c"], ["cr"]),
             helper.make_node("ConvTranspose", ["cr", "w3"], ["u"], strides=[2], pads=[1, 1]),
             helper.make_node("Relu", ["u"], ["ur"]),
             helper.make_node("GlobalAveragePool", ["ur"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    return _model(nodes, (1, 1, 160), inits)


@pytest.mark.parametrize("build", [_video_classifier, _audio_model])
def test_video_and_audio_models_run_wholly_on_the_overlay(build, tmp_path):
    from tcc.explain import explain

    rng = np.random.default_rng(2)  # its own: the outcome must not depend on which tests ran before
    run_wholly_on_the_overlay(build(rng), tmp_path, rng, min_sqnr=25)
    placed = explain(tmp_path / "m.onnx", calib=tmp_path / "calib.npz")
    assert placed.device_mac_fraction == 1.0 and not placed.host_nodes()
