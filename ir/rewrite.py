"""Pattern rewriting: "match this subgraph, build that one", applied to a fixpoint by one driver.

A pattern is an object with ``match_and_rewrite(op, rewriter) -> bool``; it returns True when it
changed the module.  The driver revisits ops until no pattern applies.
"""
from __future__ import annotations

from typing import Protocol

from .builder import Builder
from .core import Module, Op, Value
from .errors import VerifyError


class RewritePattern(Protocol):
    def match_and_rewrite(self, op: Op, rewriter: "Rewriter") -> bool: ...


class Rewriter:
    """The edits a pattern may make; replacements inherit the matched op's location, and the
    quantization parameters pinned on the values they replace (they compute the same tensor)."""

    def __init__(self, module: Module):
        self.module = module
        self.changed = False

    def builder_before(self, op: Op) -> Builder:
        return Builder.before(op)

    def replace_op(self, op: Op, new_values: list[Value]) -> None:
        """Redirect every use of op's results to new_values, then erase op."""
        if len(new_values) != len(op.results):
            raise VerifyError(f"replacement of {op.kind} at {op.loc!r} gives {len(new_values)} values "
                              f"for {len(op.results)} results")
        for old, new in zip(op.results, new_values):
            if new.type.quant is None and old.type.quant is not None and new.type.same_layout(old.type):
                new.type = old.type
            old.replace_all_uses_with(new)
        self.module.erase_op(op)
        self.changed = True

    def replace_keeping_name(self, op: Op, new: Value) -> None:
        """``replace_op`` for a one-result op whose replacement takes the result's name, so dumps,
        reports and `tcc verify` still call the layer what the model called it."""
        name = op.result.name
        self.replace_op(op, [new])
        self.module.rename(new, name)

    def erase_op(self, op: Op) -> None:
        self.module.erase_op(op)
        self.changed = True


def apply_patterns(module: Module, patterns: list, max_rounds: int = 100) -> bool:
    """Apply patterns over all ops until none fires; returns whether anything changed."""
    changed_any = False
    for _ in range(max_rounds):
        rewriter = Rewriter(module)
        for op in list(module.ops):
            if op.module is not module:  # erased by an earlier rewrite in this round
                continue
            for pattern in patterns:
                if pattern.match_and_rewrite(op, rewriter):
                    break
        if not rewriter.changed:
            return changed_any
        changed_any = True
    raise VerifyError(f"rewrite patterns did not reach a fixpoint in {max_rounds} rounds")
