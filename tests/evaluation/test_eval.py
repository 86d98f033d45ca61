"""tcc eval: the digits CNN's float / reference / simulator accuracy, the same whichever way it runs."""
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tcc.evaluation import Preprocess, evaluate
from tcc.evaluation.data import ArrayDataset, ImageFolderDataset

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
MODEL, TEST, CALIB = DIGITS / "digits_cnn.onnx", DIGITS / "digits_test.npz", DIGITS / "digits_calib.npz"
LIMIT = 40


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from tcc.cli import main

    path = tmp_path_factory.mktemp("eval") / "digits.tcc"
    assert main(["compile", str(MODEL), "-t", "overlay", "--calib", str(CALIB), "-o", str(path)]) == 0
    return path


def onnxruntime_top1(limit: int) -> float:
    """Float top-1 computed directly with onnxruntime, independently of tcc eval."""
    data = np.load(TEST)
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    hits = [session.run(None, {"input": x[None]})[0].argmax() == y
            for x, y in zip(data["input"][:limit], data["label"][:limit])]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def serial(artifact):
    return evaluate(MODEL, artifact, TEST, labels="label", limit=LIMIT, workers=1)


def test_three_paths_on_the_digits_test_split(serial):
    float_path, reference, sim = serial.paths
    assert [p.path for p in serial.paths] == ["float", "reference", "sim"]
    assert float_path.top1 == onnxruntime_top1(LIMIT)
    assert sim.equal_reference == LIMIT and serial.first_mismatch is None
    assert sim.top1 == reference.top1 and abs(sim.top1 - float_path.top1) <= 0.05
    assert sim.sqnr_mean_db == reference.sqnr_mean_db and sim.sqnr_mean_db > 25
    assert sim.sqnr_p5_db <= sim.sqnr_mean_db and sim.worst_sqnr_db <= sim.sqnr_p5_db
    assert 0 <= sim.worst_index < LIMIT and float_path.agree_float == 1.0


def test_a_process_pool_gives_the_same_result_bit_for_bit(serial, artifact):
    pooled = evaluate(MODEL, artifact, TEST, labels="label", limit=LIMIT, workers=2)
    assert pooled.executor == "process pool"
    assert pooled.sample_results() == serial.sample_results()


@pytest.mark.parametrize("pays_from, executor", [(1e9, "in process"), (0.0, "process pool")])
def test_by_default_workers_start_only_when_the_set_outlasts_their_start(serial, artifact, monkeypatch,
                                                                         pays_from, executor):
    """No --workers: the first chunk runs here and times the set; a set done sooner than workers
    start stays here, a longer one goes to the pool for the rest; the result is the same."""
    import tcc.evaluation as evaluation
    from tcc.evaluation import engine

    monkeypatch.setattr(engine, "POOL_PAYS_FROM", pays_from)
    monkeypatch.setattr(evaluation, "default_workers", lambda: 2)  # as on a 2-core machine
    auto = evaluate(MODEL, artifact, TEST, labels="label", limit=LIMIT)
    assert auto.executor == executor and auto.workers == (1 if executor == "in process" else 2)
    assert auto.sample_results() == serial.sample_results()


def test_ray_gives_the_same_result_bit_for_bit(serial, artifact):
    pytest.importorskip("ray")
    on_ray = evaluate(MODEL, artifact, TEST, labels="label", limit=LIMIT, workers=2, ray="local")
    assert on_ray.executor == "ray local"
    assert on_ray.sample_results() == serial.sample_results()


def test_per_layer_drift_equals_tcc_verify_on_the_same_samples(tmp_path):
    """The quantized .tir path (reference only) with --per-layer gives verify's per-layer SQNRs."""
    from tcc.cli import main
    from tcc.verify import verify

    tir = tmp_path / "q.tir"
    assert main(["compile", str(MODEL), "-t", "ir", "--calib", str(CALIB), "-o", str(tir)]) == 0
    got = evaluate(MODEL, tir, TEST, limit=6, workers=1, per_layer=True)
    assert [p.path for p in got.paths] == ["float", "reference"]
    want = verify(MODEL, CALIB, target="ir", inputs=TEST, samples=6)
    assert [(layer.name, layer.sqnr_db) for layer in got.layers] == [(layer.name, layer.sqnr_db)
                                                                     for layer in want.layers]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_rows_are_read_lazily_and_exactly(tmp_path, save):
    data = np.load(TEST)
    path = tmp_path / "d.npz"
    save(path, input=data["input"], label=data["label"])  # rows [1,16,16]: the input without its batch dim
    dataset = ArrayDataset(path, {"input": (1, 1, 16, 16)}, "label")
    assert len(dataset) == 360
    for start, stop in [(0, 8), (8, 20), (300, 360), (4, 6)]:  # forwards, then back (reopens a stream)
        rows = dataset.read(start, stop)
        assert np.array_equal(np.stack([s.feeds["input"] for s in rows]), data["input"][start:stop, None])
        assert [s.label for s in rows] == data["label"][start:stop].tolist()


