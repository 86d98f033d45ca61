"""Physical layouts of tensors in the overlay's memories, and strided-copy plans between them.

int8 activations of rank 4 ([N, C, H, W], N = 1) are stored NHWC so convolution tiles are
[pixels, channels] matrices; every other tensor (and every bf16 tensor) is row-major in its
logical shape.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import TensorType

ELEMENT_BYTES = {"i8": 1, "u8": 1, "i16": 2, "i32": 4, "bf16": 2, "f32": 4}


def is_nhwc(t: TensorType) -> bool:
    return t.rank == 4 and t.dtype in ("i8", "u8")


def physical_perm(t: TensorType) -> tuple[int, ...]:
    """Logical axes in physical (outer-to-inner) order."""
    return (0, 2, 3, 1) if is_nhwc(t) else tuple(range(t.rank))


def physical_shape(t: TensorType) -> tuple[int, ...]:
    return tuple(t.shape[a] for a in physical_perm(t))


def nbytes(t: TensorType) -> int:
    return t.size * ELEMENT_BYTES[t.dtype]


def to_physical(array: np.ndarray, t: TensorType) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, physical_perm(t)))


def from_physical(flat: np.ndarray, t: TensorType) -> np.ndarray:
    phys = flat.reshape(physical_shape(t))
    return np.ascontiguousarray(np.transpose(phys, np.argsort(physical_perm(t))))


def physical_offsets(t: TensorType) -> np.ndarray:
    """For every logical element (row-major logical order), its physical element offset."""
    offsets = np.arange(t.size, dtype=np.int64).reshape(physical_shape(t))
    return np.transpose(offsets, np.argsort(physical_perm(t))).reshape(t.shape)


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
