"""Lowerings of the ONNX sampling and placing ops: GridSample, Col2Im, MaxUnpool, TensorScatter."""
from __future__ import annotations

import numpy as np

from tcc.ir.dtypes import to_numpy
from tcc.ir.shape_rules import ShapeError, normalize_axis

from tcc.ir.ops_sample import GRID_SAMPLE_MODES, GRID_SAMPLE_PADDINGS

from .context import NodeContext

# GridSample-16 names the modes after the 2-D case.
_OLD_MODES = {"bilinear": "linear", "bicubic": "cubic"}


def lower_grid_sample(n: NodeContext) -> None:
    mode = n.attr("mode", "linear" if n.opset >= 20 else "bilinear")
    mode = _OLD_MODES.get(mode, mode)
    padding = n.attr("padding_mode", "zeros")
    if mode not in GRID_SAMPLE_MODES:
        raise n.error(f"mode={mode!r} is not one of {', '.join(GRID_SAMPLE_MODES)}")
    if padding not in GRID_SAMPLE_PADDINGS:
        raise n.error(f"padding_mode={padding!r} is not one of {', '.join(GRID_SAMPLE_PADDINGS)}")
    n.emit("grid_sample", [n.input(0), n.input(1)],
           {"mode": mode, "padding_mode": padding, "align_corners": n.attr("align_corners", 0)})


def lower_col2im(n: NodeContext) -> None:
    image = tuple(int(v) for v in n.const(1, "image_shape").reshape(-1))
    block = tuple(int(v) for v in n.const(2, "block_shape").reshape(-1))
    r = len(image)
    n.emit("col2im", [n.input(0)], {"image_shape": image, "block_shape": block,
                                     "strides": tuple(n.attr("strides") or (1,) * r),
                                     "pads": tuple(n.attr("pads") or (0,) * 2 * r),
                                     "dilations": tuple(n.attr("dilations") or (1,) * r)})


def lower_max_unpool(n: NodeContext) -> None:
    x = n.input_type(0).shape
    kernel = tuple(n.attr("kernel_shape"))
    r = len(kernel)
    strides = tuple(n.attr("strides") or (1,) * r)
    pads = tuple(n.attr("pads") or (0,) * 2 * r)
    # The spec's default output: the shape MaxPool was applied to, without its padding.  The indices
    # point into that shape also when output_shape is larger (ONNX's conformance case
    # maxunpool_export_with_output_shape says so; onnxruntime 1.2x reads them in output_shape).
    pooled_from = x[:2] + tuple((x[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[r + i] for i in range(r))
    shape = tuple(int(v) for v in n.const(2, "output_shape").reshape(-1)) if n.has_input(2) else pooled_from
    n.emit("max_unpool", [n.input(0), n.input(1)], {"shape": shape, "pooled_from": pooled_from})


def lower_tensor_scatter(n: NodeContext) -> None:
    mode = n.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise n.error(f"mode={mode!r} is not linear or circular")
    try:
        axis = normalize_axis(n.attr("axis", -2), n.input_type(0).rank)
    except ShapeError as exc:
        raise n.error(str(exc)) from None
    operands = [n.input(0), n.input(1)] + ([n.input(2)] if n.has_input(2) else [])
    n.emit("tensor_scatter", operands, {"axis": axis, "circular": int(mode == "circular")})


def lower_roi_align(n: NodeContext) -> None:
    mode = n.attr("mode", "avg")
    transform = n.attr("coordinate_transformation_mode", "half_pixel" if n.opset >= 16 else "output_half_pixel")
    if transform not in ("half_pixel", "output_half_pixel"):
        raise n.error(f"coordinate_transformation_mode={transform!r} is not half_pixel or output_half_pixel")
    n.emit("roi_align", [n.input(0), n.input(1), n.input(2)],
           {"mode": mode, "height": n.attr("output_height", 1), "width": n.attr("output_width", 1),
            "sampling_ratio": n.attr("sampling_ratio", 0), "spatial_scale": float(n.attr("spatial_scale", 1.0)),
            "half_pixel": int(transform == "half_pixel")})


def lower_deform_conv(n: NodeContext) -> None:
    w = n.input_type(1).shape
    if len(w) != 4:
        raise n.error(f"DeformConv of rank {len(w)} weights: tcc runs the 2-D form only")
    kernel = tuple(n.attr("kernel_shape") or w[2:])
    if kernel != w[2:]:
        raise n.error(f"kernel_shape {list(kernel)} differs from the weight's {list(w[2:])}")
    operands = [n.input(0), n.input(1), n.input(2)]
    if n.has_input(4) and not n.has_input(3):  # a mask without a bias: a zero bias keeps the operand order
        operands.append(n.new_const(np.zeros(w[0], to_numpy(n.input_type(0).dtype)), f"{n.loc}.bias"))
    operands += [n.input(i) for i in (3, 4) if n.has_input(i)]
    n.emit("deform_conv", operands, {"strides": tuple(n.attr("strides") or (1, 1)),
                                     "pads": tuple(n.attr("pads") or (0, 0, 0, 0)),
                                     "dilations": tuple(n.attr("dilations") or (1, 1)),
                                     "group": n.attr("group", 1), "offset_group": n.attr("offset_group", 1)})


LOWERINGS = {
    "GridSample": lower_grid_sample,
    "Col2Im": lower_col2im,
    "MaxUnpool": lower_max_unpool,
    "TensorScatter": lower_tensor_scatter,
    "RoiAlign": lower_roi_align,
    "DeformConv": lower_deform_conv,
}
