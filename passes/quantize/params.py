"""Choosing quantization parameters: activations from calibrated ranges, weights from their values."""
from __future__ import annotations

import re

import numpy as np

from tcc.ir import QuantParams
from tcc.ir import numerics
from tcc.ir.errors import TccError

INT8_MIN, INT8_MAX = -128, 127
# The largest |bias| on the accumulator grid: half the int32 range, the other half is left to the
# sum of products (K products of |x - zp| <= 255 and |w| <= 127 stay below 2**30 for K <= 2**15).
BIAS_BOUND = 2**30
WEIGHT_FORMATS = ("int8", "int4", "int2") + tuple(f"dybit{n}" for n in range(2, 9))
ROW_CAPS = -1  # parse_weight_format_cap's cap of dybitNr: each output channel takes its own cap


class QuantizationError(TccError):
    """A quantization request that cannot be met (unknown format, bad option)."""


def activation_params(lo: float, hi: float, symmetric: bool) -> QuantParams:
    """int8 parameters covering [lo, hi] (widened to include 0, so real zero is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        bound = max(-lo, hi)
        scale = bound / 127.0 if bound > 0 else 1.0
        return QuantParams((float(np.float32(scale)),), (0,))
    if hi - lo <= 0:
        return QuantParams((1.0,), (0,))
    scale = float(np.float32((hi - lo) / 255.0))
    zero_point = int(np.clip(np.rint(INT8_MIN - lo / scale), INT8_MIN, INT8_MAX))
    return QuantParams((scale,), (zero_point,))


def parse_weight_format(fmt: str) -> tuple[str, int]:
    """(kind, bits) of a weight format: one of WEIGHT_FORMATS or a DyBit one with its cap (dybit4c2)."""
    kind, bits, _ = parse_weight_format_cap(fmt)
    return kind, bits


def parse_weight_format_cap(fmt: str) -> tuple[str, int, int | None]:
    """(kind, bits, the DyBit cap given or None); ``dybitNr`` (a cap per channel) gives ROW_CAPS."""
    m = re.fullmatch(r"(int|dybit)([0-9])(?:c([0-9])|(r))?", fmt)
    if not m or (m.group(3) is None and m.group(4) is None and fmt not in WEIGHT_FORMATS) or \
            (m.group(4) is not None and (m.group(1) != "dybit" or not 2 <= int(m.group(2)) <= 7)) or \
            (m.group(3) is not None and (m.group(1) != "dybit" or not int(m.group(3)) < int(m.group(2)))):
        raise QuantizationError(f"unknown weight format {fmt!r}; choose from {', '.join(WEIGHT_FORMATS)} "
                                "(or dybitNcK: DyBit-N with its exponent run capped at K < N; dybitNr, N <= 7: "
                                "a cap per output channel)")
    cap = ROW_CAPS if m.group(4) is not None else None if m.group(3) is None else int(m.group(3))
    return m.group(1), int(m.group(2)), cap


def weight_sse(w: np.ndarray, values: np.ndarray, params: QuantParams, inputs: np.ndarray | None = None) -> float:
    """Sum of squared errors of quantized weights ``values`` (scales along params.axis) against ``w``;
    with ``inputs``, of the layer's outputs on those rows (see ``quantize_weights``)."""
    if inputs is not None:
        return float(np.sum(_channel_sse(w, values, params.scale, params.axis or 0, inputs)))
    return _weight_sse(w, values, params.scale, params.axis or 0)


def _weight_sse(w: np.ndarray, values: np.ndarray, scales, axis: int) -> float:
    shape = (-1,) + (1,) * (w.ndim - 1)
    real = np.moveaxis(np.moveaxis(values, axis, 0) * np.asarray(scales, np.float64).reshape(shape), 0, axis)
    return float(np.sum((real - np.asarray(w, np.float64)) ** 2))


