"""The overlay's instruction set: table, encoding, assembly text, docs (and the simulator)."""
from .assembler import assemble, assemble_file, read_binary, write_binary
from .disassembler import disassemble
from .encoding import Instruction, decode, decode_program, encode, encode_program, format_instruction
from .errors import AssemblyError, EncodingError, IllegalInstruction, IsaError, SimulatorTrap

__all__ = [
    "AssemblyError", "EncodingError", "IllegalInstruction", "Instruction", "IsaError", "SimulatorTrap",
    "assemble", "assemble_file", "decode", "decode_program", "disassemble", "encode", "encode_program",
    "format_instruction", "read_binary", "write_binary",
]
