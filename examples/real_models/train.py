"""Cheap training of the image classifiers on the labelled shapes task (common.shape_images): a
few hundred AdamW steps on CPU, one thread, deterministic for a given torch version.

Trained weights matter for int8 accuracy: a deep BatchNorm network at random initialization
amplifies small input perturbations by 16-23 dB (examples/real_models/README.md), trained ones do not."""
from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.nn import functional as F

from common import settle_batchnorm, shape_images

TRAIN_IMAGES, TEST_IMAGES, BATCH = 4096, 512, 32
_DATA: dict = {}


def dataset(size: int, seed: int) -> tuple:
    """(train images, train labels, test images, test labels) at ``size``, made once per size."""
    if (size, seed) not in _DATA:
        x, y = shape_images(TRAIN_IMAGES, size, 1000 + seed)
        tx, ty = shape_images(TEST_IMAGES, size, 2000 + seed)
        _DATA[(size, seed)] = tuple(torch.from_numpy(a) for a in (x, y, tx, ty))
    return _DATA[(size, seed)]


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(images[i:i + 128]).argmax(1) == labels[i:i + 128]).sum()) for i in range(0, len(images), 128))
    return hits / len(images)


def train_classifier(model: nn.Module, size: int, steps: int, seed: int, lr: float = 3e-3,
                     weight_decay: float = 0.05) -> dict:
    """Train ``model`` in place: AdamW, batch 32, linear warm-up then cosine decay, random flips
    (the shapes' labels do not change under them); then BatchNorm running statistics as the plain
    average over 512 training images, eval mode. Returns accuracies (eval mode) and seconds."""
    torch.set_num_threads(1)          # a shared machine: one thread is also the fastest here
    x, y, tx, ty = dataset(size, seed)
    g = torch.Generator().manual_seed(seed)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))))
    start = time.perf_counter()
    order = torch.randperm(len(x), generator=g)
    model.train()
    for step in range(steps):
        at = (step * BATCH) % len(x)
        if at + BATCH > len(x):
            order, at = torch.randperm(len(x), generator=g), 0
        idx = order[at:at + BATCH]
        batch = x[idx]
        flips = torch.rand(2, generator=g)
        if flips[0] < 0.5:
            batch = batch.flip(3)
        if flips[1] < 0.5:
            batch = batch.flip(2)
        loss = F.cross_entropy(model(batch), y[idx])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        schedule.step()
    settle_batchnorm(model, [(x[i:i + 64],) for i in range(0, 512, 64)])
    seconds = time.perf_counter() - start
    return {"train_accuracy": accuracy(model, x[:TEST_IMAGES], y[:TEST_IMAGES]),
            "test_accuracy": accuracy(model, tx, ty), "train_seconds": round(seconds, 1), "steps": steps,
            "final_loss": float(loss.detach())}

