"""Kernels of ops_index: tile, depth/space rearrangements, gathers, scatters, one-hot, trilu,
cumsum, top-k and einsum.  Negative indices count from the end; out-of-range ones are errors."""
from __future__ import annotations

import numpy as np

from ..errors import InterpreterError
from ..shape_rules import normalize_axis


def _in_range(indices: np.ndarray, size, what: str) -> np.ndarray:
    size = np.asarray(size)
    if indices.size and (np.any(indices < -size) or np.any(indices >= size)):
        raise InterpreterError(f"{what} index out of range (min {indices.min()}, max {indices.max()})")
    return np.where(indices < 0, indices + size, indices)


def tile(attrs, x):
    return np.tile(x, attrs["repeats"])


def depth_to_space(attrs, x):
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    if attrs["mode"] == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(attrs, x):
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.transpose(0, 3, 5, 1, 2, 4) if attrs["mode"] == "DCR" else y.transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def gather_elements(attrs, data, indices):
    axis = normalize_axis(attrs["axis"], data.ndim)
    return np.take_along_axis(data, _in_range(indices, data.shape[axis], "gather_elements"), axis=axis)


def _nd_positions(data_shape, indices: np.ndarray, batch_dims: int) -> tuple[np.ndarray, ...]:
    """numpy index tuples for gather_nd / scatter_nd: batch coordinates then the index tuple."""
    k = indices.shape[-1]
    dims = np.asarray(data_shape[batch_dims:batch_dims + k])
    tuples = _in_range(indices, dims, "nd")
    batch_shape = indices.shape[:batch_dims]
    grids = np.meshgrid(*[np.arange(d) for d in batch_shape], indexing="ij") if batch_dims else []
    middle = indices.shape[batch_dims:-1]
    batch_index = [g.reshape(batch_shape + (1,) * len(middle)) for g in grids]
    return tuple(np.broadcast_to(g, indices.shape[:-1]) for g in batch_index) + tuple(
        tuples[..., i] for i in range(k))


def gather_nd(attrs, data, indices):
    return data[_nd_positions(data.shape, indices, attrs["batch_dims"])]


_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_elements(attrs, data, indices, updates):
    axis = normalize_axis(attrs["axis"], data.ndim)
    out = np.array(data, copy=True)
    idx = _in_range(indices, data.shape[axis], "scatter_elements")
    positions = list(np.indices(indices.shape, sparse=True))
    positions[axis] = idx
    positions = tuple(np.broadcast_to(p, indices.shape) for p in positions)
    if attrs["reduction"] == "none":
        out[positions] = updates
    else:
        _COMBINE[attrs["reduction"]].at(out, positions, updates)
    return out


def scatter_nd(attrs, data, indices, updates):
    out = np.array(data, copy=True)
    positions = _nd_positions(data.shape, indices, 0)
    if attrs["reduction"] == "none":
        out[positions] = updates
    else:
        _COMBINE[attrs["reduction"]].at(out, positions, updates)
    return out


def one_hot(attrs, indices, values):
    depth = attrs["depth"]
    axis = normalize_axis(attrs["axis"], indices.ndim + 1)
    idx = np.where(indices < 0, indices + depth, indices)
    hot = np.expand_dims(idx, axis) == np.arange(depth).reshape((-1,) + (1,) * (indices.ndim - axis))
    return np.where(hot, values[1], values[0]).astype(values.dtype)


def trilu(attrs, x):
    if attrs["upper"]:
        return np.triu(x, attrs["k"])
    return np.tril(x, attrs["k"])


def _cumulative(fn, identity):
    def kernel(attrs, x):
        """Exclusive: the running result of the elements before, starting from the identity."""
        axis = normalize_axis(attrs["axis"], x.ndim)
        y = np.flip(x, axis) if attrs["reverse"] else x
        if attrs["exclusive"]:
            first = np.full_like(np.take(y, [0], axis=axis), identity)
            y = np.concatenate([first, np.take(y, np.arange(y.shape[axis] - 1), axis=axis)], axis=axis)
        total = fn(y, axis=axis, dtype=x.dtype)
        return np.flip(total, axis) if attrs["reverse"] else total

    return kernel


def top_k(attrs, x):
    """Stable sorts keep the lower index first among equal values, as ONNX requires."""
    axis, k = normalize_axis(attrs["axis"], x.ndim), attrs["k"]
    if attrs["largest"]:
        order = np.argsort(-x if not np.issubdtype(x.dtype, np.unsignedinteger) else ~x, axis=axis, kind="stable")
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    return np.take_along_axis(x, indices, axis=axis), indices


def einsum(attrs, *operands):
    return np.einsum(attrs["equation"], *operands)


KERNEL_TABLE = (
    ("tile", tile),
    ("depth_to_space", depth_to_space),
    ("space_to_depth", space_to_depth),
    ("gather_elements", gather_elements),
    ("gather_nd", gather_nd),
    ("scatter_elements", scatter_elements),
    ("scatter_nd", scatter_nd),
    ("one_hot", one_hot),
    ("trilu", trilu),
    ("cumsum", _cumulative(np.cumsum, 0)),
    ("cumprod", _cumulative(np.cumprod, 1)),
    ("top_k", top_k),
    ("einsum", einsum),
)
