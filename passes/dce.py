"""Dead-code elimination: drop ops none of whose results reach an output."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Module

from .base import Pass


@dataclass
class DeadCodeElimination(Pass):
    name = "dce"
    summary = "remove ops whose results are never used"

    def apply(self, module: Module) -> None:
        live_outputs = {id(v) for v in module.output_values()}
        for op in reversed(list(module.ops)):
            if all(not r.uses and id(r) not in live_outputs for r in op.results):
                module.erase_op(op)
