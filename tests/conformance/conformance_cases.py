"""ONNX's own operator conformance cases, run through tcc's frontend, float pipeline and reference
interpreter (and, with ``quant="int8"``, the int8 quantizer and integer interpreter).

Two sources, both inside the ``onnx`` wheel:
- ``onnx.backend.test.case.node.collect_testcases()``: one- or few-node models with inputs and
  expected outputs (about 1,900 cases, among them the ``_expanded`` function bodies);
- ``onnx/backend/test/data/{simple,pytorch-converted,pytorch-operator}``: model directories with
  ``test_data_set_N/{input,output}_K.pb``.

A case's small *parameter* inputs (shapes, axes, pads, scales, sizes, zero points, scalar
bounds...) become initializers, as an exported model carries them; the data inputs stay inputs.
"""
from __future__ import annotations

import functools
import glob
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import int8_tolerance

DATA_DIRS = ("simple", "pytorch-converted", "pytorch-operator")

PASS, WRONG, UNSUPPORTED, CRASH = "pass", "wrong", "unsupported", "crash"


@dataclass
class Case:
    name: str
    source: str  # "node" or one of DATA_DIRS
    model: onnx.ModelProto
    data_sets: list[tuple[list, list]]  # (inputs, expected outputs), in graph input/output order
    rtol: float = 1e-3
    atol: float = 1e-7


@dataclass
class Outcome:
    status: str  # PASS, WRONG, UNSUPPORTED or CRASH
    detail: str = ""
    sqnr_db: float | None = None  # int8 runs: worst output's SQNR against the expected values
    within_rounding: bool = False  # int8 runs: passed only with the inputs' rounding slack (int8_tolerance)


# -- collecting --------------------------------------------------------------------------------
@functools.cache
def all_cases() -> dict[str, Case]:
    """Every case by name (node cases first, then the model directories)."""
    from onnx.backend.test.case.node import collect_testcases

    cases: dict[str, Case] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        node_cases = collect_testcases()
    for tc in node_cases:
        sets = [([_array(a) for a in i], [_array(a) for a in o]) for i, o in tc.data_sets]
        cases[tc.name] = Case(tc.name, "node", tc.model, sets, tc.rtol, tc.atol)
    root = Path(onnx.__file__).parent / "backend" / "test" / "data"
    for source in DATA_DIRS:
        for directory in sorted((root / source).iterdir()):
            if (directory / "model.onnx").is_file():
                cases[directory.name] = _LazyDirCase(directory.name, source, directory)
    return cases


