"""Transformers, reduced: a DeiT-tiny-style ViT (patch embedding, class token, pre-LayerNorm
blocks, timm-style attention) and a BERT-style encoder (embeddings, attention mask, post-LayerNorm
blocks with scaled_dot_product_attention as Hugging Face's default, pooler and classifier)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    """timm's Attention: one qkv projection, heads split by reshape/permute, softmax(q k^T * scale) v."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, c))


class ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class DeiTTiny(nn.Module):
    """DeiT-tiny's layout (dim 192, 3 heads, 12 blocks at 224x224 / patch 16) reduced to dim 96,
    3 heads, 3 blocks, 64x64 images in 8x8 patches."""

    def __init__(self, size=64, patch=8, dim=96, heads=3, depth=3, classes=100):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*(ViTBlock(dim, heads, 4 * dim) for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(hidden, hidden) for _ in range(4))
        self.norm1, self.norm2 = nn.LayerNorm(hidden, eps=1e-12), nn.LayerNorm(hidden, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)

    def forward(self, x, mask):
        n, t, c = x.shape
        q, k, v = (f(x).view(n, t, self.heads, c // self.heads).transpose(1, 2) for f in (self.query, self.key, self.value))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(n, t, c)
        x = self.norm1(x + self.out(context))
        return self.norm2(x + self.fc2(F.gelu(self.fc1(x))))


class Bert(nn.Module):
    """BERT-base's layout (hidden 768, 12 heads, 12 layers) reduced to hidden 128, 4 heads, 2 layers,
    a 512-token vocabulary and 32 positions; a 2-class head on the pooled [CLS] state."""

    def __init__(self, vocab=512, positions=32, hidden=128, heads=4, layers=2, ffn=512, classes=2):
        super().__init__()
        self.words, self.positions = nn.Embedding(vocab, hidden), nn.Embedding(positions, hidden)
        self.token_types = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, ffn) for _ in range(layers))
        self.pooler, self.classifier = nn.Linear(hidden, hidden), nn.Linear(hidden, classes)
        self.register_buffer("position_ids", torch.arange(positions).unsqueeze(0))
        self.register_buffer("token_type_ids", torch.zeros(1, positions, dtype=torch.long))
        with torch.no_grad():
            for embedding in (self.words, self.positions, self.token_types):
                embedding.weight.normal_(0.0, 0.02)

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        x = self.words(input_ids) + self.positions(self.position_ids[:, :t]) + self.token_types(self.token_type_ids[:, :t])
        x = self.norm(x)
        # Hugging Face's extended mask: 0 where attended, the dtype's minimum where padded
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))
