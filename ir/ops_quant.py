"""Quantized op kinds: the integer-only ops the int8 pipeline lowers to, and the conversions.

Quantization parameters live in the value types (``i8[...]{scale = s, zero_point = z}``); these
ops read them from their operands, so nothing is stored twice.  Integer semantics, exactly:

- ``quantize``:   q = clamp(round_half_even(x / scale) + zero_point) from f32/bf16 (model inputs,
  bf16 -> int8 converts); ``dequantize``: (q - zero_point) * scale to f32 or bf16.
- ``qconv`` / ``qlinear`` / ``qmatmul``: int32 sums of (x - zp_x) * (w - zp_w) plus an int32 bias;
  padding holds zp_x so it contributes real zero.
- ``quantize_rows``: bf16 to int8 row by row (last axis): row i on the grid scale * 2**-r[i]
  (numerics.row_scale); results: the int8 rows (type: the base scale and zero point) and r (i8,
  one per row).  Its int8 rows only feed matrix products whose requantize takes r.
- ``requantize``: v = ((x - zp_x) << pre_shift) * multiplier[c], rounded right by shift[c]
  (plus row_shift[row] when given: the row shifts of a ``quantize_rows`` operand, rows being all
  axes but the last), + zero_point, clamped to [qmin, qmax] — the one rescale used everywhere
  (after accumulators, for adds of differently scaled tensors, for concat).
- ``qlut``: y = table[x + 128] for int8 x and an i8[256] constant table: any element-wise
  function of one int8 tensor (SiLU, HardSwish, GELU, Mish, sigmoid...), tabulated by the quantizer.
- ``qavg_pool`` / ``qglobal_avg_pool``: round_half_even(sum(x - zp) * multiplier / (count << shift))
  + zero_point, saturated to int8: one exact rounding onto the output's own scale
  (multiplier * 2**-shift = s_in / s_out).
"""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .ops_nn import _WINDOW, _conv, _linear, _matmul, _pool, _global_avg_pool
from .shape_rules import ShapeError
from .traits import Trait
from .types import TensorType

_INT_INPUTS = ("i8", "u8")


def _require(types, dtypes, what):
    for t in types:
        if t.dtype not in dtypes:
            raise ShapeError(f"{what} needs {' or '.join(dtypes)} operands, got {t.dtype}")


@define_op("quantize", "x", (AttrSpec("dtype", "str", "i8"),), traits=(Trait.ELEMENTWISE,))
def _quantize(types, attrs):
    """Float (f32/bf16) to integer; scale and zero point are the result type's."""
    _require(types[:1], ("f32", "bf16"), "quantize")
    if attrs["dtype"] not in _INT_INPUTS:
        raise ShapeError(f"quantize to {attrs['dtype']!r}: only i8 or u8")
    return [TensorType(types[0].shape, attrs["dtype"])]


@define_op("dequantize", "x", (AttrSpec("dtype", "str", "f32"),), traits=(Trait.ELEMENTWISE,))
def _dequantize(types, attrs):
    """Integer to float (f32 or bf16) using the operand type's scale and zero point."""
    _require(types[:1], _INT_INPUTS + ("i32",), "dequantize")
    if attrs["dtype"] not in ("f32", "bf16"):
        raise ShapeError(f"dequantize to {attrs['dtype']!r}: only f32 or bf16")
    if types[0].quant is None:
        raise ShapeError("dequantize operand has no quantization parameters")
    return [TensorType(types[0].shape, attrs["dtype"])]


@define_op("quantize_rows", "x", (AttrSpec("dtype", "str", "i8"),), num_results=2)
def _quantize_rows(types, attrs):
    """bf16 to int8 with a power-of-two scale per row (see the module docstring); results: the
    int8 rows and their shifts (i8, one per row)."""
    _require(types[:1], ("bf16",), "quantize_rows")
    if attrs["dtype"] != "i8":
        raise ShapeError(f"quantize_rows to {attrs['dtype']!r}: only i8")
    x = types[0]
    if x.rank < 2:
        raise ShapeError(f"quantize_rows needs rows: rank >= 2, got {list(x.shape)}")
    return [TensorType(x.shape, "i8"), TensorType(x.shape[:-1], "i8")]


