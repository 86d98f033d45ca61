"""Per-layer weight bytes and modeled cycles of each weight format: the costs mixed precision trades.

STAND-IN: this is a small analytic model of the TATAA-style overlay (an int8 systolic array plus
a bf16 SIMD mode), written so mixed precision has something hardware-shaped to optimise against.
It is to be replaced by the overlay target's own cost model when that target lands; only
``OverlayCostModel.cycles`` and ``weight_bytes`` are used by the mixed-precision pass.

    cycles(layer, format) = ceil(max(MACs / macs_per_cycle(format),
                                     weight_bytes(format) / weight_bytes_per_cycle))
                            + layer_overhead_cycles

What it leaves out: array utilisation (a depthwise conv or a layer with few channels cannot fill
a 32x32 array, so its real cycles are higher), activation traffic, overlap between layers, and
the non-weight ops (pooling, additions, requantization) entirely.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .params import QuantizationError

# Formats a weight layer can take in mixed precision: the integer weight formats of params.py
# (int8 activations) and bf16 (the whole layer stays on the bf16 SIMD lanes).
BF16 = "bf16"


def weight_bits(fmt: str) -> int:
    """Stored bits per weight: int8 8, int4 4, dybitN N (packed), bf16 16."""
    if fmt == BF16:
        return 16
    m = re.fullmatch(r"(?:int|dybit)([0-9])", fmt)
    if m is None:
        raise QuantizationError(f"the cost model knows no weight format {fmt!r}")
    return int(m.group(1))


@dataclass(frozen=True)
class LayerCost:
    """What the cost model needs to know of one weight layer."""

    weights: int  # number of weight elements
    macs: int  # multiply-accumulates per inference


@dataclass(frozen=True)
class OverlayCostModel:
    """Parameters of the stand-in overlay model; defaults follow the TATAA notes.

    - ``dsps`` x ``int8_macs_per_dsp``: int8 MACs per cycle of the systolic array (512 DSPs, two
      int8 MACs packed per DSP: 1024 MACs/cycle, a 32x32 PE array).
    - ``low_bit_speedup``: weights of at most ``low_bit_max_bits`` bits pack that many times more
      MACs per DSP (int4, dybit4: 2x); 5- to 8-bit weights (dybit6, int8) run at the int8 rate.
    - ``bf16_lanes``: the bf16 SIMD mode does one fused multiply-add per lane per cycle (128
      lanes: 8x slower than the int8 array on matrix work).
    - ``weight_bytes_per_cycle``: weight DMA bandwidth; a layer is never faster than streaming
      its weights once.
    - ``layer_overhead_cycles``: fixed cost per layer (array fill and drain, 32 + 32 cycles).
    - ``clock_mhz``: only to print modeled latency in microseconds.
    """

    dsps: int = 512
    int8_macs_per_dsp: int = 2
    low_bit_speedup: int = 2
    low_bit_max_bits: int = 4
    bf16_lanes: int = 128
    weight_bytes_per_cycle: float = 32.0
    layer_overhead_cycles: int = 64
    clock_mhz: float = 225.0

    def weight_bytes(self, layer: LayerCost, fmt: str) -> int:
        """Packed weight storage: int4/dybit4 0.5 B, dybit6 0.75 B, int8 1 B, bf16 2 B per weight."""
        return math.ceil(layer.weights * weight_bits(fmt) / 8)

    def macs_per_cycle(self, fmt: str) -> int:
        if fmt == BF16:
            return self.bf16_lanes
        rate = self.dsps * self.int8_macs_per_dsp
        return rate * self.low_bit_speedup if weight_bits(fmt) <= self.low_bit_max_bits else rate

    def cycles(self, layer: LayerCost, fmt: str) -> int:
        compute = layer.macs / self.macs_per_cycle(fmt)
        transfer = self.weight_bytes(layer, fmt) / self.weight_bytes_per_cycle
        return math.ceil(max(compute, transfer)) + self.layer_overhead_cycles

    def microseconds(self, cycles: int) -> float:
        return cycles / self.clock_mhz
