"""Float top-1 of the encoder and the ViT block on their test splits, with onnxruntime (no torch).

    python examples/encoder/evaluate.py

Both models have batch fixed at 1, so the test samples run one at a time.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
MODELS = (("encoder.onnx", "encoder_test.npz"), ("vit_block.onnx", "vit_test.npz"))


def predict(model: Path, inputs: np.ndarray) -> np.ndarray:
    """Logits [N,10] for inputs [N,...], one sample per call."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[i:i + 1]})[0]
                           for i in range(len(inputs))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE, help="folder holding the models")
    args = parser.parse_args()

    for model, test in MODELS:
        data = np.load(args.dir / test)
        labels = data["label"]
        inputs = data[next(key for key in data.files if key != "label")]
        correct = int((predict(args.dir / model, inputs).argmax(axis=1) == labels).sum())
        print(f"{model}: onnxruntime float top-1 {correct / len(labels):.4f} "
              f"({correct}/{len(labels)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
