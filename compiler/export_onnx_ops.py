"""Float ONNX nodes for tcc's op kinds (opset 17): one export rule per kind, for ``export_onnx``.

A rule takes the exporter, the IR op, the ONNX names of its operands (float or plain tensors) and
the names its results must get, and appends nodes.  Attribute-to-input conversions (shapes, axes,
pads, clip bounds) become small initializers.
"""
from __future__ import annotations

import math

import numpy as np

# tcc element-wise kinds that are one ONNX op of the same arity.
_SAME = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "max": "Max", "min": "Min",
    "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "erf": "Erf", "sqrt": "Sqrt", "exp": "Exp",
    "neg": "Neg", "abs": "Abs", "reciprocal": "Reciprocal", "hard_swish": "HardSwish", "matmul": "MatMul",
    "global_avg_pool": "GlobalAveragePool", "gather": "Gather",
}


def _same(onnx_op: str):
    def rule(ex, op, ins, outs):
        attrs = {"axis": op.axis} if onnx_op == "Gather" else {}
        ex.node(onnx_op, ins, outs, op, **attrs)

    return rule


def _ints(ex, values, hint: str) -> str:
    return ex.constant(np.asarray(values, np.int64), hint)


def _float(ex, value: float, hint: str) -> str:
    return ex.constant(np.asarray(value, np.float32), hint)


def _window(op) -> dict:
    return {"strides": list(op.strides), "pads": list(op.pads),
            "dilations": list(op.dilations)}


def conv(ex, op, ins, outs):
    kernel = list(op.w.type.shape[2:])
    ex.node("Conv", ins, outs, op, kernel_shape=kernel, group=op.group, **_window(op))


def conv_transpose(ex, op, ins, outs):
    kernel = list(op.w.type.shape[2:])
    ex.node("ConvTranspose", ins, outs, op, kernel_shape=kernel, group=op.group,
            output_padding=list(op.output_padding), **_window(op))


def linear(ex, op, ins, outs):
    """Rank-2 input: Gemm(x, w, b, transB=1); otherwise MatMul with the transposed weight (+ Add)."""
    if op.x.type.rank == 2:
        ex.node("Gemm", ins, outs, op, transB=1)
        return
    w_t = ex.fresh(f"{outs[0]}_weight_t")
    ex.node("Transpose", [ins[1]], [w_t], op, perm=[1, 0])
    if len(ins) == 2:
        ex.node("MatMul", [ins[0], w_t], outs, op)
        return
    product = ex.fresh(f"{outs[0]}_matmul")
    ex.node("MatMul", [ins[0], w_t], [product], op)
    ex.node("Add", [product, ins[2]], outs, op)


def batch_norm(ex, op, ins, outs):
    ex.node("BatchNormalization", ins, outs, op, epsilon=op.epsilon)


def layer_norm(ex, op, ins, outs):
    ex.node("LayerNormalization", ins, outs, op, axis=op.axis, epsilon=op.epsilon)


def lrn(ex, op, ins, outs):
    ex.node("LRN", ins, outs, op, size=op.size, alpha=op.alpha, beta=op.beta,
            bias=op.bias)


def max_pool(ex, op, ins, outs):
    ex.node("MaxPool", ins, outs, op, kernel_shape=list(op.kernel), ceil_mode=op.ceil_mode,
            **_window(op))


def avg_pool(ex, op, ins, outs):
    if any(d != 1 for d in op.dilations):
        raise ex.error(op, "dilated average pooling has no opset-17 AveragePool")
    ex.node("AveragePool", ins, outs, op, kernel_shape=list(op.kernel), strides=list(op.strides),
            pads=list(op.pads), ceil_mode=op.ceil_mode,
            count_include_pad=op.count_include_pad)


def reduce(onnx_op: str):
    def rule(ex, op, ins, outs):
        axes, keepdims = list(op.axes), op.keepdims
        if onnx_op == "ReduceSum":  # axes became an input of ReduceSum in opset 13
            ex.node(onnx_op, [ins[0], _ints(ex, axes, f"{outs[0]}_axes")], outs, op, keepdims=keepdims)
        else:
            ex.node(onnx_op, ins, outs, op, axes=axes, keepdims=keepdims)

    return rule


def leaky_relu(ex, op, ins, outs):
    ex.node("LeakyRelu", ins, outs, op, alpha=op.alpha)


def hard_sigmoid(ex, op, ins, outs):
    ex.node("HardSigmoid", ins, outs, op, alpha=op.alpha, beta=op.beta)


