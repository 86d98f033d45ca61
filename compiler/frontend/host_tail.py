"""Running a module's host tail (``tail_cut.py`` made it) once its inputs are known.

``run_model`` runs a module and then its tail: the tail runs in segments, each imported by
this frontend with the shapes and shape-setting values known by then and run on tcc's float
reference interpreter; the ops whose output size is a function of their data (NonZero, Unique,
NonMaxSuppression) run between segments on ``ir/interpreter/kernels_dynamic.py``.  Imported
segments are cached by the shapes and shape-setting values they were imported with.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tcc.ir import Module
from tcc.ir.host_tail import HostTail
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.kernels_dynamic import non_max_suppression, nonzero, unique

from .dynamic_shapes import DATA_DEPENDENT, dynamic_nodes, outer_reads, shape_inputs
from .errors import FrontendError, node_label
from .importer import import_onnx

#: Imported segments kept per tail (distinct shapes or shape-setting values make new ones).
SEGMENT_CACHE_SIZE = 64
#: A while loop still running after this many iterations is stopped with an error.
MAX_HOST_ITERATIONS = 1_000_000


def run_model(module: Module, feeds: Mapping[str, np.ndarray],
              run_prefix: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]] | None = None
              ) -> dict[str, np.ndarray]:
    """The whole model's outputs: ``module`` (``run_prefix``, default the reference interpreter),
    then its host tail, if any."""
    made = run_prefix(feeds) if run_prefix else run_module(module, feeds)
    tail = module.host_tail
    if tail is None:
        return made
    available = {**feeds, **made}
    finished = tail_runner(tail).run({n: available[n] for n in tail.inputs})
    return {n: finished[n] if n in finished else made[n] for n in tail.outputs}


@functools.lru_cache(maxsize=8)
def tail_runner(tail: HostTail) -> TailRunner:
    return TailRunner(tail)


class TailRunner:
    """Runs one host tail; keeps the segments it imported."""

    def __init__(self, tail: HostTail):
        try:
            self.model = onnx.load_from_string(tail.onnx)
        except Exception as exc:  # protobuf's DecodeError and friends
            raise FrontendError(f"the host tail's ONNX graph does not decode ({type(exc).__name__}); "
                                "recompile the model") from None
        self.graph = self.model.graph
        self.input_names = list(tail.inputs)
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.segments: OrderedDict[tuple, Module] = OrderedDict()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        known: dict[str, np.ndarray] = {**self.constants, **{n: np.asarray(a) for n, a in feeds.items()}}
        remaining = list(self.graph.node)
        while remaining:
            bound = set(self.constants) | {n for node in remaining for n in shape_inputs(node) if n in known}
            late = dynamic_nodes(remaining, bound.__contains__, lambda node: ())
            static = [node for i, node in enumerate(remaining) if i not in late]
            if static:
                later = {n for i in late for n in outer_reads(remaining[i])} | {o.name for o in self.graph.output}
                known.update(self._run_segment(static, known, bound, later))
                remaining = [remaining[i] for i in sorted(late)]
            else:  # the first node has all its inputs: one whose output size its data decides
                node = remaining.pop(0)
                if node.op_type == "Loop":
                    made = self._run_loop(node, known)
                else:
                    made = run_data_dependent(node, [known[n] if n else None for n in node.input])
                known.update((name, array) for name, array in zip(node.output, made) if name)
        return {o.name: known[o.name] for o in self.graph.output}

    def _run_segment(self, nodes: list[onnx.NodeProto], known: dict[str, np.ndarray], bound: set[str],
                     later: set[str]) -> dict[str, np.ndarray]:
        made = {o for node in nodes for o in node.output if o}
        reads = sorted({n for node in nodes for n in outer_reads(node)} & set(known))
        inputs = [n for n in reads if n not in bound]
        constants = [n for n in reads if n in bound]
        key = (tuple(id(node) for node in nodes),
               tuple((n, known[n].shape, known[n].dtype.str) for n in inputs),
               tuple((n, known[n].dtype.str, known[n].shape, known[n].tobytes()) for n in constants))
        module = self.segments.get(key)
        if module is None:
            module = self._import_segment(nodes, known, inputs, constants, sorted(made & later))
            self.segments[key] = module
            if len(self.segments) > SEGMENT_CACHE_SIZE:
                self.segments.popitem(last=False)
        else:
            self.segments.move_to_end(key)
        return run_module(module, {n: known[n] for n in inputs})

    def _run_loop(self, node: onnx.NodeProto, known: dict[str, np.ndarray]) -> list[np.ndarray]:
        """A Loop iteration by iteration: its body is imported as a model of its own (with a host
        tail if it needs one) for the shapes it is given, and run until the condition is false or
        the trip count is reached; scan outputs stacked along a new axis 0."""
        body = next(a.g for a in node.attribute if a.name == "body")
        trips = int(known[node.input[0]].reshape(-1)[0]) if node.input[0] else None
        running = bool(known[node.input[1]].reshape(-1)[0]) if len(node.input) > 1 and node.input[1] else True
        carried = [known[n] for n in node.input[2:]]
        inside = {vi.name for vi in body.input} | {t.name for t in body.initializer} | \
            {o for inner in body.node for o in inner.output}
        outer = sorted((outer_reads(node) - set(node.input) - inside) & set(known))
        scans: list[list[np.ndarray]] = [[] for _ in range(len(body.output) - 1 - len(carried))]
        i = 0
        while running and (trips is None or i < trips):
            if i == MAX_HOST_ITERATIONS:
                raise FrontendError(f"node {node_label(node)!r} (Loop): still running after {i} iterations")
            feeds = dict(zip([vi.name for vi in body.input], [np.array(i, np.int64), np.array(running)] + carried))
            feeds.update((n, known[n]) for n in outer)
            out = run_model(self._body_module(body, feeds), feeds)
            running = bool(np.asarray(out[body.output[0].name]).reshape(-1)[0])
            carried = [out[o.name] for o in body.output[1:1 + len(carried)]]
            for j, o in enumerate(body.output[1 + len(carried):]):
                scans[j].append(out[o.name])
            i += 1
        declared = body.output[1 + len(carried):]
        return carried + [np.stack(parts) if parts else _no_iterations(o) for parts, o in zip(scans, declared)]

    def _body_module(self, body: onnx.GraphProto, feeds: dict[str, np.ndarray]) -> Module:
        key = (id(body), tuple((n, a.shape, a.dtype.str) for n, a in feeds.items()))
        module = self.segments.get(key)
        if module is None:
            graph = helper.make_graph(
                body.node, f"{self.graph.name}.loop_body",
                [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                 for n, a in feeds.items()],
                [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None) for o in body.output],
                list(body.initializer))
            model = helper.make_model(graph, opset_imports=list(self.model.opset_import),
                                      ir_version=self.model.ir_version)
            module = self.segments[key] = import_onnx(model, name=self.graph.name, host_tail=True)
            if len(self.segments) > SEGMENT_CACHE_SIZE:
                self.segments.popitem(last=False)
        return module

    def _import_segment(self, nodes, known, inputs, constants, outputs) -> Module:
        graph = helper.make_graph(
            nodes, f"{self.graph.name}.segment",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(known[n].dtype), known[n].shape)
             for n in inputs],
            [], [numpy_helper.from_array(known[n], n) for n in constants])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import), ir_version=self.model.ir_version)
        elem = _element_types(model)
        model.graph.output.extend(helper.make_tensor_value_info(n, elem.get(n, 0), None) for n in outputs)
        return import_onnx(model, name=self.graph.name)


def _no_iterations(output: onnx.ValueInfoProto) -> np.ndarray:
    """A scan output of a loop that ran zero times: [0, *the body's declared shape] when it
    declares one, else [0]."""
    t = output.type.tensor_type
    dims = [d.dim_value for d in t.shape.dim] if all(d.HasField("dim_value") for d in t.shape.dim) else []
    dtype = helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else np.float32
    return np.zeros((0, *dims), dtype)


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX elem_type by ONNX type inference (names it cannot type are absent)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference problems surface again, with the frontend's message, on import
        return {}
    return {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info
            if vi.type.HasField("tensor_type")}


def run_data_dependent(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """One NonZero, Unique or NonMaxSuppression node on concrete inputs."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "NonZero":
        return [nonzero(inputs[0])]
    if node.op_type == "Unique":
        return list(unique(inputs[0], attrs.get("axis"), bool(attrs.get("sorted", 1))))
    if node.op_type == "NonMaxSuppression":
        boxes, scores, *rest = inputs + [None] * (5 - len(inputs))
        max_per_class, iou, score = rest
        return [non_max_suppression(boxes, scores, _scalar(max_per_class, 0), _scalar(iou, np.float32(0)),
                                    _scalar(score, None), int(attrs.get("center_point_box", 0)))]
    if node.op_type in DATA_DEPENDENT:
        raise FrontendError(f"node {node_label(node)!r} ({node.op_type}): no host kernel")
    raise FrontendError(f"node {node_label(node)!r} ({node.op_type}): its output shape is still unknown once "
                        "its inputs are (a shape computed inside a loop body?); tcc cannot run it")


def _scalar(array, default):
    """The first element of an optional scalar input, in its own type (thresholds compare in the
    boxes' precision)."""
    if array is None or np.asarray(array).size == 0:
        return default
    return np.asarray(array).reshape(-1)[0]
