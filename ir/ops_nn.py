"""Neural-network op kinds: convolution, linear algebra, normalization, pooling, reductions."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .traits import Trait
from .shape_rules import ShapeError, broadcast, normalize_axis, spatial_attrs, window_output
from .types import TensorType

_WINDOW = (AttrSpec("strides", "ints"), AttrSpec("pads", "ints"), AttrSpec("dilations", "ints"))


def _check_bias(types, channels):
    if len(types) > 2 and types[2].shape != (channels,):
        raise ShapeError(f"bias shape {list(types[2].shape)} is not [{channels}]")


@define_op("conv", "x w b?", _WINDOW + (AttrSpec("group", "int", 1),), traits=(Trait.WINDOW, Trait.WEIGHTED))
def _conv(types, attrs):
    """N-d convolution, NC[spatial] activations, OI[kernel] weights, pads as begins then ends."""
    x, w = types[0], types[1]
    nsp = x.rank - 2
    if nsp < 1 or w.rank != x.rank:
        raise ShapeError(f"conv needs input and weight of equal rank >= 3, got {list(x.shape)} and {list(w.shape)}")
    strides, pads, dil = spatial_attrs(attrs, nsp)
    group = attrs["group"]
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ShapeError(f"input channels {x.shape[1]} do not match weight {list(w.shape)} with group {group}")
    _check_bias(types, w.shape[0])
    spatial = [window_output(x.shape[2 + i], w.shape[2 + i], strides[i], pads[i], pads[nsp + i], dil[i])
               for i in range(nsp)]
    return [TensorType((x.shape[0], w.shape[0], *spatial), x.dtype)]


@define_op("conv_transpose", "x w b?",
           _WINDOW + (AttrSpec("group", "int", 1), AttrSpec("output_padding", "ints")))
def _conv_transpose(types, attrs):
    """Transposed convolution; weights are I(O/group)[kernel] as in ONNX."""
    x, w = types[0], types[1]
    nsp = x.rank - 2
    if nsp < 1 or w.rank != x.rank:
        raise ShapeError("conv_transpose needs input and weight of equal rank >= 3")
    strides, pads, dil = spatial_attrs(attrs, nsp)
    group = attrs["group"]
    if x.shape[1] != w.shape[0] or w.shape[0] % group:
        raise ShapeError(f"input channels {x.shape[1]} do not match weight {list(w.shape)}")
    out_c = w.shape[1] * group
    _check_bias(types, out_c)
    outpad = attrs["output_padding"]
    spatial = []
    for i in range(nsp):
        n = (strides[i] * (x.shape[2 + i] - 1) + outpad[i] + dil[i] * (w.shape[2 + i] - 1) + 1
             - pads[i] - pads[nsp + i])
        if n <= 0:
            raise ShapeError("conv_transpose output would be empty")
        spatial.append(n)
    return [TensorType((x.shape[0], out_c, *spatial), x.dtype)]


@define_op("matmul", "a b")
def _matmul(types, attrs):
    """numpy.matmul semantics (batched, broadcasting leading dims)."""
    a, b = types
    if a.rank < 1 or b.rank < 1:
        raise ShapeError("matmul operands must have rank >= 1")
    ash = a.shape if a.rank > 1 else (1,) + a.shape
    bsh = b.shape if b.rank > 1 else b.shape + (1,)
    if ash[-1] != bsh[-2]:
        raise ShapeError(f"matmul inner dims differ: {list(a.shape)} x {list(b.shape)}")
    out = broadcast(ash[:-2], bsh[:-2]) + (ash[-2], bsh[-1])
    if a.rank == 1:
        out = out[:-2] + out[-1:]
    if b.rank == 1:
        out = out[:-1]
    return [TensorType(out, a.dtype)]


@define_op("linear", "x w b?", traits=(Trait.WEIGHTED,))
def _linear(types, attrs):
    """y = x @ w^T + b with w of shape [N, K] (a Gemm with constant weights)."""
    x, w = types[0], types[1]
    if w.rank != 2 or x.rank < 1 or x.shape[-1] != w.shape[1]:
        raise ShapeError(f"linear input {list(x.shape)} does not match weight {list(w.shape)}")
    _check_bias(types, w.shape[0])
    return [TensorType(x.shape[:-1] + (w.shape[0],), x.dtype)]


@define_op("batch_norm", "x scale bias mean var", (AttrSpec("epsilon", "float", 1e-5),), traits=(Trait.ELEMENTWISE,))
def _batch_norm(types, attrs):
    """Inference batch normalization over axis 1."""
    x = types[0]
    if x.rank < 2 or any(t.shape != (x.shape[1],) for t in types[1:]):
        raise ShapeError(f"batch_norm parameters must be [{x.shape[1] if x.rank > 1 else '?'}]")
    return [TensorType(x.shape, x.dtype)]


@define_op("layer_norm", "x scale bias?", (AttrSpec("axis", "int", -1), AttrSpec("epsilon", "float", 1e-5)))
def _layer_norm(types, attrs):
    """Normalize over dims axis..rank-1, then scale and shift."""
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    for t in types[1:]:
        broadcast(x.shape[axis:], t.shape)
    return [TensorType(x.shape, x.dtype)]


def _pool(types, attrs):
    x = types[0]
    nsp = x.rank - 2
    kernel = attrs["kernel"]
    if nsp < 1 or len(kernel) != nsp:
        raise ShapeError(f"pool kernel {list(kernel)} does not match input {list(x.shape)}")
    strides, pads, dil = spatial_attrs(attrs, nsp)
    spatial = [window_output(x.shape[2 + i], kernel[i], strides[i], pads[i], pads[nsp + i], dil[i],
                             bool(attrs["ceil_mode"])) for i in range(nsp)]
    return [TensorType(x.shape[:2] + tuple(spatial), x.dtype)]


define_op("max_pool", "x", (AttrSpec("kernel", "ints"),) + _WINDOW + (AttrSpec("ceil_mode", "int", 0),),
          "Max pooling; padding never wins the max.", traits=(Trait.POOL, Trait.WINDOW))(_pool)


@define_op("max_pool_indices", "x", (AttrSpec("kernel", "ints"),) + _WINDOW
           + (AttrSpec("ceil_mode", "int", 0), AttrSpec("storage_order", "int", 0)))
def _max_pool_indices(types, attrs):
    """Where max_pool's maxima are: flat indices into x (row-major, or with storage_order=1 the
    spatial part column-major), the first of equal values in window order."""
    return [_pool(types, attrs)[0].with_dtype("i64")]


define_op("avg_pool", "x", (AttrSpec("kernel", "ints"),) + _WINDOW
          + (AttrSpec("ceil_mode", "int", 0), AttrSpec("count_include_pad", "int", 0)),
          "Average pooling; count_include_pad counts explicit padding in the divisor.",
          traits=(Trait.POOL, Trait.WINDOW))(_pool)


@define_op("global_avg_pool", "x", traits=(Trait.POOL, Trait.GLOBAL))
def _global_avg_pool(types, attrs):
    """Mean over all spatial dims, keeping them as size 1."""
    x = types[0]
    if x.rank < 3:
        raise ShapeError("global_avg_pool needs rank >= 3")
    return [TensorType(x.shape[:2] + (1,) * (x.rank - 2), x.dtype)]


@define_op("lrn", "x", (AttrSpec("size", "int"), AttrSpec("alpha", "float", 1e-4),
                        AttrSpec("beta", "float", 0.75), AttrSpec("bias", "float", 1.0)), traits=(Trait.SITEWISE,))
def _lrn(types, attrs):
    """Local response normalization across channels."""
    return [TensorType(types[0].shape, types[0].dtype)]


def _reduce(types, attrs):
    x = types[0]
    axes = {normalize_axis(a, x.rank) for a in attrs["axes"]}
    if attrs["keepdims"]:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [TensorType(shape, x.dtype)]


for _kind in ["reduce_mean", "reduce_sum", "reduce_max"]:
    define_op(_kind, "x", (AttrSpec("axes", "ints"), AttrSpec("keepdims", "int", 1)),
              f"{_kind} over the listed axes.", traits=(Trait.REDUCTION,))(_reduce)
