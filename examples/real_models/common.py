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


#: The labelled image task the classifiers are trained on: one object of these kinds on a
#: photo-like background, at a random place, size, rotation and colour.
SHAPES = ("disc", "square", "triangle", "ring", "plus", "bar", "frame", "grating", "checker", "pair")


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray, s: float) -> np.ndarray:
    """Where shape ``kind`` of radius ``s`` covers the rotated coordinates (u, v) around its centre."""
    r = np.hypot(u, v)
    box = np.maximum(np.abs(u), np.abs(v))
    if kind == "disc":
        return r < s
    if kind == "square":
        return box < 0.8 * s
    if kind == "triangle":
        return np.all([u * np.cos(a) + v * np.sin(a) < 0.5 * s for a in (np.pi / 2, 7 * np.pi / 6, 11 * np.pi / 6)], axis=0)
    if kind == "ring":
        return (r < s) & (r > 0.6 * s)
    if kind == "plus":
        return ((np.abs(u) < 0.3 * s) & (np.abs(v) < s)) | ((np.abs(v) < 0.3 * s) & (np.abs(u) < s))
    if kind == "bar":
        return (np.abs(u) < s) & (np.abs(v) < 0.3 * s)
    if kind == "frame":
        return (box < 0.85 * s) & (box > 0.55 * s)
    if kind == "grating":
        return (r < s) & (np.sin(2 * np.pi * u / (0.5 * s)) > 0)
    if kind == "checker":
        return (box < 0.85 * s) & (np.sin(np.pi * u / (0.34 * s)) * np.sin(np.pi * v / (0.34 * s)) > 0)
    if kind == "pair":
        return (np.hypot(u - 0.55 * s, v) < 0.4 * s) | (np.hypot(u + 0.55 * s, v) < 0.4 * s)
    raise ValueError(kind)


def shape_images(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A labelled classification task a CNN must learn shape features for: a photo-like background
    (colour waves, blobs, texture, as ``smooth_images``) with one object of ``SHAPES`` on it, at a
    random position, radius 15-32% of the image, rotation and colour (contrasting with what is under
    it), edges softened by 2x supersampling; 8-bit pixels normalized per channel like
    ``smooth_images``. Returns ([count, 3, size, size] float32, [count] int64 labels in 0..9)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    fine = (np.arange(2 * size) + 0.5) / (2 * size)
    fy, fx = np.meshgrid(fine, fine, indexing="ij")
    images = np.empty((count, 3, size, size), np.float32)
    labels = rng.integers(0, len(SHAPES), count)
    for n in range(count):
        base = np.zeros((3, size, size))
        for _ in range(3):
            f1, f2, phase = rng.uniform(0.3, 3.0), rng.uniform(0.3, 3.0), rng.uniform(0, 2 * np.pi)
            base += rng.uniform(0.1, 0.5, (3, 1, 1)) * np.sin(2 * np.pi * (f1 * ys + f2 * xs) + phase)
        for _ in range(2):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.3)
            base += rng.uniform(-0.6, 0.6, (3, 1, 1)) * (((ys - cy) ** 2 + (xs - cx) ** 2) < r * r)
        base += 0.05 * rng.standard_normal(base.shape)
        base = 0.15 + 0.7 * (base - base.min()) / (base.max() - base.min())
        s = rng.uniform(0.15, 0.32)
        cy, cx, angle = rng.uniform(s, 1 - s), rng.uniform(s, 1 - s), rng.uniform(0, 2 * np.pi)
        u = (fx - cx) * np.cos(angle) + (fy - cy) * np.sin(angle)
        v = -(fx - cx) * np.sin(angle) + (fy - cy) * np.cos(angle)
        alpha = _shape_mask(SHAPES[labels[n]], u, v, s).astype(np.float64).reshape(size, 2, size, 2).mean(axis=(1, 3))
        under = (base * alpha).sum(axis=(1, 2)) / max(alpha.sum(), 1.0)
        colour = np.clip(1.0 - under + rng.uniform(-0.15, 0.15, 3), 0, 1)     # contrasting with the background
        base = base * (1 - alpha) + colour[:, None, None] * alpha
        base = np.clip(base + 0.03 * rng.standard_normal(base.shape), 0, 1)
        pixels = np.round(base * 255) / 255                                     # 8-bit, as cameras store them
        images[n] = (pixels - pixels.mean(axis=(1, 2), keepdims=True)) / (pixels.std(axis=(1, 2), keepdims=True) + 1e-6)
    return images, labels.astype(np.int64)


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
