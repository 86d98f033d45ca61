"""State of one import: the module being built, ONNX tensor name -> IR value or constant.

``NodeContext`` is what a lowering function sees: attribute and input access for one ONNX
node, and ``emit`` to create ops named after the node's outputs with the node's location.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tcc.ir import Builder, Module, QuantParams, TensorType, Value
from tcc.ir.errors import VerifyError

from .errors import FrontendError, internal_error, node_label
from .loader import LoadedModel
from .onnx_types import numpy_dtype, static_shape, tcc_dtype, tcc_dtype_of_array


class ImportContext:
    def __init__(self, loaded: LoadedModel, module_name: str):
        self.loaded = loaded
        self.module = Module(module_name)
        self.builder = Builder(self.module)
        self.values: dict[str, Value] = {}  # ONNX tensor name -> IR value
        self.consts: dict[str, np.ndarray] = {}  # ONNX tensor name -> constant (materialized lazily)
        self.const_locs: dict[str, str] = {}
        self.const_quant: dict[str, QuantParams] = {}  # parameters a constant came with (QDQ weights)
        # Folds or lowers one more node (set by the importer; If/Loop/Scan bodies use it): False
        # when the node can be neither.
        self.import_node: Callable[[onnx.NodeProto], bool] = lambda node: False
        graph = loaded.model.graph
        # Every ONNX tensor name; intermediate values must not take one of them.
        self.reserved: set[str] = {vi.name for vi in graph.input} | set(loaded.initializers)
        self.used: set[str] = {vo.name for vo in graph.output}
        for node in graph.node:
            self.reserved.update(node.output)
            self.used.update(node.input)
        for name, tensor_type in loaded.inputs.items():
            self.values[name] = self.module.add_input(name, tensor_type)
        for name, tensor in loaded.initializers.items():
            if name not in self.values:
                self.consts[name] = _initializer_array(tensor, loaded.label)
                self.const_locs[name] = name

    # -- names ---------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A name for an intermediate value that no ONNX tensor uses."""
        candidate = hint
        i = 0
        while True:
            name = self.module.fresh_name(candidate)
            if name not in self.reserved:
                return name
            i += 1
            candidate = f"{hint}.t{i}"

    # -- lookups -------------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def value_of(self, name: str) -> Value:
        """The IR value of an ONNX tensor, creating its ``const`` op on first use."""
        value = self.values.get(name)
        if value is not None:
            return value
        if name not in self.consts:
            raise internal_error(repr(name), "tensor is used before it is defined")
        self._const_dtype(name)
        value = self.builder.value("const", [], {"value": self.consts[name]}, name=name,
                                   loc=self.const_locs.get(name, name))
        if name in self.const_quant:
            value.type = TensorType(value.type.shape, value.type.dtype, self.const_quant[name])
        self.values[name] = value
        return value

    def type_of(self, name: str) -> TensorType:
        if name in self.values:
            return self.values[name].type
        return TensorType(tuple(self.consts[name].shape), self._const_dtype(name))

    def _const_dtype(self, name: str) -> str:
        array = self.consts[name]
        dtype = tcc_dtype_of_array(array)
        if dtype is None:
            raise FrontendError(f"{self.loaded.label}: tensor {name!r} has element type {array.dtype}, "
                                "which tcc cannot carry")
        return dtype

    def check_against_onnx(self, name: str, shape: tuple[int, ...], dtype: str | None, where: str) -> None:
        """tcc's type rules and ONNX shape inference must agree wherever both know the type."""
        inferred = self.loaded.inferred.get(name)
        if inferred is None or not inferred.HasField("tensor_type"):
            return
        onnx_shape = static_shape(inferred)
        if onnx_shape is not None and onnx_shape != tuple(shape):
            raise internal_error(where, f"tensor {name!r} has shape {list(shape)} in tcc but "
                                        f"{list(onnx_shape)} after ONNX shape inference")
        elem = inferred.tensor_type.elem_type
        if elem and dtype is not None and tcc_dtype(elem) not in (None, dtype):
            raise internal_error(where, f"tensor {name!r} has element type {dtype} in tcc but "
                                        f"{tcc_dtype(elem)} after ONNX shape inference")

    def onnx_dtype(self, name: str) -> np.dtype | None:
        inferred = self.loaded.inferred.get(name)
        if inferred is None or not inferred.HasField("tensor_type") or not inferred.tensor_type.elem_type:
            return None
        return numpy_dtype(inferred.tensor_type.elem_type)


def _initializer_array(tensor: onnx.TensorProto, label: str) -> np.ndarray:
    """The initializer's values, viewing its raw bytes where numpy can (no copy)."""
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, OSError, KeyError) as exc:  # bad sizes, unknown types, missing external data
        raise FrontendError(f"{label}: cannot read the data of initializer {tensor.name!r}: {exc}") from None