def _accumulate(rule):
    def typed(types, attrs):
        _require(types[:1], _INT_INPUTS, "integer matrix op")
        _require(types[1:2], _INT_INPUTS + ("i16",), "integer matrix op weight")
        if len(types) > 2:
            _require(types[2:], ("i32",), "bias")
        out = rule([t.with_dtype("f32") for t in types[:2]] + [t.with_dtype("f32") for t in types[2:]], attrs)
        return [out[0].with_dtype("i32")]

    return typed


define_op("qconv", "x w b?", _WINDOW + (AttrSpec("group", "int", 1),),
          "int8 convolution into int32 accumulators (+ int32 bias).",
          traits=(Trait.WINDOW, Trait.WEIGHTED))(_accumulate(_conv))
define_op("qlinear", "x w b?", (), "int8 x @ w^T into int32 accumulators (+ int32 bias).",
          traits=(Trait.WEIGHTED,))(_accumulate(_linear))
define_op("qmatmul", "a b", (), "int8 matmul of two activations into int32 accumulators.")(_accumulate(_matmul))


@define_op("requantize", "x row_shift?", (AttrSpec("multiplier", "ints"), AttrSpec("shift", "ints"),
                               AttrSpec("axis", "int", 1), AttrSpec("pre_shift", "int", 0),
                               AttrSpec("zero_point", "int", 0), AttrSpec("qmin", "int", -128),
                               AttrSpec("qmax", "int", 127), AttrSpec("dtype", "str", "i8"),
                               AttrSpec("rounding", "str", "half_even")), traits=(Trait.ELEMENTWISE,))
def _requantize(types, attrs):
    """Dyadic rescale with saturation; one (multiplier, shift) per tensor or per channel along axis."""
    x = types[0]
    _require(types[:1], _INT_INPUTS + ("i32",), "requantize")
    m, s = attrs["multiplier"], attrs["shift"]
    if len(m) != len(s) or not m:
        raise ShapeError("requantize multiplier and shift must be non-empty and of equal length")
    if len(m) > 1 and (x.rank <= attrs["axis"] or x.shape[attrs["axis"]] != len(m)):
        raise ShapeError(f"{len(m)} per-channel multipliers do not match axis {attrs['axis']} of {list(x.shape)}")
    if attrs["dtype"] not in _INT_INPUTS + ("i32",):
        raise ShapeError(f"requantize to {attrs['dtype']!r}: only i8, u8 or i32")
    if attrs["rounding"] not in ("half_even", "half_up"):
        raise ShapeError(f"requantize rounding {attrs['rounding']!r} is not half_even or half_up")
    if attrs["qmin"] > attrs["qmax"]:
        raise ShapeError("requantize qmin > qmax")
    if len(types) > 1 and (types[1].dtype != "i8" or types[1].shape != x.shape[:-1]):
        raise ShapeError(f"requantize row shifts must be i8{list(x.shape[:-1])} (one per row of x), "
                         f"got {types[1].dtype}{list(types[1].shape)}")
    return [TensorType(x.shape, attrs["dtype"])]


_RESCALE = (AttrSpec("multiplier", "int", 1 << 30), AttrSpec("shift", "int", 30), AttrSpec("zero_point", "int", 0))


@define_op("qavg_pool", "x", (AttrSpec("kernel", "ints"),) + _WINDOW
           + (AttrSpec("ceil_mode", "int", 0), AttrSpec("count_include_pad", "int", 0)) + _RESCALE,
           traits=(Trait.POOL, Trait.WINDOW))
def _qavg_pool(types, attrs):
    """Integer average pooling onto the output scale (see the module docstring)."""
    _require(types, _INT_INPUTS, "qavg_pool")
    return [_pool([types[0].with_dtype("f32")], attrs)[0].with_dtype(types[0].dtype)]


