"""``tcc verify``: per-layer quantization error and simulator-versus-reference agreement.

For each sample, three executions of the same model are compared tensor by tensor:

* float: onnxruntime on the ONNX model with every intermediate tensor exposed as an output
  (or, when onnxruntime cannot run it, tcc's float reference interpreter on the float IR);
* the integer reference interpreter on the quantized IR (every op result observed);
* the simulator (``-t overlay``).

Tensors are matched by name: the quantized IR keeps the ONNX tensor names of the values it
quantizes (a fused conv + relu's requantize is named after the Relu's output).

The overlay's DRAM planner lets activations whose lifetimes do not overlap share memory, and an
artifact records the addresses of its inputs and outputs only, so most layer outputs of the
user's artifact are overwritten before the run ends (the digits CNN's artifact gives its 13130
bytes of int8 activations 6464 bytes of DRAM; SqueezeNet's, 5.3 MB in 1.2 MB).  ``verify`` therefore compiles a second,
*checkpointed* program from the same quantized IR in which every compared tensor is also a model
output: outputs are pinned to their own DRAM, so each survives the run.  The code that computes
each layer is emitted by the same step emitters; only DRAM placement differs.  The user's artifact
itself is run too and its outputs compared with the reference's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Module, parse_module, print_module
from tcc.ir.errors import TccError
from tcc.ir.escape import one_line
from tcc.passes.quantize.calibration import DEFAULT_CALIBRATION, load_samples
from tcc.runtime.report import plain

CHECKPOINT_PREFIX = "verify:"
#: A layer whose SQNR falls this much below its inputs' is where quantization error jumps.
JUMP_DB = 6.0


@dataclass
class LayerCheck:
    """One compared tensor, in program order."""

    name: str
    kind: str
    dtype: str
    loc: str = ""  # the ONNX node it came from
    sqnr_db: float | None = None  # dequantized integer reference vs float; None: no float tensor
    drop_db: float | None = None  # SQNR of its nearest compared inputs minus its own
    sim_equal: bool | None = None  # simulator == integer reference; None: not simulated
    mismatches: int = 0
    max_steps: int = 0


@dataclass
class VerifyResult:
    model: str
    target: str
    samples: int
    float_source: str
    layers: list[LayerCheck] = field(default_factory=list)
    outputs_equal: bool | None = None  # the user's artifact's outputs == the reference's
    notes: list[str] = field(default_factory=list)

    @property
    def first_mismatch(self) -> LayerCheck | None:
        return next((layer for layer in self.layers if layer.sim_equal is False), None)

    @property
    def worst_jump(self) -> LayerCheck | None:
        jumps = [layer for layer in self.layers if layer.drop_db is not None and layer.drop_db >= JUMP_DB]
        return max(jumps, key=lambda layer: layer.drop_db, default=None)

    @property
    def simulator_agrees(self) -> bool:
        return self.first_mismatch is None and self.outputs_equal is not False


# -- the three executions ----------------------------------------------------------------------
def float_tensors(model, float_module: Module, names: set[str], samples) -> tuple[list[dict], str]:
    """Per sample, the float value of each tensor in ``names`` that the float model computes."""
    try:
        return _onnxruntime_tensors(model, names, samples), "onnxruntime"
    except Exception as exc:  # onnxruntime refuses some models tcc imports; fall back to tcc's own
        note = f"tcc float reference interpreter (onnxruntime: {str(exc).splitlines()[0][:120]})"
    return [_observed(float_module, s, names) for s in samples], note


def _onnxruntime_tensors(model, names: set[str], samples) -> list[dict]:
    run = exposed_float_run(model, names)
    return [run(sample) for sample in samples]


def exposed_float_run(model, names: set[str]):
    """A function from one sample's feeds to the float values (onnxruntime) of the tensors in
    ``names`` that the ONNX model computes or takes as inputs; the session is built once."""
    import onnx
    import onnxruntime as ort

    if isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = onnx.load(str(model)) if not isinstance(model, onnx.ModelProto) else model
    graph = proto.graph
    produced = {o for node in graph.node for o in node.output if o}
    existing = {o.name for o in graph.output}
    wanted = sorted(n for n in names if n in produced and n not in existing)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(proto)
    for name in wanted:
        exposed.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    options.log_severity_level = 3
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in session.get_outputs()]

    def run(sample: dict) -> dict:
        values = session.run(out_names, onnxruntime_feeds(session, sample))
        found = {n: np.asarray(v, np.float32) for n, v in sample.items() if n in names}
        found.update((n, v) for n, v in zip(out_names, values) if n in names)
        return found

    return run


def onnxruntime_feeds(session, feeds: dict) -> dict:
    """``feeds`` as the element types an onnxruntime session's inputs declare (float32 when unknown)."""
    declared = {i.name: i.type for i in session.get_inputs()}
    return {k: np.asarray(v, _ORT_TYPES.get(declared.get(k), np.float32)) for k, v in feeds.items()}


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
              "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def _observed(module: Module, feeds: dict, names: set[str] | None = None, outputs: dict | None = None
              ) -> dict[str, np.ndarray]:
    """The values named in ``names`` (None: all) of one run; the module's outputs go to ``outputs``."""
    from tcc.ir.interpreter import run_module

    seen = {}

    def observe(value, array):
        if names is None or value.name in names:
            seen[value.name] = np.array(array)

    result = run_module(module, feeds, observe=observe)
    if outputs is not None:
        outputs.update(result)
    return seen


