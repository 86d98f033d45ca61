"""expand-constants: a constant added to an activation with broadcasting is stored at the activation's shape.

The overlay adds two int8 tensors of one shape (``eadd``: both rescaled to a common int32 scale, then
requantized); a constant that broadcasts (Swin's relative position bias [1, heads, 49, 49] over the
windows, its shift mask [1, windows, 1, 49, 49] over the heads) made the int8 add run on the host.
Materialized at the result's shape the constant is an ordinary second operand (its bytes: the
result's element count; Swin-T's largest is 460 KB at int8).

Applies to float ``add`` and ``sub`` of an activation and a constant of more than one element whose
shape differs from the result's (a scalar stays: an element-wise function such as HardSigmoid's
``x + 3`` becomes one table lookup), when the expanded constant has at most ``MAX_ELEMENTS``.
Runs before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value, constant_value

from .base import OpRewritePass

MAX_ELEMENTS = 1 << 22  # 4 M elements: 4 MB at int8


def rewrite(op: Op) -> Value | None:
    if op.kind not in ("add", "sub") or op.result.type.dtype != "f32" or op.result.type.size > MAX_ELEMENTS:
        return None
    values = [constant_value(v) for v in op.operands]
    if sum(v is not None for v in values) != 1:
        return None
    index = 0 if values[0] is not None else 1
    constant, shape = values[index], tuple(op.result.type.shape)
    activation = op.b if index == 0 else op.a
    if constant.size <= 1 or constant.shape == shape or activation.type.shape != shape:
        return None
    builder = Builder.before(op)
    operands = list(op.operands)
    operands[index] = builder.const(np.ascontiguousarray(np.broadcast_to(constant, shape)),
                                    name=f"{op.operands[index].name}.expanded")
    return builder.value(op.kind, operands, name=f"{op.result.name}.full")


@dataclass
class ExpandConstants(OpRewritePass):
    name = "expand-constants"
    summary = "a constant added to an activation with broadcasting is stored at the result's shape (before quantization)"
    rewrite = staticmethod(rewrite)
