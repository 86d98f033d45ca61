"""resize-as-matmul: an interpolating resize over the last two axes as two matrix products.

Linear and cubic interpolation (and their antialiased forms) are linear maps along each axis:
resizing one axis of length n to m multiplies it by an [m, n] interpolation matrix R.  R is made by
resizing the identity matrix with the interpreter's own resize kernel, so coordinates, edge
clamping and cubic weights are the one definition in ir/interpreter/kernels_resize.py.  Then

    y = R_h . x . R_w^T     for each image and channel of x [N, C, H, W]

becomes a ``linear`` by R_w over the rows of x, and along H a ``linear`` by R_h between two
transposes, which the int8 path runs on the systolic array (R's rows quantized per output row like any weight: for the
usual scales, 2x and 4x with half-pixel coordinates, every weight is k/8 or k/16, so the row
scales make them exact up to int8 rounding of 127-level grids) instead of falling back to the host.
The float result equals the resize up to float32 summation order.

Applies to a float ``resize``/``resize_antialias`` of mode linear or cubic on a tensor of rank >= 3
that changes only its last two axes, with any coordinate mode except tf_crop_and_resize (whose
extrapolated positions are not a linear map of the input).  Runs before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value

from .base import OpRewritePass

RESIZES = ("resize", "resize_antialias")


def interpolation_matrix(op: Op, axis: int) -> np.ndarray:
    """[out_len, in_len]: row i holds the weights output index i takes of every input index along
    ``axis`` -- the resize kernel applied to an identity matrix."""
    from tcc.ir.interpreter.kernels_resize import resize, resize_antialias

    in_len, out_len = op.x.type.shape[axis], op.result.type.shape[axis]
    attrs = dict(op.attrs)
    attrs.update(sizes=(out_len, in_len), scales=(float(op.scales[axis]), 1.0), roi=())
    kernel = resize_antialias if op.kind == "resize_antialias" else resize
    return np.ascontiguousarray(kernel(attrs, np.eye(in_len, dtype=np.float32)), np.float32)


def matmul_problem(op: Op) -> str | None:
    """Why ``op`` stays a resize, or None when it becomes matrix products."""
    if op.kind not in RESIZES or op.x.type.dtype != "f32":
        return "not a float resize"
    if op.mode not in ("linear", "cubic"):
        return f"mode {op.mode} is not an interpolation"
    if op.coordinate_transformation_mode == "tf_crop_and_resize":
        return "tf_crop_and_resize extrapolates outside the input"
    rank = op.x.type.rank
    changed = [a for a in range(rank) if op.x.type.shape[a] != op.result.type.shape[a] or op.scales[a] != 1.0]
    if rank < 3 or not changed or any(a < rank - 2 for a in changed):
        return "it resizes an axis other than the last two"
    return None


def _rewrite(op: Op) -> Value:
    """The products on rank-2/3 row-major views: [rows, W] along W, then [images, W', H] along H
    (the reshapes and transposes between them are data moves on the overlay, where rank-4
    activations of convolutions are stored NHWC)."""
    b = Builder.before(op)
    name = op.result.name
    shape, out = op.x.type.shape, op.result.type.shape
    lead = int(np.prod(shape[:-2], dtype=np.int64))
    h, w, h2, w2 = shape[-2], shape[-1], out[-2], out[-1]
    y = op.x
    if w != w2 or op.scales[-1] != 1.0:
        rows = b.value("reshape", [y], {"shape": (lead * h, w)}, name=f"{name}.rows")
        weights = b.const(interpolation_matrix(op, op.x.type.rank - 1), f"{name}.rw")
        y = b.value("linear", [rows, weights], name=f"{name}.w")
    if h != h2 or op.scales[-2] != 1.0:
        images = b.value("reshape", [y], {"shape": (lead, h, w2)}, name=f"{name}.images")
        columns = b.value("transpose", [images], {"perm": (0, 2, 1)}, name=f"{name}.columns")
        weights = b.const(interpolation_matrix(op, op.x.type.rank - 2), f"{name}.rh")
        y = b.value("linear", [columns, weights], name=f"{name}.h")
        y = b.value("transpose", [y], {"perm": (0, 2, 1)}, name=f"{name}.back")
    return b.value("reshape", [y], {"shape": tuple(out)}, name=name)


def rewrite(op: Op) -> Value | None:
    return None if matmul_problem(op) is not None else _rewrite(op)


@dataclass
class ResizeAsMatmul(OpRewritePass):
    name = "resize-as-matmul"
    summary = "linear/cubic resizes of the last two axes as interpolation-matrix products (before quantization)"
    rewrite = staticmethod(rewrite)
