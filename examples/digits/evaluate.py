"""Float top-1 of the digits CNN on its test split, run with onnxruntime (numpy only, no torch).

    python examples/digits/evaluate.py [--model digits_cnn.onnx] [--data digits_test.npz]

A model whose batch dim is fixed at 1 runs sample by sample; one with a symbolic batch dim
(digits_cnn_dynamic.onnx) runs the whole split in one call.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent


def predict(model: Path, inputs: np.ndarray) -> np.ndarray:
    """Logits [N,10] for inputs [N,1,H,W]."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    if model_input.shape[0] == 1:
        rows = [session.run(None, {model_input.name: inputs[i:i + 1]})[0] for i in range(len(inputs))]
        return np.concatenate(rows)
    return session.run(None, {model_input.name: inputs})[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "digits_cnn.onnx")
    parser.add_argument("--data", type=Path, default=HERE / "digits_test.npz")
    args = parser.parse_args()

    data = np.load(args.data)
    inputs, labels = data["input"], data["label"]
    correct = int((predict(args.model, inputs).argmax(axis=1) == labels).sum())
    print(f"{args.model.name}: onnxruntime float top-1 {correct / len(labels):.4f} "
          f"({correct}/{len(labels)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
