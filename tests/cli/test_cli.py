"""The command line: contract of compile/opt/run and clear errors with exit code 2."""
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

import light_zoo


def tiny_model(path, op="Relu"):
    node = helper.make_node(op, ["x"], ["y"], name="the_node")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_compile_opt_run(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx")
    code, out, err = tcc_cli("compile", model, "-t", "ir")
    assert code == 0, err
    assert 'output "y" = %y' in out
    (tmp_path / "m.tir").write_text(out)
    code, again, _ = tcc_cli("opt", tmp_path / "m.tir")
    assert code == 0 and again == out
    x = np.array([[-1.0, 0.5, -0.25, 2.0]], np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    code, _, err = tcc_cli("run", tmp_path / "m.tir", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as got:
        np.testing.assert_array_equal(got["y"], np.maximum(x, 0))


def test_dump_ir_after_and_timings(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = tcc_cli("compile", model, "-o", tmp_path / "m.tir", "--dump-ir-after", "all",
                           "--dump-dir", tmp_path / "dumps", "--timings")
    assert code == 0
    assert "fold-batchnorm" in err and "total" in err
    names = sorted(p.name for p in (tmp_path / "dumps").iterdir())
    assert names == ["00-import.tir", "01-fold-constants.tir", "02-recognize.tir", "03-fold-batchnorm.tir",
                     "04-fold-affine.tir", "05-dce.tir"]


def test_truncated_onnx_is_a_clear_error(tmp_path, tcc_cli):
    data = light_zoo.light_path("squeezenet").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    code, out, err = tcc_cli("compile", tmp_path / "cut.onnx", "-o", tmp_path / "x.tir")
    assert code == 2
    assert err.startswith("error: ") and "cut.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "x.tir").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage" * 50)
    result = subprocess.run([sys.executable, "-m", "tcc", "compile", str(tmp_path / "junk.onnx")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_unsupported_op_names_node_and_opset(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx", op="RandomUniformLike")  # a random generator: out of scope
    code, _, err = tcc_cli("compile", model)
    assert code == 2
    assert "RandomUniformLike" in err and "the_node" in err and "13" in err


def test_bad_input_shape_flag(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = tcc_cli("compile", model, "--input-shape", "x=1,a")
    assert code == 2 and "--input-shape 'x=1,a'" in err


def test_malformed_ir_reports_line_and_column(tmp_path, tcc_cli):
    (tmp_path / "bad.tir").write_text('module @m {\n  input %x : f32[1]\n  %y = relu(%x : f32[1]\n}\n')
    code, _, err = tcc_cli("opt", tmp_path / "bad.tir")
    assert code == 2 and "bad.tir:3:" in err


def test_unknown_pass(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx")
    code, _, err = tcc_cli("compile", model, "--passes", "dce,nope")
    assert code == 2 and "unknown pass 'nope'" in err


def test_run_with_wrong_input_name(tmp_path, tcc_cli):
    model = tiny_model(tmp_path / "m.onnx")
    tcc_cli("compile", model, "-o", tmp_path / "m.tir")
    np.savez(tmp_path / "in.npz", z=np.zeros((1, 4), np.float32))
    code, _, err = tcc_cli("run", tmp_path / "m.tir", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert code == 2 and "x" in err


def test_the_cli_loads_without_the_compiler():
    """`tcc --help` answers at once: importing the CLI loads click, not the IR, passes or ml_dtypes."""
    import subprocess
    import sys

    code = "import sys, tcc.cli; print(sorted(m for m in sys.modules if m.startswith(('tcc.ir', 'tcc.passes', 'ml_dtypes'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    from tcc.cli_files import STDOUT
    from tcc.ir.fileio import STDOUT as fileio_stdout

    assert STDOUT == fileio_stdout


def test_the_command_turns_numpy_huge_page_advice_off_unless_told():
    """`tcc` sets NUMPY_MADVISE_HUGEPAGE=0 before numpy loads (compaction stalls on fresh memory,
    cli.configure_process), and a value the user set is kept."""
    import os
    import subprocess
    import sys

    code = ("import sys, tcc.cli; assert 'numpy' not in sys.modules; tcc.cli.configure_process(); import numpy; "
            "print(numpy._core.multiarray._set_madvise_hugepage(True))")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    told = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "NUMPY_MADVISE_HUGEPAGE": "1"})
    assert (default.stdout.strip(), told.stdout.strip()) == ("False", "True")
