"""Calibration observers: per-tensor statistics over calibration samples, and the range they choose.

- ``minmax``: the observed minimum and maximum.
- ``percentile``: the given percentiles of the value distribution (default 0.01% / 99.99%).
- ``entropy``: TensorRT's KL-divergence threshold on the |x| histogram (symmetric range).
- ``mse``: the clipping range whose int8 quantize-dequantize error, integrated over the
  histogram, is smallest.

Histograms use a fixed number of bins over [-R, R]; when a sample exceeds R, R doubles and
adjacent bin pairs merge, so no data is re-read and counts stay exact at the coarser resolution.
"""
from __future__ import annotations

import numpy as np

NUM_BINS = 4096  # even, so merging pairs keeps the centre at zero


class MinMaxObserver:
    def __init__(self):
        self.low = np.inf
        self.high = -np.inf

    def observe(self, x: np.ndarray) -> None:
        if x.size:
            self.low = min(self.low, float(x.min()))
            self.high = max(self.high, float(x.max()))

    def range(self) -> tuple[float, float]:
        if not np.isfinite(self.low):
            return 0.0, 0.0
        return self.low, self.high


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
    """Symmetric threshold minimising KL(P || Q) between the clipped |x| histogram and its
    128-level quantized version (TensorRT's calibrator)."""

    target_bins = 128

    def range(self) -> tuple[float, float]:
        low, high = super().range()
        half = len(self.counts) // 2
        hist = self.counts[half:] + self.counts[:half][::-1]  # |x| histogram, bin width R/half
        if hist.sum() == 0:
            return low, high
        best_kl, best_i = np.inf, len(hist)
        for i in range(self.target_bins, len(hist) + 1, 16):
            p = hist[:i].astype(np.float64).copy()
            p[i - 1] += hist[i:].sum()
            q = _requantize_histogram(hist[:i].astype(np.float64), self.target_bins)
            kl = _kl(p, q)
            if kl < best_kl:
                best_kl, best_i = kl, i
        threshold = best_i * self.radius / half
        signed = low < 0
        return (max(low, -threshold) if signed else max(low, 0.0)), min(high, threshold)


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
            scale = (hi - lo) / 255.0
            if scale <= 0:
                continue
            zp = np.round(-lo / scale) - 128
            q = np.clip(np.round(centres / scale) + zp, -128, 127)
            err = float(np.sum(weights * ((q - zp) * scale - centres) ** 2))
            if err < best_err:
                best, best_err = (lo, hi), err
        return best


def _requantize_histogram(p: np.ndarray, bins: int) -> np.ndarray:
    """Spread each of ``bins`` merged groups' mass evenly over its non-empty source bins."""
    q = np.zeros_like(p)
    groups = np.array_split(np.arange(len(p)), bins)
    for idx in groups:
        nonzero = p[idx] > 0
        if nonzero.any():
            q[idx[nonzero]] = p[idx].sum() / nonzero.sum()
    return q


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    qs = q.sum()
    if qs == 0:
        return np.inf
    q = q / qs
    mask = p > 0
    if np.any(q[mask] == 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


OBSERVERS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "entropy": EntropyObserver,
    "mse": MseObserver,
}
