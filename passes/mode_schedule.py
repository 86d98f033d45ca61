"""schedule-modes: order a quantized module's ops so work of one PE-array mode runs together.

The overlay's PE array is either an int8 systolic array or bf16 SIMD lanes; every change costs
``mode_switch`` cycles (docs/overlay-machine.md).  This pass list-schedules the ops (every
operand still defined before use): it keeps running ready ops of the current mode, and
mode-neutral ones (constants, data movement, host-boundary conversions) as soon as they are
ready, and switches only when no op of the current mode is ready.  The new order is kept only
if it has fewer switches than the old one, so the pass never makes a program worse.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from tcc.ir import Module, Op, Trait

from .base import Pass



def op_mode(op: Op) -> str | None:
    """'int8' (systolic array, quantization unit), 'bf16' (SIMD lanes, int8<->bf16 conversion)
    or None (mode-neutral)."""
    dtypes = {v.type.dtype for v in op.operands + op.results}
    # ops that only move elements: the overlay runs them with DMA and ``copy``, in either mode
    if op.kind == "const" or op.has_trait(Trait.MOVES) or "f32" in dtypes or "i64" in dtypes:
        return None  # constants, data movement, and host work at the model boundary
    if "bf16" in dtypes:
        return "bf16"
    return "int8" if dtypes & {"i8", "u8", "i16", "i32"} else None


def count_switches(ops, start: str = "int8") -> int:
    """Mode changes when running ``ops`` in order from a PE array in mode ``start``."""
    switches, mode = 0, start
    for op in ops:
        want = op_mode(op)
        if want is not None and want != mode:
            switches, mode = switches + 1, want
    return switches


def switch_lower_bound(ops, start: str = "int8") -> int:
    """Switches no topological order can avoid: the most mode changes along one dependency path."""
    best: dict[int, dict[str, int]] = {}
    for op in ops:
        states: dict[str, int] = {}
        for v in op.operands:
            for mode, n in best.get(id(v.producer), {start: 0}).items():
                states[mode] = max(states.get(mode, 0), n)
        states = states or {start: 0}
        want = op_mode(op)
        if want is not None:
            states = {want: max(n + (mode != want) for mode, n in states.items())}
        best[id(op)] = states
    return max((n for states in best.values() for n in states.values()), default=0)


def mode_schedule(ops: list[Op], start: str = "int8") -> list[Op]:
    """A topological order of ``ops`` grouping same-mode work (ties keep the original order)."""
    position = {id(op): i for i, op in enumerate(ops)}
    pending = {id(op): len({id(v.producer) for v in op.operands if v.producer is not None
                            and id(v.producer) in position}) for op in ops}
    ready: dict[str | None, list] = {None: [], "int8": [], "bf16": []}
    for op in ops:
        if pending[id(op)] == 0:
            heapq.heappush(ready[op_mode(op)], (position[id(op)], op))
    order, mode = [], start
    while any(ready.values()):
        if ready[None]:
            queue = ready[None]
        elif ready[mode]:
            queue = ready[mode]
        else:
            mode = "bf16" if mode == "int8" else "int8"
            queue = ready[mode]
        _, op = heapq.heappop(queue)
        order.append(op)
        for user in {id(u): u for r in op.results for u in r.users}.values():
            if id(user) in pending:
                pending[id(user)] -= 1
                if pending[id(user)] == 0:
                    heapq.heappush(ready[op_mode(user)], (position[id(user)], user))
    if len(order) != len(ops):
        raise ValueError("schedule-modes: the module's ops are not a DAG")
    return order


@dataclass
class ScheduleModes(Pass):
    name = "schedule-modes"
    summary = "reorder independent ops to group int8 and bf16 work (fewer PE-array mode switches)"
    # After ``apply``: ``before`` and ``after``, the switch counts of the order before and after
    # (read by benchmarks); instance attributes, not options, so no dataclass fields.

    def apply(self, module: Module) -> None:
        self.before = count_switches(module.ops)
        order = mode_schedule(module.ops)
        self.after = count_switches(order)
        if self.after < self.before:
            module.ops[:] = order
        else:
            self.after = self.before
