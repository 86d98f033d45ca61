"""Models tcc cannot import fail with one FrontendError that says what, where and what to do."""
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_case import C, X, assert_matches_onnxruntime, float_input, graph_model, make_model, tensor
from tcc.frontend import FrontendError, import_onnx
from tcc.frontend.errors import FrontendNote
from tcc.ir.errors import TccError
from tcc.ir.interpreter import run_module

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def frontend_error(model, **kwargs) -> str:
    with pytest.raises(FrontendError) as info:
        import_onnx(model, **kwargs)
    return str(info.value)


def test_frontend_error_is_a_tcc_error():
    assert issubclass(FrontendError, TccError)


def test_every_unsupported_node_is_listed_in_one_error():
    nodes = [
        helper.make_node("NonZero", ["x"], ["v0"], name="nz_0"),
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("NonZero", ["r"], ["v1"], name="nz_1"),
        helper.make_node("Unique", ["r"], ["u"], name="uniq"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["d"], name="nms"),
    ]
    model = graph_model(nodes, [float_input("x", [2, 6]), float_input("boxes", [1, 3, 4]),
                                float_input("scores", [1, 1, 3])], ["v0", "v1", "u", "d"])
    message = frontend_error(model)
    assert message == ("model 'g': 4 nodes use ops tcc does not support (opset 13):\n"
                       "  NonMaxSuppression: node 'nms'\n"
                       "  NonZero: nodes 'nz_0', 'nz_1'\n"
                       "  Unique: node 'uniq'")


def test_unsupported_ops_are_fine_when_constant_folding_removes_them():
    nodes = [helper.make_node("Tile", ["c", "reps"], ["t"]), helper.make_node("Add", ["x", "t"], ["y"])]
    model = graph_model(nodes, [float_input("x", [2, 4])], ["y"],
                        [numpy_helper.from_array(np.ones((2, 2), np.float32), "c"), tensor("reps", [1, 2])])
    assert [op.kind for op in import_onnx(model).ops] == ["const", "add"]


@pytest.mark.parametrize("op_type,operands,attrs,opset,expected", [
    ("Resize", [X(1, 1, 2, 2), None, np.array([1, 1, 2, 2], np.float32)], {"mode": "lanczos"}, 13,
     "node 'node' (Resize, opset 13): mode='lanczos' is not supported"),
    ("Resize", [X(1, 1, 2, 2), np.zeros(0, np.float32), np.array([1, 1, 2, 2], np.float32)],
     {"coordinate_transformation_mode": "tf_half_pixel_for_nn"}, 11,
     "node 'node' (Resize, opset 11): coordinate_transformation_mode='tf_half_pixel_for_nn' is not supported"),
    ("Reshape", [X(2, 3), X(2, kind="int", dtype=np.int64)], {}, 13,
     "node 'node' (Reshape, opset 13): input 1 (shape, 'in1') must be a constant"),
    ("Dropout", [X(2, 3), np.float32(0.5), np.bool_(True)], {}, 13, "training_mode Dropout is not supported"),
    ("Gelu", [X(2, 3)], {"approximate": "fast"}, 20, "approximate='fast' is not 'none' or 'tanh'"),
])
def test_unsupported_attribute_values_name_the_node(op_type, operands, attrs, opset, expected):
    operands = [o if o is None or isinstance(o, X) else C(o) for o in operands]
    model, _ = make_model(op_type, operands, attrs, opset, 1)
    assert expected in frontend_error(model)


def test_missing_file(tmp_path):
    message = frontend_error(tmp_path / "nope.onnx")
    assert "nope.onnx: no such file" in message


def test_truncated_model_file(tmp_path):
    data = (LIGHT / "light_squeezenet.onnx").read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    message = frontend_error(path)
    assert str(path) in message and ("truncated" in message or "not a valid ONNX model" in message)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path, seed):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(seed).bytes(3000))
    assert str(path) in frontend_error(path)


def test_not_a_model_argument():
    assert "takes a path or an onnx.ModelProto" in frontend_error(42)


def test_checker_failure_is_reported():
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", [2])], ["y"])
    model.graph.node[0].input.append("x")  # Relu takes one input
    assert "not a valid ONNX model" in frontend_error(model)


def test_shape_inference_failure_names_the_node():
    model = graph_model([helper.make_node("Add", ["x", "z"], ["y"], name="bad_add")],
                        [float_input("x", [2, 3]), float_input("z", [2, "N"])], ["y"])
    message = frontend_error(model, input_shapes={"z": (2, 4)})
    assert "ONNX shape inference fails at node 'bad_add' (Add)" in message


def test_operands_of_one_type_parameter_must_agree():
    """A float64 Conv weight beside a float32 input breaks Conv's type constraint T; onnxruntime refuses
    the model, and so must the frontend (it used to compute in float64 silently)."""
    weight = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float64), "w")
    model = graph_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv64")],
                        [float_input("x", [1, 1, 5, 5])], ["y"], initializers=[weight])
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph

    with pytest.raises((Fail, InvalidGraph)):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    message = frontend_error(model)
    assert "at node 'conv64' (Conv)" in message and "W has inconsistent type tensor(double)" in message


def test_unknown_domain():
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", [2])], ["y"])
    model.graph.node.append(helper.make_node("FusedThing", ["y"], ["z"], domain="com.example", name="fused"))
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    message = frontend_error(model)
    assert "domain 'com.example'" in message and "FusedThing" in message


