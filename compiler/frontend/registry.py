"""The lowering registry: ONNX op type -> function building its IR ops (one explicit dict)."""
from __future__ import annotations

from . import (lowering_control, lowering_elementwise, lowering_index, lowering_integer, lowering_math, lowering_nn, lowering_normalize, lowering_qdq,
               lowering_recurrent, lowering_resize, lowering_sample, lowering_signal, lowering_tensor)


def _merge(*tables: dict) -> dict:
    merged: dict = {}
    for table in tables:
        for op_type, lower in table.items():
            if op_type in merged:
                raise ValueError(f"ONNX op {op_type!r} has two lowerings")
            merged[op_type] = lower
    return merged


LOWERINGS = _merge(lowering_elementwise.LOWERINGS, lowering_nn.LOWERINGS, lowering_tensor.LOWERINGS,
                   lowering_resize.LOWERINGS, lowering_qdq.LOWERINGS, lowering_recurrent.LOWERINGS,
                   lowering_math.LOWERINGS, lowering_index.LOWERINGS, lowering_normalize.LOWERINGS,
                   lowering_control.LOWERINGS, lowering_sample.LOWERINGS,
                   lowering_signal.LOWERINGS, lowering_integer.LOWERINGS)

# Ops lowered even when all their inputs are constant (their lowering folds, keeping more than values).
LOWER_EVEN_IF_CONSTANT = lowering_qdq.LOWER_EVEN_IF_CONSTANT

# Ops whose output is their input: a constant stays a constant through them.
PASS_THROUGH = frozenset({"Identity", "Dropout"})

SUPPORTED_OPS = tuple(sorted(LOWERINGS))
