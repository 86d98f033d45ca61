"""What a pass is: a named unit that mutates a module in place and returns nothing."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import ClassVar

from tcc.ir import Module, Op, Value
from tcc.ir.rewrite import Rewriter, apply_patterns


@dataclass
class Pass:
    """Subclasses set ``name`` and implement ``apply``; options are dataclass fields,
    written in pipelines as ``name{field=value,...}``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: Set by the pass manager while the pass runs: where ``report_progress`` goes (not an option:
    #: options are the fields ``__init__`` takes).
    progress_sink: Callable[[str, int, int], None] | None = field(default=None, init=False, repr=False,
                                                                   compare=False)

    #: Set by the pass manager while the pass runs: where ``timed`` reports the parts of the pass.
    part_sink: Callable[[str, float], None] | None = field(default=None, init=False, repr=False, compare=False)

    def apply(self, module: Module) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def report_progress(self, label: str, done: int, total: int) -> None:
        """Tell the pass manager's instrumentations how far a long pass is (no-op outside a manager)."""
        if self.progress_sink is not None:
            self.progress_sink(label, done, total)

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Time a part of a long pass (``with self.timed("calibration"): ...``): the pass manager's
        instrumentations see its wall time (``tcc compile --timings`` lists it under the pass)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.part_sink is not None:
                self.part_sink(part, time.perf_counter() - start)

    def spec(self) -> str:
        opts = ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.init)
        return f"{self.name}{{{opts}}}" if opts else self.name


@dataclass
class OpRewritePass(Pass):
    """A pass that replaces every op its ``rewrite`` takes by the value ``rewrite(op)`` builds before it
    (the value takes the op's result name, so dumps and reports still call the layer what the model
    called it), until no op changes.  ``rewrite`` returns None, having built nothing, for ops it leaves
    alone."""

    @staticmethod
    def rewrite(op: Op) -> Value | None:  # pragma: no cover - interface
        raise NotImplementedError

    def apply(self, module: Module) -> None:
        apply_patterns(module, [_EachOp(self.rewrite)])


class _EachOp:
    def __init__(self, rewrite: Callable[[Op], Value | None]):
        self.rewrite = rewrite

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        new = self.rewrite(op)
        if new is None:
            return False
        rewriter.replace_keeping_name(op, new)
        return True
