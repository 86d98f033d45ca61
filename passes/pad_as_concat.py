"""pad-as-concat: pads as slices, constant blocks and concats, one padded axis at a time.

A reflect pad of p elements before axis a copies x[p], x[p-1], ..., x[1] in front of x: a reversed
run that no strided copy makes (the overlay's moves gather with positive strides).  As
``concat(slice(x, p), ..., slice(x, 1), x, ...)`` of one-element slices each part is a plain
strided move, and the concat is a move too; an edge pad repeats slice(x, 0) p times, a wrap pad
concatenates the contiguous block x[-p:] (and x[:p] after), a constant pad concatenates constant
blocks of its value (stored in DRAM like weights; on the int8 grid the value is its quantized code).
Style-transfer networks and GAN generators pad by reflection before every convolution (a few
elements per side); Swin pads its [N, H, W, C] maps with zeros to a multiple of the window.

Applies to float ``pad`` with non-negative pads, before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value
from tcc.ir.dtypes import to_numpy

from .base import OpRewritePass


def _pad_axis(b: Builder, x: Value, axis: int, before: int, after: int, mode: str, value: float,
              name: str) -> Value:
    n = x.type.shape[axis]
    parts: dict[tuple[int, int], Value] = {}

    def part(start: int, stop: int) -> Value:  # each slice once (a reflect pad reads x[1] on both sides of 3)
        if (start, stop) not in parts:
            parts[start, stop] = b.value("slice", [x], {"starts": (start,), "ends": (stop,), "axes": (axis,),
                                                        "steps": (1,)}, name=f"{name}.{start}_{stop}")
        return parts[start, stop]

    if mode == "constant":
        def block(count: int, side: str) -> list[Value]:
            if not count:
                return []
            shape = list(x.type.shape)
            shape[axis] = count
            return [b.const(np.full(shape, value, to_numpy(x.type.dtype)), name=f"{name}.{side}")]
        head, tail = block(before, "before"), block(after, "after")
    elif mode == "reflect":
        head = [part(i, i + 1) for i in range(before, 0, -1)]
        tail = [part(n - 2 - i, n - 1 - i) for i in range(after)]
    elif mode == "edge":
        head = [part(0, 1)] * before
        tail = [part(n - 1, n)] * after
    else:  # wrap
        head = [part(n - before, n)] if before else []
        tail = [part(0, after)] if after else []
    return b.value("concat", [*head, x, *tail], {"axis": axis}, name=name)


def pad_problem(op: Op) -> str | None:
    if op.kind != "pad" or op.mode not in ("constant", "reflect", "edge", "wrap") or op.x.type.dtype != "f32":
        return "not a float pad"
    if any(p < 0 for p in op.pads):
        return "a pad that crops"
    rank, shape = op.x.type.rank, op.x.type.shape
    if op.mode == "reflect" and any(max(op.pads[a], op.pads[a + rank]) >= shape[a] for a in range(rank)
                                    if op.pads[a] or op.pads[a + rank]):
        return "a reflect pad as wide as its axis"
    if op.mode == "wrap" and any(max(op.pads[a], op.pads[a + rank]) > shape[a] for a in range(rank)):
        return "a wrap pad wider than its axis"
    return None


def _rewrite(op: Op) -> Value:
    b = Builder.before(op)
    rank, y = op.x.type.rank, op.x
    padded = [a for a in range(rank) if op.pads[a] or op.pads[a + rank]]
    for k, axis in enumerate(padded):
        name = op.result.name if k == len(padded) - 1 else f"{op.result.name}.axis{axis}"
        y = _pad_axis(b, y, axis, op.pads[axis], op.pads[axis + rank], op.mode, op.value, name)
    return y


def rewrite(op: Op) -> Value | None:
    return None if pad_problem(op) is not None or not any(op.pads) else _rewrite(op)


@dataclass
class PadAsConcat(OpRewritePass):
    name = "pad-as-concat"
    summary = "pads as slices, constant blocks and concats (before quantization)"
    rewrite = staticmethod(rewrite)
