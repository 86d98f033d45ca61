"""Code for matmul steps: int8 x int8 -> int32 products of two activations (attention's Q x K^T
and softmax(QK^T) x V), batched over heads, then one per-tensor requantization (plus a shift per
row when A was quantized per row: ``rq.by_row``, the row shifts loaded into pbuf per tile), or,
for attention scores a softmax reads, the int32 accumulators stored as they are (a bf16 ``cvt``
step converts them).

The systolic array multiplies ``A[m, k] - zp_a`` by weight rows ``W[n, k]`` (docs/overlay-machine.md),
so B enters as ``W = B^T`` per head.  Operands are fetched through their strided views
(views.py): a DMA box of all heads of a tile at once, and a transposing ``copy`` in the same
buffer when the rows of the needed matrix are not contiguous in memory.  B's zero point, when
not zero, is corrected exactly by a second pass accumulating ``sum_k (A[m, k] - zp_a) * (-zp_b)``
against one weight row of ``-zp_b`` read with row stride 0.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tcc.ir import Op, Value, numerics
from tcc.isa.weights import INT8_WEIGHTS, matmul_fields, row_bytes

from .context import Context
from .errors import unsupported
from .steps import Step
from .views import affine, fetch, fetchable, storable
from .weight_packing import integer_format, pack_rows

PARAM_BYTES = 12
SPLIT_COLUMNS = 256  # W rows per tile of a product split by _emit_split


def _heads(offsets: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return offsets.reshape(-1, rows, cols)


def matrix_views(a_off, b_off, out_shape):
    """A as [heads, M, K] and W = B^T as [heads, N, K] offset arrays, batch dims broadcast."""
    m, k = a_off.shape[-2:]
    n = b_off.shape[-1]
    batch = tuple(out_shape[:-2])
    a = np.broadcast_to(a_off, batch + (m, k))
    w = np.swapaxes(np.broadcast_to(b_off, batch + (k, n)), -1, -2)
    return _heads(a, m, k), _heads(w, n, k)


def _tiles(ctx: Context, heads: int, m: int, n: int, k: int, by_row: bool, elem: int):
    """(heads per tile, rows per tile) that fit the buffer partition (A, W and their staging
    areas, accumulators, output of ``elem``-byte elements; the row shifts after the parameters in
    pbuf), or None."""
    b = ctx.buffers
    shifts = b.pbuf_h - n * PARAM_BYTES if by_row else m * heads  # room for a tile's row shifts
    if n * k > b.wbuf_h // 4 or n * PARAM_BYTES > b.pbuf_h or shifts < 1:
        return None
    mt = min(m, shifts)
    while mt > 1 and (mt * k > b.abuf_q // 2 or mt * n * 4 > b.acc_h or mt * n * elem > b.abuf_q):
        mt = (mt + 1) // 2
    if mt * k > b.abuf_q // 2 or mt * n * 4 > b.acc_h or mt * n * elem > b.abuf_q:
        return None
    hb = 1
    if mt == m:
        hb = max(1, min(heads, b.abuf_q // 2 // (m * k), b.wbuf_h // 4 // (n * k), b.acc_h // (4 * m * n),
                        b.abuf_q // (m * n * elem), shifts // m))
    return hb, mt


class Epilogue(NamedTuple):
    """What the requant unit does with a tile's accumulators: the int8 requantize of the step, or
    (no requantize: the accumulators go to a bf16 ``cvt``) an exact copy out as int32."""

    out: str  # "i8" or "i32"
    multiplier: int
    shift: int
    registers: dict
    rounding: str
    row_shift: Value | None

    @property
    def elem(self) -> int:
        return 1 if self.out == "i8" else 4


def epilogue(req: Op | None) -> Epilogue:
    if req is None:
        return Epilogue("i32", 1 << 30, 30, {"rq.pre_shift": 0, "rq.zp": 0, "rq.qmin": numerics.INT32_MIN,
                                             "rq.qmax": numerics.INT32_MAX}, "half_even", None)
    return Epilogue("i8", req.multiplier[0], req.shift[0], {"rq.pre_shift": req.pre_shift, "rq.zp": req.zero_point,
                                                           "rq.qmin": req.qmin, "rq.qmax": req.qmax},
                    req.rounding, req.row_shift)


def emit_matmul(ctx: Context, step: Step) -> None:
    mm = step.ops[0]
    ep = epilogue(step.ops[1] if len(step.ops) > 1 else None)
    a_val, b_val = mm.operands
    (a_root, a_off), (b_root, b_off) = step.info["a"], step.info["b"]
    y_dest, y_off = step.info["y"]
    a_heads, w_heads = matrix_views(a_off, b_off, mm.result.type.shape)
    heads, m, k = a_heads.shape
    n = w_heads.shape[1]
    y_heads = y_off.reshape(heads, m, n)
    zb = b_val.type.quant.zero_point[0]
    row_shift, elem = ep.row_shift, ep.elem
    tiles = _tiles(ctx, heads, m, n, k, row_shift is not None, elem)
    if tiles is None:
        _emit_split(ctx, step, ep, a_heads, w_heads, y_heads)
        return
    hb, mt = tiles
    b, p = ctx.buffers, ctx.program
    corr_fmt, corr_addr, shifts_at = _begin(ctx, step, ep, n, k)
    a_addr, b_addr, y_addr = ctx.addr(a_root), ctx.addr(b_root), ctx.addr(y_dest)
    tile = 0
    for block, h0 in enumerate(range(0, heads, hb)):
        hn = min(hb, heads - h0)
        wslot = b.w(block)
        w_plane, w_row = fetch(ctx, mm, "wbuf", wslot, wslot + b.wbuf_h // 4, b.wbuf_h // 4, b_addr,
                               w_heads[h0:h0 + hn], interleave=True)
        if zb:
            p.dma("load", "wbuf", wslot + b.wbuf_h // 2, corr_addr, rows=1, row_bytes=row_bytes(k, corr_fmt))
        for m0 in range(0, m, mt):
            rows = min(mt, m - m0)
            aslot, acc, out = b.a_in(tile), b.acc(tile), b.a_out(tile)
            a_plane, a_row = fetch(ctx, mm, "abuf", aslot, aslot + b.abuf_q // 2, b.abuf_q // 2, a_addr,
                                   a_heads[h0:h0 + hn, m0:m0 + rows], interleave=True)
            for j in range(hn):
                p.set({"mm.a": aslot + j * a_plane, "mm.a_row": a_row, "mm.m": rows, "mm.n": n, "mm.k": k,
                       "mm.w_row": w_row, "mm.acc_row": n})
                p.emit("matmul", mode="gemm", accumulate=0, **matmul_fields(INT8_WEIGHTS), acc=acc + 4 * j * rows * n,
                       w=wslot + j * w_plane)
                if zb:
                    p.set({"mm.w_row": 0})
                    p.emit("matmul", mode="gemm", accumulate=1, **matmul_fields(corr_fmt), acc=acc + 4 * j * rows * n,
                           w=wslot + b.wbuf_h // 2)
            if row_shift is not None:  # the shifts of rows m0.. of heads h0.., in the requant's row order
                p.dma("load", "pbuf", shifts_at, ctx.addr(row_shift) + h0 * m + m0, planes=hn, rows=1,
                      row_bytes=rows, dram_plane=m, sram_plane=rows)
                p.set({"rq.by_row": 1, "rq.row_shift": shifts_at})
            block = y_heads[h0:h0 + hn, m0:m0 + rows]
            side_by_side = _side_by_side(block)
            if side_by_side is None:
                p.set({"rq.params": b.p(0), "rq.m": hn * rows, "rq.n": n, "rq.src_row": n, "rq.dst_row": n})
                p.emit("requant", src="acc", out=ep.out, rounding=ep.rounding, dst=out, srcaddr=acc)
                form = affine(block)
                p.dma("store", "abuf", out, y_addr + form.base * elem, planes=hn, rows=rows, row_bytes=n * elem,
                      dram_plane=form.ps * elem, dram_row=form.rs * elem, sram_plane=rows * n * elem,
                      sram_row=n * elem)
            else:  # each head's rows into its columns of [rows, heads x n], stored as one run
                p.set({"rq.params": b.p(0), "rq.m": rows, "rq.n": n, "rq.src_row": n, "rq.dst_row": hn * n})
                for j in range(hn):
                    if row_shift is not None and j:
                        p.set({"rq.row_shift": shifts_at + j * rows})
                    p.emit("requant", src="acc", out=ep.out, rounding=ep.rounding, dst=out + j * n * elem,
                           srcaddr=acc + 4 * j * rows * n)
                p.dma("store", "abuf", out, y_addr + side_by_side * elem, rows=1, row_bytes=block.size * elem)
            tile += 1
    if row_shift is not None:
        p.set({"rq.by_row": 0})  # registers persist: the next requant is per channel again


def _side_by_side(block: np.ndarray) -> int | None:
    """The first offset when a tile's [heads, rows, n] destination is one contiguous run of [rows,
    heads, n] (attention's context, heads put back side by side: its rows are n wide in DRAM), else
    None.  Such a tile is requantized head by head into that order and stored as one transfer, which
    the next layer can read where abuf holds it, instead of a DMA row per head and row."""
    heads = block.shape[0]
    if heads < 2:
        return None
    order = np.transpose(block, (1, 0, 2)).reshape(-1)
    base = int(order[0])
    return base if np.array_equal(order, base + np.arange(order.size)) else None


def _split_tiles(ctx: Context, m: int, n: int, k: int, by_row: bool, elem: int) -> tuple[int, int, int]:
    """(rows, columns, reduction chunk) of a tile of one head's product too large for ``_tiles``
    (long sequences: a [T, d] x [d, T] score or a [T, T] x [T, d] context): columns of W and the
    reduction are split so a W chunk fits its wbuf quarter, rows so A, the accumulators and the
    output tile fit theirs."""
    b = ctx.buffers
    nt = max(1, min(n, SPLIT_COLUMNS, (b.pbuf_h - 1) // PARAM_BYTES))
    kt = max(1, min(k, b.wbuf_h // 4 // nt, b.wbuf_h // 4))
    mt = max(1, min(m, b.pbuf_h - nt * PARAM_BYTES if by_row else m))
    while mt > 1 and (mt * kt > b.abuf_q // 2 or mt * nt * 4 > b.acc_h or mt * nt * elem > b.abuf_q):
        mt = (mt + 1) // 2
    return mt, nt, kt


def _begin(ctx: Context, step: Step, ep: Epilogue, columns: int, reduction: int):
    """The layer's start, shared by both tilings: requant parameters for ``columns`` W rows loaded into
    pbuf, the registers set, B's zero-point correction row of ``reduction`` elements stored as a
    constant when B has one.  Returns (the correction's format, its address or None, where a tile's
    row shifts go in pbuf: after the parameters)."""
    mm = step.ops[0]
    a_val, b_val = mm.operands
    za, zb = a_val.type.quant.zero_point[0], b_val.type.quant.zero_point[0]
    b, p = ctx.buffers, ctx.program
    params = np.tile(np.array([[0, ep.multiplier, ep.shift]], "<i4"), (columns, 1))
    p_addr = ctx.constant(f"p:{step.outputs[0].name}", params)
    corr_fmt = integer_format(np.array([-zb]))
    corr_addr = None
    if zb:
        corr_addr = ctx.constant(f"zp:{reduction}:{zb}", pack_rows(np.full((1, reduction), -zb), corr_fmt))
    macs = mm.result.type.size * a_val.type.shape[-1]  # heads x m x n products of k terms
    ctx.begin_layer(step.name, macs * (2 if zb else 1),
                    a_val.type.size + b_val.type.size + step.outputs[0].type.size * ep.elem)
    p.set({"rq.src_zp": 0, **ep.registers, "mm.a_zp": za})
    p.dma("load", "pbuf", b.p(0), p_addr, rows=1, row_bytes=columns * PARAM_BYTES)
    return corr_fmt, corr_addr, b.p(0) + columns * PARAM_BYTES


def _emit_split(ctx: Context, step: Step, ep: Epilogue, a_heads, w_heads, y_heads) -> None:
    """A product whose head does not fit the buffers whole, head by head in [rows, columns] output
    tiles, each accumulated over reduction chunks (``accumulate`` after the first) before its
    requantization: any size that fits DRAM runs."""
    mm = step.ops[0]
    heads, m, k = a_heads.shape
    n = w_heads.shape[1]
    _, b_val = mm.operands
    zb = b_val.type.quant.zero_point[0]
    row_shift, elem = ep.row_shift, ep.elem
    mt, nt, kt = _split_tiles(ctx, m, n, k, row_shift is not None, elem)
    b, p = ctx.buffers, ctx.program
    corr_fmt, corr_addr, shifts_at = _begin(ctx, step, ep, nt, kt)
    a_addr, b_addr, y_addr = (ctx.addr(step.info[key][0]) for key in ("a", "b", "y"))
    tile = chunk = 0
    for h in range(heads):
        for m0 in range(0, m, mt):
            rows = min(mt, m - m0)
            for n0 in range(0, n, nt):
                cols = min(nt, n - n0)
                acc, out = b.acc(tile), b.a_out(tile)
                for k0 in range(0, k, kt):
                    kc = min(kt, k - k0)
                    wslot, aslot = b.w(chunk), b.a_in(chunk)
                    fetch(ctx, mm, "wbuf", wslot, wslot + b.wbuf_h // 4, b.wbuf_h // 4, b_addr,
                          w_heads[h:h + 1, n0:n0 + cols, k0:k0 + kc])
                    fetch(ctx, mm, "abuf", aslot, aslot + b.abuf_q // 2, b.abuf_q // 2, a_addr,
                          a_heads[h:h + 1, m0:m0 + rows, k0:k0 + kc])
                    p.set({"mm.a": aslot, "mm.a_row": kc, "mm.m": rows, "mm.n": cols, "mm.k": kc, "mm.w_row": kc,
                           "mm.acc_row": cols})
                    p.emit("matmul", mode="gemm", accumulate=int(k0 > 0), **matmul_fields(INT8_WEIGHTS), acc=acc,
                           w=wslot)
                    if zb:
                        p.dma("load", "wbuf", wslot + b.wbuf_h // 2, corr_addr, rows=1, row_bytes=row_bytes(kc, corr_fmt))
                        p.set({"mm.w_row": 0})
                        p.emit("matmul", mode="gemm", accumulate=1, **matmul_fields(corr_fmt), acc=acc,
                               w=wslot + b.wbuf_h // 2)
                    chunk += 1
                p.set({"rq.params": b.p(0), "rq.m": rows, "rq.n": cols, "rq.src_row": cols, "rq.dst_row": cols})
                if row_shift is not None:
                    p.dma("load", "pbuf", shifts_at, ctx.addr(row_shift) + h * m + m0, rows=1, row_bytes=rows)
                    p.set({"rq.by_row": 1, "rq.row_shift": shifts_at})
                p.emit("requant", src="acc", out=ep.out, rounding=ep.rounding, dst=out, srcaddr=acc)
                form = affine(y_heads[h:h + 1, m0:m0 + rows, n0:n0 + cols])
                p.dma("store", "abuf", out, y_addr + form.base * elem, rows=rows, row_bytes=cols * elem,
                      dram_row=form.rs * elem, sram_row=cols * elem)
                tile += 1
    if row_shift is not None:
        p.set({"rq.by_row": 0})


def plan_views(steps: list[Step], io, layouts, buffers) -> None:
    """Point every matmul step at the furthest tensors its operands are fetchable views of, and
    at the furthest destination its result can be stored into directly (and every scale step at
    the furthest tensor its input is a view of); the layout steps this bypasses are left without
    users (``compile`` drops them)."""
    from .views import destination_views, source_views

    movers = {id(r): s.ops[0] for s in steps if s.kind == "layout" for r in s.ops[0].results}
    layout_ops = {id(s.ops[0]) for s in steps if s.kind == "layout"}
    outputs = {id(v) for _, v, _ in io.outputs}

    def sole_mover(x):
        users = x.users
        if len(users) != 1 or id(x) in outputs or id(users[0]) not in layout_ops or len(users[0].results) != 1:
            return None
        return users[0]

    for step in steps:
        if step.kind == "scale":
            from .emit_matrix import scale_view

            for root, offsets in source_views(step.inputs[0], movers, layouts):
                if fetchable(scale_view(offsets, layouts.perm(step.outputs[0])), buffers.abuf_q // 2):
                    step.info["view"] = (root, offsets)
                    step.inputs = [root]
                    break
            continue
        if step.kind != "matmul":
            continue
        mm = step.ops[0]
        req = step.ops[1] if len(step.ops) > 1 else None
        a_val, b_val = mm.operands
        out_shape = mm.result.type.shape
        chosen: dict[str, tuple] = {}
        for key, value in (("a", a_val), ("b", b_val)):
            for root, offsets in source_views(value, movers, layouts):
                a_off = offsets if key == "a" else np.zeros(a_val.type.shape, np.int64)
                b_off = offsets if key == "b" else np.zeros(b_val.type.shape, np.int64)
                a_heads, w_heads = matrix_views(a_off, b_off, out_shape)
                view = a_heads if key == "a" else w_heads
                room = buffers.abuf_q // 2 if key == "a" else buffers.wbuf_h // 4
                if fetchable(view, room):
                    chosen[key] = (root, offsets)
                    break
            else:
                raise unsupported(mm, f"operand %{value.name} is not a strided view of a tensor in memory")
        result = mm.result if req is None else req.result
        for dest, offsets, _ in destination_views(result, sole_mover, layouts):
            if storable(offsets.reshape(-1, *out_shape[-2:])):
                chosen["y"] = (dest, offsets)
                break
        else:
            raise unsupported(mm, "its result cannot be stored row by row")
        step.info.update(chosen)
        row_shift = None if req is None else req.row_shift
        step.inputs = [chosen["a"][0], chosen["b"][0]] + ([row_shift] if row_shift is not None else [])
        step.outputs = [chosen["y"][0]]