def _array(value):
    """A data-set entry as numpy (tensors given as TensorProto: bf16, float8...); None for
    sequences, maps and optionals (out of scope)."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.ndarray):
        return value
    if np.isscalar(value):
        return np.asarray(value)
    return None


class _LazyDirCase(Case):
    """A model-directory case whose protobufs are read on first use."""

    def __init__(self, name: str, source: str, directory: Path):
        self.name, self.source, self.directory = name, source, directory
        self.rtol, self.atol = 1e-3, 1e-7

    @functools.cached_property
    def model(self) -> onnx.ModelProto:
        return onnx.load(str(self.directory / "model.onnx"))

    @functools.cached_property
    def data_sets(self) -> list[tuple[list, list]]:
        sets = []
        for data in sorted(glob.glob(str(self.directory / "test_data_set_*"))):
            sets.append((_read_pbs(data, "input"), _read_pbs(data, "output")))
        return sets


def _read_pbs(directory: str, kind: str) -> list:
    arrays = []
    files = sorted(glob.glob(os.path.join(directory, f"{kind}_*.pb")),
                   key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1)))
    for path in files:
        tensor = onnx.TensorProto()
        with open(path, "rb") as f:
            tensor.ParseFromString(f.read())
        try:
            arrays.append(numpy_helper.to_array(tensor))
        except Exception:  # a sequence or optional stored as a TensorProto fails to decode: out of scope
            arrays.append(None)
    return arrays


# -- scope -------------------------------------------------------------------------------------
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                        "Multinomial", "Bernoulli"})
# The loss ops of the default domain compute training objectives (label inputs, reductions over a
# batch); inference graphs do not carry them.
TRAINING_OPS = frozenset({"Gradient", "Adagrad", "Adam", "Momentum", "SoftmaxCrossEntropyLoss",
                          "NegativeLogLikelihoodLoss"})
STRING_OPS = frozenset({"StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch"})


def out_of_scope_reason(case: Case) -> str | None:
    """Why a case is outside what tcc compiles (None: in scope).  The classes are the issue's:
    string tensors, sequence/optional/map types, training ops, random generators, the
    ai.onnx.ml domain, ImageDecoder."""
    graphs = list(_graphs(case.model.graph))
    nodes = [node for g in graphs for node in g.node]
    domains = {node.domain for node in nodes} | {imp.domain for imp in case.model.opset_import
                                                 if imp.domain not in ("", "ai.onnx")}
    op_types = {node.op_type for node in nodes}
    if "ai.onnx.ml" in domains:
        return "ai.onnx.ml domain"
    others = domains - {"", "ai.onnx", "ai.onnx.preview.training"}
    if others:
        return f"not the default domain ({', '.join(sorted(others))})"
    if ("ai.onnx.preview.training" in domains or op_types & TRAINING_OPS or case.name.startswith("test_gradient")
            or case.name.startswith(("test_sce_", "test_nllloss_"))):
        return "training ops"
    if "ImageDecoder" in op_types:
        return "ImageDecoder"
    if op_types & RANDOM_OPS or case.name.startswith("test_training_dropout"):
        return "random generators"
    kinds = set()
    for g in graphs:
        for vi in (*g.input, *g.output, *g.value_info):
            kinds |= _type_kinds(vi.type)
        for tensor in g.initializer:
            if tensor.data_type == onnx.TensorProto.STRING:
                kinds.add("string")
    for node in nodes:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == onnx.TensorProto.STRING:
                kinds.add("string")
            if attr.type in (onnx.AttributeProto.STRING, onnx.AttributeProto.STRINGS) and attr.name in (
                    "value_string", "value_strings"):
                kinds.add("string")
            if attr.type == onnx.AttributeProto.TYPE_PROTO or attr.type == onnx.AttributeProto.TYPE_PROTOS:
                kinds.add("optional")
    if op_types & STRING_OPS or "string" in kinds:
        return "string tensors"
    if kinds & {"sequence", "optional", "map", "sparse"} or any(
            op.startswith(("Sequence", "Optional")) or op in ("SplitToSequence", "ConcatFromSequence")
            for op in op_types):
        return "sequence/optional/map types"
    return None


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _type_kinds(type_proto: onnx.TypeProto) -> set[str]:
    which = type_proto.WhichOneof("value")
    if which == "tensor_type":
        return {"string"} if type_proto.tensor_type.elem_type == onnx.TensorProto.STRING else set()
    if which == "sequence_type":
        return {"sequence"}
    if which == "optional_type":
        return {"optional"}
    if which == "map_type":
        return {"map"}
    if which == "sparse_tensor_type":
        return {"sparse"}
    return set()


# -- preparing a case as an exported model carries it -----------------------------------------
def parameter_inputs(case: Case) -> set[int]:
    """Indices of graph inputs that are parameters, not data: never the first input; a later
    input when its operand type differs from the op's first operand's (shapes, axes, indices,
    scales, sizes, repeats...) or when it holds at most one element (bounds, zero points,
    constant values).  Only node cases: model directories already carry their initializers."""
    if case.source != "node" or not case.data_sets:
        return set()
    graph = case.model.graph
    base = _base_node(case)
    if base is None:
        return set()
    inputs, _ = case.data_sets[0]
    formal = _formal_types(base, case.model)
    params = set()
    for k, vi in enumerate(graph.input):
        if k == 0 or k >= len(inputs) or not isinstance(inputs[k], np.ndarray):
            continue
        slots = [j for j, name in enumerate(base.input) if name == vi.name]
        if not slots or slots[0] == 0:
            continue
        slot_type = formal[min(slots[0], len(formal) - 1)] if formal else None
        if inputs[k].size <= 1 or (formal and slot_type != formal[0]):
            params.add(k)
    return params


def _base_node(case: Case) -> onnx.NodeProto | None:
    """The tested node: the only node of a node case, or the one its ``_expanded`` twin tests."""
    if not case.name.endswith("_expanded") and "_expanded_ver" not in case.name:
        return case.model.graph.node[0] if len(case.model.graph.node) == 1 else None
    base = re.sub(r"_expanded(_ver\d+)?$", "", case.name)
    twin = all_cases().get(base)
    if twin is None or len(twin.model.graph.node) != 1:
        return None
    return twin.model.graph.node[0]


def _formal_types(node: onnx.NodeProto, model: onnx.ModelProto) -> list[str]:
    versions = {imp.domain: imp.version for imp in model.opset_import}
    version = versions.get(node.domain, versions.get("ai.onnx", 1))
    try:
        schema = onnx.defs.get_schema(node.op_type, version, node.domain)
    except Exception:  # no schema: keep every input as an input
        return []
    return [p.type_str for p in schema.inputs]


def data_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph input names that are not initializers (old models list their weights as inputs too)."""
    initialized = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name not in initialized]


