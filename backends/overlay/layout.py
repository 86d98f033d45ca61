"""Physical layouts of tensors in the overlay's memories, and strided-copy plans between them.

int8 activations of rank 4 ([N, C, H, W], N = 1) that the convolution and pooling unit reads
or writes (and the tensors tied to them through element-wise int8 steps) are stored NHWC, so
convolution tiles are [pixels, channels] matrices; every other tensor (attention heads
[1, heads, seq, dim], every bf16 tensor) is row-major in its logical shape.  The choice is per
tensor (``LayoutPlan``, made by ``steps.plan_layouts``).
"""
from __future__ import annotations

import numpy as np

from tcc.ir import TensorType, Value

from ..artifact import from_physical, to_physical

ELEMENT_BYTES = {"i8": 1, "u8": 1, "i16": 2, "i32": 4, "i64": 8, "bf16": 2, "f32": 4}
NHWC = (0, 2, 3, 1)


def nbytes(t: TensorType) -> int:
    return t.size * ELEMENT_BYTES[t.dtype]


def physical_offsets(shape, perm) -> np.ndarray:
    """For every logical element (logical shape), its physical element offset."""
    size = int(np.prod(shape, dtype=np.int64))
    return from_physical(np.arange(size, dtype=np.int64), tuple(shape), perm)


class LayoutPlan:
    """The physical axis order of every tensor: NHWC for the values in ``nhwc`` (ids), row-major
    in the logical shape for all others."""

    def __init__(self, nhwc=()):
        self.nhwc = set(nhwc)

    def is_nhwc(self, v: Value) -> bool:
        return id(v) in self.nhwc

    def perm(self, v: Value) -> tuple[int, ...]:
        return NHWC if id(v) in self.nhwc else tuple(range(v.type.rank))

    def shape(self, v: Value) -> tuple[int, ...]:
        return tuple(v.type.shape[a] for a in self.perm(v))

    def offsets(self, v: Value) -> np.ndarray:
        return physical_offsets(v.type.shape, self.perm(v))

    def to_physical(self, array: np.ndarray, v: Value) -> np.ndarray:
        return to_physical(array, self.perm(v))


def factor_strided(index_map: np.ndarray, max_dims: int = 4):
    """Write a flat index map (destination element i reads source element index_map[i]) as
    nested loops: a list of (extent, source stride) outer-to-inner with a base, or None.

    Each level peels the longest run of constant stride from the innermost loop outwards.
    """
    m = np.asarray(index_map, np.int64).reshape(-1)
    if m.size == 0:
        return None
    dims: list[tuple[int, int]] = []
    rows = m.reshape(1, -1)
    while rows.shape[1] > 1 or not dims:
        first = rows[0]
        if first.size == 1:
            dims.insert(0, (1, 0))
            break
        stride = int(first[1] - first[0])
        run = 1
        while run < first.size and first[run] - first[run - 1] == stride:
            run += 1
        if first.size % run:
            return None
        grid = rows.reshape(rows.shape[0], -1, run)
        base = grid[:, :, :1]
        if not np.array_equal(grid, base + stride * np.arange(run)):
            return None
        dims.insert(0, (run, stride))
        rows = base.reshape(-1, grid.shape[1]) if grid.shape[1] > 1 else base.reshape(1, -1)
        if rows.shape[0] > 1 and grid.shape[1] == 1:
            rows = rows.reshape(1, -1)
        if rows.size == 1:
            break
        if len(dims) > max_dims:
            return None
    if len(dims) > max_dims:
        return None
    return int(m[0]), dims
