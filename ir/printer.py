"""Textual form of a Module: one generic syntax for every op, constants in a trailing blobs section.

    module @name {
      input %x : f32[1,3,224,224]
      %w = const {value = blob<#0>} : f32[64,3,7,7] loc("conv1")
      %y = conv(%x, %w) {dilations = [1, 1], group = 1, pads = [3, 3, 3, 3], strides = [2, 2]} : f32[1,64,112,112] loc("conv1")
      output "prob" = %y
    }
    blobs {
      #0 = f32[64,3,7,7] "<base64 of the little-endian bytes>"
    }

Constants of up to 16 elements print inline as ``dense<type, [values]>``, larger ones whose
elements are all equal as ``splat<type, value>``, the rest as blobs.

Output is deterministic: attributes sorted by name, blobs numbered in order of appearance.
"""
from __future__ import annotations

import base64
import re

import numpy as np

from .core import Module, Op
from .dtypes import from_numpy
from .escape import ir_string
from .types import TensorType, format_list, format_scalar, format_type

INLINE_TENSOR_LIMIT = 16
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|[0-9]+")


def format_name(name: str) -> str:
    return name if _BARE.fullmatch(name) else ir_string(name)


def _is_splat(value: np.ndarray) -> bool:
    """All elements equal. A zero-stride view (what the parser returns for ``splat<...>``) is one
    by construction; checking it element by element would materialise a possibly huge array."""
    if all(stride == 0 for stride in value.strides):
        return True
    flat = value.reshape(-1)
    return bool((flat == flat[0]).all())


class Printer:
    def __init__(self, elide_blobs: bool = False):
        self.blobs: list[np.ndarray] = []
        self.elide_blobs = elide_blobs

    def format_attr(self, value) -> str:
        if isinstance(value, np.ndarray):
            ttype = TensorType(tuple(int(d) for d in value.shape), from_numpy(value.dtype))
            if value.size <= INLINE_TENSOR_LIMIT:
                return f"dense<{format_type(ttype)}, {format_list(value.reshape(-1).tolist())}>"
            if _is_splat(value):
                return f"splat<{format_type(ttype)}, {format_scalar(value.flat[0].item())}>"
            self.blobs.append(value)
            return f"blob<#{len(self.blobs) - 1}>"
        if isinstance(value, str):
            return ir_string(value)
        if isinstance(value, tuple):
            return format_list(value)
        return format_scalar(value)

    def format_op(self, op: Op) -> str:
        results = ", ".join("%" + format_name(r.name) for r in op.results)
        operands = ", ".join("%" + format_name(v.name) for v in op.operands)
        text = f"{results} = {op.kind}({operands})"
        if op.attrs:
            attrs = ", ".join(f"{k} = {self.format_attr(op.attrs[k])}" for k in sorted(op.attrs))
            text += " {" + attrs + "}"
        text += " : " + ", ".join(format_type(r.type) for r in op.results)
        if op.loc:
            text += f" loc({ir_string(op.loc)})"
        return text

    def format_blob(self, index: int, value: np.ndarray) -> str:
        ttype = TensorType(tuple(int(d) for d in value.shape), from_numpy(value.dtype))
        if self.elide_blobs:
            payload = "__elided__"
        else:
            data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
            payload = base64.b64encode(data.tobytes()).decode("ascii")
        return f"  #{index} = {format_type(ttype)} \"{payload}\""

    def print_module(self, module: Module) -> str:
        lines = [f"module @{format_name(module.name)} {{"]
        for v in module.inputs:
            lines.append(f"  input %{format_name(v.name)} : {format_type(v.type)}")
        for op in module.ops:
            lines.append("  " + self.format_op(op))
        for name, v in module.outputs:
            lines.append(f"  output {ir_string(name)} = %{format_name(v.name)}")
        lines.append("}")
        if module.host_tail is not None:
            lines.append(module.host_tail.format())
        if self.blobs:
            lines.append("blobs {")
            lines.extend(self.format_blob(i, b) for i, b in enumerate(self.blobs))
            lines.append("}")
        return "\n".join(lines) + "\n"


def print_module(module: Module, elide_blobs: bool = False) -> str:
    """The module's textual IR; with ``elide_blobs`` large constants print as ``__elided__``
    (readable, but such text does not parse back)."""
    return Printer(elide_blobs).print_module(module)
