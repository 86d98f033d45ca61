"""Lowerings of the element-wise ONNX ops of ops_math: rounding, logarithms, trigonometry,
parameterized activations, IsNaN/IsInf, Mod, BitShift and the bitwise ops."""
from __future__ import annotations

from .context import NodeContext
from tcc.ir.dtypes import to_numpy

from .lowering_elementwise import _binary, _unary
from .onnx_types import elem_name, tcc_dtype

_UNARY = {
    "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign", "Log": "log", "Sin": "sin",
    "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh",
    "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "Softplus": "softplus",
    "Softsign": "softsign", "Mish": "mish", "BitwiseNot": "bitwise_not", "IsNaN": "is_nan",
}
# ONNX op -> (tcc kind, attributes copied with their ONNX defaults).
_WITH_ATTRS: dict[str, tuple[str, dict]] = {
    "Elu": ("elu", {"alpha": 1.0}),
    "Selu": ("selu", {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}),
    "Celu": ("celu", {"alpha": 1.0}),
    "ThresholdedRelu": ("thresholded_relu", {"alpha": 1.0}),
    "Shrink": ("shrink", {"bias": 0.0, "lambd": 0.5}),
    "IsInf": ("is_inf", {"detect_negative": 1, "detect_positive": 1}),
}
_BINARY = {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


def _with_attrs(kind: str, defaults: dict):
    def lower(n: NodeContext) -> None:
        n.emit(kind, [n.input(0)], {name: n.attr(name, default) for name, default in defaults.items()})

    lower.__doc__ = f"-> {kind} with the ONNX attributes (defaults filled in)"
    return lower


def lower_mod(n: NodeContext) -> None:
    fmod = n.attr("fmod", 0)
    if not fmod and n.opset < 28 and n.input_type(0).dtype in ("f16", "f32", "f64", "bf16"):
        raise n.error("Mod of floats needs fmod=1 before opset 28 (the ONNX spec)")
    n.emit("mod", [n.input(0), n.input(1)], {"fmod": fmod})


def lower_bit_shift(n: NodeContext) -> None:
    direction = n.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise n.error(f"direction={direction!r} is not LEFT or RIGHT")
    n.emit("bit_shift", [n.input(0), n.input(1)], {"direction": direction})


def lower_bitcast(n: NodeContext) -> None:
    to = tcc_dtype(n.attr("to"))
    if to is None:
        raise n.error(f"bitcast to {elem_name(n.attr('to'))} is not supported by tcc")
    if to_numpy(to).itemsize != to_numpy(n.input_type(0).dtype).itemsize:
        raise n.error(f"bitcast from {n.input_type(0).dtype} to {to} changes the element width; tcc "
                      "reinterprets elements of equal width only")
    n.emit("bitcast", [n.input(0)], {"to": to})


LOWERINGS = {
    **{op: _unary(kind) for op, kind in _UNARY.items()},
    **{op: _with_attrs(kind, defaults) for op, (kind, defaults) in _WITH_ATTRS.items()},
    **{op: _binary(kind) for op, kind in _BINARY.items()},
    "Mod": lower_mod,
    "BitShift": lower_bit_shift,
    "BitCast": lower_bitcast,
    "Det": _unary("det"),
}
