"""The cycle model: decoupled pipelined units, byte-range hazards, sync, per-layer counters.

Default target: DMA = 64 + ceil(row_bytes / 64) per row; matmul = per 32 x 32 pass ceil(K/s), plus 64 +
bits(s - 1), with the reduction split s = 32 // rows ways in a pass of fewer than 32 output rows
(and, in dwconv/gconv form, 32 // columns ways in a pass of fewer than 32 columns).  The latency
part (DMA 64, matmul 64 + bits(s - 1)) overlaps the unit's next instruction unless that one
depends on this one: an instruction occupies its unit for its cycles less its latency.
"""
import numpy as np

from isa_helpers import setr
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.simulator import Machine
from tcc.isa.target import TargetConfig, load_target

TARGET = load_target()
DMA_64 = 64 + 1  # a 64-byte load or store
MATMUL_K64 = 2 + 32 + 32 + 5  # one 1x1 tile with K = 64, split 32 ways (2 cycles each, 5 adder stages)


def run(text):
    machine = Machine(TARGET, np.zeros(1024, np.uint8))
    result = machine.run(encode_program(assemble(text)), trace=True)
    return result, {event.pc: event for event in result.trace}


PROLOGUE = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 64})  # pcs 0..2
GEMM = setr({"mm.m": 1, "mm.n": 1, "mm.k": 64, "mm.a_row": 64, "mm.w_row": 64, "mm.acc_row": 1})  # 6 instructions


def test_double_buffering_overlaps_a_load_with_a_matmul():
    result, at = run(PROLOGUE
                     + "load abuf, 0, 0\n"          # pc 3: issue 3, runs 3..68, its beat at 67
                     + "load wbuf, 0, 64\n"         # pc 4: the load unit is free at 4 (latencies overlap): 4..69
                     + GEMM                         # pcs 5..10
                     + "matmul gemm, 0, int8, 0, 0, 0\n"  # pc 11: waits for the weights, 69..140
                     + "load abuf, 64, 128\n"       # pc 12: the other half, 12..77, under the matmul
                     + setr({"mm.a": 64})               # pc 13
                     + "matmul gemm, 0, int8, 0, 4, 0\n"  # pc 14: the array takes it behind pc 11's 2 steps: 77..148
                     + "halt\n")
    assert (at[3].start, at[3].end) == (3, 3 + DMA_64)
    assert (at[4].start, at[4].end) == (4, 4 + DMA_64)  # its beat (at 68) follows pc 3's on the DRAM channel
    assert (at[11].issue, at[11].start, at[11].end) == (11, 69, 69 + MATMUL_K64)  # waits for its load
    assert (at[12].start, at[12].end) == (12, 77)
    assert at[12].start < at[11].end  # overlapped
    assert (at[14].start, at[14].end) == (77, 77 + MATMUL_K64)  # in the array while pc 11 drains
    assert at[14].start < at[11].end
    assert result.cycles == 148 < 3 * DMA_64 + 2 * MATMUL_K64
    # busy: the cycles each instruction held its unit (a DMA its beat, a matmul its reduction steps)
    assert result.units == {"load": 3, "compute": 2 * 2, "store": 0, "post": 0}
    # the matmuls wait with their unit free: pc 11 for its weights (11..69), pc 14 for its operands
    # (71..77); the loads never wait
    assert result.layers[0]["stall_cycles"] == result.layers[0]["compute_stall"] == (69 - 11) + (77 - 71)
    assert result.unit_cycles["compute"] == {"busy": 4, "stall": 64, "idle": 148 - 4 - 64}
    assert result.unit_cycles["load"] == {"busy": 3, "stall": 0, "idle": 148 - 3}


def test_independent_matmuls_overlap_the_fill_and_a_dependent_one_waits():
    _, at = run(PROLOGUE + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM
                + "matmul gemm, 0, int8, 0, 0, 0\n"  # pc 11: 69..140, writes acc [0, 4)
                + "matmul gemm, 0, int8, 0, 4, 0\n"  # pc 12: writes acc [16, 20): starts after pc 11's 2 steps
                + "matmul gemm, 1, int8, 0, 0, 0\n"  # pc 13: adds to pc 11's accumulators, not the previous
                + "halt\n")                          # matmul's: waits for pc 11's end
    assert at[12].start == at[11].start + 2 and at[12].end == at[12].start + MATMUL_K64
    assert at[13].start == at[11].end


