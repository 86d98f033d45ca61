"""Which bf16 ops the vector unit runs, and as what: a ``bf16_functions`` sequence over a rows x cols view.

An op lowers to a ``VectorLowering``: the view of its result as rows x cols (rows are independent,
so the code runs in tiles of rows), its operands with their space (a full tile, one value per row,
one value per column, or a scalar constant) and the lane sequence.  The reference interpreter runs
the same ``bf16_functions`` sequence (ir/interpreter/kernels_bf16.py through numerics.bf16_math).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tcc.ir import Op, Value, constant_value, is_constant, numerics
from tcc.ir.numerics import bf16_functions as spec
from tcc.isa.cycles import lane_table_cycles, reduction_cycles

from .errors import BackendError, unsupported
from .vector_program import COL, FULL, ROW, TABLE, TABLE_ENTRIES, Handle, Recorder, VectorProgramError, allocate, interleave, schedule


@dataclass
class VectorInput:
    """An operand: an activation or constant tensor in DRAM (``value``; ``data`` holds a constant's
    bf16 patterns as the tile reads them), a scalar constant (``bits``), or (``on_chip``) values the
    step before writes into the operand's slot (a softmax's row maxima: row_max.py)."""

    space: str
    value: Value | None = None
    data: np.ndarray | None = None
    bits: int | None = None
    on_chip: bool = False


@dataclass
class VectorLowering:
    rows: int
    cols: int
    inputs: list[VectorInput]
    function: Callable  # function(L, *operand handles) -> result handle
    tile_columns: bool = False  # rows depend on each other (LRN's channels): tile along columns instead
    batches: int = 1  # independent rows x cols blocks, one after another in DRAM


_BINARY: dict[str, Callable] = {
    "add": lambda L, a, b: L.add(a, b), "sub": lambda L, a, b: L.sub(a, b), "mul": lambda L, a, b: L.mul(a, b),
    "max": lambda L, a, b: L.max(a, b), "min": lambda L, a, b: L.min(a, b), "div": spec.div,
}
#: bf16 op kinds the vector unit runs (each has the same sequence in ir/interpreter/kernels_bf16.py).
#: Row normalizations along the last axis: (the sequence, the sequence given each row's maximum).
ROW_SOFTMAXES: dict[str, tuple[Callable, Callable]] = {"softmax": (spec.softmax, spec.softmax_of_max),
                                                       "log_softmax": (spec.log_softmax, spec.log_softmax_of_max)}
VECTOR_KINDS = frozenset(_BINARY) | frozenset(spec.UNARY) | frozenset(ROW_SOFTMAXES) | {"gelu", "layer_norm", "rms_norm", "lrn"}


def _patterns(v: Value, shape) -> np.ndarray:
    data = numerics.to_bf16(constant_value(v))
    return np.ascontiguousarray(np.broadcast_to(np.asarray(data, np.uint16).reshape(v.type.shape), shape))


def _tensor(v: Value, space: str, shape) -> VectorInput:
    if is_constant(v):
        return VectorInput(space, v, data=_patterns(v, shape).reshape(-1))
    return VectorInput(space, v)


def _scalar(v: Value) -> VectorInput:
    return VectorInput(FULL, bits=int(_patterns(v, v.type.shape).reshape(-1)[0]))


def _broadcast_space(v: Value, shape: tuple) -> tuple[str, int] | None:
    """(space, block size) of an operand broadcast to ``shape`` along one leading (row) or trailing
    (col) block of dims (one element: a column block of 1); None when it is neither.  Dims of 1 in
    ``shape`` belong to either block: [1, C, 1, 1] over [1, C, H, W] (ConvNeXt-V2's GRN) is one value
    per row of H W, [1, h, T, 1] over [1, h, T, d] (EfficientViT's attention normalizer) one per row of d."""
    padded = (1,) * (len(shape) - v.type.rank) + tuple(v.type.shape)
    kept = [i for i, d in enumerate(padded) if d != 1]
    if not kept:  # one element (GRN's mean norm): the same column of every row
        return COL, 1
    if kept != list(range(kept[0], kept[-1] + 1)) or any(padded[i] != shape[i] for i in kept):
        return None
    block = int(np.prod([shape[i] for i in kept]))
    if all(d == 1 for d in shape[kept[-1] + 1:]):
        return COL, block
    if all(d == 1 for d in shape[:kept[0]]):
        return ROW, block
    return None


def _binary(op: Op) -> VectorLowering:
    shape = tuple(op.result.type.shape)
    n = int(np.prod(shape))
    rows, cols = n, 1
    inputs = []
    for v in op.operands:
        if v.type.size == 1 and is_constant(v):
            inputs.append(_scalar(v))
        elif tuple(v.type.shape) == shape:
            inputs.append(VectorInput(FULL))
        else:
            found = _broadcast_space(v, shape)
            if found is None and is_constant(v):  # broadcast along middle dims: stored at the result's shape
                inputs.append(VectorInput(FULL, v, data=_patterns(v, shape).reshape(-1)))
                continue
            if found is None or any(i.space != FULL for i in inputs):
                raise unsupported(op, "the vector unit broadcasts one activation along leading or trailing dims only")
            space, block = found
            rows, cols = (n // block, block) if space == COL else (block, n // block)
            inputs.append(VectorInput(space))
    for i, v in zip(inputs, op.operands):
        if i.bits is None and i.data is None:
            i.value = v
            i.data = _patterns(v, v.type.shape).reshape(-1) if is_constant(v) else None
    if all(i.bits is not None for i in inputs):
        raise unsupported(op, "every operand is a constant (fold-constants folds these)")
    return VectorLowering(rows, cols, inputs, _BINARY[op.kind])


def _normalization(op: Op) -> VectorLowering:
    x = op.x
    axis = op.axis % x.type.rank
    trailing = tuple(x.type.shape[axis:])
    cols = int(np.prod(trailing))
    params = [op.scale] + ([op.bias] if op.kind == "layer_norm" and op.bias is not None else [])
    for p in params:
        if not is_constant(p) and tuple(p.type.shape) != trailing:
            raise unsupported(op, "a non-constant scale or bias must have the normalized shape")
    # a one-element constant scale or bias (a group norm's unit scale) is a scalar register, not a row
    inputs = [VectorInput(FULL, x)] + [_scalar(p) if is_constant(p) and p.type.size == 1 else _tensor(p, COL, trailing)
                                       for p in params]
    eps = op.epsilon
    if op.kind == "rms_norm":
        return VectorLowering(x.type.size // max(cols, 1), cols, inputs,
                              lambda L, v, g: spec.rms_norm(L, v, g, cols, eps))
    if len(params) == 1:  # no bias: the reference adds zeros
        inputs.append(VectorInput(FULL, bits=0))
    return VectorLowering(x.type.size // max(cols, 1), cols, inputs,
                          lambda L, v, g, b: spec.layer_norm(L, v, g, b, cols, eps))


def vector_lowering(op: Op, given_max: bool = False) -> VectorLowering:
    """The lowering of a bf16 op onto the vector unit; BackendError when it has none.  With
    ``given_max``, a softmax's row maxima are an operand written on chip before it (row_max.py)."""
    if op.kind not in VECTOR_KINDS:
        raise unsupported(op, f"no vector-unit lowering for {op.kind}; the vector unit runs "
                              f"{', '.join(sorted(VECTOR_KINDS))}")
    if op.result.type.size == 0:
        raise unsupported(op, "an empty tensor")
    if op.kind in _BINARY:
        return _binary(op)
    x = op.x
    if op.kind in spec.UNARY:
        return VectorLowering(x.type.size, 1, [VectorInput(FULL, x)], spec.UNARY[op.kind])
    if op.kind == "gelu":
        return VectorLowering(x.type.size, 1, [VectorInput(FULL, x)], spec.GELU[op.approximate])
    if op.kind == "lrn":
        if x.type.rank < 2 or op.bias <= 0:
            raise unsupported(op, "the vector unit runs LRN on [N, C, ...] tensors with bias > 0")
        n, c = x.type.shape[:2]
        size, alpha, beta, bias = op.size, op.alpha, op.beta, op.bias
        return VectorLowering(c, x.type.size // max(n * c, 1), [VectorInput(FULL, x)],
                              lambda L, v: spec.lrn(L, v, size, alpha, beta, bias), tile_columns=True, batches=n)
    if op.kind in ROW_SOFTMAXES:
        axis = op.axis % x.type.rank
        if any(d != 1 for d in x.type.shape[axis + 1:]):
            raise unsupported(op, f"the vector unit runs {op.kind} along the last axis of size > 1 only")
        cols = x.type.shape[axis]
        whole, of_max = ROW_SOFTMAXES[op.kind]
        if given_max:
            return VectorLowering(x.type.size // cols, cols, [VectorInput(FULL, x), VectorInput(ROW, on_chip=True)],
                                  of_max)
        return VectorLowering(x.type.size // cols, cols, [VectorInput(FULL, x)], whole)
    return _normalization(op)


@dataclass
class VectorCode:
    """A recorded sequence: its instructions, the handles of its inputs and result, vbuf slots."""

    recorder: Recorder
    handles: list[Handle]
    result: Handle
    slots: list[int]
    counts: dict  # slots per space (FULL: a tile each, ROW: a tile's rows, COL: its columns)

    @property
    def slot_count(self) -> int:
        return self.counts[FULL]

    def _sizes(self, tile_rows: int, tile_cols: int) -> dict:
        return {FULL: tile_rows * tile_cols * 2, ROW: tile_rows * 2, COL: tile_cols * 2, TABLE: TABLE_ENTRIES * 2}

    def set_bytes(self, tile_rows: int, tile_cols: int) -> int:
        """Bytes of one set of slots for a tile of tile_rows x tile_cols: the full slots, then the
        row slots, then the column slots, then the tables."""
        size = self._sizes(tile_rows, tile_cols)
        return sum(self.counts[s] * size[s] for s in (FULL, ROW, COL, TABLE))

    def offsets(self, tile_rows: int, tile_cols: int) -> list[int]:
        """vbuf offset of every value (by index) within its set of slots."""
        size = self._sizes(tile_rows, tile_cols)
        before = {FULL: 0, ROW: self.counts[FULL] * size[FULL]}
        before[COL] = before[ROW] + self.counts[ROW] * size[ROW]
        before[TABLE] = before[COL] + self.counts[COL] * size[COL]
        return [before[space] + slot * size[space] for space, slot in zip(self.recorder.spaces, self.slots)]


def record(op: Op, lowering: VectorLowering) -> VectorCode:
    recorder = Recorder()
    handles = [recorder.pattern(i.bits) if i.bits is not None else recorder.input(i.space) for i in lowering.inputs]
    try:
        result = lowering.function(recorder, *handles)
    except VectorProgramError as exc:
        raise unsupported(op, str(exc)) from None
    if result.constant or result.space != FULL:
        raise unsupported(op, "the result is not a full tile")
    inputs = [h for h in handles if not h.constant]
    slots, counts = allocate(recorder, inputs, result)  # (and the tables the sequence looks up)
    return VectorCode(recorder, handles, result, slots, counts)


def _tile(lowering: VectorLowering, code: VectorCode, sets: int, vbuf_bytes: int) -> tuple[int, int]:
    """(rows, cols) of the largest tile whose ``sets`` sets of slots fit ``vbuf_bytes`` (0 rows or
    columns when one row, or one column for column tiles, does not).  A set holds
    full * rows * cols + row * rows + col * cols elements."""
    room = vbuf_bytes // (2 * sets)
    full, row, col = (code.counts[s] for s in (FULL, ROW, COL))
    room -= code.counts[TABLE] * TABLE_ENTRIES
    if lowering.tile_columns:
        n = max(0, room - row * lowering.rows) // (full * lowering.rows + col)
        return lowering.rows, min(lowering.cols, n)
    n = max(0, room - col * lowering.cols) // (full * lowering.cols + row)
    return min(lowering.rows, n), lowering.cols


def tile_shape(op: Op, lowering: VectorLowering, code: VectorCode, vbuf_bytes: int) -> tuple[int, int, int]:
    """(rows, cols, buffers) of a tile so that every slot of the sequence fits vbuf; BackendError
    if one row (one column, for column tiles) does not.  An op of more than one tile runs with two
    sets of slots (``buffers`` 2, tiles of half the size) when one row still fits: tiles alternate
    between the sets, so one tile's loads and stores overlap the other tile's instructions."""
    rows, cols = _tile(lowering, code, 1, vbuf_bytes)
    if min(rows, cols) < 1:
        live = f"{code.counts[FULL]} live vectors (and {code.counts[ROW] + code.counts[COL]} row or column ones)"
        if lowering.tile_columns:
            raise unsupported(op, f"a column of {lowering.rows} elements in {live} exceeds the vector buffer "
                                  f"({vbuf_bytes} bytes)")
        raise unsupported(op, f"a row of {lowering.cols} elements in {live} exceeds the vector buffer "
                              f"({vbuf_bytes} bytes)")
    if rows * cols * lowering.batches < lowering.rows * lowering.cols * lowering.batches:
        half_rows, half_cols = _tile(lowering, code, 2, vbuf_bytes)
        if min(half_rows, half_cols) >= 1:
            return half_rows, half_cols, 2
    return rows, cols, 1


ISSUE = 3  # front-end cycles per vector instruction with its register writes (length, operand pointers)


def _occupancy(target, rows: int, cols: int) -> Callable:
    """Cycles a vector instruction occupies the SIMD unit on a rows x cols tile (impl_vector's
    costs less the pipeline latency that overlaps the next instruction)."""
    lanes, latency = target.simd_lanes, target.simd_latency
    length = {FULL: rows * cols, ROW: rows, COL: cols}
    reduce = reduction_cycles(target, rows * cols, cols) - latency
    window = -(-rows * cols // lanes)

    def occupancy(ins) -> int:
        if ins.mnemonic == "vred":
            return reduce
        if ins.mnemonic == "window":
            return window * (1 + ins.amount + ins.after)
        if ins.mnemonic == "vlut":
            return lane_table_cycles(target, length[ins.space]) - latency
        return -(-length[ins.space] // lanes)
    return occupancy


def scheduled(op: Op, lowering: VectorLowering, code: VectorCode, target) -> tuple[VectorCode, tuple[int, int, int]]:
    """``code`` with its instructions reordered for the SIMD pipeline (vector_program.schedule),
    costed at the tile the recorded order gets, and its tile (rows, cols, buffers); the recorded
    order when the new one needs more slots than fit that tile (its tile would be smaller)."""
    tile = tile_shape(op, lowering, code, target.vbuf_bytes)
    recorder = Recorder()
    recorder.spaces = list(code.recorder.spaces)
    recorder.code = list(code.recorder.code)
    recorder.tables = dict(code.recorder.tables)
    schedule(recorder, target.simd_latency, _occupancy(target, *tile[:2]), ISSUE)
    slots, counts = allocate(recorder, [h for h in code.handles if not h.constant], code.result)
    ordered = VectorCode(recorder, code.handles, code.result, slots, counts)
    try:
        if tile_shape(op, lowering, ordered, target.vbuf_bytes) == tile:
            return ordered, tile
    except BackendError:
        pass
    return code, tile


def row_halves(lowering: VectorLowering, code: VectorCode, rows: int, cols: int, target):
    """The program order of a rows x cols tile's instructions as two copies of the sequence, each on
    half of the rows (``interleave``), when the model times that shorter than the sequence over the
    whole tile: [(rows offset, rows), ...] of the copies and [(copy, instruction), ...] (copy None: a
    row reduction or per-row instruction run once over the whole tile, ``vector_program.joint``);
    else None.
    Only where rows are independent and every value is per element or per row: an LRN window
    reads neighbouring rows, and a value per column is shared by the copies."""
    if lowering.tile_columns or rows < 2 or any(ins.space == COL or ins.mnemonic == "window"
                                                for ins in code.recorder.code):
        return None
    latency, instructions = target.simd_latency, code.recorder.code
    tile = _occupancy(target, rows, cols)
    _, whole = interleave(instructions, latency, [tile], ISSUE)
    parts = [(0, rows // 2), (rows // 2, rows - rows // 2)]
    order, split = interleave(instructions, latency, [_occupancy(target, n, cols) for _, n in parts], ISSUE, tile)
    return (parts, order) if split < whole else None


def tile_cycles(lowering: VectorLowering, code: VectorCode, rows: int, cols: int, target, halves) -> int:
    """The cycles the cost model gives a rows x cols tile's instructions (as ``row_halves`` chose)."""
    latency, instructions = target.simd_latency, code.recorder.code
    tile = _occupancy(target, rows, cols)
    if halves is None:
        return interleave(instructions, latency, [tile], ISSUE)[1]
    parts, _ = halves
    return interleave(instructions, latency, [_occupancy(target, n, cols) for _, n in parts], ISSUE, tile)[1]
