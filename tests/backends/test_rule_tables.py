"""The simulator's lookup tables (isa/simulator/rule_tables.py) and kept conv windows give the bits, cycles and counters of
evaluating each instruction's rule on the data: every model here runs twice on one input, once with
the tables and once with every table refused (each instruction then evaluates its rule directly),
covering eadd, emul, lut, max and average pooling and the int8 <-> bf16 conversions."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import block_models
from tcc.backends.overlay import compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.isa.simulator import rule_tables
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session


def softmax_model() -> onnx.ModelProto:
    """MatMul, Softmax, LayerNorm, MatMul: bf16 on the vector unit, with cvt into it and out of it."""
    rng = np.random.default_rng(3)
    consts = [helper.make_tensor(name, TensorProto.FLOAT, shape, rng.standard_normal(shape).ravel().tolist())
              for name, shape in (("w", [16, 16]), ("v", [16, 16]), ("g", [16]), ("b", [16]))]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("LayerNormalization", ["p", "g", "b"], ["n"], axis=-1),
             helper.make_node("MatMul", ["n", "v"], ["y"])]
    vi = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 12, 16])  # noqa: E731
    graph = helper.make_graph(nodes, "softmax", [vi("x")], [vi("y")], consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def digits() -> onnx.ModelProto:
    return onnx.load("examples/digits/digits_cnn.onnx")


def session_and_input(model: onnx.ModelProto, tmp_path):
    np.savez(tmp_path / "calib.npz", **block_models.calibration(model))
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "calib.npz")))
    name = model.graph.input[0].name
    return compile_overlay(module), {name: block_models.calibration(model, 1, seed=5)[name][0]}


@pytest.mark.parametrize("build", [digits, block_models.silu_se_cnn, block_models.gated_cnn, softmax_model])
def test_tables_give_the_bits_and_counters_of_the_rules(build, tmp_path, monkeypatch):
    artifact, feeds = session_and_input(build(), tmp_path)
    tabled = Session(artifact)
    want = tabled.run(None, feeds)
    assert any(t is not None for t in tabled._machine.tables.values())  # the model did use tables
    monkeypatch.setattr(rule_tables, "table", lambda m, key, build: None)
    direct = Session(artifact)
    got = direct.run(None, feeds)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    assert tabled.performance_report() == direct.performance_report()


@pytest.mark.parametrize("in_c", [False, True])
def test_kept_conv_windows_follow_the_slab_bytes(tmp_path, monkeypatch, in_c):
    """A machine reuses the windows of a conv input slab while abuf holds the same bytes
    (impl_matrix.py): a second input on the same session gives what a fresh session gives.  With
    the C kernels (``in_c``, where built) the small convs read the slab directly (native.c mm:
    no windows kept) and the same must hold."""
    from tcc.isa.simulator import native

    monkeypatch.setattr(native, "enabled", native.enabled and in_c)
    artifact, first = session_and_input(digits(), tmp_path)
    second = {name: -x for name, x in first.items()}
    session = Session(artifact)
    session.run(None, first)
    assert bool(session._machine.windows) == (native.kernels() is None)  # the numpy path kept windows
    np.testing.assert_array_equal(session.run(None, second)[0], Session(artifact).run(None, second)[0])
