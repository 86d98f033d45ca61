"""Per-channel affine rewrites around convolutions.

- ``fold-affine``: conv/linear followed by ``mul`` or ``add`` with a constant that broadcasts per
  output channel (Caffe2's Scale layers in the light zoo) folds into the weights and bias, also
  across a transpose in between (ConvNeXt's layer scale after its NHWC -> NCHW permute); a
  matmul by a constant matrix becomes a linear first, so its bias add folds too.
- ``batchnorm-to-conv``: a batch_norm that could not fold (e.g. after a concat, DenseNet's
  pre-activation BN; a [N, C] one through a reshape to [N, C, 1, 1]) becomes a depthwise 1x1 conv,
  so the int8 path can run it; so does a
  per-channel constant add (with the per-channel constant mul before it, if any).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op, constant_value
from tcc.ir.traits import operand_orders
from tcc.ir.dtypes import to_numpy
from tcc.ir.rewrite import Rewriter, apply_patterns

from .base import Pass


def _per_channel(value: np.ndarray, out_rank: int, channels: int, channel_axis: int) -> np.ndarray | None:
    """The constant as a [channels] vector if it only varies along the channel axis, else None."""
    if value.ndim > out_rank:
        return None
    full = value.reshape((1,) * (out_rank - value.ndim) + value.shape)
    for axis, d in enumerate(full.shape):
        if d != 1 and axis != channel_axis:
            return None
    vec = full.reshape(-1)
    if vec.size == 1:
        return np.full(channels, vec[0], dtype=value.dtype)
    return vec if vec.size == channels else None


class ConvAffinePattern:
    """conv(x, w, b) * s -> conv(x, w * s, b * s);  conv(x, w, b) + t -> conv(x, w, b + t)."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind not in ("mul", "add") or op.result.type.dtype != "f32":
            return False
        for data, other in operand_orders(op):
            producer = data.producer
            constant = constant_value(other)
            if (producer is None or producer.kind not in ("conv", "linear") or constant is None
                    or len(producer.result.users) != 1 or rewriter.module.is_output(producer.result)
                    or producer.result.type.shape != op.result.type.shape):
                continue
            weight = constant_value(producer.w)
            bias = constant_value(producer.b) if producer.b is not None else None
            if weight is None or (producer.b is not None and bias is None):
                continue
            out = producer.result.type
            axis = 1 if producer.kind == "conv" else out.rank - 1
            vec = _per_channel(constant, out.rank, out.shape[axis], axis)
            if vec is None:
                continue
            self.fold(op, producer, weight, bias, vec.astype(np.float64), rewriter)
            return True
        return False

    def fold(self, op, producer, weight, bias, vec, rewriter):
        dtype = to_numpy(producer.result.type.dtype)
        bias64 = bias.astype(np.float64) if bias is not None else np.zeros(weight.shape[0])
        if op.kind == "mul":
            weight = weight.astype(np.float64) * vec.reshape((-1,) + (1,) * (weight.ndim - 1))
            bias64 = bias64 * vec
        else:
            bias64 = bias64 + vec
        builder = rewriter.builder_before(op)
        builder.loc = producer.loc
        w = builder.const(weight.astype(dtype), name=producer.w.name)
        b = builder.const(bias64.astype(dtype), name=op.result.name + ".bias")
        fused = builder.value(producer.kind, [producer.x, w, b], producer.attrs, name=op.result.name)
        name = op.result.name
        rewriter.replace_op(op, [fused])
        rewriter.erase_op(producer)
        rewriter.module.rename(fused, name)


class ConstantBeforeTransposePattern:
    """mul/add(transpose(conv or linear), c) -> transpose(mul/add(conv or linear, c')), c' the
    constant in the producer's axis order, so that ``ConvAffinePattern`` folds it next."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind not in ("mul", "add") or op.result.type.dtype != "f32":
            return False
        for data, other in operand_orders(op):
            t = data.producer
            constant = constant_value(other)
            if t is None or t.kind != "transpose" or constant is None or constant.ndim > t.result.type.rank:
                continue
            inner = t.x.producer
            if (inner is None or inner.kind not in ("conv", "linear") or len(inner.result.users) != 1
                    or len(t.result.users) != 1 or rewriter.module.is_output(t.result)
                    or t.result.type.shape != op.result.type.shape):
                continue
            full = constant.reshape((1,) * (t.result.type.rank - constant.ndim) + constant.shape)
            moved = np.ascontiguousarray(np.transpose(full, np.argsort(t.perm)))
            builder = rewriter.builder_before(op)
            c = builder.const(moved, name=other.name + ".t")
            inner_op = builder.value(op.kind, [t.x, c], name=op.result.name + ".pre")
            builder.loc = t.loc
            moved_t = builder.value("transpose", [inner_op], t.attrs, name=op.result.name + ".t")
            name = op.result.name
            rewriter.replace_op(op, [moved_t])
            rewriter.erase_op(t)
            rewriter.module.rename(moved_t, name)
            return True
        return False


class MatmulToLinearPattern:
    """matmul(x, W) with a constant 2-D W -> linear(x, W^T): transformer exports write their
    projections this way, and as linear the following bias add folds and the int8 path gets
    per-output-channel weights."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "matmul" or op.result.type.dtype != "f32" or op.a.type.rank < 2:
            return False
        weight = constant_value(op.b)
        if weight is None or weight.ndim != 2:
            return False
        builder = rewriter.builder_before(op)
        w = builder.const(np.ascontiguousarray(weight.T), name=op.b.name + ".t")
        linear = builder.value("linear", [op.a, w], name=op.result.name + ".linear")
        name = op.result.name
        rewriter.replace_op(op, [linear])
        rewriter.module.rename(linear, name)
        return True


