"""What make_encoder.py and make_vit_block.py share: the digits split, training, export, npz writing.

Needs torch and scikit-learn (tcc itself needs neither).
"""
from __future__ import annotations

import io
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.nn import functional as F

SEED = 0
TEST_SIZE = 360
CALIB_SIZE = 200
OPSET = 17
HERE = Path(__file__).resolve().parent


def deterministic() -> None:
    """Two threads, fixed seed, deterministic kernels: reruns give the same weights."""
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)


def digits_split(x: np.ndarray):
    """The digits example's split of per-image inputs `x`: stratified 360-image test set, and a
    stratified 200-image calibration subset of the training set."""
    y = load_digits().target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)
    _, x_calib = train_test_split(x_train, test_size=CALIB_SIZE, stratify=y_train,
                                  random_state=SEED)
    return (x_train, y_train), (x_test, y_test), x_calib


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int,
          lr: float = 2e-3, batch: int = 32) -> None:
    """AdamW with a one-cycle schedule, fixed shuffling; prints the loss every 5 epochs."""
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    batches = (len(xs) + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * batches)
    generator = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        total = 0.0
        for i in range(batches):
            index = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(xs[index]), ys[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(xs):.4f}", flush=True)
    print(f"training took {time.perf_counter() - start:.1f} s")


@torch.no_grad()
def logits_of(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(x)).numpy()


def top1(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, what: str) -> None:
    correct = int((logits_of(model, x).argmax(1) == y).sum())
    print(f"{what}: torch float test top-1 {correct / len(y):.4f} ({correct}/{len(y)})")


def export(model: torch.nn.Module, example: torch.Tensor, input_name: str, path: Path) -> None:
    """Legacy TorchScript exporter (the dynamo one needs onnxscript), batch fixed at 1, with
    constant folding as transformers' own ONNX export does it."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is our choice
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[input_name], output_names=["logits"])


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed but with fixed zip timestamps, so regeneration is byte-stable."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def check_onnxruntime(path: Path, model: torch.nn.Module, input_name: str, x: np.ndarray) -> None:
    """Compare onnxruntime with torch on a few samples, one at a time; print the graph's op list."""
    import onnx
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = logits_of(model, x)
    got = np.concatenate([session.run(None, {input_name: x[i:i + 1]})[0] for i in range(len(x))])
    error = float(np.abs(got - expected).max())
    print(f"onnxruntime vs torch on {len(x)} samples: max abs logit difference {error:.2e}")
    assert error < 1e-4, error
    graph = onnx.load(str(path)).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(f"{path.name}: {len(graph.node)} nodes, {path.stat().st_size} bytes: "
          + ", ".join(f"{op} x{n}" for op, n in sorted(counts.items())))
