"""Post-training quantization: calibration, int8 (and DyBit / int4 weight) lowering, mixed precision."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tcc.ir import Module, Value, is_constant
from tcc.ir.interpreter import run_module

from ..base import Pass
from .branch_range import branch_outputs, choose_branch_ranges
from .calibration import DEFAULT_CALIBRATION, CalibrationError, Executor, KeptRuns, calibrate, load_samples
from .dybit_caps import choose_dybit_caps
from .equalization import CrossLayerEqualization
from .input_range import MAX_SAMPLES as INPUT_RANGE_SAMPLES, InputRangeChoice, choose_input_ranges
from .layer_inputs import layer_input_rows
from .lowering import LoweringConfig
from .rules import leaves_unpinned, lower_module
from .mixed_precision import MixedPrecision, MixedPrecisionPlan, spread_subset
from .params import WEIGHT_FORMATS, QuantizationError, parse_weight_format
from .remedies import SegmentChoice, SiteChoice, choose_bf16_stream, choose_sites, remedy_sites, residual_segments
from .clip_choice import ClipChoice
from .silu_range import SiluRangeChoice, choose_silu_ranges, silu_inputs
from .smoothing import SmoothQuant
from .trial_runs import TrialRuns

RESIDUAL_CHOICES = ("auto", "bf16", "int8")
SITE_CHOICES = ("auto", "on", "off")
OUTPUT_CHOICES = ("int32", "int8")
REMEDY_SAMPLES = 8  # calibration samples the residual-stream choice measures the output error on
WEIGHT_ERRORS = ("weights", "output")


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
    # What the narrow weight formats' scale and cap searches minimise: the weights' squared error
    # ("weights"), or each layer's output error on its inputs from input_samples calibration
    # samples ("output", layer_inputs.py), for intN and DyBit alike
    weight_error: str = "weights"
    input_samples: int = 16
    #: Where the calibration samples are read and observed (not an option: the driver streams the
    #: file through its evaluation engine, in parallel with --workers); None: loaded here, serially.
    executor: Executor | None = field(default=None, init=False, repr=False, compare=False)
    # The residual stream of transformers (remedies.py): "auto" keeps each segment in bf16 when that
    # measurably lowers the output error, "bf16" keeps all, "int8" none.
    residual: str = "auto"
    # Per-row scales of the bf16 A operand of activation matmuls (softmax x V; remedies.py): "auto"
    # keeps them per matmul where they measurably lower the output error, "on" everywhere, "off" never.
    rows: str = "auto"
    # Attention scores read by a softmax as int32 accumulators converted to bf16 (no int8 rounding;
    # remedies.py): "auto" per matmul where it measurably lowers the output error, "on", "off".
    scores: str = "auto"
    # A patch embedding conv (kernel = stride) whose tokens only the bf16 residual stream reads runs as a
    # linear layer over the patches, its accumulators to bf16 through a fine int32 grid (remedies.py):
    # "auto" per conv where it measurably lowers the output error, "on", "off".
    patches: str = "auto"
    # Linear layers read only by the bf16 residual stream: their accumulators to bf16 through a fine
    # int32 grid, no int8 rounding (remedies.py): "auto" per layer where it measurably lowers the
    # output error, "on", "off".
    branches: str = "auto"
    # A tabulated non-linearity (GELU) after a linear layer runs in bf16 from the layer's int32
    # accumulators instead of as an int8 table (remedies.py): "auto" per layer where it measurably
    # lowers the output error, "on", "off".  Off unless asked: the ViT block's bf16 GELU costs 30% more
    # cycles for 0.2 dB (examples/encoder/README.md).
    chains: str = "off"
    # A model output made by a linear layer (logits): "int32" leaves as the layer's int32 accumulators,
    # dequantized by the host (rules.leaves_as_int32); "int8" rounds it onto its calibrated range.
    outputs: str = "int32"

    def __post_init__(self) -> None:
        self.residual_choices: list[SegmentChoice] = []  # the results of the last apply (not options)
        self.row_choices: list[SiteChoice] = []
        self.score_choices: list[SiteChoice] = []
        self.patch_choices: list[SiteChoice] = []
        self.branch_choices: list[SiteChoice] = []
        self.chain_choices: list[SiteChoice] = []
        self.input_choices: list[InputRangeChoice] = []  # input_range.py
        self.silu_choice: SiluRangeChoice | None = None  # silu_range.py
        self.branch_choice: ClipChoice | None = None  # branch_range.py
        self._runs: TrialRuns | None = None  # shared by the measured choices of one apply
        self._float: dict[int, dict] = {}  # float outputs by id(sample), within one apply
        # the float arrays of the values the clip choices observe (SiLU inputs, residual branches),
        # by id(sample) and value name, kept from the same runs as _float
        self._kept: dict[int, dict[str, np.ndarray]] = {}
        self._keep: frozenset[str] = frozenset()

    def apply(self, module: Module) -> None:
        parse_weight_format(self.weights)
        if self.rounding not in ("half_even", "half_up"):
            raise QuantizationError(f"rounding {self.rounding!r} is not half_even or half_up")
        if self.residual not in RESIDUAL_CHOICES:
            raise QuantizationError(f"residual {self.residual!r} is not one of {', '.join(RESIDUAL_CHOICES)}")
        for option in ("rows", "scores", "patches", "branches", "chains"):
            if getattr(self, option) not in SITE_CHOICES:
                raise QuantizationError(f"{option} {getattr(self, option)!r} is not one of {', '.join(SITE_CHOICES)}")
        if self.outputs not in OUTPUT_CHOICES:
            raise QuantizationError(f"outputs {self.outputs!r} is not one of {', '.join(OUTPUT_CHOICES)}")
        self._runs, self._float, self._kept = None, {}, {}
        self._keep = frozenset(v.name for v in silu_inputs(module) + ([] if self.sparse_mode else branch_outputs(module))) \
            if self.calib and self.method == "auto" else frozenset()
        # (a linear layer's unpinned model output leaves as int32: rules.leaves_as_int32, which is how
        # tcc's own export of such a model writes it)
        pinned = all(v.type.quant is not None for v in module.values() if v.type.dtype == "f32"
                     and not is_constant(v) and not (self.outputs == "int32" and leaves_unpinned(module, v)))
        ranges: dict[int, tuple[float, float]] = {}
        samples = None
        if self.calib:
            samples = load_samples(self.calib, module, self.max_samples) if self.executor is None else None
            kept = self.kept_runs(samples)
            with self.timed("calibration"):
                ranges = calibrate(module, samples, self.method, self.percentile, sparse_mode=self.sparse_mode,
                                   progress=lambda done, total: self.report_progress("calibrating", done, total),
                                   executor=self.executor, kept=kept)
            for i, outputs in kept.outputs.items() if kept is not None else ():
                self._float[id(samples[i])], self._kept[id(samples[i])] = outputs, kept.arrays[i]
        elif not pinned:
            raise QuantizationError("quantize needs calibration data: pass calib=FILE.npz "
                                    "(CLI: --calib FILE.npz)")
        config = LoweringConfig(weights=self.weights, symmetric=self.symmetric, rounding=self.rounding,
                                wide_outputs=self.outputs == "int32")
        if self.dybit_caps not in ("output", "weights"):
            raise QuantizationError(f"dybit_caps {self.dybit_caps!r} is not output or weights")
        if self.weight_error not in WEIGHT_ERRORS:
            raise QuantizationError(f"weight_error {self.weight_error!r} is not one of {', '.join(WEIGHT_ERRORS)}")
        if self.calib and self.weight_error == "output" and self.weights != "int8":
            if samples is None:  # streamed by the executor: read the few the rows come from
                samples = load_samples(self.calib, module, self.input_samples)
            config.layer_inputs = layer_input_rows(module, spread_subset(samples, self.input_samples))
        if self.calib and self.dybit_caps == "output" and re.fullmatch(r"dybit[0-9]", self.weights):
            if samples is None:  # streamed by the executor: read just the few the cap search needs
                samples = load_samples(self.calib, module, self.cap_samples)
            config.layer_weights = choose_dybit_caps(
                module, ranges, samples[:self.cap_samples], self.weights, config,
                lambda done, total: self.report_progress("DyBit caps", done, total))
        # One BLAS thread for every measured choice, as calibration runs: a float matmul's rounding
        # depends on how BLAS splits it over threads, and no choice may depend on that.  (It is also
        # the faster setting on a shared machine: a small product waits milliseconds for busy BLAS
        # threads; the integer products are exact on any thread count, exact_matmul.py.)
        with threadpool_limits(1, user_api="blas"):
            self.measured_choices(module, ranges, config, samples)
        with self.timed("lowering"):
            module.take_body(lower_module(module, ranges, config))

    def measured_choices(self, module: Module, ranges, config: LoweringConfig, samples) -> None:
        """The input, SiLU and residual-branch ranges (input_range.py, silu_range.py, branch_range.py)
        and the transformer remedies (remedies.py), chosen by measured output error; ``ranges`` and
        ``config`` are updated in place."""
        if self.calib and self.method == "auto":
            # streamed by the executor: read just the few the choice measures (and fits the clip on)
            fitted = samples if samples is not None else load_samples(self.calib, module, INPUT_RANGE_SAMPLES)
            with self.timed("input range"):
                self.input_choices = choose_input_ranges(module, ranges, fitted, self.symmetric,
                                                         lambda s: self.float_outputs(module, s))
            with self.timed("SiLU ranges"):
                self.silu_choice = self.silu_ranges(module, ranges, config, samples)
            if not self.sparse_mode:  # (its int8 runs are dense: they would not measure submanifold models)
                with self.timed("branch ranges"):
                    self.branch_choice = self.branch_ranges(module, ranges, config, samples)
        with self.timed("residual stream"):
            config.bf16_values = self.residual_stream(module, ranges, config, samples)
        with self.timed("row scales"):
            config.row_scaled, self.row_choices = self.sites(module, ranges, config, samples, "row_scaled",
                                                             self.rows)
        with self.timed("int32 scores"):
            config.wide_scores, self.score_choices = self.sites(module, ranges, config, samples, "wide_scores",
                                                                self.scores)
        with self.timed("int32 patch embeddings"):
            config.wide_patches, self.patch_choices = self.sites(module, ranges, config, samples, "wide_patches",
                                                                 self.patches)
        with self.timed("int32 branches"):
            config.wide_branches, self.branch_choices = self.sites(module, ranges, config, samples, "wide_branches",
                                                                   self.branches)
        with self.timed("bf16 non-linearities"):
            config.bf16_chains, self.chain_choices = self.sites(module, ranges, config, samples, "bf16_chains",
                                                                self.chains)

    def silu_ranges(self, module: Module, ranges, config: LoweringConfig, samples) -> SiluRangeChoice | None:
        """min/max or the clip for the SiLU inputs, by measured output error (silu_range.py)."""
        return self.group_clip(module, ranges, config, samples, silu_inputs(module), choose_silu_ranges)

    def branch_ranges(self, module: Module, ranges, config: LoweringConfig, samples) -> ClipChoice | None:
        """min/max or the clip for the residual branches, by measured output error (branch_range.py)."""
        return self.group_clip(module, ranges, config, samples, branch_outputs(module), choose_branch_ranges)

    def group_clip(self, module: Module, ranges, config: LoweringConfig, samples, values, choose) -> ClipChoice | None:
        """``choose(module, ranges, config, samples, reference)`` on ``REMEDY_SAMPLES`` calibration samples
        when the group ``values`` is not empty (clip_choice.py)."""
        if not values:
            return None
        if samples is None:  # streamed by the executor: read them for the two runs the choice measures
            samples = load_samples(self.calib, module, self.max_samples)
        subset = spread_subset(samples, REMEDY_SAMPLES)
        reference = [self.float_outputs(module, s) for s in subset]
        kept = [self._kept[id(s)] for s in subset]
        return choose(module, ranges, config, subset, reference,
                      kept if all({v.name for v in values} <= k.keys() for k in kept) else None)

    def residual_stream(self, module: Module, ranges, config: LoweringConfig, samples) -> frozenset[str]:
        """The float values kept in bf16 (remedies.py); measured on calibration samples under "auto"."""
        self.residual_choices = []
        if self.residual == "int8":
            return frozenset()
        if self.residual == "bf16":
            return frozenset(op.results[0].name for ops in residual_segments(module) for op in ops)
        if not self.calib or not residual_segments(module):
            return frozenset()
        if samples is None:  # streamed by the executor: read them for the few runs the choice measures
            samples = load_samples(self.calib, module, self.max_samples)
        self.residual_choices = choose_bf16_stream(
            module, ranges, config, self.trial_runs(module, samples),
            lambda done, total: self.report_progress("residual stream", done, total))
        return frozenset(n for c in self.residual_choices if c.kept for n in c.names)

    def trial_runs(self, module: Module, samples) -> TrialRuns:
        """The runs every measured remedy choice of this apply shares (trial_runs.py): the float
        outputs once, and each trial resumed from the previous choice's checkpoints."""
        if self._runs is None:
            subset = spread_subset(samples, REMEDY_SAMPLES)
            self._runs = TrialRuns(subset, [self.float_outputs(module, s) for s in subset])
        return self._runs

    def kept_runs(self, samples) -> KeptRuns | None:
        """What to keep of calibration's float runs: the samples the measured choices run on (the input
        range's first ones, the remedies' spread subset), when calibration runs them here."""
        if samples is None or self.method != "auto" or self.sparse_mode:
            return None
        wanted = {id(s) for s in list(samples)[:INPUT_RANGE_SAMPLES] + spread_subset(samples, REMEDY_SAMPLES)}
        return KeptRuns(frozenset(i for i, s in enumerate(samples) if id(s) in wanted), self._keep)

    def float_outputs(self, module: Module, sample: dict) -> dict:
        """The float module's outputs on one calibration sample, computed once per apply (keeping the
        arrays of the values the clip choices observe: ``_kept``)."""
        if id(sample) not in self._float:
            kept: dict[str, np.ndarray] = {}

            def keep(value: Value, array: np.ndarray) -> None:
                if value.name in self._keep:
                    kept[value.name] = np.array(array)

            self._float[id(sample)] = run_module(module, sample, observe=keep if self._keep else None)
            self._kept[id(sample)] = kept
        return self._float[id(sample)]

    def sites(self, module: Module, ranges, config: LoweringConfig, samples, field: str,
              choice: str) -> tuple[frozenset[str], list[SiteChoice]]:
        """The ops the per-site remedy ``field`` applies to (remedies.py), and the measured choices."""
        if choice == "off":
            return frozenset(), []
        sites = remedy_sites(module, ranges, config, field)
        if choice == "on":
            return frozenset(op.results[0].name for op in sites), []
        if not self.calib or not sites:
            return frozenset(), []
        if samples is None:
            samples = load_samples(self.calib, module, self.max_samples)
        label = {"row_scaled": "row scales", "wide_scores": "int32 scores", "wide_patches": "int32 patch embeddings",
                 "wide_branches": "int32 branches",
                 "bf16_chains": "bf16 non-linearities"}[field]
        choices = choose_sites(module, ranges, config, field, self.trial_runs(module, samples),
                               lambda done, total: self.report_progress(label, done, total))
        return frozenset(c.name for c in choices if c.kept), choices


__all__ = ["CalibrationError", "CrossLayerEqualization", "MixedPrecision", "MixedPrecisionPlan", "Quantize", "QuantizationError",
           "SmoothQuant", "WEIGHT_FORMATS"]
