"""The systolic array: ``matmul`` in gemm, conv (implicit im2col) and dwconv form.

``acc[m, n] (+)= sum_k (A[m, k] - mm.a_zp) * W[n, k]``.  The sum is one BLAS matrix product in
float32 or float64, exact because every partial sum is an integer below 2**24 or 2**53 (bounded
from the operand ranges and K; an int64 product is the fallback), and the int32 result traps
instead of wrapping.  In conv/dwconv form only the slab bytes actually read (the span of the
in-slab window pixels, channels cv.c0 on) are bounds-checked and count as the access.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tcc.ir import numerics

from ..cycles import matmul_cycles
from ..weights import matmul_format, row_bytes
from .machine import ABUF, ACC, WBUF, Effect, Fault, MachineState, impl, registers
from .weight_decode import decode_rows

_MM = registers("mm.a", "mm.a_row", "mm.m", "mm.n", "mm.k", "mm.a_zp", "mm.w_row", "mm.acc_row")
_CV = registers("cv.h", "cv.w", "cv.c", "cv.kh", "cv.kw", "cv.sh", "cv.sw", "cv.dh", "cv.dw",
                "cv.pad_top", "cv.pad_left", "cv.w_out", "cv.c0")
_INT32_MIN, _INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX


@lru_cache(maxsize=64)
def _windows(M: int, h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pad_top: int,
             pad_left: int, w_out: int):
    """For every (output pixel, tap): the slab pixel to read, relative to the first one read, and
    whether it lies in the slab; plus the first and last pixel read (None if none is).

    Output pixel m is (m // w_out, m % w_out); tap i*kw + j reads (oy*sh + i*dh - pad_top,
    ox*sw + j*dw - pad_left).  Cached: a layer's tiles repeat the same geometry.
    """
    oy, ox = np.divmod(np.arange(M), w_out)
    iy = oy[:, None] * sh + np.arange(kh) * dh - pad_top  # (M, kh)
    ix = ox[:, None] * sw + np.arange(kw) * dw - pad_left  # (M, kw)
    valid = (((iy >= 0) & (iy < h))[:, :, None] & ((ix >= 0) & (ix < w))[:, None, :]).reshape(M, kh * kw)
    pixel = (iy[:, :, None] * w + ix[:, None, :]).reshape(M, kh * kw)
    if not valid.any():
        return None, valid, None, None
    first, last = int(pixel[valid].min()), int(pixel[valid].max())
    index = np.where(valid, pixel - first, 0)
    index.flags.writeable = valid.flags.writeable = False
    return index, valid, first, last


def _gather(m: MachineState, M: int, channels: int):
    """Slab values at every window position for ``channels`` channels from cv.c0, as int8
    (M, kh*kw, channels) (padding positions hold junk; ``valid`` marks the others), the validity
    mask (M, kh*kw) and the slab's access."""
    h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out, c0 = _CV(m.regs)
    if w_out <= 0 or kh <= 0 or kw <= 0 or h < 0 or w < 0 or c <= 0:
        raise Fault(f"bad conv geometry: cv.w_out={w_out}, cv.kh={kh}, cv.kw={kw}, cv.h={h}, cv.w={w}, cv.c={c}")
    if c0 < 0 or c0 + channels > c:
        raise Fault(f"reads channels [{c0}, {c0 + channels}) of a slab of cv.c = {c} channels")
    index, valid, first, last = _windows(M, h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out)
    if index is None:
        return np.zeros((M, kh * kw, channels), np.int8), valid, None
    rows, access = m.region(ABUF, m.reg("mm.a") + first * c + c0, (last - first + 1, channels), (c, 1), np.int8,
                            False, "conv input slab")
    return rows[index], valid, access


