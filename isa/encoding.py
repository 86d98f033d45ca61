"""Instructions as values and their 64-bit encoding, derived field by field from ``isa/table.py``.

Canonical form of an ``Instruction``: the mnemonic and one operand per table field, in table
order; ``enum`` fields hold the value's name (``"wbuf"``), ``reg`` fields the register's name
(``"mm.m"``), ``u``/``s`` fields a Python int.  The constructor also accepts enum and register
indices and converts them to names, and checks every value, so an ``Instruction`` that exists
always encodes.
"""
from __future__ import annotations

import difflib
import operator
from dataclasses import dataclass

import numpy as np

from .errors import EncodingError, IllegalInstruction
from .table import INSTRUCTIONS, OPCODE_BITS, REGISTER_INDEX, REGISTER_RANGE, REGISTERS, WORD_BITS, Field, Instr

OPCODE_SHIFT = WORD_BITS - OPCODE_BITS
WORD_MASK = (1 << WORD_BITS) - 1
_KIND_WORDS = {"u": "unsigned", "s": "signed"}


@dataclass(frozen=True)
class Slot:
    """Where one field of one instruction sits in the word, and which values it takes."""

    field: Field
    hi: int  # bit positions, inclusive, as in [hi:lo]
    lo: int
    names: tuple[str, ...]  # enum values or register names; empty for numbers
    index: dict[str, int]

    @property
    def mask(self) -> int:
        return (1 << self.field.bits) - 1

    @property
    def min(self) -> int:
        return -(1 << (self.field.bits - 1)) if self.field.kind == "s" else 0

    @property
    def max(self) -> int:
        if self.field.kind == "s":
            return (1 << (self.field.bits - 1)) - 1
        return len(self.names) - 1 if self.names else self.mask

    @property
    def prints_in_hex(self) -> bool:
        """Wide unsigned fields are addresses: the disassembler and messages show them in hex."""
        return self.field.kind == "u" and self.field.bits >= 16

    def format_number(self, value: int) -> str:
        return f"0x{value:x}" if self.prints_in_hex and value >= 0 else str(value)


@dataclass(frozen=True)
class Layout:
    """One instruction's word: opcode, field slots MSB-first, and the reserved low bits."""

    spec: Instr
    slots: tuple[Slot, ...]
    reserved_bits: int  # the low bits [reserved_bits-1:0] must be zero
    position: dict[str, int]  # field name -> operand index

    @property
    def mnemonic(self) -> str:
        return self.spec.mnemonic

    def field_list(self) -> str:
        return ", ".join(s.field.name for s in self.slots) or "none"

    def count_message(self, got: int) -> str:
        if not self.slots:
            return f"{self.mnemonic} takes no operands, got {got}"
        return f"{self.mnemonic} takes {len(self.slots)} operand(s) ({self.field_list()}), got {got}"


def _build_layout(spec: Instr) -> Layout:
    slots = []
    hi = OPCODE_SHIFT - 1
    for field in spec.fields:
        if field.kind == "enum":
            names = field.values
        elif field.kind == "reg":
            names = tuple(name for name, _, _ in REGISTERS)
        else:
            names = ()
        slots.append(Slot(field, hi, hi - field.bits + 1, names, {n: i for i, n in enumerate(names)}))
        hi -= field.bits
    position = {s.field.name: i for i, s in enumerate(slots)}
    return Layout(spec, tuple(slots), hi + 1, position)


LAYOUTS: dict[str, Layout] = {spec.mnemonic: _build_layout(spec) for spec in INSTRUCTIONS}
_BY_OPCODE: dict[int, Layout] = {layout.spec.opcode: layout for layout in LAYOUTS.values()}


