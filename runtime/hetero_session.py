"""Run a heterogeneous artifact: device partitions on the simulator, host partitions on the host.

    session = tcc.runtime.open_session("model.tcc")     # a HeteroSession for a TCCHETR file
    outputs = session.run(None, {"input": x})

Partitions run in the artifact's order; tensors pass between them by value name, exactly as the
quantized IR types them, so the whole run equals the integer reference interpreter on the
artifact's IR whenever each device partition equals it (the simulator's bit-exactness).  Host
partitions run on the reference interpreter; their wall time is measured, the device's time is
the simulator's cycle count.
"""
from __future__ import annotations

import time

import numpy as np

from tcc.backends.artifact import Artifact, ArtifactError, HeteroArtifact
from tcc.ir import Module, TensorType, Value, parse_module
from tcc.ir.errors import IRParseError
from tcc.ir.host_tail import HostTail, parse_host_tail
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.interpreter import bind_inputs

from .report import plain
from .session import ModelIO, NodeArg, Session


def _parse(text: str, what: str):
    try:
        return parse_module(text, what)
    except IRParseError as exc:
        raise ArtifactError(f"the artifact's {what} does not parse: {exc}") from None


def _parse_tail(text: str, what: str) -> HostTail:
    try:
        return parse_host_tail(text, 1, what)
    except ValueError as exc:
        raise ArtifactError(f"the artifact's {what} (host tail) does not parse: {exc}") from None


