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


@define_op("roi_align", "x rois batch_indices", (AttrSpec("mode", "str", "avg"), AttrSpec("height", "int", 1),
                                                 AttrSpec("width", "int", 1), AttrSpec("sampling_ratio", "int", 0),
                                                 AttrSpec("spatial_scale", "float", 1.0),
                                                 AttrSpec("half_pixel", "int", 1)))
def _roi_align(types, attrs):
    """ONNX RoiAlign: for each region (x1, y1, x2, y2) of image batch_indices[i] of x (N, C, H, W),
    a height x width grid of bins, each the average (or max) of bilinear samples; result
    (regions, C, height, width)."""
    x, rois, batch = types
    if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or batch.shape != (rois.shape[0],):
        raise ShapeError(f"roi_align needs x (N, C, H, W), rois (R, 4) and batch_indices (R,), got "
                         f"{list(x.shape)}, {list(rois.shape)}, {list(batch.shape)}")
    if attrs["mode"] not in ("avg", "max"):
        raise ShapeError(f"roi_align mode {attrs['mode']!r} is not avg or max")
    return [TensorType((rois.shape[0], x.shape[1], attrs["height"], attrs["width"]), x.dtype)]


@define_op("deform_conv", "x w offset b? mask?", (AttrSpec("strides", "ints"), AttrSpec("pads", "ints"),
                                                  AttrSpec("dilations", "ints"), AttrSpec("group", "int", 1),
                                                  AttrSpec("offset_group", "int", 1)))
def _deform_conv(types, attrs):
    """ONNX DeformConv (2-D): a convolution whose kernel taps read x bilinearly at positions moved
    by ``offset`` (N, offset_group * 2 * kH * kW, oH, oW: dy, dx per tap), each read scaled by
    ``mask`` (N, offset_group * kH * kW, oH, oW) when given."""
    from .shape_rules import window_output

    x, w, offset = types[0], types[1], types[2]
    if x.rank != 4 or w.rank != 4:
        raise ShapeError(f"deform_conv is 2-D: x and w of rank 4, got {list(x.shape)} and {list(w.shape)}")
    group, offset_group = attrs["group"], attrs["offset_group"]
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group or x.shape[1] % offset_group:
        raise ShapeError(f"input channels {x.shape[1]} do not match weight {list(w.shape)} with group {group} "
                         f"and offset_group {offset_group}")
    strides, pads, dil = attrs["strides"], attrs["pads"], attrs["dilations"]
    out = tuple(window_output(x.shape[2 + i], w.shape[2 + i], strides[i], pads[i], pads[2 + i], dil[i])
                for i in range(2))
    taps = w.shape[2] * w.shape[3]
    if offset.shape != (x.shape[0], offset_group * 2 * taps) + out:
        raise ShapeError(f"deform_conv offset {list(offset.shape)}, expected "
                         f"{[x.shape[0], offset_group * 2 * taps, *out]}")
    return [TensorType((x.shape[0], w.shape[0]) + out, x.dtype)]
