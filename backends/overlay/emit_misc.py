"""Code for pooling, int8 adds and products, int8 rescales, concatenation and layout changes."""
from __future__ import annotations

import numpy as np

from tcc.ir import TccError, constant_value, is_constant

from .context import TINY_LAYER, Context
from .errors import unsupported
from .layout import physical_offsets, to_physical
from .memory import ActivationAddress
from .epilogue import eadd_registers
from .steps import Step
from .pool_tiles import PoolGeometry, choose_pool_tiles, pool_geometry
from .tiling import input_rows, stream_tile


POOL_ROW_TOO_WIDE = "one output row of this pooling does not fit the activation buffer"


def _pool_window(op) -> tuple:
    """(kh, kw, sh, sw, dh, dw, pad top, left, bottom, right, count_include_pad) of a pool op."""
    if op.kind == "qglobal_avg_pool":
        _, _, h, w = op.x.type.shape
        return h, w, 1, 1, 1, 1, 0, 0, 0, 0, 0
    (kh, kw), (sh, sw), (dh, dw) = op.kernel, op.strides, op.dilations
    count_pad = op.count_include_pad if op.kind == "qavg_pool" else 0
    return (kh, kw, sh, sw, dh, dw, *op.pads, count_pad)


def op_pool_geometry(op) -> PoolGeometry:
    _, c, h, w = op.x.type.shape
    _, _, h_out, w_out = op.results[0].type.shape
    kh, kw, sh, sw, dh, dw, pt, *_ = _pool_window(op)
    return pool_geometry(h, w, c, h_out, w_out, (kh, kw), (sh, sw), (dh, dw), pt, op.kind == "max_pool")


def emit_pool(ctx: Context, step: Step) -> None:
    """Row tiles of the NHWC input (pool_tiles.py); when one row of all channels is too large,
    channel tiles too.  A separable max pool takes two pool instructions per tile."""
    op = step.ops[0]
    x, y = op.x, op.results[0]
    _, c, h, w = x.type.shape
    _, _, h_out, w_out = y.type.shape
    kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, count_pad = _pool_window(op)
    b, p = ctx.buffers, ctx.program
    mode = "max" if op.kind == "max_pool" else "avg"
    g = op_pool_geometry(op)
    tiles = choose_pool_tiles(g, b.abuf_q, ctx.target, ctx.cores)
    if tiles is None:
        raise unsupported(op, POOL_ROW_TOO_WIDE)
    th, ct = tiles.th, tiles.ct
    ctx.begin_layer(step.name, 0, x.type.size + y.type.size)
    p.set({"pl.zp": x.type.quant.zero_point[0], "pl.count_pad": count_pad})
    if mode == "avg":
        p.set({"pl.mult": op.multiplier, "pl.shift": op.shift, "pl.out_zp": op.zero_point})
    grid = [(c0, oy0) for c0 in range(0, c, ct) for oy0 in range(0, h_out, th)]
    mine = ctx.share(len(grid))
    # an input map abuf holds whole (a conv's result kept in its DRAM order) is read where it lies,
    # and the output map written in its DRAM order to an output quarter that does not hold it (the
    # first such slot taken: the next layer's outputs go to the other quarter)
    held = p.held_at("abuf", ctx.addr(x), x.type.size) if ct >= c and ctx.cores == 1 else None
    need = y.type.size + (th * w * c if g.separable else 0)  # the map, then a tile's column maxima
    out_map = None if held is None or b.sub + need > b.abuf_q else \
        next((q for q in map(b.a_out, (0, 1)) if q + need <= held or held + x.type.size <= q), None)
    pending = None  # the previous tile's store, emitted after this tile's load (as _stream)
    for tile, (c0, oy0) in enumerate(grid[mine.start:mine.stop]):
        cn = min(ct, c - c0)
        rows = min(th, h_out - oy0)
        first, lo, hi = input_rows(oy0, rows, sh, pt, kh, dh, h)
        if out_map is not None:
            src, dst = held + lo * w * c, out_map + oy0 * w_out * c
        else:
            src, dst = b.a_in(tile), b.a_out(tile)
            p.dma("load", "abuf", src, ctx.addr(x) + lo * w * c + c0, rows=(hi - lo) * w, row_bytes=cn,
                  dram_row=c, sram_row=cn)
        if pending is not None:
            p.dma("store", *pending[0], **pending[1])
        window = {"cv.c": cn, "cv.h": hi - lo, "cv.w": w, "cv.kh": kh, "cv.sh": sh, "cv.dh": dh, "cv.pad_top": lo - first,
                  "pl.h_out": rows, "pl.pad_bottom": h + pb - hi}
        across = {"cv.kw": kw, "cv.sw": sw, "cv.dw": dw, "cv.pad_left": pl, "cv.w_out": w_out, "pl.pad_right": pr}
        if g.separable:  # columns' maxima over the slab's full width, then the maxima of kw of them
            rows_max = dst + rows * w_out * cn if out_map is None else out_map + y.type.size
            p.set(window | {"cv.kw": 1, "cv.sw": 1, "cv.dw": 1, "cv.pad_left": 0, "cv.w_out": w, "pl.pad_right": 0})
            p.emit("pool", mode=mode, dst=rows_max, src=src)
            p.set({"cv.h": rows, "cv.kh": 1, "cv.sh": 1, "cv.dh": 1, "cv.pad_top": 0, "pl.pad_bottom": 0} | across)
            p.emit("pool", mode=mode, dst=dst, src=rows_max)
        else:
            p.set(window | across)
            p.emit("pool", mode=mode, dst=dst, src=src)
        pending = (("abuf", dst, ctx.addr(y) + oy0 * w_out * c + c0),
                   {"rows": rows * w_out, "row_bytes": cn, "dram_row": c, "sram_row": cn})
    ctx.hand_over_store(pending)


