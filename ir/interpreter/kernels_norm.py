"""Normalization, softmax and reduction kernels."""
from __future__ import annotations

import numpy as np

from ..shape_rules import normalize_axis


def batch_norm(attrs, x, scale, bias, mean, var):
    """Inference batch norm folded to one multiply-add per channel."""
    inv = scale / np.sqrt(var + np.asarray(attrs["epsilon"], dtype=var.dtype))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = x * inv.reshape(shape)
    y += (bias - mean * inv).reshape(shape)
    return y


def layer_norm(attrs, x, scale, bias=None):
    axes = tuple(range(normalize_axis(attrs["axis"], x.ndim), x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    y = centered / np.sqrt(var + np.asarray(attrs["epsilon"], dtype=x.dtype)) * scale
    if bias is not None:
        y += bias
    return y


def lrn(attrs, x):
    """ONNX LRN: the square sum runs over channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    size = attrs["size"]
    before = (size - 1) // 2
    channels = x.shape[1]
    # x^2 padded with size - 1 zero channels, so channel c's window starts at padded channel c.
    squares = np.zeros((x.shape[0], channels + size - 1) + x.shape[2:], dtype=x.dtype)
    squares[:, before:before + channels] = x * x
    total = squares[:, 0:channels].copy()
    for offset in range(1, size):
        total += squares[:, offset:offset + channels]
    dtype = x.dtype.type
    denominator = (dtype(attrs["bias"]) + dtype(attrs["alpha"] / size) * total) ** dtype(attrs["beta"])
    return x / denominator


def softmax(attrs, x):
    """Numerically stable: subtract the max along the axis before exponentiating."""
    axis = normalize_axis(attrs["axis"], x.ndim)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _reduce(fn):
    def kernel(attrs, x):
        axes = tuple(sorted({normalize_axis(a, x.ndim) for a in attrs["axes"]}))
        return fn(x, axis=axes, keepdims=bool(attrs["keepdims"]))

    return kernel


def lowest(dtype: np.dtype):
    """The identity of max: -inf, the integer minimum, or False (ONNX's value for an empty reduction)."""
    if dtype == np.bool_:
        return False
    if np.issubdtype(dtype, np.integer):
        return np.iinfo(dtype).min
    return -np.inf


def reduce_max(attrs, x):
    axes = tuple(sorted({normalize_axis(a, x.ndim) for a in attrs["axes"]}))
    return np.max(x, axis=axes, keepdims=bool(attrs["keepdims"]), initial=lowest(x.dtype))


KERNEL_TABLE = (
    ("batch_norm", batch_norm),
    ("layer_norm", layer_norm),
    ("lrn", lrn),
    ("softmax", softmax),
    ("reduce_mean", _reduce(np.mean)),
    ("reduce_sum", _reduce(np.sum)),
    ("reduce_max", reduce_max),
)
