"""bf16 SIMD mode: ``cvt`` between int8 (abuf) and bf16/f32 (vbuf), and the vector instructions.

Each vector instruction computes on 16-bit lanes holding bf16 bit patterns in vbuf, with this
module's own arithmetic: the only numerics shared with the reference interpreter are the
rounding rules (``round32_bits``: RNE to bf16, canonical NaN) and the int8 <-> bf16 conversions.
Operand B (and C) is a vbuf vector read through its broadcast pattern
(``v.b + 2 * ((i // v.b_rep) % v.b_period)``) or a bf16 constant register ``v.k0..v.k7``.
Cycles: ``ceil(v.len / simd_lanes)`` passes plus the pipeline latency per instruction, the latency
overlapping the next instruction unless that one reads this one's result (timing.py); a reduction
pays the latency for each level of its tree but the last.
"""
from __future__ import annotations

import sys
from functools import partial
from typing import Callable

import numpy as np

from tcc.ir import numerics
from tcc.ir.numerics.bf16 import round32_bits, round32_bits_into
from ..cycles import LANE_TABLE, lane_table_cycles, reduction_cycles

from . import native, rule_tables
from .machine import ABUF, VBUF, Effect, Fault, MachineState, impl, registers, sample_fault

_CVT = registers("v.len", "v.scale", "v.zp")
_CVT_ROWS = registers("v.row", "v.shifts")
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
    if dir == "i8_bf16":
        q, s_access = m.region(ABUF, src, (length,), (1,), np.int8, False, "cvt source")
        out, d_access = m.region(VBUF, dst, (length,), (2,), "<u2", True, "cvt destination")
        lanes = rule_tables.table(m, ("cvt i8_bf16", scale_bits, zp), lambda: numerics.to_bf16(
            numerics.int8_to_bf16(rule_tables.BYTE_VALUES, scale, zp)).astype(np.uint16))

        if lanes is not None:
            return _table_effect(m, lanes, q.view(np.uint8), out, length, s_access, d_access)

        def convert(q=q):
            return numerics.to_bf16(numerics.int8_to_bf16(q, scale, zp))
    elif dir == "bf16_i8":
        x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
        out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "cvt destination")
        # the table (one conversion of all 65,536 patterns) is built once per machine and parameters
        key = ("cvt bf16_i8", scale_bits, zp)
        codes = rule_tables.table(m, key, lambda: numerics.bf16_to_int8(
            numerics.from_bf16(rule_tables.BF16_PATTERNS), scale, zp, "half_even").astype(np.int8))

        if codes is not None:
            return _table_effect(m, codes, x, out, length, s_access, d_access, compact_key=key)

        def convert(x=x):
            return numerics.bf16_to_int8(numerics.from_bf16(x), scale, zp, "half_even")
    elif dir == "i32_bf16":
        q, s_access = m.region(ABUF, src, (length,), (4,), "<i4", False, "cvt source")
        out, d_access = m.region(VBUF, dst, (length,), (2,), "<u2", True, "cvt destination")
        fused = native.kernels()

        def convert(q=q):
            return numerics.to_bf16(numerics.int8_to_bf16(q, scale, zp))

        if fused is not None:  # one C pass; where it refuses (|q - zp| >= 2**29) numpy raises the spec's error
            def action() -> None:
                if not fused.cvt_i32(out, q, scale, zp):
                    numpy_action()

            numpy_action = _cvt_action(m, dir, scale, zp, out, q, convert)
            return Effect(_simd_cycles(m, 1, length), tuple(a for a in (s_access, d_access) if a is not None),
                          m.target.simd_latency, action=action)
    elif dir == "bf16_i8_rows":
        return _cvt_rows(m, length, scale, zp, dst, src)
    else:  # bf16_f32
        x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
        out, d_access = m.region(VBUF, dst, (length,), (4,), "<f4", True, "cvt destination")

        def convert(x=x):
            return numerics.from_bf16(x)

    action = _cvt_action(m, dir, scale, zp, out, q if dir in ("i8_bf16", "i32_bf16") else x, convert)
    accesses = tuple(a for a in (s_access, d_access) if a is not None)
    return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency, action=action)


