"""Shared builders for the sparse target tests: quantized + annotated modules, compiled once."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EVENTS = EXAMPLES / "events"
DIGITS = EXAMPLES / "digits"


def annotated(model: Path, calib: Path, mode: str, shapes=None):
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    passes = DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib), sparse_mode=mode) + (
        f"annotate-sparsity{{calib={calib},mode={mode}}}",)
    module, _ = compile_to_ir(str(model), shapes or {}, passes)
    return module


@functools.lru_cache(maxsize=None)
def compiled(name: str, mode: str):
    """(SparseArtifact, SparseSession) of an example model in a mode."""
    from tcc.backends.sparse import compile_sparse
    from tcc.runtime.sparse_session import SparseSession

    model, calib = {"events": (EVENTS / "events_dense.onnx", EVENTS / "events_calib.npz"),
                    "digits": (DIGITS / "digits_cnn.onnx", DIGITS / "digits_calib.npz")}[name]
    artifact = compile_sparse(annotated(model, calib, mode), mode)
    return artifact, SparseSession(artifact)


def masked(x: np.ndarray, density: float, seed: int) -> np.ndarray:
    """x with each site kept with probability ``density`` (all channels of a dropped site zeroed)."""
    rng = np.random.default_rng(seed)
    keep = rng.random((x.shape[0], 1) + x.shape[2:]) < density
    return (x * keep).astype(np.float32)


def squeezenet_small(tmp_path, size: int = 64):
    """The light-zoo SqueezeNet with random weights and its input bound to size x size (it ends
    in a global pool, so any size runs), its quantized IR annotated in exact mode, and one input."""
    return zoo_small(tmp_path, "squeezenet", size, "exact")


def zoo_small(tmp_path, name: str, size: int, mode: str):
    """A light-zoo CNN with random weights and its input bound to size x size (a multiple of 32
    for ResNet-50 and Inception v2, whose final 7x7 average pool is resized to cover the smaller
    final map, as it covers the 7x7 one at 224), quantized and annotated in ``mode``; returns (module, input name,
    one N(0, 1) input)."""
    import onnx

    import light_zoo

    model = light_zoo.randomized(name)
    inits = {i.name for i in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    for axis in (2, 3):
        inp.type.tensor_type.shape.dim[axis].dim_value = size
    for node in model.graph.node:
        kernel = [a for a in node.attribute if a.name == "kernel_shape"]
        if node.op_type == "AveragePool" and list(kernel[0].ints) == [7, 7]:  # the final pool over 7x7
            kernel[0].ints[:] = [size // 32] * 2
    del model.graph.value_info[:]
    for out in model.graph.output:
        del out.type.tensor_type.shape.dim[:]
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(0)
    calib = tmp_path / f"{name}_calib.npz"
    np.savez(calib, **{inp.name: rng.standard_normal((4, 3, size, size)).astype(np.float32)})
    return annotated(path, calib, mode), inp.name, rng.standard_normal((1, 3, size, size))


def pooling_cnn(tmp_path, mode: str, size: int = 16):
    """A small CNN with the pooling the zoo models use: 2x2 stride-2 and 3x3 'same' average pools
    (DenseNet, Inception), a 4x4 average pool over the whole map (ResNet-50's 7x7 at 224) and a
    1x1 conv classifier on the pooled site (DenseNet).  Random weights; quantized and annotated
    in ``mode``; returns (module, input name, one input)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)

    def conv(name, x, cin, cout, k):
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = rng.uniform(-0.2, 0.2, cout).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")])
        return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, kernel_shape=[k, k],
                                pads=[k // 2] * 4)

    inits = []
    last = size // 2
    nodes = [conv("c1", "x", 3, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("AveragePool", ["r1"], ["p1"], name="pool2x2", kernel_shape=[2, 2], strides=[2, 2]),
             conv("c2", "p1", 8, 16, 3), helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("AveragePool", ["r2"], ["p2"], name="pool3x3", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("AveragePool", ["p2"], ["p3"], name="poolmap", kernel_shape=[last, last]),
             conv("fc", "p3", 16, 10, 1)]
    graph = helper.make_graph(nodes, "pooling_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   [1, 3, size, size])],
                              [helper.make_tensor_value_info("fc", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "pooling_cnn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    np.savez(tmp_path / "calib.npz", x=masked(rng.standard_normal((4, 3, size, size)), 0.5, seed=6))
    return annotated(path, tmp_path / "calib.npz", mode), "x", rng.standard_normal((1, 3, size, size))


def flatten_fc_cnn(tmp_path, size: int = 8):
    """conv 3x3 -> ReLU -> max pool 2x2 -> Flatten -> Gemm (VGG's and AlexNet's classifier on a
    flattened spatial map), random weights, quantized and annotated in exact mode (a flatten of a
    sparse map has no submanifold semantics); returns (module, input name, one input)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    half = size // 2
    inits = [numpy_helper.from_array((rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32), "cw"),
             numpy_helper.from_array(rng.uniform(-0.2, 0.2, 6).astype(np.float32), "cb"),
             numpy_helper.from_array((rng.standard_normal((5, 6 * half * half)) * 0.1).astype(np.float32), "fw"),
             numpy_helper.from_array(rng.uniform(-0.2, 0.2, 5).astype(np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "flatten_fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "flatten_fc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    np.savez(tmp_path / "calib.npz", x=masked(rng.standard_normal((4, 3, size, size)), 0.5, seed=8))
    return annotated(path, tmp_path / "calib.npz", "exact"), "x", rng.standard_normal((1, 3, size, size))


def streaming_cnn(tmp_path, size: int, mode: str = "submanifold", density: float = 0.03):
    """An event-camera style CNN whose input size is free (it ends in a global pool): conv 3x3
    (2 -> 8), conv 3x3 stride 2 (8 -> 16), a residual block (depthwise 3x3, pointwise) and a
    classifier; random weights, quantized and annotated at ``size`` x ``size`` on sparse frames
    of ``density``; returns (module, input name, one frame)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    inits = []

    def conv(name, x, cin, cout, k, stride=1, group=1):
        w = (rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")])
        return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, kernel_shape=[k, k],
                                pads=[k // 2] * 4, strides=[stride] * 2, group=group)

    inits.append(numpy_helper.from_array((rng.standard_normal((10, 16)) * 0.3).astype(np.float32), "fw"))
    nodes = [conv("c1", "x", 2, 8, 3), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             conv("c2", "r1", 8, 16, 3, stride=2), helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             conv("dw", "r2", 16, 16, 3, group=16), helper.make_node("Relu", ["dw"], ["r3"], name="relu3"),
             conv("pw", "r3", 16, 16, 1), helper.make_node("Add", ["r2", "pw"], ["a"], name="residual"),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "streaming_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     [1, 2, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / f"streaming_cnn_{size}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    calib = tmp_path / f"calib_{size}.npz"
    np.savez(calib, x=masked(np.abs(rng.standard_normal((2, 2, size, size))), density, seed=12))
    frame = masked(np.abs(rng.standard_normal((1, 2, size, size))), density, seed=13)
    return annotated(path, calib, mode), "x", frame
