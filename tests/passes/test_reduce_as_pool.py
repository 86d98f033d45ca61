"""reduce-as-pool: means, sums and L2 norms over any axes as global average pools.

Float: each rewrite equals onnxruntime's reduction (mean, sum, L2; kept or dropped dims; leading,
middle, trailing and all axes).  Overlay: token mean pooling of a transformer's [T, C] and
ConvNeXt V2's channels-first LayerNorm and global response normalization run wholly on the device, simulator == integer
reference bit for bit, close to float onnxruntime.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE


def _model(nodes, shape, inits, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum", "ReduceL2"])
@pytest.mark.parametrize("axes,keepdims", [([1], 0), ([1, 2], 1), ([3], 1), ([0, 2], 0), (None, 0)])
def test_reduction_as_pool_equals_onnxruntime(op_type, axes, keepdims):
    rng = np.random.default_rng(0)
    shape = (2, 5, 3, 4)
    inputs, inits = ["x"], {}
    if axes is not None:
        inputs.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    model = _model([helper.make_node(op_type, inputs, ["y"], keepdims=keepdims)], shape, inits, opset=18)
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("reduce-as-pool", "dce"))
    kinds = [op.kind for op in module.ops]
    assert "global_avg_pool" in kinds and not any(k.startswith("reduce_") for k in kinds)
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = run_module(module, feeds)["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


def test_token_mean_pooling_runs_wholly_on_the_overlay(tmp_path):
    """A classifier head over the mean of 49 tokens (DeiT without a class token, Swin's head as an
    exporter may write it): ReduceMean over axis 1 of [1, T, C] was a host partition."""
    rng = np.random.default_rng(3)
    t, c = 49, 64
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Gelu", ["h"], ["g"], domain=""),
             helper.make_node("ReduceMean", ["g", "axes"], ["m"], keepdims=0),
             helper.make_node("MatMul", ["m", "w2"], ["y"])]
    inits = {"w1": (rng.standard_normal((c, c)) / 8).astype(np.float32), "axes": np.array([1], np.int64),
             "w2": (rng.standard_normal((c, 10)) / 8).astype(np.float32)}
    run_wholly_on_the_overlay(_model(nodes, (1, t, c), inits, opset=20), tmp_path, rng, min_sqnr=30)


def test_global_response_normalization_runs_wholly_on_the_overlay(tmp_path):
    """A channels-first LayerNorm (official ConvNeXt code), then ConvNeXt V2's GRN on NHWC features: ||X|| over H, W (ReduceL2) divided by its mean over the
    channels plus eps, gamma * X * N + beta + X; then the spatial mean and a classifier.  The eps add
    becomes an int8 table, the scalar divisor a broadcast column of the vector unit's division."""
    rng = np.random.default_rng(4)
    c = 32
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], pads=[1, 1, 1, 1]),
             # the official ConvNeXt's channels-first LayerNorm: means over axis 1 (recognize moves it last)
             helper.make_node("ReduceMean", ["c", "ch"], ["u"], keepdims=1),
             helper.make_node("Sub", ["c", "u"], ["d"]),
             helper.make_node("Mul", ["d", "d"], ["d2"]),
             helper.make_node("ReduceMean", ["d2", "ch"], ["v"], keepdims=1),
             helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["f"]),
             helper.make_node("Transpose", ["f"], ["X"], perm=[0, 2, 3, 1]),
             helper.make_node("ReduceL2", ["X", "hw"], ["gx"], keepdims=1),
             helper.make_node("ReduceMean", ["gx", "last"], ["gm"], keepdims=1),
             helper.make_node("Add", ["gm", "eps"], ["gd"]),
             helper.make_node("Div", ["gx", "gd"], ["nx"]),
             helper.make_node("Mul", ["X", "nx"], ["xn"]),
             helper.make_node("Mul", ["xn", "gamma"], ["g"]),
             helper.make_node("Add", ["g", "beta"], ["gb"]),
             helper.make_node("Add", ["gb", "X"], ["r"]),
             helper.make_node("ReduceMean", ["r", "hw"], ["p"], keepdims=0),
             helper.make_node("Gemm", ["p", "wf"], ["y"], transB=1)]
    inits = {"wc": (rng.standard_normal((c, 3, 3, 3)) / 4).astype(np.float32),
             "ch": np.array([1], np.int64), "hw": np.array([1, 2], np.int64), "last": np.array([-1], np.int64), "eps": np.array(1e-6, np.float32),
             "gamma": (rng.standard_normal(c) * 0.5).astype(np.float32),
             "beta": (rng.standard_normal(c) * 0.1).astype(np.float32),
             "wf": (rng.standard_normal((10, c)) / 6).astype(np.float32)}
    run_wholly_on_the_overlay(_model(nodes, (1, 3, 8, 8), inits, opset=18), tmp_path, rng, min_sqnr=20)
