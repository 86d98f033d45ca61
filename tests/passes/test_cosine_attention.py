"""Swin V2's cosine attention on the overlay: F.normalize (ReduceL2, Clip, Expand, Div) as an rms_norm
(recognize), the per-head logit scale moved from the int32 scores onto the normalized queries, the
[N, H, W, C] map zero-padded to the window (pad-as-concat), all on the device.

Float: each rewrite against onnxruntime.  Overlay: the block runs wholly on the device, simulator ==
integer reference bit for bit, close to float onnxruntime.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE


def _model(nodes, shape, inits, opset=18):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _normalize(x: str, out: str, clip: bool = True) -> list:
    """torch's F.normalize(x, dim=-1) as exported: ReduceL2 (keepdims), Clip(min=eps), Expand, Div."""
    nodes = [helper.make_node("ReduceL2", [x, "last"], [f"{out}.l2"], keepdims=1)]
    norm = f"{out}.l2"
    if clip:
        nodes.append(helper.make_node("Clip", [norm, "eps"], [f"{out}.clip"]))
        norm = f"{out}.clip"
    nodes += [helper.make_node("Shape", [x], [f"{out}.shape"]),
              helper.make_node("Expand", [norm, f"{out}.shape"], [f"{out}.wide"]),
              helper.make_node("Div", [x, f"{out}.wide"], [out])]
    return nodes


CONSTS = {"last": np.array([-1], np.int64), "eps": np.array(1e-12, np.float32)}


@pytest.mark.parametrize("clip", [True, False])
def test_l2_normalize_is_an_rms_norm_equal_to_onnxruntime(clip):
    model = _model(_normalize("x", "y", clip), (2, 3, 5, 16), CONSTS)
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE)
    assert [op.kind for op in module.ops if op.kind != "const"] == ["rms_norm"]
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 16)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_module(module, {"x": x})["y"], want, rtol=2e-6, atol=1e-7)


def test_a_per_head_scale_of_the_scores_moves_onto_the_queries():
    rng = np.random.default_rng(1)
    model = _model([helper.make_node("MatMul", ["x", "k"], ["s"]), helper.make_node("Mul", ["s", "c"], ["y"])],
                   (1, 3, 5, 8), {"k": rng.standard_normal((1, 3, 8, 6)).astype(np.float32),
                                  "c": np.array([2.0, 7.5, 30.0], np.float32).reshape(3, 1, 1)})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE)
    (product,) = [op for op in module.ops if op.kind == "matmul"]
    assert product.result.name == "y" and product.a.producer.kind == "mul"
    x = rng.standard_normal((1, 3, 5, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_module(module, {"x": x})["y"], want, rtol=1e-5, atol=1e-5)


def _swin_v2_block(rng, side=6, window=4, heads=2, d=8):
    """A Swin V2 window-attention block on an [1, side, side, C] map: zero pad to a multiple of the
    window, partition into windows, qkv, cosine scores (normalized q and k) times per-head logit
    scales, a relative-position bias, softmax, attention x V, projection, reverse, crop."""
    c, p = heads * d, -side % window
    full = side + p
    w = (full // window) ** 2
    t = window * window
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"]),
             helper.make_node("Reshape", ["xp", "s_win"], ["xw"]),
             helper.make_node("Transpose", ["xw"], ["xt"], perm=[0, 1, 3, 2, 4, 5]),
             helper.make_node("Reshape", ["xt", "s_tok"], ["tok"]),
             helper.make_node("MatMul", ["tok", "wqkv"], ["qkv"]),
             helper.make_node("Reshape", ["qkv", "s5"], ["qkv5"]),
             helper.make_node("Transpose", ["qkv5"], ["qkvt"], perm=[2, 0, 3, 1, 4]),
             helper.make_node("Split", ["qkvt"], ["q0", "k0", "v0"], axis=0, num_outputs=3),
             *[helper.make_node("Squeeze", [f"{n}0", "ax0"], [n]) for n in "qkv"],
             *_normalize("q", "qn"), *_normalize("k", "kn"),
             helper.make_node("Transpose", ["kn"], ["knt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["qn", "knt"], ["cos"]),
             helper.make_node("Mul", ["cos", "logit_scale"], ["sc"]),
             helper.make_node("Add", ["sc", "bias"], ["scb"]),
             helper.make_node("Softmax", ["scb"], ["pr"], axis=-1),
             helper.make_node("MatMul", ["pr", "v"], ["o"]),
             helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["ot", "s3"], ["o3"]),
             helper.make_node("MatMul", ["o3", "wproj"], ["y3"]),
             helper.make_node("Reshape", ["y3", "s_back"], ["yw"]),
             helper.make_node("Transpose", ["yw"], ["yt"], perm=[0, 1, 3, 2, 4, 5]),
             helper.make_node("Reshape", ["yt", "s_map"], ["ym"]),
             helper.make_node("Slice", ["ym", "zero2", "side2", "axes12"], ["y"])]
    n = full // window
    inits = {**CONSTS, "pads": np.array([0, 0, 0, 0, 0, p, p, 0], np.int64),
             "s_win": np.array([1, n, window, n, window, c], np.int64), "s_tok": np.array([w, t, c], np.int64),
             "wqkv": (rng.standard_normal((c, 3 * c)) / 4).astype(np.float32),
             "s5": np.array([w, t, 3, heads, d], np.int64), "ax0": np.array([0], np.int64),
             "logit_scale": np.array([10.0, 4.0][:heads], np.float32).reshape(heads, 1, 1),
             "bias": (16 / (1 + np.exp(-rng.standard_normal((1, heads, t, t))))).astype(np.float32),
             "s3": np.array([w, t, c], np.int64), "wproj": (rng.standard_normal((c, c)) / 4).astype(np.float32),
             "s_back": np.array([1, n, n, window, window, c], np.int64),
             "s_map": np.array([1, full, full, c], np.int64), "zero2": np.array([0, 0], np.int64),
             "side2": np.array([side, side], np.int64), "axes12": np.array([1, 2], np.int64)}
    return _model(nodes, (1, side, side, c), inits)


def test_swin_v2_window_attention_runs_wholly_on_the_overlay(tmp_path):
    rng = np.random.default_rng(4)
    run_wholly_on_the_overlay(_swin_v2_block(rng), tmp_path, rng, min_sqnr=25)
