"""bf16 SIMD mode: ``cvt`` between int8 (abuf) and bf16/f32 (vbuf), and descriptor-driven ``vop``."""
from __future__ import annotations

import numpy as np

from tcc.ir import numerics
from tcc.ir.dtypes import to_numpy
from tcc.ir.errors import TccError
from tcc.ir.interpreter import evaluate_op

from .descriptors import vector_op
from .machine import ABUF, VBUF, Effect, Fault, MachineState, contiguous_strides, impl, registers

_CVT = registers("v.len", "v.scale", "v.zp")
_VOP = registers("v.desc", "v.src2")


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

        def convert():
            return numerics.to_bf16(numerics.int8_to_bf16(q, scale, zp))
    elif dir == "bf16_i8":
        x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
        out, d_access = m.region(ABUF, dst, (length,), (1,), np.int8, True, "cvt destination")

        def convert():
            return numerics.bf16_to_int8(numerics.from_bf16(x), scale, zp, "half_even")
    else:  # bf16_f32
        x, s_access = m.region(VBUF, src, (length,), (2,), "<u2", False, "cvt source")
        out, d_access = m.region(VBUF, dst, (length,), (4,), "<f4", True, "cvt destination")

        def convert():
            return numerics.from_bf16(x)

    def action() -> None:
        try:
            out[...] = convert()
        except ValueError as exc:
            raise Fault(f"cvt {dir} with v.scale = {float(scale)!r}, v.zp = {zp}: {exc}") from None

    accesses = tuple(a for a in (s_access, d_access) if a is not None)
    return Effect(_simd_cycles(m, 1, length), accesses, action=action)


def _tensor(m: MachineState, address: int, shape: tuple, write: bool, what: str):
    # ml_dtypes.bfloat16 (2 bytes, the bit pattern vbuf holds), looked up here so that loading the
    # simulator does not import ml_dtypes (tcc.ir.dtypes)
    return m.region(VBUF, address, shape, contiguous_strides(shape, 2), to_numpy("bf16"), write, what)


@impl("vop")
def vop(m: MachineState, dst: int, src: int):
    m.require_mode("bf16", "vop")
    index, src2 = _VOP(m.regs)
    desc = vector_op(m.descriptors, m.vector_ops, index)
    addresses = (src, src2) + desc.addresses
    operands, accesses = [], []
    for i, shape in enumerate(desc.operand_shapes):
        array, access = _tensor(m, addresses[i], shape, False, f"vop operand {i}")
        operands.append(array)
        accesses.append(access)
    out, access = _tensor(m, dst, desc.result_shape, True, "vop result")
    accesses.append(access)

    def action() -> None:
        try:
            (result,) = evaluate_op(desc.op, operands)
        except TccError as exc:
            raise Fault(f"vop descriptor {index} ({desc.op.kind}): {exc}") from None
        out[...] = result

    cycles = _simd_cycles(m, desc.passes, desc.elements)
    return Effect(cycles, tuple(a for a in accesses if a is not None), action=action)
