"""A softmax's row maxima taken on its int8 scores, before their conversion to bf16.

A softmax over attention scores reads them as bf16 converted from int8 (``cvt i8_bf16``), and its
sequence begins with the maximum of each row: a tree of row reductions on the SIMD lanes (ViT-tiny:
214 cycles a softmax on the compute unit, which the whole attention waits on).  The conversion
``int8_to_bf16(q) = bf16((q - zp) * scale)`` is monotone (non-decreasing) in q for a positive scale
and never NaN, so the maximum of the converted row is the conversion of the row's int8 maximum: the
same bits.  The int8 maxima come from a max ``pool`` of one window per row on the post unit, which
runs beside the array's switch to bf16 and the conversion; the conversion step converts them too (one
value per row) into the vbuf slot where the softmax reads them (``bf16_functions.softmax_of_max``).
"""
from __future__ import annotations

from .context import Context
from .emit_vector import vector_input_slot, vector_operand_slot
from .steps import Step
from .vector_lowering import ROW_SOFTMAXES


def emit_row_max(ctx: Context, step: Step) -> None:
    """Before the switch to bf16 that precedes conversion ``step``: when the step after it is a
    softmax of the converted tensor that runs as one tile (vector_input_slot), and abuf holds the
    int8 tensor, the pool of its row maxima, and ``ctx.row_max`` for the conversion (emit_cvt)."""
    after = ctx.next_step
    if ctx.cores != 1 or after is None or after.kind != "vector" or after.ops[0].kind not in ROW_SOFTMAXES:
        return
    op = step.ops[0]
    x, y = op.x, op.result
    quant = x.type.quant
    if (after.ops[0].x is not y or x.type.dtype != "i8" or ctx.layouts.is_nhwc(x) or quant is None
            or quant.scale[0] <= 0 or x.type.size * 2 > ctx.buffers.vbuf_q):
        return
    held = ctx.program.held_at("abuf", ctx.addr(x), x.type.size)
    if held is None:
        return
    after.info["given_max"] = True
    slot = vector_operand_slot(ctx, after, lambda given: given.on_chip)
    if slot is None or vector_input_slot(ctx, after, y, y.type.size * 2) is None:
        del after.info["given_max"]
        return
    cols = y.type.shape[-1]
    rows = x.type.size // cols
    quarter = ctx.buffers.abuf_q
    dst = held + -(-x.type.size // 64) * 64  # after the scores, in their quarter
    if held // quarter != (dst + rows - 1) // quarter:
        del after.info["given_max"]
        return
    p = ctx.program
    p.set({"cv.h": rows, "cv.w": cols, "cv.c": 1, "cv.kh": 1, "cv.kw": cols, "cv.sh": 1, "cv.sw": 1, "cv.dh": 1,
           "cv.dw": 1, "cv.pad_top": 0, "cv.pad_left": 0, "cv.w_out": 1, "pl.h_out": rows, "pl.pad_bottom": 0,
           "pl.pad_right": 0})
    p.emit("pool", mode="max", dst=dst, src=held)
    ctx.row_max = (dst, rows, slot)
