"""Sliding-window helpers shared by convolution and pooling kernels (N spatial dims, NC[spatial])."""
from __future__ import annotations

from itertools import product

import numpy as np


def pad_spatial(x: np.ndarray, begins, ends, value) -> np.ndarray:
    """Pad the spatial dims of ``x`` (dims 2..) with ``value``; a negative end crops instead."""
    if not any(begins) and not any(ends):
        return x
    sizes = [d + b + e for d, b, e in zip(x.shape[2:], begins, ends)]
    out = np.full(x.shape[:2] + tuple(sizes), value, dtype=x.dtype)
    src = tuple(slice(0, d + min(e, 0)) for d, e in zip(x.shape[2:], ends))
    dst = tuple(slice(b, b + d + min(e, 0)) for b, d, e in zip(begins, x.shape[2:], ends))
    out[(slice(None), slice(None)) + dst] = x[(slice(None), slice(None)) + src]
    return out


def tap_slices(kernel, strides, dilations, out_sizes):
    """For every kernel tap, the spatial slices of a padded input that the tap reads.

    Yields ``(taps, slices)``: output position ``o`` of tap ``t`` reads padded index
    ``t * dilation + o * stride``.
    """
    for taps in product(*(range(k) for k in kernel)):
        yield taps, tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                          for t, s, d, o in zip(taps, strides, dilations, out_sizes))


def im2col(xp: np.ndarray, kernel, strides, dilations, out_sizes) -> np.ndarray:
    """Patches of a padded input as ``[N, C * prod(kernel), prod(out_sizes)]``, rows ordered (c, taps).

    One strided view and one copy; 1x1 kernels with unit strides need no copy at all.
    """
    n, c = xp.shape[:2]
    rows = c * int(np.prod(kernel, dtype=np.int64))
    cols = int(np.prod(out_sizes, dtype=np.int64))
    if all(k == 1 for k in kernel):
        view = xp[(slice(None), slice(None)) + tuple(slice(0, s * (o - 1) + 1, s)
                                                     for s, o in zip(strides, out_sizes))]
        return view.reshape(n, rows, cols)
    sn, sc, *sp = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, shape=(n, c, *kernel, *out_sizes),
        strides=(sn, sc, *(st * d for st, d in zip(sp, dilations)), *(st * s for st, s in zip(sp, strides))),
        writeable=False)
    return view.reshape(n, rows, cols)
