"""Bad input never crashes: each input format tcc reads ends in a TccError (exit code 2), never an
uncaught exception, a hang or a huge allocation.

Property tests mutate valid inputs (hypothesis; 400 mutated cases per run, fixed seeds); the
campaign script (``python tests/fuzz/campaign.py --seconds N``) runs longer and prints its counts.
``test_corpus_replays`` runs every input that once
crashed a target (tests/fuzz/corpus/<target>/, filled by ``python tests/fuzz/campaign.py``).
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mutations  # noqa: E402
import targets  # noqa: E402
from tcc.backends.artifact import Artifact, ArtifactError  # noqa: E402
from tcc.frontend import FrontendError, import_onnx  # noqa: E402
from tcc.ir import parse_module  # noqa: E402
from tcc.ir.errors import IRParseError, TccError  # noqa: E402

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _run(target: str, data: bytes) -> None:
    targets.run(target, data)  # raises only on a crash: TccErrors are the clean rejections


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_seeds_are_accepted(target):
    """The seeds are valid inputs: a target that rejected them would make mutations meaningless."""
    for data in targets.seeds(target):
        assert targets.run(target, data)


@pytest.mark.parametrize("target", ["ir_parser", "assembler", "decoder", "artifact_loader", "artifact_body",
                                    "hetero_loader", "hetero_body", "calib_loader", "target_loader"])
@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_byte_mutations_end_in_tcc_errors(target, seed):
    rng = random.Random(seed)
    pool = targets.seeds(target)
    _run(target, mutations.mutate_bytes(rng.choice(pool), rng, pool))


@pytest.mark.parametrize("target", ["artifact_body", "sparse_body"])
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_metadata_mutations_end_in_tcc_errors(target, seed):
    """Edited fields behind a valid checksum (deleted, of another kind, extreme, a list item dropped or
    duplicated): the loaders validate every field the runtime reads."""
    rng = random.Random(seed)
    _run(target, mutations.mutate_json(rng.choice(targets.seeds(target)), rng))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_onnx_mutations_end_in_tcc_errors(seed):
    rng = random.Random(seed)
    data = rng.choice(targets.seeds("onnx_loader"))
    data = mutations.mutate_onnx(data, rng) if rng.random() < 0.7 else mutations.mutate_bytes(data, rng)
    _run("onnx_loader", data)


@FUZZ
@given(words=st.lists(st.integers(0, 2**64 - 1), max_size=32))
def test_any_words_decode_or_raise_illegal_instruction(words):
    _run("decoder", np.array(words, dtype=np.uint64).astype("<u8").tobytes())


def _corpus():
    return [pytest.param(t, p, id=f"{t}/{p.name}") for t in sorted(targets.TARGETS) for p in targets.corpus_files(t)]


@pytest.mark.parametrize("target, path", _corpus())
def test_corpus_replays(target, path):
    _run(target, path.read_bytes())


# -- the crashes found, each as a readable regression -------------------------------------------
def test_ir_dense_value_out_of_range_is_a_parse_error():
    text = 'module @m {\n  %c = const() {value = dense<i32[1], [101099511627776]>} : i32[1]\n  output "c" = %c\n}\n'
    with pytest.raises(IRParseError, match="out of range"):
        parse_module(text, "t.tir")


def test_ir_infinite_int_attribute_is_a_parse_error():
    text = ('module @m {\n  input %x : f32[1,1,4,4]\n  %y = max_pool(%x) {ceil_mode = 0, dilations = [1, 1], '
            'kernel = [inf, 2], pads = [0, 0, 0, 0], strides = [2, 2]} : f32[1,1,2,2]\n  output "y" = %y\n}\n')
    with pytest.raises(IRParseError, match="kernel"):
        parse_module(text, "t.tir")


def test_ir_huge_splat_allocates_nothing():
    text = 'module @m {\n  %c = const() {value = splat<f32[1099511627776,1024], 0.5>} : f32[1099511627776,1024]\n' \
           '  output "c" = %c\n}\n'
    value = parse_module(text).ops[0].attrs["value"]
    assert value.shape == (2**40, 1024) and value.strides == (0, 0) and float(value[7, 9]) == 0.5


def test_artifact_with_valid_checksum_but_bad_metadata():
    good = targets.seeds("artifact_loader")[0]
    for meta, expected in [(b"[1, 2]", "metadata is list .*, not an object"), (b'{"target": {}}', "inputs is missing"), (b"{\xff}", "malformed"),
                           (b"{", "malformed")]:
        with pytest.raises(ArtifactError, match=expected):
            Artifact.from_bytes(targets.repack(good, meta))


def _graph(nodes, inits=(), shape=(1,)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], list(inits)),
                             opset_imports=[helper.make_opsetid("", 13)])


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


@pytest.mark.parametrize("nodes, inits, message", [
    ([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
     [_i64("s", [2**20, 2**20])], "1099511627776 elements"),
    ([helper.make_node("Expand", ["c", "s"], ["e"]), helper.make_node("Add", ["x", "e"], ["y"])],
     [numpy_helper.from_array(np.ones(1, np.float32), "c"), _i64("s", [2**17, 2**17])], "17179869184 elements"),
    ([helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Cast", ["r"], ["f"], to=1),
      helper.make_node("Add", ["x", "f"], ["y"])],
     [_i64("a", 0), _i64("b", 2**36), _i64("d", 1)], "68719476736 elements"),
], ids=["constant_of_shape", "expand", "range"])
def test_absurd_constant_sizes_are_refused_before_allocating(nodes, inits, message):
    with pytest.raises(FrontendError, match=message):
        import_onnx(_graph(nodes, inits))


def test_graph_cycle_missing_initializer_and_wrong_attribute_type():
    cycle = _graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                    helper.make_node("Relu", ["x"], ["y"])])
    missing = _graph([helper.make_node("Add", ["x", "w"], ["y"])])
    wrong = _graph([helper.make_node("Transpose", ["x"], ["y"], perm=1.5)], shape=(1, 2))
    for model, expected in [(cycle, "reads tensor 'b' before node 'b' .* makes it: the nodes are out of order or form a "
                                  "cycle"), (missing, "'w'"), (wrong, "perm")]:
        with pytest.raises(FrontendError, match=expected):
            import_onnx(model)


def test_huge_initializer_dims_are_an_error_not_an_allocation():
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    del w.dims[:]
    w.dims.extend([2**20, 2**20])
    with pytest.raises(FrontendError, match="initializer 'w'"):
        import_onnx(_graph([helper.make_node("Add", ["x", "w"], ["y"])], [w]))


def test_every_target_error_is_a_tcc_error_with_exit_code_2():
    for error in (IRParseError, ArtifactError, FrontendError):
        assert issubclass(error, TccError) and error.exit_code == 2


def test_atheris_script_runs_when_atheris_is_installed(tmp_path):
    pytest.importorskip("atheris")
    import subprocess

    script = Path(__file__).resolve().parent / "atheris_fuzz.py"
    result = subprocess.run([sys.executable, str(script), "decoder", "-runs=200"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 200 runs" in result.stderr


def test_initializer_whose_data_does_not_fill_its_dims_is_refused_quickly():
    """Found by the campaign: a dim of 2**40 on a one-element initializer made ONNX shape inference
    take over 10 s (a hang) before any error."""
    extra = numpy_helper.from_array(np.array([1], np.int64), "extra")
    extra.dims[0] = 2**40
    model = _graph([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Concat", ["s", "extra"], ["c"], axis=0),
                    helper.make_node("Relu", ["x"], ["y"])], [extra])
    with pytest.raises(FrontendError, match=r"initializer 'extra' declares dims \[1099511627776\]"):
        import_onnx(model)


def test_ir_quant_params_and_blob_sizes_out_of_range_are_parse_errors():
    infinite_zp = 'module @m {\n  input %x : i8[2]{scale = 1.0, zero_point = inf}\n  output "x" = %x\n}\n'
    with pytest.raises(IRParseError, match="bad quantization parameters"):
        parse_module(infinite_zp)
    # 2**62 * 4 elements wraps to 0 in int64: the size check must use exact integers.
    wrapping = ('module @m {\n  %c = const() {value = blob<#0>} : f32[4611686018427387904,4]\n  output "c" = %c\n}\n'
                'blobs {\n  #0 = f32[4611686018427387904,4] ""\n}\n')
    with pytest.raises(IRParseError, match="holds 0 bytes"):
        parse_module(wrapping)


def test_campaign_findings_in_the_onnx_loader(tmp_path):
    """Each found by tests/fuzz/campaign.py as an uncaught exception; now one FrontendError each."""
    softmax = _graph([helper.make_node("Softmax", ["x"], ["y"], axis=-2**62)], shape=(1, 2, 3))
    with pytest.raises(FrontendError, match=r"node 'y' \(Softmax, opset 13\): axis -4611686018427387904 is out of range"):
        import_onnx(softmax)
    bad_type = _graph([helper.make_node("Add", ["x", "w"], ["y"])], [numpy_helper.from_array(np.ones(1, np.float32), "w")])
    bad_type.graph.initializer[0].data_type = 123
    with pytest.raises(FrontendError):
        import_onnx(bad_type)
    # A name whose bytes are not UTF-8: protobuf only complains when the field is read.
    model = _graph([helper.make_node("Relu", ["x"], ["y"])])
    model.graph.name = "graph_name"
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString().replace(b"graph_name", b"graph\xdf\xffame"))
    with pytest.raises(FrontendError, match="not valid UTF-8"):
        import_onnx(tmp_path / "m.onnx")


def test_float_literal_out_of_its_type_range_is_a_parse_error():
    text = 'module @m {\n  %c = const() {value = dense<f16[2], [1e300, 1.0]>} : f16[2]\n  output "c" = %c\n}\n'
    with pytest.raises(IRParseError, match="out of range"):
        parse_module(text)


def test_huge_range_exhausts_neither_shape_inference_nor_folding(monkeypatch):
    """atheris found Range(0, 2**26): ONNX's data propagation held it as shape dims (7 GB, 25 s).
    A Range over 2**16 elements, or of a size not known from constants, is inferred without it."""
    import time

    from tcc.frontend import loader

    calls = []
    infer = loader.onnx.shape_inference.infer_shapes
    monkeypatch.setattr(loader.onnx.shape_inference, "infer_shapes",
                        lambda *a, **k: calls.append(k["data_prop"]) or infer(*a, **k))

    def model(limit_input, shape, extra_nodes=(), inits=()):
        nodes = [*extra_nodes, helper.make_node("Range", ["zero", limit_input, "one"], ["r"]),
                 helper.make_node("Cast", ["r"], ["f"], to=TensorProto.FLOAT), helper.make_node("Add", ["x", "f"], ["y"])]
        return _graph(nodes, [_i64("zero", 0), _i64("one", 1), *inits], shape=shape)

    start = time.perf_counter()
    small = import_onnx(model("limit", (1,), inits=[_i64("limit", 1000)]))
    large = import_onnx(model("limit", (1,), inits=[_i64("limit", 2**22)]))
    assert small.outputs[0][1].type.shape == (1000,) and large.outputs[0][1].type.shape == (2**22,)
    # The size from the input's declared dim (2**40), through Shape and Gather: folding refuses it.
    shape_of = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"])]
    with pytest.raises(FrontendError, match="1099511627776 elements"):
        import_onnx(model("n", (2**40,), shape_of))
    assert calls == [True, False, False]
    assert time.perf_counter() - start < 20


def test_blob_shape_with_an_empty_dim_is_a_parse_error():
    """Found by atheris: ``#0 = f32[4,] "..."`` reached int('')."""
    text = 'module @m {\n  %c = const() {value = blob<#0>} : f32[4]\n  output "c" = %c\n}\nblobs {\n' \
           '  #0 = f32[4,] "AAAAAAAAAAAAAAAAAAAAAA=="\n}\n'
    with pytest.raises(IRParseError, match=r"blob #0 has a malformed shape \[4,\]"):
        parse_module(text, "t.tir")
