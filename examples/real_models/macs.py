"""Multiply-accumulates of an ONNX model, per node, from ONNX shape inference (onnx only, no tcc):
Conv, ConvTranspose, MatMul, Gemm and the recurrent layers; everything else counts 0."""
from __future__ import annotations

import math

import onnx

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def bind_input_shapes(model: onnx.ModelProto, input_shapes: dict) -> onnx.ModelProto:
    """A copy of the model whose inputs named in ``input_shapes`` ({input: shape}) declare those
    static shapes, for tools that need them (shape inference, onnxruntime's quantizer)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in model.graph.input:
        if value.name in input_shapes:
            for dim, size in zip(value.type.tensor_type.shape.dim, input_shapes[value.name]):
                dim.Clear()
                dim.dim_value = size
    return model


def _shapes(model: onnx.ModelProto, input_shapes: dict | None) -> dict:
    if input_shapes:   # data propagation then resolves Shape -> Reshape chains
        model = bind_input_shapes(model, input_shapes)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def node_macs(model: onnx.ModelProto, input_shapes: dict | None = None) -> dict:
    """{node name (or 'op_type#index' when unnamed): MACs} for every node that multiplies;
    ``input_shapes`` ({input: shape}) binds dynamic input dims."""
    shapes, macs = _shapes(model, input_shapes), {}
    for i, node in enumerate(model.graph.node):
        key = node.name or f"{node.op_type}#{i}"
        ins = [shapes.get(n) for n in node.input]
        out = shapes.get(node.output[0]) if node.output else None
        count = 0
        if node.op_type == "Conv" and out and ins[1]:
            count = math.prod(out) * math.prod(ins[1][1:])
        elif node.op_type == "ConvTranspose" and ins[0] and ins[1]:
            count = math.prod(ins[0]) * math.prod(ins[1][1:])
        elif node.op_type in ("MatMul", "Gemm") and out and ins[0]:
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            count = math.prod(out) * (ins[0][-2] if trans_a else ins[0][-1])
        elif node.op_type in GATES and ins[0] and ins[1] and ins[2]:
            seq, batch, features = ins[0]
            directions, rows, hidden = ins[2][0], ins[1][1], ins[2][2]
            count = seq * batch * directions * rows * (features + hidden)
        if count:
            macs[key] = count
    return macs


def count_macs(model: onnx.ModelProto, input_shapes: dict | None = None) -> int:
    return sum(node_macs(model, input_shapes).values())
