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

from dataclasses import dataclass

from tcc.ir.numerics import WeightFormat
from tcc.isa.cycles import dma_cycles, dram_beats, matmul_cycles, post_cycles
from tcc.isa.target import TargetConfig
from tcc.isa.weights import row_bytes

from .context import Buffers


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


def param_loads(target: TargetConfig, nt: int, fmt: WeightFormat) -> tuple[int, int]:
    """The transfers loading a tile's per-channel parameters into pbuf: the requantization
    triples, and for a per-row DyBit format the rows' caps (a byte each; 0: no transfer)."""
    return dma_cycles(target, 1, nt * 12), dma_cycles(target, 1, nt) if fmt.row_caps else 0


def estimate(g: ConvGeometry, tn: int, th: int, target: TargetConfig, tc: int = 0) -> int:
    """Modeled cycles of the tile loop: the busiest unit's total, or the DRAM channel's beats that
    the load and store units share, if more (shared by the target's cores when there are tiles for
    them), plus the first load and last store that cannot overlap anything (double buffering
    overlaps the rest).  ``tc`` as in ConvTiles."""
    load = compute = post = store = dram = 0
    first_load = last_store = 0
    chunks = [(c0, min(tc, g.c - c0)) for c0 in range(0, g.c, tc)] if tc and g.kind == "conv" else [(0, 0)]

    def loaded(*transfers: int) -> int:
        nonlocal dram
        dram += sum(dram_beats(target, t) for t in transfers)
        return sum(transfers)

    for n0 in range(0, g.n, tn):
        nt = min(tn, g.n - n0)
        load += loaded(*param_loads(target, nt, g.fmt),
                       0 if len(chunks) > 1 else dma_cycles(target, 1, nt * g.wbytes(g.k)))
        for oy0 in range(0, g.h_out, th):
            rows = min(th, g.h_out - oy0)
            m = rows * g.w_out
            pixels = g.rows_in(rows) * g.w
            for _, cn in chunks:
                if len(chunks) > 1:  # each chunk's weights: nt x taps rows of cn elements
                    load += loaded(dma_cycles(target, nt * g.taps, g.wbytes(cn)), dma_cycles(target, pixels, cn))
                    k = g.taps * cn
                else:
                    load += loaded(dma_cycles(target, pixels, nt) if tc else dma_cycles(target, 1, pixels * g.c))
                    k = g.k
                first_load = first_load or load
                compute += matmul_cycles(target, m, nt, k, g.fmt, g.own_columns)
            post += post_cycles(target, m * nt)
            last_store = dma_cycles(target, 1, m * nt) if nt == g.n else dma_cycles(target, m, nt)
            store += loaded(last_store)
            if g.residual:  # the skip tile comes in as the output tile goes out; eadd on the post unit
                load += loaded(last_store)
                post += post_cycles(target, m * nt)
            if g.lut:
                post += post_cycles(target, m * nt)
    spread = min(target.cores, _ceil(g.n, tn) * _ceil(g.h_out, th))  # cores sharing the tiles
    return _ceil(max(load, compute, post, store, dram), spread) + first_load + last_store


def choose_conv_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> ConvTiles | None:
    """The cheapest (channel tile, row tile) that fits, or None if not even one row fits, with the
    whole reduction on chip if possible, else with the slab split (see the module docstring)."""
    return _whole_slab_tiles(g, buffers, target) or _split_slab_tiles(g, buffers, target)


