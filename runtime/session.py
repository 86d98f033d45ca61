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

from tcc.backends.artifact import Artifact, ArtifactError, from_physical, physical_axes
from tcc.backends.artifact_metadata import boundary_chain, boundary_json, boundary_ops
from tcc.ir import Module, Op, TensorType, Value, parse_module
from tcc.ir import numerics
from tcc.ir.dtypes import DTYPES, cast, itemsize, to_numpy
from tcc.ir.errors import InterpreterError, IRParseError
from tcc.ir.interpreter import evaluate_op, run_module
from tcc.ir.schema import SchemaError

from .report import plain

#: Simulated memory (DRAM and buffers, once per sample) a batch's machine may take: a larger batch
#: runs as several (VGG-19's 150 MB image: 3 samples at a time; the reduced real models: hundreds).
BATCH_BYTES = 1 << 29
#: Samples simulated at once at most: past about 16 a batch's intermediates (conv windows, bf16 lanes)
#: outgrow the caches and a sample costs more (bench/batch.py: ConvNeXt-T, MobileNetV3, EfficientNet-B0,
#: DenseNet-121 and ViT-tiny per sample at N = 16 below N = 32).
BATCH_SAMPLES = 16
MACHINES_KEPT = 2  # machines (one per batch size, each with its prepared program) a session keeps


def _buffers() -> tuple[str, ...]:
    from tcc.isa.table import BUFFERS

    return BUFFERS


@dataclass
class NodeArg:
    """Name, shape and element type of a model input or output (onnxruntime's NodeArg)."""

    name: str
    shape: list[int]
    type: str


