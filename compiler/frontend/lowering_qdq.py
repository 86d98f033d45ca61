"""QuantizeLinear / DequantizeLinear: pre-quantized (QDQ) models import as float models whose
tensors carry the model's quantization parameters.

A QDQ model (onnxruntime's ``quantize_static`` with ``QuantFormat.QDQ``) is a float model in which
every weight is ``DequantizeLinear(integer initializer, scale, zero_point[, axis])`` and every
quantized activation ``x`` goes through ``QuantizeLinear(x, s, z) -> DequantizeLinear(s, z)``.

- Weights: a DequantizeLinear of a constant is folded here (never by onnx.reference) into a float
  constant whose type carries the parameters, per axis for per-channel weights
  (``f32[64,3,7,7]{axis = 0, scale = [...], zero_point = [...]}``); int32 biases likewise.  These
  pins describe the model; the quantizer re-derives every conv/linear weight from its float value
  (per channel, symmetric, max-abs).  For symmetric int8 weights (what onnxruntime writes) that
  gives back exactly the model's integers -- q * s re-quantized by s is q -- and it stays true
  after folds that scale whole output channels (batch norm), which build new unpinned constants,
  so a stale weight pin never survives a fold.  Only activation pins steer the quantizer.
- Activations: a ``quantize -> dequantize`` pair is dropped and ``QuantParams((s,), (z,))`` pinned
  on the float value ``x``; the IR stays a float model (``tcc run`` computes the float model) and
  the quantize pass uses the pinned parameters instead of calibration.  uint8 parameters become
  int8 ones by ``z - 128``: the same grid, ``q_i8 = q_u8 - 128``.
- onnxruntime drops a Relu (or Clip) in front of a QuantizeLinear whose range starts at 0 and lets
  the quantization clamp do it.  So that the float IR still computes the model, dropping such a
  pair inserts a ``relu`` unless ``x`` is already known non-negative or is a model input.
- Data movement (reshape, transpose, slice, max pooling...) passes its operand's parameters on to
  an unpinned result, as onnxruntime and tcc's quantizer both do, so a Flatten that onnxruntime
  left without a pair in front of a Softmax does not block quantization without calibration.
- A value whose only user is a relu or clip with parameters takes them (onnxruntime leaves the Sum
  in front of a Relu unquantized): the quantizer fuses the activation into the producer's
  requantization with exactly those parameters.
- A tensor quantized twice with different parameters (a requantization, e.g. in front of a Concat
  as ``tcc export-onnx`` writes it) keeps its first ones: that extra rounding step is dropped (a
  concat still rescales its inputs to its own parameters).
- A QuantizeLinear whose output reaches anything but a DequantizeLinear, or a DequantizeLinear of
  a computed tensor no QuantizeLinear produced, is an error: tcc's float models have float inputs
  and outputs, with integer tensors only inside such pairs.
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from tcc.ir import Builder, Module, QuantParams, TensorType, Trait, Value, is_constant, kinds_with, numerics
from tcc.ir.dtypes import from_numpy
from tcc.ir.shape_rules import ShapeError, normalize_axis
from tcc.passes.quantize.lowering import LAYOUT_KINDS  # the quantizer runs these on their operand's grid

from .context import NodeContext
from .errors import FrontendError

# Lowered even when every input is constant: folding by onnx.reference would lose the parameters.
LOWER_EVEN_IF_CONSTANT = frozenset({"DequantizeLinear"})

_ACTIVATION_DTYPES = {np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8"}
# Ops whose result is non-negative whatever their operands, and ops that keep their data operands' sign.
_NON_NEGATIVE = frozenset({"relu", "sigmoid", "softmax", "exp", "abs", "sqrt", "hard_sigmoid"})
_SIGN_KEEPING = kinds_with(Trait.MOVES) | kinds_with(Trait.POOL) | {"resize", "reduce_max", "reduce_mean"}


def to_int8_params(scale, zero_point, dtype: np.dtype, axis: int | None = None) -> QuantParams:
    """Parameters as tcc pins them: uint8 zero points shifted by -128 onto the int8 grid."""
    shift = 128 if np.dtype(dtype) == np.uint8 else 0
    return QuantParams(tuple(float(s) for s in np.asarray(scale, np.float32).reshape(-1)),
                       tuple(int(z) - shift for z in np.asarray(zero_point).reshape(-1)), axis)


def _parameters(n: NodeContext, dtype: np.dtype | None) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """(scale, zero point, integer dtype); ``dtype`` is the integer side's type when known (DQ)."""
    scale = n.const(1, "scale")
    if scale.dtype != np.float32:
        raise n.error(f"scale has element type {scale.dtype}; tcc imports float32 scales only")
    if scale.size == 0 or not np.all(np.isfinite(scale) & (scale > 0)):
        raise n.error("scale must be finite and positive")
    if n.has_input(2):
        zero_point = n.const(2, "zero point")
        dtype = zero_point.dtype
    else:
        if dtype is None:  # QuantizeLinear: output_dtype (opset 21), else uint8
            elem = n.attr("output_dtype", 0)
            dtype = helper.tensor_dtype_to_np_dtype(elem) if elem else np.dtype(np.uint8)
        zero_point = np.zeros(scale.shape, dtype)
    if zero_point.size == 1 and scale.size > 1:
        zero_point = np.broadcast_to(zero_point.reshape(-1), scale.shape)
    if zero_point.size != scale.size:
        raise n.error(f"zero point has {zero_point.size} values for {scale.size} scales")
    return scale, zero_point, np.dtype(dtype)


