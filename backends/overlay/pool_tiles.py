"""Pooling tiles chosen with the cycle model, and max pools taken in two passes.

A pool runs on the post unit at ``post_lanes`` window taps per cycle (isa/cycles.py), which makes
most pools post-bound: the row tile is the one with the least modeled time (the busiest unit or
the DRAM channel, plus the first load and the last store that nothing overlaps), not the largest
that fits, so the loads and stores of many tiles hide behind the pooling instead of one tile's
load, pooling and store running one after the other.

A max pool whose kh x kw window is cheaper as a kh x 1 pass over the slab's full width followed by
a 1 x kw pass over that (stride 1: kh + kw taps per output instead of kh * kw) is emitted so: the
maximum over a window is the maximum of its columns' maxima, the padding stays out of both (it is
never the maximum), so the result is the same bytes.  Average pools round once, over the whole
window, and stay one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.isa.cycles import dma_cycles, dram_beats, post_cycles
from tcc.isa.target import TargetConfig

from .tiling import input_rows


@dataclass(frozen=True)
class PoolGeometry:
    h: int
    w: int
    c: int
    h_out: int
    w_out: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    pad_top: int
    separable: bool  # a max pool taken as a kh x 1 pass, then a 1 x kw pass

    def rows_in(self, th: int) -> int:
        return min((th - 1) * self.sh + (self.kh - 1) * self.dh + 1, self.h)

    def taps(self, rows: int, channels: int) -> list[int]:
        """Window taps of each pool instruction of a tile of ``rows`` output rows."""
        if self.separable:
            return [rows * self.w * channels * self.kh, rows * self.w_out * channels * self.kw]
        return [rows * self.w_out * channels * self.kh * self.kw]

    def out_bytes(self, th: int, ct: int) -> int:
        """abuf bytes of a tile's output quarter: the result, and the first pass's rows after it."""
        return th * self.w_out * ct + (th * self.w * ct if self.separable else 0)


def pool_geometry(h, w, c, h_out, w_out, kernel, strides, dilations, pad_top, max_pool: bool) -> PoolGeometry:
    (kh, kw), (sh, sw) = kernel, strides
    separable = max_pool and kh > 1 and kw > 1 and w * kh + w_out * kw < w_out * kh * kw
    return PoolGeometry(h, w, c, h_out, w_out, kh, kw, sh, sw, dilations[0], pad_top, separable)


def transfer(target: TargetConfig, rows: int, row_bytes: int, whole: bool) -> int:
    """A load or store of ``rows`` rows of ``row_bytes`` (one contiguous run when ``whole``)."""
    return dma_cycles(target, 1, rows * row_bytes) if whole else dma_cycles(target, rows, row_bytes)


def estimate_pool(g: PoolGeometry, th: int, ct: int, target: TargetConfig) -> int:
    """Modeled cycles of emit_pool's tile loop, as tiling.estimate for convolutions."""
    load = post = store = dram = first_load = last_store = 0
    for c0 in range(0, g.c, ct):
        cn = min(ct, g.c - c0)
        for oy0 in range(0, g.h_out, th):
            rows = min(th, g.h_out - oy0)
            _, lo, hi = input_rows(oy0, rows, g.sh, g.pad_top, g.kh, g.dh, g.h)
            loaded = transfer(target, (hi - lo) * g.w, cn, cn == g.c)
            last_store = transfer(target, rows * g.w_out, cn, cn == g.c)
            first_load = first_load or loaded
            load += loaded
            store += last_store
            dram += dram_beats(target, loaded) + dram_beats(target, last_store)
            post += sum(post_cycles(target, taps) for taps in g.taps(rows, cn))
    return max(load, post, store, dram) + first_load + last_store


@dataclass(frozen=True)
class PoolTiles:
    th: int
    ct: int


def _channel_tile(g: PoolGeometry, abuf_q: int) -> int | None:
    """All channels if one input row of them fits an abuf quarter, else halved until it does; None
    if not even one output row of one channel fits."""
    ct = g.c
    while ct > 1 and g.rows_in(1) * g.w * ct > abuf_q:
        ct = (ct + 1) // 2
    if g.rows_in(1) * g.w * ct > abuf_q or g.out_bytes(1, ct) > abuf_q:
        return None
    return ct


def pool_tiles_exist(g: PoolGeometry, abuf_q: int) -> bool:
    """Whether ``choose_pool_tiles`` finds a tile (placement asks, without timing any)."""
    return _channel_tile(g, abuf_q) is not None


def choose_pool_tiles(g: PoolGeometry, abuf_q: int, target: TargetConfig, cores: int = 1) -> PoolTiles | None:
    """The channel tile (all channels if one input row of them fits, else halved until it does)
    and the row tile of least modeled cycles among those that fit an abuf quarter; None if not
    even one output row fits."""
    ct = _channel_tile(g, abuf_q)
    if ct is None:
        return None
    th_max = 1
    while th_max < g.h_out and g.rows_in(th_max + 1) * g.w * ct <= abuf_q and g.out_bytes(th_max + 1, ct) <= abuf_q:
        th_max += 1
    if cores > 1:  # enough row tiles for every core
        th_max = min(th_max, max(1, -(-g.h_out // cores)))
    best = min(range(1, th_max + 1), key=lambda th: (estimate_pool(g, th, ct, target), -th))
    return PoolTiles(best, ct)
