"""Whether a value is a compile-time constant, and its array: the one definition passes and backends ask."""
from __future__ import annotations

import numpy as np

from .core import Value


def is_constant(value: Value) -> bool:
    """Whether ``value`` is the result of a ``const`` op."""
    return value.producer is not None and value.producer.kind == "const"


def constant_value(value: Value) -> np.ndarray | None:
    """The (read-only) array of a value produced by a ``const`` op, or None for any other value."""
    return value.producer.attrs["value"] if is_constant(value) else None