class NodeContext:
    """One ONNX node during lowering."""

    def __init__(self, ctx: ImportContext, node: onnx.NodeProto):
        self.ctx = ctx
        self.node = node
        self.opset = ctx.loaded.opset
        self.loc = node_label(node)
        self._attrs = {a.name: a for a in node.attribute}

    # -- messages ------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"{self.ctx.loaded.label}: node {self.loc!r} ({self.node.op_type}, opset {self.opset})"

    def error(self, message: str) -> FrontendError:
        return FrontendError(f"{self.where}: {message}")

    # -- attributes ----------------------------------------------------------------------------
    def attr(self, name: str, default=None):
        """An attribute as a Python value: ints/floats lists as tuples, strings decoded, tensors as arrays."""
        proto = self._attrs.get(name)
        if proto is None:
            return default
        value = helper.get_attribute_value(proto)
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        if isinstance(value, list):
            return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
        return value

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    # -- inputs --------------------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.node.input)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self.ctx.is_const(self.node.input[i])

    def const(self, i: int, what: str) -> np.ndarray:
        """A constant input (shapes, axes, pads...): anything else is an error naming the input."""
        if not self.is_const(i):
            raise self.error(f"input {i} ({what}, {self.node.input[i]!r}) must be a constant for tcc, "
                             "but it is computed at run time")
        return self.ctx.consts[self.node.input[i]]

    def const_ints(self, i: int, what: str) -> tuple[int, ...]:
        return tuple(int(v) for v in self.const(i, what).reshape(-1))

    def input(self, i: int) -> Value:
        return self.ctx.value_of(self.node.input[i])

    def input_type(self, i: int) -> TensorType:
        return self.ctx.type_of(self.node.input[i])

    def output_used(self, i: int) -> bool:
        return i < len(self.node.output) and self.node.output[i] != "" and self.node.output[i] in self.ctx.used

    # -- building ------------------------------------------------------------------------------
    def _create(self, kind: str, operands, attrs: dict | None):
        try:
            return self.ctx.builder.create(kind, operands, attrs or {}, loc=self.loc)
        except VerifyError as exc:
            raise self.error(f"tcc's {kind} op rejects the operands: {exc}") from None

    def emit(self, kind: str, operands, attrs: dict | None = None, output: int = 0) -> Value:
        """Create an op whose result is ONNX output ``output`` (named after it)."""
        value = self._create(kind, operands, attrs).result
        self.ctx.module.rename(value, self.node.output[output] or self.ctx.fresh(f"{self.loc}.out{output}"))
        self._bind(output, value)
        return value

    def emit_results(self, kind: str, operands, attrs: dict | None = None) -> list[Value]:
        """Create a multi-result op whose results are the node's outputs in order."""
        op = self._create(kind, operands, attrs)
        for i, r in enumerate(op.results):
            name = self.node.output[i]
            self.ctx.module.rename(r, name or self.ctx.fresh(f"{self.loc}.unused{i}"))
            self._bind(i, r)
        return op.results

    def results(self, kind: str, operands, attrs: dict | None, count: int) -> list[Value]:
        """Create a multi-result op whose results have intermediate names; ``bind_output`` makes
        one of them an ONNX output (the node may have fewer outputs than the op has results)."""
        op = self._create(kind, operands, attrs)
        if len(op.results) != count:
            raise internal_error(self.where, f"{kind} made {len(op.results)} results, expected {count}")
        for i, r in enumerate(op.results):
            self.ctx.module.rename(r, self.ctx.fresh(f"{self.loc}.{kind}{i}"))
        return op.results

    def bind_output(self, output: int, value: Value) -> None:
        """Make ONNX output ``output`` the existing ``value``, renamed after it."""
        self.ctx.module.rename(value, self.node.output[output])
        self._bind(output, value)

    def temp(self, kind: str, operands, attrs: dict | None = None, hint: str = "") -> Value:
        """Create an intermediate op whose result is no ONNX tensor."""
        value = self._create(kind, operands, attrs).result
        self.ctx.module.rename(value, self.ctx.fresh(f"{self.node.output[0] or self.loc}.{hint or kind}"))
        return value

    def new_const(self, array, hint: str) -> Value:
        return self.ctx.builder.value("const", [], {"value": np.asarray(array)}, name=self.ctx.fresh(hint),
                                      loc=self.loc)

    def _bind(self, output: int, value: Value) -> None:
        """Record ``value`` as ONNX output ``output`` (it keeps its own name)."""
        name = self.node.output[output]
        if name:
            self.ctx.values[name] = value

    def alias(self, output: int, input_index: int) -> None:
        """Make an output the same tensor as an input (Identity, Dropout): no op is created."""
        name, source = self.node.output[output], self.node.input[input_index]
        if not name:
            return
        if self.ctx.is_const(source):
            self.ctx.consts[name] = self.ctx.consts[source]
            self.ctx.const_locs[name] = self.loc
        else:
            self.ctx.values[name] = self.ctx.values[source]

    def set_const(self, output: int, array: np.ndarray) -> None:
        name = self.node.output[output]
        if name:
            self.ctx.consts[name] = np.asarray(array)
            self.ctx.const_locs[name] = self.loc