def test_an_image_folder_is_read_with_imagenet_style_preprocessing(tmp_path):
    """The digits test images as 16x16 PNGs (pixel p stored as 15p) in one folder per class:
    mean = std = 8/17 turns 15p/255 back into the model's p/8 - 1."""
    from PIL import Image

    data = np.load(TEST)
    pixels = np.rint((data["input"][:, 0] + 1) * 8 * 15).astype(np.uint8)
    for i, (image, label) in enumerate(zip(pixels[:30], data["label"][:30])):
        folder = tmp_path / f"class{label}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{i:03}.png")
    pre = Preprocess(resize=16, crop=16, mean=(8 / 17,), std=(8 / 17,))
    dataset = ImageFolderDataset(tmp_path, {"input": (1, 1, 16, 16)}, pre)
    classes = sorted({int(label) for label in data["label"][:30]})
    by_file = {f"{i:03}.png": i for i in range(30)}
    for sample, (path, _) in zip(dataset.read(0, len(dataset)), dataset.files):
        i = by_file[path.name]
        assert sample.label == classes.index(int(data["label"][i]))
        np.testing.assert_allclose(sample.feeds["input"], data["input"][i:i + 1], atol=1e-6)
    result = evaluate(MODEL, None, tmp_path, workers=1, preprocess=pre)
    assert result.samples == 30 and result.paths[0].top1 is not None


@pytest.mark.parametrize("args, message", [
    (["--data", "nope.npz"], "nope.npz: no such data file"),
    (["--data", str(TEST), "--labels", "missing"], "no label key 'missing'"),
    (["--data", str(TEST), "--paths", "float,gpu"], "--paths float,gpu: choose from float, reference, sim"),
    (["--data", str(CALIB), "--labels", "input"], "expected one integer class per sample"),
    (["--data", str(TEST), "--output", "probs"], "--output 'probs': the model's outputs are logits"),
])
def test_bad_options_are_one_line_and_exit_2(tcc_cli, args, message):
    code, out, err = tcc_cli("eval", MODEL, *args, "--workers", "1")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_tir_has_no_simulator(tcc_cli, tmp_path):
    tir = tmp_path / "f.tir"
    assert tcc_cli("compile", MODEL, "-o", tir)[0] == 0
    code, _, err = tcc_cli("eval", MODEL, "--artifact", tir, "--data", TEST, "--paths", "sim")
    assert code == 2 and "a .tir module has no simulator" in err


def test_cli_table_and_json(tcc_cli, artifact, tmp_path):
    code, out, err = tcc_cli("eval", MODEL, "--artifact", artifact, "--data", TEST, "--labels", "label",
                             "--limit", "8", "--workers", "1", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "sim" in out and "8/8" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["samples"] == 8 and data["paths"][2]["equal_reference"] == 8


def test_json_to_stdout_leaves_the_table_on_stderr(tcc_cli, tmp_path):
    code, out, err = tcc_cli("eval", MODEL, "--data", TEST, "--labels", "label", "--limit", "4", "--paths", "float",
                             "--workers", "1", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["samples"] == 4 and "float" in err


def test_a_script_without_a_main_guard_fails_clearly_instead_of_hanging(tmp_path):
    """Process-pool workers import the calling script again; a script that evaluates at import time
    would start pools from its workers.  It must stop within seconds with the advice, not hang."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text("from tcc.evaluation import evaluate\n"
                      f"evaluate({str(MODEL)!r}, data={str(TEST)!r}, paths=('float',), limit=16, workers=2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr
    assert "EvalError" in done.stderr  # the caller gets tcc's error, not a bare BrokenProcessPool
