"""Post-training quantization: calibration, int8 (and DyBit / int4 weight) lowering, mixed precision."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tcc.ir import Module, is_constant

from ..base import Pass
from .calibration import DEFAULT_CALIBRATION, CalibrationError, Executor, calibrate, load_samples
from .dybit_caps import choose_dybit_caps
from .lowering import LoweringConfig
from .rules import lower_module
from .mixed_precision import MixedPrecision, MixedPrecisionPlan
from .params import WEIGHT_FORMATS, QuantizationError, parse_weight_format


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
    # dybitN: choose each layer's exponent-run cap by the output error on cap_samples calibration
    # samples ("output", dybit_caps.py) or by the weight MSE alone ("weights": no model runs)
    dybit_caps: str = "output"
    cap_samples: int = 8
    #: Where the calibration samples are read and observed (not an option: the driver streams the
    #: file through its evaluation engine, in parallel with --workers); None: loaded here, serially.
    executor: Executor | None = field(default=None, init=False, repr=False, compare=False)

    def apply(self, module: Module) -> None:
        parse_weight_format(self.weights)
        if self.rounding not in ("half_even", "half_up"):
            raise QuantizationError(f"rounding {self.rounding!r} is not half_even or half_up")
        pinned = all(v.type.quant is not None for v in module.values() if v.type.dtype == "f32"
                     and not is_constant(v))
        ranges = {}
        samples = None
        if self.calib:
            samples = load_samples(self.calib, module, self.max_samples) if self.executor is None else None
            ranges = calibrate(module, samples, self.method, self.percentile, sparse_mode=self.sparse_mode,
                               progress=lambda done, total: self.report_progress("calibrating", done, total),
                               executor=self.executor)
        elif not pinned:
            raise QuantizationError("quantize needs calibration data: pass calib=FILE.npz "
                                    "(CLI: --calib FILE.npz)")
        config = LoweringConfig(weights=self.weights, symmetric=self.symmetric, rounding=self.rounding)
        if self.dybit_caps not in ("output", "weights"):
            raise QuantizationError(f"dybit_caps {self.dybit_caps!r} is not output or weights")
        if self.calib and self.dybit_caps == "output" and re.fullmatch(r"dybit[0-9]", self.weights):
            if samples is None:  # streamed by the executor: read just the few the cap search needs
                samples = load_samples(self.calib, module, self.cap_samples)
            config.layer_weights = choose_dybit_caps(
                module, ranges, samples[:self.cap_samples], self.weights, config,
                lambda done, total: self.report_progress("DyBit caps", done, total))
        module.take_body(lower_module(module, ranges, config))


__all__ = ["CalibrationError", "MixedPrecision", "MixedPrecisionPlan", "Quantize", "QuantizationError",
           "WEIGHT_FORMATS"]
