"""Encoder and decoder: hand-computed golden words, round trips over every mnemonic, errors, fuzzing."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcc.ir.errors import TccError
from tcc.isa import (EncodingError, IllegalInstruction, Instruction, assemble_file, decode, decode_program,
                     encode, encode_program, read_binary, write_binary)
from tcc.isa.encoding import LAYOUTS, OPCODE_SHIFT
from tcc.isa.errors import IsaError, SimulatorTrap
from tcc.isa.table import INSTRUCTIONS, REGISTER_INDEX, REGISTER_RANGE, REGISTERS, WORD_BITS


def field_values(field):
    if field.kind == "enum":
        return st.sampled_from(field.values)
    if field.kind == "reg":
        return st.sampled_from([name for name, _, _ in REGISTERS])
    if field.kind == "s":
        return st.integers(-(1 << (field.bits - 1)), (1 << (field.bits - 1)) - 1)
    return st.integers(0, (1 << field.bits) - 1)


def _setr_operands():
    """A register and a value in that register's range (isa/table.py VALUE_RANGES)."""
    return st.sampled_from([name for name, _, _ in REGISTERS]).flatmap(
        lambda reg: st.tuples(st.just(reg), st.integers(*REGISTER_RANGE[reg])))


def instructions():
    """Any instruction of the table with random in-range field values (names for enums/registers)."""
    return st.sampled_from(INSTRUCTIONS).flatmap(
        lambda spec: (_setr_operands() if spec.mnemonic == "setr"
                      else st.tuples(*[field_values(f) for f in spec.fields])).map(
            lambda operands: Instruction(spec.mnemonic, operands)))


# ---- golden words, computed by hand from the table's layout -----------------------------------

def test_golden_nop_and_halt():
    assert encode(Instruction("nop")) == 0
    assert encode(Instruction("halt")) == 0x0400_0000_0000_0000 == 1 << 58


def test_golden_setr():
    # setr: opcode 2 in [63:58], reg (8 bits) in [57:50], value (s32) in [49:18], [17:0] reserved.
    # mm.m is register 9: seven dma.* registers (0..6), then mm.a 7, mm.a_row 8, mm.m 9.
    assert REGISTER_INDEX["mm.m"] == 9
    word = (2 << 58) | (9 << 50) | (49 << 18)
    assert word == 0x0824_0000_00C4_0000
    assert encode(Instruction("setr", ("mm.m", 49))) == word
    # A negative value is 32-bit two's complement: -1 fills [49:18]. cv.pad_top is register 24.
    assert REGISTER_INDEX["cv.pad_top"] == 24
    word = (2 << 58) | (24 << 50) | (0xFFFF_FFFF << 18)
    assert word == 0x0863_FFFF_FFFC_0000
    assert encode(Instruction("setr", ("cv.pad_top", -1))) == word
    assert decode(word) == Instruction("setr", ("cv.pad_top", -1))


def test_golden_load():
    # load: opcode 3 in [63:58], buf (3 bits) [57:55], sram (24 bits) [54:31], dram (31 bits) [30:0].
    # wbuf is buffer 1.
    word = (3 << 58) | (1 << 55) | (0x100 << 31) | 0x2000
    assert word == 0x0C80_0080_0000_2000
    assert encode(Instruction("load", ("wbuf", 0x100, 0x2000))) == word
    assert decode(word) == Instruction("load", ("wbuf", 0x100, 0x2000))


def test_golden_matmul():
    # matmul: opcode 5, mode [57:56] (conv = 1), accumulate [55], wfmt [54:51] (int4 = 2), wcap [50:48],
    # acc [47:24], w [23:0]: the word is full.
    word = (5 << 58) | (1 << 56) | (1 << 55) | (2 << 51) | (0 << 48) | (0x40 << 24) | 0x100
    assert word == 0x1590_0000_4000_0100
    assert encode(Instruction.of("matmul", "conv", 1, "int4", 0, acc=0x40, w=0x100)) == word
    assert decode(word) == Instruction("matmul", ("conv", 1, "int4", 0, 0x40, 0x100))


def test_layouts_tile_the_word():
    for spec in INSTRUCTIONS:
        layout = LAYOUTS[spec.mnemonic]
        next_hi = OPCODE_SHIFT - 1
        for slot, field in zip(layout.slots, spec.fields):
            assert (slot.hi, slot.hi - slot.lo + 1) == (next_hi, field.bits)
            next_hi = slot.lo - 1
        assert layout.reserved_bits == next_hi + 1 == WORD_BITS - spec.used_bits


# ---- round trips --------------------------------------------------------------------------------

@given(instructions())
def test_encode_decode_round_trip(instr):
    word = encode(instr)
    assert 0 <= word < 1 << 64
    assert word >> OPCODE_SHIFT == instr.opcode
    assert word & ((1 << instr.layout.reserved_bits) - 1) == 0
    assert decode(word) == instr