def depthwise_affine(builder, x, scale: np.ndarray, shift: np.ndarray, name: str):
    """x * scale[c] + shift[c] over the channels (axis 1) of an N-d activation, as the depthwise 1x1
    conv the int8 path runs on the systolic array."""
    channels, nsp = x.type.shape[1], x.type.rank - 2
    dtype = to_numpy(x.type.dtype)
    w = builder.const(scale.reshape((channels, 1) + (1,) * nsp).astype(dtype), name=name + ".scale")
    b = builder.const(shift.astype(dtype), name=name + ".shift")
    return builder.value("conv", [x, w, b], {"strides": (1,) * nsp, "pads": (0,) * (2 * nsp),
                                             "dilations": (1,) * nsp, "group": channels}, name=name + ".dw")


class BatchNormToConvPattern:
    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "batch_norm" or op.result.type.rank < 2:
            return False
        params = [constant_value(v) for v in (op.scale, op.bias, op.mean, op.var)]
        if any(p is None for p in params):
            return False
        gamma, beta, mean, var = (p.astype(np.float64) for p in params)
        scale = gamma / np.sqrt(var + op.epsilon)
        builder = rewriter.builder_before(op)
        flat = tuple(op.x.type.shape) if op.x.type.rank == 2 else None  # [N, C]: a BatchNorm1d after pooling
        x = op.x if flat is None else builder.value("reshape", [op.x], {"shape": flat + (1, 1)},
                                                     name=op.result.name + ".nchw")
        conv = depthwise_affine(builder, x, scale, beta - mean * scale, op.result.name)
        if flat is not None:  # back to [N, C]
            conv = builder.value("reshape", [conv], {"shape": flat}, name=op.result.name + ".nc")
        name = op.result.name
        rewriter.replace_op(op, [conv])
        rewriter.module.rename(conv, name)
        return True


class ChannelShiftToConvPattern:
    """add(x, t) with a constant t varying over the channels (and only them) of an N-d activation x (rank >= 3),
    and the ``mul(x, s)`` by such a constant before it when there is one (an affine written out, as
    torch exports GroupNorm's), -> one depthwise 1x1 conv with weight s (or 1) and bias t.  The int8
    path has no add of a constant; it runs the conv.  Left alone when x comes from a conv or linear
    that fold-affine folds the add into."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "add" or op.result.type.dtype != "f32" or op.result.type.rank < 3:
            return False
        for data, other in operand_orders(op):
            shift = constant_value(other)
            if (shift is None or shift.size == 1 or data.type.shape != op.result.type.shape
                    or _foldable_into(data, rewriter)):
                continue  # a scalar add is part of an element-wise function (HardSigmoid's x + 3)
            channels = data.type.shape[1]
            shift_c = _per_channel(shift, data.type.rank, channels, 1)
            if shift_c is None:
                continue
            scale_c, x, scaled = np.ones(channels), data, data.producer
            if (scaled is not None and scaled.kind == "mul" and len(data.users) == 1
                    and not rewriter.module.is_output(data)):
                for d2, o2 in operand_orders(scaled):
                    s = constant_value(o2)
                    vec = None if s is None or d2.type.shape != data.type.shape else _per_channel(s, d2.type.rank,
                                                                                                 channels, 1)
                    if vec is not None:
                        scale_c, x = vec.astype(np.float64), d2
                        break
            if x is not data and _foldable_into(x, rewriter):
                return False  # conv/linear/batch_norm -> mul -> add: fold-affine folds both
            conv = depthwise_affine(rewriter.builder_before(op), x, scale_c, shift_c.astype(np.float64),
                                    op.result.name)
            name = op.result.name
            rewriter.replace_op(op, [conv])
            if x is not data:
                rewriter.erase_op(scaled)
            rewriter.module.rename(conv, name)
            return True
        return False


def _foldable_into(value, rewriter: Rewriter) -> bool:
    """A per-channel mul/add on ``value`` folds into its producer (a batch_norm becomes a conv first)."""
    producer = value.producer
    if producer is None or len(value.users) != 1 or rewriter.module.is_output(value):
        return False
    if producer.kind == "batch_norm":
        return True
    return producer.kind in ("conv", "linear") and constant_value(producer.w) is not None


@dataclass
class FoldAffine(Pass):
    name = "fold-affine"
    summary = "fold per-channel constant mul/add after a conv or linear into its weights and bias"

    def apply(self, module: Module) -> None:
        apply_patterns(module, [MatmulToLinearPattern(), ConstantBeforeTransposePattern(), ConvAffinePattern()])


@dataclass
class BatchNormToConv(Pass):
    name = "batchnorm-to-conv"
    summary = ("turn a batch_norm with constant parameters, or a per-channel constant add (after a mul), "
               "into a depthwise 1x1 conv")

    def apply(self, module: Module) -> None:
        apply_patterns(module, [BatchNormToConvPattern(), ChannelShiftToConvPattern()])
