"""Pooling over an NHWC int8 slab (``pool max|avg``) and the strided ``copy``.

``pool`` reads all ``cv.c`` channels of the slab at ``src`` (``cv.c0`` and ``mm.a`` are not used);
a window with no in-slab position traps.  ``copy`` moves ``cp.elem``-byte elements and costs
``ceil(n0*n1*n2*n3*elem / post_lanes) + 4`` cycles.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tcc.ir import numerics

from ..table import BUFFERS
from .machine import ABUF, Effect, Fault, MachineState, contiguous_strides, impl, registers

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
    divisor = (in_padded if count_pad else in_slab)[..., None]

    def action() -> None:
        window = rows[index]  # (h_out, w_out, taps, c) int8
        if mode == "max":  # padding becomes -128, which never exceeds an in-slab value
            out[...] = np.where(valid[..., None], window, np.int8(numerics.INT8_MIN)).max(axis=2)
            return
        total = np.where(valid[..., None], window.astype(np.int64) - zp, 0).sum(axis=2)
        try:
            out[...] = numerics.rounded_mean(total, divisor, mult, shift, out_zp)
        except ValueError as exc:
            raise Fault(f"average pooling (pl.mult, pl.shift): {exc}") from None

    cycles = -(-(h_out * w_out * c * kh * kw) // m.target.post_lanes) + 4
    return Effect(cycles, (s_access, d_access), action=action)


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

    def action() -> None:
        target[...] = source.copy() if overlaps else source  # every read happens before any write

    cycles = -(-source.size // m.target.post_lanes) + 4
    return Effect(cycles, (s_access, d_access), action=action)
