"""Load an ONNX model, validate it, bind its input shapes and run ONNX shape inference.

Big weights never go through the checker or shape inference (both serialize the whole model):
they run on a *skeleton* of the model in which large initializers are declared as typed graph
inputs instead.  Their values never matter for shapes.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from tcc.ir.types import TensorType

from .errors import FrontendError, FrontendNote, node_label
from .external_data import load_external_data
from .onnx_types import elem_name, tcc_dtype

MIN_OPSET = 7
DEFAULT_DOMAINS = ("", "ai.onnx")
# Initializers with more elements than this stay out of the skeleton model.
SKELETON_LIMIT = 1024


@dataclass
class LoadedModel:
    """A validated model with bound input shapes and ONNX's inferred type of every tensor."""

    model: onnx.ModelProto  # the user's model, weights intact
    label: str  # how messages name the model: its file, else its graph name
    opset: int  # version of the default ONNX domain
    inputs: dict[str, TensorType]  # the real model inputs (not initializers), in graph order
    initializers: dict[str, TensorProto]
    inferred: dict[str, onnx.TypeProto]  # tensor name -> type after ONNX shape inference


def load_model(model, input_shapes: dict | None = None, supported=None) -> LoadedModel:
    """``supported(op_type)``: whether the importer lowers an op; others that ONNX defines as a
    function are replaced by the function's body (function_bodies.py)."""
    model, label = _read(model)
    opset = _check_opsets(model, label)
    if not model.graph.output:
        raise FrontendError(f"{label}: the graph declares no outputs, so there is nothing to compute; "
                            "re-export the model with its outputs")
    if opset < MIN_OPSET:
        model, opset = _upgrade(model, opset, label)
    if len(model.functions):
        model = _inline_functions(model, label)
    if len(model.graph.sparse_initializer):
        raise FrontendError(f"{label}: sparse initializers are not supported; store them dense "
                            "(onnx.numpy_helper) and re-export")
    model = _explicit_defaults(model, opset)
    initializers = {t.name: t for t in model.graph.initializer}
    for tensor in initializers.values():
        _check_initializer_size(tensor, label)
    inputs = bind_input_shapes(model, initializers, input_shapes or {}, label)
    skeleton = _skeleton(model, initializers)
    for value_info in skeleton.graph.input:
        if value_info.name in inputs:
            _set_shape(value_info, inputs[value_info.name].shape)
    _check(skeleton, label)
    data_prop = _refuse_huge_constants(model, initializers, label)
    _forget_output_shapes(skeleton)
    inferred = _infer(skeleton, label, data_prop)
    for _ in range(MAX_EXPANSION_ROUNDS):  # a body may use ops that are functions themselves
        expanded = _expand_functions(model, opset, inferred, supported) if supported else None
        if expanded is None:
            break
        model = expanded
        skeleton = _skeleton(model, initializers)
        for value_info in skeleton.graph.input:
            if value_info.name in inputs:
                _set_shape(value_info, inputs[value_info.name].shape)
        _forget_output_shapes(skeleton)
        inferred = _infer(skeleton, label, data_prop)
    return LoadedModel(model, label, opset, inputs, initializers, inferred)


MAX_EXPANSION_ROUNDS = 3

# Ops whose schema defaults ONNX's shape inference does not apply: it reads STFT's onesided as 0
# unless the node sets it (the spec's default and the reference implementation use 1), and it
# inlines a function body (MeanVarianceNormalization) without the defaults its attribute
# references need.
_DEFAULTS_INFERENCE_MISSES = frozenset({"STFT", "MeanVarianceNormalization"})


