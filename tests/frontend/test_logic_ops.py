"""Comparisons, logical ops and Where against onnxruntime, and the event example's masked graph."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tcc.frontend import import_onnx
from tcc.ir.interpreter import run_module

RNG = np.random.default_rng(0)


def ort_run(model, feeds):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feeds)


def single(op, inputs, out_type, opset=17):
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"], name="n")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info("y", out_type, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("op", ["Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"])
def test_comparisons(op):
    model = single(op, [("a", TensorProto.FLOAT, [2, 3, 4]), ("b", TensorProto.FLOAT, [3, 1])], TensorProto.BOOL)
    feeds = {"a": np.round(RNG.standard_normal((2, 3, 4))).astype(np.float32),
             "b": np.round(RNG.standard_normal((3, 1))).astype(np.float32)}
    np.testing.assert_array_equal(run_module(import_onnx(model), feeds)["y"], ort_run(model, feeds)[0])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical_binaries(op):
    model = single(op, [("a", TensorProto.BOOL, [4, 5]), ("b", TensorProto.BOOL, [5])], TensorProto.BOOL)
    feeds = {"a": RNG.random((4, 5)) > 0.5, "b": RNG.random(5) > 0.5}
    np.testing.assert_array_equal(run_module(import_onnx(model), feeds)["y"], ort_run(model, feeds)[0])


def test_not_and_where():
    nodes = [helper.make_node("Not", ["c"], ["nc"], name="not"),
             helper.make_node("Where", ["nc", "a", "b"], ["y"], name="where")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [3, 1]),
                                           helper.make_tensor_value_info("a", TensorProto.FLOAT, [3, 4]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"c": RNG.random((3, 1)) > 0.5, "a": RNG.standard_normal((3, 4)).astype(np.float32),
             "b": RNG.standard_normal(4).astype(np.float32)}
    np.testing.assert_array_equal(run_module(import_onnx(model), feeds)["y"], ort_run(model, feeds)[0])


def test_event_example_with_submanifold_masks_matches_onnxruntime():
    model = onnx.load("examples/events/events_submanifold.onnx")
    module = import_onnx(model)
    assert {"greater", "max_pool", "mul"} <= {op.kind for op in module.ops}
    frames = np.load("examples/events/events_test.npz")["input"][:4].astype(np.float32)
    for x in frames:
        ours = run_module(module, {"input": x[None]})["logits"]
        (theirs,) = ort_run(model, {"input": x[None]})
        assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