def _exact_chunk(zp: int, w_max: int) -> int:
    """The longest reduction whose float32 partial sums of (a - zp) * w stay exact integers (< 2**24)."""
    term = max(abs(numerics.INT8_MIN - zp), abs(numerics.INT8_MAX - zp)) * w_max
    return max(0, (2**24 - 1) // term)


def _exact_matmul(a: np.ndarray, w: np.ndarray, zp: int, w_max: int) -> np.ndarray:
    """``(a - zp) @ w.T`` exactly, as int64: float32 BLAS over reduction chunks short enough that
    every partial sum is an integer below 2**24, the chunks summed in int64 (float64 BLAS when a
    chunk would be too short to pay off)."""
    k = a.shape[1]
    chunk = _exact_chunk(zp, w_max)
    if chunk < 64 and k > chunk:
        return np.rint(a.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    total = None
    for k0 in range(0, k, max(chunk, 1)):
        part = (a[:, k0:k0 + chunk].astype(np.float32) @ w[:, k0:k0 + chunk].T.astype(np.float32)).astype(np.int64)
        total = part if total is None else total + part
    return total if total is not None else np.zeros((a.shape[0], w.shape[0]), np.int64)


def _centred(values: np.ndarray, zp: int, dtype, valid: np.ndarray | None = None) -> np.ndarray:
    out = values.astype(dtype)
    out -= dtype(zp)
    if valid is not None:
        out[~valid] = 0  # padding reads zp: contributes exactly zero (valid masks the leading axes)
    return out


def _grouped(m: MachineState, M: int, N: int, K: int, zp: int, w_int: np.ndarray, w_max: int):
    """gconv: output channel n belongs to group g = n // cv.ng and reduces over the cv.cg slab
    channels from cv.c0 + g * cv.cg, K = taps * cv.cg (reduction index tap * cv.cg + ci)."""
    kh, kw, cg, ng = m.reg("cv.kh"), m.reg("cv.kw"), m.reg("cv.cg"), m.reg("cv.ng")
    if cg <= 0 or ng <= 0 or kh <= 0 or kw <= 0 or K != kh * kw * cg:
        raise Fault(f"gconv: mm.k = {K} must equal cv.kh * cv.kw * cv.cg = {kh} * {kw} * {cg} (cv.ng = {ng})")
    groups = -(-N // ng)
    gathered, valid, a_access = _gather(m, M, groups * cg)  # (M, taps, groups * cg)
    centred = _centred(gathered, zp, np.int32, valid).reshape(M, kh * kw, groups, cg)
    product = np.empty((M, N), np.int64)
    for g in range(groups):
        a = centred[:, :, g, :].reshape(M, K)
        product[:, g * ng:(g + 1) * ng] = _exact_matmul(a, w_int[g * ng:(g + 1) * ng], zp, w_max)
    return product, a_access


@impl("matmul")
def matmul(m: MachineState, mode: str, accumulate: int, wfmt: str, wcap: int, acc: int, w: int):
    m.require_mode("int8", "matmul")
    a, a_row, M, N, K, zp, w_row, acc_row = _MM(m.regs)
    try:
        fmt = matmul_format(wfmt, wcap)
    except ValueError as e:
        raise Fault(str(e)) from None
    packed, w_access = m.region(WBUF, w, (N, row_bytes(K, fmt)), (w_row, 1), np.uint8, False, "weights")
    w_int = decode_rows(packed, K, fmt)
    w_max = max(1, numerics.max_abs_value(fmt))
    if mode == "gemm":
        rows, a_access = m.region(ABUF, a, (M, K), (a_row, 1), np.int8, False, "A operand")
        product = _exact_matmul(_centred(rows, zp, np.int32), w_int, zp, w_max)
    elif mode == "conv":
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if kh <= 0 or kw <= 0 or K % (kh * kw):
            raise Fault(f"conv: mm.k = {K} is not a multiple of cv.kh * cv.kw = {kh} * {kw}")
        gathered, valid, a_access = _gather(m, M, K // (kh * kw))
        product = _exact_matmul(_centred(gathered, zp, np.int32, valid).reshape(M, K), w_int, zp, w_max)
    elif mode == "gconv":
        product, a_access = _grouped(m, M, N, K, zp, w_int, w_max)
    else:  # dwconv: output channel n reads slab channel cv.c0 + n at each of the K taps
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if K != kh * kw:
            raise Fault(f"dwconv: mm.k = {K} must equal cv.kh * cv.kw = {kh} * {kw}")
        gathered, valid, a_access = _gather(m, M, N)  # (M, K, N)
        product = np.einsum("mkn,nk->mn", _centred(gathered, zp, np.int64, valid), w_int.astype(np.int64))
    out, acc_access = m.region(ACC, acc, (M, N), (4 * acc_row, 4), "<i4", True, "accumulators")
    total = product + out if accumulate else product
    if total.size and (total.max() > _INT32_MAX or total.min() < _INT32_MIN):
        bad = np.unravel_index(np.argmax((total > _INT32_MAX) | (total < _INT32_MIN)), total.shape)
        raise Fault(f"int32 accumulator overflow at acc[{bad[0]}, {bad[1]}] = {int(total[bad])}")
    out[...] = total
    cycles = matmul_cycles(m.target, M, N, K, fmt)
    accesses = tuple(x for x in (a_access, w_access, acc_access) if x is not None)
    return Effect(cycles, accesses, macs=M * N * K)