def test_a_matmul_adding_to_its_chains_accumulators_follows_it_in_the_array():
    _, at = run(PROLOGUE + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM
                + "matmul gemm, 0, int8, 0, 4, 0\n"  # pc 11: 69..140, writes acc [16, 20)
                + "matmul gemm, 1, int8, 0, 4, 0\n"  # pc 12: the next K chunk of the same tile: behind pc 11's steps
                + "matmul gemm, 1, int8, 0, 4, 0\n"  # pc 13: and the next, behind pc 12's
                + setr({"mm.m": 2})                      # pc 14: two rows, a 16-way split: another pass shape
                + "matmul gemm, 1, int8, 0, 4, 0\n"  # pc 15: adds to acc [16, 24): waits for pc 13's end
                + "matmul gemm, 0, int8, 0, 4, 0\n"  # pc 16: overwrites them: a new chain, waits for pc 15's end
                + "matmul gemm, 1, int8, 0, 4, 0\n"  # pc 17: follows pc 16
                + "halt\n")
    assert at[12].start == at[11].start + 2 and at[12].end == at[11].end + 2
    assert at[13].start == at[12].start + 2
    assert at[15].start == at[13].end
    assert at[16].start == at[15].end
    assert at[17].start == at[16].start + 4  # K = 64 over 16 rows of a pass: 4 steps


def run_on(target, text):
    machine = Machine(target, np.zeros(4096, np.uint8))
    result = machine.run(encode_program(assemble(text)), trace=True)
    return result, {event.pc: event for event in result.trace}


def test_a_full_queue_stalls_issue():
    rows = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 512})  # pcs 0..2: 8 beats each
    loads = "".join(f"load abuf, {512 * i}, {512 * i}\n" for i in range(6))  # pcs 3..8, each holds the unit 8 cycles
    text = rows + loads + "store abuf, 0x1000, 0xc00\n" + "halt\n"   # pc 9: independent of the loads
    deep, at_deep = run_on(TARGET, text)
    assert at_deep[9].issue == 9  # issued past the queued loads
    assert [at_deep[pc].start for pc in range(3, 9)] == [3 + 8 * i for i in range(6)]
    shallow_target = TargetConfig.from_dict({**TARGET.to_dict(), "load_queue": 2})
    shallow, at = run_on(shallow_target, text)
    # with 2 entries, the load at pc k >= 6 enters the queue when the one at pc k - 2 starts
    assert [at[pc].issue for pc in range(3, 9)] == [3, 4, 5, 3 + 8, 3 + 2 * 8, 3 + 3 * 8]
    assert at[9].issue == at[8].issue + 1  # the store waited behind the full queue
    assert shallow.front_cycles["queue_stall"] == at[8].issue - 8  # pc 8 would have issued at cycle 8
    # the DRAM channel bounds the run: the first latency, then 7 transfers' beats back to back
    assert shallow.cycles == deep.cycles == 3 + 64 + 7 * 8
    for result in (deep, shallow):
        assert sum(result.front_cycles.values()) == result.cycles
        assert all(sum(c.values()) == result.cycles for c in result.unit_cycles.values())


def test_a_load_into_the_half_being_read_waits_for_the_matmul():
    result, at = run(PROLOGUE + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM
                     + "matmul gemm, 0, int8, 0, 0, 0\n"  # pc 11: 69..140, reads abuf [0, 64)
                     + "load abuf, 32, 128\n"       # pc 12: writes abuf [32, 96): write after read
                     + "halt\n")
    assert at[12].start == at[11].end == 140
    assert result.cycles == 140 + DMA_64


def test_store_then_load_of_the_same_dram_bytes_is_ordered():
    result, at = run(PROLOGUE
                     + "store abuf, 0, 512\n"   # pc 3: 3..68, writes DRAM [512, 576)
                     + "load wbuf, 0, 544\n"    # pc 4: reads DRAM [544, 608): waits for the store
                     + "load wbuf, 64, 0\n"     # pc 5: unrelated, but the load unit starts in order
                     + "store abuf, 64, 256\n"  # pc 6: independent of the loads: the store unit took
                     + "halt\n")                # pc 3 for its beat only, so it starts at issue
    assert at[4].start == at[3].end == 68
    assert at[5].start == at[4].start + 1  # behind pc 4's one beat, its latency overlapping
    assert at[6].start == 6
    assert result.cycles == at[5].end


def test_loads_and_stores_share_the_dram_channel():
    """dram_bytes_per_cycle is the core's whole DRAM bandwidth: a store issued beside a load moves
    its bytes after the load's (their latencies overlap), and waits for that as a stall."""
    rows = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 1024})  # pcs 0..2: 16 beats each
    result, at = run_on(TARGET, rows
                        + "load abuf, 0, 0\n"           # pc 3: 3..83, beats 67..83
                        + "store abuf, 1024, 2048\n"    # pc 4: beats 83..99, so 19..99
                        + "halt\n")
    assert (at[3].start, at[3].end) == (3, 3 + 64 + 16)
    assert (at[4].start, at[4].end) == (at[3].end - 64, at[3].end + 16)
    assert result.unit_cycles["store"] == {"busy": 16, "stall": at[4].start - 4, "idle": 99 - 16 - (at[4].start - 4)}
    assert result.cycles == at[4].end
    assert all(sum(c.values()) == result.cycles for c in result.unit_cycles.values())


