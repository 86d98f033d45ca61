"""Attribute values: the kinds an op definition may declare, and their frozen Python forms.

An attribute value is immutable once it is on an op: lists become tuples, numbers are checked
to fit their kind (an ``int`` attribute refuses 1.5), tensors become read-only arrays.  So a
pass cannot change another op's attributes by mutating a value it read, and two ops built from
the same list never share a mutable object.
"""
from __future__ import annotations

import numbers

import numpy as np

# Attribute kinds and the Python values they hold (after freezing).
ATTR_KINDS = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "ints": (tuple,),
    "floats": (tuple,),
    "tensor": (np.ndarray,),
}


def _integer(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{value!r} is a bool, not an integer")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise TypeError(f"{value!r} is not an integer")


def _real(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _sequence(value) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{value!r} is not a list")
    return list(np.asarray(value).reshape(-1)) if isinstance(value, np.ndarray) else list(value)


def read_only(array) -> np.ndarray:
    """``array`` as an ndarray nobody can write through (a read-only view; no copy)."""
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def normalize_attr(kind: str, value):
    """The frozen form of ``value`` as an attribute of ``kind``; TypeError/ValueError if it is not one."""
    if kind == "int":
        return _integer(value)
    if kind == "float":
        return _real(value)
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not a string")
        return str(value)
    if kind == "ints":
        if type(value) is tuple and all(type(v) is int for v in value):
            return value  # frozen already (every op a builder or parser makes passes here twice)
        return tuple(_integer(v) for v in _sequence(value))
    if kind == "floats":
        if type(value) is tuple and all(type(v) is float for v in value):
            return value
        return tuple(_real(v) for v in _sequence(value))
    if kind == "tensor":
        return read_only(value)
    raise ValueError(f"unknown attribute kind {kind!r}")


class Attributes(dict):
    """An op's attributes: a dict whose values are frozen and checked against the op definition
    as they are set (``lookup(name)`` gives the AttrSpec, or None for a name the op may not carry)."""

    __slots__ = ("_lookup", "_owner")

    def __init__(self, lookup, owner: str, values=()):
        super().__init__()
        self._lookup = lookup
        self._owner = owner
        self.update(values)

    def __setitem__(self, name: str, value) -> None:
        spec = self._lookup(name) if self._lookup is not None else None
        if self._lookup is not None and spec is None:
            raise KeyError(f"op {self._owner} has no attribute {name!r}")
        if spec is not None:
            try:
                value = normalize_attr(spec.kind, value)
            except (TypeError, ValueError, OverflowError) as exc:
                raise TypeError(f"op {self._owner}: attribute {name!r} takes {spec.kind}: {exc}") from None
        super().__setitem__(name, value)

    def update(self, values=(), **more) -> None:  # type: ignore[override]  # checks every value
        for name, value in dict(values, **more).items():
            self[name] = value

    def setdefault(self, name: str, value=None):
        if name not in self:
            self[name] = value
        return self[name]

    def __ior__(self, values):  # type: ignore[misc]  # dict's |= with the same checks
        self.update(values)
        return self

    def __reduce__(self):
        return dict, (dict(self),)
