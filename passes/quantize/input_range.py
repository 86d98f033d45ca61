"""The int8 range of a model input: its min/max or the clip of least int8 error, chosen by the
quantized model's output error on calibration samples it was not fitted on.

An input's error reaches every later layer, so which range is better depends on the data more
than on the input's own round-trip error: white-noise-like inputs (the light zoo's N(0, 1)) gain
from the finer step of a clipped range, while an image's extremes are its brightest and darkest
pixels, and a held-out image reaches past a range fitted to a few others (clipping the input cost
0.1-2.6 dB on 6 of the 7 real-model CNNs under 25 dB; examples/real_models/README.md).
Measuring on the samples the range was fitted on would always favour the clip, so the choice is
cross-validated.

Rule (when it applies): under ``auto`` calibration, for each model input read only as the data
operand of conv / linear / matmul layers (the others keep min/max), the calibration samples are
split in two halves; each candidate range (``MinMaxObserver``, ``MseObserver``) is fitted on one
half and the model's output error (sensitivity.model_error, every other range as calibrated) is
measured on the other, both ways round.  The clip is taken, fitted on all samples, only when its
summed held-out error is lower.  Cost: 4 lowerings and one run per calibration sample and
candidate (at most ``MAX_SAMPLES`` samples).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcc.ir import Module, Value
from tcc.ir.interpreter import run_module

from .lowering import LINEAR_KINDS, LoweringConfig, matrix_operands
from .observers import MinMaxObserver, MseObserver
from .rules import lower_module
from .sensitivity import model_error

MAX_SAMPLES = 8  # calibration samples the choice runs on (two halves of 4)
CANDIDATES = (("minmax", MinMaxObserver), ("mse", MseObserver))


@dataclass(frozen=True)
class InputRangeChoice:
    name: str  # the model input
    errors: dict[str, float]  # candidate -> summed held-out output error
    chosen: str


def clippable_inputs(module: Module) -> list[Value]:
    """Model inputs read only as the data operand of conv / linear / matmul layers."""
    return [v for v in module.inputs if v.type.dtype == "f32" and v.users and not module.is_output(v) and all(
        u.kind in LINEAR_KINDS and matrix_operands(u)[0] is v for u in v.users)]


def _fitted(observer: type[MinMaxObserver], value: Value, samples) -> tuple[float, float]:
    obs = observer()
    for sample in samples:
        obs.observe(sample[value.name])
    lo, hi = obs.range()
    return float(lo), float(hi)


def choose_input_ranges(module: Module, ranges: dict, config: LoweringConfig, samples,
                        progress: Callable[[int, int], None] | None = None) -> list[InputRangeChoice]:
    """Decide each clippable input's range (module docstring) on the first ``MAX_SAMPLES`` of
    ``samples``; ``ranges`` is updated in place, the chosen range fitted on all ``samples``."""
    inputs = clippable_inputs(module)
    subset = list(samples)[:MAX_SAMPLES]
    if not inputs or len(subset) < 2:
        return []
    half = len(subset) // 2
    folds = [(subset[:half], subset[half:]), (subset[half:], subset[:half])]
    reference = {id(s): run_module(module, s) for s in subset}
    choices = []
    total, done = len(inputs) * len(CANDIDATES) * len(folds), 0
    for value in inputs:
        errors = {}
        for name, observer in CANDIDATES:
            errors[name] = 0.0
            for fit, held in folds:
                trial = dict(ranges)
                trial[id(value)] = _fitted(observer, value, fit)
                errors[name] += model_error(lower_module(module, trial, config), held,
                                            [reference[id(s)] for s in held])
                done += 1
                if progress is not None:
                    progress(done, total)
        chosen = min(errors, key=lambda n: (errors[n], n != "minmax"))  # a tie keeps min/max
        ranges[id(value)] = _fitted(dict(CANDIDATES)[chosen], value, samples)
        choices.append(InputRangeChoice(value.name, errors, chosen))
    return choices