class ModelIO:
    """onnxruntime-style introspection of a session's model inputs and outputs (``interface``)."""

    module: Module

    @property
    def interface(self) -> Module:
        """A module whose inputs and outputs are the model's: the whole IR unless a session has a lighter one."""
        return self.module

    def get_inputs(self) -> list[NodeArg]:
        return [NodeArg(v.name, list(v.type.shape), v.type.dtype) for v in self.interface.inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [NodeArg(n, list(v.type.shape), v.type.dtype) for n, v in self.interface.outputs]

    def output_names(self) -> list[str]:
        return [o.name for o in self.get_outputs()]

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        """The outputs named (None: all) in order.  A batch: every input holding N > 1 samples
        stacked on axis 0 where the model's shape has 1 runs as N samples (``run_batch``), and each
        output stacks the samples' on its axis 0 likewise (concatenated where the model's output has
        1 there, on a new leading axis otherwise)."""
        names = output_names or self.output_names()
        samples = self.batch_samples(feeds)
        if samples is None:
            outputs = self.run_dict(feeds)
            return [outputs[n] for n in names]
        runs = self.run_batch(samples)
        return [stacked_outputs([run[n] for run in runs]) for n in names]

    def run_dict(self, feeds: dict) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run_batch(self, samples: list[dict]) -> list[dict[str, np.ndarray]]:
        """``run_dict`` of each sample's feeds, in order (a session that simulates several samples at
        once overrides it)."""
        return [self.run_dict(sample) for sample in samples]

    def batch_samples(self, feeds: dict) -> list[dict] | None:
        """One feeds dict per sample when ``feeds`` is a batch (see ``run``), else None."""
        count = None
        for arg in self.get_inputs():
            x = feeds.get(arg.name)
            shape = getattr(x, "shape", None)
            if (shape is None or not arg.shape or arg.shape[0] != 1 or len(shape) != len(arg.shape)
                    or list(shape[1:]) != list(arg.shape[1:]) or shape[0] < 2 or count not in (None, shape[0])):
                return None
            count = shape[0]
        if count is None:
            return None
        return [{k: v[i:i + 1] if k in self._input_names() else v for k, v in feeds.items()} for i in range(count)]

    def _input_names(self) -> set[str]:
        return {arg.name for arg in self.get_inputs()}


def stacked_outputs(samples: list[np.ndarray]) -> np.ndarray:
    """The samples' outputs on one leading axis: concatenated when each has 1 there, else stacked."""
    if all(np.ndim(x) and np.shape(x)[0] == 1 for x in samples):
        return np.concatenate(samples)
    return np.stack(samples)


class Session(ModelIO):
    """An overlay artifact on the simulator.  Opening reads only the metadata, the program and the
    DRAM image; the IR text is parsed when asked for (``module``, ``run_reference``)."""

    def __init__(self, artifact):
        self.artifact = artifact if isinstance(artifact, Artifact) else Artifact.load(artifact)
        meta = self.artifact.metadata
        from tcc.isa.target import TargetConfig

        self.target = TargetConfig.from_dict(meta["target"], "artifact target")
        self._interface = Module(meta.get("model", "model"))  # the model's inputs and outputs, no ops
        self._boundary: dict[tuple[str, str], list[Op]] = {}  # (group, name) -> ops run on the host, in order
        self._device_types: dict[tuple[str, str], TensorType] = {}
        try:
            self._read_io_entries(meta)
        except SchemaError as exc:
            raise ArtifactError(f"malformed artifact metadata: {exc}; recompile the model") from None
        self._module: Module | None = None
        self._result = None  # the last run's RunResult, shared with the prepared program (last_result copies it)
        self._result_copy = None
        # machines by batch size, each made by its first run and then kept: it holds the prepared
        # program (a plan is per machine, so per batch size), and a multi-core artifact's cores over its DRAM
        self._machines: dict[int, tuple] = {}
        self._machine = None  # the last run's machine

    def _read_io_entries(self, meta: dict) -> None:
        """The host-side value and boundary op of every input/output entry, checked against the
        entry's device type, layout and address."""
        for group in ("inputs", "outputs"):
            for entry in meta[group]:
                where, name = f"{group} entry {entry['name']!r}", entry["name"]
                if entry["dtype"] not in DTYPES:
                    raise SchemaError(f"{where}: dtype {entry['dtype']!r} is not an element type")
                device = TensorType(tuple(entry["shape"]), entry["dtype"])
                host = device
                if entry["boundary"] is not None:
                    if group == "inputs":
                        ops = boundary_ops(entry["boundary"], name, entry["value"], where)
                        (operand,) = ops[0].operands
                        host, produced = operand.type, ops[-1].result.type
                    else:
                        ops = boundary_ops(entry["boundary"], entry["value"], name, where)
                        (operand,) = ops[0].operands
                        host, produced = ops[-1].result.type, operand.type
                    if not produced.same_layout(device):
                        raise SchemaError(f"{where}: {entry['dtype']}{entry['shape']} does not match its boundary "
                                          f"op's {produced}")
                    self._boundary[group, name] = ops
                self._device_types[group, name] = device
                if group == "inputs":
                    self._interface.add_input(name, host)
                else:
                    self._interface.add_output(name, Value(name, host))
                if sorted(entry["perm"]) != list(range(len(device.shape))):
                    raise SchemaError(f"{where}: perm {entry['perm']} is not a permutation of "
                                      f"{len(device.shape)} axes")
                end = entry["address"] + device.size * itemsize(device.dtype)
                if end > meta["dram_bytes"]:
                    raise SchemaError(f"{where}: bytes {entry['address']}..{end} run past dram_bytes "
                                      f"{meta['dram_bytes']}")

    @property
    def interface(self) -> Module:
        return self._interface

    @property
    def module(self) -> Module:  # type: ignore[override]
        """The artifact's quantized IR (parsed on first use, and checked against the metadata)."""
        if self._module is None:
            try:
                module = parse_module(self.artifact.ir_text, "<artifact IR>")
            except IRParseError as exc:
                raise ArtifactError(f"the artifact's IR does not parse: {exc}") from None
            self._check_io_entries(module, self.artifact.metadata)
            self._module = module
        return self._module

    @staticmethod
    def _check_io_entries(module: Module, meta: dict) -> None:
        """Each input/output entry of the metadata must describe a value of the artifact's IR the way
        the compiler wrote it: names, boundary op and type."""
        def bad(group: str, entry: dict, what: str) -> ArtifactError:
            return ArtifactError(f"malformed artifact metadata: {group} entry {entry['name']!r}: {what}; "
                                 "recompile the model")

        values = {v.name: v for v in module.values()}
        for group, boundary in (("inputs", {v.name: v for v in module.inputs}), ("outputs", dict(module.outputs))):
            names = [entry["name"] for entry in meta[group]]
            if sorted(names) != sorted(boundary):
                raise ArtifactError(f"malformed artifact metadata: {group} {names} do not match the IR's "
                                    f"{group} {sorted(boundary)}; recompile the model")
            for entry in meta[group]:
                value = values.get(entry["value"])
                if value is None:
                    raise bad(group, entry, f"value %{entry['value']} is not in the artifact's IR")
                host = boundary[entry["name"]]
                descs = boundary_chain(entry["boundary"])
                chain: list[Op] = []  # the IR's ops between the device value and the model's input/output
                end = value if group == "inputs" else host
                while len(chain) < len(descs) and end.producer is not None and len(end.producer.operands) == 1:
                    chain.insert(0, end.producer)
                    (end,) = end.producer.operands
                start = value if group == "outputs" else host
                linked = [boundary_json(op) for op in chain] == descs and end is start
                if not linked:
                    kind = None if not descs else descs[0]["kind"] if len(descs) == 1 else [d["kind"] for d in descs]
                    raise bad(group, entry, f"value %{entry['value']} and boundary op {kind!r} "
                                            f"do not connect to the IR's {group[:-1]} {entry['name']!r}")
                t = value.type
                if entry["shape"] != list(t.shape) or entry["dtype"] != t.dtype:
                    raise bad(group, entry, f"{entry['dtype']}{entry['shape']} does not match "
                                            f"%{value.name} : {t.dtype}{list(t.shape)} in the IR")

    @property
    def last_result(self):
        """The last run's RunResult (None before a run), copied when first asked for: the caller may change it."""
        if self._result_copy is None and self._result is not None:
            self._result_copy = self._result.copy()
        return self._result_copy

    # -- running -------------------------------------------------------------------------------
    def _check_inputs(self, feeds: dict) -> dict:
        from tcc.ir.interpreter.interpreter import bind_inputs

        env = bind_inputs(self.interface, feeds)
        return {v.name: env[id(v)] for v in self.interface.inputs}

    def run_dict(self, feeds: dict, progress=None) -> dict[str, np.ndarray]:
        """Run on the simulator; ``progress(pc, program_length)`` as for ``Machine.run``."""
        return self._simulate([feeds], progress)[0]

    def run_batch(self, samples: list[dict]) -> list[dict[str, np.ndarray]]:
        """The samples simulated together: each instruction executes on all of them at once (a
        machine of N samples, isa/simulator/machine.py), in runs of at most BATCH_SAMPLES samples
        and BATCH_BYTES of simulated memory.  The RunResult (``last_result``) is one sample's run: cycles and counters
        depend on the program only."""
        per_sample = self.artifact.metadata["dram_bytes"] + sum(self.target.buffer_bytes(b) for b in _buffers())
        size = max(1, min(len(samples), BATCH_SAMPLES, BATCH_BYTES // per_sample))
        outputs: list[dict[str, np.ndarray]] = []
        for start in range(0, len(samples), size):
            outputs += self._simulate(samples[start:start + size])
        return outputs

    def _simulate(self, samples: list[dict], progress=None) -> list[dict[str, np.ndarray]]:
        from tcc.isa.simulator import Machine, Multicore, native
        from tcc.isa.simulator.machine import DRAM

        feeds = [self._check_inputs(sample) for sample in samples]
        meta = self.artifact.metadata
        multicore = "core_entries" in meta  # the cores write dram unnoted: load the whole image
        batch = len(feeds)
        kept = self._machines.pop(batch, None)  # (re-inserted last: the most recently used)
        if kept is None:
            if len(self._machines) >= MACHINES_KEPT:
                del self._machines[next(iter(self._machines))]
            machine = Machine(self.target, np.zeros((batch, meta["dram_bytes"]), np.uint8))
            kept = (machine, Multicore(self.target, machine.batch_dram) if multicore else None)
        self._machines[batch] = kept
        machine, cores = kept
        self._machine = machine
        # a run restores only what the last one wrote, and of that only what it reads before writing
        if multicore or not machine.reload_image(machine.first_reads(self.artifact.program)):
            machine.load_image(np.frombuffer(self.artifact.dram_image, np.uint8))
        dram = machine.batch_dram
        written = []
        for entry in meta["inputs"]:
            for i, sample in enumerate(feeds):
                device = cast(self._device_array(entry, sample[entry["name"]]), entry["dtype"])  # (little-endian)
                physical = physical_axes(device, entry["perm"])
                size = device.nbytes
                target = dram[i, entry["address"]:entry["address"] + size].view(device.dtype).reshape(physical.shape)
                if not native.copy(target, physical):  # (the elements in physical order, straight into DRAM)
                    target[...] = physical
            written.append((DRAM, entry["address"], entry["address"] + size))
        machine.note_written(tuple(written))
        if cores is not None:  # one stream per core over the machine's DRAM, the cores kept prepared
            self._result = cores.run(self.artifact.program, meta["core_entries"])
        else:
            self._result = machine.run(self.artifact.program, progress=progress, shared=True)
        self._result_copy = None
        outputs = []
        for i in range(batch):
            out = {}
            for entry in meta["outputs"]:
                t = self._device_types["outputs", entry["name"]]
                raw = dram[i, entry["address"]:entry["address"] + t.size * itemsize(t.dtype)].tobytes()
                out[entry["name"]] = self._host_output(entry, raw, t)
            outputs.append(out)
        return outputs

    def run_reference(self, feeds: dict) -> dict[str, np.ndarray]:
        """The integer reference interpreter on the artifact's quantized IR."""
        return run_module(self.module, feeds)

    def performance_report(self) -> dict:
        """Per-layer counters and roofline of the last run (runtime/report.py)."""
        from .report import build_report

        return build_report(self.artifact.metadata, self._result)

    @staticmethod
    def format_performance(report: dict, top: int | None = None, style=plain) -> str:
        """The report as a table; ``style(text, fg=..., bold=...)`` colours it (click.style on a terminal)."""
        from .report import format_report

        return format_report(report, top, style)

    # -- host conversions ----------------------------------------------------------------------
    def _device_array(self, entry, array: np.ndarray) -> np.ndarray:
        for op in self._boundary.get(("inputs", entry["name"]), ()):
            array = self._convert_input(op, array)
        return array

    @staticmethod
    def _convert_input(op: Op, array: np.ndarray) -> np.ndarray:
        """One boundary op of an input, run on the host."""
        quant = op.result.type.quant
        if op.kind == "quantize" and op.x.type.dtype == "f32" and op.result.type.dtype == "i8" and quant is not None \
                and quant.axis is None and quant.format is None:
            # float32 to int8 by one scale in one C pass (the simulator's kernels; numerics.quantize_affine's
            # rule, which the reference's interpreter runs): 60 us of numpy passes a run for a 96x96 image
            from tcc.isa.simulator import native

            fast = native.quantize(array, quant.scale[0], quant.zero_point[0])
            if fast is not None:
                return fast
        return evaluate_op(op, [array])[0]

    def _host_output(self, entry, raw: bytes, t: TensorType) -> np.ndarray:
        ops = self._boundary.get(("outputs", entry["name"]), [])
        if t.dtype == "bf16" and len(ops) == 1 and ops[0].kind == "cast" and ops[0].result.type.dtype == "f32":
            # bf16 -> f32 is exact (a float32's high half): numerics' rule, without importing ml_dtypes
            return from_physical(numerics.from_bf16(np.frombuffer(raw, "<u2")), t.shape, entry["perm"])
        array = from_physical(np.frombuffer(raw, to_numpy(t.dtype)), t.shape, entry["perm"])
        try:
            for op in ops:
                array = evaluate_op(op, [array])[0]
        except InterpreterError as exc:
            raise ArtifactError(f"output {entry['name']!r}: {exc}") from None
        return array
