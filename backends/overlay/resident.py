"""Activations kept on chip: a load of bytes that a recent store wrote from abuf (or vbuf), and
that buffer still holds, becomes an on-chip ``copy`` from where they are.

A layer's output tile is stored to DRAM and, most often, the next layer's first load reads it
straight back: a DMA latency and the store's beats on the critical path of every layer boundary,
for bytes the chip still has.  ``Residency`` follows, in program order, which DRAM activation
ranges a buffer holds a copy of (each contiguous store of an activation from it), forgets a range
once anything writes its buffer bytes or its DRAM bytes again, and answers a load into that buffer
when every byte it reads is held.  The copy moves the same bytes, so results are bit for bit those
of the load; the store itself stays (other readers, model outputs and later steps read DRAM) until
``drop_unread_stores`` finds no DRAM reader.  Two buffers are followed: abuf (int8 activations) and
vbuf (bf16 ones: a conversion's result read by the vector op after it, and that op's result by the
conversion back).

The buffer ranges an instruction writes are computed from the configuration registers the program
has set (``Program._regs``), the same fields the simulator's implementations read
(isa/simulator/impl_*.py); a write of a kind not known here forgets everything its buffer holds.
Only one instruction stream is followed, so a multi-core program (a core may load what another
stored) keeps its loads.
"""
from __future__ import annotations

import numpy as np

from .memory import ActivationAddress

HELD_BUFFERS = ("abuf", "vbuf")  # the buffers whose activations ``Residency`` follows


def _span(base: int, extents, strides, elem: int) -> tuple[int, int]:
    """[lo, hi) of a box of ``extents`` with byte ``strides`` from ``base``, elements of ``elem`` bytes."""
    if any(n <= 0 for n in extents):
        return base, base
    lo = base + sum(min(0, (n - 1) * s) for n, s in zip(extents, strides))
    hi = base + sum(max(0, (n - 1) * s) for n, s in zip(extents, strides)) + elem
    return lo, hi


_VECTOR = ("vbin", "vun", "vfma", "vsel", "vlut")


