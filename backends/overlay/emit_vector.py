"""Code for the bf16 SIMD mode: int8 <-> bf16 conversions and vector operations.

bf16 tensors live in DRAM row-major in their logical shape; an int8 tensor stored NHWC
(layout.py) is transposed by the conversion (a strided copy in vbuf).  A vector op runs as its lane
sequence of vector instructions (vector_lowering.py) over tiles of independent rows; rows longer
than vbuf holds run in column tiles, a pass per row reduction (vector_columns.py).
"""
from __future__ import annotations

import hashlib

import numpy as np

from .context import TINY_LAYER, Context
from .errors import BackendError, unsupported
from .steps import Step
from .vector_lowering import record, row_halves, scheduled, tile_cycles, vector_lowering
from .memory import ActivationAddress
from .vector_columns import ColumnPlan, column_plan
from .vector_program import COL, FULL, ROW, TABLE, TABLE_ENTRIES, Handle, reads


def f32_bits(value: float) -> int:
    return int(np.array([value], np.float32).view(np.int32)[0])


def _row_tiles(rows: int, row_bytes: int, limit: int, op):
    th = max(1, min(rows, limit // max(row_bytes, 1)))
    if th * row_bytes > limit:
        raise unsupported(op, "one row does not fit the vector buffer")
    return [(r0, min(th, rows - r0)) for r0 in range(0, rows, th)]


# A conversion back to int8 of at least this many elements (not a tiny layer's) runs in two halves:
# the first half's load and conversion start once a multi-tile vector op's first tiles are stored,
# while its last one still runs.
HALVED_CONVERSION = 8192


def emit_cvt(ctx: Context, step: Step) -> None:
    op = step.ops[0]
    x, y = op.x, op.result
    to_bf16 = step.kind == "cvt_in"
    q = (x if to_bf16 else y).type.quant
    b, p = ctx.buffers, ctx.program
    ctx.begin_layer(step.name, 0, x.type.size * 3)
    p.set({"v.scale": f32_bits(q.scale[0]), "v.zp": q.zero_point[0]})
    if x.type.dtype == "i32":  # int32 accumulators (a matmul step's, for a softmax): flat chunks
        n = x.type.size
        chunk = min(b.vbuf_q // 2, b.abuf_q // 4)
        for i, s in _mine(ctx, list(range(0, n, chunk))):
            _cvt_flat(ctx, op, to_bf16, x, y, s, min(chunk, n - s), i, elem=4)
        return
    shape = x.type.shape
    nhwc = ctx.layouts.is_nhwc(x if to_bf16 else y)
    if nhwc:
        _, c, h, w = shape
        tiles = _row_tiles(h, w * c * 2, min(b.vbuf_q, 2 * b.abuf_q), op)
    else:
        c, h, w = 1, 1, x.type.size
        tiles = [(0, 1)]
        halves = not to_bf16 and not b.tiny and x.type.size >= HALVED_CONVERSION
        if x.type.size * 2 > b.vbuf_q or halves:
            tiles = None
    if tiles is None:
        n = x.type.size
        chunk = b.vbuf_q // 2 if x.type.size * 2 > b.vbuf_q else -(-n // 2 // 64) * 64
        tiles_flat = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
        for i, (s, cnt) in _mine(ctx, tiles_flat):
            _cvt_flat(ctx, op, to_bf16, x, y, s, cnt, i)
        return
    pending: list = []  # the previous tile's store, emitted after this tile's load (as emit_misc._stream)
    for i, (y0, rows) in _mine(ctx, tiles):
        n = rows * w * c
        a_slot, v_in, v_out = b.a_in(i) if to_bf16 else b.a_out(i), b.v(i % 2), b.v(2 + i % 2)
        if to_bf16 and not nhwc:  # one flat tile: where the vector op after it reads it, if it knows
            slot = vector_input_slot(ctx, ctx.next_step, y, n * 2)
            v_in = v_in if slot is None else slot
        if to_bf16:  # the conversion alone reads the int8 tile: where abuf may still hold it
            a_slot = p.read_in_place("abuf", a_slot, ctx.addr(x) + y0 * w * c, n)
            _flush(p, pending)
            p.set({"v.len": n})
            p.emit("cvt", dir="i8_bf16", dst=v_in, src=a_slot)
            if ctx.row_max is not None:  # the softmax's row maxima, taken on int8 (row_max.py)
                (src, rows, slot), ctx.row_max = ctx.row_max, None
                p.set({"v.len": rows})
                p.emit("cvt", dir="i8_bf16", dst=slot, src=src)
            if nhwc:  # [rows, w, c] -> [c, rows, w]
                _copy(p, v_out, v_in, (1, c, rows, w), (0, 2, w * c * 2, c * 2), (0, rows * w * 2, w * 2, 2), 2)
                pending.append(("vbuf", v_out, ctx.addr(y) + y0 * w * 2,
                                dict(rows=c, row_bytes=rows * w * 2, dram_row=h * w * 2, sram_row=rows * w * 2)))
            else:
                pending.append(("vbuf", v_in, ctx.addr(y), dict(rows=1, row_bytes=n * 2)))
        else:
            if nhwc:  # [c, rows, w] -> [rows, w, c]
                p.dma("load", "vbuf", v_in, ctx.addr(x) + y0 * w * 2, rows=c, row_bytes=rows * w * 2,
                      dram_row=h * w * 2, sram_row=rows * w * 2)
                _flush(p, pending)
                _copy(p, v_out, v_in, (1, rows, w, c), (0, w * 2, 2, rows * w * 2), (0, w * c * 2, c * 2, 2), 2)
                src = v_out
            else:  # the conversion alone reads the bf16 tile: where vbuf may still hold it
                src = p.read_in_place("vbuf", v_in, ctx.addr(x), n * 2)
                _flush(p, pending)
            p.set({"v.len": n})
            p.emit("cvt", dir="bf16_i8", dst=a_slot, src=src)
            pending.append(("abuf", a_slot, ctx.addr(y) + y0 * w * c, dict(rows=1, row_bytes=n)))
    _flush(p, pending)


def _mine(ctx: Context, tiles: list) -> list:
    """(index among this core's tiles, tile) of this core's contiguous share of ``tiles`` (all of them
    on one core)."""
    mine = ctx.share(len(tiles))
    return list(enumerate(tiles[mine.start:mine.stop]))


def _flush(p, pending: list) -> None:
    """Emit the stores held back in ``pending``."""
    for buf, sram, dram, box in pending:
        p.dma("store", buf, sram, dram, **box)
    pending.clear()


def emit_cvt_rows(ctx: Context, step: Step) -> None:
    """quantize_rows: bf16 rows (row-major, the last axis a row) to int8 with a power-of-two scale
    each (``cvt bf16_i8_rows``), writing the int8 rows and their shifts; tiles of whole rows."""
    op = step.ops[0]
    x, (q, shifts) = op.x, op.results
    quant = q.type.quant
    b, p = ctx.buffers, ctx.program
    row = x.type.shape[-1]
    rows = x.type.size // row
    per = min(rows, b.vbuf_q // (2 * row), b.abuf_q // (row + 1))
    if per < 1:
        raise unsupported(op, f"one row of {row} elements does not fit the vector buffer")
    ctx.begin_layer(step.name, 0, x.type.size * 3 + rows)
    p.set({"v.scale": f32_bits(quant.scale[0]), "v.zp": quant.zero_point[0], "v.row": row})
    for i, r0 in enumerate(range(0, rows, per)):
        n = min(per, rows - r0)
        a_slot, v_in = b.a_out(i), b.v(i % 2)
        p.set({"v.len": n * row, "v.shifts": a_slot + n * row})
        p.dma("load", "vbuf", v_in, ctx.addr(x) + 2 * r0 * row, rows=1, row_bytes=2 * n * row)
        p.emit("cvt", dir="bf16_i8_rows", dst=a_slot, src=v_in)
        p.dma("store", "abuf", a_slot, ctx.addr(q) + r0 * row, rows=1, row_bytes=n * row)
        p.dma("store", "abuf", a_slot + n * row, ctx.addr(shifts) + r0, rows=1, row_bytes=n)


def _cvt_flat(ctx, op, to_bf16, x, y, start, count, i, elem=1):
    b, p = ctx.buffers, ctx.program
    a_slot, v_slot = b.a_in(i), b.v(i % 2)
    p.set({"v.len": count})
    if to_bf16:
        a_slot = p.read_in_place("abuf", a_slot, ctx.addr(x) + elem * start, elem * count)
        p.emit("cvt", dir="i8_bf16" if elem == 1 else "i32_bf16", dst=v_slot, src=a_slot)
        p.dma("store", "vbuf", v_slot, ctx.addr(y) + 2 * start, rows=1, row_bytes=2 * count)
    else:
        v_slot = p.read_in_place("vbuf", v_slot, ctx.addr(x) + 2 * start, 2 * count)
        p.emit("cvt", dir="bf16_i8", dst=a_slot, src=v_slot)
        p.dma("store", "abuf", a_slot, ctx.addr(y) + start, rows=1, row_bytes=count)


def _copy(p, dst, src, extents, src_strides, dst_strides, elem):
    p.copy_box(extents, src_strides, dst_strides, elem)
    p.emit("copy", buf="vbuf", dst=dst, src=src)


class ConstantRegisters:
    """The eight bf16 constant registers v.k0..v.k7, reused least recently used first."""

    def __init__(self, program):
        self.program = program
        self.held: list[int | None] = [None] * 8
        self.used = [0] * 8
        self.clock = 0

    def source(self, bits: int, busy: set[int]) -> str:
        self.clock += 1
        if bits in self.held:
            k = self.held.index(bits)
        else:
            k = min((i for i in range(8) if i not in busy), key=lambda i: self.used[i])
            self.program.set({f"v.k{k}": bits})
            self.held[k] = bits
        self.used[k] = self.clock
        busy.add(k)
        return f"k{k}"


def _tiles(lowering, tile_rows: int, tile_cols: int):
    """(batch, first row, rows, first column, columns) of each tile, in program order."""
    for batch in range(lowering.batches):
        for r0 in range(0, lowering.rows, tile_rows):
            for c0 in range(0, lowering.cols, tile_cols):
                yield batch, r0, min(tile_rows, lowering.rows - r0), c0, min(tile_cols, lowering.cols - c0)


def _one_tile_slots(ctx: Context, step: Step | None):
    """(lowering, recorded code, every value's vbuf offset) of ``step``, a bf16 vector op that runs
    as one tile in slots that do not fit a vbuf quarter (they start at vbuf's start); else None."""
    if step is None or step.kind != "vector" or ctx.cores != 1:
        return None
    op = step.ops[0]
    try:
        lowering = vector_lowering(op, step.info.get("given_max", False))
        code, (tile_rows, tile_cols, buffers) = scheduled(op, lowering, record(op, lowering), ctx.target)
    except BackendError:
        return None
    if buffers * code.set_bytes(tile_rows, tile_cols) <= ctx.buffers.vbuf_q:
        return None
    if len(list(_tiles(lowering, tile_rows, tile_cols))) != 1:
        return None
    return lowering, code, code.offsets(tile_rows, tile_cols)


def vector_operand_slot(ctx: Context, step: Step | None, chosen) -> int | None:
    """The vbuf address where ``step`` reads the first operand ``chosen(VectorInput)`` picks, if it
    runs as one tile in slots from vbuf's start (``_one_tile_slots``); else None."""
    slots = _one_tile_slots(ctx, step)
    if slots is None:
        return None
    lowering, code, offsets = slots
    for handle, given in zip(code.handles, lowering.inputs):
        if not handle.constant and chosen(given):
            return offsets[handle.index]
    return None


def vector_input_slot(ctx: Context, step: Step | None, value, nbytes: int) -> int | None:
    """The vbuf address where ``step``, a bf16 vector op that runs as one tile in slots that do not
    fit a vbuf quarter (they start at vbuf's start), reads all ``nbytes`` of ``value`` (a full-tile
    operand); None for any other step.  The conversion before such an op writes its result there:
    elsewhere the op's slots would overlap it (a copy into the slot on the critical path)."""
    if value.type.size * 2 != nbytes:
        return None
    return vector_operand_slot(ctx, step, lambda given: given.value is value and given.space == FULL
                               and given.data is None)


def emit_vector(ctx: Context, step: Step) -> None:
    """A bf16 op as its lane sequence of vector instructions, tile by tile (vector_lowering.py)."""
    op = step.ops[0]
    lowering = vector_lowering(op, step.info.get("given_max", False))
    try:
        code, (tile_rows, tile_cols, buffers) = scheduled(op, lowering, record(op, lowering), ctx.target)
    except BackendError:  # one row does not fit vbuf: column tiles, a pass per reduction
        code = record(op, lowering)
        _emit_columns(ctx, step, lowering, code, column_plan(op, lowering, code, ctx.target.vbuf_bytes))
        return
    rows, cols, p = lowering.rows, lowering.cols, ctx.program
    set_bytes = code.set_bytes(tile_rows, tile_cols)

    at = code.offsets(tile_rows, tile_cols).__getitem__  # a value's offset in its set of slots
    inputs, constants = _begin_vector_layer(ctx, step, code, lowering)
    tiles = list(_tiles(lowering, tile_rows, tile_cols))
    whole = len(tiles) == 1  # one tile holds the op: its operands are contiguous in DRAM
    mine = ctx.share(len(tiles))  # on several cores, this core's contiguous share
    tiles = tiles[mine.start:mine.stop]
    if not tiles:
        return
    # slots that fit a vbuf quarter take the next quarter in turn (a tiny layer's own place in it:
    # Buffers.next_layer), so the tiles the conversion before left in vbuf are read where they are
    # and this op's result stays for the conversion after it; larger ones start at vbuf's start
    fits = buffers * set_bytes <= (TINY_LAYER if ctx.buffers.tiny else ctx.buffers.vbuf_q)
    origin = ctx.buffers.v(0) if fits else 0

    def place(index: int):
        """The tile's element counts per space, its DRAM offsets and its set of slots."""
        batch, r0, rn, c0, cn = tiles[index]
        full_start = (batch * rows * cols + r0 * cols + c0) * 2
        base = origin + (index % buffers) * set_bytes
        return (rn, cn, {FULL: rn * cn, ROW: rn, COL: cn, TABLE: TABLE_ENTRIES},
                {FULL: full_start, ROW: r0 * 2, COL: c0 * 2, TABLE: 0}, base)

    held: dict[int, int] = {}  # one tile: inputs read where vbuf still holds them, outside the slots

    def load(index: int) -> None:
        rn, cn, length, start, base = place(index)
        # constants first: they wait for no earlier step, so they load while an activation waits for its store
        for handle, space, dram in sorted(inputs, key=lambda given: isinstance(given[2], ActivationAddress)):
            slot = base + at(handle.index)
            if whole:
                nbytes = length[space] * 2
                where = p.read_in_place("vbuf", slot, dram + start[space], nbytes)
                if where != slot and (where + nbytes <= base or base + set_bytes <= where):
                    held[handle.index] = where
                elif where != slot:
                    p.dma("load", "vbuf", slot, dram + start[space], rows=1, row_bytes=nbytes)
                continue
            if space == FULL:
                p.dma("load", "vbuf", slot, dram + start[FULL], rows=rn, row_bytes=cn * 2, dram_row=cols * 2,
                      sram_row=cn * 2)
            else:
                p.dma("load", "vbuf", slot, dram + start[space], rows=1, row_bytes=length[space] * 2)

    split: dict[int, tuple | None] = {}  # per tile height: its rows as two interleaved halves, or None
    spaces = code.recorder.spaces
    # with two sets of slots the next tile's loads come before this tile's instructions
    load(0)
    for index in range(len(tiles)):
        if buffers == 2 and index + 1 < len(tiles):
            load(index + 1)
        rn, cn, length, start, base = place(index)
        if rn not in split:
            split[rn] = row_halves(lowering, code, rn, cn, ctx.target)
        if whole and ctx.cores == 1:  # the DRAM channel is free while this tile's code runs
            ctx.vector_mark = (p.mark(), tile_cycles(lowering, code, rn, cn, ctx.target, split[rn]))
        if split[rn] is None:
            for ins in code.recorder.code:
                _emit(p, ins, code, constants, length, rn, cn, lambda i, base=base: held.get(i, base + at(i)))
        else:  # two halves of the tile's rows, their instructions interleaved
            parts, order = split[rn]
            for part, ins in order:
                r0, rk = (0, rn) if part is None else parts[part]
                shift = {FULL: r0 * cn * 2, ROW: r0 * 2, COL: 0, TABLE: 0}
                _emit(p, ins, code, constants, {FULL: rk * cn, ROW: rk, COL: cn, TABLE: TABLE_ENTRIES}, rk, cn,
                      lambda i, base=base, shift=shift: held.get(i, base + at(i)) + shift[spaces[i]])
        p.dma("store", "vbuf", base + at(code.result.index), ctx.addr(op.result) + start[FULL],
              rows=rn, row_bytes=cn * 2, dram_row=cols * 2, sram_row=cn * 2)
        if buffers == 1 and index + 1 < len(tiles):
            load(index + 1)


def _emit(p, ins, code, constants, length, rn, cn, where) -> None:
    """One recorded instruction; ``where(index)``: the vbuf address of a value."""
    busy: set[int] = set()

    def operand(h, reg: str) -> str:
        if h.constant:
            return constants.source(h.bits, busy)
        space = code.recorder.spaces[h.index]
        if space == ins.space:
            rep, period = 1, length[space]
        else:  # a row or column value read across the full tile
            rep, period = (cn, rn) if space == ROW else (1, cn)
        p.set({f"v.{reg}": where(h.index), f"v.{reg}_rep": rep, f"v.{reg}_period": period})
        return "vec"

    dst, a = where(ins.dst), where(ins.a)
    if ins.mnemonic == "vred":
        p.set({"v.len": length[FULL], "v.row": cn})
        p.emit("vred", op=ins.op, dst=dst, a=a)
    elif ins.mnemonic == "window":
        _emit_window(p, dst, a, rn, cn, ins.amount, ins.after)
    elif ins.mnemonic == "vbin":
        p.set({"v.len": length[ins.space]})
        p.emit("vbin", op=ins.op, b=operand(ins.b, "b"), dst=dst, a=a)
    elif ins.mnemonic == "vlut":
        p.set({"v.len": length[ins.space], "v.b": where(ins.b.index)})
        p.emit("vlut", dst=dst, a=a)
    elif ins.mnemonic == "vun":
        p.set({"v.len": length[ins.space]})
        p.emit("vun", op=ins.op, amount=ins.amount, dst=dst, a=a)
    else:
        p.set({"v.len": length[ins.space]})
        b, c = operand(ins.b, "b"), operand(ins.c, "c")
        fields = {"mask": a} if ins.mnemonic == "vsel" else {"a": a}
        p.emit(ins.mnemonic, b=b, c=c, dst=dst, **fields)


def _emit_window(p, dst, a, rn, cn, before, after) -> None:
    """dst = the window sum of a's squares over rows (bf16_lanes.window_sum_squares's order): a's
    square, then for each shift k one multiply-add of the rows k apart over the rows that have such
    a neighbour, operands addressed k rows apart."""
    n = rn * cn
    p.set({"v.len": n, "v.b": a, "v.b_rep": 1, "v.b_period": n})
    p.emit("vbin", op="mul", b="vec", dst=dst, a=a)
    shifts = [(k, dst, a + 2 * k * cn) for k in range(1, min(after, rn - 1) + 1)]
    shifts += [(k, dst + 2 * k * cn, a) for k in range(1, min(before, rn - 1) + 1)]
    for k, target, source in shifts:
        n = (rn - k) * cn
        p.set({"v.len": n, "v.b": source, "v.b_rep": 1, "v.b_period": n, "v.c": target, "v.c_rep": 1,
               "v.c_period": n})
        p.emit("vfma", b="vec", c="vec", dst=target, a=source)


def _begin_vector_layer(ctx: Context, step: Step, code, lowering):
    """The (handle, space, DRAM address) of every non-constant operand of the sequence, and the
    constant registers, as the op's layer begins."""
    inputs: list[tuple[Handle, str, int | ActivationAddress]] = []
    for handle, given in zip(code.handles, lowering.inputs):
        if handle.constant or given.on_chip:  # on chip: the step before wrote it into its slot
            continue
        dram: int | ActivationAddress
        if given.data is not None:
            name = given.value.name if given.value is not None else "zeros"
            dram = ctx.constant(f"v:{name}:{given.data.size}", given.data.astype("<u2"))
        else:
            dram = ctx.addr(given.value)
        inputs.append((handle, given.space, dram))
    for index, patterns in code.recorder.tables.items():  # the lane tables the sequence looks up
        digest = hashlib.sha1(patterns.tobytes()).hexdigest()[:16]
        inputs.append((Handle(index, TABLE), TABLE, ctx.constant(f"v:table:{digest}", patterns.astype("<u2"))))
    op = step.ops[0]
    ctx.begin_layer(step.name, 0, sum(v.type.size * 2 for v in op.operands) + op.result.type.size * 2)
    return inputs, ConstantRegisters(ctx.program)


def _emit_columns(ctx: Context, step: Step, lowering, code, plan: ColumnPlan) -> None:
    """The op row by row in column tiles of ``plan.width``, a pass per reduction (vector_columns.py)."""
    op, p = step.ops[0], ctx.program
    rows, cols, width = lowering.rows, lowering.cols, plan.width
    inputs, constants = _begin_vector_layer(ctx, step, code, lowering)
    length = {FULL: width, ROW: 1, COL: width, TABLE: TABLE_ENTRIES}
    row_at = lambda i: plan.row_area + plan.row_offset[i]  # noqa: E731

    def where_in(base: int):
        return lambda i: base + plan.full_offset[i] if plan.full_offset[i] is not None else row_at(i)

    def load(loads: list, r: int, t: int) -> None:
        """Row r's column tile t of the operands the pass reads, into its set of slots."""
        base = (t % plan.buffers) * plan.set_bytes
        for handle, space, dram in loads:
            start = 2 * (r * cols + t * width) if space == FULL else 2 * t * width
            p.dma("load", "vbuf", base + plan.full_offset[handle.index], dram + start, rows=1, row_bytes=2 * width)

    for handle, space, dram in inputs:  # tables: once
        if space == TABLE:
            p.dma("load", "vbuf", row_at(handle.index), dram, rows=1, row_bytes=2 * TABLE_ENTRIES)
    for r in ctx.share(rows):  # on several cores, this core's rows
        for handle, space, dram in inputs:  # per-row operands: once per row
            if space == ROW:
                p.dma("load", "vbuf", row_at(handle.index), dram + 2 * r, rows=1, row_bytes=2)
        for reduction, tile_code, after in plan.passes:
            read = {v for ins in tile_code for v in reads(ins)}
            read.add(code.result.index if reduction is None else reduction.a)
            loads = [(h, space, dram) for h, space, dram in inputs if space not in (ROW, TABLE) and h.index in read]
            load(loads, r, 0)
            for t in range(plan.tiles):
                if plan.buffers == 2 and t + 1 < plan.tiles:
                    load(loads, r, t + 1)
                base = (t % plan.buffers) * plan.set_bytes
                where = where_in(base)
                for ins in tile_code:
                    _emit(p, ins, code, constants, length, 1, width, where)
                if reduction is None:
                    p.dma("store", "vbuf", where(code.result.index), ctx.addr(op.result) + 2 * (r * cols + t * width),
                          rows=1, row_bytes=2 * width)
                else:
                    p.set({"v.len": width, "v.row": width})
                    p.emit("vred", op=reduction.op, dst=plan.partials + 2 * t, a=where(reduction.a))
                if plan.buffers == 1 and t + 1 < plan.tiles:
                    load(loads, r, t + 1)
            if reduction is not None:
                p.set({"v.len": plan.tiles, "v.row": plan.tiles})
                p.emit("vred", op=reduction.op, dst=row_at(reduction.dst), a=plan.partials)
            for ins in after:
                _emit(p, ins, code, constants, length, 1, width, where_in(0))
