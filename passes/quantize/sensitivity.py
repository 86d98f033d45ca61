"""Per-layer sensitivity: how much the model's output error grows when one layer changes format.

The error of a quantized model is its outputs' relative mean squared error against the float
model on the same inputs (noise-to-signal power, summed over samples before dividing; the mean
over outputs when there are several).  We pick it over top-1 agreement (too coarse on a few
samples) and softmax KL (only meaningful for classifier logits): it applies to any output, and
independent quantization noises from different layers add in power to first order, which is
what the additive model below assumes.

Sensitivity of layer l in format f = error(l in f, every other weight layer int8)
                                     - error(every weight layer int8).
Mixed precision assumes these add up (as the DyBit paper's framework does): the error of an
assignment is predicted as error(all int8) + the sum of its layers' sensitivities.  The pass
reports the measured error of the chosen model next to that prediction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tcc.ir import Module, Op, constant_value
from tcc.ir.errors import TccError
from tcc.ir.interpreter import run_module

from .cost_model import LayerCost
from .lowering import LINEAR_KINDS, LoweringConfig, matrix_operands
from .rules import lower_module


@dataclass(frozen=True)
class Layer:
    """One weight layer of the float module: a conv / linear / matmul with a constant weight."""

    name: str  # the float op's result name: the key of LoweringConfig.layer_weights
    loc: str  # the ONNX node it came from, for reports
    kind: str
    weight_shape: tuple[int, ...]
    cost: LayerCost

    @property
    def label(self) -> str:
        return self.loc or self.name


def _macs(op: Op, weight: np.ndarray) -> int:
    """Multiply-accumulates of one run: every output element reduces over one weight row."""
    out = op.result.type.size
    if op.kind == "conv":
        return out * int(np.prod(weight.shape[1:]))  # weight [M, C/group, *kernel]
    return out * int(weight.shape[1] if op.kind == "linear" else weight.shape[0])


def weight_layers(module: Module) -> list[Layer]:
    """The layers whose weight format mixed precision chooses, in program order."""
    layers = []
    for op in module.ops:
        if op.kind not in LINEAR_KINDS:
            continue
        _, w, b = matrix_operands(op)
        weight = constant_value(w)
        if weight is None or (op.kind == "matmul" and weight.ndim != 2):
            continue
        if b is not None and constant_value(b) is None:
            continue  # a computed bias keeps the layer out of the integer path anyway
        cost = LayerCost(weights=int(weight.size), macs=_macs(op, weight))
        layers.append(Layer(op.result.name, op.loc, op.kind, tuple(weight.shape), cost))
    return layers


def output_error(reference: list[dict[str, np.ndarray]], outputs: list[dict[str, np.ndarray]]) -> float:
    """Relative MSE of ``outputs`` against ``reference`` (per sample, one array per output name), over
    the reference's finite elements; its +-Inf and NaN (a masked score) must be matched exactly, or
    the error is infinite."""
    ratios = []
    for name in reference[0]:
        signal = sum(float(np.sum(np.square(_finite(r[name]), dtype=np.float64))) for r in reference)
        noise = sum(_noise(r[name], o[name]) for r, o in zip(reference, outputs))
        ratios.append(noise / signal if signal > 0 else noise)
    return float(np.mean(ratios))


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def _noise(reference: np.ndarray, output: np.ndarray) -> float:
    ref, out = np.asarray(reference, np.float64), np.asarray(output, np.float64)
    finite = np.isfinite(ref)
    if not np.isfinite(out[finite]).all() or not ((out == ref) | np.isnan(out) & np.isnan(ref))[~finite].all():
        return float("inf")
    return float(np.sum(np.square(out[finite] - ref[finite])))


def model_error(lowered: Module, samples, reference) -> float:
    """Output error of the quantized module ``lowered`` over ``samples`` (``reference``: float outputs)."""
    return output_error(reference, [run_module(lowered, s) for s in samples])


@dataclass
class Sensitivity:
    """Measured output errors of single-layer format changes (see the module docstring)."""

    candidates: tuple[str, ...]
    base_error: float  # every weight layer int8
    errors: np.ndarray  # [layer, candidate]; inf where the format could not be used
    samples: int
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (layer, format) -> why

    @property
    def deltas(self) -> np.ndarray:
        return self.errors - self.base_error


#: ``mapper(task, jobs)``: ``task.run(start, jobs[start:stop])`` over consecutive chunks of ``jobs``, in
#: order, having called ``task.open()`` once wherever it runs.  The driver provides one that runs the
#: chunks on tcc's evaluation engine (a process pool or Ray); None runs them here.
Mapper = Callable[["SensitivityTask", list], Iterable[list]]


class SensitivityTask:
    """Output errors of single-layer format changes, one job = (layer name, format): picklable, so
    a worker process opens it (the module travels as IR text, ranges by value name) and measures
    any jobs it is given.  Each result depends only on its job, so the sweep gives the same errors
    whichever way its jobs run."""

    def __init__(self, source: Module, ranges, samples, reference, config: LoweringConfig):
        self.text: str | None = None
        self.source: Module | None = source
        by_id = {id(v): v.name for v in source.values()}
        self.range_names = {by_id[key]: r for key, r in ranges.items() if key in by_id}
        self.samples, self.reference = samples, reference
        self.symmetric, self.rounding = config.symmetric, config.rounding
        self.layer_inputs = config.layer_inputs

    def __getstate__(self):
        state = dict(self.__dict__, source=None)
        if state["text"] is None and self.source is not None:
            from tcc.ir import print_module

            state["text"] = print_module(self.source)
        return state

    def open(self) -> None:
        if self.source is None:
            from tcc.ir import parse_module

            self.source = parse_module(self.text or "")
        by_name = {v.name: v for v in self.source.values()}
        self.ranges = {id(by_name[name]): r for name, r in self.range_names.items()}

    def error_with(self, layer_weights: dict[str, str]) -> float:
        """The output error with ``layer_weights`` (layer name -> format), every other layer int8."""
        assert self.source is not None, "SensitivityTask.error_with before open"
        lowered = lower_module(self.source, self.ranges, LoweringConfig(
            weights="int8", symmetric=self.symmetric, rounding=self.rounding, layer_weights=layer_weights,
            layer_inputs=self.layer_inputs))
        # One BLAS thread wherever a job runs: float islands' matmul rounding depends on BLAS's
        # thread count, and the errors must not depend on how many workers measure them.
        with threadpool_limits(1, user_api="blas"):
            return model_error(lowered, self.samples, self.reference)

    def run(self, start: int, jobs: list[tuple[str, str]]) -> list[tuple[float, str | None]]:
        """(error, why it is infinite or None) per job."""
        results = []
        for layer, fmt in jobs:
            try:
                error = self.error_with({layer: fmt})
            except TccError as exc:
                results.append((float("inf"), str(exc)))
                continue
            results.append((error, None) if np.isfinite(error) else (float("inf"), "the output error is not finite"))
        return results


def measure_sensitivity(source: Module, ranges, layers: list[Layer], candidates, samples, reference,
                        config: LoweringConfig, progress: Callable[[int, int], None] | None = None,
                        mapper: Mapper | None = None) -> Sensitivity:
    """Lower and run the model once per (layer, non-int8 candidate), plus once all int8.

    ``reference``: the float model's outputs on ``samples``; ``config`` gives the shared
    lowering options (its ``layer_weights`` are replaced).
    ``progress(done, total)`` is called as runs finish; ``mapper`` runs the single-layer runs
    elsewhere (in parallel), with the same result.
    A format that cannot be lowered or run for a layer (a bias that does not fit int32 at the
    finer DyBit scale, an accumulator overflow) gets an infinite error and a recorded reason.
    """
    task = SensitivityTask(source, ranges, samples, reference, config)
    task.open()
    base = task.error_with({})
    errors = np.full((len(layers), len(candidates)), np.inf)
    failures = {}
    cells = [(i, j) for i in range(len(layers)) for j, fmt in enumerate(candidates) if fmt != "int8"]
    for j, fmt in enumerate(candidates):
        if fmt == "int8":
            errors[:, j] = base
    jobs = [(layers[i].name, candidates[j]) for i, j in cells]
    parts = (task.run(k, [job]) for k, job in enumerate(jobs)) if mapper is None else mapper(task, jobs)
    done = 0
    for part in parts:
        for error, why in part:
            i, j = cells[done]
            errors[i, j] = error
            if why is not None:
                failures[(layers[i].name, candidates[j])] = why
            done += 1
        if progress is not None:
            progress(done, len(jobs))
    return Sensitivity(tuple(candidates), base, errors, len(samples), failures)