def did_you_mean(word: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or the empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def layout_of(mnemonic: str) -> Layout:
    try:
        return LAYOUTS[mnemonic]
    except (KeyError, TypeError):
        raise EncodingError(f"unknown mnemonic {mnemonic!r}{did_you_mean(str(mnemonic), LAYOUTS)}") from None


def check_operand(layout: Layout, slot: Slot, value) -> int | str:
    """The canonical form of ``value`` for ``slot``, or EncodingError naming instruction and field."""
    where = f"{layout.mnemonic}: field {slot.field.name}"
    if slot.names:
        is_reg = slot.field.kind == "reg"
        if isinstance(value, str):
            if value in slot.index:
                return value
            hint = did_you_mean(value, slot.names)
            if is_reg:
                raise EncodingError(f"{layout.mnemonic}: unknown register {value!r}{hint}")
            raise EncodingError(f"{where} has no value {value!r}{hint}; values: {', '.join(slot.names)}")
        number = _as_int(where, value)
        if not 0 <= number < len(slot.names):
            raise EncodingError(f"{where} takes an index in 0..{len(slot.names) - 1} or a name, got {number}")
        return slot.names[number]
    number = _as_int(where, value)
    if not slot.min <= number <= slot.max:
        kind = _KIND_WORDS[slot.field.kind]
        raise EncodingError(f"{where} must be a {slot.field.bits}-bit {kind} integer in "
                            f"{slot.format_number(slot.min)}..{slot.format_number(slot.max)}, "
                            f"got {slot.format_number(number)}")
    return number


_REGISTER_LOW, _REGISTER_HIGH = (np.array([REGISTER_RANGE[name][i] for name, _, _ in REGISTERS], np.int64)
                                 for i in (0, 1))


def register_value_error(reg: str, value: int) -> str | None:
    """Why ``setr reg, value`` is out of the register's range (isa/table.py), or None."""
    lo, hi = REGISTER_RANGE[reg]
    if lo <= value <= hi:
        return None
    return f"setr: register {reg} takes values in {lo}..{hi}, got {value}"


def _as_int(where: str, value) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise EncodingError(f"{where} takes an integer, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: mnemonic and operands in table field order (see the module docstring)."""

    mnemonic: str
    operands: tuple[int | str, ...] = ()

    def __post_init__(self):
        layout = layout_of(self.mnemonic)
        operands = tuple(self.operands)
        if len(operands) != len(layout.slots):
            raise EncodingError(layout.count_message(len(operands)))
        canonical = tuple(check_operand(layout, slot, v) for slot, v in zip(layout.slots, operands))
        if self.mnemonic == "setr" and (problem := register_value_error(str(canonical[0]), int(canonical[1]))):
            raise EncodingError(problem)
        object.__setattr__(self, "operands", canonical)

    @classmethod
    def of(cls, mnemonic: str, *operands, **fields) -> Instruction:
        """Build from positional operands and/or fields by name: ``Instruction.of("load", "wbuf", sram=0, dram=64)``."""
        layout = layout_of(mnemonic)
        values = list(operands)
        for name, value in fields.items():
            if name not in layout.position:
                raise EncodingError(f"{mnemonic} has no field {name!r}{did_you_mean(name, layout.position)}; "
                                    f"fields: {layout.field_list()}")
            i = layout.position[name]
            if i < len(operands):
                raise EncodingError(f"{mnemonic}: field {name} given both by position and by name")
            values.extend([None] * (i + 1 - len(values)))
            values[i] = value
        missing = [s.field.name for s, v in zip(layout.slots, values) if v is None]
        missing += [s.field.name for s in layout.slots[len(values):]]
        if missing:
            raise EncodingError(f"{mnemonic}: missing field(s) {', '.join(missing)} (fields: {layout.field_list()})")
        return cls(mnemonic, tuple(values))

    @classmethod
    def _checked(cls, mnemonic: str, operands: tuple) -> Instruction:
        """For the decoder, whose operands are canonical by construction: skips re-checking."""
        instr = object.__new__(cls)
        object.__setattr__(instr, "mnemonic", mnemonic)
        object.__setattr__(instr, "operands", operands)
        return instr

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.mnemonic]

    @property
    def opcode(self) -> int:
        return LAYOUTS[self.mnemonic].spec.opcode

    @property
    def fields(self) -> dict[str, int | str]:
        """Field name -> canonical value, in table order."""
        return {s.field.name: v for s, v in zip(LAYOUTS[self.mnemonic].slots, self.operands)}

    def __getitem__(self, name: str) -> int | str:
        return self.operands[self._position(name)]

    def raw(self, name: str) -> int:
        """The field as the integer the word carries: enum and register names become indices."""
        i = self._position(name)
        slot = LAYOUTS[self.mnemonic].slots[i]
        value = self.operands[i]
        return slot.index[str(value)] if slot.names else int(value)

    def _position(self, name: str) -> int:
        layout = LAYOUTS[self.mnemonic]
        try:
            return layout.position[name]
        except KeyError:
            raise KeyError(f"{self.mnemonic} has no field {name!r} (fields: {layout.field_list()})") from None

    def __str__(self) -> str:
        return format_instruction(self)


def format_instruction(instr: Instruction) -> str:
    """``load wbuf, 0x100, 0x2000``: operands in table order; names bare, addresses in hex."""
    layout = LAYOUTS[instr.mnemonic]
    operands = [str(value) if slot.names else slot.format_number(int(value))
                for slot, value in zip(layout.slots, instr.operands)]
    return f"{instr.mnemonic} {', '.join(operands)}" if operands else instr.mnemonic


def encode(instr: Instruction) -> int:
    """The 64-bit word of ``instr``."""
    layout = LAYOUTS[instr.mnemonic]
    word = layout.spec.opcode << OPCODE_SHIFT
    for slot, value in zip(layout.slots, instr.operands):
        number = slot.index[str(value)] if slot.names else int(value)
        word |= (number & slot.mask) << slot.lo
    return word


def decode(word: int, pc: int | None = None) -> Instruction:
    """The instruction in ``word``; IllegalInstruction (with ``pc`` when given) if it is none."""
    word = int(word)
    if not 0 <= word <= WORD_MASK:
        raise IllegalInstruction(word & WORD_MASK, f"{word} is not a 64-bit word", pc)
    layout = _BY_OPCODE.get(word >> OPCODE_SHIFT)
    if layout is None:
        raise IllegalInstruction(word, f"unknown opcode 0x{word >> OPCODE_SHIFT:02x}", pc)
    if word & ((1 << layout.reserved_bits) - 1):
        raise IllegalInstruction(word, f"{layout.mnemonic} with non-zero reserved bits "
                                       f"[{layout.reserved_bits - 1}:0]", pc)
    operands: list[int | str] = []
    for slot in layout.slots:
        number = (word >> slot.lo) & slot.mask
        if slot.names:
            if number >= len(slot.names):
                raise IllegalInstruction(word, _bad_index(layout, slot, number), pc)
            operands.append(slot.names[number])
        elif slot.field.kind == "s" and number > slot.max:
            operands.append(number - (1 << slot.field.bits))
        else:
            operands.append(number)
    if layout.mnemonic == "setr" and (problem := register_value_error(str(operands[0]), int(operands[1]))):
        raise IllegalInstruction(word, problem, pc)
    return Instruction._checked(layout.mnemonic, tuple(operands))


def _bad_index(layout: Layout, slot: Slot, number: int) -> str:
    what = "registers" if slot.field.kind == "reg" else "values"
    return f"{layout.mnemonic}: field {slot.field.name} holds {number}, but only 0..{len(slot.names) - 1} name {what}"


def encode_program(program) -> np.ndarray:
    """The words of a sequence of instructions, as a uint64 array."""
    words = np.zeros(len(program), dtype=np.uint64)
    groups: dict[str, list[int]] = {}
    for pc, instr in enumerate(program):
        groups.setdefault(instr.mnemonic, []).append(pc)
    for mnemonic, pcs in groups.items():
        layout = LAYOUTS[mnemonic]
        group = np.full(len(pcs), layout.spec.opcode << OPCODE_SHIFT, dtype=np.uint64)
        for i, slot in enumerate(layout.slots):
            if slot.names:
                column = np.array([slot.index[program[pc].operands[i]] for pc in pcs], dtype=np.int64)
            else:
                column = np.array([program[pc].operands[i] for pc in pcs], dtype=np.int64)
            group |= (column.astype(np.uint64) & np.uint64(slot.mask)) << np.uint64(slot.lo)
        words[pcs] = group
    return words


def decode_program(words) -> list[Instruction]:
    """The instructions of a uint64 word array (PC = index); IllegalInstruction names the first bad PC."""
    words = np.asarray(words, dtype=np.uint64)
    opcodes = words >> np.uint64(OPCODE_SHIFT)
    program: list[Instruction | None] = [None] * len(words)
    bad = ~np.isin(opcodes, np.array(list(_BY_OPCODE), dtype=np.uint64))
    for opcode, layout in _BY_OPCODE.items():
        pcs = np.flatnonzero(opcodes == np.uint64(opcode))
        if pcs.size == 0:
            continue
        group = words[pcs]
        bad[pcs] |= (group & np.uint64((1 << layout.reserved_bits) - 1)) != 0
        columns = []
        for slot in layout.slots:
            numbers = ((group >> np.uint64(slot.lo)) & np.uint64(slot.mask)).astype(np.int64)
            if slot.names:
                bad[pcs] |= numbers >= len(slot.names)
                names = np.array(slot.names, dtype=object)
                columns.append(names[np.minimum(numbers, len(slot.names) - 1)].tolist())
            elif slot.field.kind == "s":
                columns.append(np.where(numbers > slot.max, numbers - (1 << slot.field.bits), numbers).tolist())
            else:
                columns.append(numbers.tolist())
        if layout.mnemonic == "setr":  # each register's value range (the scalar decoder says which)
            index = np.array([REGISTER_INDEX[name] for name in columns[0]], np.int64)
            values = np.array(columns[1], np.int64)
            bad[pcs] |= (values < _REGISTER_LOW[index]) | (values > _REGISTER_HIGH[index])
        rows = zip(*columns) if columns else [()] * len(pcs)
        for pc, operands in zip(pcs.tolist(), rows):
            program[pc] = Instruction._checked(layout.mnemonic, tuple(operands))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        decode(int(words[first]), pc=first)  # raises the same error as the scalar decoder
    return program
