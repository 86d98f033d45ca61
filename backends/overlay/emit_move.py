"""Data movement between DRAM tensors: layout changes (reshape, transpose, slice, ...) and
concatenation, as tiles that are loaded, reordered by a strided copy, and stored with a DMA box.

A move is a list of (destination element, source element) pairs over the tensors' physical
layouts.  The source is tiled by whole outer rows so each tile fits the activation buffer; the
pairs reading from a tile are sorted by destination, gathered into a staging area by one 4-D
``copy`` (skipped when already in order) and stored with one DMA box.
"""
from __future__ import annotations

import numpy as np

from tcc.isa.cycles import dma_cycles, dram_beats, post_cycles

from .context import Context
from .emit_misc import rescale_params, rescale_registers, set_rescale
from .errors import unsupported
from .layout import ELEMENT_BYTES, LayoutPlan, factor_strided
from .steps import Step
from .tiling import stream_tile
from .views import apply_view


def layout_map(op, layouts: LayoutPlan, result_index: int = 0) -> np.ndarray:
    """For each physical element of the result, the physical element of the data operand it copies."""
    # The op's own reference kernel, run on the operand's physical offsets, says where each
    # result element is read from.
    source, *_ = op.operands
    produced = apply_view(op, result_index, layouts.offsets(source))
    return layouts.to_physical(produced, op.results[result_index]).reshape(-1)


def _box(dims, elem: int):
    """DMA box (planes, rows, row_bytes, plane_stride, row_stride) for loops whose innermost
    level is contiguous; None if it needs more than three levels."""
    if not dims or dims[-1][1] != 1:
        dims = list(dims) + [(1, 1)]
    inner = dims[-1][0] * elem
    outer = [(n, s * elem) for n, s in dims[:-1] if n > 1]
    if len(outer) > 2:
        return None
    while len(outer) < 2:
        outer.insert(0, (1, 0))
    (planes, plane_stride), (rows, row_stride) = outer
    return planes, rows, inner, plane_stride, row_stride


def emit_move(ctx: Context, op, src, dst, dst_index: np.ndarray, src_index: np.ndarray, rescale=None,
              shared: bool = False):
    """``dst`` elements ``dst_index`` from ``src`` elements ``src_index``; ``rescale``: an int8
    per-tensor requantize (its parameters set up by the caller) run in place on every loaded tile;
    ``shared``: only this core's contiguous share of the tiles (Context.share).
    Returns the last tile's store, not yet emitted (``_store``), or None."""
    elem = ELEMENT_BYTES[src.type.dtype]
    b, p = ctx.buffers, ctx.program
    plans, problem = [], ""
    room = b.abuf_q // elem
    for chunk in _chunks(ctx, ctx.layouts.shape(src), elem, src.type.size):
        tiles, problem = _plan_tiles(dst_index, src_index, chunk, src.type.size, elem, room)
        if tiles is not None:
            plans.append(tiles)
    for chunk in [] if plans else _smaller_chunks(ctx, ctx.layouts.shape(src), elem):
        tiles, _ = _plan_tiles(dst_index, src_index, chunk, src.type.size, elem, room)
        if tiles is not None:  # the largest rows whose tiles store as DMA boxes
            plans.append(tiles)
            break
    if not plans:
        raise unsupported(op, problem)
    tiles = min(plans, key=lambda t: _move_cycles(ctx, t, elem, rescale is not None))
    if shared:
        mine = ctx.share(len(tiles))
        tiles = tiles[mine.start:mine.stop]
    # without a gather no tile needs a staging area: the tiles take turns in all four quarters of
    # abuf; each tile's store comes after the next tile's load, the order in which the DMAs want
    # the shared DRAM channel (as emit_misc._stream)
    staged = any(gather is not None for *_, gather in tiles)
    pending = None
    for tile, (s0, s1, store, box, gather) in enumerate(tiles):
        slot = b.a_in(tile) if staged else (tile % 4) * b.abuf_q
        p.dma("load", "abuf", slot, ctx.addr(src) + s0 * elem, rows=1, row_bytes=(s1 - s0) * elem)
        if pending is not None:
            p.dma("store", *pending[0], **pending[1])
        if rescale is not None:
            p.set({"rq.m": s1 - s0})
            p.emit("requant", src="abuf", out="i8", rounding=rescale.rounding, dst=slot, srcaddr=slot)
        staging = slot
        if gather is not None:
            staging = b.a_out(tile)
            _emit_copies(p, gather, staging, slot, elem)
        pending = _store(staging, ctx.addr(dst) + store * elem, box)
    return pending


