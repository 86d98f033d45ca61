"""Bad input through the CLI, one row per class of issue 12 (and the fuzz corpus): each must exit
with the expected code and one line that names the offending file or field, print no traceback,
and leave every existing output untouched (nothing half-written, nothing created).

Hostile names in generated code are tests/cli/test_hostile_names.py (they are not errors: they must
come out escaped). The .npz files are tests/cli/npz_cases.py's (test_calibration_data.py and
test_npz_loader.py check the loader's messages in more detail); tcc eval's streamed data has its
own checks in tests/evaluation/test_eval_data_checks.py."""
import os
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

import targets  # noqa: E402
from npz_cases import BAD_FILES, bad_files, header_bomb  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
CALIB = ROOT / "examples" / "digits" / "digits_calib.npz"
OLD = b"old output, must survive\n"


# -- files the rows use ----------------------------------------------------------------------------
def _save(graph_nodes, inputs, outputs, inits, path):
    graph = helper.make_graph(graph_nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])


def relu_model(d):
    return _save([helper.make_node("Relu", ["x"], ["y"], name="r")], [X], [Y], [], d / "m.onnx")


def relu_ir(d):
    path = d / "m.tir"
    path.write_text('module @m {\n  input %x : f32[1,4]\n  %y = relu(%x) : f32[1,4]\n  output "y" = %y\n}\n')
    return path


def inputs_npz(d):
    np.savez(d / "in.npz", x=np.ones((1, 4), np.float32))
    return d / "in.npz"


def artifact(d):
    path = d / "a.tcc"
    path.write_bytes(targets.seeds("artifact_loader")[0])
    return path


def external_data_model(d, location):
    tensor = numpy_helper.from_array(np.ones((8, 1), np.float32), "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    (d.parent / "outside.bin").write_bytes(np.ones(8, np.float32).tobytes())
    (d / "real.bin").write_bytes(np.ones(8, np.float32).tobytes())
    os.symlink(d / "real.bin", d / "link.bin")
    return _save([helper.make_node("MatMul", ["w", "x"], ["y"], name="mm")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 1])], [tensor], d / "ext.onnx")


def artifact_with_layer(d, layer):
    path = d / "edited.tcc"
    path.write_bytes(targets.repack_metadata(targets.seeds("artifact_loader")[0],
                                             lambda meta: dict(meta, layers=[layer] + meta["layers"][1:])))
    return path


def target_file(d, key, value):
    lines = [f"{key} = {value}" if line.startswith(f"{key} = ") else line
             for line in (ROOT / "isa" / "targets" / "tataa.toml").read_text().splitlines()]
    (d / "t.toml").write_text("\n".join(lines) + "\n")
    return d / "t.toml"


def sparse_target_file(d, key, value):
    text = (ROOT / "backends" / "sparse" / "zcu102.toml").read_text()
    (d / "s.toml").write_text("\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line
                                        for line in text.splitlines()) + "\n")
    return d / "s.toml"


def range_model(d, limit=260_000_000):
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("s", 0), ("l", limit), ("d", 1))]
    return _save([helper.make_node("Range", ["s", "l", "d"], ["y"], name="rng")], [],
                 [helper.make_tensor_value_info("y", TensorProto.INT64, None)], inits, d / "range.onnx")


def asm_file(d, text="setr mm.m, 49\nhalt\n"):
    (d / "p.s").write_text(text)
    return d / "p.s"


# -- the table ---------------------------------------------------------------------------------------
@dataclass
class Case:
    """``argv(d)`` makes the input files in folder ``d`` and returns the command line; ``outputs``
    (names in ``d``) exist with OLD content beforehand and must keep it."""

    id: str
    argv: Callable
    message: tuple  # fragments of the one-line message
    code: int = 2
    outputs: tuple = ()
    unchanged: tuple = ()  # inputs (names in d) that must keep their bytes
    extra: dict = field(default_factory=dict)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _hard_link(d):
    relu_ir(d)
    os.link(d / "m.tir", d / "hard.tir")
    return ["opt", d / "m.tir", "-o", d / "hard.tir"]


