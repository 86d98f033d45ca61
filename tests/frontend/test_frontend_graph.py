"""Whole-graph behaviour: constant folding, names and locations, input binding, big weights."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_case import assert_matches_onnxruntime, float_input, graph_model, rand, tensor
from tcc.frontend import import_onnx
from tcc.ir import parse_module, print_module


def kinds(module):
    return [op.kind for op in module.ops]


def shape_subgraph_model():
    """x -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape(x, .): flatten after the batch dim."""
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
        helper.make_node("Gather", ["x_shape", "zero"], ["batch"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
        helper.make_node("Concat", ["batch1", "minus_one"], ["new_shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["y"], name="reshape"),
    ]
    inits = [tensor("zero", 0), tensor("axes0", [0]), tensor("minus_one", [-1])]
    return graph_model(nodes, [float_input("x", [2, 3, 4, 4])], ["y"], inits)


def test_shape_subgraph_folds_into_a_static_reshape():
    module = import_onnx(shape_subgraph_model())
    assert kinds(module) == ["reshape"]
    reshape = module.ops[0]
    assert reshape.attrs["shape"] == (2, 48)
    assert reshape.result.name == "y" and reshape.loc == "reshape"


def test_shape_subgraph_matches_onnxruntime():
    assert_matches_onnxruntime(shape_subgraph_model(), {"x": rand(2, 3, 4, 4)})


def test_folded_tensors_become_const_operands_with_the_folding_nodes_location():
    nodes = [
        helper.make_node("ConstantOfShape", ["bias_shape"], ["bias"], name="make_bias",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.25])),
        helper.make_node("Range", ["start", "limit", "delta"], ["ramp_i"], name="ramp"),
        helper.make_node("Cast", ["ramp_i"], ["ramp"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "bias"], ["t"], name="add_bias"),
        helper.make_node("Mul", ["t", "ramp"], ["y"], name="scale"),
    ]
    inits = [tensor("bias_shape", [3, 1]), tensor("start", 0), tensor("limit", 4), tensor("delta", 1)]
    model = graph_model(nodes, [float_input("x", [2, 3, 4])], ["y"], inits)
    module = import_onnx(model)
    assert kinds(module) == ["const", "add", "const", "mul"]
    bias, _, ramp, _ = module.ops
    assert (bias.result.name, bias.loc) == ("bias", "make_bias")
    np.testing.assert_array_equal(bias.attrs["value"], np.full((3, 1), 0.25, np.float32))
    assert (ramp.result.name, ramp.loc) == ("ramp", "ramp")  # unnamed Cast: named by its output
    np.testing.assert_array_equal(ramp.attrs["value"], np.arange(4, dtype=np.float32))
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4)})


def test_shape_with_start_end_and_size_of_computed_tensors_fold():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["tail"], start=-2),
        helper.make_node("Size", ["r"], ["count"]),
        helper.make_node("Cast", ["tail"], ["tail_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["tail_f", "count_f"], ["y"], name="mul"),
    ]
    model = graph_model(nodes, [float_input("x", [2, 3, 5])], ["y", "r"], opset=15)
    module = import_onnx(model)
    assert kinds(module) == ["relu", "const"]
    assert [name for name, _ in module.outputs] == ["y", "r"]
    np.testing.assert_array_equal(module.outputs[0][1].producer.attrs["value"], np.array([90.0, 150.0], np.float32))
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 5)})


def test_identity_and_dropout_alias_their_input():
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Dropout", ["a"], ["b", "mask"], name="drop"),
        helper.make_node("Relu", ["b"], ["y"], name="relu"),
    ]
    model = graph_model(nodes, [float_input("x", [2, 3])], ["y", "a", "mask"], opset=10)
    module = import_onnx(model)
    assert kinds(module) == ["relu", "const"]
    outputs = dict(module.outputs)
    assert outputs["a"] is module.inputs[0]
    assert module.ops[0].operands[0] is module.inputs[0]
    # onnx.reference and the ONNX spec say the inference mask is all true; onnxruntime says
    # false before opset 12, so the mask is checked here rather than against onnxruntime.
    assert outputs["mask"].producer.attrs["value"].all()


def test_onnx_names_survive_and_intermediates_avoid_them():
    """Softmax-11 at axis 1 needs helper values; one is named like an ONNX tensor made later."""
    nodes = [
        helper.make_node("Softmax", ["x"], ["s/1:0"], name="soft max", axis=1),
        helper.make_node("Neg", ["s/1:0"], ["s/1:0.flat"], name="neg"),
    ]
    model = graph_model(nodes, [float_input("x", [2, 3, 4])], ["s/1:0.flat"], opset=11)
    module = import_onnx(model)
    names = [op.result.name for op in module.ops]
    assert names[-1] == "s/1:0.flat" and names[-2] == "s/1:0"
    assert len(set(names)) == len(names)
    assert {op.loc for op in module.ops[:-1]} == {"soft max"}
    text = print_module(module)
    assert print_module(parse_module(text)) == text
    assert_matches_onnxruntime(model, {"x": rand(2, 3, 4)})


def test_module_name_and_input_names():
    model = shape_subgraph_model()
    assert import_onnx(model).name == "g"
    assert import_onnx(model, name="mine").name == "mine"
    assert [v.name for v in import_onnx(model).inputs] == ["x"]


def test_constant_graph_output_becomes_a_const_op():
    nodes = [helper.make_node("Constant", [], ["c"], name="k", value_floats=[1.0, 2.0]),
             helper.make_node("Relu", ["x"], ["y"])]
    model = graph_model(nodes, [float_input("x", [2])], ["y", "c"])
    module = import_onnx(model)
    outputs = dict(module.outputs)
    assert outputs["c"].producer.kind == "const" and outputs["c"].producer.loc == "k"


def test_dynamic_batch_is_bound_by_input_shapes():
    model = graph_model([helper.make_node("Flatten", ["x"], ["y"], name="flat")],
                        [float_input("x", ["N", 3, 4])], ["y"])
    module = import_onnx(model, input_shapes={"x": (5, 3, 4)})
    assert module.inputs[0].type.shape == (5, 3, 4)
    assert module.outputs[0][1].type.shape == (5, 12)


def test_big_weights_skip_the_skeleton_but_keep_their_values():
    weight = rand(64, 48)
    model = graph_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                        [float_input("x", [2, 64])], ["y"], [numpy_helper.from_array(weight, "w")])
    module = import_onnx(model)
    np.testing.assert_array_equal(module.ops[0].attrs["value"], weight)
    assert_matches_onnxruntime(model, {"x": rand(2, 64)})


def test_gemm_with_constant_weight_becomes_linear_with_alpha_and_beta_folded():
    w, c = rand(5, 4), rand(4)
    model = graph_model([helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", alpha=2.0, beta=0.5)],
                        [float_input("x", [3, 5])], ["y"],
                        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(c, "c")])
    module = import_onnx(model)
    assert kinds(module) == ["const", "const", "linear"]
    np.testing.assert_allclose(module.ops[0].attrs["value"], 2.0 * w.T)
    np.testing.assert_allclose(module.ops[1].attrs["value"], 0.5 * c)


def test_model_local_functions_are_inlined():
    body = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Neg", ["r"], ["b"])]
    function = helper.make_function("local", "NegRelu", ["a"], ["b"], body,
                                    [helper.make_opsetid("", 13)])
    model = graph_model([helper.make_node("NegRelu", ["x"], ["y"], domain="local")],
                        [float_input("x", [2, 3])], ["y"], functions=[function])
    assert kinds(import_onnx(model)) == ["relu", "neg"]


@pytest.mark.parametrize("as_path", [False, True])
def test_path_and_model_proto_give_the_same_module(tmp_path, as_path):
    model = shape_subgraph_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    module = import_onnx(str(path) if as_path else model)
    assert print_module(module).replace("@m ", "@g ") == print_module(import_onnx(model))


def attention_block_model():
    """A PyTorch-style exported attention block: dynamic batch/sequence dims, shape arithmetic
    done with Shape/Gather/Concat, decomposed LayerNorm and erf-GELU."""
    d, heads = 8, 2
    rng = np.random.default_rng(7)
    weights = {n: rng.standard_normal(s).astype(np.float32) * 0.3 for n, s in
               [("wq", (d, d)), ("wk", (d, d)), ("wv", (d, d)), ("w1", (d, 2 * d)), ("w2", (2 * d, d)),
                ("gamma", (d,)), ("beta", (d,))]}
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    inits += [tensor("i0", 0), tensor("i1", 1), tensor("heads_dims", [heads, d // heads]), tensor("ax0", [0]),
              tensor("minus1", [-1]), tensor("red_axes", [-1]),
              numpy_helper.from_array(np.float32(np.sqrt(d // heads)), "scale"),
              numpy_helper.from_array(np.float32(2.0), "two"), numpy_helper.from_array(np.float32(1e-5), "eps"),
              numpy_helper.from_array(np.float32(np.sqrt(2.0)), "sqrt2"),
              numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(np.float32(1.0), "one")]
    node = helper.make_node
    nodes = [
        node("Shape", ["x"], ["xs"]), node("Gather", ["xs", "i0"], ["b"], axis=0),
        node("Gather", ["xs", "i1"], ["t"], axis=0),
        node("Unsqueeze", ["b", "ax0"], ["b1"]), node("Unsqueeze", ["t", "ax0"], ["t1"]),
        node("Concat", ["b1", "t1", "heads_dims"], ["split_shape"], axis=0),
        node("Concat", ["b1", "t1", "minus1"], ["merge_shape"], axis=0),
    ]
    for p in "qkv":
        nodes += [node("MatMul", ["x", f"w{p}"], [f"{p}0"], name=f"proj_{p}"),
                  node("Reshape", [f"{p}0", "split_shape"], [f"{p}1"]),
                  node("Transpose", [f"{p}1"], [f"{p}2"], perm=[0, 2, 1, 3] if p != "k" else [0, 2, 3, 1])]
    nodes += [
        node("MatMul", ["q2", "k2"], ["att0"]), node("Div", ["att0", "scale"], ["att1"]),
        node("Softmax", ["att1"], ["att2"], axis=-1), node("MatMul", ["att2", "v2"], ["ctx0"]),
        node("Transpose", ["ctx0"], ["ctx1"], perm=[0, 2, 1, 3]), node("Reshape", ["ctx1", "merge_shape"], ["ctx2"]),
        node("Add", ["x", "ctx2"], ["h"]),
        node("ReduceMean", ["h"], ["mu"], axes=[-1]), node("Sub", ["h", "mu"], ["hc"]),
        node("Pow", ["hc", "two"], ["hc2"]), node("ReduceMean", ["hc2"], ["var"], axes=[-1]),
        node("Add", ["var", "eps"], ["var_eps"]), node("Sqrt", ["var_eps"], ["std"]),
        node("Div", ["hc", "std"], ["hn"]), node("Mul", ["hn", "gamma"], ["hg"]), node("Add", ["hg", "beta"], ["ln"]),
        node("MatMul", ["ln", "w1"], ["f0"]), node("Div", ["f0", "sqrt2"], ["f1"]), node("Erf", ["f1"], ["f2"]),
        node("Add", ["f2", "one"], ["f3"]), node("Mul", ["f0", "f3"], ["f4"]), node("Mul", ["f4", "half"], ["f5"]),
        node("MatMul", ["f5", "w2"], ["f6"]), node("Add", ["ln", "f6"], ["y"]),
    ]
    return graph_model(nodes, [float_input("x", ["batch", "seq", d])], ["y"], inits)


def test_attention_block_with_dynamic_dims_matches_onnxruntime():
    from onnx_case import assert_close

    model = attention_block_model()
    x = rand(3, 5, 8)
    module = import_onnx(model, input_shapes={"x": x.shape})
    assert all(op.result.type.dtype == "f32" for op in module.ops)  # no shape tensor survives folding
    assert [op.attrs["shape"] for op in module.ops if op.kind == "reshape"] == [(3, 5, 2, 4)] * 3 + [(3, 5, 8)]
    assert_close(module, model, {"x": x})
