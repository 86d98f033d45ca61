"""Tensors read and written through chains of data-movement ops by addressing instead of copies.

A matmul operand such as ``transpose(reshape(key))`` (the heads of a key projection) is a strided
view of ``key``: for every logical element of the operand, the element of ``key``'s memory it
equals is found by running the movement ops' own reference kernels on ``key``'s physical
offsets.  When that map is affine in (head, row, column), the operand is fetched straight from
``key`` with one DMA box (plus one on-chip transposing ``copy`` when its rows are not
contiguous), and the reshape and transpose steps are never emitted.  The same holds for a
result that is only moved afterwards (``reshape(transpose(heads))``): it is stored directly
where the last move would put it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Op, Value, constant_value
from tcc.ir.interpreter import KERNELS

from .context import Context
from .errors import unsupported
from .layout import LayoutPlan, to_physical
from .memory import ActivationAddress


@dataclass(frozen=True)
class Affine:
    """offsets[p, r, c] == base + p*ps + r*rs + c*cs (element units)."""

    base: int
    ps: int
    rs: int
    cs: int
    lo: int
    hi: int  # element span [lo, hi) touched


def affine(offsets: np.ndarray) -> Affine | None:
    """The affine form of a [P, R, C] offset array, or None."""
    p, r, c = offsets.shape
    base = int(offsets[0, 0, 0])
    ps = int(offsets[1, 0, 0]) - base if p > 1 else 0
    rs = int(offsets[0, 1, 0]) - base if r > 1 else 0
    cs = int(offsets[0, 0, 1]) - base if c > 1 else 0
    grid = (base + ps * np.arange(p)[:, None, None] + rs * np.arange(r)[None, :, None]
            + cs * np.arange(c)[None, None, :])
    if not np.array_equal(grid, offsets):
        return None
    return Affine(base, ps, rs, cs, int(offsets.min()), int(offsets.max()) + 1)


def apply_view(op: Op, index: int, array: np.ndarray) -> np.ndarray:
    """Result ``index`` of the layout op ``op`` run on ``array`` in place of its first operand, the
    one its result elements are copied from; the other operands are constants choosing which."""
    _, *rest = op.operands
    produced = KERNELS[op.kind](op.attrs, array, *(constant_value(v) for v in rest))
    produced = produced if isinstance(produced, tuple) else (produced,)
    return np.asarray(produced[index])


def source_views(v: Value, movers: dict[int, Op], layouts: LayoutPlan) -> list[tuple[Value, np.ndarray]]:
    """(root, offsets) pairs, the furthest root first, ending with ``v`` itself: ``offsets`` has
    ``v``'s logical shape and holds the physical element of ``root`` each element equals.
    ``movers`` maps id(value) -> the layout op producing it (only ops kept as layout steps)."""
    chain: list[tuple[Op, int]] = []
    candidates = [(v, layouts.offsets(v))]
    x = v
    while id(x) in movers:
        op = movers[id(x)]
        chain.insert(0, (op, op.results.index(x)))
        x, *_ = op.operands
        array = layouts.offsets(x)
        for mover, index in chain:
            array = apply_view(mover, index, array)
        candidates.append((x, array))
    return candidates[::-1]


def destination_views(y: Value, sole_mover, layouts: LayoutPlan) -> list[tuple[Value, np.ndarray, list]]:
    """(destination, offsets, movers) triples, the furthest first, ending with ``y`` itself:
    ``offsets`` has ``y``'s logical shape and holds the physical element of the destination
    each element of ``y`` lands in after the (bijective) moves ``movers``.
    ``sole_mover(x)`` is the layout op that is the only user of ``x`` (None if there is none)."""
    out: list[tuple[Value, np.ndarray, list]] = [(y, layouts.offsets(y), [])]
    index = np.arange(y.type.size, dtype=np.int64).reshape(y.type.shape)
    movers = []
    x = y
    while (op := sole_mover(x)) is not None:
        index = apply_view(op, 0, index)
        movers.append(op)
        x = op.results[0]
        flat = to_physical(index, layouts.perm(x)).reshape(-1)
        if flat.size != y.type.size or not np.array_equal(np.sort(flat), np.arange(y.type.size)):
            break  # not a permutation of y's elements (a slice, an expand): stop here
        offsets = np.empty(y.type.size, np.int64)
        offsets[flat] = np.arange(y.type.size)
        out.append((x, offsets.reshape(y.type.shape), list(movers)))
    return out[::-1]


def fetchable(offsets: np.ndarray, room: int) -> bool:
    """Whether a [P, R, C] view can be fetched: an affine map with contiguous rows or columns,
    or any affine map whose span fits the staging room."""
    form = affine(offsets)
    return form is not None and (form.cs == 1 or offsets.shape[2] == 1 or form.rs == 1
                                 or offsets.shape[1] == 1 or form.hi - form.lo <= room)


def storable(offsets: np.ndarray) -> bool:
    form = affine(offsets)
    return form is not None and (form.cs == 1 or offsets.shape[2] == 1)


def fetch(ctx: Context, op, buf: str, dst: int, staging: int, room: int, address: int | ActivationAddress,
          offsets: np.ndarray, interleave: bool = False) -> tuple[int, int]:
    """Fill the view ``offsets`` [P, R, C] of the tensor at ``address`` into int8 at ``dst`` of
    ``buf``; returns the (plane, row) strides it has there: dense row-major [P, R, C], or, with
    ``interleave`` where the planes lie side by side in each DRAM row (an attention's heads in a
    [tokens, heads x d] map), [R, P, C] (a DMA row of P C bytes instead of P rows of C: fewer beats)."""
    p = ctx.program
    P, R, C = offsets.shape
    form = affine(offsets)
    if form is None:
        raise unsupported(op, "an operand is not a strided view of one tensor")
    if interleave and P > 1 and R > 1 and form.cs == 1 and form.ps == C and form.rs >= P * C:
        p.dma("load", buf, dst, address + form.base, rows=R, row_bytes=P * C, dram_row=form.rs, sram_row=P * C)
        return C, P * C
    if form.cs == 1 or C == 1:
        p.dma("load", buf, dst, address + form.base, planes=P, rows=R, row_bytes=C, dram_plane=form.ps,
              dram_row=form.rs, sram_plane=R * C, sram_row=C)
        return R * C, C
    if form.rs == 1 or R == 1:  # columns contiguous: load [P, C, R], transpose on chip
        p.dma("load", buf, staging, address + form.base, planes=P, rows=C, row_bytes=R, dram_plane=form.ps,
              dram_row=form.cs, sram_plane=R * C, sram_row=R)
        src, strides = staging, (0, R * C, 1, R)
    else:
        if form.hi - form.lo > room:
            raise unsupported(op, "a strided operand view spans more than the staging buffer")
        p.dma("load", buf, staging, address + form.lo, rows=1, row_bytes=form.hi - form.lo)
        src, strides = staging + form.base - form.lo, (0, form.ps, form.rs, form.cs)
    p.copy_box((1, P, R, C), strides, (0, R * C, C, 1), 1)
    p.emit("copy", buf=buf, dst=dst, src=src)
    return R * C, C