def buffer_write(mnemonic: str, fields: dict, reg) -> tuple[str, tuple[int, int] | list[tuple[int, int]] | bool] | None:
    """(buffer, the byte range [lo, hi) it writes there, or a list of them) of an instruction (not a
    DMA), given ``reg(name)``: True for a range not computed here; None if it writes neither abuf nor vbuf."""
    if mnemonic == "requant":
        elem = 1 if fields["out"] == "i8" else 4
        rows, row, pitch = reg("rq.m"), elem * reg("rq.n"), elem * reg("rq.dst_row")
        if rows > 1 and pitch > row > 0:  # rows apart (a column tile written into its map): each row's bytes
            return "abuf", [(fields["dst"] + r * pitch, fields["dst"] + r * pitch + row) for r in range(rows)]
        return "abuf", _span(fields["dst"], (rows, reg("rq.n")), (pitch, elem), elem)
    if mnemonic == "pool":
        return "abuf", (fields["dst"], fields["dst"] + reg("pl.h_out") * reg("cv.w_out") * reg("cv.c"))
    if mnemonic in ("eadd", "emul"):
        return "abuf", (fields["dst"], fields["dst"] + reg("ea.len"))
    if mnemonic == "lut":
        return "abuf", (fields["dst"], fields["dst"] + reg("lt.len"))
    if mnemonic == "copy":
        if fields["buf"] not in HELD_BUFFERS:
            return None
        elem = reg("cp.elem")
        counts, strides = [reg(f"cp.n{i}") for i in range(4)], [reg(f"cp.d{i}") for i in range(4)]
        if counts[:2] == [1, 1] and counts[2] > 1 and strides[3] == elem and strides[2] > counts[3] * elem > 0:
            return fields["buf"], [(fields["dst"] + r * strides[2], fields["dst"] + r * strides[2] + counts[3] * elem)
                                   for r in range(counts[2])]  # rows apart (a tile copied into its map): each row's bytes
        return fields["buf"], _span(fields["dst"], counts, strides, elem)
    if mnemonic == "cvt":
        direction = fields["dir"]
        if direction == "bf16_i8":
            return "abuf", (fields["dst"], fields["dst"] + reg("v.len"))
        if direction in ("i8_bf16", "i32_bf16"):
            return "vbuf", (fields["dst"], fields["dst"] + 2 * reg("v.len"))
        return ("abuf" if direction == "bf16_i8_rows" else "vbuf"), True
    if mnemonic in _VECTOR:
        return "vbuf", (fields["dst"], fields["dst"] + 2 * reg("v.len"))
    if mnemonic == "vred":
        return "vbuf", (fields["dst"], fields["dst"] + 2 * (reg("v.len") // max(reg("v.row"), 1)))
    if mnemonic == "lookup":
        return (fields["buf"], True) if fields["buf"] in HELD_BUFFERS else None
    return None


class Residency:
    """The DRAM activation ranges one buffer holds, as (dram_lo, dram_hi, sram_lo) offsets, oldest first."""

    def __init__(self):
        self.held: list[tuple[int, int, int]] = []
        self.loads: set[tuple[int, int, int]] = set()  # the held ranges that loads brought (``loaded``)

    def forget_sram(self, lo: int, hi: int) -> None:
        self.held = [h for h in self.held if not (h[2] < hi and lo < h[2] + h[1] - h[0])]

    def forget_dram(self, lo: int, hi: int) -> None:
        self.held = [h for h in self.held if not (h[0] < hi and lo < h[1])]

    def forget_all(self) -> None:
        self.held = []

    def stored(self, sram: int, dram, box: dict) -> None:
        """A store from the buffer's ``sram`` to ``dram`` of ``box`` (``Program.dma``'s fields, rows collapsed).
        A store that continues a held range in both memories extends it (a conv's row tiles placed
        as in its map: emit_matrix), so a reader of rows of several tiles reads them in place."""
        if not isinstance(dram, ActivationAddress):
            return
        lo, hi = _span(dram.offset, (box["planes"], box["rows"], box["row_bytes"]),
                       (box["dram_plane"], box["dram_row"], 1), 1)
        spaced = box["planes"] == 1 and box["rows"] > 1 and box["sram_row"] == box["dram_row"] >= box["row_bytes"]
        if not spaced:
            self.forget_dram(lo, hi)
        if box["planes"] == 1 and box["rows"] == 1 and hi > lo:
            for i, (held_lo, held_hi, held_sram) in enumerate(self.held):
                if held_hi == lo and held_sram + held_hi - held_lo == sram and self.held[i] not in self.loads:
                    self.held[i] = (held_lo, hi, held_sram)  # a map stored row tile by row tile: one range
                    return
            self.held.append((lo, hi, sram))
            self.loads.discard((lo, hi, sram))
        elif spaced and hi > lo:
            # rows spaced alike in both memories (a product's column tile written where it lies in
            # its map, emit_gemm): each row a range (what DRAM held there forgotten row by row),
            # joined with its neighbours in both memories, so the map's column tiles are one range
            row = box["dram_row"]
            for r in range(box["rows"]):
                at = dram.offset + r * row
                self.forget_dram(at, at + box["row_bytes"])
                self._join(at, at + box["row_bytes"], sram + r * row)

    def _join(self, lo: int, hi: int, sram: int) -> None:
        """Hold [lo, hi) at ``sram``, one range with every stored range adjacent in both memories."""
        joined = True
        while joined:
            joined = False
            for i, (held_lo, held_hi, held_sram) in enumerate(self.held):
                if self.held[i] in self.loads:
                    continue
                if held_hi == lo and held_sram + held_hi - held_lo == sram:  # before it
                    lo, sram, joined = held_lo, held_sram, True
                elif held_lo == hi and held_sram == sram + hi - lo:  # after it
                    hi, joined = held_hi, True
                if joined:
                    del self.held[i]
                    break
        self.held.append((lo, hi, sram))

    def loaded(self, sram: int, dram, box: dict) -> None:
        """A contiguous load (or the copies that assemble it) of activation bytes into the buffer's
        ``sram``: the buffer holds them there too, until its bytes or DRAM's are written again, for
        readers in place (``Program.read_in_place``: a conv's slab read by each of its channel tiles,
        a map a later conv or product reads).  Not for loads elsewhere: a copy out of a loaded tile
        keeps the next load into its slot waiting for the post unit (measured: DBNet's residual
        adds copying their skip tile out of the slab before, 1.168 -> 1.201 x roofline)."""
        if isinstance(dram, ActivationAddress) and box["planes"] == 1 and box["rows"] == 1 and box["row_bytes"] > 0:
            self.forget_sram(sram, sram + box["row_bytes"])
            self.held.append((dram.offset, dram.offset + box["row_bytes"], sram))
            self.loads.add(self.held[-1])

    def dram_written(self, dram, box: dict) -> None:
        """A store from another buffer: DRAM there no longer matches what this buffer holds."""
        if isinstance(dram, ActivationAddress):
            self.forget_dram(*_span(dram.offset, (box["planes"], box["rows"], box["row_bytes"]),
                                    (box["dram_plane"], box["dram_row"], 1), 1))

    def sources(self, dram, box: dict, in_place: bool = False) -> list[tuple[int, int, int]] | None:
        """For a load of ``box`` from ``dram`` into the buffer: (source, DRAM offset into the box's
        first row, bytes) pieces covering it if abuf holds every byte; a box of several rows must lie
        in one held range.  None otherwise.  What loads brought counts only for a reader ``in_place``."""
        held = self.held if in_place else [h for h in self.held if h not in self.loads]
        if not isinstance(dram, ActivationAddress) or not held:
            return None
        lo, hi = _span(dram.offset, (box["planes"], box["rows"], box["row_bytes"]),
                       (box["dram_plane"], box["dram_row"], 1), 1)
        if hi <= lo:
            return None
        for held_lo, held_hi, sram in reversed(held):  # newest first
            if held_lo <= lo and hi <= held_hi:
                return [(sram + dram.offset - held_lo, 0, hi - lo)]
        if box["planes"] != 1 or box["rows"] != 1:
            return None
        pieces, at = [], lo
        while at < hi:
            piece = next(((held_lo, held_hi, sram) for held_lo, held_hi, sram in reversed(held)
                          if held_lo <= at < held_hi), None)
            if piece is None:
                return None
            end = min(hi, piece[1])
            pieces.append((piece[2] + at - piece[0], at - lo, end - at))
            at = end
        return pieces


def _box_view(bytes_: np.ndarray, lo: int, box: tuple[int, int, int], strides: tuple[int, int]) -> np.ndarray:
    """The (planes, rows, row_bytes) view of ``bytes_`` of a DMA box whose first byte is ``lo``."""
    planes, rows, row_bytes = box
    return np.lib.stride_tricks.as_strided(bytes_[lo:], shape=(planes, rows, row_bytes),
                                           strides=(strides[0], strides[1], 1), writeable=True)


def drop_unread_stores(instructions: list[tuple[str, dict]], outputs: list[tuple[int, int]]) -> list[tuple[str, dict]]:
    """``instructions`` without the stores of activation bytes that nothing reads from DRAM before
    they are written again: every later reader took them on chip (``Residency``).  ``outputs``:
    the [lo, hi) activation offsets the host reads after the run.  A store's setr's stay (later
    instructions may read those registers).  Bytes are followed exactly (one flag per activation
    byte, each DMA's box of planes and rows as it is): a strided store (attention heads side by
    side, an NHWC channel tile) ends the life of exactly the bytes it writes, and a strided load
    needs exactly the bytes it reads, not the span between its first and last byte."""
    regs: dict[str, int] = {}
    boxes: dict[int, tuple] = {}  # instruction index -> (first byte, (planes, rows, row_bytes), strides) or None
    for i, (mnemonic, fields) in enumerate(instructions):
        if mnemonic == "setr":
            regs[fields["reg"]] = fields["value"]
        elif mnemonic in ("load", "store", "lookup") and isinstance(fields["dram"], ActivationAddress):
            box = tuple(regs.get(f"dma.{n}", 0) for n in ("planes", "rows", "row_bytes"))
            strides = (regs.get("dma.dram_plane", 0), regs.get("dma.dram_row", 0))
            plain = min(box) > 0 and min(strides) >= 0 and mnemonic != "lookup"
            boxes[i] = (fields["dram"].offset, box, strides) if plain else None  # None: every byte
    size = max([hi for _, hi in outputs] + [lo + (b[0] - 1) * s[0] + (b[1] - 1) * s[1] + b[2]
                                            for lo, b, s in filter(None, boxes.values())], default=0)
    needed = np.zeros(size, bool)
    for lo, hi in outputs:
        needed[lo:hi] = True
    dropped = set()
    for i in sorted(boxes, reverse=True):
        if boxes[i] is None:  # a lookup (or a box not followed) may read any byte; such a store stays
            if instructions[i][0] != "store":
                needed[:] = True
            continue
        view = _box_view(needed, *boxes[i])
        if instructions[i][0] != "store":
            view[...] = True
        elif not view.any():
            dropped.add(i)
        else:
            view[...] = False  # earlier stores of these bytes are read by no one after this one
    return [ins for i, ins in enumerate(instructions) if i not in dropped]
