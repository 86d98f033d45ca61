"""Exception types of the ISA layer; all are ``TccError``s, so the CLI reports them and exits 2."""
from __future__ import annotations

from tcc.ir.errors import TccError


class IsaError(TccError):
    """Base of the errors raised by encoder, decoder, assembler and simulator."""


class EncodingError(IsaError):
    """An instruction that cannot be encoded: unknown mnemonic, missing field or value out of range."""


class IllegalInstruction(IsaError):
    """A 64-bit word that is not an instruction: unknown opcode or non-zero reserved bits."""

    def __init__(self, word: int, reason: str, pc: int | None = None):
        self.word = word
        self.reason = reason
        self.pc = pc
        where = f"pc {pc}: " if pc is not None else ""
        super().__init__(f"{where}illegal instruction 0x{word:016x}: {reason}")

    def __reduce__(self):  # keyword-built exceptions must say how to rebuild them (pickle, copy)
        return type(self), (self.word, self.reason, self.pc)


class AssemblyError(IsaError):
    """Assembly text that does not assemble; the message starts with ``file:line:col``."""

    def __init__(self, filename: str, line: int, column: int, message: str):
        self.filename = filename
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"{filename}:{line}:{column}: {message}")

    def __reduce__(self):
        return type(self), (self.filename, self.line, self.column, self.reason)


class SimulatorTrap(IsaError):
    """The simulator stopped on a fault; names the PC, the disassembled instruction and why."""

    def __init__(self, pc: int, instruction_text: str, reason: str):
        self.pc = pc
        self.instruction_text = instruction_text
        self.reason = reason
        super().__init__(f"trap at pc {pc} ({instruction_text}): {reason}")

    def __reduce__(self):
        return type(self), (self.pc, self.instruction_text, self.reason)
