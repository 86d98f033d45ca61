"""bf16 functions as vector instructions: record a ``bf16_functions`` sequence, place its values in vbuf.

``Recorder`` implements the lane operations of ``tcc.ir.numerics.bf16_lanes`` by appending one
vector instruction (``vbin``, ``vfma``, ``vsel``, ``vun``, ``vred``) per operation; operations on
constants alone are evaluated at compile time with the reference's lane operations (the result is
the same constant either way).  Values live in one of three spaces: ``full`` (the rows x cols
tile), ``row`` (one value per row: reduction results) and ``col`` (one value per column: LayerNorm's
gamma and beta); an instruction runs over its widest operand's space and reads narrower operands
through their broadcast pattern.  ``schedule`` orders the instructions so that independent ones
fill the SIMD pipeline's latency; ``allocate`` gives every value a vbuf slot by liveness.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tcc.ir.numerics.bf16_lanes import NumpyLanes

FULL, ROW, COL, TABLE = "full", "row", "col", "table"
TABLE_ENTRIES = 256  # a ``vlut`` table's patterns (isa/cycles.py: LANE_TABLE)
_COMMUTATIVE = {"add", "mul", "max", "min", "and", "or", "xor", "iadd", "eq"}
_REVERSED = {"sub": "rsub", "isub": "irsub", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_LANE_NAME = {"and": "and_", "or": "or_"}  # NumpyLanes method names of the ISA's operations


class VectorProgramError(Exception):
    """A lane sequence the vector instructions cannot express (an operand in the wrong space)."""


@dataclass(frozen=True)
class Handle:
    """A value of the sequence: vbuf value ``index`` in ``space``, or (index None) a bf16 constant."""

    index: int | None
    space: str | None = None
    bits: int = 0

    @property
    def constant(self) -> bool:
        return self.index is None


@dataclass(frozen=True)
class VInstr:
    mnemonic: str
    op: str  # vbin/vun/vred operation ("" for vfma/vsel)
    space: str  # the space the instruction runs over (its destination's)
    dst: int
    a: int  # vbuf operand A (vsel: the mask)
    b: Handle | None = None
    c: Handle | None = None
    amount: int = 0  # vun: the shift; window: rows before
    after: int = 0  # window: rows after


def _widest(*handles: Handle) -> str:
    spaces = {h.space for h in handles if not h.constant}
    if FULL in spaces:
        return FULL
    if len(spaces) != 1:
        raise VectorProgramError(f"operands in spaces {sorted(s for s in spaces if s)} cannot be combined")
    return spaces.pop()


class Recorder:
    """The lane operations, recorded as vector instructions over vbuf values."""

    def __init__(self):
        self.code: list[VInstr] = []
        self.spaces: list[str] = []  # space of each value, by index
        self.tables: dict[int, np.ndarray] = {}  # the patterns of each table value, by index

    def input(self, space: str) -> Handle:
        self.spaces.append(space)
        return Handle(len(self.spaces) - 1, space)

    def _new(self, space: str) -> Handle:
        return self.input(space)

    @staticmethod
    def const(value: float) -> Handle:
        return Handle(None, bits=int(NumpyLanes.const(value)))

    @staticmethod
    def pattern(bits: int) -> Handle:
        return Handle(None, bits=bits & 0xFFFF)

    @staticmethod
    def _fold(name: str, *operands) -> Handle:
        args = [np.asarray(o.bits, np.uint16) if isinstance(o, Handle) else o for o in operands]
        with np.errstate(all="ignore"):
            return Handle(None, bits=int(getattr(NumpyLanes, _LANE_NAME.get(name, name))(*args)))

    def _binary(self, op: str, a: Handle, b: Handle) -> Handle:
        if a.constant and b.constant:
            return self._fold(op, a, b)
        space = _widest(a, b)
        if a.constant or a.space != space:
            a, b = b, a
            op = op if op in _COMMUTATIVE else _REVERSED.get(op, "")
            if not op or a.space != space:
                raise VectorProgramError(f"vbin needs operand A in the {space} space")
        dst = self._new(space)
        self.code.append(VInstr("vbin", op, space, dst.index, a.index, b))
        return dst

    def fma(self, a: Handle, b: Handle, c: Handle) -> Handle:
        if a.constant and b.constant and c.constant:
            return self._fold("fma", a, b, c)
        space = _widest(a, b, c)
        if a.constant or a.space != space:
            a, b = b, a  # the product commutes
        if a.constant or a.space != space:
            raise VectorProgramError(f"vfma needs a factor in the {space} space")
        dst = self._new(space)
        self.code.append(VInstr("vfma", "", space, dst.index, a.index, b, c))
        return dst

    def select(self, m: Handle, a: Handle, b: Handle) -> Handle:
        if m.constant:
            return a if m.bits else b
        space = _widest(m, a, b)
        if m.space != space:
            raise VectorProgramError(f"vsel needs its mask in the {space} space")
        dst = self._new(space)
        self.code.append(VInstr("vsel", "", space, dst.index, m.index, a, b))
        return dst

    def _unary(self, op: str, a: Handle, amount: int = 0) -> Handle:
        if a.constant:
            return self._fold(op, a, amount) if op in ("shl", "shr") else self._fold(op, a)
        dst = self._new(a.space)
        self.code.append(VInstr("vun", op, a.space, dst.index, a.index, amount=amount))
        return dst

    def _reduce(self, op: str, a: Handle) -> Handle:
        if a.constant or a.space != FULL:
            raise VectorProgramError("a row reduction reads a full tile")
        dst = self._new(ROW)
        self.code.append(VInstr("vred", op, FULL, dst.index, a.index))
        return dst

    def add(self, a, b):
        return self._binary("add", a, b)

    def sub(self, a, b):
        return self._binary("sub", a, b)

    def mul(self, a, b):
        return self._binary("mul", a, b)

    def max(self, a, b):
        return self._binary("max", a, b)

    def min(self, a, b):
        return self._binary("min", a, b)

    def and_(self, a, b):
        return self._binary("and", a, b)

    def or_(self, a, b):
        return self._binary("or", a, b)

    def xor(self, a, b):
        return self._binary("xor", a, b)

    def iadd(self, a, b):
        return self._binary("iadd", a, b)

    def isub(self, a, b):
        return self._binary("isub", a, b)

    def lt(self, a, b):
        return self._binary("lt", a, b)

    def le(self, a, b):
        return self._binary("le", a, b)

    def gt(self, a, b):
        return self._binary("gt", a, b)

    def ge(self, a, b):
        return self._binary("ge", a, b)

    def eq(self, a, b):
        return self._binary("eq", a, b)

    def shl(self, a, n: int):
        return self._unary("shl", a, n)

    def shr(self, a, n: int):
        return self._unary("shr", a, n)

    def rint(self, a):
        return self._unary("rint", a)

    def ftoi(self, a):
        return self._unary("ftoi", a)

    def itof(self, a):
        return self._unary("itof", a)

    def lookup(self, a: Handle, table) -> Handle:
        """``vlut``: entry (a's low byte) of a constant table, a value of the table space (one per
        distinct table, loaded with the op's constants)."""
        patterns = np.asarray(table, np.uint16)
        if a.constant:
            return Handle(None, bits=int(NumpyLanes.lookup(np.asarray(a.bits, np.uint16), patterns)))
        if patterns.shape != (TABLE_ENTRIES,):
            raise VectorProgramError(f"a lane table has {TABLE_ENTRIES} entries, not {patterns.size}")
        found = next((i for i, t in self.tables.items() if np.array_equal(t, patterns)), None)
        t = Handle(found, TABLE) if found is not None else self.input(TABLE)
        self.tables[t.index] = patterns
        dst = self._new(a.space)
        self.code.append(VInstr("vlut", "", a.space, dst.index, a.index, b=t))
        return dst

    def window_sum_squares(self, a, before: int, after: int):
        """Recorded as one ``window`` entry, which the emitter expands into the square of the tile
        and one multiply-add of the tile shifted by k rows per k (over a sub-range: address
        arithmetic)."""
        if a.constant or a.space != FULL:
            raise VectorProgramError("a window sum reads a full tile")
        dst = self._new(FULL)
        self.code.append(VInstr("window", "", FULL, dst.index, a.index, amount=before, after=after))
        return dst

    def row_sum(self, a):
        return self._reduce("sum", a)

    def row_max(self, a):
        return self._reduce("max", a)


def reads(ins: VInstr) -> list[int]:
    """The values (by index) an instruction reads: operand A and any non-constant B and C."""
    return [ins.a] + [h.index for h in (ins.b, ins.c) if h is not None and not h.constant]


def schedule(recorder: Recorder, latency: int, occupancy: Callable[[VInstr], int], issue: int = 1) -> None:
    """Reorder ``recorder.code`` (a list scheduler, in place) for an in-order pipelined unit that an
    instruction occupies ``occupancy(instruction)`` cycles and whose results are ready ``latency``
    cycles after that, behind a front end that issues one instruction every ``issue`` cycles (with
    its register writes): at each step, of the instructions whose operands are ready soonest, the
    one with the longest path of dependent instructions to the end (then the earliest recorded).
    A chain of dependent operations on a tile's per-row statistics (a rsqrt of LayerNorm's
    variance: a few cycles each behind a pipeline of 16) then has the independent operations of
    the sequence (special-case masks, other terms) in its latency shadows instead of after
    it.  Values are SSA (each instruction writes a new one), so every topological order computes
    the same results."""
    code = recorder.code
    producer = {ins.dst: i for i, ins in enumerate(code)}
    users: list[list[int]] = [[] for _ in code]
    waiting = [0] * len(code)
    for i, ins in enumerate(code):
        for v in set(reads(ins)):
            if v in producer:
                users[producer[v]].append(i)
                waiting[i] += 1
    cost = [occupancy(ins) for ins in code]
    path = [0] * len(code)  # cycles from an instruction's start to the end of the sequence
    for i in range(len(code) - 1, -1, -1):
        path[i] = cost[i] + latency + max((path[u] for u in users[i]), default=0)
    ready_at = [0] * len(code)
    ready = [(-path[i], i) for i in range(len(code)) if not waiting[i]]
    heapq.heapify(ready)
    order: list[int] = []
    clock = 0
    while ready:
        # of the ready instructions, those that could start by ``clock``; else the soonest one
        now = max(clock, min(ready_at[i] for _, i in ready))
        held = []
        while True:
            item = heapq.heappop(ready)
            if ready_at[item[1]] <= now:
                break
            held.append(item)
        for h in held:
            heapq.heappush(ready, h)
        i = item[1]
        order.append(i)
        start = max(clock, ready_at[i])
        clock = max(start + cost[i], (len(order) + 1) * issue)
        for u in users[i]:
            ready_at[u] = max(ready_at[u], start + cost[i] + latency)
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, (-path[u], u))
    recorder.code = [code[i] for i in order]


