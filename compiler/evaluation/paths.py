"""The executions ``tcc eval`` compares, opened once per worker, and what one sample yields.

* ``float``: onnxruntime on the original ONNX model;
* ``reference``: tcc's integer reference interpreter on the artifact's quantized IR (or a ``.tir``);
* ``sim``: the artifact on its simulator (overlay or sparse).

A worker returns a small ``Record`` per sample (top-5 classes, SQNR against float, simulator ==
reference, seconds per path, optionally per-layer error sums), never the output tensors, so results
cross process and machine boundaries cheaply.  Everything in a record is computed from that sample
alone, so records do not depend on which worker made them.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import EvalError, Sample
from .engine import map_chunks

PATHS = ("float", "reference", "sim")
TOP_K = 5


@dataclass(frozen=True)
class EvalSpec:
    """What every worker opens: file contents, so workers need no shared file system."""

    paths: tuple[str, ...]
    model: bytes | None = None  # the ONNX model (float path, per-layer drift)
    artifact: bytes | None = None  # a .tcc artifact, or the text of a .tir module
    artifact_is_ir: bool = False
    output: str | None = None  # the output compared (default: the first)
    per_layer: bool = False
    threads: int = 0  # onnxruntime intra-op threads (0: its default)


@dataclass
class Record:
    index: int
    label: int | None
    top: dict = field(default_factory=dict)  # path -> top-5 class indices (best first)
    sqnr_db: dict = field(default_factory=dict)  # path -> SQNR of its output against float's
    seconds: dict = field(default_factory=dict)  # path -> wall time of the run
    sim_equal: bool | None = None  # simulator output == reference output, bit for bit
    layers: dict = field(default_factory=dict)  # compared value -> (sum f**2, sum (f - q)**2)


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(sum ref**2 / sum (ref - other)**2) in float64; inf when equal."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.sum((ref - np.asarray(other, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def top_classes(output: np.ndarray) -> list[int]:
    flat = np.asarray(output, np.float64).reshape(-1)
    k = min(TOP_K, flat.size)
    return [int(i) for i in np.argsort(-flat, kind="stable")[:k]]


class Runners:
    """The opened executions of one worker."""

    def __init__(self, spec: EvalSpec):
        self.spec = spec
        self.session: Any = None
        self.module: Any = None
        self.float_session: Any = None
        if "float" in spec.paths or spec.per_layer:
            self._open_float()
        if spec.artifact is not None:
            self._open_artifact()
        self.output = spec.output or self._default_output()
        self.layer_run = self._open_layers() if spec.per_layer else None

    def _open_float(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.spec.threads:
            options.intra_op_num_threads = self.spec.threads
        self.float_session = ort.InferenceSession(self.spec.model, options, providers=["CPUExecutionProvider"])
        self.float_outputs = [o.name for o in self.float_session.get_outputs()]

    def _open_artifact(self) -> None:
        from tcc.ir import parse_module

        if self.spec.artifact_is_ir:
            self.module = parse_module(self.spec.artifact.decode(), "<eval IR>")
            return
        from tcc.runtime import open_session

        fd, path = tempfile.mkstemp(suffix=".tcc")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.spec.artifact)
            self.session = open_session(path)
        finally:
            os.unlink(path)
        self.module = self.session.module

    def _default_output(self) -> str:
        if self.module is not None:
            return self.module.outputs[0][0]
        return self.float_outputs[0]

    def _open_layers(self):
        from tcc.verify import compared_values, exposed_float_run, float_name

        self.layer_values = compared_values(self.module)
        self.layer_names = {v.name for v in self.layer_values}
        return exposed_float_run(self.spec.model, {float_name(v) for v in self.layer_values})

    def run_chunk(self, start: int, samples: list[Sample]) -> list[Record]:
        """One Record per sample of a chunk, the simulator running the chunk as one batch (each
        instruction on all its samples at once: ``run_batch``); its seconds are each sample's share."""
        simulated: list = [None] * len(samples)
        if "sim" in self.spec.paths and len(samples) > 1:
            begin = time.perf_counter()
            outputs = self.session.run_batch([s.feeds for s in samples])
            share = (time.perf_counter() - begin) / len(samples)
            simulated = [(out[self.output], share) for out in outputs]
        return [self.run(start + i, s, simulated[i]) for i, s in enumerate(samples)]

    def run(self, index: int, sample: Sample, simulated: tuple | None = None) -> Record:
        """The sample's Record; ``simulated``: its sim output and seconds when the chunk ran already."""
        record = Record(index, sample.label)
        outputs = {}
        for path in self.spec.paths:
            start = time.perf_counter()
            if path == "sim" and simulated is not None:
                outputs[path], record.seconds[path] = simulated
            else:
                outputs[path] = self._run_path(path, sample.feeds)
                record.seconds[path] = time.perf_counter() - start
            record.top[path] = top_classes(outputs[path])
        if "float" in outputs:
            for path, out in outputs.items():
                if path != "float":
                    record.sqnr_db[path] = sqnr_db(outputs["float"], out)
        if "sim" in outputs and "reference" in outputs:
            record.sim_equal = bool(np.array_equal(outputs["sim"], outputs["reference"]))
        if self.layer_run is not None:
            record.layers = self._layer_sums(sample.feeds)
        return record

    def _run_path(self, path: str, feeds: dict) -> np.ndarray:
        if path == "float":
            from tcc.verify import onnxruntime_feeds

            wanted = self.output if self.output in self.float_outputs else self.float_outputs[0]
            (out,) = self.float_session.run([wanted], onnxruntime_feeds(self.float_session, feeds))
            return out
        if path == "reference":
            if self.session is not None:
                return self.session.run_reference(feeds)[self.output]
            from tcc.frontend import run_model

            return run_model(self.module, feeds)[self.output]
        (out,) = self.session.run([self.output], feeds)
        return out

    def _layer_sums(self, feeds: dict) -> dict:
        from tcc.verify import _observed, layer_error_sums

        ref = _observed(self.module, feeds, self.layer_names)
        return layer_error_sums(self.layer_values, self.layer_run(feeds), ref)


