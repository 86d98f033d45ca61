"""Integer matrix ops of ONNX on the float model: MatMulInteger, ConvInteger, QLinearMatMul and
QLinearConv.

The integers are centred (``q - zero_point``) and multiplied in float64, which is exact for any
realistic size (products of 8-bit integers summed far below 2**53), so the int32 results of
MatMulInteger/ConvInteger are the exact integer sums.  QLinear* rescale the sums by
``a_scale * b_scale / y_scale`` (in the scales' type) and round to the output type with
``quantize_linear`` (round half to even, saturate), as the spec's formula says.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Value

from .context import NodeContext
from .lowering_nn import _window


def _centred(n: NodeContext, data: int, zero_point: int, per_index_axis: int | None) -> Value:
    """Input ``data`` minus its zero point, in float64; a 1-D zero point applies along
    ``per_index_axis`` (rows of A, output channels of W)."""
    x = n.temp("cast", [n.input(data)], {"to": "f64"}, hint="f64")
    if not n.has_input(zero_point):
        return x
    zp = n.temp("cast", [n.input(zero_point)], {"to": "f64"}, hint="zp")
    zp = _along(n, zp, x.type.rank, per_index_axis)
    return n.temp("sub", [x, zp], hint="centred")


def _along(n: NodeContext, v: Value, rank: int, axis: int | None) -> Value:
    """A 1-D per-index parameter reshaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if v.type.rank != 1 or v.type.shape[0] == 1 or axis is None:
        return v if v.type.rank == 0 or v.type.shape != (1,) else n.temp("reshape", [v], {"shape": ()})
    shape = [1] * (rank - axis)
    shape[0] = v.type.shape[0]
    return n.temp("reshape", [v], {"shape": tuple(shape)}, hint="along")


def _matmul_sums(n: NodeContext, a: int, a_zp: int, b: int, b_zp: int) -> Value:
    rank = n.input_type(a).rank
    # A's 1-D zero point is per row (axis -2 of A), B's per column (its last axis).
    return n.temp("matmul", [_centred(n, a, a_zp, rank - 2 if rank > 1 else None), _centred(n, b, b_zp, None)],
                  hint="sums")


def _conv_sums(n: NodeContext, x: int, x_zp: int, w: int, w_zp: int) -> Value:
    kernel = n.attr("kernel_shape") or n.input_type(w).shape[2:]
    strides, pads, dilations = _window(n, kernel)
    # Zero padding of the centred input is padding with the zero point in the integer domain.
    return n.temp("conv", [_centred(n, x, x_zp, None), _centred(n, w, w_zp, 0)],
                  {"strides": strides, "pads": pads, "dilations": dilations, "group": n.attr("group", 1)},
                  hint="sums")


def lower_matmul_integer(n: NodeContext) -> None:
    n.emit("cast", [_matmul_sums(n, 0, 2, 1, 3)], {"to": "i32"})


def lower_conv_integer(n: NodeContext) -> None:
    n.emit("cast", [_conv_sums(n, 0, 2, 1, 3)], {"to": "i32"})


def _requantize(n: NodeContext, sums: Value, a_scale: int, b_scale: int, y_scale: int, y_zp: int,
                b_axis: int | None) -> None:
    """round(sums * a_scale * b_scale / y_scale) + y_zero_point, saturated to y's type."""
    rank = sums.type.rank
    product = n.temp("mul", [n.input(a_scale), _along(n, n.input(b_scale), rank, b_axis)], hint="scale")
    multiplier = n.temp("div", [product, _along(n, n.input(y_scale), rank, None)], hint="multiplier")
    multiplier = n.temp("cast", [multiplier], {"to": "f64"}, hint="multiplier64")
    real = n.temp("mul", [sums, multiplier], hint="real")
    one = n.new_const(np.float64(1.0), f"{n.loc}.unit")
    n.emit("quantize_linear", [real, one, _along(n, n.input(y_zp), 0, None)],
           {"axis": 1, "block_size": 0, "dtype": n.input_type(y_zp).dtype, "saturate": 1})


def lower_qlinear_matmul(n: NodeContext) -> None:
    """Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point."""
    _requantize(n, _matmul_sums(n, 0, 2, 3, 5), 1, 4, 6, 7, None)


def lower_qlinear_conv(n: NodeContext) -> None:
    """Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B?."""
    sums = _conv_sums(n, 0, 2, 3, 5)
    if n.has_input(8):
        bias = n.temp("cast", [n.input(8)], {"to": "f64"}, hint="bias")
        sums = n.temp("add", [sums, _along(n, bias, sums.type.rank, 1)], hint="biased")
    _requantize(n, sums, 1, 4, 6, 7, 1)


LOWERINGS = {
    "MatMulInteger": lower_matmul_integer,
    "ConvInteger": lower_conv_integer,
    "QLinearMatMul": lower_qlinear_matmul,
    "QLinearConv": lower_qlinear_conv,
}
