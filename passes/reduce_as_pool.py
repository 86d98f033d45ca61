"""reduce-as-pool: a mean or sum over any axes as a global average pool over a [1, K, R, 1] view.

``reduce_mean(x, axes)`` with K the product of the kept dims and R of the reduced ones is the
global average pool of ``x`` with the kept axes moved first and the reduced ones last, viewed as
[1, K, R, 1], then viewed at the result's shape; ``reduce_sum`` is that mean times R, and
``reduce_l2`` the square root of the sum of squares.  The
overlay's int8 pool averages a window exactly in integers and rounds once (qglobal_avg_pool), so
token mean pooling ([B, T, C] over T), channel means, and the spatial norms of ConvNeXt V2's GRN
run on the device instead of on the host.  The transpose is a data move the layout planner may
make free (NHWC: [T, C] tokens already hold a [1, C, T, 1] pool's input in order).

Applies to float ``reduce_mean`` / ``reduce_sum`` / ``reduce_l2`` over at least two elements, before quantization,
where recognize left them (a LayerNorm's or RMSNorm's mean is its own op by then; spatial means of
an [N, C, H, W] tensor are already global_avg_pool).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value

from .base import OpRewritePass


def rewrite(op: Op) -> Value | None:
    if op.kind not in ("reduce_mean", "reduce_sum", "reduce_l2") or op.result.type.dtype != "f32":
        return None
    shape = op.x.type.shape
    axes = sorted(op.axes)
    kept = [a for a in range(len(shape)) if a not in axes]
    reduced = math.prod(shape[a] for a in axes)
    if reduced < 2:
        return None
    builder, name = Builder.before(op), op.result.name
    x = op.x
    if op.kind == "reduce_l2":
        x = builder.value("mul", [x, x], name=f"{name}.squares")
    if kept + axes != list(range(len(shape))):
        x = builder.value("transpose", [x], {"perm": tuple(kept + axes)}, name=f"{name}.reduced_last")
    x = builder.value("reshape", [x], {"shape": (1, math.prod(shape[a] for a in kept), reduced, 1)},
                      name=f"{name}.rows")
    y = builder.value("global_avg_pool", [x], name=f"{name}.mean")
    if op.kind != "reduce_mean":
        y = builder.value("mul", [y, builder.const(np.array(reduced, np.float32), name=f"{name}.count")],
                          name=f"{name}.sum")
    if op.kind == "reduce_l2":
        y = builder.value("sqrt", [y], name=f"{name}.norm")
    return builder.value("reshape", [y], {"shape": tuple(op.result.type.shape)}, name=f"{name}.pooled")


@dataclass
class ReduceAsPool(OpRewritePass):
    name = "reduce-as-pool"
    summary = "reduce_mean / reduce_sum / reduce_l2 over any axes as a global average pool (before quantization)"
    rewrite = staticmethod(rewrite)
