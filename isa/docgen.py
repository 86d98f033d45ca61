"""docs/isa.md, generated from the instruction table: ``python -m tcc.isa.docgen > docs/isa.md``."""
from __future__ import annotations

import sys

from .encoding import LAYOUTS, OPCODE_SHIFT, Layout, Slot
from .table import OPCODE_BITS, REGISTERS, VALUE_RANGES, WORD_BITS

_HEADER = f"""\
# Overlay ISA

<!-- Generated from isa/table.py by `python -m tcc.isa.docgen > docs/isa.md`; do not edit by hand.
     tests/isa/test_docs.py fails when this file and the table disagree. -->

Every instruction is one {WORD_BITS}-bit little-endian word. Bits [{WORD_BITS - 1}:{OPCODE_SHIFT}] hold
the opcode; the fields follow from bit {OPCODE_SHIFT - 1} downwards in the order listed (MSB first);
the bits below the last field are reserved and must be zero. A word with an unknown opcode,
non-zero reserved bits, or an enum/register index that names nothing is an illegal instruction.
Field kinds: `uN` unsigned, `sN` two's-complement signed, `enum` an index into the listed
names, `reg` a configuration register index (table at the end). What each instruction does,
exactly, is in [overlay-machine.md](overlay-machine.md).

## Assembly syntax

One instruction per line: the mnemonic, then the operands separated by commas, positional in
field order or `field=value` (after any positional ones). Enum values and registers are written
by name, numbers in decimal or hex (`0x...`), negative where the field is signed. Comments run
from `;` or `#` to the end of the line. The disassembler prints wide unsigned fields
(addresses) in hex and appends `; pc N`; its output assembles back to the same words.

```
setr mm.m, 49                    ; registers by name
load wbuf, 0x100, 0x2000         ; positional, in field order
matmul mode=conv, accumulate=1, wfmt=int8, wcap=0, acc=0x0, w=0x100
halt
```
"""


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _kind(slot: Slot) -> str:
    kind = slot.field.kind
    return f"{kind}{slot.field.bits}" if kind in ("u", "s") else f"{kind} ({slot.field.bits} bits)"


def _values(slot: Slot) -> str:
    if slot.field.kind == "reg":
        return f"register name (index 0..{len(slot.names) - 1})"
    if slot.names:
        return ", ".join(f"`{name}`={i}" for i, name in enumerate(slot.names))
    return f"{slot.format_number(slot.min)}..{slot.format_number(slot.max)}"


def _syntax(layout: Layout) -> str:
    return " ".join([layout.mnemonic, ", ".join(s.field.name for s in layout.slots)]).strip()


def _instruction_section(layout: Layout) -> list[str]:
    spec = layout.spec
    lines = [f"### `{spec.mnemonic}`", "",
             f"Opcode 0x{spec.opcode:02x}, unit `{spec.unit}`. {_escape(spec.doc)}", "",
             f"Syntax: `{_syntax(layout)}`", "",
             "| field | bits | kind | values | meaning |",
             "|---|---|---|---|---|",
             f"| opcode | [{WORD_BITS - 1}:{OPCODE_SHIFT}] | u{OPCODE_BITS} | 0x{spec.opcode:02x} | |"]
    for slot in layout.slots:
        lines.append(f"| `{slot.field.name}` | [{slot.hi}:{slot.lo}] | {_kind(slot)} | {_values(slot)} "
                     f"| {_escape(slot.field.doc)} |")
    if layout.reserved_bits:
        lines.append(f"| reserved | [{layout.reserved_bits - 1}:0] | zero | 0 | |")
    return lines + [""]


def render_isa_markdown() -> str:
    """The full text of docs/isa.md."""
    layouts = sorted(LAYOUTS.values(), key=lambda layout: layout.spec.opcode)
    lines = [_HEADER, "## Instructions", "",
             "| opcode | mnemonic | unit | operands |", "|---|---|---|---|"]
    for layout in layouts:
        operands = ", ".join(s.field.name for s in layout.slots) or "none"
        lines.append(f"| 0x{layout.spec.opcode:02x} | [`{layout.mnemonic}`](#{layout.mnemonic}) "
                     f"| {layout.spec.unit} | {operands} |")
    lines.append("")
    for layout in layouts:
        lines += _instruction_section(layout)
    lines += ["## Configuration registers", "",
              "32-bit signed, zero at reset, written by `setr`; a register keeps its value until rewritten. "
              "Each register takes the values of its range (what it holds); `setr` with a value outside it "
              "does not assemble and its word is an illegal instruction.", "",
              "| index | name | values | meaning |", "|---|---|---|---|"]
    lines += [f"| {i} | `{name}` | {kind} {VALUE_RANGES[kind][0]}..{VALUE_RANGES[kind][1]} | {_escape(doc)} |"
              for i, (name, kind, doc) in enumerate(REGISTERS)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_isa_markdown())
