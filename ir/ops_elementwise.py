"""Element-wise op kinds: numpy-style broadcasting binaries and unary activations."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .traits import Trait
from .shape_rules import ShapeError, broadcast
from .types import TensorType


_EW = (Trait.ELEMENTWISE,)
_SWAPS = (Trait.ELEMENTWISE, Trait.COMMUTATIVE)


def _binary(types, attrs):
    a, b = types
    if a.dtype != b.dtype:
        raise ShapeError(f"operand element types {a.dtype} and {b.dtype} differ")
    return [TensorType(broadcast(a.shape, b.shape), a.dtype)]


def _same(types, attrs):
    return [TensorType(types[0].shape, types[0].dtype)]


for _kind, _doc, _traits in [("add", "a + b", _SWAPS), ("sub", "a - b", _EW), ("mul", "a * b", _SWAPS),
                             ("div", "a / b", _EW), ("pow", "a ** b", _EW), ("max", "maximum(a, b)", _SWAPS),
                             ("min", "minimum(a, b)", _SWAPS)]:
    define_op(_kind, "a b", doc=f"Element-wise {_doc} with numpy broadcasting.", traits=_traits)(_binary)

for _kind in ["relu", "sigmoid", "tanh", "erf", "sqrt", "exp", "neg", "abs", "reciprocal",
              "hard_swish"]:
    define_op(_kind, "x", doc=f"Element-wise {_kind}.", traits=_EW)(_same)

define_op("leaky_relu", "x", (AttrSpec("alpha", "float", 0.01),), "x if x >= 0 else alpha * x", traits=_EW)(_same)
define_op("clip", "x", (AttrSpec("min", "float", float("-inf")), AttrSpec("max", "float", float("inf"))),
          "min(max(x, min), max)", traits=_EW)(_same)
define_op("hard_sigmoid", "x", (AttrSpec("alpha", "float", 0.2), AttrSpec("beta", "float", 0.5)),
          "max(0, min(1, alpha * x + beta))", traits=_EW)(_same)
define_op("gelu", "x", (AttrSpec("approximate", "str", "none"),),
          "GELU, exact (erf) or approximate='tanh'.", traits=_EW)(_same)


@define_op("softmax", "x", (AttrSpec("axis", "int", -1),))
def _softmax(types, attrs):
    """Softmax along one axis (opset-13 semantics; older opsets are reshaped by the frontend)."""
    from .shape_rules import normalize_axis

    normalize_axis(attrs["axis"], types[0].rank)
    return _same(types, attrs)


@define_op("cast", "x", (AttrSpec("to", "str"),), traits=_EW)
def _cast(types, attrs):
    """Convert element type (float8 targets clamp out-of-range values: ONNX's saturate=1)."""
    from .dtypes import DTYPES

    if attrs["to"] not in DTYPES:
        raise ShapeError(f"cast to unknown element type {attrs['to']!r}")
    return [TensorType(types[0].shape, attrs["to"])]


def _compare(types, attrs):
    a, b = types
    if a.dtype != b.dtype:
        raise ShapeError(f"compared element types {a.dtype} and {b.dtype} differ")
    return [TensorType(broadcast(a.shape, b.shape), "bool")]


for _kind, _doc, _traits in [("greater", "a > b", _EW), ("less", "a < b", _EW), ("equal", "a == b", _SWAPS),
                             ("greater_or_equal", "a >= b", _EW), ("less_or_equal", "a <= b", _EW)]:
    define_op(_kind, "a b", doc=f"Element-wise {_doc} as bool, with numpy broadcasting.", traits=_traits)(_compare)


def _logical(types, attrs):
    if any(t.dtype != "bool" for t in types):
        raise ShapeError("logical ops take bool operands")
    return [TensorType(broadcast(*(t.shape for t in types)), "bool")]


for _kind in ("and", "or", "xor"):
    define_op(_kind, "a b", doc=f"Element-wise logical {_kind} of bool tensors.", traits=_SWAPS)(_logical)
define_op("not", "x", doc="Element-wise logical not of a bool tensor.", traits=_EW)(_logical)


@define_op("where", "condition a b", traits=_EW)
def _where(types, attrs):
    """a where condition else b, with numpy broadcasting of all three."""
    cond, a, b = types
    if cond.dtype != "bool" or a.dtype != b.dtype:
        raise ShapeError(f"where needs a bool condition and equal value types, got {cond.dtype}, {a.dtype}, {b.dtype}")
    return [TensorType(broadcast(cond.shape, a.shape, b.shape), a.dtype)]


@define_op("cast_e8m0", "x", (AttrSpec("round_mode", "str", "up"), AttrSpec("saturate", "int", 1)), traits=_EW)
def _cast_e8m0(types, attrs):
    """Convert a float tensor to float8e8m0 powers of two, rounding the mantissa ``up``, ``down``
    or to ``nearest`` (numerics.e8m0); ``saturate`` = 0 turns overflow into NaN."""
    from .numerics import E8M0_ROUNDING

    if attrs["round_mode"] not in E8M0_ROUNDING:
        raise ShapeError(f"cast_e8m0 round_mode {attrs['round_mode']!r} is not one of {', '.join(E8M0_ROUNDING)}")
    return [TensorType(types[0].shape, "f8e8m0")]


define_op("cast_no_saturate", "x", (AttrSpec("to", "str"),),
          "Convert to a float8 type without saturation (ONNX's saturate=0): out-of-range values become "
          "infinity or NaN.", traits=_EW)(_cast)
