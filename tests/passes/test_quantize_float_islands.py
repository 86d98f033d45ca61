"""What the int8 quantizer leaves off the int8 grid, against onnxruntime: values that hold -inf by
the model's construction (attention masks), sums that would crush an operand (a -3.4e38 mask added
to scores), float ops that decide integers (DynamicQuantizeLinear, Round), and calibration samples
of bf16 inputs."""
import math

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.passes.quantize import CalibrationError

RNG = np.random.default_rng(7)
SEQ, DIM = 6, 8


def calibration_and_test(**extra):
    """32 calibration samples and 8 test samples of x (and the given other inputs, per sample)."""
    x = RNG.standard_normal((40, 1, SEQ, DIM)).astype(np.float32)
    feeds = [{"x": x[i], **{k: v[i] for k, v in extra.items()}} for i in range(32, 40)]
    return {"x": x[:32], **{k: v[:32] for k, v in extra.items()}}, feeds


def output_sqnr(model, module, feeds) -> float:
    return sqnr_db([onnxruntime(model, f)[0] for f in feeds], [run_module(module, f)["y"] for f in feeds])


def quantized(model, calib_path):
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib_path)))
    return module


def onnxruntime(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def sqnr_db(reference, got) -> float:
    ref, got = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    noise = float(np.sum((ref - got) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(ref ** 2)) / noise)


def attention(mask_nodes, mask_inputs, initializers):
    """x -> scores = x Wq (x Wk)^T / sqrt(d) + mask -> softmax -> (x Wv): one head."""
    weights = {n: (RNG.standard_normal((DIM, DIM)) / math.sqrt(DIM)).astype(np.float32) for n in ("wq", "wk", "wv")}
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"]), helper.make_node("MatMul", ["x", "wk"], ["k"]),
             helper.make_node("MatMul", ["x", "wv"], ["v"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["raw"]), helper.make_node("Mul", ["raw", "scale"], ["scores"]),
             *mask_nodes, helper.make_node("Add", ["scores", "bias"], ["masked"]),
             helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
             helper.make_node("MatMul", ["probs", "v"], ["y"])]
    inits = [numpy_helper.from_array(w, n) for n, w in weights.items()]
    inits += [numpy_helper.from_array(np.array(1 / math.sqrt(DIM), np.float32), "scale"), *initializers]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SEQ, DIM]),
                                                   *mask_inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SEQ, DIM])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_constant_mask_of_minus_inf_calibrates_and_stays_off_int8(tmp_path):
    causal = np.triu(np.full((SEQ, SEQ), -np.inf, np.float32), k=1)
    model = attention([], [], [numpy_helper.from_array(causal, "bias")])
    calib, feeds = calibration_and_test()
    np.savez(tmp_path / "c.npz", **calib)
    module = quantized(model, tmp_path / "c.npz")
    add = next(op for op in module.ops if op.kind == "add" and op.loc == "masked")
    assert add.result.type.dtype == "bf16", "the -inf mask has no int8 code: the masked sum runs in bf16"
    assert output_sqnr(model, module, feeds) > 30  # 34.8 dB; 31.1 dB with a mask of zeros (an int8 add)


def test_a_float32_min_mask_no_longer_crushes_the_scores(tmp_path):
    """Hugging Face's (1 - mask) * float32.min: on the int8 grid of the sum (span 3.4e38) every real
    score is the same level; in bf16 they survive."""
    nodes = [helper.make_node("Sub", ["one", "mask"], ["inverted"]),
             helper.make_node("Mul", ["inverted", "lowest"], ["bias"])]
    inits = [numpy_helper.from_array(np.array(1, np.float32), "one"),
             numpy_helper.from_array(np.array(np.finfo(np.float32).min, np.float32), "lowest")]
    model = attention(nodes, [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SEQ])], inits)
    masks = np.ones((40, 1, 1, SEQ), np.float32)
    masks[:, :, :, SEQ - 2:] = 0  # the last two positions are padding
    calib, feeds = calibration_and_test(mask=masks)
    np.savez(tmp_path / "c.npz", **calib)
    module = quantized(model, tmp_path / "c.npz")
    add = next(op for op in module.ops if op.kind == "add" and op.loc == "masked")
    assert add.result.type.dtype == "bf16"
    assert output_sqnr(model, module, feeds) > 30  # 35.4 dB; 7.5 dB when the add was int8


