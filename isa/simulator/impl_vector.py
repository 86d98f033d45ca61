"""bf16 SIMD mode: ``cvt`` between int8 (abuf) and bf16/f32 (vbuf), and the vector instructions.

Each vector instruction computes on 16-bit lanes holding bf16 bit patterns in vbuf, with this
module's own arithmetic: the only numerics shared with the reference interpreter are the
rounding rules (``round32``: RNE to bf16, canonical NaN) and the int8 <-> bf16 conversions.
Operand B (and C) is a vbuf vector read through its broadcast pattern
(``v.b + 2 * ((i // v.b_rep) % v.b_period)``) or a bf16 constant register ``v.k0..v.k7``.
Cycles: ``ceil(v.len / simd_lanes)`` passes plus the pipeline latency per instruction (the unit
runs one instruction at a time); a reduction pays that for each level of its tree.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import numerics
from tcc.ir.numerics.bf16 import round32

from .machine import ABUF, VBUF, Effect, Fault, MachineState, impl, registers

_CVT = registers("v.len", "v.scale", "v.zp")
_LEN = registers("v.len")
_B = registers("v.b", "v.b_rep", "v.b_period")
_C = registers("v.c", "v.c_rep", "v.c_period")
_ROW = registers("v.row")
_CONSTANTS = registers(*(f"v.k{i}" for i in range(8)))
_NAN = np.uint16(0x7FC0)
_SIGN = np.uint16(0x8000)


def _scale(bits: int) -> np.float32:
    """v.scale holds a float32's bit pattern in a signed 32-bit register."""
    return np.array([bits & 0xFFFF_FFFF], np.uint32).view(np.float32)[0]


def _simd_cycles(m: MachineState, passes: int, elements: int) -> int:
    return passes * -(-elements // m.target.simd_lanes) + m.target.simd_latency


@impl("cvt")
def cvt(m: MachineState, dir: str, dst: int, src: int):
    m.require_mode("bf16", "cvt")
    length, scale_bits, zp = _CVT(m.regs)
    scale = _scale(scale_bits)
    try:
        if dir == "i8_bf16":
            q, s_access = m.region(ABUF, src, (length,), (1,), np.int8, False, "cvt source")
            values = numerics.to_bf16(numerics.int8_to_bf16(q, scale, zp))
            out, d_access = m.region(VBUF, dst, (length,), (2,), "<u2", True, "cvt destination")
        elif dir == "bf16_i8":
            x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
            values = numerics.bf16_to_int8(numerics.from_bf16(x), scale, zp, "half_even")
            out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "cvt destination")
        else:  # bf16_f32
            x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
            values = numerics.from_bf16(x)
            out, d_access = m.region(VBUF, dst, (length,), (4,), "<f4", True, "cvt destination")
    except ValueError as exc:
        raise Fault(f"cvt {dir} with v.scale = {float(scale)!r}, v.zp = {zp}: {exc}") from None
    out[...] = values
    accesses = tuple(a for a in (s_access, d_access) if a is not None)
    return Effect(_simd_cycles(m, 1, length), accesses)


# --- lane arithmetic on uint16 bf16 patterns ---------------------------------------------------

def _value(p: np.ndarray) -> np.ndarray:
    return (p.astype(np.uint32) << 16).view(np.float32)


def _pattern(x32: np.ndarray) -> np.ndarray:
    """Round float32 results once to bf16 (canonical NaN) and keep the top half."""
    return (round32(np.asarray(x32, np.float32)).view(np.uint32) >> 16).astype(np.uint16)


def _mask(condition: np.ndarray) -> np.ndarray:
    return condition.astype(np.uint16) * np.uint16(0xFFFF)


def _either_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a & 0x7FFF) > 0x7F80) | ((b & 0x7FFF) > 0x7F80)


def _maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x, y = _value(a), _value(b)
    r = np.where((x > y) | ((x == y) & (b == _SIGN)), a, b)  # max(+0, -0) = +0
    return np.where(_either_nan(a, b), _NAN, r)


def _minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x, y = _value(a), _value(b)
    r = np.where((x < y) | ((x == y) & (a == _SIGN)), a, b)  # min(+0, -0) = -0
    return np.where(_either_nan(a, b), _NAN, r)


#: vbin's operations on (A, B) patterns; a test changes one to check that the reference notices.
BINARY = {
    "add": lambda a, b: _pattern(_value(a) + _value(b)),
    "sub": lambda a, b: _pattern(_value(a) - _value(b)),
    "rsub": lambda a, b: _pattern(_value(b) - _value(a)),
    "mul": lambda a, b: _pattern(_value(a) * _value(b)),
    "max": _maximum,
    "min": _minimum,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "iadd": lambda a, b: (a.astype(np.uint32) + b).astype(np.uint16),
    "isub": lambda a, b: (a.astype(np.int32) - b).astype(np.uint16),
    "irsub": lambda a, b: (b.astype(np.int32) - a).astype(np.uint16),
    "lt": lambda a, b: _mask(_value(a) < _value(b)),
    "le": lambda a, b: _mask(_value(a) <= _value(b)),
    "gt": lambda a, b: _mask(_value(a) > _value(b)),
    "ge": lambda a, b: _mask(_value(a) >= _value(b)),
    "eq": lambda a, b: _mask(_value(a) == _value(b)),
}


