"""The overlay's cost model for mixed precision (passes/quantize/cost_model.py): per weight layer
and weight format, the bytes the backend stores and the cycles of the tile loop it would emit.

Bytes are the packed weight constants exactly as emit_conv / emit_gemm write them.  Cycles are
the tile search's own estimates (tiling.py: the busiest unit of the loop plus its first load and
last store), for the tiles the backend would choose in that format.  The rest of the model --
pooling, element-wise steps, layout moves, and how layers overlap -- is taken from one
simulation of the all-int8 model on the target: its cycles minus its layers' int8 estimates.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, Op, constant_value
from tcc.ir.numerics import WeightFormat, parse_weight_format
from tcc.isa.target import TargetConfig, load_target
from tcc.isa.weights import row_bytes
from tcc.passes.quantize.lowering import matrix_operands

from .context import Buffers
from .tiling import choose_conv_tiles, choose_gemm_tiles, conv_geometry


class LayerCostError(ValueError):
    """A format the overlay's cost model cannot price for a layer."""


def gemm_weight_bytes(n: int, k: int, fmt: WeightFormat, tn: int, kt: int) -> int:
    """Bytes of emit_matrix.gemm_weight_tiles: each (row tile, reduction chunk) block packed on its own."""
    return sum(min(tn, n - n0) * row_bytes(min(kt, k - k0), fmt) for n0 in range(0, n, tn) for k0 in range(0, k, kt))


def layer_cost(op: Op, fmt: WeightFormat, buffers: Buffers, target: TargetConfig) -> tuple[int, int]:
    """(weight bytes, modeled cycles) of the float conv / linear / matmul ``op`` with weights in ``fmt``."""
    x, w_in, _ = matrix_operands(op)
    w = constant_value(w_in)
    if op.kind == "conv":
        g = conv_geometry(x.type.shape, w.shape, op.result.type.shape, op.strides, op.dilations, op.group,
                          fmt, buffers)
        tiles = choose_conv_tiles(g, buffers, target)
        if tiles is None:
            raise LayerCostError("not even one output row of one channel fits the on-chip buffers")
        return g.n * row_bytes(g.k, fmt) + caps_bytes(g.n, fmt), tiles.cycles
    n, k = (w.shape[1], w.shape[0]) if op.kind == "matmul" else w.shape
    m = x.type.size // k
    gemm = choose_gemm_tiles(m, n, k, fmt, buffers, target)
    return gemm_weight_bytes(n, k, fmt, gemm.tn, gemm.kt) + caps_bytes(n, fmt), gemm.cycles


def caps_bytes(n: int, fmt: WeightFormat) -> int:
    """The per-row caps stored beside ``n`` rows of a per-row DyBit format (a byte each)."""
    return n if fmt.row_caps else 0


class OverlayCostModel:
    """Costs on one overlay target (the default TATAA-style core unless given)."""

    def __init__(self, target: TargetConfig | None = None):
        self.target = target or load_target()
        self.buffers = Buffers.of(self.target)

    def format_costs(self, op: Op, name: str) -> tuple[int, int]:
        if not (name.startswith("int") or name.startswith("dybit")):
            raise LayerCostError(f"the overlay's cost model prices integer weight formats, not {name}")
        return layer_cost(op, parse_weight_format(name), self.buffers, self.target)

    def layer_costs(self, source: Module, int8_module: Module, layer_names: list[str], candidates):
        from tcc.passes.quantize.cost_model import LayerCosts

        ops = {op.result.name: op for op in source.ops}
        shape = (len(layer_names), len(candidates))
        nbytes, cycles = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        for i, name in enumerate(layer_names):
            for j, fmt in enumerate(candidates):
                nbytes[i, j], cycles[i, j] = self.format_costs(ops[name], fmt)
        int8 = sum(self.format_costs(ops[name], "int8")[1] for name in layer_names)
        total = simulated_cycles(int8_module, self.target)
        t = self.target
        description = (f"overlay {t.name}: {t.array_rows}x{t.array_cols} int8 MAC slots, 2/4 weights per slot at "
                       f"<=4/<=2 bits, packed weights; the tile search's estimates, other steps from one "
                       f"simulation of the all-int8 model ({total} cycles)")
        return LayerCosts(nbytes, cycles, total - int8, float(t.clock_mhz), description)


def simulated_cycles(module: Module, target: TargetConfig) -> int:
    """Cycles of ``module`` compiled for and simulated on ``target`` (zero inputs: timing does not
    depend on values); host partitions of a heterogeneous model take none."""
    from tcc.backends.artifact import Artifact
    from tcc.isa.simulator import Machine, run_cores

    from .hetero import compile_heterogeneous

    compiled = compile_heterogeneous(module, target)
    artifacts = [compiled] if isinstance(compiled, Artifact) else [p for p in compiled.parts if isinstance(p, Artifact)]
    total = 0
    for artifact in artifacts:
        dram = np.zeros(artifact.metadata["dram_bytes"], np.uint8)
        image = np.frombuffer(artifact.dram_image, np.uint8)
        dram[:image.size] = image
        if "core_entries" in artifact.metadata:  # one stream per core over shared DRAM
            total += run_cores(target, dram, artifact.program, artifact.metadata["core_entries"])[0].cycles
        else:
            total += Machine(target, dram).run(artifact.program).cycles
    return total
