"""einsum-as-matmul: a two-operand Einstein summation as transposes, reshapes and one (batched) matmul.

Attention written with einsum (MaxViT's ``B G H I D, B G H J D -> B G H I J``, many timm and
Hugging Face models) is a batched matrix product.  The letters of ``A, B -> out`` fall into four
groups: batch (in A, B and out), contracted (in A and B only), left (A and out) and right (B and
out).  A is transposed to [batch..., left, contracted] and reshaped to [batch..., L, K], B to
[batch..., K, R] (the left, contracted and right dims each flattened into one), one matmul makes
[batch..., L, R], and a reshape and a transpose give the output's letter order.  The int8 path then runs it on the systolic array.

Applies to float ``einsum`` with two operands, an explicit output, no ellipsis, no letter repeated
within an operand, no letter summed out of a single operand, and batch dims of equal sizes.
Runs before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value

from .base import OpRewritePass


def _parse(op: Op):
    """(a letters, b letters, out letters) or None when the rewrite does not apply."""
    equation = op.equation.replace(" ", "")
    if len(op.operands) != 2 or "->" not in equation or "." in equation or op.result.type.dtype != "f32":
        return None
    inputs, out = equation.split("->")
    parts = inputs.split(",")
    if len(parts) != 2:
        return None
    a, b = parts
    if any(len(set(s)) != len(s) for s in (a, b, out)) or set(out) - set(a) - set(b):
        return None
    if (set(a) ^ set(b)) - set(out):  # a letter summed out of one operand alone
        return None
    sizes: dict[str, int] = {}
    first, second = op.operands
    for letters, value in ((a, first), (b, second)):
        if len(letters) != value.type.rank:
            return None
        for letter, size in zip(letters, value.type.shape):
            if sizes.setdefault(letter, size) != size:
                return None
    return a, b, out, sizes


def _arranged(b: Builder, x: Value, letters: str, order: list[str], shape: tuple, name: str) -> Value:
    perm = tuple(letters.index(c) for c in order)
    if perm != tuple(range(len(perm))):
        x = b.value("transpose", [x], {"perm": perm}, name=f"{name}.t")
    if tuple(x.type.shape) != shape:
        x = b.value("reshape", [x], {"shape": shape}, name=f"{name}.r")
    return x


def _rewrite(op: Op, a: str, bl: str, out: str, sizes: dict) -> Value:
    b = Builder.before(op)
    name = op.result.name
    batch = [c for c in out if c in a and c in bl]
    left = [c for c in out if c in a and c not in bl]
    right = [c for c in out if c in bl and c not in a]
    contracted = [c for c in a if c in bl and c not in out]

    def size(group):
        return int(np.prod([sizes[c] for c in group], dtype=np.int64))
    lead = tuple(sizes[c] for c in batch)  # batch dims kept: the overlay batches matmuls over heads
    first, second = op.operands
    x = _arranged(b, first, a, batch + left + contracted, lead + (size(left), size(contracted)), f"{name}.a")
    y = _arranged(b, second, bl, batch + contracted + right, lead + (size(contracted), size(right)),
                  f"{name}.b")
    product = b.value("matmul", [x, y], name=f"{name}.matmul")
    grouped = batch + left + right
    full = tuple(sizes[c] for c in grouped)
    if tuple(product.type.shape) != full:
        product = b.value("reshape", [product], {"shape": full}, name=f"{name}.split")
    perm = tuple(grouped.index(c) for c in out)
    if perm != tuple(range(len(perm))):
        product = b.value("transpose", [product], {"perm": perm}, name=f"{name}.out")
    return product


def rewrite(op: Op) -> Value | None:
    parsed = _parse(op) if op.kind == "einsum" else None
    return None if parsed is None else _rewrite(op, *parsed)


@dataclass
class EinsumAsMatmul(OpRewritePass):
    name = "einsum-as-matmul"
    summary = "two-operand einsums as transposes, reshapes and a batched matmul (before quantization)"
    rewrite = staticmethod(rewrite)
