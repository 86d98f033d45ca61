"""Which ONNX nodes have an output shape that depends on input values known only at run time.

One rule, used when compiling (the nodes from the first such node on become the model's host
tail, ``ir/host_tail.py``), when running the tail (each segment is imported once the values its
shapes depend on are known) and by ``tcc explain``:

- a node of ``DATA_DEPENDENT`` (NonZero, Unique, NonMaxSuppression) whose inputs are not all
  constant: its output size is a function of its data;
- a node with a non-constant input in a slot of ``SHAPE_INPUTS`` (a Reshape's shape, a Range's
  bounds, a Loop's trip count...): its output shape is that input's value;
- every node reading a result of one of those.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import onnx

REASON = "output shape depends on input values"
FOLLOWS = "reads a tensor whose shape is known only at run time"

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
    """The names of ``node``'s inputs whose values set its output shape."""
    return [node.input[i] for i in SHAPE_INPUTS.get(node.op_type, ()) if i < len(node.input) and node.input[i]]


def dynamic_reason(node: onnx.NodeProto, is_const: Callable[[str], bool]) -> str | None:
    """Why ``node``'s output shape is known only at run time, given which tensors are constant
    (None: it is static)."""
    if node.op_type in DATA_DEPENDENT and not all(is_const(n) for n in node.input if n):
        return REASON
    if any(not is_const(n) for n in shape_inputs(node)):
        return REASON
    return None


def dynamic_nodes(nodes: Iterable[onnx.NodeProto], is_const: Callable[[str], bool],
                  constant_after: Callable[[onnx.NodeProto], bool]) -> dict[int, str]:
    """Index -> reason of every node (in ``nodes``' topological order) that belongs to the host
    tail.  ``constant_after(node)``: whether the import makes ``node``'s outputs constants (the
    importer's own folding rule), applied to the nodes that stay static."""
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
                if constant_after(node):
                    constant.update(o for o in node.output if o)
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
