"""Lowerings of Resize (opset 10 to 19+) and Upsample to tcc's ``resize``.

The IR op carries both the output ``sizes`` and the ``scales`` its coordinate map uses.  Like
onnxruntime, scales are float32 numbers: given sizes yield scales ``float32(out) / float32(in)``,
given scales yield sizes ``floor(float32(in) * scale)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tcc.ir.shape_rules import normalize_axis

from .context import NodeContext

_MODES = ("nearest", "linear", "cubic")
# tf_half_pixel_for_nearest is left out: neither onnxruntime nor onnx.reference implements it.
_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                     "tf_crop_and_resize")


def _mode(n: NodeContext) -> str:
    mode = n.attr("mode", "nearest")
    if mode == "bilinear" and n.node.op_type == "Upsample":
        return "linear"
    if mode not in _MODES:
        raise n.error(f"mode={mode!r} is not supported; tcc resizes with mode nearest, linear or cubic")
    return mode


def _sizes_from_scales(shape, scales) -> tuple[int, ...]:
    return tuple(int(np.floor(np.float32(d) * np.float32(s))) for d, s in zip(shape, scales))


def _scales_from_sizes(shape, sizes) -> tuple[float, ...]:
    return tuple(float(np.float32(o) / np.float32(d)) if d else 1.0 for d, o in zip(shape, sizes))


def _emit(n: NodeContext, mode: str, coordinates: str, nearest: str, scales, sizes, extra: dict | None = None,
          kind: str = "resize") -> None:
    if any(s <= 0 for s in scales):
        raise n.error(f"scales {list(scales)} must be positive")
    n.emit(kind, [n.input(0)], {"mode": mode, "coordinate_transformation_mode": coordinates,
                                    "nearest_mode": nearest, "scales": tuple(float(s) for s in scales),
                                    "sizes": tuple(sizes), **(extra or {})})


def _legacy_nearest(n: NodeContext, scales) -> str:
    """Resize-10 and Upsample round like onnxruntime: down when enlarging, up when shrinking."""
    shrinking = {s < 1 for s in scales if s != 1}
    if len(shrinking) > 1:
        raise n.error(f"nearest scales {list(scales)} both enlarge and shrink; tcc does not support that "
                      "before opset 11")
    return "ceil" if shrinking == {True} else "floor"


def lower_legacy(n: NodeContext) -> None:
    """Resize-10 and Upsample: asymmetric coordinates, scales only."""
    shape = n.input_type(0).shape
    mode = _mode(n)
    if n.opset < 9 and n.node.op_type == "Upsample":
        scales = tuple(float(s) for s in n.attr("scales"))
    else:
        scales = tuple(float(s) for s in n.const(1, "scales").reshape(-1))
    if len(scales) != len(shape):
        raise n.error(f"scales {list(scales)} do not have one entry per dim of {list(shape)}")
    nearest = _legacy_nearest(n, scales) if mode == "nearest" else "floor"
    _emit(n, mode, "asymmetric", nearest, scales, _sizes_from_scales(shape, scales))


def lower_resize(n: NodeContext) -> None:
    if n.opset < 11:
        lower_legacy(n)
        return
    shape = n.input_type(0).shape
    rank = len(shape)
    mode = _mode(n)
    coordinates = n.attr("coordinate_transformation_mode", "half_pixel")
    if coordinates not in _COORDINATE_MODES:
        raise n.error(f"coordinate_transformation_mode={coordinates!r} is not supported")
    axes = [normalize_axis(a, rank) for a in (n.attr("axes") or range(rank))]
    scales_given = n.const(2, "scales").reshape(-1) if n.has_input(2) else np.zeros(0)
    sizes_given = n.const_ints(3, "sizes") if n.has_input(3) else ()
    if len(scales_given) and len(sizes_given):
        raise n.error("both scales and sizes are given")
    sizes: Sequence[int]
    if len(sizes_given):
        sizes, scales = _target_sizes(n, shape, axes, sizes_given)
    elif len(scales_given):
        if len(scales_given) != len(axes):
            raise n.error(f"scales {scales_given.tolist()} do not have one entry per axis")
        scales = [1.0] * rank
        for axis, s in zip(axes, scales_given):
            scales[axis] = float(s)
        sizes = _sizes_from_scales(shape, scales)
    else:
        raise n.error("neither scales nor sizes is given")
    antialias = bool(n.attr("antialias", 0)) and mode != "nearest" and any(s < 1 for s in scales)
    if antialias and coordinates == "tf_crop_and_resize":
        raise n.error("antialias=1 with tf_crop_and_resize is not supported")
    _emit(n, mode, coordinates, n.attr("nearest_mode", "round_prefer_floor"), scales, sizes,
          _extra_attrs(n, mode, coordinates, axes, rank), "resize_antialias" if antialias else "resize")


def _extra_attrs(n: NodeContext, mode: str, coordinates: str, axes, rank: int) -> dict:
    """Cubic's coefficient and exclude_outside; tf_crop_and_resize's roi (per axis, starts then
    ends; unlisted axes take the whole input) and extrapolation value."""
    extra: dict[str, object] = {}
    if mode == "cubic":
        extra["cubic_coeff_a"] = float(n.attr("cubic_coeff_a", -0.75))
        extra["exclude_outside"] = int(n.attr("exclude_outside", 0))
    if coordinates == "tf_crop_and_resize":
        given = n.const(1, "roi").reshape(-1) if n.has_input(1) else np.zeros(0)
        if len(given) != 2 * len(axes):
            raise n.error(f"roi {given.tolist()} does not have a start and an end per axis")
        roi = [0.0] * rank + [1.0] * rank
        for i, axis in enumerate(axes):
            roi[axis], roi[axis + rank] = float(given[i]), float(given[i + len(axes)])
        extra["roi"] = tuple(roi)
        extra["extrapolation_value"] = float(n.attr("extrapolation_value", 0.0))
    return extra


def _target_sizes(n: NodeContext, shape, axes, given) -> tuple[list[int], list[float]]:
    """Output sizes and scales, honouring keep_aspect_ratio_policy (opset 18+): the kept
    aspect ratio is one scale for all listed axes."""
    if len(given) != len(axes):
        raise n.error(f"sizes {list(given)} do not have one entry per axis")
    sizes = list(shape)
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if policy == "stretch":
        for axis, s in zip(axes, given):
            sizes[axis] = int(s)
        return sizes, list(_scales_from_sizes(shape, sizes))
    if policy not in ("not_larger", "not_smaller"):
        raise n.error(f"keep_aspect_ratio_policy={policy!r} is not supported")
    ratios = [np.float32(s) / np.float32(shape[a]) for a, s in zip(axes, given)]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    scales = [1.0] * len(shape)
    for axis in axes:
        sizes[axis] = int(math.floor(float(scale * np.float32(shape[axis])) + 0.5))
        scales[axis] = float(scale)
    return sizes, scales


LOWERINGS = {
    "Resize": lower_resize,
    "Upsample": lower_legacy,
}
