"""A tile loop's cycles, scheduled the way the simulator's cycle model runs it (isa/simulator/timing.py):
four in-order units, each tile's loads, matmuls, post-unit work and store in the emitters' program
order (a tile's store after the next tile's loads), double-buffered slots (a tile's input slab
waits for the matmuls of the tile two before it, its accumulators for that tile's requantize,
its output tile for that tile's store) and the shared DRAM channel (timing.DramChannel).

What it adds over the sum-per-unit estimates of tiling.py: the ramp.  The array waits for the
first tile's operands, each tile's post-unit work and store follow its matmuls, and a store waits
for its tile's requantize, so tile sizes that differ (a short first or last tile) change a layer's
cycles in ways a total per unit cannot see."""
from __future__ import annotations

from dataclasses import dataclass

from tcc.isa.cycles import dram_beats
from tcc.isa.simulator.timing import DramChannel
from tcc.isa.target import TargetConfig


@dataclass(frozen=True)
class Tile:
    """One output tile: transfers (dma_cycles) and unit cycles, in program order."""

    first_loads: tuple[int, ...]  # weights (a new channel tile's) before the input slab: no slot to wait for
    loads: tuple[tuple[int, ...], ...]  # per matmul, the transfers of its operands (input slab, chunk weights)
    matmuls: tuple[int, ...]
    late_loads: tuple[int, ...]  # after the first matmul's operands (the requantization parameters)
    requant: int
    skip: int  # a fused residual add's skip tile (0: none), loaded after the requantize
    epilogue: int  # post-unit cycles after the requantize (eadd, lut)
    store: int


def pipeline_cycles(target: TargetConfig, tiles: list[Tile]) -> int:
    """Cycles from the first load's start to the last store's end."""
    channel = DramChannel()

    def transfer(free: int, ready: int, cycles: int) -> int:
        """A load or store on a unit free at ``free`` whose operands are ready at ``ready``: its end."""
        start = max(free, ready)
        beats = dram_beats(target, cycles)
        return channel.take(start + cycles - beats, beats) if beats else start + cycles

    load = compute = post = store = 0
    matmuls_end: list[int] = []  # per tile
    requant_end: list[int] = []  # per tile: the accumulators read
    post_end: list[int] = []
    store_end: list[int] = []
    weights_ready = 0
    for i, tile in enumerate(tiles):
        for cycles in tile.first_loads:
            load = transfer(load, 0, cycles)
            weights_ready = load
        slot_free = matmuls_end[i - 2] if i >= 2 else 0
        ready = []
        for transfers in tile.loads:
            for cycles in transfers:
                load = transfer(load, slot_free, cycles)
            ready.append(load)
        for cycles in tile.late_loads:
            load = transfer(load, 0, cycles)
        if i:
            store = transfer(store, post_end[i - 1], tiles[i - 1].store)
            store_end.append(store)
        at = max(compute, weights_ready, requant_end[i - 2] if i >= 2 else 0)
        for operands, cycles in zip(ready, tile.matmuls):
            at = max(at, operands) + cycles
        compute = at
        matmuls_end.append(at)
        post = max(post, at, store_end[i - 2] if i >= 2 else 0) + tile.requant
        requant_end.append(post)
        if tile.skip:
            load = transfer(load, post_end[i - 2] if i >= 2 else 0, tile.skip)
            post = max(post, load)
        post += tile.epilogue
        post_end.append(post)
    if tiles:
        store = transfer(store, post_end[-1], tiles[-1].store)
    return store