def _cvt_action(m: MachineState, dir: str, scale: np.float32, zp: int, out: np.ndarray, source: np.ndarray,
                convert: Callable[..., np.ndarray]) -> Callable[[], None]:
    """A conversion's numpy action: ``convert()`` into ``out``; a refused value faults naming its sample."""

    def action() -> None:
        try:
            out[...] = convert()
        except ValueError as exc:
            raise sample_fault(m, f"cvt {dir} with v.scale = {float(scale)!r}, v.zp = {zp}",
                               lambda i: convert(source[i]), exc) from None

    return action


def _table_effect(m: MachineState, table: np.ndarray, index: np.ndarray, out: np.ndarray, length: int,
                  *accesses, compact_key: tuple | None = None) -> Effect:
    """A conversion read from its rule table: one gather of ``index`` (unsigned, always inside the
    table) into ``out``; from the table compacted (rule_tables.compacted, kept under
    ``compact_key``) where it is a 65,536-entry one that compacts and the C step takes it."""
    compact = rule_tables.compacted(m, compact_key, table) if compact_key is not None and native.kernels() else None
    action = (compact is not None and native.step("GATHER", 0, out, index, compact[1], compact[0])) \
        or native.step("GATHER", 0, out, index, table) or partial(table.take, index, None, out, "clip")  # (clip: no bounds pass)
    return Effect(_simd_cycles(m, 1, length), tuple(a for a in accesses if a is not None), m.target.simd_latency,
                  action=action)


def _cvt_rows(m: MachineState, length: int, scale: np.float32, zp: int, dst: int, src: int) -> Effect:
    """bf16 -> int8 with a power-of-two scale per row of v.row elements: a max and a min reduction
    per row, the row's shift r from them (numerics.shift_for_range), the row scaled by 2**r (an
    exponent add) and converted as ``bf16_i8``; r goes to abuf at v.shifts + row."""
    row, shifts_at = _CVT_ROWS(m.regs)
    if row < 1 or length % row:
        raise Fault(f"cvt bf16_i8_rows: v.len = {length} is not a multiple of v.row = {row}")
    rows = length // row
    x, s_access = m.region(VBUF, src, (rows, row), (2 * row, 2), "<u2", False, "cvt source")
    out, d_access = m.region(ABUF, dst, (rows, row), (row, 1), np.int8, True, "cvt destination")
    shifts, r_access = m.region(ABUF, shifts_at, (rows,), (1,), np.int8, True, "cvt row shifts (v.shifts)")

    def converted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows' int8 values and shifts (values: the rows of one sample, or of every sample)."""
        with np.errstate(invalid="ignore"):
            r = np.asarray(numerics.shift_for_range(values.max(axis=-1), values.min(axis=-1), scale, zp), np.int64)
        scaled = np.ldexp(values.astype(np.float64), r[..., None])
        return numerics.bf16_to_int8(scaled, scale, zp, "half_even"), r

    def action() -> None:
        values = _value(x)
        try:
            out[...], shifts[...] = converted(values)
        except ValueError as exc:
            raise sample_fault(m, f"cvt bf16_i8_rows with v.scale = {float(scale)!r}, v.zp = {zp}",
                               lambda i: converted(values[i]), exc) from None

    reduce = 0
    width = row
    while width > 1:  # the max and min reduction trees: one SIMD pass per level each
        pairs = width // 2
        reduce += 2 * _simd_cycles(m, 1, rows * pairs)
        width -= pairs
    accesses = tuple(a for a in (s_access, d_access, r_access) if a is not None)
    return Effect(reduce + _simd_cycles(m, 1, length), accesses, m.target.simd_latency, action=action)


# --- lane arithmetic on uint16 bf16 patterns ---------------------------------------------------

_SIXTEEN = np.array(16, np.uint32)  # a 0-d array: numpy's cheapest form of a constant operand
_HIGH_HALF = 1 if sys.byteorder == "little" else 0  # index of a uint32's high half among its two uint16s


