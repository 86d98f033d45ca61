"""Program: the instruction list a backend emits, with register writes deduplicated."""
from __future__ import annotations

from tcc.isa.table import BY_MNEMONIC, REGISTER_INDEX

from .memory import ActivationAddress
from .resident import HELD_BUFFERS, Residency, buffer_write


class Program:
    """Instructions as (mnemonic, {field: value}) in program order."""

    def __init__(self, keep_on_chip: bool = False):
        self.instructions: list[tuple[str, dict]] = []
        # with ``keep_on_chip``, abuf and vbuf loads of what the buffer still holds become copies (resident.py)
        self.residency = {buf: Residency() for buf in HELD_BUFFERS} if keep_on_chip else None
        self._regs: dict[str, int] = {}
        # what writes wbuf, in order: (instruction index, lo, hi), hi = None for a range not known here
        self.wbuf_writes: list[tuple[int, int, int | None]] = []
        # with ``keep_on_chip``: contiguous constant loads wbuf still holds, (sram, dram, bytes); a load
        # of the same bytes to the same place again is left out (an unrolled recurrence's weights)
        self.wbuf_held: list[tuple[int, int, int]] | None = [] if keep_on_chip else None

    def emit(self, mnemonic: str, **fields) -> None:
        if mnemonic not in BY_MNEMONIC:
            raise ValueError(f"unknown mnemonic {mnemonic!r}")
        if fields.get("buf") == "wbuf" and mnemonic not in ("load", "store"):  # a write whose range is in registers
            self.wbuf_writes.append((len(self.instructions), 0, None))
            if self.wbuf_held is not None:
                self.wbuf_held.clear()
        if self.residency is not None and mnemonic not in ("load", "store"):
            written = buffer_write(mnemonic, fields, lambda name: self._regs.get(name, 0))
            if written is not None:
                buf, span = written
                if isinstance(span, tuple):
                    self.residency[buf].forget_sram(*span)
                else:
                    self.residency[buf].forget_all()
        self.instructions.append((mnemonic, fields))

    def set(self, values: dict[str, int]) -> None:
        """Write configuration registers, named as in the ISA table ({"mm.m": 49}), in the given
        order, skipping values a register already holds."""
        for name, value in values.items():
            if name not in REGISTER_INDEX:
                raise ValueError(f"unknown register {name!r}")
            value = int(value)
            if not -2**31 <= value < 2**31:
                raise ValueError(f"register {name} value {value} does not fit 32 bits")
            if self._regs.get(name) != value:
                self.instructions.append(("setr", {"reg": name, "value": value}))
                self._regs[name] = value

    def dma(self, direction: str, buf: str, sram: int, dram: int | ActivationAddress, rows: int, row_bytes: int,
            dram_row: int = 0, sram_row: int = 0, planes: int = 1, dram_plane: int = 0, sram_plane: int = 0) -> None:
        """A load or store of a planes x rows x row_bytes box; contiguous boxes collapse to one row (the
        same bytes in fewer, longer DMA rows: a beat per 64 bytes, not per row; and the residency of
        abuf and vbuf follows a contiguous transfer)."""
        if rows > 1 and dram_row == row_bytes and sram_row == row_bytes:
            rows, row_bytes = 1, rows * row_bytes
        if planes > 1 and rows == 1 and dram_plane == row_bytes and sram_plane == row_bytes:
            planes, row_bytes = 1, planes * row_bytes
        box = {"planes": planes, "rows": rows, "row_bytes": row_bytes, "dram_row": dram_row,
               "dram_plane": dram_plane, "sram_row": sram_row, "sram_plane": sram_plane}
        if self.residency is not None:
            if buf in self.residency and self._on_chip(buf, direction, sram, dram, box):
                return
            if direction == "store":
                for other, residency in self.residency.items():
                    if other != buf:
                        residency.dram_written(dram, box)
        self.set({"dma.planes": planes, "dma.rows": rows, "dma.row_bytes": row_bytes, "dma.dram_row": dram_row,
                  "dma.sram_row": sram_row, "dma.dram_plane": dram_plane, "dma.sram_plane": sram_plane})
        if direction == "load" and buf == "wbuf":
            span = (planes - 1) * sram_plane + (rows - 1) * sram_row + row_bytes
            if self._wbuf_holds(sram, dram, box, span):
                return
            self.wbuf_writes.append((len(self.instructions), sram, sram + span))
        self.emit(direction, buf=buf, sram=sram, dram=dram)

    def _wbuf_holds(self, sram: int, dram, box: dict, span: int) -> bool:
        """Whether wbuf holds the constant bytes a load to ``sram`` would bring (then the load is left
        out, and its range counts as written now, so an early weight load never takes it: Context.
        early_weights); otherwise follow the load.  Constants are never written, so only wbuf writes
        end a holding."""
        if self.wbuf_held is None:
            return False
        constant = isinstance(dram, int) and box["planes"] == 1 and box["rows"] == 1
        if constant and (sram, dram, span) in self.wbuf_held:
            self.wbuf_writes.append((len(self.instructions), sram, sram + span))
            return True
        self._wbuf_forget(sram, sram + span)
        if constant:
            self.wbuf_held.append((sram, dram, span))
        return False

    def held_weights(self, dram: int, nbytes: int) -> int | None:
        """Where wbuf holds the ``nbytes`` constant bytes at ``dram`` that an earlier load brought
        (``_wbuf_holds``: an unrolled recurrence's weights), their range counted as written now; or None."""
        for sram, held_dram, span in self.wbuf_held or ():
            if (held_dram, span) == (dram, nbytes):
                self.wbuf_writes.append((len(self.instructions), sram, sram + span))
                return sram
        return None

    def _wbuf_forget(self, lo: int, hi: int) -> None:
        if self.wbuf_held is not None:
            self.wbuf_held = [h for h in self.wbuf_held if h[0] + h[2] <= lo or hi <= h[0]]

    def read_in_place(self, buf: str, sram: int, dram: int | ActivationAddress, nbytes: int) -> int:
        """Where to read ``nbytes`` contiguous bytes of ``dram`` that would be loaded to ``buf`` at
        ``sram``: where the buffer holds them all in one range (resident.py; bytes an earlier load
        brought too), emitting nothing, or ``sram`` after their load (or copies).  The caller reads
        them before anything writes to ``buf`` again (the held bytes are some earlier step's, and may
        be overwritten after)."""
        held = self.held_at(buf, dram, nbytes)
        if held is not None:
            return held
        self.dma("load", buf, sram, dram, rows=1, row_bytes=nbytes)
        return sram

    def held_at(self, buf: str, dram: int | ActivationAddress, nbytes: int, in_place: bool = True) -> int | None:
        """Where ``buf`` holds ``nbytes`` contiguous bytes of ``dram`` in one range (resident.py), or
        None; with ``in_place`` False, only where a load of them would copy them from (bytes that
        loads brought do not count: resident.py)."""
        if self.residency is not None and buf in self.residency:
            box = {"planes": 1, "rows": 1, "row_bytes": nbytes, "dram_row": 0, "dram_plane": 0}
            pieces = self.residency[buf].sources(dram, box, in_place=in_place)
            if pieces is not None and len(pieces) == 1:
                return pieces[0][0]
        return None

    def _on_chip(self, buf: str, direction: str, sram: int, dram, box: dict) -> bool:
        """Follow an abuf or vbuf DMA in its residency; True if a load was emitted as on-chip copies instead."""
        residency = self.residency[buf]
        if direction == "store":
            residency.stored(sram, dram, box)
            return False
        pieces = residency.sources(dram, box)
        sram_span = (box["planes"] - 1) * box["sram_plane"] + (box["rows"] - 1) * box["sram_row"] + box["row_bytes"]
        if pieces is None:
            residency.forget_sram(sram, sram + sram_span)
            residency.loaded(sram, dram, box)  # the load is emitted next, in program order
            return False
        if box["planes"] > 1 or box["rows"] > 1:  # a box inside one held range
            (src, _, _), = pieces
            if src == sram and box["dram_plane"] == box["sram_plane"] and box["dram_row"] == box["sram_row"]:
                return True  # the bytes are where the load would put them
            self.copy_box((1, box["planes"], box["rows"], box["row_bytes"]),
                          (0, box["dram_plane"], box["dram_row"], 1), (0, box["sram_plane"], box["sram_row"], 1), 1)
            self.emit("copy", buf=buf, dst=sram, src=src)
            return True
        copies = _reads_before_writes([(src, sram + offset, nbytes) for src, offset, nbytes in pieces
                                       if src != sram + offset])  # pieces already in place need none
        if copies is None:  # the pieces' places and sources overlap in a cycle: load them from DRAM
            residency.forget_sram(sram, sram + sram_span)
            residency.loaded(sram, dram, box)
            return False
        for src, dst, nbytes in copies:
            self.copy_box((1, 1, 1, nbytes), (0, 0, 0, 1), (0, 0, 0, 1), 1)
            self.emit("copy", buf=buf, dst=dst, src=src)
        if len(pieces) > 1:  # assembled from several places: held in one range now
            residency.loaded(sram, dram, box)
        return True

    def mark(self) -> tuple[int, dict[str, int]]:
        """This point of the program, for ``load_at``: its instruction index and register values."""
        return len(self.instructions), dict(self._regs)

    def load_at(self, mark: tuple[int, dict[str, int]], buf: str, sram: int, dram: int, nbytes: int,
                layer: int) -> int:
        """A contiguous load placed at ``mark``, an earlier point, counted for ``layer``: its register
        writes, and after it the registers it changed written back, so every later instruction
        reads what it did.  Returns the number of instructions inserted."""
        at, regs = mark
        values = {"sys.layer": layer, "dma.planes": 1, "dma.rows": 1, "dma.row_bytes": nbytes}
        changed = [name for name, value in values.items() if regs.get(name, 0) != value]  # registers start at 0
        code = [("setr", {"reg": name, "value": values[name]}) for name in changed]
        code.append(("load", {"buf": buf, "sram": sram, "dram": dram}))
        code += [("setr", {"reg": name, "value": regs.get(name, 0)}) for name in changed]
        self.instructions[at:at] = code
        self.wbuf_writes = [(i + len(code) if i >= at else i, lo, hi) for i, lo, hi in self.wbuf_writes]
        if buf == "wbuf":
            self.wbuf_writes.append((at + len(changed), sram, sram + nbytes))
            self.wbuf_writes.sort(key=lambda w: w[0])
            self._wbuf_forget(sram, sram + nbytes)
        return len(code)

    def copy_box(self, extents, src_strides, dst_strides, elem: int) -> None:
        """Set the cp.* registers: a 4-D box of ``extents`` (outermost first) of ``elem``-byte
        elements with byte strides on the source and destination side."""
        self.set({f"cp.n{i}": n for i, n in enumerate(extents)} | {f"cp.s{i}": s for i, s in enumerate(src_strides)}
                 | {f"cp.d{i}": d for i, d in enumerate(dst_strides)} | {"cp.elem": elem})

    def layer(self, index: int) -> None:
        self.set({"sys.layer": index})

    def __len__(self) -> int:
        return len(self.instructions)


def _reads_before_writes(copies: list[tuple[int, int, int]]) -> list[tuple[int, int, int]] | None:
    """``copies`` (src, dst, bytes) within one buffer in an order in which none writes bytes a later
    one reads (the pieces of one load: each copy reads all its bytes before it writes, but a piece's
    destination may be where another piece still is); None if there is no such order."""
    def overwrites(a, b) -> bool:  # a's destination covers some of b's source
        return a[1] < b[0] + b[2] and b[0] < a[1] + a[2]

    left, ordered = list(copies), []
    while left:
        ready = next((c for c in left if not any(overwrites(c, other) for other in left if other is not c)), None)
        if ready is None:
            return None
        ordered.append(ready)
        left.remove(ready)
    return ordered
