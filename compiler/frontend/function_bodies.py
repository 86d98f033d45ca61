"""Expand ops that ONNX defines as functions (Attention, RotaryEmbedding, ...) into their bodies.

An op tcc has no lowering for, whose schema carries a function body for the model's opset, is
replaced by the body's nodes (ONNX's own decomposition, the one its ``_expanded`` conformance
cases test), with the body's tensors renamed ``<node>/<name>`` and attribute references bound
to the node's attributes.  Context-dependent bodies get the node's input types from ONNX shape
inference.
"""
from __future__ import annotations

import onnx
from onnx import AttributeProto, FunctionProto, NodeProto

from .errors import node_label


def function_body(node: NodeProto, opset: int, input_types: list[onnx.TypeProto]) -> FunctionProto | None:
    """ONNX's function body of ``node`` at ``opset``, None when the schema has none."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except Exception:  # no schema for this op at this opset
        return None
    proto = FunctionProto()
    versions = [v for v in schema.function_opset_versions if v <= opset]  # type: ignore[attr-defined]
    if versions:
        proto.ParseFromString(schema.get_function_with_opset_version(max(versions)))  # type: ignore[attr-defined]
        return proto
    versions = [v for v in schema.context_dependent_function_opset_versions if v <= opset]  # type: ignore[attr-defined]
    if versions:
        try:
            serialized = schema.get_context_dependent_function_with_opset_version(  # type: ignore[attr-defined]
                max(versions), _with_defaults(node, schema).SerializeToString(),
                [t.SerializeToString() for t in input_types])
        except Exception:  # the body builder refuses these inputs
            return None
        if not serialized:
            return None
        proto.ParseFromString(serialized)
        if not proto.input and not proto.output:  # no interface to wire the body to
            return None
        return proto
    return None


def _with_defaults(node: NodeProto, schema) -> NodeProto:
    """The node with the schema's attribute defaults filled in (function bodies read them)."""
    copy = NodeProto()
    copy.CopyFrom(node)
    present = {a.name for a in node.attribute}
    for name, spec in schema.attributes.items():
        if name not in present and spec.default_value and spec.default_value.name:
            copy.attribute.append(spec.default_value)
    return copy


def expand(node: NodeProto, body: FunctionProto, schema_node: NodeProto) -> list[NodeProto]:
    """The body's nodes wired to ``node``'s inputs and outputs."""
    prefix = f"{node_label(node)}/"
    # An absent optional input is "" in the body too (the body tests for it with its own logic).
    names = {formal: node.input[i] if i < len(node.input) else "" for i, formal in enumerate(body.input)}
    names.update({formal: actual for formal, actual in zip(body.output, node.output) if actual})
    attrs = {a.name: a for a in schema_node.attribute}

    def rename(name: str) -> str:
        if not name:
            return ""
        return names.get(name, prefix + name)

    nodes = []
    for inner in body.node:
        copy = NodeProto()
        copy.CopyFrom(inner)
        copy.name = prefix + (inner.name or (inner.output[0] if inner.output else inner.op_type))
        copy.input[:] = [rename(i) for i in inner.input]
        copy.output[:] = [rename(o) for o in inner.output]
        del copy.attribute[:]
        for attr in inner.attribute:
            if attr.ref_attr_name:
                if attr.ref_attr_name in attrs:
                    bound = AttributeProto()
                    bound.CopyFrom(attrs[attr.ref_attr_name])
                    bound.name = attr.name
                    copy.attribute.append(bound)
            else:
                copy.attribute.append(attr)
        rename_subgraph_references(copy, rename)
        nodes.append(copy)
    return nodes


def rename_subgraph_references(node: NodeProto, rename) -> None:
    """Rename, in the subgraphs of a node copied out of a body, the names they read from that body."""
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            _rename_outer_references(attr.g, rename, set())
        elif attr.type == AttributeProto.GRAPHS:
            for g in attr.graphs:
                _rename_outer_references(g, rename, set())


def _rename_outer_references(graph: onnx.GraphProto, rename, outer_local: set[str]) -> None:
    """Rename, in a body node's subgraph (a Scan or Loop body), the names it reads from the body
    around it; names the subgraph (or a subgraph enclosing it inside the body) defines stay."""
    local = set(outer_local)
    local.update(vi.name for vi in graph.input)
    local.update(t.name for t in graph.initializer)
    local.update(o for node in graph.node for o in node.output)
    for node in graph.node:
        node.input[:] = [i if not i or i in local else rename(i) for i in node.input]
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                _rename_outer_references(attr.g, rename, local)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _rename_outer_references(g, rename, local)
    for vi in graph.output:
        if vi.name not in local:
            vi.name = rename(vi.name)
