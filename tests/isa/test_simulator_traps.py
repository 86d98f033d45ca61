"""Every trap names its PC, the disassembled instruction and the reason."""
import re

import numpy as np
import pytest

from isa_helpers import setr
from tcc.ir.errors import TccError
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import IMPLS, Machine
from tcc.isa.table import INSTRUCTIONS
from tcc.isa.target import TargetError, load_target

TARGET = load_target()


def trap(words_or_text, dram_bytes=1024, **run_options) -> SimulatorTrap:
    words = encode_program(assemble(words_or_text)) if isinstance(words_or_text, str) else words_or_text
    machine = Machine(TARGET, np.zeros(dram_bytes, np.uint8))
    with pytest.raises(SimulatorTrap) as info:
        machine.run(words, **run_options)
    return info.value


def expect(error: SimulatorTrap, pc: int, text: str, reason: str) -> None:
    assert error.pc == pc
    assert error.instruction_text == text
    assert re.search(reason, error.reason), error.reason
    assert str(error) == f"trap at pc {pc} ({text}): {error.reason}"
    assert isinstance(error, TccError)


def test_every_instruction_has_one_implementation():
    assert sorted(IMPLS) == sorted(i.mnemonic for i in INSTRUCTIONS)


def test_illegal_opcode():
    words = encode_program(assemble("nop\nhalt\n"))
    words[1] = np.uint64(0x3F << 58)
    expect(trap(words), 1, "0xfc00000000000000", "illegal instruction: unknown opcode 0x3f")


def test_reserved_bits_are_illegal_but_only_when_reached():
    words = encode_program(assemble("nop\nhalt\nnop\n"))
    words[2] |= np.uint64(1)
    assert Machine(TARGET, np.zeros(8, np.uint8)).run(words).instructions == 2
    words[0] |= np.uint64(1)
    expect(trap(words), 0, "0x0000000000000001", "illegal instruction: nop with non-zero reserved bits")


def test_buffer_out_of_bounds_names_buffer_range_and_size():
    error = trap(setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 64}) + "load abuf, 0x7fff0, 0\nhalt\n")
    expect(error, 3, "load abuf, 0x7fff0, 0x0",
           r"destination box: abuf range \[524272, 524336\) is outside abuf \(524288 bytes\)")


def test_dram_out_of_bounds():
    error = trap(setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 64}) + "store wbuf, 0, 1000\nhalt\n")
    expect(error, 3, "store wbuf, 0x0, 0x3e8", r"destination box: dram range \[1000, 1064\) is outside dram \(1024 bytes\)")


def test_negative_strides_below_zero_are_out_of_bounds():
    error = trap(setr({"dma.planes": 1, "dma.rows": 2, "dma.row_bytes": 8, "dma.sram_row": -16, "dma.dram_row": 8})
                 + "load acc, 8, 0\nhalt\n")
    assert error.pc == 5 and "acc range [-8, 16)" in error.reason


def test_matrix_instruction_in_bf16_mode():
    expect(trap("mode bf16\nmatmul gemm, 0, int8, 0, 0, 0\nhalt\n"), 1, "matmul gemm, 0, int8, 0, 0x0, 0x0",
           r"matmul needs int8 mode but the PE array is in bf16 mode \(emit `mode int8` before it\)")


@pytest.mark.parametrize("text, pc", [("vbin add, k0, 0, 0\n", 0), ("mode bf16\nmode int8\ncvt i8_bf16, 0, 0\n", 2)])
def test_vector_instruction_in_int8_mode(text, pc):
    error = trap(text + "halt\n")
    assert error.pc == pc and "needs bf16 mode but the PE array is in int8 mode" in error.reason


def test_accumulator_overflow():
    machine = Machine(TARGET, np.zeros(8, np.uint8))
    machine.buffers["acc"][:4] = np.array([2**31 - 100], "<i4").view(np.uint8)
    machine.buffers["abuf"][:2] = np.array([10, 10], np.int8).view(np.uint8)
    machine.buffers["wbuf"][:2] = np.array([5, 6], np.int8).view(np.uint8)
    text = setr({"mm.m": 1, "mm.n": 1, "mm.k": 2, "mm.a_row": 2, "mm.w_row": 2, "mm.acc_row": 1}) + "matmul gemm, 1, int8, 0, 0, 0\nhalt\n"
    with pytest.raises(SimulatorTrap) as info:
        machine.run(encode_program(assemble(text)))
    expect(info.value, 6, "matmul gemm, 1, int8, 0, 0x0, 0x0", r"int32 accumulator overflow at acc\[0, 0\] = 2147483658")
    # without accumulate the same product fits
    machine.run(encode_program(assemble(text.replace("gemm, 1,", "gemm, 0,"))))
    assert machine.buffers["acc"][:4].view("<i4").tolist() == [110]


