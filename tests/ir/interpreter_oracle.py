"""Shared by the interpreter tests: run one IR op and the equivalent ONNX node in onnxruntime, compare."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import helper, numpy_helper

from tcc.ir import Builder, Module, TensorType
from tcc.ir.dtypes import from_numpy
from tcc.ir.interpreter import run_module

OPSET = 20


def one_op_module(kind: str, attrs: dict, arrays: list[np.ndarray], num_results: int = 1) -> Module:
    """A module whose inputs x0, x1, ... feed one op of ``kind``; its results are outputs y0, y1, ..."""
    module = Module("single_op")
    operands = [module.add_input(f"x{i}", TensorType(a.shape, from_numpy(a.dtype))) for i, a in enumerate(arrays)]
    op = Builder(module, loc="the_op").create(kind, operands, attrs)
    assert len(op.results) == num_results
    for i, r in enumerate(op.results):
        module.add_output(f"y{i}", r)
    return module


def run_ort(nodes, arrays: list[np.ndarray], initializers: dict | None = None,
            opset: int = OPSET) -> list[np.ndarray]:
    """Run ONNX node(s) whose data inputs are x0, x1, ... (graph inputs); returns the last node's outputs."""
    nodes = nodes if isinstance(nodes, list) else [nodes]
    initializers = initializers or {}
    graph_inputs = [helper.make_tensor_value_info(f"x{i}", helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                    for i, a in enumerate(arrays)]
    outputs = [helper.make_empty_tensor_value_info(name) for name in nodes[-1].output]
    graph = helper.make_graph(nodes, "single_node", graph_inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {f"x{i}": a for i, a in enumerate(arrays)})


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max |theirs| (absolute when theirs is all zeros)."""
    if ours.size == 0:
        return 0.0
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max()
    scale = np.abs(theirs.astype(np.float64)).max()
    return float(diff / scale) if scale > 0 else float(diff)


def check_against_ort(kind: str, attrs: dict, arrays: list[np.ndarray], node,
                      initializers: dict | None = None, tol: float = 1e-5, exact: bool = False,
                      opset: int = OPSET) -> None:
    """Our result for ``kind`` equals onnxruntime's for ``node`` (or a list of nodes ending in the
    outputs y0, ...): same shape and dtype, values within ``tol`` relative error."""
    last = node[-1] if isinstance(node, list) else node
    module = one_op_module(kind, attrs, arrays, len(last.output))
    ours = run_module(module, {f"x{i}": a for i, a in enumerate(arrays)})
    theirs = run_ort(node, arrays, initializers, opset)
    for i, expected in enumerate(theirs):
        got = ours[f"y{i}"]
        assert got.shape == expected.shape, f"result {i}: shape {got.shape} vs onnxruntime {expected.shape}"
        assert got.dtype == expected.dtype, f"result {i}: dtype {got.dtype} vs onnxruntime {expected.dtype}"
        if exact:
            np.testing.assert_array_equal(got, expected, err_msg=f"result {i}")
        else:
            err = relative_error(got, expected)
            assert err <= tol, f"result {i}: relative error {err:.3g} > {tol:g}"


def rand(rng: np.random.Generator, *shape: int, dtype=np.float32) -> np.ndarray:
    return np.asarray(rng.standard_normal(shape), dtype=dtype)
