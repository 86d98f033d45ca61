"""The overlay's cost model for mixed precision (passes/quantize/cost_model.py): per weight layer
and weight format, the bytes the backend stores and the cycles the layer adds to a run.

Both are measured on the target, not modeled beside it: the model is lowered with every layer in
one format, compiled, and simulated (zero inputs: timing does not depend on values), once per
distinct timing of the candidates (int4 and DyBit-4 weights move and multiply alike, so they share
a run).  A layer's bytes are its packed weight constant's in that artifact.  Its cycles are its
share of the run's critical path: the steps run in program order, and each step is charged the
cycles by which its last instruction ends after every earlier step's last instruction -- so a
layer that overlaps its neighbour's stores, shares the DRAM channel with it, or carries a fused
epilogue is charged what it really adds.  The steps between two weight layers (pooling, moves,
element-wise steps, attention) go to the weight layer before them, whose format shapes how they
overlap it, so a uniform plan's prediction is its run's cycles exactly; the steps before the
first weight layer and the final drain are charged once, from the all-int8 run.

Each run is the backend's own code (tile choice, epilogue fusion, store-after-next-load order)
timed by the simulator's cycle model (isa/cycles.py), so the plan follows any change to either.
The one approximation is additivity: a layer's share is taken with its neighbours in its own
format (tests/passes/test_mixed_precision.py holds the plans within 5% of their simulated runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tcc.ir import Module
from tcc.ir.numerics import WeightFormat, parse_weight_format
from tcc.isa.target import TargetConfig, load_target


class LayerCostError(ValueError):
    """A format the overlay's cost model cannot price for a layer."""


@dataclass(frozen=True)
class StepCost:
    """One step (artifact layer) of a simulated run: its name, the cycles it adds to the run's
    critical path, and its packed weight bytes (0 without a weight constant)."""

    name: str
    cycles: int
    weight_bytes: int


@dataclass(frozen=True)
class SimulatedRun:
    cycles: int
    steps: list[StepCost]  # in program order; their cycles add up to ``cycles``, less ``tail``
    tail: int  # cycles after the last step's last instruction (halt, host partitions' none)


def critical_path_shares(layers: list[dict], measured: dict[int, dict]) -> list[StepCost]:
    """Each artifact layer's share of the run: the cycles its last instruction ends after every
    earlier layer's (``measured``: the simulator's per-layer counters by layer index)."""
    reach, out = 0, []
    for index, static in enumerate(layers):
        end = measured.get(index, {}).get("end", 0)
        out.append(StepCost(static["name"], max(end - reach, 0), int(static.get("weight_bytes", 0))))
        reach = max(reach, end)
    return out


def simulate(module: Module, target: TargetConfig) -> SimulatedRun:
    """``module`` compiled for and simulated on ``target`` (zero inputs), with each step's share;
    host partitions of a heterogeneous model take no device cycles."""
    from tcc.backends.artifact import Artifact
    from tcc.isa.simulator import Machine, run_cores

    from .hetero import compile_heterogeneous

    compiled = compile_heterogeneous(module, target)
    artifacts = [compiled] if isinstance(compiled, Artifact) else [p for p in compiled.parts if isinstance(p, Artifact)]
    total, tail, steps = 0, 0, []
    for artifact in artifacts:
        dram = np.zeros(artifact.metadata["dram_bytes"], np.uint8)
        image = np.frombuffer(artifact.dram_image, np.uint8)
        dram[:image.size] = image
        if "core_entries" in artifact.metadata:  # one stream per core over shared DRAM
            result = run_cores(target, dram, artifact.program, artifact.metadata["core_entries"])[0]
        else:
            result = Machine(target, dram).run(artifact.program)
        shares = critical_path_shares(artifact.metadata["layers"], result.layers)
        steps += shares
        total += result.cycles
        tail += result.cycles - sum(s.cycles for s in shares)
    return SimulatedRun(total, steps, tail)


def simulated_cycles(module: Module, target: TargetConfig) -> int:
    """Cycles of ``module`` compiled for and simulated on ``target`` (zero inputs)."""
    return simulate(module, target).cycles


def timing_key(fmt: WeightFormat) -> tuple[int, bool]:
    """What of a weight format the overlay's timing and packing see: its bits and whether each row
    carries its own DyBit cap (the decoder's other fields change values, not cycles or bytes)."""
    return fmt.bits, fmt.row_caps


class OverlayCostModel:
    """Costs on one overlay target (the default TATAA-style core unless given)."""

    def __init__(self, target: TargetConfig | None = None):
        self.target = target or load_target()

    @staticmethod
    def check_format(name: str) -> WeightFormat:
        if not (name.startswith("int") or name.startswith("dybit")):
            raise LayerCostError(f"the overlay's cost model prices integer weight formats, not {name}")
        return parse_weight_format(name)

    def simulated_cycles(self, module: Module) -> int:
        return simulate(module, self.target).cycles

    def layer_costs(self, lower: Callable[[dict[str, str]], Module], layers: list[tuple[str, str]], candidates):
        """``lower(formats)``: the model quantized with those weight formats by layer name (others
        int8); ``layers``: (name, location) of each weight layer, the location being the ONNX node
        the artifact names its step after."""
        from tcc.passes.quantize.cost_model import LayerCosts

        keys = [timing_key(self.check_format(name)) for name in candidates]
        runs: dict[tuple[int, bool], SimulatedRun] = {}
        for key, fmt in zip(keys, candidates):
            if key not in runs:
                runs[key] = simulate(lower({name: fmt for name, _ in layers}), self.target)
        int8 = runs.get(timing_key(parse_weight_format("int8"))) or simulate(lower({}), self.target)
        shape = (len(layers), len(candidates))
        nbytes, cycles = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        for j, key in enumerate(keys):
            nbytes[:, j], cycles[:, j] = layer_shares(runs[key], layers)
        int8_bytes, int8_cycles = layer_shares(int8, layers)
        t = self.target
        description = (f"overlay {t.name}: {t.array_rows}x{t.array_cols} int8 MAC slots, 2/4 weights per slot at "
                       f"<=4/<=2 bits, packed weights; each layer's share of the critical path of a simulated "
                       f"run in its format ({len(runs)} runs), the rest from the all-int8 run ({int8.cycles} cycles)")
        return LayerCosts(nbytes, cycles, int8.cycles - int(int8_cycles.sum()), float(t.clock_mhz), description)


def layer_shares(run: SimulatedRun, layers: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(weight bytes, cycles) of each weight layer in ``run``: the sums over the steps named after
    its location (the artifact names steps by ONNX node), the cycles with those of the steps up to
    the next weight layer's.  Layers without one (a module written as
    IR text) take the weight-carrying steps no layer claims by name, in program order; a layer
    with no step at all runs on the host and costs the device nothing."""
    index: dict[str, int] = {}
    for i, (name, loc) in enumerate(layers):
        index.setdefault(loc or name, i)
    unnamed = iter([i for i in range(len(layers)) if not any(s.name == (layers[i][1] or layers[i][0])
                                                              for s in run.steps)])
    nbytes, cycles = np.zeros(len(layers), np.int64), np.zeros(len(layers), np.int64)
    last = None  # the weight layer the steps since belong to
    for step in run.steps:
        i = index.get(step.name)
        if i is None and step.weight_bytes:
            i = next(unnamed, None)
        if i is not None:
            nbytes[i] += step.weight_bytes
            last = i
        if last is not None:
            cycles[last] += step.cycles
    return nbytes, cycles
