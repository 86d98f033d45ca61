"""``export_onnx``: a quantized tcc IR module as an ONNX QDQ model (opset 17) that Netron shows and
onnxruntime runs.

The model follows onnxruntime's QDQ convention.  Every int8 tensor of the module is a
QuantizeLinear output (or an int8 initializer) with the IR's scale and zero point; every op runs
in float on DequantizeLinear'd operands, and an int8 result is quantized again:

    qconv(x, w, b) -> requantize      DQ(x), DQ(w, axis 0), DQ(b: int32) -> Conv -> [Relu|Clip] -> Q
    requantize to int32 (add inputs)  nothing: the same real value on a finer grid
    add of int32 -> requantize        Add -> Q
    max_pool, reshape, concat ...     DQ -> the float op -> Q with the result's parameters
    qlut(x, table)                    Gather(table, Cast(x, int32) + 128): exact, on the integers
    quantize / dequantize             QuantizeLinear / DequantizeLinear
    bf16 and f32 ops                  the float op

Not represented, so onnxruntime's numbers differ from tcc's integer reference by rounding: the
dyadic requantization multipliers (onnxruntime rescales in float), tcc rounding averages to the
input grid, and bf16 rounding (bf16 tensors are exported as float32; the model's doc_string says
so).  Input and output names are the module's.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tcc import __version__
from tcc.ir import Module, Op, Value, constant_value, numerics
from tcc.ir.dtypes import INT_DTYPES, to_numpy
from tcc.ir.errors import InternalError, TccError
from tcc.ir.fileio import write_atomic
from tcc.ir.verifier import describe

from .export_onnx_ops import FLOAT_OF_QUANTIZED, FLOAT_RULES

OPSET = 17
IR_VERSION = 8  # what onnxruntime expects with opset 17
_ELEM = {"f32": TensorProto.FLOAT, "bf16": TensorProto.FLOAT, "f16": TensorProto.FLOAT16,
         "f64": TensorProto.DOUBLE, "i64": TensorProto.INT64, "i32": TensorProto.INT32,
         "i16": TensorProto.INT16, "i8": TensorProto.INT8, "u8": TensorProto.UINT8, "bool": TensorProto.BOOL}
_DQ_DTYPES = ("i8", "u8", "i32")  # integer tensors DequantizeLinear reads in opset 17
_Q_DTYPES = ("i8", "u8")


class ExportError(TccError):
    """A module export-onnx cannot write: not quantized, or an op with no ONNX form."""


def export_onnx(module: Module) -> onnx.ModelProto:
    """The quantized ``module`` as a checked ONNX QDQ model."""
    return _Exporter(module).run()


def write_onnx(module: Module, path) -> None:
    write_atomic(path, export_onnx(module).SerializeToString())


def quantized(value: Value) -> bool:
    """An integer tensor whose type says which real numbers it holds."""
    return value.type.quant is not None and value.type.dtype in INT_DTYPES


class _Exporter:
    """Builds the ONNX graph op by op; each IR value has a float view and, if int8, an integer one."""

    def __init__(self, module: Module):
        self.module = module
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.taken: set[str] = set()
        self.node_names: set[str] = set()
        self.reserved = {name for name, _ in module.outputs} | {v.name for v in module.inputs}
        self.output_name: dict[int, str] = {}
        for name, value in module.outputs:
            self.output_name.setdefault(id(value), name)
        self.floats: dict[int, str] = {}  # id(value) -> tensor holding its real value (or its plain data)
        self.ints: dict[int, str] = {}  # id(value) -> its integer tensor (quantized values)
        self.params: dict[int, tuple[str, str, int | None]] = {}

    # -- names and graph pieces ------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self.taken or name in self.reserved:
            i += 1
            name = f"{hint}_{i}"
        self.taken.add(name)
        return name

    def name_for(self, value: Value) -> str:
        """A module output's tensor takes the output's name; others their IR name (made unique)."""
        preferred = self.output_name.get(id(value))
        if preferred is not None and preferred not in self.taken:
            self.taken.add(preferred)
            return preferred
        return self.fresh(value.name)

    def node(self, op_type: str, inputs, outputs, op: Op | None = None, label: str = "", **attrs) -> None:
        base = label or (op.loc if op is not None and op.loc else op_type)
        name, i = base, 0
        while name in self.node_names:
            i += 1
            name = f"{base}_{i}"
        self.node_names.add(name)
        doc = f"tcc {op.kind} -> %{op.results[0].name}" if op is not None else None
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, doc_string=doc,
                                           **attrs))

    def constant(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def error(self, op: Op, message: str) -> ExportError:
        return ExportError(f"export-onnx: {describe(op)}: {message}")

    # -- quantization parameters and the two views of a value ------------------------------------
    def quant_params(self, value: Value) -> tuple[str, str, int | None]:
        """Initializers of a value's scale and zero point (one scalar pair, or 1-D per axis)."""
        if id(value) not in self.params:
            q = value.type.quant
            zp_dtype = to_numpy(value.type.dtype)
            scale: np.floating | np.ndarray
            if len(q.scale) == 1:
                scale, zero_point, axis = np.float32(q.scale[0]), zp_dtype.type(q.zero_point[0]), None
            else:
                scale = np.asarray(q.scale, np.float32)
                zero_point, axis = np.asarray(q.zero_point, zp_dtype), q.axis
            self.params[id(value)] = (self.constant(np.asarray(scale), f"{value.name}_scale"),
                                      self.constant(np.asarray(zero_point), f"{value.name}_zero_point"), axis)
        return self.params[id(value)]

    def dequantize(self, integer: str, value: Value, out: str) -> None:
        scale, zero_point, axis = self.quant_params(value)
        attrs: dict[str, Any] = {"axis": axis} if axis is not None else {}
        self.node("DequantizeLinear", [integer, scale, zero_point], [out], label=f"{out}_DequantizeLinear", **attrs)

    def quantize(self, real: str, value: Value, out: str) -> None:
        scale, zero_point, axis = self.quant_params(value)
        attrs: dict[str, Any] = {"axis": axis} if axis is not None else {}
        self.node("QuantizeLinear", [real, scale, zero_point], [out], label=f"{out}_QuantizeLinear", **attrs)
        self.ints[id(value)] = out

    def float_of(self, value: Value) -> str:
        """The tensor holding ``value``'s real number (DequantizeLinear of its integers, made once)."""
        if id(value) in self.floats:
            return self.floats[id(value)]
        if id(value) not in self.ints:
            raise InternalError(f"export-onnx: %{value.name} is used before it is defined")
        name = self.fresh(f"{value.name}_dequantized")
        self.dequantize(self.ints[id(value)], value, name)
        self.floats[id(value)] = name
        return name

    def int_of(self, value: Value) -> str:
        if id(value) not in self.ints:
            self.quantize(self.float_of(value), value, self.fresh(f"{value.name}_quantized"))
        return self.ints[id(value)]

    # -- the module --------------------------------------------------------------------------------
    def run(self) -> onnx.ModelProto:
        module = self.module
        if not any(quantized(v) for v in module.values()):
            raise ExportError(f"export-onnx: module @{module.name} is not quantized (it has no integer "
                              "tensors with scales); export-onnx writes quantized models. Quantize it "
                              "first: tcc compile MODEL --calib FILE.npz (or --quant int8 for a QDQ model)")
        inputs = []
        for v in module.inputs:
            self.taken.add(v.name)
            (self.ints if v.type.dtype in _Q_DTYPES and quantized(v) else self.floats)[id(v)] = v.name
            inputs.append(helper.make_tensor_value_info(v.name, _ELEM[v.type.dtype], list(v.type.shape)))
        for op in module.ops:
            self.export_op(op)
        outputs = [self.graph_output(name, v) for name, v in module.outputs]
        graph = helper.make_graph(self.nodes, module.name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tcc",
                                  producer_version=__version__, doc_string=self.doc_string())
        model.ir_version = IR_VERSION
        if model.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF:
            raise ExportError(f"export-onnx: module @{module.name} makes an ONNX model over the 2 GB "
                              "protobuf limit; tcc writes single-file models only")
        try:
            onnx.checker.check_model(model)
        except (onnx.checker.ValidationError, ValueError) as exc:
            raise InternalError(f"internal compiler error: export-onnx built an invalid ONNX model for "
                                f"@{module.name}: {exc}") from None
        return model

    def doc_string(self) -> str:
        text = (f"Exported by tcc {__version__} from the quantized IR module @{self.module.name}: int8 "
                "tensors are QuantizeLinear/DequantizeLinear pairs with tcc's scales and zero points. "
                "tcc's integer requantization (dyadic multipliers) is represented by float rescaling.")
        if any(v.type.dtype == "bf16" for v in self.module.values()):
            text += " bf16 ops are exported as float32 ops: bf16 rounding is not represented."
        return text

    def graph_output(self, name: str, value: Value) -> onnx.ValueInfoProto:
        integer = value.type.dtype in _Q_DTYPES and quantized(value)
        source = self.int_of(value) if integer else self.float_of(value)
        if source != name:
            self.taken.add(name)
            self.node("Identity", [source], [name], label=f"{name}_Identity")
        return helper.make_tensor_value_info(name, _ELEM[value.type.dtype], list(value.type.shape))

    def export_op(self, op: Op) -> None:
        special = _SPECIAL.get(op.kind)
        if special is not None:
            special(self, op)
            return
        rule = FLOAT_RULES.get(FLOAT_OF_QUANTIZED.get(op.kind, op.kind))
        if rule is None:
            raise self.error(op, f"op kind {op.kind!r} has no ONNX export rule")
        ins = [self.float_of(v) for v in op.operands]
        requantized = [quantized(r) and r.type.dtype in _Q_DTYPES for r in op.results]
        outs = [self.fresh(f"{r.name}_float") if q else self.name_for(r) for r, q in zip(op.results, requantized)]
        rule(self, op, ins, outs)
        for r, out, q in zip(op.results, outs, requantized):
            if q:
                self.quantize(out, r, self.name_for(r))
            else:
                self.floats[id(r)] = out


