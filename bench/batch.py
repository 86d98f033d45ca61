"""The simulator on a batch of N samples (``Session.run`` with N stacked inputs) against onnxruntime,
per sample, every figure measured in the same run.

    python bench/batch.py [--models resnet50,squeezenet] [--real convnext_t,crnn] [--sizes 1,8,32]
                          [--repeat 3] [--work DIR]

Per model and N: the simulator's warm time for a batch of N over N (best of --repeat after a first
run); onnxruntime's best of five per sample on one sample (``ort 1``), and on the same N samples
(``ort N``): one run on the N-sample batch where the model's batch dimension takes it (``b``),
else N runs one after another (``s``).  ``sim/ort1`` is the simulator per sample over onnxruntime
on one sample (goal 1's ratio, issue 16); ``sim/ortN`` over onnxruntime per sample on the same N.
``--work`` keeps the compiled artifacts there for the next run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
sys.path.insert(0, str(HERE.parent / "examples" / "real_models"))
sys.path.insert(0, str(HERE))
import light_zoo  # noqa: E402
import measure  # noqa: E402
from timing import best_of  # noqa: E402

from tcc.driver import CompileOptions, compile_model  # noqa: E402
from tcc.runtime import open_session  # noqa: E402


def light_source(name: str, work: Path) -> tuple[Path, Path, dict, list[dict]]:
    path, calib = work / f"zoo_{name}.onnx", work / f"zoo_{name}.calib.npz"  # (DenseNet-121 is in both sets)
    model = light_zoo.randomized(name, expose_logits=True)
    if not path.exists():
        onnx.save(model, str(path))
        rng = np.random.default_rng(7)
        feeds = light_zoo.model_inputs(model)
        np.savez(calib, **{k: rng.standard_normal((4,) + v.shape).astype(np.float32) for k, v in feeds.items()})
    samples = [light_zoo.model_inputs(model, seed) for seed in range(4)]
    return path, calib, {}, samples


def real_source(name: str, work: Path) -> tuple[Path, Path, dict, list[dict]]:
    samples = measure.samples(name, "test") + measure.samples(name, "calib")
    return measure.model_path(name), measure.HERE / f"{name}_calib.npz", measure.input_shapes(name), samples


def batch_of(samples: list[dict], n: int) -> dict:
    """N samples (the model's own, cycled) stacked on axis 0."""
    chosen = [samples[i % len(samples)] for i in range(n)]
    return {k: np.concatenate([s[k] for s in chosen]) for k in chosen[0]}


def measure_model(name: str, source, sizes: list[int], repeat: int, work: Path) -> list[dict]:
    path, calib, shapes, samples = source
    tcc_path = work / f"{path.stem}.tcc"
    if not tcc_path.exists():
        compile_model(str(path), "overlay", CompileOptions(input_shapes=shapes, calib=str(calib))).save(tcc_path)
    session = open_session(tcc_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort_session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    one = batch_of(samples, 1)
    ort_one, _ = best_of(5, lambda: ort_session.run(None, one))
    rows = []
    for n in sizes:
        feeds = batch_of(samples, n)
        session.run(None, feeds)
        sim_s, _ = best_of(repeat, lambda feeds=feeds: session.run(None, feeds))
        try:
            ort_n, _ = best_of(5, lambda feeds=feeds: ort_session.run(None, feeds))
            how = "b"
        except Exception:  # a batch dim fixed at 1: N runs one after another
            singles = [batch_of(samples[i % len(samples):], 1) for i in range(n)]
            ort_n, _ = best_of(5, lambda singles=singles: [ort_session.run(None, s) for s in singles])
            how = "s"
        rows.append({"model": name, "n": n, "sim_ms": 1e3 * sim_s / n, "ort1_ms": 1e3 * ort_one,
                     "ortn_ms": 1e3 * ort_n / n, "how": how})
    return rows


HEAD = f"{'model':<16}{'N':>4}{'sim ms/s':>10}{'ort 1 ms':>10}{'ort N ms/s':>12}{'sim/ort1':>10}{'sim/ortN':>10}"


def format_row(r: dict) -> str:
    return (f"{r['model']:<16}{r['n']:>4}{r['sim_ms']:>10.2f}{r['ort1_ms']:>10.2f}{r['ortn_ms']:>10.2f} {r['how']}"
            f"{r['sim_ms'] / r['ort1_ms']:>9.1f}x{r['sim_ms'] / r['ortn_ms']:>9.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(light_zoo.MODELS), help="light-zoo models, or 'none'")
    parser.add_argument("--real", default=",".join(measure.NAMES), help="real-model set, or 'none'")
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", help="a directory keeping the compiled artifacts between runs")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    jobs = [(n, light_source) for n in args.models.split(",") if n != "none"]
    jobs += [(n, real_source) for n in args.real.split(",") if n != "none"]
    print(HEAD)
    print("-" * len(HEAD))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, source in jobs:
            try:
                for row in measure_model(name, source(name, work), sizes, args.repeat, work):
                    print(format_row(row), flush=True)
            except Exception as error:  # a model that does not compile or run: its one-line reason, go on
                print(f"{name:<16}failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                      flush=True)
    print("sim ms/s: simulator per sample on a batch of N; ort 1: onnxruntime on one sample; ort N ms/s: per sample "
          "on the same N (b: one batched run, s: N sequential runs); sim/ort1 is issue 16's goal-1 ratio (<= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
