"""A host tail: NonMaxSuppression and what follows it (shapes known only at run time) run on the
host after the static part, on every path (-t ir, --quant int8, -t overlay).

The model (examples/hetero/make_models.py ``box_head``): conv -> box decode -> NMS -> gather of
the boxes kept; ``scores`` (static) is an output too.
"""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = EXAMPLES / "hetero" / "box_head.onnx"
CALIB = EXAMPLES / "hetero" / "gated_cnn_calib.npz"
TAIL = ["nms", "box_index", "det_boxes"]


def _samples():
    return [x[None] for x in np.load(CALIB)["x"][:3]]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from tcc.cli import main

    path = tmp_path_factory.mktemp("tail") / "box_head.tcc"
    assert main(["compile", str(MODEL), "-t", "overlay", "--calib", str(CALIB), "-o", str(path)]) == 0
    return path


def test_float_path_equals_onnxruntime():
    from tcc.driver import compile_model
    from tcc.frontend import run_model

    module = compile_model(str(MODEL), "ir")
    assert [n.name for n in module.host_tail.nodes] == TAIL
    assert module.host_tail.nodes[0].reason == "output shape depends on input values"
    session = ort.InferenceSession(str(MODEL))
    counts = set()
    for x in _samples():
        got = run_model(module, {"x": x})
        want = dict(zip(["selected", "scores", "det_boxes"], session.run(None, {"x": x})))
        assert list(got) == list(want)
        assert np.array_equal(got["selected"], want["selected"])
        np.testing.assert_allclose(got["det_boxes"], want["det_boxes"], rtol=1e-5, atol=1e-5)
        counts.add(len(got["selected"]))
    assert len(counts) > 1  # the tail's shapes do change from run to run


def test_textual_ir_keeps_the_tail(tmp_path, tcc_cli):
    from tcc.ir import parse_module, print_module

    code, _, err = tcc_cli("compile", MODEL, "-t", "ir", "-o", tmp_path / "m.tir")
    assert code == 0, err
    assert "node 'nms' (NonMaxSuppression) and the 2 node(s) after it form the host tail" in err
    text = (tmp_path / "m.tir").read_text()
    assert "host_tail {" in text and print_module(parse_module(text)) == text
    x = _samples()[0]
    np.savez(tmp_path / "in.npz", x=x)
    code, _, err = tcc_cli("run", tmp_path / "m.tir", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    assert code == 0, err
    (want, _, _) = ort.InferenceSession(str(MODEL)).run(None, {"x": x})
    assert np.array_equal(np.load(tmp_path / "out.npz")["selected"], want)


def test_overlay_runs_device_prefix_and_host_tail(artifact):
    from tcc.ir.interpreter import run_module
    from tcc.runtime import open_session

    session = open_session(artifact)
    meta = session.artifact.metadata
    assert meta["partitions"][-1]["graph"] == "onnx" and meta["partitions"][-1]["nodes"] == TAIL
    assert [o.name for o in session.get_outputs()] == ["selected", "scores", "det_boxes"]
    tail = session.module.host_tail
    tail_onnx = ort.InferenceSession(tail.onnx)  # the tail alone, on onnxruntime
    for x in _samples():
        got = dict(zip(["selected", "scores", "det_boxes"], session.run(None, {"x": x})))
        reference = session.run_reference({"x": x})
        assert all(np.array_equal(got[k], reference[k]) for k in got)  # simulator == integer reference
        prefix = run_module(session.module, {"x": x})  # equals the device's (the line above)
        boundary = {n: prefix[n] for n in tail.inputs}
        want = dict(zip([o.name for o in tail_onnx.get_outputs()], tail_onnx.run(None, boundary)))
        assert np.array_equal(got["selected"], want["selected"])  # the host tail == onnxruntime's NMS
        assert np.array_equal(got["det_boxes"], want["det_boxes"])
    report = session.performance_report()
    assert report["partitions"][-1]["kind"] == "host"
    assert {f["node"] for f in report["host_ops"]} >= set(TAIL)


def test_no_host_fallback_lists_the_tail(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", MODEL, "-t", "overlay", "--calib", CALIB, "--no-host-fallback",
                           "-o", tmp_path / "m.tcc")
    assert code == 2
    assert "node 'nms' (NonMaxSuppression): output shape depends on input values" in err
    assert "node 'det_boxes' (Gather)" in err


def test_explain_names_the_tail_host():
    from tcc.explain import explain

    placement = {n.name: n for n in explain(str(MODEL)).nodes}
    assert placement["nms"].where == "host"
    assert placement["nms"].reasons == ["output shape depends on input values"]
    assert placement["conv"].where != "host"


def test_constant_bounds_still_fold():
    """A Range over constants folds when importing, as before: no host tail."""
    from onnx import TensorProto, helper, numpy_helper

    from tcc.frontend import import_onnx

    consts = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("a", 0), ("b", 4), ("d", 1))]
    graph = helper.make_graph([helper.make_node("Range", ["a", "b", "d"], ["r"]),
                               helper.make_node("Add", ["x", "r"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], consts)
    module = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), host_tail=True)
    assert module.host_tail is None and [op.kind for op in module.ops if op.kind != "const"] == ["add"]