def bias_weight_scales(bias: np.ndarray, input_scale: float) -> np.ndarray:
    """The smallest weight scale per output channel at which ``bias`` fits the accumulator grid.

    Rule (never refuse real weights): a channel whose bias would exceed BIAS_BOUND steps of
    s_x * s_w[c] -- a trained channel with a tiny BatchNorm gamma and a large beta -- gets its
    weight scale widened to |b[c]| / (s_x * BIAS_BOUND).  Its weights then use fewer levels, but
    that channel's output is dominated by its bias, which stays exact to 2**-30 of itself.
    """
    b = np.abs(np.asarray(bias, np.float64))
    return (b / (np.float64(input_scale) * BIAS_BOUND)).astype(np.float32)


def dybit_caps(bits: int) -> tuple[int, ...]:
    """The exponent-run caps a DyBit layer chooses from: 0 (the intN grid; cap 1 is the same grid)
    and 2 .. bits-1."""
    return (0,) + tuple(range(2, bits))


def quantize_weights(w: np.ndarray, fmt: str = "int8", axis: int = 0, min_scale: np.ndarray | None = None,
                     inputs: np.ndarray | None = None) -> tuple[np.ndarray, QuantParams]:
    """Per-channel symmetric weights along ``axis``: (integer array, parameters).

    int8 uses [-127, 127] with the max-abs scale; int4/int2 use [-7, 7]/[-1, 1] with an MSE scale
    search; dybitN stores each weight's DyBit code decoded onto its integer grid (so the datapath
    stays an integer MAC) and folds the grid step 2**-(N-2) into the scale.  DyBit adapts to the
    layer by its exponent-run cap: ``dybitNcK`` takes cap K; ``dybitN`` takes, of the caps
    ``dybit_caps``, the one of least weight MSE; ``dybitNr`` lets each output channel take the
    cap (and that cap's MSE scale) of least squared error in that channel, the caps kept in
    ``QuantParams.caps``.  Cap 0 is quantized exactly as intN (same scale search, same grid), so
    DyBit's weight error is never above intN's.  The chosen cap is in the format name
    (``dybit4c2``; the full run is ``dybit4c3``, printed ``dybit4``).  ``min_scale`` (per
    channel) widens a channel's scale to at least that value (see ``bias_weight_scales``).
    ``inputs`` (rows [M, K] of the layer's input, K in the order of ``w``'s non-channel axes):
    every search and choice of the narrow formats minimises the layer's output error on those
    rows instead of the weights' squared error (intN and DyBit alike).
    """
    kind, bits, explicit_cap = parse_weight_format_cap(fmt)
    w = np.asarray(w, np.float32)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)

    def widened(scale: np.ndarray, step: float = 1.0) -> np.ndarray:
        if min_scale is None:
            return scale
        return np.maximum(scale, np.float32(np.asarray(min_scale, np.float64) / step)).astype(np.float32)

    if kind == "int" and bits == 8:
        peak = np.abs(moved).max(axis=1)
        scale = widened(np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32))
        q = numerics.int_quantize(w, 8, scale, axis=axis).astype(np.int8)
        return q, QuantParams(tuple(float(s) for s in scale), (0,) * len(scale), axis)
    if kind == "int":
        scale = widened(np.asarray(numerics.search_scale_uniform(moved, bits, axis=0, inputs=inputs),
                                   np.float32).reshape(-1))
        q = numerics.int_quantize(w, bits, scale, axis=axis).astype(np.int8)
        return q, QuantParams(tuple(float(s) for s in scale), (0,) * len(scale), axis, fmt)
    caps = dybit_caps(bits) if explicit_cap in (None, ROW_CAPS) else (explicit_cap,)
    tried = [_dybit_weights(w, moved, bits, cap, axis, widened, inputs) for cap in caps]
    errors = np.array([_channel_sse(w, values, fine, axis, inputs) for values, fine in tried])  # [cap, channel]
    if explicit_cap == ROW_CAPS:
        best = np.argmin(errors, axis=0)  # ties: the earlier (smaller) cap
        pick = np.stack([np.moveaxis(v, axis, 0) for v, _ in tried])  # [cap, channel, ...]
        values = np.moveaxis(pick[best, np.arange(best.size)], 0, axis)
        fine = tuple(tried[c][1][i] for i, c in enumerate(best))
        row_caps = tuple(int(caps[c]) for c in best)
        dtype = np.int8 if max(numerics.max_decode_int(bits, c) for c in row_caps) <= 127 else np.int16
        return values.astype(dtype), QuantParams(fine, (0,) * len(fine), axis, f"dybit{bits}r", row_caps)
    chosen = int(np.argmin(errors.sum(axis=1)))  # ties: the earlier (smaller) cap
    cap, (values, fine) = caps[chosen], tried[chosen]
    dtype = np.int8 if numerics.max_decode_int(bits, cap) <= 127 else np.int16
    name = numerics.WeightFormat("dybit", bits, cap).name
    return values.astype(dtype), QuantParams(fine, (0,) * len(fine), axis, name)


