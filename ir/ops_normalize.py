"""More normalizations: log-softmax, hardmax, instance / group / RMS / Lp normalization, the
statistics LayerNormalization can also output, and Lp pooling."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .ops_nn import _WINDOW, _pool
from .shape_rules import ShapeError, broadcast, normalize_axis


def _same(types, attrs):
    return [types[0]]


def _along_axis(types, attrs):
    normalize_axis(attrs["axis"], types[0].rank)
    return [types[0]]


define_op("log_softmax", "x", (AttrSpec("axis", "int", -1),), "log(softmax(x)) along one axis.")(_along_axis)
define_op("hardmax", "x", (AttrSpec("axis", "int", -1),),
          "1 at the first maximum along one axis, 0 elsewhere.")(_along_axis)
define_op("lp_norm", "x", (AttrSpec("axis", "int", -1), AttrSpec("p", "int", 2)),
          "x divided by its L1 or L2 norm along one axis (0 where the norm is 0).")(_along_axis)


@define_op("instance_norm", "x scale bias", (AttrSpec("epsilon", "float", 1e-5),))
def _instance_norm(types, attrs):
    """Normalize each channel of each sample over its spatial dims, then scale and shift per channel."""
    x, scale, bias = types
    if x.rank < 3 or scale.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
        raise ShapeError(f"instance_norm scale/bias must be [{x.shape[1] if x.rank > 1 else '?'}]")
    return [x]


@define_op("group_norm", "x scale bias", (AttrSpec("num_groups", "int"), AttrSpec("epsilon", "float", 1e-5)))
def _group_norm(types, attrs):
    """Normalize each group of channels of each sample, then scale and shift per channel."""
    x, scale, bias = types
    groups = attrs["num_groups"]
    if x.rank < 2 or groups < 1 or x.shape[1] % groups or scale.shape != (x.shape[1],) or bias.shape != scale.shape:
        raise ShapeError(f"group_norm of {list(x.shape)} in {groups} groups needs per-channel scale and bias")
    return [x]


@define_op("rms_norm", "x scale", (AttrSpec("axis", "int", -1), AttrSpec("epsilon", "float", 1e-5)))
def _rms_norm(types, attrs):
    """x / sqrt(mean(x^2 over dims axis..) + epsilon) * scale."""
    x, scale = types
    axis = normalize_axis(attrs["axis"], x.rank)
    broadcast(x.shape[axis:], scale.shape)
    return [x]


@define_op("layer_norm_stats", "x", (AttrSpec("axis", "int", -1), AttrSpec("epsilon", "float", 1e-5)),
           num_results=2)
def _layer_norm_stats(types, attrs):
    """Mean and 1 / sqrt(variance + epsilon) over dims axis.., kept as size-1 dims (LayerNormalization's
    optional outputs)."""
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    shape = x.shape[:axis] + (1,) * (x.rank - axis)
    return [x.with_shape(shape), x.with_shape(shape)]


define_op("lp_pool", "x", (AttrSpec("kernel", "ints"),) + _WINDOW + (AttrSpec("ceil_mode", "int", 0),
                                                                     AttrSpec("p", "int", 2)),
          "(sum of |x|^p over each window)^(1/p); padding counts as 0.")(_pool)
