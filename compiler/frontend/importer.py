"""``import_onnx``: ONNX model -> tcc IR module.

Every node is either folded (all inputs constant: evaluated by ``onnx.reference``), lowered
(a function of the registry builds IR ops) or unsupported.  All unsupported nodes are found
before anything is built, so one error lists them all.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tcc.ir import Module, verify
from tcc.ir.dtypes import to_numpy
from tcc.ir.errors import VerifyError
from tcc.ir.shape_rules import ShapeError
from tcc.passes.fold_constants import FoldBudget

from .context import ImportContext, NodeContext
from .dynamic_shapes import DATA_DEPENDENT, dynamic_nodes, outer_reads
from .tail_cut import cut_tail
from .errors import FrontendError, format_unsupported, internal_error, node_label
from .folding import SHAPE_ONLY, Folder, shape_stand_in
from .loader import LoadedModel, load_model
from .lowering_qdq import fold_activation_pairs
from .onnx_types import static_shape
from .registry import LOWER_EVEN_IF_CONSTANT, LOWERINGS, PASS_THROUGH

FOLD, LOWER, UNSUPPORTED = "fold", "lower", "unsupported"


def import_onnx(model, input_shapes: dict[str, tuple[int, ...]] | None = None,
                name: str | None = None, host_tail: bool = False) -> Module:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as a verified tcc module.

    ``input_shapes`` binds the dynamic dims of the model inputs (input name -> full shape).
    ``host_tail``: nodes whose output shape depends on run-time values (``dynamic_shapes.py``),
    and all that follows them, become the module's host tail (``ir/host_tail.py``; run it with
    ``run_model``) instead of being refused.
    """
    try:
        return _import(model, input_shapes, name, host_tail)
    except UnicodeDecodeError as exc:  # protobuf decodes string fields (names) lazily
        raise FrontendError(f"{model if isinstance(model, (str, Path)) else '<onnx model>'}: a name or string "
                            f"in the model is not valid UTF-8 ({exc.reason} at byte {exc.start}); the file is "
                            "corrupted. Re-export or re-download it.") from None


def _import(model, input_shapes, name, host_tail: bool) -> Module:
    loaded = load_model(model, input_shapes, supported=_lowered_or_folded)
    ctx = ImportContext(loaded, name or _default_name(model, loaded))
    folder = Folder(loaded.opset, FoldBudget(_own_constant_bytes(ctx)))
    ctx.import_node = lambda node: import_node(ctx, folder, node)
    tail = _tail_nodes(ctx, folder) if host_tail else {}
    _reject_unsupported(ctx, folder, tail)
    for i, node in enumerate(loaded.model.graph.node):
        if i not in tail and not import_node(ctx, folder, node):
            raise internal_error(node_label(node), f"{node.op_type} node passed the support check but "
                                                   "can be neither folded nor lowered")
    made_late = {o for i in tail for o in loaded.model.graph.node[i].output}
    if any(output.name in made_late for output in loaded.model.graph.output):
        ctx.module.host_tail = cut_tail(ctx, tail)
    else:  # no tail, or one that makes no output (nothing else reads it): nothing to run
        for output in loaded.model.graph.output:
            ctx.module.add_output(output.name, ctx.value_of(output.name))
    fold_activation_pairs(ctx.module, loaded.label)
    try:
        verify(ctx.module)
    except VerifyError as exc:
        raise internal_error(loaded.label, f"the imported module does not verify: {exc}") from None
    return ctx.module


def import_node(ctx: ImportContext, folder: Folder, node: onnx.NodeProto) -> bool:
    """Fold or lower one node; False when it can be neither."""
    action = _decide(node, ctx.is_const, folder)
    if action == FOLD:
        _fold(ctx, folder, node)
    elif action == LOWER:
        _lower(ctx, node)
    return action != UNSUPPORTED


def _lowered_or_folded(op_type: str) -> bool:
    """Ops the import handles without ONNX's function body: lowered ones, and those onnx.reference
    folds that have no function body worth expanding (Shape, Size, Constant, ...)."""
    return op_type in LOWERINGS or op_type in _FOLD_ONLY


_FOLD_ONLY = frozenset({"Constant", "Shape", "Size", "ConstantOfShape", "Range"})


def _own_constant_bytes(ctx: ImportContext) -> int:
    """The bytes of constant data the model holds: initializers and Constant nodes' values."""
    total = sum(array.nbytes for array in ctx.consts.values())
    for node in ctx.loaded.model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.TENSOR:
                    tensor = attribute.t
                    itemsize = (onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
                                if tensor.data_type in onnx.helper.get_all_tensor_dtypes() else 8)
                    total += int(np.prod(tensor.dims, dtype=object)) * itemsize
    return total


def _default_name(model, loaded: LoadedModel) -> str:
    if isinstance(model, (str, Path)):
        return Path(model).stem
    return loaded.model.graph.name or "main"


def _decide(node: onnx.NodeProto, is_const, folder: Folder) -> str:
    if folder.can_fold(node) and node.op_type not in LOWER_EVEN_IF_CONSTANT:
        if all(is_const(name) for name in node.input if name):
            return FOLD
        if node.op_type in SHAPE_ONLY:  # every tcc value has a static shape
            return FOLD
    if node.op_type in LOWERINGS:
        return LOWER
    return UNSUPPORTED


