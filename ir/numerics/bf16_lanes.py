"""The bf16 vector unit's lane operations, as the reference computes them.

The overlay's bf16 SIMD mode has one instruction per operation below (docs/isa.md: ``vbin``,
``vfma``, ``vsel``, ``vun``, ``vred``, ``vlut``); ``bf16_functions`` writes every non-linear function as a
sequence of them.  ``NumpyLanes`` runs such a sequence on whole arrays for the reference
interpreter; the simulator (isa/simulator/impl_vector.py) executes the instructions with its own
code, sharing only the rounding helper ``round32``, and the compiler (backends/overlay) records
the same sequence as instructions.  The operations, on 16-bit lanes holding bf16 bit patterns:

- ``add sub mul``: rounded once to bf16 (RNE, ``bf16.round32``); every NaN they make is 0x7FC0.
- ``fma(a, b, c)``: ``round(round(a * b) + c)``, the lane's multiply-add (two roundings).
- ``max min``: NaN (0x7FC0) if either operand is NaN; max(+0, -0) = +0, min(+0, -0) = -0.
- ``and_ or_ xor iadd isub shl shr``: on the 16-bit pattern (integer add/sub modulo 2**16,
  logical shifts): the exponent and mantissa manipulation of seeds and powers of two.
- ``lt le gt ge eq``: IEEE ordered comparisons (false if either is NaN; +0 == -0) giving the
  mask 0xFFFF (true) or 0; ``select(m, a, b)``: a where m != 0, else b.
- ``rint``: round to an integral value, ties to even (NaN -> 0x7FC0); ``ftoi``: the int16 pattern
  of rint(x) (saturating; NaN -> 0); ``itof``: an int16 pattern to bf16 (RNE).
- ``lookup(a, table)``: entry ``a & 0xFF`` (the pattern's low byte) of a constant table of 256
  patterns (a per-lane table: the seeds of ``rsqrt_normal``).
- ``window_sum_squares(a, before, after)``: for each element, the sum of the squares of the
  elements ``before`` rows above to ``after`` rows below it in its column (rows outside the tile
  count as zero), accumulated as the element's own square, then + the square of the row k below
  for k = 1..after, then + the square of the row k above for k = 1..before, each square and each
  add rounded (``fma(a, a, acc)``; LRN's sum across channels, rows being channels).
- ``row_sum row_max``: along each row by a fixed pairwise tree (``bf16.bf16_sum``'s order: each
  level combines neighbours, an odd last element passes up unchanged), ``add`` or ``max`` at each
  node.

Operands are vectors (rows x cols), one value per row (reduction results), one value per column
(LayerNorm's gamma and beta) or constants (``const``: a value rounded once to bf16; ``pattern``: a
raw 16-bit pattern); operations broadcast them against each other.
"""
from __future__ import annotations

import numpy as np

from .bf16 import round32, round32_bits, to_bf16

_NAN_BITS = np.uint16(0x7FC0)
_TRUE = np.uint16(0xFFFF)
_FALSE = np.uint16(0)
_SIXTEEN = np.uint32(16)


def _f(a: np.ndarray) -> np.ndarray:
    """bf16 patterns (uint16) -> their float32 values (exact): one widening shift."""
    return np.asarray(np.left_shift(np.asarray(a, np.uint16), _SIXTEEN, dtype=np.uint32)).view(np.float32)


def _b(x32: np.ndarray) -> np.ndarray:
    """float32 values that are bf16 values (or NaN: made 0x7FC0) -> uint16 patterns."""
    x32 = np.asarray(x32, np.float32)
    return np.where(np.isnan(x32), _NAN_BITS, (x32.view(np.uint32) >> 16).astype(np.uint16))


def _rounded(x32) -> np.ndarray:
    """float32 values rounded once to bf16 patterns (every NaN 0x7FC0)."""
    return round32_bits(np.asarray(x32, np.float32))


def _mask(condition: np.ndarray) -> np.ndarray:
    return np.where(condition, _TRUE, _FALSE)


def _tree(v: np.ndarray, combine) -> np.ndarray:
    """Reduce the last axis of patterns ``v`` by the pairwise tree, keeping it as size 1."""
    if v.shape[-1] == 0:
        return np.zeros(v.shape[:-1] + (1,), np.uint16)
    while v.shape[-1] > 1:
        pairs = v.shape[-1] // 2
        level = combine(v[..., 0:2 * pairs:2], v[..., 1:2 * pairs:2])
        v = np.concatenate([level, v[..., 2 * pairs:]], axis=-1)
    return v


