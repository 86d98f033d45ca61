"""Instructions to assembly text, in exactly the syntax ``assembler.assemble`` reads back."""
from __future__ import annotations

import numpy as np

from .encoding import Instruction, decode, decode_program, format_instruction

PC_COLUMN = 40  # the ``; pc N`` comments start here, so listings line up


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
