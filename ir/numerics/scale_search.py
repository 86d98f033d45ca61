"""MSE scale search shared by the DyBit and uniform int-N quantizers.

Candidate scales are ``factor * max|x| / max_level`` (factor 1 maps max|x| to the largest
level); the chosen one minimises the mean squared quantize-dequantize error, per tensor or per
channel.  By default the factors are a coarse geometric grid over the quantizer's
``factor_range`` (41 points) refined by a linear grid (41 points) between the best coarse
point's neighbours; an explicit ``candidates`` array of factors is searched as given.
"""
import numpy as np

from ._arrays import as_float64, unwrap

_COARSE_POINTS = 41
_REFINE_POINTS = 41


def _best(v, fake_quantize, base, factors, reduce_axes):
    """Per-channel best factor among ``factors`` (shape: candidates x channel-broadcast shape)."""
    best_factor = best_err = None
    for factor in factors:
        scale = (base * factor).astype(np.float32).astype(np.float64)  # quantizers use float32
        err = np.mean((fake_quantize(v, scale) - v) ** 2, axis=reduce_axes, keepdims=True)
        if best_err is None:
            best_factor, best_err = factor * np.ones_like(base), err
        else:
            better = err < best_err
            best_factor = np.where(better, factor, best_factor)
            best_err = np.where(better, err, best_err)
    return best_factor


def search_scale_mse(x, fake_quantize, max_level: float, factor_range: tuple[float, float],
                     axis=None, candidates=None):
    """The scale minimising ``mean((fake_quantize(x, scale) - x)**2)``.

    ``fake_quantize(x, scale)`` returns dequantized values for a broadcastable scale.  Scales
    are rounded to float32 before evaluation (the quantizers divide in float32), so the returned
    scale is exactly one that was evaluated.  With ``axis`` the search runs per channel and
    returns a 1-d float64 array; otherwise one float.  Ties go to the earliest candidate.  An
    all-zero tensor or channel gets scale 1.0 (every scale is exact there).
    """
    v = as_float64(x, "x")
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
    if candidates is None:
        grid = np.geomspace(factor_range[0], factor_range[1], _COARSE_POINTS)
        coarse = _best(v, fake_quantize, base, grid, reduce_axes)
        ratio = grid[1] / grid[0]
        steps = np.linspace(0.0, 1.0, _REFINE_POINTS)
        lo, hi = coarse / ratio, coarse * ratio
        factors = np.stack([coarse] + [lo + t * (hi - lo) for t in steps])  # never worse than coarse
    else:
        factors = np.asarray(candidates, np.float64)
        if factors.ndim != 1 or factors.size == 0 or not np.all((factors > 0) & np.isfinite(factors)):
            raise ValueError("candidates must be a non-empty 1-d array of positive factors")
    best = _best(v, fake_quantize, base, factors, reduce_axes)
    scale = np.where(amax > 0, (base * best).astype(np.float32).astype(np.float64), 1.0)
    return unwrap(scale.reshape(-1)) if axis is not None else float(scale.reshape(()))
