"""Lowerings of element-wise ONNX ops, activations, comparisons and Where, Softmax, Cast and the
pass-through ops."""
from __future__ import annotations

import numpy as np

from tcc.ir.dtypes import SATURATING_DTYPES, cast, to_numpy
from tcc.ir.shape_rules import normalize_axis, product

from .context import NodeContext
from .onnx_types import elem_name, tcc_dtype


def _binary(kind: str):
    def lower(n: NodeContext) -> None:
        n.emit(kind, [n.input(0), n.input(1)])

    lower.__doc__ = f"ONNX broadcasting binary -> {kind}; a constant operand stays a const op."
    return lower


def lower_pow(n: NodeContext) -> None:
    """Pow allows an exponent of another element type (opset 12+): bring it to the base's."""
    base, dtype = n.input(0), n.input_type(0).dtype
    if n.input_type(1).dtype == dtype:
        exponent = n.input(1)
    elif n.is_const(1):
        exponent = n.new_const(cast(n.const(1, "exponent"), dtype), f"{n.node.input[1]}.{dtype}")
    else:
        exponent = n.temp("cast", [n.input(1)], {"to": dtype})
    n.emit("pow", [base, exponent])


def _variadic(kind: str):
    def lower(n: NodeContext) -> None:
        names = [i for i in range(n.num_inputs) if n.has_input(i)]
        if len(names) == 1:
            n.alias(0, names[0])
            return
        acc = n.input(names[0])
        for k, i in enumerate(names[1:], start=2):
            if k == len(names):
                n.emit(kind, [acc, n.input(i)])
            else:
                acc = n.temp(kind, [acc, n.input(i)], hint=f"{kind}{k - 1}")

    lower.__doc__ = f"Variadic ONNX op -> a chain of binary {kind} ops."
    return lower


def _unary(kind: str):
    def lower(n: NodeContext) -> None:
        n.emit(kind, [n.input(0)])

    lower.__doc__ = f"-> {kind}"
    return lower


def lower_leaky_relu(n: NodeContext) -> None:
    n.emit("leaky_relu", [n.input(0)], {"alpha": n.attr("alpha", 0.01)})


def lower_hard_sigmoid(n: NodeContext) -> None:
    n.emit("hard_sigmoid", [n.input(0)], {"alpha": n.attr("alpha", 0.2), "beta": n.attr("beta", 0.5)})


def lower_gelu(n: NodeContext) -> None:
    approximate = n.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise n.error(f"approximate={approximate!r} is not 'none' or 'tanh'")
    n.emit("gelu", [n.input(0)], {"approximate": approximate})


def lower_clip(n: NodeContext) -> None:
    """Clip bounds are attributes before opset 11 and optional inputs after; absent means +-inf.

    A bound computed at run time becomes a max/min op instead of an attribute.
    """
    if n.opset < 11:
        n.emit("clip", [n.input(0)], {"min": n.attr("min", float("-inf")), "max": n.attr("max", float("inf"))})
        return
    bounds = {"min": float("-inf"), "max": float("inf")}
    computed = []
    for i, key, kind in ((1, "min", "max"), (2, "max", "min")):
        if not n.has_input(i):
            continue
        if n.is_const(i):
            bounds[key] = float(n.const(i, key).reshape(()))
        else:
            computed.append((kind, n.input(i)))
    if not computed:
        n.emit("clip", [n.input(0)], bounds)
        return
    x = n.input(0)
    if bounds != {"min": float("-inf"), "max": float("inf")}:
        x = n.temp("clip", [x], bounds)
    for k, (kind, bound) in enumerate(computed):
        if k == len(computed) - 1:
            n.emit(kind, [x, bound])
        else:
            x = n.temp(kind, [x, bound])


def softmax_like(kind: str):
    """Opset 13+: ``kind`` along ``axis``.  Before 13 Softmax, LogSoftmax and Hardmax flatten to 2-D
    at ``axis`` and normalize the trailing block: reshape, ``kind`` over the last dim, reshape back."""

    def lower(n: NodeContext) -> None:
        shape = n.input_type(0).shape
        rank = len(shape)
        if n.opset >= 13:
            n.emit(kind, [n.input(0)], {"axis": normalize_axis(n.attr("axis", -1), rank)})
            return
        axis = normalize_axis(n.attr("axis", 1), rank)
        if axis == rank - 1:
            n.emit(kind, [n.input(0)], {"axis": axis})
            return
        flat = (product(shape[:axis]), product(shape[axis:]))
        x = n.temp("reshape", [n.input(0)], {"shape": flat}, hint="flat")
        y = n.temp(kind, [x], {"axis": 1})
        n.emit("reshape", [y], {"shape": shape})

    lower.__doc__ = f"-> {kind} (older opsets: flattened at axis)"
    return lower


