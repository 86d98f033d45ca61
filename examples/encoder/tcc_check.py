"""What tcc does today with the encoder and the ViT block: float IR and int8 IR on the reference
interpreter against onnxruntime, over the first N test samples.

    python examples/encoder/tcc_check.py [--samples 50] [--calibrate minmax]

Per model it prints the float IR's max relative error against onnxruntime, and the int8 IR's
SQNR of the logits against onnxruntime and its top-1 next to onnxruntime's. A stage that fails
prints its error instead. Needs tcc, numpy and onnxruntime.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE

HERE = Path(__file__).resolve().parent
MODELS = (("encoder.onnx", "tokens", "encoder_test.npz", "encoder_calib.npz"),
          ("vit_block.onnx", "image", "vit_test.npz", "vit_calib.npz"))


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    err = np.sum((reference.astype(np.float64) - got) ** 2)
    return math.inf if err == 0 else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / err))


def top1(logits: np.ndarray, labels: np.ndarray) -> str:
    correct = int((logits.argmax(axis=1) == labels).sum())
    return f"{correct / len(labels):.4f} ({correct}/{len(labels)})"


def check(model: Path, name: str, inputs: np.ndarray, labels: np.ndarray, calib: Path,
          method: str) -> None:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    reference = np.concatenate([session.run(None, {name: x[None]})[0] for x in inputs])
    print(f"{model.name}: onnxruntime top-1 {top1(reference, labels)} on {len(labels)} samples")
    rows = (("float IR", DEFAULT_FLOAT_PIPELINE),
            ("int8 IR", DEFAULT_FLOAT_PIPELINE + quantization_pipeline(calib, method=method)))
    for label, passes in rows:
        try:
            module, _ = compile_to_ir(model, passes=passes)
            got = np.concatenate([run_module(module, {name: x[None]})["logits"] for x in inputs])
        except Exception as error:  # report any stage's failure and go on to the next row
            print(f"  {label}: {type(error).__name__}: {error}")
            continue
        relative = float(np.abs(got - reference).max() / np.abs(reference).max())
        print(f"  {label}: max |tcc - ort| / max |ort| {relative:.2e}, SQNR "
              f"{sqnr_db(reference, got):.2f} dB, top-1 {top1(got, labels)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--calibrate", choices=("minmax", "percentile", "entropy", "mse"),
                        default="minmax")
    args = parser.parse_args()
    for model, name, test, calib in MODELS:
        with np.load(HERE / test) as data:
            inputs, labels = data[name][:args.samples], data["label"][:args.samples]
        check(HERE / model, name, inputs, labels, HERE / calib, args.calibrate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