def _symlink_to_input(d):
    relu_model(d)
    os.symlink(d / "m.onnx", d / "alias.onnx")
    return ["compile", d / "m.onnx", "-o", d / "alias.onnx"]


def _dump_over_input(d):
    """`tcc opt 00-import.tir --dump-ir-after all` in the input's folder would dump over the input."""
    relu_ir(d).rename(d / "00-import.tir")
    return ["opt", d / "00-import.tir", "--passes", "dce", "--dump-ir-after", "all", "-o", d / "o.tir"]


def _dump_link_to_input(d):
    relu_ir(d)
    (d / "dumps").mkdir()
    os.symlink(d / "m.tir", d / "dumps" / "01-dce.tir")
    return ["opt", d / "m.tir", "--passes", "dce", "--dump-ir-after", "dce", "--dump-dir", d / "dumps",
            "-o", d / "o.tir"]


def _npz_case(name, flag):
    """Each malformed .npz of npz_cases.bad_files as --calib (compile) or --inputs (run)."""
    def argv(d):
        bad_files(d)
        if flag == "--calib":
            return ["compile", DIGITS, "--calib", d / name, "-o", d / "q.tir"]
        (d / "m.tir").write_text('module @m {\n  input %input : f32[16,1,16,16]\n'
                                 '  %y = relu(%input) : f32[16,1,16,16]\n  output "y" = %y\n}\n')
        return ["run", d / "m.tir", "--inputs", d / name, "-o", d / "o.npz"]
    return argv


def _calib_with(d, edit):
    with np.load(CALIB) as data:
        samples = data["input"][:4].copy()
    edit(samples)
    np.savez(d / "c.npz", input=samples)
    return ["compile", DIGITS, "-t", "overlay", "--calib", d / "c.npz", "-o", d / "q.tcc"]


def _set(index, value):
    def edit(samples):
        samples[index] = value
    return edit