# -- ops with their own form ---------------------------------------------------------------------
def _const(ex: _Exporter, op: Op) -> None:
    value, array = op.result, op.value
    name = ex.name_for(value)
    if quantized(value) and value.type.dtype in _DQ_DTYPES:
        ex.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        ex.ints[id(value)] = name
        return
    if quantized(value):  # e.g. DyBit codes decoded to int16: their exact real values
        q = value.type.quant
        axis = q.axis if len(q.scale) > 1 else None
        scale = np.asarray(q.scale, np.float32) if axis is not None else np.float32(q.scale[0])
        zero_point = np.asarray(q.zero_point) if axis is not None else q.zero_point[0]
        array = np.asarray(numerics.dequantize_affine(array, scale, zero_point, axis=axis), np.float32)
    elif value.type.dtype == "bf16":
        array = array.astype(np.float32)
    ex.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
    ex.floats[id(value)] = name


def _quantize(ex: _Exporter, op: Op) -> None:
    ex.quantize(ex.float_of(op.x), op.result, ex.name_for(op.result))


def _dequantize(ex: _Exporter, op: Op) -> None:
    x, y = op.x, op.result
    if x.type.dtype not in _Q_DTYPES:  # an int32 accumulator: its float view is the value already
        ex.floats[id(y)] = ex.float_of(x)
        return
    name = ex.name_for(y)
    ex.dequantize(ex.int_of(x), x, name)
    ex.floats[id(y)] = name
    ex.floats.setdefault(id(x), name)


