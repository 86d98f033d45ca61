"""Pooling over an NHWC int8 slab (``pool max|avg``) and the strided ``copy``.

``pool`` reads all ``cv.c`` channels of the slab at ``src`` (``cv.c0`` and ``mm.a`` are not used);
a window with no in-slab position traps.  ``copy`` moves ``cp.elem``-byte elements and costs
``ceil(n0*n1*n2*n3*elem / post_lanes) + 4`` cycles.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tcc.ir import numerics

from ..cycles import POST_LATENCY
from ..table import BUFFERS
from . import rule_tables
from .machine import ABUF, Effect, Fault, MachineState, contiguous_strides, copy_action, impl, registers, sample_fault

_GEOMETRY = registers("cv.h", "cv.w", "cv.c", "cv.kh", "cv.kw", "cv.sh", "cv.sw", "cv.dh", "cv.dw",
                      "cv.pad_top", "cv.pad_left", "cv.w_out", "pl.h_out", "pl.pad_bottom", "pl.pad_right",
                      "pl.zp", "pl.count_pad")
_AVG = registers("pl.mult", "pl.shift", "pl.out_zp")
_COPY = registers("cp.n0", "cp.n1", "cp.n2", "cp.n3", "cp.s0", "cp.s1", "cp.s2", "cp.s3",
                  "cp.d0", "cp.d1", "cp.d2", "cp.d3", "cp.elem")


def _axis(out: int, k: int, stride: int, dilation: int, pad_before: int, size: int, pad_after: int):
    """Input coordinate of every (output, tap) along one axis, in-slab mask, count inside the padded extent."""
    coord = np.arange(out)[:, None] * stride + np.arange(k) * dilation - pad_before
    inside = (coord >= 0) & (coord < size)
    in_padded = ((coord >= -pad_before) & (coord < size + pad_after)).sum(axis=1)
    return coord, inside, in_padded


@lru_cache(maxsize=32)
def _windows(h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pad_top: int, pad_left: int,
             pad_bottom: int, pad_right: int, h_out: int, w_out: int):
    """Per (output row, output column, tap): slab pixel relative to the first one read and whether
    it lies in the slab; the first and last pixel read; per output: in-slab positions and
    positions inside the padded extent.  Cached: a layer's tiles repeat the same geometry."""
    iy, vy, py = _axis(h_out, kh, sh, dh, pad_top, h, pad_bottom)  # (h_out, kh)
    ix, vx, px = _axis(w_out, kw, sw, dw, pad_left, w, pad_right)  # (w_out, kw)
    taps = kh * kw
    valid = (vy[:, None, :, None] & vx[None, :, None, :]).reshape(h_out, w_out, taps)
    pixel = (iy[:, None, :, None] * w + ix[None, :, None, :]).reshape(h_out, w_out, taps)
    first = int(pixel[valid].min()) if valid.any() else 0
    last = int(pixel[valid].max()) if valid.any() else -1
    index = np.where(valid, pixel - first, 0)
    arrays = (index, valid, valid.sum(axis=2), py[:, None] * px[None, :])
    for a in arrays:
        a.flags.writeable = False
    return arrays + (first, last)


_TAP_BY_TAP = 16  # windows of at most this many taps are reduced one tap at a time
_MEAN_TABLE_LIMIT = 1 << 18  # entries


def _mean_table(m: MachineState, divisor: np.ndarray, taps: int, zp: int, mult: int, shift: int, out_zp: int):
    """Average pooling's rounded mean as a table of every window sum for every divisor the windows
    have (rule_tables.py): the flat table and, per output, the offset of its divisor's row less the
    smallest sum; None where the table would be large or the rule refuses one of its sums."""
    # a window of 1..taps in-slab positions sums to within these (0 included: a sum of fewer taps)
    lowest, highest = min(0, taps * (numerics.INT8_MIN - zp)), max(0, taps * (numerics.INT8_MAX - zp))
    divisors, which = np.unique(divisor, return_inverse=True)
    span = highest - lowest + 1
    if divisors.size * span > _MEAN_TABLE_LIMIT:
        return None
    sums = np.arange(lowest, highest + 1, dtype=np.int64)
    table = rule_tables.table(m, ("pool avg", tuple(divisors.tolist()), lowest, highest, mult, shift, out_zp),
                              lambda: np.concatenate([numerics.rounded_mean(sums, int(d), mult, shift, out_zp)
                                                      for d in divisors]).astype(np.int8))
    if table is None:
        return None
    return table, (which.reshape(-1, 1) * span - lowest).astype(np.int32)


