"""conv-transpose-as-conv: a 2-D transposed convolution as stride-1 convolutions, one per output phase.

With stride s, output position j of a transposed convolution (before the begin padding p is
cropped: f = j + p) collects input i through tap t exactly when f = i * s + t.  So the outputs of
one phase r = f mod s see only the taps t = r, r + s, r + 2s, ... and, in q = f div s,

    full[q * s + r] = sum_m x[q - m] * w[r + s * m]

which is an ordinary stride-1 convolution of x with those taps reversed (a correlation), padded so
its first output is the phase's first kept position.  Per axis there are s phases; a 2-D layer
becomes s_h * s_w convolutions (one, with s_h * s_w times the output channels, when every phase has
the same window and padding and the layer is not grouped: kernel 2 / stride 2 and kernel 4 /
stride 2 decoders), whose outputs interleave by a reshape, a transpose and a reshape (depth to
space) and are cropped to the output size.  The MACs are the transposed convolution's own (no
zero-inserted input is multiplied), and the int8 path runs them on the systolic array.

Applies to float ``conv_transpose`` of rank 4 with dilation 1; runs before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value, constant_value

from .base import OpRewritePass


@dataclass(frozen=True)
class AxisPhase:
    taps: tuple[int | None, ...]  # the weight taps in convolution order (None: a zero tap)
    start: int  # input elements cropped at the start (when the phase begins past the padding)
    stop: int  # input elements kept (after ``start``)
    pads: tuple[int, int]  # zero padding before and after, on the kept input


def axis_phases(size: int, kernel: int, stride: int, pad_begin: int, out: int) -> tuple[int, list[AxisPhase]]:
    """(outputs per phase n, the phase of output slots a = 0..stride-1): slot a holds outputs
    j = a, a + stride, ...; each phase computes n of them (the last may run past ``out``)."""
    n = -(-out // stride)
    phases = []
    for a in range(stride):
        r = (a + pad_begin) % stride
        q0 = (a + pad_begin - r) // stride
        taps: tuple[int | None, ...] = tuple(range(r, kernel, stride))[::-1] or (None,)
        first = len(taps) - 1 - q0  # padding before: may be negative (crop the input instead)
        start = max(0, -first)
        kept = size - start
        last = n + len(taps) - 1 - kept - max(0, first)  # padding after, likewise
        stop = kept + min(0, last)
        phases.append(AxisPhase(taps, start, stop, (max(0, first), max(0, last))))
    return n, phases


def conv_problem(op: Op) -> str | None:
    if op.kind != "conv_transpose" or op.x.type.dtype != "f32":
        return "not a float conv_transpose"
    if op.x.type.rank != 4:
        return "only 2-D transposed convolutions are rewritten"
    if any(d != 1 for d in op.dilations):
        return "dilated transposed convolutions are not rewritten"
    if constant_value(op.w) is None or (op.b is not None and constant_value(op.b) is None):
        return "its weights and bias must be constants"
    return None


def _phase_weight(w: np.ndarray, group: int, taps_h, taps_w) -> np.ndarray:
    """The convolution weight [M, C/group, kh, kw] of one phase from the transposed weight [C, M/group, k, k]."""
    c, mg = w.shape[:2]
    picked = np.zeros((c, mg, len(taps_h), len(taps_w)), np.float32)
    for u, th in enumerate(taps_h):
        for v, tw in enumerate(taps_w):
            if th is not None and tw is not None:
                picked[:, :, u, v] = w[:, :, th, tw]
    # [group, C/group, M/group, kh, kw] -> [group, M/group, C/group, kh, kw] -> [M, C/group, kh, kw]
    per_group = picked.reshape(group, c // group, mg, len(taps_h), len(taps_w)).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(per_group.reshape(group * mg, c // group, len(taps_h), len(taps_w)))


def _rewrite(op: Op) -> Value:
    b = Builder.before(op)
    name = op.result.name
    x = op.x
    w = constant_value(op.w).astype(np.float32)
    bias = None if op.b is None else constant_value(op.b).astype(np.float32)
    group = op.group
    (sh, sw), (ph, pw) = op.strides, op.pads[:2]
    _, _, ih, iw = x.type.shape
    _, m, oh, ow = op.result.type.shape
    nh, rows = axis_phases(ih, w.shape[2], sh, ph, oh)
    nw, cols = axis_phases(iw, w.shape[3], sw, pw, ow)
    phases = [(rh, rw) for rh in rows for rw in cols]

    def cropped(rh: AxisPhase, rw: AxisPhase) -> Value:
        if (rh.start, rh.stop, rw.start, rw.stop) == (0, ih, 0, iw):
            return x
        return b.value("slice", [x], {"starts": (rh.start, rw.start), "ends": (rh.start + rh.stop, rw.start + rw.stop),
                                      "axes": (2, 3), "steps": (1, 1)}, name=f"{name}.in")

    def conv(source: Value, weight: np.ndarray, bias_: np.ndarray | None, pads, label: str) -> Value:
        operands = [source, b.const(weight, f"{name}.{label}.w")]
        if bias_ is not None:
            operands.append(b.const(bias_, f"{name}.{label}.b"))
        return b.value("conv", operands, {"strides": (1, 1), "dilations": (1, 1), "pads": pads,
                                          "group": group if weight.shape[0] == m else 1}, name=f"{name}.{label}")

    def window(rh: AxisPhase, rw: AxisPhase):
        return (rh.start, rh.stop, rw.start, rw.stop, rh.pads, rw.pads, len(rh.taps), len(rw.taps))

    def pads_of(rh: AxisPhase, rw: AxisPhase) -> tuple[int, int, int, int]:
        return (rh.pads[0], rw.pads[0], rh.pads[1], rw.pads[1])

    weights = [_phase_weight(w, group, rh.taps, rw.taps) for rh, rw in phases]
    if group == 1 and len({window(rh, rw) for rh, rw in phases}) == 1:  # one convolution for every phase
        rh, rw = phases[0]
        stacked = conv(cropped(rh, rw), np.concatenate(weights), None if bias is None else np.tile(bias, len(phases)),
                       pads_of(rh, rw), "phases")
    else:
        parts = [conv(cropped(rh, rw), weight, bias, pads_of(rh, rw), f"phase{k}")
                 for k, ((rh, rw), weight) in enumerate(zip(phases, weights))]
        stacked = parts[0] if len(parts) == 1 else b.value("concat", parts, {"axis": 1}, name=f"{name}.phases")
    n = x.type.shape[0]
    y = b.value("reshape", [stacked], {"shape": (n, sh, sw, m, nh, nw)}, name=f"{name}.split")
    y = b.value("transpose", [y], {"perm": (0, 3, 4, 1, 5, 2)}, name=f"{name}.interleave")
    full = (n, m, nh * sh, nw * sw)
    if full[2:] == (oh, ow):
        return b.value("reshape", [y], {"shape": full}, name=name)
    y = b.value("reshape", [y], {"shape": full}, name=f"{name}.full")
    return b.value("slice", [y], {"starts": (0, 0), "ends": (oh, ow), "axes": (2, 3), "steps": (1, 1)}, name=name)


def rewrite(op: Op) -> Value | None:
    return None if conv_problem(op) is not None else _rewrite(op)


@dataclass
class ConvTransposeAsConv(OpRewritePass):
    name = "conv-transpose-as-conv"
    summary = "2-D transposed convolutions as stride-1 convolutions per output phase (before quantization)"
    rewrite = staticmethod(rewrite)
