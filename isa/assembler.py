"""Assembly text to instructions (grammar in ``assembly.lark``); binary program files.

Syntax, one instruction per line::

    setr mm.m, 49                   ; registers and enum values by name
    load wbuf, 0x100, 0x2000        # numbers decimal or hex, negative allowed
    matmul mode=conv, accumulate=1, wfmt=int8, wcap=0, acc=0, w=0x100

Operands are positional in table field order, or ``field=value`` after the positional ones.
Comments run from ``;`` or ``#`` to the end of the line.  Errors name ``file:line:col``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from tcc.ir.fileio import write_atomic

from .encoding import (LAYOUTS, EncodingError, Instruction, Layout, Slot, check_operand, did_you_mean, encode_program,
                       register_value_error)
from .errors import AssemblyError, IsaError

_TERMINAL_WORDS = {"NAME": "a name", "NUMBER": "a number", "COMMA": "','", "EQUAL": "'='",
                   "_NL": "end of line", "$END": "end of file"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("assembly.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=False)


def assemble(text: str, filename: str = "<string>") -> list[Instruction]:
    """The instructions of ``text``; AssemblyError at the first problem."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise AssemblyError(filename, exc.line, exc.column, _syntax_message(exc)) from None
    return [_Line(filename, node.children).instruction() for node in tree.children]  # type: ignore[union-attr]


def _syntax_message(exc: UnexpectedInput) -> str:
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character {exc.char!r}"
    expected = sorted({_TERMINAL_WORDS.get(name, name) for name in getattr(exc, "expected", ())})
    got = ""
    if isinstance(exc, UnexpectedToken):
        got = f", got {_TERMINAL_WORDS[exc.token.type]}" if exc.token.type in ("_NL", "$END") else f", got {str(exc.token)!r}"
    return f"expected {' or '.join(expected)}{got}" if expected else f"syntax error{got}"


class _Line:
    """One parsed instruction line: checks its operands against the table, naming their positions."""

    def __init__(self, filename: str, children: list):
        self.filename = filename
        self.mnemonic_token: Token = children[0]
        self.operands = children[1:]

    def error(self, token: Token, message: str) -> AssemblyError:
        return AssemblyError(self.filename, token.line, token.column, message)

    def instruction(self) -> Instruction:
        mnemonic = str(self.mnemonic_token)
        layout = LAYOUTS.get(mnemonic)
        if layout is None:
            raise self.error(self.mnemonic_token, f"unknown mnemonic {mnemonic!r}{did_you_mean(mnemonic, LAYOUTS)}")
        values: list = [None] * len(layout.slots)
        seen_keyword = False
        for i, operand in enumerate(self.operands):
            if operand.data == "keyword":
                name_token, value_node = operand.children
                position = self.keyword_position(layout, name_token)
                if values[position] is not None:
                    raise self.error(name_token, f"{mnemonic}: field {name_token} is given twice")
                seen_keyword = True
            else:
                value_node, position = operand, i
                if seen_keyword:
                    raise self.error(value_node.children[0], "positional operand after a field=value operand")
                if position >= len(layout.slots):
                    raise self.error(value_node.children[0], layout.count_message(len(self.operands)))
            values[position] = self.value(layout, layout.slots[position], value_node.children[0])
        if any(v is None for v in values):
            if not seen_keyword:
                raise self.error(self.mnemonic_token, layout.count_message(len(self.operands)))
            missing = [s.field.name for s, v in zip(layout.slots, values) if v is None]
            raise self.error(self.mnemonic_token, f"{mnemonic}: missing field(s) {', '.join(missing)}")
        if mnemonic == "setr" and (problem := register_value_error(str(values[0]), int(values[1]))):
            raise self.error(self.mnemonic_token, problem)
        return Instruction._checked(mnemonic, tuple(values))  # each operand passed check_operand

    def keyword_position(self, layout: Layout, name_token: Token) -> int:
        name = str(name_token)
        if name not in layout.position:
            raise self.error(name_token, f"{layout.mnemonic} has no field {name!r}{did_you_mean(name, layout.position)}; "
                                         f"fields: {layout.field_list()}")
        return layout.position[name]

    def value(self, layout: Layout, slot: Slot, token: Token) -> int | str:
        where = f"{layout.mnemonic}: field {slot.field.name}"
        if token.type == "NUMBER" and slot.names:
            what = "a register name" if slot.field.kind == "reg" else f"one of {', '.join(slot.names)}"
            raise self.error(token, f"{where} takes {what}, got the number {token}")
        if token.type == "NAME" and not slot.names:
            raise self.error(token, f"{where} takes a number, got {str(token)!r}")
        value = _parse_number(str(token)) if token.type == "NUMBER" else str(token)
        try:
            return check_operand(layout, slot, value)
        except EncodingError as exc:
            raise self.error(token, str(exc)) from None


def _parse_number(text: str) -> int:
    return int(text, 16) if "x" in text.lower() else int(text, 10)


def assemble_file(path) -> np.ndarray:
    """The uint64 words of an assembly file; errors name ``path:line:col``."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise IsaError(f"cannot read assembly file {path}: {exc}") from None
    return encode_program(assemble(text, filename=str(path)))


def write_binary(words, path) -> None:
    """Write words as raw little-endian 64-bit values (atomically: a failed write keeps the old file)."""
    write_atomic(path, np.asarray(words, dtype=np.uint64).astype("<u8").tobytes())


def read_binary(path) -> np.ndarray:
    """The uint64 words of a raw little-endian program file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise IsaError(f"cannot read program file {path}: {exc}") from None
    if len(data) % 8:
        raise IsaError(f"{path}: {len(data)} bytes is not a whole number of 64-bit words")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)
