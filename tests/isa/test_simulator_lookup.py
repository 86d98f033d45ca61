"""lookup: table rows chosen by int64 indices in pbuf, by DMA (the embedding lookup)."""
import numpy as np
import pytest

from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import Machine
from tcc.isa.target import load_target

TARGET = load_target()
ROWS, WIDTH, TABLE = 10, 24, 256  # a 10 x 24-byte table at DRAM 256, rows 32 bytes apart


def program(count: int) -> str:
    return (f"setr dma.planes, 1\nsetr dma.rows, 1\nsetr dma.row_bytes, {8 * count}\n"
            f"load pbuf, 64, 0\n"                                  # the ids, from DRAM 0
            f"setr lk.index, 64\nsetr lk.count, {count}\nsetr lk.rows, {ROWS}\n"
            f"setr dma.row_bytes, {WIDTH}\nsetr dma.dram_row, 32\nsetr dma.sram_row, 30\n"
            f"lookup abuf, 100, {TABLE}\nhalt\n")


def machine(ids):
    dram = np.zeros(1024, np.uint8)
    dram[:8 * len(ids)] = np.frombuffer(np.asarray(ids, "<i8").tobytes(), np.uint8)
    table = np.arange(ROWS * 32, dtype=np.uint8).reshape(ROWS, 32) * 7
    dram[TABLE:TABLE + table.size] = table.reshape(-1)
    return Machine(TARGET, dram), table


def test_rows_land_in_order_with_negative_ids_from_the_end():
    ids = [3, 0, 9, -1, 3]
    m, table = machine(ids)
    result = m.run(encode_program(assemble(program(len(ids)))), trace=True)
    got = np.stack([m.buffers["abuf"][100 + 30 * i:100 + 30 * i + WIDTH] for i in range(len(ids))])
    np.testing.assert_array_equal(got, table[[3, 0, 9, 9, 3], :WIDTH])
    lookup = result.trace[-1]
    assert lookup.unit == "load" and lookup.end - lookup.start == TARGET.dma_latency + len(ids)
    assert result.layers[0]["bytes_loaded"] == 8 * len(ids) + len(ids) * WIDTH


def test_an_index_outside_the_table_traps_with_its_pc():
    m, _ = machine([2, 10])
    with pytest.raises(SimulatorTrap, match=r"pc 10\b.*lookup index 10 is outside a table of 10 rows"):
        m.run(encode_program(assemble(program(2))))
