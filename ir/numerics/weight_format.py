"""The weight formats the overlay's matrix unit reads, as code tables: one definition for the
quantizer, the backend's packer and the simulator's decoder.

A format stores each weight as a ``bits``-wide code; ``code_values(fmt)[code]`` is the integer
the PE multiplies (on the format's integer grid: two's complement for intN, the DyBit fine grid
2**-FINE_SHIFT[n] for dybitN).  Names, as the IR's ``format`` field and the ISA show them:

- ``int8``, ``int16``: two's complement bytes (int16: two bytes, little-endian);
- ``int4``, ``int2``: two's complement codes (the quantizer uses the narrow range [-7, 7] and
  [-1, 1], but every code decodes);
- ``dybitN`` (the full exponent run, cap N-1) and ``dybitNcK`` (the run capped at K < N-1):
  sign-magnitude DyBit codes (dybit.py);
- ``dybitNr``: DyBit-N with a cap per row (output channel): each row's codes read the table of
  its own cap (``row_format``), the caps stored beside the rows (QuantParams.caps in the IR, a
  byte per row next to the per-channel requantization parameters on the overlay).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from .dybit import MAX_BITS, MIN_BITS, check_cap, magnitude_ints

INT_BITS = (2, 4, 8, 16)


@dataclass(frozen=True)
class WeightFormat:
    kind: str  # "int" or "dybit"
    bits: int  # stored bits per weight
    cap: int = 0  # dybit: the exponent-run cap (0..bits-1); int: 0
    row_caps: bool = False  # dybit: one cap per row, given beside the codes (``cap`` is then 0)

    @property
    def name(self) -> str:
        if self.kind == "int":
            return f"int{self.bits}"
        if self.row_caps:
            return f"dybit{self.bits}r"
        return f"dybit{self.bits}" if self.cap == self.bits - 1 else f"dybit{self.bits}c{self.cap}"


def row_format(fmt: WeightFormat, cap: int) -> WeightFormat:
    """The fixed-cap format whose code table a row of the per-row format ``fmt`` with ``cap`` reads."""
    if not fmt.row_caps:
        raise ValueError(f"{fmt.name} has one cap for every row")
    return WeightFormat("dybit", fmt.bits, check_cap(fmt.bits, cap))


def parse_weight_format(name: str) -> WeightFormat:
    """``int8``/``int16``/``int4``/``int2``/``dybitN``/``dybitNcK``/``dybitNr`` -> WeightFormat
    (ValueError if unknown)."""
    m = re.fullmatch(r"(int|dybit)([0-9]+)(?:c([0-9])|(r))?", name or "")
    if m is not None:
        kind, bits = m.group(1), int(m.group(2))
        if kind == "int" and bits in INT_BITS and m.group(3) is None and m.group(4) is None:
            return WeightFormat("int", bits)
        if kind == "dybit" and MIN_BITS <= bits <= MAX_BITS and m.group(4) is not None:
            return WeightFormat("dybit", bits, 0, True)
        if kind == "dybit" and MIN_BITS <= bits <= MAX_BITS:
            cap = bits - 1 if m.group(3) is None else int(m.group(3))
            if cap <= bits - 1:
                return WeightFormat("dybit", bits, check_cap(bits, cap))
    raise ValueError(f"unknown weight format {name!r}: expected int2/int4/int8/int16, dybitN (N = "
                     f"{MIN_BITS}..{MAX_BITS}), dybitNcK (exponent run capped at K < N) or dybitNr (a cap per row)")


@functools.lru_cache(maxsize=None)
def code_values(fmt: WeightFormat) -> np.ndarray:
    """The integer value of every code 0 .. 2**bits - 1 (read-only int32)."""
    if fmt.row_caps:
        raise ValueError(f"{fmt.name} has a code table per row: take row_format(fmt, cap)'s")
    codes = np.arange(2 ** fmt.bits, dtype=np.int64)
    if fmt.kind == "int":
        values = np.where(codes >= 2 ** (fmt.bits - 1), codes - 2 ** fmt.bits, codes)
    else:
        magnitude = magnitude_ints(fmt.bits, fmt.cap)[codes & (2 ** (fmt.bits - 1) - 1)]
        values = np.where(codes >> (fmt.bits - 1) == 1, -magnitude, magnitude)
    values = values.astype(np.int32)
    values.setflags(write=False)
    return values


def max_abs_value(fmt: WeightFormat) -> int:
    """The largest |value| of any code (of any row's table for a per-row format)."""
    if fmt.row_caps:
        return max(max_abs_value(row_format(fmt, cap)) for cap in range(fmt.bits))
    return int(np.abs(code_values(fmt).astype(np.int64)).max())


@functools.lru_cache(maxsize=None)
def _code_of_value(fmt: WeightFormat) -> tuple[int, np.ndarray]:
    """(lowest value, table): ``table[v - lowest]`` is value v's code, or -1 when no code has it.  One
    code per value: for DyBit's two zeros the +0 code (the smaller), as ``encode`` gives."""
    values = code_values(fmt).astype(np.int64)
    order = np.lexsort((np.arange(values.size), values))
    distinct, first = np.unique(values[order], return_index=True)
    lowest = int(distinct[0])
    table = np.full(int(distinct[-1]) - lowest + 1, -1, np.int32)
    table[distinct - lowest] = order[first]
    table.setflags(write=False)
    return lowest, table


def value_codes(fmt: WeightFormat, values) -> np.ndarray:
    """The code of each integer value (uint16); ValueError for a value the format cannot hold."""
    v = np.asarray(values)
    lowest, table = _code_of_value(fmt)
    if v.size and (int(v.min()) < lowest or int(v.max()) >= lowest + table.size):
        _no_code(fmt, v, (v < lowest) | (v >= lowest + table.size))
    index = v.astype(np.intp)
    index -= lowest
    codes = np.take(table, index)
    if np.any(codes < 0):
        _no_code(fmt, v, codes < 0)
    return codes.astype(np.uint16)


def _no_code(fmt: WeightFormat, values: np.ndarray, bad: np.ndarray) -> None:
    raise ValueError(f"{fmt.name} has no code for the value {int(values[bad].flat[0])}")
