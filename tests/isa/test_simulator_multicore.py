"""Two cores over shared DRAM (isa/simulator/multicore.py): barriers order the cores' segments,
and the shared DRAM interface bounds a segment's length."""
from dataclasses import replace

import numpy as np
import pytest

from isa_helpers import setr
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import run_cores
from tcc.isa.target import load_target

TARGET = load_target()


PROLOGUE = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 64})


def two_cores(first: str, second: str, target=TARGET):
    words0, words1 = encode_program(assemble(first)), encode_program(assemble(second))
    dram = np.arange(4096, dtype=np.uint32).astype(np.uint8)
    return run_cores(target, dram, np.concatenate([words0, words1]), [0, len(words0)])


def test_a_barrier_orders_one_cores_store_before_anothers_load():
    # core 0 copies DRAM [0, 64) to [1024, 1088); core 1, after the barrier, copies that to [2048, 2112)
    result, dram = two_cores(PROLOGUE + "load abuf, 0, 0\nstore abuf, 0, 1024\nbarrier\nhalt\n",
                             PROLOGUE + "barrier\nload abuf, 0, 1024\nstore abuf, 0, 2048\nhalt\n")
    np.testing.assert_array_equal(dram[2048:2112], np.arange(64, dtype=np.uint8))
    dma = TARGET.dma_latency + 1
    # segment 1: core 0 loads (from issue cycle 3), then stores; segment 2 starts from idle units
    assert result.cycles == (3 + 2 * dma) + 2 * dma  # the store waits for its load in each
    assert result.layers[0]["bytes_loaded"] == 128 and result.layers[0]["bytes_stored"] == 128


def test_shared_dram_bandwidth_bounds_a_segment():
    narrow = replace(TARGET, hbm_bytes_per_cycle=16)
    load = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 2048}) + "load abuf, 0, 0\nhalt\n"
    alone, _ = two_cores(load, "halt\n")
    shared, _ = two_cores(load, load, narrow)
    assert alone.cycles == 3 + TARGET.dma_latency + 2048 // 64
    assert shared.cycles == 2 * 2048 // 16  # both cores' 4096 bytes through a 16-byte interface


def test_cores_that_disagree_on_barriers_trap():
    with pytest.raises(SimulatorTrap, match="different numbers of barriers"):
        two_cores("barrier\nhalt\n", "halt\n")