def _requantize(ex: _Exporter, op: Op) -> None:
    """Rescaling is free in float: only the clamp (a fused activation) and the final Q remain."""
    x, y = op.x, op.result
    real = ex.float_of(x)
    if y.type.dtype not in _Q_DTYPES:
        ex.floats[id(y)] = real
        return
    lowest, highest = numerics.integer_range(to_numpy(y.type.dtype))
    qmin, qmax = op.qmin, op.qmax
    if qmin > lowest or qmax < highest:
        scale, zero_point = y.type.quant.scale[0], y.type.quant.zero_point[0]
        low = (qmin - zero_point) * scale if qmin > lowest else None
        high = (qmax - zero_point) * scale if qmax < highest else None
        clamped = ex.fresh(f"{y.name}_clamped")
        if low == 0.0 and high is None:
            ex.node("Relu", [real], [clamped], op)
        else:
            bounds = [ex.constant(np.asarray(low, np.float32), f"{y.name}_min") if low is not None else "",
                      ex.constant(np.asarray(high, np.float32), f"{y.name}_max") if high is not None else ""]
            ex.node("Clip", [real] + (bounds if high is not None else bounds[:1]), [clamped], op)
        real = clamped
    ex.quantize(real, y, ex.name_for(y))


def _cast(ex: _Exporter, op: Op) -> None:
    x, y = op.x, op.result
    if x.type.dtype in ("f32", "bf16") and y.type.dtype in ("f32", "bf16"):  # bf16 is float32 here
        ex.floats[id(y)] = ex.float_of(x)
        return
    name = ex.name_for(y)
    ex.node("Cast", [ex.float_of(x)], [name], op, to=_ELEM[y.type.dtype])
    ex.floats[id(y)] = name


def _qlut(ex: _Exporter, op: Op) -> None:
    x, y = op.x, op.result
    wide, index = ex.fresh(f"{y.name}_x_int32"), ex.fresh(f"{y.name}_index")
    ex.node("Cast", [ex.int_of(x)], [wide], op, label=f"{wide}_Cast", to=TensorProto.INT32)
    ex.node("Add", [wide, ex.constant(np.asarray(128, np.int32), f"{y.name}_offset")], [index], op,
            label=f"{index}_Add")
    table = ex.constant(np.asarray(constant_value(op.table), np.int8), f"{y.name}_table")
    name = ex.name_for(y)
    ex.node("Gather", [table, index], [name], op, axis=0)
    ex.ints[id(y)] = name


_SPECIAL = {"const": _const, "quantize": _quantize, "dequantize": _dequantize, "requantize": _requantize,
            "cast": _cast, "qlut": _qlut}
