"""Limits checked before calibration starts, and nothing lost: atomic writes, byte-identical
artifacts and IR dumps across compiles, other artifact format versions refused."""
import os
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tcc.model_io import RANDOM_INPUT_LIMIT_BYTES, UsageError, random_inputs
from tcc.ir import parse_module
from tcc.passes.fold_constants import FOLD_LIMIT_BYTES
from tcc.runtime import Session

DIGITS = "examples/digits/digits_cnn.onnx"
DYNAMIC = "examples/digits/digits_cnn_dynamic.onnx"
CALIB = "examples/digits/digits_calib.npz"
TATAA = "isa/targets/tataa.toml"


def small_target(tmp_path, **sizes):
    lines = []
    for line in open(TATAA).read().splitlines():
        key = line.split("=")[0].strip()
        lines.append(f"{key} = {sizes[key]}" if key in sizes else line)
    path = tmp_path / "small.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_weights_over_the_target_dram_are_refused_before_calibration(tmp_path, tcc_cli):
    # digits has 6842 constant elements (weights and biases): at least 6842 bytes as int8.
    target = small_target(tmp_path, dram_bytes=4096)
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--target-config", target)
    assert code == 2
    assert "its 6842 constant elements take at least 6842 bytes at 8 bits each" in err
    assert "dram_bytes = 4096" in err and "Traceback" not in err
    assert not (tmp_path / "m.tcc").exists()
    # At 4 bits the same weights take 3421 bytes: the lower bound no longer rules the model out.
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--target-config", target, "--weights", "int4")
    assert "constant elements" not in err


def test_batch_over_one_is_refused_before_calibration(tmp_path, tcc_cli):
    calib = np.load(CALIB)["input"][:8].reshape(2, 4, 1, 16, 16)
    np.savez(tmp_path / "c4.npz", input=calib)
    code, _, err = tcc_cli("compile", DYNAMIC, "-t", "overlay", "--calib", tmp_path / "c4.npz",
                           "--input-shape", "input=4,1,16,16", "-o", tmp_path / "m.tcc")
    assert code == 2
    assert "has batch 4" in err and "the overlay runs batch 1" in err and "--input-shape" in err


def test_conv_rank_the_overlay_cannot_run(tmp_path, tcc_cli):
    """A 1-D conv compiles (as-2d makes it a 2-D one); a 4-D one (rank 6) is refused in one line."""
    for name, spatial in (("conv1d", (8,)), ("conv4d", (4, 4, 4, 4))):
        w = numpy_helper.from_array(np.ones((2, 1, *(3,) * len(spatial)), np.float32), "w")
        out = [1, 2, *(d - 2 for d in spatial)]
        graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name=name)], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, *spatial])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / f"{name}.onnx")
        np.savez(tmp_path / "c.npz", x=np.ones((2, 1, 1, *spatial), np.float32))
        code, _, err = tcc_cli("compile", tmp_path / f"{name}.onnx", "-t", "overlay", "--calib", tmp_path / "c.npz",
                               "-o", tmp_path / f"{name}.tcc")
        if name == "conv1d":
            assert code == 0, err
        else:
            assert code == 2 and err.count("error:") == 1
            assert "rank-6 tensor" in err and "'conv4d'" in err and "runs 2-D convolutions" in err
            assert "only 1-D convolutions, 1-D transposed convolutions and 3-D convolutions are rewritten" in err


def test_dynamic_input_left_unbound_is_one_clear_message(tmp_path, tcc_cli):
    for target in ("ir", "overlay"):
        code, _, err = tcc_cli("compile", DYNAMIC, "-t", target, "--calib", CALIB, "-o", tmp_path / "m.out")
        assert code == 2
        assert err.count("error:") == 1
        assert "input 'input' has a dynamic dim 0 ('batch')" in err and "--input-shape input=1,1,16,16" in err


def test_compiling_twice_gives_byte_identical_artifacts_and_dumps(tmp_path, tcc_cli):
    for run in ("a", "b"):
        code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / f"{run}.tcc",
                               "--dump-ir-after", "all", "--dump-dir", tmp_path / f"dumps_{run}")
        assert code == 0, err
    assert (tmp_path / "a.tcc").read_bytes() == (tmp_path / "b.tcc").read_bytes()
    names = sorted(p.name for p in (tmp_path / "dumps_a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "dumps_b").iterdir()) and len(names) >= 7
    for name in names:
        assert (tmp_path / "dumps_a" / name).read_bytes() == (tmp_path / "dumps_b" / name).read_bytes(), name


def test_a_failing_compile_leaves_the_previous_output_and_no_temporary_files(tmp_path, tcc_cli):
    out = tmp_path / "m.tcc"
    code, _, _ = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", out)
    assert code == 0
    before = out.read_bytes()
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", out,
                           "--target-config", small_target(tmp_path, dram_bytes=8192))
    assert code == 2 and "DRAM" in err
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.tcc", "small.toml"]


def test_other_artifact_format_versions_are_refused_by_the_cli(tmp_path, tcc_cli):
    out = tmp_path / "m.tcc"
    assert tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", out)[0] == 0
    from tcc.backends.artifact import FORMAT_VERSION

    data = bytearray(out.read_bytes())
    data[8:12] = (FORMAT_VERSION - 1).to_bytes(4, "little")  # the version before: a recompile is due
    (tmp_path / "old.tcc").write_bytes(bytes(data))
    for command in (["run", tmp_path / "old.tcc", "-o", tmp_path / "o.npz"], ["disasm", tmp_path / "old.tcc"],
                    ["report", tmp_path / "old.tcc"]):
        code, _, err = tcc_cli(*command)
        assert code == 2, command
        assert f"artifact format version {FORMAT_VERSION - 1}, this tcc reads version {FORMAT_VERSION}; recompile" in err


def test_an_output_path_that_cannot_be_written_is_a_clear_error(tmp_path, tcc_cli):
    (tmp_path / "out").mkdir()
    code, _, err = tcc_cli("compile", DIGITS, "-o", tmp_path / "out")
    assert code == 2
    assert err == f"error: --output {tmp_path / 'out'}: is a folder; give the file to write\n"  # before any work
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_on_a_terminal_passes_report_progress_and_the_artifact_is_the_same(tmp_path, tcc_cli, monkeypatch):
    import tcc.cli

    outputs = {}
    for tty in (False, True):
        monkeypatch.setattr(tcc.cli, "_stderr_is_tty", lambda tty=tty: tty)
        code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / f"{tty}.tcc",
                               "--dump-ir-after", "all", "--dump-dir", tmp_path / f"dumps{tty}")
        assert code == 0, err
        outputs[tty] = err
    assert re.search(r"pass \d+/\d+: quantize\n", outputs[True]) and "compiling" in outputs[True]
    assert "pass " not in outputs[False]
    assert (tmp_path / "True.tcc").read_bytes() == (tmp_path / "False.tcc").read_bytes()
    for dump in sorted(os.listdir(tmp_path / "dumpsFalse")):
        assert (tmp_path / "dumpsTrue" / dump).read_bytes() == (tmp_path / "dumpsFalse" / dump).read_bytes()


