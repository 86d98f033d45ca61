"""The vector unit's broadcast of one activation over another when the broadcast dims are separated
from the kept ones only by dims of 1: [1, C, 1, 1] over [1, C, H, W] is one value per row of H W, and
[1, h, T, 1] over [1, h, T, d] one value per row of d.  Both ran on the host ("leading or trailing
dims only") in timm's convnextv2_atto (channels-first GRN) and efficientvit_b0 (the ReLU linear
attention's normalizer).  Each block below runs wholly on the device, simulator == integer reference
bit for bit, close to float onnxruntime.
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay


def _model(nodes, shape, inits):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_channels_first_grn_runs_wholly_on_the_overlay(tmp_path):
    """timm's GlobalResponseNorm on NCHW: ||x|| over H, W divided by its channel mean plus eps, then
    x + gamma (x N) + beta, after a conv and an activation (SiLU here; GELU in ConvNeXt-V2's block)."""
    rng = np.random.default_rng(5)
    c = 24
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("Mul", ["c", "s"], ["a"]),
             helper.make_node("ReduceL2", ["a", "hw"], ["gx"], keepdims=1),
             helper.make_node("ReduceMean", ["gx", "ch"], ["gm"], keepdims=1),
             helper.make_node("Add", ["gm", "eps"], ["gd"]),
             helper.make_node("Div", ["gx", "gd"], ["nx"]),
             helper.make_node("Mul", ["a", "nx"], ["an"]),  # [1, C, H, W] * [1, C, 1, 1]
             helper.make_node("Mul", ["an", "gamma"], ["t"]),
             helper.make_node("Add", ["t", "beta"], ["tb"]),
             helper.make_node("Add", ["tb", "a"], ["r"]),
             helper.make_node("Conv", ["r", "wo"], ["y"])]
    inits = {"wc": (rng.standard_normal((c, 3, 3, 3)) / 4).astype(np.float32),
             "hw": np.array([2, 3], np.int64), "ch": np.array([1], np.int64), "eps": np.array(1e-6, np.float32),
             "gamma": (rng.standard_normal((1, c, 1, 1)) * 0.5).astype(np.float32),
             "beta": (rng.standard_normal((1, c, 1, 1)) * 0.1).astype(np.float32),
             "wo": (rng.standard_normal((8, c, 1, 1)) / 5).astype(np.float32)}
    run_wholly_on_the_overlay(_model(nodes, (1, 3, 10, 10), inits), tmp_path, rng, min_sqnr=20)


def test_linear_attention_normalizer_runs_wholly_on_the_overlay(tmp_path):
    """EfficientViT's ReLU linear attention: q, k = relu(.), v padded with a column of ones,
    (k^T v) then q (k^T v), the last column the normalizer: out = num / (den + eps), den [1, h, T, 1]."""
    rng = np.random.default_rng(6)
    heads, tokens, d = 2, 20, 8
    nodes = [helper.make_node("MatMul", ["x", "wqkv"], ["qkv"]),
             helper.make_node("Reshape", ["qkv", "split_shape"], ["q4"]),
             helper.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
             helper.make_node("Split", ["qt", "sizes"], ["q", "k", "v"], axis=3),
             helper.make_node("Relu", ["q"], ["qr"]),
             helper.make_node("Relu", ["k"], ["kr"]),
             helper.make_node("Pad", ["v", "pads", "one"], ["vp"]),
             helper.make_node("Transpose", ["kr"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["kt", "vp"], ["kv"]),
             helper.make_node("MatMul", ["qr", "kv"], ["o"]),
             helper.make_node("Slice", ["o", "s0", "e0", "ax"], ["num"]),
             helper.make_node("Slice", ["o", "e0", "e1", "ax"], ["den"]),
             helper.make_node("Add", ["den", "eps"], ["dene"]),
             helper.make_node("Div", ["num", "dene"], ["att"]),  # [1, h, T, d] / [1, h, T, 1]
             helper.make_node("Transpose", ["att"], ["at"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["at", "merge"], ["am"]),
             helper.make_node("MatMul", ["am", "wo"], ["y"])]
    inits = {"wqkv": (rng.standard_normal((16, 3 * heads * d)) / 4).astype(np.float32),
             "split_shape": np.array([1, tokens, heads, 3 * d], np.int64),
             "sizes": np.array([d, d, d], np.int64),
             "pads": np.array([0, 0, 0, 0, 0, 0, 0, 1], np.int64), "one": np.array(1.0, np.float32),
             "s0": np.array([0], np.int64), "e0": np.array([d], np.int64), "e1": np.array([d + 1], np.int64),
             "ax": np.array([3], np.int64), "eps": np.array(1e-5, np.float32),
             "merge": np.array([1, tokens, heads * d], np.int64),
             "wo": (rng.standard_normal((heads * d, 12)) / 4).astype(np.float32)}
    run_wholly_on_the_overlay(_model(nodes, (1, tokens, 16), inits), tmp_path, rng, min_sqnr=20)