def allocate(recorder: Recorder, inputs: list[Handle], result: Handle) -> tuple[list[int], dict[str, int]]:
    """A vbuf slot for every value (by index) and the number of slots of each space: full-tile values
    take slots of a tile's size, row values (a per-row statistic) slots of a tile's rows, column
    values (a per-column scale) slots of its columns, so a long row's norm is not charged a whole
    tile for each statistic.  A value's slot is its index among its space's slots.  A value's slot
    is free after its last read; an instruction may write over an operand it reads element for
    element.  Row values each keep their own slot (never reused), as does each table (256 patterns)."""
    inputs = list(inputs) + [Handle(i, TABLE) for i in recorder.tables]  # tables: loaded with the inputs
    last = {h.index: -1 for h in inputs}
    for i, ins in enumerate(recorder.code):
        for h in (Handle(ins.a, ins.space), ins.b, ins.c):
            if h is not None and not h.constant:
                last[h.index] = i
    last[result.index] = len(recorder.code)
    slot = [-1] * len(recorder.spaces)
    # freed slots are reused oldest first: a write into the most recently read slot would wait for
    # that read's end (a false dependency through vbuf); the slot counts are the same either way.
    # Row values are never reused: their chains (a rsqrt or reciprocal of per-row statistics) are a
    # few cycles of work each behind the pipeline's latency, so even the oldest freed slot is often
    # read by an instruction still in the pipeline, and a row slot is only a tile's rows
    free: dict[str, deque[int]] = {FULL: deque(), ROW: deque(), COL: deque(), TABLE: deque()}
    count = {FULL: 0, ROW: 0, COL: 0, TABLE: 0}

    def take(v: int) -> int:
        space = recorder.spaces[v]
        if free[space]:
            return free[space].popleft()
        count[space] += 1
        return count[space] - 1

    def release(v: int) -> None:
        if recorder.spaces[v] not in (ROW, TABLE):  # row values and tables: a slot each
            free[recorder.spaces[v]].append(slot[v])

    for h in inputs:
        slot[h.index] = take(h.index)
    for i, ins in enumerate(recorder.code):
        read = {ins.a: ins.space} | {h.index: h.space for h in (ins.b, ins.c) if h is not None and not h.constant}
        done = [v for v in read if last[v] == i]
        in_place = [v for v in done if read[v] == recorder.spaces[ins.dst] and ins.mnemonic not in ("vred", "window")
                    and v == ins.a]  # operand A is read at the destination's own index
        for v in in_place:
            release(v)
        slot[ins.dst] = take(ins.dst)
        for v in done:
            if v not in in_place:
                release(v)
        if last.get(ins.dst, -1) < i:  # never read (and not the result)
            release(ins.dst)
    return slot, count


