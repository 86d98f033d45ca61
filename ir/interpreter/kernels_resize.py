"""Resize: nearest and n-linear interpolation, one axis at a time, coordinates in float32 like onnxruntime."""
from __future__ import annotations

import numpy as np

from ..errors import InterpreterError

_F32 = np.float32


def source_coordinates(mode: str, out_len: int, in_len: int, scale: float | np.float32,
                       roi=(0.0, 1.0)) -> np.ndarray:
    """Input coordinate of every output index along one axis (ONNX coordinate_transformation_mode).

    ``length_resized`` in ONNX's formulas is ``in_len * scale``, not the integer output length:
    the two differ when the scale does not divide evenly (0.6 x 4 = 2.4, output 2), and
    align_corners with the integer length gave wrong values there.
    """
    x = np.arange(out_len, dtype=_F32)
    scale = _F32(scale)
    length_resized = _F32(in_len) * scale
    if mode == "half_pixel":
        return (x + _F32(0.5)) / scale - _F32(0.5)
    if mode == "pytorch_half_pixel":
        return (x + _F32(0.5)) / scale - _F32(0.5) if length_resized > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * _F32(in_len - 1) / (length_resized - _F32(1)) if length_resized != 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = _F32(roi[0]), _F32(roi[1])
        if length_resized > 1:
            return start * _F32(in_len - 1) + x * (end - start) * _F32(in_len - 1) / (length_resized - _F32(1))
        return np.full_like(x, _F32(0.5) * (start + end) * _F32(in_len - 1))
    if mode == "tf_half_pixel_for_nn":
        return (x + _F32(0.5)) / scale
    if mode == "half_pixel_symmetric":
        # onnxruntime computes the offset in float32 but the rest of this one in float64.
        adjustment = _F32(out_len) / (scale * _F32(in_len))
        offset = _F32(in_len) / _F32(2) * (_F32(1) - adjustment)
        return (np.float64(offset) + (x.astype(np.float64) + 0.5) / np.float64(scale) - 0.5).astype(_F32)
    raise InterpreterError(f"resize coordinate_transformation_mode {mode!r} is not supported")


def nearest_indices(coords: np.ndarray, nearest_mode: str, in_len: int) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        picked = np.ceil(coords - _F32(0.5))
    elif nearest_mode == "round_prefer_ceil":
        picked = np.floor(coords + _F32(0.5))
    elif nearest_mode == "floor":
        picked = np.floor(coords)
    elif nearest_mode == "ceil":
        picked = np.ceil(coords)
    else:
        raise InterpreterError(f"resize nearest_mode {nearest_mode!r} is not supported")
    return np.clip(picked, 0, in_len - 1).astype(np.int64)


