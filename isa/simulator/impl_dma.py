"""DMA between DRAM and the on-chip buffers: load and store of a planes x rows x row_bytes box.

Cycles: ``dma_latency + planes * rows * ceil(row_bytes / dram_bytes_per_cycle)`` (every row of
every plane is a burst); an empty box still costs ``dma_latency``.
"""
from __future__ import annotations

import numpy as np

from ..table import BUFFERS
from .machine import DRAM, Effect, MachineState, impl, registers

_DMA = registers("dma.planes", "dma.rows", "dma.row_bytes", "dma.dram_row", "dma.dram_plane",
                 "dma.sram_row", "dma.sram_plane")


def _boxes(m: MachineState, buf: str, sram: int, dram: int, to_sram: bool):
    """The SRAM and DRAM views of the box, and the DMA's bytes and cycles."""
    planes, rows, row_bytes, dram_row, dram_plane, sram_row, sram_plane = _DMA(m.regs)
    memory = BUFFERS.index(buf)
    sram_what, dram_what = ("destination", "source") if to_sram else ("source", "destination")
    if planes == 1 and rows == 1 and row_bytes > 0:  # one contiguous run (the common case): plain slices
        sram_access = m.span(memory, sram, sram + row_bytes, to_sram, f"{sram_what} box")
        dram_access = m.span(DRAM, dram, dram + row_bytes, not to_sram, f"{dram_what} box")
        sram_view = m.memories[memory][sram:sram + row_bytes]
        dram_view = m.dram[dram:dram + row_bytes]
    else:
        shape = (planes, rows, row_bytes)
        sram_view, sram_access = m.region(memory, sram, shape, (sram_plane, sram_row, 1), np.uint8, to_sram,
                                          f"{sram_what} box")
        dram_view, dram_access = m.region(DRAM, dram, shape, (dram_plane, dram_row, 1), np.uint8, not to_sram,
                                          f"{dram_what} box")
    t = m.target
    cycles = t.dma_latency + planes * rows * -(-row_bytes // t.dram_bytes_per_cycle)
    accesses = tuple(a for a in (sram_access, dram_access) if a is not None)
    return sram_view, dram_view, planes * rows * row_bytes, cycles, accesses


@impl("load")
def load(m: MachineState, buf: str, sram: int, dram: int):
    sram_view, dram_view, moved, cycles, accesses = _boxes(m, buf, sram, dram, to_sram=True)
    sram_view[...] = dram_view
    return Effect(cycles, accesses, loaded=moved)


@impl("store")
def store(m: MachineState, buf: str, sram: int, dram: int):
    sram_view, dram_view, moved, cycles, accesses = _boxes(m, buf, sram, dram, to_sram=False)
    dram_view[...] = sram_view
    return Effect(cycles, accesses, stored=moved)