def compared_values(module: Module) -> list:
    """The quantized module's activations worth comparing: int8 with affine parameters, or bf16."""
    out = []
    for op in module.ops:
        if op.kind == "const":
            continue
        for r in op.results:
            q = r.type.quant
            if r.type.dtype == "bf16" or (r.type.dtype in ("i8", "u8") and q is not None and q.format is None) \
                    or _leaving_accumulators(r) is not None:
                out.append(r)
    return out


def _leaving_accumulators(value):
    """The model output that int32 accumulators ``value`` become by one dequantize on the host (the
    int32 logits of passes/quantize/rules.leaves_as_int32, named as the float layer), or None."""
    users = value.users
    if value.type.dtype != "i32" or value.type.quant is None or len(users) != 1 or users[0].kind != "dequantize":
        return None
    out, module = users[0].result, users[0].module
    return out if out.type.dtype == "f32" and module is not None and module.is_output(out) else None


def float_name(value) -> str:
    """The float tensor a quantized value stands for: its own name, or for the quantization of a
    model input (named ``input.q``), the input's."""
    p = value.producer
    if p is not None and p.kind == "quantize" and p.x.producer is None:
        return p.x.name
    return value.name


def real_value(value, array: np.ndarray) -> np.ndarray:
    from tcc.ir.numerics import dequantize_affine

    q = value.type.quant
    if q is None:
        return np.asarray(array, np.float32)
    return dequantize_affine(array, np.array(q.scale), np.array(q.zero_point), axis=q.axis)


def checkpointed(module: Module, values) -> Module:
    """A copy of ``module`` in which every value in ``values`` is also an output."""
    copy = parse_module(print_module(module), "<verify checkpoints>")
    by_name = {v.name: v for v in copy.values()}
    for v in values:
        if not copy.is_output(by_name[v.name]):
            copy.add_output(CHECKPOINT_PREFIX + v.name, by_name[v.name])
    return copy


