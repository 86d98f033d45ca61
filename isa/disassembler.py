"""Instructions to assembly text, in exactly the syntax ``assembler.assemble`` reads back."""
from __future__ import annotations

import numpy as np

from .encoding import LAYOUTS, Instruction, decode, decode_program

PC_COLUMN = 40  # the ``; pc N`` comments start here, so listings line up


def format_instruction(instr: Instruction) -> str:
    """``load wbuf, 0x100, 0x2000``: operands in table order; names bare, addresses in hex."""
    layout = LAYOUTS[instr.mnemonic]
    operands = [value if slot.names else slot.format_number(value)
                for slot, value in zip(layout.slots, instr.operands)]
    return f"{instr.mnemonic} {', '.join(operands)}" if operands else instr.mnemonic


def disassemble(program, with_pc: bool = True) -> str:
    """One line per instruction of ``program`` (a word array, or a sequence of words or Instructions);
    ``with_pc`` appends a ``; pc N`` comment. Illegal words raise IllegalInstruction naming their PC."""
    if isinstance(program, np.ndarray):
        instructions = decode_program(program)
    else:
        instructions = [x if isinstance(x, Instruction) else decode(x, pc) for pc, x in enumerate(program)]
    lines = []
    for pc, instr in enumerate(instructions):
        text = format_instruction(instr)
        lines.append(f"{text:<{PC_COLUMN}} ; pc {pc}" if with_pc else text)
    return "".join(line + "\n" for line in lines)
