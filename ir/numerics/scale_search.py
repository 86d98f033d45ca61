"""MSE scale search shared by the DyBit and uniform int-N quantizers.

Candidate scales are ``factor * max|x| / max_level`` (factor 1 maps max|x| to the largest
level); the chosen one minimises the mean squared quantize-dequantize error, per tensor or per
channel.  By default the factors are a coarse geometric grid over the quantizer's
``factor_range`` (41 points) refined by a linear grid (41 points) between the best coarse
point's neighbours; an explicit ``candidates`` array of factors is searched as given.

Quantizers that round to the nearest of a symmetric grid of magnitudes (``levels``: int-N's
0..2**(N-1)-1, DyBit's code table) are searched without quantizing: each channel's |x| is sorted
once with prefix sums of |x| and x**2, and a candidate scale's squared error is, over the
intervals between adjacent levels' midpoints, sum x**2 - 2*m*s*sum|x| + (m*s)**2*count, the
interval edges found by one batched searchsorted -- O(levels * log K) per channel and candidate
instead of a quantize-dequantize of the whole tensor.  (A value exactly on a midpoint, which the
quantizer rounds to the even code, may be counted on the other side; the two errors then differ
by nothing, since a midpoint is equally far from both levels.)

With ``inputs`` (rows of what the layer multiplies the weights by, [M, K] for weights [N, K]),
a channel's error is the mean square of its output error on those rows, ``(q - w) @ inputs.T``,
instead of the weights' own: the layer-output MSE that GPTQ-style quantizers minimise.
"""
import numpy as np

from ._arrays import as_float64, unwrap

_COARSE_POINTS = 41
_REFINE_POINTS = 41


def _best(v, fake_quantize, base, factors, reduce_axes, inputs=None):
    """Per-channel best factor among ``factors`` (shape: candidates x channel-broadcast shape)."""
    best_factor = best_err = None
    for factor in factors:
        scale = (base * factor).astype(np.float32).astype(np.float64)  # quantizers use float32
        diff = fake_quantize(v, scale) - v
        if inputs is not None:
            diff = diff @ inputs.T  # [channel, rows]: the layer's output error
        err = np.mean(diff ** 2, axis=reduce_axes, keepdims=True)
        if best_err is None:
            best_factor, best_err = factor * np.ones_like(base), err
        else:
            better = err < best_err
            best_factor = np.where(better, factor, best_factor)
            best_err = np.where(better, err, best_err)
    return best_factor


class _SortedChannels:
    """Per channel (rows of ``v``): sorted |v| with prefix sums, for the nearest-level error."""

    def __init__(self, v: np.ndarray, levels: np.ndarray):
        a = np.sort(np.abs(v), axis=1)
        rows, width = a.shape
        peak = np.where(a[:, -1:] > 0, a[:, -1:], 1.0)
        # channel c's sorted |v| / peak lie in [0, 1]; + 2c keeps channels apart in one sorted array
        self.offset = 2.0 * np.arange(rows)[:, None]
        self.keys = (a / peak + self.offset).ravel()
        self.peak, self.width = peak, width
        zero = np.zeros((rows, 1))
        self.s1 = np.concatenate([zero, np.cumsum(a, axis=1)], axis=1)
        self.s2 = np.concatenate([zero, np.cumsum(a * a, axis=1)], axis=1)
        self.levels = np.asarray(levels, np.float64)
        self.mids = (self.levels[:-1] + self.levels[1:]) / 2

    def mean_error(self, scale: np.ndarray) -> np.ndarray:
        """Mean squared error of each channel rounded to the nearest of ``levels * scale[c]``."""
        s = scale.reshape(-1, 1)
        # an edge above a channel's largest |v| (normalised to 1) counts it all: clip below the next channel
        edges = np.searchsorted(self.keys, (np.minimum(self.mids * s / self.peak, 1.5) + self.offset).ravel())
        edges = edges.reshape(s.shape[0], -1) - (self.offset / 2).astype(np.int64) * self.width
        rows = np.arange(s.shape[0])[:, None]
        bounds = np.concatenate([np.zeros_like(edges[:, :1]), edges, np.full_like(edges[:, :1], self.width)], axis=1)
        lo, hi = bounds[:, :-1], bounds[:, 1:]
        count = hi - lo
        sum1 = self.s1[rows, hi] - self.s1[rows, lo]
        sum2 = self.s2[rows, hi] - self.s2[rows, lo]
        m = self.levels * s
        return np.sum(sum2 - 2 * m * sum1 + m * m * count, axis=1) / self.width


