"""einsum-as-matmul and expand-constants: attention written with einsum (MaxViT) and attention
biases/masks added by broadcasting (Swin) on the overlay.

Float: each einsum against onnxruntime (the rewritten module has no einsum left); an einsum the
rewrite leaves alone still counts its MACs in `tcc explain`.  Overlay: a windowed-attention block
with a broadcast relative-position bias and an einsum attention runs wholly on the device,
simulator == integer reference bit for bit, close to float onnxruntime.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE


def _model(nodes, inputs, inits, opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


EINSUMS = [("BGHID,BGHJD->BGHIJ", (2, 3, 2, 5, 4), (2, 3, 2, 6, 4)),   # MaxViT's scores
           ("BGHIJ,BGHJD->BGHID", (2, 3, 2, 5, 6), (2, 3, 2, 6, 4)),   # MaxViT's attention x V
           ("bhqd,bhkd->bhqk", (1, 4, 7, 8), (1, 4, 9, 8)),
           ("ij,jk->ik", (5, 6), (6, 7)),
           ("bij,bkj->bki", (3, 4, 5), (3, 6, 5)),                     # output transposed
           ("nchw,ck->nkhw", (1, 3, 4, 5), (3, 6))]                    # a 1x1 conv as einsum


@pytest.mark.parametrize("equation, sa, sb", EINSUMS)
def test_einsum_as_matmul_matches_onnxruntime(equation, sa, sb):
    model = _model([helper.make_node("Einsum", ["a", "b"], ["y"], equation=equation)], [("a", sa), ("b", sb)], {})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("einsum-as-matmul", "dce"))
    assert "einsum" not in [op.kind for op in module.ops]
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal(sa).astype(np.float32), "b": rng.standard_normal(sb).astype(np.float32)}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(run_module(module, feeds)["y"], want, rtol=1e-5, atol=1e-5)


def test_an_einsum_left_alone_counts_its_macs():
    from tcc.explain import op_macs

    model = _model([helper.make_node("Einsum", ["a", "b"], ["y"], equation="ii,ij->j")], [("a", (4, 4)), ("b", (4, 5))], {})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("einsum-as-matmul",))
    (einsum,) = [op for op in module.ops if op.kind == "einsum"]  # a diagonal: not a matmul
    assert op_macs(einsum) == 4 * 5


def _window_attention(rng):
    """Swin/MaxViT-style attention over 4 windows of 9 tokens, 2 heads of 8: qkv by a 1x1 conv-free
    linear, scores by einsum, a relative-position bias [1, heads, 9, 9] and a shift mask
    [windows, 1, 9, 9] added by broadcasting, softmax, einsum with V, a projection."""
    w, t, h, d = 4, 9, 2, 8
    c = h * d
    nodes = [helper.make_node("MatMul", ["x", "wqkv"], ["qkv"]),
             helper.make_node("Reshape", ["qkv", "s5"], ["qkv5"]),
             helper.make_node("Transpose", ["qkv5"], ["qkvt"], perm=[2, 0, 3, 1, 4]),
             helper.make_node("Split", ["qkvt"], ["q0", "k0", "v0"], axis=0, num_outputs=3),
             *[helper.make_node("Squeeze", [f"{n}0", "ax0"], [n]) for n in "qkv"],
             helper.make_node("Einsum", ["q", "k"], ["sc"], equation="whid,whjd->whij"),
             helper.make_node("Mul", ["sc", "scale"], ["scs"]),
             helper.make_node("Add", ["scs", "bias"], ["scb"]),
             helper.make_node("Add", ["scb", "mask"], ["scm"]),
             helper.make_node("Softmax", ["scm"], ["p"], axis=-1),
             helper.make_node("Einsum", ["p", "v"], ["o"], equation="whij,whjd->whid"),
             helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["ot", "s3"], ["o3"]),
             helper.make_node("MatMul", ["o3", "wproj"], ["y"])]
    mask = np.where(rng.random((w, 1, t, t)) < 0.2, -100.0, 0.0).astype(np.float32)
    inits = {"wqkv": (rng.standard_normal((c, 3 * c)) / 4).astype(np.float32),
             "wproj": (rng.standard_normal((c, c)) / 4).astype(np.float32),
             "s5": np.array([w, t, 3, h, d], np.int64), "s3": np.array([w, t, c], np.int64),
             "ax0": np.array([0], np.int64), "scale": np.array(d ** -0.5, np.float32),
             "bias": rng.standard_normal((1, h, t, t)).astype(np.float32), "mask": mask}
    return _model(nodes, [("x", (w, t, c))], inits, opset=18)


def test_window_attention_runs_wholly_on_the_overlay(tmp_path):
    """21.4 dB: the shift mask's -100 sets the int8 grid of the masked scores (a step of ~0.8 for
    scores of a few units); Swin-T loses 2.4 dB to this against running these adds on the host."""
    rng = np.random.default_rng(9)
    run_wholly_on_the_overlay(_window_attention(rng), tmp_path, rng, min_sqnr=20)
