"""tcc's int8 quantizer beside onnxruntime's `quantize_static`, on the same calibration and test inputs.

    python bench/quant_vs_ort.py [--models digits,resnet50,...] [--method minmax|entropy|percentile]
                                 [--tcc-method auto|minmax|...] [--calib-samples 8] [--test-samples 16]

Per model, both quantizers see the same float ONNX model and the same calibration samples:
tcc runs its float pipeline plus the quantization pipeline and the integer reference
interpreter; onnxruntime runs `quant_pre_process`, then `quantize_static` (QDQ, per-channel
int8 weights, int8 activations, the same calibration method) and executes the QDQ model.
Both are measured against float onnxruntime on the test inputs: SQNR in dB of the logits
(the pre-softmax output: softmax saturates) and top-1 agreement.  `digits` is the trained
digits CNN with its own calibration and test splits, also scored against the test labels;
the light zoo models have random weights, N(0, 1) calibration inputs and other N(0, 1) test
inputs (random-weight squeezenet's logits are nearly tied, so its top-1 agreement is noise).
Goal: tcc at least as close to float as onnxruntime on every model.  ``--tcc-method`` gives tcc
another calibration method than onnxruntime's (e.g. ``auto``: min/max, and the least-error range
for the inputs of conv/linear/matmul layers; the data are the same).

Note on `--method entropy`: `quantize_static` builds onnxruntime's entropy calibrator with 128
histogram bins and 128 quantized bins, and offers no option to change them, so its search has
one candidate threshold, the full range: onnxruntime's "entropy" column is its min/max result.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
import block_models  # noqa: E402
import light_zoo  # noqa: E402

from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.ir.interpreter import run_module  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE  # noqa: E402
from tcc.passes.quantize.calibration import CALIBRATION_METHODS  # noqa: E402

DIGITS = ROOT / "examples" / "digits"
DEFAULT_MODELS = ("digits", "resnet50", "squeezenet", "inception_v1", "densenet121", "shufflenet")
ORT_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
PERCENTILE = 99.99  # tcc's default; onnxruntime's (99.999) is set to match
# QDQ with per-channel weights needs DequantizeLinear's axis attribute (opset 13); the light
# zoo is opset 9, so both quantizers get the same model converted to this opset.
QDQ_OPSET = 13


@dataclass
class Case:
    """One model with the inputs both quantizers see."""

    name: str
    model: onnx.ModelProto
    input_name: str
    calib: np.ndarray  # [N, *input_shape]
    test: np.ndarray  # [M, *input_shape]
    logits: str  # the output compared against float
    labels: np.ndarray | None = None


@dataclass
class Result:
    outputs: list[np.ndarray]  # logits per test sample
    quantize_s: float  # import/pre-processing + calibration + lowering
    run_s: float  # all test samples


def digits_case() -> Case:
    with np.load(DIGITS / "digits_calib.npz") as c, np.load(DIGITS / "digits_test.npz") as t:
        calib, test, labels = c["input"][:, None], t["input"][:, None], t["label"]
    return Case("digits", onnx.load(str(DIGITS / "digits_cnn.onnx")), "input", calib, test, "logits", labels)


def zoo_case(name: str, n_calib: int, n_test: int) -> Case:
    """A light zoo model with random weights, its logits exposed, initializers out of the graph inputs."""
    model = light_zoo.randomized(name, expose_logits=True)
    inits = {i.name for i in model.graph.initializer}
    data = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(data)
    model = onnx.shape_inference.infer_shapes(onnx.version_converter.convert_version(model, QDQ_OPSET))
    shape = [d.dim_value for d in data[0].type.tensor_type.shape.dim]
    calib = np.random.default_rng(1).standard_normal([n_calib, *shape]).astype(np.float32)
    test = np.random.default_rng(2).standard_normal([n_test, *shape]).astype(np.float32)
    return Case(name, model, data[0].name, calib, test, model.graph.output[-1].name)


def block_case(name: str, n_calib: int, n_test: int) -> Case:
    """A block model of examples/block_models.py (SE, SiLU, HardSwish, gates, dead BatchNorm channels)."""
    model = block_models.MODELS[name]()
    input_name = model.graph.input[0].name
    calib = block_models.calibration(model, n_calib, seed=1)[input_name]
    test = block_models.calibration(model, n_test, seed=2)[input_name]
    return Case(name, model, input_name, calib, test, model.graph.output[0].name)


def session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run_ort(sess: ort.InferenceSession, case: Case) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    outputs = [sess.run([case.logits], {case.input_name: x})[0] for x in case.test]
    return outputs, time.perf_counter() - start


def tcc_int8(case: Case, method: str, workdir: Path) -> Result:
    calib = workdir / f"{case.name}.calib.npz"
    np.savez(calib, **{case.input_name: case.calib})
    start = time.perf_counter()
    module, _ = compile_to_ir(case.model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(calib, method=method))
    quantize_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = [run_module(module, {case.input_name: x})[case.logits] for x in case.test]
    return Result(outputs, quantize_s, time.perf_counter() - start)


class Samples(CalibrationDataReader):
    def __init__(self, case: Case):
        self.samples = iter([{case.input_name: x} for x in case.calib])

    def get_next(self):
        return next(self.samples, None)


def ort_int8(case: Case, method: str, workdir: Path) -> Result:
    source, prepared, quantized = (workdir / f"{case.name}.{s}.onnx" for s in ("float", "pre", "qdq"))
    onnx.save(case.model, str(source))
    start = time.perf_counter()
    quant_pre_process(str(source), str(prepared))
    with contextlib.redirect_stdout(io.StringIO()):  # histogram calibrators print progress
        quantize_static(str(prepared), str(quantized), Samples(case), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=ORT_METHODS[method], extra_options={"CalibPercentile": PERCENTILE})
    quantize_s = time.perf_counter() - start
    outputs, run_s = run_ort(session(quantized), case)
    return Result(outputs, quantize_s, run_s)


def sqnr_db(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    ref = np.concatenate([r.ravel() for r in reference]).astype(np.float64)
    err = ref - np.concatenate([g.ravel() for g in got]).astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum(err ** 2), 1e-300)))


def top1(outputs: list[np.ndarray]) -> np.ndarray:
    return np.array([int(np.argmax(o)) for o in outputs])


def measure(case: Case, method: str, workdir: Path, tcc_method: str | None = None) -> dict:
    reference, float_s = run_ort(session(case.model), case)
    tcc, theirs = tcc_int8(case, tcc_method or method, workdir), ort_int8(case, method, workdir)
    row = {"model": case.name, "n": (len(case.calib), len(case.test)), "float_run": float_s,
           "tcc": tcc, "ort": theirs}
    for side, result in (("tcc", tcc), ("ort", theirs)):
        row[f"{side}_db"] = sqnr_db(reference, result.outputs)
        row[f"{side}_agree"] = float(np.mean(top1(result.outputs) == top1(reference)))
        if case.labels is not None:
            row[f"{side}_acc"] = float(np.mean(top1(result.outputs) == case.labels))
    if case.labels is not None:
        row["float_acc"] = float(np.mean(top1(reference) == case.labels))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help=f"comma-separated: digits, light zoo names ({', '.join(light_zoo.MODELS)}) "
                             f"and/or block models ({', '.join(block_models.MODELS)})")
    parser.add_argument("--method", choices=sorted(ORT_METHODS), default="minmax",
                        help="calibration method, the same on both sides unless --tcc-method")
    parser.add_argument("--tcc-method", choices=sorted(CALIBRATION_METHODS), default=None,
                        help="tcc's calibration method (default: --method)")
    parser.add_argument("--calib-samples", type=int, default=8, help="light zoo: N(0,1) calibration inputs")
    parser.add_argument("--test-samples", type=int, default=16, help="light zoo: N(0,1) test inputs")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n != "digits" and n not in light_zoo.MODELS and n not in block_models.MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}")
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer warns on root per tensor
    ort.set_default_logger_severity(3)

    tcc_method = args.tcc_method or args.method
    print(f"int8 vs float onnxruntime, calibration tcc {tcc_method}, ORT {args.method}: SQNR of the logits (dB), top-1 agreement "
          f"with float; times in s (quantize = import/pre-process + calibrate + lower; run = all test samples)")
    header = (f"{'model':<14}{'calib/test':>11}{'tcc dB':>8}{'ORT dB':>8}{'tcc-ORT':>8}{'tcc agree':>10}"
              f"{'ORT agree':>10}{'tcc quant':>10}{'ORT quant':>10}{'tcc run':>9}{'ORT run':>9}{'float run':>10}")
    print(header)
    print("-" * len(header))
    rows = []
    with tempfile.TemporaryDirectory(prefix="tcc-quant-vs-ort-") as tmp:
        for name in names:
            if name in block_models.MODELS:
                case = block_case(name, args.calib_samples, args.test_samples)
            else:
                case = digits_case() if name == "digits" else zoo_case(name, args.calib_samples, args.test_samples)
            r = measure(case, args.method, Path(tmp), tcc_method)
            rows.append(r)
            print(f"{r['model']:<14}{'%d/%d' % r['n']:>11}{r['tcc_db']:>8.2f}{r['ort_db']:>8.2f}"
                  f"{r['tcc_db'] - r['ort_db']:>+8.2f}{r['tcc_agree']:>10.3f}{r['ort_agree']:>10.3f}"
                  f"{r['tcc'].quantize_s:>10.2f}{r['ort'].quantize_s:>10.2f}{r['tcc'].run_s:>9.2f}"
                  f"{r['ort'].run_s:>9.2f}{r['float_run']:>10.2f}", flush=True)
    for r in rows:
        if "float_acc" in r:
            print(f"{r['model']}: top-1 accuracy vs test labels: float {r['float_acc']:.4f}, "
                  f"tcc int8 {r['tcc_acc']:.4f}, ORT int8 {r['ort_acc']:.4f}")
    behind = [r["model"] for r in rows if r["tcc_db"] < r["ort_db"]]
    mean_diff = float(np.mean([r["tcc_db"] - r["ort_db"] for r in rows]))
    quant_ratio = float(np.exp(np.mean([np.log(r["tcc"].quantize_s / r["ort"].quantize_s) for r in rows])))
    print(f"tcc SQNR >= ORT SQNR on {len(rows) - len(behind)} of {len(rows)} models"
          + (f" (behind on {', '.join(behind)})" if behind else "")
          + f"; mean difference {mean_diff:+.2f} dB; quantize time tcc/ORT {quant_ratio:.2f}x (geometric mean)")
    if args.method == "entropy":
        print("note: onnxruntime's entropy calibration through quantize_static (128 bins, 128 quantized bins) "
              "keeps the min/max range; see this file's docstring")
    return 0


if __name__ == "__main__":
    sys.exit(main())
