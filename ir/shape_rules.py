"""Shape arithmetic shared by op type rules (and by the frontend when it normalizes ONNX attributes)."""
from __future__ import annotations

import math


class ShapeError(ValueError):
    """Operand shapes or attributes that do not fit an op's type rule."""


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def window_output(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                  dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (conv or pool), ONNX semantics."""
    effective = dilation * (kernel - 1) + 1
    span = size + pad_begin + pad_end - effective
    if span < 0:
        raise ShapeError(f"window of {effective} does not fit input of {size} with padding "
                         f"{pad_begin}+{pad_end}")
    if ceil_mode:
        out = math.ceil(span / stride) + 1
        # The last window must start inside the input or its leading padding.
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
        return out
    return span // stride + 1


def spatial_attrs(attrs: dict, nspatial: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    strides = attrs["strides"]
    pads = attrs["pads"]
    dilations = attrs.get("dilations", (1,) * nspatial)
    if len(strides) != nspatial or len(dilations) != nspatial or len(pads) != 2 * nspatial:
        raise ShapeError(f"strides {list(strides)}, dilations {list(dilations)} and pads {list(pads)} "
                         f"do not match {nspatial} spatial dims")
    if any(s <= 0 for s in strides) or any(d <= 0 for d in dilations) or any(p < 0 for p in pads):
        raise ShapeError("strides and dilations must be positive and pads non-negative")
    return strides, pads, dilations


def product(values) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n
