"""What every real-model builder shares: deterministic seeding, realistic random weights
(BatchNorm running statistics from forward passes over real-looking inputs, LayerNorm near
identity), real-looking input images, ONNX export and the onnxruntime check."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "digits" / "digits_test.npz"


def deterministic(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def smooth_images(count: int, channels: int, height: int, width: int, seed: int) -> np.ndarray:
    """Images that look like photos to a network's statistics: a few low-frequency colour
    gradients and blobs over mild texture, stored in 8 bits per pixel, normalized like ImageNet
    inputs (zero mean, unit variance per channel)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    images = np.empty((count, channels, height, width), np.float32)
    for n in range(count):
        base = np.zeros((channels, height, width))
        for _ in range(4):   # smooth gradients and waves
            fy, fx, phase = rng.uniform(0.3, 3.0), rng.uniform(0.3, 3.0), rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (fy * ys + fx * xs) + phase)
            base += rng.uniform(0.2, 1.0, (channels, 1, 1)) * wave
        for _ in range(3):   # blobs: objects with edges
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.3)
            blob = ((ys - cy) ** 2 + (xs - cx) ** 2 < r * r).astype(np.float64)
            base += rng.uniform(-1.5, 1.5, (channels, 1, 1)) * blob
        base += 0.15 * rng.standard_normal(base.shape)   # sensor noise / texture
        base = (base - base.min()) / (base.max() - base.min())
        pixels = np.round(base * 255) / 255                                 # 8-bit, as cameras store them
        images[n] = (pixels - pixels.mean(axis=(1, 2), keepdims=True)) / (pixels.std(axis=(1, 2), keepdims=True) + 1e-6)
    return images


def text_images(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """Grey lines of digits (examples/digits, upscaled 2x) on a bright background, as a text
    recognizer or detector sees a cropped line: [count, 1, height, width], normalized."""
    digits = np.load(DIGITS)["input"][:, 0]                      # [N,16,16], 0..1
    rng = np.random.default_rng(seed)
    lines = np.full((count, 1, height, width), 0.9, np.float32)
    for n in range(count):
        x = int(rng.integers(0, 8))
        y = int(rng.integers(0, max(1, height - 32 + 1)))
        while x + 32 <= width:
            glyph = np.kron(digits[rng.integers(len(digits))], np.ones((2, 2)))
            lines[n, 0, y:y + 32, x:x + 32] -= 0.8 * glyph[: height - y]
            x += 32 + int(rng.integers(0, 6))
        lines[n] += 0.05 * rng.standard_normal((1, height, width)).astype(np.float32)
    pixels = np.round(np.clip(lines, 0, 1) * 255) / 255                     # 8-bit, as scanners store them
    return ((pixels - 0.5) / 0.25).astype(np.float32)


def randomize_norms(model: nn.Module, seed: int) -> None:
    """Trained BatchNorm/LayerNorm affine parameters are not 1 and 0; draw them near that."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def settle_batchnorm(model: nn.Module, batches: list) -> None:
    """Running mean/variance as training would leave them: the plain average over forward passes
    of real-looking inputs (momentum None), then eval mode."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(*batch)
    model.eval()


def export(model: nn.Module, args: tuple, path: Path, input_names: list, output_names: list,
           dynamic_shapes: dict | None = None) -> None:
    """torch.onnx.export with the current defaults (the dynamo exporter, its default opset);
    weights inlined in one file; ``dynamic_shapes`` as torch.export takes them."""
    model.eval()
    torch.onnx.export(model, args, str(path), input_names=input_names, output_names=output_names,
                      dynamo=True, external_data=False, dynamic_shapes=dynamic_shapes)


def declare_minus_one(path: Path, dims: dict) -> None:
    """Rewrite the model's declared input dims as several exporters (e.g. paddle2onnx) write dynamic
    ones: -1 (``dims``: {input: shape with -1 where dynamic}); the outputs' dims follow, and the
    exporter's static intermediate shapes (value_info) are dropped since they no longer hold."""
    import onnx

    model = onnx.load(str(path))
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, dims.get(value.name, ())):
            dim.Clear()
            dim.dim_value = size
    for value in model.graph.output:
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if i == 0 or dim.dim_value != 1:
                dim.Clear()
                dim.dim_value = -1
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def check_onnxruntime(path: Path, model: nn.Module, feeds: dict) -> float:
    """Largest |onnxruntime - torch| over the outputs, relative to the largest |torch|."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    with torch.no_grad():
        want = model(*(torch.from_numpy(v) for v in feeds.values()))
    want = want if isinstance(want, tuple) else (want,)
    return max(float(np.abs(g - w.numpy()).max() / (np.abs(w.numpy()).max() + 1e-12))
               for g, w in zip(got, want))