def test_conv_that_cannot_tile_into_the_buffers_is_refused_before_calibration(tmp_path, tcc_cli, monkeypatch):
    import tcc.passes.quantize as quantize

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibration ran although the model cannot fit")

    monkeypatch.setattr(quantize.Quantize, "apply", no_calibration)
    # 128 B of activation buffer: a (64-byte aligned) quarter holds not even one channel of a 3-row
    # slab of a 16-column map.  (At 1 KiB the slab now splits into channel chunks and compiles.)
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--target-config", small_target(tmp_path, abuf_bytes=128))
    assert code == 2
    assert "(ONNX node '/stem/stem.0/Conv'): not even one output row of one channel fits" in err
    assert "abuf_bytes = 128" in err


def test_conv_split_over_input_channels_on_a_small_buffer_equals_the_reference(tmp_path, tcc_cli):
    """1 KiB of activation buffer (256-byte quarters) cannot hold the 16-channel slabs of the
    digits CNN: its convs run on channel chunks (partial sums kept in acc) and stay bit-exact."""
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--target-config", small_target(tmp_path, abuf_bytes=1024))
    assert code == 0, err
    session = Session(tmp_path / "m.tcc")
    x = {"input": np.load(CALIB)["input"][:1]}
    np.testing.assert_array_equal(session.run(None, x)[0], session.run_reference(x)["logits"])


def test_overlay_pipeline_schedules_modes_after_quantization(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--timings")
    assert code == 0, err
    names = re.findall(r"^([a-z][a-z-]*)[{ ]", err, re.M)
    assert "quantize" in names and "schedule-modes" in names
    assert names.index("schedule-modes") > names.index("quantize")
    assert "backend: placement and layouts" in err and "backend: code emission" in err  # after the passes


HUGE = ('module @huge {\n'
        '  input %x : f32[100000,100000]\n'
        '  %c = const() {value = splat<f32[100000,100000], 0.5>} : f32[100000,100000]\n'
        '  %y = relu(%c) : f32[100000,100000]\n'
        '  output "y" = %y\n'
        '}\n')


def test_fold_constants_refuses_a_huge_result_before_evaluating(tmp_path, tcc_cli):
    (tmp_path / "huge.tir").write_text(HUGE)
    code, _, err = tcc_cli("opt", tmp_path / "huge.tir", "--passes", "fold-constants", "-o", tmp_path / "out.tir")
    assert code == 2 and "Traceback" not in err
    assert f"relu %y would create a constant of 40000000000 bytes (over {FOLD_LIMIT_BYTES} bytes)" in err
    assert not (tmp_path / "out.tir").exists()


def test_random_inputs_refuses_a_huge_input_before_allocating():
    with pytest.raises(UsageError, match="input 'x' .* would take 40000000000 bytes of random data"):
        random_inputs(parse_module(HUGE))
    assert RANDOM_INPUT_LIMIT_BYTES == 2**30


def test_on_a_terminal_run_and_report_draw_progress_and_write_the_same_files(tmp_path, tcc_cli, monkeypatch):
    import tcc.cli

    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc")
    assert code == 0, err
    outputs = {}
    for tty in (False, True):
        monkeypatch.setattr(tcc.cli, "_stderr_is_tty", lambda tty=tty: tty)
        code, _, err = tcc_cli("run", tmp_path / "m.tcc", "-o", tmp_path / f"{tty}.npz",
                               "--report", tmp_path / f"{tty}.json")
        assert code == 0, err
        code, out, err_report = tcc_cli("report", tmp_path / "m.tcc", "--json", tmp_path / f"report{tty}.json")
        assert code == 0, err_report
        outputs[tty] = err, out
    assert f"simulating {tmp_path / 'm.tcc'}" in outputs[True][0]
    assert "simulating" not in outputs[False][0]
    assert outputs[True][1] == outputs[False][1]
    for name in ("{}.npz", "{}.json", "report{}.json"):
        assert (tmp_path / name.format(True)).read_bytes() == (tmp_path / name.format(False)).read_bytes()
