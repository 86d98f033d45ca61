"""as-2d: 1-D and 3-D convolutions and pools as 2-D ones, so that the int8 path and the overlay run them.

A **1-D** convolution (audio, text, time series: [N, C, L]) is a 2-D one over a height of 1:
the input reshaped to [N, C, 1, L], the weight to [M, C/group, 1, k], the result reshaped back.
A 1-D transposed convolution becomes a 2-D transposed one the same way (conv-transpose-as-conv,
which runs after this pass, then makes it stride-1 convolutions).

A **3-D** convolution (video: [1, C, T, H, W], weight [M, C/group, kt, kh, kw]) is, per output frame
``o``, a sum over the temporal taps ``k`` whose input frame ``t = o * st + k * dt - pad_t`` exists:

    y[:, :, o] = sum_k conv2d(x[:, :, t_k], w[:, :, k]) + b

The frames of one output frame are concatenated along channels (group-major, so a grouped conv
stays grouped: [group][tap][channel of group]) and convolved once with the taps' weights laid
side by side, [M, taps * C/group, kh, kw]: one 2-D convolution per output frame with the 3-D
layer's MACs (taps falling in the temporal padding are dropped, not multiplied by zeros). The
output frames are stacked along the time axis.  Frames are sliced once and shared.

Pools likewise: a 1-D max/average pool is a 2-D one over a height of 1; a 3-D one pools each
frame in 2-D once (shared by the output frames whose windows hold it) and combines a window's
pooled frames element-wise, by max, or by their sum times 1/n, n = the frames the divisor counts
(the window's frames inside the input, or also those in the explicit padding with
count_include_pad).  A global average pool of rank 3 or 5 is one of rank 4 over the same elements
([N, C, T * H, W] or [N, C, 1, L], a free reshape).

Applies to float ``conv`` of rank 3 or 5 and float ``conv_transpose`` of rank 3, with constant
weights and bias, float ``max_pool`` / ``avg_pool`` of rank 3 or 5 and ``global_avg_pool`` of rank 3
or 5, before quantization.  3-D layers need batch 1 (the overlay's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value, constant_value
from tcc.ir.shape_rules import spatial_attrs

from .base import OpRewritePass


POOLS = ("max_pool", "avg_pool", "global_avg_pool")


def pool_problem(op: Op) -> str | None:
    """Why this pass leaves the pool ``op`` alone (None: it rewrites it)."""
    if op.kind not in POOLS or op.x.type.dtype != "f32":
        return "not a float max_pool, avg_pool or global_avg_pool"
    if op.x.type.rank not in (3, 5):
        return "only 1-D and 3-D pools are rewritten"
    if op.x.type.rank == 5 and op.x.type.shape[0] != 1 and op.kind != "global_avg_pool":
        return "3-D pools are rewritten for batch 1"
    return None


def conv_problem(op: Op) -> str | None:
    """Why this pass leaves ``op`` alone (None: it rewrites it)."""
    if op.kind in POOLS:
        return pool_problem(op)
    if op.kind not in ("conv", "conv_transpose") or op.x.type.dtype != "f32":
        return "not a float conv or conv_transpose"
    rank = op.x.type.rank
    if rank not in (3, 5) or (op.kind == "conv_transpose" and rank != 3):
        return "only 1-D convolutions, 1-D transposed convolutions and 3-D convolutions are rewritten"
    if constant_value(op.w) is None or (op.b is not None and constant_value(op.b) is None):
        return "its weights and bias must be constants"
    if rank == 5 and op.x.type.shape[0] != 1:
        return "3-D convolutions are rewritten for batch 1"
    return None


def _over_height_one(b: Builder, op: Op, params: list[Value], attrs: dict) -> Value:
    """The 1-D layer ``op`` as its 2-D kind over [N, C, 1, L], with ``params`` after the input."""
    n, c, length = op.x.type.shape
    x4 = b.value("reshape", [op.x], {"shape": (n, c, 1, length)}, name=f"{op.result.name}.2d_in")
    y4 = b.value(op.kind, [x4, *params], attrs, name=f"{op.result.name}.2d")
    return b.value("reshape", [y4], {"shape": op.result.type.shape}, name=op.result.name)


def _rewrite_1d(op: Op) -> Value:
    b = Builder.before(op)
    strides, pads, dil = spatial_attrs(op.attrs, 1)
    w = constant_value(op.w)
    params = [b.const(w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]), f"{op.result.name}.2d_w")]
    if op.b is not None:
        params.append(op.b)
    attrs = {"strides": (1, strides[0]), "pads": (0, pads[0], 0, pads[1]), "dilations": (1, dil[0]),
             "group": op.group}
    if op.kind == "conv_transpose":
        attrs["output_padding"] = (0, *(op.output_padding or (0,)))
    return _over_height_one(b, op, params, attrs)


def _frame(b: Builder, x: Value, t: int, name: str) -> Value:
    """Frame t of x [1, C, T, H, W] as [1, C, H, W]."""
    _, c, _, h, wid = x.type.shape
    one = b.value("slice", [x], {"starts": (t,), "ends": (t + 1,), "axes": (2,), "steps": (1,)}, name=f"{name}.frame{t}")
    return b.value("reshape", [one], {"shape": (1, c, h, wid)}, name=f"{name}.frame{t}.2d")


def _stack(b: Builder, frames: list[Value], shape, name: str) -> Value:
    """Output frames [1, M, H, W] (or constants [1, M, 1, H, W]) stacked along time into ``shape``."""
    _, m, _, oh, ow = shape
    framed = [f if f.type.rank == 5 else b.value("reshape", [f], {"shape": (1, m, 1, oh, ow)}, name=f"{f.name}.3d")
              for f in frames]
    if len(framed) == 1:
        return b.value("reshape", framed, {"shape": shape}, name=name)
    return b.value("concat", framed, {"axis": 2}, name=name)


def _rewrite_3d(op: Op) -> Value:
    b = Builder.before(op)
    name = op.result.name
    x = op.x
    _, c, frames, h, wid = x.type.shape
    _, m, out_frames, oh, ow = op.result.type.shape
    (st, sh, sw), pads, (dt, dh, dw) = spatial_attrs(op.attrs, 3)
    group = op.group
    w = constant_value(op.w).astype(np.float32)
    bias = None if op.b is None else constant_value(op.b).astype(np.float32)
    cg, kt = w.shape[1], w.shape[2]
    pads2d = (pads[1], pads[2], pads[4], pads[5])
    sliced: dict[int, Value] = {}

    def frame(t: int) -> Value:
        if t not in sliced:
            sliced[t] = _frame(b, x, t, name)
        return sliced[t]

    outputs = []
    for o in range(out_frames):
        taps = [k for k in range(kt) if 0 <= o * st + k * dt - pads[0] < frames]
        if not taps:  # the whole window lies in the temporal padding: the output is the bias
            value = np.zeros((1, m, 1, oh, ow), np.float32) if bias is None else \
                np.broadcast_to(bias.reshape(1, m, 1, 1, 1), (1, m, 1, oh, ow)).copy()
            outputs.append(b.const(value, f"{name}.out{o}"))
            continue
        inputs = [frame(o * st + k * dt - pads[0]) for k in taps]
        if len(inputs) == 1:
            source = inputs[0]
        else:
            source = b.value("concat", inputs, {"axis": 1}, name=f"{name}.out{o}.taps")
            if group > 1:  # [tap][group][channel] -> [group][tap][channel]: each group's channels contiguous
                source = b.value("reshape", [source], {"shape": (1, len(taps), group, cg, h, wid)},
                                 name=f"{name}.out{o}.split")
                source = b.value("transpose", [source], {"perm": (0, 2, 1, 3, 4, 5)}, name=f"{name}.out{o}.bygroup")
                source = b.value("reshape", [source], {"shape": (1, group * len(taps) * cg, h, wid)},
                                 name=f"{name}.out{o}.grouped")
        # [M, C/group, taps, kh, kw] -> [M, taps, C/group, kh, kw] -> [M, taps * C/group, kh, kw]
        weight = np.ascontiguousarray(w[:, :, taps].transpose(0, 2, 1, 3, 4).reshape(m, len(taps) * cg, *w.shape[3:]))
        operands = [source, b.const(weight, f"{name}.out{o}.w")]
        if bias is not None:
            operands.append(b.const(bias, f"{name}.out{o}.b"))
        y = b.value("conv", operands, {"strides": (sh, sw), "pads": pads2d, "dilations": (dh, dw), "group": group},
                    name=f"{name}.out{o}")
        outputs.append(y)
    return _stack(b, outputs, op.result.type.shape, name)


def _rewrite_global_pool(op: Op) -> Value:
    b = Builder.before(op)
    name = op.result.name
    n, c, *spatial = op.x.type.shape
    flat = (n, c, 1, spatial[0]) if len(spatial) == 1 else (n, c, spatial[0] * spatial[1], spatial[2])
    x4 = b.value("reshape", [op.x], {"shape": flat}, name=f"{name}.2d_in")
    y4 = b.value("global_avg_pool", [x4], name=f"{name}.2d")
    return b.value("reshape", [y4], {"shape": op.result.type.shape}, name=name)


def _pool_attrs_2d(op: Op, kernel, strides, pads, dil) -> dict:
    attrs = {"kernel": tuple(kernel), "strides": tuple(strides), "pads": tuple(pads), "dilations": tuple(dil),
             "ceil_mode": op.ceil_mode}
    if op.kind == "avg_pool":
        attrs["count_include_pad"] = op.count_include_pad
    return attrs


def _rewrite_pool_1d(op: Op) -> Value:
    strides, pads, dil = spatial_attrs(op.attrs, 1)
    attrs = _pool_attrs_2d(op, (1, op.kernel[0]), (1, strides[0]), (0, pads[0], 0, pads[1]), (1, dil[0]))
    return _over_height_one(Builder.before(op), op, [], attrs)


def _rewrite_pool_3d(op: Op) -> Value:
    b = Builder.before(op)
    name = op.result.name
    x = op.x
    _, c, frames, h, wid = x.type.shape
    _, _, out_frames, oh, ow = op.result.type.shape
    (st, sh, sw), pads, (dt, dh, dw) = spatial_attrs(op.attrs, 3)
    kt, kh, kw = op.kernel
    attrs = _pool_attrs_2d(op, (kh, kw), (sh, sw), (pads[1], pads[2], pads[4], pads[5]), (dh, dw))
    pooled: dict[int, Value] = {}

    def frame(t: int) -> Value:
        if t not in pooled:
            pooled[t] = b.value(op.kind, [_frame(b, x, t, name)], attrs, name=f"{name}.frame{t}.pooled")
        return pooled[t]

    outputs = []
    for o in range(out_frames):
        starts = [o * st + k * dt - pads[0] for k in range(kt)]
        inside = [t for t in starts if 0 <= t < frames]
        y = frame(inside[0])
        for k, t in enumerate(inside[1:], 1):
            y = b.value("max" if op.kind == "max_pool" else "add", [y, frame(t)], name=f"{name}.out{o}.{k}")
        if op.kind == "avg_pool":
            counted = len([t for t in starts if -pads[0] <= t < frames + pads[3]]) if op.count_include_pad \
                else len(inside)
            if counted != 1:
                y = b.value("mul", [y, b.const(np.float32(1 / counted), f"{name}.out{o}.scale")], name=f"{name}.out{o}.mean")
        outputs.append(y)
    return _stack(b, outputs, op.result.type.shape, name)


def rewrite(op: Op) -> Value | None:
    if conv_problem(op) is not None:
        return None
    rank = op.x.type.rank
    if op.kind == "global_avg_pool":
        return _rewrite_global_pool(op)
    if op.kind in POOLS:
        return _rewrite_pool_1d(op) if rank == 3 else _rewrite_pool_3d(op)
    return _rewrite_1d(op) if rank == 3 else _rewrite_3d(op)


@dataclass
class As2d(OpRewritePass):
    name = "as-2d"
    summary = "1-D and 3-D convolutions and pools (and 1-D transposed convolutions) as 2-D ones (before quantization)"
    rewrite = staticmethod(rewrite)
