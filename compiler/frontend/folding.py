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

    def __init__(self, opset: int):
        self.opset = opset
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

    def evaluate(self, node: onnx.NodeProto, inputs: list[np.ndarray | None], where: str) -> list[np.ndarray]:
        """Run ``node`` on ``inputs`` (None for an absent optional input); one array per output."""
        try:
            op = self._op_class(node.op_type)(node, self._run_params)
            results = op.run(*inputs)
        except Exception as exc:  # the reference ops raise whatever numpy raises
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FrontendError(f"{where}: cannot evaluate this constant node with onnx.reference: {detail}") from None
        return [np.asarray(r) for r in results]


def shape_stand_in(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A read-only array of ``shape`` backed by one element, for ops that only read shapes."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)
