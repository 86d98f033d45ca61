"""Choosing conv tiles with the cycle model: every (channel tile, row tile) that fits the buffer
halves is costed with the same formulas the simulator times instructions with
(docs/overlay-machine.md), and the cheapest is taken.

When not even one output row of one channel tile fits with the whole reduction on chip (wide
channel counts with large kernels, large depthwise kernels on wide maps), the slab holds a
channel subset: a convolution's reduction is split over input-channel chunks whose partial sums
stay in the accumulators (``accumulate = 1``), a depthwise convolution's slab holds only the
output channel tile's channels.  Only when even that fails (one output row of one channel does
not fit) is a larger target needed."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from tcc.ir.numerics import WeightFormat
from tcc.isa.cycles import dma_cycles, dram_beats, matmul_cycles, post_cycles
from tcc.isa.target import TargetConfig
from tcc.isa.weights import row_bytes

from .context import Buffers, core_share
from .epilogue import param_channels
from .tile_pipeline import Tile, pipeline_cycles


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def input_rows(oy0: int, rows: int, stride: int, pad: int, kernel: int, dilation: int, h: int):
    """The input rows that output rows [oy0, oy0 + rows) of a window read: (first, lo, hi), the
    first (negative inside the top padding) and the range [lo, hi) inside the h rows of the map."""
    first = oy0 * stride - pad
    last = first + (rows - 1) * stride + (kernel - 1) * dilation
    return first, max(first, 0), min(last + 1, h)


@dataclass(frozen=True)
class ConvGeometry:
    h: int
    w: int
    c: int
    n: int
    h_out: int
    w_out: int
    kh: int
    sh: int
    dh: int
    k: int  # reduction depth per output channel
    fmt: WeightFormat  # of the packed weights
    channel_step: int  # channel tiles are multiples of this (or all channels)
    kind: str = "conv"  # "conv" (group 1), "grouped" or "depthwise": which slab splits are possible
    own_columns: bool = False  # runs as dwconv or gconv: each array column reads its own channels
    residual: bool = False  # a fused residual add: each output tile loads its skip tile beside it
    lut: bool = False  # a fused table lookup on each output tile

    def output_limit(self, buffers: Buffers) -> int:
        """Bytes an output tile may take: an abuf quarter, half of one with a fused residual add."""
        return buffers.abuf_q // 2 if self.residual else buffers.abuf_q

    def rows_in(self, th: int) -> int:
        return min((th - 1) * self.sh + (self.kh - 1) * self.dh + 1, self.h)

    def wbytes(self, k: int) -> int:
        """Bytes of one packed weight row of ``k`` codes."""
        return row_bytes(k, self.fmt)

    def byte_aligned(self, channels: int) -> bool:
        """Whether ``channels`` codes fill whole bytes (a slab split needs its chunks to)."""
        return channels * self.fmt.bits % 8 == 0

    @property
    def taps(self) -> int:
        return self.k // self.c if self.kind == "conv" else self.k


def pixel_view(x_shape, y_shape, kernel, strides, pads) -> tuple[tuple, tuple]:
    """The (NCHW) shapes a conv's tiles are cut from.  A 1x1 stride-1 unpadded conv reads output
    pixel p from input pixel p alone, so its map is viewed as rows of the largest of 16, 8, 4, 2, 1
    pixels that divides it and is no wider than the map (so what fits one map row fits one view
    row): a row tile is then any multiple of those pixels, not of the map's width (a 7 x 7 map's
    49 pixels need not run as 2 passes of the array's 32 rows, one of them 17 rows full)."""
    if tuple(kernel) != (1, 1) or tuple(strides) != (1, 1) or any(pads):
        return tuple(x_shape), tuple(y_shape)
    n, c, h, w = x_shape
    pixels = h * w
    row = next(r for r in (16, 8, 4, 2, 1) if pixels % r == 0 and r <= w)
    return (n, c, pixels // row, row), (y_shape[0], y_shape[1], pixels // row, row)


def conv_geometry(x_shape, w_shape, y_shape, strides, dilations, group: int, fmt: WeightFormat,
                  buffers: Buffers, residual: bool = False, lut: bool = False) -> ConvGeometry:
    """The tile search's view of a 2-D convolution (NCHW activations, OIHW weights stored in
    ``fmt``).  Channel tiles of whole groups share the array's columns in one gconv pass when one
    group's weights fit a wbuf half (otherwise each group takes conv passes of its own)."""
    _, c_in, h, wid = x_shape
    _, n_out, h_out, w_out = y_shape
    kh, kw = w_shape[2], w_shape[3]
    depthwise = group == c_in and n_out == c_in and group > 1
    cg, ng = c_in // group, n_out // group
    k = kh * kw if depthwise else kh * kw * cg
    packed_groups = group > 1 and not depthwise and ng * row_bytes(k, fmt) <= buffers.wbuf_h
    step_n = ng if packed_groups or group > 1 and not depthwise and ng < 32 else 32
    kind = "depthwise" if depthwise else "grouped" if group > 1 else "conv"
    return ConvGeometry(h, wid, c_in, n_out, h_out, w_out, kh, strides[0], dilations[0], k, fmt, step_n, kind,
                        depthwise or packed_groups, residual, lut)


@dataclass(frozen=True)
class ConvTiles:
    tn: int
    th: int
    cycles: int
    tc: int = 0  # slab channels per tile when the slab holds a subset (0: all g.c channels)
    first: int = 0  # output rows of the first row tile (0: th)

    def rows(self, h_out: int) -> list[tuple[int, int]]:
        return row_tiles(h_out, self.th, self.first)


def row_tiles(total: int, th: int, first: int = 0) -> list[tuple[int, int]]:
    """(first row, rows) of each row tile: ``first`` rows (th when 0), then th at a time, the last
    tile what is left.  A short first tile gives the array its first operands sooner (the layer's
    start waits for one tile's loads); the remainder it leaves sets the last tile, whose requantize
    and store follow the layer's last matmul."""
    out, at = [], 0
    while at < total:
        rows = min(first or th if at == 0 else th, total - at)
        out.append((at, rows))
        at += rows
    return out


def first_rows(total: int, th: int) -> list[int]:
    """Candidate first tiles for row tiles of ``th``: a few short ones, and those that leave a
    short last tile."""
    short = {1, 2, th // 4, th // 2}
    short |= {(total - last) % th for last in (1, 2, max(th // 4, 1), max(th // 2, 1))}
    return sorted(f for f in short if 0 < f < th)


def column_parts(g: ConvGeometry, m: int, nt: int, target: TargetConfig) -> list[int] | None:
    """The output channels of a group-1 conv tile of ``m`` pixels and ``nt`` channels as one-group
    gconvs side by side (every column reads the whole slab), whose idle columns split the
    reduction (isa/cycles.py), when that is cheaper than one conv matmul (None): all ``nt`` as one
    gconv (8 channels take 4 columns each), or the last pass's channels as parts of powers of two,
    each filling the array's columns (24 channels as 16 + 8 take 16 and 8 of the 32 columns,
    reducing 2 and 4 slices of K at a time, where one conv pass leaves 8 idle; 12 as 8 + 4, where
    one gconv of 12 reduces 2 slices in 24 columns)."""
    rest = nt % target.array_cols
    if g.kind != "conv" or not rest or g.k <= 1:
        return None
    powers = [1 << b for b in range(rest.bit_length() - 1, -1, -1) if rest >> b & 1]  # 12 = 8 + 4
    choices = [[nt], [nt - rest + powers[0], *powers[1:]]]
    best = min(choices, key=lambda parts: sum(matmul_cycles(target, m, n, g.k, g.fmt, True) for n in parts))
    if sum(matmul_cycles(target, m, n, g.k, g.fmt, True) for n in best) < matmul_cycles(target, m, nt, g.k, g.fmt):
        return best
    return None


def tile_matmul_cycles(g: ConvGeometry, m: int, nt: int, target: TargetConfig) -> int:
    """The matmuls of one whole-slab conv tile of ``m`` output pixels and ``nt`` channels."""
    parts = column_parts(g, m, nt, target)
    if parts is None:
        return matmul_cycles(target, m, nt, g.k, g.fmt, g.own_columns)
    return sum(matmul_cycles(target, m, n, g.k, g.fmt, True) for n in parts)


def param_loads(target: TargetConfig, nt: int, fmt: WeightFormat) -> tuple[int, int]:
    """The transfers loading a tile's per-channel parameters into pbuf: the requantization
    triples, and for a per-row DyBit format the rows' caps (a byte each; 0: no transfer)."""
    return dma_cycles(target, 1, nt * 12), dma_cycles(target, 1, nt) if fmt.row_caps else 0


def estimate(g: ConvGeometry, tn: int, th: int, target: TargetConfig, tc: int = 0, first: int = 0) -> int:
    """Modeled cycles of the tile loop: the busiest unit's total, or the DRAM channel's beats that
    the load and store units share, if more (shared by the target's cores when there are tiles for
    them), plus the first load and last store that cannot overlap anything (double buffering
    overlaps the rest).  ``tc`` and ``first`` as in ConvTiles.  Tiles of the same size cost the
    same, so each size is costed once and counted (at most two channel tile sizes by three row
    tile sizes, where a loop over the tiles took most of a ResNet-50 compile's tile search)."""
    chunks = [min(tc, g.c - c0) for c0 in range(0, g.c, tc)] if tc and g.kind == "conv" else [0]
    rows = row_tiles(g.h_out, th, first)
    row_counts = Counter(r for _, r in rows)
    channel_counts = Counter(min(tn, g.n - n0) for n0 in range(0, g.n, tn))
    totals = [0, 0, 0, 0, 0]  # load, compute, post, store, dram beats
    for nt, n_count in channel_counts.items():
        opening = _channel_tile_loads(g, nt, len(chunks) > 1, target)
        totals[0] += n_count * sum(opening)
        totals[4] += n_count * sum(dram_beats(target, t) for t in opening)
        for r, r_count in row_counts.items():
            for i, cycles in enumerate(_tile_costs(g, nt, r, chunks, tc, target)[:5]):
                totals[i] += n_count * r_count * cycles
    first_nt, last_nt = min(tn, g.n), g.n - (_ceil(g.n, tn) - 1) * tn
    first_load = sum(_channel_tile_loads(g, first_nt, len(chunks) > 1, target)) + \
        _tile_costs(g, first_nt, rows[0][1], chunks, tc, target)[5]
    last_store = _tile_costs(g, last_nt, rows[-1][1], chunks, tc, target)[3]
    spread = min(target.cores, _ceil(g.n, tn) * len(rows))  # cores sharing the tiles
    return _ceil(max(totals), spread) + first_load + last_store


def _channel_tile_loads(g: ConvGeometry, nt: int, split: bool, target: TargetConfig) -> tuple[int, ...]:
    """The transfers opening a channel tile of ``nt`` channels: its parameters, and its weights
    unless the slab is split (each chunk then loads its own)."""
    return param_loads(target, nt, g.fmt) + (0 if split else dma_cycles(target, 1, nt * g.wbytes(g.k)),)


def _tile_costs(g: ConvGeometry, nt: int, rows: int, chunks: list[int], tc: int,
                target: TargetConfig) -> tuple[int, int, int, int, int, int]:
    """One output tile of ``nt`` channels and ``rows`` output rows: its load, compute, post and store
    units' cycles, its DRAM beats, and the loads before its first matmul."""
    m = rows * g.w_out
    pixels = g.rows_in(rows) * g.w
    load = compute = dram = first_loads = 0
    for cn in chunks:
        if len(chunks) > 1:  # each chunk's weights: nt x taps rows of cn elements
            transfers: tuple[int, ...] = (dma_cycles(target, nt * g.taps, g.wbytes(cn)), dma_cycles(target, pixels, cn))
            compute += matmul_cycles(target, m, nt, g.taps * cn, g.fmt, g.own_columns)
        else:
            transfers = (dma_cycles(target, pixels, nt) if tc else dma_cycles(target, 1, pixels * g.c),)
            compute += matmul_cycles(target, m, nt, g.k, g.fmt, g.own_columns) if tc else \
                tile_matmul_cycles(g, m, nt, target)
        load += sum(transfers)
        dram += sum(dram_beats(target, t) for t in transfers)
        first_loads = first_loads or load
    post = post_cycles(target, m * nt)
    store = dma_cycles(target, 1, m * nt) if nt == g.n else dma_cycles(target, m, nt)
    dram += dram_beats(target, store)
    if g.residual:  # the skip tile comes in as the output tile goes out; eadd on the post unit
        load += store
        dram += dram_beats(target, store)
        post += post_cycles(target, m * nt)
    if g.lut:
        post += post_cycles(target, m * nt)
    return load, compute, post, store, dram, first_loads


def pipeline_tiles(g: ConvGeometry, tn: int, th: int, target: TargetConfig, tc: int = 0, first: int = 0) -> list[Tile]:
    """The tile loop of emit_conv (or its slab-split form) as tile_pipeline.Tile records in emission
    order, every core's (one record per distinct tile: equal tiles are the same object)."""
    chunks = [min(tc, g.c - c0) for c0 in range(0, g.c, tc)] if tc and g.kind == "conv" else [0]
    made: dict[tuple[int, int, bool], Tile] = {}

    def tile(nt: int, rows: int, opening: bool) -> Tile:
        key = (nt, rows, opening)
        if key not in made:
            made[key] = _pipeline_tile(g, nt, rows, opening, chunks, tc, target)
        return made[key]

    out = [tile(min(tn, g.n - n0), rows, index == 0)
           for n0 in range(0, g.n, tn) for index, (_, rows) in enumerate(row_tiles(g.h_out, th, first))]
    return out


def busiest_share_cycles(target: TargetConfig, tiles: list[Tile]) -> int:
    """The tile loop's modeled cycles on its busiest core: each core runs its contiguous share
    (context.core_share) as a pipeline.  Shares of unequal tiles (a short first row tile, a short
    last channel tile) are costed each: taking the first share as every core's made ResNet-50's
    14 x 14 convs on 8 cores choose a 2-row first tile that one core ran while another ran 12 rows
    (7,330 against 27,686 cycles)."""
    costed: dict[tuple, int] = {}
    for core in range(target.cores):
        mine = core_share(core, target.cores, len(tiles))
        share = tiles[mine.start:mine.stop]
        key = tuple(map(id, share))
        if share and key not in costed:
            costed[key] = pipeline_cycles(target, share)
    return max(costed.values(), default=0)


def _pipeline_tile(g: ConvGeometry, nt: int, rows: int, opening: bool, chunks: list[int], tc: int,
                   target: TargetConfig) -> Tile:
    """One output tile of ``nt`` channels and ``rows`` output rows; ``opening``: the first of its
    channel tile (which loads the tile's weights and parameters)."""
    params, caps = param_loads(target, nt, g.fmt)
    weights = () if len(chunks) > 1 else (dma_cycles(target, 1, nt * g.wbytes(g.k)),)
    late = (params,) + ((dma_cycles(target, 1, 256),) if g.lut else ())
    m = rows * g.w_out
    pixels = g.rows_in(rows) * g.w
    loads: tuple[tuple[int, ...], ...]
    if len(chunks) > 1:
        loads = tuple((dma_cycles(target, pixels, cn), dma_cycles(target, nt * g.taps, g.wbytes(cn)))
                      for cn in chunks)
        matmuls = tuple(matmul_cycles(target, m, nt, g.taps * cn, g.fmt) for cn in chunks)
    else:
        loads = ((dma_cycles(target, pixels, nt) if tc else dma_cycles(target, 1, pixels * g.c),),)
        matmuls = (matmul_cycles(target, m, nt, g.k, g.fmt, g.own_columns) if tc else
                   tile_matmul_cycles(g, m, nt, target),)
    store = dma_cycles(target, 1, m * nt) if nt == g.n else dma_cycles(target, m, nt)
    return Tile(weights + ((caps,) if caps else ()) if opening else (), loads, matmuls,
                late if opening else (), post_cycles(target, m * nt), store if g.residual else 0,
                post_cycles(target, m * nt) * (g.residual + g.lut), store)


def conv_tiles_exist(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> bool:
    """Whether ``choose_conv_tiles`` finds a tiling: the same candidates, stopping at the first,
    without timing any (placement and the limits check ask only this)."""
    return bool(_whole_slab_tiles(g, buffers, target, first=True) or _split_slab_tiles(g, buffers, target, first=True))


def choose_conv_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> ConvTiles | None:
    """The (channel tile, row tile) that fits, or None if not even one row fits, with the whole
    reduction on chip if possible, else with the slab split (see the module docstring): the few
    cheapest by ``estimate``, each with a few first tiles, timed as a pipeline (tile_pipeline.py),
    the fastest of those."""
    candidates = _whole_slab_tiles(g, buffers, target) or _split_slab_tiles(g, buffers, target)
    if not candidates:
        return None
    best = None
    for tiles in sorted(candidates, key=lambda t: t.cycles)[:PIPELINE_TRIALS]:
        for first in [0] + first_rows(g.h_out, tiles.th):
            cycles = busiest_share_cycles(target, pipeline_tiles(g, tiles.tn, tiles.th, target, tiles.tc, first))
            if best is None or cycles < best.cycles:
                best = ConvTiles(tiles.tn, tiles.th, cycles, tiles.tc, first)
    return best


def channel_idle_cycles(g: ConvGeometry, tiles: ConvTiles, target: TargetConfig,
                        emitted: tuple[frozenset[int], bool] | None = None) -> int:
    """Cycles of the chosen tile loop (as tile_pipeline.py schedules it) in which the DRAM channel
    carries none of its transfers: where a later layer's weights may load (Context.mark_for_weights).
    ``emitted``: the loop as emit_conv emitted it, (the tiles whose slab was read where abuf holds
    it, whether the weights loaded before the layer): those loads are not in its code, nor is the
    last tile's store, which goes to the next step (LaterStore.hand_over)."""
    loop = pipeline_tiles(g, tiles.tn, tiles.th, target, tiles.tc, tiles.first)
    cycles = tiles.cycles
    if emitted is not None:
        in_place, weights_early = emitted
        loop = [replace(tile, loads=((),) * len(tile.loads) if i in in_place else tile.loads,
                        first_loads=() if weights_early and i == 0 else tile.first_loads,
                        store=0 if i == len(loop) - 1 else tile.store)
                for i, tile in enumerate(loop)]
        cycles = pipeline_cycles(target, loop)
    beats = sum(dram_beats(target, c) for tile in loop
                for c in (*tile.first_loads, *(c for t in tile.loads for c in t), *tile.late_loads, tile.skip,
                          tile.store))
    return max(cycles - beats, 0)


PIPELINE_TRIALS = 16  # tilings, cheapest by ``estimate`` first, timed as a pipeline


def _param_limit(tn: int, g: ConvGeometry, buffers: Buffers) -> int:
    """``tn`` output channels, or fewer (whole channel steps) so that their parameters fit a pbuf half."""
    limit = param_channels(buffers.pbuf_h)
    if tn <= limit:
        return tn
    return max(limit // g.channel_step * g.channel_step, min(limit, g.channel_step))


def _whole_slab_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig, first: bool = False) -> list[ConvTiles]:
    tn_max = g.n if g.n * g.wbytes(g.k) <= buffers.wbuf_h else \
        (buffers.wbuf_h // g.wbytes(g.k)) // g.channel_step * g.channel_step
    tn_max = _param_limit(tn_max, g, buffers)
    if tn_max < 1:
        return []
    channel_tiles = sorted({tn_max} | set(range(g.channel_step, tn_max + 1, max(g.channel_step, 32))))
    out = []
    for tn in channel_tiles:
        for th in range(1, g.h_out + 1):
            if (g.rows_in(th) * g.w * g.c > buffers.abuf_q or th * g.w_out * tn > g.output_limit(buffers)
                    or th * g.w_out * tn * 4 > buffers.acc_h):
                break
            if first:
                return [ConvTiles(tn, th, 0)]
            out.append(ConvTiles(tn, th, estimate(g, tn, th, target)))
    return out


def _split_slab_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig, first: bool = False) -> list[ConvTiles]:
    """Slab channel subsets: input-channel chunks of a group-1 conv (the few largest chunk sizes
    that fit), or the output channel tile's own channels for a depthwise conv."""
    if g.kind == "grouped":
        return []
    rows_one = g.rows_in(1) * g.w
    if g.kind == "depthwise":
        tn_max = _param_limit(min(g.n, buffers.abuf_q // rows_one, buffers.wbuf_h // g.wbytes(g.k)), g, buffers)
        options = [(tn, tn) for tn in sorted({tn_max} | set(range(32, tn_max + 1, 32))) if tn >= 1]
    else:
        fitting = [tc for tc in sorted({_ceil(g.c, parts) for parts in range(2, g.c + 1)}, reverse=True)
                   if tc * rows_one <= buffers.abuf_q and g.byte_aligned(tc) and g.byte_aligned(g.c)
                   and min(g.n, g.channel_step) * g.taps * g.wbytes(tc) <= buffers.wbuf_h]
        options = []
        for tc in fitting[:3]:
            tn_max = _param_limit(min(g.n, buffers.wbuf_h // (g.taps * g.wbytes(tc))), g, buffers)
            if tn_max > g.channel_step:
                tn_max = tn_max // g.channel_step * g.channel_step
            options += [(tn, tc) for tn in sorted({tn_max} | set(range(32, tn_max + 1, 64)))]
    out = []
    for tn, tc in options:
        for th in range(1, g.h_out + 1):
            if g.rows_in(th) * g.w * tc > buffers.abuf_q or th * g.w_out * tn > g.output_limit(buffers) \
                    or th * g.w_out * tn * 4 > buffers.acc_h:
                break
            if first:
                return [ConvTiles(tn, th, 0, tc)]
            out.append(ConvTiles(tn, th, estimate(g, tn, th, target, tc), tc))
    return out


@dataclass(frozen=True)
class GemmTiles:
    """Output tiles of ``tm`` rows x ``tn`` columns, the reduction in chunks of ``kt``;
    ``resident``: the whole A operand (one row tile) is loaded once and every chunk reads it in place."""

    tn: int
    tm: int
    kt: int
    resident: bool
    cycles: int


def _sizes(total: int, tile: int) -> list[tuple[int, int]]:
    """(size, count) of the tiles of ``total`` in steps of ``tile``: the full ones and the remainder."""
    full, rest = divmod(total, tile)
    return [(s, c) for s, c in ((tile, full), (rest, 1)) if c and s]


def estimate_gemm(m: int, n: int, k: int, fmt: WeightFormat, tn: int, tm: int, kt: int, resident: bool,
                  target: TargetConfig, weights_early: bool = False, input_on_chip: bool = False,
                  epilogue: int = 1) -> int:
    """Modeled cycles of emit_gemm's tile loop (n tiles outer, m tiles, reduction chunks inner;
    weights pre-tiled in DRAM so each chunk is one contiguous transfer), as ``estimate``: the
    busiest unit (or the shared DRAM channel) plus the first load and the last store.  Each tile's
    requantize is followed by ``epilogue - 1`` fused steps on the post unit (epilogue.py: a lut, a
    residual add), which count on it and, for the largest tile, after the array's last product (the
    next product waits for them; the last tile's instead favoured an uneven split into a small last
    one, slower in ViT-tiny's feed-forward block; counting the requantize there too made ViT-tiny's
    and BERT's choices slower).  With
    ``weights_early`` the first tile's weights and parameters are loaded before its input is there
    (a recurrence's step: the load unit is idle while the tiny layers before it run), so only the
    input's load is first: a reduction split in chunks then costs its chunks' serial products.
    With ``input_on_chip`` (abuf holds the whole input in one range: a product's whole map,
    resident.py) a resident tiling of one column tile reads it where it is: no load at all (over
    several row tiles emit_gemm does so where their output quarters leave it, else loads it once)."""
    chunks = _sizes(k, kt)
    single = len(chunks) == 1 and chunks[0][1] == 1
    in_place = resident and input_on_chip and tn >= n
    load = dma_cycles(target, 1, m * k) if resident and not in_place else 0
    dram = dram_beats(target, load)  # the beats of loads and stores, which share the DRAM channel
    compute = post = store = 0
    first_load = last_store = last_post = 0
    for nt, n_count in _sizes(n, tn):
        params, weights = param_loads(target, nt, fmt), dma_cycles(target, 1, nt * row_bytes(k, fmt)) if single else 0
        per_n = sum(params) + weights
        dram += n_count * (sum(dram_beats(target, t) for t in params) + dram_beats(target, weights))
        for mt, m_count in _sizes(m, tm):
            per_m = 0
            for kc, k_count in chunks:
                a_load = 0 if resident else dma_cycles(target, 1 if kc == k else mt, mt * kc if kc == k else kc)
                w_load = 0 if single else dma_cycles(target, 1, nt * row_bytes(kc, fmt))
                per_m += k_count * (a_load + w_load)
                dram += n_count * m_count * k_count * (dram_beats(target, a_load) + dram_beats(target, w_load))
                compute += n_count * m_count * k_count * matmul_cycles(target, mt, nt, kc, fmt)
                first_load = first_load or load + (0 if weights_early else per_n + w_load) + a_load
            per_n += m_count * per_m
            post += n_count * m_count * epilogue * post_cycles(target, mt * nt)
            last_post = max(last_post, (epilogue - 1) * post_cycles(target, mt * nt))
            last_store = dma_cycles(target, 1, mt * nt) if nt == n else dma_cycles(target, mt, nt)
            store += n_count * m_count * last_store
            dram += n_count * m_count * dram_beats(target, last_store)
        load += n_count * per_n
    spread = min(target.cores, _ceil(n, tn) * _ceil(m, tm))  # cores sharing the tiles
    return _ceil(max(load, compute, post, store, dram), spread) + first_load + last_post + last_store


def choose_gemm_tiles(m: int, n: int, k: int, fmt: WeightFormat, buffers: Buffers, target: TargetConfig,
                      out_bytes: int = 1, weights_early: bool = False, input_on_chip: bool = False,
                      epilogue: int = 1) -> GemmTiles:
    """The cheapest gemm tiling that fits the buffer halves: column tiles in multiples of the array
    width, the reduction whole or in the few largest chunks that fit, as many rows as fit (of
    ``out_bytes``-byte results: 4 for int32 accumulators leaving the model) or, where the input
    loads by row tile, a half or a quarter of them in multiples of the array's rows (the first
    tiles' epilogues then run under the next tiles' products: ConvNeXt's GELU ``lut``); ``epilogue``
    as for ``estimate_gemm``; ``weights_early`` as
    for ``estimate_gemm``.  With ``input_on_chip`` the cheapest tiles, if they are one column tile
    with the input in chunks, read the whole input where abuf holds it instead (``estimate_gemm``'s
    ``input_on_chip``; as many rows a tile as fit, or as many as those tiles had) when that is
    cheaper: each chunk's copy would wait on the post unit behind the producer's last requantize.  Only the input's reading changes: the search itself does not
    know which of its other candidates the early weight loads (``Context.early_weights``) favour."""
    widest = min(n, param_channels(buffers.pbuf_h))  # a tile's parameters fit a pbuf half
    columns = sorted({widest} | set(range(target.array_cols, widest, target.array_cols)))
    chunk_sizes = sorted({_ceil(k, parts) for parts in range(1, k + 1)}, reverse=True)
    best = None
    for tn in columns:
        kts = [kt for kt in chunk_sizes if tn * row_bytes(kt, fmt) <= buffers.wbuf_h][:4]
        for kt in kts:
            rows_fit = min(buffers.acc_h // (4 * tn), buffers.abuf_q // (tn * out_bytes))
            for resident in ((True, False) if m * k <= buffers.abuf_q else (False,)):
                most = min(m, rows_fit, buffers.abuf_q // (k if resident else kt))
                if most < 1 or resident and most < m:
                    continue
                # fewer rows too where the input loads by row tile: the last tile's epilogue is shorter
                fewer = () if resident else \
                    (t for t in (_ceil(m, 2), _ceil(m, 4)) if t < most and t % target.array_rows == 0)
                for tm in (most, *fewer):
                    cycles = estimate_gemm(m, n, k, fmt, tn, tm, kt, resident, target, weights_early, epilogue=epilogue)
                    if best is None or cycles < best.cycles:
                        best = GemmTiles(tn, tm, kt, resident, cycles)
    if best is None:
        raise ValueError(f"no gemm tiling of {m} x {n} x {k} fits the buffers")
    if input_on_chip and not best.resident and best.tn >= n and m * k <= buffers.abuf_q \
            and min(m, buffers.acc_h // (4 * best.tn), buffers.abuf_q // (best.tn * out_bytes)) >= m:
        for tm in sorted({m, best.tm}):
            cycles = estimate_gemm(m, n, k, fmt, best.tn, tm, best.kt, True, target, weights_early, True, epilogue)
            if cycles < best.cycles:
                best = GemmTiles(best.tn, tm, best.kt, True, cycles)
    return best


def stream_tile(total: int, limit: int, target: TargetConfig, inputs: int = 1, unit: int = 1) -> int:
    """Units per tile for a stream of ``total`` units of ``unit`` bytes (each tile: ``inputs`` loads,
    one post-unit instruction, one store), at most ``limit``: the size with the least modeled time,
    the load unit's total or the beats of all transfers on the shared DRAM channel, whichever is
    more, plus the first tile's loads and the last tile's store.  One tile is serial (load, then
    process, then store); a few overlap one tile's store with the next one's load, each paying the
    transfer latency once more."""
    def cycles(tile: int) -> int:
        full, rest = divmod(total, tile)
        one, last = dma_cycles(target, 1, tile * unit), dma_cycles(target, 1, rest * unit) if rest else 0
        transfers = full * one + last
        beats = (inputs + 1) * (full * dram_beats(target, one) + dram_beats(target, last))
        return max(inputs * transfers, transfers, beats) + inputs * one + (last or one)

    fewest = _ceil(total, limit)
    sizes = {min(limit, _ceil(total, count)) for count in range(fewest, fewest + 32)}
    return min(sorted(sizes, reverse=True), key=cycles)
