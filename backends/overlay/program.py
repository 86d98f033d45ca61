"""Program: the instruction list a backend emits, with register writes deduplicated."""
from __future__ import annotations

from tcc.isa.table import BY_MNEMONIC, REGISTER_INDEX

from .memory import ActivationAddress


class Program:
    """Instructions as (mnemonic, {field: value}) in program order."""

    def __init__(self):
        self.instructions: list[tuple[str, dict]] = []
        self._regs: dict[str, int] = {}

    def emit(self, mnemonic: str, **fields) -> None:
        if mnemonic not in BY_MNEMONIC:
            raise ValueError(f"unknown mnemonic {mnemonic!r}")
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
        """A load or store of a planes x rows x row_bytes box; contiguous boxes collapse to one row."""
        if planes == 1 and rows > 1 and dram_row == row_bytes and sram_row == row_bytes:
            rows, row_bytes = 1, rows * row_bytes
        self.set({"dma.planes": planes, "dma.rows": rows, "dma.row_bytes": row_bytes, "dma.dram_row": dram_row,
                  "dma.sram_row": sram_row, "dma.dram_plane": dram_plane, "dma.sram_plane": sram_plane})
        self.emit(direction, buf=buf, sram=sram, dram=dram)

    def copy_box(self, extents, src_strides, dst_strides, elem: int) -> None:
        """Set the cp.* registers: a 4-D box of ``extents`` (outermost first) of ``elem``-byte
        elements with byte strides on the source and destination side."""
        self.set({f"cp.n{i}": n for i, n in enumerate(extents)} | {f"cp.s{i}": s for i, s in enumerate(src_strides)}
                 | {f"cp.d{i}": d for i, d in enumerate(dst_strides)} | {"cp.elem": elem})

    def layer(self, index: int) -> None:
        self.set({"sys.layer": index})

    def __len__(self) -> int:
        return len(self.instructions)
