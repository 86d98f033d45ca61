"""Tiny ONNX models for frontend tests, and the check that tcc computes what onnxruntime does.

    case("Conv", X(1, 3, 8, 8), C(weights), strides=[2, 2])

builds a one-node model whose ``X`` operands are graph inputs fed with seeded random data and
whose ``C`` operands are initializers; ``None`` leaves an optional input out.
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tcc.frontend import import_onnx
from tcc.ir import verify
from tcc.ir.interpreter import run_module

TOLERANCE = 1e-5
_rng_seed = itertools.count()


class X:
    """A graph input of the given shape; ``kind`` picks the data: normal, positive or int."""

    def __init__(self, *shape, kind: str = "normal", dtype=np.float32):
        self.shape, self.kind, self.dtype = shape, kind, np.dtype(dtype)

    def data(self, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "positive":
            return rng.uniform(0.5, 2.0, self.shape).astype(self.dtype)
        if self.kind == "int":
            return rng.integers(-3, 4, self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)


class C:
    """An initializer."""

    def __init__(self, value, dtype=None):
        self.value = np.asarray(value, dtype=dtype)


def rand(*shape, positive: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    if positive:
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def ir_version_for(opset: int) -> int:
    """The IR version onnxruntime expects with an opset (onnx.helper defaults to the newest)."""
    return 8 if opset <= 18 else 9 if opset <= 20 else 10


def make_model(op_type: str, operands, attrs: dict, opset: int = 13, outputs: int = 1,
               node_name: str = "node") -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(next(_rng_seed))
    names, inputs, inits, feeds = [], [], [], {}
    for i, operand in enumerate(operands):
        if operand is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(operand, X):
            feeds[name] = operand.data(rng)
            elem = helper.np_dtype_to_tensor_dtype(operand.dtype)
            inputs.append(helper.make_tensor_value_info(name, elem, list(operand.shape)))
        else:
            inits.append(onnx.numpy_helper.from_array(operand.value, name))
    out_names = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op_type, names, out_names, name=node_name, **attrs)
    graph = helper.make_graph([node], f"{op_type.lower()}_test", inputs,
                              [onnx.ValueInfoProto(name=n) for n in out_names], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version_for(opset)
    return with_output_types(model), feeds


def with_output_types(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its graph outputs typed by ONNX shape inference (onnxruntime wants types)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    del inferred.graph.value_info[:]
    return inferred


def case(op_type: str, *operands, opset: int = 13, outputs: int = 1, id: str | None = None, **attrs):
    """A pytest param holding (model, feeds) for one node."""
    model, feeds = make_model(op_type, operands, attrs, opset, outputs)
    label = id or "-".join([op_type, f"op{opset}"] + [f"{k}={v}" for k, v in attrs.items()
                                                        if not isinstance(v, onnx.TensorProto)])
    return pytest.param(model, feeds, id=label)


def run_onnxruntime(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected.astype(np.float64)).max(initial=0.0)), 1e-30)
    return float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0)) / scale


def assert_matches_onnxruntime(model: onnx.ModelProto, feeds: dict, tolerance: float = TOLERANCE) -> None:
    module = import_onnx(model)
    verify(module)
    assert_close(module, model, feeds, tolerance)


def assert_close(module, model: onnx.ModelProto, feeds: dict, tolerance: float = TOLERANCE) -> None:
    """The imported ``module`` computes what onnxruntime computes for ``model``."""
    expected = run_onnxruntime(model, feeds)
    got = run_module(module, feeds)
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        have = got[name]
        assert have.shape == want.shape, f"{name}: shape {have.shape} != onnxruntime {want.shape}"
        assert have.dtype == want.dtype, f"{name}: dtype {have.dtype} != onnxruntime {want.dtype}"
        if np.issubdtype(want.dtype, np.floating):
            error = relative_error(have, want)
            assert error <= tolerance, f"{name}: max|diff|/max|ref| = {error:.2e}"
        else:
            np.testing.assert_array_equal(have, want)


def graph_model(nodes, inputs, outputs, initializers=(), opset=13, functions=()):
    graph = helper.make_graph(nodes, "g", inputs, [onnx.ValueInfoProto(name=o) for o in outputs],
                              list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(f.domain, 1) for f in functions], functions=list(functions))
    model.ir_version = ir_version_for(opset)
    return with_output_types(model)


def tensor(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def float_input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
