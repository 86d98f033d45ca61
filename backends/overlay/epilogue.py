"""Element-wise steps fused into the epilogue of the conv or gemm that produces their input:
residual adds and table lookups (activations the quantizer tabulated: SiLU, hard-swish, GELU).

A ResNet-style ``y = relu(conv(x) + skip)`` is a conv step followed by an eadd step that reads
the conv's int8 result back from DRAM together with ``skip``.  Fused, the conv step requantizes
each output tile to int8 as before, loads the matching tile of ``skip`` and runs the add's
``eadd`` on the tile in the activation buffer, storing only ``y``: the conv's own result never
goes to DRAM.  The instructions and their arithmetic are the unfused ones (requant, then eadd
with the add's registers), so the result is the same bit for bit.  Likewise a ``lut`` step
reading only a conv's or gemm's result runs on each output tile before it is stored (the table
goes to pbuf beside the tile's parameters).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tcc.ir import Op, Value, constant_value

from .context import Context
from .errors import unsupported
from .steps import Step


@dataclass(frozen=True)
class ResidualAdd:
    """The add fused into a conv step: its four ops, the other operand, and which side the conv's
    result is on (operand ``a`` of the eadd, or ``b``)."""

    ops: tuple[Op, Op, Op, Op]  # rescale a, rescale b, add/sub, requantize
    skip: Value
    conv_is_a: bool


#: ``fits(step, residual, lut)``: whether the step still tiles with those epilogues fused.
Fits = Callable[[Step, bool, bool], bool]


def fuse_epilogues(steps: list[Step], outputs: set[int], pbuf_half: int, fits: Fits = lambda *_: True) -> list[Step]:
    """The steps with residual adds and then table lookups merged into the conv/gemm steps that
    produce their input (``info["residual"]``, ``info["lut"]``).  ``outputs``: ids of the values
    the model outputs (never fused away); ``pbuf_half``: bytes of a pbuf half, which must hold a
    step's parameters and the table; a fusion ``fits`` refuses is left a step of its own."""
    fused = _fuse_luts(_fuse_residual_adds(steps, outputs, fits), outputs, pbuf_half, fits)
    return _fuse_concat_rescales(fused, outputs)


def _fuse_residual_adds(steps: list[Step], outputs: set[int], fits: Fits) -> list[Step]:
    """Every eadd whose operand is the sole result of a conv or gemm step, used only by the add and
    produced after the other operand, merged into that step (an LSTM step's gate add: the projection
    of the hidden state plus the input's)."""
    index_of = {id(v): i for i, s in enumerate(steps) for v in s.outputs}
    fused: set[int] = set()
    for step in steps:
        if step.kind != "eadd" or not _fusable_add(step):
            continue
        ra, rb, _, _ = step.ops
        candidates = []
        for value, other, is_a in ((ra.x, rb.x, True), (rb.x, ra.x, False)):
            producer = index_of.get(id(value))
            if producer is None or producer in fused:
                continue
            conv = steps[producer]
            if (conv.kind not in ("conv", "gemm") or conv.outputs != [value] or id(value) in outputs or len(value.users) != 1
                    or index_of.get(id(other), -1) >= producer or not fits(conv, True, False)):
                continue
            candidates.append((producer, other, is_a))
        if not candidates:
            continue
        producer, other, is_a = max(candidates, key=lambda c: c[0])  # the later conv: the other is ready
        conv = steps[producer]
        conv.info["residual"] = ResidualAdd(tuple(step.ops), other, is_a)  # type: ignore[arg-type]
        conv.ops = conv.ops + step.ops
        conv.inputs = conv.inputs + [other]
        conv.outputs = list(step.outputs)
        fused.add(producer)
        step.kind = "fused"
    return [s for s in steps if s.kind != "fused"]


def _fuse_luts(steps: list[Step], outputs: set[int], pbuf_half: int, fits: Fits) -> list[Step]:
    """Every lut step whose input is the sole result of a conv or gemm step and used only by it."""
    producer_of = {id(v): s for s in steps for v in s.outputs}
    for step in steps:
        x = step.inputs[0] if step.kind == "lut" else None
        producer = producer_of.get(id(x)) if x is not None else None
        if (producer is None or producer.kind not in ("conv", "gemm") or "lut" in producer.info
                or producer.outputs != [x] or id(x) in outputs or len(x.users) != 1
                or table_offset(x.type.shape[1 if producer.kind == "conv" else -1]) + 256 > pbuf_half
                or not fits(producer, "residual" in producer.info, True)):
            continue
        producer.info["lut"] = step.ops[0]
        producer.ops = producer.ops + step.ops
        producer.outputs = list(step.outputs)
        step.kind = "fused"
    return [s for s in steps if s.kind != "fused"]


