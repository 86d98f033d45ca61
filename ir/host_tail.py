"""A module's host tail: the part of a model whose tensor shapes are known only at run time.

tcc's IR is static-shape.  When an ONNX node's output shape depends on input *values* (NonZero,
Unique, NonMaxSuppression, a Range or Expand whose bounds are computed, a Loop with a computed
trip count), that node and everything reading its results are kept as an ONNX graph beside the
module: the module computes the static part and outputs the tensors the tail reads; the tail is
imported and run on the host once those tensors, hence its shapes, are known (the frontend's
``host_tail`` runner).  The IR carries the tail as data and never interprets it.

Textual form, after the module body (before any blobs):

    host_tail {
      input "boxes"
      output "selected"
      node "nms" "NonMaxSuppression" "output shape depends on input values"
      onnx "<base64 of the ONNX ModelProto>"
    }
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from .escape import ir_string

_LINE = re.compile(r'^\s*(input|output|node|onnx)((?:\s+"(?:[^"\\]|\\.)*")+)\s*$')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class TailNode:
    """One ONNX node of the tail, and why it runs there."""

    name: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class HostTail:
    inputs: tuple[str, ...]  # tensors it reads: module inputs or module outputs, by name
    outputs: tuple[str, ...]  # the whole model's outputs in order: made by the tail or module outputs
    nodes: tuple[TailNode, ...]
    onnx: bytes  # a serialized ModelProto: graph inputs ``inputs``, outputs those of ``outputs`` it makes

    def format(self) -> str:
        lines = ["host_tail {"]
        lines += [f"  input {ir_string(n)}" for n in self.inputs]
        lines += [f"  output {ir_string(n)}" for n in self.outputs]
        lines += [f"  node {ir_string(n.name)} {ir_string(n.op_type)} {ir_string(n.reason)}" for n in self.nodes]
        lines.append(f'  onnx "{base64.b64encode(self.onnx).decode("ascii")}"')
        lines.append("}")
        return "\n".join(lines)


def parse_host_tail(text: str, first_line: int, filename: str) -> HostTail:
    """The ``host_tail { ... }`` section starting at line ``first_line`` of ``filename``."""
    inputs: list[str] = []
    outputs: list[str] = []
    nodes: list[TailNode] = []
    data: bytes | None = None
    lines = text.rstrip("\n").split("\n")
    if lines[-1].strip() != "}":
        raise ValueError(f"{filename}:{first_line + len(lines) - 1}: the host_tail section does not end with '}}'")
    for offset, line in enumerate(lines[1:-1], start=1):
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"{filename}:{first_line + offset}: not a host_tail line (input, output, node, onnx)")
        words = [json.loads(s) for s in _STRING.findall(m.group(2))]
        arity = {"input": 1, "output": 1, "node": 3, "onnx": 1}[m.group(1)]
        if len(words) != arity:
            raise ValueError(f"{filename}:{first_line + offset}: {m.group(1)} takes {arity} string(s)")
        if m.group(1) == "input":
            inputs.append(words[0])
        elif m.group(1) == "output":
            outputs.append(words[0])
        elif m.group(1) == "node":
            nodes.append(TailNode(*words))
        else:
            try:
                data = base64.b64decode(words[0], validate=True)
            except ValueError:
                raise ValueError(f"{filename}:{first_line + offset}: the onnx payload is not base64") from None
    if data is None:
        raise ValueError(f"{filename}:{first_line}: the host_tail section has no onnx line")
    return HostTail(tuple(inputs), tuple(outputs), tuple(nodes), data)