def _store(staging: int, address, box) -> tuple[tuple, dict]:
    """The ``Program.dma`` arguments of one tile's store, emitted later."""
    planes, rows, row_bytes, plane_stride, row_stride = box
    return ("abuf", staging, address), dict(rows=rows, row_bytes=row_bytes, dram_row=row_stride, sram_row=row_bytes,
                                            planes=planes, dram_plane=plane_stride, sram_plane=rows * row_bytes)


def _move_cycles(ctx: Context, tiles, elem: int, rescaled: bool = False) -> int:
    """Modeled cycles of a move's tiles (the cost model's DMA and copy cycles): the busiest unit's
    total, or the beats of the DRAM channel the loads and stores share, plus the first load and the
    last store, as the conv tile search counts."""
    loads, copies, stores = [], [], []
    for s0, s1, _, (planes, rows, row_bytes, _, row_stride), gather in tiles:
        loads.append(dma_cycles(ctx.target, 1, (s1 - s0) * elem))
        if rescaled:
            copies.append(post_cycles(ctx.target, s1 - s0))
        contiguous = planes == 1 and row_stride == row_bytes
        stores.append(dma_cycles(ctx.target, 1, rows * row_bytes) if contiguous
                      else dma_cycles(ctx.target, planes * rows, row_bytes))
        if gather is not None:
            extents = [n for n, _ in gather[1]]
            block = int(np.prod(extents[-4:])) * elem
            copies.append(int(np.prod(extents[:-4])) * post_cycles(ctx.target, block))
    beats = sum(dram_beats(ctx.target, t) for t in loads + stores)  # loads and stores share DRAM
    return max(sum(loads), sum(copies), sum(stores), beats) + loads[0] + stores[-1]


def _row_elements(phys, limit: int, several: bool) -> int:
    """Elements of one row of the outermost physical dim whose rows fit ``limit`` elements (and,
    if ``several``, that has more than one row)."""
    for d in range(len(phys)):
        unit = int(np.prod(phys[d + 1:], dtype=np.int64))
        if unit <= limit and (phys[d] > 1 or not several):
            return unit
    return 1


