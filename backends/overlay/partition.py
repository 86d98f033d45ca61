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
from .steps import to_f32

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
    _fold_boundaries(module, placement, index_of, groups)
    position = {id(op): i for i, op in enumerate(module.ops)}
    merged: list[tuple[str, list[Op]]] = []  # groups in order, a device group joining one before it
    for k in sorted(groups):                  # when the host group between them emptied
        kind = DEVICE if k % 2 == 0 else HOST
        if not groups[k]:
            continue
        if merged and merged[-1][0] == kind:
            merged[-1][1].extend(groups[k])
        else:
            merged.append((kind, list(groups[k])))
    parts: list[Part] = []
    for kind, ops in merged:
        ops = sorted(ops, key=lambda o: position[id(o)])
        parts.append(Part(kind, extract(module, ops, f"{module.name}.part{len(parts)}")))
    return parts


def _fold_boundaries(module: Module, placement: ModulePlacement, index_of: dict[int, int],
                     groups: dict[int, list[Op]]) -> None:
    """Boundary conversions (placement.of[...].boundary) move from host partitions into the device
    partition beside them, where the device's session runs them as its own boundary conversions
    (runtime/session.py) instead of the host partition's interpreter: a dequantize or cast to f32 of
    a tensor a device partition makes joins that partition; a chain of conversions whose device
    tensor only one device partition reads (an f32 input's quantize; an integer mask's reshape, cast
    and quantize) joins that one, when the value it reads comes from outside it and no other op
    there reads that value.  Changes ``index_of`` and ``groups`` in place."""
    def move(op: Op, to: int) -> None:
        groups[index_of[id(op)]].remove(op)
        groups.setdefault(to, []).append(op)
        index_of[id(op)] = to

    for op in reversed(module.ops):  # users first: a chain moves from its device end
        where = placement.of.get(id(op))
        if where is None or not where.boundary or id(op) not in index_of:
            continue
        (x,) = op.operands
        made = x.producer
        source = index_of.get(id(made)) if made is not None and not is_constant(x) else None
        if to_f32(op) and source is not None and source % 2 == 0:
            move(op, source)
            continue
        readers = {index_of.get(id(u)) for u in op.result.users}
        if module.is_output(op.result) or len(readers) != 1 or is_constant(x):
            continue
        (to,) = readers
        if to is None or to % 2 != 0 or source == to \
                or any(index_of.get(id(u)) == to for u in x.users if u is not op):
            continue
        move(op, to)


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
