"""The systolic array: ``matmul`` in gemm, conv (implicit im2col) and dwconv form.

``acc[m, n] (+)= sum_k (A[m, k] - mm.a_zp) * W[n, k]``.  The sum is a BLAS matrix product in
float32 or float64, exact because every partial sum is an integer the format holds
(exact_product.py proves the bound), and the int32 result traps instead of wrapping.  In conv/dwconv form only the slab bytes actually read (the span of the
in-slab window pixels, channels cv.c0 on) are bounds-checked and count as the access.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tcc.ir import numerics

from .exact_product import exact_depthwise, exact_product, zero_point_fits
from .machine import ABUF, ACC, WBUF, Effect, Fault, MachineState, impl, registers

_MM = registers("mm.a", "mm.a_row", "mm.m", "mm.n", "mm.k", "mm.a_zp", "mm.w_row", "mm.acc_row")
_CV = registers("cv.h", "cv.w", "cv.c", "cv.kh", "cv.kw", "cv.sh", "cv.sw", "cv.dh", "cv.dw",
                "cv.pad_top", "cv.pad_left", "cv.w_out", "cv.c0")
_INT32_MIN, _INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX


@lru_cache(maxsize=64)
def _windows(M: int, h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pad_top: int,
             pad_left: int, w_out: int):
    """For every (output pixel, tap): the slab pixel to read, relative to the first one read, or the
    row just past the last one read where the tap lies outside the slab (the caller puts the zero
    point there); plus the first and last pixel read (None if none is).

    Output pixel m is (m // w_out, m % w_out); tap i*kw + j reads (oy*sh + i*dh - pad_top,
    ox*sw + j*dw - pad_left).  Cached: a layer's tiles repeat the same geometry.
    """
    oy, ox = np.divmod(np.arange(M), w_out)
    iy = oy[:, None] * sh + np.arange(kh) * dh - pad_top  # (M, kh)
    ix = ox[:, None] * sw + np.arange(kw) * dw - pad_left  # (M, kw)
    valid = (((iy >= 0) & (iy < h))[:, :, None] & ((ix >= 0) & (ix < w))[:, None, :]).reshape(M, kh * kw)
    pixel = (iy[:, :, None] * w + ix[:, None, :]).reshape(M, kh * kw)
    if not valid.any():
        return None, None, None
    first, last = int(pixel[valid].min()), int(pixel[valid].max())
    index = np.where(valid, pixel - first, last - first + 1)
    index.flags.writeable = False
    return index, first, last


def _window_reader(m: MachineState, M: int, channels: int, zp: int, dtype):
    """A function giving the slab values at every window position for ``channels`` channels from
    cv.c0, as ``dtype`` (M, kh*kw, channels) with ``zp`` at padding positions; and the slab's access."""
    h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out, c0 = _CV(m.regs)
    if w_out <= 0 or kh <= 0 or kw <= 0 or h < 0 or w < 0 or c <= 0:
        raise Fault(f"bad conv geometry: cv.w_out={w_out}, cv.kh={kh}, cv.kw={kw}, cv.h={h}, cv.w={w}, cv.c={c}")
    if c0 < 0 or c0 + channels > c:
        raise Fault(f"reads channels [{c0}, {c0 + channels}) of a slab of cv.c = {c} channels")
    index, first, last = _windows(M, h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out)
    if index is None:
        return lambda: np.full((M, kh * kw, channels), zp, dtype), None
    rows, access = m.region(ABUF, m.reg("mm.a") + first * c + c0, (last - first + 1, channels), (c, 1), np.int8,
                            False, "conv input slab")

    def read() -> np.ndarray:
        padded = np.empty((rows.shape[0] + 1, channels), dtype)  # one more row: the zero point
        padded[:-1] = rows
        padded[-1] = zp
        return padded[index]

    return read, access


@impl("matmul")
def matmul(m: MachineState, mode: str, accumulate: int, wide: int, acc: int, w: int):
    m.require_mode("int8", "matmul")
    a, a_row, M, N, K, zp, w_row, acc_row = _MM(m.regs)
    e = 2 if wide else 1
    weights, w_access = m.region(WBUF, w, (N, K), (w_row * e, e), "<i2" if wide else np.int8, False, "weights")
    # float32 holds the int8 operands exactly; a zero point outside int8 keeps them as int64.
    dtype = np.float32 if zero_point_fits(zp) else np.int64
    if mode == "gemm":
        rows, a_access = m.region(ABUF, a, (M, K), (a_row, 1), np.int8, False, "A operand")

        def product() -> np.ndarray:
            return exact_product(rows, weights, zp, wide)
    elif mode == "conv":
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if kh <= 0 or kw <= 0 or K % (kh * kw):
            raise Fault(f"conv: mm.k = {K} is not a multiple of cv.kh * cv.kw = {kh} * {kw}")
        windows, a_access = _window_reader(m, M, K // (kh * kw), zp, dtype)

        def product() -> np.ndarray:
            return exact_product(windows().reshape(M, K), weights, zp, wide)
    else:  # dwconv: output channel n reads slab channel cv.c0 + n at each of the K taps
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if K != kh * kw:
            raise Fault(f"dwconv: mm.k = {K} must equal cv.kh * cv.kw = {kh} * {kw}")
        windows, a_access = _window_reader(m, M, N, zp, dtype)  # (M, K, N)

        def product() -> np.ndarray:
            return exact_depthwise(windows(), weights, zp)
    out, acc_access = m.region(ACC, acc, (M, N), (4 * acc_row, 4), "<i4", True, "accumulators")

    def action() -> None:
        total = product()
        if accumulate:
            total += out
        if total.size and (total.max() > _INT32_MAX or total.min() < _INT32_MIN):
            bad = np.unravel_index(np.argmax((total > _INT32_MAX) | (total < _INT32_MIN)), total.shape)
            raise Fault(f"int32 accumulator overflow at acc[{bad[0]}, {bad[1]}] = {int(total[bad])}")
        out[...] = total

    t = m.target
    cycles = -(-M // t.array_rows) * -(-N // t.array_cols) * K * e + t.array_rows + t.array_cols
    accesses = tuple(x for x in (a_access, w_access, acc_access) if x is not None)
    return Effect(cycles, accesses, macs=M * N * K, action=action)
