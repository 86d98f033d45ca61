"""expected.toml: the conformance cases that must pass (float path, and through ``--quant int8``),
the int8 misses with why they are not compiler bugs, and the out-of-scope cases with their reason.

The pass lists only grow: ``python bench/conformance.py --update`` rewrites them from a run and
refuses when a listed case no longer passes; the int8 misses' reasons are written by hand and kept.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PATH = Path(__file__).resolve().parent / "expected.toml"


@dataclass(frozen=True)
class Expectations:
    passing: frozenset[str] = frozenset()
    out_of_scope: dict[str, str] = field(default_factory=dict)
    int8_passing: frozenset[str] = frozenset()
    int8_wrong: dict[str, str] = field(default_factory=dict)  # explained misses of the int8 tolerance


@functools.cache
def read() -> Expectations:
    if not PATH.exists():
        return Expectations()
    data = tomllib.loads(PATH.read_text(encoding="utf-8"))
    return Expectations(frozenset(data.get("pass", ())), dict(data.get("out_of_scope", {})),
                        frozenset(data.get("int8_pass", ())), dict(data.get("int8_wrong", {})))


def write(expected: Expectations) -> None:
    lines = ["# ONNX conformance cases tcc passes: `pass` on the float path (-t ir), `int8_pass` through",
             "# --quant int8 (tests/conformance/int8_tolerance.py); `int8_wrong`: int8 misses and why they are",
             "# not compiler bugs; the cases out of scope with why.",
             "# Regenerate deliberately: python bench/conformance.py --update  (the pass lists only grow).",
             "pass = ["]
    lines += [f'  "{name}",' for name in sorted(expected.passing)]
    lines += ["]", "int8_pass = ["]
    lines += [f'  "{name}",' for name in sorted(expected.int8_passing)]
    lines += ["]", "", "[int8_wrong]"]
    lines += [f'{name} = "{reason}"' for name, reason in sorted(expected.int8_wrong.items())]
    lines += ["", "[out_of_scope]"]
    lines += [f'{name} = "{reason}"' for name, reason in sorted(expected.out_of_scope.items())]
    PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read.cache_clear()
