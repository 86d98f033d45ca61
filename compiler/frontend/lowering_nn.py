"""Lowerings of convolution, Gemm/MatMul, normalizations, pooling and reductions.

ONNX attribute defaults are filled in explicitly and ``auto_pad`` becomes explicit pads, so the
IR never depends on ONNX conventions.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tcc.ir.dtypes import to_numpy
from tcc.ir.shape_rules import normalize_axis

from .context import NodeContext


def explicit_pads(n: NodeContext, spatial: tuple[int, ...], kernel, strides, dilations) -> tuple[int, ...]:
    """``auto_pad`` or ``pads`` as explicit pads: all begins, then all ends."""
    nsp = len(spatial)
    auto_pad = n.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = n.attr("pads") or (0,) * (2 * nsp)
        if len(pads) != 2 * nsp:
            raise n.error(f"pads {list(pads)} do not have 2 x {nsp} entries")
        return tuple(pads)
    if auto_pad == "VALID":
        return (0,) * (2 * nsp)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise n.error(f"auto_pad={auto_pad!r} is not NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return tuple(begins + ends)


def _window(n: NodeContext, kernel) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    spatial = n.input_type(0).shape[2:]
    nsp = len(spatial)
    strides = tuple(n.attr("strides") or (1,) * nsp)
    dilations = tuple(n.attr("dilations") or (1,) * nsp)
    return strides, explicit_pads(n, spatial, kernel, strides, dilations), dilations


def _operands(n: NodeContext, count: int) -> list:
    return [n.input(i) for i in range(count) if n.has_input(i)]


def lower_conv(n: NodeContext) -> None:
    kernel = n.attr("kernel_shape") or n.input_type(1).shape[2:]
    strides, pads, dilations = _window(n, kernel)
    n.emit("conv", _operands(n, 3),
           {"strides": strides, "pads": pads, "dilations": dilations, "group": n.attr("group", 1)})


def lower_conv_transpose(n: NodeContext) -> None:
    """Pads come from ``pads``, or are derived from ``output_shape``/``auto_pad`` as the ONNX spec says."""
    x_shape, w_shape = n.input_type(0).shape, n.input_type(1).shape
    spatial = x_shape[2:]
    nsp = len(spatial)
    kernel = n.attr("kernel_shape") or w_shape[2:]
    strides = tuple(n.attr("strides") or (1,) * nsp)
    dilations = tuple(n.attr("dilations") or (1,) * nsp)
    output_padding = tuple(n.attr("output_padding") or (0,) * nsp)
    auto_pad = n.attr("auto_pad", "NOTSET")
    output_shape = n.attr("output_shape")
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = tuple(output_shape)[-nsp:] if output_shape else tuple(d * s for d, s in zip(spatial, strides))
        begins, ends = [], []
        for i in range(nsp):
            total = (strides[i] * (spatial[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
                     - target[i])
            upper = auto_pad == "SAME_UPPER"
            # A negative total (an output larger than the transposed convolution makes) grows the
            # end: floor division, as ONNX's conformance case convtranspose_output_shape expects.
            begins.append(total // 2 if upper else total - total // 2)
            ends.append(total - total // 2 if upper else total // 2)
        pads = tuple(begins + ends)
    elif auto_pad == "VALID":
        pads = (0,) * (2 * nsp)
    else:
        pads = tuple(n.attr("pads") or (0,) * (2 * nsp))
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "group": n.attr("group", 1),
             "output_padding": output_padding}
    if min(pads) >= 0:
        n.emit("conv_transpose", _operands(n, 3), attrs)
        return
    # Negative pads: the output reaches past what the transposed convolution writes; those
    # positions hold zero plus the bias.
    y = n.temp("conv_transpose", [n.input(0), n.input(1)], {**attrs, "pads": tuple(max(p, 0) for p in pads)})
    grow = (0, 0) + tuple(max(-p, 0) for p in pads[:nsp]) + (0, 0) + tuple(max(-p, 0) for p in pads[nsp:])
    if not n.has_input(2):
        n.emit("pad", [y], {"pads": grow, "mode": "constant", "value": 0.0})
        return
    y = n.temp("pad", [y], {"pads": grow, "mode": "constant", "value": 0.0})
    bias = n.temp("reshape", [n.input(2)], {"shape": (w_shape[1] * n.attr("group", 1),) + (1,) * nsp})
    n.emit("add", [y, bias])


def lower_matmul(n: NodeContext) -> None:
    n.emit("matmul", [n.input(0), n.input(1)])


def lower_gemm(n: NodeContext) -> None:
    """Constant B: ``linear`` with alpha folded into the weight and beta into the bias.
    Computed B: ``matmul`` plus transpose/mul/add as needed."""
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    x = n.input(0)
    if n.attr("transA", 0):
        x = n.temp("transpose", [x], {"perm": (1, 0)}, hint="a_t")
    has_c = n.has_input(2) and beta != 0.0
    if n.is_const(1):
        steps = _gemm_linear(n, x, alpha, beta, has_c)
    else:
        steps = _gemm_matmul(n, x, alpha)
        if has_c:
            steps.append(("add", _scaled_c(n, beta)))
    _chain(n, steps)


def _gemm_linear(n: NodeContext, x, alpha: float, beta: float, has_c: bool) -> list:
    b = n.const(1, "B")
    weight = b if n.attr("transB", 0) else b.T  # linear takes [N, K]
    if alpha != 1.0:
        weight = (weight * alpha).astype(b.dtype)
    if weight is b:
        w = n.input(1)
    else:
        w = n.new_const(weight, f"{n.node.input[1]}.w")
    out_features = weight.shape[0]
    c = n.const(2, "C") if has_c and n.is_const(2) else None
    if c is not None and _is_row(c.shape, out_features):
        if beta == 1.0 and c.shape == (out_features,):
            bias = n.input(2)
        else:
            row = np.broadcast_to(c.reshape(c.shape[-1:]), (out_features,))
            bias = n.new_const((row * beta).astype(c.dtype), f"{n.node.input[2]}.b")
        return [("linear", [x, w, bias])]
    steps = [("linear", [x, w])]
    if has_c:
        steps.append(("add", _scaled_c(n, beta)))
    return steps


def _is_row(shape: tuple[int, ...], n_out: int) -> bool:
    """Whether C broadcasts along M only (so it is a bias vector): [], [1], [N], [1, 1], [1, N]."""
    return len(shape) <= 2 and (not shape or shape[-1] in (1, n_out)) and (len(shape) < 2 or shape[0] == 1)


def _gemm_matmul(n: NodeContext, x, alpha: float) -> list:
    b = n.input(1)
    if n.attr("transB", 0):
        b = n.temp("transpose", [b], {"perm": (1, 0)}, hint="b_t")
    steps: list[tuple[str, Any]] = [("matmul", [x, b])]
    if alpha != 1.0:
        steps.append(("mul", n.new_const(np.asarray(alpha, _np_dtype(n)), f"{n.node.output[0]}.alpha")))
    return steps


def _np_dtype(n: NodeContext):
    return to_numpy(n.input_type(0).dtype)


def _scaled_c(n: NodeContext, beta: float):
    if n.is_const(2):
        given = n.const(2, "C")
        return n.input(2) if beta == 1.0 else n.new_const((given * beta).astype(given.dtype), f"{n.node.input[2]}.b")
    c = n.input(2)
    if beta == 1.0:
        return c
    scale = n.new_const(np.asarray(beta, _np_dtype(n)), f"{n.node.output[0]}.beta")
    return n.temp("mul", [c, scale], hint="c_beta")


def _chain(n: NodeContext, steps: list) -> None:
    """Build ops in order; each step after the first takes the previous result as operand 0."""
    value = None
    for k, (kind, operands) in enumerate(steps):
        operands = operands if value is None else [value, operands]
        if k == len(steps) - 1:
            n.emit(kind, operands)
        else:
            value = n.temp(kind, operands)


def lower_batch_norm(n: NodeContext) -> None:
    if n.attr("training_mode", 0):
        _batch_norm_training(n)
        return
    if any(n.output_used(i) for i in range(1, len(n.node.output))):
        raise n.error("BatchNormalization's extra outputs (opset < 14 training outputs) are not supported; "
                      "export the model in inference mode")
    if n.opset < 9 and n.attr("spatial", 1) == 0:
        raise n.error("spatial=0 (per-activation statistics) is not supported")
    n.emit("batch_norm", _operands(n, 5), {"epsilon": n.attr("epsilon", 1e-5)})


def _batch_norm_training(n: NodeContext) -> None:
    """training_mode=1 (opset 14+): normalize with the batch's own mean and (population) variance
    per channel; the running statistics outputs are input * momentum + batch * (1 - momentum)."""
    x = n.input(0)
    rank, channels = x.type.rank, x.type.shape[1]
    axes = (0,) + tuple(range(2, rank))
    mean = n.temp("reduce_mean", [x], {"axes": axes, "keepdims": 1}, hint="batch_mean")
    centred = n.temp("sub", [x, mean], hint="centred")
    var = n.temp("reduce_mean", [n.temp("mul", [centred, centred], hint="squares")], {"axes": axes, "keepdims": 1},
                 hint="batch_var")
    mean = n.temp("reshape", [mean], {"shape": (channels,)}, hint="mean")
    var = n.temp("reshape", [var], {"shape": (channels,)}, hint="var")
    n.emit("batch_norm", [x, n.input(1), n.input(2), mean, var], {"epsilon": n.attr("epsilon", 1e-5)})
    momentum = float(n.attr("momentum", 0.9))
    dtype = np.dtype(to_numpy(n.input_type(3).dtype))
    keep = n.new_const(np.asarray(momentum, dtype), f"{n.loc}.momentum")
    take = n.new_const(np.asarray(1 - momentum, dtype), f"{n.loc}.one_minus_momentum")
    for output, (running, batch) in enumerate(((3, mean), (4, var)), start=1):
        if n.output_used(output):
            old = n.temp("mul", [n.input(running), keep], hint="kept")
            n.emit("add", [old, n.temp("mul", [batch, take], hint="taken")], output=output)


def lower_layer_norm(n: NodeContext) -> None:
    """The optional Mean and InvStdDev outputs come from a layer_norm_stats op beside it."""
    axis = normalize_axis(n.attr("axis", -1), n.input_type(0).rank)
    attrs = {"axis": axis, "epsilon": n.attr("epsilon", 1e-5)}
    n.emit("layer_norm", _operands(n, 3), attrs)
    if n.output_used(1) or n.output_used(2):
        for i, value in enumerate(n.results("layer_norm_stats", [n.input(0)], attrs, 2), start=1):
            if n.output_used(i):
                n.bind_output(i, value)


def lower_lrn(n: NodeContext) -> None:
    n.emit("lrn", [n.input(0)], {"size": n.attr("size"), "alpha": n.attr("alpha", 1e-4),
                                 "beta": n.attr("beta", 0.75), "bias": n.attr("bias", 1.0)})


def lower_max_pool(n: NodeContext) -> None:
    kernel = tuple(n.attr("kernel_shape"))
    strides, pads, dilations = _window(n, kernel)
    attrs = {"kernel": kernel, "strides": strides, "pads": pads, "dilations": dilations,
             "ceil_mode": n.attr("ceil_mode", 0)}
    n.emit("max_pool", [n.input(0)], attrs)
    if n.output_used(1):
        n.emit("max_pool_indices", [n.input(0)], {**attrs, "storage_order": n.attr("storage_order", 0)}, output=1)


def lower_avg_pool(n: NodeContext) -> None:
    kernel = tuple(n.attr("kernel_shape"))
    strides, pads, dilations = _window(n, kernel)
    n.emit("avg_pool", [n.input(0)], {"kernel": kernel, "strides": strides, "pads": pads,
                                      "dilations": dilations, "ceil_mode": n.attr("ceil_mode", 0),
                                      "count_include_pad": n.attr("count_include_pad", 0)})


def lower_global_avg_pool(n: NodeContext) -> None:
    n.emit("global_avg_pool", [n.input(0)])


def lower_global_max_pool(n: NodeContext) -> None:
    rank = n.input_type(0).rank
    n.emit("reduce_max", [n.input(0)], {"axes": tuple(range(2, rank)), "keepdims": 1})


# Opset from which each reduction takes its axes as an input rather than an attribute.
_AXES_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
                     "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18,
                     "ReduceSumSquare": 18}


def _reduce(kind: str):
    def lower(n: NodeContext) -> None:
        rank = n.input_type(0).rank
        if n.opset >= _AXES_INPUT_SINCE[n.node.op_type]:
            axes = n.const_ints(1, "axes") if n.has_input(1) else ()
            if not axes and n.attr("noop_with_empty_axes", 0):
                n.alias(0, 0)
                return
        else:
            axes = tuple(n.attr("axes") or ())
        axes = tuple(sorted(normalize_axis(a, rank) for a in axes)) if axes else tuple(range(rank))
        n.emit(kind, [n.input(0)], {"axes": axes, "keepdims": n.attr("keepdims", 1)})

    lower.__doc__ = f"-> {kind} with explicit, normalized axes (none given: all axes)."
    return lower


def _arg(n: NodeContext, kind: str) -> None:
    axis = normalize_axis(n.attr("axis", 0), n.input_type(0).rank)
    n.emit(kind, [n.input(0)], {"axis": axis, "keepdims": n.attr("keepdims", 1),
                                "select_last_index": n.attr("select_last_index", 0)})


LOWERINGS = {
    "Conv": lower_conv,
    "ConvTranspose": lower_conv_transpose,
    "MatMul": lower_matmul,
    "Gemm": lower_gemm,
    "BatchNormalization": lower_batch_norm,
    "LayerNormalization": lower_layer_norm,
    "LRN": lower_lrn,
    "MaxPool": lower_max_pool,
    "AveragePool": lower_avg_pool,
    "GlobalAveragePool": lower_global_avg_pool,
    "GlobalMaxPool": lower_global_max_pool,
    "ReduceMean": _reduce("reduce_mean"),
    "ReduceSum": _reduce("reduce_sum"),
    "ReduceMax": _reduce("reduce_max"),
    "ReduceMin": _reduce("reduce_min"),
    "ReduceProd": _reduce("reduce_prod"),
    "ReduceL1": _reduce("reduce_l1"),
    "ReduceL2": _reduce("reduce_l2"),
    "ReduceLogSum": _reduce("reduce_log_sum"),
    "ReduceLogSumExp": _reduce("reduce_log_sum_exp"),
    "ReduceSumSquare": _reduce("reduce_sum_square"),
    "ArgMax": lambda n: _arg(n, "arg_max"),
    "ArgMin": lambda n: _arg(n, "arg_min"),
}
