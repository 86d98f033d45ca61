"""Kernels of ops_sample: GridSample (nearest, n-linear and cubic interpolation with zeros,
border or reflection padding, in float64, returned in the input's type), Col2Im, MaxUnpool and
TensorScatter."""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import InterpreterError

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


def col2im(attrs, x):
    image, block = attrs["image_shape"], attrs["block_shape"]
    strides, pads, dilations = attrs["strides"], attrs["pads"], attrs["dilations"]
    r = len(image)
    padded = [image[i] + pads[i] + pads[r + i] for i in range(r)]
    counts = [(padded[i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    n, rows, _ = x.shape
    channels = rows // int(np.prod(block))
    cols = x.reshape(n, channels, *block, *counts)
    out = np.zeros((n, channels, *padded), np.float64)
    for tap in itertools.product(*(range(b) for b in block)):
        where = tuple(slice(t * d, t * d + s * (c - 1) + 1, s) for t, d, s, c in zip(tap, dilations, strides, counts))
        out[(slice(None), slice(None)) + where] += cols[(slice(None), slice(None)) + tap]
    crop = tuple(slice(pads[i], pads[i] + image[i]) for i in range(r))
    return out[(slice(None), slice(None)) + crop].astype(x.dtype)


def max_unpool(attrs, x, indices):
    source = tuple(attrs["pooled_from"])
    flat = indices.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= int(np.prod(source))):
        raise InterpreterError(f"max_unpool index out of range for the pooled shape {list(source)}")
    out = np.zeros(tuple(attrs["shape"]), x.dtype)
    out[np.unravel_index(flat, source)] = x.reshape(-1)
    return out


def tensor_scatter(attrs, cache, update, indices=None):
    axis, length = attrs["axis"], cache.shape[attrs["axis"]]
    out = cache.copy()
    starts = np.zeros(cache.shape[0], np.int64) if indices is None else indices.astype(np.int64)
    for b, start in enumerate(starts):
        positions = start + np.arange(update.shape[axis])
        if attrs["circular"]:
            positions %= length
        elif positions.size and (start < 0 or positions[-1] >= length):
            raise InterpreterError(f"tensor_scatter writes positions {start}..{positions[-1]} of a cache of {length}")
        target = np.moveaxis(out[b], axis - 1, 0)  # a view: writing it writes out
        target[positions] = np.moveaxis(update[b], axis - 1, 0)
    return out


def _bilinear_taps(y: np.ndarray, x: np.ndarray, height: int, width: int):
    """RoiAlign's bilinear read of sample points: the four corner indices and weights, the weights
    zero for points more than one pixel outside the image; coordinates clamp at the far edge."""
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y, x = np.maximum(y, 0), np.maximum(x, 0)
    y_low, x_low = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    y_edge, x_edge = y_low >= height - 1, x_low >= width - 1
    y_low, x_low = np.where(y_edge, height - 1, y_low), np.where(x_edge, width - 1, x_low)
    y, x = np.where(y_edge, y_low, y), np.where(x_edge, x_low, x)
    y_high, x_high = np.where(y_edge, y_low, y_low + 1), np.where(x_edge, x_low, x_low + 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    keep = ~outside
    return [(y_low, x_low, hy * hx * keep), (y_low, x_high, hy * lx * keep),
            (y_high, x_low, ly * hx * keep), (y_high, x_high, ly * lx * keep)]


def roi_align(attrs, x, rois, batch_indices):
    out_h, out_w, ratio = attrs["height"], attrs["width"], attrs["sampling_ratio"]
    scale, offset = attrs["spatial_scale"], 0.5 if attrs["half_pixel"] else 0.0
    height, width = x.shape[2:]
    data = x.astype(np.float64)
    out = np.zeros((rois.shape[0], x.shape[1], out_h, out_w))
    for r, (box, image) in enumerate(zip(rois.astype(np.float64), batch_indices)):
        x1, y1, x2, y2 = box * scale - offset
        roi_w, roi_h = x2 - x1, y2 - y1
        if not attrs["half_pixel"]:  # the legacy mode makes every region at least one pixel
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = ratio if ratio > 0 else int(np.ceil(roi_h / out_h))
        grid_w = ratio if ratio > 0 else int(np.ceil(roi_w / out_w))
        # Sample points: (out_h, grid_h) rows and (out_w, grid_w) columns.
        ys = y1 + np.arange(out_h)[:, None] * bin_h + (np.arange(grid_h)[None, :] + 0.5) * bin_h / grid_h
        xs = x1 + np.arange(out_w)[:, None] * bin_w + (np.arange(grid_w)[None, :] + 0.5) * bin_w / grid_w
        yy = np.broadcast_to(ys[:, :, None, None], (out_h, grid_h, out_w, grid_w))
        xx = np.broadcast_to(xs[None, None, :, :], (out_h, grid_h, out_w, grid_w))
        plane = data[int(image)]  # (C, H, W)
        terms = [weight * plane[:, yi, xi] for yi, xi, weight in _bilinear_taps(yy, xx, height, width)]
        if attrs["mode"] == "avg":
            out[r] = sum(terms).sum(axis=(2, 4)) / max(grid_h * grid_w, 1)
        else:  # the largest weighted corner of each sample, then the largest sample (ONNX's max mode)
            out[r] = np.max(terms, axis=0).max(axis=(2, 4))
    return out.astype(x.dtype)


def _deform_read(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear reads of image (C, H, W) at points (..., broadcast with C first): corners outside
    the image count 0, points a pixel or more outside are 0."""
    height, width = image.shape[1:]
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    ly, lx = y - y0, x - x0
    inside = (y > -1) & (y < height) & (x > -1) & (x < width)
    out = np.zeros((image.shape[0],) + np.broadcast_shapes(y.shape, x.shape))
    for dy, dx, weight in ((0, 0, (1 - ly) * (1 - lx)), (0, 1, (1 - ly) * lx), (1, 0, ly * (1 - lx)), (1, 1, ly * lx)):
        yi, xi = y0 + dy, x0 + dx
        valid = inside & (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
        out = out + np.where(valid, weight, 0) * image[:, np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1)]
    return out


def deform_conv(attrs, x, w, offset, b=None, mask=None):
    strides, pads, dil = attrs["strides"], attrs["pads"], attrs["dilations"]
    group, offset_group = attrs["group"], attrs["offset_group"]
    n, channels = x.shape[:2]
    kh, kw = w.shape[2:]
    oh, ow = offset.shape[2:]
    data = x.astype(np.float64)
    offsets = offset.astype(np.float64).reshape(n, offset_group, kh, kw, 2, oh, ow)
    masks = None if mask is None else mask.astype(np.float64).reshape(n, offset_group, kh, kw, oh, ow)
    per_offset_group = channels // offset_group
    # Columns: (N, C, kh, kw, oh, ow), each the deformed read of its tap.
    cols = np.zeros((n, channels, kh, kw, oh, ow))
    base_y = np.arange(oh)[:, None] * strides[0] - pads[0]
    base_x = np.arange(ow)[None, :] * strides[1] - pads[1]
    for batch, g, i, j in itertools.product(range(n), range(offset_group), range(kh), range(kw)):
        y = base_y + i * dil[0] + offsets[batch, g, i, j, 0]
        xs = base_x + j * dil[1] + offsets[batch, g, i, j, 1]
        channel_slice = slice(g * per_offset_group, (g + 1) * per_offset_group)
        read = _deform_read(data[batch, channel_slice], y, xs)
        cols[batch, channel_slice, i, j] = read if masks is None else read * masks[batch, g, i, j]
    out_channels, in_per_group = w.shape[0], w.shape[1]
    weights = w.astype(np.float64).reshape(group, out_channels // group, in_per_group * kh * kw)
    grouped = cols.reshape(n, group, in_per_group * kh * kw, oh * ow)
    out = np.einsum("gok,ngkp->ngop", weights, grouped).reshape(n, out_channels, oh, ow)
    if b is not None:
        out = out + b.astype(np.float64)[None, :, None, None]
    return out.astype(x.dtype)


KERNEL_TABLE = (
    ("grid_sample", grid_sample),
    ("col2im", col2im),
    ("max_unpool", max_unpool),
    ("tensor_scatter", tensor_scatter),
    ("roi_align", roi_align),
    ("deform_conv", deform_conv),
)