def _axis(n: NodeContext, scale: np.ndarray, shape: tuple[int, ...]) -> int | None:
    """The quantized axis for a 1-D scale of several values, None for one scale."""
    if scale.size == 1:
        return None
    try:
        axis = normalize_axis(n.attr("axis", 1), len(shape))
    except ShapeError as exc:
        raise n.error(str(exc)) from None
    if scale.shape != (shape[axis],):
        raise n.error(f"{scale.size} scales do not match axis {axis} of shape {list(shape)}")
    return axis


def lower_quantize_linear(n: NodeContext) -> None:
    """Half of an activation's QDQ pair: a ``quantize`` op that ``fold_activation_pairs`` removes;
    any other QuantizeLinear: a ``quantize_linear`` op computing ONNX's formula."""
    if not _pair_half(n):
        _lower_standalone(n, "quantize_linear", _quantized_dtype(n), {"saturate": n.attr("saturate", 1)})
        return
    scale, zero_point, dtype = _parameters(n, None)
    y = n.emit("quantize", [n.input(0)], {"dtype": _ACTIVATION_DTYPES[dtype]})
    y.type = TensorType(y.type.shape, y.type.dtype, QuantParams((float(scale.reshape(-1)[0]),),
                                                                 (int(zero_point.reshape(-1)[0]),)))


def lower_dequantize_linear(n: NodeContext) -> None:
    """A weight's DequantizeLinear folds to a pinned float constant; the other half of an
    activation's QDQ pair becomes a ``dequantize`` op that ``fold_activation_pairs`` removes with
    its QuantizeLinear; any other DequantizeLinear is a ``dequantize_linear`` op."""
    if n.is_const(0) and _foldable_weight(n):
        _fold_weight(n)
        return
    x = n.input(0)
    if x.producer is None or x.producer.kind != "quantize" or x.type.quant is None:
        scale_type = n.input_type(1).dtype
        out = n.attr("output_dtype", 0)
        _lower_standalone(n, "dequantize_linear", from_numpy(helper.tensor_dtype_to_np_dtype(out)) if out
                          else scale_type, {})
        return
    scale, zero_point, _ = _parameters(n, None)
    params = QuantParams((float(scale.reshape(-1)[0]),), (int(zero_point.reshape(-1)[0]),))
    if x.type.quant != params:
        raise n.error(f"uses scale {params.scale[0]!r} and zero point {params.zero_point[0]}, but the "
                      f"QuantizeLinear producing {n.node.input[0]!r} uses scale {x.type.quant.scale[0]!r} "
                      f"and zero point {x.type.quant.zero_point[0]}; tcc imports pairs with equal parameters")
    n.emit("dequantize", [x])


