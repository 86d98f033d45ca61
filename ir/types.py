"""Tensor types: static shape, element type and optional quantization parameters."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .dtypes import DTYPES
from .escape import ir_string


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization ``real = scale * (q - zero_point)``.

    Per tensor when ``axis`` is None (one scale, one zero point), else one pair per index
    along ``axis``.  ``format`` names a weight number format whose integer values the tensor
    holds (e.g. ``dybit4``: DyBit-4 codes decoded onto their integer grid, ``int4``); None is
    plain integers of the element type.  ``caps``: for a format with a cap per channel
    (``dybit4r``), each channel's DyBit exponent-run cap, one per scale.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None
    format: str | None = None
    caps: tuple[int, ...] | None = None

    def __post_init__(self):
        if len(self.scale) != len(self.zero_point):
            raise ValueError("scale and zero_point differ in length")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantization takes exactly one scale")
        if self.caps is not None and (self.axis is None or len(self.caps) != len(self.scale)):
            raise ValueError("caps need per-channel quantization and one cap per scale")


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown element type {self.dtype!r}")
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise ValueError(f"shape {self.shape} must be non-negative integers")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(int(d) for d in shape), self.dtype, self.quant)

    def with_dtype(self, dtype: str, quant: QuantParams | None = None) -> "TensorType":
        return TensorType(self.shape, dtype, quant)

    def same_layout(self, other: "TensorType") -> bool:
        """Equal shape and element type (quantization parameters aside)."""
        return self.shape == other.shape and self.dtype == other.dtype

    def __str__(self) -> str:
        return format_type(self)


# -- textual form (the printer's syntax for types; the parser reads it back) ---------------------
def format_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def format_scalar(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format_float(float(value))


def format_list(values) -> str:
    return "[" + ", ".join(format_scalar(v) for v in values) + "]"


def format_quant(q: QuantParams) -> str:
    if q.axis is None:
        fields = f"scale = {format_float(q.scale[0])}, zero_point = {q.zero_point[0]}"
    else:
        fields = f"axis = {q.axis}, scale = {format_list(q.scale)}, zero_point = {format_list(q.zero_point)}"
    if q.format is not None:
        fields += f", format = {ir_string(q.format)}"
    if q.caps is not None:
        fields += f", caps = {format_list(q.caps)}"
    return "{" + fields + "}"


def format_type(t: TensorType) -> str:
    text = f"{t.dtype}[{','.join(str(d) for d in t.shape)}]"
    if t.quant is not None:
        text += format_quant(t.quant)
    return text
