"""Hardware-aware mixed precision: one weight format per layer, least error under a budget.

After DyBit's framework (arXiv 2302.12510), adapted: (1) calibrate activation ranges once;
(2) measure each weight layer's sensitivity to each candidate format on calibration samples
(sensitivity.py; errors assumed additive); (3) cost each (layer, format) in weight bytes and
cycles with the target's own cost model (cost_model.py; the overlay's is
backends/overlay/layer_costs.py, handed to the pass by the driver as ``cost_model``); (4) find the exact
(cost, error) Pareto front by dynamic programming and take its best point within the budget
(assignment.py); (5) lower with those per-layer formats, so the IR shows them: weight constants
carry ``format = "dybit4"`` etc., bf16 layers are bf16 ops.  The plan -- table, totals, front --
is kept on the pass as ``plan`` for the CLI to print and Python callers to read.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tcc.ir import Module
from tcc.ir.interpreter import run_module

from ..base import Pass
from .assignment import cheapest_cost, pareto_front
from .calibration import DEFAULT_CALIBRATION, Executor, calibrate, load_samples
from .cost_model import BF16, CostModel, LayerCosts
from .lowering import LoweringConfig
from .rules import lower_module
from .params import WEIGHT_FORMATS, QuantizationError
from .sensitivity import Layer, Mapper, Sensitivity, measure_sensitivity, model_error, weight_layers

DEFAULT_CANDIDATES = ("int8", "int4", "dybit4", "dybit6")
MAX_LISTED_LAYERS = 16  # wider models print a format count per front point instead


def parse_candidates(text: str) -> tuple[str, ...]:
    """``"int8/int4/bf16"`` (or comma-separated) -> formats, checked and without repeats."""
    names = [t.strip() for t in text.replace(",", "/").split("/") if t.strip()]
    if not names:
        raise QuantizationError("candidates is empty; give formats like int8/int4/dybit4/bf16")
    known = WEIGHT_FORMATS + (BF16,)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise QuantizationError(f"unknown candidate format(s) {', '.join(map(repr, unknown))}; choose from "
                                f"{', '.join(known)}")
    return tuple(dict.fromkeys(names))


def short_format(fmt: str) -> str:
    return fmt.replace("dybit", "d").replace("int", "i")


@dataclass(frozen=True)
class LayerChoice:
    layer: Layer
    format: str
    bytes: int
    cycles: int
    sensitivity: float  # output error added over the all-int8 model (may be negative)


@dataclass(frozen=True)
class FrontPoint:
    bytes: int
    cycles: int
    error: float  # predicted output error: all-int8 error + sum of the layers' sensitivities
    formats: tuple[str, ...]


@dataclass
class MixedPrecisionPlan:
    """The outcome of mixed precision: the chosen formats, their costs and the front explored."""

    budget_kind: str  # "bytes" (weight memory) or "cycles" (modeled latency)
    budget: int
    choices: list[LayerChoice]
    front: list[FrontPoint]  # Pareto front of the budgeted cost vs predicted error
    chosen: int  # index of the chosen point in ``front``
    sensitivity: Sensitivity
    costs: LayerCosts
    unit: int = 1  # cost rounding of the search (1: exact)
    measured_error: float | None = None  # of the lowered model, on the same samples
    simulated_cycles: int | None = None  # of the lowered model on the target, when its cost model runs it
    all_int8: tuple[int, int] = (0, 0)  # (bytes, cycles) with every layer int8, for comparison

    def at(self, index: int) -> MixedPrecisionPlan:
        """This plan with point ``index`` of its front chosen instead."""
        candidates, costs = self.sensitivity.candidates, self.costs
        choices = []
        for i, (choice, fmt) in enumerate(zip(self.choices, self.front[index].formats)):
            j = candidates.index(fmt)
            choices.append(LayerChoice(choice.layer, fmt, int(costs.bytes[i, j]), int(costs.cycles[i, j]),
                                       float(self.sensitivity.deltas[i, j])))
        return replace(self, choices=choices, chosen=index, simulated_cycles=None)

    @property
    def layer_weights(self) -> dict[str, str]:
        return {c.layer.name: c.format for c in self.choices}

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.choices)

    @property
    def total_cycles(self) -> int:
        """Predicted cycles of the whole model: its weight layers' plus everything else's."""
        return self.costs.other_cycles + sum(c.cycles for c in self.choices)

    @property
    def predicted_error(self) -> float:
        return self.front[self.chosen].error

    def format_report(self, max_front_rows: int = 24) -> str:
        return "\n".join(_table_lines(self) + [""] + _front_lines(self, max_front_rows))


def _table_lines(plan: MixedPrecisionPlan) -> list[str]:
    s = plan.sensitivity
    unit = "weight bytes" if plan.budget_kind == "bytes" else "cycles of the whole model"
    width = max([len(c.layer.label) for c in plan.choices] + [5])
    lines = [f"mixed precision: budget {plan.budget} {unit}; sensitivity = rise of the output's relative "
             f"MSE vs float over the all-int8 model's ({s.base_error:.3e}), on {s.samples} calibration samples",
             f"{'layer':<{width}}  {'kind':<6} {'MACs':>10}  {'format':<7} {'bytes':>8} {'cycles':>8}  "
             f"{'sensitivity':>11}"]
    for c in plan.choices:
        lines.append(f"{c.layer.label:<{width}}  {c.layer.kind:<6} {c.layer.cost.macs:>10}  {c.format:<7} "
                     f"{c.bytes:>8} {c.cycles:>8}  {c.sensitivity:>+11.3e}")
    measured = "" if plan.measured_error is None else f", measured {plan.measured_error:.3e}"
    lines.append(f"{'total':<{width}}  {'':<6} {sum(c.layer.cost.macs for c in plan.choices):>10}  "
                 f"{'':<7} {plan.total_bytes:>8} {plan.total_cycles - plan.costs.other_cycles:>8}  "
                 f"{plan.predicted_error - s.base_error:>+11.3e}")
    costs = plan.costs
    simulated = "" if plan.simulated_cycles is None else f", {plan.simulated_cycles} simulated"
    lines.append(f"output error: predicted {plan.predicted_error:.3e}{measured}; whole model: "
                 f"{plan.total_cycles} cycles predicted (the layers' plus {costs.other_cycles} for the rest)"
                 f"{simulated}, "
                 f"{plan.total_cycles / costs.clock_mhz:.2f} us at {costs.clock_mhz:g} MHz; all int8: "
                 f"{plan.all_int8[0]} bytes, {plan.all_int8[1]} cycles")
    lines.append(f"cost model: {costs.description}")
    for (name, fmt), why in sorted(plan.sensitivity.failures.items()):
        lines.append(f"not a candidate: {fmt} for {name}: {why}")
    return lines


def _front_lines(plan: MixedPrecisionPlan, max_rows: int) -> list[str]:
    n = len(plan.front)
    shown = sorted(set(np.linspace(0, n - 1, min(n, max_rows)).round().astype(int)) | {plan.chosen})
    rounding = f"; costs rounded up to {plan.unit} for the search" if plan.unit > 1 else ""
    lines = [f"Pareto front ({plan.budget_kind} vs predicted output error): {n} points"
             + (f", {len(shown)} shown" if len(shown) < n else "") + rounding,
             f"  {'bytes':>8} {'cycles':>8} {'error':>10}  "
             + ("formats per layer (in table order)" if len(plan.choices) <= MAX_LISTED_LAYERS
                else "layers per format")]
    for i in shown:
        p = plan.front[i]
        if len(p.formats) <= MAX_LISTED_LAYERS:
            formats = " ".join(short_format(f) for f in p.formats)
        else:
            formats = " ".join(f"{short_format(f)}x{p.formats.count(f)}" for f in plan.sensitivity.candidates
                               if f in p.formats)
        mark = "*" if i == plan.chosen else " "
        lines.append(f"{mark} {p.bytes:>8} {p.cycles:>8} {p.error:>10.3e}  {formats}")
    return lines


def budget_of(budget_bytes: int, budget_cycles: int) -> tuple[str, int]:
    """("bytes" | "cycles", value) of the one positive budget given."""
    if (budget_bytes > 0) == (budget_cycles > 0):
        raise QuantizationError("mixed precision needs exactly one positive budget: budget_bytes=N "
                                "(weight memory) or budget_cycles=N (modeled latency); CLI: "
                                "--budget-bytes N or --budget-cycles N")
    return ("bytes", budget_bytes) if budget_bytes > 0 else ("cycles", budget_cycles)


def check_budget(kind: str, budget: int, costs: np.ndarray, usable: np.ndarray, candidates, fixed: int = 0) -> None:
    """Refuse a budget below every layer's cheapest usable candidate (plus ``fixed``, the cycles
    outside the weight layers), naming that minimum."""
    floor = cheapest_cost(costs, np.where(usable, 0.0, np.inf)) + fixed
    if budget < floor:
        what = "weight memory" if kind == "bytes" else "cycles"
        raise QuantizationError(f"budget_{kind}={budget} is below the least achievable {what}, {floor} "
                                f"(every layer in its cheapest of {'/'.join(candidates)}); "
                                f"raise the budget to at least {floor}")


def plan_mixed_precision(layers: list[Layer], sensitivity: Sensitivity, costs: LayerCosts, *, budget_bytes: int = 0,
                         budget_cycles: int = 0) -> MixedPrecisionPlan:
    """Choose each layer's format from measured sensitivities and the target's costs, under exactly
    one budget (cycles: of the whole model, the layers' share being the budget less ``other_cycles``)."""
    kind, budget = budget_of(budget_bytes, budget_cycles)
    candidates = sensitivity.candidates
    tables = {"bytes": costs.bytes, "cycles": costs.cycles}
    fixed = costs.other_cycles if kind == "cycles" else 0
    deltas = sensitivity.deltas
    check_budget(kind, budget, tables[kind], np.isfinite(deltas), candidates, fixed)
    front = pareto_front(deltas, tables[kind])
    chosen = front.best_within(budget - fixed)
    if chosen is None:  # only possible when the search rounded costs
        raise QuantizationError(f"no assignment found within budget_{kind}={budget} at the search's cost "
                                f"resolution of {front.unit}; raise the budget slightly")
    rows = np.arange(len(layers))
    points = [FrontPoint(int(tables["bytes"][rows, c].sum()), costs.other_cycles + int(tables["cycles"][rows, c].sum()),
                         sensitivity.base_error + float(e), tuple(candidates[j] for j in c))
              for c, e in zip(front.choices, front.errors)]
    choices = [LayerChoice(l, candidates[j], int(tables["bytes"][i, j]), int(tables["cycles"][i, j]),
                           float(deltas[i, j]))
               for i, (l, j) in enumerate(zip(layers, front.choices[chosen]))]
    int8 = [candidates.index("int8")] * len(layers) if "int8" in candidates else None
    all_int8 = (0, 0) if int8 is None else (int(tables["bytes"][rows, int8].sum()),
                                            costs.other_cycles + int(tables["cycles"][rows, int8].sum()))
    return MixedPrecisionPlan(kind, budget, choices, points, chosen, sensitivity, costs, front.unit,
                              all_int8=all_int8)


def spread_subset(samples: list, count: int) -> list:
    """``count`` samples spread evenly over the set (calibration files are often sorted by class)."""
    if count <= 0 or count >= len(samples):
        return samples
    return [samples[i] for i in np.linspace(0, len(samples) - 1, count).round().astype(int)]


@dataclass
class MixedPrecision(Pass):
    """Per-layer weight formats chosen under a weight-memory or modeled-latency budget."""

    name = "mixed-precision"
    summary = ("quantize with a weight format per layer chosen under budget_bytes or budget_cycles "
               "(needs calib=FILE.npz)")
    calib: str = ""
    budget_bytes: int = 0
    budget_cycles: int = 0
    candidates: str = "/".join(DEFAULT_CANDIDATES)
    sensitivity_samples: int = 64
    method: str = DEFAULT_CALIBRATION
    percentile: float = 99.99
    symmetric: bool = False
    rounding: str = "half_even"
    max_samples: int = 0
    #: Where calibration and the sensitivity sweep run (not options: the driver sets them to its
    #: evaluation engine's process pool with --workers N); None: here, serially.  Same result either way.
    executor: Executor | None = field(default=None, init=False, repr=False, compare=False)
    mapper: Mapper | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.plan: MixedPrecisionPlan | None = None  # the result of the last apply (not an option)
        self.cost_model: CostModel | None = None  # the target's, set by the driver (not an option)

    def within_budget_simulated(self, plan: MixedPrecisionPlan, lower) -> tuple[MixedPrecisionPlan, Module]:
        """The plan lowered, its cycles measured on the target when the cost model can; under a
        cycles budget a plan whose run exceeds it gives way to the next cheaper point of the front
        (the per-layer costs add up only nearly: tests/passes/test_mixed_precision.py)."""
        assert self.cost_model is not None
        for index in range(plan.chosen, -1, -1):
            candidate = plan.at(index)
            lowered = lower(candidate.layer_weights)
            cycles = self.cost_model.simulated_cycles(lowered)
            candidate.simulated_cycles = cycles
            if cycles is None or plan.budget_kind != "cycles" or cycles <= plan.budget:
                return candidate, lowered
        raise QuantizationError(f"no plan of the front runs within budget_cycles={plan.budget} on the target "
                                f"(the cheapest: {cycles} cycles simulated); raise the budget")

    def apply(self, module: Module) -> None:
        candidates = parse_candidates(self.candidates)
        if self.rounding not in ("half_even", "half_up"):
            raise QuantizationError(f"rounding {self.rounding!r} is not half_even or half_up")
        budget_of(self.budget_bytes, self.budget_cycles)
        if not self.calib:
            raise QuantizationError("mixed-precision needs calibration data: pass calib=FILE.npz "
                                    "(CLI: --calib FILE.npz)")
        if self.cost_model is None:
            raise QuantizationError("mixed-precision needs the target's cost model: compile with tcc compile "
                                    "--quant mixed (the overlay's), or set the pass's cost_model in Python")
        layers = weight_layers(module)
        if not layers:
            raise QuantizationError("mixed-precision found no conv/linear/matmul with constant weights to "
                                    "choose formats for; use the quantize pass")
        samples = load_samples(self.calib, module, self.max_samples)
        ranges = calibrate(module, None if self.executor else samples, self.method, self.percentile,
                           progress=lambda done, total: self.report_progress("calibrating", done, total),
                           executor=self.executor)
        config = LoweringConfig(symmetric=self.symmetric, rounding=self.rounding)
        try:
            costs = self.cost_model.layer_costs(
                lambda formats: lower_module(module, ranges, replace(config, layer_weights=formats)),
                [(l.name, l.loc) for l in layers], candidates)
        except ValueError as exc:
            raise QuantizationError(f"mixed-precision: {exc}; choose --candidates among "
                                    f"{', '.join(WEIGHT_FORMATS)}") from None
        kind, budget = budget_of(self.budget_bytes, self.budget_cycles)
        check_budget(kind, budget, costs.bytes if kind == "bytes" else costs.cycles,
                     np.ones(costs.bytes.shape, bool), candidates,
                     costs.other_cycles if kind == "cycles" else 0)  # before measuring
        subset = spread_subset(samples, self.sensitivity_samples)
        reference = [run_module(module, s) for s in subset]
        sensitivity = measure_sensitivity(module, ranges, layers, candidates, subset, reference, config,
                                          lambda done, total: self.report_progress("sensitivity", done, total),
                                          self.mapper)
        plan = plan_mixed_precision(layers, sensitivity, costs, budget_bytes=self.budget_bytes,
                                    budget_cycles=self.budget_cycles)
        plan, lowered = self.within_budget_simulated(
            plan, lambda formats: lower_module(module, ranges, replace(config, layer_weights=formats)))
        plan.measured_error = model_error(lowered, subset, reference)
        module.take_body(lowered)
        self.plan = plan
