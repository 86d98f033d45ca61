"""docs/isa.md is generated from the instruction table and committed; it must match the table."""
from pathlib import Path

from tcc.isa.docgen import render_isa_markdown
from tcc.isa.table import INSTRUCTIONS, REGISTERS

ISA_MD = Path(__file__).resolve().parents[2] / "docs" / "isa.md"


def test_committed_isa_doc_is_up_to_date():
    assert ISA_MD.read_text() == render_isa_markdown(), (
        "docs/isa.md is stale; regenerate it deliberately: python -m tcc.isa.docgen > docs/isa.md")


def test_isa_doc_covers_the_table():
    text = render_isa_markdown()
    for spec in INSTRUCTIONS:
        assert f"### `{spec.mnemonic}`\n\nOpcode 0x{spec.opcode:02x}, unit `{spec.unit}`." in text
    for index, (name, _, _) in enumerate(REGISTERS):
        assert f"| {index} | `{name}` |" in text
    assert "| `sram` | [54:31] | u24 | 0x0..0xffffff | destination byte address |" in text
    assert "| `value` | [49:18] | s32 | -2147483648..2147483647 | new value |" in text