def prepared_model(case: Case) -> tuple[onnx.ModelProto, list[int]]:
    """The case's model with parameter inputs turned into initializers; the indices of the inputs
    left as inputs."""
    params = parameter_inputs(case)
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    if not params:
        return model, list(range(len(data_inputs(model))))
    inputs, _ = case.data_sets[0]
    # Before IR version 4 every initializer is also a graph input (the checker insists).
    kept = [vi for k, vi in enumerate(model.graph.input) if k not in params or model.ir_version < 4]
    for k in sorted(params):
        name = model.graph.input[k].name
        model.graph.initializer.append(numpy_helper.from_array(inputs[k], name))
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return model, [k for k in range(len(case.model.graph.input)) if k not in params]


# -- running -----------------------------------------------------------------------------------
def run_case(case: Case, quant: str | None = None) -> Outcome:
    """Run one case through tcc and compare with ONNX's expected outputs.

    Float: every output within the case's tolerance (``rtol``, ``atol``, like ONNX's backend
    runner) with the expected element type.  int8 (``quant="int8"``): calibrated on the case's own
    inputs; float outputs within a loose tolerance (int8_tolerance.py), integer and bool outputs
    exact, and the worst output's SQNR reported.
    """
    from tcc.ir.errors import InternalError, TccError
    from tcc.frontend.errors import FrontendError

    reason = out_of_scope_reason(case)
    if reason:
        return Outcome(UNSUPPORTED, f"out of scope: {reason}")
    try:
        model, kept = prepared_model(case)
        worst = math.inf
        slacked = False
        graph_inputs = data_inputs(case.model)
        for inputs, expected in case.data_sets:
            feeds = {graph_inputs[k]: inputs[k] for k in kept}
            actual = _run_tcc(model, feeds, quant)
            names = [o.name for o in case.model.graph.output]
            slack: dict[str, np.ndarray] | None = None
            for name, want in zip(names, expected):
                problem, sqnr = _compare(name, actual.get(name), want, case, quant)
                if problem and quant:  # a steep function: allow what its inputs' rounding moves it by
                    if slack is None:
                        slack = int8_tolerance.rounding_slack(lambda f: _run_tcc(model, f, None), feeds, names)
                    problem, sqnr = _compare(name, actual.get(name), want, case, quant, slack.get(name))
                    slacked = slacked or not problem
                if problem:
                    return Outcome(WRONG, problem, sqnr)
                if sqnr is not None:
                    worst = min(worst, sqnr)
        return Outcome(PASS, "", worst if quant and worst != math.inf else None, slacked)
    except FrontendError as exc:
        return Outcome(UNSUPPORTED, _first_line(exc))
    except InternalError as exc:
        return Outcome(CRASH, _first_line(exc))
    except TccError as exc:
        return Outcome(CRASH, f"{type(exc).__name__}: {_first_line(exc)}")
    except Exception as exc:  # anything else escaping tcc is a crash
        return Outcome(CRASH, f"{type(exc).__name__}: {_first_line(exc)}")


def _run_tcc(model: onnx.ModelProto, feeds: dict, quant: str | None) -> dict:
    from tcc.frontend import import_onnx, run_model
    from tcc.passes import DEFAULT_FLOAT_PIPELINE, PassManager, parse_pipeline

    with warnings.catch_warnings():  # opset 1-6 models are converted with a note
        warnings.simplefilter("ignore")
        module = import_onnx(model, host_tail=True)
    PassManager(parse_pipeline(DEFAULT_FLOAT_PIPELINE)).run(module)
    if quant:
        module = _quantize(module, feeds, quant)
    with np.errstate(all="ignore"):
        return run_model(module, feeds)


