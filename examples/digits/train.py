"""Train the small digits CNN and write the example's artifacts next to this file.

    python examples/digits/train.py [--epochs 40] [--out examples/digits]

Needs torch and scikit-learn (tcc itself needs neither). Writes digits_cnn.onnx (batch 1),
digits_cnn_dynamic.onnx (batch dim `batch`), digits_test.npz and digits_calib.npz; see README.md.
"""
from __future__ import annotations

import argparse
import io
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

SEED = 0
TEST_SIZE = 360
CALIB_SIZE = 200
SIDE = 16  # the 8x8 images are upsampled 2x so the strided layers still have room
OPSET = 17


def preprocess(images: np.ndarray) -> np.ndarray:
    """[N,8,8] pixels in 0..16 -> [N,1,16,16] float32 in [-1,1]: pixel/8 - 1, then 2x nearest."""
    x = images.astype(np.float32) / 8.0 - 1.0
    x = x.repeat(2, axis=1).repeat(2, axis=2)
    return x[:, None, :, :]


def split(seed: int):
    """Stratified test split; the calibration set is a stratified subset of the training set."""
    digits = load_digits()
    x, y = preprocess(digits.images), digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=seed)
    _, x_calib = train_test_split(x_train, test_size=CALIB_SIZE, stratify=y_train, random_state=seed)
    return (x_train, y_train), (x_test, y_test), x_calib


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


class DigitsCNN(nn.Module):
    """Stem conv, strided conv, depthwise-separable residual block, max-pool, GAP, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(1, 16, 3)                   # 16x16x16
        self.down = conv_bn(16, 32, 3, stride=2)        # 8x8x32
        self.depthwise = conv_bn(32, 32, 3, groups=32)  # 8x8x32
        self.pointwise = conv_bn(32, 32, 1)             # 8x8x32, added to the block's input
        self.pool = nn.MaxPool2d(2)                     # 4x4x32
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.down(x))
        y = F.relu(self.depthwise(x))
        x = F.relu(x + self.pointwise(y))
        x = self.pool(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    batches = (len(xs) + 31) // 32
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=epochs * batches)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        total = 0.0
        for i in range(batches):
            index = order[i * 32:(i + 1) * 32]
            loss = F.cross_entropy(model(xs[index]), ys[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(xs):.4f}", flush=True)


@torch.no_grad()
def logits_of(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(x)).numpy()


def export(model: nn.Module, path: Path, dynamic: bool) -> None:
    """Legacy TorchScript exporter (the dynamo one needs onnxscript); keeps BatchNormalization."""
    model.eval()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is our choice
        torch.onnx.export(
            model, (torch.zeros(1, 1, SIDE, SIDE),), str(path), dynamo=False,
            input_names=["input"], output_names=["logits"], dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=False,
            # PRESERVE skips the eval-mode peephole that would fold BatchNorm into Conv; the
            # model is in eval mode, so BatchNormalization is exported in inference form.
            training=torch.onnx.TrainingMode.PRESERVE)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed but with fixed zip timestamps, so regeneration is byte-stable."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def check_onnxruntime(path: Path, model: nn.Module, x: np.ndarray) -> None:
    """Compare onnxruntime with torch on the first few test samples, one at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = logits_of(model, x)
    got = np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    error = float(np.abs(got - expected).max())
    print(f"onnxruntime vs torch on {len(x)} samples: max abs logit difference {error:.2e}")
    assert error < 1e-4, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()

    # One thread: the layers are too small to gain from more, and the result then does not
    # depend on the machine's core count.
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    (x_train, y_train), (x_test, y_test), x_calib = split(SEED)
    print(f"train {len(x_train)}  calib {len(x_calib)} (subset of train)  test {len(x_test)}")

    model = DigitsCNN()
    start = time.perf_counter()
    train(model, x_train, y_train, args.epochs)
    print(f"training took {time.perf_counter() - start:.1f} s")
    top1 = float((logits_of(model, x_test).argmax(1) == y_test).mean())
    print(f"torch float test top-1: {top1:.4f} ({round(top1 * len(y_test))}/{len(y_test)})")

    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "digits_cnn.onnx", dynamic=False)
    export(model, args.out / "digits_cnn_dynamic.onnx", dynamic=True)
    save_npz(args.out / "digits_test.npz", {"input": x_test, "label": y_test})
    save_npz(args.out / "digits_calib.npz", {"input": x_calib})
    check_onnxruntime(args.out / "digits_cnn.onnx", model, x_test[:8])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
