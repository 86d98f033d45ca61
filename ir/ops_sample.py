"""Sampling op kinds: values of a tensor read at computed (fractional) positions."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError
from .types import TensorType

GRID_SAMPLE_MODES = ("linear", "nearest", "cubic")
GRID_SAMPLE_PADDINGS = ("zeros", "border", "reflection")


@define_op("grid_sample", "x grid", (AttrSpec("mode", "str", "linear"), AttrSpec("padding_mode", "str", "zeros"),
                                     AttrSpec("align_corners", "int", 0)))
def _grid_sample(types, attrs):
    """ONNX GridSample: x (N, C, d1..dr) read at grid (N, o1..or, r) positions normalized to
    [-1, 1] (the last grid entry indexes d1, the first dr); result (N, C, o1..or)."""
    x, grid = types
    r = x.rank - 2
    if r < 1 or grid.rank != r + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != r:
        raise ShapeError(f"grid {list(grid.shape)} does not fit input {list(x.shape)}: expected "
                         f"[{x.shape[0]}, ..., {r}] of rank {r + 2}")
    if attrs["mode"] not in GRID_SAMPLE_MODES:
        raise ShapeError(f"grid_sample mode {attrs['mode']!r} is not one of {', '.join(GRID_SAMPLE_MODES)}")
    if attrs["padding_mode"] not in GRID_SAMPLE_PADDINGS:
        raise ShapeError(f"grid_sample padding_mode {attrs['padding_mode']!r} is not one of "
                         f"{', '.join(GRID_SAMPLE_PADDINGS)}")
    return [TensorType((x.shape[0], x.shape[1], *grid.shape[1:-1]), x.dtype)]
