"""Calibration observers: per-tensor statistics over calibration samples, and the range they choose.

- ``minmax``: the observed minimum and maximum.
- ``percentile``: the given percentiles of the value distribution (default 0.01% / 99.99%).
- ``entropy``: TensorRT's KL-divergence threshold on the |x| histogram (symmetric range).
- ``mse``: the clipping range whose int8 quantize-dequantize error, integrated over the
  histogram, is smallest.

Histograms use a fixed number of bins over [-R, R]; when a sample exceeds R, R doubles and
adjacent bin pairs merge, so no data is re-read and counts stay exact at the coarser resolution.

Observers merge (``merge``): calibration over chunks of samples in parallel workers gives the
serial result exactly.  R is always a power of two and the bin edges of [-R, R] (a power-of-two
number of bins) are exact binary fractions, so np.histogram assigns every value to the bin its
exact position falls in; the edges at 2R are a subset of those at R, so binning at R and merging
pairs equals binning at 2R, whatever order the samples and the growth came in.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import numerics

from .params import activation_params

NUM_BINS = 4096  # even, so merging pairs keeps the centre at zero


class MinMaxObserver:
    def __init__(self):
        self.low = np.inf
        self.high = -np.inf
        self.non_finite = False  # the tensor carried +-Inf or NaN (observed: its finite values only)

    def observe(self, x: np.ndarray) -> None:
        if x.size:
            self.low = min(self.low, float(x.min()))
            self.high = max(self.high, float(x.max()))

    def range(self) -> tuple[float, float]:
        if not np.isfinite(self.low):
            return 0.0, 0.0
        return self.low, self.high

    def merge(self, other: MinMaxObserver) -> None:
        """Add what ``other`` observed (an observer of the same kind and options)."""
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self.non_finite = self.non_finite or other.non_finite


class HistogramObserver(MinMaxObserver):
    """Min/max plus a symmetric histogram that grows by doubling its range."""

    def __init__(self, bins: int = NUM_BINS):
        super().__init__()
        self.counts = np.zeros(bins, np.int64)
        self.radius = 0.0

    def _grow(self, needed: float) -> None:
        if self.radius == 0.0:
            self.radius = 2.0 ** np.ceil(np.log2(max(needed, 1e-30)))
            return
        while self.radius < needed:
            half = len(self.counts) // 2
            pairs = self.counts.reshape(-1, 2).sum(axis=1)  # bins of double width, from -2R
            grown = np.zeros_like(self.counts)
            grown[half - half // 2: half + half // 2] = pairs
            self.counts = grown
            self.radius *= 2.0

    def observe(self, x: np.ndarray) -> None:
        super().observe(x)
        if not x.size:
            return
        peak = float(np.abs(x).max())
        if peak > self.radius or self.radius == 0.0:
            self._grow(peak)
        counts, _ = np.histogram(x, bins=len(self.counts), range=(-self.radius, self.radius))
        self.counts += counts

    def merge(self, other: MinMaxObserver) -> None:
        super().merge(other)
        assert isinstance(other, HistogramObserver) and len(other.counts) == len(self.counts)
        if other.radius == 0.0:
            return
        if self.radius == 0.0:
            self.counts, self.radius = other.counts.copy(), other.radius
            return
        counts, radius = other.counts, other.radius
        if radius < self.radius:
            grown = HistogramObserver(len(counts))
            grown.counts, grown.radius = counts.copy(), radius
            grown._grow(self.radius)
            counts = grown.counts
        else:
            self._grow(radius)
        self.counts = self.counts + counts

    def edges(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, len(self.counts) + 1)

    def centres(self) -> np.ndarray:
        e = self.edges()
        return (e[:-1] + e[1:]) / 2


class PercentileObserver(HistogramObserver):
    def __init__(self, percentile: float = 99.99):
        super().__init__()
        self.percentile = percentile

    def range(self) -> tuple[float, float]:
        low, high = super().range()
        total = self.counts.sum()
        if total == 0 or self.radius == 0.0:
            return low, high
        cdf = np.cumsum(self.counts) / total
        edges = self.edges()
        tail = (100.0 - self.percentile) / 100.0
        lo_edge = edges[int(np.searchsorted(cdf, tail, side="left"))]
        hi_edge = edges[int(np.searchsorted(cdf, 1.0 - tail, side="left")) + 1]
        return max(low, float(lo_edge)), min(high, float(hi_edge))


class EntropyObserver(HistogramObserver):
    """Symmetric threshold minimising KL(P || Q) between the clipped histogram (outliers folded
    into the edge bins) and its 128-level quantized version, as onnxruntime's entropy
    calibrator computes it (TensorRT's method, with the same smoothing)."""

    levels = 128
    stride = 8

    def range(self) -> tuple[float, float]:
        low, high = super().range()
        hist = self.counts.astype(np.float64)
        half = len(hist) // 2
        if hist.sum() == 0:
            return low, high
        best_kl, best_i = np.inf, half
        for i in range(self.levels // 2, half + 1, self.stride):
            sliced = hist[half - i: half + i]
            p = sliced.copy()
            p[0] += hist[:half - i].sum()
            p[-1] += hist[half + i:].sum()
            kl = _kl(_smooth(p), _smooth(_quantized_like(sliced, p != 0, self.levels)))
            if kl < best_kl:
                best_kl, best_i = kl, i
        threshold = best_i * self.radius / half
        return max(low, -threshold), min(high, threshold)


class MseObserver(HistogramObserver):
    """Clipping range minimising the histogram-weighted int8 round-trip error."""

    def range(self) -> tuple[float, float]:
        low, high = super().range()
        if self.counts.sum() == 0 or high <= low:
            return low, high
        centres, weights = self.centres(), self.counts.astype(np.float64)
        best, best_err = (low, high), np.inf
        for frac in np.linspace(0.3, 1.0, 71):
            lo, hi = min(low * frac, 0.0), max(high * frac, 0.0)
            if hi - lo <= 0:
                continue
            # the parameters the quantizer will choose for this range (float32 scale), and its rounding
            params = activation_params(lo, hi, symmetric=False)
            scale, zp = params.scale[0], params.zero_point[0]
            q = numerics.quantize_affine(centres, scale, zp)
            err = float(np.sum(weights * (numerics.dequantize_affine(q, scale, zp) - centres) ** 2))
            if err < best_err:
                best, best_err = (lo, hi), err
        return best


class SoftmaxInputObserver(MinMaxObserver):
    """Min/max, and the lower end that minimises the error of the softmax *output* (``auto`` for
    values read only by a softmax along the last axis).

    A softmax forgets scores far below its row's maximum (exp(-10) < 5e-5), so clipping the low
    end of its input costs almost nothing while every level saved refines the scores that matter.
    The candidates are lo = max(min, max - T) for T in ``SPANS``; each is scored by the squared
    error of softmax(int8 round trip of the stored rows) against softmax(rows), the int8
    parameters being the ones the quantizer will choose (activation_params).  Rows are kept in
    sample order up to ``MAX_ROWS``.
    """

    MAX_ROWS = 4096
    SPANS = (8.0, 10.0, 12.0, 14.0, 16.0, 20.0)

    def __init__(self):
        super().__init__()
        self.rows: list[np.ndarray] = []
        self.count = 0

    def observe(self, x: np.ndarray) -> None:
        super().observe(x)
        if x.size and self.count < self.MAX_ROWS:
            rows = np.asarray(x, np.float64).reshape(-1, x.shape[-1])[:self.MAX_ROWS - self.count]
            self.rows.append(rows)
            self.count += len(rows)

    def merge(self, other: MinMaxObserver) -> None:
        super().merge(other)
        assert isinstance(other, SoftmaxInputObserver)
        for rows in other.rows:
            if self.count >= self.MAX_ROWS:
                break
            rows = rows[:self.MAX_ROWS - self.count]
            self.rows.append(rows)
            self.count += len(rows)

    def range(self) -> tuple[float, float]:
        low, high = super().range()
        if not self.rows or high <= low:
            return low, high
        x = np.concatenate(self.rows)
        exact = _softmax(x)
        best, best_err = (low, high), np.inf
        for lo in [low] + [high - span for span in self.SPANS if high - span > low]:
            params = activation_params(lo, high, symmetric=False)
            scale, zp = params.scale[0], params.zero_point[0]
            rounded = numerics.dequantize_affine(numerics.quantize_affine(x, scale, zp), scale, zp)
            err = float(np.sum((_softmax(rounded) - exact) ** 2))
            if err < best_err:
                best, best_err = (lo, high), err
        return best


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _quantized_like(sliced: np.ndarray, nonzero: np.ndarray, levels: int) -> np.ndarray:
    """Merge ``sliced`` into ``levels`` groups and spread each group's mass over its bins that
    are non-zero in the reference distribution."""
    width = len(sliced) // levels
    merged = sliced[:width * levels].reshape(levels, width).sum(axis=1)
    merged[-1] += sliced[width * levels:].sum()
    owners = np.minimum(np.arange(len(sliced)) // width, levels - 1)
    norm = np.bincount(owners, weights=nonzero.astype(np.float64), minlength=levels)
    spread = np.divide(merged, norm, out=np.zeros(levels), where=norm > 0)
    return np.where(nonzero, spread[owners], 0.0)


def _smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """Move a little mass onto empty bins so the divergence stays finite (onnxruntime's rule)."""
    zero = p == 0
    n_zero, n_nonzero = int(zero.sum()), int((~zero).sum())
    if n_nonzero == 0:
        return None
    eps1 = eps * n_zero / n_nonzero
    return p.astype(np.float64) + eps * zero - eps1 * (~zero)


def _kl(p: np.ndarray | None, q: np.ndarray | None) -> float:
    if p is None or q is None:
        return np.inf
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    if np.any(q[mask] <= 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


class Ranges(dict[int, tuple[float, float]]):
    """Calibrated ranges (lo, hi) by id(Value), and ``non_finite``: the ids of the values that carried
    +-Inf or NaN in some sample by the model's construction (nonfinite.py; their range is that of
    their finite values, and the lowering keeps them off the int8 grid)."""

    non_finite: frozenset[int] = frozenset()


OBSERVERS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "entropy": EntropyObserver,
    "mse": MseObserver,
}