def _best_sorted(sorted_channels: _SortedChannels, base, factors):
    """Per-channel best factor (as ``_best``) with the nearest-level errors of ``sorted_channels``."""
    flat_base = base.reshape(-1)
    best_factor = best_err = None
    for factor in factors:
        f = np.broadcast_to(np.asarray(factor, np.float64), base.shape).reshape(-1)
        scale = (flat_base * f).astype(np.float32).astype(np.float64)
        err = sorted_channels.mean_error(scale)
        if best_err is None:
            best_factor, best_err = f.copy(), err
        else:
            better = err < best_err
            best_factor = np.where(better, f, best_factor)
            best_err = np.where(better, err, best_err)
    return best_factor.reshape(base.shape)


def search_scale_mse(x, fake_quantize, max_level: float, factor_range: tuple[float, float],
                     axis=None, candidates=None, inputs=None, levels=None):
    """The scale minimising ``mean((fake_quantize(x, scale) - x)**2)``.

    ``fake_quantize(x, scale)`` returns dequantized values for a broadcastable scale.  Scales
    are rounded to float32 before evaluation (the quantizers divide in float32), so the returned
    scale is exactly one that was evaluated.  With ``axis`` the search runs per channel and
    returns a 1-d float64 array; otherwise one float.  Ties go to the earliest candidate.  An
    all-zero tensor or channel gets scale 1.0 (every scale is exact there).  ``inputs`` (see
    the module docstring) needs ``x`` of shape [N, K] and ``axis`` 0.  ``levels``: the ascending
    magnitudes ``fake_quantize`` rounds |x| / scale to the nearest of (from 0, saturating at the
    last), for the sorted search; ignored with ``inputs``.
    """
    v = as_float64(x, "x")
    if inputs is not None:
        inputs = np.asarray(inputs, np.float64)
        if v.ndim != 2 or axis not in (0, -2) or inputs.ndim != 2 or inputs.shape[1] != v.shape[1]:
            raise ValueError(f"inputs of shape {inputs.shape} need weights [N, K] searched along axis 0, "
                             f"got {v.shape} along {axis}")
    if not np.all(np.isfinite(v)):
        raise ValueError("scale search needs finite values")
    if axis is None:
        reduce_axes = tuple(range(v.ndim))
    else:
        if not -v.ndim <= axis < v.ndim:
            raise ValueError(f"axis {axis} out of range for a {v.ndim}-d array")
        axis %= v.ndim
        reduce_axes = tuple(i for i in range(v.ndim) if i != axis)
    if v.size == 0:
        return np.ones(v.shape[axis]) if axis is not None else 1.0
    amax = np.max(np.abs(v), axis=reduce_axes, keepdims=True)
    base = np.where(amax > 0, amax / max_level, 1.0)
    if levels is not None and inputs is None:
        channels = np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1) if axis is not None else v.reshape(1, -1)
        sorted_channels = _SortedChannels(channels, levels)

        def best_of(factors):
            return _best_sorted(sorted_channels, base, factors)
    else:
        def best_of(factors):
            return _best(v, fake_quantize, base, factors, reduce_axes, inputs)
    if candidates is None:
        grid = np.geomspace(factor_range[0], factor_range[1], _COARSE_POINTS)
        coarse = best_of(grid)
        ratio = grid[1] / grid[0]
        steps = np.linspace(0.0, 1.0, _REFINE_POINTS)
        lo, hi = coarse / ratio, coarse * ratio
        factors = np.stack([coarse] + [lo + t * (hi - lo) for t in steps])  # never worse than coarse
    else:
        factors = np.asarray(candidates, np.float64)
        if factors.ndim != 1 or factors.size == 0 or not np.all((factors > 0) & np.isfinite(factors)):
            raise ValueError("candidates must be a non-empty 1-d array of positive factors")
    best = best_of(factors)
    scale = np.where(amax > 0, (base * best).astype(np.float32).astype(np.float64), 1.0)
    return unwrap(scale.reshape(-1)) if axis is not None else float(scale.reshape(()))