def lower_cast(n: NodeContext) -> None:
    to = tcc_dtype(n.attr("to"))
    if to is None:
        raise n.error(f"cast to {elem_name(n.attr('to'))} is not supported by tcc")
    if n.input_type(0).dtype == to:
        n.alias(0, 0)
    elif to == "f8e8m0":
        if n.input_type(0).dtype not in ("f32", "f16", "bf16", "f64"):
            raise n.error(f"cast from {n.input_type(0).dtype} to FLOAT8E8M0 is not supported; tcc converts floats")
        n.emit("cast_e8m0", [n.input(0)], {"round_mode": n.attr("round_mode", "up"), "saturate": n.attr("saturate", 1)})
    else:
        n.emit(_cast_kind(n, to), [n.input(0)], {"to": to})


def _cast_kind(n: NodeContext, to: str) -> str:
    """cast saturates float8 targets (ONNX's default); saturate=0 is cast_no_saturate."""
    return "cast_no_saturate" if to in SATURATING_DTYPES and not n.attr("saturate", 1) else "cast"


def lower_cast_like(n: NodeContext) -> None:
    if n.input_type(0).dtype == n.input_type(1).dtype:
        n.alias(0, 0)
    else:
        n.emit(_cast_kind(n, n.input_type(1).dtype), [n.input(0)], {"to": n.input_type(1).dtype})


def lower_mean(n: NodeContext) -> None:
    """Mean of several tensors: their sum divided by the count."""
    present = [i for i in range(n.num_inputs) if n.has_input(i)]
    if len(present) == 1:
        n.alias(0, present[0])
        return
    total = n.input(present[0])
    for i in present[1:]:
        total = n.temp("add", [total, n.input(i)], hint="sum")
    count = n.new_const(np.asarray(len(present), to_numpy(total.type.dtype)), f"{n.loc}.count")
    n.emit("div", [total, count])


def lower_swish(n: NodeContext) -> None:
    """x * sigmoid(alpha * x)."""
    x = n.input(0)
    alpha = float(n.attr("alpha", 1.0))
    scaled = x if alpha == 1.0 else n.temp("mul", [x, n.new_const(np.asarray(alpha, to_numpy(x.type.dtype)),
                                                                  f"{n.loc}.alpha")], hint="scaled")
    n.emit("mul", [x, n.temp("sigmoid", [scaled])])


def lower_prelu(n: NodeContext) -> None:
    """PRelu(x, slope) = max(x, 0) + slope * min(x, 0)."""
    x = n.input(0)
    zero = n.new_const(np.zeros((), to_numpy(x.type.dtype)), f"{n.node.output[0]}.zero")
    positive = n.temp("max", [x, zero], hint="pos")
    negative = n.temp("min", [x, zero], hint="neg")
    scaled = n.temp("mul", [negative, n.input(1)], hint="scaled")
    n.emit("add", [positive, scaled])


def lower_identity(n: NodeContext) -> None:
    n.alias(0, 0)


def lower_dropout(n: NodeContext) -> None:
    """Inference Dropout is the identity; its mask, if anyone reads it, is all ones (as in
    onnx.reference; onnxruntime gives zeros before opset 12)."""
    if n.opset >= 12 and n.has_input(2):
        if not n.is_const(2) or bool(n.const(2, "training_mode").reshape(())):
            raise n.error("training_mode Dropout is not supported; export the model in inference mode")
    n.alias(0, 0)
    if n.output_used(1):
        mask_dtype = n.ctx.onnx_dtype(n.node.output[1]) or np.dtype(bool)
        n.set_const(1, np.ones(n.input_type(0).shape, dtype=mask_dtype))


def lower_where(n: NodeContext) -> None:
    """Where(condition, a, b) -> where, broadcasting all three."""
    n.emit("where", [n.input(0), n.input(1), n.input(2)])


LOWERINGS = {
    "Add": _binary("add"),
    "Sub": _binary("sub"),
    "Mul": _binary("mul"),
    "Div": _binary("div"),
    "Pow": lower_pow,
    "Sum": _variadic("add"),
    "Max": _variadic("max"),
    "Min": _variadic("min"),
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Erf": _unary("erf"),
    "Sqrt": _unary("sqrt"),
    "Exp": _unary("exp"),
    "Neg": _unary("neg"),
    "Abs": _unary("abs"),
    "Reciprocal": _unary("reciprocal"),
    "HardSwish": _unary("hard_swish"),
    "LeakyRelu": lower_leaky_relu,
    "HardSigmoid": lower_hard_sigmoid,
    "Gelu": lower_gelu,
    "Clip": lower_clip,
    "Softmax": softmax_like("softmax"),
    "Cast": lower_cast,
    "PRelu": lower_prelu,
    "CastLike": lower_cast_like,
    "Mean": lower_mean,
    "Swish": lower_swish,
    "Identity": lower_identity,
    "Greater": _binary("greater"),
    "Less": _binary("less"),
    "Equal": _binary("equal"),
    "GreaterOrEqual": _binary("greater_or_equal"),
    "LessOrEqual": _binary("less_or_equal"),
    "And": _binary("and"),
    "Or": _binary("or"),
    "Xor": _binary("xor"),
    "Not": _unary("not"),
    "Where": lower_where,
    "Dropout": lower_dropout,
}
