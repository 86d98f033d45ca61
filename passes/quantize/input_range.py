"""The int8 range of a model input: its min/max or the clip of least int8 error, chosen by the
output error that rounding the input causes on calibration samples the range was not fitted on.

An input's rounding error reaches every later layer, so which range is better depends on the
network and the data more than on the input's own round-trip error: white-noise-like inputs (the
light zoo's N(0, 1)) gain from the finer step of a clipped range, while an image's extremes are its
brightest and darkest pixels, and a held-out image reaches past a range fitted to a few others
(clipping the image cost 0.1-2.6 dB on 6 of the 7 real-model CNNs under 25 dB;
examples/real_models/README.md).  Measured on the samples it was fitted on, the clip would always
look better, so the choice is cross-validated.

Rule (when it applies): under ``auto`` calibration, for each model input read only as the data
operand of conv / linear / matmul layers (the others keep min/max), the first ``MAX_SAMPLES``
calibration samples are split in two halves; each candidate range (``MinMaxObserver``,
``MseObserver``) is fitted on one half, and the float model is run on the other half with only
that input rounded to int8 at that range, both ways round; the output error (sensitivity.
output_error) is summed.  The clip is taken, fitted on all samples, only when its error is at
least ``MIN_GAIN`` lower (light zoo, N(0, 1) inputs: ShuffleNet 31% lower, ResNet-50 7%,
SqueezeNet 4%; the real-model CNNs' images: min/max better or within 11%).
Cost: float runs only, ``MAX_SAMPLES`` * number of candidates per input (the unrounded runs are
calibration's when it runs in process, kept), no lowering.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcc.ir import Module, Value, numerics
from tcc.ir.interpreter import run_module

from .lowering import LINEAR_KINDS, matrix_operands
from .observers import MinMaxObserver, MseObserver
from .params import activation_params
from .sensitivity import output_error

MAX_SAMPLES = 8  # calibration samples the choice runs on (two halves of 4; 2 + 2 chose wrongly on 2 of 7 CNNs)
# The clip must cut the held-out error by 20% (1 dB): verdicts from 8 samples move by about 0.5 dB
# with the split (ConvNeXt-T: the clip 0.5 dB worse on 2 + 2 samples, 0.5 dB better on 4 + 4, and
# 2.5 dB worse on its test images).
MIN_GAIN = 0.2
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


def _rounded(sample: dict, value: Value, lo: float, hi: float, symmetric: bool) -> dict:
    """``sample`` with ``value``'s array rounded to int8 at the parameters the quantizer picks for [lo, hi]."""
    p = activation_params(lo, hi, symmetric)
    x = numerics.quantize_affine(sample[value.name], p.scale[0], p.zero_point[0])
    return dict(sample, **{value.name: numerics.dequantize_affine(x, p.scale[0], p.zero_point[0]).astype("float32")})


def choose_input_ranges(module: Module, ranges: dict, samples, symmetric: bool = False,
                        float_outputs: Callable[[dict], dict] | None = None) -> list[InputRangeChoice]:
    """Decide each clippable input's range (module docstring) on the first ``MAX_SAMPLES`` of
    ``samples``; ``ranges`` is updated in place, the chosen range fitted on all ``samples``.
    ``float_outputs(sample)``: the float model's outputs (a caller's cache), run here when None."""
    inputs = clippable_inputs(module)
    subset = list(samples)[:MAX_SAMPLES]
    if not inputs or len(subset) < 2:
        return []
    half = len(subset) // 2
    folds = [(subset[:half], subset[half:]), (subset[half:], subset[:half])]
    reference = {id(s): (float_outputs or (lambda x: run_module(module, x)))(s) for s in subset}
    choices = []
    for value in inputs:
        errors = {}
        for name, observer in CANDIDATES:
            errors[name] = 0.0
            for fit, held in folds:
                lo, hi = _fitted(observer, value, fit)
                outputs = [run_module(module, _rounded(s, value, lo, hi, symmetric)) for s in held]
                errors[name] += output_error([reference[id(s)] for s in held], outputs)
        chosen = "mse" if errors["mse"] < errors["minmax"] * (1 - MIN_GAIN) else "minmax"
        ranges[id(value)] = _fitted(dict(CANDIDATES)[chosen], value, samples)
        choices.append(InputRangeChoice(value.name, errors, chosen))
    return choices
