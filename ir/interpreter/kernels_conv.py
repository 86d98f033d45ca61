"""Kernels of convolutions and matrix products: every one ends in a BLAS matmul."""
from __future__ import annotations

import numpy as np

from .windows import im2col, pad_spatial, tap_slices


def _channel_bias(b: np.ndarray, rank: int) -> np.ndarray:
    return b.reshape((1, -1) + (1,) * (rank - 2))


# Patch matrices above this many elements (64 MiB of f32) are built and multiplied in blocks of
# output rows, so large images do not need a patch copy of the whole input at once.
IM2COL_MAX_ELEMENTS = 1 << 24


def _conv_rows(xp, w_groups, kernel, strides, dilations, out_sizes, first, stop):
    """Output rows first..stop-1 (along the first spatial dim) of a convolution, as [N, M, rows, ...]."""
    n = xp.shape[0]
    group, mg, _ = w_groups.shape
    in_first = first * strides[0]
    in_stop = (stop - 1) * strides[0] + dilations[0] * (kernel[0] - 1) + 1
    rows = [stop - first] + list(out_sizes[1:])
    cols = im2col(xp[:, :, in_first:in_stop], kernel, strides, dilations, rows)
    cols = cols.reshape(n, group, cols.shape[1] // group, cols.shape[2])
    return np.matmul(w_groups, cols).reshape(n, group * mg, *rows)


def conv(attrs, x, w, b=None):
    """ONNX Conv: im2col of the padded input, then one batched matmul over the groups."""
    group = attrs["group"]
    m, _, *kernel = w.shape
    nsp = len(kernel)
    strides, dilations, pads = attrs["strides"], attrs["dilations"], attrs["pads"]
    xp = pad_spatial(x, pads[:nsp], pads[nsp:], 0)
    out_sizes = [(size - d * (k - 1) - 1) // s + 1
                 for size, k, s, d in zip(xp.shape[2:], kernel, strides, dilations)]
    w_groups = w.reshape(group, m // group, -1)
    patch_elements = x.shape[0] * w_groups.shape[2] * group * int(np.prod(out_sizes, dtype=np.int64))
    blocks = max(1, -(-patch_elements // IM2COL_MAX_ELEMENTS))
    step = -(-out_sizes[0] // blocks)
    if step >= out_sizes[0]:
        y = _conv_rows(xp, w_groups, kernel, strides, dilations, out_sizes, 0, out_sizes[0])
    else:
        y = np.empty((x.shape[0], m, *out_sizes), dtype=np.result_type(x, w))
        for first in range(0, out_sizes[0], step):
            stop = min(first + step, out_sizes[0])
            y[:, :, first:stop] = _conv_rows(xp, w_groups, kernel, strides, dilations, out_sizes, first, stop)
    if b is not None:
        y += _channel_bias(b, y.ndim)
    return y


def conv_transpose(attrs, x, w, b=None):
    """ONNX ConvTranspose: one matmul per group to kernel-tap columns, then col2im by tap."""
    group = attrs["group"]
    n, cin, *in_sizes = x.shape
    _, mg, *kernel = w.shape
    nsp = len(kernel)
    m = mg * group
    strides, dilations, pads = attrs["strides"], attrs["dilations"], attrs["pads"]
    w_g = w.reshape(group, cin // group, -1).transpose(0, 2, 1)
    cols = np.matmul(w_g, x.reshape(n, group, cin // group, -1))
    cols = cols.reshape(n, m, *kernel, *in_sizes)
    full = [s * (i - 1) + d * (k - 1) + 1 + p
            for s, i, d, k, p in zip(strides, in_sizes, dilations, kernel, attrs["output_padding"])]
    y = np.zeros((n, m, *full), dtype=np.result_type(x, w))
    for taps, slices in tap_slices(kernel, strides, dilations, in_sizes):
        y[(slice(None), slice(None)) + slices] += cols[(slice(None), slice(None)) + taps]
    if any(pads):
        crop = tuple(slice(pb, f - pe) for pb, pe, f in zip(pads[:nsp], pads[nsp:], full))
        y = np.ascontiguousarray(y[(slice(None), slice(None)) + crop])
    if b is not None:
        y += _channel_bias(b, y.ndim)
    return y


def matmul(attrs, a, b):
    return np.matmul(a, b)


def linear(attrs, x, w, b=None):
    """x @ w^T + b, with w of shape [N, K]: one [rows, K] x [K, N] product over every leading dim
    (numpy's stacked matmul with the transposed weight view takes a slow non-BLAS loop: 2.9 s
    per Swin-T linear layer against milliseconds)."""
    y = np.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])
    if b is not None:
        y += b
    return y


KERNEL_TABLE = (
    ("conv", conv),
    ("conv_transpose", conv_transpose),
    ("matmul", matmul),
    ("linear", linear),
)