def _value(p: np.ndarray) -> np.ndarray:
    return np.left_shift(p, _SIXTEEN, dtype=np.uint32).view(np.float32)


class Lanes:
    """Scratch of one vector instruction, made when it is prepared, of ``shape`` (a length, or a
    batch's (N, length): the samples' lanes side by side): operands A and B as float32
    (uint32 words whose low halves stay zero, so writing a bf16 pattern into the high half is the
    exact conversion), the float32 result, rounding scratch, and the uint16 result (vbuf itself).

    With a machine ``m``, the arrays are the machine's for that length (``MachineState.lanes``),
    shared by every instruction: one instruction's scratch is dead when the next one runs, and a
    program's instructions then touch the same few cache-hot arrays (private ones, per
    instruction, made long vectors slower).  Only the low halves' zeros persist, and nothing
    writes them.  An instruction holding two Lanes of one length at once (vfma) shares all but
    ``out``: the first one's result must be in its own ``out``."""

    __slots__ = ("a", "b", "result", "work", "out", "_high_a", "_high_b")

    def __init__(self, shape, out: np.ndarray | None = None, m: MachineState | None = None):
        arrays = None if m is None else m.lanes.get(shape)
        if arrays is None:
            arrays = (np.zeros(shape, np.uint32), np.zeros(shape, np.uint32), np.empty(shape, np.float32),
                      np.empty(shape, np.uint32), np.empty(shape, np.uint16))
            if m is not None:
                m.lanes[shape] = arrays
        words_a, words_b, self.result, self.work, spare = arrays
        self._high_a, self._high_b = (w.view(np.uint16)[..., _HIGH_HALF::2] for w in (words_a, words_b))
        self.a, self.b = words_a.view(np.float32), words_b.view(np.float32)
        self.out = spare if out is None else out

    def load(self, a: np.ndarray, b: np.ndarray) -> None:
        self._high_a[...] = a
        self._high_b[...] = b


def _rounded(ufunc, swap: bool = False):
    """A lane operation ``(a, b, lanes=None) -> patterns``: ``ufunc`` on the float32 values (b op a
    if ``swap``), rounded once to bf16; in ``lanes``' scratch, its result in ``lanes.out``."""

    def operation(a: np.ndarray, b: np.ndarray, lanes: Lanes | None = None) -> np.ndarray:
        if lanes is None:  # operands of one shape (a reduction level's halves are 2-d)
            return operation(a.reshape(-1), b.reshape(-1), Lanes(a.size)).reshape(a.shape)
        lanes.load(a, b)
        x, y = (lanes.b, lanes.a) if swap else (lanes.a, lanes.b)
        ufunc(x, y, out=lanes.result)
        return round32_bits_into(lanes.result, lanes.out, lanes.work)

    return operation


def _pattern(x32: np.ndarray) -> np.ndarray:
    """Round float32 results once to bf16 (canonical NaN) and keep the top half."""
    return round32_bits(x32)


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
#: The arithmetic ones take scratch ``lanes`` too (``_rounded``).
BINARY = {
    "add": _rounded(np.add),
    "sub": _rounded(np.subtract),
    "rsub": _rounded(np.subtract, swap=True),
    "mul": _rounded(np.multiply),
    "max": _maximum,
    "min": _minimum,
    "and": lambda a, b, out=None: np.bitwise_and(a, b, out=out),
    "or": lambda a, b, out=None: np.bitwise_or(a, b, out=out),
    "xor": lambda a, b, out=None: np.bitwise_xor(a, b, out=out),
    # uint16 arithmetic wraps modulo 2**16: the low 16 bits of the integer sum or difference
    "iadd": lambda a, b, out=None: np.add(a, b, out=out),
    "isub": lambda a, b, out=None: np.subtract(a, b, out=out),
    "irsub": lambda a, b, out=None: np.subtract(b, a, out=out),
    "lt": lambda a, b: _mask(_value(a) < _value(b)),
    "le": lambda a, b: _mask(_value(a) <= _value(b)),
    "gt": lambda a, b: _mask(_value(a) > _value(b)),
    "ge": lambda a, b: _mask(_value(a) >= _value(b)),
    "eq": lambda a, b: _mask(_value(a) == _value(b)),
}


