"""fold-batchnorm after a matmul or linear, and batchnorm-to-conv on [N, C]: timm's LeViT writes
every projection as MatMul [1, T, Cin] x [Cin, C] -> Reshape [T, C] -> BatchNorm1d -> Reshape back,
and its head as mean -> BatchNorm1d -> Gemm.  Those 47 batch_norms ran on the host (no vector-unit
batch_norm); folded into the product (or a depthwise 1x1 conv for the head's), the model is one
device program.

Float: the folded module equals onnxruntime on the unfolded model, and no batch_norm is left.  A
batch_norm whose channel axis is not the product's output axis (rank 3 after a linear: axis 1 is
tokens) is left alone.  Overlay: the LeViT-style block runs wholly on the device, simulator ==
integer reference bit for bit, close to float onnxruntime.
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PRE_QUANT_PIPELINE

TOKENS, CIN, C = 12, 16, 24


def _bn_inits(rng, prefix, channels):
    return {f"{prefix}.g": rng.uniform(0.5, 2.0, channels).astype(np.float32),
            f"{prefix}.b": rng.standard_normal(channels).astype(np.float32),
            f"{prefix}.m": rng.standard_normal(channels).astype(np.float32),
            f"{prefix}.v": rng.uniform(0.2, 3.0, channels).astype(np.float32)}


def _bn(x, prefix, y):
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}.{k}" for k in "gbmv"], [y])


def levit_block(rng):
    """x [1, T, Cin] -> MatMul -> Reshape [T, C] -> BN -> Reshape [1, T, C] -> HardSwish -> mean over
    tokens [1, C] -> BN -> Gemm [1, 10]: LeViT's LinearNorm and its BN + linear head."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]),
             helper.make_node("Reshape", ["p", "flat"], ["pf"]),
             _bn("pf", "bn1", "n"),
             helper.make_node("Reshape", ["n", "back"], ["nb"]),
             helper.make_node("HardSwish", ["nb"], ["a"]),
             helper.make_node("ReduceMean", ["a"], ["pooled"], axes=[1], keepdims=0),
             _bn("pooled", "bn2", "h"),
             helper.make_node("Gemm", ["h", "head", "head_b"], ["y"], transB=1)]
    inits = {"w": (rng.standard_normal((CIN, C)) / 4).astype(np.float32),
             "flat": np.array([TOKENS, C], np.int64), "back": np.array([1, TOKENS, C], np.int64),
             "head": (rng.standard_normal((10, C)) / 5).astype(np.float32),
             "head_b": rng.standard_normal(10).astype(np.float32),
             **_bn_inits(rng, "bn1", C), **_bn_inits(rng, "bn2", C)}
    graph = helper.make_graph(nodes, "levit", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, CIN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _float(model, passes):
    module, _ = compile_to_ir(model, passes=passes)
    feeds = {"x": np.random.default_rng(1).standard_normal((1, TOKENS, CIN)).astype(np.float32)}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    return module, run_module(module, feeds)["y"], want


def test_batch_norm_after_matmul_folds_and_equals_onnxruntime():
    module, got, want = _float(levit_block(np.random.default_rng(0)), DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    kinds = [op.kind for op in module.ops]
    assert "batch_norm" not in kinds and "matmul" not in kinds
    linear = next(op for op in module.ops if op.kind == "linear")
    assert linear.b is not None  # the batch_norm's shift became the product's bias


def test_batch_norm_over_tokens_after_a_linear_stays():
    """BN on [1, T, C] normalizes axis 1 (tokens), not the linear's outputs: folding it per output
    channel would be wrong, so it stays (and the float result still equals onnxruntime)."""
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"]), _bn("p", "bn", "y")]
    inits = {"w": rng.standard_normal((CIN, C)).astype(np.float32), **_bn_inits(rng, "bn", TOKENS)}
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, CIN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    module, got, want = _float(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                               DEFAULT_FLOAT_PIPELINE)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert "batch_norm" in [op.kind for op in module.ops]


def test_levit_block_runs_wholly_on_the_overlay(tmp_path):
    run_wholly_on_the_overlay(levit_block(np.random.default_rng(3)), tmp_path, np.random.default_rng(4), 25.0)
