"""`tcc verify`: per-layer SQNR against onnxruntime, simulator == reference, exit codes."""
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import light_zoo
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.verify import CHECKPOINT_PREFIX, verify

DIGITS = "examples/digits/digits_cnn.onnx"
CALIB = "examples/digits/digits_calib.npz"


def rows(out: str) -> dict[str, list[str]]:
    """The table rows of verify's output by tensor name."""
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].isdigit():
            table[parts[1]] = parts[2:]
    return table


def test_verify_digits_overlay_agrees_and_matches_an_independent_sqnr(tmp_path, tcc_cli):
    test = np.load("examples/digits/digits_test.npz")["input"][:6]
    np.savez(tmp_path / "x.npz", input=test)
    code, out, err = tcc_cli("verify", DIGITS, "-t", "overlay", "--calib", CALIB, "--inputs", tmp_path / "x.npz",
                             "--samples", 6, "--json", tmp_path / "v.json")
    assert code == 0, err
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["simulator_agrees"] is True and saved["samples"] == 6 and len(saved["layers"]) == 10
    code, to_stdout, table = tcc_cli("verify", DIGITS, "-t", "overlay", "--calib", CALIB, "--inputs",
                                     tmp_path / "x.npz", "--samples", 6, "--json", "-")
    assert code == 0 and json.loads(to_stdout) == saved and rows(table) == rows(out)  # '-': JSON alone on stdout
    assert "all 10 checkpointed tensors and the model outputs agree bit for bit" in out
    table = rows(out)
    assert all(row[-1] == "yes" for row in table.values()), out
    # The logits row, recomputed here: onnxruntime's float logits vs the integer reference's
    # dequantized logits, pooled over the same 6 samples.
    qmodule, _ = compile_to_ir(DIGITS, {}, DEFAULT_FLOAT_PIPELINE + quantization_pipeline(CALIB))
    session = ort.InferenceSession(DIGITS, providers=["CPUExecutionProvider"])
    signal = noise = 0.0
    for x in test:
        ref = session.run(["logits"], {"input": x[None]})[0].astype(np.float64)
        got = run_module(qmodule, {"input": x[None]})["logits"].astype(np.float64)
        signal += float(np.sum(ref ** 2))
        noise += float(np.sum((ref - got) ** 2))
    expected = 10 * math.log10(signal / noise)
    assert float(table["logits"][2]) == pytest.approx(expected, abs=0.051)
    assert 25 < expected < 45


def test_verify_exits_1_and_names_the_first_layer_where_the_simulator_disagrees(monkeypatch, tcc_cli):
    from tcc.runtime import Session

    real = Session.run_dict

    def corrupted(self, feeds):
        out = real(self, feeds)
        key = CHECKPOINT_PREFIX + "/Relu_2_output_0"
        if key in out:  # one element of one layer's simulated output off by one step
            out[key] = out[key].copy()
            out[key].flat[5] ^= 1
        return out

    monkeypatch.setattr(Session, "run_dict", corrupted)
    code, out, _ = tcc_cli("verify", DIGITS, "--calib", CALIB, "--samples", 1)
    assert code == 1
    assert "FIRST DISAGREEMENT: simulator != integer reference at '/Relu_2_output_0' (requantize)" in out
    assert rows(out)["/Relu_1_output_0"][-1] == "yes"


def test_verify_ir_on_a_zoo_model_finds_the_softmax_jump(tmp_path):
    model = light_zoo.randomized("squeezenet", expose_logits=True)
    onnx.save(model, tmp_path / "sq.onnx")
    (name, x), = light_zoo.model_inputs(model).items()
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "calib.npz", **{name: rng.standard_normal((3,) + x.shape[1:]).astype(np.float32)})
    result = verify(tmp_path / "sq.onnx", tmp_path / "calib.npz", target="ir", samples=1)
    assert result.float_source == "onnxruntime" and result.first_mismatch is None
    by_name = {layer.name: layer for layer in result.layers}
    assert by_name["r1"].sqnr_db > 30  # the first conv + relu
    jump = result.worst_jump
    # 1000 class probabilities near 1e-3 quantized to int8 lose most of their precision.
    assert jump.name == "softmaxout_1" and jump.drop_db > 10


def test_float_ir_fallback_gives_the_same_sqnr_as_onnxruntime(monkeypatch):
    import tcc.verify as verify_module

    with_ort = verify(DIGITS, CALIB, target="ir", samples=3)

    def refuse(*args):
        raise RuntimeError("onnxruntime cannot load this model")

    monkeypatch.setattr(verify_module, "_onnxruntime_tensors", refuse)
    with_ir = verify(DIGITS, CALIB, target="ir", samples=3)
    assert with_ir.float_source.startswith("tcc float reference interpreter (onnxruntime: onnxruntime cannot")
    assert [layer.name for layer in with_ir.layers] == [layer.name for layer in with_ort.layers]
    for a, b in zip(with_ort.layers, with_ir.layers):
        assert (a.sqnr_db is None) == (b.sqnr_db is None)
        if a.sqnr_db is not None:
            assert abs(a.sqnr_db - b.sqnr_db) < 0.1, a.name
