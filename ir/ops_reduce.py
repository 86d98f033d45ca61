"""More reductions (min, product, norms, log-sums) and arg max / arg min."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .ops_nn import _reduce
from .shape_rules import normalize_axis
from .traits import Trait
from .types import TensorType

REDUCTIONS = {
    "reduce_min": "minimum", "reduce_prod": "product", "reduce_l1": "sum of |x|", "reduce_l2": "sqrt(sum of x^2)",
    "reduce_log_sum": "log(sum)", "reduce_log_sum_exp": "log(sum of exp(x))", "reduce_sum_square": "sum of x^2",
}
for _kind, _doc in REDUCTIONS.items():
    define_op(_kind, "x", (AttrSpec("axes", "ints"), AttrSpec("keepdims", "int", 1)),
              f"The {_doc} over the listed axes (an empty set gives the identity, as ONNX).",
              traits=(Trait.REDUCTION,))(_reduce)


def _arg(types, attrs):
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape)) if attrs["keepdims"] else \
        tuple(d for i, d in enumerate(x.shape) if i != axis)
    return [TensorType(shape, "i64")]


for _kind in ("arg_max", "arg_min"):
    define_op(_kind, "x", (AttrSpec("axis", "int", 0), AttrSpec("keepdims", "int", 1),
                           AttrSpec("select_last_index", "int", 0)),
              f"Index of the {'largest' if _kind == 'arg_max' else 'smallest'} element along axis (first of "
              "equal ones, or last with select_last_index), as i64.")(_arg)
