"""Stores emitted late: a tile's output store after the next tile's input loads, a layer's last
store after the next conv's first input load."""
from __future__ import annotations

from .context import Context
from .memory import ActivationAddress


class LaterStore:
    """A tile's output store, emitted once the next tile's input loads are: program order is then
    the order in which the DMAs want the shared DRAM channel (isa/simulator/timing.py), so the
    store's beats fill the gaps the loads leave instead of holding the loads back.  Between the
    two, only loads into other buffers or other abuf quarters run (the store reads its a_out tile).

    A step's last store goes the same way across layers (``Context.hand_over_store``: convs, pools,
    layout moves and concatenations hand theirs over): the next conv emits it after its own first
    input load, unless that load reads what the store writes or writes what it reads; any other
    step emits it first (compile.py)."""

    def __init__(self, ctx: Context):
        self.program = ctx.program
        self.ctx = ctx
        self.pending: tuple[tuple, dict] | None = None
        self.layer: int | None = None  # the earlier layer a handed-over store counts for
        if ctx.handed_store is not None:
            self.pending, self.layer = ctx.handed_store
            ctx.handed_store = None

    def later(self, *args, **fields) -> None:
        self.now()
        self.pending = (args, fields)

    def now(self) -> None:
        if self.pending is not None:
            args, fields = self.pending
            if self.layer is not None:  # counted for the layer that handed it over
                self.program.set({"sys.layer": self.layer})
            self.program.dma("store", *args, **fields)
            if self.layer is not None:
                self.program.set({"sys.layer": len(self.ctx.layer_names) - 1})
                self.layer = None
            self.pending = None

    def before_load(self, dram, span: int, sram: int, sram_span: int) -> None:
        """Emit the pending store now if a load of ``span`` bytes from ``dram`` to abuf ``sram``
        (``sram_span`` bytes) may read what it writes or overwrite what it reads."""
        if self.pending is not None and (dram_overlap(self.pending, dram, span)
                                         or sram_overlap(self.pending, sram, sram_span)):
            self.now()

    def hand_over(self) -> None:
        """The last store, left for the next step (Context.hand_over_store)."""
        self.ctx.hand_over_store(self.pending)
        self.pending = None


def _extent(fields: dict, row: str, plane: str) -> int:
    rows, planes, row_bytes = fields.get("rows", 1), fields.get("planes", 1), fields["row_bytes"]
    return (planes - 1) * fields.get(plane, 0) + (rows - 1) * fields.get(row, 0) + row_bytes


def dram_overlap(store: tuple[tuple, dict], dram, span: int) -> bool:
    """Whether a pending store (``Program.dma`` arguments) writes any of ``span`` bytes from ``dram``."""
    (_, _, address), fields = store
    if isinstance(address, ActivationAddress) != isinstance(dram, ActivationAddress):
        return False  # one in the constants, one in the activations
    lo, other = (address.offset, dram.offset) if isinstance(address, ActivationAddress) else (address, dram)
    return lo < other + span and other < lo + _extent(fields, "dram_row", "dram_plane")


def sram_overlap(store: tuple[tuple, dict], sram: int, span: int) -> bool:
    """Whether a pending store reads any of ``span`` abuf bytes from ``sram``."""
    (_, lo, _), fields = store
    return lo < sram + span and sram < lo + _extent(fields, "sram_row", "sram_plane")
