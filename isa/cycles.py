"""The cycle cost of one instruction, from the target (docs/overlay-machine.md, "Cycle model").

One definition shared by the simulator, which times every instruction with it, and the code
generator, whose tile search costs candidate tilings with it.
"""
from __future__ import annotations

from tcc.ir.numerics import WeightFormat

from .target import TargetConfig
from .weights import reduction_steps


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def dma_cycles(target: TargetConfig, rows: int, row_bytes: int) -> int:
    """A load/store of ``rows`` rows (all planes together) of ``row_bytes`` bytes: the transfer
    latency plus whole DRAM beats per row."""
    return target.dma_latency + rows * _ceil(row_bytes, target.dram_bytes_per_cycle)


def dram_beats(target: TargetConfig, cycles: int) -> int:
    """The cycles a load/store of ``cycles`` (``dma_cycles``; 0 for none) holds the DRAM channel:
    its beats, which follow its latency.  ``dram_bytes_per_cycle`` is the core's whole DRAM
    bandwidth, so the load and store units' beats never overlap (their latencies may)."""
    return max(cycles - target.dma_latency, 0)


def matmul_cycles(target: TargetConfig, m: int, n: int, k: int, fmt: WeightFormat, own_columns: bool = False) -> int:
    """The cycles of ``matmul_timing``."""
    return matmul_timing(target, m, n, k, fmt, own_columns)[0]


def matmul_timing(target: TargetConfig, m: int, n: int, k: int, fmt: WeightFormat,
                  own_columns: bool = False) -> tuple[int, int]:
    """One matmul of an ``m x n`` output over a reduction of ``k`` weights of format ``fmt``: per
    array pass of up to array_rows x array_cols outputs, the reduction steps of one slice of K
    (isa/weights.py), plus the array's fill and drain and the adder tree's stages.

    A pass with fewer output rows than the array (a short product, or the last rows of a tall
    one) gives each output row ``s = array_rows // rows`` array rows, each reducing its own slice
    of K, the partial sums added by an adder tree at the array's edge.  ``matmul_timing`` gives
    (cycles, latency): the fill, drain and tree are the array's pipeline, which the next matmul
    enters behind this one's last reduction step (timing.py).  With ``own_columns``
    (dwconv and gconv, where every column reads its own activations) a pass with idle columns
    splits K over them the same way, ``array_cols // columns`` columns per output column."""
    rows_full, rows_left = divmod(m, target.array_rows)
    cols_full, cols_left = divmod(n, target.array_cols)
    row_split = target.array_rows // rows_left if rows_left else 1
    col_split = target.array_cols // cols_left if cols_left and own_columns else 1
    steps = rows_full * (cols_full * reduction_steps(k, fmt) + (reduction_steps(_ceil(k, col_split), fmt)
                                                               if cols_left else 0))
    if rows_left:
        steps += cols_full * reduction_steps(_ceil(k, row_split), fmt)
        if cols_left:
            steps += reduction_steps(_ceil(k, max(row_split, col_split)), fmt)
    # the largest split of a pass that exists (a split of leftover rows or columns with no pass is none)
    split = max(row_split if rows_left and (cols_full or cols_left) else 1,
                col_split if cols_left and (rows_full or rows_left) else 1)
    tree = (split - 1).bit_length()
    latency = target.array_rows + target.array_cols + tree
    return steps + latency, latency


POST_LATENCY = 4  # stages of the store-path unit's pipeline


def post_cycles(target: TargetConfig, elements: int) -> int:
    """requant/eadd/emul/lut/copy on the store-path unit: ``post_lanes`` elements per cycle plus
    its 4-stage pipeline (``POST_LATENCY``)."""
    return _ceil(elements, target.post_lanes) + POST_LATENCY


def simd_cycles(target: TargetConfig, elements: int) -> int:
    """A bf16 vector instruction over ``elements`` lanes' worth of work: one pass per
    ``simd_lanes`` elements plus the SIMD pipeline's latency (``simd_latency``, which overlaps the
    unit's next instruction unless that one reads the result: timing.py)."""
    return _ceil(elements, target.simd_lanes) + target.simd_latency


LANE_TABLE = 256  # entries of vlut's table (16-bit patterns), indexed by a lane's low byte


def lane_table_cycles(target: TargetConfig, elements: int) -> int:
    """``vlut`` over ``elements`` lanes: the table copied into every lane's own table memory first
    (``LANE_TABLE`` entries broadcast over the ``simd_lanes``-wide vbuf port, one pass per
    ``simd_lanes`` entries), then one pass per ``simd_lanes`` elements, each lane reading its own
    copy (a 256 x 16-bit LUT RAM per lane: one read port each, no bank conflicts), plus the
    pipeline's latency."""
    return _ceil(LANE_TABLE, target.simd_lanes) + simd_cycles(target, elements)


def reduction_cycles(target: TargetConfig, length: int, row: int) -> int:
    """``vred`` of ``length`` elements in rows of ``row``: a pairwise tree, one SIMD pass per level,
    each level waiting for the last (every level's latency but the last is paid in the unit)."""
    cycles, width = 0, row
    while width > 1:
        pairs = width // 2
        cycles += simd_cycles(target, (length // row) * pairs)
        width -= pairs
    return max(cycles, simd_cycles(target, length // row))