def _pair_half(n: NodeContext) -> bool:
    """Whether a QuantizeLinear is the first half of QDQ pairs the importer folds: constant
    per-tensor float32 parameters to int8/uint8, read only by DequantizeLinear nodes with the same
    parameters (then the integer tensor never exists in the float model)."""
    if n.attr("block_size", 0) or not n.is_const(1) or (n.has_input(2) and not n.is_const(2)):
        return False
    if n.const(1, "scale").dtype != np.float32:
        return False
    scale, zero_point, dtype = _parameters(n, None)
    if dtype not in _ACTIVATION_DTYPES or scale.size != 1:
        return False
    name = n.node.output[0]
    graph = n.ctx.loaded.model.graph
    if any(o.name == name for o in graph.output):
        return False
    readers = [node for node in graph.node if name in node.input]
    return bool(readers) and all(_same_parameters(n, reader) for reader in readers)


def _same_parameters(n: NodeContext, reader) -> bool:
    """Whether ``reader`` is a per-tensor DequantizeLinear with the QuantizeLinear's constant parameters."""
    if reader.op_type != "DequantizeLinear" or len(reader.input) != len(n.node.input):
        return False
    if any(a.name == "block_size" and a.i for a in reader.attribute):
        return False
    consts = n.ctx.consts
    return all(a == b or (a in consts and b in consts and np.array_equal(consts[a], consts[b])
                          and consts[a].dtype == consts[b].dtype)
               for a, b in zip(reader.input[1:], n.node.input[1:]))


def _foldable_weight(n: NodeContext) -> bool:
    """Whether a constant's DequantizeLinear folds into a pinned float32 constant (8- to 32-bit
    integers, per tensor or per axis, float32 scales); others run as dequantize_linear."""
    q = np.asarray(n.ctx.consts[n.node.input[0]])
    if n.attr("block_size", 0) or q.dtype.kind not in "iu" or q.dtype.itemsize > 4:
        return False
    if not n.is_const(1) or (n.has_input(2) and not n.is_const(2)) or n.attr("output_dtype", 0):
        return False
    return n.const(1, "scale").dtype == np.float32


def _quantized_dtype(n: NodeContext) -> str:
    """The element type of a QuantizeLinear's result: its zero point's, else output_dtype's, else uint8."""
    if n.has_input(2):
        return n.input_type(2).dtype
    elem = n.attr("output_dtype", 0)
    return from_numpy(helper.tensor_dtype_to_np_dtype(elem)) if elem else "u8"


def _lower_standalone(n: NodeContext, kind: str, dtype: str, extra: dict) -> None:
    """ONNX's formula as an op of the float model, with scale and zero point as operands."""
    operands = [n.input(i) for i in range(3) if n.has_input(i)]
    n.emit(kind, operands, {"axis": n.attr("axis", 1), "block_size": n.attr("block_size", 0), "dtype": dtype,
                            **extra})


def _fold_weight(n: NodeContext) -> None:
    q = np.asarray(n.const(0, "quantized data"))
    if q.dtype.kind not in "iu" or q.dtype.itemsize > 4:
        raise n.error(f"dequantizes a constant of element type {q.dtype}; tcc imports 8-, 16- and "
                      "32-bit integer ones")
    scale, zero_point, dtype = _parameters(n, q.dtype)
    axis = _axis(n, scale, q.shape)
    shape = () if axis is None else (-1,)
    n.set_const(0, _dequantize(q, scale.reshape(shape), zero_point.reshape(shape), axis))
    n.ctx.const_quant[n.node.output[0]] = to_int8_params(scale, zero_point, dtype, axis)


def _dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None) -> np.ndarray:
    """ONNX DequantizeLinear of a constant: ``(q - zero_point) * scale`` as float32."""
    try:
        return np.asarray(numerics.dequantize_affine(q, scale, zero_point, axis=axis), np.float32)
    except ValueError:  # |q - zero_point| beyond 2**24 (a huge int32 bias): round the exact product once
        shape = [-1 if i == axis else 1 for i in range(q.ndim)] if axis is not None else []
        centred = q.astype(np.int64) - zero_point.astype(np.int64).reshape(shape)
        return (centred * scale.astype(np.float64).reshape(shape)).astype(np.float32)


