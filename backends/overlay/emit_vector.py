"""Code for the bf16 SIMD mode: int8 <-> bf16 conversions and vector operations.

bf16 tensors live in DRAM row-major in their logical shape; an int8 tensor stored NHWC
(layout.py) is transposed by the conversion (a strided copy in vbuf).  Vector ops run per tile along an axis
the op treats independently (rows of a softmax, pixels of an LRN).
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Trait, constant_value, is_constant, numerics

from .context import Context
from .errors import unsupported
from .memory import ActivationAddress
from .steps import Step

# Cost of one vector op in passes over its data on the SIMD lanes (docs/overlay-machine.md).
PASSES = {"softmax": 5, "lrn": 6, "layer_norm": 6, "gelu": 5, "sigmoid": 3, "tanh": 3, "erf": 4, "exp": 2,
          "hard_swish": 2, "div": 2, "pow": 3, "sqrt": 2, "reciprocal": 2}


def f32_bits(value: float) -> int:
    return int(np.array([value], np.float32).view(np.int32)[0])


def _row_tiles(rows: int, row_bytes: int, limit: int, op):
    th = max(1, min(rows, limit // max(row_bytes, 1)))
    if th * row_bytes > limit:
        raise unsupported(op, "one row does not fit the vector buffer")
    return [(r0, min(th, rows - r0)) for r0 in range(0, rows, th)]


def emit_cvt(ctx: Context, step: Step) -> None:
    op = step.ops[0]
    x, y = op.x, op.result
    to_bf16 = step.kind == "cvt_in"
    q = (x if to_bf16 else y).type.quant
    b, p = ctx.buffers, ctx.program
    ctx.begin_layer(step.name, 0, x.type.size * 3)
    p.set({"v.scale": f32_bits(q.scale[0]), "v.zp": q.zero_point[0]})
    shape = x.type.shape
    nhwc = ctx.layouts.is_nhwc(x if to_bf16 else y)
    if nhwc:
        _, c, h, w = shape
        tiles = _row_tiles(h, w * c * 2, min(b.vbuf_q, 2 * b.abuf_q), op)
    else:
        c, h, w = 1, 1, x.type.size
        tiles = [(0, 1)]
        if x.type.size * 2 > b.vbuf_q:
            tiles = None
    if tiles is None:
        n = x.type.size
        chunk = b.vbuf_q // 2
        tiles_flat = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
        for i, (s, cnt) in enumerate(tiles_flat):
            _cvt_flat(ctx, op, to_bf16, x, y, s, cnt, i)
        return
    for i, (y0, rows) in enumerate(tiles):
        n = rows * w * c
        a_slot, v_in, v_out = b.a_in(i) if to_bf16 else b.a_out(i), b.v(i % 2), b.v(2 + i % 2)
        p.set({"v.len": n})
        if to_bf16:
            p.dma("load", "abuf", a_slot, ctx.addr(x) + y0 * w * c, rows=1, row_bytes=n)
            p.emit("cvt", dir="i8_bf16", dst=v_in, src=a_slot)
            if nhwc:  # [rows, w, c] -> [c, rows, w]
                _copy(p, v_out, v_in, (1, c, rows, w), (0, 2, w * c * 2, c * 2), (0, rows * w * 2, w * 2, 2), 2)
                p.dma("store", "vbuf", v_out, ctx.addr(y) + y0 * w * 2, rows=c, row_bytes=rows * w * 2,
                      dram_row=h * w * 2, sram_row=rows * w * 2)
            else:
                p.dma("store", "vbuf", v_in, ctx.addr(y), rows=1, row_bytes=n * 2)
        else:
            if nhwc:  # [c, rows, w] -> [rows, w, c]
                p.dma("load", "vbuf", v_in, ctx.addr(x) + y0 * w * 2, rows=c, row_bytes=rows * w * 2,
                      dram_row=h * w * 2, sram_row=rows * w * 2)
                _copy(p, v_out, v_in, (1, rows, w, c), (0, w * 2, 2, rows * w * 2), (0, w * c * 2, c * 2, 2), 2)
                src = v_out
            else:
                p.dma("load", "vbuf", v_in, ctx.addr(x), rows=1, row_bytes=n * 2)
                src = v_in
            p.emit("cvt", dir="bf16_i8", dst=a_slot, src=src)
            p.dma("store", "abuf", a_slot, ctx.addr(y) + y0 * w * c, rows=1, row_bytes=n)


def _cvt_flat(ctx, op, to_bf16, x, y, start, count, i):
    b, p = ctx.buffers, ctx.program
    a_slot, v_slot = b.a_in(i), b.v(i % 2)
    p.set({"v.len": count})
    if to_bf16:
        p.dma("load", "abuf", a_slot, ctx.addr(x) + start, rows=1, row_bytes=count)
        p.emit("cvt", dir="i8_bf16", dst=v_slot, src=a_slot)
        p.dma("store", "vbuf", v_slot, ctx.addr(y) + 2 * start, rows=1, row_bytes=2 * count)
    else:
        p.dma("load", "vbuf", v_slot, ctx.addr(x) + 2 * start, rows=1, row_bytes=2 * count)
        p.emit("cvt", dir="bf16_i8", dst=a_slot, src=v_slot)
        p.dma("store", "abuf", a_slot, ctx.addr(y) + start, rows=1, row_bytes=count)


def _copy(p, dst, src, extents, src_strides, dst_strides, elem):
    p.copy_box(extents, src_strides, dst_strides, elem)
    p.emit("copy", buf="vbuf", dst=dst, src=src)


def independent_axes(op) -> set[int]:
    rank = op.result.type.rank
    if op.has_trait(Trait.ELEMENTWISE):
        return set(range(rank))
    if op.kind == "softmax":
        return set(range(rank)) - {op.axis % rank}
    if op.kind == "lrn":
        return set(range(rank)) - {1}
    if op.kind == "layer_norm":
        return set(range(op.axis % rank))
    if op.kind == "resize":  # resizes the spatial dims; batch and channels are independent
        return {a for a in range(rank) if op.sizes[a] == op.x.type.shape[a]}
    return set()


def _json_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            raise ValueError(f"tensor attribute {k!r} cannot go into a vector descriptor")
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def vector_tiles(op, vbuf_q: int) -> tuple[int | None, int]:
    """(axis, chunk): the vector op runs in slices of ``chunk`` along ``axis`` (None: in one piece).
    Raises BackendError when the op has too many operands or a slice exceeds the vector buffer."""
    shape = op.result.type.shape
    operands = list(op.operands)
    if len(operands) > 4:
        raise unsupported(op, "vector ops take at most four operands")
    axis = next((a for a in sorted(independent_axes(op)) if shape[a] > 1
                 and all(v.type.rank == len(shape) and v.type.shape[a] in (1, shape[a]) for v in operands)), None)
    unit = 2 * op.result.type.size // (shape[axis] if axis is not None else 1)
    max_chunk = shape[axis] if axis is not None else 1
    chunk = max(1, min(max_chunk, vbuf_q // max(unit, 1) if axis is not None else 1))
    largest = max([v.type.size * 2 for v in operands] + [op.result.type.size * 2])
    if axis is None and largest > vbuf_q:
        raise unsupported(op, f"a {largest}-byte bf16 operand exceeds the vector buffer and the op cannot be tiled")
    if axis is not None and chunk * unit > vbuf_q:
        raise unsupported(op, "one slice of this vector op exceeds the vector buffer")
    return axis, chunk


def emit_vector(ctx: Context, step: Step) -> None:
    op = step.ops[0]
    y = op.result
    shape = y.type.shape
    b, p = ctx.buffers, ctx.program
    operands = list(op.operands)
    axis, chunk = vector_tiles(op, b.vbuf_q)
    addresses: list[int | ActivationAddress] = []
    for v in operands:
        if is_constant(v):
            data = numerics.to_bf16(constant_value(v)).astype("<u2")
            addresses.append(ctx.constant(f"c:{v.name}", data))
        else:
            addresses.append(ctx.addr(v))
    ctx.begin_layer(step.name, 0, sum(v.type.size * 2 for v in operands) + y.type.size * 2)
    slots = [b.v(0), b.v(1), b.v(3), b.v(3) + b.vbuf_q // 2]
    extent = shape[axis] if axis is not None else 1
    for c0 in range(0, extent, chunk):
        cn = min(chunk, extent - c0)
        tile_shapes = []
        for v, slot, addr in zip(operands, slots, addresses):
            vshape = list(v.type.shape)
            if axis is not None and vshape[axis] == extent and extent > 1:
                vshape[axis] = cn
                _tile_dma(p, "load", slot, addr, v.type.shape, axis, c0, cn)
            else:
                p.dma("load", "vbuf", slot, addr, rows=1, row_bytes=v.type.size * 2)
            tile_shapes.append(vshape)
        out_shape = list(shape)
        if axis is not None:
            out_shape[axis] = cn
        desc = {"kind": op.kind, "attrs": _json_attrs(op.attrs),
                "operands": [{"shape": s, "dtype": "bf16"} for s in tile_shapes],
                "results": [{"shape": out_shape, "dtype": "bf16"}],
                "passes": PASSES.get(op.kind, 1), "addresses": slots[2:len(operands)]}
        p.set({"v.desc": ctx.descriptor(desc), "v.src2": slots[1], "v.len": int(np.prod(out_shape))})
        p.emit("vop", dst=b.v(2), src=slots[0])
        if axis is not None:
            _tile_dma(p, "store", b.v(2), ctx.addr(y), shape, axis, c0, cn)
        else:
            p.dma("store", "vbuf", b.v(2), ctx.addr(y), rows=1, row_bytes=y.type.size * 2)


def _tile_dma(p, direction, slot, addr, shape, axis, c0, cn):
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:])) * 2
    p.dma(direction, "vbuf", slot, addr + c0 * inner, planes=outer, rows=1, row_bytes=cn * inner,
          dram_plane=shape[axis] * inner, sram_plane=cn * inner)