def _ftoi(a: np.ndarray) -> np.ndarray:
    r = np.rint(_value(a))
    r = np.where(np.isnan(r), np.float32(0), np.clip(r, -32768, 32767))
    return r.astype(np.int32).astype(np.uint16)


def _itof(a: np.ndarray) -> np.ndarray:
    return _pattern(a.view(np.int16).astype(np.float32))  # |int16| < 2**24: exact in float32


UNARY = {
    "shl": lambda a, n: (a.astype(np.uint32) << n).astype(np.uint16),
    "shr": lambda a, n: a >> np.uint16(n),
    "rint": lambda a, n: _pattern(np.rint(_value(a))),
    "ftoi": lambda a, n: _ftoi(a),
    "itof": lambda a, n: _itof(a),
}


# --- operands ----------------------------------------------------------------------------------

def _lanes(m: MachineState, address: int, length: int, write: bool, what: str):
    return m.region(VBUF, address, (length,), (2,), "<u2", write, what)


def _operand(m: MachineState, source: str, registers_of, length: int, what: str):
    """Operand B or C: a constant register broadcast, or a vbuf vector through its pattern."""
    if source != "vec":
        return np.full(length, _CONSTANTS(m.regs)[int(source[1])] & 0xFFFF, np.uint16), None
    base, rep, period = registers_of(m.regs)
    if rep < 1 or period < 1:
        raise Fault(f"{what}: repeat {rep} and period {period} must be at least 1")
    stored, access = _lanes(m, base, min(period, -(-length // rep)), False, what)
    index = (np.arange(length) // rep) % period
    return stored[index], access


def _finish(m: MachineState, dst: int, length: int, result: np.ndarray, accesses: list) -> Effect:
    out, access = _lanes(m, dst, length, True, "vector result")
    out[...] = result
    accesses.append(access)
    return Effect(_simd_cycles(m, 1, length), tuple(a for a in accesses if a is not None))


@impl("vbin")
def vbin(m: MachineState, op: str, b: str, dst: int, a: int):
    m.require_mode("bf16", "vbin")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vbin operand A")
    y, b_access = _operand(m, b, _B, length, "vbin operand B")
    with np.errstate(all="ignore"):
        result = BINARY[op](x, y)
    return _finish(m, dst, length, result, [a_access, b_access])


@impl("vfma")
def vfma(m: MachineState, b: str, c: str, dst: int, a: int):
    m.require_mode("bf16", "vfma")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vfma operand A")
    y, b_access = _operand(m, b, _B, length, "vfma operand B")
    z, c_access = _operand(m, c, _C, length, "vfma operand C")
    with np.errstate(all="ignore"):
        result = BINARY["add"](BINARY["mul"](x, y), z)
    return _finish(m, dst, length, result, [a_access, b_access, c_access])


@impl("vsel")
def vsel(m: MachineState, b: str, c: str, dst: int, mask: int):
    m.require_mode("bf16", "vsel")
    (length,) = _LEN(m.regs)
    condition, m_access = _lanes(m, mask, length, False, "vsel mask")
    y, b_access = _operand(m, b, _B, length, "vsel operand B")
    z, c_access = _operand(m, c, _C, length, "vsel operand C")
    return _finish(m, dst, length, np.where(condition != 0, y, z), [m_access, b_access, c_access])


@impl("vun")
def vun(m: MachineState, op: str, amount: int, dst: int, a: int):
    m.require_mode("bf16", "vun")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vun operand")
    with np.errstate(all="ignore"):
        result = UNARY[op](x, amount)
    return _finish(m, dst, length, result, [a_access])


@impl("vred")
def vred(m: MachineState, op: str, dst: int, a: int):
    m.require_mode("bf16", "vred")
    (length,), (row,) = _LEN(m.regs), _ROW(m.regs)
    if row < 1 or length % row:
        raise Fault(f"vred: v.len = {length} is not a multiple of v.row = {row}")
    x, a_access = _lanes(m, a, length, False, "vred input")
    level = x.reshape(length // row, row)
    combine = BINARY["add"] if op == "sum" else _maximum
    cycles = 0
    with np.errstate(all="ignore"):
        while level.shape[1] > 1:
            pairs = level.shape[1] // 2
            cycles += _simd_cycles(m, 1, level.shape[0] * pairs)
            paired = combine(level[:, 0:2 * pairs:2], level[:, 1:2 * pairs:2])
            level = np.concatenate([paired, level[:, 2 * pairs:]], axis=1)
    out, d_access = _lanes(m, dst, length // row, True, "vred result")
    out[...] = level.reshape(-1)
    accesses = tuple(x for x in (a_access, d_access) if x is not None)
    return Effect(max(cycles, _simd_cycles(m, 1, length // row)), accesses)
