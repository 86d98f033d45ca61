"""A LLaMA-style decoder block on the overlay: RMSNorm as torch exports it (Pow, ReduceMean, Add, Sqrt,
Div, Mul, Mul by the weight) recognized as an rms_norm; rotary embeddings (x * cos + rotate_half(x) *
sin: Slice, Neg, Concat, products with constant [T, d] tables); grouped-query attention (K/V heads
repeated); the causal mask added as -inf; SwiGLU (silu(gate) * up).

Float: each RMSNorm form against onnxruntime.  Overlay: the block runs wholly on the device,
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

N = helper.make_node


def _model(nodes, shape, inits, opset=18):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _rms_norm(x: str, out: str, form: str = "div") -> list:
    """torch's x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w in its exported forms."""
    square = N("Pow", [x, "two"], [f"{out}.sq"]) if form != "mul" else N("Mul", [x, x], [f"{out}.sq"])
    nodes = [square, N("ReduceMean", [f"{out}.sq", "last"], [f"{out}.ms"], keepdims=1),
             N("Add", [f"{out}.ms", "eps"], [f"{out}.mse"]), N("Sqrt", [f"{out}.mse"], [f"{out}.rms"])]
    if form == "reciprocal":
        nodes += [N("Reciprocal", [f"{out}.rms"], [f"{out}.inv"]), N("Mul", [x, f"{out}.inv"], [f"{out}.n"])]
    elif form == "one-over":
        nodes += [N("Div", ["one", f"{out}.rms"], [f"{out}.inv"]), N("Mul", [f"{out}.inv", x], [f"{out}.n"])]
    else:
        nodes += [N("Div", [x, f"{out}.rms"], [f"{out}.n"])]
    return nodes + [N("Mul", [f"{out}.n", f"{out}.w"], [out])]


def _consts(rng, d):
    return {"two": np.array(2, np.float32), "last": np.array([-1], np.int64), "eps": np.array(1e-6, np.float32),
            "one": np.array(1, np.float32)}


@pytest.mark.parametrize("form", ["div", "mul", "reciprocal", "one-over"])
def test_rms_norm_forms_are_one_rms_norm_equal_to_onnxruntime(form):
    rng = np.random.default_rng(0)
    model = _model(_rms_norm("x", "y", form), (2, 7, 32),
                   {**_consts(rng, 32), "y.w": (1 + 0.1 * rng.standard_normal(32)).astype(np.float32)})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE)
    assert [op.kind for op in module.ops if op.kind != "const"] == ["rms_norm"]
    x = rng.standard_normal((2, 7, 32)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_module(module, {"x": x})["y"], want, rtol=1e-5, atol=1e-6)


def _rope(x: str, out: str, half: int) -> list:
    return [N("Slice", [x, "zero1", "half1", "last"], [f"{out}.x1"]), N("Slice", [x, "half1", "big1", "last"], [f"{out}.x2"]),
            N("Neg", [f"{out}.x2"], [f"{out}.nx2"]), N("Concat", [f"{out}.nx2", f"{out}.x1"], [f"{out}.rot"], axis=-1),
            N("Mul", [x, "cos"], [f"{out}.c"]), N("Mul", [f"{out}.rot", "sin"], [f"{out}.s"]),
            N("Add", [f"{out}.c", f"{out}.s"], [out])]


def _llama_block(rng, t=12, heads=4, kv=2, d=8, ffn=48):
    c = heads * d
    w = lambda i, o: (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)  # noqa: E731
    inv = 1 / 10000 ** (np.arange(0, d, 2) / d)
    angles = np.outer(np.arange(t), inv)
    angles = np.concatenate([angles, angles], -1)
    nodes = [*_rms_norm("x", "h"),
             N("MatMul", ["h", "wq"], ["q2"]), N("MatMul", ["h", "wk"], ["k2"]), N("MatMul", ["h", "wv"], ["v2"]),
             N("Reshape", ["q2", "sq"], ["q3"]), N("Transpose", ["q3"], ["q"], perm=[1, 0, 2]),
             N("Reshape", ["k2", "skv"], ["k3"]), N("Transpose", ["k3"], ["k"], perm=[1, 0, 2]),
             N("Reshape", ["v2", "skv"], ["v3"]), N("Transpose", ["v3"], ["v"], perm=[1, 0, 2]),
             *_rope("q", "qr", d // 2), *_rope("k", "kr", d // 2),
             N("Unsqueeze", ["kr", "ax1"], ["k4"]), N("Expand", ["k4", "rep"], ["k5"]), N("Reshape", ["k5", "sh"], ["kk"]),
             N("Unsqueeze", ["v", "ax1"], ["v4"]), N("Expand", ["v4", "rep"], ["v5"]), N("Reshape", ["v5", "sh"], ["vv"]),
             N("Transpose", ["kk"], ["kt"], perm=[0, 2, 1]), N("MatMul", ["qr", "kt"], ["sc"]),
             N("Div", ["sc", "sqrt_d"], ["scd"]), N("Add", ["scd", "mask"], ["scm"]),
             N("Softmax", ["scm"], ["p"], axis=-1), N("MatMul", ["p", "vv"], ["o"]),
             N("Transpose", ["o"], ["ot"], perm=[1, 0, 2]), N("Reshape", ["ot", "s2"], ["o2"]),
             N("MatMul", ["o2", "wo"], ["att"]), N("Add", ["x", "att"], ["x1"]),
             *_rms_norm("x1", "h2"), N("MatMul", ["h2", "wg"], ["g"]), N("MatMul", ["h2", "wu"], ["u"]),
             N("Sigmoid", ["g"], ["gs"]), N("Mul", ["g", "gs"], ["silu"]), N("Mul", ["silu", "u"], ["gu"]),
             N("MatMul", ["gu", "wd"], ["ff"]), N("Add", ["x1", "ff"], ["y"])]
    inits = {**_consts(rng, c), "h.w": 1 + 0.1 * rng.standard_normal(c).astype(np.float32),
             "h2.w": 1 + 0.1 * rng.standard_normal(c).astype(np.float32),
             "wq": w(c, c), "wk": w(c, kv * d), "wv": w(c, kv * d), "wo": w(c, c), "wg": w(c, ffn), "wu": w(c, ffn),
             "wd": w(ffn, c), "sq": np.array([t, heads, d], np.int64), "skv": np.array([t, kv, d], np.int64),
             "zero1": np.array([0], np.int64), "half1": np.array([d // 2], np.int64), "big1": np.array([d], np.int64),
             "cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32),
             "ax1": np.array([1], np.int64), "rep": np.array([kv, heads // kv, t, d], np.int64),
             "sh": np.array([heads, t, d], np.int64), "sqrt_d": np.array(np.sqrt(d), np.float32),
             "mask": np.triu(np.full((t, t), -np.inf, np.float32), 1), "s2": np.array([t, c], np.int64)}
    return _model(nodes, (t, c), {k: np.asarray(v, np.float32) if np.asarray(v).dtype == np.float64 else v
                                  for k, v in inits.items()})


def test_llama_block_runs_wholly_on_the_overlay(tmp_path):
    rng = np.random.default_rng(6)
    run_wholly_on_the_overlay(_llama_block(rng), tmp_path, rng, min_sqnr=25)
