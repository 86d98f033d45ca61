"""annotate-sparsity: measure activation density and weight sparsity, and write them on the ops.

The pass runs the module (float or quantized) over calibration samples with the sparse reference
semantics of ``mode`` (``tcc.ir.interpreter.sparse``: ``exact`` or ``submanifold``) and records
what a sparse dataflow backend needs as op annotations (``ir/opdef.py``: ``ANNOTATIONS``), which
print, parse and verify like any attribute:

    %y = qconv(%x, %w, %b) {..., sparsity.density = 0.184, sparsity.in_density = 0.081,
         sparsity.mode = "submanifold", sparsity.neighbours = 2.3, sparsity.submanifold = 1,
         sparsity.weight_zeros = 0.02, sparsity.nm = "none", sparsity.nm_1of4 = 0.1, ...}

- ``sparsity.mode`` (str): the semantics the densities below were measured in.
- ``sparsity.density`` (float): on every op whose result is a spatial (rank-4, batch-1) value:
  mean over samples of the fraction of active sites of the result (a site is active by the
  mode's rule; inputs: any channel non-zero).
- ``sparsity.in_density`` (float), ``sparsity.neighbours`` (float): on window ops (conv, pooling):
  the density of operand 0, and the mean number of active input sites inside the window of an
  active output site (the depthwise module's "valid neighbours"; kernel taps in padding not counted).
- ``sparsity.submanifold`` (int 0/1): on every op reading a spatial value: whether it has
  submanifold semantics (centred odd or stride-sized cell windows with 'same' padding, stride 1 or 2,
  dilation 1, ungrouped or depthwise convs; pointwise ops on same-resolution tensors; global pooling).
- ``sparsity.weight_zeros`` (float): on conv/qconv/linear/qlinear: fraction of weights equal to
  real zero (the zero point when quantized).
- ``sparsity.nm_1of4``, ``sparsity.nm_2of4``, ``sparsity.nm_4of8`` (float): on those ops when the
  weight has at least M input channels per group: the fraction of groups of M consecutive input
  channels (per output channel and kernel tap; a last partial group is padded with zeros) holding
  at most N non-zeros; ``sparsity.nm`` (str): the strictest pattern every group holds, in the order
  "1:4", "2:4", "4:8", or "none".

In ``submanifold`` mode an op reading a sparse value without submanifold semantics is a
``SparsityError`` naming it.  Read the annotations with ``annotation(op)``.

Measured on examples/events (events_dense.onnx, int8, the 359 test frames; about 2 s for the pass
over them): density of each stride's first and last value, and the 3x3 windows' mean valid neighbours.

    stride  map    submanifold  exact (first -> last)  neighbours sub / exact
    1       32x32   8.1%          8.1%
    2       16x16  18.4%         29.1% -> 83.7%         stem 2.9 / 2.4, dw 3.6 / 3.0
    4        8x8   42.5%         98.6% -> 100%          dw 2.9, 4.5 / 6.9, 7.4
    8        4x4   81.3%        100%                    dw 3.9 / 7.6

Exact mode fills up fast: BN biases make every background after the stem differ from the zero
padding, so each 3x3 window at the border is active, and each 3x3 layer dilates the active set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op, Trait, constant_value, is_constant
from tcc.ir.interpreter.sparse import MODES, SparseInterpreter, SparsityError, window_count
from tcc.ir.types import TensorType

from .base import Pass
from .quantize.calibration import load_samples

PREFIX = "sparsity."
NM_PATTERNS = ((1, 4), (2, 4), (4, 8))  # strictest first: 1:4 implies 2:4 implies 4:8


def annotation(op: Op) -> dict | None:
    """The op's sparsity annotations without the ``sparsity.`` prefix, or None if it has none."""
    found = {k[len(PREFIX):]: v for k, v in op.attrs.items() if k.startswith(PREFIX)}
    return found or None


def real_zeros(weight: np.ndarray, t: TensorType) -> np.ndarray:
    """Where a (possibly quantized) weight is real zero."""
    q = t.quant
    if q is None:
        return weight == 0
    zp = np.asarray(q.zero_point)
    if q.axis is not None:
        shape = [1] * weight.ndim
        shape[q.axis] = len(zp)
        zp = zp.reshape(shape)
    return weight == zp


