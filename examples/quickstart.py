"""The main job on a bundled example: ResNet-50 from the onnx wheel's light zoo (random weights),
compiled to tcc IR with the CLI, run on the reference interpreter and compared with onnxruntime;
then quantized to int8, compiled for the overlay, simulated, checked bit for bit against the
integer reference, and its performance report printed.

    python examples/quickstart.py [--model resnet50] [--workdir out/quickstart]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import light_zoo


def tcc(*args) -> None:
    command = [sys.executable, "-m", "tcc", *map(str, args)]
    print("$ tcc " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=light_zoo.MODELS)
    parser.add_argument("--workdir", default="out/quickstart")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    model = light_zoo.randomized(args.model, expose_logits=True)  # logits too: softmax saturates
    inputs = light_zoo.model_inputs(model)
    onnx.save(model, str(work / f"{args.model}.onnx"))
    np.savez(work / "inputs.npz", **inputs)

    tcc("compile", work / f"{args.model}.onnx", "-t", "ir", "-o", work / f"{args.model}.tir",
        "--dump-ir-after", "all", "--dump-dir", work / "dumps", "--timings")
    tcc("run", work / f"{args.model}.tir", "--inputs", work / "inputs.npz", "-o", work / "outputs.npz")

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
    with np.load(work / "outputs.npz") as got:
        for name, ref in expected.items():
            err = np.abs(got[name].astype(np.float64) - ref).max() / np.abs(ref).max()
            top1 = int(got[name].reshape(-1).argmax()) == int(ref.reshape(-1).argmax())
            print(f"output {name!r}: max|tcc - onnxruntime| / max|onnxruntime| = {err:.2e}, "
                  f"top-1 {'agrees' if top1 else 'DIFFERS'}")
    print(f"IR after each pass: {work / 'dumps'}")

    rng = np.random.default_rng(1)
    np.savez(work / "calib.npz", **{k: rng.standard_normal((4,) + v.shape).astype(np.float32)
                                    for k, v in inputs.items()})
    tcc("compile", work / f"{args.model}.onnx", "-t", "overlay", "--calib", work / "calib.npz",
        "-o", work / f"{args.model}.tcc")
    tcc("run", work / f"{args.model}.tcc", "--inputs", work / "inputs.npz", "-o", work / "sim.npz",
        "--report", work / "report.json")
    tcc("run", work / f"{args.model}.tcc", "--inputs", work / "inputs.npz", "-o", work / "ref.npz", "--reference")
    with np.load(work / "sim.npz") as sim, np.load(work / "ref.npz") as ref:
        exact = all(np.array_equal(sim[k], ref[k]) for k in ref.files)
        for name, value in expected.items():
            noise = ((sim[name].astype(np.float64) - value) ** 2).sum()
            sqnr = 10 * np.log10((value.astype(np.float64) ** 2).sum() / noise) if noise else float("inf")
            print(f"overlay output {name!r}: SQNR vs float onnxruntime {sqnr:.1f} dB")
    print(f"simulator == integer reference, element for element: {exact}")
    tcc("report", work / f"{args.model}.tcc", "--inputs", work / "inputs.npz", "--top", "8")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
