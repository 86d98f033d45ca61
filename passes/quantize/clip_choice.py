"""One measured range choice for a group of values: min/max, or each value's MSE clip, whichever
gives the quantized model the smaller output error on calibration samples (silu_range.py,
branch_range.py decide their groups with it).

Rule: the group's MSE clips (``MseObserver``) replace min/max when the quantized model's output
error (sensitivity.output_error) on the samples is at least ``min_gain`` lower.  In sample, the clip
is fitted on the samples it is measured on; cross-validated, the samples are split in two halves,
the clip is fitted on one and measured on the other, both ways round (the errors summed), and the
clip is refitted on all of them when chosen.  Measured on the samples it was fitted on, a clip
looks better than it is: the residual branches of the trained MobileNetV3, RegNet-Y and
EfficientNet-B0 (examples/real_models) measure 17-27% less error in sample with it, and lose
0.2-2.1 dB on their test images.
Cost: two int8 runs over the samples (one lowering more when cross-validated), and a float run per
sample unless the caller kept the values' arrays from its own (Quantize.float_outputs does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Value
from tcc.ir.interpreter import run_module

from .lowering import LoweringConfig
from .observers import MinMaxObserver, MseObserver, Ranges
from .rules import lower_module
from .sensitivity import model_error


@dataclass(frozen=True)
class ClipChoice:
    names: tuple[str, ...]  # the values of the group
    error_minmax: float  # output error on the measured samples
    error_mse: float
    chosen: str  # "minmax" or "mse"


CANDIDATES = (("minmax", MinMaxObserver), ("mse", MseObserver))


def observe_halves(module: Module, values: list[Value], samples, half: int,
                   activations: list[dict[str, np.ndarray]] | None = None) -> list[dict[str, dict[str, MinMaxObserver]]]:
    """For the first ``half`` samples and for the rest, each candidate's observer of each of ``values``
    (candidate -> value name -> observer), from one float run per sample, or from ``activations``
    (per sample, each value's float array by name: kept from the caller's own float runs)."""
    names = {v.name for v in values}
    parts = [{c: {n: observer() for n in names} for c, observer in CANDIDATES} for _ in range(2)]
    for i, sample in enumerate(samples):
        part = parts[0 if i < half else 1]

        def observe(value: Value, array, part=part) -> None:
            if value.name in names:
                for observers in part.values():
                    observers[value.name].observe(array)

        if activations is None:
            run_module(module, sample, observe=observe)
        else:
            for value in values:
                observe(value, activations[i][value.name])
    return parts


def with_ranges(ranges: dict, values: list[Value], observers: dict[str, MinMaxObserver]) -> Ranges:
    """``ranges`` with each of ``values`` at the range its observer chooses."""
    fitted = Ranges(ranges)
    fitted.non_finite = getattr(ranges, "non_finite", frozenset())
    for value in values:
        lo, hi = observers[value.name].range()
        fitted[id(value)] = (float(lo), float(hi))
    return fitted


def merged(*observers: dict[str, MinMaxObserver]) -> dict[str, MinMaxObserver]:
    """Each value's observers merged (exactly: observers.py) into a new one."""
    out = {}
    for name, first in observers[0].items():
        out[name] = type(first)()
        for part in observers:
            out[name].merge(part[name])
    return out


def choose_clip(module: Module, ranges: dict, config: LoweringConfig, values: list[Value], samples,
                reference, min_gain: float, cross_validated: bool = False,
                activations: list[dict[str, np.ndarray]] | None = None) -> ClipChoice | None:
    """Decide the range of the group ``values`` (module docstring) on ``samples`` (``reference``: the
    float model's outputs on them; ``activations``, if given: the values' arrays in those runs, by
    name, so none is run again); ``ranges`` is updated in place when the clip is chosen."""
    samples, reference = list(samples), list(reference)
    if not values or len(samples) < (2 if cross_validated else 1):
        return None
    half = len(samples) // 2 if cross_validated else len(samples)
    parts = observe_halves(module, values, samples, half, activations)
    errors: dict[str, float] = {}
    if cross_validated:
        folds = [(parts[0], slice(half, None)), (parts[1], slice(0, half))]
        for name, _ in CANDIDATES:
            errors[name] = sum((model_error(lower_module(module, with_ranges(ranges, values, fit[name]), config),
                                            samples[held], reference[held]) for fit, held in folds), 0.0)
        clip = merged(parts[0]["mse"], parts[1]["mse"])
    else:  # min/max as calibrated, the clip fitted on the samples it is measured on
        clip = parts[0]["mse"]
        errors["minmax"] = model_error(lower_module(module, ranges, config), samples, reference)
        errors["mse"] = model_error(lower_module(module, with_ranges(ranges, values, clip), config), samples, reference)
    chosen = "mse" if errors["mse"] < errors["minmax"] * (1 - min_gain) else "minmax"
    if chosen == "mse":
        fitted = with_ranges(ranges, values, clip)
        ranges.update({id(v): fitted[id(v)] for v in values})
    return ClipChoice(tuple(v.name for v in values), errors["minmax"], errors["mse"], chosen)
