"""Residual adds fused into the producing conv (backends/overlay/residual.py): the add's eadd runs
on each output tile, the conv's own result never goes to DRAM, and the outputs stay bit-exact."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_overlay import quantized, random_calibration
from tcc.backends.overlay import compile_overlay
from tcc.ir.interpreter import run_module
from tcc.isa.disassembler import disassemble
from tcc.runtime import Session


def residual_model(path, combine: str, shared: bool = False):
    """x -> conv a -> relu -> conv b; y = relu(combine(b, x)) (``Sub``: x - b, the conv's result
    is the add's second operand); ``shared``: b also feeds a second output, so it must stay in DRAM."""
    rng = np.random.default_rng(0)

    def weight(name, cout, cin):
        return numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3)) * 0.2).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
             helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
             helper.make_node("Conv", ["ra", "wb"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
             helper.make_node(combine, ["x", "b"] if combine == "Sub" else ["b", "x"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu_out")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 12, 12])]
    if shared:
        nodes.append(helper.make_node("Conv", ["b", "wc"], ["z"], pads=[1, 1, 1, 1], name="conv_c"))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 12, 12]))
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])],
                              outputs, [weight("wa", 16, 16), weight("wb", 16, 16), weight("wc", 16, 16)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("combine, shared", [("Add", False), ("Sub", False), ("Add", True)])
def test_residual_add_fused_into_its_conv_is_bit_exact(tmp_path, combine, shared):
    model = residual_model(tmp_path / "m.onnx", combine, shared)
    module = quantized(str(model), random_calibration({"x": np.zeros((1, 16, 12, 12))}, tmp_path / "c.npz", samples=4))
    artifact = compile_overlay(module)
    kinds = [layer["kind"] for layer in artifact.metadata["layers"]]
    assert kinds.count("eadd") == (1 if shared else 0), kinds
    session = Session(artifact)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = {"x": rng.standard_normal((1, 16, 12, 12)).astype(np.float32)}
        simulated = session.run_dict(x)
        reference = run_module(module, x)
        for key in reference:
            np.testing.assert_array_equal(simulated[key], reference[key], err_msg=key)
    if not shared:  # the fused conv loads x twice (its slab and the skip), stores y once, never b
        fused = artifact.metadata["layers"][-1]
        assert fused["kind"] == "conv" and fused["fused"] == ["eadd"]
        assert fused["min_bytes"] == 3 * 16 * 12 * 12 + fused["weight_bytes"]


@pytest.mark.parametrize("gemm_is_a", [True, False])
def test_residual_add_fused_into_its_gemm_is_bit_exact(tmp_path, gemm_is_a):
    """y = x @ w + s (an LSTM step's gate add): the eadd runs on the gemm's output tile, its skip
    tile loaded beside it before the product; the gemm's own result never goes to DRAM."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array((rng.standard_normal((24, 40)) * 0.3).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["c"], name="fc"),
             helper.make_node("Add", ["c", "s"] if gemm_is_a else ["s", "c"], ["y"], name="add")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 24]),
              helper.make_tensor_value_info("s", TensorProto.FLOAT, [4, 40])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 40])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    module = quantized(str(tmp_path / "m.onnx"),
                       random_calibration({"x": np.zeros((4, 24)), "s": np.zeros((4, 40))}, tmp_path / "c.npz", samples=4))
    artifact = compile_overlay(module)
    assert [(entry["kind"], entry.get("fused")) for entry in artifact.metadata["layers"]] == [("gemm", ["eadd"])]
    session = Session(artifact)
    for seed in range(3):
        feeds = {k: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
                 for k, shape in (("x", (4, 24)), ("s", (4, 40)))}
        simulated, reference = session.run_dict(feeds), run_module(module, feeds)
        for key in reference:
            np.testing.assert_array_equal(simulated[key], reference[key], err_msg=key)


@pytest.mark.parametrize("layer", ["Conv", "Gemm"])
def test_table_lookup_fused_into_its_conv_or_gemm_is_bit_exact(tmp_path, layer):
    """conv -> HardSigmoid and gemm -> Tanh: the quantizer tabulates the activation (a lut step),
    which runs on each output tile of the producing step."""
    rng = np.random.default_rng(1)
    if layer == "Conv":
        shape, out_shape = [1, 8, 10, 10], [1, 16, 10, 10]
        w = numpy_helper.from_array((rng.standard_normal((16, 8, 3, 3)) * 0.3).astype(np.float32), "w")
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                 helper.make_node("HardSigmoid", ["c"], ["y"], name="act")]
    else:
        shape, out_shape = [4, 24], [4, 40]
        w = numpy_helper.from_array((rng.standard_normal((24, 40)) * 0.3).astype(np.float32), "w")
        nodes = [helper.make_node("Gemm", ["x", "w"], ["c"], name="fc"), helper.make_node("Tanh", ["c"], ["y"], name="act")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    module = quantized(str(tmp_path / "m.onnx"), random_calibration({"x": np.zeros(shape)}, tmp_path / "c.npz", samples=4))
    assert any(op.kind == "qlut" for op in module.ops)
    artifact = compile_overlay(module)
    assert [(entry["kind"], entry["fused"]) for entry in artifact.metadata["layers"]] == [(layer.lower(), ["lut"])]
    session = Session(artifact)
    for _ in range(3):
        x = {"x": rng.standard_normal(shape).astype(np.float32) * 2}
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["y"])


def test_concat_rescales_its_operands_tile_by_tile(tmp_path):
    """Two convs of different output ranges concatenated: each operand's requantize onto the
    concat's scale runs on the concat's loaded tiles (no requant step), bit-exact."""
    rng = np.random.default_rng(2)
    weights = [numpy_helper.from_array((rng.standard_normal((c, 8, 3, 3)) * s).astype(np.float32), f"w{i}")
               for i, (c, s) in enumerate(((8, 0.1), (16, 0.6)))]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
             helper.make_node("Conv", ["x", "w1"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
             helper.make_node("Concat", ["a", "b"], ["y"], axis=1, name="cat")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 20, 20])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    module = quantized(str(tmp_path / "m.onnx"), random_calibration({"x": np.zeros((1, 8, 20, 20))}, tmp_path / "c.npz"))
    assert sum(op.kind == "requantize" and op.x.type.dtype == "i8" for op in module.ops) >= 1
    artifact = compile_overlay(module)
    layers = artifact.metadata["layers"]
    assert [entry["kind"] for entry in layers] == ["conv", "conv", "concat"] and layers[-1]["fused"] == ["requant"]
    session = Session(artifact)
    for _ in range(3):
        x = {"x": rng.standard_normal((1, 8, 20, 20)).astype(np.float32)}
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["y"])


def test_a_concat_on_chip_stages_its_operands_side_by_side(tmp_path):
    """Four convs of different ranges concatenated in one abuf quarter (read by a last conv): every
    operand is loaded and rescaled at its own place (none waits for another to free a shared
    slot), bit-exact."""
    rng = np.random.default_rng(3)
    weights = [numpy_helper.from_array((rng.standard_normal((4, 8, 1, 1)) * s).astype(np.float32), f"w{i}")
               for i, s in enumerate((0.1, 0.3, 0.6, 1.2))]
    weights.append(numpy_helper.from_array((rng.standard_normal((8, 16, 1, 1)) * 0.3).astype(np.float32), "wo"))
    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"c{i}"], name=f"conv{i}") for i in range(4)]
    nodes += [helper.make_node("Concat", [f"c{i}" for i in range(4)], ["cat"], axis=1, name="cat"),
              helper.make_node("Conv", ["cat", "wo"], ["y"], name="out")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    module = quantized(str(tmp_path / "m.onnx"), random_calibration({"x": np.zeros((1, 8, 6, 6))}, tmp_path / "c.npz"))
    artifact = compile_overlay(module)
    rescales = [line.split()[-2] for line in disassemble(artifact.program, with_pc=False).splitlines()
                if line.startswith("requant abuf")]
    assert len(rescales) >= 3 and len(set(rescales)) == len(rescales)
    session = Session(artifact)
    for _ in range(2):
        x = {"x": rng.standard_normal((1, 8, 6, 6)).astype(np.float32)}
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["y"])