@impl("pool")
def pool(m: MachineState, mode: str, dst: int, src: int):
    m.require_mode("int8", "pool")
    (h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out, h_out, pad_bottom, pad_right, zp,
     count_pad) = _GEOMETRY(m.regs)
    if kh <= 0 or kw <= 0 or h < 0 or w < 0 or c < 0 or h_out < 0 or w_out < 0:
        raise Fault(f"bad pool geometry: cv.kh={kh}, cv.kw={kw}, cv.h={h}, cv.w={w}, cv.c={c}, "
                    f"pl.h_out={h_out}, cv.w_out={w_out}")
    index, valid, in_slab, in_padded, first, last = _windows(h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left,
                                                              pad_bottom, pad_right, h_out, w_out)
    if (in_slab == 0).any():
        oy, ox = np.argwhere(in_slab == 0)[0]
        raise Fault(f"pool window of output ({oy}, {ox}) lies entirely in the padding")
    out, d_access = m.region(ABUF, dst, (h_out, w_out, c), contiguous_strides((h_out, w_out, c), 1), np.int8,
                             True, "pool output")
    if d_access is None:  # nothing to compute
        return Effect(4, ())
    rows, s_access = m.region(ABUF, src + first * c, (last - first + 1, c), (c, 1), np.int8, False,
                              "pool input slab")
    mult, shift, out_zp = _AVG(m.regs)
    divisor = (in_padded if count_pad else in_slab).reshape(-1)
    outputs, taps, n, batch = h_out * w_out, kh * kw, last - first + 1, m.batch
    out_rows = out.reshape(batch, outputs, c)
    # the slab with one more row, the padding value (max: -128, which never exceeds an in-slab value;
    # avg: x - pl.zp, 0 there, int32 where no window sum can leave it); per tap, the row each output reads
    sums_fit = taps * (-numerics.INT8_MIN + abs(zp)) < 2**31
    # (per sample: the sample axis first)
    padded = np.empty((batch, n + 1, c), np.int8 if mode == "max" else np.int32 if sums_fit else np.int64)
    padded[:, -1] = numerics.INT8_MIN if mode == "max" else 0
    rows_of_tap = np.where(valid, index, n).reshape(outputs, taps).T.copy()
    means = None if mode == "max" or not sums_fit else _mean_table(m, divisor, taps, zp, mult, shift, out_zp)

    def sum_or_max(reduce) -> np.ndarray:
        """The window reduction over taps: tap by tap into one (outputs, c) array (few taps), else gathered."""
        if taps > _TAP_BY_TAP:
            return reduce.reduce(np.take(padded, rows_of_tap.T, axis=1), axis=2)
        total = np.take(padded, rows_of_tap[0], axis=1)
        step = np.empty_like(total)
        for tap in rows_of_tap[1:]:
            reduce(total, np.take(padded, tap, axis=1, out=step), out=total)
        return total

    def action() -> None:
        if mode == "max":
            padded[:, :-1] = rows
            out_rows[...] = sum_or_max(np.maximum)
            return
        np.subtract(rows, zp, out=padded[:, :-1], dtype=padded.dtype)
        total = sum_or_max(np.add)
        if means is not None:
            table, offsets = means
            total += offsets
            np.take(table, total, out=out_rows)
            return
        try:
            out_rows[...] = numerics.rounded_mean(total, divisor[:, None], mult, shift, out_zp)
        except ValueError as exc:
            raise sample_fault(m, "average pooling (pl.mult, pl.shift)",
                               lambda i: numerics.rounded_mean(total[i], divisor[:, None], mult, shift, out_zp),
                               exc) from None

    cycles = -(-(h_out * w_out * c * kh * kw) // m.target.post_lanes) + POST_LATENCY
    return Effect(cycles, (s_access, d_access), POST_LATENCY, action=action)


@impl("copy")
def copy(m: MachineState, buf: str, dst: int, src: int):
    n0, n1, n2, n3, s0, s1, s2, s3, d0, d1, d2, d3, elem = _COPY(m.regs)
    if elem <= 0:
        raise Fault(f"cp.elem = {elem} must be positive")
    memory = BUFFERS.index(buf)
    shape = (n0, n1, n2, n3, elem)
    source, s_access = m.region(memory, src, shape, (s0, s1, s2, s3, 1), np.uint8, False, "copy source")
    target, d_access = m.region(memory, dst, shape, (d0, d1, d2, d3, 1), np.uint8, True, "copy destination")
    if s_access is None:
        return Effect(4, ())
    overlaps = s_access[1] < d_access[2] and d_access[1] < s_access[2]
    cycles = -(-(source.size // m.batch) // m.target.post_lanes) + POST_LATENCY  # one sample's elements
    if not overlaps:  # one memmove when both boxes are contiguous runs
        return Effect(cycles, (s_access, d_access), POST_LATENCY, action=copy_action(target, source))

    def action() -> None:
        target[...] = source.copy()  # every read happens before any write (each sample's own bytes)

    return Effect(cycles, (s_access, d_access), POST_LATENCY, action=action)
