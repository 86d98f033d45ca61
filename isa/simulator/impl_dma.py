"""DMA between DRAM and the on-chip buffers: load and store of a planes x rows x row_bytes box,
and lookup of table rows chosen by indices in pbuf; in every sample of the batch at once.

Cycles: ``dma_latency + planes * rows * ceil(row_bytes / dram_bytes_per_cycle)`` (every row of
every plane is a burst; a lookup moves ``lk.count`` rows); an empty box still costs ``dma_latency``.
The load and store units share the DRAM channel's beats (timing.py).
"""
from __future__ import annotations

import numpy as np

from ..cycles import dma_cycles
from ..table import BUFFERS
from .machine import DRAM, PBUF, Effect, Fault, MachineState, copy_action, impl, registers, sample_prefix

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
        sram_view = m.memories[memory][:, sram:sram + row_bytes]
        dram_view = m.memories[DRAM][:, dram:dram + row_bytes]
    else:
        shape = (planes, rows, row_bytes)
        sram_view, sram_access = m.region(memory, sram, shape, (sram_plane, sram_row, 1), np.uint8, to_sram,
                                          f"{sram_what} box")
        dram_view, dram_access = m.region(DRAM, dram, shape, (dram_plane, dram_row, 1), np.uint8, not to_sram,
                                          f"{dram_what} box")
    cycles = dma_cycles(m.target, planes * rows, row_bytes)
    accesses = tuple(a for a in (sram_access, dram_access) if a is not None)
    return sram_view, dram_view, planes * rows * row_bytes, cycles, accesses


@impl("load")
def load(m: MachineState, buf: str, sram: int, dram: int):
    sram_view, dram_view, moved, cycles, accesses = _boxes(m, buf, sram, dram, to_sram=True)
    return Effect(cycles, accesses, m.target.dma_latency, loaded=moved, action=copy_action(sram_view, dram_view))


@impl("store")
def store(m: MachineState, buf: str, sram: int, dram: int):
    sram_view, dram_view, moved, cycles, accesses = _boxes(m, buf, sram, dram, to_sram=False)
    return Effect(cycles, accesses, m.target.dma_latency, stored=moved, action=copy_action(dram_view, sram_view))


_LOOKUP = registers("lk.index", "lk.count", "lk.rows", "dma.row_bytes", "dma.dram_row", "dma.sram_row")


@impl("lookup")
def lookup(m: MachineState, buf: str, sram: int, dram: int):
    index, count, rows, row_bytes, dram_row, sram_row = _LOOKUP(m.regs)
    if count < 0 or rows <= 0 or row_bytes <= 0:
        raise Fault(f"bad lookup geometry: lk.count={count}, lk.rows={rows}, dma.row_bytes={row_bytes}")
    index_view, index_access = m.region(PBUF, index, (count,), (8,), "<i8", False, "lookup indices")
    memory = BUFFERS.index(buf)
    table, table_access = m.region(DRAM, dram, (rows, row_bytes), (dram_row, 1), np.uint8, False, "lookup table")
    dst, dst_access = m.region(memory, sram, (count, row_bytes), (sram_row, 1), np.uint8, True, "lookup destination")

    samples = np.arange(m.batch)[:, None]

    def action() -> None:  # per sample: its indices into its own table (N, count) -> (N, count, row_bytes)
        ids = index_view.astype(np.int64)
        bad = (ids < -rows) | (ids >= rows)
        if bad.any():
            sample, at = np.argwhere(bad)[0]
            raise Fault(f"{sample_prefix(m.batch, sample)}lookup index {int(ids[sample, at])} is outside a table of {rows} rows")
        dst[...] = table[samples, np.where(ids < 0, ids + rows, ids)]

    t = m.target
    cycles = dma_cycles(t, count, row_bytes)
    accesses = tuple(a for a in (index_access, table_access, dst_access) if a is not None)
    return Effect(cycles, accesses, t.dma_latency, loaded=count * row_bytes, action=action)
