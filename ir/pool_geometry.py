"""Pooling window geometry: output sizes, padding reach and average-pool divisors (N spatial dims).

Shared by the reference's pooling kernels and the sparse target's token simulator, which must
agree on which input positions each window covers; no arithmetic on tensor values lives here.
"""
from __future__ import annotations

import numpy as np

from .shape_rules import window_output


def pool_geometry(attrs, x):
    """Kernel, strides, dilations, begin pads, output sizes and the end padding the windows reach."""
    kernel, strides, dilations, pads = attrs["kernel"], attrs["strides"], attrs["dilations"], attrs["pads"]
    nsp = len(kernel)
    begins, ends = pads[:nsp], pads[nsp:]
    out_sizes = [window_output(x.shape[2 + i], kernel[i], strides[i], begins[i], ends[i], dilations[i],
                               bool(attrs["ceil_mode"])) for i in range(nsp)]
    # With ceil_mode the last window may run past the explicit end padding; pad as far as it reaches.
    reach = [(o - 1) * s + d * (k - 1) + 1 - size - b
             for o, s, d, k, size, b in zip(out_sizes, strides, dilations, kernel, x.shape[2:], begins)]
    return kernel, strides, dilations, begins, ends, out_sizes, reach


def _window_counts(size, kernel, stride, dilation, begin, end, out, include_pad) -> np.ndarray:
    """Divisor of each output position along one axis: window taps inside the counted region."""
    low, high = (0, begin + size + end) if include_pad else (begin, begin + size)
    starts = np.arange(out) * stride
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    return ((taps >= low) & (taps < high)).sum(axis=1)


def window_divisors(attrs, x) -> np.ndarray:
    """The average-pool divisor of every output position (spatial dims only), as int64."""
    kernel, strides, dilations, begins, ends, out_sizes, _ = pool_geometry(attrs, x)
    include_pad = bool(attrs["count_include_pad"])
    divisor = np.ones((), dtype=np.int64)
    for i, size in enumerate(x.shape[2:]):
        counts = _window_counts(size, kernel[i], strides[i], dilations[i], begins[i], ends[i], out_sizes[i],
                                include_pad)
        divisor = np.multiply.outer(divisor, counts)
    return divisor
