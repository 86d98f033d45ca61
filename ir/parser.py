"""Parse textual IR (see printer.py) back into a Module; errors name ``file:line:col``."""
from __future__ import annotations

import base64
import json
import re
from functools import lru_cache
from importlib import resources

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from .core import Module, Op
from .dtypes import DTYPES, cast, to_numpy
from .errors import IRParseError
from .host_tail import parse_host_tail
from .opdef import OP_DEFS, normalize_attr
from .types import QuantParams, TensorType

_BLOBS_START = re.compile(r"^blobs \{$", re.M)
_HOST_TAIL_START = re.compile(r"^host_tail \{$", re.M)
_BLOB_LINE = re.compile(r'^\s*#([0-9]+) = ([A-Za-z0-9_]+)\[([0-9,]*)\] "([A-Za-z0-9+/=]*)"\s*$')


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("textual_ir.lark").read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=True)


class _Builder:
    """Turns the parse tree into a Module, checking names, op kinds and attributes."""

    def __init__(self, filename: str, blobs: dict[int, np.ndarray]):
        self.filename = filename
        self.blobs = blobs
        self.values: dict[str, object] = {}

    def error(self, token, message: str) -> IRParseError:
        line = getattr(token, "line", "?")
        col = getattr(token, "column", "?")
        return IRParseError(f"{self.filename}:{line}:{col}: {message}")

    # -- leaves --------------------------------------------------------------------------------
    def name(self, node) -> tuple[str, Token]:
        """The name in a ``%name`` / ``@name`` token (bare or JSON-quoted)."""
        tok = node.children[0] if isinstance(node, Tree) else node
        text = str(tok)[1:]
        return (json.loads(text) if text.startswith('"') else text), tok  # type: ignore[return-value]

    def value_ref(self, node):
        name, tok = self.name(node.children[0])
        if name not in self.values:
            raise self.error(tok, f"use of undefined value %{name}")
        return self.values[name]

    def scalar(self, node):
        tok = node.children[0]
        if node.data == "int_value":
            return int(tok)
        return float(str(tok))

    def type(self, node) -> TensorType:
        dtype_tok, *rest = node.children
        quant_node = rest[-1]
        dims = [int(d) for d in rest[:-1] if d is not None]
        if str(dtype_tok) not in DTYPES:
            raise self.error(dtype_tok, f"unknown element type {str(dtype_tok)!r} (known: {', '.join(DTYPES)})")
        if any(d < 0 for d in dims):
            raise self.error(dtype_tok, "negative dimension in shape")
        quant = self.quant(quant_node) if quant_node is not None else None
        return TensorType(tuple(dims), str(dtype_tok), quant)

    def quant(self, node) -> QuantParams:
        fields = {}
        for f in node.children:
            key, val = f.children
            fields[str(key)] = self.attr_value(val)
        unknown = set(fields) - {"axis", "scale", "zero_point", "format", "caps"}
        if unknown:
            raise self.error(node.children[0].children[0], f"unknown quantization field(s) {sorted(unknown)}")
        fmt = fields.get("format")
        try:
            if "axis" in fields:
                caps = None if "caps" not in fields else tuple(int(c) for c in fields["caps"])
                return QuantParams(tuple(float(s) for s in fields["scale"]),
                                   tuple(int(z) for z in fields["zero_point"]), int(fields["axis"]), fmt, caps)
            if "caps" in fields:
                raise ValueError("caps need per-channel quantization (an axis)")
            return QuantParams((float(fields["scale"]),), (int(fields["zero_point"]),), None, fmt)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise self.error(node.children[0].children[0], f"bad quantization parameters: {exc}") from None

    def attr_value(self, node):
        if isinstance(node, Token):  # STRING
            return json.loads(str(node))
        if node.data in ("int_value", "float_value"):
            return self.scalar(node)
        if node.data == "list":
            return tuple(self.scalar(c) for c in node.children if c is not None)
        if node.data == "dense":
            ttype = self.type(node.children[0])
            items = [self.scalar(c) for c in node.children[1].children if c is not None]
            if len(items) != ttype.size:
                raise self.error(node.children[0].children[0],
                                 f"dense literal has {len(items)} elements, its type {ttype.size}")
            try:
                with np.errstate(over="raise"):  # 1e300 in an f16 literal is an error, not a silent inf
                    return np.array(items, dtype=to_numpy(ttype.dtype)).reshape(ttype.shape)
            except (OverflowError, FloatingPointError) as exc:
                raise self.error(node.children[0].children[0], f"dense literal value out of range: {exc}") from None
        if node.data == "splat":
            ttype = self.type(node.children[0])
            try:
                with np.errstate(over="raise"):
                    scalar = np.array(self.scalar(node.children[1]), dtype=to_numpy(ttype.dtype))
            except (OverflowError, FloatingPointError) as exc:
                raise self.error(node.children[0].children[0], f"splat value out of range: {exc}") from None
            # A read-only view of one element: a huge declared shape allocates nothing here.
            return np.broadcast_to(scalar, ttype.shape)
        if node.data == "blob_ref":
            tok = node.children[0]
            index = int(str(tok)[1:])
            if index not in self.blobs:
                raise self.error(tok, f"blob {tok} is not defined in the blobs section")
            return self.blobs[index]
        raise self.error(None, f"unexpected attribute value {node.data}")

    # -- statements ----------------------------------------------------------------------------
    def define(self, node, value) -> None:
        name, tok = self.name(node.children[0])
        if name in self.values:
            raise self.error(tok, f"value %{name} is defined twice")
        value.name = name
        self.values[name] = value

    def build(self, tree: Tree) -> Module:
        mod_name, _ = self.name(tree.children[0])
        module = Module(mod_name)
        for item in tree.children[1:]:
            if item.data == "input":
                name, tok = self.name(item.children[0])
                if name in self.values:
                    raise self.error(tok, f"value %{name} is defined twice")
                self.values[name] = module.add_input(name, self.type(item.children[1]))
            elif item.data == "output":
                module.add_output(json.loads(str(item.children[0])), self.value_ref(item.children[1]))
            else:
                module.insert_op(self.op(item))
        return module

    def op(self, node) -> Op:
        results, kind_tok, operands, attr_dict, types, loc = node.children
        kind = str(kind_tok)
        opdef = OP_DEFS.get(kind)
        if opdef is None:
            raise self.error(kind_tok, f"unknown op kind {kind!r}")
        operand_values = [self.value_ref(v) for v in operands.children] if operands is not None else []
        attrs = {}
        for attr in (attr_dict.children if attr_dict is not None else []):
            if attr is None:
                continue
            key_tok, val = attr.children
            spec = opdef.attr(str(key_tok))
            if spec is None:
                raise self.error(key_tok, f"op {kind} has no attribute {str(key_tok)!r}")
            if str(key_tok) in attrs:
                raise self.error(key_tok, f"attribute {str(key_tok)!r} given twice")
            try:
                attrs[spec.name] = normalize_attr(spec.kind, self.attr_value(val))
            except (TypeError, ValueError, OverflowError) as exc:
                raise self.error(key_tok, f"attribute {spec.name!r} is not a valid {spec.kind}: {exc}") from None
        result_types = [self.type(t) for t in types.children]
        if len(result_types) != len(results.children):
            raise self.error(kind_tok, f"{len(results.children)} results but {len(result_types)} types")
        loc_text = json.loads(str(loc.children[0])) if loc is not None else ""
        op = Op(kind, operand_values, result_types, attrs, loc_text)
        for r, v in zip(op.results, results.children):
            self.define(v, r)
        return op