# -- the report --------------------------------------------------------------------------------
def verify(model, calib, target: str = "overlay", inputs=None, samples: int = 4, input_shapes=None,
           target_config=None, progress=None, weights: str = "int8", method: str = DEFAULT_CALIBRATION) -> VerifyResult:
    """Compile ``model`` (path or ModelProto) with calibration ``calib`` as ``tcc compile`` does
    (``driver.compile_model``) and compare the three executions on ``samples`` inputs (from
    ``inputs``, else the first calibration samples)."""
    from tcc.driver import CompileOptions, compile_model, lower_model

    shapes = dict(input_shapes or {})
    float_module = compile_model(model, "ir", CompileOptions(input_shapes=shapes))
    options = CompileOptions(input_shapes=shapes, calib=calib, method=method, weights=weights,
                             target_config=target_config)
    qmodule, _ = lower_model(model, target, options)  # the overlay's limits are checked before calibration
    feeds = load_samples(inputs or calib, float_module, samples, what="input file")
    values = compared_values(qmodule)
    names = {v.name for v in values}
    floats, source = float_tensors(model, float_module, {float_name(v) for v in values}, feeds)
    label = model.graph.name if hasattr(model, "graph") else str(model)
    result = VerifyResult(label, target, len(feeds), source)
    if qmodule.host_tail is not None:  # compare what was compiled: the outputs of the static part
        result.notes.append(f"the host tail ({len(qmodule.host_tail.nodes)} nodes from "
                            f"{qmodule.host_tail.nodes[0].name!r} on: shapes known only at run time) is not "
                            "compared; it runs the same host code on the tensors compared here")
        qmodule.host_tail = None
    checks = {v.name: LayerCheck(v.name, v.producer.kind, v.type.dtype, v.producer.loc) for v in values}
    run = _simulators(qmodule, values, target_config, result) if target == "overlay" else None
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    progress = progress or (lambda items: items)
    for i in progress(range(len(feeds))):
        ref_outputs: dict = {}
        ref = _observed(qmodule, feeds[i], names, ref_outputs)
        for name, (n, d) in layer_error_sums(values, floats[i], ref).items():
            num[name] = num.get(name, 0.0) + n
            den[name] = den.get(name, 0.0) + d
        if run is not None:
            run(feeds[i], ref, ref_outputs, checks)
    finish_layers(values, checks, num, den)
    result.layers = [checks[v.name] for v in values]
    return result


def layer_error_sums(values, floats: dict, ref: dict) -> dict[str, tuple[float, float]]:
    """Per compared value of one sample: (sum of float**2, sum of (float - dequantized)**2)."""
    sums = {}
    for v in values:
        f = floats.get(float_name(v))
        if f is not None and f.shape == v.type.shape and v.name in ref:
            real = np.asarray(real_value(v, ref[v.name]), np.float64)
            sums[v.name] = _error_sums(np.asarray(f, np.float64), real)
    return sums


