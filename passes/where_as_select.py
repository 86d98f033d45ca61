"""where-as-select: a ``where`` whose condition and one branch are constants, as a multiply and an add.

A decoder's causal attention mask is ``where(mask, scores, -inf)`` (torch's ``masked_fill``), with the
mask a constant once the sequence length is static; a padding or window mask is written the same
way.  The overlay has no select, but for a constant 0/1 keep-mask K and a constant fill F

    where(c, x, f) = x * K + B,   K = c ? 1 : 0,   B = c ? 0 : f

exactly, element by element, for every finite x: x * 1 + 0 is x, and x * 0 + f is f.  When every
masked fill is infinite (the usual -inf) the multiply goes: x + B is already exact, x + 0 = x and
x + (-inf) = -inf.  The constants are stored at the result's shape, so the multiply and the add are
ordinary element-wise ops of the overlay (the add of an infinite constant stays off the int8 grid, in
bf16 on the vector unit: passes/quantize/nonfinite.py).  Where x is infinite or NaN the two forms
differ (x * 0 is NaN, +inf + -inf is NaN): scores of finite activations are finite, and a model whose
masked operand overflows is wrong either way.

Applies to float ``where`` with a constant condition and exactly one constant branch, before
quantization.  A condition computed at run time (a padding mask from the token ids) stays a
``where`` (the host runs it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value, constant_value

from .base import OpRewritePass

MAX_ELEMENTS = 1 << 22  # each constant is stored at the result's shape (4 M elements)


def rewrite(op: Op) -> Value | None:
    if op.kind != "where" or op.result.type.dtype != "f32" or op.result.type.size > MAX_ELEMENTS:
        return None
    cond, a, b = (constant_value(v) for v in op.operands)
    if cond is None or (a is None) == (b is None):
        return None
    shape = tuple(op.result.type.shape)
    keep = np.broadcast_to(cond.astype(bool), shape)
    if a is not None:  # where(c, f, x): x where the condition is false
        keep, fill, x = ~keep, np.broadcast_to(a, shape), op.b
    else:
        fill, x = np.broadcast_to(b, shape), op.a
    if tuple(x.type.shape) != shape:
        return None  # a broadcast activation: left to the host
    builder = Builder.before(op)
    name = op.result.name
    bias = builder.const(np.where(keep, np.float32(0), fill).astype(np.float32), name=f"{name}.fill")
    if not np.isinf(fill[~keep]).all():
        k = builder.const(keep.astype(np.float32), name=f"{name}.keep")
        x = builder.value("mul", [x, k], name=f"{name}.kept")
    return builder.value("add", [x, bias], name=f"{name}.select")


@dataclass
class WhereAsSelect(OpRewritePass):
    name = "where-as-select"
    summary = "where with a constant condition and one constant branch as x * keep + fill (before quantization)"
    rewrite = staticmethod(rewrite)
