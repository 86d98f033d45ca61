"""Where the real-model CNNs lose their int8 SQNR, and what the post-training remedies do about it.

    python bench/sqnr_budget.py [--models efficientnet_b0,mobilenet_v3] [--top 3]

Per model of examples/real_models (the image classifiers; their calibration file, 8 samples, and
test file, 2 samples), all on tcc's reference interpreters, SQNR in dB against the float model:

- ``int8``: tcc's default int8 pipeline (the integer model issue 14's >= 25 dB goal is about).
- ``+equalize``: the cross-layer equalization pass before quantizing (passes/quantize/equalization.py),
  on the test samples and, in brackets, on the calibration samples it was fitted on.
- ``input only``: the float model with nothing quantized but its input, rounded to int8 at the range
  tcc calibrates for it (the calibration min/max): a bound on any int8 model with an int8 input.
- ``noise 40 dB``: the float model's output SQNR when white noise 40 dB below the input is added to
  it: how much these networks amplify a perturbation (a quantizer adds one at every tensor).
- the ``--top`` tensors whose int8 rounding alone (every other tensor float) costs the most, as
  the share of the sum of those single-tensor noise powers (4 test-like samples: slow, opt-in
  with --top).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "real_models"))
import measure  # noqa: E402

from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.ir import numerics  # noqa: E402
from tcc.ir.interpreter import run_module  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE  # noqa: E402
from tcc.passes.quantize import CrossLayerEqualization  # noqa: E402
from tcc.passes.quantize.calibration import calibrate  # noqa: E402
from tcc.passes.quantize.params import activation_params  # noqa: E402

MODELS = ("mobilenet_v3", "efficientnet_b0", "regnet_y", "convnext_t", "shufflenet_v2", "densenet121",
          "inception_v3")


def int8_round_trip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    p = activation_params(lo, hi, symmetric=False)
    scale, zp = p.scale[0], p.zero_point[0]
    return numerics.dequantize_affine(numerics.quantize_affine(x, scale, zp), scale, zp).astype(np.float32)


def quantized(name: str, equalize: bool):
    calib = measure.HERE / f"{name}_calib.npz"
    passes = DEFAULT_FLOAT_PIPELINE + ((CrossLayerEqualization(calib=str(calib)),) if equalize else ()) \
        + quantization_pipeline(str(calib))
    module, _ = compile_to_ir(str(measure.model_path(name)), passes=passes)
    return module


def run_with_overrides(module, feed, chosen: set[int], ranges) -> dict:
    """run_module, with each op result in ``chosen`` replaced by its int8 round trip as it is made."""
    from tcc.ir.interpreter.interpreter import bind_inputs, evaluate_op

    env = bind_inputs(module, feed)
    for op in module.ops:
        for result, array in zip(op.results, evaluate_op(op, [env[id(v)] for v in op.operands])):
            env[id(result)] = int8_round_trip(np.asarray(array), *ranges[id(result)]) if id(result) in chosen \
                else array
    return {name: np.asarray(env[id(v)]) for name, v in module.outputs}


def noise_gain(module, feeds, db: float = 40.0) -> float:
    rng = np.random.default_rng(0)
    reference = [run_module(module, f) for f in feeds]
    noisy = []
    for feed in feeds:
        power = {k: float(np.mean(np.square(v, dtype=np.float64))) for k, v in feed.items()}
        noisy.append(run_module(module, {k: (v + rng.standard_normal(v.shape) * math.sqrt(power[k] / 10 ** (db / 10)))
                                         .astype(np.float32) for k, v in feed.items()}))
    return measure.sqnr_db(reference, noisy)


def top_tensors(module, ranges, feeds, count: int) -> list[tuple[str, str, float]]:
    """(tensor, producing op, share of the summed single-tensor noise) of the ``count`` costliest."""
    reference = [run_module(module, f) for f in feeds]
    noise = []
    for value in [v for v in module.values() if id(v) in ranges and (v.producer is None or v.producer.kind != "const")]:
        db = measure.sqnr_db(reference, [run_with_overrides(module, _rounded_inputs(module, f, {id(value)}, ranges),
                                                            {id(value)}, ranges) for f in feeds])
        noise.append((10 ** (-db / 10), value))
    total = sum(n for n, _ in noise)
    noise.sort(key=lambda item: -item[0])
    return [(v.name, v.producer.kind if v.producer else "input", n / total) for n, v in noise[:count]]


def _rounded_inputs(module, feed, chosen, ranges):
    return {v.name: int8_round_trip(feed[v.name], *ranges[id(v)]) if id(v) in chosen else feed[v.name]
            for v in module.inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--top", type=int, default=0, help="list the N costliest tensors (slow)")
    args = parser.parse_args()
    print(f"{'model':16s} {'int8':>6s} {'+equalize (calib vs int8)':>25s} {'input only':>11s} "
          f"{'noise 40 dB':>12s} {'seconds':>8s}")
    for name in args.models.split(","):
        start = time.perf_counter()
        test, calib = measure.samples(name, "test"), measure.samples(name, "calib")
        floating, _ = compile_to_ir(str(measure.model_path(name)))
        ref_test = [run_module(floating, f) for f in test]
        ref_calib = [run_module(floating, f) for f in calib]
        plain = quantized(name, equalize=False)
        equalized = quantized(name, equalize=True)
        int8 = measure.sqnr_db(ref_test, [run_module(plain, f) for f in test])
        eq_test = measure.sqnr_db(ref_test, [run_module(equalized, f) for f in test])
        eq_calib = measure.sqnr_db(ref_calib, [run_module(equalized, f) for f in calib])
        plain_calib = measure.sqnr_db(ref_calib, [run_module(plain, f) for f in calib])
        auto = calibrate(floating, calib)
        inputs = {id(v) for v in floating.inputs}
        only = measure.sqnr_db(ref_test, [run_with_overrides(floating, _rounded_inputs(floating, f, inputs, auto),
                                                             set(), auto) for f in test])
        gain = noise_gain(floating, test)
        print(f"{name:16s} {int8:6.1f} {eq_test:10.1f} ({eq_calib:4.1f} vs {plain_calib:4.1f}) "
              f"{only:11.1f} {gain:12.1f} {time.perf_counter() - start:8.0f}", flush=True)
        if args.top:
            for tensor, kind, share in top_tensors(floating, auto, test, args.top):
                print(f"    {tensor:32s} {kind:18s} {100 * share:5.1f}% of the single-tensor noise")


if __name__ == "__main__":
    main()