def _error_sums(f64: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """(signal, error) power; an infinity both sides hold (a -inf attention mask kept in bf16) is exact
    and counts in neither, any other non-finite element is an infinite error."""
    exact_inf = (f64 == real) & np.isinf(f64)
    if not (np.isfinite(f64) | exact_inf).all() or not (np.isfinite(real) | exact_inf).all():
        return float(np.sum(np.where(np.isfinite(f64), f64, 0) ** 2)), math.inf
    f64, real = np.where(exact_inf, 0, f64), np.where(exact_inf, 0, real)
    return float(np.sum(f64 ** 2)), float(np.sum((f64 - real) ** 2))


def finish_layers(values, checks: dict, num: dict, den: dict) -> None:
    """SQNR of each compared value from its accumulated sums, then the drops against its inputs."""
    for name, check in checks.items():
        if name in num:
            check.sqnr_db = math.inf if den[name] == 0 else (10 * math.log10(num[name] / den[name])
                                                             if num[name] > 0 else -math.inf)
    _drops(values, checks)


def _simulators(qmodule: Module, values, target_config, result: VerifyResult):
    """Compile the user's artifact and the checkpointed one; returns a per-sample comparison."""
    from tcc.backends.overlay import Artifact
    from tcc.backends.overlay.hetero import compile_heterogeneous
    from tcc.isa.target import load_target
    from tcc.runtime import Session
    from tcc.runtime.hetero_session import HeteroSession

    def session(module):  # ops the overlay cannot run go to the host, as in tcc compile
        compiled = compile_heterogeneous(module, target)
        return Session(compiled) if isinstance(compiled, Artifact) else HeteroSession(compiled)

    target = load_target(target_config)
    artifact = session(qmodule)
    try:
        checkpoints = session(checkpointed(qmodule, values))
    except TccError as exc:
        checkpoints = None
        result.notes.append(f"the checkpointed program does not compile ({exc}); only the model outputs "
                            "are compared")
    device_outputs = {name: v for name, v in qmodule.outputs}

    def compare(feeds, ref, expected, checks):
        got = artifact.run_dict(feeds)
        same = all(np.array_equal(got[n], expected[n]) for n in device_outputs)
        result.outputs_equal = same if result.outputs_equal is None else (result.outputs_equal and same)
        if checkpoints is None:
            return
        sim = checkpoints.run_dict(feeds)
        for v in values:
            key = CHECKPOINT_PREFIX + v.name
            if key not in sim:
                key = next((n for n, o in checkpoints.module.outputs if o.name == v.name), None)
            if key is None:
                continue
            check = checks[v.name]
            a, b = np.asarray(sim[key]), np.asarray(ref[v.name])
            differ = a != b
            count = int(np.count_nonzero(differ))
            check.sim_equal = (check.sim_equal is not False) and count == 0
            check.mismatches += count
            if count:
                steps = np.abs(a.astype(np.float64) - b.astype(np.float64))
                check.max_steps = max(check.max_steps, int(np.max(steps)))

    return compare


def _drops(values, checks) -> None:
    """SQNR drop of each value below the worst of its nearest compared ancestors."""
    compared = {id(v) for v in values if checks[v.name].sqnr_db is not None}  # walk past the others
    for v in values:
        check = checks[v.name]
        if check.sqnr_db is None or not math.isfinite(check.sqnr_db):
            continue
        # The quantized model inputs are no baseline: rounding the input alone is near-lossless
        # (~48 dB on 8 bits), and every first layer falls well below it.
        ancestors = [a for a in _nearest_compared(v, compared) if float_name(a) == a.name]
        before = [checks[a.name].sqnr_db for a in ancestors if checks[a.name].sqnr_db is not None]
        baseline = min(before) if before else math.inf
        if math.isfinite(baseline):
            check.drop_db = baseline - check.sqnr_db


def _nearest_compared(value, compared: set[int]) -> list:
    found, stack, seen = [], [o for o in value.producer.operands], set()
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if id(v) in compared:
            found.append(v)
        elif v.producer is not None:
            stack.extend(v.producer.operands)
    return found


def format_result(result: VerifyResult, style=plain) -> str:
    """The per-layer table and the verdict lines."""
    simulated = result.target == "overlay"
    head = f"{'#':>4}  {'tensor':<44} {'op':<16} {'dtype':<5} {'SQNR dB':>8} {'drop dB':>8}"
    head += f"  {'sim == ref':<12}" if simulated else ""
    lines = [one_line(f"model {result.model}: {result.samples} sample(s); float values from {result.float_source}"),
             head, "-" * len(head)]
    jump = result.worst_jump
    for i, layer in enumerate(result.layers):
        sqnr = "-" if layer.sqnr_db is None else ("inf" if math.isinf(layer.sqnr_db) else f"{layer.sqnr_db:8.1f}")
        drop = "" if layer.drop_db is None else f"{layer.drop_db:+8.1f}"
        name = one_line(layer.name)  # names from the model stay one line each
        name = name if len(name) <= 44 else "..." + name[-41:]
        line = f"{i:>4}  {name:<44} {layer.kind:<16} {layer.dtype:<5} {sqnr:>8} {drop:>8}"
        if simulated:
            verdict = "-" if layer.sim_equal is None else ("yes" if layer.sim_equal else f"NO ({layer.mismatches})")
            line += f"  {verdict:<12}"
        if layer.sim_equal is False:
            line = style(line, fg="red", bold=True)
        elif layer is jump:
            line = style(line, fg="yellow")
        lines.append(line)
    lines.append("-" * len(head))
    lines.extend(one_line(f"note: {n}") for n in result.notes)
    if simulated:
        first = result.first_mismatch
        if first is not None:
            lines.append(style(f"FIRST DISAGREEMENT: simulator != integer reference at {first.name!r} ({first.kind}): "
                               f"{first.mismatches} element(s) differ, by up to {first.max_steps} step(s)",
                               fg="red", bold=True))
        elif result.outputs_equal is False:
            lines.append(style("DISAGREEMENT: the artifact's outputs differ from the integer reference",
                               fg="red", bold=True))
        else:
            checked = sum(layer.sim_equal is not None for layer in result.layers)
            lines.append(f"simulator == integer reference: all {checked} checkpointed tensors and the model "
                         f"outputs agree bit for bit")
    if jump is not None:
        node = f", ONNX node {jump.loc!r}" if jump.loc else ""
        lines.append(f"largest quantization-error jump: {jump.name!r} ({jump.kind}{node}) loses {jump.drop_db:.1f} dB "
                     f"against its inputs (SQNR {jump.sqnr_db:.1f} dB); consider keeping it in higher "
                     f"precision (--quant mixed)")
    else:
        lines.append(f"no layer loses {JUMP_DB:.0f} dB or more against its inputs")
    return "\n".join(lines)
