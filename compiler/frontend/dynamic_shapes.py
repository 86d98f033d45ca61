"""Which ONNX nodes have an output shape that depends on input values known only at run time.

One rule, used when compiling (the nodes from the first such node on become the model's host
tail, ``ir/host_tail.py``), when running the tail (each segment is imported once the values its
shapes depend on are known) and by ``tcc explain``:

- a node of ``DATA_DEPENDENT`` (NonZero, Unique, NonMaxSuppression) whose inputs are not all
  constant: its output size is a function of its data;
- a node with a non-constant input in a slot of ``SHAPE_INPUTS`` (a Reshape's shape, a Range's
  bounds, a Loop's trip count...): its output shape is that input's value;
- a Loop whose body computes its condition from data (a while loop): it runs on the host,
  iteration by iteration; an If with a computed condition whose branches declare outputs of
  different shapes (the condition is then a shape input);
- every node reading a result of one of those.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import onnx

REASON = "output shape depends on input values"
FOLLOWS = "reads a tensor whose shape is known only at run time"
LOOP_REASON = "the loop's trip count depends on input values"

#: Ops whose output size is a function of their data (run by ``ir/interpreter/kernels_dynamic.py``).
DATA_DEPENDENT = frozenset({"NonZero", "Unique", "NonMaxSuppression"})

#: Per op, the inputs whose *values* set the output shape.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
    "Slice": (1, 2, 3, 4), "Pad": (1, 3), "Resize": (2, 3), "Upsample": (1,), "TopK": (1,), "OneHot": (1,),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,), "Compress": (1,),
    "ReduceMax": (1,), "ReduceMin": (1,), "ReduceMean": (1,), "ReduceSum": (1,), "ReduceProd": (1,),
    "ReduceL1": (1,), "ReduceL2": (1,), "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "ReduceSumSquare": (1,),
    "BlackmanWindow": (0,), "HannWindow": (0,), "HammingWindow": (0,), "MelWeightMatrix": (0, 1),
    "DFT": (1, 2), "STFT": (1, 3), "Col2Im": (1, 2), "AffineGrid": (1,), "Loop": (0, 1),
}


def shape_inputs(node: onnx.NodeProto) -> list[str]:
    """The names of ``node``'s inputs whose values set its output shape (an If's condition when
    its branches declare outputs of different static types)."""
    if node.op_type == "If":
        return [node.input[0]] if _branches_differ(node) else []
    return [node.input[i] for i in SHAPE_INPUTS.get(node.op_type, ()) if i < len(node.input) and node.input[i]]


def _branches_differ(node: onnx.NodeProto) -> bool:
    """Whether an If's branches declare some output with different static shapes or element types."""
    branches = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
    if set(branches) != {"then_branch", "else_branch"}:
        return False
    for a, b in zip(branches["then_branch"].output, branches["else_branch"].output):
        ta, tb = a.type.tensor_type, b.type.tensor_type
        if not (a.type.HasField("tensor_type") and b.type.HasField("tensor_type")):
            continue
        if ta.elem_type and tb.elem_type and ta.elem_type != tb.elem_type:
            return True
        da, db = _static_dims(ta), _static_dims(tb)
        if da is not None and db is not None and da != db:
            return True
    return False


def _static_dims(tensor_type) -> tuple[int, ...] | None:
    if not tensor_type.HasField("shape") or not all(d.HasField("dim_value") for d in tensor_type.shape.dim):
        return None
    return tuple(d.dim_value for d in tensor_type.shape.dim)


def dynamic_reason(node: onnx.NodeProto, is_const: Callable[[str], bool]) -> str | None:
    """Why ``node``'s output shape is known only at run time, given which tensors are constant
    (None: it is static)."""
    if node.op_type in DATA_DEPENDENT and not all(is_const(n) for n in node.input if n):
        return REASON
    if any(not is_const(n) for n in shape_inputs(node)):
        return REASON
    if node.op_type == "Loop" and _condition_varies(node, is_const):
        return LOOP_REASON
    return None


def _condition_varies(loop: onnx.NodeProto, is_const: Callable[[str], bool]) -> bool:
    """Whether a Loop body's condition output is computed from data (a while loop), not from the
    iteration number, the incoming condition and constants alone."""
    body = next(a.g for a in loop.attribute if a.name == "body")
    if len(body.input) < 2 or not body.output:
        return False
    known = {body.input[0].name, body.input[1].name} | {t.name for t in body.initializer}
    for inner in body.node:
        reads = [n for n in inner.input if n]
        if inner.op_type == "Constant" or (reads and all(n in known or is_const(n) for n in reads)):
            known.update(o for o in inner.output if o)
    return body.output[0].name not in known


def dynamic_nodes(nodes: Iterable[onnx.NodeProto], is_const: Callable[[str], bool],
                  constants_made: Callable[[onnx.NodeProto], Iterable[str]]) -> dict[int, str]:
    """Index -> reason of every node (in ``nodes``' topological order) that belongs to the host
    tail.  ``constants_made(node)``: the outputs the import makes constants (the importer's own
    folding rule; it may read ``is_const``), asked of the nodes that stay static."""
    dynamic: dict[int, str] = {}
    late: set[str] = set()  # tensors whose shape is known only at run time
    constant: set[str] = set()

    def const(name: str) -> bool:
        return name in constant or is_const(name)

    for i, node in enumerate(nodes):
        if outer_reads(node) & late:
            dynamic[i] = FOLLOWS
        else:
            reason = dynamic_reason(node, const)
            if reason is None:
                constant.update(constants_made(node))
                continue
            dynamic[i] = reason
        late.update(o for o in node.output if o)
    return dynamic


def outer_reads(node: onnx.NodeProto) -> set[str]:
    """The tensors ``node`` reads, its subgraphs' (If/Loop/Scan bodies) reads included; names a
    body defines itself are included too, harmlessly: they never name an outer tensor."""
    names = {n for n in node.input if n}
    for attr in node.attribute:
        for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
            for inner in g.node:
                names |= outer_reads(inner)
    return names
