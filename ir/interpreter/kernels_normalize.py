"""Kernels of ops_normalize, computed in the operand's float type."""
from __future__ import annotations

import numpy as np

from ..shape_rules import normalize_axis
from ..pool_geometry import pool_geometry as _geometry
from .windows import pad_spatial, tap_slices


def log_softmax(attrs, x):
    axis = normalize_axis(attrs["axis"], x.ndim)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def hardmax(attrs, x):
    axis = normalize_axis(attrs["axis"], x.ndim)
    first = np.expand_dims(np.argmax(x, axis=axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, first, 1, axis=axis)
    return out


def lp_norm(attrs, x):
    axis = normalize_axis(attrs["axis"], x.ndim)
    if attrs["p"] == 1:
        norm = np.abs(x).sum(axis=axis, keepdims=True)
    else:
        norm = np.sqrt((x * x).sum(axis=axis, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm == 0, 0, x / norm).astype(x.dtype)


def _normalize(x, axes, epsilon):
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    return centered / np.sqrt(var + x.dtype.type(epsilon))


def instance_norm(attrs, x, scale, bias):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = _normalize(x, tuple(range(2, x.ndim)), attrs["epsilon"])
    return y * scale.reshape(shape) + bias.reshape(shape)


def group_norm(attrs, x, scale, bias):
    n, c = x.shape[:2]
    groups = attrs["num_groups"]
    grouped = x.reshape((n, groups, -1))
    y = _normalize(grouped, (2,), attrs["epsilon"]).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


def rms_norm(attrs, x, scale):
    axes = tuple(range(normalize_axis(attrs["axis"], x.ndim), x.ndim))
    rms = np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + x.dtype.type(attrs["epsilon"]))
    return x / rms * scale


def layer_norm_stats(attrs, x):
    axes = tuple(range(normalize_axis(attrs["axis"], x.ndim), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    return mean, 1 / np.sqrt(var + x.dtype.type(attrs["epsilon"]))


def lp_pool(attrs, x):
    """Padding is 0, so it adds nothing to the sum."""
    kernel, strides, dilations, begins, _, out_sizes, reach = _geometry(attrs, x)
    p = attrs["p"]
    xp = pad_spatial(np.abs(x) ** p, begins, reach, 0)
    total = None
    for _, slices in tap_slices(kernel, strides, dilations, out_sizes):
        view = xp[(slice(None), slice(None)) + slices]
        total = view.copy() if total is None else np.add(total, view, out=total)
    return total ** x.dtype.type(1.0 / p)


KERNEL_TABLE = (
    ("log_softmax", log_softmax),
    ("hardmax", hardmax),
    ("lp_norm", lp_norm),
    ("instance_norm", instance_norm),
    ("group_norm", group_norm),
    ("rms_norm", rms_norm),
    ("layer_norm_stats", layer_norm_stats),
    ("lp_pool", lp_pool),
)
