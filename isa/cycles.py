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


def split_factor(target: TargetConfig, m: int) -> int:
    """How many slices of the reduction the array runs side by side for an ``m``-row product:
    fewer output rows than array rows leave rows idle, so each output row takes
    ``array_rows // m`` rows, each reducing its own slice of K (partial sums added by an adder
    tree at the array's edge)."""
    return max(1, target.array_rows // m) if 0 < m < target.array_rows else 1


def matmul_cycles(target: TargetConfig, m: int, n: int, k: int, fmt: WeightFormat) -> int:
    """One matmul of an ``m x n`` output over a reduction of ``k`` weights of format ``fmt``: per
    array pass of array_rows x array_cols outputs, the reduction steps of one slice (isa/weights.py),
    plus the array's fill and drain and the adder tree's stages."""
    split = split_factor(target, m)
    tree = (split - 1).bit_length()
    return (_ceil(m * split, target.array_rows) * _ceil(n, target.array_cols) * reduction_steps(_ceil(k, split), fmt)
            + target.array_rows + target.array_cols + tree)


def post_cycles(target: TargetConfig, elements: int) -> int:
    """requant/eadd/emul/lut/copy on the store-path unit: ``post_lanes`` elements per cycle plus
    its 4-stage pipeline."""
    return _ceil(elements, target.post_lanes) + 4
