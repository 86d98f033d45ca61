"""Load a sparse dataflow artifact and run it on the token simulator (isa/tokensim).

    session = SparseSession("model.tcc")
    outputs = session.run(None, {"input": x})         # list, in output order
    reference = session.run_reference({"input": x})   # run_sparse on the artifact's IR, same mode
    print(session.format_performance(session.performance_report()))

Host work (quantizing float inputs, dequantizing and reshaping outputs) evaluates the artifact's
own IR ops, so it rounds exactly as the reference does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tcc.backends.artifact import ArtifactError, SparseArtifact
from tcc.ir import parse_module
from tcc.ir.errors import InterpreterError, IRParseError
from tcc.ir.escape import one_line
from tcc.ir.interpreter import evaluate_op
from tcc.ir.interpreter.interpreter import bind_inputs
from tcc.isa.tokensim import input_tokens, simulate

from .session import ModelIO


class SparseSession(ModelIO):
    def __init__(self, artifact):
        self.artifact = artifact if isinstance(artifact, SparseArtifact) else SparseArtifact.load(artifact)
        try:
            self.module = parse_module(self.artifact.ir_text, "<artifact IR>")
        except IRParseError as exc:
            raise ArtifactError(f"the artifact's IR does not parse: {exc}") from None
        self.metadata = self.artifact.metadata
        self.mode = self.metadata["mode"]
        self._values = {v.name: v for v in self.module.values()}
        self._check_names(artifact if isinstance(artifact, (str, Path)) else "the artifact")
        self.last_result = None

    def _check_names(self, source) -> None:
        """Every IR value the metadata names exists in the artifact's IR."""
        meta = self.metadata
        inputs = {v.name for v in self.module.inputs}
        named = [(f"outputs[{i}].value", o["value"]) for i, o in enumerate(meta["outputs"])]
        named += [(f"streams key {name!r}", name) for name in meta["streams"]]
        named += [(f"host_ops[{i}]", name) for i, name in enumerate(meta["host_ops"])]
        for i, spec in enumerate(meta["modules"]):
            if spec["kind"] == "input":
                named.append((f"modules[{i}].output", spec["output"]))
                if spec["model_input"] not in inputs:
                    raise ArtifactError(f"{source}: malformed artifact metadata: modules[{i}].model_input "
                                              f"{spec['model_input']!r} is not an input of the artifact's IR")
        for where, name in named:
            if name not in self._values:
                raise ArtifactError(f"{source}: malformed artifact metadata: {where} names %{name}, which the "
                                          "artifact's IR does not define")

    def run_dict(self, feeds: dict) -> dict[str, np.ndarray]:
        env = bind_inputs(self.module, feeds)
        arrays = {v.name: env[id(v)] for v in self.module.inputs}
        tokens = {}
        for spec in self.metadata["modules"]:
            if spec["kind"] == "input":
                raw = arrays[spec["model_input"]]
                quantized = self._host_op(spec["output"], [raw])
                tokens[spec["output"]] = input_tokens(spec, quantized, raw)
        self.last_result = simulate(self.metadata, self.artifact.weights, tokens)
        return self._outputs(self.last_result, arrays)

    def values(self) -> dict[str, np.ndarray]:
        """Every stream of the last run as the dense IR value it stands for (background filled in)."""
        out = {}
        for name, stream in self.metadata["streams"].items():
            value = self._values[name]
            dense = self.last_result.streams[stream].densify()
            out[name] = dense.reshape(value.type.shape).astype(_np_dtype(value.type.dtype))
        return out

    def run_reference(self, feeds: dict) -> dict[str, np.ndarray]:
        """The sparse reference interpreter (run_sparse) on the artifact's IR, in the artifact's mode."""
        from tcc.ir.interpreter.sparse import run_sparse

        return run_sparse(self.module, feeds, self.mode).outputs

    def _host_op(self, result_name: str, operands: list[np.ndarray]) -> np.ndarray:
        op = self._values[result_name].producer
        try:
            return evaluate_op(op, operands)[0]
        except InterpreterError as exc:
            raise ArtifactError(f"host op {op.kind} at {op.loc!r}: {exc}") from None

    def _outputs(self, result, arrays: dict) -> dict[str, np.ndarray]:
        env = dict(arrays)
        streams = self.metadata["streams"]

        def value_of(name):
            if name not in env:
                if name in streams:
                    value = self._values[name]
                    dense = result.streams[streams[name]].densify()
                    env[name] = dense.reshape(value.type.shape).astype(np.dtype(_np_dtype(value.type.dtype)))
                else:
                    op = self._values[name].producer
                    env[name] = self._host_op(name, [value_of(v.name) for v in op.operands])
            return env[name]

        return {o["name"]: np.array(value_of(o["value"]), order="C") for o in self.metadata["outputs"]}

    # -- performance -------------------------------------------------------------------------------
    def performance_report(self) -> dict:
        """Per-module tokens, busy cycles, utilisation and the bottleneck of the last run."""
        if self.last_result is None:
            raise ArtifactError("no run yet: call run() or run_dict() before performance_report()")
        r = self.last_result
        cycles = max(r.cycles, 1)
        modules = []
        for c in r.counters:
            entry = c.to_dict()
            entry["utilisation"] = c.busy_cycles / cycles
            modules.append(entry)
        streaming = [c for c in r.counters if c.kind != "fc"]
        bottleneck = max(streaming or r.counters, key=lambda c: c.busy_cycles)
        meta = self.metadata
        return {"model": meta["module_name"], "mode": self.mode, "cycles": r.cycles,
                "seconds": r.cycles / (r.clock_mhz * 1e6), "bottleneck": bottleneck.name,
                "bottleneck_cycles": int(r.latency["bottleneck_cycles"]),
                "floor_cycles": int(r.latency["floor_cycles"]),
                "frames_per_second": r.clock_mhz * 1e6 / max(1, r.latency["bottleneck_cycles"]),
                "resources": {k: meta["dse"][k] for k in ("dsp", "bram18", "lut")},
                "target": meta["target"], "modules": modules}

    @staticmethod
    def format_performance(report: dict, top: int | None = None, style=None) -> str:  # uncoloured: ignores style
        modules = report["modules"]
        if top:
            modules = sorted(modules, key=lambda m: -m["busy_cycles"])[:top]
        head = (f"{'module':<16} {'kind':<10} {'par':>6} {'tokens in':>9} {'out':>6} {'nbrs':>6} "
                f"{'busy':>8} {'util':>6} {'first':>7} {'done':>7}  loc")
        lines = [head, "-" * len(head)]
        for m in modules:
            par = m["parallelism"]
            p = f"{par['pi']}x{par['po']}" if "pi" in par else str(par["p"])
            mark = " *" if m["name"] == report["bottleneck"] else ""
            lines.append(f"{m['name']:<16} {m['kind']:<10} {p:>6} {m['tokens_in']:>9} {m['tokens_out']:>6} "
                         f"{m['neighbours']:>6} {m['busy_cycles']:>8} {100 * m['utilisation']:>5.1f}% "
                         f"{m['first_token']:>7} {m['finished']:>7}  {m['loc']}{mark}")
        lines.append("-" * len(head))
        t, res = report["target"], report["resources"]
        lines.append(f"frame latency {report['cycles']} cycles ({report['seconds'] * 1e6:.2f} us at "
                     f"{t['clock_mhz']:g} MHz; floor {report['floor_cycles']}: the slowest module plus the "
                     f"pipeline depths around it); slowest module {report['bottleneck']} busy "
                     f"{report['bottleneck_cycles']} cycles ({report['frames_per_second']:.0f} frames/s streamed); "
                     f"{res['dsp']}/{t['dsp']} DSP, {res['bram18'] / 2:g}/{t['bram36']} BRAM36, "
                     f"{res['lut']}/{t['lut']} LUT")
        return "\n".join(one_line(line) for line in lines)  # names from the model stay one line each


def _np_dtype(dtype: str) -> str:
    return {"i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32", "i64": "int64"}[dtype]
