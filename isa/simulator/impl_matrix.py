"""The systolic array: ``matmul`` in gemm, conv (implicit im2col) and dwconv form.

``acc[m, n] (+)= sum_k (A[m, k] - mm.a_zp) * W[n, k]``.  A product of at most NATIVE_MACS
multiply-adds with int8 weights runs in one C call (``native.c: mm``, exact in int32 by its bound) straight
from abuf's and wbuf's bytes, where the C kernels are built; otherwise the sum is an int8 kernel's product
(int8_kernel.py: its int32 bound proven, the kernel probed at first use) where it qualifies and
pays, else a BLAS matrix product in float32 or float64, exact because every partial sum is an
integer the format holds (exact_product.py proves the bound); the int32 result traps instead of
wrapping.  Each instruction keeps its decoded weights (and their int8 and float copies) with the
packed bytes they came from, and decodes again only when wbuf holds different bytes.  In
conv/dwconv form only the slab bytes actually read (the span of the in-slab window pixels,
channels cv.c0 on) are bounds-checked and count as the access.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import count
from typing import Callable

import numpy as np

from tcc.ir import numerics

from ..cycles import matmul_timing
from ..weights import matmul_format, row_bytes
from . import int8_kernel, native
from .exact_product import (Weights, exact_batched, exact_depthwise, exact_grouped, exact_product, exact_product_into,
                            float32_terms, handed, int32_fits, zero_point_fits)
from .impl_pool import PaddedImage
from .machine import ABUF, ACC, PBUF, WBUF, Effect, Fault, MachineState, impl, registers, sample_prefix
from .shared_product import SharedWindows
from .weight_decode import decode_rows, decode_transposed, int8_codes, int16_codes, one_byte_codes

_MM = registers("mm.a", "mm.a_row", "mm.m", "mm.n", "mm.k", "mm.a_zp", "mm.w_row", "mm.acc_row")
_CV = registers("cv.h", "cv.w", "cv.c", "cv.kh", "cv.kw", "cv.sh", "cv.sw", "cv.dh", "cv.dw",
                "cv.pad_top", "cv.pad_left", "cv.w_out", "cv.c0")
_INT32_MIN, _INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX
_WINDOWS_KEPT = 2  # slabs whose windows a machine keeps (a layer's tiles alternate between two halves of abuf)
_SERIALS = count()  # serial numbers of the windows made, never reused
_CHUNK_BYTES = 1 << 20  # a depthwise conv's windows made at once at most (bytes), a sample's at least
# dwconv tiles of at least this many channels reduce their taps from a padded image; narrower ones gather
# (the einsum's inner loop runs along the channels: MobileNetV3's 8-channel tile took 54 us gathered and
# 95 from the image, its 120-channel ones 47 against 39; ShuffleNet's 136-channel ones 208 against 109)
_IMAGE_CHANNELS = 64


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


def _slab(m: MachineState, M: int, channels: int):
    """The conv input slab's geometry registers, checked; the windows of its M outputs
    (``_windows``: index, first and last pixel read); the rows [first, last] of ``channels``
    channels from cv.c0 (every sample's) and their access (both None when no window reads the slab)."""
    geometry = _CV(m.regs)
    h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out, c0 = geometry
    if w_out <= 0 or kh <= 0 or kw <= 0 or h < 0 or w < 0 or c <= 0:
        raise Fault(f"bad conv geometry: cv.w_out={w_out}, cv.kh={kh}, cv.kw={kw}, cv.h={h}, cv.w={w}, cv.c={c}")
    if c0 < 0 or c0 + channels > c:
        raise Fault(f"reads channels [{c0}, {c0 + channels}) of a slab of cv.c = {c} channels")
    index, first, last = _windows(M, h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out)
    if index is None:
        return geometry, None, None, None, None, None
    rows, access = m.region(ABUF, m.reg("mm.a") + first * c + c0, (last - first + 1, channels), (c, 1), np.int8,
                            False, "conv input slab")
    return geometry, index, first, last, rows, access


def _window_reader(m: MachineState, M: int, channels: int, zp: int, dtype, samples: slice = slice(None)):
    """A function giving the slab values at every window position for ``channels`` channels from
    cv.c0, as ``dtype`` (N*M, kh*kw, channels) for the batch's N samples (those of ``samples``;
    sample-major) with ``zp`` at padding positions, and their serial
    number (a new one whenever the windows are made anew); the slab's access; the windows' key
    (None when no window reads the slab)."""
    (h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out, c0), index, first, last, rows, access = \
        _slab(m, M, channels)
    batch = len(range(m.batch)[samples])
    if index is None:
        return lambda: (np.full((batch * M, kh * kw, channels), zp, dtype), next(_SERIALS)), None, None
    rows = rows[samples]

    slab = index.shape == (rows.shape[1], 1) and np.array_equal(index[:, 0], np.arange(M))  # 1x1, stride 1
    # the tiles of a layer's output channels read one slab the same way, one after another: the windows
    # made from its bytes are kept (per machine, the last few) and reused while abuf holds those bytes
    key = (m.reg("mm.a") + first * c + c0, channels, c, M, h, w, kh, kw, sh, sw, dh, dw, pad_top, pad_left, w_out,
           zp, np.dtype(dtype).str, range(m.batch)[samples].start)
    kept = m.windows

    def read() -> tuple[np.ndarray, int]:
        made = kept.get(key)
        now = rows.tobytes()  # a copy and a memcmp: 1.3-4x faster than np.array_equal on 4-200 KB slabs
        if made is not None and made[0] == now:
            return made[1], made[2]
        # per sample, the slab as dtype with one more row: the zero point
        padded = np.empty((batch, rows.shape[1] + 1, channels), dtype)
        if dtype == np.uint8:  # the int8 kernel's biased operand (int8_kernel.py): a + 128
            padded[:, -1] = zp + 128
            np.bitwise_xor(rows.view(np.uint8), 0x80, out=padded[:, :-1])
        else:
            padded[:, -1] = zp
            padded[:, :-1] = rows
        taken = padded[:, :-1, None, :] if slab else np.take(padded, index, axis=1)  # (N, M, taps, channels)
        windows = taken.reshape(batch * M, taken.shape[2], channels)  # a view but for a batch's 1x1 slab
        if len(kept) >= _WINDOWS_KEPT:
            del kept[next(iter(kept))]
        serial = next(_SERIALS)
        kept[key] = (now, windows, serial)
        return windows, serial

    return read, access, key


def _conv_operands(m: MachineState, M: int, N: int, channels: int, zp: int, dtype, fmt: tuple, w_max: int):
    """conv: a function of the weights giving the (M, K) windows and, for a tile of a group reading
    the same windows (shared_product.py: same layer, windows key and weight format), their float
    product; and the slab's access."""
    windows, access, key = _window_reader(m, M, channels, zp, dtype)
    K = channels * m.reg("cv.kh") * m.reg("cv.kw")
    if key is None or not zero_point_fits(zp):
        def operands(weights: Weights) -> tuple[np.ndarray, np.ndarray | None]:
            return windows()[0].reshape(-1, K), None

        return operands, access
    group = m.shared.get((m.reg("sys.layer"), key, fmt))
    if group is None:
        group = m.shared[(m.reg("sys.layer"), key, fmt)] = SharedWindows(m.joined)
    tile = group.join(N)

    def shared(weights: Weights) -> tuple[np.ndarray, np.ndarray | None]:
        made, serial = windows()
        a = made.reshape(-1, K)
        return a, group.product(tile, serial, a, weights, zp, w_max)

    return shared, access


_NATIVE_W_MAX = 2**15 - 1  # the C kernel's weights are int16
_NATIVE_CG = 171  # its int32 partial sum of one group's cg channels: cg * (2**7 + 2**8 - 1) * 2**15 < 2**31


def _native_conv(m: MachineState, M: int, N: int, channels: int, cg: int, ng: int, zp: int, w_max: int):
    """A dwconv tile's product (cg = ng = 1) as ``native.c: conv`` runs it, straight from the slab (no
    windows made): a ``product(weights, into)`` and the slab's access; None where there is no kernel
    or the tile is outside its bounds (the numpy path then runs).  The kernel takes gconv's groups
    too, but their longer reductions run faster on BLAS (ShuffleNet's 174 gconv tiles: 62 us each
    on BLAS, 183 in the kernel; its 40 dwconv tiles 119 us in numpy, 69 in the kernel)."""
    fused = native.kernels()
    if fused is None or not hasattr(fused, "mm") or not zero_point_fits(zp) or w_max > _NATIVE_W_MAX or cg > _NATIVE_CG:
        return None
    _, index, first, last, rows, access = _slab(m, M, channels)
    if index is None:
        return None
    index, pad, batch = np.ascontiguousarray(index, np.int64), last - first + 1, m.batch
    made: list = [None, None]  # the Weights and their int16 layout for the kernel

    def product(weights: Weights, into: np.ndarray | None) -> np.ndarray | None:
        if made[0] is not weights:
            values = weights.values
            made[:] = weights, np.ascontiguousarray(values.T if cg == 1 and ng == 1 else values, np.int16)
        if into is not None and fused.conv(into, rows, index, made[1], zp, cg, ng, pad):
            return None
        total = np.empty((batch * M, N), np.int64)  # (an int32 sum that does not fit: the action traps)
        fused.conv(total, rows, index, made[1], zp, cg, ng, pad)
        return total

    return product, access


# The int8 kernel (onnxruntime's MatMulInteger) multiplies 3-4x faster than native.c mm (28.9M MACs:
# 114 against 335 us), but its action costs some 40 us more (the windows gathered as bytes, the
# session's call): CRNN's 128 x 576 x 32 conv tiles 60 us an action on it, its product 21 us in C.
NATIVE_MACS = 2**22
_WIDE_TAPS = 256  # native.c mm's most taps of an int16-weight depthwise tile (their int32 sums)


def _native_product(m: MachineState, mode: str, M: int, N: int, K: int, zp: int, fmt, accumulate: int):
    """A gemm, conv, gconv or dwconv tile's action as ``native.c: mm`` runs it, from abuf's int8 codes and
    wbuf's int8 weights directly (no windows, no decoded or float weights: one C call): its
    ``run(out, weights)``, a ``step(out, weights, fallback)`` making it a prepared step, and the A
    operand's access; or None where there is no kernel or the tile is outside it (then the numpy
    path runs).  The caller sends it only products below the int8 kernel's size: above it, a
    BLAS-like int8 product is faster."""
    fused = native.kernels()
    wide = mode == "dwconv" and int16_codes(fmt)  # int16 weights: depthwise tiles only (int32 products in C)
    if fused is None or not hasattr(fused, "mm") or not zero_point_fits(zp) or not (int8_codes(fmt) or wide) \
            or not 0 < K <= fused.MM_MAX_K or M < 1 or N < 1 or (wide and K > _WIDE_TAPS):
        return None
    if mode == "gemm":
        x, access = m.region(ABUF, m.reg("mm.a"), (M, K), (m.reg("mm.a_row"), 1), np.int8, False, "A operand")
        index, pad, cg, ng = _rows_index(M), M, K, N
    else:
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if mode == "gconv":
            cg, ng = m.reg("cv.cg"), m.reg("cv.ng")
            if cg <= 0 or ng <= 0 or kh <= 0 or kw <= 0 or K != kh * kw * cg:
                return None  # (the numpy path raises the fault)
            channels = -(-N // ng) * cg
        elif mode == "dwconv":  # output channel n reads slab channel cv.c0 + n: one-channel groups
            if K != kh * kw:
                return None
            cg, ng, channels = 1, 1, N
        else:
            if kh <= 0 or kw <= 0 or K % (kh * kw):
                return None
            cg = channels = K // (kh * kw)
            ng = N
        _, index, first, last, x, access = _slab(m, M, channels)
        if index is None:
            return None
        pad = last - first + 1  # (int32 where it holds every index and pad: half the bytes a run reads)
        index = np.ascontiguousarray(index, np.int32 if pad < 2**31 and int(index.min(initial=0)) >= 0 else np.int64)
    cache = np.zeros(fused.mm_cache_size(N, index.shape[1], cg, ng, wide), np.uint8)  # the weights relaid, kept

    def run(out: np.ndarray, weights: np.ndarray) -> tuple | None:
        """The sums into ``out`` (added with mm.accumulate); or where one does not fit int32, out untouched
        and (sample, row, column, value) of the first such."""
        return fused.mm(out, x, index, weights, zp, cg, ng, pad, accumulate, cache)

    def step(out: np.ndarray, weights: np.ndarray, fallback: Callable[[], None], share: bool = False):
        """``run`` as a prepared C step (native.step MM) calling ``fallback`` where it declines (a sum
        that does not fit int32: the trap); None where the kernels refuse it.  With ``share`` (after
        a run has relaid the weights): the step over the machine's cache holding the same bytes
        (one per distinct tile of weights: CRNN's 120 recurrent products relaid the same weights
        into 120 caches, 2.4 MB a run read from, where two hold them), None where this tile's cache
        is that one.  (A shared cache stays exact: each product compares the weights' bytes with
        the cache's and relays them where they differ.)"""
        used = cache
        if share:
            used = m.tables.setdefault(("mm cache", N, index.shape[1], cg, ng, cache.tobytes()), cache)
            if used is cache:
                return None
        return native.step("MM", 0, out, x, index, weights, used, np.array([zp, cg, ng, pad, accumulate], np.int64),
                           fallback)

    return run, step, access


@lru_cache(maxsize=64)
def _rows_index(M: int) -> np.ndarray:
    """A gemm's rows as a conv's windows: output row m reads row m (one tap)."""
    index = np.arange(M, dtype=np.int32 if M < 2**31 else np.int64)[:, None]
    index.flags.writeable = False
    return index


def _grouped(m: MachineState, M: int, N: int, K: int, zp: int, w_max: int, dtype):
    """gconv: output channel n belongs to group g = n // cv.ng and reduces over the cv.cg slab
    channels from cv.c0 + g * cv.cg, K = taps * cv.cg (reduction index tap * cv.cg + ci).
    Returns a function of the weights giving the product, and the slab's access."""
    kh, kw, cg, ng = m.reg("cv.kh"), m.reg("cv.kw"), m.reg("cv.cg"), m.reg("cv.ng")
    if cg <= 0 or ng <= 0 or kh <= 0 or kw <= 0 or K != kh * kw * cg:
        raise Fault(f"gconv: mm.k = {K} must equal cv.kh * cv.kw * cv.cg = {kh} * {kw} * {cg} (cv.ng = {ng})")
    groups = -(-N // ng)
    windows, a_access, _ = _window_reader(m, M, groups * cg, zp, dtype)  # (M, taps, groups * cg)

    def product(weights: Weights, into: np.ndarray | None) -> np.ndarray | None:
        gathered = windows()[0].reshape(-1, kh * kw, groups, cg)
        # (groups, N*M, K) with reduction index tap * cg + ci: a view for one tap, else a copy
        rows = gathered.shape[0]
        return exact_grouped(gathered.transpose(2, 0, 1, 3).reshape(groups, rows, K), weights, N, ng, zp, w_max,
                             into)

    return product, a_access


def _depthwise(m: MachineState, M: int, N: int, K: int, zp: int, w_max: int, dtype):
    """dwconv: output channel n reads slab channel cv.c0 + n at each of the K = kh * kw taps.  Returns
    a function of the weights giving the product (as ``matmul``'s ``product``), and the slab's access.

    Where the slab places in a padded image (impl_pool.PaddedImage: no negative padding), the
    tile has _IMAGE_CHANNELS channels or more and its product is exact in float32, each output's
    taps are a strided view of it, reduced in one einsum over ceil(M / w_out) whole output rows
    (the outputs past M dropped); otherwise the windows are gathered (``_window_reader``), a few
    samples at a time: a batch's windows past a megabyte or so (a longer reduction's int64 ones)
    cost more per sample (they leave the caches), and each sample's product uses only its own (the
    rows of its M pixels)."""
    kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
    if K != kh * kw:
        raise Fault(f"dwconv: mm.k = {K} must equal cv.kh * cv.kw = {kh} * {kw}")
    in_c = _native_conv(m, M, N, N, 1, 1, zp, w_max)
    if in_c is not None:
        return in_c
    (h, w, _, _, _, sh, sw, dh, dw, pad_top, pad_left, w_out, _), index, first, last, rows, access = _slab(m, M, N)
    batch = m.batch
    if index is not None and pad_top >= 0 and pad_left >= 0 and N >= _IMAGE_CHANNELS and zero_point_fits(zp) \
            and K <= float32_terms(w_max):
        h_out = -(-M // w_out)
        image = PaddedImage(m, dtype, zp, h, w, N, kh, kw, sh, sw, dh, dw, pad_top, pad_left, h_out, w_out, first,
                            last)
        windows = image.windows()  # (batch, h_out, w_out, kh, kw, N)

        def from_image(weights: Weights, into: np.ndarray | None) -> np.ndarray | None:
            image.fill(rows)
            whole = None if into is None or h_out * w_out != M else _reshaped(into, (batch, h_out, w_out, N))
            if whole is not None:
                return exact_depthwise(windows, weights, zp, w_max, whole, tap_axes=2)
            total = exact_depthwise(windows, weights, zp, w_max, tap_axes=2).reshape(batch, h_out * w_out, N)
            return handed(total[:, :M].reshape(batch * M, N), into)

        return from_image, access
    step = max(1, _CHUNK_BYTES // (M * K * N * np.dtype(dtype).itemsize))
    chunks = [(slice(s * M, (s + step) * M), _window_reader(m, M, N, zp, dtype, slice(s, s + step))[0])
              for s in range(0, batch, step)]  # (samples' rows, their windows (n*M, K, N))

    def gathered(weights: Weights, into: np.ndarray | None) -> np.ndarray | None:
        if len(chunks) == 1:
            return exact_depthwise(chunks[0][1]()[0], weights, zp, w_max, into)
        total = np.empty((batch * M, N), np.int64) if into is None else None
        for rows, windows in chunks:
            made = exact_depthwise(windows()[0], weights, zp, w_max, None if into is None else into[rows])
            if total is not None:  # (given ``into``, a product writes there: exact_product.handed)
                total[rows] = made
        return total

    return gathered, access


def _reshaped(view: np.ndarray, shape: tuple) -> np.ndarray | None:
    """``view`` reshaped without copying, or None where its strides do not allow it."""
    made = view.view()
    try:
        made.shape = shape
    except AttributeError:
        return None
    return made


def _decoded(m: MachineState, key: bytes, shape: tuple, caps: np.ndarray | None, K: int, fmt, w_max: int) -> Weights:
    """The Weights of packed rows ``key`` (then the caps' bytes, if any), kept in ``m.weights``."""
    rows = np.frombuffer(key, np.uint8, shape[0] * shape[1]).reshape(shape)  # the key's bytes: no copy
    row_caps = None if caps is None else caps.copy()
    direct = (lambda dtype: decode_transposed(rows, K, fmt, dtype)) if one_byte_codes(fmt) else None
    weights = Weights(lambda: decode_rows(rows, K, fmt, row_caps), w_max, direct, source=key)
    m.weights[(key, fmt, K)] = weights
    return weights


def _rows_of(view: np.ndarray) -> np.ndarray | None:
    """An (N, M, C) view as (N*M, C) without copying, or None where its strides do not allow it."""
    return _reshaped(view, (view.shape[0] * view.shape[1], view.shape[2]))


def _native_matmul(m: MachineState, in_c: tuple, weights: np.ndarray, w_access, M: int, N: int, K: int, fmt,
                   mode: str, acc: int, accumulate: int) -> Effect:
    """``matmul``'s Effect with the action ``_native_product`` made (``in_c``: its run, its step and the A
    operand's access): the prepared step where the kernels take it, running ``run`` (which raises the
    trap) only where the step declines."""
    run, step, a_access = in_c
    out, acc_access = m.region(ACC, acc, (M, N), (4 * m.reg("mm.acc_row"), 4), "<i4", True, "accumulators")
    batch = m.batch

    def action() -> None:
        bad = run(out, weights)
        if bad is not None:
            raise _overflow(batch, *bad)

    cycles, latency = matmul_timing(m.target, M, N, K, fmt, own_columns=mode in ("dwconv", "gconv"))
    accesses = tuple(x for x in (a_access, w_access, acc_access) if x is not None)
    prepared = step(out, weights, action)
    return Effect(cycles, accesses, latency, macs=M * N * K, action=prepared or action,
                  settled=(lambda: step(out, weights, action, share=True)) if prepared is not None else None,
                  chain=((acc_access, M, N, latency), bool(accumulate)))


def _overflow(batch: int, sample: int, row: int, column: int, value: int) -> Fault:
    """The accumulator's trap: acc[row, column] of ``sample`` would hold ``value``, outside int32."""
    return Fault(f"{sample_prefix(batch, sample)}int32 accumulator overflow at acc[{row}, {column}] = {value}")


def _same_in_every_sample(*views: np.ndarray | None) -> bool:
    """Whether every sample's bytes of each view (sample axis first) equal sample 0's."""
    return all(v is None or (v[1:] == v[:1]).all() for v in views)


@impl("matmul")
def matmul(m: MachineState, mode: str, accumulate: int, wfmt: str, wcap: int, acc: int, w: int):
    m.require_mode("int8", "matmul")
    a, a_row, M, N, K, zp, w_row, acc_row = _MM(m.regs)
    try:
        fmt = matmul_format(wfmt, wcap)
    except ValueError as e:
        raise Fault(str(e)) from None
    packed, w_access = m.region(WBUF, w, (N, row_bytes(K, fmt)), (w_row, 1), np.uint8, False, "weights")
    caps, caps_access = None, None
    if fmt.row_caps:  # row n's cap: the byte at pbuf[mm.wcaps + n]
        caps, caps_access = m.region(PBUF, m.reg("mm.wcaps"), (N,), (1,), np.uint8, False, "weight row caps")
    w_max = max(1, numerics.max_abs_value(fmt))
    # the operands biased to uint8 for the int8 kernel where it is chosen (int8_kernel.py); else float32,
    # which holds them exactly; a zero point outside int8 keeps them as int64.
    # (gconv: by one group's product, cv.ng columns: a batch of small products gains nothing)
    batch = m.batch  # the batch's samples multiply the same weights: one product of N*M rows
    kernel = mode != "dwconv" and int8_kernel.chosen(batch * M, K, min(N, m.reg("cv.ng")) if mode == "gconv" else N,
                                                     zp, w_max)
    # a product in one C call where it qualifies (int8 weights read from wbuf): below the int8 kernel's size,
    # and above it up to NATIVE_MACS
    in_c = None if kernel and batch * M * N * K > NATIVE_MACS else _native_product(m, mode, M, N, K, zp, fmt,
                                                                                   accumulate)
    if in_c is not None:
        weights = packed[..., :2 * K].view("<i2") if fmt.bits == 16 else packed[..., :K].view(np.int8)
        return _native_matmul(m, in_c, weights, w_access, M, N, K, fmt, mode, acc, accumulate)
    dtype = np.uint8 if kernel else np.float32 if zero_point_fits(zp) else np.int64
    # gemm and conv: a function of the weights giving the (N*M, K) A operand and, when it has it
    # already (shared_product.py), their float product
    operands: Callable[[Weights], tuple[np.ndarray, np.ndarray | None]] | None = None
    if mode == "gemm":
        rows, a_access = m.region(ABUF, a, (M, K), (a_row, 1), np.int8, False, "A operand")

        def operands(weights: Weights) -> tuple[np.ndarray, np.ndarray | None]:
            flat = rows.reshape(-1, K)  # a view for one sample
            return (int8_kernel.biased(flat) if kernel else flat), None
    elif mode == "conv":
        kh, kw = m.reg("cv.kh"), m.reg("cv.kw")
        if kh <= 0 or kw <= 0 or K % (kh * kw):
            raise Fault(f"conv: mm.k = {K} is not a multiple of cv.kh * cv.kw = {kh} * {kw}")
        operands, a_access = _conv_operands(m, M, N, K // (kh * kw), zp, dtype, (wfmt, wcap), w_max)
    # product(weights, into): the int64 product, or None when it was written into ``into`` (an int32
    # destination given when every sum provably fits it)
    product: Callable[[Weights, np.ndarray | None], np.ndarray | None]
    if operands is not None:
        def product(weights: Weights, into: np.ndarray | None) -> np.ndarray | None:
            a_operand, shared = operands(weights)
            if into is not None:
                exact_product_into(into, a_operand, weights, zp, w_max, shared)
                return None
            return exact_product(a_operand, weights, zp, w_max, shared)
    elif mode == "gconv":
        product, a_access = _grouped(m, M, N, K, zp, w_max, dtype)
    else:  # dwconv: output channel n reads slab channel cv.c0 + n at each of the K taps
        product, a_access = _depthwise(m, M, N, K, zp, w_max, dtype)
    out, acc_access = m.region(ACC, acc, (M, N), (4 * acc_row, 4), "<i4", True, "accumulators")

    decoded: list = [None]  # the Weights last decoded (their ``source``: the packed bytes and caps)
    # a fresh product whose every sum fits int32 (int32_fits: K terms, per group for gconv, per tap for
    # dwconv) cannot trap: written into acc directly (the batch's (N*M, N) rows as one matrix when
    # acc's view allows it, else through scratch)
    fits = not accumulate and int32_fits(K, zp, w_max)
    flat_out = _rows_of(out)

    def own_weights() -> np.ndarray:
        """The product when the samples' wbuf bytes differ (an activation as weights: attention's
        Q x K^T): each sample's rows times its own weights, (N, M, N) int64."""
        rb = packed.shape[2]
        values = decode_rows(packed.reshape(-1, rb), K, fmt, None if caps is None else caps.reshape(-1))
        values = values.reshape(batch, N, K)
        if mode == "gemm":
            return exact_batched(rows, values, zp, w_max)
        # (no compiled program loads per-sample weights for a conv: each sample's rows of a whole product)
        return np.stack([product(Weights(values[i], w_max), None).reshape(batch, M, N)[i] for i in range(batch)])

    def action() -> None:
        if caps is not None and caps.size and int(caps.max()) > fmt.bits - 1:
            sample, row = (int(i) for i in np.argwhere(caps > fmt.bits - 1)[0])
            raise Fault(f"{sample_prefix(batch, sample)}weight row {row} has cap {int(caps[sample, row])}; "
                        f"{fmt.name} caps lie in [0, {fmt.bits - 1}]")
        if batch > 1 and not _same_in_every_sample(packed, caps):
            total = own_weights()
        else:
            key = packed[0].tobytes() + (b"" if caps is None else caps[0].tobytes())
            if decoded[0] is None or key != decoded[0].source:
                # new weights (or caps) in wbuf: the first run, or a program that reloads them; the same
                # bytes decoded by another matmul (a layer's weight tile reloaded per slab) are shared
                decoded[0] = m.weights.get((key, fmt, K)) or _decoded(m, key, packed.shape[1:],
                                                                      None if caps is None else caps[0], K, fmt, w_max)
            into = None
            if fits:
                into = flat_out if flat_out is not None else np.empty((batch * M, N), np.int32)
            total = product(decoded[0], into)
            if total is None:  # written into ``into`` (exact_product.handed)
                if into is not flat_out:
                    out[...] = into.reshape(out.shape)
                return
            total = total.reshape(out.shape)
        if accumulate:
            total += out
        if total.size and (total.max() > _INT32_MAX or total.min() < _INT32_MIN):
            bad = np.unravel_index(np.argmax((total > _INT32_MAX) | (total < _INT32_MIN)), total.shape)
            sample, row, column = (int(i) for i in bad)
            raise _overflow(batch, sample, row, column, int(total[bad]))
        out[...] = total

    cycles, latency = matmul_timing(m.target, M, N, K, fmt, own_columns=mode in ("dwconv", "gconv"))
    accesses = tuple(x for x in (a_access, w_access, caps_access, acc_access) if x is not None)
    return Effect(cycles, accesses, latency, macs=M * N * K, action=action, blas=True,
                  chain=((acc_access, M, N, latency), bool(accumulate)))