def test_vector_operand_pattern_must_repeat_at_least_once():
    error = trap("mode bf16\n" + setr({"v.len": 4, "v.b_period": 2}) + "vbin add, vec, 0, 0\nhalt\n")
    expect(error, 3, "vbin add, vec, 0x0, 0x0", r"vbin operand B: repeat 0 and period 2 must be at least 1")


def test_reduction_rows_must_divide_the_length():
    error = trap("mode bf16\n" + setr({"v.len": 10, "v.row": 4}) + "vred sum, 0, 0\nhalt\n")
    expect(error, 3, "vred sum, 0x0, 0x0", r"vred: v.len = 10 is not a multiple of v.row = 4")


def test_vector_operand_outside_vbuf():
    error = trap("mode bf16\n" + setr({"v.len": 8}) + f"vun shr, 1, 0, {TARGET.vbuf_bytes - 8}\nhalt\n")
    assert error.pc == 2 and "vun operand: vbuf range" in error.reason


def test_running_off_the_end():
    expect(trap("nop\nnop\n"), 2, "end of program", r"ran past the end of the program \(2 instructions\) without halt")
    expect(trap(np.zeros(0, np.uint64)), 0, "end of program", r"\(0 instructions\)")


def test_max_instructions():
    error = trap("nop\nnop\nnop\nhalt\n", max_instructions=2)
    expect(error, 2, "nop", "executed max_instructions = 2 instructions without reaching halt")


def test_requant_output_range_must_fit_the_output_type():
    error = trap(setr({"rq.m": 1, "rq.n": 1, "rq.qmin": -1000, "rq.qmax": 1000}) + "requant acc, i8, half_even, 0, 0\nhalt\n")
    assert error.pc == 4 and r"rq.qmin, rq.qmax = [-1000, 1000] must be an ordered range inside i8" in error.reason


def test_conv_depth_must_match_the_kernel():
    error = trap(setr({"mm.m": 1, "mm.n": 1, "mm.k": 10, "cv.kh": 3, "cv.kw": 3}) + "matmul conv, 0, int8, 0, 0, 0\nhalt\n")
    assert error.pc == 5 and "mm.k = 10 is not a multiple of cv.kh * cv.kw = 3 * 3" in error.reason


def test_pool_window_entirely_in_padding():
    error = trap(setr({"cv.h": 2, "cv.w": 2, "cv.c": 1, "cv.kh": 1, "cv.kw": 1, "cv.sh": 1, "cv.sw": 1, "cv.dh": 1, "cv.dw": 1,
                       "cv.pad_top": 1, "cv.w_out": 1, "pl.h_out": 1}) + "pool max, 0x100, 0\nhalt\n")
    assert "pool window of output (0, 0) lies entirely in the padding" in error.reason


def test_dram_image_larger_than_the_target():
    small = TARGET.__class__(**{**TARGET.to_dict(), "dram_bytes": 1024})
    with pytest.raises(TargetError, match="DRAM image of 2048 bytes exceeds target tataa's dram_bytes = 1024"):
        Machine(small, np.zeros(2048, np.uint8))


def test_a_reload_restores_what_the_next_run_reads_before_writing():
    """A program storing abuf's bytes before loading over them reads them first: a reload for its
    next run (``reload_image`` of its ``first_reads``) restores them to the image's zeros, while
    the DRAM bytes it only writes keep the last run's until it writes them again."""
    text = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 64}) + "store abuf, 0, 512\nload abuf, 0, 0\nhalt\n"
    words = encode_program(assemble(text))
    image = np.arange(1024, dtype=np.uint32).astype(np.uint8) | 1  # no zero byte
    machine = Machine(TARGET, np.zeros(1024, np.uint8))
    machine.load_image(image)
    for _ in range(3):
        machine.run(words)
        assert not machine.dram[512:576].any() and machine.buffers["abuf"][:64].tolist() == image[:64].tolist()
        reads = machine.first_reads(words)
        assert reads == ((0, 0, 64), (5, 0, 64))  # abuf's 64 bytes (stored before loaded), DRAM's (loaded)
        assert machine.reload_image(reads)
        assert not machine.buffers["abuf"][:64].any()
