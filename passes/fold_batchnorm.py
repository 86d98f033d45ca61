"""Fold inference BatchNormalization into the Conv or Linear that feeds it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op, constant_value
from tcc.ir.dtypes import to_numpy
from tcc.ir.rewrite import Rewriter, apply_patterns

from .base import Pass
from .fold_affine import MatmulToLinearPattern


def _single_use(value, module: Module) -> bool:
    return len(value.users) == 1 and not module.is_output(value)


def _normalized_producer(op: Op, module: Module) -> tuple[Op, Op | None] | None:
    """(the conv, linear or matmul whose output channels are the batch_norm's channel axis, the
    reshape between them or None), or None.  A linear's or matmul's channels are
    its last axis, so it folds when the batch_norm's input is rank 2, directly or through a reshape
    that only merges the leading axes (timm's LeViT: x @ W [1, T, C] -> reshape [T, C] -> BatchNorm1d)."""
    producer = op.x.producer
    view = None
    if producer is not None and producer.kind == "reshape" and _single_use(producer.result, module):
        view, producer = producer, producer.x.producer
    if producer is None or producer.kind not in ("conv", "linear", "matmul") or not _single_use(producer.result, module):
        return None
    if producer.kind == "conv":
        return (producer, None) if view is None else None
    if op.x.type.rank != 2 or op.x.type.shape[-1] != producer.result.type.shape[-1]:
        return None  # the batch_norm's channel axis 1 is not the product's output axis
    return producer, view


class ConvBatchNormPattern:
    """batch_norm(conv(x, w, b)) -> conv(x, w * s, (b - mean) * s + beta), s = gamma / sqrt(var + eps);
    likewise a linear, also through a reshape that keeps the last axis (see _normalized_producer).
    A matmul by a constant matrix there becomes a linear first (fold-affine's MatmulToLinearPattern;
    the batch_norm folds into it on the next round)."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "batch_norm":
            return False
        found = _normalized_producer(op, rewriter.module)
        if found is None:
            return False
        producer, view = found
        if producer.kind == "matmul":
            return MatmulToLinearPattern().match_and_rewrite(producer, rewriter)
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
        fused = builder.value(producer.kind, [producer.x, w, b], producer.attrs, name=op.result.name + ".fused")
        if view is not None:
            builder.loc = view.loc
            fused = builder.value("reshape", [fused], view.attrs, name=op.result.name + ".view")
        name = op.result.name
        rewriter.replace_op(op, [fused])
        if view is not None:
            rewriter.erase_op(view)
        rewriter.erase_op(producer)
        rewriter.module.rename(fused, name)  # the fused value keeps the user-visible name
        return True


@dataclass
class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    summary = "fold batch_norm into a preceding conv, linear or matmul with constant weights"

    def apply(self, module: Module) -> None:
        apply_patterns(module, [ConvBatchNormPattern()])
