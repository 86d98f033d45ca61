"""Load a compiled artifact and run it on the simulator, like onnxruntime's InferenceSession.

    session = tcc.runtime.Session("model.tcc")
    outputs = session.run(None, {"input": x})          # list, in output order
    reference = session.run_reference({"input": x})    # the integer reference interpreter

Model-boundary conversions (quantizing float inputs, dequantizing outputs) run on the host by
evaluating the artifact's own IR ops, so they round exactly as the reference does.  Device
tensors are laid out as the artifact's metadata says (``perm``: logical axes in physical order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.backends.artifact import Artifact, ArtifactError, from_physical, to_physical
from tcc.ir import Module, TensorType, parse_module
from tcc.ir.dtypes import cast, to_numpy
from tcc.ir.errors import InterpreterError, IRParseError
from tcc.ir.interpreter import evaluate_op, run_module

from .report import plain


@dataclass
class NodeArg:
    """Name, shape and element type of a model input or output (onnxruntime's NodeArg)."""

    name: str
    shape: list[int]
    type: str


class ModelIO:
    """onnxruntime-style introspection of a session's ``module``."""

    module: Module

    def get_inputs(self) -> list[NodeArg]:
        return [NodeArg(v.name, list(v.type.shape), v.type.dtype) for v in self.module.inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [NodeArg(n, list(v.type.shape), v.type.dtype) for n, v in self.module.outputs]


class Session(ModelIO):
    def __init__(self, artifact):
        self.artifact = artifact if isinstance(artifact, Artifact) else Artifact.load(artifact)
        meta = self.artifact.metadata
        try:
            self.module = parse_module(self.artifact.ir_text, "<artifact IR>")
        except IRParseError as exc:
            raise ArtifactError(f"the artifact's IR does not parse: {exc}") from None
        from tcc.isa.target import TargetConfig

        self.target = TargetConfig.from_dict(meta["target"], "artifact target")
        self._values = {v.name: v for v in self.module.values()}
        self._inputs = {v.name: v for v in self.module.inputs}
        self._outputs = dict(self.module.outputs)
        self._check_io_entries(meta)
        self.last_result = None

    def _check_io_entries(self, meta: dict) -> None:
        """Each input/output entry of the metadata must describe a value of the artifact's IR the way
        the compiler wrote it: names, boundary op, type, layout and an address range inside DRAM."""
        def bad(group: str, entry: dict, what: str) -> ArtifactError:
            return ArtifactError(f"malformed artifact metadata: {group} entry {entry['name']!r}: {what}; "
                                 "recompile the model")

        for group, boundary in (("inputs", self._inputs), ("outputs", self._outputs)):
            names = [entry["name"] for entry in meta[group]]
            if sorted(names) != sorted(boundary):
                raise ArtifactError(f"malformed artifact metadata: {group} {names} do not match the IR's "
                                    f"{group} {sorted(boundary)}; recompile the model")
            for entry in meta[group]:
                value = self._values.get(entry["value"])
                if value is None:
                    raise bad(group, entry, f"value %{entry['value']} is not in the artifact's IR")
                host = boundary[entry["name"]]
                if entry["boundary_op"] is None:
                    linked = value is host
                elif group == "inputs":
                    op = value.producer
                    linked = op is not None and op.kind == entry["boundary_op"] and list(op.operands) == [host]
                else:
                    op = host.producer
                    linked = op is not None and op.kind == entry["boundary_op"] and list(op.operands) == [value]
                if not linked:
                    raise bad(group, entry, f"value %{entry['value']} and boundary op {entry['boundary_op']!r} "
                                            f"do not connect to the IR's {group[:-1]} {entry['name']!r}")
                t = value.type
                if entry["shape"] != list(t.shape) or entry["dtype"] != t.dtype:
                    raise bad(group, entry, f"{entry['dtype']}{entry['shape']} does not match "
                                            f"%{value.name} : {t.dtype}{list(t.shape)} in the IR")
                if sorted(entry["perm"]) != list(range(len(t.shape))):
                    raise bad(group, entry, f"perm {entry['perm']} is not a permutation of {len(t.shape)} axes")
                end = entry["address"] + t.size * to_numpy(t.dtype).itemsize
                if end > meta["dram_bytes"]:
                    raise bad(group, entry, f"bytes {entry['address']}..{end} run past dram_bytes "
                                            f"{meta['dram_bytes']}")

    # -- running -------------------------------------------------------------------------------
    def _check_inputs(self, feeds: dict) -> dict:
        from tcc.ir.interpreter.interpreter import bind_inputs

        env = bind_inputs(self.module, feeds)
        return {v.name: env[id(v)] for v in self.module.inputs}

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        """Run on the simulator; returns the outputs named (None: all) in order."""
        outputs = self.run_dict(feeds)
        names = output_names or [n for n, _ in self.module.outputs]
        return [outputs[n] for n in names]

    def run_dict(self, feeds: dict, progress=None) -> dict[str, np.ndarray]:
        """Run on the simulator; ``progress(pc, program_length)`` as for ``Machine.run``."""
        from tcc.isa.simulator import Machine, run_cores

        feeds = self._check_inputs(feeds)
        meta = self.artifact.metadata
        dram = np.zeros(meta["dram_bytes"], np.uint8)
        image = np.frombuffer(self.artifact.dram_image, np.uint8)
        dram[:image.size] = image
        for entry in meta["inputs"]:
            device = self._device_array(entry, feeds[entry["name"]])
            device = cast(device, self._type(entry).dtype)
            raw = np.frombuffer(to_physical(device, entry["perm"]).tobytes(), np.uint8)
            dram[entry["address"]:entry["address"] + raw.size] = raw
        if "core_entries" in meta:  # one stream per core over shared DRAM
            self.last_result, final = run_cores(self.target, dram, self.artifact.program,
                                                meta["core_entries"])
        else:
            machine = Machine(self.target, dram)
            self.last_result = machine.run(self.artifact.program, progress=progress)
            final = machine.dram
        out = {}
        for entry in meta["outputs"]:
            t = self._type(entry)
            size = t.size * to_numpy(t.dtype).itemsize
            raw = final[entry["address"]:entry["address"] + size]
            device = from_physical(np.frombuffer(raw.tobytes(), to_numpy(t.dtype)), t.shape, entry["perm"])
            out[entry["name"]] = self._host_output(entry, device)
        return out

    def run_reference(self, feeds: dict) -> dict[str, np.ndarray]:
        """The integer reference interpreter on the artifact's quantized IR."""
        return run_module(self.module, feeds)

    def performance_report(self) -> dict:
        """Per-layer counters and roofline of the last run (runtime/report.py)."""
        from .report import build_report

        return build_report(self.artifact.metadata, self.last_result)

    @staticmethod
    def format_performance(report: dict, top: int | None = None, style=plain) -> str:
        """The report as a table; ``style(text, fg=..., bold=...)`` colours it (click.style on a terminal)."""
        from .report import format_report

        return format_report(report, top, style)

    # -- host conversions ----------------------------------------------------------------------
    def _type(self, entry) -> TensorType:
        return self._values[entry["value"]].type

    def _device_array(self, entry, array: np.ndarray) -> np.ndarray:
        value = self._values[entry["value"]]
        if entry["boundary_op"] is None:
            return array
        op = value.producer
        return evaluate_op(op, [array])[0]

    def _host_output(self, entry, device: np.ndarray) -> np.ndarray:
        if entry["boundary_op"] is None:
            return device
        op = self._outputs[entry["name"]].producer
        try:
            return evaluate_op(op, [device])[0]
        except InterpreterError as exc:
            raise ArtifactError(f"output {entry['name']!r}: {exc}") from None