def test_reads_do_not_conflict_with_reads():
    _, at = run(PROLOGUE + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM
                + "matmul gemm, 0, int8, 0, 0, 0\n"  # pc 11: reads abuf [0, 64) during 69..140
                + "store abuf, 0, 512\n"       # pc 12: reads the same bytes: only waits for the load
                + "halt\n")
    assert at[11].start == 69 and at[12].start == at[3].end == 68


def test_sync_stalls_issue_until_the_unit_is_idle():
    result, at = run(PROLOGUE + "load abuf, 0, 0\n" + "sync 1\n" + "store abuf, 0x100, 512\n" + "halt\n")
    assert at[5].issue == at[3].end == 68  # the load's latency too: the store would otherwise issue at 5
    assert at[5].start == 68
    assert result.cycles == 68 + DMA_64


def test_mode_switch_drains_the_compute_unit():
    _, at = run(PROLOGUE + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM + "matmul gemm, 0, int8, 0, 0, 0\n"
                + "mode bf16\n" + "halt\n")
    assert at[12].start == at[11].end and at[12].end == at[11].end + TARGET.mode_switch


def test_per_layer_counters():
    result, at = run(PROLOGUE + setr({"sys.layer": 1})
                     + "load abuf, 0, 0\nload wbuf, 0, 64\n" + GEMM + "matmul gemm, 0, int8, 0, 0, 0\n"
                     + setr({"sys.layer": 2})
                     + setr({"rq.m": 1, "rq.n": 1, "rq.src_row": 1, "rq.dst_row": 1, "rq.qmin": -128, "rq.qmax": 127})
                     + "requant acc, i8, half_even, 0x200, 0\n"
                     + "store abuf, 0x200, 512\nhalt\n")
    first, second = result.layers[1], result.layers[2]
    load_a, matmul = at[4], at[12]
    assert first["start"] == load_a.start and first["end"] == matmul.end
    assert first["cycles"] == matmul.end - load_a.start
    assert (first["macs"], first["bytes_loaded"], first["bytes_stored"]) == (64, 128, 0)
    assert (first["load_busy"], first["compute_busy"]) == (2, 2)  # beats and reduction steps: latencies overlap
    assert first["pe_utilization"] == 64 / (1024 * first["cycles"])
    requant = next(e for e in result.trace if e.unit == "post" and e.pc > 12)  # the store-path unit
    assert requant.start == matmul.end and requant.end - requant.start == 1 + 4
    assert (second["bytes_stored"], second["macs"], second["post_busy"]) == (64, 0, 1)
    assert second["cycles"] == result.cycles - requant.start
    assert result.layers[0]["instructions"] == 3 and result.instructions == sum(
        layer["instructions"] for layer in result.layers.values())


def test_strided_dma_costs_per_row():
    result, at = run(setr({"dma.planes": 2, "dma.rows": 3, "dma.row_bytes": 100, "dma.dram_row": 128, "dma.dram_plane": 512,
                           "dma.sram_row": 100, "dma.sram_plane": 300}) + "load abuf, 0, 0\nhalt\n")
    assert at[7].end - at[7].start == 64 + 2 * 3 * 2  # 6 rows of ceil(100 / 64) beats
    assert result.layers[0]["bytes_loaded"] == 600


