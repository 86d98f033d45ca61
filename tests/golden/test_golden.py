"""Golden tests: small IR files run through `tcc opt` or compiled for the overlay and disassembled
(`tcc disasm`), their output checked by the file's own ``// CHECK`` lines (tests/golden/filecheck.py).

Each file says what to run in one line:

- ``// RUN: opt --passes PIPELINE`` runs ``tcc opt FILE --passes PIPELINE`` (``%S`` in PIPELINE is
  the file's folder, for calibration data);
- ``// RUN: disasm`` compiles the file for the default overlay target and runs ``tcc disasm`` on the
  artifact; the whole listing must also equal ``FILE.s`` beside it, so any change in code generation
  shows as a readable diff.  ``pytest tests/golden --update-goldens`` rewrites those files on
  purpose (review the diff before committing it).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from filecheck import filecheck, read_checks
from tcc.passes import PASSES

HERE = Path(__file__).resolve().parent
FILES = sorted(HERE.glob("*/*.tir"))
_RUN = re.compile(r"^//\s*RUN:\s*(.*)$", re.M)


def _run_line(path: Path) -> list[str]:
    found = _RUN.findall(path.read_text())
    assert len(found) == 1, f"{path}: needs exactly one '// RUN:' line"
    return found[0].replace("%S", str(path.parent)).split()


def _disasm(path: Path, tmp_path: Path, tcc_cli) -> str:
    from tcc.backends.overlay import compile_overlay
    from tcc.driver import load_ir

    artifact = tmp_path / (path.stem + ".tcc")
    compile_overlay(load_ir(path)).save(artifact)
    code, out, err = tcc_cli("disasm", artifact)
    assert code == 0, err
    return out


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_golden(path, tmp_path, tcc_cli, request):
    command = _run_line(path)
    if command == ["disasm"]:
        out = _disasm(path, tmp_path, tcc_cli)
        golden = path.with_suffix(".s")
        if request.config.getoption("--update-goldens"):
            golden.write_text(out)
        assert golden.exists(), f"{golden} is missing: run pytest {HERE} --update-goldens"
        assert out == golden.read_text(), f"disassembly differs from {golden.name} (--update-goldens rewrites it)"
    else:
        assert command[0] == "opt", f"{path}: RUN line must be 'opt --passes ...' or 'disasm'"
        code, out, err = tcc_cli("opt", path, *command[1:])
        assert code == 0, err
    checks = read_checks(path.read_text())
    assert checks, f"{path} has no CHECK lines"
    filecheck(out, checks, str(path.relative_to(HERE)))


def test_every_registered_pass_has_a_golden_file():
    tested = set()
    for path in FILES:
        command = _run_line(path)
        if command[0] == "opt":
            tested.update(re.findall(r"([a-z][a-z0-9-]*)(?:\{[^}]*\})?(?:,|$)", command[command.index("--passes") + 1]))
    assert set(PASSES) <= tested, f"passes without a golden test: {sorted(set(PASSES) - tested)}"
