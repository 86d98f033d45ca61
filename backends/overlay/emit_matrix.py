"""Code for conv and gemm steps: qconv/qlinear + requantize on the systolic array.

Tiles: output channels outer (weights stay in wbuf across the row tiles), output rows inner.
Consecutive tiles alternate buffer halves, so the hazard-checked load/compute/store units
overlap (double buffering).
"""
from __future__ import annotations

import hashlib

import numpy as np

from tcc.ir import Op, constant_value, numerics
from tcc.isa.cycles import matmul_cycles
from tcc.isa.weights import matmul_fields, row_bytes

from .context import TINY_LAYER, Context
from .epilogue import eadd_registers, emit_epilogue, fused_kinds, load_skip, load_table, table_offset
from .errors import unsupported
from .later_store import LaterStore
from .steps import Step
from .tiling import (ConvGeometry, channel_idle_cycles, choose_conv_tiles, choose_gemm_tiles, column_parts,
                     conv_geometry, conv_tiles_exist, input_rows, pixel_view, row_tiles)
from .views import fetch
from .weight_packing import integer_format, pack_rows, weight_caps, weight_format_of

PARAM_BYTES = 12  # (bias, multiplier, shift) int32 per output channel


# The requant unit's identity (multiplier 2**30, shift 30, zero point 0, the int32 range): what a
# gemm whose int32 accumulators leave the model (no requantize op) does to add its bias and store.
IDENTITY: dict[str, int] = {"multiplier": 1 << 30, "shift": 30, "pre_shift": 0, "zero_point": 0,
                            "qmin": numerics.INT32_MIN, "qmax": numerics.INT32_MAX}


def _params(op_conv: Op, req: Op | None, channels: int) -> np.ndarray:
    bias = np.zeros(channels, np.int64)
    if op_conv.kind != "mul" and op_conv.b is not None:  # emit_scale passes its i32 mul, which has no bias
        bias = constant_value(op_conv.b).astype(np.int64).reshape(-1)
    multiplier, shift = (req.multiplier, req.shift) if req is not None else (IDENTITY["multiplier"], IDENTITY["shift"])
    mult = np.broadcast_to(np.asarray(multiplier, np.int64), (channels,))
    shift = np.broadcast_to(np.asarray(shift, np.int64), (channels,))
    return np.stack([bias, mult, shift], axis=1).astype("<i4")


def _requant_regs(ctx: Context, req: Op | None, conv_zp: int = 0) -> None:
    fields = IDENTITY if req is None else {name: int(getattr(req, name)) for name in ("pre_shift", "zero_point", "qmin", "qmax")}
    ctx.program.set({"rq.src_zp": conv_zp, "rq.pre_shift": fields["pre_shift"], "rq.zp": fields["zero_point"],
                     "rq.qmin": fields["qmin"], "rq.qmax": fields["qmax"]})


def _load_caps(ctx: Context, caps_addr: int | None, n0: int, nt: int, pslot: int, tn: int) -> int | None:
    """Per-row DyBit caps: load the tile's ``nt`` caps (a byte per row) into pbuf after its ``tn``
    requantization triples and the 256 bytes a fused lut's table may take (epilogue.load_table);
    returns their pbuf address (None for a format with one cap)."""
    if caps_addr is None:
        return None
    at = pslot + table_offset(tn) + 256
    ctx.program.dma("load", "pbuf", at, caps_addr + n0, rows=1, row_bytes=nt)
    return at


def _load_params(ctx: Context, step: Step, pslot: int, p_addr: int, n0: int, nt: int) -> None:
    """A channel tile's requantization triples (and a fused lut's table) into pbuf: only the
    requantize after the matmuls reads them, so they load after the first matmul's operands."""
    ctx.program.dma("load", "pbuf", pslot, p_addr + n0 * 12, rows=1, row_bytes=nt * 12)
    load_table(ctx, step, pslot, nt)


def _point_caps(ctx: Context, caps_at: int | None, row: int = 0) -> None:
    """mm.wcaps at the cap of the matmul's first weight row (per-row formats only)."""
    if caps_at is not None:
        ctx.program.set({"mm.wcaps": caps_at + row})


