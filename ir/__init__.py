"""tcc's graph IR: typed SSA values, ops declared as data, textual form, verifier."""
from . import ops_elementwise, ops_index, ops_math, ops_nn, ops_normalize, ops_quant, ops_recurrent, ops_reduce, ops_sample, ops_signal, ops_tensor  # noqa: F401  (register op kinds)
from .builder import Builder
from .constants import constant_value, is_constant
from .core import Module, Op, Value
from .errors import InterpreterError, IRParseError, TccError, VerifyError
from .opdef import OP_DEFS, AttrSpec, OpDef, define_op, get_def, has_trait, kinds_with
from .parser import parse_module
from .printer import print_module
from .traits import Trait
from .types import QuantParams, TensorType
from .verifier import verify

__all__ = [
    "AttrSpec", "Builder", "InterpreterError", "IRParseError", "Module", "OP_DEFS", "Op", "OpDef",
    "QuantParams", "TccError", "TensorType", "Trait", "Value", "VerifyError", "constant_value", "define_op",
    "get_def", "has_trait", "is_constant", "kinds_with", "parse_module", "print_module", "verify",
]