def _chunks(ctx: Context, phys, elem: int, total: int) -> list[int]:
    """Source elements per tile to try, best first: whole rows, as many as pipeline best
    (tiling.stream_tile: one tile's store overlaps the next one's load), of the outermost dim with
    several rows that fit; then as many rows of the outermost dim whose rows fit as the buffer
    holds (the whole tensor in one tile when it fits, whose store is one DMA box if any is)."""
    limit = ctx.buffers.abuf_q // elem
    unit = _row_elements(phys, limit, several=True)
    pipelined = unit * stream_tile(-(-total // unit), max(1, limit // unit), ctx.target, unit=unit * elem)
    unit = _row_elements(phys, limit, several=False)
    return [pipelined, max(1, limit // unit) * unit]


def _smaller_chunks(ctx: Context, phys, elem: int) -> list[int]:
    """Tiles of one row of ever inner physical dims, largest first: when whole outer rows scatter
    into more loop levels than one DMA box has (a transpose of several dims, MaxViT's grid
    partition), a row of the innermost dim still stores as one strided box."""
    limit = ctx.buffers.abuf_q // elem
    units = [int(np.prod(phys[d + 1:], dtype=np.int64)) for d in range(len(phys))]
    return sorted({u for u in units if u <= limit}, reverse=True)


def _plan_tiles(dst_index: np.ndarray, src_index: np.ndarray, chunk: int, total: int, elem: int, room: int):
    """Per tile of ``chunk`` source elements: (first, end, store offset, DMA box, gather or None),
    the tile's pairs in destination order; or None and why a tile fits no DMA box or strided gather,
    or gathers more than ``room`` elements (its staging area, an abuf quarter: a move that repeats
    source elements, an expand or tile, writes more elements than it reads)."""
    tile_of = src_index // chunk
    order = np.lexsort((dst_index, tile_of))
    bounds = np.searchsorted(tile_of[order], np.arange(int(tile_of.max(initial=0)) + 2))
    tiles = []
    for t, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if lo == hi:
            continue
        s0 = t * chunk
        d, s = dst_index[order[lo:hi]], src_index[order[lo:hi]] - s0
        store = factor_strided(d)
        box = _box(store[1], elem) if store else None
        if box is None:
            return None, "a tile of this data movement does not fit one DMA box"
        gather = None
        if not np.array_equal(s, np.arange(s.size)):
            if s.size > room:
                return None, "a tile of this data movement gathers more elements than an abuf quarter holds"
            gather = factor_strided(s, max_dims=12)
            if gather is None:
                return None, "a tile of this data movement is not a strided gather"
        tiles.append((s0, min(s0 + chunk, total), store[0], box, gather))
    return tiles, ""


def _emit_copies(p, gather, dst: int, src: int, elem: int) -> None:
    """A gather of up to 4 loop levels is one ``copy``; deeper ones loop over the outer levels."""
    base, dims = gather
    outer, inner = dims[:-4], dims[-4:]
    inner = [(1, 0)] * (4 - len(inner)) + inner
    extents = [n for n, _ in inner]
    dstr = [int(np.prod(extents[i + 1:])) * elem for i in range(4)]
    p.copy_box(extents, [stride * elem for _, stride in inner], dstr, elem)
    block = int(np.prod(extents)) * elem
    for i, index in enumerate(np.ndindex(*[n for n, _ in outer])):
        offset = base + sum(k * stride for k, (_, stride) in zip(index, outer))
        p.emit("copy", buf="abuf", dst=dst + i * block, src=src + offset * elem)


def plan_moves(steps: list[Step], io, layouts: LayoutPlan) -> None:
    """Give every layout step its source tensor and, per result, the element map from it
    (``info["source"]``, ``info["maps"]``).  A move reading the only-used result of an earlier
    move reads that move's source through the composed map instead (a chain of moves is one
    move, an identity chain an alias), so the earlier move is left without readers."""
    producer = {id(r): (s, i) for s in steps if s.kind == "layout" for i, r in enumerate(s.ops[0].results)}
    outputs = {id(v) for _, v, _ in io.outputs}
    for step in steps:
        if step.kind != "layout":
            continue
        op = step.ops[0]
        source, *_ = op.operands
        maps = [layout_map(op, layouts, i) for i in range(len(op.results))]
        if id(source) in producer and len(source.users) == 1 and id(source) not in outputs:
            earlier, index = producer[id(source)]
            inner = earlier.info["maps"][index]
            maps = [inner[m] for m in maps]
            source = earlier.info["source"]
        step.info.update(source=source, maps=maps)
        step.inputs = [source]


def emit_layout(ctx: Context, step: Step, aliases: dict) -> None:
    op = step.ops[0]
    x = step.info["source"]
    last = None
    for i, r in enumerate(op.results):
        if id(r) in aliases or id(r) in step.info.get("unused", ()):
            continue
        mapping = step.info["maps"][i]
        ctx.emit_handed_store(last)
        ctx.begin_layer(f"{step.name}:{i}" if len(op.results) > 1 else step.name, 0,
                        (x.type.size + r.type.size) * ELEMENT_BYTES[x.type.dtype])
        last = emit_move(ctx, op, x, r, np.arange(mapping.size), mapping)
    ctx.hand_over_store(last)


def emit_concat(ctx: Context, step: Step) -> None:
    op = step.ops[0]
    y = op.result
    axis = op.axis % y.type.rank
    out_offsets = ctx.layouts.offsets(y)
    ctx.begin_layer(step.name, 0, 2 * y.type.size * ELEMENT_BYTES[y.type.dtype])
    scatters, start = [], 0
    for x in op.operands:
        extent = x.type.shape[axis]
        index = [slice(None)] * y.type.rank
        index[axis] = slice(start, start + extent)
        start += extent
        scatters.append(ctx.layouts.to_physical(out_offsets[tuple(index)], x).reshape(-1))
    if ctx.cores == 1 and _concat_on_chip(ctx, step, scatters):
        return
    # an operand larger than a core's share of the whole is moved by every core, a share of its
    # tiles each (DenseNet's growing concatenation: one large operand and a small one); the others
    # whole, each by one core (balanced_share)
    sizes = [x.type.size for x in op.operands]
    split = {i for i, n in enumerate(sizes) if ctx.cores > 1 and n * ctx.cores > sum(sizes)}
    whole = [i for i in range(len(sizes)) if i not in split]
    mine = split | {whole[j] for j in balanced_share([sizes[i] for i in whole], ctx.core, ctx.cores)}
    last = None
    for i, (x, scatter) in enumerate(zip(op.operands, scatters)):
        if i not in mine:
            continue
        rescale = step.info.get("rescale", {}).get(i)
        if rescale is not None:  # move the requantize's input, rescaled tile by tile
            x = rescale.x
            set_rescale(ctx, rescale, f"p:{rescale.result.name}", ctx.buffers.p(i))
        ctx.emit_handed_store(last)
        last = emit_move(ctx, op, x, y, scatter, np.arange(x.type.size), rescale, shared=i in split)
    ctx.hand_over_store(last)


def balanced_share(sizes: list[int], core: int, cores: int) -> set[int]:
    """The indices of the items (a concatenation's operands, each moved whole by one core) core
    ``core`` of ``cores`` takes: largest first, each to the core with the least so far (ties to the
    lower core), so no core waits at the step's barrier for far more than its share; one core
    takes them all."""
    loads, owner = [0] * cores, {}
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        least = min(range(cores), key=lambda c: (loads[c], c))
        owner[i] = least
        loads[least] += sizes[i]
    return {i for i, c in owner.items() if c == core}


def _block(scatter: np.ndarray) -> tuple[int, int, int, int] | None:
    """(base, rows, columns, row stride) if ``scatter`` places its elements as rows of contiguous
    columns at a fixed stride, else None."""
    size = scatter.size
    runs = np.flatnonzero(np.diff(scatter) != 1)
    cols = int(runs[0]) + 1 if runs.size else size
    rows = size // cols
    stride = int(scatter[cols] - scatter[0]) if rows > 1 else cols
    if rows * cols != size or stride < cols:
        return None
    expected = scatter[0] + stride * np.arange(rows)[:, None] + np.arange(cols)
    return (int(scatter[0]), rows, cols, stride) if np.array_equal(scatter.reshape(rows, cols), expected) else None


_PARAMS = 16  # pbuf alignment of each run's rescale parameters (12-byte triples)


def _runs(ctx: Context, xs: list, blocks: list, rescales: dict) -> list[list[int]]:
    """The operands in runs of consecutive indices that one load, one ``copy`` and one ``requant``
    move together: each operand of a run lies in DRAM right after the one before it and is placed
    right beside it (the same rows at the same stride, its columns following), and all of them are
    rescaled with the same registers or none is (a run's requantize then takes each operand's zero
    point as a per-column bias: ``requant_table``), and each is small enough that its load's latency
    outlasts its DRAM beats.  An operand abuf holds is a run of its own (its load is an on-chip
    copy, which a run's DMA would wait for its store to undo).  DenseNet's growing concatenations:
    twenty 8-channel operands, each a load whose 64-cycle latency the front end waited out, with a
    requantize and a copy of its own."""
    runs: list[list[int]] = []
    held = [ctx.program.held_at("abuf", ctx.addr(x), x.type.size * ELEMENT_BYTES[x.type.dtype], False) is not None
            for x in xs]
    for i in range(len(xs)):  # a run's operands are consecutive: the one before i ends the last run
        if i and not held[i] and not held[i - 1] and _continues(ctx, xs[i - 1], blocks[i - 1], xs[i], blocks[i],
                                                                  rescales.get(i - 1), rescales.get(i)):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _continues(ctx: Context, x, block, y, next_block, rescale, next_rescale) -> bool:
    base, rows, cols, stride = block
    next_base, next_rows, next_cols, next_stride = next_block
    size = x.type.size * ELEMENT_BYTES[x.type.dtype]
    small = ctx.target.dma_latency * ctx.target.dram_bytes_per_cycle  # a load whose latency outlasts its beats
    if size > small or y.type.size * ELEMENT_BYTES[y.type.dtype] > small:
        return False  # (each larger operand's post-unit work overlaps the next one's load)
    after = ctx.addr(x) + size
    if type(after) is not type(ctx.addr(y)) or after != ctx.addr(y) or x.type.dtype != y.type.dtype:
        return False
    if (rescale is None) != (next_rescale is None):
        return False
    if rescale is not None and _registers(rescale) != _registers(next_rescale):
        return False
    if rows == 1:  # single-row places: the run's places make one row
        return next_rows == 1 and next_base == base + cols
    return (next_rows, next_cols, next_stride) == (rows, cols, stride) and stride > cols and next_base == base + cols


def _registers(rescale) -> tuple:
    """The requantize registers a run's operands share (their zero points become per-column biases)."""
    return rescale.pre_shift, rescale.zero_point, rescale.qmin, rescale.qmax, rescale.rounding


def requant_table(rescales: list, columns: list[int]) -> np.ndarray:
    """The per-column (bias, multiplier, shift) triples of one requantize over several int8 operands
    side by side (``columns[i]`` columns each, with ``rq.src_zp`` 0): operand i's triple with bias
    ``-(zero_point << pre_shift)``, so each column's centred value ``(x << pre_shift) + bias`` is
    ``(x - zero_point) << pre_shift``, the value its own requantize centres -- the same integers."""
    rows = []
    for rescale, n in zip(rescales, columns):
        triple = rescale_params(rescale)[0].copy()
        triple[0] = -(int(rescale.x.type.quant.zero_point[0]) << int(rescale.pre_shift))
        rows.append(np.repeat(triple[None], n, axis=0))
    return np.concatenate(rows).astype("<i4")


def _per_column(run: list[int], blocks: list) -> bool:
    """Whether a rescaled run's requantize takes a triple per column: it writes rows of several
    operands, or a strided place (one triple serves a contiguous place of one operand)."""
    base, rows, cols, stride = blocks[run[0]]
    return len(run) > 1 or (rows > 1 and stride != cols)


def _copy_run(p, count: int, rows: int, cols: int, stride: int, elem: int, place: int, slot: int) -> None:
    """``count`` staged rows x cols tiles, one after another at ``slot``, into their places side by
    side at ``place`` (rows ``stride`` elements apart): one strided ``copy``."""
    p.copy_box((1, count, rows, cols), (0, rows * cols * elem, cols * elem, elem), (0, cols * elem, stride * elem, elem),
               elem)
    p.emit("copy", buf="abuf", dst=place, src=slot)


def _concat_on_chip(ctx: Context, step: Step, scatters: list[np.ndarray]) -> bool:
    """A concatenation whose result fits one abuf quarter, assembled there: its operands in runs
    (``_runs``), each run loaded whole (rescaled if the concat carries its requantize) and put into
    its rows and columns of the result, and the result stored once, contiguous -- instead of a store
    per operand whose rows are as narrow as its channels (a DMA beat per row).  A run whose place
    is one contiguous row (an unrolled LSTM's step outputs) goes there directly: loaded there, or
    rescaled from its staging slot into it; any other by one strided ``copy`` of its staged tile,
    rescaled in place after.  False when the result does not fit or an operand's place is not a
    strided block."""
    op, y = step.ops[0], step.ops[0].result
    elem = ELEMENT_BYTES[y.type.dtype]
    blocks = [_block(scatter) for scatter in scatters]
    if y.type.size * elem > ctx.buffers.abuf_q or any(block is None for block in blocks):
        return False
    b, p = ctx.buffers, ctx.program
    out = b.a_out(0)
    rescales = step.info.get("rescale", {})
    xs = [rescales[i].x if i in rescales else x for i, x in enumerate(op.operands)]
    runs = _runs(ctx, xs, blocks, rescales)
    # each run's rescale triples, one per column where its requantize writes rows of several
    # columns (a strided place, or several operands), else one: all side by side in one pbuf half
    # when they fit, loaded by one DMA before the first run, so no run's requantize waits for its
    # own parameter load
    shapes = {}  # first operand: (rows, columns, row stride) of the run's place
    for run in runs:
        base, rows, cols, stride = blocks[run[0]]
        shapes[run[0]] = (1, sum(blocks[i][2] for i in run), 0) if rows == 1 else (rows, len(run) * cols, stride)
    tables = {run[0]: requant_table([rescales[i] for i in run], [blocks[i][2] for i in run])
              if _per_column(run, blocks) else rescale_params(rescales[run[0]]) for run in runs if run[0] in rescales}
    offsets, size = {}, 0
    for first, table in tables.items():
        offsets[first], size = size, size + -(-table.nbytes // _PARAMS) * _PARAMS
    params = b.p(0) if size <= b.pbuf_h else None
    if params is None and any(_per_column(run, blocks) for run in runs if run[0] in rescales):
        return False  # (every operand's triple in a pbuf half of its own: emit_move's tiles)
    if params is not None and tables:
        data = np.zeros(size // 4, "<i4")
        for first, table in tables.items():
            data[offsets[first] // 4:offsets[first] // 4 + table.size] = table.reshape(-1)
        p.dma("load", "pbuf", params, ctx.constant(f"p:{y.name}:operands", data), rows=1, row_bytes=data.nbytes)
    # the runs are staged side by side in one quarter (their sizes add up to the result's): no run's
    # load waits for an earlier run's requantize and copy to be done with a shared slot
    slot = b.a_in(0)
    for run in runs:
        first, count = run[0], len(run)
        rows, cols, stride = shapes[first]
        nbytes = sum(xs[i].type.size for i in run) * elem
        place, addr = out + blocks[first][0] * elem, ctx.addr(xs[first])
        rescale = rescales.get(first)
        if rescale is None:
            contiguous = rows == 1 or stride == cols
            p.dma("load", "abuf", place if contiguous else slot, addr, rows=1, row_bytes=nbytes)
            if not contiguous:
                _copy_run(p, count, rows, cols // count, stride, elem, place, slot)
        else:
            if params is None:
                set_rescale(ctx, rescale, f"p:{rescale.result.name}", b.p(first))
            else:
                rescale_registers(ctx, rescale, params + offsets[first])
            if not _per_column(run, blocks):  # one triple over the whole contiguous place
                p.dma("load", "abuf", slot, addr, rows=1, row_bytes=nbytes)
                p.set({"rq.m": nbytes // elem})
                p.emit("requant", src="abuf", out="i8", rounding=rescale.rounding, dst=place, srcaddr=slot)
                slot += nbytes
                continue
            # rows x cols into the place; the zero points are in the triples' biases
            p.set({"rq.m": rows, "rq.n": cols, "rq.src_zp": 0, "rq.dst_row": max(stride, cols)})
            held = p.held_at("abuf", addr, nbytes) if count == 1 else None
            if held is not None and not out - nbytes < held < out + b.abuf_q:  # read where abuf holds it
                p.set({"rq.src_row": cols})
                source = held
            elif count == 1 or rows == 1:
                p.dma("load", "abuf", slot, addr, rows=1, row_bytes=nbytes)
                p.set({"rq.src_row": cols})
                source = slot
            else:  # operands side by side in the place first, then rescaled there
                p.dma("load", "abuf", slot, addr, rows=1, row_bytes=nbytes)
                _copy_run(p, count, rows, cols // count, stride, elem, place, slot)
                p.set({"rq.src_row": stride})
                source = place
            p.emit("requant", src="abuf", out="i8", rounding=rescale.rounding, dst=place, srcaddr=source)
        slot += nbytes
    ctx.hand_over_store((("abuf", out, ctx.addr(y)), {"rows": 1, "row_bytes": y.type.size * elem}))
    return True


LOOKUP_ROW_TOO_WIDE = "one table row does not fit the activation buffer"


def lookup_rows_per_tile(table, buffers) -> int:
    """Table rows one tile of an embedding lookup copies: as many as an abuf quarter holds, each
    with its 8-byte id in a pbuf half; 0 when not even one row fits (placement asks this too)."""
    row_bytes = table.type.shape[1] * ELEMENT_BYTES[table.type.dtype]
    return min(buffers.abuf_q // row_bytes, buffers.pbuf_h // 8)


def emit_lookup(ctx: Context, step: Step) -> None:
    """Embedding lookup by DMA: the ids go to pbuf, ``lookup`` copies the chosen table rows."""
    op = step.ops[0]
    table, ids = step.inputs
    y = step.outputs[0]
    rows, width = table.type.shape
    row_bytes = width * ELEMENT_BYTES[table.type.dtype]
    b, p = ctx.buffers, ctx.program
    per_tile = lookup_rows_per_tile(table, b)
    if per_tile < 1:
        raise unsupported(op, LOOKUP_ROW_TOO_WIDE)
    ctx.begin_layer(step.name, 0, ids.type.size * (8 + row_bytes) + y.type.size * ELEMENT_BYTES[y.type.dtype])
    p.set({"lk.rows": rows})
    for i, start in enumerate(range(0, ids.type.size, per_tile)):
        count = min(per_tile, ids.type.size - start)
        slot = b.a_in(i)
        p.dma("load", "pbuf", b.p(i), ctx.addr(ids) + 8 * start, rows=1, row_bytes=8 * count)
        p.set({"lk.index": b.p(i), "lk.count": count, "dma.row_bytes": row_bytes, "dma.dram_row": row_bytes,
               "dma.sram_row": row_bytes})
        p.emit("lookup", buf="abuf", sram=slot, dram=ctx.addr(table))
        p.dma("store", "abuf", slot, ctx.addr(y) + start * row_bytes, rows=1, row_bytes=count * row_bytes)
