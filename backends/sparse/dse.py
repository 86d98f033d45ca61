"""Design-space search: each module's parallelism, maximising throughput under the FPGA budget.

The pipeline's throughput is set by its slowest module, so the search minimises the largest busy
cycles ``T`` over modules (isa/tokensim/cost.py's model at the calibration density), exactly:

1. the candidate values of ``T`` are every busy-cycle count some module reaches at some allowed
   parallelism;
2. for one ``T`` each module may take any option with busy cycles <= T; whether some choice fits
   is a multiple-choice knapsack, solved exactly by dynamic programming over the DSP count
   (for each DSP total the least BRAM), with the LUT total checked on the chosen design;
3. feasibility only grows with ``T``, so a binary search finds the least feasible ``T``; among its
   designs the one with the fewest DSPs (then least BRAM) is taken (no wasted parallelism);
4. modules that run after the end of frame (the fc) add their cycles to the latency instead of
   overlapping: their options are enumerated and steps 1-3 run for each; the least
   ``T + post-frame cycles`` wins (then the fewest DSPs);
5. the budget left over then goes, greedily, to the slowest modules that can go faster (each
   module's per-token service adds to the frame latency even when it is not the bottleneck).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tcc.isa.tokensim.cost import POST_FRAME, Counts, busy_cycles, ceil_div, parallelism_options, resources

from .errors import SparseError
from .target import SparseTarget

INF = np.iinfo(np.int64).max // 4


@dataclass
class Option:
    par: dict
    cycles: int
    dsp: int
    bram18: int
    lut: int


def options_of(spec: dict, counts: Counts, target: SparseTarget) -> list[Option]:
    out = []
    for par in parallelism_options(spec, target.max_parallelism):
        r = resources(spec, par)
        out.append(Option(par, busy_cycles(spec, par, counts), r["dsp"], r["bram18"], r["lut"]))
    return out


def _knapsack(choices: list[list[Option]], dsp_budget: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """best[d] = least BRAM18 of a choice using exactly d DSPs; picks[m][d] = the option index."""
    best = np.full(dsp_budget + 1, INF, np.int64)
    best[0] = 0
    picks = []
    for options in choices:
        new = np.full(dsp_budget + 1, INF, np.int64)
        pick = np.full(dsp_budget + 1, -1, np.int64)
        for i, o in enumerate(options):
            if o.dsp > dsp_budget:
                continue
            cand = np.full(dsp_budget + 1, INF, np.int64)
            cand[o.dsp:] = best[:dsp_budget + 1 - o.dsp] + o.bram18
            better = cand < new
            new[better], pick[better] = cand[better], i
        best = np.minimum(new, INF)
        picks.append(pick)
    return best, picks


def _design(choices: list[list[Option]], target: SparseTarget) -> list[Option] | None:
    best, picks = _knapsack(choices, target.dsp)
    fits = np.nonzero(best <= target.bram18)[0]
    for d in fits:  # fewest DSPs first; the LUT total is checked on the reconstructed design
        chosen, left = [], int(d)
        for options, pick in zip(reversed(choices), reversed(picks)):
            o = options[pick[left]]
            chosen.append(o)
            left -= o.dsp
        chosen.reverse()
        if sum(o.lut for o in chosen) <= target.lut:
            return chosen
    return None


def _explain_misfit(modules: list[dict], all_options: list[list[Option]], target: SparseTarget) -> str:
    for spec, options in zip(modules, all_options):
        for res, budget in (("dsp", target.dsp), ("bram18", target.bram18), ("lut", target.lut)):
            least = min(getattr(o, res) for o in options)
            if least > budget:
                return (f"module {spec['name']} ({spec['kind']} at {spec['loc']!r}) does not fit: even at its "
                        f"smallest parallelism it needs {least} {res.upper()}, the budget is {budget}")
    totals = {res: sum(min(getattr(o, res) for o in opts) for opts in all_options)
              for res in ("dsp", "bram18", "lut")}
    over = [f"{totals[r]} {r.upper()} > {b}" for r, b in (("dsp", target.dsp), ("bram18", target.bram18),
                                                          ("lut", target.lut)) if totals[r] > b]
    big = max(zip(modules, all_options), key=lambda mo: min(o.bram18 for o in mo[1]) + min(o.dsp for o in mo[1]))
    return (f"the modules together do not fit at their smallest parallelism ({', '.join(over) or 'jointly'}); "
            f"the largest is {big[0]['name']} ({big[0]['kind']} at {big[0]['loc']!r})")


def _least_bottleneck(all_options: list[list[Option]], target: SparseTarget) -> tuple[int, list[Option]] | None:
    """The least T some design fits with (binary search over the candidate levels), and that design."""
    levels = sorted({o.cycles for opts in all_options for o in opts})
    floor = max((min(o.cycles for o in opts) for opts in all_options), default=0)
    levels = [t for t in levels if t >= floor] or [0]

    def attempt(t):
        return _design([[o for o in opts if o.cycles <= t] for opts in all_options], target)

    lo, hi = 0, len(levels) - 1
    best = attempt(levels[hi])
    if best is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        design = attempt(levels[mid])
        if design is None:
            lo = mid + 1
        else:
            hi, best = mid, design
    return levels[lo], best


def _spend_leftover(chosen: dict[int, Option], all_options: list[list[Option]], target: SparseTarget) -> None:
    """Secondary goal (greedy, after the exact search): the frame's latency also counts every
    module's per-token service, so while budget is left the slowest module that can go faster
    takes its next faster option that fits.  The bottleneck the search found stays optimal."""
    def fits(i: int, o: Option) -> bool:
        old = chosen[i]
        return (sum(c.dsp for c in chosen.values()) - old.dsp + o.dsp <= target.dsp
                and sum(c.bram18 for c in chosen.values()) - old.bram18 + o.bram18 <= target.bram18
                and sum(c.lut for c in chosen.values()) - old.lut + o.lut <= target.lut)

    while True:
        for i in sorted(chosen, key=lambda i: -chosen[i].cycles):
            faster = [o for o in all_options[i] if o.cycles < chosen[i].cycles and fits(i, o)]
            if faster:
                chosen[i] = max(faster, key=lambda o: (o.cycles, -o.dsp, -o.bram18))
                break
        else:
            return


def search(modules: list[dict], counts: dict[str, Counts], target: SparseTarget) -> dict:
    """Set ``spec['parallelism']`` on every module; returns a summary of the search.

    Post-frame modules (the fc after the global pool) do not overlap the stream, so their cycles
    add to the frame latency: their options are enumerated (in order of their cycles, stopping
    once they alone exceed the best latency found) and the stream modules searched for each.
    """
    all_options = [options_of(spec, counts[spec["name"]], target) for spec in modules]
    post = [i for i, s in enumerate(modules) if s["kind"] in POST_FRAME]
    stream = [i for i in range(len(modules)) if i not in post]
    combos = sorted(itertools.product(*[all_options[i] for i in post]), key=lambda c: sum(o.cycles for o in c))
    floor = max((min(o.cycles for o in all_options[i]) for i in stream), default=0)
    best = None  # (latency, dsp, T, post combo, stream design)
    for combo in combos:
        post_cycles = sum(o.cycles for o in combo)
        if best is not None and floor + post_cycles > best[0]:
            break
        left = SparseTarget(target.name, target.clock_mhz, target.dsp - sum(o.dsp for o in combo),
                            target.bram36 - ceil_div(sum(o.bram18 for o in combo), 2),
                            target.lut - sum(o.lut for o in combo), target.max_parallelism) \
            if all(r > 0 for r in (target.dsp - sum(o.dsp for o in combo),
                                   target.bram36 - ceil_div(sum(o.bram18 for o in combo), 2),
                                   target.lut - sum(o.lut for o in combo))) else None
        found = _least_bottleneck([all_options[i] for i in stream], left) if left is not None else None
        if found is None:
            continue
        key = (found[0] + post_cycles, sum(o.dsp for o in found[1]) + sum(o.dsp for o in combo))
        if best is None or key < best[:2]:
            best = (*key, found[0], combo, found[1])
    if best is None:
        raise SparseError(f"no design fits the budget of {target.name} ({target.dsp} DSP, {target.bram36} "
                          f"BRAM36, {target.lut} LUT): {_explain_misfit(modules, all_options, target)}")
    chosen = dict(zip(post, best[3])) | dict(zip(stream, best[4]))
    _spend_leftover(chosen, all_options, target)
    for i, spec in enumerate(modules):
        o = chosen[i]
        spec["parallelism"] = o.par
        spec["resources"] = {"dsp": o.dsp, "bram18": o.bram18, "lut": o.lut}
        spec["expected_cycles"] = o.cycles
    picked = list(chosen.values())
    neck = max((chosen[i].cycles for i in stream), default=0)
    after = sum(chosen[i].cycles for i in post)
    return {"bottleneck_cycles": int(neck), "post_frame_cycles": int(after), "objective_cycles": int(neck + after),
            "design_space": int(np.prod([len(o) for o in all_options], dtype=np.float64)),
            "dsp": sum(o.dsp for o in picked), "bram18": sum(o.bram18 for o in picked),
            "lut": sum(o.lut for o in picked)}
