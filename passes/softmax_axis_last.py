"""softmax-axis-last: a softmax over an inner axis as a transpose moving that axis last, the softmax
along the last axis, and the transpose back.

The vector unit normalizes along a vector's last axis only; YOLOv8/YOLO11's DFL head (softmax over
the 16 distance bins, axis 1 of [N, 16, 4, anchors]) and factorized attention (softmax over tokens,
axis -2) normalize along another one, so their softmax ran on the host.  Moving the axis is exact:
softmax treats each line along its axis alone, and a transpose only moves elements.  The transposes
are layout moves the overlay runs on the int8 or bf16 side, as for a LayerNorm over an inner axis
(recognize.py).  Applies to float softmax before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Builder, Op, Value

from .base import OpRewritePass


def rewrite(op: Op) -> Value | None:
    if op.kind != "softmax" or op.result.type.dtype != "f32":
        return None
    rank = op.result.type.rank
    axis = op.axis % rank if rank else 0
    if rank < 2 or axis == rank - 1 or op.result.type.shape[axis] <= 1:
        return None
    perm = [d for d in range(rank) if d != axis] + [axis]
    back = sorted(range(rank), key=perm.__getitem__)
    builder = Builder.before(op)
    name = op.result.name
    x = builder.value("transpose", list(op.operands), {"perm": perm}, name=f"{name}.axis_last")
    x = builder.value("softmax", [x], {"axis": rank - 1}, name=f"{name}.last")
    return builder.value("transpose", [x], {"perm": back}, name=f"{name}.axis_back")


@dataclass
class SoftmaxAxisLast(OpRewritePass):
    name = "softmax-axis-last"
    summary = "softmax over an inner axis as transpose, softmax along the last axis, transpose back (before quantization)"
    rewrite = staticmethod(rewrite)