@given(st.lists(instructions(), max_size=40))
def test_program_round_trip_matches_scalar(program):
    words = encode_program(program)
    assert words.dtype == np.uint64
    assert words.tolist() == [encode(i) for i in program]
    assert decode_program(words) == program


def test_every_mnemonic_round_trips_at_field_extremes():
    for spec in INSTRUCTIONS:
        slots = LAYOUTS[spec.mnemonic].slots
        for pick in (0, -1):
            operands = tuple(s.names[pick] if s.names else (s.min, s.max)[pick] for s in slots)
            if spec.mnemonic == "setr":  # the value field's extremes are the register's (all: below)
                operands = (operands[0], REGISTER_RANGE[operands[0]][pick])
            instr = Instruction(spec.mnemonic, operands)
            assert decode(encode(instr)) == instr


# ---- the Instruction value ----------------------------------------------------------------------

def test_instruction_canonical_form_and_accessors():
    by_index = Instruction("load", (1, 0x100, 0x2000))
    by_name = Instruction.of("load", "wbuf", dram=0x2000, sram=0x100)
    assert by_index == by_name and hash(by_index) == hash(by_name)
    assert by_index.operands == ("wbuf", 0x100, 0x2000)
    assert by_index["buf"] == "wbuf" and by_index.raw("buf") == 1 and by_index.raw("sram") == 0x100
    assert by_index.fields == {"buf": "wbuf", "sram": 0x100, "dram": 0x2000}
    assert Instruction("setr", (REGISTER_INDEX["mm.a_zp"], np.int64(-5))).operands == ("mm.a_zp", -5)
    assert str(by_name) == "load wbuf, 0x100, 0x2000"
    with pytest.raises(KeyError, match="no field 'sarm'"):
        by_name["sarm"]


@pytest.mark.parametrize("make, fragments", [
    (lambda: Instruction("load", ("wbuf", 1 << 24, 0)), ["load", "sram", "24-bit unsigned", "0x0..0xffffff"]),
    (lambda: Instruction("load", ("wbuf", -1, 0)), ["load", "sram", "got -1"]),
    (lambda: Instruction("load", ("wbuf", 0, 1 << 31)), ["load", "dram", "0x0..0x7fffffff"]),
    (lambda: Instruction("setr", ("mm.m", 1 << 31)), ["setr", "value", "-2147483648..2147483647"]),
    (lambda: Instruction("setr", ("mm.m", -(1 << 31) - 1)), ["setr", "value", "32-bit signed"]),
    (lambda: Instruction("matmul", ("gemm", 2, "int8", 0, 0, 0)), ["matmul", "accumulate", "0..1", "got 2"]),
    (lambda: Instruction("load", (5, 0, 0)), ["load", "buf", "0..4"]),
    (lambda: Instruction("setr", (len(REGISTERS), 0)), ["setr", "reg", f"0..{len(REGISTERS) - 1}"]),
    (lambda: Instruction("load", ("wbf", 0, 0)), ["did you mean 'wbuf'", "abuf, wbuf, acc, pbuf, vbuf"]),
    (lambda: Instruction("setr", ("mm.mm", 0)), ["unknown register 'mm.mm'", "did you mean 'mm.m'"]),
    (lambda: Instruction("load", ("wbuf", 1.5, 0)), ["sram takes an integer"]),
    (lambda: Instruction("lod", ()), ["unknown mnemonic 'lod'", "did you mean 'load'"]),
    (lambda: Instruction("load", ("wbuf", 0)), ["load takes 3 operand(s) (buf, sram, dram), got 2"]),
    (lambda: Instruction("halt", (0,)), ["halt takes no operands"]),
    (lambda: Instruction.of("load", "wbuf", sarm=0, dram=0), ["no field 'sarm'", "did you mean 'sram'"]),
    (lambda: Instruction.of("load", "wbuf", 0, buf="acc"), ["buf given both"]),
    (lambda: Instruction.of("load", "wbuf", dram=0), ["missing field(s) sram"]),
])
def test_encoding_errors_name_instruction_field_and_range(make, fragments):
    with pytest.raises(EncodingError) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_error_types_are_tcc_errors():
    for cls in (EncodingError, IllegalInstruction, SimulatorTrap):
        assert issubclass(cls, IsaError) and issubclass(cls, TccError)
    trap = SimulatorTrap(7, "halt", "ran past the end")
    assert (trap.pc, trap.instruction_text, trap.reason) == (7, "halt", "ran past the end")
    assert "pc 7" in str(trap)


# ---- illegal words ------------------------------------------------------------------------------

def test_unknown_opcode_names_pc_and_word():
    word = 0x3F << 58 | 0x1234
    with pytest.raises(IllegalInstruction) as info:
        decode(word, pc=17)
    assert "pc 17" in str(info.value) and "0xfc00000000001234" in str(info.value)
    assert "unknown opcode 0x3f" in str(info.value)
    assert (info.value.pc, info.value.word) == (17, word)


