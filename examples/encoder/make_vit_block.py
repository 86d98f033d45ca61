"""Train a one-block ViT on the digits (upsampled to 16x16); write its ONNX and data here.

    python examples/encoder/make_vit_block.py [--epochs 15] [--out examples/encoder]

Needs torch and scikit-learn (tcc itself needs neither). Writes vit_block.onnx (input `image`
f32[1,1,16,16], output `logits` f32[1,10]), vit_test.npz and vit_calib.npz; see README.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from common import HERE, check_onnxruntime, deterministic, digits_split, export, save_npz, top1, train

SIDE, PATCH = 16, 4
TOKENS = 1 + (SIDE // PATCH) ** 2      # class token + 16 patches
HIDDEN, HEADS, MLP, CLASSES = 128, 4, 256, 10


def preprocess(images: np.ndarray) -> np.ndarray:
    """[N,8,8] pixels in 0..16 -> [N,1,16,16] float32 in [-1,1], as examples/digits does it."""
    x = images.astype(np.float32) / 8.0 - 1.0
    return x.repeat(2, axis=1).repeat(2, axis=2)[:, None, :, :]


class Attention(nn.Module):
    """timm's ViT attention: one fused QKV projection split by reshape/permute, 4 heads."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = nn.Linear(HIDDEN, HIDDEN)
        self.head_size = HIDDEN // HEADS
        self.scale = self.head_size ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, HEADS, self.head_size).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attention = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, tokens, HIDDEN))


class VitBlock(nn.Module):
    """Patch embedding (Conv, stride = patch), class token, position embedding, one pre-LayerNorm
    transformer block (MHA, MLP with GELU), final LayerNorm, linear head on the class token."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(1, HIDDEN, PATCH, stride=PATCH)
        self.class_token = nn.Parameter(torch.zeros(1, 1, HIDDEN))
        self.position_embedding = nn.Parameter(torch.randn(1, TOKENS, HIDDEN) * 0.02)
        self.norm1 = nn.LayerNorm(HIDDEN, eps=1e-6)
        self.attention = Attention()
        self.norm2 = nn.LayerNorm(HIDDEN, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(HIDDEN, MLP), nn.GELU(), nn.Linear(MLP, HIDDEN))
        self.norm = nn.LayerNorm(HIDDEN, eps=1e-6)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(image).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position_embedding
        x = x + self.attention(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.head(self.norm(x)[:, 0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    deterministic()
    (x_train, y_train), (x_test, y_test), x_calib = digits_split(preprocess(load_digits().images))
    print(f"train {len(x_train)}  calib {len(x_calib)} (subset of train)  test {len(x_test)}")
    model = VitBlock()
    print(f"{sum(p.numel() for p in model.parameters())} parameters")
    train(model, x_train, y_train, args.epochs, batch=64)
    top1(model, x_test, y_test, "vit_block")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "vit_block.onnx"
    export(model, torch.from_numpy(x_test[:1]), "image", path)
    save_npz(args.out / "vit_test.npz", {"image": x_test, "label": y_test})
    save_npz(args.out / "vit_calib.npz", {"image": x_calib})
    check_onnxruntime(path, model, "image", x_test[:16])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
