"""The int8 range of SiLU inputs (``x * Sigmoid(x)``, as torch exports SiLU/Swish): min/max, or the
clip of least int8 error, chosen for all of a model's SiLU inputs at once by the quantized model's
output error.

``auto`` calibration gives a value min/max unless a conv / linear / matmul is its only reader
(calibration.reduction_inputs).  A SiLU input is read by a Sigmoid and a Mul, so it gets min/max;
in EfficientNet-style networks it is a depthwise conv's output whose peak is ~9x its RMS, and at
min/max its int8 step is coarse for every element (trained EfficientNet-B0 of examples/real_models:
the first two depthwise outputs carry 39% of the summed single-tensor int8 noise).  The clip helps
there, but not everywhere: the same rule extended to every activation's input costs MobileNetV3
8 dB on held-out images, so it is measured per model, not assumed.

Rule (when it applies): under ``auto`` calibration, when the model has SiLU inputs, their MSE clip
(``MseObserver``, fitted on the measured samples) replaces min/max when the quantized model's output
error (sensitivity.output_error) on those calibration samples is at least ``MIN_GAIN`` lower
(clip_choice.py).
Cost: two lowerings and two int8 runs over the samples, for models that have SiLU inputs only.
"""
from __future__ import annotations

from tcc.ir import Module, Value

from .clip_choice import ClipChoice, choose_clip
from .lowering import LoweringConfig

MIN_GAIN = 0.2  # the clip must cut the output error by 20% (1 dB), as input_range.py's
SiluRangeChoice = ClipChoice  # names: the SiLU inputs


def silu_inputs(module: Module) -> list[Value]:
    """Float values read only by a Sigmoid and by Muls, one of which multiplies them by that Sigmoid."""
    found = []
    for value in module.values():
        if value.producer is None or value.type.dtype != "f32" or module.is_output(value):
            continue
        gates = [u for u in value.users if u.kind == "sigmoid"]
        muls = [u for u in value.users if u.kind == "mul"]
        if gates and len(gates) + len(muls) == len(value.users) and any(
                o.producer is g for m in muls for o in m.operands for g in gates):
            found.append(value)
    return found


def choose_silu_ranges(module: Module, ranges: dict, config: LoweringConfig, samples,
                       reference, activations=None) -> SiluRangeChoice | None:
    """Decide the SiLU inputs' ranges (module docstring) on ``samples`` (``reference``: the float
    model's outputs on them, ``activations``: as clip_choice.choose_clip's); ``ranges`` is updated
    in place when the clip is chosen."""
    return choose_clip(module, ranges, config, silu_inputs(module), samples, reference, MIN_GAIN,
                       activations=activations)