def _quantize(module, feeds: dict, quant: str):
    from tcc.driver import quantization_pipeline
    from tcc.passes import PassManager, parse_pipeline

    if not feeds:  # nothing computed at run time: nothing to calibrate or quantize
        return module
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, **{name: calibration_sample(a)[None] for name, a in feeds.items()})
        PassManager(parse_pipeline(quantization_pipeline(str(calib), quant=quant))).run(module)
    return module


def calibration_sample(array) -> np.ndarray:
    """A case's input as calibration data: tcc calibrates on finite values only (a policy: one Inf
    makes every range after it garbage), so the +-Inf and NaN that cases of Cast, IsInf, IsNaN, Mod
    feed are set to 0 here -- the run itself gets the input as it is; bf16, float8 and int4 inputs,
    which .npz cannot store, are given widened to float32 / int8 (exact, as tcc's loader requires)."""
    a = np.asarray(array)
    if a.dtype.isbuiltin != 1:  # ml_dtypes' types
        a = a.astype(np.float32) if "float" in a.dtype.name else a.astype(np.int16)
    if a.dtype.kind == "f":
        a = np.where(np.isfinite(a), a, 0).astype(a.dtype)
    return a


def _compare(name: str, actual, expected, case: Case, quant: str | None,
             slack: np.ndarray | None = None) -> tuple[str, float | None]:
    if expected is None:
        return f"output {name!r}: the expected value is not a tensor", None
    if actual is None:
        return f"output {name!r} was not produced", None
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return f"output {name!r}: shape {list(actual.shape)}, expected {list(expected.shape)}", None
    if actual.dtype != expected.dtype:
        return f"output {name!r}: element type {actual.dtype}, expected {expected.dtype}", None
    if expected.dtype.kind not in "fcV":  # ml_dtypes' bf16 and float8 types are kind "V"
        if not np.array_equal(actual, expected):
            bad = int(np.count_nonzero(actual != expected))
            return f"output {name!r}: {bad} of {expected.size} elements differ", None
        return "", None
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    return _compare_floats(name, a, e, case, quant, _rounding_step(expected.dtype), slack)


def _rounding_step(dtype: np.dtype) -> float:
    """Two units of relative rounding of a narrow float type: a graph that rounds every op's result
    to bf16 or f16 (as ONNX semantics and onnxruntime do) differs from expected values computed
    in float32 and rounded once by about that much."""
    if dtype == np.float16:
        return 2 * float(np.finfo(np.float16).eps)
    if dtype.name == "bfloat16":
        return 2 * 2.0 ** -7
    return 0.0


@np.errstate(all="ignore")
def _compare_floats(name: str, a: np.ndarray, e: np.ndarray, case: Case, quant: str | None, step: float,
                    slack: np.ndarray | None = None):
    same_nan = np.isnan(a) == np.isnan(e)
    both_inf = np.isinf(e) & (a == e)
    finite = np.isfinite(e) & np.isfinite(a)
    sqnr = _sqnr(a[finite], e[finite]) if quant else None
    if quant:
        atol, rtol = int8_tolerance.atol_rtol(e, case.atol, max(case.rtol, step))
    else:
        atol, rtol = case.atol, max(case.rtol, step)
    close = np.abs(a - e) <= atol + rtol * np.abs(e) + (0.0 if slack is None else slack)
    ok = same_nan & (close | both_inf | (np.isnan(a) & np.isnan(e)))
    if not ok.all():
        err = np.abs(a - e)[finite]
        rel = (err / np.maximum(np.abs(e[finite]), 1e-30)).max() if err.size else float("nan")
        return (f"output {name!r}: {int((~ok).sum())} of {e.size} elements differ (max abs error "
                f"{err.max() if err.size else float('nan'):.3g}, max rel error {rel:.3g})"), sqnr
    return "", sqnr


def _sqnr(actual: np.ndarray, expected: np.ndarray) -> float:
    noise = float(np.sum((actual - expected) ** 2))
    signal = float(np.sum(expected ** 2))
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal else -math.inf


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
