"""If, Loop and Scan, inlined and unrolled by the frontend, against onnxruntime."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnx_case import assert_matches_onnxruntime, ir_version_for, with_output_types
from tcc.frontend import FrontendError, import_onnx

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=16):
    graph = helper.make_graph(nodes, "g", inputs, [onnx.ValueInfoProto(name=o) for o in outputs],
                              list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version_for(opset)
    return with_output_types(m)


def branch(name, op, const):
    """A branch graph computing op(x, const) from the enclosing graph's x."""
    c = helper.make_tensor(f"{name}_c", F, [3], const)
    return helper.make_graph([helper.make_node(op, ["x", f"{name}_c"], [f"{name}_y"])], name, [],
                             [helper.make_tensor_value_info(f"{name}_y", F, [3])], [c])


@pytest.mark.parametrize("flag", [True, False])
def test_if_with_a_computed_condition(flag):
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Add", [1, 2, 3]),
                              else_branch=branch("else", "Mul", [2, 2, 2]))]
    m = model(nodes, [helper.make_tensor_value_info("x", F, [3])], ["y"],
              [helper.make_tensor("zero", F, [], [0.0])], opset=13)
    x = np.array([1.0, 2.0, 3.0] if flag else [-1.0, -2.0, 0.5], np.float32)
    assert_matches_onnxruntime(m, {"x": x})


def loop_body():
    """carried acc -> acc + x * i; scan output acc; condition stays true."""
    nodes = [helper.make_node("Cast", ["i"], ["i_f"], to=F),
             helper.make_node("Mul", ["x", "i_f"], ["xi"]),
             helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
             helper.make_node("Identity", ["cond_in"], ["cond_out"]),
             helper.make_node("Identity", ["acc_out"], ["scan_out"])]
    return helper.make_graph(nodes, "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                                             helper.make_tensor_value_info("acc_in", F, [2])],
                             [helper.make_tensor_value_info(n, t, s) for n, t, s in
                              (("cond_out", TensorProto.BOOL, []), ("acc_out", F, [2]), ("scan_out", F, [2]))])


def test_loop_with_a_constant_trip_count():
    nodes = [helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=loop_body())]
    inits = [helper.make_tensor("M", TensorProto.INT64, [], [4]), helper.make_tensor("cond", TensorProto.BOOL, [], [1])]
    m = model(nodes, [helper.make_tensor_value_info(n, F, [2]) for n in ("x", "acc0")], ["acc", "scans"], inits)
    rng = np.random.default_rng(0)
    assert_matches_onnxruntime(m, {n: rng.standard_normal(2).astype(np.float32) for n in ("x", "acc0")})


def test_loop_with_a_run_time_trip_count_is_refused():
    nodes = [helper.make_node("Loop", ["M", "", "acc0"], ["acc", "scans"], body=loop_body())]
    m = model(nodes, [helper.make_tensor_value_info("M", TensorProto.INT64, []),
                      helper.make_tensor_value_info("x", F, [2]), helper.make_tensor_value_info("acc0", F, [2])],
              ["acc", "scans"])
    with pytest.raises(FrontendError, match="must be a constant"):
        import_onnx(m)


@pytest.mark.parametrize("directions,axes,out_dirs,out_axes", [
    ([0, 0], [0, 0], [0], [0]), ([1, 0], [1, 0], [1], [1]), ([0, 1], [0, 1], [0], [-1])])
def test_scan(directions, axes, out_dirs, out_axes):
    """state s -> s + a_t * b_t; scan output s * 2."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["a_t", "b_t"], ["ab"]), helper.make_node("Add", ["s_in", "ab"], ["s_out"]),
         helper.make_node("Add", ["s_out", "s_out"], ["y_t"])], "body",
        [helper.make_tensor_value_info(n, F, [3]) for n in ("s_in", "a_t", "b_t")],
        [helper.make_tensor_value_info(n, F, [3]) for n in ("s_out", "y_t")])
    shapes = {"a": [4, 3] if axes[0] == 0 else [3, 4], "b": [4, 3] if axes[1] == 0 else [3, 4]}
    nodes = [helper.make_node("Scan", ["s0", "a", "b"], ["s", "y"], body=body, num_scan_inputs=2,
                              scan_input_directions=directions, scan_input_axes=axes,
                              scan_output_directions=out_dirs, scan_output_axes=out_axes)]
    m = model(nodes, [helper.make_tensor_value_info("s0", F, [3])]
              + [helper.make_tensor_value_info(n, F, s) for n, s in shapes.items()], ["s", "y"])
    rng = np.random.default_rng(1)
    feeds = {"s0": rng.standard_normal(3).astype(np.float32)}
    feeds.update({n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()})
    assert_matches_onnxruntime(m, feeds)
