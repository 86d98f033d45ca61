"""The int8 range of residual branches (conv outputs read only as an operand of elementwise adds/subs
of two activations): min/max, or the clip of least int8 error, chosen for all of a model's branches at
once by the quantized model's cross-validated output error (clip_choice.py).

``auto`` calibration gives a value min/max unless a conv / linear / matmul is its only reader
(calibration.reduction_inputs).  A residual block's last conv feeds only the add that joins it to
the shortcut, so it keeps min/max: its int8 step follows the branch's few largest outputs and every
other element is rounded on that coarse grid before the sum.  On the light zoo's ResNet-50 (random
weights, N(0, 1) inputs) this is where tcc lost to onnxruntime's quantize_static: the branches'
MSE clips sit at 0.80-0.92 of min/max and take its logits from 33.50 to 33.76 dB (onnxruntime
33.60; bench/quant_vs_ort.py).  Clipping the *sums* as well (the adds' outputs, read by the next
block's convs and add) measures no better (33.48), and clipping the last ReLU before the global
average pool costs 0.1-12 dB: the largest elements carry the pooled features.  On trained networks
and real images the clip fitted on a few samples does not hold: measured on the samples it was
fitted on, the trained MobileNetV3, RegNet-Y and EfficientNet-B0 (examples/real_models) show 17-27%
less error with it, and lose 0.9, 2.1 and 0.2 dB on their test images.  So the choice is
cross-validated, as input_range.py's: fitted on one half of the samples, measured on the other.

Rule (when it applies): under ``auto`` calibration (dense semantics), when the model has residual
branches, min/max and the MSE clip are each fitted on one half of ``REMEDY_SAMPLES`` calibration
samples and the quantized model's output error measured on the other half, both ways round; the
clip, refitted on all of them, replaces min/max for every branch when its summed error is at least
``MIN_GAIN`` lower.  Measured: light-zoo ResNet-50 5.7% lower (clip; +0.26 dB on its test inputs),
ShuffleNet 7.8% (clip; -0.04 dB on its test inputs, still 0.11 dB ahead of
onnxruntime); MobileNetV3 0.2%, RegNet-Y 2.0%, EfficientNet-B0 3.3% and DBNet
(its FPN's lateral convs) 5.0% higher: min/max.
Cost: four lowerings and an int8 run per sample per candidate (the float runs are calibration's,
kept: calibration.KeptRuns), for models with residual branches only (light-zoo ResNet-50 on
bench/overlay.py's 4 samples: 8 int8 runs).
"""
from __future__ import annotations

from tcc.ir import Module, Value, constant_value

from .clip_choice import ClipChoice, choose_clip
from .lowering import LoweringConfig

MIN_GAIN = 0.02  # ResNet-50's per-sample error ratios (clip / min/max) over 8 samples: standard error ~1.4%
BRANCH_KINDS = ("add", "sub")


def branch_outputs(module: Module) -> list[Value]:
    """Float values made by a conv and read only as an operand of adds/subs whose operands are all
    activations (not a bias or another constant).  (A transformer's linear layers that feed its
    residual stream are left to remedies.py's choices.)"""
    found = []
    for value in module.values():
        if value.producer is None or value.producer.kind != "conv" or value.type.dtype != "f32" \
                or module.is_output(value) or not value.users:
            continue
        if all(u.kind in BRANCH_KINDS and all(constant_value(o) is None for o in u.operands) for u in value.users):
            found.append(value)
    return found


def choose_branch_ranges(module: Module, ranges: dict, config: LoweringConfig, samples,
                         reference, activations=None) -> ClipChoice | None:
    """Decide the branches' ranges (module docstring) on ``samples`` (``reference``: the float model's
    outputs on them, ``activations``: as clip_choice.choose_clip's); ``ranges`` is updated in place
    when the clip is chosen."""
    return choose_clip(module, ranges, config, branch_outputs(module), samples, reference, MIN_GAIN,
                       cross_validated=True, activations=activations)