def test_sparse_target_refuses_a_tail(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", MODEL, "-t", "sparse", "--calib", CALIB, "-o", tmp_path / "m.tcc")
    assert code == 2 and "node 'nms' (NonMaxSuppression) must run on the host" in err


def test_without_host_tail_the_frontend_refuses():
    from tcc.frontend import FrontendError, import_onnx

    with pytest.raises(FrontendError, match="NonMaxSuppression"):
        import_onnx(onnx.load(str(MODEL)))


def test_a_tail_that_makes_no_output_is_dropped():
    """A NonZero nothing reads: no host tail, the model's outputs as before."""
    from onnx import TensorProto, helper

    from tcc.frontend import import_onnx

    graph = helper.make_graph([helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Relu", ["x"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    module = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), host_tail=True)
    assert module.host_tail is None and [n for n, _ in module.outputs] == ["y"]


def test_textual_tail_is_verified():
    from tcc.driver import compile_model
    from tcc.ir import VerifyError, parse_module, print_module, verify

    text = print_module(compile_model(str(MODEL), "ir"))
    with pytest.raises(VerifyError, match="host_tail input 'nope' is not an output of the module"):
        verify(parse_module(text.replace('  input "boxes"\n', '  input "nope"\n')))


def _while_loop_model() -> onnx.ModelProto:
    """relu(x), then halve it while max |y| > 0.1 (the body computes the condition from data);
    outputs 2y and every y computed."""
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Mul", ["y_in", "half"], ["y_out"]), helper.make_node("Abs", ["y_out"], ["a"]),
         helper.make_node("ReduceMax", ["a"], ["m"], keepdims=0),
         helper.make_node("Greater", ["m", "tenth"], ["cond_out"]), helper.make_node("Identity", ["y_out"], ["scan"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("y_in", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half"),
         numpy_helper.from_array(np.array(0.1, np.float32), "tenth")])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Loop", ["", "go", "r"], ["y", "ys"], body=body),
         helper.make_node("Add", ["y", "y"], ["z"])], "while_loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("ys", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(np.array(True), "go")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_while_loop_runs_on_the_host_iteration_by_iteration():
    from tcc.frontend import import_onnx, run_model

    model = _while_loop_model()
    module = import_onnx(model, host_tail=True)
    assert module.host_tail.nodes[0].reason == "the loop's trip count depends on input values"
    session = ort.InferenceSession(model.SerializeToString())
    trips = set()
    for x in (np.array([1, -2, 3], np.float32), np.array([0.05, 0.5, 8], np.float32)):
        z, ys = session.run(None, {"x": x})
        got = run_model(module, {"x": x})
        assert np.array_equal(got["z"], z) and np.array_equal(got["ys"], ys)
        trips.add(len(ys))
    assert trips == {5, 7}


def test_an_if_whose_branches_differ_in_shape_runs_on_the_host():
    """cond = sum(x) > 0 picks x[:2] or x: the output shape is the branch taken's."""
    from onnx import TensorProto, helper, numpy_helper

    from tcc.frontend import import_onnx, run_model

    then = helper.make_graph([helper.make_node("Slice", ["x", "s0", "s2"], ["head"])], "then", [],
                             [helper.make_tensor_value_info("head", TensorProto.FLOAT, [2])],
                             [numpy_helper.from_array(np.array([0], np.int64), "s0"),
                              numpy_helper.from_array(np.array([2], np.int64), "s2")])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["all"])], "else", [],
                              [helper.make_tensor_value_info("all", TensorProto.FLOAT, [4])])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], "if_shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = import_onnx(model, host_tail=True)
    assert [n.op_type for n in module.host_tail.nodes] == ["If"]
    session = ort.InferenceSession(model.SerializeToString())
    for x in (np.array([1, 2, 3, 4], np.float32), np.array([-1, -2, 0.5, 0], np.float32)):
        (want,) = session.run(None, {"x": x})
        assert np.array_equal(run_model(module, {"x": x})["y"], want)
