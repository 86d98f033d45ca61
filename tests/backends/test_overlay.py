"""The overlay end to end: compile, simulate, and compare element for element with the integer
reference interpreter on the same artifact and on the IR from `tcc compile -t ir`."""
import numpy as np
import onnx
import pytest

import light_zoo
from tcc.backends.overlay import Artifact, ArtifactError, compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir import parse_module, print_module
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session

DIGITS = "examples/digits/digits_cnn.onnx"


def quantized(model, calib_path):
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib_path)))
    return module


def random_calibration(inputs, path, samples=2, seed=3):
    rng = np.random.default_rng(seed)
    np.savez(path, **{k: rng.standard_normal((samples,) + v.shape).astype(np.float32) for k, v in inputs.items()})
    return path


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


@pytest.fixture(scope="module")
def digits_artifact(tmp_path_factory):
    module = quantized(DIGITS, "examples/digits/digits_calib.npz")
    path = tmp_path_factory.mktemp("digits") / "digits.tcc"
    compile_overlay(module).save(path)
    return path, print_module(module)


def test_digits_simulator_equals_reference(digits_artifact):
    path, ir_text = digits_artifact
    session = Session(path)
    test = np.load("examples/digits/digits_test.npz")
    module = parse_module(ir_text)
    for i in range(0, 40, 4):
        x = {"input": test["input"][i:i + 1]}
        simulated = session.run(None, x)[0]
        np.testing.assert_array_equal(simulated, session.run_reference(x)["logits"])
        np.testing.assert_array_equal(simulated, run_module(module, x)["logits"])
    assert session.last_result.cycles > 0


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "inception_v1", "densenet121", "resnet50"])
def test_light_zoo_simulator_equals_reference(name, tmp_path):
    model = light_zoo.randomized(name, expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    module = quantized(model, random_calibration(inputs, tmp_path / "calib.npz"))
    compile_overlay(module).save(tmp_path / "m.tcc")
    session = Session(tmp_path / "m.tcc")
    simulated = session.run_dict(inputs)
    reference = run_module(module, inputs)
    float_out = run_module(compile_to_ir(model)[0], inputs)
    for key in reference:
        np.testing.assert_array_equal(simulated[key], reference[key], err_msg=f"{name} output {key}")
        print(f"{name} {key}: SQNR vs float {sqnr_db(float_out[key], simulated[key]):.1f} dB")


def test_artifact_is_deterministic(tmp_path):
    module = quantized(DIGITS, "examples/digits/digits_calib.npz")
    again = quantized(DIGITS, "examples/digits/digits_calib.npz")
    assert compile_overlay(module).to_bytes() == compile_overlay(again).to_bytes()


def test_corrupt_artifacts_are_refused(digits_artifact, tmp_path):
    path, _ = digits_artifact
    data = path.read_bytes()
    with pytest.raises(ArtifactError, match="truncated"):
        Artifact.from_bytes(data[:-10])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        Artifact.from_bytes(bytes(flipped))
    with pytest.raises(ArtifactError, match="not a tcc artifact"):
        Artifact.from_bytes(b"\x08\x01" + data[2:])
    other = bytearray(data)
    other[8] = 99
    with pytest.raises(ArtifactError, match="format version 99"):
        Artifact.from_bytes(bytes(other))


def test_cli_overlay_contract(tmp_path, tcc_cli):
    test = np.load("examples/digits/digits_test.npz")
    np.savez(tmp_path / "in.npz", input=test["input"][:1])
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", "examples/digits/digits_calib.npz",
                           "-o", tmp_path / "m.tcc")
    assert code == 0, err
    code, _, err = tcc_cli("compile", DIGITS, "-t", "ir", "--calib", "examples/digits/digits_calib.npz",
                           "--quant", "int8", "-o", tmp_path / "q.tir")
    assert code == 0, err
    outs = {}
    for label, args in {"sim": [tmp_path / "m.tcc", "--report", tmp_path / "r.json"],
                        "ref": [tmp_path / "m.tcc", "--reference"], "ir": [tmp_path / "q.tir"]}.items():
        code, _, err = tcc_cli("run", *args, "--inputs", tmp_path / "in.npz", "-o", tmp_path / f"{label}.npz")
        assert code == 0, err
        outs[label] = np.load(tmp_path / f"{label}.npz")["logits"]
    np.testing.assert_array_equal(outs["sim"], outs["ref"])
    np.testing.assert_array_equal(outs["sim"], outs["ir"])
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cycles"] >= report["roofline_cycles"] > 0
    assert {"cycles", "roofline_cycles", "target", "layers"} <= set(report)
    code, out, _ = tcc_cli("disasm", tmp_path / "m.tcc")
    assert code == 0 and "halt" in out and "matmul conv" in out
    (tmp_path / "p.s").write_text(out)
    code, _, err = tcc_cli("asm", tmp_path / "p.s", "-o", tmp_path / "p.bin")
    assert code == 0, err
    assert (tmp_path / "p.bin").read_bytes() == Artifact.load(tmp_path / "m.tcc").program.astype("<u8").tobytes()


def test_cli_errors(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "-o", tmp_path / "m.tcc")
    assert code == 2 and "--calib" in err
    (tmp_path / "bad.tcc").write_bytes(b"TCCARTF\0" + b"\0" * 10)
    code, _, err = tcc_cli("run", tmp_path / "bad.tcc", "-o", tmp_path / "o.npz")
    assert code == 2 and "error:" in err and "Traceback" not in err
