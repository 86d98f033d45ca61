"""Verifier: structural and type invariants of a Module, each failure naming the op."""
from __future__ import annotations

from .core import Module, Op
from .errors import VerifyError
from .host_tail import HostTail
from .opdef import ATTR_KINDS, OP_DEFS
from .shape_rules import ShapeError


def describe(op: Op, index: int | None = None) -> str:
    where = f" (loc {op.loc!r})" if op.loc else ""
    results = ", ".join("%" + r.name for r in op.results)
    at = f"#{index} " if index is not None else ""
    return f"op {at}{op.kind} {results}{where}"


def _check_attrs(op: Op, opdef) -> list[str]:
    problems = []
    for key, value in op.attrs.items():
        spec = opdef.attr(key)
        if spec is None:
            problems.append(f"unknown attribute {key!r}")
        elif not isinstance(value, ATTR_KINDS[spec.kind]) or isinstance(value, bool):
            problems.append(f"attribute {key!r} should be {spec.kind}, is {type(value).__name__}")
    for spec in opdef.attrs:
        if spec.name not in op.attrs:
            problems.append(f"missing attribute {spec.name!r}")
    return problems


def verify_op(op: Op, index: int | None = None) -> None:
    opdef = OP_DEFS.get(op.kind)
    if opdef is None:
        raise VerifyError(f"{describe(op, index)}: unknown op kind")
    if not opdef.operand_count_ok(len(op.operands)):
        names = " ".join(s.name + ("?" if s.optional else "*" if s.variadic else "") for s in opdef.operands)
        raise VerifyError(f"{describe(op, index)}: {len(op.operands)} operands do not fit ({names})")
    problems = _check_attrs(op, opdef)
    if problems:
        raise VerifyError(f"{describe(op, index)}: " + "; ".join(problems))
    try:
        expected = opdef.infer([v.type for v in op.operands], op.attrs)
    except ShapeError as exc:
        raise VerifyError(f"{describe(op, index)}: {exc}") from None
    if opdef.num_results is not None and len(op.results) != opdef.num_results:
        raise VerifyError(f"{describe(op, index)}: has {len(op.results)} results, expected {opdef.num_results}")
    if len(expected) != len(op.results):
        raise VerifyError(f"{describe(op, index)}: has {len(op.results)} results, its type rule gives {len(expected)}")
    for r, t in zip(op.results, expected):
        if not r.type.same_layout(t):
            raise VerifyError(f"{describe(op, index)}: result %{r.name} has type {r.type}, "
                              f"the type rule gives {t}")


def verify(module: Module) -> None:
    """Raise VerifyError on the first broken invariant."""
    defined: set[int] = set()
    names: set[str] = set()

    def define(value) -> None:
        if value.name in names:
            raise VerifyError(f"value %{value.name} is defined twice")
        names.add(value.name)
        defined.add(id(value))

    for v in module.inputs:
        define(v)
    for index, op in enumerate(module.ops):
        if op.module is not module:
            raise VerifyError(f"{describe(op, index)}: is listed in the module but not attached to it")
        for v in op.operands:
            if id(v) not in defined:
                raise VerifyError(f"{describe(op, index)}: operand %{v.name} is not defined before its use")
            if op not in v.uses:
                raise VerifyError(f"{describe(op, index)}: use list of %{v.name} misses this op")
        for r in op.results:
            if r.producer is not op:
                raise VerifyError(f"{describe(op, index)}: result %{r.name} names another producer")
            define(r)
        verify_op(op, index)
    if not module.outputs:
        raise VerifyError(f"module @{module.name} has no outputs")
    out_names = set()
    for name, v in module.outputs:
        if id(v) not in defined:
            raise VerifyError(f"output {name!r} refers to %{v.name}, which is not defined in the module")
        if name in out_names:
            raise VerifyError(f"output name {name!r} appears twice")
        out_names.add(name)
    if module.host_tail is not None:
        _verify_host_tail(module.host_tail, out_names)


def _verify_host_tail(tail: HostTail, module_outputs: set[str]) -> None:
    """The tail reads module outputs (its ONNX graph is the frontend's to check) and lists every
    model output once, at least one of them its own."""
    missing = [n for n in tail.inputs if n not in module_outputs]
    if missing:
        raise VerifyError(f"host_tail input {missing[0]!r} is not an output of the module")
    if len(set(tail.outputs)) != len(tail.outputs):
        raise VerifyError("host_tail lists a model output twice")
    if not tail.nodes or set(tail.outputs) <= module_outputs:
        raise VerifyError("host_tail has no nodes or makes none of the model's outputs")