def _channel_sse(w: np.ndarray, values: np.ndarray, scales, axis: int, inputs=None) -> np.ndarray:
    """Per-channel (along ``axis``) sums of squared errors of quantized ``values`` against ``w``
    (of the layer's outputs on ``inputs`` rows when given)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    real = np.moveaxis(values, axis, 0) * np.asarray(scales, np.float64).reshape(shape)
    diff = (real - np.moveaxis(np.asarray(w, np.float64), axis, 0)).reshape(real.shape[0], -1)
    if inputs is not None:
        diff = diff @ np.asarray(inputs, np.float64).T
    return np.sum(diff ** 2, axis=1)


def _dybit_weights(w: np.ndarray, moved: np.ndarray, bits: int, cap: int, axis: int,
                   widened, inputs=None) -> tuple[np.ndarray, tuple[float, ...]]:
    """DyBit-``bits`` weights with exponent-run cap ``cap`` on the fine grid, and the fine scales.
    Cap 0 is the intN grid [-(2**(bits-1)-1), 2**(bits-1)-1] and takes intN's scale search."""
    if cap == 0:
        scale = widened(np.asarray(numerics.search_scale_uniform(moved, bits, axis=0, inputs=inputs),
                                   np.float32).reshape(-1))
        values = np.asarray(numerics.int_quantize(w, bits, scale, axis=axis)).astype(np.int32)
        return values, tuple(float(s) for s in scale)
    step = 2.0 ** -numerics.FINE_SHIFT[bits]
    scale = widened(np.asarray(numerics.search_scale(moved, bits, axis=0, cap=cap, inputs=inputs),
                               np.float32).reshape(-1), step)
    codes = numerics.quantize(w, bits, scale, axis=axis, cap=cap)
    values = np.asarray(numerics.decode_int(codes, bits, cap))
    return values, tuple(float(np.float32(s * step)) for s in scale)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scales) -> tuple[np.ndarray, tuple[float, ...]]:
    """int32 bias on the accumulator grid s_x * s_w[c] (weight scales from ``bias_weight_scales``
    keep it within BIAS_BOUND; rounding may land one step past it, still far inside int32)."""
    acc_scale = np.float64(input_scale) * np.asarray(weight_scales, np.float64)
    q = np.asarray(numerics.round_to_integer(np.asarray(b, np.float64) / acc_scale, "half_even"))
    if q.size and (q.max() > numerics.INT32_MAX or q.min() < numerics.INT32_MIN):
        raise QuantizationError("a bias does not fit int32 at the accumulator scale")
    return q.astype(np.int32), tuple(float(s) for s in acc_scale)


def dyadic(real) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Q31 multipliers and shifts for one or more positive reals."""
    m, s = numerics.quantize_multiplier(np.atleast_1d(np.asarray(real, np.float64)))
    return tuple(int(v) for v in np.atleast_1d(m)), tuple(int(v) for v in np.atleast_1d(s))
