"""Model-boundary conversions: what the runtime does on the host at a device program's inputs and
outputs (steps.input_conversions, partition._fold_boundaries), and the int8 sum with a broadcast
scalar constant (rules.broadcast_constant) that BERT's ``1 - mask`` needs on the int8 lanes.

The model is BERT's attention-mask path in small: an int64 mask [1, 8] unsqueezed to [1, 1, 8], cast to
float, ``(1 - mask) * 3`` (a scalar constant minus the activation, scaled), added to a float input of
that shape."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

SHAPE = (1, 1, 8)


def _mask_model():
    nodes = [helper.make_node("Unsqueeze", ["mask", "axes"], ["ext"]),
             helper.make_node("Cast", ["ext"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["one", "m"], ["inv"]),
             helper.make_node("Mul", ["inv", "three"], ["bias"]),  # a scaled mask: no int8 table takes the sub
             helper.make_node("Add", ["x", "bias"], ["y"])]
    graph = helper.make_graph(nodes, "mask", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE)),
                                              helper.make_tensor_value_info("mask", TensorProto.INT64, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.array([1], np.int64), "axes"),
                               numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                               numpy_helper.from_array(np.array(3.0, np.float32), "three")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _feeds(rng, n=None):
    lead = () if n is None else (n,)
    return {"x": rng.uniform(-1, 1, lead + SHAPE).astype(np.float32),
            "mask": rng.integers(0, 2, lead + (1, 8)).astype(np.int64)}


@pytest.fixture(scope="module")
def mask_artifact(tmp_path_factory):
    from tcc.cli import main

    rng = np.random.default_rng(5)
    tmp = tmp_path_factory.mktemp("mask")
    np.savez(tmp / "calib.npz", **_feeds(rng, 16))
    (tmp / "m.onnx").write_bytes(_mask_model().SerializeToString())
    assert main(["compile", str(tmp / "m.onnx"), "-t", "overlay", "--calib", str(tmp / "calib.npz"),
                 "-o", str(tmp / "m.tcc")]) == 0
    return tmp / "m.tcc"


def test_an_integer_mask_reaches_the_device_through_its_boundary_chain(mask_artifact):
    from tcc.runtime import Session, open_session

    session = open_session(mask_artifact)
    assert isinstance(session, Session)  # one device program: the mask's conversions are its boundary
    (entry,) = [e for e in session.artifact.metadata["inputs"] if e["name"] == "mask"]
    assert [op["kind"] for op in entry["boundary"]] == ["reshape", "cast", "quantize"]
    assert (entry["dtype"], entry["shape"]) == ("i8", [1, 1, 8])
    assert [(a.name, a.type, a.shape) for a in session.get_inputs()] == [("x", "f32", list(SHAPE)),
                                                                         ("mask", "i64", [1, 8])]
    rng = np.random.default_rng(6)
    for _ in range(3):
        feeds = _feeds(rng)
        (got,) = session.run(None, feeds)
        assert np.array_equal(got, session.run_reference(feeds)["y"])
        want = feeds["x"] + 3.0 * (1.0 - feeds["mask"].astype(np.float32)[:, None, :])  # numpy, in float
        step = 5.0 / 255  # the sum's int8 grid spans about [-1, 4]
        assert np.max(np.abs(got - want)) <= 2 * step


def test_the_scalar_minus_the_mask_is_an_int8_sum_with_the_constant_expanded(mask_artifact):
    """The quantized sub reads its scalar 1 stored at the activation's shape (every element the
    int8 code of 1.0 on the constant's grid), so it is an ``eadd`` of two [1, 1, 8] tensors."""
    from tcc.backends.overlay.placement import place_module
    from tcc.ir import constant_value
    from tcc.isa.target import load_target
    from tcc.runtime import open_session

    module = open_session(mask_artifact).module
    (sub,) = [op for op in module.ops if op.kind == "sub"]
    lhs = sub.a.producer.x  # the requantize widening the constant
    value = constant_value(lhs)
    q = lhs.type.quant
    assert value.shape == SHAPE and value.dtype == np.int8
    assert np.all(value == int(np.clip(np.round(1.0 / q.scale[0]) + q.zero_point[0], -128, 127)))
    placement = place_module(module, load_target())
    assert placement.of[id(sub)].unit == "int8 lanes" and not placement.host_ops(module)


def test_input_conversions_take_a_chain_only_up_to_a_device_tensor():
    from tcc.backends.overlay.steps import find_host_io
    from tcc.ir import parse_module

    module = parse_module("""module @m {
  input %ids : i64[1,8]
  input %mask : i64[1,8]
  %e = reshape(%mask) {shape = [1, 1, 8]} : i64[1,1,8]
  %f = cast(%e) {to = "f32"} : f32[1,1,8]
  %r = reshape(%ids) {shape = [1, 1, 8]} : i64[1,1,8]
  %g = cast(%r) {to = "f32"} : f32[1,1,8]
  output "f" = %f
  output "g" = %g
}""")
    io = find_host_io(module)
    # neither chain reaches an int8 or bf16 tensor: no input conversions, the values go as they are
    assert [(name, v.name, ops) for name, v, ops in io.inputs] == [("ids", "ids", ()), ("mask", "mask", ())]


def test_a_boundary_chain_of_one_op_is_refused(mask_artifact, tmp_path):
    from tcc.backends.artifact import Artifact, ArtifactError
    from tcc.runtime import Session

    artifact = Artifact.load(mask_artifact)
    (entry,) = [e for e in artifact.metadata["inputs"] if e["name"] == "mask"]
    entry["boundary"] = entry["boundary"][-1:]
    (tmp_path / "edited.tcc").write_bytes(artifact.to_bytes())
    with pytest.raises(ArtifactError, match=r"inputs\[1\].boundary is a chain of 1 ops"):
        Session(tmp_path / "edited.tcc")
    entry["boundary"] = [entry["boundary"][0], entry["boundary"][0]]  # quantize of an int8 tensor
    (tmp_path / "edited.tcc").write_bytes(artifact.to_bytes())
    with pytest.raises(ArtifactError, match=r"inputs entry 'mask'\[1\]"):
        Session(tmp_path / "edited.tcc")
