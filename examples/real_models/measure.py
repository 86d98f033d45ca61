"""The steps that bench/real_models.py and tests/real_models run on each real model, through tcc's
public surface only (the `tcc` CLI in-process and tcc.runtime.open_session), so they keep working
as the compiler's internals change. Needs numpy, onnx, onnxruntime and tcc; not torch.

Each step returns its result or raises StepFailed with the one-line reason (tcc's own message)."""
from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: The set, in the order the README and the bench list it (make_models.py builds these names).
NAMES = ("mobilenet_v3", "efficientnet_b0", "regnet_y", "convnext_t", "shufflenet_v2", "densenet121",
         "inception_v3", "yolov8", "dbnet", "crnn", "vit_tiny", "bert")
CNNS = NAMES[:9]
#: --input-shape bindings for the models exported with dynamic dims (as detectors and Hugging Face
#: exports usually are; dbnet's written as -1): batch 1 and the test inputs' sizes.
INPUT_SHAPES = {"yolov8": ("image=1,3,128,128",),
                "dbnet": ("image=1,3,64,128",),
                "bert": ("input_ids=1,32", "attention_mask=1,32")}


class StepFailed(Exception):
    """A step did not complete; str() is the one-line reason."""


def model_path(name: str) -> Path:
    return HERE / f"{name}.onnx"


def samples(name: str, kind: str = "test", count: int | None = None) -> list[dict]:
    """The model's test (or calib) inputs, one feed dict per sample with batch dim 1."""
    with np.load(HERE / f"{name}_{kind}.npz") as data:
        arrays = {k: data[k] for k in data.files}
    n = min(len(v) for v in arrays.values())
    return [{k: v[i:i + 1] for k, v in arrays.items()} for i in range(n if count is None else min(n, count))]


def onnxruntime_outputs(name: str, feeds: list[dict]) -> list[dict]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path(name)), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, f))) for f in feeds]


def sqnr_db(reference: list[dict], got: list[dict]) -> float:
    """Signal to quantization noise over every output of every sample, in dB."""
    signal = noise = 0.0
    for ref, out in zip(reference, got):
        for key, value in ref.items():
            want, have = value.astype(np.float64), np.asarray(out[key], np.float64).reshape(value.shape)
            signal += float((want ** 2).sum())
            noise += float(((want - have) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def relative_error(reference: list[dict], got: list[dict]) -> float:
    """max |got - reference| / max |reference| over every output of every sample."""
    worst = 0.0
    for ref, out in zip(reference, got):
        for key, value in ref.items():
            scale = max(float(np.abs(value).max()), 1e-30)
            worst = max(worst, float(np.abs(out[key].astype(np.float64) - value).max()) / scale)
    return worst


def tcc(*args) -> str:
    """Run the tcc CLI in-process; its stdout, or StepFailed with its message when it exits non-zero."""
    from tcc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    if code != 0:
        lines = [line.strip() for line in err.getvalue().splitlines() if line.strip()]
        reason = "; ".join(lines[:3]) if lines and lines[0].endswith(":") else (lines[0] if lines else f"exit code {code}")
        raise StepFailed(reason.removeprefix("error: ").removeprefix("Error: ") + ("" if code == 2 else f" (exit {code})"))
    return out.getvalue()


def ir_outputs(name: str, feeds: list[dict], work: Path, quantized: bool = False) -> list[dict]:
    """`tcc compile -t ir` (int8 with `--calib` when ``quantized``), then `tcc run` of the IR on the
    reference interpreter (float, or integer)."""
    tir = work / f"{name}.{'int8' if quantized else 'float'}.tir"
    tcc("compile", model_path(name), "-t", "ir", "-o", tir, *shape_flags(name),
        *(("--calib", HERE / f"{name}_calib.npz") if quantized else ()))
    results = []
    for i, feed in enumerate(feeds):
        np.savez(work / f"{name}_in{i}.npz", **feed)
        tcc("run", tir, "--inputs", work / f"{name}_in{i}.npz", "-o", work / f"{name}_out{i}.npz")
        with np.load(work / f"{name}_out{i}.npz") as data:
            results.append({k: data[k] for k in data.files})
    return results


def onnxruntime_int8_outputs(name: str, feeds: list[dict], work: Path) -> list[dict]:
    """onnxruntime's own post-training quantization of the model (dynamic dims bound as for tcc), for
    scale: `quant_pre_process`, `quantize_static` (QDQ, per-channel int8 weights, int8 activations,
    minmax) on the same calibration file, run by onnxruntime."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(samples(name, "calib"))

        def get_next(self):
            return next(self.feeds, None)

    import onnx
    from macs import bind_input_shapes

    static, prepared, quantized = (work / f"{name}.{s}.onnx" for s in ("static", "pre", "qdq"))
    onnx.save(bind_input_shapes(onnx.load(str(model_path(name))), input_shapes(name)), str(static))
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)   # per-channel axis warnings for LayerNorm weights
    ort.set_default_logger_severity(3)            # and its calibration sessions' shape warnings
    try:
        with contextlib.chdir(work):                # its temporary files go to the current folder
            quant_pre_process(str(static), str(prepared))
            quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().setLevel(quiet)
    session = ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, f))) for f in feeds]


def shape_flags(name: str) -> list[str]:
    return [a for s in INPUT_SHAPES.get(name, ()) for a in ("--input-shape", s)]


def input_shapes(name: str) -> dict:
    """{input: shape} of the model's dynamic inputs as bound for the measurements."""
    return {k: tuple(int(d) for d in v.split(",")) for k, v in (s.split("=") for s in INPUT_SHAPES.get(name, ()))}


def compile_overlay(name: str, work: Path) -> tuple[Path, float]:
    """`tcc compile -t overlay --calib` with no other flag (but --input-shape); (artifact, seconds)."""
    artifact = work / f"{name}.tcc"
    start = time.perf_counter()
    tcc("compile", model_path(name), "-t", "overlay", "--calib", HERE / f"{name}_calib.npz", *shape_flags(name),
        "-o", artifact)
    return artifact, time.perf_counter() - start


def device_mac_fraction(name: str) -> float | None:
    """The share of the model's MACs that `tcc explain --json` places on the device; None when this
    tcc has no `explain` (before heterogeneous execution, a model that compiles runs whole on the device)."""
    import json

    from tcc.cli import cli

    if "explain" not in cli.commands:
        return None
    report = json.loads(tcc("explain", model_path(name), "-t", "overlay", "--calib", HERE / f"{name}_calib.npz",
                            *shape_flags(name), "--json"))
    return float(report["device_mac_fraction"])


def device_outputs(artifact: Path, feeds: list[dict]) -> tuple[list[dict], list[dict]]:
    """(simulator outputs, integer reference outputs) of the artifact, per sample."""
    from tcc.runtime import open_session

    session = open_session(artifact)
    names = [o.name for o in session.get_outputs()]
    simulated, reference = [], []
    for feed in feeds:
        try:
            simulated.append(dict(zip(names, session.run(None, feed))))
            reference.append(session.run_reference(feed))
        except Exception as error:   # the simulator's traps and the runtime's errors, reported by the bench
            raise StepFailed(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    return simulated, reference


def bit_exact(simulated: list[dict], reference: list[dict]) -> bool:
    return all(np.array_equal(s[k], r[k]) for s, r in zip(simulated, reference) for k in r)