_ARITHMETIC = ("add", "sub", "rsub", "mul")
_FMA = 4  # vfma's multiply-add in the C kernel ``native.c: lanes``
_INTO = ("and", "or", "xor", "iadd", "isub", "irsub")  # ops taking ``out`` (uint16 lanes, written in place)


def _ftoi(a: np.ndarray) -> np.ndarray:
    r = np.rint(_value(a))
    r = np.where(np.isnan(r), np.float32(0), np.clip(r, -32768, 32767))
    return r.astype(np.int32).astype(np.uint16)


def _itof(a: np.ndarray) -> np.ndarray:
    return _pattern(a.view(np.int16).astype(np.float32))  # |int16| < 2**24: exact in float32


UNARY: dict[str, Callable[..., np.ndarray]] = {  # numpy's uint16 shifts by 16 or more give 0, as the 16-bit lanes do
    "shl": lambda a, n, out=None: np.left_shift(a, np.uint16(n), out=out),
    "shr": lambda a, n, out=None: np.right_shift(a, np.uint16(n), out=out),
    "rint": lambda a, n: _pattern(np.rint(_value(a))),
    "ftoi": lambda a, n: _ftoi(a),
    "itof": lambda a, n: _itof(a),
}

# The operations the C kernel ``native.c: lanes`` also computes, with its OP_ codes: where a table
# still holds such a function the instruction runs in C (one pass), else (an operation replaced, as
# a test does to break one) the table's function in numpy.
_NATIVE_CODES: dict[Callable, int] = {
    **{BINARY[name]: code for name, code in {"add": 0, "sub": 1, "rsub": 2, "mul": 3, "max": 5, "min": 6, "lt": 7,
                                              "le": 8, "gt": 9, "ge": 10, "eq": 11, "and": 15, "or": 16, "xor": 17,
                                              "iadd": 18, "isub": 19, "irsub": 20}.items()},
    **{UNARY[name]: code for name, code in {"rint": 12, "ftoi": 13, "itof": 14}.items()},  # (operand B unused)
    **{UNARY[name]: code for name, code in {"shl": 21, "shr": 22}.items()},  # (by operand B: the amount's lanes)
}
_SELECT = 23  # vsel in ``native.c: lanes``: B where A (the mask) is nonzero, else C


def _native_op(table: dict, name: str) -> int | None:
    """The C kernel's code for ``table[name]``: None where it is not an operation the kernel computes."""
    return _NATIVE_CODES.get(table.get(name))


# --- operands ----------------------------------------------------------------------------------

def _lanes(m: MachineState, address: int, length: int, write: bool, what: str):
    return m.region(VBUF, address, (length,), (2,), "<u2", write, what)


