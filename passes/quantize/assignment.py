"""Exact choice of one format per layer: least total error under a total cost budget.

This is a multiple-choice knapsack.  ``pareto_front`` solves it for every budget at once by
dynamic programming over layers: after layer l it keeps every partial assignment of layers 0..l
that no other partial assignment beats in both cost and error (the Pareto front).  A dominated
partial assignment can never complete to an optimal one (the same completion of the dominating
one is at least as good), so the final front holds an optimum for every budget; the optimum for
budget B is its last point with cost <= B.  With integer costs the front has at most one point
per distinct total cost, so its size is bounded by the cost range; when that range exceeds
``max_units`` the costs are first rounded *up* to multiples of a unit (never to an assignment
over budget; optimal for the rounded costs), and the front says which unit it used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import QuantizationError

MAX_UNITS = 1 << 16


@dataclass(frozen=True)
class ParetoFront:
    """Non-dominated assignments, cost (in units of ``unit``) ascending, error strictly descending.

    ``choices[p, l]`` is the option index of layer l in point p; ``costs`` are exact sums of the
    given costs; ``unit`` is the rounding the search used (1: none, the front is exact).
    """

    costs: np.ndarray
    errors: np.ndarray
    choices: np.ndarray
    unit: int

    def __len__(self) -> int:
        return len(self.costs)

    def best_within(self, budget: float) -> int | None:
        """Index of the least-error point costing at most ``budget`` (None: nothing fits)."""
        fits = np.flatnonzero(self.costs <= budget)
        return int(fits[np.argmin(self.errors[fits])]) if fits.size else None


def pareto_front(errors, costs, max_units: int = MAX_UNITS) -> ParetoFront:
    """The (cost, error) Pareto front of choosing one option per row of ``errors`` / ``costs``.

    ``errors[l, f]``: the error option f adds at layer l (inf: option not available);
    ``costs[l, f]``: its non-negative integer cost.  Errors may be negative.
    """
    errors = np.asarray(errors, np.float64)
    costs = np.asarray(costs, np.int64)
    if errors.shape != costs.shape or errors.ndim != 2:
        raise ValueError(f"errors {errors.shape} and costs {costs.shape} must be equal 2-d shapes")
    if costs.size and costs.min() < 0:
        raise ValueError("costs must be non-negative")
    usable = np.isfinite(errors)
    empty = [l for l in range(errors.shape[0]) if not usable[l].any()]
    if empty:
        raise QuantizationError(f"layer(s) {empty} have no usable option")
    top = int(np.where(usable, costs, 0).max(axis=1).sum()) if costs.size else 0
    unit = max(1, -(-top // max_units))
    units = -(-costs // unit)

    front_units = np.zeros(1, np.int64)
    front_costs = np.zeros(1, np.int64)
    front_errors = np.zeros(1, np.float64)
    back: list[tuple[np.ndarray, np.ndarray]] = []
    for l in range(errors.shape[0]):
        options = np.flatnonzero(usable[l])
        cand_units = (front_units[:, None] + units[l, options][None, :]).ravel()
        cand_costs = (front_costs[:, None] + costs[l, options][None, :]).ravel()
        cand_errors = (front_errors[:, None] + errors[l, options][None, :]).ravel()
        prev = np.repeat(np.arange(len(front_units)), len(options))
        choice = np.tile(options, len(front_units))
        order = np.lexsort((cand_costs, cand_errors, cand_units))
        # Keep a point only if it is strictly better than every cheaper-or-equal point before it.
        ordered = cand_errors[order]
        best_before = np.minimum.accumulate(np.concatenate(([np.inf], ordered[:-1])))
        keep = order[ordered < best_before]
        front_units, front_costs, front_errors = cand_units[keep], cand_costs[keep], cand_errors[keep]
        back.append((prev[keep], choice[keep]))

    choices = np.zeros((len(front_units), len(back)), np.int64)
    index = np.arange(len(front_units))
    for l in range(len(back) - 1, -1, -1):
        prev, choice = back[l]
        choices[:, l] = choice[index]
        index = prev[index]
    return ParetoFront(front_costs, front_errors, choices, unit)


def cheapest_cost(costs, errors) -> int:
    """The least total cost of any complete assignment (each layer's cheapest usable option)."""
    costs = np.asarray(costs, np.int64)
    usable = np.isfinite(np.asarray(errors, np.float64))
    return int(np.where(usable, costs, np.iinfo(np.int64).max).min(axis=1).sum())