def test_log_of_zero_is_the_models_own_minus_inf(tmp_path):
    """log(relu(x)) is -inf wherever x <= 0: calibration accepts it (only a float32 overflow is refused,
    tests/cli/test_calibration_data.py) and the output carries the -inf."""
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Log", ["r"], ["y"])], "log",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    np.savez(tmp_path / "c.npz", x=RNG.standard_normal((3, 2, 8)).astype(np.float32))
    module = quantized(model, tmp_path / "c.npz")
    x = RNG.standard_normal((2, 8)).astype(np.float32)
    (want,) = onnxruntime(model, {"x": x})
    got = run_module(module, {"x": x})["y"]
    assert np.array_equal(np.isneginf(got), np.isneginf(want)) and np.isneginf(want).any()
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], atol=0.1, rtol=0.05)


@pytest.mark.parametrize("x", [np.array([0.0, 2.0, -3.0, -2.5, 1.34, 0.5], np.float32),
                               RNG.uniform(-3.7, 11.3, 24).astype(np.float32)])
def test_dynamic_quantize_linear_is_exact_after_int8_quantization(tmp_path, x):
    """Its scale and zero point come from float ops; in bf16 they round the integers differently."""
    graph = helper.make_graph([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"]),
                               helper.make_node("Round", ["x"], ["r"])], "dql",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, list(x.shape)),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("z", TensorProto.UINT8, []),
                               helper.make_tensor_value_info("r", TensorProto.FLOAT, list(x.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    np.savez(tmp_path / "c.npz", x=x[None])
    module = quantized(model, tmp_path / "c.npz")
    want = onnxruntime(model, {"x": x})
    got = run_module(module, {"x": x})
    for name, w in zip(("y", "s", "z", "r"), want):
        assert np.array_equal(got[name], w), name


def bf16_input_model():
    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
                               helper.make_node("Sigmoid", ["f"], ["y"])], "bf16_in",
                              [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_bf16_inputs_calibrate_from_float32_samples(tmp_path):
    model = bf16_input_model()
    samples = np.array([[0.5, -1.25, 3.0, 0.0078125]], np.float32)  # exact in bf16
    np.savez(tmp_path / "c.npz", x=samples)
    module = quantized(model, tmp_path / "c.npz")
    x = samples[0].astype(ml_dtypes.bfloat16)
    assert np.allclose(run_module(module, {"x": x})["y"], 1 / (1 + np.exp(-samples[0])), atol=0.02)
    np.savez(tmp_path / "inexact.npz", x=samples + np.float32(1e-3))
    with pytest.raises(CalibrationError, match="input 'x' is bf16; its samples .* cannot represent exactly"):
        quantized(model, tmp_path / "inexact.npz")


def test_bf16_inputs_calibrate_from_float32_samples_streamed_by_workers(tmp_path, tcc_cli):
    onnx.save(bf16_input_model(), tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=np.array([[0.5, -1.25, 3.0, 0.0078125]] * 3, np.float32))
    np.savez(tmp_path / "inexact.npz", x=np.array([[0.5, -1.25, 3.0, 0.1]] * 3, np.float32))
    code, _, err = tcc_cli("compile", tmp_path / "m.onnx", "--calib", tmp_path / "c.npz", "--workers", 2,
                           "-o", tmp_path / "m.tir")
    assert code == 0, err
    code, _, err = tcc_cli("compile", tmp_path / "m.onnx", "--calib", tmp_path / "inexact.npz", "--workers", 2,
                           "-o", tmp_path / "bad.tir")
    assert code == 2 and "calibration sample 0: input 'x' is bf16" in err and "(first: 0.1" in err



@pytest.mark.parametrize("op, x, refused", [("Exp", 100.0, True), ("Reciprocal", 0.0, False), ("Log", -1.0, False)])
def test_a_float32_overflow_is_refused_a_pole_or_domain_error_is_not(tmp_path, op, x, refused):
    """exp(100) is finite in float64: the calibration data overflows float32.  1/0 and log(-1) are
    infinite or NaN by definition: the model's own values."""
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["x"], ["f"]),
                               helper.make_node("Add", ["r", "f"], ["y"])], "one_op",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    np.savez(tmp_path / "c.npz", x=np.array([[0.5, 1.0, 2.0, x]], np.float32))
    if refused:
        with pytest.raises(CalibrationError, match=f"tensor 'f' \\({op.lower()} op .* overflows float32"):
            quantized(model, tmp_path / "c.npz")
    else:
        module = quantized(model, tmp_path / "c.npz")
        feeds = {"x": np.array([0.5, 1.0, 2.0, x], np.float32)}
        (want,) = onnxruntime(model, feeds)
        got = run_module(module, feeds)["y"]
        assert np.array_equal(np.isfinite(got), np.isfinite(want))
        assert np.allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=0.02, atol=0.02)