def clip(ex, op, ins, outs):
    low, high = op.min, op.max
    bounds = [_float(ex, low, f"{outs[0]}_min") if math.isfinite(low) else "",
              _float(ex, high, f"{outs[0]}_max") if math.isfinite(high) else ""]
    while bounds and bounds[-1] == "":
        bounds.pop()
    ex.node("Clip", [ins[0]] + bounds, outs, op)


def gelu(ex, op, ins, outs):
    """Opset 17 has no Gelu: 0.5 x (1 + erf(x / sqrt 2)), or 0.5 x (1 + tanh(k (x + c x^3)))."""
    x, out = ins[0], outs[0]

    def step(onnx_op, operands):
        name = ex.fresh(f"{out}_gelu")
        ex.node(onnx_op, operands, [name], op)
        return name

    if op.approximate == "tanh":
        cube = step("Mul", [step("Mul", [x, x]), x])
        inner = step("Add", [x, step("Mul", [cube, _float(ex, 0.044715, f"{out}_c")])])
        squashed = step("Tanh", [step("Mul", [inner, _float(ex, math.sqrt(2 / math.pi), f"{out}_k")])])
    else:
        squashed = step("Erf", [step("Mul", [x, _float(ex, 1 / math.sqrt(2), f"{out}_k")])])
    one_plus = step("Add", [squashed, _float(ex, 1.0, f"{out}_one")])
    ex.node("Mul", [step("Mul", [x, _float(ex, 0.5, f"{out}_half")]), one_plus], outs, op)


def softmax(ex, op, ins, outs):
    ex.node("Softmax", ins, outs, op, axis=op.axis)


def reshape(ex, op, ins, outs):
    ex.node("Reshape", [ins[0], _ints(ex, op.shape, f"{outs[0]}_shape")], outs, op)


def transpose(ex, op, ins, outs):
    ex.node("Transpose", ins, outs, op, perm=list(op.perm))


def concat(ex, op, ins, outs):
    ex.node("Concat", ins, outs, op, axis=op.axis)


def split(ex, op, ins, outs):
    ex.node("Split", [ins[0], _ints(ex, op.sizes, f"{outs[0]}_sizes")], outs, op, axis=op.axis)


def slice_(ex, op, ins, outs):
    parts = [_ints(ex, getattr(op, key), f"{outs[0]}_{key}") for key in ("starts", "ends", "axes", "steps")]
    ex.node("Slice", [ins[0]] + parts, outs, op)


def pad(ex, op, ins, outs):
    operands = [ins[0], _ints(ex, op.pads, f"{outs[0]}_pads")]
    if op.mode == "constant":
        operands.append(_float(ex, op.value, f"{outs[0]}_value"))
    ex.node("Pad", operands, outs, op, mode=op.mode)


def resize(ex, op, ins, outs):
    """Scales when they give the sizes (their coordinate map is the one tcc computes), else sizes."""
    shape, sizes, scales = op.x.type.shape, op.sizes, op.scales
    from_scales = tuple(int(np.floor(np.float32(d) * np.float32(s))) for d, s in zip(shape, scales))
    if from_scales == tuple(sizes):
        operands = [ins[0], "", ex.constant(np.asarray(scales, np.float32), f"{outs[0]}_scales")]
    else:
        operands = [ins[0], "", "", _ints(ex, sizes, f"{outs[0]}_sizes")]
    attrs = {"mode": op.mode, "coordinate_transformation_mode": op.coordinate_transformation_mode}
    if op.mode == "nearest":
        attrs["nearest_mode"] = op.nearest_mode
    ex.node("Resize", operands, outs, op, **attrs)


def expand(ex, op, ins, outs):
    ex.node("Expand", [ins[0], _ints(ex, op.shape, f"{outs[0]}_shape")], outs, op)


FLOAT_RULES = {
    **{kind: _same(onnx_op) for kind, onnx_op in _SAME.items()},
    "conv": conv, "conv_transpose": conv_transpose, "linear": linear, "batch_norm": batch_norm,
    "layer_norm": layer_norm, "lrn": lrn, "max_pool": max_pool, "avg_pool": avg_pool,
    "reduce_mean": reduce("ReduceMean"), "reduce_sum": reduce("ReduceSum"), "reduce_max": reduce("ReduceMax"),
    "leaky_relu": leaky_relu, "hard_sigmoid": hard_sigmoid, "clip": clip, "gelu": gelu, "softmax": softmax,
    "reshape": reshape, "transpose": transpose, "concat": concat, "split": split, "slice": slice_,
    "pad": pad, "resize": resize, "expand": expand,
}

# Integer kinds whose float counterpart computes their real value.
FLOAT_OF_QUANTIZED = {"qconv": "conv", "qlinear": "linear", "qmatmul": "matmul", "qavg_pool": "avg_pool",
                      "qglobal_avg_pool": "global_avg_pool"}
