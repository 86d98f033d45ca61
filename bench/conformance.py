"""ONNX operator conformance: how many of ONNX's own cases tcc passes, on the float path and
(``--quant int8``) through the int8 quantizer, against the same expected outputs.

    python bench/conformance.py [--quant float,int8] [-k SUBSTRING] [--by-op] [--failures] [--update]

Prints per path: cases passing / in scope, wrong results, crashes, refusals, and for int8 the
SQNR of passing cases and how many pass only within their inputs' rounding.  ``--update`` rewrites
tests/conformance/expected.toml from the runs (the cases that pass on each path, and the
out-of-scope ones with their reason; the int8 misses' reasons are kept).
"""
from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

import conformance_cases as cc  # noqa: E402
import expectations  # noqa: E402


def op_of(case: cc.Case) -> str:
    nodes = case.model.graph.node
    return nodes[0].op_type if len(nodes) == 1 else "(model)" if case.source != "node" else "(expanded)"


def run(quant: str | None, names: list[str], show_failures: bool, by_op: bool) -> dict[str, cc.Outcome]:
    cases = cc.all_cases()
    outcomes = {}
    start = time.process_time()
    for name in names:
        outcomes[name] = cc.run_case(cases[name], None if quant == "float" else quant)
    elapsed = time.process_time() - start
    scope = {n: o for n, o in outcomes.items() if cc.out_of_scope_reason(cases[n]) is None}
    counts = collections.Counter(o.status for o in scope.values())
    total = len(scope)
    print(f"[{quant}] {counts[cc.PASS]} / {total} in-scope cases pass "
          f"({100 * counts[cc.PASS] / max(total, 1):.1f}%); wrong results {counts[cc.WRONG]}, crashes "
          f"{counts[cc.CRASH]}, refused {counts[cc.UNSUPPORTED]}; out of scope {len(outcomes) - total}; "
          f"{elapsed:.1f} s CPU")
    if quant == "int8":
        sqnrs = sorted(o.sqnr_db for o in scope.values() if o.status == cc.PASS and o.sqnr_db is not None)
        finite = [s for s in sqnrs if math.isfinite(s)]
        if finite:
            print(f"[int8] SQNR of passing float outputs: median {finite[len(finite) // 2]:.1f} dB, "
                  f"min {finite[0]:.1f} dB ({len(sqnrs) - len(finite)} exact)")
        slacked = sorted(n for n, o in scope.items() if o.status == cc.PASS and o.within_rounding)
        print(f"[int8] {len(slacked)} pass only within what their inputs' rounding moves the float result by "
              f"(tests/conformance/int8_tolerance.py){': ' + ', '.join(slacked) if show_failures else ''}")
    if by_op:
        table = collections.defaultdict(collections.Counter)
        for name, o in scope.items():
            table[op_of(cases[name])][o.status] += 1
        for op in sorted(table):
            c = table[op]
            print(f"  {op:28s} {c[cc.PASS]:4d} / {sum(c.values()):4d}" +
                  "".join(f"  {k} {c[k]}" for k in (cc.WRONG, cc.CRASH, cc.UNSUPPORTED) if c[k]))
    if show_failures:
        for name, o in sorted(scope.items()):
            if o.status != cc.PASS:
                print(f"  {o.status:11s} {name}: {o.detail[:300]}")
    return outcomes


def update(results: dict[str, dict[str, cc.Outcome]], names: list[str]) -> int:
    """Rewrite expected.toml from the runs (the int8 list from the int8 run if there was one)."""
    cases = cc.all_cases()
    old = expectations.read()
    passing = {n for n, o in results["float"].items() if o.status == cc.PASS}
    int8 = {n for n, o in results["int8"].items() if o.status == cc.PASS} if "int8" in results else old.int8_passing
    lost = sorted((old.passing - passing) | (old.int8_passing - int8))
    if lost:
        print(f"not updating: {len(lost)} listed cases no longer pass: {', '.join(lost[:10])}")
        return 1
    unexplained = sorted(n for n, o in results.get("int8", {}).items() if o.status == cc.WRONG and n not in old.int8_wrong)
    if unexplained:
        print(f"note: int8 misses with no reason in [int8_wrong]: {', '.join(unexplained)}")
    reasons = {n: r for n in names if (r := cc.out_of_scope_reason(cases[n]))}
    wrong = {n: r for n, r in old.int8_wrong.items() if n not in int8}
    expectations.write(expectations.Expectations(frozenset(passing), reasons, frozenset(int8), wrong))
    print(f"wrote {expectations.PATH} ({len(passing)} passing, {len(int8)} through int8, "
          f"{len(reasons)} out of scope)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quant", default="float,int8", help="comma-separated: float, int8")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--by-op", action="store_true", help="counts per op type")
    parser.add_argument("--failures", action="store_true", help="list every failing case and why")
    parser.add_argument("--update", action="store_true", help="rewrite tests/conformance/expected.toml")
    args = parser.parse_args(argv)
    print("the machine may be shared: CPU times are indicative")
    names = [n for n in cc.all_cases() if args.k in n]
    results = {}
    for quant in args.quant.split(","):
        results[quant] = run(quant, names, args.failures, args.by_op)
    if args.update:
        if "float" not in results or args.k:
            parser.error("--update needs the float run over every case (no -k)")
        return update(results, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
