"""What mixed precision trades: each weight layer's stored bytes and cycles in each candidate format,
as the target computes them.

The quantizer does not model hardware itself: the target's backend provides a ``CostModel``
(tcc's overlay: backends/overlay/layer_costs.py, which compiles and simulates the model in each
format and charges each layer its packed weight bytes and its share of the run) and the driver
hands it to the pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from tcc.ir import Module

# bf16 is a format mixed precision could give a layer (the bf16 lanes); no cost model prices it yet.
BF16 = "bf16"


@dataclass(frozen=True)
class LayerCost:
    """What the quantizer knows of one weight layer's size."""

    weights: int  # number of weight elements
    macs: int  # multiply-accumulates per inference


@dataclass(frozen=True)
class LayerCosts:
    """Costs of every (layer, candidate) and of the rest of the model."""

    bytes: np.ndarray  # [layer, candidate]: stored weight bytes, exactly as the target packs them
    cycles: np.ndarray  # [layer, candidate]: the cycles the layer adds to a run of the model
    other_cycles: int  # cycles of everything else: the model's total = other + its layers'
    clock_mhz: float
    description: str  # one line for the plan's report


class CostModel(Protocol):
    def layer_costs(self, lower: Callable[[dict[str, str]], Module], layers: list[tuple[str, str]],
                    candidates: tuple[str, ...]) -> LayerCosts:
        """Costs of each weight layer, given as (result name, ONNX node), in each candidate format;
        ``lower(formats)`` is the model quantized with those formats by layer name (others int8)."""
        ...

    def simulated_cycles(self, module: Module) -> int | None:
        """Cycles of the quantized ``module`` run on the target; None if this model cannot run it."""
        ...
