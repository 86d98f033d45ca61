"""Exact reference definitions (Python ints and Fractions) the numeric tests compare against."""
import math
from fractions import Fraction

import numpy as np


def ref_round(value: Fraction, mode: str) -> int:
    """Round an exact rational in one of tcc's modes (the definition, spelled out)."""
    lo = math.floor(value)
    frac = value - lo
    if mode == "floor" or frac == 0:
        return lo
    if frac != Fraction(1, 2):
        return lo + (frac > Fraction(1, 2))
    return {"half_even": lo + (lo % 2), "half_up": lo + 1, "half_away": lo + (value > 0)}[mode]


def ref_bf16_bits(value: Fraction, negative_zero: bool = False) -> int:
    """RNE of an exact rational to bf16 bits, from the definition: 8 significant bits, a grid
    never finer than 2**-133 (subnormals), results of 2**128 or more become inf."""
    if value == 0:
        return 0x8000 if negative_zero else 0
    sign = 0x8000 if value < 0 else 0
    a = abs(value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    quantum = Fraction(2) ** max(e - 7, -133)
    r = round(a / quantum) * quantum  # Fraction rounding is half-to-even
    if r >= 2**128:
        return sign | 0x7F80
    if r == 0:
        return sign
    return sign | int(np.array([float(r)], np.float32).view(np.uint32)[0] >> 16)
