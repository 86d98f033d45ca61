"""Fold inference BatchNormalization into the Conv or Linear that feeds it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op, constant_value
from tcc.ir.dtypes import to_numpy
from tcc.ir.rewrite import Rewriter, apply_patterns

from .base import Pass


class ConvBatchNormPattern:
    """batch_norm(conv(x, w, b)) -> conv(x, w * s, (b - mean) * s + beta), s = gamma / sqrt(var + eps)."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "batch_norm":
            return False
        producer = op.x.producer
        if (producer is None or producer.kind not in ("conv", "linear") or len(producer.result.users) != 1
                or rewriter.module.is_output(producer.result)):
            return False
        params = [constant_value(v) for v in (op.scale, op.bias, op.mean, op.var)]
        weight = constant_value(producer.w)
        bias = constant_value(producer.b) if producer.b is not None else None
        if weight is None or any(p is None for p in params) or (producer.b is not None and bias is None):
            return False
        gamma, beta, mean, var = (p.astype(np.float64) for p in params)
        scale = gamma / np.sqrt(var + op.epsilon)
        old_bias = bias.astype(np.float64) if bias is not None else np.zeros_like(mean)
        dtype = to_numpy(producer.result.type.dtype)
        # w * s in float64, each product rounded once to the weights' type: numpy's buffered loop
        # casts block by block, where a float64 copy of the weights took most of this pass's time
        # (page faults on hundreds of MB of fresh temporaries for ResNet-50's 25M weights)
        new_weight = np.empty(weight.shape, dtype)
        np.multiply(weight, scale.reshape((-1,) + (1,) * (weight.ndim - 1)), out=new_weight, dtype=np.float64,
                    casting="same_kind")
        new_bias = (old_bias - mean) * scale + beta
        builder = rewriter.builder_before(op)
        builder.loc = producer.loc
        w = builder.const(new_weight, name=producer.w.name + ".bn")
        b = builder.const(new_bias.astype(dtype), name=producer.result.name + ".bn_bias")
        fused = builder.value(producer.kind, [producer.x, w, b], producer.attrs,
                              name=op.result.name + ".fused")
        name = op.result.name
        rewriter.replace_op(op, [fused])
        rewriter.erase_op(producer)
        rewriter.module.rename(fused, name)  # the fused value keeps the user-visible name
        return True


@dataclass
class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    summary = "fold batch_norm into a preceding conv or linear with constant weights"

    def apply(self, module: Module) -> None:
        apply_patterns(module, [ConvBatchNormPattern()])