LOWERINGS = {
    "QuantizeLinear": lower_quantize_linear,
    "DequantizeLinear": lower_dequantize_linear,
}


# -- after the import: drop the activation pairs ----------------------------------------------
def fold_activation_pairs(module: Module, label: str) -> None:
    """Remove every ``dequantize(quantize(x))`` built above, pinning its parameters on ``x``.

    Any ``quantize`` or ``dequantize`` left over came from a lone QuantizeLinear or DequantizeLinear.
    """
    targets: dict[int, Value] = {}  # id(x) -> the value that replaces x's dequantized copies
    for op in list(module.ops):
        quantize = op.x.producer if op.kind == "dequantize" else None
        if quantize is None or quantize.kind != "quantize":
            continue
        x = quantize.x
        if id(x) not in targets:
            targets[id(x)] = _pin(module, x, quantize, op)
        op.result.replace_all_uses_with(targets[id(x)])
        module.erase_op(op)
        if not quantize.result.uses and not module.is_output(quantize.result):
            module.erase_op(quantize)
    _inherit_parameters(module)
    for op in module.ops:
        if op.kind == "quantize":
            raise FrontendError(f"{label}: QuantizeLinear node {op.loc!r}: its integer output reaches "
                                "something other than a DequantizeLinear (or is a model output); tcc "
                                "imports QDQ models whose integer tensors live only between "
                                "QuantizeLinear and DequantizeLinear pairs")
        if op.kind == "dequantize":
            raise FrontendError(f"{label}: DequantizeLinear node {op.loc!r} has no QuantizeLinear in "
                                "front of it; tcc imports QDQ models with float inputs")


def _inherit_parameters(module: Module) -> None:
    """Pin what the quantizer gives some unpinned values anyway: a layout op's result its operand's
    parameters, the sole input of a pinned relu/clip the activation's."""
    for op in module.ops:
        if op.kind in ("relu", "clip") and op.result.type.quant is not None:
            x = op.x
            if (x.type.quant is None and x.producer is not None and not is_constant(x)
                    and x.users == [op] and not module.is_output(x)):
                x.type = TensorType(x.type.shape, x.type.dtype, op.result.type.quant)
        if op.kind not in LAYOUT_KINDS:
            continue
        moved, *_ = op.operands
        source = moved.type
        if source.quant is not None and source.quant.axis is None:
            for r in op.results:
                if r.type.quant is None and r.type.dtype == source.dtype:
                    r.type = TensorType(r.type.shape, r.type.dtype, source.quant)


def _pin(module: Module, x: Value, quantize, dequantize) -> Value:
    """Pin the pair's parameters on ``x`` (first pin wins); the value standing for the pair's output."""
    q = quantize.result.type.quant
    params = to_int8_params(q.scale, q.zero_point, np.dtype(np.uint8 if quantize.result.type.dtype == "u8"
                                                            else np.int8))
    if x.type.quant is None:
        x.type = TensorType(x.type.shape, x.type.dtype, params)
    if params.zero_point[0] != numerics.INT8_MIN or x.producer is None or _non_negative(x):
        return x
    builder = Builder.before(dequantize)
    relu = builder.value("relu", [x], name=f"{x.name}.relu", loc=quantize.loc)
    relu.type = TensorType(relu.type.shape, relu.type.dtype, x.type.quant)
    return relu


def _non_negative(value: Value) -> bool:
    """Whether the float model can only produce values >= 0 here (a conservative answer)."""
    op = value.producer
    if op is None:
        return False
    if op.kind == "const":
        array = op.value
        return bool(array.size == 0 or np.all(array >= 0))
    if op.kind in _NON_NEGATIVE:
        return True
    if op.kind == "clip":
        return op.min >= 0
    if op.kind == "pad" and op.mode == "constant" and op.value < 0:
        return False
    if op.kind in _SIGN_KEEPING:  # pad with a negative value returned above
        data = op.operands if op.kind == "concat" else op.operands[:1]
        return all(_non_negative(v) for v in data)
    return False
