"""Every file format the CLI reads: inputs that once crashed tcc (tests/fuzz/corpus) now end in a
message and exit code 2 through the command that reads that format."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

import targets  # noqa: E402

COMMANDS = {  # target -> (file suffix, CLI arguments reading it)
    "ir_parser": (".tir", lambda f, tmp: ["opt", f]),
    "assembler": (".s", lambda f, tmp: ["asm", f, "-o", tmp / "out.bin"]),
    "decoder": (".bin", lambda f, tmp: ["disasm", f]),
    "artifact_loader": (".tcc", lambda f, tmp: ["run", f, "-o", tmp / "out.npz"]),
    "artifact_body": (".tcc", lambda f, tmp: ["disasm", f]),
    "onnx_loader": (".onnx", lambda f, tmp: ["compile", f, "-o", tmp / "out.tir"]),
}


def cases():
    out = []
    for target in sorted(COMMANDS):
        files = targets.corpus_files(target)
        for path in files[:3]:
            out.append(pytest.param(target, path, id=f"{target}/{path.name}"))
    return out


@pytest.mark.parametrize("target, path", cases())
def test_corpus_inputs_through_the_cli_exit_2(target, path, tmp_path, tcc_cli):
    suffix, command = COMMANDS[target]
    data = path.read_bytes()
    if target == "artifact_body":
        data = targets.repack(targets.seeds("artifact_loader")[0], data)
    file = tmp_path / f"input{suffix}"
    file.write_bytes(data)
    code, _, err = tcc_cli(*command(file, tmp_path))
    assert code == 2, err
    assert err.startswith("error: ") and "internal compiler error" not in err and "Traceback" not in err


def test_huge_declared_input_is_refused_not_allocated(tmp_path, tcc_cli):
    (tmp_path / "big.tir").write_text('module @m {\n  input %x : f32[1099511627776,1024]\n'
                                      '  %y = relu(%x) : f32[1099511627776,1024]\n  output "y" = %y\n}\n')
    code, _, err = tcc_cli("run", tmp_path / "big.tir", "-o", tmp_path / "o.npz")
    assert code == 2
    assert "would take 4503599627370496 bytes of random data" in err and "--inputs" in err


def test_out_of_memory_is_a_clear_error_not_an_internal_one(tmp_path, tcc_cli, monkeypatch):
    import tcc.ir

    def exhausted(module, *args, **kwargs):
        raise MemoryError("Unable to allocate 1.00 TiB for an array with shape (1099511627776,)")

    (tmp_path / "m.tir").write_text('module @m {\n  input %x : f32[4]\n  output "x" = %x\n}\n')
    monkeypatch.setattr(tcc.ir, "print_module", exhausted)
    code, _, err = tcc_cli("opt", tmp_path / "m.tir")
    assert code == 2
    assert err.startswith("error: out of memory (Unable to allocate 1.00 TiB") and "internal" not in err
