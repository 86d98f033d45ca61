"""Kernels of ops_sample: GridSample (nearest, n-linear and cubic interpolation with zeros,
border or reflection padding), computed in float64 and returned in the input's type."""
from __future__ import annotations

import itertools

import numpy as np

CUBIC_A = -0.75  # ONNX's (and PyTorch's) cubic convolution coefficient


def _unnormalize(coord: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """[-1, 1] -> pixel coordinate: -1 and 1 are the centres of the edge pixels (align_corners) or
    their outer edges."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord: np.ndarray, low: float, high: float) -> np.ndarray:
    """Reflect coordinates into [low, high] by mirroring at its ends, as often as needed."""
    span = high - low
    if span <= 0:
        return np.zeros_like(coord)
    distance = np.abs(coord - low)
    flips = np.floor(distance / span)
    extra = distance - flips * span
    return np.where(flips % 2 == 0, low + extra, high - extra)


def _pad_coordinate(coord: np.ndarray, size: int, padding: str, align_corners: bool) -> np.ndarray:
    """Border: clamp into the image; reflection: mirror at the image edge (pixel centres with
    align_corners, outer edges without), then clamp; zeros: unchanged (reads outside give 0)."""
    if padding == "border":
        return np.clip(coord, 0, size - 1)
    if padding == "reflection":
        coord = _reflect(coord, 0, size - 1) if align_corners else _reflect(coord, -0.5, size - 0.5)
        return np.clip(coord, 0, size - 1)
    return coord


def _read(x: np.ndarray, indices: list[np.ndarray]) -> np.ndarray:
    """x[n, :, i1, ..., ir] for integer index arrays of shape (N, o1..or); 0 outside the image.
    Result (N, C, o1..or)."""
    spatial = x.shape[2:]
    inside = np.ones(indices[0].shape, bool)
    for idx, size in zip(indices, spatial):
        inside &= (idx >= 0) & (idx < size)
    safe = [np.clip(idx, 0, size - 1) for idx, size in zip(indices, spatial)]
    batch = np.arange(x.shape[0]).reshape((-1,) + (1,) * (indices[0].ndim - 1))
    values = x[(batch, slice(None), *safe)]  # advanced indices around a slice: (N, o..., C)
    values = np.where(inside[..., None], values, 0)
    return np.moveaxis(values, -1, 1)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Weights of the taps at -1, 0, 1, 2 around floor(coordinate), t the fractional part."""
    a = CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(attrs, x, grid):
    mode, padding, align = attrs["mode"], attrs["padding_mode"], bool(attrs["align_corners"])
    spatial = x.shape[2:]
    r = len(spatial)
    data = x.astype(np.float64)
    g = grid.astype(np.float64)
    # grid[..., 0] indexes the last spatial axis (x, width), grid[..., r-1] the first.
    coords = [_unnormalize(g[..., r - 1 - d], spatial[d], align) for d in range(r)]
    if mode == "cubic":
        return _cubic(data, coords, spatial, padding, align).astype(x.dtype)
    coords = [_pad_coordinate(c, size, padding, align) for c, size in zip(coords, spatial)]
    if mode == "nearest":
        return _read(data, [np.rint(c).astype(np.int64) for c in coords]).astype(x.dtype)
    floors = [np.floor(c) for c in coords]
    fractions = [c - f for c, f in zip(coords, floors)]
    out = np.zeros(x.shape[:2] + grid.shape[1:-1])
    for corner in itertools.product((0, 1), repeat=r):
        weight = np.ones(grid.shape[:-1])
        for d, step in enumerate(corner):
            weight = weight * (fractions[d] if step else 1 - fractions[d])
        indices = [(f + step).astype(np.int64) for f, step in zip(floors, corner)]
        out += weight[:, None] * _read(data, indices)
    return out.astype(x.dtype)


def _cubic(data, coords, spatial, padding, align):
    """Cubic convolution over 4 taps per axis; border/reflection padding moves each tap index."""
    floors = [np.floor(c) for c in coords]
    weights = [_cubic_weights(c - f) for c, f in zip(coords, floors)]
    out = np.zeros(data.shape[:2] + coords[0].shape[1:])
    for taps in itertools.product(range(4), repeat=len(spatial)):
        weight = np.ones(coords[0].shape)
        indices = []
        for d, k in enumerate(taps):
            weight = weight * weights[d][k]
            index = floors[d] + (k - 1)
            if padding != "zeros":
                index = np.rint(_pad_coordinate(index, spatial[d], padding, align))
            indices.append(index.astype(np.int64))
        out += weight[:, None] * _read(data, indices)
    return out


KERNEL_TABLE = (
    ("grid_sample", grid_sample),
)
