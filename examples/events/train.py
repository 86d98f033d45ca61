"""Train a MobileNetV2-style event-frame classifier with submanifold semantics; export two graphs.

    python examples/events/train.py [--epochs 20] [--copies 4] [--out examples/events]

Needs torch and scikit-learn (tcc itself needs neither). Makes the event frames with
make_events.py, trains, and writes events_submanifold.onnx (masking as explicit graph ops),
events_dense.onnx (same weights, plain dense convolutions), events_test.npz and events_calib.npz.
See README.md for the masking rule.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import make_events

SEED = 0
OPSET = 17
CLASSES = 10


def active_mask(x: torch.Tensor) -> torch.Tensor:
    """[N,1,H,W] float 1.0 where any channel of x is non-zero (an active site), else 0.0."""
    return (x.abs().amax(dim=1, keepdim=True) > 0).float()


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """Stride-2 rule: output site (i,j) is active iff any of inputs (2i..2i+1, 2j..2j+1) is."""
    return F.max_pool2d(mask, kernel_size=2, stride=2)


class ConvUnit(nn.Module):
    """Conv (no bias) + BatchNorm (+ ReLU), then multiplied by the output's active-site mask."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu
        self.stride = stride

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.relu:
            y = F.relu(y)
        # BN and ReLU are pointwise, so one Mul after them equals masking after each of
        # conv, BN and ReLU: active sites keep their values, inactive ones become 0.
        return y if mask is None else y * mask


class InvertedResidual(nn.Module):
    """1x1 expand + BN + ReLU, 3x3 depthwise (stride 1 or 2) + BN + ReLU, 1x1 project + BN,
    plus the block input when the shapes match."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = ConvUnit(cin, hidden, 1)
        self.depthwise = ConvUnit(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvUnit(hidden, cout, 1, relu=False)
        self.stride = stride
        self.residual = stride == 1 and cin == cout

    def forward(self, x, mask_in, mask_out):
        y = self.expand(x, mask_in)
        y = self.depthwise(y, mask_out)
        y = self.project(y, mask_out)
        return x + y if self.residual else y


class EventNet(nn.Module):
    """32x32x2 -> stem s2 (16) -> IR 16 -> IR s2 (24) -> IR 24 -> IR s2 (32) -> 1x1 (64) -> pool -> fc.

    submanifold=True multiplies every unit's output by the active-site mask of its resolution
    (computed from the input in the graph); False is the same network with dense convolutions.
    """

    def __init__(self, submanifold: bool = True) -> None:
        super().__init__()
        self.submanifold = submanifold
        self.stem = ConvUnit(2, 16, 3, stride=2)                      # 16x16
        self.blocks = nn.ModuleList([
            InvertedResidual(16, 16, expand=2, stride=1),             # 16x16, residual
            InvertedResidual(16, 24, expand=2, stride=2),             # 8x8
            InvertedResidual(24, 24, expand=2, stride=1),             # 8x8, residual
            InvertedResidual(24, 32, expand=2, stride=2),             # 4x4
        ])
        self.final = ConvUnit(32, 64, 1)                              # 4x4
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = active_mask(x) if self.submanifold else None
        coarser = (lambda m: downsample_mask(m)) if self.submanifold else (lambda m: None)
        mask_out = coarser(mask)
        y = self.stem(x, mask_out)
        mask = mask_out
        for block in self.blocks:
            mask_out = coarser(mask) if block.stride == 2 else mask
            y = block(y, mask, mask_out)
            mask = mask_out
        y = self.final(y, mask)
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.head(y)


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


@torch.no_grad()
def density_table(model: EventNet, x: np.ndarray) -> list[str]:
    """Mean fraction of active sites at each stride: submanifold masks, the sites a standard
    3x3 convolution reaches (each 3x3 layer dilates the active set, ignoring BN bias), and the
    sites the dense graph actually makes non-zero (BN biases light up everything)."""
    xs = torch.from_numpy(x)
    sub = active_mask(xs)
    reach = sub
    dense = EventNet(submanifold=False)
    dense.load_state_dict(model.state_dict())
    dense.eval()
    sites = {1: (sub.mean().item(), reach.mean().item(), sub.mean().item())}
    y = dense.stem(xs, None)
    sub, reach = downsample_mask(sub), F.max_pool2d(reach, 3, 2, 1)
    sites[2] = (sub.mean().item(), reach.mean().item(), active_mask(y).mean().item())
    for block in dense.blocks:
        y = block(y, None, None)
        reach = F.max_pool2d(reach, 3, block.stride, 1)
        if block.stride == 2:
            sub = downsample_mask(sub)
        stride = 32 // y.shape[-1]
        sites[stride] = (sub.mean().item(), reach.mean().item(), active_mask(y).mean().item())
    rows = ["| stride | map | submanifold | standard 3x3 reach | dense graph non-zero |",
            "| --- | --- | --- | --- | --- |"]
    for stride, (s, r, d) in sites.items():
        side = 32 // stride
        rows.append(f"| {stride} | {side}x{side} | {s:.1%} | {r:.1%} | {d:.1%} |")
    return rows


def export(model: EventNet, path: Path) -> None:
    """Legacy TorchScript exporter (the dynamo one needs onnxscript); keeps BatchNormalization."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is our choice
        torch.onnx.export(
            model, (torch.zeros(1, 2, make_events.SIDE, make_events.SIDE),), str(path),
            dynamo=False, input_names=["input"], output_names=["logits"],
            opset_version=OPSET, do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE)