def _explicit_defaults(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The model with those ops' missing attributes written with their schema defaults."""
    if not any(node.op_type in _DEFAULTS_INFERENCE_MISSES and node.domain in DEFAULT_DOMAINS
               for node in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for node in out.graph.node:
        if node.op_type in _DEFAULTS_INFERENCE_MISSES and node.domain in DEFAULT_DOMAINS:
            present = {a.name for a in node.attribute}
            schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
            for name, spec in schema.attributes.items():
                if name not in present and spec.default_value and spec.default_value.name:
                    node.attribute.append(spec.default_value)
    return out


def _expand_functions(model: onnx.ModelProto, opset: int, inferred: dict, supported) -> onnx.ModelProto | None:
    """The model with every unsupported default-domain op that has an ONNX function body replaced by
    that body; None when there is none."""
    from .function_bodies import expand, function_body

    nodes, changed = [], False
    for node in model.graph.node:
        if node.domain in DEFAULT_DOMAINS and not supported(node.op_type):
            types = [inferred.get(name, onnx.TypeProto()) for name in node.input]
            body = function_body(node, opset, types)
            if body is not None:
                schema_node = _node_with_defaults(node, opset)
                nodes.extend(expand(node, body, schema_node))
                changed = True
                continue
        nodes.append(node)
    if not changed:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _node_with_defaults(node, opset: int):
    from .function_bodies import _with_defaults

    return _with_defaults(node, onnx.defs.get_schema(node.op_type, opset, node.domain))


# -- reading and validation --------------------------------------------------------------------
def _read(model) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, (f"model {model.graph.name!r}" if model.graph.name else "<onnx model>")
    if not isinstance(model, (str, Path)):
        raise FrontendError(f"import_onnx takes a path or an onnx.ModelProto, not {type(model).__name__}")
    label = str(model)
    if not Path(model).exists():  # not is_file(): /dev/stdin and FIFOs are fine
        raise FrontendError(f"{label}: no such file; give the path of an .onnx model")
    if Path(model).is_dir():
        raise FrontendError(f"{label}: is a folder; give the path of an .onnx model")
    try:
        loaded = onnx.load(model, load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError, TypeError) as exc:
        raise FrontendError(f"{label}: cannot read the ONNX protobuf ({_first_line(exc)}); the file is "
                            "truncated, corrupted or not an ONNX model. Re-export or re-download it.") from None
    if not loaded.HasField("graph") or not loaded.ir_version:
        raise FrontendError(f"{label}: the file holds no ONNX model (no graph or IR version); it is empty, "
                            "truncated or some other kind of file")
    load_external_data(loaded, Path(model), label)
    return loaded, label


def _check_opsets(model: onnx.ModelProto, label: str) -> int:
    versions = {imp.domain: imp.version for imp in model.opset_import}
    local = {(f.domain, f.name) for f in model.functions}
    foreign: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS and (node.domain, node.op_type) not in local:
            foreign.setdefault(node.domain, []).append(f"{node.op_type} ({node_label(node)!r})")
    if foreign:
        parts = [f"domain {d!r} version {versions.get(d, '?')}: " + ", ".join(ops[:5])
                 + (f" and {len(ops) - 5} more" if len(ops) > 5 else "") for d, ops in sorted(foreign.items())]
        raise FrontendError(f"{label}: uses ops from opset domains tcc does not support: " + "; ".join(parts)
                            + ". tcc supports the default ONNX domain only.")
    default = [versions[d] for d in DEFAULT_DOMAINS if d in versions]
    if not default:
        raise FrontendError(f"{label}: the model imports no version of the default ONNX opset; "
                            "re-export it with an opset between 7 and "
                            f"{onnx.defs.onnx_opset_version()}")
    opset = max(default)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise FrontendError(f"{label}: opset {opset} is newer than this onnx package knows ({newest}); "
                            "upgrade onnx or export with an older opset")
    return opset


def _upgrade(model: onnx.ModelProto, opset: int, label: str) -> tuple[onnx.ModelProto, int]:
    """Opsets 1-6 are converted to MIN_OPSET by onnx.version_converter (as onnxruntime runs them);
    a model the converter cannot convert is refused."""
    from onnx import version_converter

    model = _channel_slopes(model)
    try:
        converted = version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # the converter raises RuntimeError, ValueError or its own C++ errors
        raise FrontendError(f"{label}: opset {opset} is older than the oldest tcc supports ({MIN_OPSET}) and "
                            f"onnx.version_converter cannot convert it: {_first_line(exc)}. Re-export the "
                            "model with a newer opset") from None
    warnings.warn(FrontendNote(f"{label}: opset {opset} converted to opset {MIN_OPSET} by onnx.version_converter"),
                  stacklevel=2)
    return converted, MIN_OPSET


def _channel_slopes(model: onnx.ModelProto) -> onnx.ModelProto:
    """PRelu before opset 7 applies a 1-D slope of C values per channel (axis 1); from opset 7 on
    slopes broadcast numpy-style, and the version converter leaves them 1-D. Give such constant
    slopes the shape [C, 1, ...] that means the same thing after conversion."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an old model inference cannot type: convert it as it is
        return model
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in (*inferred.graph.input, *inferred.graph.value_info)
             if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}
    shared = {name for node in model.graph.node if node.op_type != "PRelu" for name in node.input}
    slopes = {t.name: t for t in model.graph.initializer if t.name not in shared}
    out = None
    for node in model.graph.node:
        if node.op_type != "PRelu" or len(node.input) < 2 or node.input[1] not in slopes:
            continue
        slope, rank = slopes[node.input[1]], ranks.get(node.input[0], 0)
        if len(slope.dims) == 1 and slope.dims[0] > 1 and rank > 2:
            if out is None:
                out = onnx.ModelProto()
                out.CopyFrom(model)
            target = next(t for t in out.graph.initializer if t.name == slope.name)
            target.dims[:] = [slope.dims[0]] + [1] * (rank - 2)
            for vi in out.graph.input:  # old models list initializers as inputs too
                if vi.name == slope.name and vi.type.tensor_type.HasField("shape"):
                    del vi.type.tensor_type.shape.dim[:]
                    for d in target.dims:
                        vi.type.tensor_type.shape.dim.add().dim_value = d
    return out if out is not None else model


def _check(skeleton: onnx.ModelProto, label: str) -> None:
    # The checker insists on a shape field for graph outputs, which some exporters omit; they
    # are re-inferred anyway (see _forget_output_shapes).
    for output in skeleton.graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.shape.SetInParent()
    try:
        onnx.checker.check_model(skeleton)
    except (onnx.checker.ValidationError, ValueError) as exc:
        detail = _unsorted_input(skeleton.graph, str(exc)) or _first_line(exc)
        raise FrontendError(f"{label}: not a valid ONNX model: {detail}. "
                            "Re-export it or run onnx.checker.check_model on it for details.") from None


_UNSORTED = re.compile(r"topologically sorted, however input '(.*)' of node:\s*name: (.*?) OpType: (\S*)", re.S)


def _unsorted_input(graph: onnx.GraphProto, message: str) -> str | None:
    """The checker's "must be topologically sorted" message (which it cuts across lines) as one line
    naming the node, the tensor it reads, and the node that makes that tensor, if any."""
    match = _UNSORTED.search(message)
    if not match:
        return None
    tensor, node, op_type = match.groups()
    where = f"node {node!r} ({op_type})" if node else f"a {op_type} node"
    producers = [n for n in graph.node if tensor in n.output]
    if not producers:
        return (f"{where} reads tensor {tensor!r}, which is not a graph input, an initializer or the output "
                "of any node")
    made_by = node_label(producers[0])
    return (f"{where} reads tensor {tensor!r} before node {made_by!r} ({producers[0].op_type}) makes it: the "
            "nodes are out of order or form a cycle")


def _inline_functions(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Expand model-local functions so only standard ops remain."""
    import onnx.inliner

    try:
        return onnx.inliner.inline_local_functions(model)
    except Exception as exc:  # the inliner reports malformed functions with assorted types
        raise FrontendError(f"{label}: cannot inline the model's local functions: {_first_line(exc)}") from None


def _skeleton(model: onnx.ModelProto, initializers: dict[str, TensorProto]) -> onnx.ModelProto:
    """The model without large weight payloads; they become typed inputs of the same name."""
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    # value_info is left out on purpose: inference recomputes every intermediate type.
    declared = {vi.name: vi for vi in graph.input}
    for tensor in initializers.values():
        count = 1
        for d in tensor.dims:
            count *= d
        if count <= SKELETON_LIMIT:
            graph.initializer.append(tensor)
            if tensor.name not in declared:
                continue
        vi = declared.get(tensor.name) or graph.input.add()
        vi.CopyFrom(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return skeleton


_PACKED = {TensorProto.INT4: 2, TensorProto.UINT4: 2, TensorProto.FLOAT4E2M1: 2,
           getattr(TensorProto, "INT2", -1): 4, getattr(TensorProto, "UINT2", -2): 4}
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _check_initializer_size(tensor: TensorProto, label: str) -> None:
    """The data an initializer holds must fill its declared dims: a corrupted dim would otherwise
    reach shape inference (and the skeleton) as a tensor of absurd size."""
    if tensor.data_location == TensorProto.EXTERNAL or tensor.data_type in (TensorProto.COMPLEX64,
                                                                            TensorProto.COMPLEX128):
        return
    if any(d < 0 for d in tensor.dims):
        raise FrontendError(f"{label}: initializer {tensor.name!r} has a negative dim {list(tensor.dims)}")
    count = int(np.prod(tensor.dims, dtype=object))
    per_byte = _PACKED.get(tensor.data_type, 1)  # 4- and 2-bit types pack several elements a byte
    if tensor.HasField("raw_data"):
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize \
            if tensor.data_type in onnx.helper.get_all_tensor_dtypes() else None
        held, expected = len(tensor.raw_data), (-(-count // per_byte) * itemsize if itemsize else None)
    else:
        held = sum(len(getattr(tensor, f)) for f in _TYPED_FIELDS)
        expected = -(-count // per_byte)
    if expected is not None and held != expected and not (held == 0 and count == 0):
        unit = "bytes" if tensor.HasField("raw_data") else "values"
        raise FrontendError(f"{label}: initializer {tensor.name!r} declares dims {list(tensor.dims)} "
                            f"({expected} {unit}) but holds {held} {unit}; the model is corrupted")


#: ONNX's data propagation holds a Range's values as shape dims (~100 bytes each): 2**26 of them
#: took 7 GB and 25 s.  Above this many elements, or when its size is not known from constants,
#: inference runs without data propagation (tcc folds the Range itself, with FOLD_LIMIT_BYTES).
DATA_PROP_RANGE_LIMIT = 2**16


def _refuse_huge_constants(model: onnx.ModelProto, initializers, label: str) -> bool:
    """Refuse a Range, ConstantOfShape, Expand or Tile that asks for an absurd size from a few
    constant bytes; returns whether ONNX shape inference may propagate data (see above)."""
    data_prop = True
    from onnx import numpy_helper

    from tcc.passes.fold_constants import FOLD_LIMIT_BYTES

    from .folding import output_elements

    for node in model.graph.node:
        if node.op_type not in ("Range", "ConstantOfShape", "Expand", "Tile"):
            continue
        inputs: list = []
        for name in node.input:
            tensor = initializers.get(name)
            if tensor is None or np.prod(tensor.dims, dtype=object) > SKELETON_LIMIT:
                inputs.append(None)
                continue
            try:
                inputs.append(numpy_helper.to_array(tensor))
            except (ValueError, TypeError, OSError, KeyError):
                inputs.append(None)  # reported with the initializer's name when the import reads it
        if node.op_type in ("Expand", "Tile") and inputs and inputs[0] is None:
            inputs[0] = np.zeros(())  # unknown data: the shape/repeats input alone bounds the size
        elements = output_elements(node, inputs)
        if elements is not None and elements * 4 > FOLD_LIMIT_BYTES:
            raise FrontendError(f"{label}: node {node_label(node)!r} ({node.op_type}) asks for a tensor of "
                                f"{elements} elements from its constant inputs; the model's shapes are "
                                "corrupted or absurd")
        if node.op_type == "Range" and (elements is None or elements > DATA_PROP_RANGE_LIMIT):
            data_prop = False
    return data_prop


# -- input shapes ------------------------------------------------------------------------------
def bind_input_shapes(model: onnx.ModelProto, initializers, input_shapes: dict, label: str) -> dict[str, TensorType]:
    """Resolve every real input's static shape from its declaration and ``input_shapes``."""
    real = [vi for vi in model.graph.input if vi.name not in initializers]
    names = [vi.name for vi in real]
    for key in input_shapes:
        if key not in names:
            listed = ", ".join(repr(n) for n in names) or "none"
            raise FrontendError(f"{label}: input_shapes names {key!r}, which is not a model input "
                                f"(the inputs are {listed})")
    return {vi.name: _bind_one(vi, input_shapes.get(vi.name), label) for vi in real}


def _bind_one(vi: onnx.ValueInfoProto, given, label: str) -> TensorType:
    name = vi.name
    if not vi.type.HasField("tensor_type"):
        raise FrontendError(f"{label}: input {name!r} is not a tensor (it is {vi.type.WhichOneof('value')}); "
                            "tcc compiles tensor inputs only")
    elem = vi.type.tensor_type.elem_type
    dtype = tcc_dtype(elem)
    if dtype is None:
        raise FrontendError(f"{label}: input {name!r} has element type {elem_name(elem)}, "
                            "which tcc does not support")
    declared = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else None
    if given is not None:
        shape = _check_given(name, given, declared, label)
    elif declared is None:
        raise FrontendError(f"{label}: input {name!r} declares no shape; give it with "
                            f"input_shapes (--input-shape {name}=d0,d1,...)")
    else:
        shape = []
        for i, d in enumerate(declared):
            if _static_dim(d) is None:
                what = f" ({d.dim_param!r})" if d.dim_param else f" ({d.dim_value})" if d.HasField("dim_value") else ""
                example = ",".join(str(_static_dim(d) or 1) for d in declared)
                raise FrontendError(f"{label}: input {name!r} has a dynamic dim {i}{what}; give its size "
                                    f"with input_shapes (e.g. --input-shape {name}={example})")
            shape.append(int(d.dim_value))
    return TensorType(tuple(shape), dtype)


def _static_dim(d) -> int | None:
    """A declared dim's size, or None when it is dynamic: a dim_param, no value, or -1 (which
    several exporters write for "any size").  0 is a size (an empty tensor) unless input_shapes
    binds it: some exporters write 0 for "any size" too (see _check_given)."""
    return int(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else None


def _check_given(name: str, given, declared, label: str) -> list[int]:
    try:
        shape = [int(d) for d in given]
    except (TypeError, ValueError):
        raise FrontendError(f"{label}: input_shapes[{name!r}] = {given!r} is not a sequence of ints") from None
    if any(d < 0 for d in shape):
        raise FrontendError(f"{label}: input_shapes[{name!r}] = {shape} has a negative dim")
    if declared is not None:
        if len(declared) != len(shape):
            raise FrontendError(f"{label}: input_shapes gives {name!r} {len(shape)} dims {shape}, "
                                f"the model declares {len(declared)}")
        for i, (d, s) in enumerate(zip(declared, shape)):
            if _static_dim(d) and d.dim_value != s:  # a declared 0 or -1 takes the given size
                raise FrontendError(f"{label}: input_shapes gives {name!r} dim {i} = {s}, "
                                    f"the model declares it static {d.dim_value}")
    return shape


def _set_shape(vi: onnx.ValueInfoProto, shape: tuple[int, ...]) -> None:
    tensor_type = vi.type.tensor_type
    tensor_type.ClearField("shape")
    tensor_type.shape.SetInParent()
    for d in shape:
        tensor_type.shape.dim.add().dim_value = d


# -- shape inference ---------------------------------------------------------------------------
def _forget_output_shapes(skeleton: onnx.ModelProto) -> None:
    """Declared output shapes are annotations that inference recomputes; like onnxruntime, tcc
    does not reject a model whose annotations are stale."""
    for output in skeleton.graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")


_NODE_IN_MESSAGE = re.compile(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\):\s*(?:\[\w+\]\s*)?(.*)")


def _infer(skeleton: onnx.ModelProto, label: str, data_prop: bool = True) -> dict[str, onnx.TypeProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True,
                                                     data_prop=data_prop)
    except MemoryError:
        raise FrontendError(f"{label}: ONNX shape inference ran out of memory; the model's shapes are "
                            "corrupted or absurd") from None
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
        text = str(exc).strip()
        match = _NODE_IN_MESSAGE.search(text)
        if match:
            op_type, node, detail = match.groups()
            where = f"at node {node!r} ({op_type})" if node else f"at a {op_type} node"
            text = f" {where}: {detail.strip().rstrip('.')}"
        else:
            text = f": {_first_line(exc)}"
        raise FrontendError(f"{label}: ONNX shape inference fails{text}. Check the model and the "
                            "input shapes given.") from None
    types = {t.name: onnx.helper.make_tensor_type_proto(t.data_type, t.dims) for t in inferred.graph.initializer}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        types[vi.name] = vi.type
    return types


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
