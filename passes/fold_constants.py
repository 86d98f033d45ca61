"""Constant folding: evaluate ops whose operands are all constants with the reference interpreter."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Builder, Module
from tcc.ir.dtypes import to_numpy
from tcc.ir.interpreter import evaluate_op

from .base import Pass


@dataclass
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "replace ops with all-constant operands by their computed value"

    def apply(self, module: Module) -> None:
        for op in list(module.ops):
            if op.kind == "const" or not op.operands:
                continue
            if not all(v.producer is not None and v.producer.kind == "const" for v in op.operands):
                continue
            values = evaluate_op(op, [v.producer.attrs["value"] for v in op.operands])
            builder = Builder.before(op)
            replacements = []
            for value, old in zip(values, op.results):
                value = value.astype(to_numpy(old.type.dtype), copy=False).reshape(old.type.shape)
                replacements.append(builder.const(value, name=old.name))
            names = [old.name for old in op.results]
            for old, new in zip(op.results, replacements):
                old.replace_all_uses_with(new)
            module.erase_op(op)
            for new, name in zip(replacements, names):  # the folded value keeps the user-visible name
                module.rename(new, name)