class HeteroSession(ModelIO):
    def __init__(self, artifact):
        self.artifact = artifact if isinstance(artifact, HeteroArtifact) else HeteroArtifact.load(artifact)
        meta = self.artifact.metadata
        self._module: Module | None = None
        self.parts = []
        for i, (entry, part) in enumerate(zip(meta["partitions"], self.artifact.parts)):
            if entry.get("graph") == "onnx":  # a host tail runs as ONNX (the frontend, and onnx, only then)
                from tcc.frontend import FrontendError
                from tcc.frontend.host_tail import tail_runner

                try:
                    self.parts.append(tail_runner(_parse_tail(part, f"partition {i}")))
                except FrontendError as exc:
                    raise ArtifactError(f"partition {i}: {exc}") from None
                continue
            runner = Session(part) if isinstance(part, Artifact) else _parse(part, f"partition {i} IR")
            module = runner.interface if isinstance(runner, Session) else runner
            names = ([v.name for v in module.inputs], [n for n, _ in module.outputs])
            if names != (entry["inputs"], entry["outputs"]):
                raise ArtifactError(f"malformed artifact metadata: partition {i} lists inputs/outputs "
                                    f"{entry['inputs']}/{entry['outputs']}, its IR has {names[0]}/{names[1]}; "
                                    "recompile the model")
            self.parts.append(runner)
        self._interface = self._partition_interface(meta)
        self._check_dataflow(meta)
        self.last_run: list[dict] | None = None
        self._device_results: dict = {}  # partition index -> its Session (which keeps its last run's result)

    @property
    def module(self) -> Module:  # type: ignore[override]
        """The whole model's quantized IR (parsed on first use: the reference and a host tail's outputs need it)."""
        if self._module is None:
            self._module = _parse(self.artifact.ir_text, "IR")
        return self._module

    @property
    def interface(self) -> Module:
        return self.module if self._interface is None else self._interface

    def _partition_interface(self, meta: dict) -> Module | None:
        """The model's inputs and outputs typed by the partitions that read and make them, so that
        opening does not parse the whole IR; None when a host tail makes outputs or an input is
        read by no partition (the whole IR then gives them)."""
        typed: dict[str, TensorType] = {}
        for entry, runner in zip(meta["partitions"], self.parts):
            if entry.get("graph") == "onnx":
                return None
            io = runner.interface if isinstance(runner, Session) else runner
            for v in io.inputs:
                typed.setdefault(v.name, v.type)
            typed.update((name, v.type) for name, v in io.outputs)  # the last maker's type
        interface = Module(meta.get("model", "model"))
        for entry in meta["inputs"]:
            if entry["value"] not in typed or entry["name"] != entry["value"]:
                return None
            interface.add_input(entry["name"], typed[entry["value"]])
        for entry in meta["outputs"]:
            if entry["value"] not in typed:
                return None
            interface.add_output(entry["name"], Value(entry["value"], typed[entry["value"]]))
        return interface

    def _check_dataflow(self, meta: dict) -> None:
        """Every partition input must be a model input or an earlier partition's output, and every
        model output must be made by some partition (or be an input)."""
        available = {entry["value"] for entry in meta["inputs"]}
        if sorted(available) != sorted(v.name for v in self.interface.inputs):
            raise ArtifactError("malformed artifact metadata: inputs do not match the IR's; recompile the model")
        for i, entry in enumerate(meta["partitions"]):
            missing = [n for n in entry["inputs"] if n not in available]
            if missing:
                raise ArtifactError(f"malformed artifact metadata: partition {i} reads %{missing[0]} before "
                                    "any partition makes it; recompile the model")
            available.update(entry["outputs"])
        missing = [e["value"] for e in meta["outputs"] if e["value"] not in available]
        if missing:
            raise ArtifactError(f"malformed artifact metadata: no partition makes output value %{missing[0]}; "
                                "recompile the model")

    def get_outputs(self) -> list[NodeArg]:
        """The model's outputs; those of a host tail have shapes known only at run time (dims as
        the ONNX model names them, or None)."""
        if self._interface is not None or self.module.host_tail is None:
            return super().get_outputs()
        from tcc.frontend.host_tail import tail_runner
        from tcc.frontend.onnx_types import tcc_dtype

        tail = self.module.host_tail
        made = {n: v for n, v in self.module.outputs}
        declared = {o.name: o for o in tail_runner(tail).graph.output}
        args = []
        for entry in self.artifact.metadata["outputs"]:
            name = entry["name"]
            if name in made:
                args.append(NodeArg(name, list(made[name].type.shape), made[name].type.dtype))
            else:
                t = declared[name].type.tensor_type
                dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
                args.append(NodeArg(name, dims, tcc_dtype(t.elem_type) or "?"))
        return args

    # -- running -------------------------------------------------------------------------------
    def output_names(self) -> list[str]:
        return [e["name"] for e in self.artifact.metadata["outputs"]]

    def run_dict(self, feeds: dict, progress=None) -> dict[str, np.ndarray]:
        """Run every partition in order; ``progress(done, partitions)`` after each one."""
        return self._run([feeds], progress)[0]

    def run_batch(self, samples: list[dict]) -> list[dict[str, np.ndarray]]:
        """The samples through every partition in order: a device partition simulates them together
        (``Session.run_batch``), a host partition runs them one by one."""
        return self._run(samples)

    def _run(self, samples: list[dict], progress=None) -> list[dict[str, np.ndarray]]:
        envs = []
        for feeds in samples:
            bound = bind_inputs(self.interface, feeds)
            envs.append({v.name: bound[id(v)] for v in self.interface.inputs})
        meta = self.artifact.metadata
        stats, results = [], {}
        for i, (entry, runner) in enumerate(zip(meta["partitions"], self.parts)):
            given = [{n: env[n] for n in entry["inputs"]} for env in envs]
            start = time.perf_counter()
            if entry.get("graph") == "onnx":  # a host tail: its inputs by its own (ONNX) names
                made = [runner.run(dict(zip(runner.input_names, g.values()))) for g in given]
            elif isinstance(runner, Session):
                made = runner.run_batch(given)
            else:
                made = [run_module(runner, g) for g in given]
            seconds = (time.perf_counter() - start) / len(samples)  # one sample's share
            for env, outputs in zip(envs, made):
                env.update(outputs)
            stat = {"index": i, "kind": entry["kind"], "nodes": len(entry["nodes"]),
                    "bytes_in": int(sum(np.asarray(a).nbytes for a in given[0].values())),
                    "bytes_out": int(sum(np.asarray(a).nbytes for a in made[0].values())),
                    "wall_seconds": seconds}
            if isinstance(runner, Session):  # its report is built when asked for (performance_report)
                results[i] = runner
            stats.append(stat)
            if progress is not None:
                progress(i + 1, len(self.parts))
        self.last_run, self._device_results = stats, results
        return [{e["name"]: np.array(env[e["value"]], order="C") for e in meta["outputs"]} for env in envs]

    def run_reference(self, feeds: dict) -> dict[str, np.ndarray]:
        """The integer reference interpreter on the whole model's quantized IR (then its host tail)."""
        from tcc.frontend import run_model

        return run_model(self.module, feeds)

    def performance_report(self) -> dict:
        """Per partition: where the time goes (device cycles, host wall time) and bytes crossing."""
        from .hetero_report import build_hetero_report

        stats = self.last_run
        if stats is not None:
            stats = [dict(stat, device=self._device_results[i].performance_report())
                     if i in self._device_results else stat for i, stat in enumerate(stats)]
        return build_hetero_report(self.artifact.metadata, stats)

    @staticmethod
    def format_performance(report: dict, top: int | None = None, style=plain) -> str:
        from .hetero_report import format_hetero_report

        return format_hetero_report(report, top, style)