class NumpyLanes:
    """The lane operations on uint16 pattern arrays (numpy broadcasting stands for the operand
    patterns); call them under ``np.errstate(all="ignore")``."""

    @staticmethod
    def const(value: float) -> np.ndarray:
        return np.asarray(to_bf16(np.float64(value)), np.uint16)

    @staticmethod
    def pattern(bits: int) -> np.ndarray:
        return np.asarray(bits, np.uint16)

    @staticmethod
    def add(a, b):
        return _rounded(_f(a) + _f(b))

    @staticmethod
    def sub(a, b):
        return _rounded(_f(a) - _f(b))

    @staticmethod
    def mul(a, b):
        return _rounded(_f(a) * _f(b))

    @staticmethod
    def fma(a, b, c):
        return _rounded(round32(_f(a) * _f(b)) + _f(c))

    @staticmethod
    def max(a, b):
        x, y = _f(a), _f(b)
        r = np.where(x > y, x, y)
        r = np.where(x == y, np.where(np.signbit(x), y, x), r)
        return _b(np.where(np.isnan(x) | np.isnan(y), np.float32(np.nan), r))

    @staticmethod
    def min(a, b):
        x, y = _f(a), _f(b)
        r = np.where(x < y, x, y)
        r = np.where(x == y, np.where(np.signbit(x), x, y), r)
        return _b(np.where(np.isnan(x) | np.isnan(y), np.float32(np.nan), r))

    @staticmethod
    def and_(a, b):
        return np.bitwise_and(a, b, dtype=np.uint16)

    @staticmethod
    def or_(a, b):
        return np.bitwise_or(a, b, dtype=np.uint16)

    @staticmethod
    def xor(a, b):
        return np.bitwise_xor(a, b, dtype=np.uint16)

    @staticmethod
    def iadd(a, b):
        return np.add(a, b, dtype=np.uint16)  # wraps modulo 2**16

    @staticmethod
    def isub(a, b):
        return np.subtract(a, b, dtype=np.uint16)

    @staticmethod
    def shl(a, n: int):
        return np.left_shift(a, np.uint16(n), dtype=np.uint16)

    @staticmethod
    def shr(a, n: int):
        return np.right_shift(a, np.uint16(n), dtype=np.uint16)

    @staticmethod
    def lt(a, b):
        return _mask(_f(a) < _f(b))

    @staticmethod
    def le(a, b):
        return _mask(_f(a) <= _f(b))

    @staticmethod
    def gt(a, b):
        return _mask(_f(a) > _f(b))

    @staticmethod
    def ge(a, b):
        return _mask(_f(a) >= _f(b))

    @staticmethod
    def eq(a, b):
        return _mask(_f(a) == _f(b))

    @staticmethod
    def select(m, a, b):
        return np.where(np.asarray(m) != 0, a, b).astype(np.uint16)

    @staticmethod
    def rint(a):
        return _rounded(np.rint(_f(a)))

    @staticmethod
    def ftoi(a):
        r = np.rint(_f(a)).astype(np.float64)
        r = np.clip(np.where(np.isnan(r), 0.0, r), -32768, 32767)
        return r.astype(np.int64).astype(np.uint16)

    @staticmethod
    def itof(a):
        return np.asarray(to_bf16(np.asarray(a, np.uint16).view(np.int16).astype(np.float64)), np.uint16)

    @staticmethod
    def lookup(a, table):
        return np.asarray(table, np.uint16)[np.bitwise_and(a, 0xFF)]

    @classmethod
    def window_sum_squares(cls, a, before: int, after: int):
        a = np.asarray(a, np.uint16)
        acc = cls.mul(a, a)
        rows = a.shape[-2]
        for k in range(1, min(after, rows - 1) + 1):
            below = a[..., k:, :]
            acc[..., :rows - k, :] = cls.fma(below, below, acc[..., :rows - k, :])
        for k in range(1, min(before, rows - 1) + 1):
            above = a[..., :rows - k, :]
            acc[..., k:, :] = cls.fma(above, above, acc[..., k:, :])
        return acc

    @classmethod
    def row_sum(cls, a):
        return _tree(np.asarray(a, np.uint16), cls.add)

    @classmethod
    def row_max(cls, a):
        return _tree(np.asarray(a, np.uint16), cls.max)
