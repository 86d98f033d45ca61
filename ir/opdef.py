"""Op definitions as data: operands, attributes and a type rule declared once per op kind.

The verifier, printer, parser and builder all read these declarations; nothing repeats them
per op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .attributes import ATTR_KINDS, normalize_attr  # noqa: F401  (re-exported: older spellings)
from .core import OP_CLASSES, Op
from .traits import Trait, closure
from .types import TensorType

REQUIRED = object()


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
    traits: frozenset[Trait] = frozenset()

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
              num_results: int | None = 1, traits: tuple[Trait, ...] = ()):
    """Register an op kind; decorates its type rule.

    ``operands`` is a space-separated list such as ``"x w b?"`` or ``"inputs*"``; ``traits`` are
    the categories the kind belongs to (ir/traits.py).
    """

    def register(rule: TypeRule) -> TypeRule:
        if kind in OP_DEFS:
            raise ValueError(f"op kind {kind!r} defined twice")
        specs = tuple(OperandSpec.parse(t) for t in operands.split())
        opdef = OpDef(kind, specs, tuple(attrs), rule, doc or (rule.__doc__ or "").strip(), num_results,
                      traits=closure(traits))
        OP_CLASSES[kind] = op_class(opdef)
        OP_DEFS[kind] = opdef
        return rule

    return register


def _operand_accessor(index: int, spec: OperandSpec) -> property:
    if spec.variadic:
        def get(op):
            return op._operands[index:]
    elif spec.optional:
        def get(op):
            return op._operands[index] if len(op._operands) > index else None
    else:
        def get(op):
            return op._operands[index]
    return property(get, doc=f"Operand {spec.name}" + (" (None if absent)" if spec.optional else ""))


def _attr_accessor(spec: AttrSpec) -> property:
    if spec.required:
        def get(op):
            return op.attrs[spec.name]
    else:
        def get(op):
            return op.attrs.get(spec.name, spec.default)
    return property(get, doc=f"Attribute {spec.name} ({spec.kind})")


def op_class(opdef: OpDef) -> type[Op]:
    """The Op subclass of one kind: its definition and a read-only accessor per operand and attribute."""
    accessors: dict[str, property] = {}
    for index, spec in enumerate(opdef.operands):
        accessors[spec.name] = _operand_accessor(index, spec)
    for attr in opdef.attrs:
        if attr.name in accessors:
            raise ValueError(f"op kind {opdef.kind!r}: attribute {attr.name!r} has an operand's name")
        accessors[attr.name] = _attr_accessor(attr)
    clashes = [name for name in accessors if name in dir(Op)]
    if clashes:
        raise ValueError(f"op kind {opdef.kind!r}: {', '.join(clashes)} would hide Op members")
    name = "".join(part.capitalize() for part in opdef.kind.split("_")) + "Op"
    return type(name, (Op,), {"__slots__": (), "definition": opdef, "__doc__": opdef.doc, **accessors})


def has_trait(kind: str, trait: Trait) -> bool:
    """Whether op kind ``kind`` declares ``trait`` (False for an unknown kind)."""
    opdef = OP_DEFS.get(kind)
    return opdef is not None and trait in opdef.traits


def kinds_with(trait: Trait) -> frozenset[str]:
    """Every registered op kind that declares ``trait``."""
    return frozenset(kind for kind, opdef in OP_DEFS.items() if trait in opdef.traits)


def get_def(kind: str) -> OpDef:
    try:
        return OP_DEFS[kind]
    except KeyError:
        raise KeyError(f"unknown op kind {kind!r}") from None
