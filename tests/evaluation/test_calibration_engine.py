"""Calibration through the evaluation engine (issue 19): the calibration file streamed in chunks and
observed by parallel workers gives exactly the serial ranges, for every calibration method; the
observers' merge is exact on its own (histogram growth in any order)."""
from pathlib import Path

import numpy as np
import pytest

from tcc.driver import CompileOptions, compile_model
from tcc.evaluation.calibrate import calibration_executor
from tcc.passes.quantize.calibration import CALIBRATION_METHODS, calibrate, load_samples
from tcc.passes.quantize.observers import OBSERVERS, PercentileObserver

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
CALIB = str(DIGITS / "digits_calib.npz")


@pytest.fixture(scope="module")
def float_module():
    return compile_model(str(DIGITS / "digits_cnn.onnx"), "ir", CompileOptions())


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_parallel_streamed_calibration_equals_serial(float_module, method):
    samples = load_samples(CALIB, float_module, 40)
    serial = calibrate(float_module, samples, method)
    streamed = calibrate(float_module, None, method, executor=calibration_executor(CALIB, 1, max_samples=40))
    assert streamed == serial
    if method in ("auto", "entropy"):  # two worker processes cost seconds: two methods suffice
        parallel = calibrate(float_module, None, method, executor=calibration_executor(CALIB, 2, max_samples=40))
        assert parallel == serial
    activations = {id(v) for v in float_module.values()
                   if v.type.dtype == "f32" and (v.producer is None or v.producer.kind != "const")}
    assert activations <= set(serial)  # every float activation has a range


def test_parallel_calibration_of_a_transformer_equals_serial():
    """The encoder's float matmuls go through BLAS, whose rounding depends on its thread count:
    the ranges must not depend on the workers (every chunk runs with one BLAS thread)."""
    encoder = Path(__file__).resolve().parents[2] / "examples" / "encoder"
    calib = str(encoder / "encoder_calib.npz")
    module = compile_model(str(encoder / "encoder.onnx"), "ir", CompileOptions())
    serial = calibrate(module, load_samples(calib, module, 48), "auto")
    assert calibrate(module, None, "auto", executor=calibration_executor(calib, 2, max_samples=48)) == serial


@pytest.mark.parametrize("kind", ["minmax", "entropy"])
def test_observer_merge_is_exact_whatever_the_growth_order(kind):
    rng = np.random.default_rng(3)
    # magnitudes that make the histogram double its range several times, in both orders
    chunks = [rng.standard_normal(500).astype(np.float32) * s for s in (0.01, 3.0, 0.2, 40.0, 1e-6, 7.0)]
    whole = OBSERVERS[kind]()
    for c in chunks:
        whole.observe(c)
    for order in ([0, 1, 2], [3, 4, 5]), ([5, 3], [0, 1, 2, 4]):
        parts = []
        for group in order:
            obs = OBSERVERS[kind]()
            for i in sorted(group):
                obs.observe(chunks[i])
            parts.append(obs)
        merged = parts[0]
        for other in parts[1:]:
            merged.merge(other)
        assert merged.range() == whole.range()
        if hasattr(whole, "counts"):
            assert merged.radius == whole.radius and np.array_equal(merged.counts, whole.counts)


def test_percentile_options_travel_with_the_observer():
    a, b = PercentileObserver(99.0), PercentileObserver(99.0)
    a.observe(np.arange(100, dtype=np.float32))
    b.observe(-np.arange(1000, dtype=np.float32))
    a.merge(b)
    assert a.percentile == 99.0 and a.range()[0] < -900


def test_compile_with_workers_gives_the_same_artifact(tmp_path):
    from tcc.cli import main

    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.tcc"
        assert main(["compile", str(DIGITS / "digits_cnn.onnx"), "-t", "overlay", "--calib", CALIB,
                     "--workers", str(workers), "-o", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
