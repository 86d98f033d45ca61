"""The requantization unit: ``requant`` (accumulators or int8 -> int8/int32), ``eadd``, ``emul`` and ``lut``.

The input stage and all rounding are ``numerics.centre_and_shift`` and ``numerics.requantize``, the
rules the reference interpreter applies.  Nothing wraps: ``[qmin, qmax]`` must lie inside the output
type (int8, or int32 for ``requant ... i32``, which also writes to abuf), and ``pre_shift`` must be
in [0, 62] without overflowing int64.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tcc.ir import numerics

from ..cycles import POST_LATENCY, post_cycles
from . import native, rule_tables
from .machine import ABUF, ACC, PBUF, Effect, Fault, MachineState, impl, registers, sample_fault, sample_prefix

_RQ = registers("rq.params", "rq.m", "rq.n", "rq.src_row", "rq.dst_row", "rq.src_zp", "rq.pre_shift",
                "rq.zp", "rq.qmin", "rq.qmax")
_EA = registers("ea.b", "ea.len", "ea.a_zp", "ea.b_zp", "ea.a_mult", "ea.a_shift", "ea.b_mult", "ea.b_shift",
                "ea.pre_shift", "ea.out_mult", "ea.out_shift", "ea.zp", "ea.qmin", "ea.qmax")
_EM = registers("ea.b", "ea.len", "ea.a_zp", "ea.b_zp", "ea.out_mult", "ea.out_shift", "ea.zp", "ea.qmin",
                "ea.qmax", "em.b_rep", "em.b_period", "em.b_phase")
_LT = registers("lt.table", "lt.len")
_RQ_ROWS = registers("rq.by_row", "rq.row_shift")
_CHUNK_ELEMENTS = 1 << 16  # elements a requantization of a batch handles at once (float64 scratch: 512 KB)
_OUT_RANGE = {"i8": (numerics.INT8_MIN, numerics.INT8_MAX), "i32": (numerics.INT32_MIN, numerics.INT32_MAX)}


def _check_saturation(out: str, qmin: int, qmax: int, names: str) -> None:
    lo, hi = _OUT_RANGE[out]
    if not lo <= qmin <= qmax <= hi:
        raise Fault(f"{names} = [{qmin}, {qmax}] must be an ordered range inside {out} [{lo}, {hi}]")


def _requantizers(*parameters: tuple) -> tuple | str:
    """One numerics.Requantizer per (multiplier, shift, zero point, qmin, qmax, rounding), made once
    when the instruction is prepared; or the reason one is refused (the action raises it, as
    numerics.requantize would when the instruction runs)."""
    try:
        return tuple(numerics.Requantizer(*p) for p in parameters)
    except ValueError as exc:
        return str(exc)


def _cycles(m: MachineState, elements: int) -> int:
    return post_cycles(m.target, elements)


@impl("requant")
def requant(m: MachineState, src: str, out: str, rounding: str, dst: int, srcaddr: int):
    m.require_mode("int8", "requant")
    params_at, rows, cols, src_row, dst_row, src_zp, pre_shift, zp, qmin, qmax = _RQ(m.regs)
    _check_saturation(out, qmin, qmax, "rq.qmin, rq.qmax")
    if src == "acc":
        x, x_access = m.region(ACC, srcaddr, (rows, cols), (4 * src_row, 4), "<i4", False, "requant source")
    else:
        x, x_access = m.region(ABUF, srcaddr, (rows, cols), (src_row, 1), np.int8, False, "requant source")
    params, p_access = m.region(PBUF, params_at, (cols, 3), (12, 4), "<i4", False, "requant parameters")
    by_row, row_shift_at = _RQ_ROWS(m.regs)
    row_shift, r_access = None, None
    if by_row:
        row_shift, r_access = m.region(PBUF, row_shift_at, (rows,), (1,), np.int8, False, "requant row shifts")
    if out == "i8":
        dst_view, d_access = m.region(ABUF, dst, (rows, cols), (dst_row, 1), np.int8, True, "requant output")
    else:
        dst_view, d_access = m.region(ABUF, dst, (rows, cols), (4 * dst_row, 4), "<i4", True, "requant output")

    magnitude = -_OUT_RANGE["i32"][0] if src == "acc" else -numerics.INT8_MIN
    fused = native.kernels() if rounding in numerics.ROUNDING_MODES and x.size else None
    mode = numerics.ROUNDING_MODES.index(rounding) if fused is not None else -1
    # one channel over many rows: the kernel takes the rows as its lanes (one set of parameters); narrow
    # rows of contiguous lanes: ``joined`` of them side by side as one row of lanes (the table repeated)
    c_views, joined = (x, dst_view), 1
    if cols == 1 and rows > 1 and row_shift is None:
        c_views = (x.swapaxes(-1, -2), dst_view.swapaxes(-1, -2))
    elif row_shift is None and fused is not None:
        c_views, joined = _joined_rows(x, dst_view)
    c_parameters: list = [None, None]  # the params bytes and their native.requant_parameters table
    # the stage as a prepared C step (native.step REQUANT) made with that table: it runs while pbuf
    # holds the same parameters in every sample (None: to be made; False: the kernels refused it)
    c_step: list = [None]
    scalars = np.array([src_zp, pre_shift, zp, qmin, qmax, mode], np.int64)
    wide = src == "acc" and hasattr(fused, "requant_wide")  # int32 lanes: where no lane can be refused

    def in_c(i: int | None = None) -> bool:
        """The stage in one C pass (every sample with sample 0's parameters, or sample i with its
        own); False when there is no kernel or it refuses (the numpy path then raises the spec's error)."""
        if fused is None:
            return False
        block = params[0 if i is None else i]
        key = block.tobytes()
        if key != c_parameters[0]:
            table = native.requant_parameters(block)
            if joined > 1 and table.shape[1] > 1:  # lane j of a joined row is channel j % cols
                table = np.ascontiguousarray(np.tile(table, (1, joined)))
            c_parameters[:] = key, table
            c_step[0] = None
        source, target, shifts = (*c_views, row_shift) if i is None else (c_views[0][i], c_views[1][i],
                                                                            None if row_shift is None else row_shift[i])
        if i is None and shifts is None and c_step[0] is None:
            c_step[0] = native.step("REQUANT", 0, source, target, c_parameters[1], params,
                                    np.frombuffer(key, np.uint8), scalars) or False
        if wide and shifts is None and fused.requant_wide(source, target, c_parameters[1], src_zp, pre_shift, zp,
                                                          qmin, qmax, mode):
            return True  # (no lane could be refused: the kernel without per-lane checks)
        return fused.requant(source, target, c_parameters[1], src_zp, pre_shift, zp, qmin, qmax, mode, shifts,
                             numerics.ROW_SHIFT_MAX)

    # params bytes, their AffineRequantizer and (int8 source) its table: rebuilt when pbuf changes
    prepared: list = [None, None, None]
    lookup = _ByteLookup(x, dst_view) if src == "abuf" and row_shift is None and x.size else None

    batch = m.batch
    # a few samples at a time: the stage's float64 lanes of a large batch leave the caches
    step = max(1, _CHUNK_ELEMENTS // max(rows * cols, 1))
    parts = [(x, dst_view)] if step >= batch else [(x[s:s + step], dst_view[s:s + step]) for s in range(0, batch, step)]

    def shifted(stage, source: np.ndarray, target: np.ndarray, shifts: np.ndarray) -> None:
        """``stage`` on accumulators whose row m is 2**shifts[m] finer (one sample's rows, or every sample's)."""
        v = stage.centring(source)
        v += stage.bias
        r = stage.requantizer
        target[...] = numerics.Requantizer(r.multiplier, numerics.row_shifted(r.shift[None, :], shifts),
                                           zp, qmin, qmax, rounding)(v)

    def action() -> None:
        prepared_step = c_step[0]
        if prepared_step and prepared_step():  # pbuf's parameters as when it was made, no lane refused
            return
        if batch > 1 and not (params[1:] == params[:1]).all():  # pbuf's parameters differ between samples
            for i in range(batch):
                sample_requant(i)
            return
        if in_c():
            return
        try:
            key = params[0].tobytes()
            if key != prepared[0]:
                bias, mult, shift = (params[0, :, i].astype(np.int64) for i in range(3))
                prepared[:] = (None, numerics.AffineRequantizer(src_zp, pre_shift, magnitude, bias, mult, shift, zp,
                                                                qmin, qmax, rounding), None)
                if lookup is not None:
                    prepared[2] = lookup.table(prepared[1])
                prepared[0] = key
            stage = prepared[1]
            if prepared[2] is not None:
                lookup(prepared[2])
                return
            if row_shift is None:
                for source, target in parts:
                    stage(source, target)
                return
            shifted(stage, x, dst_view, row_shift)
        except ValueError as exc:
            for i in range(batch if batch > 1 else 0):  # the first sample that faults alone names itself
                sample_requant(i)
            raise Fault(f"requant: {exc}") from None

    def sample_requant(i: int) -> None:
        """Sample i alone with its own parameters (a batch whose pbuf differs, or finding the sample
        that faults): the stage made from them, written to its rows."""
        bias, mult, shift = (params[i, :, j].astype(np.int64) for j in range(3))
        try:
            stage = numerics.AffineRequantizer(src_zp, pre_shift, magnitude, bias, mult, shift, zp, qmin, qmax,
                                               rounding)
            if row_shift is None:
                stage(x[i], dst_view[i])
                return
            shifted(stage, x[i], dst_view[i], row_shift[i])
        except ValueError as exc:
            raise Fault(f"{sample_prefix(batch, i)}requant: {exc}") from None

    def settled():
        """After the first run: the step that run made, as the plan's action itself (no Python frame),
        calling ``action`` where it declines (pbuf's parameters changed, a lane refused); None where
        no step was made."""
        if not c_step[0]:
            return None
        return native.step("REQUANT", 0, *c_views, c_parameters[1], params, np.frombuffer(c_parameters[0], np.uint8),
                           scalars, action)

    accesses = tuple(a for a in (x_access, p_access, r_access, d_access) if a is not None)
    return Effect(_cycles(m, rows * cols), accesses, POST_LATENCY, action=action, settled=settled)


_LANE_ROW = 512  # the C kernel's rows: narrow rows joined up to this many lanes (each row pays a call and a tail)


def _joined_rows(x: np.ndarray, out: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """``x`` and ``out`` (N, rows, cols) as (N, rows / r, r * cols) views: r rows side by side as one
    row of lanes (lane j is channel j % cols), for the largest r dividing rows with at most
    _LANE_ROW lanes, a multiple of 16 lanes if one is (the kernel's vectors: no scalar tail); r = 1
    where the rows are wide or their lanes not contiguous from row to row."""
    _, rows, cols = x.shape
    fits = [r for r in range(1, min(rows, _LANE_ROW // max(cols, 1)) + 1) if rows % r == 0]
    best = max(fits, key=lambda r: (r * cols % 16 == 0, r), default=1)
    if best > 1:
        shape = (x.shape[0], rows // best, best * cols)
        views = x.view(), out.view()
        try:
            for view in views:
                view.shape = shape  # (AttributeError where the rows do not follow each other)
            return views, best
        except AttributeError:
            pass
    return (x, out), 1


class _ByteLookup:
    """``requant abuf`` (int8 in, no row shifts) as a table: its stage evaluated once on every int8
    value in every column (rule_tables' argument: the table *is* the stage, so each output is the
    stage's own result for its input and column), then one gather per run, indexed by the input
    byte (and the column, when the columns' parameters differ).  A stage that refuses some int8
    value gets no table (``table`` gives None): the action then runs the stage on the data."""

    __slots__ = ("source", "out", "_index", "_columns")

    def __init__(self, x: np.ndarray, out: np.ndarray):
        self.source, self.out = x.view(np.uint8), out
        cols = x.shape[-1]
        self._index = np.empty(x.shape, np.intp) if cols > 1 else None
        self._columns = np.arange(cols, dtype=np.intp)

    def table(self, stage) -> np.ndarray | None:
        """The stage's output for byte b in column c at ``b`` (every column alike) or ``b * cols + c``."""
        cols = self._columns.size
        try:
            values = stage(np.broadcast_to(rule_tables.BYTE_VALUES[:, None], (256, cols)))
        except ValueError:
            return None
        codes = np.asarray(values).astype(self.out.dtype)  # integers inside out's type (qmin, qmax are)
        if (codes == codes[:, :1]).all():
            self._index = None
            return np.ascontiguousarray(codes[:, 0])
        if self._index is None:
            self._index = np.empty(self.source.shape, np.intp)
        return codes.reshape(-1)

    def __call__(self, table: np.ndarray) -> None:
        index = self.source
        if self._index is not None:
            index = np.multiply(self.source, self._columns.size, out=self._index, dtype=np.intp)
            index += self._columns
        table.take(index, None, self.out, "clip")  # "clip": every index is inside the table


@impl("eadd")
def eadd(m: MachineState, op: str, rounding: str, dst: int, a: int):
    m.require_mode("int8", "eadd")
    (b, length, a_zp, b_zp, a_mult, a_shift, b_mult, b_shift, pre_shift, out_mult, out_shift, zp,
     qmin, qmax) = _EA(m.regs)
    _check_saturation("i8", qmin, qmax, "ea.qmin, ea.qmax")
    a_view, a_access = m.region(ABUF, a, (length,), (1,), np.int8, False, "eadd operand a")
    b_view, b_access = m.region(ABUF, b, (length,), (1,), np.int8, False, "eadd operand b (ea.b)")
    out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "eadd output")

    i32 = (numerics.INT32_MIN, numerics.INT32_MAX, rounding)
    magnitude = -numerics.INT8_MIN
    centre_a, centre_b = numerics.Centring(a_zp, pre_shift, magnitude), numerics.Centring(b_zp, pre_shift, magnitude)
    requantizers = _requantizers((a_mult, a_shift, 0) + i32, (b_mult, b_shift, 0) + i32,
                                 (out_mult, out_shift, zp, qmin, qmax, rounding))

    def rule(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        va, vb = centre_a(x), centre_b(y)
        if isinstance(requantizers, str):
            raise ValueError(requantizers)
        rq_a, rq_b, rq_out = requantizers
        va, vb = rq_a(va), rq_b(vb)
        return rq_out(va + vb if op == "add" else va - vb)

    key = ("eadd", op, rounding, a_zp, b_zp, a_mult, a_shift, b_mult, b_shift, pre_shift, out_mult, out_shift, zp,
           qmin, qmax)

    def pair_table() -> np.ndarray | None:
        """The rule's table of every (a, b) pair (made on first use: not at all where the EADD step runs)."""
        return rule_tables.table(m, key, lambda: rule(rule_tables.PAIR_A, rule_tables.PAIR_B).astype(np.int8))

    pair_index = rule_tables.PairIndex((m.batch, length))
    fused = native.kernels()

    def action() -> None:
        pairs = pair_table()
        if pairs is not None and fused is not None:  # the table read in one C pass
            fused.pair_lookup(out, a_view, b_view, pairs)
            return
        if pairs is not None:
            pairs.take(pair_index(a_view, b_view), None, out, "clip")  # "clip": no bounds pass, no buffering
            return
        try:
            out[...] = rule(a_view, b_view)
        except ValueError as exc:
            raise sample_fault(m, "eadd", lambda i: rule(a_view[i], b_view[i]), exc) from None

    prepared = _eadd_step(m, op, rounding, out, a_view, b_view, centre_a, centre_b, requantizers,
                          (out_mult, out_shift, zp, qmin, qmax), action)
    if prepared is None and pair_table() is not None:
        prepared = native.step("PAIR", 0, out, a_view, b_view, pair_table())
    accesses = tuple(x for x in (a_access, b_access, d_access) if x is not None)
    return Effect(_cycles(m, length), accesses, POST_LATENCY, action=prepared or action)


def _eadd_step(m: MachineState, op: str, rounding: str, out: np.ndarray, a_view: np.ndarray, b_view: np.ndarray,
               centre_a, centre_b, requantizers, output: tuple, action: Callable[[], None]):
    """eadd as a prepared C step (native.step EADD) where the kernels take it: each operand's term
    rq(centre(x)) from a 256-entry table of every int8 value (evaluated here by the same rule as the
    pair table), their sum or difference, then the output requantizer in C (requant's stage): 1 KB
    of tables where the pair table takes 64 KB (CRNN's 120 eadds: 8 MB a run reads from).  None
    where the rule is refused, the terms could sum past int32 or the kernels refuse; ``action``
    runs where the step declines (a lane the spec refuses).  ``output``: the output requantizer's
    (multiplier, shift, zero point, qmin, qmax) registers."""
    if isinstance(requantizers, str) or native.kernels() is None:
        return None
    rq_a, rq_b, _ = requantizers
    out_mult, out_shift, zp, qmin, qmax = output
    try:
        terms = np.stack([rq_a(centre_a(rule_tables.BYTE_VALUES)), rq_b(centre_b(rule_tables.BYTE_VALUES))])
    except ValueError:
        return None
    if int(np.abs(terms).max(axis=1).sum()) > numerics.INT32_MAX:
        return None
    sums = m.tables.get(("eadd sums", out.shape))  # scratch shared by the machine's eadds of this shape
    if sums is None:
        sums = m.tables[("eadd sums", out.shape)] = np.empty(out.shape, np.int32)
    table = native.requant_parameters(np.array([[0, out_mult, out_shift]], np.int32))
    scalars = np.array([1 if op == "add" else -1, zp, qmin, qmax, numerics.ROUNDING_MODES.index(rounding)], np.int64)
    return native.step("EADD", 0, out, a_view, b_view, sums, np.ascontiguousarray(terms, np.int32), table, scalars,
                       action)


@impl("emul")
def emul(m: MachineState, rounding: str, dst: int, a: int):
    m.require_mode("int8", "emul")
    b, length, a_zp, b_zp, out_mult, out_shift, zp, qmin, qmax, rep, period, phase = _EM(m.regs)
    _check_saturation("i8", qmin, qmax, "ea.qmin, ea.qmax")
    if rep < 1 or period < 1 or phase < 0:
        raise Fault(f"emul: em.b_rep = {rep} and em.b_period = {period} must be >= 1, em.b_phase = {phase} >= 0")
    a_view, a_access = m.region(ABUF, a, (length,), (1,), np.int8, False, "emul operand a")
    b_view, b_access = m.region(ABUF, b, (period,), (1,), np.int8, False, "emul operand b (ea.b)")
    index = (np.arange(length, dtype=np.int64) + phase) // rep % period
    out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "emul output")

    requantizers = _requantizers((out_mult, out_shift, zp, qmin, qmax, rounding))

    def rule(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if isinstance(requantizers, str):
            raise ValueError(requantizers)
        return requantizers[0]((x.astype(np.int64) - a_zp) * (y.astype(np.int64) - b_zp))

    key = ("emul", rounding, a_zp, b_zp, out_mult, out_shift, zp, qmin, qmax)
    pairs = rule_tables.table(m, key, lambda: rule(rule_tables.PAIR_A, rule_tables.PAIR_B).astype(np.int8))
    identity = period >= length and phase == 0 and rep == 1  # lane i reads b[i]
    # whole periods from lane 0: lanes (o, p, r) of shape (length / (period * rep), period, rep) read
    # b[p], a broadcast view of b (no gather)
    tiled = not identity and phase == 0 and length % (rep * period) == 0
    batch = m.batch
    pattern = np.broadcast_to(b_view[:, None, :, None], (batch, length // (rep * period), period, rep)) \
        if tiled else None
    pair_index = rule_tables.PairIndex((batch, length), pattern.shape if tiled and pairs is not None else None)

    fused = native.kernels() if identity else None

    def action() -> None:
        b_lanes = b_view[:, :length] if identity else pattern if tiled else b_view[:, index]
        if pairs is not None and fused is not None:  # the table read in one C pass
            fused.pair_lookup(out, a_view, b_lanes, pairs)
            return
        if pairs is not None:
            pairs.take(pair_index(a_view, b_lanes), None, out, "clip")
            return
        lanes = b_lanes.reshape(batch, length)
        try:
            out[...] = rule(a_view, lanes)
        except ValueError as exc:
            raise sample_fault(m, "emul", lambda i: rule(a_view[i], lanes[i]), exc) from None

    prepared = native.step("PAIR", 0, out, a_view, b_view[:, :length], pairs) if identity and pairs is not None \
        else None
    if tiled and pairs is not None and native.lanewise(out, a_view):
        # b tiled into a scratch of its lanes by a copy step, then the table read in one C pass, b-major
        # (entry b * 256 + a: a channel's b reads one 256-byte row, not a few bytes of each of a's)
        lanes = np.empty((batch, length), np.int8)
        tile = native.step("COPY", 0, lanes.reshape(pattern.shape), pattern)
        b_major = rule_tables.table(m, ("b-major",) + key, lambda: pairs.reshape(256, 256).T)
        pair = native.step("PAIR", 0, out, lanes, a_view, b_major)
        prepared = None if tile is None or pair is None else native.step("SEQ", 0, tile, pair)
    accesses = tuple(x for x in (a_access, b_access, d_access) if x is not None)
    return Effect(_cycles(m, length), accesses, POST_LATENCY, action=prepared or action)


@impl("lut")
def lut(m: MachineState, dst: int, src: int):
    m.require_mode("int8", "lut")
    table_at, length = _LT(m.regs)
    x, x_access = m.region(ABUF, src, (length,), (1,), np.int8, False, "lut input")
    table, t_access = m.region(PBUF, table_at, (256,), (1,), np.int8, False, "lut table (lt.table)")
    out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "lut output")
    # int8 v is the byte b = v mod 256 and reads entry v + 128 = (b + 128) mod 256: the table
    # rotated by 128 bytes maps each byte to its result (bytes.translate: no numpy call at all);
    # sample by sample, each through its own table (a numpy gather of a batch is several times slower)
    rows = [tuple(v[i].view(np.uint8).data for v in (x, out, table)) for i in range(m.batch)]
    prepared = native.step("LUT", 0, out, x, table)

    def action() -> None:
        for source, target, entries in rows:
            rotated = entries[128:].tobytes() + entries[:128].tobytes()
            target[:] = source.tobytes().translate(rotated)

    accesses = tuple(a for a in (x_access, t_access, d_access) if a is not None)
    return Effect(_cycles(m, length), accesses, POST_LATENCY, action=prepared or action)