def check_paths(spec: EvalSpec) -> None:
    """Refuse a combination of paths and files that cannot run, before any worker starts."""
    unknown = [p for p in spec.paths if p not in PATHS]
    if unknown or not spec.paths:
        raise EvalError(f"--paths {','.join(spec.paths)}: choose from {', '.join(PATHS)}")
    if "float" in spec.paths and spec.model is None:
        raise EvalError("the float path needs the ONNX model")
    if ("reference" in spec.paths or "sim" in spec.paths) and spec.artifact is None:
        raise EvalError("the reference and sim paths need --artifact (a .tcc or .tir)")
    if "sim" in spec.paths and spec.artifact_is_ir:
        raise EvalError("a .tir module has no simulator; compile it with -t overlay, or use --paths float,reference")
    if spec.per_layer and (spec.artifact is None or spec.model is None):
        raise EvalError("--per-layer compares the artifact's layers with the ONNX model's: give both")


class EvalTask:
    """Evaluation: one Record per sample through the opened runners."""

    def __init__(self, spec: EvalSpec, opened: Runners | None = None):
        self.spec, self.runners = spec, opened

    def __getstate__(self):
        return {"spec": self.spec, "runners": None}

    def open(self) -> None:
        if self.runners is None:
            self.runners = Runners(self.spec)

    def run(self, start: int, samples: list[Sample]) -> list[Record]:
        assert self.runners is not None
        return self.runners.run_chunk(start, samples)


def run_records(spec: EvalSpec, dataset, count: int, workers: int = 1, ray_address: str | None = None,
                progress=None, opened: Runners | None = None, adaptive: bool = False, chosen=None):
    """Yield one Record per sample 0..count-1, in order; ``progress(done)`` after each chunk.
    ``opened``: runners already open in this process, used when running here; ``adaptive`` and
    ``chosen``: see engine.map_chunks."""
    done = 0
    for records in map_chunks(EvalTask(spec, opened), dataset, count, workers, ray_address,
                              adaptive=adaptive, chosen=chosen):
        yield from records
        done += len(records)
        if progress is not None:
            progress(done)