def _my_tiles(ctx: Context, n: int, tn: int, rows: int, th: int, first: int = 0
              ) -> list[tuple[int, list[tuple[int, int]]]]:
    """This core's share of the (channel tile, row tile) grid, channel tiles outer: each channel
    tile it has rows of, with those row tiles' (first row, rows) (ctx.share; tiling.row_tiles)."""
    row_starts = row_tiles(rows, th, first)
    mine = ctx.share(len(range(0, n, tn)) * len(row_starts))
    out = []
    for i, n0 in enumerate(range(0, n, tn)):
        own = [r for j, r in enumerate(row_starts) if i * len(row_starts) + j in mine]
        if own:
            out.append((n0, own))
    return out


def conv_tiles_fit(step: Step, buffers, target, residual: bool, lut: bool) -> bool:
    """Whether a conv step's tile search finds a tiling with these epilogues fused (a fused residual
    add halves the output tile's room): epilogue fusion asks before fusing, so a conv that fits
    unfused never becomes one that does not.  A gemm takes a residual add when its whole result fits
    half an abuf quarter (every output tile then does, the skip tile beside it); other steps always fit."""
    if step.kind == "gemm":  # a fused residual add's skip tile takes the upper half of the output quarter
        return not residual or (len(step.ops) == 2 and step.ops[1].dtype == "i8"
                                and step.outputs[0].type.size <= buffers.abuf_q // 2)
    if step.kind != "conv":
        return True
    conv = step.ops[0]
    w = constant_value(conv.w)
    x_shape, y_shape = pixel_view(conv.x.type.shape, conv.result.type.shape, w.shape[2:], conv.strides, conv.pads)
    geometry = conv_geometry(x_shape, w.shape, y_shape, conv.strides, conv.dilations, conv.group,
                             weight_format_of(conv.w, w), buffers, residual, lut)
    return conv_tiles_exist(geometry, buffers, target)


def emit_conv(ctx: Context, step: Step) -> None:
    conv, req = step.ops[:2]
    x, y = conv.x, step.outputs[0]
    residual = step.info.get("residual")
    w = constant_value(conv.w)
    x_shape, y_shape = pixel_view(x.type.shape, y.type.shape, w.shape[2:], conv.strides, conv.pads)
    _, c_in, h, wid = x_shape
    _, n_out, h_out, w_out = y_shape
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = conv.strides
    dh, dw = conv.dilations
    pt, pl, _, _ = conv.pads
    group = conv.group
    if x.type.shape[0] != 1 or w.ndim != 4:
        raise unsupported(conv, "the overlay runs 2-D convolutions of batch 1")
    depthwise = group == c_in and n_out == c_in and group > 1
    cg, ng = c_in // group, n_out // group
    if depthwise:
        k = kh * kw
        rows_nk = w.reshape(n_out, k)
    else:
        k = kh * kw * cg
        rows_nk = np.transpose(w, (0, 2, 3, 1)).reshape(n_out, k)
    fmt = weight_format_of(conv.w, w)
    caps = weight_caps(conv.w, fmt)
    data = pack_rows(rows_nk, fmt, caps)
    rb = row_bytes(k, fmt)
    wf = matmul_fields(fmt)
    b = ctx.buffers
    x_zp = x.type.quant.zero_point[0]

    geometry = conv_geometry(x_shape, w.shape, y_shape, conv.strides, conv.dilations, group, fmt, b,
                             residual is not None, "lut" in step.info)
    packed_groups = geometry.kind == "grouped" and ng * rb <= b.wbuf_h  # one gconv pass per channel tile
    if geometry not in ctx.conv_tiles:
        ctx.conv_tiles[geometry] = choose_conv_tiles(geometry, b, ctx.target)
    tiles = ctx.conv_tiles[geometry]
    if tiles is None:
        raise unsupported(conv, "not even one output row of one channel fits the on-chip buffers")
    tn, th = tiles.tn, tiles.th
    slab_row = wid * c_in

    w_addr = ctx.constant(f"w:{conv.w.name}", data)
    p_addr = ctx.constant(f"p:{y.name}", _params(conv, req, n_out))
    caps_addr = None if caps is None else ctx.constant(f"c:{conv.w.name}", caps)
    p = ctx.program
    macs = h_out * w_out * n_out * k
    stored = data.nbytes + (0 if caps is None else caps.nbytes)
    epilogue_bytes = (0 if residual is None else residual.skip.type.size) + (256 if "lut" in step.info else 0)
    ctx.begin_layer(step.name, macs, x.type.size + stored + epilogue_bytes + y.type.size)
    ctx.record_weights(fmt.name, stored)
    layer = len(ctx.layer_names) - 1
    _requant_regs(ctx, req)
    if residual is not None:
        p.set(eadd_registers(*residual.ops))
    p.set({"mm.a_zp": x_zp, "cv.w": wid, "cv.c": c_in, "cv.kh": kh, "cv.kw": kw, "cv.sh": sh, "cv.sw": sw, "cv.dh": dh,
           "cv.dw": dw, "cv.pad_left": pl, "cv.w_out": w_out, "mm.w_row": rb})
    if tiles.tc:
        ctx.channel_idle[layer] = channel_idle_cycles(geometry, tiles, ctx.target)  # the loop as modeled
        _emit_split_conv(ctx, step, tiles, geometry, w_addr, p_addr, caps_addr)
        return
    tile = 0
    in_place: set[int] = set()  # the tiles whose slab is read where abuf holds it
    weights_early = False
    stores = LaterStore(ctx)
    half_slabs = b.sub + geometry.rows_in(th) * slab_row <= b.abuf_q // 2
    # one channel tile whose whole map fits the lower half of an output quarter: each row tile's
    # result goes where it lies in the map (its DRAM order), so after the layer abuf holds the
    # whole map in one range and the next layers read their slabs in place (resident.py) instead
    # of loading back what was just stored; else the tiles alternate between the quarters' starts
    whole_map = tn >= n_out and ctx.cores == 1 and b.sub + y.type.size <= b.abuf_q // 2
    map_at = b.a_out(0) if whole_map else 0
    for n0, my_rows in _my_tiles(ctx, n_out, tn, h_out, th, tiles.first):
        nt = min(tn, n_out - n0)
        wslot = b.w(n0 // tn)
        pslot = b.p(n0 // tn)
        early = ctx.early_weights(w_addr + n0 * rb, nt * rb) if tile == 0 and caps is None else None
        if early is None:
            p.dma("load", "wbuf", wslot, w_addr + n0 * rb, rows=1, row_bytes=nt * rb)
        else:
            wslot = early
            weights_early = True
        caps_at = _load_caps(ctx, caps_addr, n0, nt, pslot, tn)
        for index, (oy0, rows) in enumerate(my_rows):
            first, lo, hi = input_rows(oy0, rows, sh, pt, kh, dh, h)
            slab = b.a_in(tile, half=half_slabs)
            stores.before_load(ctx.addr(x) + lo * slab_row, (hi - lo) * slab_row, slab, (hi - lo) * slab_row)
            # the slab is read by this tile's matmuls alone, before its requantize writes abuf
            loaded = slab
            slab = p.read_in_place("abuf", slab, ctx.addr(x) + lo * slab_row, (hi - lo) * slab_row)
            if slab != loaded:
                in_place.add(tile)
            if index == 0:  # the requantization's parameters after the first matmul's operands
                _load_params(ctx, step, pslot, p_addr, n0, nt)
            stores.now()
            p.set({"mm.a": slab, "cv.h": hi - lo, "cv.pad_top": lo - first, "mm.m": rows * w_out, "mm.acc_row": nt})
            acc = b.acc(tile)
            if depthwise:
                p.set({"mm.n": nt, "mm.k": k, "cv.c0": n0})
                _point_caps(ctx, caps_at)
                p.emit("matmul", mode="dwconv", accumulate=0, **wf, acc=acc, w=wslot)
            elif packed_groups:  # tiles hold whole groups (channel_step = ng): one pass over all of them
                p.set({"mm.n": nt, "mm.k": k, "cv.c0": n0 // ng * cg, "cv.cg": cg, "cv.ng": ng})
                _point_caps(ctx, caps_at)
                p.emit("matmul", mode="gconv", accumulate=0, **wf, acc=acc, w=wslot)
            elif (parts := column_parts(geometry, rows * w_out, nt, ctx.target)) is not None:  # one-group gconvs, side by side
                for start, width in zip(np.cumsum([0] + parts[:-1]), parts):
                    p.set({"mm.n": width, "mm.k": k, "cv.c0": 0, "cv.cg": c_in, "cv.ng": width})
                    _point_caps(ctx, caps_at, start)
                    p.emit("matmul", mode="gconv", accumulate=0, **wf, acc=acc + int(start) * 4, w=wslot + int(start) * rb)
            else:
                for g in range(group):
                    gn0 = max(n0, g * ng)
                    gn1 = min(n0 + nt, (g + 1) * ng)
                    if gn0 >= gn1:
                        continue
                    p.set({"mm.n": gn1 - gn0, "mm.k": k, "cv.c0": g * cg})
                    _point_caps(ctx, caps_at, gn0 - n0)
                    p.emit("matmul", mode="conv", accumulate=0, **wf, acc=acc + (gn0 - n0) * 4,
                           w=wslot + (gn0 - n0) * rb)
            out = map_at + oy0 * w_out * n_out if whole_map else b.a_out(tile)
            p.set({"rq.params": pslot, "rq.m": rows * w_out, "rq.n": nt, "rq.src_row": nt, "rq.dst_row": nt})
            p.emit("requant", src="acc", out="i8", rounding=req.rounding, dst=out, srcaddr=acc)
            emit_epilogue(ctx, step, out, out + b.abuf_q // 2, oy0 * w_out * n_out + n0, rows * w_out, nt, n_out,
                          pslot)
            stores.later("abuf", out, ctx.addr(y) + (oy0 * w_out * n_out + n0), rows=rows * w_out,
                         row_bytes=nt, dram_row=n_out, sram_row=nt)
            tile += 1
    stores.hand_over()
    if ctx.cores == 1:  # the loop as emitted leaves the channel idle for these cycles
        ctx.channel_idle[layer] = channel_idle_cycles(geometry, tiles, ctx.target, (frozenset(in_place), weights_early))


def _emit_split_conv(ctx: Context, step: Step, tiles, g: ConvGeometry, w_addr: int, p_addr: int,
                     caps_addr: int | None) -> None:
    """The slab holds ``tiles.tc`` channels: input-channel chunks of a group-1 conv accumulate
    their partial sums in acc (each chunk's weights are the matching taps x channels of every
    output channel's row), or a depthwise conv's slab holds the output tile's own channels."""
    conv, req = step.ops[:2]
    x, y = conv.x, step.outputs[0]
    b, p = ctx.buffers, ctx.program
    sh, pt, dh = conv.strides[0], conv.pads[0], conv.dilations[0]
    depthwise = g.kind == "depthwise"
    taps = g.taps
    wf = matmul_fields(g.fmt)
    rb = g.wbytes(g.k)
    tile = chunk = 0
    stores = LaterStore(ctx)
    for n0, my_rows in _my_tiles(ctx, g.n, tiles.tn, g.h_out, tiles.th, tiles.first):
        nt = min(tiles.tn, g.n - n0)
        pslot = b.p(n0 // tiles.tn)
        caps_at = _load_caps(ctx, caps_addr, n0, nt, pslot, tiles.tn)
        params = True  # still to load, after the first matmul's operands
        if depthwise:
            wslot = b.w(n0 // tiles.tn)
            p.dma("load", "wbuf", wslot, w_addr + n0 * rb, rows=1, row_bytes=nt * rb)
        for oy0, rows in my_rows:
            first, lo, hi = input_rows(oy0, rows, sh, pt, g.kh, dh, g.h)
            acc = b.acc(tile)
            p.set({"cv.h": hi - lo, "cv.pad_top": lo - first, "mm.m": rows * g.w_out, "mm.acc_row": nt, "mm.n": nt,
                   "cv.c0": 0})
            slices = [(n0, nt)] if depthwise else [(c0, min(tiles.tc, g.c - c0)) for c0 in range(0, g.c, tiles.tc)]
            for c0, cn in slices:
                slab = b.a_in(chunk)
                stores.before_load(ctx.addr(x) + lo * g.w * g.c, (hi - lo) * g.w * g.c, slab, (hi - lo) * g.w * cn)
                p.dma("load", "abuf", slab, ctx.addr(x) + lo * g.w * g.c + c0, rows=(hi - lo) * g.w, row_bytes=cn,
                      dram_row=g.c, sram_row=cn)
                stores.now()
                p.set({"mm.a": slab, "cv.c": cn})
                _point_caps(ctx, caps_at)
                if depthwise:
                    p.set({"mm.k": g.k, "mm.w_row": rb})
                    p.emit("matmul", mode="dwconv", accumulate=0, **wf, acc=acc, w=wslot)
                else:  # chunks are byte-aligned in every tap (tiling.byte_aligned)
                    wslot = b.w(chunk)
                    p.dma("load", "wbuf", wslot, w_addr + n0 * rb + g.wbytes(c0), planes=nt, rows=taps,
                          row_bytes=g.wbytes(cn), dram_row=g.wbytes(g.c), dram_plane=rb,
                          sram_row=g.wbytes(cn), sram_plane=taps * g.wbytes(cn))
                    p.set({"mm.k": taps * cn, "mm.w_row": taps * g.wbytes(cn)})
                    p.emit("matmul", mode="conv", accumulate=int(c0 > 0), **wf, acc=acc, w=wslot)
                if params:
                    _load_params(ctx, step, pslot, p_addr, n0, nt)
                    params = False
                chunk += 1
            out = b.a_out(tile)
            p.set({"rq.params": pslot, "rq.m": rows * g.w_out, "rq.n": nt, "rq.src_row": nt, "rq.dst_row": nt})
            p.emit("requant", src="acc", out="i8", rounding=req.rounding, dst=out, srcaddr=acc)
            emit_epilogue(ctx, step, out, out + b.abuf_q // 2, oy0 * g.w_out * g.n + n0, rows * g.w_out, nt, g.n,
                          pslot)
            stores.later("abuf", out, ctx.addr(y) + (oy0 * g.w_out * g.n + n0), rows=rows * g.w_out,
                         row_bytes=nt, dram_row=g.n, sram_row=nt)
            tile += 1
    stores.hand_over()


def gemm_weight_tiles(w: np.ndarray, fmt, tn: int, kt: int, caps: np.ndarray | None = None
                      ) -> tuple[np.ndarray, dict[tuple[int, int], int]]:
    """The weights [n, k] packed in DRAM order for tiles of ``tn`` rows and ``kt`` columns (row
    tiles in order, inside each its reduction chunks in order, each chunk's rows packed on their
    own, so every weight load is one contiguous transfer), and each block's byte offset by (n0, k0)."""
    n, k = w.shape
    blocks, offsets, at = [], {}, 0
    for n0 in range(0, n, tn):
        for k0 in range(0, k, kt):
            block = pack_rows(w[n0:n0 + tn, k0:k0 + kt], fmt, None if caps is None else caps[n0:n0 + tn]).ravel()
            blocks.append(block)
            offsets[n0, k0] = at
            at += block.size
    return np.concatenate(blocks), offsets


def emit_gemm(ctx: Context, step: Step) -> None:
    """qlinear + requantize (to int8, or to an int32 grid for a bf16 conversion), or qlinear alone: its
    int32 accumulators (plus bias) stored as they are, when they leave the model (steps.match_step)."""
    lin, req = step.ops[0], (step.ops[1] if len(step.ops) > 1 else None)
    x, y = lin.x, step.outputs[0]
    out, elem = ("i8", 1) if req is not None and req.dtype == "i8" else ("i32", 4)
    rounding = req.rounding if req is not None else "half_even"
    w = constant_value(lin.w)
    n_out, k = w.shape
    m = x.type.size // k
    fmt = weight_format_of(lin.w, w)
    caps = weight_caps(lin.w, fmt)
    b = ctx.buffers
    # The matrix view [m, k] -> [m, n_out] needs the reduced axis innermost in memory: any rank
    # stored row-major (a Linear over [N, H, W, C], ConvNeXt's MLP) is that view already.
    for v in (x, y):
        if ctx.layouts.perm(v) != tuple(range(v.type.rank)):
            raise unsupported(lin, f"linear layer over {v.name}, which is stored NHWC for a convolution")
    try:
        # a one-row product of a tiny input whose weights fit a wbuf half (an unrolled recurrence's
        # step): the weights load while the tiny layers producing its input run
        early = m == 1 and x.type.size <= TINY_LAYER and n_out * row_bytes(k, fmt) <= b.wbuf_h
        # abuf holds the whole input (a product's whole map): one resident output tile reads it in place
        on_chip = ctx.cores == 1 and ctx.program.held_at("abuf", ctx.addr(x), m * k) is not None
        tiles = choose_gemm_tiles(m, n_out, k, fmt, b, ctx.target, elem, early, on_chip,
                                  1 + len(fused_kinds(step)))
    except ValueError:
        raise unsupported(lin, "not even one output row of one column tile fits the on-chip buffers") from None
    tn, tm, kt = tiles.tn, tiles.tm, tiles.kt
    single = kt >= k
    data, blocks = gemm_weight_tiles(w, fmt, tn, kt, caps)
    # keyed by content: an unrolled recurrence's steps share one copy of their weights, which
    # Program then need not load again while wbuf holds it
    w_addr = ctx.constant(f"w:{hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()}:{tn}x{kt}", data)
    p_addr = ctx.constant(f"p:{y.name}", _params(lin, req, n_out))
    caps_addr = None if caps is None else ctx.constant(f"c:{lin.w.name}", caps)
    p = ctx.program
    stored = data.nbytes + (0 if caps is None else caps.nbytes)
    residual = step.info.get("residual")
    ctx.begin_layer(step.name, m * n_out * k,
                    x.type.size + stored + y.type.size * elem + (256 if "lut" in step.info else 0)
                    + (0 if residual is None else residual.skip.type.size))
    ctx.record_weights(fmt.name, stored)
    _requant_regs(ctx, req)
    if residual is not None:
        p.set(eadd_registers(*residual.ops))
    p.set({"mm.a_zp": x.type.quant.zero_point[0]})
    mine = _my_tiles(ctx, n_out, tn, m, tm)
    # an int8 result of several column tiles that fits the lower half of an output quarter, with no
    # residual add: each tile written where it lies in the map (rows n_out apart), so after the
    # layer abuf holds the whole map in one range (resident.py) and a later load of any box of it
    # (an attention's query heads, the next product's chunks) is a copy on chip; with a fused lut
    # (GELU) the tile is requantized and looked up in the quarter's upper half, then copied into the
    # map.  Else the tiles alternate between the quarters
    whole_map = (len(mine) > 1 and out == "i8" and ctx.cores == 1 and residual is None
                 and b.sub + y.type.size <= b.abuf_q // 2)
    map_at = b.a_out(0) if whole_map else 0
    # a small map that a step after the next one reads: kept while the next ones are made
    read_next = ctx.next_step is not None and len(y.users) == 1 and any(v is y for v in ctx.next_step.inputs)
    if whole_map and b.sub + y.type.size <= b.abuf_q // 4 and not read_next:
        map_at = b.small_map()
    staged = whole_map and "lut" in step.info
    a_base = b.a_in(0)
    if tiles.resident and mine:
        tiles_count = sum(len(my_rows) for _, my_rows in mine)
        # the output quarters the tiles write (their skip tiles and lut staging included)
        quarters = {at // b.abuf_q * b.abuf_q for at in ([map_at] if whole_map else map(b.a_out, range(tiles_count)))}
        held = ctx.program.held_at("abuf", ctx.addr(x), m * k) if ctx.cores == 1 else None
        if tiles_count == 1:  # one output tile: every read of A precedes its requantize
            a_base = p.read_in_place("abuf", a_base, ctx.addr(x), m * k)
        elif held is not None and all(held + m * k <= q or q + b.abuf_q <= held for q in quarters):
            a_base = held  # abuf holds the whole input outside every quarter the tiles write
        else:
            p.dma("load", "abuf", a_base, ctx.addr(x), rows=1, row_bytes=m * k)
    chunk = tile = 0
    stores = LaterStore(ctx)
    for n0, my_rows in mine:
        n_tile = n0 // tn
        nt = min(tn, n_out - n0)
        pslot = b.p(n_tile)
        caps_at = _load_caps(ctx, caps_addr, n0, nt, pslot, tn)
        params = True  # still to load, after the first matmul's operands
        # the first weight tile may load early, while a layer before leaves the DRAM channel free
        early_slot = ctx.early_weights(w_addr + blocks[n0, 0], nt * row_bytes(k if single else min(kt, k), fmt)) \
            if chunk == 0 and caps is None else None
        if single and early_slot is None:
            p.dma("load", "wbuf", b.w(n_tile), w_addr + blocks[n0, 0], rows=1, row_bytes=nt * row_bytes(k, fmt))
        for m0, mt in my_rows:
            acc = b.acc(tile)
            place = map_at + m0 * n_out + n0
            dst = place if whole_map and not staged else map_at + b.abuf_q // 2 if staged else b.a_out(tile)
            out_row = n_out if whole_map and not staged else nt
            if residual is not None:  # the skip tile is ready: it loads while the array works
                load_skip(ctx, step, dst + b.abuf_q // 2, m0 * n_out + n0, mt, nt, n_out)
            for k0 in range(0, k, kt):
                ktile = min(kt, k - k0)
                wslot = b.w(n_tile) if single else b.w(chunk)
                if early_slot is not None and (single or chunk == 0):
                    wslot = early_slot
                elif not single:  # a later chunk loads early too where the channel's idle cycles take it whole
                    later = ctx.early_weights(w_addr + blocks[n0, k0], nt * row_bytes(ktile, fmt), whole=True) \
                        if chunk > 0 and caps is None else None
                    if later is not None:
                        wslot = later
                    else:
                        p.dma("load", "wbuf", wslot, w_addr + blocks[n0, k0], rows=1, row_bytes=nt * row_bytes(ktile, fmt))
                if tiles.resident:
                    p.set({"mm.a": a_base + m0 * k + k0, "mm.a_row": k})
                else:
                    aslot = b.a_in(chunk)
                    if ktile == k or mt == 1:  # contiguous: read where abuf may hold it (before this tile's requantize)
                        aslot = p.read_in_place("abuf", aslot, ctx.addr(x) + m0 * k + k0, mt * ktile)
                    else:
                        p.dma("load", "abuf", aslot, ctx.addr(x) + m0 * k + k0, rows=mt, row_bytes=ktile,
                              dram_row=k, sram_row=ktile)
                    p.set({"mm.a": aslot, "mm.a_row": ktile})
                stores.now()
                p.set({"mm.m": mt, "mm.n": nt, "mm.k": ktile, "mm.w_row": row_bytes(ktile, fmt), "mm.acc_row": nt})
                _point_caps(ctx, caps_at)
                p.emit("matmul", mode="gemm", accumulate=int(k0 > 0), **matmul_fields(fmt), acc=acc, w=wslot)
                # the first tile's after its last chunk's matmul: the layer before may still read that
                # pbuf half (its last requantizes and GELU lookups, behind on the post unit), and a
                # parameter load waiting for them would hold back the chunks loading behind it
                if params and (tile > 0 or k0 + kt >= k):
                    _load_params(ctx, step, pslot, p_addr, n0, nt)
                    params = False
                chunk += 1
            p.set({"rq.params": pslot, "rq.m": mt, "rq.n": nt, "rq.src_row": nt, "rq.dst_row": out_row})
            p.emit("requant", src="acc", out=out, rounding=rounding, dst=dst, srcaddr=acc)
            emit_epilogue(ctx, step, dst, dst + b.abuf_q // 2, 0, mt, nt, n_out, pslot, skip_loaded=True)
            if staged:
                p.copy_box((1, 1, mt, nt), (0, 0, nt, 1), (0, 0, n_out, 1), 1)
                p.emit("copy", buf="abuf", dst=place, src=dst)
                dst, out_row = place, n_out
            stores.later("abuf", dst, ctx.addr(y) + (m0 * n_out + n0) * elem, rows=mt, row_bytes=nt * elem,
                         dram_row=n_out * elem, sram_row=out_row * elem)
            tile += 1
    stores.now()


def scale_view(offsets: np.ndarray, perm) -> np.ndarray:
    """A scale step's input view in its output's physical order, as [planes, rows, columns]
    (the last two physical axes are rows and columns)."""
    phys = np.transpose(offsets, perm)
    if phys.ndim < 2:
        return phys.reshape(1, 1, -1)
    return phys.reshape(-1, *phys.shape[-2:])


def scale_columns(target, m: int, fmt) -> int:
    """The columns of a scale tile of ``m`` elements as a depthwise product: the largest divisor of
    ``m`` up to the array's columns when the cost model times that form shorter than one column of
    ``m`` rows (1: the K = 1 gemm)."""
    best = max(c for c in range(1, min(m, target.array_cols) + 1) if m % c == 0)
    if best > 1 and matmul_cycles(target, m // best, best, 1, fmt, own_columns=True) < matmul_cycles(target, m, 1, 1, fmt):
        return best
    return 1


def emit_scale(ctx: Context, step: Step) -> None:
    """x times an integer constant, requantized: the array's K = 1 product
    ``acc[m, 0] = (x[m] - zp_x) * factor``, in tiles of the accumulators.  x is fetched through
    its strided view (e.g. the query heads inside a fused QKV projection).  A tile of ``m``
    elements runs as a 1x1 depthwise product over ``c`` columns (``scale_columns``: each column
    reads its own channel of an [m / c, 1, c] slab, every column's weight the factor, one row read
    c times): ``acc[i, j] = (x[i c + j] - zp_x) * factor``, the same products in the same order,
    in m / c rows instead of m (ViT's 65 x 96 query: 82 cycles instead of 454)."""
    req = step.ops[-1]
    (root, offsets), y, x = step.info["view"], step.outputs[0], step.info["value"]
    factor = step.info["factor"]
    if not -2**15 <= factor < 2**15:
        raise unsupported(req, f"a constant factor of {factor} does not fit 16-bit weights")
    fmt = integer_format(np.array([factor]))
    data = pack_rows(np.array([[factor]]), fmt)
    b, p = ctx.buffers, ctx.program
    columns = ctx.target.array_cols
    w_addr = ctx.constant(f"w:{y.name}", data)
    p_addr = ctx.constant(f"p:{y.name}:{columns}", _params(step.ops[-2], req, columns))
    view = scale_view(offsets, ctx.layouts.perm(y))
    planes, rows, cols = view.shape
    limit = min(b.acc_h // 4, b.abuf_q // 2)
    if cols > limit:
        raise unsupported(req, "one row of this tensor does not fit the accumulators")
    rt = min(rows, limit // cols)
    pt = max(1, limit // (rows * cols)) if rt == rows else 1
    ctx.begin_layer(step.name, y.type.size, 2 * y.type.size)
    _requant_regs(ctx, req)
    p.dma("load", "wbuf", b.w(0), w_addr, rows=1, row_bytes=data.nbytes)
    p.dma("load", "pbuf", b.p(0), p_addr, rows=1, row_bytes=PARAM_BYTES * columns)
    p.set({"mm.a_zp": x.type.quant.zero_point[0], "mm.k": 1, "mm.w_row": 0, "rq.params": b.p(0),
           "cv.w": 1, "cv.kh": 1, "cv.kw": 1, "cv.sh": 1, "cv.sw": 1, "cv.dh": 1, "cv.dw": 1, "cv.pad_top": 0,
           "cv.pad_left": 0, "cv.w_out": 1, "cv.c0": 0})
    tile = 0
    one_tile = pt >= planes and rt >= rows
    for p0 in range(0, planes, pt):
        for r0 in range(0, rows, rt):
            block = view[p0:p0 + pt, r0:r0 + rt]
            m = block.size
            c = scale_columns(ctx.target, m, fmt)
            aslot, acc, out = b.a_in(tile), b.acc(tile), b.a_out(tile)
            if one_tile and b.sub + m <= b.abuf_q // 4:  # a small result (scaled heads): kept while the next ones are made
                out = b.small_map()
            fetch(ctx, req, "abuf", aslot, aslot + b.abuf_q // 2, b.abuf_q // 2, ctx.addr(root), block)
            p.set({"mm.a": aslot, "mm.m": m // c, "mm.n": c, "mm.acc_row": c, "rq.m": m // c, "rq.n": c,
                   "rq.src_row": c, "rq.dst_row": c})
            if c > 1:
                p.set({"cv.h": m // c, "cv.c": c, "mm.a_row": c})
                p.emit("matmul", mode="dwconv", accumulate=0, **matmul_fields(fmt), acc=acc, w=b.w(0))
            else:
                p.set({"mm.a_row": 1})
                p.emit("matmul", mode="gemm", accumulate=0, **matmul_fields(fmt), acc=acc, w=b.w(0))
            p.emit("requant", src="acc", out="i8", rounding=req.rounding, dst=out, srcaddr=acc)
            p.dma("store", "abuf", out, ctx.addr(y) + (p0 * rows + r0) * cols, rows=1, row_bytes=m)
            tile += 1
