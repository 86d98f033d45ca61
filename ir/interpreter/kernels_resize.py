"""Resize: nearest and n-linear interpolation, one axis at a time, coordinates in float32 like onnxruntime."""
from __future__ import annotations

import numpy as np

from ..errors import InterpreterError

_F32 = np.float32


def source_coordinates(mode: str, out_len: int, in_len: int, scale: float | np.float32) -> np.ndarray:
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


def resize(attrs, x):
    mode = attrs["mode"]
    if mode not in ("nearest", "linear"):
        raise InterpreterError(f"resize mode {mode!r} is not nearest or linear")
    y = x
    for axis, (out_len, scale) in enumerate(zip(attrs["sizes"], attrs["scales"])):
        in_len = x.shape[axis]
        if out_len == in_len and scale == 1.0:
            continue  # onnxruntime maps such an axis one-to-one, whatever the coordinate mode says
        coords = source_coordinates(attrs["coordinate_transformation_mode"], out_len, in_len, scale)
        if mode == "nearest":
            y = np.take(y, nearest_indices(coords, attrs["nearest_mode"], in_len), axis=axis)
        else:
            y = _linear_axis(y, axis, coords)
    return y


KERNEL_TABLE = (
    ("resize", resize),
)