def nm_fractions(nonzero: np.ndarray) -> dict[str, float]:
    """Fraction of groups of M consecutive entries along axis 1 with at most N non-zeros, per pattern.

    Only patterns whose M fits in axis 1 are reported.
    """
    out = {}
    moved = np.moveaxis(nonzero, 1, -1).reshape(-1, nonzero.shape[1])
    for n, m in NM_PATTERNS:
        if nonzero.shape[1] < m:
            continue
        padded = np.zeros((moved.shape[0], -(-moved.shape[1] // m) * m), bool)
        padded[:, :moved.shape[1]] = moved
        counts = padded.reshape(moved.shape[0], -1, m).sum(axis=2)
        out[f"{n}:{m}"] = float((counts <= n).mean())
    return out


def weight_annotations(op: Op) -> dict:
    w = op.w
    if not is_constant(w):
        return {}
    zero = real_zeros(constant_value(w), w.type)
    attrs: dict[str, float | str] = {"weight_zeros": float(zero.mean())}
    fractions = nm_fractions(~zero)
    if fractions:
        for (n, m), frac in zip(NM_PATTERNS, fractions.values()):
            attrs[f"nm_{n}of{m}"] = frac
        attrs["nm"] = next((p for p, frac in fractions.items() if frac == 1.0), "none")
    return attrs


@dataclass
class _Tally:
    """Sums over calibration samples for one op."""

    density: float = 0.0
    in_density: float = 0.0
    neighbours: int = 0
    active_outputs: int = 0


def measure(interpreter: SparseInterpreter, samples) -> dict[int, _Tally]:
    """Per op (id) reading a spatial value: density sums over ``samples``."""
    module = interpreter.module
    tallies = {id(op): _Tally() for op in module.ops if interpreter.rule(op) is not None}
    for sample in samples:
        run = interpreter.run(sample)
        for op in module.ops:
            rule = interpreter.rule(op)
            if rule is None or op.results[0].name not in run.active:
                continue
            tally = tallies[id(op)]
            out_mask = run.active[op.results[0].name]
            tally.density += float(out_mask.mean())
            if rule.category == "window":
                in_mask = run.active[op.x.name]
                tally.in_density += float(in_mask.mean())
                tally.neighbours += int(window_count(in_mask, rule.window, False)[out_mask].sum())
                tally.active_outputs += int(out_mask.sum())
    return tallies


@dataclass
class AnnotateSparsity(Pass):
    """Activation densities (in the mode's semantics) and weight sparsity as op annotations."""

    name = "annotate-sparsity"
    summary = "measure activation density and weight N:M sparsity as sparsity.* op annotations (needs calib=FILE.npz)"
    calib: str = ""
    mode: str = "exact"
    max_samples: int = 0

    def apply(self, module: Module) -> None:
        if self.mode not in MODES:
            raise SparsityError(f"annotate-sparsity: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not self.calib:
            raise SparsityError("annotate-sparsity measures density on calibration data: pass calib=FILE.npz "
                                "(CLI: --calib FILE.npz)")
        interpreter = SparseInterpreter(module, self.mode)
        samples = load_samples(self.calib, module, self.max_samples)
        tallies = measure(interpreter, samples)
        for op in module.ops:
            for key in [k for k in op.attrs if k.startswith(PREFIX)]:  # a previous run's, maybe another mode
                del op.attrs[key]
            found = {}
            if op.has_trait(Trait.WEIGHTED):
                found.update(weight_annotations(op))
            rule = interpreter.rule(op)
            if rule is not None:
                found["mode"] = self.mode
                found["submanifold"] = int(interpreter.has_submanifold_semantics(op))
                tally = tallies[id(op)]
                if op.results[0].type.rank == 4:
                    found["density"] = tally.density / len(samples)
                if rule.category == "window":
                    found["in_density"] = tally.in_density / len(samples)
                    if any(k > 1 for k in rule.window.kernel):
                        found["neighbours"] = tally.neighbours / max(tally.active_outputs, 1)
            op.attrs.update({PREFIX + k: round(v, 6) if isinstance(v, float) else v for k, v in found.items()})
