"""If, Loop and Scan, lowered by inlining their bodies: tcc's IR has static shapes and no regions.

- If: a constant condition inlines the branch taken; a computed one inlines both branches and
  selects each output with ``where`` (both must give the same shape; both are computed).
- Loop: unrolled when its trip count is known at compile time: a constant ``M`` and a condition
  that stays constant (folded) on every iteration; the scan outputs are stacked along axis 0.
- Scan (opset 9+): unrolled over the static length of its scan inputs, in either direction,
  scan outputs stacked along their axes.  Scan-8 (axis 0 a batch) unrolls each batch entry so.

A body's tensors are renamed ``<node>/<iteration>/<name>`` so that every iteration is its own
set of values; names a body reads from the enclosing graph keep their own.
"""
from __future__ import annotations

import numpy as np
import onnx

from tcc.ir.shape_rules import normalize_axis

from .context import NodeContext
from .errors import FrontendError, node_label
from .function_bodies import rename_subgraph_references

MAX_UNROLL = 4096  # iterations; a longer loop would make a program too large to be useful


def _bind(ctx, target: str, source: str) -> None:
    """Make ONNX tensor ``target`` the same tensor as ``source`` (value or constant)."""
    if ctx.is_const(source):
        ctx.consts[target] = ctx.consts[source]
        ctx.const_locs[target] = ctx.const_locs.get(source, source)
    else:
        ctx.values[target] = ctx.value_of(source)


def _inline(n: NodeContext, graph: onnx.GraphProto, inputs: list[str], prefix: str) -> list[str]:
    """Lower ``graph``'s nodes with its inputs bound to the existing tensors ``inputs``; returns
    the names of its outputs in the enclosing context."""
    ctx = n.ctx
    if len(inputs) != len(graph.input):
        raise n.error(f"the body takes {len(graph.input)} inputs, the node gives it {len(inputs)}")
    names = {vi.name: source for vi, source in zip(graph.input, inputs)}
    for tensor in graph.initializer:
        names[tensor.name] = f"{prefix}{tensor.name}"
        ctx.consts[names[tensor.name]] = onnx.numpy_helper.to_array(tensor)
    for node in graph.node:
        for out in node.output:
            if out:
                names[out] = f"{prefix}{out}"
    rename = lambda name: names.get(name, name) if name else ""  # noqa: E731  (outer names stay)
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{prefix}{node_label(node)}"
        copy.input[:] = [rename(i) for i in node.input]
        copy.output[:] = [rename(o) for o in node.output]
        rename_subgraph_references(copy, rename)
        ctx.reserved.update(o for o in copy.output if o)
        ctx.used.update(i for i in copy.input if i)
        if not ctx.import_node(copy):
            raise FrontendError(f"{n.where}: its body uses {node.op_type} (node {node_label(node)!r}), "
                                "which tcc does not support")
    outputs = [rename(vo.name) for vo in graph.output]
    ctx.used.update(outputs)
    return outputs


def lower_if(n: NodeContext) -> None:
    branches = {True: n.attr("then_branch"), False: n.attr("else_branch")}
    if n.is_const(0):
        taken = bool(np.asarray(n.const(0, "cond")).reshape(-1)[0])
        for i, source in enumerate(_inline(n, branches[taken], [], f"{n.loc}/{'then' if taken else 'else'}/")):
            if n.node.output[i]:
                _bind(n.ctx, n.node.output[i], source)
        return
    results = {b: _inline(n, g, [], f"{n.loc}/{'then' if b else 'else'}/") for b, g in branches.items()}
    cond = n.input(0)
    if cond.type.shape != ():
        cond = n.temp("reshape", [cond], {"shape": ()}, hint="cond")
    for i, (then, other) in enumerate(zip(results[True], results[False])):
        a, b = n.ctx.type_of(then), n.ctx.type_of(other)
        if a.shape != b.shape or a.dtype != b.dtype:
            raise n.error(f"output {i}: the branches give {a} and {b}; tcc selects between branches of equal "
                          "static type only (a run-time shape would be needed)")
        if n.output_used(i):
            n.emit("where", [cond, n.ctx.value_of(then), n.ctx.value_of(other)], output=i)


