"""Data-movement op kinds: constants, reshapes, concatenation, slicing, resizing, gathering."""
from __future__ import annotations

from .dtypes import from_numpy
from .opdef import AttrSpec, define_op
from .traits import Trait
from .shape_rules import ShapeError, normalize_axis, product
from .types import TensorType


@define_op("const", "", (AttrSpec("value", "tensor"),))
def _const(types, attrs):
    """A constant tensor (weights, shapes, tables)."""
    value = attrs["value"]
    return [TensorType(tuple(int(d) for d in value.shape), from_numpy(value.dtype))]


@define_op("reshape", "x", (AttrSpec("shape", "ints"),), traits=(Trait.VIEW,))
def _reshape(types, attrs):
    """Reinterpret with a fully resolved static shape (no -1 or 0 placeholders)."""
    x = types[0]
    shape = attrs["shape"]
    if any(d < 0 for d in shape) or product(shape) != x.size:
        raise ShapeError(f"cannot reshape {list(x.shape)} to {list(shape)}")
    return [TensorType(tuple(shape), x.dtype)]


@define_op("transpose", "x", (AttrSpec("perm", "ints"),), traits=(Trait.VIEW,))
def _transpose(types, attrs):
    """Permute dims: output dim i is input dim perm[i]."""
    x = types[0]
    perm = attrs["perm"]
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"perm {list(perm)} is not a permutation of {x.rank} dims")
    return [TensorType(tuple(x.shape[p] for p in perm), x.dtype)]


@define_op("concat", "inputs*", (AttrSpec("axis", "int"),), traits=(Trait.MOVES,))
def _concat(types, attrs):
    """Join along one axis."""
    first = types[0]
    axis = normalize_axis(attrs["axis"], first.rank)
    for t in types[1:]:
        if t.rank != first.rank or t.dtype != first.dtype or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ShapeError(f"concat operands {list(first.shape)} and {list(t.shape)} disagree off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(tuple(shape), first.dtype)]


@define_op("split", "x", (AttrSpec("axis", "int"), AttrSpec("sizes", "ints")), num_results=None, traits=(Trait.VIEW,))
def _split(types, attrs):
    """Split along one axis into pieces of the given sizes (one result each)."""
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    sizes = attrs["sizes"]
    if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ShapeError(f"split sizes {list(sizes)} do not add up to dim {x.shape[axis]}")
    return [x.with_shape(x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


@define_op("slice", "x", (AttrSpec("starts", "ints"), AttrSpec("ends", "ints"), AttrSpec("axes", "ints"),
                          AttrSpec("steps", "ints")), traits=(Trait.VIEW,))
def _slice(types, attrs):
    """Strided slice per listed axis with Python (and ONNX) clamping rules."""
    x = types[0]
    shape = list(x.shape)
    lists = (attrs["starts"], attrs["ends"], attrs["axes"], attrs["steps"])
    if len({len(v) for v in lists}) != 1:
        raise ShapeError("slice starts, ends, axes and steps differ in length")
    for start, end, axis, step in zip(*lists):
        axis = normalize_axis(axis, x.rank)
        if step == 0:
            raise ShapeError("slice step must not be 0")
        shape[axis] = len(range(*slice(start, end, step).indices(x.shape[axis])))
    return [x.with_shape(shape)]


@define_op("pad", "x", (AttrSpec("pads", "ints"), AttrSpec("mode", "str", "constant"),
                        AttrSpec("value", "float", 0.0)), traits=(Trait.MOVES,))
def _pad(types, attrs):
    """Pad (or crop, with negative pads) every dim; pads are all begins then all ends."""
    x = types[0]
    pads = attrs["pads"]
    if len(pads) != 2 * x.rank:
        raise ShapeError(f"pad needs {2 * x.rank} pads for rank {x.rank}, got {len(pads)}")
    if attrs["mode"] not in ("constant", "reflect", "edge", "wrap"):
        raise ShapeError(f"pad mode {attrs['mode']!r} is not constant, reflect, edge or wrap")
    shape = [d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape)]
    if any(d < 0 for d in shape):
        raise ShapeError(f"pads {list(pads)} crop {list(x.shape)} below zero")
    return [x.with_shape(shape)]


_RESIZE_ATTRS = (AttrSpec("mode", "str"), AttrSpec("coordinate_transformation_mode", "str", "half_pixel"),
                 AttrSpec("nearest_mode", "str", "round_prefer_floor"), AttrSpec("scales", "floats"),
                 AttrSpec("sizes", "ints"), AttrSpec("cubic_coeff_a", "float", -0.75),
                 AttrSpec("exclude_outside", "int", 0), AttrSpec("roi", "floats", ()),
                 AttrSpec("extrapolation_value", "float", 0.0))


@define_op("resize", "x", _RESIZE_ATTRS)
def _resize(types, attrs):
    """Resize to ``sizes`` by nearest, (multi)linear or cubic interpolation; ``scales`` feed the
    coordinate map; ``roi`` (starts then ends) and ``extrapolation_value`` serve tf_crop_and_resize."""
    x = types[0]
    if attrs["mode"] not in ("nearest", "linear", "cubic"):
        raise ShapeError(f"resize mode {attrs['mode']!r} is not nearest, linear or cubic")
    if attrs.get("roi") and len(attrs["roi"]) != 2 * x.rank:
        raise ShapeError(f"resize roi needs {2 * x.rank} values")
    if len(attrs["sizes"]) != x.rank or len(attrs["scales"]) != x.rank:
        raise ShapeError(f"resize sizes/scales must have {x.rank} entries")
    return [x.with_shape(attrs["sizes"])]


define_op("resize_antialias", "x", _RESIZE_ATTRS,
          "Resize (linear or cubic) whose filter is stretched by 1 / scale along the axes it shrinks, "
          "so every input pixel under the stretched filter contributes (ONNX antialias=1).")(_resize)


@define_op("gather", "data indices", (AttrSpec("axis", "int", 0),), traits=(Trait.VIEW,))
def _gather(types, attrs):
    """Take slices of data along axis at integer indices (negative counts from the end)."""
    data, idx = types
    if idx.dtype not in ("i64", "i32"):
        raise ShapeError(f"gather indices must be i64 or i32, got {idx.dtype}")
    axis = normalize_axis(attrs["axis"], data.rank)
    return [data.with_shape(data.shape[:axis] + idx.shape + data.shape[axis + 1:])]


@define_op("expand", "x", (AttrSpec("shape", "ints"),), traits=(Trait.VIEW,))
def _expand(types, attrs):
    """Broadcast to a static shape."""
    from .shape_rules import broadcast

    return [types[0].with_shape(broadcast(types[0].shape, tuple(attrs["shape"])))]