def _reject_unsupported(ctx: ImportContext, folder: Folder, tail: dict[int, str]) -> None:
    """Raise one error naming every node tcc can neither fold nor lower (nor, in the host tail,
    run at run time)."""
    constant = set(ctx.consts)
    unsupported: dict[str, list[str]] = {}
    for i, node in enumerate(ctx.loaded.model.graph.node):
        if i in tail:
            if not runs_in_tail(node, folder):
                unsupported.setdefault(node.op_type, []).append(node_label(node))
            continue
        if _decide(node, constant.__contains__, folder) == UNSUPPORTED:
            unsupported.setdefault(node.op_type, []).append(node_label(node))
        else:
            constant.update(_constants_made(node, constant.__contains__, folder))
    if unsupported:
        raise FrontendError(format_unsupported(ctx.loaded.label, ctx.loaded.opset, unsupported))


def _constants_made(node: onnx.NodeProto, is_const, folder: Folder) -> list[str]:
    """The outputs that importing ``node`` makes constants (folded, or passed through from one)."""
    action = _decide(node, is_const, folder)
    if action == FOLD or (node.op_type in LOWER_EVEN_IF_CONSTANT and all(is_const(n) for n in node.input if n)):
        return [o for o in node.output if o]
    if node.op_type in PASS_THROUGH and node.input and is_const(node.input[0]):
        return [node.output[0]]
    constant = {n for n in outer_reads(node) if is_const(n)}
    if node.op_type == "If" and is_const(node.input[0]) and all(  # either inlined branch is constants only
            _branch_folds(a.g, constant, folder) for a in node.attribute if a.type == onnx.AttributeProto.GRAPH):
        return [o for o in node.output if o]
    return []


def _tail_nodes(ctx: ImportContext, folder: Folder) -> dict[int, str]:
    """Index -> reason of the nodes that go to the host tail (``dynamic_shapes.py``)."""
    constant = set(ctx.consts)

    def made(node: onnx.NodeProto) -> list[str]:
        names = _constants_made(node, constant.__contains__, folder)
        constant.update(names)
        return names

    return dynamic_nodes(ctx.loaded.model.graph.node, constant.__contains__, made)


def runs_in_tail(node: onnx.NodeProto, folder: Folder) -> bool:
    """Whether the host tail can run ``node`` once its shape inputs are known: a host kernel,
    a lowering, or folding."""
    return node.op_type in DATA_DEPENDENT or node.op_type in LOWERINGS or folder.can_fold(node)


def _branch_folds(graph: onnx.GraphProto, outer_constant: set[str], folder: Folder) -> bool:
    """Whether every output of an If branch folds to a constant, given the enclosing constants."""
    constant = set(outer_constant) | {t.name for t in graph.initializer}
    for node in graph.node:
        if _decide(node, constant.__contains__, folder) == FOLD:
            constant.update(node.output)
        elif node.op_type in PASS_THROUGH and node.input and node.input[0] in constant:
            constant.add(node.output[0])
    return all(o.name in constant for o in graph.output)


def _fold(ctx: ImportContext, folder: Folder, node: onnx.NodeProto) -> None:
    where = NodeContext(ctx, node).where
    inputs: list = []
    for name in node.input:
        if not name:
            inputs.append(None)
        elif ctx.is_const(name):
            inputs.append(ctx.consts[name])
        else:  # Shape/Size of a computed tensor: only its static shape matters
            tensor_type = ctx.type_of(name)
            inputs.append(shape_stand_in(tensor_type.shape, to_numpy(tensor_type.dtype)))
    results = folder.evaluate(node, inputs, where, _inferred_elements(ctx, node))
    for name, array in zip(node.output, results):
        if not name:
            continue
        expected = ctx.onnx_dtype(name)
        if expected is not None and array.dtype != expected:
            array = array.astype(expected)  # reference ops sometimes widen scalars
        ctx.check_against_onnx(name, array.shape, None, where)
        ctx.consts[name] = array
        ctx.const_locs[name] = node_label(node)


def _inferred_elements(ctx: ImportContext, node: onnx.NodeProto) -> int | None:
    """The largest output of ``node`` by ONNX shape inference (None when no output shape is known)."""
    sizes = []
    for name in node.output:
        inferred = ctx.loaded.inferred.get(name)
        shape = static_shape(inferred) if inferred is not None else None
        if shape is not None:
            sizes.append(int(np.prod(shape, dtype=object)))
    return max(sizes, default=None)


def _lower(ctx: ImportContext, node: onnx.NodeProto) -> None:
    n = NodeContext(ctx, node)
    try:
        LOWERINGS[node.op_type](n)
    except ShapeError as exc:  # an attribute (axis, perm, ...) that does not fit the operand shapes
        raise n.error(str(exc)) from None
    for i, name in enumerate(node.output):
        if name in ctx.values:
            value = ctx.values[name]
            ctx.check_against_onnx(name, value.type.shape, value.type.dtype, n.where)
        elif name in ctx.consts:
            ctx.check_against_onnx(name, ctx.consts[name].shape, None, n.where)
        elif n.output_used(i):
            raise internal_error(n.where, f"output {name!r} was not produced by its lowering")
