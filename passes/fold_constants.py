"""Constant folding: evaluate ops whose operands are all constants with the reference interpreter."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Builder, Module, constant_value, is_constant
from tcc.ir.dtypes import cast, to_numpy
from tcc.ir.errors import InterpreterError
from tcc.ir.interpreter import evaluate_op

from .base import Pass

#: The largest tensor constant folding may create, in bytes: above any real model's weight (VGG's
#: largest is 0.4 GB), below what a malicious or corrupted 8-byte shape can ask for
#: (ConstantOfShape, Expand, Tile and Range make huge outputs from tiny inputs). The ONNX
#: frontend's folder (compiler/frontend/folding.py) uses this same limit.
FOLD_LIMIT_BYTES = 2**31


@dataclass
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "replace ops with all-constant operands by their computed value"

    def apply(self, module: Module) -> None:
        for op in list(module.ops):
            if op.kind == "const" or not op.operands:
                continue
            if not all(is_constant(v) for v in op.operands):
                continue
            _check_size(op)
            values = evaluate_op(op, [constant_value(v) for v in op.operands])
            builder = Builder.before(op)
            replacements = []
            for value, old in zip(values, op.results):
                value = cast(value, old.type.dtype).reshape(old.type.shape)
                replacements.append(builder.const(value, name=old.name))
            names = [old.name for old in op.results]
            for old, new in zip(op.results, replacements):
                old.replace_all_uses_with(new)
            module.erase_op(op)
            for new, name in zip(replacements, names):  # the folded value keeps the user-visible name
                module.rename(new, name)


def _check_size(op) -> None:
    """Refuse, before evaluating, an op whose results would exceed FOLD_LIMIT_BYTES."""
    size = sum(r.type.size * to_numpy(r.type.dtype).itemsize for r in op.results)
    if size > FOLD_LIMIT_BYTES:
        where = f" ({op.loc})" if op.loc else ""
        raise InterpreterError(f"fold-constants: {op.kind} %{op.results[0].name}{where} would create a constant "
                               f"of {size} bytes (over {FOLD_LIMIT_BYTES} bytes); the model's shapes are "
                               f"corrupted or absurd")
