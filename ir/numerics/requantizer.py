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

import math
import weakref

import numpy as np

from ._arrays import as_int64, thread_scratch
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


_FLOAT64_EXACT = 2**53
_FLOAT_MODES = ("half_even", "half_up", "floor")
# Adding _ROUNDER = 1.5 * 2**52 to a double y with |y| < 2**51 gives a double in [2**52, 2**53), where the
# doubles are exactly the integers: the one add rounds y + _ROUNDER to the nearest integer, ties to the
# even one (IEEE round-to-nearest-even), and _ROUNDER being even that is _ROUNDER + rint(y).  The sum's
# bits as an int64 are _ROUNDER's bits plus rint(y) (the significand counts units there), and
# _ROUNDER's low 32 bits are zero: its low byte or low four bytes are rint(y)'s, two's complement.
_ROUNDER = 1.5 * 2**52
_TRUNCATED = (np.dtype(np.int8), np.dtype(np.int32))  # the integer outs whose bytes are among those low four
_LANES = 8192  # the longest repeated row of a per-channel parameter (_Lanes)
_SMALL = 4096  # tiles of fewer elements take each per-channel parameter in one broadcast call (_Lanes costs calls)


class AffineRequantizer:
    """The requantization unit's whole stage prepared for fixed parameters:
    ``requantize(centre_and_shift(x, x_zero_point, pre_shift) + bias, multiplier, shift, zero_point,
    qmin, qmax, mode)`` for integer ``x`` with ``|x| <= magnitude`` and per-channel ``bias`` along its
    last axis; int64 or float64 (integer-valued) out.

    A call computes in float64 when that provably rounds as the integer rule does, else it is
    ``Centring`` and ``Requantizer``.  The proof, for half_even, half_up and floor: the centred
    ``v = ((x - x_zero_point) << pre_shift) + bias`` is an integer; a call checks ``|v| < 2**53`` from
    ``x``'s extremes (and that ``|v * multiplier| < 2**62``, the integer rule's own bound), so v and
    every partial sum making it are exact doubles; ``r = multiplier * 2**-shift`` is exact (multiplier
    < 2**53); ``y = fl(v * r)`` is the double nearest the exact ``t = v * multiplier / 2**shift``.
    With L, H = qmin - zero_point, qmax - zero_point, B = max(|L|, |H|) + 1 and ``2**e >= B + 1``:
    if |t| < B, |y - t| <= 2**(e - 53), while t, a multiple of 2**-shift, is either a half-integer
    (an exact double, so y = t) or at least 2**-shift from every half-integer and integer; with
    ``shift + e <= 52`` y lies strictly on t's side of each, so round-half-even (rint), half-up
    (floor(y + 0.5), exact in that range) and floor of y equal those of t.  If |t| >= B, y is as
    far out (fl is monotone and B is an exact double), and both clamp to the same bound.  Adding
    zero_point to the rounded y and clamping are exact or clamp alike for the same reason.
    """

    __slots__ = ("centring", "requantizer", "bias", "x_zero_point", "pre_shift", "uses_float", "_ratio",
                 "_largest_bias", "_v_bound", "_offset", "_in_bound", "_low", "_high", "_zero_point", "_rounder",
                 "_odd_zero_point")

    def __init__(self, x_zero_point: int, pre_shift: int, magnitude: int, bias, multiplier, shift,
                 zero_point=0, qmin: int = -128, qmax: int = 127, mode: str = "half_even"):
        self.bias = as_int64(bias, "bias")
        self._largest_bias = int(np.abs(self.bias).max()) if self.bias.size else 0
        self.centring = Centring(x_zero_point, pre_shift, magnitude, self._largest_bias)
        self.requantizer = r = Requantizer(multiplier, shift, zero_point, qmin, qmax, mode)
        self.x_zero_point, self.pre_shift = int(x_zero_point), int(pre_shift)
        zp = r.zero_point
        reach = max(int(np.abs(r.qmin - zp).max()), int(np.abs(r.qmax - zp).max())) + 1 if zp.size else 0
        largest_multiplier = int(r.multiplier.max()) if r.multiplier.size else 0
        self.uses_float = (mode in _FLOAT_MODES and 0 <= self.pre_shift <= 52 and largest_multiplier < _FLOAT64_EXACT
                           and bool(r.shift.size) and bool(zp.size)
                           and int(r.shift.max()) + reach.bit_length() <= 52)  # 2**e >= B + 1
        # |v| must stay below both 2**53 (exact doubles) and the integer rule's 2**62 / multiplier
        self._v_bound = min(_FLOAT64_EXACT - 1, r._bound)
        self._ratio = _Lanes(r.multiplier.astype(np.float64) * np.ldexp(1.0, -r.shift)) if self.uses_float else None
        # with no pre-shift, v = x + (bias - x_zero_point): one exact float64 add when that offset is below 2**53
        offset = self.bias - self.x_zero_point
        exact = not pre_shift and (not offset.size or int(np.abs(offset).max()) < _FLOAT64_EXACT)
        self._offset = _Lanes(offset.astype(np.float64)) if exact else None
        # every x of magnitude <= ``magnitude`` passes the call's |v| check: no need to look at x's extremes
        self._in_bound = self.uses_float and \
            ((int(magnitude) + abs(self.x_zero_point)) << self.pre_shift) + self._largest_bias <= self._v_bound
        # the clamp's bounds less the zero point, and the zero point: Python numbers when one value holds
        # for every channel (numpy applies a scalar in one pass, a per-channel row in one call per row)
        self._low, self._high, self._zero_point = (_uniform(a) for a in (r.qmin - zp, r.qmax - zp, zp))
        # half_even into an integer ``out`` with one zero point for every channel: rint, + zero point and
        # the cast as one add of _ROUNDER plus the zero point's even part (an even integer: ties still go
        # to even) and a truncating cast; an odd zero point's last 1 added to the integers after
        self._rounder: float | None = None
        self._odd_zero_point = 0
        if self.uses_float and mode == "half_even" and all(isinstance(v, float) for v in
                                                           (self._low, self._high, self._zero_point)):
            even = int(self._zero_point) & ~1
            self._rounder, self._odd_zero_point = _ROUNDER + even, int(self._zero_point) - even

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The stage on ``x``; written into ``out`` (an integer array of x's shape) and returned if given."""
        if self.uses_float and x.size:
            if self._in_bound:
                return self._float(x, out)
            largest = max(int(x.max()) - self.x_zero_point, self.x_zero_point - int(x.min()))
            if (largest << self.pre_shift) + self._largest_bias <= self._v_bound:
                return self._float(x, out)
        v = self.centring(x)
        v += self.bias
        if out is None:
            return self.requantizer(v)
        out[...] = self.requantizer(v)
        return out

    def _float(self, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        y = None
        if out is not None:  # the float64 lanes are scratch: one buffer for every stage of the thread
            y = thread_scratch("requantize", math.prod(x.shape), np.float64).reshape(x.shape)
        r = self.requantizer
        if self._offset is not None:  # both terms and the sum v are integers below 2**53: exact
            if x.size < _SMALL:  # one call of each: a short tile's time is the calls'
                y = np.add(x, self._offset.values, out=y, dtype=np.float64)
                np.multiply(y, self._ratio.values, out=y)
            else:
                if y is None:
                    y = np.empty(np.broadcast_shapes(x.shape, self._offset.values.shape), np.float64)
                np.copyto(y, x)  # (a mixed int + float add casts through a buffer: a copy and an add are faster)
                self._offset.apply(np.add, y)
                self._ratio.apply(np.multiply, y)
        else:
            y = np.subtract(x, self.x_zero_point, out=y, dtype=np.float64)
            if self.pre_shift:
                y *= float(1 << self.pre_shift)
            y += self.bias
            self._ratio.apply(np.multiply, y)
        if out is not None and self._rounder is not None and out.dtype in _TRUNCATED:
            # clamping before rounding clamps alike (the bounds are integers, rint is monotone); |y| is then
            # below 2**33, far inside _ROUNDER's 2**51; the sum's low bytes are rint(y) + the even zero point
            np.clip(y, self._low, self._high, out=y)
            y += self._rounder
            np.copyto(out, y.view(np.int64), casting="unsafe")  # truncating: the low bytes, two's complement
            if self._odd_zero_point:
                out += self._odd_zero_point  # wraps as the bytes do: the sum lies inside out's type
            return out
        if r.mode == "half_even":
            np.rint(y, out=y)
        else:
            if r.mode == "half_up":
                y += 0.5
            np.floor(y, out=y)
        # clamping before adding the zero point clamps alike: y is an integer, and where y + zero_point
        # would round (|y| >= 2**52) both forms give the same bound
        np.clip(y, self._low, self._high, out=y)
        if out is None:
            y += self._zero_point  # exact: integers of magnitude below 2**53
            return y
        # the same sum, cast as it is written: integers inside out's type (qmin, qmax are), exact
        np.add(y, self._zero_point, out=out, casting="unsafe")
        return out


class _Lanes:
    """A per-channel float64 parameter (one value, or one per channel of the last axis) applied in
    place to contiguous arrays whose last axis is the channels: ``apply(np.multiply, y)`` is
    ``np.multiply(y, values, out=y)``.  A row of channels broadcast over a tile runs numpy's inner
    loop one row at a time (measured 2x the time of two whole arrays on 444 x 64), so the values
    are repeated into a row of up to _LANES lanes (a whole number of channel rows, shared by the
    parameters' bytes) and the tile, flat, is worked in pieces of that row: every piece starts at
    channel 0."""

    __slots__ = ("values", "_scalar", "_key", "_repeated", "_longest")

    def __init__(self, values: np.ndarray):
        self.values = values
        uniform = _uniform(values) if values.ndim <= 1 else values
        self._scalar = uniform if isinstance(uniform, float) else None
        self._key = values.tobytes() if values.ndim == 1 else None
        self._repeated: np.ndarray | None = None
        self._longest = max(1, _LANES // max(values.size, 1)) * values.size  # the repeated row's lanes at most

    def apply(self, op, y: np.ndarray) -> None:
        if self._scalar is not None:
            op(y, self._scalar, out=y)
            return
        cols = self.values.size
        if self._key is None or not y.flags.c_contiguous or y.shape[-1] != cols:
            op(y, self.values, out=y)
            return
        flat = y.reshape(-1)
        repeated = self._repeated
        if repeated is None or repeated.size < min(flat.size, self._longest):
            repeated = self._repeated = _repeated_row(self._key, self.values, min(flat.size, self._longest))
        step = repeated.size
        for start in range(0, flat.size, step):
            piece = flat[start:start + step]
            op(piece, repeated[:piece.size], out=piece)


_REPEATED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # by the values' bytes


def _repeated_row(key: bytes, values: np.ndarray, lanes: int) -> np.ndarray:
    """``values`` repeated to ``lanes`` lanes or more (a whole number of rows of them)."""
    made = _REPEATED.get(key)
    if made is None or made.size < lanes:
        made = _REPEATED[key] = np.tile(values, -(-lanes // values.size))
    return made


def _uniform(values: np.ndarray) -> np.ndarray | float:
    """``values`` as one float when they are all equal, else as a float64 array."""
    flat = values.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return float(flat[0])
    return values.astype(np.float64)
