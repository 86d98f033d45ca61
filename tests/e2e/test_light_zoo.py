"""The light model zoo end to end: import, textual IR round trip, reference run against onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import light_zoo
from tcc.frontend import import_onnx
from tcc.ir import parse_module, print_module, verify


def ort_run(model: onnx.ModelProto, inputs):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def relative_error(actual, expected) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / max(np.abs(expected).max(), 1e-30))


@pytest.mark.parametrize("name", light_zoo.MODELS)
def test_original_light_model_imports_and_round_trips(name):
    module = import_onnx(light_zoo.light_path(name))
    verify(module)
    text = print_module(module)
    assert print_module(parse_module(text)) == text


@pytest.mark.parametrize("name", light_zoo.MODELS)
def test_random_weights_match_onnxruntime_through_the_cli(name, tmp_path, tcc_cli):
    model = light_zoo.randomized(name, expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    onnx.save(model, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "in.npz", **inputs)

    code, _, err = tcc_cli("compile", tmp_path / "m.onnx", "-t", "ir", "-o", tmp_path / "m.tir")
    assert code == 0, err
    code, _, err = tcc_cli("opt", tmp_path / "m.tir", "-o", tmp_path / "again.tir")
    assert code == 0, err
    assert (tmp_path / "again.tir").read_bytes() == (tmp_path / "m.tir").read_bytes()
    code, _, err = tcc_cli("run", tmp_path / "again.tir", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    assert code == 0, err

    expected = ort_run(model, inputs)
    with np.load(tmp_path / "out.npz") as got:
        assert sorted(got.files) == sorted(expected)
        for key, value in expected.items():
            assert got[key].shape == value.shape
            error = relative_error(got[key], value)
            print(f"{name} {key}: max|diff|/max|ref| = {error:.2e}")
            assert error <= 1e-4, f"{name} output {key}: relative error {error:.2e}"
