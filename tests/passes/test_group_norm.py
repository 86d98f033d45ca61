"""group-norm-as-layer-norm and the per-channel shift rule of batchnorm-to-conv.

Float: GroupNormalization (opset 21; onnx deprecates opset 18's per-group form),
InstanceNormalization of rank 3, 4 and 5, and torch's GroupNorm export (Reshape, InstanceNormalization
with unit affine, Reshape, Mul, Add) against onnxruntime.  Overlay: a conv - norm - SiLU - conv block
of each kind runs wholly on the device, simulator == integer reference bit for bit, close to float.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.driver import compile_to_ir
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.passes.registry import PRE_QUANT_PIPELINE

RNG = np.random.default_rng(3)


def _model(nodes, x_shape, inits, opset):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vec(n, around=0.0, rng=RNG):
    return (around + 0.3 * rng.standard_normal(n)).astype(np.float32)


def _group_norm(shape, groups, opset):
    return _model([helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, epsilon=1e-4)],
                  shape, {"s": _vec(shape[1], 1.0), "b": _vec(shape[1])}, opset)


def _instance_norm(shape):
    c = shape[1]
    return _model([helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])], shape,
                  {"s": _vec(c, 1.0), "b": _vec(c)}, 17)


def _torch_group_norm(shape, groups):
    """What torch.onnx exports for nn.GroupNorm: the statistics by InstanceNormalization over [N, G, -1]."""
    n, c = shape[:2]
    nodes = [helper.make_node("Reshape", ["x", "grouped"], ["g"]),
             helper.make_node("InstanceNormalization", ["g", "ones", "zeros"], ["gn"], epsilon=1e-5),
             helper.make_node("Reshape", ["gn", "back"], ["xn"]),
             helper.make_node("Mul", ["xn", "gamma"], ["xs"]),
             helper.make_node("Add", ["xs", "beta"], ["y"])]
    channel = (c,) + (1,) * (len(shape) - 2)
    inits = {"grouped": np.array([n, groups, -1], np.int64), "back": np.array(shape, np.int64),
             "ones": np.ones(groups, np.float32), "zeros": np.zeros(groups, np.float32),
             "gamma": _vec(c, 1.0).reshape(channel), "beta": _vec(c).reshape(channel)}
    return _model(nodes, shape, inits, 17)


CASES = [("gn21-groups", lambda: _group_norm((1, 8, 5, 6), 4, 21), (1, 8, 5, 6)),
         ("gn21", lambda: _group_norm((2, 6, 7), 3, 21), (2, 6, 7)),
         ("gn21-4d", lambda: _group_norm((1, 12, 4, 4), 12, 21), (1, 12, 4, 4)),
         ("in3", lambda: _instance_norm((2, 4, 9)), (2, 4, 9)),
         ("in4", lambda: _instance_norm((1, 5, 6, 7)), (1, 5, 6, 7)),
         ("in5", lambda: _instance_norm((1, 3, 2, 4, 5)), (1, 3, 2, 4, 5)),
         ("torch-gn", lambda: _torch_group_norm((1, 8, 6, 6), 2), (1, 8, 6, 6))]


@pytest.mark.parametrize("label, build, shape", CASES)
def test_norms_rewritten_match_onnxruntime(label, build, shape):
    model = build()
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)
    kinds = [op.kind for op in module.ops]
    assert "group_norm" not in kinds and "instance_norm" not in kinds and "layer_norm" in kinds
    assert "add" not in kinds  # torch's affine became the depthwise conv's bias
    data = (RNG.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": data})[0]
    got = run_module(module, {"x": data})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _block(norm_nodes, inits, rng):
    """conv 3->8, the norm (input 'a', output 'n'), SiLU, conv 8->4."""
    def w(*s):
        return (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]), *norm_nodes,
             helper.make_node("Sigmoid", ["n"], ["sg"]), helper.make_node("Mul", ["n", "sg"], ["r"]),
             helper.make_node("Conv", ["r", "w1"], ["y"], pads=[1, 1, 1, 1])]
    return _model(nodes, (1, 3, 16, 16), {"w0": w(8, 3, 3, 3), "w1": w(4, 8, 3, 3), **inits}, 21)


BLOCKS = {
    "group": lambda rng: _block([helper.make_node("GroupNormalization", ["a", "s", "b"], ["n"], num_groups=4)],
                                {"s": _vec(8, 1.0, rng=rng), "b": _vec(8, rng=rng)}, rng),
    "instance": lambda rng: _block([helper.make_node("InstanceNormalization", ["a", "s", "b"], ["n"])],
                                   {"s": _vec(8, 1.0, rng=rng), "b": _vec(8, rng=rng)}, rng),
    "torch-group": lambda rng: _block(
        [helper.make_node("Reshape", ["a", "grouped"], ["g"]),
         helper.make_node("InstanceNormalization", ["g", "ones", "zeros"], ["gn"]),
         helper.make_node("Reshape", ["gn", "back"], ["an"]), helper.make_node("Mul", ["an", "gamma"], ["as"]),
         helper.make_node("Add", ["as", "beta"], ["n"])],
        {"grouped": np.array([1, 2, -1], np.int64), "back": np.array([1, 8, 16, 16], np.int64),
         "ones": np.ones(2, np.float32), "zeros": np.zeros(2, np.float32),
         "gamma": _vec(8, 1.0, rng=rng).reshape(8, 1, 1), "beta": _vec(8, rng=rng).reshape(8, 1, 1)}, rng),
}


@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_normalized_blocks_run_wholly_on_the_overlay(kind, tmp_path):
    rng = np.random.default_rng(4)  # its own draws: the outcome must not depend on which tests ran before
    run_wholly_on_the_overlay(BLOCKS[kind](rng), tmp_path, rng, min_sqnr=25)


def test_a_long_row_norm_runs_on_the_device(tmp_path):
    """An instance norm over 128x128 maps: one row of 16,384 elements.  Its per-row statistics take
    row-sized vbuf slots, not tile-sized ones, so the row fits the vector buffer (it ran on the host
    when each of its 9 live values took a whole row)."""
    rng = np.random.default_rng(6)

    def w(*s):
        return (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("InstanceNormalization", ["a", "s", "b"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Conv", ["r", "w1"], ["y"], pads=[1, 1, 1, 1])]
    model = _model(nodes, (1, 3, 128, 128), {"w0": w(4, 3, 3, 3), "w1": w(2, 4, 3, 3),
                                             "s": (1 + 0.2 * rng.standard_normal(4)).astype(np.float32),
                                             "b": (0.2 * rng.standard_normal(4)).astype(np.float32)}, 17)
    run_wholly_on_the_overlay(model, tmp_path, rng, min_sqnr=25, calib_samples=4)