def check_onnxruntime(path: Path, model: nn.Module, x: np.ndarray) -> None:
    """Compare onnxruntime with torch on a few test samples, one at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = logits_of(model, x)
    got = np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    error = float(np.abs(got - expected).max())
    print(f"{path.name}: onnxruntime vs torch on {len(x)} samples: max abs logit difference "
          f"{error:.2e}")
    assert error < 1e-4, error


def top1(logits: np.ndarray, labels: np.ndarray) -> str:
    correct = int((logits.argmax(1) == labels).sum())
    return f"{correct / len(labels):.4f} ({correct}/{len(labels)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--copies", type=int, default=4,
                        help="event renderings of each training digit (other placement, noise)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()

    torch.set_num_threads(1)  # deterministic and independent of the machine's core count
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    frames, labels, (train_index, test_index, calib_index) = make_events.make_dataset(SEED)
    inputs = frames.astype(np.float32)
    images, _ = make_events.load_images()
    # Extra renderings of the training digits only (seeds other than the test split's).
    extra = [make_events.frames_of(images[train_index], SEED + k) for k in range(1, args.copies)]
    x_train = np.concatenate([inputs[train_index]] + [e.astype(np.float32) for e in extra])
    y_train = np.tile(labels[train_index], args.copies)
    x_test, y_test = inputs[test_index], labels[test_index]
    print(f"train {len(x_train)}  calib {len(calib_index)} (subset of train)  test {len(x_test)}")
    print("test " + make_events.density_report(frames[test_index]))

    model = EventNet(submanifold=True)
    print(f"{sum(p.numel() for p in model.parameters())} trainable parameters")
    start = time.perf_counter()
    train(model, x_train, y_train, args.epochs)
    print(f"training took {time.perf_counter() - start:.1f} s")
    dense = EventNet(submanifold=False)
    dense.load_state_dict(model.state_dict())
    print(f"torch test top-1: submanifold {top1(logits_of(model, x_test), y_test)}  "
          f"dense (same weights) {top1(logits_of(dense, x_test), y_test)}")
    print("\n".join(density_table(model, x_test)))

    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "events_submanifold.onnx")
    export(dense, args.out / "events_dense.onnx")
    make_events.save_npz(args.out / "events_test.npz", {"input": x_test, "label": y_test})
    make_events.save_npz(args.out / "events_calib.npz", {"input": inputs[calib_index]})
    check_onnxruntime(args.out / "events_submanifold.onnx", model, x_test[:8])
    check_onnxruntime(args.out / "events_dense.onnx", dense, x_test[:8])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
