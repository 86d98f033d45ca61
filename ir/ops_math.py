"""More element-wise op kinds: rounding, logarithms, trigonometry, parameterized activations,
tests for NaN and infinity, modulo and bitwise integer ops."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError, broadcast
from .traits import Trait
from .types import TensorType

_EW = (Trait.ELEMENTWISE,)


def _same(types, attrs):
    return [TensorType(types[0].shape, types[0].dtype)]


def _as_bool(types, attrs):
    return [TensorType(types[0].shape, "bool")]


def _binary(types, attrs):
    a, b = types
    if a.dtype != b.dtype:
        raise ShapeError(f"operand element types {a.dtype} and {b.dtype} differ")
    return [TensorType(broadcast(a.shape, b.shape), a.dtype)]


UNARY = {
    "floor": "round down", "ceil": "round up", "round": "round half to even", "sign": "-1, 0 or 1",
    "log": "natural logarithm", "sin": "sine", "cos": "cosine", "tan": "tangent", "asin": "arcsine",
    "acos": "arccosine", "atan": "arctangent", "sinh": "hyperbolic sine", "cosh": "hyperbolic cosine",
    "asinh": "inverse hyperbolic sine", "acosh": "inverse hyperbolic cosine",
    "atanh": "inverse hyperbolic tangent", "softplus": "log(1 + exp(x))", "softsign": "x / (1 + |x|)",
    "mish": "x * tanh(softplus(x))", "bitwise_not": "bitwise complement of an integer",
}
for _kind, _doc in UNARY.items():
    define_op(_kind, "x", doc=f"Element-wise {_doc}.", traits=_EW)(_same)

define_op("is_nan", "x", doc="Element-wise x is NaN, as bool.", traits=_EW)(_as_bool)
define_op("is_inf", "x", (AttrSpec("detect_negative", "int", 1), AttrSpec("detect_positive", "int", 1)),
          "Element-wise x is an infinity of a detected sign, as bool.", traits=_EW)(_as_bool)

# Parameterized activations (ONNX defaults).
define_op("elu", "x", (AttrSpec("alpha", "float", 1.0),), "x if x > 0 else alpha * (exp(x) - 1)",
          traits=_EW)(_same)
define_op("selu", "x", (AttrSpec("alpha", "float", 1.67326319217681884765625),
                        AttrSpec("gamma", "float", 1.05070102214813232421875)),
          "gamma * (x if x > 0 else alpha * (exp(x) - 1))", traits=_EW)(_same)
define_op("celu", "x", (AttrSpec("alpha", "float", 1.0),), "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
          traits=_EW)(_same)
define_op("thresholded_relu", "x", (AttrSpec("alpha", "float", 1.0),), "x if x > alpha else 0",
          traits=_EW)(_same)
define_op("shrink", "x", (AttrSpec("bias", "float", 0.0), AttrSpec("lambd", "float", 0.5)),
          "x + bias if x < -lambd, x - bias if x > lambd, else 0", traits=_EW)(_same)

define_op("mod", "a b", (AttrSpec("fmod", "int", 0),),
          "Element-wise remainder: the divisor's sign (fmod=0, integers) or the dividend's (fmod=1, C fmod).",
          traits=_EW)(_binary)
define_op("bit_shift", "a b", (AttrSpec("direction", "str"),),
          "Element-wise a << b (direction 'LEFT') or a >> b ('RIGHT') of unsigned integers.", traits=_EW)(_binary)
for _kind, _doc in (("bitwise_and", "a & b"), ("bitwise_or", "a | b"), ("bitwise_xor", "a ^ b")):
    define_op(_kind, "a b", doc=f"Element-wise {_doc} of integers.", traits=(Trait.ELEMENTWISE, Trait.COMMUTATIVE))(_binary)


@define_op("bitcast", "x", (AttrSpec("to", "str"),), "The bits of each element read as element type ``to`` "
           "(of the same width).", traits=_EW)
def _bitcast(types, attrs):
    from .dtypes import DTYPES, to_numpy

    if attrs["to"] not in DTYPES:
        raise ShapeError(f"bitcast to {attrs['to']!r}: not an element type")
    if to_numpy(attrs["to"]).itemsize != to_numpy(types[0].dtype).itemsize:
        raise ShapeError(f"bitcast from {types[0].dtype} to {attrs['to']} changes the element width")
    return [TensorType(types[0].shape, attrs["to"])]


@define_op("det", "x", doc="Determinant of each square matrix of the last two axes.")
def _det(types, attrs):
    x = types[0]
    if x.rank < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"det needs square matrices in the last two axes, got {list(x.shape)}")
    return [TensorType(x.shape[:-2], x.dtype)]
