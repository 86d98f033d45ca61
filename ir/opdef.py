"""Op definitions as data: operands, attributes and a type rule declared once per op kind.

The verifier, printer, parser and builder all read these declarations; nothing repeats them
per op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .types import TensorType

REQUIRED = object()

# Attribute kinds and the Python values they hold.
ATTR_KINDS = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "ints": (tuple,),
    "floats": (tuple,),
    "tensor": (np.ndarray,),
}


@dataclass(frozen=True)
class AttrSpec:
    name: str
    kind: str
    default: object = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class OperandSpec:
    """``name`` for one operand, ``name?`` optional (only trailing), ``name*`` variadic (last)."""

    name: str
    optional: bool = False
    variadic: bool = False

    @staticmethod
    def parse(text: str) -> "OperandSpec":
        if text.endswith("?"):
            return OperandSpec(text[:-1], optional=True)
        if text.endswith("*"):
            return OperandSpec(text[:-1], variadic=True)
        return OperandSpec(text)


TypeRule = Callable[[list[TensorType], dict], list[TensorType]]


@dataclass(frozen=True)
class OpDef:
    kind: str
    operands: tuple[OperandSpec, ...]
    attrs: tuple[AttrSpec, ...]
    infer: TypeRule
    doc: str = ""
    num_results: int | None = 1  # None: decided by the type rule (e.g. split)
    extra: dict = field(default_factory=dict)

    def operand_count_ok(self, n: int) -> bool:
        fixed = [s for s in self.operands if not s.optional and not s.variadic]
        optional = [s for s in self.operands if s.optional]
        if any(s.variadic for s in self.operands):
            return n >= len(fixed) + 1
        return len(fixed) <= n <= len(fixed) + len(optional)

    def attr(self, name: str) -> AttrSpec | None:
        """The op kind's own attribute ``name``, else the annotation of that name, else None."""
        for a in self.attrs:
            if a.name == name:
                return a
        return ANNOTATIONS.get(name)

    def with_defaults(self, attrs: dict) -> dict:
        out = dict(attrs)
        for a in self.attrs:
            if a.name not in out and not a.required:
                out[a.name] = a.default
        return out


OP_DEFS: dict[str, OpDef] = {}

# Annotations: optional attributes any op may carry, the results of an analysis that later stages
# read.  Declared here as data, so the verifier, parser and printer treat them like an op's own
# attributes (typed, shown, round-tripped); never required.  passes/sparsity.py documents these.
ANNOTATIONS: dict[str, AttrSpec] = {a.name: a for a in (
    AttrSpec("sparsity.mode", "str", None),
    AttrSpec("sparsity.density", "float", None),
    AttrSpec("sparsity.in_density", "float", None),
    AttrSpec("sparsity.neighbours", "float", None),
    AttrSpec("sparsity.submanifold", "int", None),
    AttrSpec("sparsity.weight_zeros", "float", None),
    AttrSpec("sparsity.nm", "str", None),
    AttrSpec("sparsity.nm_1of4", "float", None),
    AttrSpec("sparsity.nm_2of4", "float", None),
    AttrSpec("sparsity.nm_4of8", "float", None),
)}


def define_op(kind: str, operands: str, attrs: tuple[AttrSpec, ...] = (), doc: str = "",
              num_results: int | None = 1):
    """Register an op kind; decorates its type rule.

    ``operands`` is a space-separated list such as ``"x w b?"`` or ``"inputs*"``.
    """

    def register(rule: TypeRule) -> TypeRule:
        if kind in OP_DEFS:
            raise ValueError(f"op kind {kind!r} defined twice")
        specs = tuple(OperandSpec.parse(t) for t in operands.split())
        OP_DEFS[kind] = OpDef(kind, specs, tuple(attrs), rule, doc or (rule.__doc__ or "").strip(),
                              num_results)
        return rule

    return register


def get_def(kind: str) -> OpDef:
    try:
        return OP_DEFS[kind]
    except KeyError:
        raise KeyError(f"unknown op kind {kind!r}") from None


def normalize_attr(kind: str, value):
    """Coerce a Python value to the canonical form of an attribute kind (tuples, ints, floats)."""
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "str":
        return str(value)
    if kind == "ints":
        return tuple(int(v) for v in value)
    if kind == "floats":
        return tuple(float(v) for v in value)
    if kind == "tensor":
        return np.asarray(value)
    raise ValueError(f"unknown attribute kind {kind!r}")
