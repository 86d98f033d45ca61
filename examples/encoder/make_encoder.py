"""Train a small BERT-style encoder on digits-as-token-sequences; write its ONNX and data here.

    python examples/encoder/make_encoder.py [--epochs 15] [--out examples/encoder]

Needs torch and scikit-learn (tcc itself needs neither). Writes encoder.onnx (input `tokens`
int64[1,17], output `logits` f32[1,10]), encoder_test.npz and encoder_calib.npz; see README.md.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from common import (HERE, check_onnxruntime, deterministic, digits_split, export, logits_of,
                    save_npz, top1, train)

LEVELS = 3                       # each pixel (0..16) quantized to 3 grey levels
PATCH_TOKENS = LEVELS ** 4       # a 2x2 patch of 3-level pixels is one of 81 tokens
CLS = PATCH_TOKENS               # token id 81 is [CLS]
VOCAB = PATCH_TOKENS + 1
LENGTH = 1 + 16                  # [CLS] + a 4x4 grid of 2x2 patches
HIDDEN, HEADS, FFN, LAYERS, CLASSES = 128, 4, 256, 2, 10
DROPOUT = 0.1                    # training only; eval-mode export has no Dropout nodes


def tokenize(images: np.ndarray) -> np.ndarray:
    """[N,8,8] pixels in 0..16 -> int64 [N,17]: [CLS], then the 2x2 patches in raster order,
    each patch's four 3-level pixels (top-left, top-right, bottom-left, bottom-right) read as
    the base-4 digits of its token id."""
    levels = np.minimum(images.astype(np.int64) * LEVELS // 17, LEVELS - 1)
    patches = levels.reshape(-1, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 16, 4)
    ids = (patches * LEVELS ** np.arange(4)).sum(axis=2)
    cls = np.full((len(images), 1), CLS, dtype=np.int64)
    return np.concatenate([cls, ids], axis=1)


class SelfAttention(nn.Module):
    """BERT's self-attention: separate Q, K, V projections, heads split by reshape/transpose,
    scores scaled by 1/sqrt(head size), softmax, context merged back and projected."""

    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.output = nn.Linear(HIDDEN, HIDDEN)
        self.dropout = nn.Dropout(DROPOUT)
        self.head_size = HIDDEN // HEADS

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], HEADS, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self.split_heads(f(x)) for f in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        context = torch.matmul(self.dropout(scores.softmax(dim=-1)), v)
        context = context.transpose(1, 2).reshape(x.shape[0], x.shape[1], HIDDEN)
        return self.output(context)


class EncoderLayer(nn.Module):
    """Post-LayerNorm, as in BERT: x = LN(x + attention(x)); x = LN(x + FFN(x)); GELU (erf)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = SelfAttention()
        self.attention_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate = nn.Linear(HIDDEN, FFN)
        self.gelu = nn.GELU()
        self.ffn_output = nn.Linear(FFN, HIDDEN)
        self.output_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x)))
        ffn = self.ffn_output(self.gelu(self.intermediate(x)))
        return self.output_norm(x + self.dropout(ffn))


class DigitsBert(nn.Module):
    """Token + learned position embeddings, LayerNorm, encoder layers, tanh pooler on [CLS],
    linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB, HIDDEN)
        # BERT's init; torch's default N(0, 1) would drown the position embedding.
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.Parameter(torch.randn(1, LENGTH, HIDDEN) * 0.02)
        self.embedding_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(DROPOUT)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.pooler = nn.Linear(HIDDEN, HIDDEN)
        self.classifier = nn.Linear(HIDDEN, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding_norm(self.token_embedding(tokens) + self.position_embedding))
        for layer in self.layers:
            x = layer(x)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    deterministic()
    (x_train, y_train), (x_test, y_test), x_calib = digits_split(tokenize(load_digits().images))
    print(f"train {len(x_train)}  calib {len(x_calib)} (subset of train)  test {len(x_test)}")
    model = DigitsBert()
    print(f"{sum(p.numel() for p in model.parameters())} parameters")
    train(model, x_train, y_train, args.epochs, batch=64)
    top1(model, x_test, y_test, "encoder")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "encoder.onnx"
    export(model, torch.from_numpy(x_test[:1]), "tokens", path)
    save_npz(args.out / "encoder_test.npz", {"tokens": x_test, "label": y_test})
    save_npz(args.out / "encoder_calib.npz", {"tokens": x_calib})
    check_onnxruntime(path, model, "tokens", x_test[:16])
    assert logits_of(model, x_test[:1]).shape == (1, CLASSES)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