def _whole_slab_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> ConvTiles | None:
    tn_max = g.n if g.n * g.wbytes(g.k) <= buffers.wbuf_h else \
        (buffers.wbuf_h // g.wbytes(g.k)) // g.channel_step * g.channel_step
    if tn_max < 1:
        return None
    channel_tiles = sorted({tn_max} | set(range(g.channel_step, tn_max + 1, max(g.channel_step, 32))))
    best = None
    for tn in channel_tiles:
        for th in range(1, g.h_out + 1):
            if (g.rows_in(th) * g.w * g.c > buffers.abuf_q or th * g.w_out * tn > g.output_limit(buffers)
                    or th * g.w_out * tn * 4 > buffers.acc_h):
                break
            cycles = estimate(g, tn, th, target)
            if best is None or cycles < best.cycles:
                best = ConvTiles(tn, th, cycles)
    return best


def _split_slab_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> ConvTiles | None:
    """Slab channel subsets: input-channel chunks of a group-1 conv (the few largest chunk sizes
    that fit), or the output channel tile's own channels for a depthwise conv."""
    if g.kind == "grouped":
        return None
    rows_one = g.rows_in(1) * g.w
    if g.kind == "depthwise":
        tn_max = min(g.n, buffers.abuf_q // rows_one, buffers.wbuf_h // g.wbytes(g.k))
        options = [(tn, tn) for tn in sorted({tn_max} | set(range(32, tn_max + 1, 32))) if tn >= 1]
    else:
        fitting = [tc for tc in sorted({_ceil(g.c, parts) for parts in range(2, g.c + 1)}, reverse=True)
                   if tc * rows_one <= buffers.abuf_q and g.byte_aligned(tc) and g.byte_aligned(g.c)
                   and min(g.n, g.channel_step) * g.taps * g.wbytes(tc) <= buffers.wbuf_h]
        options = []
        for tc in fitting[:3]:
            tn_max = min(g.n, buffers.wbuf_h // (g.taps * g.wbytes(tc)))
            if tn_max > g.channel_step:
                tn_max = tn_max // g.channel_step * g.channel_step
            options += [(tn, tc) for tn in sorted({tn_max} | set(range(32, tn_max + 1, 64)))]
    best = None
    for tn, tc in options:
        for th in range(1, g.h_out + 1):
            if g.rows_in(th) * g.w * tc > buffers.abuf_q or th * g.w_out * tn > g.output_limit(buffers) \
                    or th * g.w_out * tn * 4 > buffers.acc_h:
                break
            cycles = estimate(g, tn, th, target, tc)
            if best is None or cycles < best.cycles:
                best = ConvTiles(tn, th, cycles, tc)
    return best


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
                  target: TargetConfig) -> int:
    """Modeled cycles of emit_gemm's tile loop (n tiles outer, m tiles, reduction chunks inner;
    weights pre-tiled in DRAM so each chunk is one contiguous transfer), as ``estimate``: the
    busiest unit (or the shared DRAM channel) plus the first load and the last store."""
    chunks = _sizes(k, kt)
    single = len(chunks) == 1 and chunks[0][1] == 1
    load = dma_cycles(target, 1, m * k) if resident else 0
    dram = dram_beats(target, load)  # the beats of loads and stores, which share the DRAM channel
    compute = post = store = 0
    first_load = last_store = 0
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
                first_load = first_load or load + per_n + a_load + w_load
            per_n += m_count * per_m
            post += n_count * m_count * post_cycles(target, mt * nt)
            last_store = dma_cycles(target, 1, mt * nt) if nt == n else dma_cycles(target, mt, nt)
            store += n_count * m_count * last_store
            dram += n_count * m_count * dram_beats(target, last_store)
        load += n_count * per_n
    spread = min(target.cores, _ceil(n, tn) * _ceil(m, tm))  # cores sharing the tiles
    return _ceil(max(load, compute, post, store, dram), spread) + first_load + last_store


def choose_gemm_tiles(m: int, n: int, k: int, fmt: WeightFormat, buffers: Buffers, target: TargetConfig,
                      out_bytes: int = 1) -> GemmTiles:
    """The cheapest gemm tiling that fits the buffer halves: column tiles in multiples of the array
    width, the reduction whole or in the few largest chunks that fit, as many rows as fit (of
    ``out_bytes``-byte results: 4 for int32 accumulators leaving the model)."""
    columns = sorted({n} | set(range(target.array_cols, n, target.array_cols)))
    chunk_sizes = sorted({_ceil(k, parts) for parts in range(1, k + 1)}, reverse=True)
    best = None
    for tn in columns:
        kts = [kt for kt in chunk_sizes if tn * row_bytes(kt, fmt) <= buffers.wbuf_h][:4]
        for kt in kts:
            rows_fit = min(buffers.acc_h // (4 * tn), buffers.abuf_q // (tn * out_bytes))
            for resident in ((True, False) if m * k <= buffers.abuf_q else (False,)):
                tm = min(m, rows_fit, buffers.abuf_q // (k if resident else kt))
                if tm < 1 or resident and tm < m:
                    continue
                cycles = estimate_gemm(m, n, k, fmt, tn, tm, kt, resident, target)
                if best is None or cycles < best.cycles:
                    best = GemmTiles(tn, tm, kt, resident, cycles)
    if best is None:
        raise ValueError(f"no gemm tiling of {m} x {n} x {k} fits the buffers")
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
