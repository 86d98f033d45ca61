"""Post-training quantization: calibration, int8 (and DyBit / int4 weight) lowering, mixed precision."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Module, is_constant
from tcc.ir.interpreter import run_module

from ..base import Pass
from .calibration import DEFAULT_CALIBRATION, CalibrationError, calibrate, load_samples
from .lowering import LoweringConfig
from .rules import lower_module
from .mixed_precision import MixedPrecision, MixedPrecisionPlan, spread_subset
from .params import WEIGHT_FORMATS, QuantizationError, parse_weight_format
from .remedies import SegmentChoice, choose_bf16_stream, residual_segments
from .smoothing import SmoothQuant

RESIDUAL_CHOICES = ("auto", "bf16", "int8")
REMEDY_SAMPLES = 16  # calibration samples the residual-stream choice measures the output error on


@dataclass
class Quantize(Pass):
    """Integer-only int8 quantization from calibration data (see passes/quantize/lowering.py)."""

    name = "quantize"
    summary = "int8 post-training quantization with integer-only requantization (needs calib=FILE.npz)"
    calib: str = ""
    method: str = DEFAULT_CALIBRATION
    percentile: float = 99.99
    symmetric: bool = False
    weights: str = "int8"
    rounding: str = "half_even"
    max_samples: int = 0
    sparse_mode: str = ""  # "submanifold": calibrate on the sparse target's values (calibration.py)
    # The residual stream of transformers (remedies.py): "auto" keeps each segment in bf16 when that
    # measurably lowers the output error, "bf16" keeps all, "int8" none.
    residual: str = "auto"

    def __post_init__(self) -> None:
        self.residual_choices: list[SegmentChoice] = []  # the result of the last apply (not an option)

    def apply(self, module: Module) -> None:
        parse_weight_format(self.weights)
        if self.rounding not in ("half_even", "half_up"):
            raise QuantizationError(f"rounding {self.rounding!r} is not half_even or half_up")
        if self.residual not in RESIDUAL_CHOICES:
            raise QuantizationError(f"residual {self.residual!r} is not one of {', '.join(RESIDUAL_CHOICES)}")
        pinned = all(v.type.quant is not None for v in module.values() if v.type.dtype == "f32"
                     and not is_constant(v))
        ranges = {}
        samples: list = []
        if self.calib:
            samples = load_samples(self.calib, module, self.max_samples)
            ranges = calibrate(module, samples, self.method, self.percentile, sparse_mode=self.sparse_mode,
                               progress=lambda done, total: self.report_progress("calibrating", done, total))
        elif not pinned:
            raise QuantizationError("quantize needs calibration data: pass calib=FILE.npz "
                                    "(CLI: --calib FILE.npz)")
        config = LoweringConfig(weights=self.weights, symmetric=self.symmetric, rounding=self.rounding)
        config.bf16_values = self.residual_stream(module, ranges, config, samples)
        module.take_body(lower_module(module, ranges, config))

    def residual_stream(self, module: Module, ranges, config: LoweringConfig, samples) -> frozenset[str]:
        """The float values kept in bf16 (remedies.py); measured on calibration samples under "auto"."""
        self.residual_choices = []
        if self.residual == "int8":
            return frozenset()
        if self.residual == "bf16":
            return frozenset(op.results[0].name for ops in residual_segments(module) for op in ops)
        if not samples or not residual_segments(module):
            return frozenset()
        subset = spread_subset(samples, REMEDY_SAMPLES)
        reference = [run_module(module, s) for s in subset]
        self.residual_choices = choose_bf16_stream(
            module, ranges, config, subset, reference,
            lambda done, total: self.report_progress("residual stream", done, total))
        return frozenset(n for c in self.residual_choices if c.kept for n in c.names)


__all__ = ["CalibrationError", "MixedPrecision", "MixedPrecisionPlan", "Quantize", "QuantizationError",
           "SmoothQuant", "WEIGHT_FORMATS"]