def _operand(m: MachineState, source: str, registers_of, length: int, what: str):
    """Operand B or C: a function reading it (a constant register broadcast, or a vbuf vector
    through its pattern), its access, the array it reads when that is the same every run (the
    constant's lanes, or a vector read lane for lane), else None, and for a vector tiled in whole
    periods the (scratch lanes, their (o, p, r)-shaped view, the pattern read into it) that its
    reading fills every run, else None."""
    if source != "vec":
        constant = np.full(length, _CONSTANTS(m.regs)[int(source[1])] & 0xFFFF, np.uint16)
        return (lambda: constant), None, constant, None
    base, rep, period = registers_of(m.regs)
    if rep < 1 or period < 1:
        raise Fault(f"{what}: repeat {rep} and period {period} must be at least 1")
    stored, access = _lanes(m, base, min(period, -(-length // rep)), False, what)
    if rep == 1 and period >= length:  # lane i reads element i: the vector itself
        return (lambda: stored), access, stored, None
    batch = m.batch
    if length % (rep * period) == 0:  # whole periods: lanes (o, p, r) read element p, one broadcast copy
        lanes = np.empty((batch, length), np.uint16)
        shaped = lanes.reshape(batch, length // (rep * period), period, rep)
        pattern = np.broadcast_to(stored[:, None, :, None], shaped.shape)

        def tiled() -> np.ndarray:
            shaped[...] = pattern
            return lanes

        return tiled, access, None, (lanes, shaped, pattern)
    index = (np.arange(length) // rep) % period
    return (lambda: stored[:, index]), access, None, None


def _finish(m: MachineState, dst: int, length: int, compute, accesses: list) -> Effect:
    """The effect of a vector instruction whose action writes ``compute()`` to vbuf[dst]."""
    out, access = _lanes(m, dst, length, True, "vector result")
    accesses.append(access)

    def action() -> None:  # run under np.errstate(all="ignore") (Machine.run)
        out[...] = compute()

    return Effect(_simd_cycles(m, 1, length), tuple(a for a in accesses if a is not None), m.target.simd_latency,
                  action=action)


def _finish_into(m: MachineState, dst: int, length: int, compute, accesses: list) -> Effect:
    """``_finish`` for a ``compute(out)`` that may write its result into vbuf[dst] itself (a
    replaced operation may return another array instead: it is copied)."""
    out, access = _lanes(m, dst, length, True, "vector result")
    accesses.append(access)

    def action() -> None:  # run under np.errstate(all="ignore") (Machine.run)
        result = compute(out)
        if result is not out:
            out[...] = result

    return Effect(_simd_cycles(m, 1, length), tuple(a for a in accesses if a is not None), m.target.simd_latency,
                  action=action)


@impl("vbin")
def vbin(m: MachineState, op: str, b: str, dst: int, a: int):
    m.require_mode("bf16", "vbin")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vbin operand A")
    y, b_access, y_fixed, y_tile = _operand(m, b, _B, length, "vbin operand B")
    operation = BINARY[op]
    fused, code = native.kernels(), _native_op(BINARY, op)
    if fused is not None and code is not None:  # one C pass from the patterns into vbuf
        out, access = _lanes(m, dst, length, True, "vector result")
        accesses = tuple(v for v in (a_access, b_access, access) if v is not None)
        return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency,
                      action=_lanes_action(fused, code, out, x, (y, y_fixed, y_tile)))
    if op in _ARITHMETIC:  # rounded in scratch made now, straight into vbuf
        out, access = _lanes(m, dst, length, True, "vector result")
        lanes = Lanes((m.batch, length), out, m)

        def action() -> None:
            result = operation(x, y(), lanes)
            if result is not out:
                out[...] = result

        accesses = tuple(v for v in (a_access, b_access, access) if v is not None)
        return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency, action=action)
    if op in _INTO:
        return _finish_into(m, dst, length, lambda out: operation(x, y(), out), [a_access, b_access])
    return _finish(m, dst, length, lambda: operation(x, y()), [a_access, b_access])


def _fused_lanes(kernel, op: int, out: np.ndarray, a: np.ndarray, *operands) -> None:
    """``native.c: lanes``: op on the A patterns and the operands read now (B, and C for vfma), into ``out``."""
    kernel(op, out, a, *(read() for read in operands))


def _lanes_action(fused, op: int, out: np.ndarray, a: np.ndarray, *operands) -> Callable[[], None]:
    """The action of ``native.c: lanes`` on A and the (read, fixed, tile) operands (B, and C for
    vfma; ``_operand``'s): a prepared step where every operand is the same array every run or a
    tiled one (its tiling a copy step into its scratch before), else a call reading them."""
    if all(fixed is not None or tile is not None for _, fixed, tile in operands):
        copies = [native.step("COPY", 0, tile[1], tile[2]) for _, fixed, tile in operands if fixed is None]
        prepared = native.step("LANES", op, out, a, *(tile[0] if fixed is None else fixed for _, fixed, tile in operands))
        if copies:
            prepared = None if prepared is None or None in copies else native.step("SEQ", 0, *copies, prepared)
        if prepared is not None:
            return prepared
    return partial(_fused_lanes, fused.lanes, op, out, a, *(read for read, _, _ in operands))


@impl("vfma")
def vfma(m: MachineState, b: str, c: str, dst: int, a: int):
    m.require_mode("bf16", "vfma")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vfma operand A")
    y, b_access, y_fixed, y_tile = _operand(m, b, _B, length, "vfma operand B")
    z, c_access, z_fixed, z_tile = _operand(m, c, _C, length, "vfma operand C")
    fused = native.kernels()
    if fused is not None and _native_op(BINARY, "mul") is not None and _native_op(BINARY, "add") is not None:
        # the product rounded, plus C rounded: one C pass
        out, access = _lanes(m, dst, length, True, "vector result")
        accesses = tuple(v for v in (a_access, b_access, c_access, access) if v is not None)
        return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency,
                      action=_lanes_action(fused, _FMA, out, x, (y, y_fixed, y_tile), (z, z_fixed, z_tile)))
    multiply, add = BINARY["mul"], BINARY["add"]
    product, total = Lanes((m.batch, length), None, m), None  # the product's scratch; the sum's, made with the result view

    def compute(out: np.ndarray) -> np.ndarray:
        nonlocal total
        if total is None:
            total = Lanes((m.batch, length), out, m)
        return add(multiply(x, y(), product), z(), total)

    return _finish_into(m, dst, length, compute, [a_access, b_access, c_access])


@impl("vsel")
def vsel(m: MachineState, b: str, c: str, dst: int, mask: int):
    m.require_mode("bf16", "vsel")
    (length,) = _LEN(m.regs)
    condition, m_access = _lanes(m, mask, length, False, "vsel mask")
    y, b_access, y_fixed, y_tile = _operand(m, b, _B, length, "vsel operand B")
    z, c_access, z_fixed, z_tile = _operand(m, c, _C, length, "vsel operand C")
    fused = native.kernels()
    if fused is not None:
        out, access = _lanes(m, dst, length, True, "vector result")
        accesses = tuple(v for v in (m_access, b_access, c_access, access) if v is not None)
        return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency,
                      action=_lanes_action(fused, _SELECT, out, condition, (y, y_fixed, y_tile), (z, z_fixed, z_tile)))
    return _finish(m, dst, length, lambda: np.where(condition != 0, y(), z()), [m_access, b_access, c_access])


@impl("vun")
def vun(m: MachineState, op: str, amount: int, dst: int, a: int):
    m.require_mode("bf16", "vun")
    (length,) = _LEN(m.regs)
    x, a_access = _lanes(m, a, length, False, "vun operand")
    operation = UNARY[op]
    fused, code = native.kernels(), _native_op(UNARY, op)
    if fused is not None and code is not None and 0 <= amount < 1 << 16:
        out, access = _lanes(m, dst, length, True, "vector result")
        accesses = tuple(v for v in (a_access, access) if v is not None)
        b = np.full(length, amount, np.uint16) if op in ("shl", "shr") else x  # the shift's amount per lane
        return Effect(_simd_cycles(m, 1, length), accesses, m.target.simd_latency,
                      action=native.step("LANES", code, out, x, b) or partial(fused.lanes, code, out, x, b))
    if op in ("shl", "shr"):
        return _finish_into(m, dst, length, lambda out: operation(x, amount, out), [a_access])
    return _finish(m, dst, length, lambda: operation(x, amount), [a_access])


def _take(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Entry ``index`` of each sample's table (both with the sample axis first); a test changes it
    to check that the reference notices."""
    return np.take_along_axis(table, index, axis=-1)


LOOKUP = [_take]  # vlut's gather, read when it runs


@impl("vlut")
def vlut(m: MachineState, dst: int, a: int):
    m.require_mode("bf16", "vlut")
    (length,), (base, _, _) = _LEN(m.regs), _B(m.regs)
    x, a_access = _lanes(m, a, length, False, "vlut operand A")
    table, t_access = _lanes(m, base, LANE_TABLE, False, "vlut table (v.b)")
    out, d_access = _lanes(m, dst, length, True, "vector result")
    low = np.empty(x.shape, np.intp)
    accesses = tuple(v for v in (a_access, t_access, d_access) if v is not None)
    effect = partial(Effect, lane_table_cycles(m.target, length), accesses, m.target.simd_latency)
    # the gather in C where out is clear of the table (each sample's lanes: a batch's views span the
    # samples between them) and x may be read lane by lane; a test that changes LOOKUP gets the numpy path
    if LOOKUP[0] is _take and not np.may_share_memory(out[0], table[0]) and native.lanewise(out, x):
        prepared = native.step("VLUT", 0, out, x, table)
        if prepared is not None:
            return effect(action=prepared)

    def action() -> None:  # each lane reads entry (its pattern's low byte) of its sample's table
        np.bitwise_and(x, 0xFF, out=low)
        out[...] = LOOKUP[0](table, low)

    return effect(action=action)


def _row_maximum(rows: np.ndarray) -> np.ndarray:
    """The max tree's result for each row of patterns, taken in any order: ``_maximum`` is
    associative and commutative (a NaN anywhere gives the canonical NaN; otherwise the largest
    value, whose pattern is unique but for zero, where +0 wins over -0), so the tree gives NaN if
    the row holds one, else the row's largest value, +0 when it is zero and the row holds +0."""
    top = _value(rows).max(axis=1)  # a NaN lane makes the row's max NaN
    bits = np.right_shift(top.view(np.uint32), _SIXTEEN).astype(np.uint16)
    zero = top == 0
    if zero.any():
        bits[zero] = np.where((rows[zero] == 0).any(axis=1), np.uint16(0), _SIGN)
    bits[np.isnan(top)] = _NAN
    return bits


@impl("vred")
def vred(m: MachineState, op: str, dst: int, a: int):
    m.require_mode("bf16", "vred")
    (length,), (row,) = _LEN(m.regs), _ROW(m.regs)
    if row < 1 or length % row:
        raise Fault(f"vred: v.len = {length} is not a multiple of v.row = {row}")
    x, a_access = _lanes(m, a, length, False, "vred input")
    combine = BINARY["add"]
    out, d_access = _lanes(m, dst, length // row, True, "vred result")
    rows = m.batch * (length // row)  # every sample's rows
    fused = native.kernels()
    if fused is not None and (op == "max" or _native_op(BINARY, "add") is not None):  # every row's tree in one C pass
        sums, code = np.empty(rows, np.uint16), 0 if op == "sum" else 1
        prepared = native.step("REDUCE", code, out, x)
        if prepared is not None:
            return Effect(reduction_cycles(m.target, length, row), tuple(v for v in (a_access, d_access) if v is not None),
                          m.target.simd_latency, action=prepared)

        def summed() -> None:
            fused.reduce_rows(code, sums, x.reshape(rows, row))
            out[...] = sums.reshape(out.shape)

        accesses = tuple(v for v in (a_access, d_access) if v is not None)
        return Effect(reduction_cycles(m.target, length, row), accesses, m.target.simd_latency, action=summed)
    # per level of the tree: the pairs' scratch (the sum's rounding lanes) and, for an odd width,
    # the next level (the combined pairs, then the unpaired last element)
    levels, width = [], row
    while width > 1:
        pairs = width // 2
        if op == "sum":  # (max takes each row whole: _row_maximum)
            levels.append((pairs, Lanes(rows * pairs, None, m),
                           np.empty((rows, width - pairs), np.uint16) if width % 2 else None))
        width -= pairs

    def action() -> None:
        level = x.reshape(rows, row)
        if op == "max":
            out[...] = _row_maximum(level).reshape(out.shape)
            return
        for pairs, lanes, joined in levels:
            a, b = level[:, 0:2 * pairs:2], level[:, 1:2 * pairs:2]
            paired = combine(a.reshape(-1), b.reshape(-1), lanes)
            if joined is None:
                level = paired.reshape(rows, pairs)
            else:
                joined[:, :pairs] = paired.reshape(rows, pairs)
                joined[:, pairs:] = level[:, 2 * pairs:]
                level = joined
        out[...] = level.reshape(out.shape)

    accesses = tuple(x for x in (a_access, d_access) if x is not None)
    return Effect(reduction_cycles(m.target, length, row), accesses, m.target.simd_latency, action=action)