def joint(ins: VInstr) -> bool:
    """Whether an instruction of interleaved copies runs once over the whole tile: a row reduction
    and an operation on per-row values (a few lanes each: one instruction for all rows costs what
    one copy's does, and the copies' chains of them would only wait out the pipeline twice)."""
    return ins.mnemonic == "vred" or ins.space == ROW


def interleave(code: list[VInstr], latency: int, occupancies: list[Callable[[VInstr], int]],
               issue: int = 1, whole: Callable[[VInstr], int] | None = None) -> tuple[list[tuple[int | None, VInstr]], int]:
    """Copies of one instruction sequence, each on its own rows of the tile (``occupancies``: the
    cost of an instruction in each copy), merged for the in-order SIMD unit: at each step the next
    instruction of the copy that can start soonest (the first copy on a tie), each copy in its own
    order (so the slots ``allocate`` gave the sequence serve every copy, on its own rows).  While
    one copy's dependent chain waits out the pipeline (a row statistic's chain: a few cycles each
    behind a latency of 16) the other's work runs.  With ``whole`` (the cost over the whole tile)
    the ``joint`` instructions run once for all copies, as (None, instruction), when every copy has
    reached them: a row reduction reads every copy's rows, and the per-row chain after it is one
    chain instead of one per copy.  Returns (copy, instruction) in program order and the cycles the
    model gives the whole (``schedule``'s model)."""
    copies = len(occupancies)
    position = [0] * copies
    ends: list[dict[int, int]] = [{} for _ in occupancies]
    order: list[tuple[int | None, VInstr]] = []
    clock = 0

    def ready(copy: int, ins: VInstr) -> int:
        return max((ends[copy][v] + latency for v in reads(ins) if v in ends[copy]), default=0)

    while min(position) < len(code):
        best = None
        for copy, at in enumerate(position):
            if at == len(code):
                continue
            ins = code[at]
            if whole is not None and joint(ins):
                if any(other != at for other in position):
                    continue  # waits for every copy to reach it
                start = max(clock, *(ready(c, ins) for c in range(copies)))
            else:
                start = max(clock, ready(copy, ins))
            if best is None or start < best[0]:
                best = (start, copy)
        start, copy = best
        ins = code[position[copy]]
        if whole is not None and joint(ins):
            finish = start + whole(ins)
            for c in range(copies):
                ends[c][ins.dst] = finish
                position[c] += 1
            order.append((None, ins))
        else:
            position[copy] += 1
            finish = start + occupancies[copy](ins)
            ends[copy][ins.dst] = finish
            order.append((copy, ins))
        clock = max(finish, (len(order) + 1) * issue)
    finish = max((end + latency for copy_ends in ends for end in copy_ends.values()), default=0)
    return order, finish
