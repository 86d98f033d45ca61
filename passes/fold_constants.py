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
#: All the constants folding may create in one module: FOLD_BUDGET_FLOOR bytes plus
#: FOLD_BUDGET_FACTOR times the constants the model itself holds.  Folding turns weights into
#: weights (a Cast of f16 weights doubles them, a DequantizeLinear of int8 ones makes them 4x,
#: a Transpose after it as much again); the floor covers models that make their weights from
#: shapes (the light zoo's VGG-19 makes 548 MB with ConstantOfShape).  A 99-byte model whose
#: Range asks for 2 GB is refused before anything is allocated.
FOLD_BUDGET_FLOOR = 2**30
FOLD_BUDGET_FACTOR = 8


@dataclass
class FoldBudget:
    """The bytes of constants folding may still create in one module (see FOLD_BUDGET_FLOOR)."""

    own_bytes: int  # the constants the module held before folding
    used: int = 0

    @property
    def limit(self) -> int:
        return FOLD_BUDGET_FLOOR + FOLD_BUDGET_FACTOR * self.own_bytes

    def refusal(self, nbytes: int) -> str | None:
        """Why folding ``nbytes`` more is refused (per op: FOLD_LIMIT_BYTES; in total: the budget),
        or None."""
        if nbytes > FOLD_LIMIT_BYTES:
            return f"would create a constant of {nbytes} bytes (over {FOLD_LIMIT_BYTES} bytes)"
        if self.used + nbytes > self.limit:
            return (f"would bring the constants made by folding to {self.used + nbytes} bytes, over the "
                    f"module's budget of {self.limit} bytes ({FOLD_BUDGET_FLOOR} + {FOLD_BUDGET_FACTOR} x "
                    f"the {self.own_bytes} bytes of constants the model holds)")
        return None

    def charge(self, nbytes: int) -> None:
        self.used += nbytes


@dataclass
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "replace ops with all-constant operands by their computed value"

    def apply(self, module: Module) -> None:
        budget = FoldBudget(sum(_result_bytes(op) for op in module.ops if op.kind == "const"))
        for op in list(module.ops):
            if op.kind == "const" or not op.operands:
                continue
            if not all(is_constant(v) for v in op.operands):
                continue
            _check_size(op, budget)
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


def _result_bytes(op) -> int:
    return sum(r.type.size * to_numpy(r.type.dtype).itemsize for r in op.results)


def _check_size(op, budget: FoldBudget) -> None:
    """Refuse, before evaluating, an op whose results would exceed the folding limits; else charge them."""
    size = _result_bytes(op)
    refusal = budget.refusal(size)
    if refusal:
        where = f" ({op.loc})" if op.loc else ""
        raise InterpreterError(f"fold-constants: {op.kind} %{op.results[0].name}{where} {refusal}; the model's "
                               "shapes are corrupted or absurd")
    budget.charge(size)
