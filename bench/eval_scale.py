"""`tcc eval` at dataset scale: samples/s on 1 and 2 workers, the accuracy table, memory on a big folder.

    python bench/eval_scale.py [--images 50000]

For the digits CNN (360 test images) and the BERT-style encoder (360 test sequences): compile for the
overlay, evaluate float / reference / simulator with 1 and 2 worker processes, print samples per
second and the speedup, check the two runs agree bit for bit, and print the accuracy table. The
same engine calibrates: each model's calibration file observed with 1 and 2 workers (ranges equal?),
and measures mixed precision's per-layer sensitivities (the sweep of --quant mixed) on 1 and 2 workers
(errors equal?).
Then the data reader's memory: a folder of N digits images evaluated on the float path, max RSS measured
in a child process beside one of N/10 images (bounded memory: the two should be about equal).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "digits CNN": (ROOT / "examples/digits/digits_cnn.onnx", ROOT / "examples/digits/digits_calib.npz",
                   ROOT / "examples/digits/digits_test.npz"),
    "encoder": (ROOT / "examples/encoder/encoder.onnx", ROOT / "examples/encoder/encoder_calib.npz",
                ROOT / "examples/encoder/encoder_test.npz"),
}


def scaling(folder: Path) -> None:
    from tcc.cli import main
    from tcc.evaluation import evaluate, format_eval

    print(f"{'model':<12} {'1 worker':>12} {'2 workers':>12} {'speedup':>8}  same result")
    tables = []
    for name, (model, calib, test) in MODELS.items():
        artifact = folder / f"{model.stem}.tcc"
        assert main(["compile", str(model), "-t", "overlay", "--calib", str(calib), "-o", str(artifact)]) == 0
        runs = {w: evaluate(model, artifact, test, labels="label", workers=w) for w in (1, 2)}
        rate = {w: r.samples / r.wall_seconds for w, r in runs.items()}
        same = runs[1].sample_results() == runs[2].sample_results()
        print(f"{name:<12} {rate[1]:>9.1f}/s {rate[2]:>9.1f}/s {rate[2] / rate[1]:>7.2f}x  {same}")
        tables.append(format_eval(runs[2]))
    print()
    print("\n\n".join(tables))
    calibration_scaling()
    sweep_scaling()


def sweep_scaling() -> None:
    from tcc.driver import CompileOptions, compile_model
    from tcc.evaluation.calibrate import sweep_mapper
    from tcc.ir.interpreter import run_module
    from tcc.passes.quantize.calibration import calibrate, load_samples
    from tcc.passes.quantize.lowering import LoweringConfig
    from tcc.passes.quantize.mixed_precision import DEFAULT_CANDIDATES, spread_subset
    from tcc.passes.quantize.sensitivity import measure_sensitivity, weight_layers

    print(f"\nmixed precision's sensitivity sweep (candidates {'/'.join(DEFAULT_CANDIDATES)}, 64 samples)\n"
          f"{'model':<12} {'runs':>5} {'1 worker':>10} {'2 workers':>10} {'speedup':>8}  same errors")
    for name, (model, calib, _) in MODELS.items():
        module = compile_model(str(model), "ir", CompileOptions())
        samples = load_samples(str(calib), module)
        ranges = calibrate(module, samples)
        subset = spread_subset(samples, 64)
        reference = [run_module(module, x) for x in subset]
        layers = weight_layers(module)
        seconds, errors = {}, {}
        for w in (1, 2):
            start = time.perf_counter()
            errors[w] = measure_sensitivity(module, ranges, layers, DEFAULT_CANDIDATES, subset, reference,
                                            LoweringConfig(), mapper=None if w == 1 else sweep_mapper(w)).errors
            seconds[w] = time.perf_counter() - start
        runs = 1 + len(layers) * (len(DEFAULT_CANDIDATES) - 1)
        print(f"{name:<12} {runs:>5} {seconds[1]:>9.1f}s {seconds[2]:>9.1f}s {seconds[1] / seconds[2]:>7.2f}x  "
              f"{np.array_equal(errors[1], errors[2])}")


def calibration_scaling() -> None:
    from tcc.driver import CompileOptions, compile_model
    from tcc.evaluation.calibrate import calibration_executor
    from tcc.passes.quantize.calibration import calibrate

    print(f"\ncalibration through the engine (--calibrate auto, streamed)\n{'model':<12} {'samples':>8} "
          f"{'1 worker':>12} {'2 workers':>12} {'speedup':>8}  same ranges")
    for name, (model, calib, _) in MODELS.items():
        module = compile_model(str(model), "ir", CompileOptions())
        seconds, ranges = {}, {}
        for w in (1, 2):
            start = time.perf_counter()
            ranges[w] = calibrate(module, None, "auto", executor=calibration_executor(str(calib), w))
            seconds[w] = time.perf_counter() - start
        n = len(np.load(calib)[module.inputs[0].name])
        print(f"{name:<12} {n:>8} {n / seconds[1]:>9.1f}/s {n / seconds[2]:>9.1f}/s "
              f"{seconds[1] / seconds[2]:>7.2f}x  {ranges[1] == ranges[2]}")


CHILD = """
import resource, sys, time
from tcc.evaluation import Preprocess, evaluate
start = time.perf_counter()
r = evaluate(sys.argv[1], None, sys.argv[2], workers=1, preprocess=Preprocess(16, 16, (8 / 17,), (8 / 17,)))
print(r.samples, r.paths[0].top1, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(folder: Path, images: int) -> None:
    from PIL import Image

    data = np.load(MODELS["digits CNN"][2])
    pixels = np.rint((data["input"][:, 0] + 1) * 120).astype(np.uint8)
    print("\nimage folder of digits PNGs (float path, one process): max RSS against the folder's size")
    print(f"{'images':>8} {'seconds':>8} {'images/s':>9} {'max RSS MB':>11} {'top-1':>7}")
    for count in (images // 10, images):
        root = folder / f"images{count}"
        for i in range(count):
            label = int(data["label"][i % len(pixels)])
            (root / f"c{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i % len(pixels)], "L").save(root / f"c{label}" / f"{i:06}.png")
        out = subprocess.run([sys.executable, "-c", CHILD, str(MODELS["digits CNN"][0]), str(root)],
                             capture_output=True, text=True, check=True).stdout.split()
        n, top1, seconds, rss_kb = int(out[0]), float(out[1]), float(out[2]), int(out[3])
        print(f"{n:>8} {seconds:>8.1f} {n / seconds:>9.0f} {rss_kb / 1024:>11.1f} {100 * top1:>6.2f}%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        scaling(Path(tmp))
        memory(Path(tmp), args.images)
        print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