CASES = [
    # Data loss: an output that is an input is refused before any work.
    Case("compile -o MODEL", lambda d: ["compile", relu_model(d), "-o", d / "m.onnx"],
         ("--output", "m.onnx", "is the input MODEL"), unchanged=("m.onnx",)),
    Case("compile -o CALIB", lambda d: ["compile", DIGITS, "--calib", inputs_npz(d), "-o", d / "in.npz"],
         ("in.npz", "is the input --calib"), unchanged=("in.npz",)),
    Case("run -o ARTIFACT", lambda d: ["run", artifact(d), "-o", d / "a.tcc"],
         ("a.tcc", "is the input SOURCE"), unchanged=("a.tcc",)),
    Case("run --inputs -o same", lambda d: ["run", relu_ir(d), "--inputs", inputs_npz(d), "-o", d / "in.npz"],
         ("in.npz", "is the input --inputs"), unchanged=("in.npz",)),
    Case("asm -o SOURCE", lambda d: ["asm", asm_file(d), "-o", d / "p.s"], ("p.s", "is the input SOURCE"),
         unchanged=("p.s",)),
    Case("report --json ARTIFACT", lambda d: ["report", artifact(d), "--json", d / "a.tcc"],
         ("--json", "a.tcc", "is the input ARTIFACT"), unchanged=("a.tcc",)),
    Case("hard link to the input", _hard_link, ("hard.tir", "is the input SOURCE"), unchanged=("m.tir",)),
    Case("symlink to the input", _symlink_to_input, ("alias.onnx", "is the input MODEL"), unchanged=("m.onnx",)),
    Case("two outputs, one file", lambda d: ["run", relu_ir(d), "-o", d / "o.npz", "--report", d / "o.npz"],
         ("--report", "are the same file"), outputs=("o.npz",)),
    Case("two outputs to stdout", lambda d: ["run", relu_ir(d), "-o", "-", "--report", "-"],
         ("--output and --report cannot both go to standard output",)),
    Case("dump over the input (current folder)", _dump_over_input,
         ("--dump-dir (default: the current folder) . could overwrite the input SOURCE", "00-import.tir",
          "NN-PASS.tir"), outputs=("o.tir",), unchanged=("00-import.tir",), extra={"cwd": True}),
    Case("dump folder holds a link to the input", _dump_link_to_input,
         ("--dump-dir", "dumps could overwrite the input SOURCE", "m.tir"), outputs=("o.tir",),
         unchanged=("m.tir",)),
    Case("dump folder is -o", lambda d: ["compile", relu_model(d), "--dump-ir-after", "all", "--dump-dir",
                                         d / "new.tir", "-o", d / "new.tir"],
         ("--dump-dir", "new.tir is also --output",)),
    Case("dump folder is an input", lambda d: ["compile", relu_model(d), "--dump-ir-after", "all", "--dump-dir",
                                               d / "m.onnx", "-o", d / "o.tir"],
         ("--dump-dir", "m.onnx", "is a file"), outputs=("o.tir",), unchanged=("m.onnx",)),
    Case("empty -o", lambda d: ["compile", relu_model(d), "-o", ""], ("--output: empty file name",)),
    Case("-o a folder", lambda d: ["asm", asm_file(d), "-o", d], ("--output", "is a folder; give the file to write")),
    Case("binary -o - on a terminal", lambda d: ["asm", asm_file(d), "-o", "-"],
         ("refusing to write binary data to a terminal",), extra={"tty": True}),
    # A user's error, not tcc's: exit 2 naming the file, tensor or option.
    Case("external data missing", lambda d: ["compile", external_data_model(d, "nope.bin"), "-o", d / "o.tir"],
         ("ext.onnx", "initializer 'w'", "'nope.bin'", "does not exist"), outputs=("o.tir",)),
    Case("external data absolute", lambda d: ["compile", external_data_model(d, "/etc/passwd"), "-o", d / "o.tir"],
         ("initializer 'w'", "'/etc/passwd', an absolute path"), outputs=("o.tir",)),
    Case("external data outside", lambda d: ["compile", external_data_model(d, "../outside.bin"), "-o", d / "o.tir"],
         ("initializer 'w'", "outside the model's folder"), outputs=("o.tir",)),
    Case("external data symlink", lambda d: ["compile", external_data_model(d, "link.bin"), "-o", d / "o.tir"],
         ("initializer 'w'", "'link.bin', a symbolic link"), outputs=("o.tir",)),
    Case("no graph outputs", lambda d: ["compile", _save([helper.make_node("Relu", ["x"], ["y"])], [X], [], [],
                                                         d / "none.onnx"), "-o", d / "o.tir"],
         ("none.onnx", "declares no outputs"), outputs=("o.tir",)),
    Case("undefined tensor", lambda d: ["compile", _save([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
                                                         [X], [Y], [], d / "g.onnx"), "-o", d / "o.tir"],
         ("g.onnx", "node 'adder' (Add) reads tensor 'ghost'", "not a graph input"), outputs=("o.tir",)),
    Case("cycle", lambda d: ["compile", _save([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                                               helper.make_node("Relu", ["a"], ["b"], name="n2"),
                                               helper.make_node("Relu", ["a"], ["y"], name="n3")],
                                              [X], [Y], [], d / "c.onnx"), "-o", d / "o.tir"],
         ("node 'n1' (Add) reads tensor 'b' before node 'n2' (Relu) makes it", "cycle"), outputs=("o.tir",)),
    Case("run --seed -1", lambda d: ["run", relu_ir(d), "--seed", "-1", "-o", d / "o.npz"],
         ("'--seed'", "-1"), outputs=("o.npz",)),
    Case("report --top -1", lambda d: ["report", artifact(d), "--top", "-1"], ("'--top'", "-1")),
    Case("report --top 0", lambda d: ["report", artifact(d), "--top", "0"], ("'--top'", "0")),
    Case("malformed layer entry", lambda d: ["report", artifact_with_layer(d, {"name": "conv"}), "--json",
                                             d / "r.json"],
         ("edited.tcc", "malformed artifact metadata", "layers[0].macs is missing"), outputs=("r.json",)),
    Case("layer entry of the wrong type", lambda d: ["run", artifact_with_layer(d, {"name": "c", "macs": "many",
                                                                                    "min_bytes": 1}),
                                                     "-o", d / "o.npz"],
         ("layers[0].macs is str 'many', not an integer",), outputs=("o.npz",)),
    Case("--dump-ir-after unknown pass", lambda d: ["compile", relu_model(d), "-o", d / "o.tir",
                                                    "--dump-ir-after", "nosuchpass"],
         ("--dump-ir-after nosuchpass", "no pass of that name", "fold-constants"), outputs=("o.tir",)),
    Case("pipeline injection through --weights", lambda d: ["compile", DIGITS, "--calib", CALIB, "--weights",
                                                            "int8},dce,quantize{calib=x", "-o", d / "q.tir"],
         ("unknown weight format 'int8},dce,quantize{calib=x'",), outputs=("q.tir",)),
    # Calibration and input .npz files: malformed, a zip bomb, non-finite values (ir/npz.py, calibration).
    *[Case(f"--calib {name}", _npz_case(name, "--calib"), (name, message), outputs=("q.tir",))
      for name, message in BAD_FILES.items()],
    *[Case(f"--inputs {name}", _npz_case(name, "--inputs"), (name, message.replace("calibration", "input")),
           outputs=("o.npz",)) for name, message in BAD_FILES.items() if name != "objects.npz"],
    Case("--calib declaring 4 GiB", lambda d: ["compile", DIGITS, "--calib", header_bomb(d / "bomb.npz",
                                                                                         (2**22, 1, 16, 16)),
                                               "-o", d / "q.tir"],
         ("bomb.npz", "key 'input'", "more than 1073741824 bytes"), outputs=("q.tir",)),
    Case("--inputs declaring 4 GiB", lambda d: ["run", relu_ir(d), "--inputs", header_bomb(d / "bomb.npz",
                                                                                           (2**30, 4), key="x"),
                                                "-o", d / "o.npz"],
         ("bomb.npz", "key 'x' has shape [1073741824, 4]"), outputs=("o.npz",)),
    Case("eval --data declaring 4 GiB", lambda d: ["eval", DIGITS, "--paths", "float", "--workers", "1", "--data",
                                                   header_bomb(d / "bomb.npz", (2**22, 1, 16, 16))],
         ("bomb.npz: key 'input'", "declares [4194304, 1, 16, 16] float32")),
    Case("calibration +Inf", lambda d: _calib_with(d, _set((2, 0, 7, 9), np.inf)),
         ("c.npz", "input 'input' sample 2 holds +Inf"), outputs=("q.tcc",)),
    Case("calibration NaN", lambda d: _calib_with(d, _set((3, 0, 0, 0), np.nan)),
         ("c.npz", "sample 3 holds NaN (1 of 4 samples are not finite)"), outputs=("q.tcc",)),
    Case("calibration all NaN", lambda d: _calib_with(d, lambda s: s.fill(np.nan)),
         ("c.npz", "sample 0 holds NaN (4 of 4 samples are not finite)"), outputs=("q.tcc",)),
    Case("calibration near float32's limit", lambda d: _calib_with(d, _set((1, 0), np.float32(3.0e38))),
         ("calibration sample 1: tensor", "overflows float32"), outputs=("q.tcc",)),
    # Ranges of ISA registers and target fields.
    Case("register out of range", lambda d: ["asm", asm_file(d, "setr rq.zp, -129999999\n"), "-o", d / "p.bin"],
         ("p.s:1:1", "register rq.zp takes values in -128..127, got -129999999"), outputs=("p.bin",)),
    Case("target field out of range", lambda d: ["compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o",
                                                 d / "m.tcc", "--target-config", target_file(d, "array_rows", 10**8)],
         ("t.toml", "array_rows = 100000000 is out of range"), outputs=("m.tcc",)),
    Case("target buffer over the address field", lambda d: ["compile", DIGITS, "-t", "overlay", "--calib", CALIB,
                                                            "-o", d / "m.tcc", "--target-config",
                                                            target_file(d, "wbuf_bytes", 2**25)],
         ("t.toml", "wbuf_bytes = 33554432 is out of range: it takes 1..16777216"), outputs=("m.tcc",)),
    Case("sparse target field out of range", lambda d: ["compile", DIGITS, "-t", "sparse", "--calib", CALIB, "-o",
                                                        d / "m.tcc", "--target-config",
                                                        sparse_target_file(d, "max_parallelism", 10**6)],
         ("s.toml", "max_parallelism = 1000000 is out of range"), outputs=("m.tcc",)),
    Case("sparse target file not UTF-8", lambda d: ["compile", DIGITS, "-t", "sparse", "--calib", CALIB, "-o",
                                                    d / "m.tcc", "--target-config", _write(d / "s.toml", b"clock_mhz = \xff\n")],
         ("cannot read sparse target description", "s.toml", "utf-8"), outputs=("m.tcc",)),
    Case("target file not UTF-8", lambda d: ["compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o",
                                             d / "m.tcc", "--target-config", _write(d / "t.toml", b"\xfe\xff")],
         ("cannot read target file", "t.toml"), outputs=("m.tcc",)),
    # Resources: constant folding has a budget for the whole module.
    Case("folding over the budget", lambda d: ["compile", range_model(d), "-o", d / "o.tir"],
         ("range.onnx", "node 'rng' (Range", "over the module's budget"), outputs=("o.tir",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, tmp_path, tcc_cli, monkeypatch):
    d = tmp_path / "work"
    d.mkdir()
    if case.extra.get("tty"):
        import tcc.cli_files

        monkeypatch.setattr(tcc.cli_files, "stdout_is_terminal", lambda: True)
    if case.extra.get("cwd"):
        monkeypatch.chdir(d)
    argv = case.argv(d)
    for name in case.outputs:
        (d / name).write_bytes(OLD)
    before = {name: (d / name).read_bytes() for name in case.unchanged}
    listing = sorted(os.listdir(d))
    code, _, err = tcc_cli(*argv)
    assert code == case.code, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal compiler error" not in err
    for fragment in case.message:
        assert str(fragment) in err, (fragment, err)
    for name in case.outputs:
        assert (d / name).read_bytes() == OLD
    for name, data in before.items():
        assert (d / name).read_bytes() == data
    assert sorted(os.listdir(d)) == listing  # nothing created, no temporary left behind


# -- outputs that are not regular files are written through -------------------------------------------
def test_dev_null_fifo_and_symlink_outputs_are_written_through(tmp_path, tcc_cli):
    model = relu_model(tmp_path)
    null_is_a_device = stat.S_ISCHR(os.stat("/dev/null").st_mode)  # another program may have broken it
    code, _, err = tcc_cli("compile", model, "-o", "/dev/null")
    assert code == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) == null_is_a_device
    os.symlink("target.tir", tmp_path / "link.tir")
    code, _, err = tcc_cli("compile", model, "-o", tmp_path / "link.tir")
    assert code == 0, err
    assert (tmp_path / "link.tir").is_symlink() and (tmp_path / "target.tir").read_text().startswith("module @m")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, err = tcc_cli("compile", model, "-o", fifo)
    reader.join(timeout=30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and received[0] == (tmp_path / "target.tir").read_bytes()


def test_dash_writes_binary_outputs_to_stdout(tmp_path, capsysbinary):
    from tcc.cli import main

    assert main(["asm", str(asm_file(tmp_path)), "-o", str(tmp_path / "p.bin")]) == 0
    capsysbinary.readouterr()
    assert main(["asm", str(asm_file(tmp_path)), "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == (tmp_path / "p.bin").read_bytes()


def test_asm_writes_atomically_so_a_full_disk_keeps_the_old_binary(tmp_path, tcc_cli, monkeypatch):
    import errno

    import tcc.ir.fileio

    (tmp_path / "p.bin").write_bytes(OLD)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device", str(args[0]), None, str(args[1]))

    monkeypatch.setattr(tcc.ir.fileio.os, "replace", full)
    code, _, err = tcc_cli("asm", asm_file(tmp_path), "-o", tmp_path / "p.bin")
    assert code == 2 and "No space left on device" in err and "p.bin" in err
    assert (tmp_path / "p.bin").read_bytes() == OLD
    assert sorted(os.listdir(tmp_path)) == ["p.bin", "p.s"]


def test_compile_reads_a_model_from_a_pipe(tmp_path, tcc_cli):
    model = relu_model(tmp_path)
    fifo = tmp_path / "model.pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(model.read_bytes()), daemon=True)
    writer.start()
    code, _, err = tcc_cli("compile", fifo, "-o", tmp_path / "o.tir")
    writer.join(timeout=30)
    assert code == 0, err
    assert "relu(%x)" in (tmp_path / "o.tir").read_text()


def test_compile_reads_dev_stdin(tmp_path):
    """`tcc compile /dev/stdin < m.onnx` (was "no such file")."""
    import subprocess

    model = relu_model(tmp_path)
    with open(model, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "tcc", "compile", "/dev/stdin", "-o", str(tmp_path / "o.tir")],
                              stdin=stdin, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "relu(%x)" in (tmp_path / "o.tir").read_text()


def test_folding_under_the_budget_still_folds(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", range_model(tmp_path, limit=1000), "-o", tmp_path / "o.tir")
    assert code == 0, err


# -- inputs that once crashed tcc (tests/fuzz/corpus) ---------------------------------------------------
COMMANDS = {  # target -> (file suffix, CLI arguments reading it)
    "ir_parser": (".tir", lambda f, tmp: ["opt", f]),
    "assembler": (".s", lambda f, tmp: ["asm", f, "-o", tmp / "out.bin"]),
    "decoder": (".bin", lambda f, tmp: ["disasm", f]),
    "artifact_loader": (".tcc", lambda f, tmp: ["run", f, "-o", tmp / "out.npz"]),
    "artifact_body": (".tcc", lambda f, tmp: ["disasm", f]),
    "onnx_loader": (".onnx", lambda f, tmp: ["compile", f, "-o", tmp / "out.tir"]),
    "hetero_loader": (".tcc", lambda f, tmp: ["run", f, "-o", tmp / "out.npz"]),
    "sparse_body": (".tcc", lambda f, tmp: ["report", f]),
    "calib_loader": (".npz", lambda f, tmp: ["compile", DIGITS, "--calib", f, "-o", tmp / "out.tir"]),
    "target_loader": (".toml", lambda f, tmp: ["compile", DIGITS, "-t", "sparse", "--calib", CALIB,
                                               "--target-config", f, "-o", tmp / "out.tcc"]),
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
    if target == "sparse_body":
        data = targets.repack_sparse(targets._events_artifact(), data)
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


def test_the_folding_budget_covers_the_whole_module(tmp_path, tcc_cli, monkeypatch):
    import tcc.passes.fold_constants as fold_constants

    monkeypatch.setattr(fold_constants, "FOLD_BUDGET_FLOOR", 1000)  # two 800-byte Ranges: the second is over
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("s", 0), ("l", 100), ("d", 1))]
    nodes = [helper.make_node("Range", ["s", "l", "d"], ["a"], name="first"),
             helper.make_node("Range", ["s", "l", "d"], ["b"], name="second"),
             helper.make_node("Add", ["a", "b"], ["y"], name="sum")]
    model = _save(nodes, [], [helper.make_tensor_value_info("y", TensorProto.INT64, None)], inits, tmp_path / "two.onnx")
    code, _, err = tcc_cli("compile", model, "-o", tmp_path / "o.tir")
    assert code == 2
    assert "node 'second' (Range" in err and "to 1600 bytes, over the module's budget of 1192 bytes" in err
