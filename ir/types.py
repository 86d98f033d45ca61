"""Tensor types: static shape, element type and optional quantization parameters."""
from __future__ import annotations

from dataclasses import dataclass

from .dtypes import DTYPES


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization ``real = scale * (q - zero_point)``.

    Per tensor when ``axis`` is None (one scale, one zero point), else one pair per index
    along ``axis``.  ``format`` names a weight number format whose integer values the tensor
    holds (e.g. ``dybit4``: DyBit-4 codes decoded onto their integer grid, ``int4``); None is
    plain integers of the element type.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None
    format: str | None = None

    def __post_init__(self):
        if len(self.scale) != len(self.zero_point):
            raise ValueError("scale and zero_point differ in length")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantization takes exactly one scale")


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
        from .printer import format_type

        return format_type(self)
