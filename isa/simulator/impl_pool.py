"""Pooling over an NHWC int8 slab (``pool max|avg``) and the strided ``copy``.

``pool`` reads all ``cv.c`` channels of the slab at ``src`` (``cv.c0`` and ``mm.a`` are not used);
a window with no in-slab position traps.  Averages and many-tap maxima run in one C pass
(``native.c: pool_taps``) where the C kernels are built, the numpy forms below otherwise.  ``copy`` moves ``cp.elem``-byte elements and costs
``ceil(n0*n1*n2*n3*elem / post_lanes) + 4`` cycles.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tcc.ir import numerics

from ..cycles import POST_LATENCY
from ..table import BUFFERS
from . import native, rule_tables
from .machine import (ABUF, Effect, Fault, MachineState, contiguous_strides, copy_action, impl, registers, sample_fault,
                      whole_elements)

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
_MAX_CHANNELS_IN_C = 32  # few-tap maxima of this many channels or more run in C (native.c pool_taps)


class PaddedImage:
    """The slab placed in an image holding the padding value around it, so that each tap of every
    window is one strided view (no gather): the image's (row, column) is the input's (iy + pad_top,
    ix + pad_left), sized for every tap any output reads.  ``fill(values, convert)`` writes the
    slab's pixels [first, last] (flat, row-major) into place; ``views`` holds the (N, h_out,
    w_out, c) view of each tap.  Pixels of [0, h) x [0, w) outside [first, last] are read by no
    tap (first and last are the least and greatest pixel any in-slab tap reads; a depthwise
    conv's outputs past its last, in a partial last row, read them but are dropped) and positions
    outside it only by taps in the padding, so one image serves every pool that places its slab
    the same way (kept by the machine): only the padding must persist, and nothing writes it."""

    __slots__ = ("image", "parts", "views", "_geometry")

    def __init__(self, m: MachineState, dtype, pad_value: int, h: int, w: int, c: int, kh: int, kw: int, sh: int,
                 sw: int, dh: int, dw: int, pad_top: int, pad_left: int, h_out: int, w_out: int, first: int,
                 last: int):
        rows = max(pad_top + h, (h_out - 1) * sh + (kh - 1) * dh + 1)
        cols = max(pad_left + w, (w_out - 1) * sw + (kw - 1) * dw + 1)
        # (the slab's place in it is part of the key: another geometry's slab would write this one's padding)
        key = (m.batch, rows, cols, c, np.dtype(dtype).str, pad_value, pad_top, pad_left, h, w)
        image = m.images.get(key)
        if image is None:
            image = m.images[key] = np.full((m.batch, rows, cols, c), pad_value, dtype)
        self.image = image
        # [first, last] as a partial first row, whole rows and a partial last row: (target view, source pixels);
        # the whole rows' source is reshaped to them (the target must stay a view of the image)
        inside = image[:, pad_top:pad_top + h, pad_left:pad_left + w]
        (r0, c0), (r1, c1) = divmod(first, w), divmod(last, w)
        if r0 == r1:
            self.parts = [(inside[:, r0, c0:c1 + 1], slice(0, c1 + 1 - c0))]
        else:
            head, whole = w - c0, (r1 - r0 - 1) * w
            self.parts = [(inside[:, r0, c0:], slice(0, head)),
                          (inside[:, r0 + 1:r1], slice(head, head + whole)),
                          (inside[:, r1, :c1 + 1], slice(head + whole, head + whole + c1 + 1))]
        self.views = [image[:, i * dh:i * dh + (h_out - 1) * sh + 1:sh, j * dw:j * dw + (w_out - 1) * sw + 1:sw]
                      for i in range(kh) for j in range(kw)]
        self._geometry = (h_out, w_out, kh, kw, sh, sw, dh, dw)

    def windows(self) -> np.ndarray:
        """Every output's taps as one read-only strided view (N, h_out, w_out, kh, kw, c) of the image."""
        h_out, w_out, kh, kw, sh, sw, dh, dw = self._geometry
        s0, s1, s2, s3 = self.image.strides
        return np.lib.stride_tricks.as_strided(self.image, self.image.shape[:1] + (h_out, w_out, kh, kw) +
                                               self.image.shape[3:], (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3),
                                               writeable=False)

    def fill(self, pixels: np.ndarray, convert=None) -> None:
        """``convert(source, target)`` for each run of the slab's pixels (N, n, c) into the image (by
        default the values copied, cast to the image's dtype)."""
        for target, part in self.parts:
            if target.size:
                source = pixels[:, part].reshape(target.shape)
                if convert is None:
                    np.copyto(target, source)
                else:
                    convert(source, target)


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
    # the padding value: max -128, which never exceeds an in-slab value; avg: x - pl.zp, 0 there, int32
    # where no window sum can leave it
    sums_fit = taps * (-numerics.INT8_MIN + abs(zp)) < 2**31
    # (per sample: the sample axis first)
    dtype = np.int8 if mode == "max" else np.int32 if sums_fit else np.int64
    pad_value = numerics.INT8_MIN if mode == "max" else 0
    means = None if mode == "max" or not sums_fit else _mean_table(m, divisor, taps, zp, mult, shift, out_zp)
    cycles = -(-(h_out * w_out * c * kh * kw) // m.target.post_lanes) + POST_LATENCY
    # one C pass (native.c pool_taps) for averages, many-tap maxima and maxima of 32 channels or more (a
    # few-tap maximum of fewer channels is faster as numpy's maximum of strided views: ShuffleNet's 3x3
    # pool of 112x112x24 189 us against 226 in C; SqueezeNet's of 54x54x96 72 against 37)
    fused = native.kernels()
    if hasattr(fused, "pool_taps") and (means is not None or mode == "max" and (taps > _TAP_BY_TAP or
                                                                            c >= _MAX_CHANNELS_IN_C)):
        return Effect(cycles, (s_access, d_access), POST_LATENCY,
                      action=_pool_in_c(fused, out_rows, rows, np.where(valid, index, n), n, mode, zp, means))
    # few taps: the slab in a padded image, each tap a strided view of it (PaddedImage), reduced into one
    # (N, h_out, w_out, c) array; many (a global pool): the windows gathered and reduced along their taps
    image = padded = rows_of_tap = total_scratch = None
    if taps <= _TAP_BY_TAP:
        image = PaddedImage(m, dtype, pad_value, h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, h_out, w_out,
                             first, last)
        if mode != "max":
            total_scratch = np.empty((batch, h_out, w_out, c), dtype)
    else:  # the slab with one more row, the padding value; per tap, the row each output reads
        padded = np.empty((batch, n + 1, c), dtype)
        padded[:, -1] = pad_value
        rows_of_tap = np.where(valid, index, n).reshape(outputs, taps).T.copy()

    def sum_or_max(reduce, into: np.ndarray | None = None) -> np.ndarray:
        """The window reduction over taps, written into ``into`` (N, h_out, w_out, c) when given."""
        if image is None:
            return reduce.reduce(np.take(padded, rows_of_tap.T, axis=1), axis=2)
        views = image.views
        if len(views) == 1:
            np.copyto(into, views[0])
            return into
        reduce(views[0], views[1], out=into)
        for view in views[2:]:
            reduce(into, view, out=into)
        return into

    def action() -> None:
        if mode == "max":
            if image is None:
                padded[:, :-1] = rows
                out_rows[...] = sum_or_max(np.maximum)
                return
            image.fill(rows)
            sum_or_max(np.maximum, out)
            return
        if image is None:
            np.subtract(rows, zp, out=padded[:, :-1], dtype=padded.dtype)
            total = sum_or_max(np.add)
        else:
            image.fill(rows, lambda source, target: np.subtract(source, zp, out=target, dtype=target.dtype))
            total = sum_or_max(np.add, total_scratch).reshape(batch, outputs, c)
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

    return Effect(cycles, (s_access, d_access), POST_LATENCY, action=action)


def _pool_in_c(fused, out: np.ndarray, rows: np.ndarray, taps: np.ndarray, pad: int, mode: str, zp: int, means):
    """The pool's action as one ``native.c: pool_taps`` call: each window's taps (``taps``: the slab
    row each reads, ``pad`` where it reads padding) reduced per channel, an average's sum looked up
    in its rounded-mean table (``means``: _mean_table's table and offsets)."""
    index = np.ascontiguousarray(taps.reshape(out.shape[1], -1), np.int64)
    avg = mode != "max"
    table, offsets = (means[0], np.ascontiguousarray(means[1].reshape(-1), np.int32)) if avg else (None, None)

    def action() -> None:
        fused.pool_taps(out, rows, index, pad, avg, zp, table, offsets)

    return action


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

    wide_target, wide_source = whole_elements(target, source)

    def action() -> None:
        wide_target[...] = wide_source.copy()  # every read happens before any write (each sample's own bytes)

    return Effect(cycles, (s_access, d_access), POST_LATENCY, action=action)
