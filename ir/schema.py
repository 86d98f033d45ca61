"""The shape of an artifact's metadata (JSON), declared as data and checked on load.

Each artifact loader declares what its runtime reads (``Record`` of named fields, ``List`` of
items, ``Map`` from names to values, integers with a range, strings, numbers) and calls
``check``, which names the first field that is missing or of the wrong kind (``layers[3].macs``)
so a corrupted or hand-edited artifact is refused with a message instead of a KeyError later.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol


class SchemaError(ValueError):
    """A metadata field that does not fit the schema; the message names the field."""


class Schema(Protocol):
    def check(self, value, where: str) -> None: ...


@dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None

    def check(self, value, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError(f"{where} is {_show(value)}, not an integer")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            low = "" if self.min is None else f"{self.min} <= "
            high = "" if self.max is None else f" <= {self.max}"
            raise SchemaError(f"{where} = {value} is out of range ({low}{where.rsplit('.', 1)[-1]}{high})")


@dataclass(frozen=True)
class Number:
    positive: bool = False  # and finite: a rate or clock the reader divides by

    def check(self, value, where: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            raise SchemaError(f"{where} is {_show(value)}, not a number")
        if self.positive and not 0 < value < math.inf:
            raise SchemaError(f"{where} is {_show(value)}, not a positive finite number")


@dataclass(frozen=True)
class Str:
    def check(self, value, where: str) -> None:
        if not isinstance(value, str):
            raise SchemaError(f"{where} is {_show(value)}, not a string")


@dataclass(frozen=True)
class Nullable:
    item: Schema

    def check(self, value, where: str) -> None:
        if value is not None:
            self.item.check(value, where)


@dataclass(frozen=True)
class List:
    item: Schema

    def check(self, value, where: str) -> None:
        if not isinstance(value, list):
            raise SchemaError(f"{where} is {_show(value)}, not a list")
        for i, entry in enumerate(value):
            self.item.check(entry, f"{where}[{i}]")


@dataclass(frozen=True)
class Map:
    """An object with any string keys, each value of one kind."""

    item: Schema

    def check(self, value, where: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} is {_show(value)}, not an object")
        for key, entry in value.items():
            self.item.check(entry, f"{where}[{key!r}]")


@dataclass(frozen=True)
class Record:
    """An object with these required fields (and optional ones); other keys are left alone."""

    fields: dict
    optional: dict = field(default_factory=dict)

    def check(self, value, where: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} is {_show(value)}, not an object")
        for key, kind in self.fields.items():
            if key not in value:
                raise SchemaError(f"{_join(where, key)} is missing")
            kind.check(value[key], _join(where, key))
        for key, kind in self.optional.items():
            if key in value:
                kind.check(value[key], _join(where, key))


NAT = Int(min=0)
STR = Str()


def check(value, schema: Schema, where: str = "") -> None:
    """Raise SchemaError naming the first field of ``value`` that does not fit ``schema``."""
    schema.check(value, where or "metadata")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where and where != "metadata" else key


def _show(value) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
