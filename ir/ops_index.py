"""Indexing and rearranging op kinds: tile, depth/space rearrangements, element and N-d gathers
and scatters, one-hot, triangular masks, cumulative sums, top-k and einsum."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError, normalize_axis
from .traits import Trait
from .types import TensorType

_INDEX_DTYPES = ("i64", "i32")


def _check_indices(t: TensorType, what: str) -> None:
    if t.dtype not in _INDEX_DTYPES:
        raise ShapeError(f"{what} must be i64 or i32, got {t.dtype}")


@define_op("tile", "x", (AttrSpec("repeats", "ints"),), traits=(Trait.VIEW,))
def _tile(types, attrs):
    """Repeat the whole tensor ``repeats[i]`` times along dim i."""
    x, repeats = types[0], attrs["repeats"]
    if len(repeats) != x.rank or any(r < 0 for r in repeats):
        raise ShapeError(f"tile repeats {list(repeats)} do not fit rank {x.rank}")
    return [x.with_shape(d * r for d, r in zip(x.shape, repeats))]


@define_op("depth_to_space", "x", (AttrSpec("blocksize", "int"), AttrSpec("mode", "str", "DCR")),
           traits=(Trait.VIEW,))
def _depth_to_space(types, attrs):
    """[N, C*b*b, H, W] -> [N, C, H*b, W*b], channels read depth-column-row (DCR) or column-row-depth (CRD)."""
    x, b = types[0], attrs["blocksize"]
    if x.rank != 4 or b < 1 or x.shape[1] % (b * b) or attrs["mode"] not in ("DCR", "CRD"):
        raise ShapeError(f"depth_to_space cannot rearrange {list(x.shape)} by {b} ({attrs['mode']})")
    n, c, h, w = x.shape
    return [x.with_shape((n, c // (b * b), h * b, w * b))]


@define_op("space_to_depth", "x", (AttrSpec("blocksize", "int"), AttrSpec("mode", "str", "DCR")),
           traits=(Trait.VIEW,))
def _space_to_depth(types, attrs):
    """[N, C, H*b, W*b] -> [N, C*b*b, H, W], the inverse of depth_to_space in the same mode."""
    x, b = types[0], attrs["blocksize"]
    if x.rank != 4 or b < 1 or x.shape[2] % b or x.shape[3] % b or attrs["mode"] not in ("DCR", "CRD"):
        raise ShapeError(f"space_to_depth cannot rearrange {list(x.shape)} by {b}")
    n, c, h, w = x.shape
    return [x.with_shape((n, c * b * b, h // b, w // b))]


@define_op("gather_elements", "data indices", (AttrSpec("axis", "int", 0),))
def _gather_elements(types, attrs):
    """out[i][j][k] = data[index][j][k] with index = indices[i][j][k] along axis (numpy take_along_axis)."""
    data, idx = types
    _check_indices(idx, "gather_elements indices")
    normalize_axis(attrs["axis"], data.rank)
    if idx.rank != data.rank:
        raise ShapeError(f"gather_elements indices {list(idx.shape)} and data {list(data.shape)} differ in rank")
    return [data.with_shape(idx.shape)]


@define_op("gather_nd", "data indices", (AttrSpec("batch_dims", "int", 0),))
def _gather_nd(types, attrs):
    """Slices of data at the index tuples along the last dim of indices, after batch_dims shared dims."""
    data, idx = types
    _check_indices(idx, "gather_nd indices")
    b = attrs["batch_dims"]
    if idx.rank < 1 or idx.shape[:b] != data.shape[:b] or b + idx.shape[-1] > data.rank:
        raise ShapeError(f"gather_nd indices {list(idx.shape)} do not fit data {list(data.shape)} (batch_dims {b})")
    return [data.with_shape(data.shape[:b] + idx.shape[b:-1] + data.shape[b + idx.shape[-1]:])]


_REDUCTIONS = ("none", "add", "mul", "max", "min")


@define_op("scatter_elements", "data indices updates", (AttrSpec("axis", "int", 0),
                                                         AttrSpec("reduction", "str", "none")))
def _scatter_elements(types, attrs):
    """A copy of data with updates written (or combined by ``reduction``) at indices along axis."""
    data, idx, updates = types
    _check_indices(idx, "scatter_elements indices")
    normalize_axis(attrs["axis"], data.rank)
    if idx.shape != updates.shape or idx.rank != data.rank or updates.dtype != data.dtype:
        raise ShapeError("scatter_elements indices and updates must match each other and data's rank")
    if attrs["reduction"] not in _REDUCTIONS:
        raise ShapeError(f"scatter reduction {attrs['reduction']!r} is not one of {_REDUCTIONS}")
    return [data]


@define_op("scatter_nd", "data indices updates", (AttrSpec("reduction", "str", "none"),))
def _scatter_nd(types, attrs):
    """A copy of data with slices replaced (or combined by ``reduction``) at index tuples."""
    data, idx, updates = types
    _check_indices(idx, "scatter_nd indices")
    k = idx.shape[-1] if idx.rank else 0
    if idx.rank < 1 or k > data.rank or updates.shape != idx.shape[:-1] + data.shape[k:]:
        raise ShapeError(f"scatter_nd updates {list(updates.shape)} do not fit indices {list(idx.shape)} "
                         f"and data {list(data.shape)}")
    if attrs["reduction"] not in _REDUCTIONS:
        raise ShapeError(f"scatter reduction {attrs['reduction']!r} is not one of {_REDUCTIONS}")
    return [data]


@define_op("one_hot", "indices values", (AttrSpec("depth", "int"), AttrSpec("axis", "int", -1)))
def _one_hot(types, attrs):
    """values[1] where the inserted axis equals the index (negative counts from depth), else values[0]."""
    idx, values = types
    if values.shape != (2,):
        raise ShapeError(f"one_hot values must be [off, on], got shape {list(values.shape)}")
    axis = normalize_axis(attrs["axis"], idx.rank + 1)
    shape = list(idx.shape)
    shape.insert(axis, attrs["depth"])
    return [TensorType(tuple(shape), values.dtype)]


@define_op("trilu", "x", (AttrSpec("upper", "int", 1), AttrSpec("k", "int", 0)))
def _trilu(types, attrs):
    """Keep the upper (or lower) triangle of the last two dims, offset by diagonal k; zero the rest."""
    if types[0].rank < 2:
        raise ShapeError("trilu needs rank >= 2")
    return [types[0]]


def _cumulative(types, attrs):
    normalize_axis(attrs["axis"], types[0].rank)
    return [types[0]]


for _kind, _what in (("cumsum", "sum"), ("cumprod", "product")):
    define_op(_kind, "x", (AttrSpec("axis", "int"), AttrSpec("exclusive", "int", 0), AttrSpec("reverse", "int", 0)),
              f"Running {_what} along axis (exclusive: without the element itself; reverse: from the end).")(
        _cumulative)


@define_op("top_k", "x", (AttrSpec("k", "int"), AttrSpec("axis", "int", -1), AttrSpec("largest", "int", 1),
                          AttrSpec("sorted", "int", 1)), num_results=2)
def _top_k(types, attrs):
    """The k largest (or smallest) elements along axis and their i64 indices; ties keep the lower index."""
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    if not 0 <= attrs["k"] <= x.shape[axis]:
        raise ShapeError(f"top_k k={attrs['k']} exceeds dim {x.shape[axis]}")
    shape = x.shape[:axis] + (attrs["k"],) + x.shape[axis + 1:]
    return [x.with_shape(shape), TensorType(shape, "i64")]


@define_op("einsum", "inputs*", (AttrSpec("equation", "str"),))
def _einsum(types, attrs):
    """Einstein summation (numpy.einsum semantics, ellipsis broadcasting)."""
    import numpy as np

    if len({t.dtype for t in types}) != 1:
        raise ShapeError("einsum operands must share one element type")
    try:
        stand_ins = [np.broadcast_to(np.zeros((), np.float32), t.shape) for t in types]
        shape = np.einsum(attrs["equation"], *stand_ins).shape
    except ValueError as exc:
        raise ShapeError(f"einsum {attrs['equation']!r} does not fit the operands: {exc}") from None
    return [types[0].with_shape(shape)]