def _parse_blobs(text: str, first_line: int, filename: str) -> dict[int, np.ndarray]:
    blobs: dict[int, np.ndarray] = {}
    lines = text.split("\n")
    for offset, line in enumerate(lines[1:], start=1):
        lineno = first_line + offset
        if line.strip() in ("}", ""):
            if line.strip() == "}" and any(rest.strip() for rest in lines[offset + 1:]):
                raise IRParseError(f"{filename}:{lineno + 1}:1: text after the blobs section")
            if line.strip() == "}":
                return blobs
            continue
        m = _BLOB_LINE.match(line)
        if not m:
            raise IRParseError(f"{filename}:{lineno}:1: malformed blob line "
                               f"(expected: #N = dtype[dims] \"base64\")")
        index, dtype, dims, payload = int(m[1]), m[2], m[3], m[4]
        if dtype not in DTYPES:
            raise IRParseError(f"{filename}:{lineno}:1: unknown element type {dtype!r}")
        if not re.fullmatch(r"(?:[0-9]+(?:,[0-9]+)*)?", dims):
            raise IRParseError(f"{filename}:{lineno}:1: blob #{index} has a malformed shape [{dims}]")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        try:
            raw = base64.b64decode(payload, validate=True)
        except ValueError:
            raise IRParseError(f"{filename}:{lineno}:1: blob #{index} is not valid base64") from None
        np_dtype = to_numpy(dtype).newbyteorder("<")
        expected = int(np.prod(shape, dtype=object)) * np_dtype.itemsize  # Python ints: no wrap-around
        if len(raw) != expected:
            raise IRParseError(f"{filename}:{lineno}:1: blob #{index} holds {len(raw)} bytes, "
                               f"its type {dtype}{list(shape)} needs {expected}")
        blobs[index] = cast(np.frombuffer(raw, dtype=np_dtype), dtype).reshape(shape)
    raise IRParseError(f"{filename}:{first_line}:1: blobs section is not closed by '}}'")


def parse_module(text: str, filename: str = "<string>") -> Module:
    """Parse the textual IR of one module."""
    m = _BLOBS_START.search(text)
    body = text[:m.start()] if m else text
    blobs = _parse_blobs(text[m.start():], body.count("\n") + 1, filename) if m else {}
    tail_start = _HOST_TAIL_START.search(body)
    tail = None
    if tail_start:
        try:
            tail = parse_host_tail(body[tail_start.start():], body[:tail_start.start()].count("\n") + 1, filename)
        except ValueError as exc:
            raise IRParseError(str(exc)) from None
        body = body[:tail_start.start()]
    try:
        tree = _lark().parse(body)
    except UnexpectedInput as exc:
        context = exc.get_context(body, span=40).rstrip("\n")
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
        hint = f"; expected one of {', '.join(expected[:8])}" if expected else ""
        raise IRParseError(f"{filename}:{exc.line}:{exc.column}: syntax error{hint}\n{context}") from None
    try:
        module = _Builder(filename, blobs).build(tree)
    except ValueError as exc:
        raise IRParseError(f"{filename}: {exc}") from None
    module.host_tail = tail
    return module
