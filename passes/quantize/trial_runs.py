"""Output errors of the quantized variants a greedy choice tries, each run only from where it differs.

The measured choices of remedies.py decide their sites in program order: each trial lowers the
model with one more site changed, and the change reaches the program at (or just before) that
site.  Every op before the first op where a trial's program differs from the current one (the
*base*) computes what it computed in the base's run, so the trial resumes from the base's
checkpoint (ir.interpreter.run_from) at or before that op instead of running the whole model.
The outputs, and hence the errors and every choice, are the same as whole-model runs give: the
prefix is compared op by op (kind, attributes, constants, operand and result names and types),
never assumed.  A ViT's per-matmul trials then run on average half the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op
from tcc.ir.interpreter import Checkpoint, live_before, run_from, start_checkpoint

from .sensitivity import output_error

CHECKPOINTS = 32  # per run and sample: a trial recomputes at most len(ops) / CHECKPOINTS ops of the prefix


def _same(a, b) -> bool:
    if type(a) is tuple and type(b) is tuple and all(type(x) is int for x in a) and all(type(y) is int for y in b):
        return a == b  # per-channel multipliers and shifts: what the element-wise comparison below would say
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() \
            and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _same_op(a: Op, b: Op) -> bool:
    return a.kind == b.kind and [v.name for v in a.operands] == [v.name for v in b.operands] \
        and [(r.name, r.type) for r in a.results] == [(r.name, r.type) for r in b.results] \
        and _same(a.attrs, b.attrs)


def first_difference(a: Module, b: Module) -> int:
    """The index of the first op where ``b``'s program differs from ``a``'s (its length if none)."""
    if [(v.name, v.type) for v in a.inputs] != [(v.name, v.type) for v in b.inputs]:
        return 0
    for i, (x, y) in enumerate(zip(a.ops, b.ops)):
        if not _same_op(x, y):
            return i
    return min(len(a.ops), len(b.ops))


@dataclass
class _Run:
    module: Module
    error: float
    checkpoints: list[list[Checkpoint]]  # per sample, by index (the first: the inputs)


class TrialRuns:
    """The output error (sensitivity.output_error against ``reference``, the float outputs on
    ``samples``) of quantized modules that differ from a base module in a suffix of their ops."""

    def __init__(self, samples, reference):
        self.samples, self.reference = list(samples), reference
        self.base: _Run | None = None
        self.last: _Run | None = None
        self.ops_run = 0  # ops evaluated per sample, over every run (what resuming saves shows here)

    def error(self, lowered: Module) -> float:
        """The error of ``lowered``, run from the base's checkpoint before its first difference from
        the base (whole when there is no base yet); the run is remembered (``keep``)."""
        every = max(1, len(lowered.ops) // CHECKPOINTS)
        differs = 0 if self.base is None else first_difference(self.base.module, lowered)
        outputs, checkpoints = [], []
        for i, sample in enumerate(self.samples):
            earlier = [start_checkpoint(lowered, sample)]
            if self.base is not None:
                earlier += [c for c in self.base.checkpoints[i] if 0 < c.index <= differs]
            start = self._resumable(lowered, earlier)
            produced, later = run_from(lowered, start, every)
            outputs.append(produced)
            checkpoints.append([c for c in earlier if c.index <= start.index] + later)
            self.ops_run += len(lowered.ops) - start.index
        self.last = _Run(lowered, output_error(self.reference, outputs), checkpoints)
        return self.last.error

    @staticmethod
    def _resumable(module: Module, earlier: list[Checkpoint]) -> Checkpoint:
        """The latest of ``earlier`` holding every value ``module`` reads from there on (the first,
        the inputs, always does)."""
        for checkpoint in reversed(earlier):
            if live_before(module, checkpoint.index) <= checkpoint.values.keys():
                return checkpoint
        return earlier[0]

    def keep(self) -> None:
        """The last module measured becomes the base the next ones resume against."""
        assert self.last is not None
        self.base = self.last
