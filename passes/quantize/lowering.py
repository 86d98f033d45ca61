"""Rebuild a float module as an integer-only one: int8 where the arithmetic is linear, bf16 elsewhere.

Each float value of the input module gets representations in up to three domains -- ``f32``
(model inputs/outputs), ``i8`` (affine int8) and ``bf16`` -- created on demand with explicit
quantize / dequantize / cast ops.  Linear ops (conv, linear, matmul, add/sub/mul, concat,
pooling) become integer ops with dyadic requantization; ReLU/Clip that follow a linear op fold
into its requantization's clamp; data movement follows its operand's domain; element-wise
functions of one activation with a non-linearity (SiLU, GELU, sigmoid...) become one int8 table
lookup (lut.py); every other op runs in bf16.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Builder, Module, Op, QuantParams, Trait, Value, constant_value, kinds_with
from tcc.ir import numerics

from .observers import Ranges
from .params import activation_params, dyadic

LINEAR_KINDS = ("conv", "linear", "matmul")  # the layers with a weight operand (matmul's may be an activation)
ACTIVATIONS = ("relu", "clip")
# Ops whose int8 result keeps its operand's scale and zero point: moves of one tensor (concat joins
# tensors of different scales: rules.lower_concat) and max pooling, which commutes with rounding.
LAYOUT_KINDS = tuple(sorted(kinds_with(Trait.MOVES) - {"concat"})) + ("max_pool",)


def matrix_operands(op: Op) -> tuple[Value, Value, Value | None]:
    """(activation, weight, bias or None) of a conv, linear or matmul (LINEAR_KINDS)."""
    return (op.a, op.b, None) if op.kind == "matmul" else (op.x, op.w, op.b)


@dataclass
class LoweringConfig:
    weights: str = "int8"
    symmetric: bool = False
    rounding: str = "half_even"
    # Per-layer weight formats (mixed precision), keyed by the float op's result name.
    layer_weights: dict[str, str] = field(default_factory=dict)
    # Float values (by name) whose element-wise op (add/sub/mul/concat) runs on the bf16 SIMD lanes
    # instead of the int8 array: the residual stream of a transformer (remedies.py).
    bf16_values: frozenset[str] = frozenset()
    # Matmuls of two activations (by the float op's result name) whose bf16 A operand is quantized
    # with a power-of-two scale per row (``quantize_rows``; remedies.py), undone by their requantize.
    row_scaled: frozenset[str] = frozenset()
    # Matmuls of two activations (by the float op's result name) read only by a softmax whose int32
    # accumulators go to bf16 as they are, without an int8 rounding (remedies.py: wide scores).
    wide_scores: frozenset[str] = frozenset()
    # Linear layers whose result is a model output leave as int32 accumulators, dequantized by the
    # host (rules.leaves_as_int32); off for targets that need int8 outputs (the sparse accelerator).
    wide_outputs: bool = True
    # Linear layers (by the float op's result name) read only by ops kept in bf16, whose accumulators
    # go to bf16 through a fine int32 grid instead of an int8 rounding (remedies.py: wide branches).
    wide_branches: frozenset[str] = frozenset()
    # Patch embedding convs (by the float op's result name) lowered as linear layers over the patches,
    # their accumulators to the bf16 tokens through a fine int32 grid (rules.patch_embedding).
    wide_patches: frozenset[str] = frozenset()
    # Linear layers (by the float op's result name) whose tabulated non-linearity (lut.py) runs in
    # bf16 instead, reading their accumulators through an int32 grid (rules.untabulate).
    bf16_chains: frozenset[str] = frozenset()
    # Rows of each weight layer's input (layer_inputs.py), by float op result name: the narrow
    # weight formats' searches then minimise the layer's output error on them.
    layer_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    # Quantized weights by (layer, format, scale floor): the measured choices lower the same layers
    # many times; configs made from this one by ``dataclasses.replace`` share it.  Not an option.
    weight_memo: dict[tuple, tuple] = field(default_factory=dict, compare=False, repr=False)

    def weights_for(self, op: Op) -> str:
        return self.layer_weights.get(op.result.name, self.weights)

    def keeps_bf16(self, op: Op) -> bool:
        return op.results[0].name in self.bf16_values


def per_tensor(q: QuantParams) -> tuple[float, int]:
    """(scale, zero point) of per-tensor parameters."""
    return q.scale[0], q.zero_point[0]


class Lowering:
    def __init__(self, source: Module, ranges: dict[int, tuple[float, float]], config: LoweringConfig):
        self.source = source
        self.ranges = ranges
        # Values that carried +-Inf or NaN in calibration (nonfinite.py): never on the int8 grid.
        self.non_finite = ranges.non_finite if isinstance(ranges, Ranges) else frozenset()
        self.config = config
        self.target = Module(source.name)
        self.domains: dict[int, dict[str, Value]] = {}
        self.consumed: set[int] = set()  # activation ops folded into the op before them
        self.row_sites: list[Op] = []  # the float matmuls lowered with per-row A scales
        self.wide_sites: list[Op] = []  # the float matmuls whose accumulators went to bf16 directly
        self.chain_roots: set[int] = set()  # ids of the float linear layers rules.untabulate chose
        self.chain_sites: list[Op] = []  # those of them lowered (their accumulators went to bf16 directly)
        self.patch_sites: list[Op] = []  # the float patch embedding convs lowered as linear layers
        self.branch_sites: list[Op] = []  # the float linear layers whose accumulators went to bf16 directly
        self.wide_outputs: list[Op] = []  # the float linear layers whose int32 accumulators leave the model
        self.b = Builder(self.target)

    # -- parameters ----------------------------------------------------------------------------
    def params(self, value: Value) -> QuantParams:
        """int8 parameters of a float value: pinned on its type (QDQ import) or calibrated."""
        if value.type.quant is not None and value.type.quant.axis is None:
            return value.type.quant
        return activation_params(*self.range_of(value), self.config.symmetric or self.feeds_matmul_weight_side(value))

    def range_of(self, value: Value) -> tuple[float, float]:
        """The calibrated range of a value, or a constant's (lo, hi); (0, 0) when neither is known."""
        rng = self.ranges.get(id(value))
        if rng is None:
            array = constant_value(value)
            rng = (float(array.min()), float(array.max())) if array is not None and array.size else (0.0, 0.0)
        return rng

    def off_int8(self, op: Op) -> bool:
        """Whether ``op`` reads or makes a value that holds +-Inf or NaN (an attention mask of -inf and
        what it is added to): int8 has no code for them, so the op runs in bf16 or f32."""
        for v in (*op.operands, *op.results):
            if id(v) in self.non_finite:
                return True
            array = constant_value(v) if v.type.dtype == "f32" else None
            if array is not None and not np.isfinite(array).all():
                return True
        return False

    def feeds_matmul_weight_side(self, value: Value) -> bool:
        """Whether the value is (after data movement) the B operand of a matmul of two activations:
        those get symmetric parameters (zero point 0, as TATAA quantizes), so the int8 array, which
        subtracts a zero point from A only, needs no correction pass for B."""
        for user in value.users:
            if user.kind == "matmul" and user.b is value and user.a is not value:
                return True
            if user.kind in LAYOUT_KINDS and user.kind != "max_pool" and user.operands.index(value) == 0 \
                    and any(self.feeds_matmul_weight_side(r) for r in user.results):
                return True
        return False

    # -- domains -------------------------------------------------------------------------------
    def bind(self, old: Value, new: Value, domain: str) -> Value:
        self.domains.setdefault(id(old), {})[domain] = new
        return new

    def f32(self, old: Value) -> Value:
        have = self.domains.get(id(old), {})
        if "f32" in have:
            return have["f32"]
        array = constant_value(old)
        if array is not None:
            return self.bind(old, self.b.const(array, old.name), "f32")
        if "i8" in have and next(iter(have)) != "bf16":  # from the value as computed, not a lossier copy
            return self.bind(old, self.b.value("dequantize", [have["i8"]], name=old.name + ".f32"), "f32")
        return self.bind(old, self.b.value("cast", [have["bf16"]], {"to": "f32"}, name=old.name + ".f32"), "f32")

    def i8(self, old: Value) -> Value:
        have = self.domains.get(id(old), {})
        if "i8" in have:
            return have["i8"]
        q = self.params(old)
        array = constant_value(old)
        if array is not None:
            from tcc.ir import numerics

            data = numerics.quantize_affine(array, q.scale[0], q.zero_point[0], out_dtype=np.int8)
            new = self.b.const(data, old.name + ".q")
        else:
            source = have["bf16"] if "bf16" in have else self.f32(old)
            new = self.b.value("quantize", [source], name=old.name + ".q")
        new.type = new.type.with_dtype("i8", q)
        return self.bind(old, new, "i8")

    def bf16(self, old: Value) -> Value:
        have = self.domains.get(id(old), {})
        if "bf16" in have:
            return have["bf16"]
        array = constant_value(old)
        if array is not None and np.issubdtype(array.dtype, np.floating):
            from tcc.ir import numerics

            data = numerics.as_bf16_array(array)
            return self.bind(old, self.b.const(data, old.name + ".bf16"), "bf16")
        if "i8" in have:
            return self.bind(old, self.b.value("dequantize", [have["i8"]], {"dtype": "bf16"},
                                                name=old.name + ".bf16"), "bf16")
        return self.bind(old, self.b.value("cast", [self.f32(old)], {"to": "bf16"}, name=old.name + ".bf16"), "bf16")

    # -- helpers -------------------------------------------------------------------------------
    def typed(self, value: Value, dtype: str, quant: QuantParams | None) -> Value:
        value.type = value.type.with_dtype(dtype, quant)
        return value

    def requantize(self, acc: Value, real, out: QuantParams, axis: int = 1, qmin: int = -128,
                   qmax: int = 127, name: str = "", row_shift: Value | None = None) -> Value:
        multiplier, shift = dyadic(real)
        operands = [acc] if row_shift is None else [acc, row_shift]
        y = self.b.value("requantize", operands, {"multiplier": multiplier, "shift": shift, "axis": axis,
                                               "zero_point": out.zero_point[0], "qmin": qmin, "qmax": qmax,
                                               "rounding": self.config.rounding}, name=name)
        return self.typed(y, "i8", out)

    def requantize_i32(self, acc: Value, real_scales: np.ndarray, axis: int, name: str) -> Value:
        """``acc`` (scales ``real_scales`` per channel along ``axis``) onto one int32 grid per tensor, as
        fine as its coarsest channel's accumulator step (multipliers <= 1: no headroom lost)."""
        fine = float(real_scales.max())
        multiplier, shift = dyadic(real_scales / fine)
        y = self.b.value("requantize", [acc], {"multiplier": multiplier, "shift": shift, "axis": axis,
                                               "zero_point": 0, "qmin": numerics.INT32_MIN,
                                               "qmax": numerics.INT32_MAX, "dtype": "i32",
                                               "rounding": self.config.rounding}, name=name)
        return self.typed(y, "i32", QuantParams((fine,), (0,)))

    def fused_activation(self, op: Op) -> tuple[Op | None, Value]:
        """A relu/clip that is the only user of op's result folds into its requantization."""
        r = op.result
        users = r.users
        if len(users) == 1 and users[0].kind in ACTIVATIONS and not self.source.is_output(r):
            return users[0], users[0].result
        return None, r

    def clamp(self, act: Op | None, out: QuantParams) -> tuple[int, int]:
        if act is None:
            return numerics.INT8_MIN, numerics.INT8_MAX
        scale, zp = per_tensor(out)
        low = 0.0 if act.kind == "relu" else act.min
        high = np.inf if act.kind == "relu" else act.max
        lo, hi = int(numerics.quantize_affine(low, scale, zp)), int(numerics.quantize_affine(high, scale, zp))
        return min(lo, hi), hi  # ONNX Clip with min > max gives max everywhere

