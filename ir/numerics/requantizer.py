"""``requantize`` and ``centre_and_shift`` prepared for fixed parameters: ``Requantizer(multiplier, shift, ...)(acc)``.

The same rule as ``integer.requantize`` (``clamp(round(acc * multiplier / 2**shift) + zero_point)``,
one exact rounding in int64), for a datapath that applies one set of per-channel parameters to
many accumulator arrays (the simulator's requantization unit replaying a program).  The
parameters are checked and turned into the shift's rounding constants once; a call then checks
only that ``acc * multiplier`` stays below 2**62 and computes the rounding in a few whole-array
integer operations.  Whatever the fast form does not cover (``half_away``, a zero shift, an
accumulator that may overflow: the error message) goes to ``integer.requantize`` itself, so the two
cannot disagree; ``tests/numerics/test_num_requantizer.py`` compares them at the extremes.
"""
from __future__ import annotations

import numpy as np

from ._arrays import as_int64
from .integer import INT32_MAX, INT32_MIN, ROUNDING_MODES, centre_and_shift, requantize

_PRODUCT_LIMIT = 2**62  # integer.py's bound on |acc * multiplier|


class Requantizer:
    """``requantize(acc, multiplier, shift, zero_point, qmin, qmax, mode)`` for int64 ``acc``
    arrays whose last axis the (scalar or 1-d) parameters broadcast along; int64 out."""

    __slots__ = ("multiplier", "shift", "zero_point", "qmin", "qmax", "mode", "_bound", "_fast", "_add")

    def __init__(self, multiplier, shift, zero_point=0, qmin: int = -128, qmax: int = 127,
                 mode: str = "half_even"):
        if mode not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {mode!r}; expected one of {', '.join(ROUNDING_MODES)}")
        if qmin > qmax:
            raise ValueError(f"qmin {qmin} > qmax {qmax}")
        m, s, zp = (as_int64(v, name) for v, name in ((multiplier, "multiplier"), (shift, "shift"),
                                                       (zero_point, "zero_point")))
        if m.size and m.min() < 0:
            raise ValueError("multiplier must be non-negative")
        if s.size and s.min() < 0:
            raise ValueError("shift must be non-negative")
        if zp.size and (zp.min() < INT32_MIN or zp.max() > INT32_MAX):
            raise ValueError("zero_point must be within int32")
        self.multiplier, self.shift, self.zero_point = m, s, zp
        self.qmin, self.qmax, self.mode = int(qmin), int(qmax), mode
        # |acc| <= bound keeps |acc * multiplier| < 2**62 for every channel (integer.py's check is per
        # element; an accumulator past this coarser bound goes to it, which decides).
        self._bound = (_PRODUCT_LIMIT - 1) // max(int(m.max()) if m.size else 0, 1)
        s = np.minimum(s, 63)  # |acc * multiplier| < 2**62: any shift >= 63 rounds as 63 does
        # The fast forms (integer.rounding_right_shift's) hold for shift >= 1 with |x| < 2**62:
        # half_up is floor((x + half) / 2**s); half_even adds half - 1 plus the floor quotient's low
        # bit, which tips exact ties to even; floor is the plain arithmetic shift.
        self._fast = mode != "half_away" and (mode == "floor" or not s.size or int(s.min()) > 0)
        half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
        self._add = np.zeros_like(half) if mode == "floor" else half if mode == "half_up" else half - 1
        self.shift = s

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        a = acc if type(acc) is np.ndarray and acc.dtype == np.int64 else as_int64(acc, "acc")
        if not self._fast or not a.ndim or (a.size and (a.max() > self._bound or a.min() < -self._bound)):
            return np.asarray(requantize(a, self.multiplier, self.shift, self.zero_point, self.qmin, self.qmax,
                                         self.mode, out_dtype=np.int64))
        x = a * self.multiplier
        q = x + self._add
        if self.mode == "half_even":  # x's buffer becomes the floor quotient's low bit
            q += np.bitwise_and(np.right_shift(x, self.shift, out=x), 1, out=x)
        np.right_shift(q, self.shift, out=q)
        q += self.zero_point
        np.maximum(q, self.qmin, out=q)
        return np.minimum(q, self.qmax, out=q)


class Centring:
    """``centre_and_shift(x, zero_point, pre_shift, headroom)`` prepared for inputs with
    ``|x| <= magnitude``: when that bound proves the range check passes (``(magnitude + |zero_point|)
    << pre_shift`` plus ``headroom`` below 2**62), a call is the plain int64 arithmetic; otherwise
    it is ``centre_and_shift`` itself, which checks the actual values (and raises)."""

    __slots__ = ("zero_point", "pre_shift", "headroom", "_proven")

    def __init__(self, zero_point: int, pre_shift: int, magnitude: int, headroom: int = 0):
        self.zero_point, self.pre_shift, self.headroom = int(zero_point), int(pre_shift), int(headroom)
        self._proven = 0 <= pre_shift <= 62 and \
            ((int(magnitude) + abs(self.zero_point)) << self.pre_shift) + self.headroom < _PRODUCT_LIMIT

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self._proven:
            return np.asarray(centre_and_shift(x, self.zero_point, self.pre_shift, self.headroom))
        v = as_int64(x, "x").astype(np.int64)  # a copy: the caller's array is never written
        if self.zero_point:
            v -= self.zero_point
        if self.pre_shift:
            v <<= self.pre_shift
        return v
