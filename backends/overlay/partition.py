"""Split a quantized module into device and host partitions, each a module of its own.

Units are the placement's device steps and its host ops.  A unit joins partition ``k`` where
``k`` is the smallest index of its kind (device partitions even, host partitions odd) not before
any unit it reads from, so consecutive work of one kind stays together and every path through
the graph changes partitions as few times as possible.  Partitions run in index order; values
cross between them by name, as the tensors they are in the quantized IR (int8 tensors are
dequantized and quantized by the host ops that use or make them).
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Module, Op, Value, is_constant

from .placement import HOST, ModulePlacement

DEVICE = "device"


@dataclass
class Part:
    kind: str  # device | host
    module: Module  # inputs and outputs named as the values of the whole module


def _units(module: Module, placement: ModulePlacement) -> list[tuple[str, list[Op]]]:
    """(kind, ops) per device step and per host op, in an order where producers come first."""
    position = {id(op): i for i, op in enumerate(module.ops)}
    units = [(DEVICE, step.ops) for step in placement.steps]
    units += [(HOST, [op]) for op in module.ops
              if op.kind != "const" and placement.of[id(op)].unit == HOST]
    return sorted(units, key=lambda u: max(position[id(o)] for o in u[1]))


def partition(module: Module, placement: ModulePlacement) -> list[Part]:
    """The partitions of ``module`` in execution order (empty ones dropped)."""
    index_of: dict[int, int] = {}  # id(op) -> partition index
    groups: dict[int, list[Op]] = {}
    for kind, ops in _units(module, placement):
        k = 0 if kind == DEVICE else 1
        for op in ops:
            for v in op.operands:
                p = v.producer
                if p is None or is_constant(v) or id(p) not in index_of:
                    continue
                source = index_of[id(p)]
                k = max(k, source if (source % 2 == 0) == (kind == DEVICE) else source + 1)
        for op in ops:
            index_of[id(op)] = k
        groups.setdefault(k, []).extend(ops)
    position = {id(op): i for i, op in enumerate(module.ops)}
    parts: list[Part] = []
    for k in sorted(groups):
        ops = sorted(groups[k], key=lambda o: position[id(o)])
        parts.append(Part(DEVICE if k % 2 == 0 else HOST, extract(module, ops, f"{module.name}.part{len(parts)}")))
    return parts


def extract(module: Module, ops: list[Op], name: str) -> Module:
    """A module computing ``ops`` (in order): operands made elsewhere become inputs (constants are
    copied), results used elsewhere or by the model's outputs become outputs, all under their names."""
    inside = {id(op) for op in ops}
    sub = Module(name)
    mapping: dict[int, Value] = {}

    def operand(v: Value) -> Value:
        if id(v) not in mapping:
            if is_constant(v):
                mapping[id(v)] = sub.insert_op(_clone(v.producer, [])).result
            else:
                mapping[id(v)] = sub.add_input(v.name, v.type)
        return mapping[id(v)]

    for op in ops:
        clone = sub.insert_op(_clone(op, [operand(v) for v in op.operands]))
        for old, new in zip(op.results, clone.results):
            mapping[id(old)] = new
    for op in ops:
        for r in op.results:
            if module.is_output(r) or any(id(u) not in inside for u in r.users):
                sub.add_output(r.name, mapping[id(r)])
    return sub


def _clone(op: Op, operands: list[Value]) -> Op:
    return Op(op.kind, operands, [r.type for r in op.results], op.attrs, op.loc, [r.name for r in op.results])