@pytest.mark.parametrize("spec", [s for s in INSTRUCTIONS if s.used_bits < WORD_BITS], ids=lambda s: s.mnemonic)
def test_reserved_bits_are_illegal(spec):
    reserved = WORD_BITS - spec.used_bits
    for bit in (0, reserved - 1):
        word = (spec.opcode << 58) | (1 << bit)
        with pytest.raises(IllegalInstruction, match=rf"{spec.mnemonic} with non-zero reserved bits \[{reserved - 1}:0\]"):
            decode(word, pc=3)


def test_enum_and_register_indices_that_name_nothing_are_illegal():
    with pytest.raises(IllegalInstruction, match="field buf holds 7"):
        decode((3 << 58) | (7 << 55))
    with pytest.raises(IllegalInstruction, match=f"field reg holds 255, but only 0..{len(REGISTERS) - 1}"):
        decode((2 << 58) | (255 << 50))


def test_decode_program_reports_the_first_illegal_pc():
    words = encode_program([Instruction("nop")] * 5)
    words[3] = (1 << 58) | 1
    words[4] = 0x3F << 58
    with pytest.raises(IllegalInstruction, match="pc 3: .*reserved"):
        decode_program(words)


_KNOWN_OPCODE_WORDS = st.tuples(st.sampled_from([s.opcode for s in INSTRUCTIONS]),
                                st.integers(0, (1 << 58) - 1)).map(lambda t: (t[0] << 58) | t[1])
_NEAR_VALID_WORDS = st.tuples(instructions().map(encode), st.integers(0, 63)).map(lambda t: t[0] ^ (1 << t[1]))
ANY_WORD = st.one_of(st.integers(0, (1 << 64) - 1), _KNOWN_OPCODE_WORDS, instructions().map(encode), _NEAR_VALID_WORDS)


@given(ANY_WORD, st.integers(0, 1000))
def test_fuzz_words_decode_or_are_illegal(word, pc):
    try:
        instr = decode(word, pc=pc)
    except IllegalInstruction as exc:
        assert f"pc {pc}:" in str(exc) and f"0x{word:016x}" in str(exc)
    else:
        assert encode(instr) == word


@given(st.lists(ANY_WORD, max_size=20))
def test_fuzz_decode_program_agrees_with_scalar_decode(words):
    array = np.array(words, dtype=np.uint64)
    expected = []
    try:
        for pc, word in enumerate(words):
            expected.append(decode(word, pc))
    except IllegalInstruction as exc:
        with pytest.raises(IllegalInstruction) as info:
            decode_program(array)
        assert str(info.value) == str(exc)
    else:
        assert decode_program(array) == expected


# ---- binary files -------------------------------------------------------------------------------

def test_binary_files_are_little_endian_words(tmp_path):
    words = encode_program([Instruction("setr", ("mm.m", 49)), Instruction("halt")])
    path = tmp_path / "prog.bin"
    write_binary(words, path)
    data = path.read_bytes()
    assert data == bytes.fromhex("0000c40000002408" "0000000000000004")
    assert read_binary(path).tolist() == words.tolist()
    assert read_binary(path).dtype == np.uint64


def test_read_binary_rejects_partial_words(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\0" * 12)
    with pytest.raises(IsaError, match="bad.bin: 12 bytes is not a whole number of 64-bit words"):
        read_binary(path)
    with pytest.raises(IsaError, match="cannot read program file"):
        read_binary(tmp_path / "missing.bin")


def test_assemble_file(tmp_path):
    path = tmp_path / "prog.s"
    path.write_text("setr mm.m, 49\nhalt\n")
    assert assemble_file(path).tolist() == [0x0824_0000_00C4_0000, 1 << 58]


# ---- register value ranges ------------------------------------------------------------------------

@pytest.mark.parametrize("reg", [name for name, _, _ in REGISTERS])
def test_every_register_range_is_enforced_by_encoder_assembler_and_decoder(reg):
    from tcc.isa import assemble
    from tcc.isa.errors import AssemblyError

    lo, hi = REGISTER_RANGE[reg]
    for value in (lo, hi):
        assert decode(encode(Instruction("setr", (reg, value)))) == Instruction("setr", (reg, value))
    for value in (lo - 1, hi + 1):
        if not -2**31 <= value < 2**31:
            continue  # the 32-bit field itself refuses it
        with pytest.raises(EncodingError, match=f"register {reg} takes values in {lo}..{hi}, got {value}"):
            Instruction("setr", (reg, value))
        with pytest.raises(AssemblyError, match=f"p.s:1:1: setr: register {reg} takes values in"):
            assemble(f"setr {reg}, {value}\n", filename="p.s")
        word = (LAYOUTS["setr"].spec.opcode << OPCODE_SHIFT) | (REGISTER_INDEX[reg] << 50) \
            | ((value & 0xFFFFFFFF) << 18)
        with pytest.raises(IllegalInstruction, match=f"register {reg} takes values"):
            decode(word)
        with pytest.raises(IllegalInstruction, match=f"register {reg} takes values"):
            decode_program(np.array([0, word], np.uint64))
