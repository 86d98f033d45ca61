"""Choosing conv tiles with the cycle model: every (channel tile, row tile) that fits the buffer
halves is costed with the same formulas the simulator times instructions with
(docs/overlay-machine.md), and the cheapest is taken."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.isa.target import TargetConfig

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
    esize: int  # weight bytes per element
    channel_step: int  # channel tiles are multiples of this (or all channels)

    def rows_in(self, th: int) -> int:
        return min((th - 1) * self.sh + (self.kh - 1) * self.dh + 1, self.h)


@dataclass(frozen=True)
class ConvTiles:
    tn: int
    th: int
    cycles: int


def _dma(target: TargetConfig, rows: int, row_bytes: int) -> int:
    return target.dma_latency + rows * _ceil(row_bytes, target.dram_bytes_per_cycle)


def estimate(g: ConvGeometry, tn: int, th: int, target: TargetConfig) -> int:
    """Modeled cycles of the tile loop: the busiest unit's total plus the first load and last store
    that cannot overlap anything (double buffering overlaps the rest)."""
    load = compute = post = store = 0
    first_load = last_store = 0
    for n0 in range(0, g.n, tn):
        nt = min(tn, g.n - n0)
        load += _dma(target, 1, nt * g.k * g.esize) + _dma(target, 1, nt * 12)
        for oy0 in range(0, g.h_out, th):
            rows = min(th, g.h_out - oy0)
            m = rows * g.w_out
            slab = _dma(target, 1, g.rows_in(rows) * g.w * g.c)
            load += slab
            first_load = first_load or load
            compute += (_ceil(m, target.array_rows) * _ceil(nt, target.array_cols) * g.k * g.esize
                        + target.array_rows + target.array_cols)
            post += _ceil(m * nt, target.post_lanes) + 4
            last_store = _dma(target, 1, m * nt) if nt == g.n else _dma(target, m, nt)
            store += last_store
    return max(load, compute, post, store) + first_load + last_store


def choose_conv_tiles(g: ConvGeometry, buffers: Buffers, target: TargetConfig) -> ConvTiles | None:
    """The cheapest (channel tile, row tile) that fits, or None if not even one row fits."""
    tn_max = g.n if g.n * g.k * g.esize <= buffers.wbuf_h else \
        (buffers.wbuf_h // (g.k * g.esize)) // g.channel_step * g.channel_step
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
