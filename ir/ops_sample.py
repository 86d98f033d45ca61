"""Sampling and placing op kinds: values of a tensor read at computed (fractional) positions
(GridSample), or written to computed positions (Col2Im, MaxUnpool, TensorScatter)."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError
from .types import TensorType

GRID_SAMPLE_MODES = ("linear", "nearest", "cubic")
GRID_SAMPLE_PADDINGS = ("zeros", "border", "reflection")


@define_op("grid_sample", "x grid", (AttrSpec("mode", "str", "linear"), AttrSpec("padding_mode", "str", "zeros"),
                                     AttrSpec("align_corners", "int", 0)))
def _grid_sample(types, attrs):
    """ONNX GridSample: x (N, C, d1..dr) read at grid (N, o1..or, r) positions normalized to
    [-1, 1] (the last grid entry indexes d1, the first dr); result (N, C, o1..or)."""
    x, grid = types
    r = x.rank - 2
    if r < 1 or grid.rank != r + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != r:
        raise ShapeError(f"grid {list(grid.shape)} does not fit input {list(x.shape)}: expected "
                         f"[{x.shape[0]}, ..., {r}] of rank {r + 2}")
    if attrs["mode"] not in GRID_SAMPLE_MODES:
        raise ShapeError(f"grid_sample mode {attrs['mode']!r} is not one of {', '.join(GRID_SAMPLE_MODES)}")
    if attrs["padding_mode"] not in GRID_SAMPLE_PADDINGS:
        raise ShapeError(f"grid_sample padding_mode {attrs['padding_mode']!r} is not one of "
                         f"{', '.join(GRID_SAMPLE_PADDINGS)}")
    return [TensorType((x.shape[0], x.shape[1], *grid.shape[1:-1]), x.dtype)]


@define_op("col2im", "x", (AttrSpec("image_shape", "ints"), AttrSpec("block_shape", "ints"),
                           AttrSpec("strides", "ints"), AttrSpec("pads", "ints"), AttrSpec("dilations", "ints")))
def _col2im(types, attrs):
    """ONNX Col2Im: x (N, C * prod(block_shape), L) holds sliding blocks (rows ordered channel,
    then block tap; columns the block positions, row-major); overlapping entries are summed into
    (N, C, *image_shape)."""
    x = types[0]
    image, block = attrs["image_shape"], attrs["block_shape"]
    r = len(image)
    blocks = 1
    for size in block:
        blocks *= size
    if x.rank != 3 or len(block) != r or blocks < 1 or x.shape[1] % blocks:
        raise ShapeError(f"col2im input {list(x.shape)} does not fit block shape {list(block)}")
    positions = 1
    for i in range(r):
        span = image[i] + attrs["pads"][i] + attrs["pads"][r + i] - attrs["dilations"][i] * (block[i] - 1) - 1
        positions *= max(span // attrs["strides"][i] + 1, 0)
    if positions != x.shape[2]:
        raise ShapeError(f"col2im input has {x.shape[2]} block positions, the image and block shapes give {positions}")
    return [TensorType((x.shape[0], x.shape[1] // blocks, *image), x.dtype)]


@define_op("max_unpool", "x indices", (AttrSpec("shape", "ints"), AttrSpec("pooled_from", "ints")))
def _max_unpool(types, attrs):
    """ONNX MaxUnpool: a zero tensor of ``shape`` with x's values where the flat ``indices``
    point in a tensor of shape ``pooled_from`` (what MaxPool's Indices output indexes); a larger
    ``shape`` (MaxUnpool's output_shape) keeps those coordinates, with zeros after them."""
    x, indices = types
    if indices.shape != x.shape or indices.dtype != "i64":
        raise ShapeError(f"max_unpool indices must be i64 of x's shape {list(x.shape)}")
    shape, source = tuple(attrs["shape"]), tuple(attrs["pooled_from"])
    if len(shape) != x.rank or shape[:2] != x.shape[:2] or len(source) != x.rank \
            or any(s < p for s, p in zip(shape, source)):
        raise ShapeError(f"max_unpool output shape {list(shape)} does not fit x {list(x.shape)} pooled "
                         f"from {list(source)}")
    return [TensorType(shape, x.dtype)]


@define_op("tensor_scatter", "cache update indices?", (AttrSpec("axis", "int"), AttrSpec("circular", "int", 0)))
def _tensor_scatter(types, attrs):
    """ONNX TensorScatter: the cache with each batch entry's update written along ``axis`` from
    that entry's index (0 when absent); ``circular`` wraps positions past the cache's end."""
    cache, update = types[0], types[1]
    axis = attrs["axis"]
    if update.rank != cache.rank or not 0 < axis < cache.rank or any(
            u != c for i, (u, c) in enumerate(zip(update.shape, cache.shape)) if i != axis) \
            or update.shape[axis] > cache.shape[axis]:
        raise ShapeError(f"tensor_scatter update {list(update.shape)} does not fit cache {list(cache.shape)} "
                         f"along axis {axis}")
    if len(types) > 2 and types[2].shape != (cache.shape[0],):
        raise ShapeError(f"tensor_scatter indices must be [{cache.shape[0]}], got {list(types[2].shape)}")
    return [cache]