def _along(values: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """Reshape per-index values of one axis so they broadcast along that axis of a rank-``rank`` array."""
    return values.reshape((-1,) + (1,) * (rank - 1 - axis))


def _linear_axis(x: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    """Linear interpolation along one axis, coordinates clamped to the input (edge extension)."""
    in_len = x.shape[axis]
    coords = np.clip(coords, _F32(0), _F32(in_len - 1))
    low = np.minimum(coords.astype(np.int64), in_len - 1)
    high = np.minimum(low + 1, in_len - 1)
    w_high = coords - low.astype(_F32)
    w_low = _F32(1) - w_high
    w_low, w_high = (_along(w, axis, x.ndim).astype(x.dtype, copy=False) for w in (w_low, w_high))
    return np.take(x, low, axis=axis) * w_low + np.take(x, high, axis=axis) * w_high


def _cubic_axis(x: np.ndarray, axis: int, coords: np.ndarray, a: float, exclude_outside: bool) -> np.ndarray:
    """Cubic convolution (Keys, coefficient ``a``) over taps floor(c)-1 .. floor(c)+2, indices
    clamped to the edge; with exclude_outside the taps outside the input get weight 0 and the
    rest are renormalized."""
    in_len = x.shape[axis]
    base = np.floor(coords)
    t = (coords - base).astype(np.float64)
    a = float(a)
    d = [t + 1, t, 1 - t, 2 - t]
    weights = [((a * d[0] - 5 * a) * d[0] + 8 * a) * d[0] - 4 * a,
               ((a + 2) * d[1] - (a + 3)) * d[1] * d[1] + 1,
               ((a + 2) * d[2] - (a + 3)) * d[2] * d[2] + 1,
               ((a * d[3] - 5 * a) * d[3] + 8 * a) * d[3] - 4 * a]
    taps = [base.astype(np.int64) + k for k in (-1, 0, 1, 2)]
    if exclude_outside:
        weights = [np.where((tap >= 0) & (tap < in_len), w, 0.0) for tap, w in zip(taps, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
    terms = [np.take(x, np.clip(tap, 0, in_len - 1), axis=axis) * _along(w.astype(x.dtype), axis, x.ndim)
             for tap, w in zip(taps, weights)]
    return terms[0] + terms[1] + terms[2] + terms[3]


def _antialias_axis(x: np.ndarray, axis: int, coords: np.ndarray, scale: float, mode: str, a: float,
                    exclude_outside: bool) -> np.ndarray:
    """Shrinking with the filter (triangle for linear, Keys cubic) stretched by 1 / scale: every
    tap j within the stretched support of a source position c weighs filter(|j - c| * scale),
    taps outside the input read the edge (or, with exclude_outside, weigh 0); the weights are
    normalized to sum 1."""
    in_len = x.shape[axis]
    support = (1.0 if mode == "linear" else 2.0) / scale
    c = coords.astype(np.float64)
    low = np.ceil(c - support).astype(np.int64)
    count = int((np.floor(c + support).astype(np.int64) - low).max(initial=0)) + 1
    taps = low[:, None] + np.arange(count)[None, :]
    d = np.abs(taps - c[:, None]) * scale
    if mode == "linear":
        weights = np.maximum(1 - d, 0)
    else:
        weights = np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                           np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0))
    if exclude_outside:
        weights = np.where((taps >= 0) & (taps < in_len), weights, 0)
    weights /= weights.sum(axis=1, keepdims=True)
    out = np.zeros(x.shape[:axis] + (len(c),) + x.shape[axis + 1:], x.dtype)
    for k in range(count):
        out += np.take(x, np.clip(taps[:, k], 0, in_len - 1), axis=axis) * _along(
            weights[:, k].astype(x.dtype), axis, x.ndim)
    return out


def resize_antialias(attrs, x):
    """resize, with the axes that shrink filtered by _antialias_axis."""
    y = x
    for axis, (out_len, scale) in enumerate(zip(attrs["sizes"], attrs["scales"])):
        single = {**attrs, "sizes": tuple(out_len if i == axis else d for i, d in enumerate(y.shape)),
                  "scales": tuple(scale if i == axis else 1.0 for i in range(y.ndim))}
        if scale < 1:
            coords = source_coordinates(attrs["coordinate_transformation_mode"], out_len, y.shape[axis], scale)
            y = _antialias_axis(y, axis, coords, float(scale), attrs["mode"], float(attrs["cubic_coeff_a"]),
                                bool(attrs["exclude_outside"]))
        else:
            y = resize(single, y)
    return y


def resize(attrs, x):
    mode = attrs["mode"]
    if mode not in ("nearest", "linear", "cubic"):
        raise InterpreterError(f"resize mode {mode!r} is not nearest, linear or cubic")
    ctm = attrs["coordinate_transformation_mode"]
    roi = attrs.get("roi") or ()
    y = x
    outside = []
    for axis, (out_len, scale) in enumerate(zip(attrs["sizes"], attrs["scales"])):
        in_len = x.shape[axis]
        if out_len == in_len and scale == 1.0 and ctm != "tf_crop_and_resize":
            continue  # onnxruntime maps such an axis one-to-one, whatever the coordinate mode says
        axis_roi = (roi[axis], roi[axis + x.ndim]) if roi else (0.0, 1.0)
        coords = source_coordinates(ctm, out_len, in_len, scale, axis_roi)
        if ctm == "tf_crop_and_resize":
            outside.append((axis, (coords < 0) | (coords > in_len - 1)))
        if mode == "nearest":
            y = np.take(y, nearest_indices(coords, attrs["nearest_mode"], in_len), axis=axis)
        elif mode == "linear":
            y = _linear_axis(y, axis, coords)
        else:
            y = _cubic_axis(y, axis, coords, attrs["cubic_coeff_a"], bool(attrs.get("exclude_outside", 0)))
    for axis, mask in outside:  # tf_crop_and_resize: positions mapped outside the input
        y = np.where(_along(mask, axis, y.ndim), y.dtype.type(attrs.get("extrapolation_value", 0.0)), y)
    return y


KERNEL_TABLE = (
    ("resize", resize),
    ("resize_antialias", resize_antialias),
)
