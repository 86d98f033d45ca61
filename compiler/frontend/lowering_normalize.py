"""Lowerings of LogSoftmax, Hardmax, LpNormalization, InstanceNormalization, GroupNormalization,
RMSNormalization, MeanVarianceNormalization and LpPool."""
from __future__ import annotations

import numpy as np

from tcc.ir.dtypes import to_numpy
from tcc.ir.shape_rules import normalize_axis

from .context import NodeContext
from .lowering_elementwise import softmax_like
from .lowering_nn import _window


def lower_lp_norm(n: NodeContext) -> None:
    p = n.attr("p", 2)
    if p not in (1, 2):
        raise n.error(f"p={p} is not 1 or 2")
    n.emit("lp_norm", [n.input(0)], {"axis": normalize_axis(n.attr("axis", -1), n.input_type(0).rank), "p": p})


def lower_instance_norm(n: NodeContext) -> None:
    n.emit("instance_norm", [n.input(0), n.input(1), n.input(2)], {"epsilon": n.attr("epsilon", 1e-5)})


def lower_group_norm(n: NodeContext) -> None:
    """Opset 18 gives scale and bias per group; they are repeated per channel (opset 21's form)."""
    groups = n.attr("num_groups")
    channels = n.input_type(0).shape[1]
    operands = [n.input(0)]
    for i, what in ((1, "scale"), (2, "bias")):
        if n.input_type(i).shape == (channels,):
            operands.append(n.input(i))
        else:
            per_group = n.const(i, what).reshape(-1)
            if per_group.size != groups or channels % groups:
                raise n.error(f"{what} has {per_group.size} values for {groups} groups of {channels} channels")
            operands.append(n.new_const(np.repeat(per_group, channels // groups), f"{n.loc}.{what}"))
    n.emit("group_norm", operands, {"num_groups": groups, "epsilon": n.attr("epsilon", 1e-5)})


def lower_rms_norm(n: NodeContext) -> None:
    axis = normalize_axis(n.attr("axis", -1), n.input_type(0).rank)
    n.emit("rms_norm", [n.input(0), n.input(1)], {"axis": axis, "epsilon": n.attr("epsilon", 1e-5)})


def lower_mean_variance_norm(n: NodeContext) -> None:
    """ONNX's function body: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) over ``axes``."""
    rank = n.input_type(0).rank
    axes = tuple(sorted(normalize_axis(a, rank) for a in n.attr("axes", (0, 2, 3))))
    x = n.input(0)
    dtype = to_numpy(x.type.dtype)
    mean = n.temp("reduce_mean", [x], {"axes": axes, "keepdims": 1}, hint="mean")
    square = n.temp("mul", [x, x], hint="square")
    mean_square = n.temp("reduce_mean", [square], {"axes": axes, "keepdims": 1}, hint="mean_square")
    variance = n.temp("sub", [mean_square, n.temp("mul", [mean, mean], hint="mean2")], hint="variance")
    std = n.temp("sqrt", [variance], hint="std")
    std = n.temp("add", [std, n.new_const(np.asarray(1e-9, dtype), f"{n.loc}.epsilon")], hint="std_eps")
    centered = n.temp("sub", [x, mean], hint="centered")
    n.emit("div", [centered, std])


def lower_lp_pool(n: NodeContext) -> None:
    kernel = tuple(n.attr("kernel_shape"))
    strides, pads, dilations = _window(n, kernel)
    n.emit("lp_pool", [n.input(0)], {"kernel": kernel, "strides": strides, "pads": pads, "dilations": dilations,
                                     "ceil_mode": n.attr("ceil_mode", 0), "p": n.attr("p", 2)})


LOWERINGS = {
    "LogSoftmax": softmax_like("log_softmax"),
    "Hardmax": softmax_like("hardmax"),
    "LpNormalization": lower_lp_norm,
    "InstanceNormalization": lower_instance_norm,
    "GroupNormalization": lower_group_norm,
    "RMSNormalization": lower_rms_norm,
    "MeanVarianceNormalization": lower_mean_variance_norm,
    "LpPool": lower_lp_pool,
}
