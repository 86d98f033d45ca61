"""Cutting an imported model's host tail (``ir/host_tail.py``): the nodes
``dynamic_shapes.dynamic_nodes`` picked stay an ONNX graph (the model's own nodes, after
function expansion); the tensors they read become module outputs.  ``host_tail.py`` runs it."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from tcc.ir.host_tail import HostTail, TailNode

from .context import ImportContext
from .dynamic_shapes import outer_reads
from .errors import node_label
from .onnx_types import onnx_elem_type


def cut_tail(ctx: ImportContext, tail: dict[int, str]) -> HostTail:
    """The host tail of the nodes ``tail`` (index -> reason); adds the module's outputs: the
    model outputs the imported part makes, then the tensors the tail reads (model inputs too)."""
    graph = ctx.loaded.model.graph
    nodes = [graph.node[i] for i in sorted(tail)]
    made = {o for node in nodes for o in node.output if o}
    for output in graph.output:
        if output.name not in made:
            ctx.module.add_output(output.name, ctx.value_of(output.name))
    reads = sorted({n for node in nodes for n in outer_reads(node)} - made)
    module_inputs = {v.name for v in ctx.module.inputs}
    inputs, initializers = [], []
    for name in reads:
        if name in ctx.consts and name not in module_inputs:
            initializers.append(numpy_helper.from_array(np.asarray(ctx.consts[name]), name))
            continue
        if name not in ctx.values and name not in ctx.consts:
            continue  # defined inside a subgraph of the tail
        if not any(n == name for n, _ in ctx.module.outputs):  # a model input too: the module has outputs
            ctx.module.add_output(name, ctx.value_of(name))
        t = ctx.type_of(name)
        inputs.append(helper.make_tensor_value_info(name, onnx_elem_type(t.dtype), list(t.shape)))
    outputs = [o for o in graph.output if o.name in made]
    model = helper.make_model(helper.make_graph(nodes, f"{graph.name}.host_tail", inputs, outputs, initializers),
                              opset_imports=list(ctx.loaded.model.opset_import),
                              ir_version=ctx.loaded.model.ir_version)
    return HostTail(tuple(vi.name for vi in inputs), tuple(o.name for o in graph.output),
                    tuple(TailNode(node_label(graph.node[i]), graph.node[i].op_type, tail[i]) for i in sorted(tail)),
                    model.SerializeToString())