def _fuse_concat_rescales(steps: list[Step], outputs: set[int]) -> list[Step]:
    """Every per-tensor int8 requant step whose result only a concat reads, merged into the concat:
    the concat moves the requant's input and rescales each tile after loading it
    (``info["rescale"]``: operand index -> the requantize op)."""
    producer_of = {id(v): s for s in steps for v in s.outputs}
    for step in steps:
        if step.kind != "concat":
            continue
        concat = step.ops[0]
        for index, v in enumerate(concat.operands):
            producer = producer_of.get(id(v))
            if (producer is None or producer.kind not in ("requant", "fused") or producer.outputs != [v]
                    or id(v) in outputs or any(u is not concat for u in v.users)):
                continue
            req = producer.ops[0]
            step.info.setdefault("rescale", {})[index] = req
            if producer.kind == "requant":  # (an operand the concat reads twice is merged once)
                step.ops = step.ops + producer.ops
                step.inputs = [req.x if u is v else u for u in step.inputs]
                producer.kind = "fused"
    return [s for s in steps if s.kind != "fused"]


def fused_kinds(step: Step) -> list[str]:
    """The step kinds fused into ``step``'s epilogue, in the order they run (the layer's ``fused``)."""
    return [kind for kind, key in (("eadd", "residual"), ("lut", "lut"), ("requant", "rescale")) if key in step.info]


def table_offset(channels: int) -> int:
    """Where a fused lut's table sits in a pbuf half: after the parameters of ``channels`` output
    channels (12 bytes each), 64-byte aligned."""
    return -(-channels * 12 // 64) * 64


def param_channels(pbuf_half: int) -> int:
    """The most output channels one tile may have: their requantization triples, a fused lut's
    256-byte table after them and a DyBit cap byte per channel after that (emit_matrix._load_caps)
    fit a pbuf half."""
    n = (pbuf_half - 256) // 13
    while table_offset(n) + 256 + n > pbuf_half:
        n -= 1
    return n


def _fusable_add(step: Step) -> bool:
    ra, rb, _, req = step.ops
    return ra.pre_shift == rb.pre_shift and ra.rounding == req.rounding


def eadd_registers(ra: Op, rb: Op, add: Op, req: Op) -> dict[str, int]:
    """The ea.* registers of an int8 add or subtract (the rescale of each operand, the output's)."""
    if ra.pre_shift != rb.pre_shift or ra.rounding != req.rounding:
        raise unsupported(add, "the two rescales of an int8 add must share pre_shift and rounding")
    return {"ea.a_zp": ra.x.type.quant.zero_point[0], "ea.b_zp": rb.x.type.quant.zero_point[0],
            "ea.a_mult": ra.multiplier[0], "ea.a_shift": ra.shift[0], "ea.b_mult": rb.multiplier[0],
            "ea.b_shift": rb.shift[0], "ea.pre_shift": ra.pre_shift, "ea.out_mult": req.multiplier[0],
            "ea.out_shift": req.shift[0], "ea.zp": req.zero_point, "ea.qmin": req.qmin, "ea.qmax": req.qmax}


def load_table(ctx: Context, step: Step, pslot: int, nt: int) -> None:
    """A fused lut's table into the pbuf half at ``pslot``, after the tile's ``nt`` parameter triples."""
    lut = step.info.get("lut")
    if lut is not None:
        table = ctx.constant(f"lut:{lut.result.name}", constant_value(lut.table).astype(np.int8))
        ctx.program.dma("load", "pbuf", pslot + table_offset(nt), table, rows=1, row_bytes=256)


def load_skip(ctx: Context, step: Step, skip_at: int, dram_offset: int, pixels: int, nt: int, n_out: int) -> None:
    """A fused residual add's skip tile (``dram_offset`` elements into the skip operand, rows of
    ``n_out``) to abuf ``skip_at``."""
    residual = step.info["residual"]
    ctx.program.dma("load", "abuf", skip_at, ctx.addr(residual.skip) + dram_offset, rows=pixels, row_bytes=nt,
                    dram_row=n_out, sram_row=nt)


def emit_epilogue(ctx: Context, step: Step, out: int, skip_at: int, dram_offset: int, pixels: int, nt: int,
                  n_out: int, pslot: int, skip_loaded: bool = False) -> None:
    """After an output tile (``pixels`` x ``nt`` channels at abuf ``out``) is requantized: a fused
    residual add loads the same tile of the skip operand (``load_skip``; not when ``skip_loaded``:
    the caller loaded it earlier) to ``skip_at`` and adds it in place; a fused lut looks the tile up
    in place."""
    p = ctx.program
    residual = step.info.get("residual")
    if residual is not None:
        _, _, add, req = residual.ops
        if not skip_loaded:
            load_skip(ctx, step, skip_at, dram_offset, pixels, nt, n_out)
        a, b = (out, skip_at) if residual.conv_is_a else (skip_at, out)
        p.set({"ea.b": b, "ea.len": pixels * nt})
        p.emit("eadd", op=add.kind, rounding=req.rounding, dst=out, a=a)
    if "lut" in step.info:
        p.set({"lt.table": pslot + table_offset(nt), "lt.len": pixels * nt})
        p.emit("lut", dst=out, src=out)
