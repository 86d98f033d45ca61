"""Mixed precision on the overlay: accuracy against simulated cycles, the Pareto front beside the
uniform int8 / int4 / DyBit-4 models, on the trained digits CNN and the trained encoder.

    python bench/mixed_precision.py [--models digits,encoder] [--points 6] [--test-samples 360]

Per model: the uniform rows are the real pipelines (``--weights int8|int4|dybit4``).  The front
rows are points of the mixed-precision pass's Pareto fronts (under a cycles budget: cycles of the
whole model against the predicted output error; under a bytes budget: weight bytes), spread over
them, each lowered with its per-layer formats, beside the plan's predicted bytes and cycles and
the cycle prediction's error.  Every row is compiled for the overlay and simulated on one test input for
its cycles; top-1 (against the test labels) and the logits' SQNR against the float model come
from the integer reference interpreter over the test split (the simulator is bit-exact to it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tcc.backends.overlay.hetero import compile_heterogeneous
from tcc.backends.overlay.layer_costs import simulated_cycles
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.isa.target import load_target
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PRE_QUANT_PIPELINE, PassManager, make_pass
from tcc.passes.quantize import MixedPrecision
from tcc.passes.quantize.calibration import calibrate, load_samples
from tcc.passes.quantize.lowering import LoweringConfig
from tcc.passes.quantize.rules import lower_module

ROOT = Path(__file__).resolve().parents[1] / "examples"
MODELS = {
    "digits": (ROOT / "digits" / "digits_cnn.onnx", ROOT / "digits" / "digits_calib.npz",
               ROOT / "digits" / "digits_test.npz", "input"),
    "encoder": (ROOT / "encoder" / "encoder.onnx", ROOT / "encoder" / "encoder_calib.npz",
                ROOT / "encoder" / "encoder_test.npz", "tokens"),
}


def logits(module, inputs: np.ndarray, name: str) -> np.ndarray:
    return np.concatenate([run_module(module, {name: x[None]})["logits"] for x in inputs])


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    noise = np.sum((reference.astype(np.float64) - got) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))


def weight_bytes(artifact) -> int:
    parts = [artifact] if hasattr(artifact, "metadata") and "layers" in artifact.metadata else \
        [p for p in artifact.parts if hasattr(p, "metadata")]
    return sum(layer.get("weight_bytes", 0) for p in parts for layer in p.metadata["layers"])


def measure(label: str, formats: str, module, predicted, data, reference, target) -> dict:
    inputs, labels, name = data
    out = logits(module, inputs, name)
    artifact = compile_heterogeneous(module, target)
    return {"row": label, "formats": formats, "bytes": weight_bytes(artifact), "predicted": predicted,
            "cycles": simulated_cycles(module, target), "top1": float((out.argmax(1) == labels).mean()),
            "sqnr": sqnr_db(reference, out)}


def short(fmt: str) -> str:
    return fmt.replace("dybit", "d").replace("int", "i")


def rows_for(name: str, points: int, test_samples: int, kinds: list[str]) -> list[dict]:
    model, calib, test, input_name = MODELS[name]
    target = load_target()
    with np.load(test) as t:
        data = (t[input_name][:test_samples], t["label"][:test_samples], input_name)
    float_module, _ = compile_to_ir(str(model), passes=DEFAULT_FLOAT_PIPELINE)
    reference = logits(float_module, data[0], input_name)
    rows = []
    for fmt in ("int8", "int4", "dybit4"):
        module, _ = compile_to_ir(str(model), passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib),
                                                                                                   weights=fmt))
        rows.append(measure(f"uniform {fmt}", fmt, module, None, data, reference, target))
    source, _ = compile_to_ir(str(model), passes=DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)
    ranges = calibrate(source, load_samples(str(calib), source))
    for kind in kinds:
        passes = quantization_pipeline(str(calib), quant="mixed", **{f"budget_{kind}": 10**9})
        (mixed,) = [p for p in passes if isinstance(p, MixedPrecision)]
        compile_to_ir(str(model), passes=DEFAULT_FLOAT_PIPELINE + passes)
        plan = mixed.plan
        names = [c.layer.name for c in plan.choices]
        chosen = sorted(set(np.linspace(0, len(plan.front) - 1, min(points, len(plan.front))).round().astype(int)))
        for i in chosen:
            point = plan.front[i]
            module = lower_module(source, ranges, LoweringConfig(layer_weights=dict(zip(names, point.formats))))
            PassManager([make_pass("dce")]).run(module)
            counts = " ".join(f"{short(f)}x{point.formats.count(f)}" for f in dict.fromkeys(point.formats))
            rows.append(measure(f"{kind} {i}/{len(plan.front) - 1}", counts, module, (point.bytes, point.cycles),
                                data, reference, target))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits,encoder")
    parser.add_argument("--points", type=int, default=6, help="front points measured per model")
    parser.add_argument("--test-samples", type=int, default=360)
    parser.add_argument("--budgets", default="cycles,bytes", help="the fronts measured: of a cycles or bytes budget")
    args = parser.parse_args()
    for name in args.models.split(","):
        rows = rows_for(name, args.points, args.test_samples, args.budgets.split(","))
        print(f"\n{name}: weight bytes as packed on the overlay, cycles simulated; the plan's predictions "
              f"and their errors against them")
        print(f"{'row':<16}{'formats':<28}{'bytes':>8}{'pred':>8}{'cycles':>8}{'pred':>8}{'error':>8}"
              f"{'top-1':>8}{'SQNR dB':>9}")
        worst = 0.0
        for r in rows:
            pb, pc, err = "", "", ""
            if r["predicted"] is not None:
                pb, pc = r["predicted"]
                error = 100 * (pc - r["cycles"]) / r["cycles"]
                worst, err = max(worst, abs(error)), f"{error:+.2f}%"
            print(f"{r['row']:<16}{r['formats']:<28}{r['bytes']:>8}{pb:>8}{r['cycles']:>8}{pc:>8}{err:>8}"
                  f"{r['top1']:>8.4f}{r['sqnr']:>9.2f}")
        print(f"largest cycle prediction error: {worst:.2f}%; predicted bytes "
              + ("equal the artifact's" if all(r["predicted"] is None or r["predicted"][0] == r["bytes"]
                                               for r in rows) else "DIFFER from the artifact's"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
