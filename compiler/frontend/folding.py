"""Constant folding with onnx's own reference implementations (``onnx.reference``).

tcc never re-implements ONNX op semantics to fold: a node whose inputs are all constant is run
by the reference op of the model's opset.  ``Shape`` and ``Size`` also fold when their input is
not constant, because every tcc tensor has a static shape: they read only that shape, so they run
on a zero-strided stand-in of the right shape that allocates nothing.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import load_op

from tcc.passes.fold_constants import FoldBudget

from .errors import FrontendError

# Ops never folded: their results are random, or they need a training-mode decision.
NEVER_FOLD = frozenset({
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
    "Bernoulli", "Dropout", "If", "Loop", "Scan", "SequenceMap",
})
# Ops that read only the shape of their (first) input.
SHAPE_ONLY = frozenset({"Shape", "Size"})


def _no_log(*args) -> None:
    pass


class Folder:
    """Evaluates constant ONNX nodes of one model (one default-domain opset)."""

    def __init__(self, opset: int, budget: FoldBudget):
        self.opset = opset
        self.budget = budget
        self._classes: dict[str, type | None] = {}
        self._run_params = {"opsets": {"": opset}, "new_ops": None, "log": _no_log,
                            "evaluator_cls": ReferenceEvaluator}

    def _op_class(self, op_type: str):
        if op_type not in self._classes:
            try:
                cls = load_op("", op_type, self.opset, evaluator_cls=ReferenceEvaluator)
            except Exception:  # load_op signals "no implementation" with several exception types
                cls = None
            self._classes[op_type] = cls
        return self._classes[op_type]

    def can_fold(self, node: onnx.NodeProto) -> bool:
        if node.op_type in NEVER_FOLD or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                             for a in node.attribute):
            return False
        return self._op_class(node.op_type) is not None

    def evaluate(self, node: onnx.NodeProto, inputs: list[np.ndarray | None], where: str,
                 inferred_elements: int | None = None) -> list[np.ndarray]:
        """Run ``node`` on ``inputs`` (None for an absent optional input); one array per output.

        ``inferred_elements``: the output's element count after ONNX shape inference, if known;
        a node whose output would break the folding budget (FoldBudget: per op and for the whole
        model) is refused before it allocates.  A Constant node's value is the model's own data
        (counted in the budget's base), not charged."""
        elements = max(inferred_elements or 0, output_elements(node, inputs) or 0)
        itemsize = max([a.dtype.itemsize for a in inputs if a is not None] + [8])
        charged = node.op_type != "Constant"
        refusal = self.budget.refusal(elements * itemsize) if charged else None
        if refusal:
            raise FrontendError(f"{where}: folding this constant node ({elements} elements) {refusal}; the "
                                "model's shapes are corrupted or absurd")
        try:
            op = self._op_class(node.op_type)(node, self._run_params)
            results = [np.asarray(r) for r in op.run(*inputs)]
        except Exception as exc:  # the reference ops raise whatever numpy raises
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FrontendError(f"{where}: cannot evaluate this constant node with onnx.reference: {detail}") from None
        if charged:
            made = sum(r.nbytes for r in results)
            refusal = self.budget.refusal(made)
            if refusal:
                raise FrontendError(f"{where}: folding this constant node {refusal}; the model's shapes are "
                                    "corrupted or absurd")
            self.budget.charge(made)
        return results


def shape_stand_in(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A read-only array of ``shape`` backed by one element, for ops that only read shapes."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def output_elements(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> int | None:
    """The output size of the ops that make large tensors from small inputs, from their constant
    inputs alone (no allocation); None for other ops or inputs that make no sense (folding reports those)."""
    try:
        if node.op_type == "ConstantOfShape" and inputs and inputs[0] is not None:
            return _product(int(d) for d in inputs[0].reshape(-1))
        if node.op_type == "Expand" and len(inputs) == 2 and inputs[1] is not None:
            shape = [int(d) for d in inputs[1].reshape(-1)]
            ours = list(inputs[0].shape)
            rank = max(len(shape), len(ours))
            shape, ours = [1] * (rank - len(shape)) + shape, [1] * (rank - len(ours)) + ours
            return _product(max(a, b) for a, b in zip(shape, ours))
        if node.op_type == "Tile" and len(inputs) == 2 and inputs[1] is not None:
            return inputs[0].size * _product(int(r) for r in inputs[1].reshape(-1))
        if node.op_type == "Range" and len(inputs) == 3 and all(a is not None for a in inputs):
            start, limit, delta = (float(a.reshape(-1)[0]) for a in inputs)
            return max(int(np.ceil((limit - start) / delta)), 0) if delta else None
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    return None


def _product(values) -> int:
    out = 1
    for v in values:
        out *= max(v, 0)
    return out
