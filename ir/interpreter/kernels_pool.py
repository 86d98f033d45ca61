"""Pooling kernels: a vectorized max or sum per kernel tap over strided views of the padded input."""
from __future__ import annotations

import numpy as np

from ..pool_geometry import pool_geometry as _geometry
from ..pool_geometry import window_divisors
from .windows import pad_spatial, tap_slices


def _lowest(dtype) -> object:
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def max_pool(attrs, x):
    """Max over each window; padding is the lowest value, so it never wins."""
    kernel, strides, dilations, begins, _, out_sizes, reach = _geometry(attrs, x)
    xp = pad_spatial(x, begins, reach, _lowest(x.dtype))
    y = None
    for _, slices in tap_slices(kernel, strides, dilations, out_sizes):
        view = xp[(slice(None), slice(None)) + slices]
        y = view.copy() if y is None else np.maximum(y, view, out=y)
    return y


def max_pool_indices(attrs, x):
    """Flat input index of each window's first maximum (ONNX MaxPool's Indices output)."""
    kernel, strides, dilations, begins, _, out_sizes, reach = _geometry(attrs, x)
    xp = pad_spatial(x, begins, reach, _lowest(x.dtype))
    spatial = x.shape[2:]
    best, where = None, None
    for taps, slices in tap_slices(kernel, strides, dilations, out_sizes):
        view = xp[(slice(None), slice(None)) + slices]
        # Input coordinates this tap reads, per output position, flattened over the spatial axes.
        coords = np.meshgrid(*[np.arange(o) * s + t * d - b for o, s, t, d, b
                               in zip(out_sizes, strides, taps, dilations, begins)], indexing="ij")
        order = range(len(spatial)) if not attrs["storage_order"] else reversed(range(len(spatial)))
        flat = np.zeros(coords[0].shape, np.int64)
        for axis in order:
            flat = flat * spatial[axis] + coords[axis]
        if best is None:
            best, where = view.copy(), np.broadcast_to(flat, view.shape).copy()
        else:
            better = view > best
            best = np.where(better, view, best)
            where = np.where(better, flat, where)
    planes = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], *([1] * len(spatial)))
    return where + planes * int(np.prod(spatial))


def avg_pool(attrs, x):
    """Mean over each window; the divisor counts explicit padding only with count_include_pad."""
    kernel, strides, dilations, begins, ends, out_sizes, reach = _geometry(attrs, x)
    xp = pad_spatial(x, begins, reach, 0)
    y = None
    for _, slices in tap_slices(kernel, strides, dilations, out_sizes):
        view = xp[(slice(None), slice(None)) + slices]
        y = view.copy() if y is None else np.add(y, view, out=y)
    y /= window_divisors(attrs, x).astype(y.dtype)
    return y


def global_avg_pool(attrs, x):
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)


KERNEL_TABLE = (
    ("max_pool", max_pool),
    ("max_pool_indices", max_pool_indices),
    ("avg_pool", avg_pool),
    ("global_avg_pool", global_avg_pool),
)
