"""softmax-axis-last: a softmax over an inner axis (YOLOv8's DFL head over the 16 distance bins,
factorized attention over tokens) as transpose, softmax along the last axis, transpose back.

Float: the rewrite equals onnxruntime's softmax on every inner axis of a 4-D tensor; the last axis is
left alone.  Overlay: a DFL-style head (conv, reshape to [N, 4, 16, A], transpose to [N, 16, 4, A],
softmax over axis 1, a 1x1 conv of the bins' weights, as Ultralytics exports it) runs wholly on the
device, simulator == integer reference bit for bit, close to float onnxruntime (its softmax ran on
the host before).
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE


def _model(nodes, x_shape, inits, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_inner_axis_softmax_equals_onnxruntime(axis):
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], (3, 16, 4, 5), {})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("softmax-axis-last", "dce"))
    feeds = {"x": np.random.default_rng(axis + 5).standard_normal((3, 16, 4, 5)).astype(np.float32) * 3}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(run_module(module, feeds)["y"], want, rtol=1e-6, atol=1e-7)
    kinds = [op.kind for op in module.ops]
    assert kinds.count("transpose") == (0 if axis == -1 else 2)
    softmax, = [op for op in module.ops if op.kind == "softmax"]
    assert softmax.attrs["axis"] % 4 == 3


def dfl_head(rng, anchors=24):
    """Ultralytics' DFL decode: 64 box channels as [N, 4, 16, A], transposed to [N, 16, 4, A], softmax
    over the 16 bins, then a 1x1 conv with the bin indices as weights (the expected distance)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["box"]),
             helper.make_node("Reshape", ["box", "s"], ["b4"]),
             helper.make_node("Transpose", ["b4"], ["bt"], perm=[0, 2, 1, 3]),
             helper.make_node("Softmax", ["bt"], ["p"], axis=1),
             helper.make_node("Conv", ["p", "bins"], ["d"]),
             helper.make_node("Reshape", ["d", "s2"], ["y"])]
    inits = {"w": (rng.standard_normal((64, 8, 1, 1)) * 0.5).astype(np.float32),
             "s": np.array([1, 4, 16, anchors], np.int64),
             "bins": np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1),
             "s2": np.array([1, 4, anchors], np.int64)}
    return _model(nodes, (1, 8, 1, anchors), inits)


def test_dfl_head_runs_wholly_on_the_overlay(tmp_path):
    run_wholly_on_the_overlay(dfl_head(np.random.default_rng(3)), tmp_path, np.random.default_rng(4), 20.0)