def _flat_tiles(length: int, tile: int):
    for i, start in enumerate(range(0, length, tile)):
        yield i, start, min(tile, length - start)


def _my_flat_tiles(ctx: Context, n: int, limit: int, inputs: int = 1) -> list[tuple[int, int, int]]:
    """This core's share of ``n`` elements' flat tiles of at most ``limit``: on one core all of
    them, of the size ``stream_tile`` prices cheapest; on several, a tile per core where it fits
    (each core its contiguous share, Context.share)."""
    size = stream_tile(n, limit, ctx.target, inputs=inputs) if ctx.cores == 1 else min(limit, -(-n // ctx.cores))
    tiles = list(_flat_tiles(n, size))
    mine = ctx.share(len(tiles))
    return tiles[mine.start:mine.stop]


def _output_rescale(req) -> dict[str, int]:
    """The ea.* registers of the requantize that ends an int8 add or product step."""
    return {"ea.out_mult": req.multiplier[0], "ea.out_shift": req.shift[0], "ea.zp": req.zero_point,
            "ea.qmin": req.qmin, "ea.qmax": req.qmax}


def _stream(ctx: Context, x, y, length_register: str, emit) -> None:
    """``y`` from ``x`` in flat tiles of abuf: load a tile, set its length, ``emit(src, dst)``, store;
    the next tile's load comes before this tile's store, so that program order is the order in
    which the DMAs want the shared DRAM channel.  On several cores each takes its contiguous share
    of the tiles (one per core when they fit abuf's quarter)."""
    b, p = ctx.buffers, ctx.program
    tiles = _my_flat_tiles(ctx, y.type.size, b.abuf_q)
    if not tiles:
        return
    if len(tiles) == 1 and ctx.cores == 1:  # one tile: read where abuf may still hold it (an earlier layer's result)
        (i, start, count), dst = tiles[0], b.a_out(tiles[0][0])
        src = p.read_in_place("abuf", b.a_in(i), ctx.addr(x) + start, count)
        if src != dst and src < dst + count and dst < src + count:  # elementwise in place, or apart
            src = b.a_in(i)
            p.dma("load", "abuf", src, ctx.addr(x) + start, rows=1, row_bytes=count)
        p.set({length_register: count})
        emit(src, dst)
        p.dma("store", "abuf", dst, ctx.addr(y) + start, rows=1, row_bytes=count)
        return
    for k, (i, start, count) in enumerate(tiles):
        if k == 0:
            p.dma("load", "abuf", b.a_in(i), ctx.addr(x) + start, rows=1, row_bytes=count)
        p.set({length_register: count})
        emit(b.a_in(i), b.a_out(i))
        if k + 1 < len(tiles):
            i_next, start_next, count_next = tiles[k + 1]
            p.dma("load", "abuf", b.a_in(i_next), ctx.addr(x) + start_next, rows=1, row_bytes=count_next)
        p.dma("store", "abuf", b.a_out(i), ctx.addr(y) + start, rows=1, row_bytes=count)


def emit_eadd(ctx: Context, step: Step) -> None:
    ra, rb, add, req = step.ops
    a, bv, y = ra.x, rb.x, req.result
    registers = eadd_registers(ra, rb, add, req)
    b, p = ctx.buffers, ctx.program
    n = y.type.size
    half = b.abuf_q // 2
    ctx.begin_layer(step.name, 0, a.type.size + bv.type.size + n)
    p.set(registers)
    mine_tiles = _my_flat_tiles(ctx, n, half, inputs=2)

    def load(i: int, start: int, count: int) -> None:
        p.dma("load", "abuf", b.a_in(0) + (i % 2) * half, ctx.addr(a) + start, rows=1, row_bytes=count)
        p.dma("load", "abuf", b.a_in(1) + (i % 2) * half, ctx.addr(bv) + start, rows=1, row_bytes=count)

    for k, (i, start, count) in enumerate(mine_tiles):  # next tile's loads before this store (as _stream)
        sa, sb, so = b.a_in(0) + (i % 2) * half, b.a_in(1) + (i % 2) * half, b.a_out(0) + (i % 2) * half
        if k == 0:
            load(i, start, count)
        p.set({"ea.b": sb, "ea.len": count})
        p.emit("eadd", op=add.kind, rounding=req.rounding, dst=so, a=sa)
        if k + 1 < len(mine_tiles):
            load(*mine_tiles[k + 1])
        p.dma("store", "abuf", so, ctx.addr(y) + start, rows=1, row_bytes=count)


def broadcast_pattern(ctx: Context, b, out, op) -> tuple[int, int]:
    """(rep, period) such that output element i (physical order) reads b's physical element
    (i // rep) % period: a channel vector under NHWC is (1, C), a spatial map (C, H*W), a scalar (n, 1)."""
    index = to_physical(np.broadcast_to(physical_offsets(b.type.shape, ctx.layouts.perm(b)), out.type.shape),
                        ctx.layouts.perm(out)).reshape(-1)
    changes = np.flatnonzero(index[1:] != index[:-1])
    rep = int(changes[0]) + 1 if changes.size else index.size
    period = b.type.size
    if not np.array_equal(index, np.arange(index.size) // rep % period):
        raise unsupported(op, f"the broadcast of operand %{b.name} {list(b.type.shape)} over "
                              f"{list(out.type.shape)} is not a repeated run of its elements in memory order")
    return rep, period


def _emul_operand(ctx: Context, bv, y, mul) -> tuple[int, int, int | ActivationAddress]:
    """(rep, period, DRAM address) of the broadcast operand: an activation where it lives; a constant
    table in its own order when that is a repeated run of the output's (rotary embeddings' cos
    [T, d] over [B, heads, T, d]), else stored expanded in the output's order."""
    if not is_constant(bv):
        return (*broadcast_pattern(ctx, bv, y, mul), ctx.addr(bv))
    codes = np.asarray(constant_value(bv)).astype(np.int8)
    try:
        rep, period = broadcast_pattern(ctx, bv, y, mul)
        data = np.transpose(codes, ctx.layouts.perm(bv)).reshape(-1)
    except TccError:
        rep, period = 1, y.type.size
        data = np.transpose(np.broadcast_to(codes, y.type.shape), ctx.layouts.perm(y)).reshape(-1)
    return rep, period, ctx.constant(f"em:{bv.name}:{rep}:{period}", np.ascontiguousarray(data))


def emit_emul(ctx: Context, step: Step) -> None:
    """Tiles of the full-shape operand; b is loaded once when it fits a quarter of abuf, else the
    segment each tile reads (tiles then also break where b's pattern restarts)."""
    ra, rb, mul, req = step.ops
    (a, bv), y = step.inputs, req.result
    if ctx.layouts.perm(a) != ctx.layouts.perm(y):
        raise unsupported(mul, "the operand of an elementwise product with the result's shape must share its layout")
    rep, period, b_addr = _emul_operand(ctx, bv, y, mul)
    b, p = ctx.buffers, ctx.program
    n, half = y.type.size, b.abuf_q // 2
    ctx.begin_layer(step.name, 0, a.type.size + bv.type.size + n)
    p.set({"ea.a_zp": a.type.quant.zero_point[0], "ea.b_zp": bv.type.quant.zero_point[0],
           **_output_rescale(req), "em.b_rep": rep})
    cycle = rep * period
    whole = period <= b.abuf_q
    if whole:
        chunks = [(start, count, start % cycle) for _, start, count in _flat_tiles(n, half)]
    else:
        chunks = [(start + c0, cn, c0 % rep) for start in range(0, n, cycle)
                  for _, c0, cn in _flat_tiles(min(cycle, n - start), half)]
    if whole and len(chunks) == 1 and ctx.cores == 1:  # one tile: both operands where abuf may hold them
        sa, so, sb = b.a_in(0), b.a_out(0), b.a_in(1)
        sb = p.read_in_place("abuf", sb, b_addr, period)
        sa = p.read_in_place("abuf", sa, ctx.addr(a), n)
        # a's load (to its slot) may not write over b held there, nor the product over either
        if _overlap(sb, period, sa, n) and sa == b.a_in(0) or _overlap(sb, period, so, n) \
                or _overlap(sa, n, so, n) and sa != so:
            sb, sa = b.a_in(1), b.a_in(0)
            p.dma("load", "abuf", sb, b_addr, rows=1, row_bytes=period)
            p.dma("load", "abuf", sa, ctx.addr(a), rows=1, row_bytes=n)
        p.set({"ea.b": sb, "em.b_period": period, "ea.len": n, "em.b_phase": 0})
        p.emit("emul", rounding=req.rounding, dst=so, a=sa)
        p.dma("store", "abuf", so, ctx.addr(y), rows=1, row_bytes=n)
        return
    if whole:
        p.dma("load", "abuf", b.a_in(1), b_addr, rows=1, row_bytes=period)
        p.set({"ea.b": b.a_in(1), "em.b_period": period})
    for i, (start, count, phase) in enumerate(chunks):
        sa, so = b.a_in(0) + (i % 2) * half, b.a_out(0) + (i % 2) * half
        p.dma("load", "abuf", sa, ctx.addr(a) + start, rows=1, row_bytes=count)
        if not whole:
            first, segment = start % cycle // rep, (phase + count - 1) // rep + 1
            sb = b.a_in(1) + (i % 2) * half
            p.dma("load", "abuf", sb, b_addr + first, rows=1, row_bytes=segment)
            p.set({"ea.b": sb, "em.b_period": segment})
        p.set({"ea.len": count, "em.b_phase": phase})
        p.emit("emul", rounding=req.rounding, dst=so, a=sa)
        p.dma("store", "abuf", so, ctx.addr(y) + start, rows=1, row_bytes=count)


def _overlap(a: int, a_bytes: int, b: int, b_bytes: int) -> bool:
    return a < b + b_bytes and b < a + a_bytes


def emit_lut(ctx: Context, step: Step) -> None:
    """The table goes to pbuf once; the input streams through in flat tiles.  A tiny layer's table
    takes a place of its own among the tiny layers' at the top of its pbuf half (Buffers.next_layer;
    other steps' parameters fill halves from the bottom), so its load need not wait for the layers
    before to be done reading theirs."""
    op = step.ops[0]
    x, y = op.x, op.result
    b, p = ctx.buffers, ctx.program
    table = ctx.constant(f"lut:{y.name}", constant_value(op.table).astype(np.int8))
    ctx.begin_layer(step.name, 0, x.type.size + y.type.size + 256)
    at = b.p(0) + (b.pbuf_h - 256 - b.sub // TINY_LAYER * 256 if b.tiny else 0)  # from the top: params sit low
    p.dma("load", "pbuf", at, table, rows=1, row_bytes=256)
    p.set({"lt.table": at})
    _stream(ctx, x, y, "lt.len", lambda src, dst: p.emit("lut", dst=dst, src=src))


def rescale_params(op) -> np.ndarray:
    """A per-tensor int8 requantize's parameter triple (bias 0, multiplier, shift) as pbuf holds it."""
    return np.array([[0, op.multiplier[0], op.shift[0]]], "<i4")


def rescale_registers(ctx: Context, op, pslot: int) -> None:
    """Set a per-tensor int8 requantize's registers, its triple at pbuf ``pslot`` (``rq.m``, the
    elements, is left to each tile)."""
    ctx.program.set({"rq.params": pslot, "rq.n": 1, "rq.src_row": 1, "rq.dst_row": 1,
                     "rq.src_zp": op.x.type.quant.zero_point[0], "rq.pre_shift": op.pre_shift, "rq.zp": op.zero_point,
                     "rq.qmin": op.qmin, "rq.qmax": op.qmax})


def set_rescale(ctx: Context, op, key: str, pslot: int) -> None:
    """Load a per-tensor int8 requantize's parameter triple to pbuf ``pslot`` and set its registers."""
    ctx.program.dma("load", "pbuf", pslot, ctx.constant(key, rescale_params(op)), rows=1, row_bytes=12)
    rescale_registers(ctx, op, pslot)


def emit_requant(ctx: Context, step: Step) -> None:
    op = step.ops[0]
    x, y = op.x, op.result
    b, p = ctx.buffers, ctx.program
    ctx.begin_layer(step.name, 0, x.type.size + y.type.size)
    set_rescale(ctx, op, f"p:{y.name}", b.p(0))
    _stream(ctx, x, y, "rq.m", lambda src, dst: p.emit("requant", src="abuf", out="i8", rounding=op.rounding,
                                                      dst=dst, srcaddr=src))
