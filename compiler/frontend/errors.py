"""Errors of the ONNX frontend: one exception type for everything the user has to fix."""
from __future__ import annotations

from tcc.ir.errors import InternalError, TccError


class FrontendError(TccError):
    """An ONNX model tcc cannot import: unreadable, invalid, or using unsupported ops or attributes."""


class FrontendNote(UserWarning):
    """Something the import did to the model that the user should know (a warning, not an error)."""


def node_label(node) -> str:
    """How messages name an ONNX node: its name, else its first output."""
    if node.name:
        return node.name
    return node.output[0] if len(node.output) else f"<unnamed {node.op_type}>"


def internal_error(where: str, message: str) -> InternalError:
    """A disagreement that is tcc's bug, not the model's (e.g. its type rules versus ONNX's)."""
    return InternalError(f"internal error in the ONNX frontend at {where}: {message}. "
                         "Please report this with the model.")


def format_unsupported(label: str, opset: int, nodes_by_op: dict[str, list[str]]) -> str:
    """One message listing every unsupported op type with the nodes that use it."""
    count = sum(len(names) for names in nodes_by_op.values())
    noun = "node uses an op" if count == 1 else "nodes use ops"
    lines = [f"{label}: {count} {noun} tcc does not support (opset {opset}):"]
    for op_type in sorted(nodes_by_op):
        names = nodes_by_op[op_type]
        word = "node" if len(names) == 1 else "nodes"
        lines.append(f"  {op_type}: {word} " + ", ".join(repr(n) for n in names))
    return "\n".join(lines)
