"""Assembler and disassembler: the syntax, round trips through text, errors with file:line:col."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_encoding import instructions

from tcc.isa import (AssemblyError, IllegalInstruction, Instruction, assemble, assemble_file, disassemble,
                     encode_program, format_instruction)
from tcc.isa.table import INSTRUCTIONS

EXAMPLE = """\
; a comment line
setr mm.m, 49          # registers by name; '#' comments too
  setr cv.pad_top, -1
load wbuf, 0x100, 0x2000

matmul conv, 1, int8, 0, 0, 256      ; positional in table order
matmul mode=conv, accumulate=1, wfmt=int8, wcap=0, acc=0, w=0x100
matmul conv, 1, w=256, acc=0X0, wfmt=int8, wcap=0
sync 7
halt"""


def test_example_program():
    program = assemble(EXAMPLE)
    conv = Instruction("matmul", ("conv", 1, "int8", 0, 0, 256))
    assert program == [Instruction("setr", ("mm.m", 49)), Instruction("setr", ("cv.pad_top", -1)),
                       Instruction("load", ("wbuf", 0x100, 0x2000)), conv, conv, conv,
                       Instruction("sync", (7,)), Instruction("halt")]


def test_disassembly_text():
    program = assemble(EXAMPLE)
    assert disassemble(program, with_pc=False) == (
        "setr mm.m, 49\n"
        "setr cv.pad_top, -1\n"
        "load wbuf, 0x100, 0x2000\n"
        "matmul conv, 1, int8, 0, 0x0, 0x100\n"
        "matmul conv, 1, int8, 0, 0x0, 0x100\n"
        "matmul conv, 1, int8, 0, 0x0, 0x100\n"
        "sync 7\n"
        "halt\n")
    listing = disassemble(program[:3])
    assert listing == ("setr mm.m, 49                            ; pc 0\n"
                       "setr cv.pad_top, -1                      ; pc 1\n"
                       "load wbuf, 0x100, 0x2000                 ; pc 2\n")
    assert disassemble([]) == ""


def test_disassemble_accepts_words_in_any_form():
    program = assemble(EXAMPLE)
    words = encode_program(program)
    text = disassemble(program)
    assert disassemble(words) == text
    assert disassemble(words.tolist()) == text
    assert [format_instruction(i) for i in program] == [str(i) for i in program]


def test_disassemble_names_the_pc_of_an_illegal_word():
    words = encode_program([Instruction("nop"), Instruction("halt")])
    words[1] |= np.uint64(1)
    for form in (words, words.tolist()):
        with pytest.raises(IllegalInstruction, match="pc 1: illegal instruction 0x0400000000000001"):
            disassemble(form)


def test_line_endings_and_blank_lines():
    assert assemble("\r\n\nhalt\r\n\n  ; trailing comment\n") == [Instruction("halt")]
    assert assemble("") == [] and assemble("; nothing\n") == []


@given(st.lists(instructions(), max_size=30), st.booleans())
def test_text_round_trip(program, with_pc):
    text = disassemble(program, with_pc=with_pc)
    assert assemble(text) == program
    assert disassemble(assemble(text), with_pc=with_pc) == text


@given(instructions(), st.data())
def test_keyword_form_in_any_order_equals_positional(instr, data):
    texts = [f"{name}={value}" for name, value in instr.fields.items()]  # numbers in decimal here
    split = data.draw(st.integers(0, len(texts)))
    operands = [t.split("=")[1] for t in texts[:split]] + data.draw(st.permutations(texts[split:]))
    assert assemble(f"{instr.mnemonic} {', '.join(operands)}") == [instr]


@pytest.mark.parametrize("text, where, message", [
    ("lod wbuf, 1, 2", "1:1", "unknown mnemonic 'lod' (did you mean 'load'?)"),
    ("halt\nmatmull gemm, 0, int8, 0, 0, 0", "2:1", "did you mean 'matmul'?"),
    ("load wbuf, 1", "1:1", "load takes 3 operand(s) (buf, sram, dram), got 2"),
    ("load wbuf, 1, 2, 3", "1:18", "load takes 3 operand(s) (buf, sram, dram), got 4"),
    ("nop\n\n  halt 3", "3:8", "halt takes no operands, got 1"),
    ("load wbf, 1, 2", "1:6", "load: field buf has no value 'wbf' (did you mean 'wbuf'?)"),
    ("load 1, 1, 2", "1:6", "load: field buf takes one of abuf, wbuf, acc, pbuf, vbuf, got the number 1"),
    ("setr mm.mm, 1", "1:6", "setr: unknown register 'mm.mm' (did you mean 'mm.m'?)"),
    ("setr 3, 1", "1:6", "setr: field reg takes a register name, got the number 3"),
    ("load wbuf, x, 2", "1:12", "load: field sram takes a number, got 'x'"),
    ("load wbuf, 0x1000000, 2", "1:12", "load: field sram must be a 24-bit unsigned integer in 0x0..0xffffff"),
    ("load wbuf, -1, 2", "1:12", "load: field sram must be a 24-bit unsigned integer"),
    ("setr mm.m, 2147483648", "1:12", "setr: field value must be a 32-bit signed integer in -2147483648..2147483647"),
    ("load buf=wbuf, 1, 2", "1:16", "positional operand after a field=value operand"),
    ("load wbuf, sram=1, sram=2", "1:20", "load: field sram is given twice"),
    ("load wbuf, 0, buf=acc, 2", "1:15", "load: field buf is given twice"),
    ("load wbuf, sram=1", "1:1", "load: missing field(s) dram"),
    ("load wbuf, 1, darm=2", "1:15", "load has no field 'darm' (did you mean 'dram'?); fields: buf, sram, dram"),
    ("load wbuf, 1,", "1:14", "expected a name or a number, got end of line"),
    ("load wbuf 1, 2", "1:11", "expected ',' or '=' or end of line, got '1'"),
    ("load wbuf, 1.5, 2", "1:13", "unexpected character '.'"),
    ("load wbuf, 1, 2 @", "1:17", "unexpected character '@'"),
])
def test_assembly_errors(text, where, message):
    with pytest.raises(AssemblyError) as info:
        assemble(text, filename="prog.s")
    assert str(info.value).startswith(f"prog.s:{where}: ")
    assert message in str(info.value)
    line, col = where.split(":")
    assert (info.value.filename, info.value.line, info.value.column) == ("prog.s", int(line), int(col))


def test_every_mnemonic_has_a_did_you_mean():
    for spec in INSTRUCTIONS:
        if len(spec.mnemonic) > 3:
            typo = spec.mnemonic[:-1] + "x"
            with pytest.raises(AssemblyError, match=f"did you mean '{spec.mnemonic}'"):
                assemble(typo)


def test_assemble_file_names_the_file(tmp_path):
    path = tmp_path / "bad.s"
    path.write_text("halt\nsetr mm.m, 1, 2\n")
    with pytest.raises(AssemblyError, match=r"bad\.s:2:15: setr takes 2 operand"):
        assemble_file(path)