def test_opset_newer_than_onnx():
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", [2])], ["y"])
    model.opset_import[0].version = opset = onnx.defs.onnx_opset_version() + 1
    message = frontend_error(model)
    assert f"opset {opset} is" in message and "newer than this onnx" in message


def test_old_opset_is_converted():
    """Opsets 1-6 are converted by onnx.version_converter and then compute what onnxruntime does."""
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", [2])], ["y"])
    model.opset_import[0].version = 6
    with pytest.warns(FrontendNote, match="opset 6 converted to opset 7 by onnx.version_converter"):
        assert_matches_onnxruntime(model, {"x": np.array([-1.0, 2.0], np.float32)})


def test_old_opset_that_does_not_convert():
    """Upsample-7's attributes in an opset-6 model: the 6 -> 7 adapter wants Upsample-1's."""
    graph = helper.make_graph([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 2.0])], "g",
                              [float_input("x", [2, 2])], [float_input("y", [2, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    message = frontend_error(model)
    assert "opset 6 is older than the oldest tcc supports (7)" in message
    assert "onnx.version_converter cannot convert it" in message


def dynamic_model():
    return graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", ["batch", 3])], ["y"])


def test_unbound_dynamic_dim_names_the_input_and_dim():
    message = frontend_error(dynamic_model())
    assert "input 'x' has a dynamic dim 0 ('batch')" in message and "--input-shape x=1,3" in message


@pytest.mark.parametrize("shapes,expected", [
    ({"y": (1, 3)}, "input_shapes names 'y', which is not a model input (the inputs are 'x')"),
    ({"x": (1, 4)}, "input_shapes gives 'x' dim 1 = 4, the model declares it static 3"),
    ({"x": (1, 3, 1)}, "input_shapes gives 'x' 3 dims [1, 3, 1], the model declares 2"),
    ({"x": (1, -3)}, "has a negative dim"),
])
def test_bad_input_shapes(shapes, expected):
    assert expected in frontend_error(dynamic_model(), input_shapes=shapes)


@pytest.mark.parametrize("written", [-1, 0])
def test_dims_written_as_minus_one_or_zero_are_bound_by_input_shapes(written, tmp_path):
    """Exporters write -1 or 0 for "any size": input_shapes binds such a dim.  Left unbound, -1 is
    the dynamic-dim error and 0 stays an empty dim (ONNX's empty tensors)."""
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [float_input("x", [written, 3])], ["y"])
    if written < 0:
        assert "input 'x' has a dynamic dim 0 (-1)" in frontend_error(model)
    else:
        assert import_onnx(model).inputs[0].type.shape == (0, 3)
    module = import_onnx(model, input_shapes={"x": (2, 3)})
    assert module.inputs[0].type.shape == (2, 3)
    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32)
    np.testing.assert_array_equal(run_module(module, {"x": x})["y"], np.maximum(x, 0))


def test_initializers_listed_as_inputs_are_not_model_inputs():
    path = LIGHT / "light_squeezenet.onnx"
    message = frontend_error(path, input_shapes={"conv1_w_0__SHAPE": (4,)})
    assert "the inputs are 'data_0'" in message


def test_unsupported_input_element_type():
    model = graph_model([helper.make_node("Identity", ["x"], ["y"])],
                        [helper.make_tensor_value_info("x", TensorProto.COMPLEX64, [2])], ["y"])
    assert "element type COMPLEX64" in frontend_error(model)


def test_no_raw_exception_escapes_for_garbage_protos(tmp_path):
    """Whatever protobuf makes of these files, the user sees a FrontendError."""
    for i, blob in enumerate([b"", b"\x08", b"\x0a\xff\xff\xff\xff\x0f", os.urandom(64)]):
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(blob)
        frontend_error(path)
    assert "holds no ONNX model" in frontend_error(tmp_path / "m0.onnx")


@pytest.mark.parametrize("size", [4, 4000])  # below and above the skeleton limit
def test_corrupt_initializer_data(size):
    model = graph_model([helper.make_node("Add", ["x", "w"], ["y"])], [float_input("x", [size])], ["y"],
                        [numpy_helper.from_array(np.ones(size, np.float32), "w")])
    model.graph.initializer[0].raw_data = b"123"
    message = frontend_error(model)
    assert "'w'" in message or "tensor name: w" in message


def test_disagreement_with_onnx_shape_inference_is_an_internal_error(monkeypatch):
    """A lowering whose result type differs from ONNX's inferred type is tcc's bug, not the user's."""
    from tcc.frontend import registry
    from tcc.ir.errors import InternalError

    def wrong_flatten(n):
        n.emit("reshape", [n.input(0)], {"shape": (12, 5)})

    monkeypatch.setitem(registry.LOWERINGS, "Flatten", wrong_flatten)
    model = graph_model([helper.make_node("Flatten", ["x"], ["y"], name="flat")], [float_input("x", [5, 3, 4])], ["y"])
    with pytest.raises(InternalError) as info:
        import_onnx(model)
    message = str(info.value)
    assert "node 'flat' (Flatten, opset 13)" in message
    assert "tensor 'y' has shape [12, 5] in tcc but [5, 12] after ONNX shape inference" in message