def test_a_run_result_is_a_copy_the_caller_may_change():
    """A run hands back a copy of the prepared program's result (RunResult.copy, not deepcopy): equal
    to it, sharing no dict or list, so changing one run's result leaves the next run's alone."""
    import copy
    import dataclasses

    machine = Machine(TARGET, np.zeros(1024, np.uint8))
    words = encode_program(assemble(PROLOGUE + "load abuf, 0, 0\n" + GEMM + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n"))
    for trace in (False, True):
        first = machine.run(words, trace=trace)
        mine = first.copy()
        assert mine == copy.deepcopy(first)
        for f in dataclasses.fields(first):
            value = getattr(first, f.name)
            if isinstance(value, (dict, list)):
                assert getattr(mine, f.name) is not value, f.name
                for inner in value.values() if isinstance(value, dict) else ():
                    assert not isinstance(inner, (dict, list)) or all(inner is not v for v in getattr(mine, f.name).values())
        first.layers[0]["cycles"] = -1
        first.unit_cycles["load"]["busy"] = -1
        assert machine.run(words, trace=trace) == mine


def test_passes_with_idle_rows_or_columns_split_the_reduction():
    from tcc.isa.cycles import matmul_cycles
    from tcc.isa.weights import INT8_WEIGHTS

    # 196 x 272 x 68: 6 x 8 full passes of 68 steps; 6 passes of the last 16 columns; 8 passes of
    # the last 4 rows, split 8 ways (9 steps each); the corner pass split 8 ways; 64 fill, 3 tree stages
    assert matmul_cycles(TARGET, 196, 272, 68, INT8_WEIGHTS) == 48 * 68 + 6 * 68 + 8 * 9 + 9 + 64 + 3
    # own columns (dwconv/gconv): the 16-column passes split K over the 16 idle columns too
    assert matmul_cycles(TARGET, 196, 272, 68, INT8_WEIGHTS, own_columns=True) == 48 * 68 + 6 * 34 + 8 * 9 + 9 + 64 + 3
    # a short product as before: 4 rows, all 8 ways split, one pass per 32 columns
    assert matmul_cycles(TARGET, 4, 64, 64, INT8_WEIGHTS) == 2 * 8 + 64 + 3
    assert matmul_cycles(TARGET, 64, 64, 64, INT8_WEIGHTS) == 4 * 64 + 64


def test_strided_ranges_conflict_only_where_their_rows_do():
    """Two boxes of rows 64 apart, interleaved (a map's column blocks): neither waits for the
    other; a contiguous range that reaches into one's second row waits for it."""
    rows = setr({"dma.planes": 1, "dma.rows": 2, "dma.row_bytes": 32, "dma.sram_row": 64, "dma.dram_row": 32})
    _, at = run(rows
                + "load abuf, 0, 0\n"      # pc 5: abuf [0, 32) and [64, 96)
                + "load abuf, 32, 64\n"    # pc 6: abuf [32, 64) and [96, 128): no common byte
                + setr({"dma.rows": 1})    # pc 7
                + "load abuf, 80, 128\n"   # pc 8: abuf [80, 112): inside pc 5's second row
                + "halt\n")
    assert at[6].start < at[5].end  # independent: behind pc 5's beats only
    assert at[8].start >= max(at[5].end, at[6].end)


def test_rows_overlap_never_misses_a_common_byte():
    """rows_overlap against the byte sets themselves, on random strided and contiguous ranges
    whose spans overlap: True whenever they share a byte; exact (False otherwise) below EXACT_ROWS."""
    from tcc.isa.simulator.timing import EXACT_ROWS, rows_overlap

    rng = np.random.default_rng(0)

    def draw():
        lo, width = int(rng.integers(0, 200)), int(rng.integers(1, 40))
        if rng.random() < 0.25:
            return (lo, lo + width, 0, 0), set(range(lo, lo + width))
        stride, count = width + int(rng.integers(1, 40)), int(rng.integers(2, 2 * EXACT_ROWS + 8))
        data = {lo + i * stride + b for i in range(count) for b in range(width)}
        return (lo, lo + (count - 1) * stride + width, stride, width), data

    exact = checked = 0
    for _ in range(3000):
        (a, bytes_a), (b, bytes_b) = draw(), draw()
        if not (a[0] < b[1] and b[0] < a[1]):
            continue
        checked += 1
        common = bool(bytes_a & bytes_b)
        got = rows_overlap(a, b)
        assert got or not common, (a, b)
        assert rows_overlap(b, a) == got
        rows = [(r[1] - r[0]) // r[2] + 1 if r[2] else 1 for r in (a, b)]
        if min(rows) <= EXACT_ROWS:
            assert got == common, (a, b)
            exact += not common
    assert checked > 1000 and exact > 50  # pairs told apart that the spans alone would not


def test_strided_rows_of_a_view():
    from tcc.isa.simulator.machine import strided_rows

    assert strided_rows((32, 128), (512, 1), 1) == (512, 128)  # a map's column block
    assert strided_rows((32, 128), (128, 1), 1) is None  # contiguous
    assert strided_rows((1, 4, 8, 16), (0, 8 * 16, 16, 1), 1) is None  # contiguous over two axes
    assert strided_rows((4, 8), (64, 4), 4) == (64, 32)  # int32 accumulator rows
    assert strided_rows((2, 4, 8), (1024, 64, 1), 1) is None  # two strided axes: the span
    assert strided_rows((8, 4), (1, 16), 1) == (16, 8)  # axes in any order: the same bytes
    assert strided_rows((4,), (16,), 1) == (16, 1)  # one-byte rows
    assert strided_rows((4, 2), (16, 0), 1) is None  # a broadcast axis (stride 0): the span
