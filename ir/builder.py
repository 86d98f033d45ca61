"""Builder: create ops with inferred result types at an insertion point of a module."""
from __future__ import annotations

import numpy as np

from .core import Module, Op, Value
from .opdef import get_def, normalize_attr
from .shape_rules import ShapeError
from .errors import VerifyError


def infer_types(kind: str, operands, attrs: dict):
    """Complete attrs with defaults, normalize them and run the op's type rule."""
    opdef = get_def(kind)
    full = {}
    for key, value in opdef.with_defaults(attrs).items():
        spec = opdef.attr(key)
        if spec is None:
            raise VerifyError(f"op {kind} has no attribute {key!r}")
        full[key] = normalize_attr(spec.kind, value)
    return full, opdef.infer([v.type for v in operands], full)


class Builder:
    """Inserts new ops into ``module`` at ``index`` (None appends), stamping ``loc`` on them."""

    def __init__(self, module: Module, index: int | None = None, loc: str = ""):
        self.module = module
        self.index = index
        self.loc = loc

    @classmethod
    def before(cls, op: Op) -> "Builder":
        return cls(op.module, op.module.index_of(op), op.loc)

    @classmethod
    def after(cls, op: Op) -> "Builder":
        return cls(op.module, op.module.index_of(op) + 1, op.loc)

    def create(self, kind: str, operands, attrs: dict | None = None, name: str | None = None,
               loc: str | None = None) -> Op:
        operands = list(operands)
        try:
            full, types = infer_types(kind, operands, attrs or {})
        except ShapeError as exc:
            raise VerifyError(f"cannot build {kind} at {loc or self.loc!r}: {exc}") from None
        op = Op(kind, operands, types, full, self.loc if loc is None else loc)
        self.module.insert_op(op, self.index)
        if name is not None:
            for i, r in enumerate(op.results):
                self.module.rename(r, self.module.fresh_name(name if i == 0 else f"{name}.{i}"))
        if self.index is not None:
            self.index += 1
        return op

    def value(self, kind: str, operands, attrs: dict | None = None, name: str | None = None,
              loc: str | None = None) -> Value:
        return self.create(kind, operands, attrs, name, loc).result

    def const(self, array, name: str | None = None) -> Value:
        return self.value("const", [], {"value": np.asarray(array)}, name or "cst")
