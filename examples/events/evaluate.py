"""Float top-1 of the event-frame classifier's two graphs on the test split, with onnxruntime.

    python examples/events/evaluate.py [--model events_submanifold.onnx ...] [--data events_test.npz]

Needs only numpy and onnxruntime. Without --model, evaluates both events_submanifold.onnx (the
trained semantics) and events_dense.onnx (same weights, dense convolutions).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
MODELS = (HERE / "events_submanifold.onnx", HERE / "events_dense.onnx")


def predict(model: Path, inputs: np.ndarray) -> np.ndarray:
    """Logits [N,10] for inputs [N,2,H,W], one sample per call (the graphs have batch 1)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[i:i + 1]})[0]
                           for i in range(len(inputs))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--data", type=Path, default=HERE / "events_test.npz")
    args = parser.parse_args()

    data = np.load(args.data)
    inputs, labels = data["input"], data["label"]
    for model in args.model or MODELS:
        correct = int((predict(model, inputs).argmax(axis=1) == labels).sum())
        print(f"{model.name}: onnxruntime float top-1 {correct / len(labels):.4f} "
              f"({correct}/{len(labels)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
