"""Op traits: the categories passes and backends ask about, declared with each op kind.

A trait is a fact about an op kind's semantics, not a pass's policy: ``define_op(...,
traits=(Trait.VIEW,))`` states it once, and code asks ``op.has_trait(Trait.VIEW)`` (or
``has_trait(kind, ...)``) instead of keeping its own list of kind names.
"""
from __future__ import annotations

import enum


class Trait(enum.Enum):
    ELEMENTWISE = "elementwise"
    """Each result element depends only on the operands' elements at the same (numpy-broadcast)
    index; batch_norm and requantize read per-channel parameters along their channel axis."""

    SITEWISE = "sitewise"
    """Each output site (batch and spatial position) depends only on the same site of the operands;
    channels may mix (lrn).  Implied by ELEMENTWISE."""

    VIEW = "view"
    """Each result element is a copy of one element of the first operand, chosen by position only
    (other operands, such as gather's indices, only choose which).  Implies MOVES."""

    MOVES = "moves"
    """Only moves elements: a view, a join of several tensors (concat) or padding with a constant."""

    POOL = "pool"
    """Pools each channel's spatial dims (max or average, windowed or global)."""

    WINDOW = "window"
    """A sliding window over the spatial dims: output position i reads input positions
    i * stride - pad_begin + k * dilation for k over the kernel (``strides``, ``pads``, ``dilations``)."""

    GLOBAL = "global"
    """Reduces all spatial dims to 1 (global pooling)."""

    REDUCTION = "reduction"
    """Reduces the dims listed in ``axes`` (``keepdims`` keeps them as size 1)."""

    COMMUTATIVE = "commutative"
    """A binary op whose two operands may swap without changing the result (``a b`` = ``b a``)."""

    WEIGHTED = "weighted"
    """Operands are ``x w b?``: an activation, a weight tensor (constant in a deployable model) and
    an optional bias, one weight row (conv: output channel) per output feature."""


IMPLIED = {Trait.ELEMENTWISE: (Trait.SITEWISE,), Trait.VIEW: (Trait.MOVES,)}


def operand_orders(op) -> list[tuple]:
    """A binary op's operands as (a, b), and as (b, a) too when its kind is COMMUTATIVE: the orders
    a rewrite pattern looking for "x op constant" has to try."""
    a, b = op.operands
    return [(a, b), (b, a)] if op.has_trait(Trait.COMMUTATIVE) else [(a, b)]


def closure(traits) -> frozenset[Trait]:
    """``traits`` with the traits they imply."""
    out = set(traits)
    for trait in list(out):
        out.update(IMPLIED.get(trait, ()))
    return frozenset(out)
