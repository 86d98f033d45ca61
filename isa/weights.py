"""The matrix unit's weight formats as the hardware sees them: the format a matmul's ``wfmt`` and
``wcap`` fields name, the packed size of a weight row, and the PE model's reduction rate
(docs/overlay-machine.md, "Weight formats").

PE model: a PE's int8 MAC slot (half of a DSP, TATAA packs two int8 weights per DSP) takes one
weight of 5 to 8 bits per cycle, two of 3 to 4 bits, four of 2 bits; a DyBit code's decoder
turns it into a sign, a mantissa and a shift (the product is shifted, not widened), so DyBit-N
occupies the slot like intN.  int16 weights take two slots (two cycles per reduction step).

Per-row caps (``dybitNr``, N <= 7): ``wcap = ROW_CAPS`` (7, a cap no dybit2..7 has) makes the
decoder read row n's cap from the byte at pbuf[mm.wcaps + n], stored beside the rows'
requantization parameters; the rows themselves are packed as for one cap.
"""
from __future__ import annotations

from tcc.ir.numerics import WeightFormat, parse_weight_format

from .table import WEIGHT_FORMATS

INT8_WEIGHTS = WeightFormat("int", 8)
ROW_CAPS = 7  # matmul's wcap value: each row's cap is in pbuf at mm.wcaps + row (dybit2..dybit7)


def matmul_format(wfmt: str, wcap: int) -> WeightFormat:
    """The WeightFormat of a matmul's fields (ValueError for a cap the format does not have)."""
    if wfmt.startswith("int"):
        if wcap:
            raise ValueError(f"wcap = {wcap} given for {wfmt} weights (only DyBit has a cap)")
        return parse_weight_format(wfmt)
    bits = int(wfmt.removeprefix("dybit"))
    if wcap == ROW_CAPS and bits - 1 < ROW_CAPS:
        return WeightFormat("dybit", bits, 0, True)
    if wcap > bits - 1:
        raise ValueError(f"wcap = {wcap} exceeds {bits - 1}, the longest exponent run of {wfmt}")
    return WeightFormat("dybit", bits, wcap)


def matmul_fields(fmt: WeightFormat) -> dict:
    """The matmul fields (``wfmt``, ``wcap``) that name ``fmt``."""
    name = f"{fmt.kind}{fmt.bits}"
    if name not in WEIGHT_FORMATS:
        raise ValueError(f"the matrix unit has no {fmt.name} weights")
    if fmt.row_caps:
        if fmt.bits - 1 >= ROW_CAPS:
            raise ValueError(f"the matrix unit has no per-row caps for {name} (wcap {ROW_CAPS} is its full run)")
        return {"wfmt": name, "wcap": ROW_CAPS}
    return {"wfmt": name, "wcap": fmt.cap}


def row_bytes(k: int, fmt: WeightFormat) -> int:
    """Bytes of one packed weight row of ``k`` codes (padded to a whole byte)."""
    return -(-k * fmt.bits // 8)


def slot_bits(fmt: WeightFormat) -> int:
    """Bits of MAC slot one weight occupies: 2, 4, 8 (one int8 slot) or 16 (two slots)."""
    for width in (2, 4, 8, 16):
        if fmt.bits <= width:
            return width
    raise ValueError(f"no MAC slot holds {fmt.bits}-bit weights")


def reduction_steps(k: int, fmt: WeightFormat) -> int:
    """Cycles the array takes to reduce over ``k`` weights of one output tile (before fill/drain)."""
    return -(-k * slot_bits(fmt) // 8)
