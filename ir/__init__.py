"""tcc's graph IR: typed SSA values, ops declared as data, textual form, verifier."""
from . import ops_elementwise, ops_nn, ops_quant, ops_recurrent, ops_tensor  # noqa: F401  (register op kinds)
from .builder import Builder
from .core import Module, Op, Value
from .errors import InterpreterError, IRParseError, TccError, VerifyError
from .opdef import OP_DEFS, AttrSpec, OpDef, define_op, get_def
from .parser import parse_module
from .printer import print_module
from .types import QuantParams, TensorType
from .verifier import verify

__all__ = [
    "AttrSpec", "Builder", "InterpreterError", "IRParseError", "Module", "OP_DEFS", "Op", "OpDef",
    "QuantParams", "TccError", "TensorType", "Value", "VerifyError", "define_op", "get_def",
    "parse_module", "print_module", "verify",
]