@define_op("qglobal_avg_pool", "x", _RESCALE, traits=(Trait.POOL, Trait.GLOBAL))
def _qglobal_avg_pool(types, attrs):
    """Integer global average pooling onto the output scale, rounding half to even."""
    _require(types, _INT_INPUTS, "qglobal_avg_pool")
    return [_global_avg_pool([types[0].with_dtype("f32")], attrs)[0].with_dtype(types[0].dtype)]


@define_op("qlut", "x table")
def _qlut(types, attrs):
    """int8 table lookup: y[i] = table[x[i] + 128], table i8[256] (see the module docstring)."""
    _require(types[:1], ("i8",), "qlut")
    if types[1].dtype != "i8" or types[1].shape != (256,):
        raise ShapeError(f"qlut table must be i8[256], got {types[1].dtype}{list(types[1].shape)}")
    return [TensorType(types[0].shape, "i8")]


# -- ONNX's QuantizeLinear / DequantizeLinear as float-model ops ---------------------------------
# A lone QuantizeLinear or DequantizeLinear (one that is not half of a QDQ pair the importer folds
# into pinned parameters) computes ONNX's formula on its operands: per tensor, per axis (1-D scale)
# or blocked (scale of x's rank, ``block_size`` elements of ``axis`` per scale), to any integer,
# float8 or float4 type.
_QDQ_ATTRS = (AttrSpec("axis", "int", 1), AttrSpec("block_size", "int", 0))
_QUANTIZED = ("i8", "u8", "i16", "u16", "i32", "i4", "u4", "i2", "u2",
              "f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz", "f4e2m1")


def _check_scale_shape(x: TensorType, scale: TensorType, attrs) -> None:
    if scale.rank == 0 or (scale.rank == 1 and scale.shape[0] == 1 and not attrs["block_size"]):
        return
    axis = attrs["axis"] + x.rank if attrs["axis"] < 0 else attrs["axis"]
    if not 0 <= axis < x.rank:
        raise ShapeError(f"axis {attrs['axis']} is out of range for rank {x.rank}")
    if attrs["block_size"]:
        blocks = -(-x.shape[axis] // attrs["block_size"])
        want = x.shape[:axis] + (blocks,) + x.shape[axis + 1:]
        if scale.shape != want:
            raise ShapeError(f"blocked scale shape {list(scale.shape)}, expected {list(want)}")
    elif scale.shape != (x.shape[axis],):
        raise ShapeError(f"per-axis scale shape {list(scale.shape)} does not match axis {axis} of {list(x.shape)}")


def _check_zero_point(types, dtype: str) -> None:
    if len(types) < 3:
        return
    zp, scale = types[2], types[1]
    if zp.dtype != dtype:
        raise ShapeError(f"zero point of element type {zp.dtype}, expected {dtype}")
    if zp.shape != scale.shape and not (zp.size == 1 and scale.size == 1):
        raise ShapeError(f"zero point shape {list(zp.shape)} differs from the scale's {list(scale.shape)}")


@define_op("quantize_linear", "x scale zero_point?", _QDQ_ATTRS + (AttrSpec("dtype", "str", "u8"),
                                                                   AttrSpec("saturate", "int", 1)))
def _quantize_linear(types, attrs):
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point) in ``dtype``; to
    float8/float4 a cast of x / scale (saturating unless ``saturate`` = 0)."""
    if attrs["dtype"] not in _QUANTIZED:
        raise ShapeError(f"quantize_linear to {attrs['dtype']!r}: not a quantized type")
    _check_scale_shape(types[0], types[1], attrs)
    _check_zero_point(types, attrs["dtype"])
    return [TensorType(types[0].shape, attrs["dtype"])]


@define_op("dequantize_linear", "x scale zero_point?", _QDQ_ATTRS + (AttrSpec("dtype", "str", "f32"),))
def _dequantize_linear(types, attrs):
    """ONNX DequantizeLinear: (x - zero_point) * scale, as ``dtype`` (the scale's float type)."""
    if types[0].dtype not in _QUANTIZED:
        raise ShapeError(f"dequantize_linear of {types[0].dtype}: not a quantized type")
    _check_scale_shape(types[0], types[1], attrs)
    _check_zero_point(types, types[0].dtype)
    return [TensorType(types[0].shape, attrs["dtype"])]