def _const_bool(n: NodeContext, name: str) -> bool | None:
    return bool(np.asarray(n.ctx.consts[name]).reshape(-1)[0]) if n.ctx.is_const(name) else None


def lower_loop(n: NodeContext) -> None:
    body = n.attr("body")
    carried = [n.node.input[i] for i in range(2, n.num_inputs)]
    trips = int(n.const(0, "M").reshape(-1)[0]) if n.has_input(0) else None
    running = _const_bool(n, n.node.input[1]) if n.has_input(1) else True
    if running is None:
        raise n.error("the loop condition is computed at run time; tcc unrolls loops whose trip count is "
                      "known when compiling")
    n_scan = len(body.output) - 1 - len(carried)
    scans: list[list[str]] = [[] for _ in range(n_scan)]
    cond_name = n.node.input[1] if n.has_input(1) else None
    i = 0
    while running and (trips is None or i < trips):
        if i >= MAX_UNROLL:
            raise n.error(f"the loop runs more than {MAX_UNROLL} iterations; tcc does not unroll that far")
        counter = f"{n.loc}/{i}/iteration"
        n.ctx.consts[counter] = np.asarray(i, np.int64)
        cond_in = cond_name or f"{n.loc}/{i}/cond"
        if cond_name is None:
            n.ctx.consts[cond_in] = np.asarray(True)
        outputs = _inline(n, body, [counter, cond_in] + carried, f"{n.loc}/{i}/")
        cond_name, carried = outputs[0], outputs[1:1 + len(carried)]
        for j, name in enumerate(outputs[1 + len(carried):]):
            scans[j].append(name)
        running = _const_bool(n, cond_name)
        if running is None:
            raise n.error(f"the loop condition becomes a run-time value in iteration {i}; tcc unrolls "
                          "loops whose trip count is known when compiling")
        i += 1
    for k, name in enumerate(carried):
        if n.node.output[k]:
            _bind(n.ctx, n.node.output[k], name)
    for j, parts in enumerate(scans):
        _stack(n, len(carried) + j, parts, 0)
    if n_scan and i == 0:
        raise n.error("the loop runs zero times, so its scan outputs have no static shape")


def _stack(n: NodeContext, output: int, parts: list[str], axis: int) -> None:
    """Stack per-iteration tensors along a new ``axis`` as node output ``output``."""
    if not n.output_used(output):
        return
    pieces = []
    for name in parts:
        t = n.ctx.type_of(name)
        shape = list(t.shape)
        shape.insert(normalize_axis(axis, len(shape) + 1), 1)
        pieces.append(n.temp("reshape", [n.ctx.value_of(name)], {"shape": tuple(shape)}, hint="step"))
    n.emit("concat", pieces, {"axis": normalize_axis(axis, len(shape))}, output=output)


def lower_scan(n: NodeContext) -> None:
    if n.opset < 9:
        _lower_batched_scan(n)
        return
    body = n.attr("body")
    n_scan_in = n.attr("num_scan_inputs")
    n_state = n.num_inputs - n_scan_in
    states = [n.node.input[i] for i in range(n_state)]
    scan_inputs = [n.node.input[i] for i in range(n_state, n.num_inputs)]
    in_axes = list(n.attr("scan_input_axes") or [0] * n_scan_in)
    in_dirs = list(n.attr("scan_input_directions") or [0] * n_scan_in)
    n_scan_out = len(body.output) - n_state
    out_axes = list(n.attr("scan_output_axes") or [0] * n_scan_out)
    out_dirs = list(n.attr("scan_output_directions") or [0] * n_scan_out)
    states, outputs = _scan_steps(n, body, states, scan_inputs, in_axes, in_dirs, f"{n.loc}/")
    for k, name in enumerate(states):
        if n.node.output[k]:
            _bind(n.ctx, n.node.output[k], name)
    for j, parts in enumerate(outputs):
        if out_dirs[j]:
            parts = parts[::-1]
        rank = n.ctx.type_of(parts[0]).rank + 1 if parts else 1
        _stack(n, n_state + j, parts, normalize_axis(out_axes[j], rank))


