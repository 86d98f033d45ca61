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
from tcc.isa.target import TargetConfig
from tcc.isa.weights import reduction_steps, row_bytes

from .context import Buffers


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


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


@dataclass(frozen=True)
class ConvTiles:
    tn: int
    th: int
    cycles: int
    tc: int = 0  # slab channels per tile when the slab holds a subset (0: all g.c channels)


def _dma(target: TargetConfig, rows: int, row_bytes: int) -> int:
    return target.dma_latency + rows * _ceil(row_bytes, target.dram_bytes_per_cycle)


def estimate(g: ConvGeometry, tn: int, th: int, target: TargetConfig, tc: int = 0) -> int:
    """Modeled cycles of the tile loop: the busiest unit's total plus the first load and last store
    that cannot overlap anything (double buffering overlaps the rest).  ``tc`` as in ConvTiles."""
    load = compute = post = store = 0
    first_load = last_store = 0
    chunks = [(c0, min(tc, g.c - c0)) for c0 in range(0, g.c, tc)] if tc and g.kind == "conv" else [(0, 0)]
    for n0 in range(0, g.n, tn):
        nt = min(tn, g.n - n0)
        load += _dma(target, 1, nt * 12) + (0 if len(chunks) > 1 else _dma(target, 1, nt * g.wbytes(g.k)))
        for oy0 in range(0, g.h_out, th):
            rows = min(th, g.h_out - oy0)
            m = rows * g.w_out
            pixels = g.rows_in(rows) * g.w
            for _, cn in chunks:
                if len(chunks) > 1:  # each chunk's weights: nt x taps rows of cn elements
                    load += _dma(target, nt * g.taps, g.wbytes(cn)) + _dma(target, pixels, cn)
                    k = g.taps * cn
                else:
                    load += _dma(target, pixels, nt) if tc else _dma(target, 1, pixels * g.c)
                    k = g.k
                first_load = first_load or load
                compute += (_ceil(m, target.array_rows) * _ceil(nt, target.array_cols) * reduction_steps(k, g.fmt)
                            + target.array_rows + target.array_cols)
            post += _ceil(m * nt, target.post_lanes) + 4
            last_store = _dma(target, 1, m * nt) if nt == g.n else _dma(target, m, nt)
            store += last_store
    return max(load, compute, post, store) + first_load + last_store


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
            if (g.rows_in(th) * g.w * g.c > buffers.abuf_q or th * g.w_out * tn > buffers.abuf_q
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
            if g.rows_in(th) * g.w * tc > buffers.abuf_q or th * g.w_out * tn > buffers.abuf_q \
                    or th * g.w_out * tn * 4 > buffers.acc_h:
                break
            cycles = estimate(g, tn, th, target, tc)
            if best is None or cycles < best.cycles:
                best = ConvTiles(tn, th, cycles, tc)
    return best
