"""A bf16 op whose rows are longer than vbuf holds (poolformer's GroupNorm(1) over 200,704 elements):
column tiles, one pass over the row per row reduction.

The lane sequence's row reductions are pairwise trees (bf16_lanes._tree).  On a row of k * T
elements with T a power of two, the tree's first log2(T) levels pair elements within aligned blocks
of T, so they leave exactly the k trees of the column tiles, in order; the tree over those k partial
values is the rest of the row's tree.  So a tile of T columns reduced by ``vred``, each partial kept
in a k-element vector and that vector reduced by one more ``vred``, gives the same bits as the
whole row's reduction.

The plan, one row at a time: for each reduction in program order, a pass over the row's column
tiles computes the full-tile values the reduction reads (recomputed from the inputs, which are
loaded again for each pass) and its partial; then the final ``vred`` and every per-row instruction
whose operands are ready run once.  A last pass computes the result tile by tile and stores it.
Every per-row value keeps its own slot for the whole row (a later pass reads them again).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import unsupported
from .vector_program import COL, FULL, ROW, TABLE, TABLE_ENTRIES, VInstr, reads

MIN_TILE = 64  # the narrowest column tile worth a pass (a row whose power-of-two factor is less stays on the host)
ALIGN = 64


@dataclass
class ColumnPlan:
    """Column tile width, slot layout and the passes of a split lane sequence."""

    width: int  # T: columns per tile, a power of two dividing the row
    tiles: int  # k = cols / T
    buffers: int  # sets of tile slots (two: the next tile's loads overlap this tile's instructions)
    set_bytes: int
    full_offset: list[int | None]  # per value: offset within a set (full and column values), else None
    row_offset: list[int | None]  # per value: offset of a per-row value in the row area, else None
    row_area: int  # vbuf offset of the per-row values
    partials: int  # vbuf offset of the k partial values of the reduction in progress
    passes: list[tuple[VInstr | None, list[VInstr], list[VInstr]]]  # (reduction or None: the result; tile code; row code after)


def _closure(code: list[VInstr], spaces: list[str], target: int) -> list[VInstr]:
    """The full- and column-space instructions ``target`` depends on, in program order, not crossing
    per-row values (computed once, before the pass)."""
    producer = {ins.dst: ins for ins in code}
    needed, stack = set(), [target]
    while stack:
        v = stack.pop()
        ins = producer.get(v)
        if ins is None or spaces[v] == ROW or id(ins) in needed:
            continue
        needed.add(id(ins))
        stack.extend(reads(ins))
    return [ins for ins in code if id(ins) in needed]


def _passes(code: list[VInstr], spaces: list[str], result: int):
    done_rows: set[int] = {v for v, s in enumerate(spaces) if s in (ROW, TABLE) and v not in {i.dst for i in code}}
    ran: set[int] = set()
    passes = []
    for red in (ins for ins in code if ins.mnemonic == "vred"):
        tile_code = _closure(code, spaces, red.a)
        done_rows.add(red.dst)
        ran.add(id(red))
        after = []
        for ins in code:  # program order is topological: one sweep runs every ready per-row instruction
            if id(ins) in ran or ins.space != ROW or ins.mnemonic == "vred":
                continue
            if all(v in done_rows for v in reads(ins)):
                after.append(ins)
                ran.add(id(ins))
                done_rows.add(ins.dst)
        passes.append((red, tile_code, after))
    passes.append((None, _closure(code, spaces, result), []))
    return passes


def column_plan(op, lowering, code, vbuf_bytes: int) -> ColumnPlan:
    """The widest column tile whose slots fit vbuf; BackendError (naming the row) when there is none."""
    cols = lowering.cols
    spaces = code.recorder.spaces
    if lowering.tile_columns or lowering.batches != 1 or any(ins.mnemonic == "window" for ins in code.recorder.code):
        raise unsupported(op, f"a row of {cols} elements exceeds the vector buffer ({vbuf_bytes} bytes)")
    tile_values = [v for v, s in enumerate(spaces) if s in (FULL, COL)]
    row_values = [v for v, s in enumerate(spaces) if s == ROW]
    tables = [v for v, s in enumerate(spaces) if s == TABLE]
    # a slot per full or column value that some instruction or input touches: tile slots by liveness
    # would need a liveness over each pass; the values of a norm's sequence are few.  The row area
    # holds the per-row values, then the lane tables (``vlut``'s, loaded once)
    rows_end = -(-2 * len(row_values) // ALIGN) * ALIGN
    row_bytes = rows_end + 2 * TABLE_ENTRIES * len(tables)
    width = cols & -cols  # the largest power of two dividing the row
    while width >= MIN_TILE:
        tiles = cols // width
        set_bytes = -(-2 * width * len(tile_values) // ALIGN) * ALIGN
        partial_bytes = -(-2 * tiles // ALIGN) * ALIGN
        for buffers in (2, 1):
            if buffers * set_bytes + row_bytes + partial_bytes <= vbuf_bytes and (buffers == 1 or tiles > 1):
                full_offset: list[int | None] = [None] * len(spaces)
                for i, v in enumerate(tile_values):
                    full_offset[v] = 2 * width * i
                row_offset: list[int | None] = [None] * len(spaces)
                for i, v in enumerate(row_values):
                    row_offset[v] = 2 * i
                for i, v in enumerate(tables):
                    row_offset[v] = rows_end + 2 * TABLE_ENTRIES * i
                return ColumnPlan(width, tiles, buffers, set_bytes, full_offset, row_offset,
                                  buffers * set_bytes, buffers * set_bytes + row_bytes,
                                  _passes(code.recorder.code, spaces, code.result.index))
        width //= 2
    raise unsupported(op, f"a row of {cols} elements exceeds the vector buffer ({vbuf_bytes} bytes) and its "
                          f"largest power-of-two factor ({cols & -cols}) is under {MIN_TILE} columns")