def _scan_steps(n: NodeContext, body: onnx.GraphProto, states: list[str], scan_inputs: list[str],
                in_axes: list[int], in_dirs: list[int], prefix: str) -> tuple[list[str], list[list[str]]]:
    """Unroll one scan: (the final states, each scan output's per-iteration tensors in iteration
    order), as tensor names of the enclosing context."""
    types = [n.ctx.type_of(name) for name in scan_inputs]
    in_axes = [normalize_axis(a, t.rank) for a, t in zip(in_axes, types)]
    lengths = {t.shape[a] for t, a in zip(types, in_axes)}
    if len(lengths) != 1:
        raise n.error(f"scan inputs have different lengths {sorted(lengths)}")
    length = lengths.pop()
    if length > MAX_UNROLL:
        raise n.error(f"the scan runs {length} iterations; tcc does not unroll more than {MAX_UNROLL}")
    outputs: list[list[str]] = [[] for _ in range(len(body.output) - len(states))]
    for t in range(length):
        step = f"{prefix}{t}/"
        slices = []
        for j, (name, axis, direction) in enumerate(zip(scan_inputs, in_axes, in_dirs)):
            index = length - 1 - t if direction else t
            element = f"{step}scan_input{j}"
            n.ctx.values[element] = _take(n, name, axis, index, f"in{j}_{t}")
            slices.append(element)
        produced = _inline(n, body, states + slices, step)
        states = produced[:len(states)]
        for j, name in enumerate(produced[len(states):]):
            outputs[j].append(name)
    return states, outputs


def _take(n: NodeContext, name: str, axis: int, index: int, hint: str):
    """Tensor ``name`` at ``index`` along ``axis``, that axis removed."""
    t = n.ctx.type_of(name)
    part = n.temp("slice", [n.ctx.value_of(name)], {"starts": (index,), "ends": (index + 1,), "axes": (axis,),
                                                    "steps": (1,)}, hint=hint)
    return n.temp("reshape", [part], {"shape": tuple(d for k, d in enumerate(t.shape) if k != axis)}, hint=hint)


def _lower_batched_scan(n: NodeContext) -> None:
    """Scan-8: axis 0 of every state and scan input is a batch, axis 1 the scanned one; each batch
    entry scans on its own (an absent ``sequence_lens``: every entry the full length)."""
    if n.has_input(0):
        raise n.error("Scan-8 with sequence_lens (per-batch lengths) is not supported; leave the input empty")
    body = n.attr("body")
    n_scan_in = n.attr("num_scan_inputs")
    n_state = n.num_inputs - 1 - n_scan_in
    states = [n.node.input[1 + i] for i in range(n_state)]
    scan_inputs = [n.node.input[1 + n_state + i] for i in range(n_scan_in)]
    directions = list(n.attr("directions") or [0] * n_scan_in)
    batch = n.ctx.type_of((states + scan_inputs)[0]).shape[0]
    finals: list[list[str]] = [[] for _ in states]
    scanned: list[list[str]] = [[] for _ in range(len(body.output) - n_state)]
    for b in range(batch):
        prefix = f"{n.loc}/b{b}/"
        entry = []
        for k, name in enumerate(states + scan_inputs):
            entry.append(f"{prefix}entry{k}")
            n.ctx.values[entry[-1]] = _take(n, name, 0, b, f"b{b}_{k}")
        final, outputs = _scan_steps(n, body, entry[:n_state], entry[n_state:], [0] * n_scan_in, directions, prefix)
        for k, name in enumerate(final):
            finals[k].append(name)
        for j, parts in enumerate(outputs):
            scanned[j].append(f"{prefix}scan_output{j}")
            n.ctx.values[scanned[j][-1]] = _stacked(n, parts, 0)
    for k, parts in enumerate(finals + scanned):
        if n.output_used(k):
            n.bind_output(k, _stacked(n, parts, 0))


def _stacked(n: NodeContext, parts: list[str], axis: int):
    """The tensors ``parts`` stacked along a new ``axis`` (an intermediate value)."""
    pieces = []
    for name in parts:
        shape = list(n.ctx.type_of(name).shape)
        shape.insert(axis, 1)
        pieces.append(n.temp("reshape", [n.ctx.value_of(name)], {"shape": tuple(shape)}, hint="step"))
    return n.temp("concat", pieces, {"axis": axis}, hint="stacked")


LOWERINGS = {
    "If": lower_if,
    "Loop": lower_loop,
    "Scan": lower_scan,
}
