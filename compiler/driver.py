"""The compiler driver: the stages behind each CLI command, callable from Python too."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


from tcc.ir import Module, is_constant, parse_module, print_module, verify
from tcc.ir.errors import IRParseError, VerifyError
from tcc.ir.fileio import write_atomic
from tcc.passes import DEFAULT_FLOAT_PIPELINE, Pass, PassInstrumentation, PassManager, make_pass, parse_pipeline
from tcc.passes.quantize.calibration import DEFAULT_CALIBRATION

from .model_io import UsageError

TARGETS = ("ir", "overlay", "sparse")


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=1,3,224,224`` -> (NAME, (1, 3, 224, 224)); the name may itself contain '='."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
    except ValueError:
        shape = None
    if not sep or not name or shape is None or any(d < 0 for d in shape):
        raise UsageError(f"--input-shape {text!r} is not NAME=d0,d1,... with non-negative integers")
    return name, shape


def load_ir(path) -> Module:
    """Read and verify a textual IR file; problems in it are the user's, reported as such."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise IRParseError(f"{path}: not a text file (textual IR is UTF-8)") from None
    module = parse_module(text, str(path))
    try:
        verify(module)
    except VerifyError as exc:
        raise VerifyError(f"{path}: {exc}") from None
    return module


def run_pipeline(module: Module, passes, dump_after=(), dump_dir=None, instrumentations=()) -> PassManager:
    """Run ``passes`` (pass objects, registered names, or a pipeline typed by a person) over ``module``."""
    pipeline = parse_pipeline(passes) if passes else []
    attach_cost_models(pipeline)
    check_dump_names(dump_after, pipeline)
    dump = "all" if "all" in dump_after else set(dump_after)
    manager = PassManager(pipeline, dump_after=dump, dump_dir=Path(dump_dir) if dump_dir else None,
                          instrumentations=list(instrumentations))
    manager.run(module)
    return manager


def attach_cost_models(pipeline, target_config=None) -> None:
    """Give every mixed-precision pass without one the overlay's cost model (on ``target_config``,
    a TOML path; None: the default core): the formats it chooses are priced on the overlay."""
    from tcc.passes.quantize import MixedPrecision

    for p in pipeline:
        if isinstance(p, MixedPrecision) and p.cost_model is None:
            from tcc.backends.overlay.layer_costs import OverlayCostModel
            from tcc.isa.target import load_target

            p.cost_model = OverlayCostModel(load_target(target_config))


def check_dump_names(dump_after, pipeline) -> None:
    """Every ``--dump-ir-after`` name is 'all', 'import' or a pass of the pipeline."""
    names = {p.name for p in pipeline}
    for name in dump_after:
        if name not in names | {"all", "import"}:
            runs = ", ".join(dict.fromkeys(p.name for p in pipeline)) or "none"
            raise UsageError(f"--dump-ir-after {name}: no pass of that name runs here, so nothing would be "
                             f"dumped (the passes that run: {runs}; or 'all', 'import')")


def quantization_pipeline(calib, quant="int8", method=DEFAULT_CALIBRATION, weights="int8", symmetric=False,
                          budget_bytes=None, budget_cycles=None, candidates=None,
                          sparse_mode=None, target_config=None, dybit_caps="output",
                          weight_error="weights") -> tuple[Pass, ...]:
    """The passes that follow the float pipeline when calibration data is given.

    Without ``calib``, ``quant="int8"`` quantizes with the parameters a pre-quantized (QDQ) model
    pins on its tensors (see ``require_pinned``).

    ``quant="mixed"`` chooses weight formats per layer under one budget (mixed-precision pass).

    ``sparse_mode="submanifold"`` calibrates on the values the sparse target computes; any
    ``sparse_mode`` keeps int8 model outputs (the sparse accelerator's fc ends in an 8-bit requantize).
    Mixed precision prices formats with the overlay's cost model on ``target_config`` (a TOML
    path; None: the default core).  ``dybit_caps``: how ``--weights dybitN`` picks each layer's
    exponent-run cap ("output": least output error on calibration samples, one model run per
    layer and cap; "weights": least weight MSE).  ``weight_error``: what the narrow weight
    formats' scale and cap searches minimise ("weights": their squared error; "output": each
    layer's output error on rows of its input from calibration samples).
    """
    from tcc.passes import PRE_QUANT_PIPELINE
    from tcc.passes.quantize import MixedPrecision, Quantize, SmoothQuant

    if quant not in ("int8", "mixed"):
        raise UsageError(f"--quant {quant} is not available; use int8 or mixed")
    before = tuple(make_pass(name) for name in PRE_QUANT_PIPELINE)
    if quant == "int8":
        if budget_bytes is not None or budget_cycles is not None or candidates is not None:
            raise UsageError("--budget-bytes, --budget-cycles and --candidates go with --quant mixed")
        quantize = Quantize(calib=str(calib or ""), method=method, weights=weights, symmetric=symmetric,
                            sparse_mode="submanifold" if sparse_mode == "submanifold" else "", dybit_caps=dybit_caps,
                            weight_error=weight_error,
                            # the sparse accelerator's fc module ends in an 8-bit requantize
                            outputs="int32" if sparse_mode is None else "int8")
        # SmoothQuant changes only LayerNorm -> linear sites, and only where it measures less int8 error
        smooth = (SmoothQuant(calib=str(calib)),) if calib and sparse_mode != "submanifold" else ()
        return before + smooth + (quantize, make_pass("dce"))
    if sparse_mode == "submanifold":
        raise UsageError("--quant mixed does not calibrate with submanifold semantics yet; use --quant int8")
    if weights != "int8":
        raise UsageError("--quant mixed chooses each layer's weight format; give the formats to choose "
                         "from with --candidates instead of --weights")
    if (budget_bytes is None) == (budget_cycles is None):
        raise UsageError("--quant mixed needs one budget: --budget-bytes N or --budget-cycles N")
    mixed = MixedPrecision(calib=str(calib), method=method, symmetric=symmetric, budget_bytes=budget_bytes or 0,
                           budget_cycles=budget_cycles or 0)
    if candidates is not None:
        mixed.candidates = "/".join(c.strip() for c in candidates.split(","))
    attach_cost_models([mixed], target_config)
    return before + (mixed, make_pass("dce"))


def compile_to_ir(model, input_shapes=None, passes=DEFAULT_FLOAT_PIPELINE, dump_after=(),
                  dump_dir=None, require_pins=False, instrumentations=()) -> tuple[Module, PassManager]:
    """Import an ONNX model and run the float pipeline over it.

    ``require_pins``: the pipeline quantizes without calibration data, so the imported model must
    carry quantization parameters on every float tensor (checked before any pass runs).
    """
    from tcc.frontend import import_onnx

    module = import_onnx(model, input_shapes=dict(input_shapes or {}), host_tail=True)
    if require_pins:
        require_pinned(module)
    manager = run_pipeline(module, passes, dump_after, dump_dir, instrumentations)
    return module, manager


def require_pinned(module: Module) -> None:
    """Every non-constant float value must carry int8 parameters (a QDQ model's) to quantize
    without calibration; otherwise a UsageError names the first that does not."""
    missing = [v for v in module.values() if v.type.dtype == "f32" and v.type.quant is None and not is_constant(v)]
    if missing:
        first = missing[0]
        where = (f"{first.producer.kind} op from ONNX node {first.producer.loc!r}" if first.producer
                 else "model input")
        raise UsageError(f"quantizing without --calib uses the quantization parameters of a pre-quantized "
                         f"(QDQ) model, but tensor {first.name!r} ({where}) has none"
                         + (f", nor do {len(missing) - 1} other float tensors" if len(missing) > 1 else "")
                         + "; give calibration data with --calib FILE.npz (pinned parameters are kept)")


def write_ir(module: Module, path) -> None:
    write_atomic(path, print_module(module))


@dataclass
class CompileOptions:
    """How ``compile_model`` compiles (the options of ``tcc compile``; see its --help)."""

    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    passes: str | None = None  # a pipeline typed by a person, replacing the default one
    calib: str | None = None  # calibration .npz; enables quantization
    quant: str | None = None  # None: not asked for; "int8" without calib: a QDQ model's own parameters
    method: str = DEFAULT_CALIBRATION
    weights: str = "int8"
    symmetric: bool = False
    budget_bytes: int | None = None
    budget_cycles: int | None = None
    candidates: str | None = None
    sparse_mode: str | None = None
    target_config: str | None = None
    dump_after: tuple[str, ...] = ()
    dump_dir: str | None = None
    instrumentations: list[PassInstrumentation] = field(default_factory=list)
    host_fallback: bool = True  # -t overlay: ops the overlay cannot run go to the host (a heterogeneous artifact)
    workers: int = 1  # calibration and the sensitivity sweep: worker processes (the result does not depend on it)
    dybit_caps: str = "output"  # --weights dybitN: each layer's exponent-run cap by output error or weight MSE
    weight_error: str = "weights"  # what the narrow weight formats' searches minimise (weights or layer output)

    @property
    def from_pins(self) -> bool:
        """Quantize with a pre-quantized (QDQ) model's parameters: int8 asked for, no calibration data."""
        return self.passes is None and self.calib is None and self.quant == "int8"


def compile_pipeline(target: str, options: CompileOptions) -> list[Pass]:
    """The passes ``compile_model`` runs for ``target``: configured objects, no text in between."""
    if options.passes is not None:
        return parse_pipeline(options.passes)
    from tcc.passes.sparsity import AnnotateSparsity

    pipeline = [make_pass(name) for name in DEFAULT_FLOAT_PIPELINE]
    if options.calib is not None or options.from_pins:
        pipeline += quantization_pipeline(options.calib, options.quant or "int8", options.method, options.weights,
                                          options.symmetric, options.budget_bytes, options.budget_cycles,
                                          options.candidates, options.sparse_mode, options.target_config,
                                          options.dybit_caps, options.weight_error)
    if options.calib is not None and options.workers > 1:
        from tcc.evaluation.calibrate import calibration_executor, sweep_mapper
        from tcc.passes.quantize import MixedPrecision, Quantize

        for p in pipeline:
            if isinstance(p, (Quantize, MixedPrecision)):  # stream the file through the evaluation engine
                p.executor = calibration_executor(str(options.calib), options.workers, max_samples=p.max_samples)
            if isinstance(p, MixedPrecision):  # and spread the sensitivity sweep over the workers
                p.mapper = sweep_mapper(options.workers)
    if target == "sparse":
        from tcc.passes.quantize import Quantize

        for p in pipeline:
            if isinstance(p, Quantize):  # the sparse accelerator's fc module ends in an 8-bit requantize
                p.outputs = "int8"
        pipeline.append(AnnotateSparsity(calib=str(options.calib), mode=options.sparse_mode or "exact"))
    if target == "overlay":  # group int8 and bf16 work to save PE-array mode switches
        pipeline.append(make_pass("schedule-modes"))
    return pipeline


def lower_model(model, target: str, options: CompileOptions):
    """Import ``model``, check it against ``target``'s limits and run ``compile_pipeline``: (the IR,
    the overlay target description or None)."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if options.sparse_mode is not None and target != "sparse":
        raise UsageError("--sparse-mode goes with -t sparse")
    if target in ("overlay", "sparse") and options.calib is None and options.passes is None and not options.from_pins:
        raise UsageError(f"-t {target} runs int8 code: give calibration data with --calib FILE.npz "
                         "(or --quant int8 for a pre-quantized QDQ model)")
    if target == "sparse" and options.calib is None:
        raise UsageError("-t sparse measures activation density on calibration data: give --calib FILE.npz")
    pipeline = compile_pipeline(target, options)
    check_dump_names(options.dump_after, pipeline)  # before any work, like the target files below
    if target == "sparse":
        from tcc.backends.sparse.target import load_sparse_target

        load_sparse_target(options.target_config)
    if options.passes is None and (options.quant or "int8") == "int8" and (options.calib or options.from_pins):
        from tcc.passes.quantize.params import parse_weight_format

        parse_weight_format(options.weights)  # before any work: the format is a user's typo or not
    module, _ = compile_to_ir(model, options.input_shapes, (), require_pins=options.from_pins)
    overlay_target = None
    if target == "overlay":  # limits first: calibration of a model that cannot fit is wasted time
        from tcc.isa.target import load_target
        from tcc.limits import check_overlay_limits

        overlay_target = load_target(options.target_config)
        check_overlay_limits(module, overlay_target, options.target_config or "the default target",
                             options.weights, options.quant or "int8")
    run_pipeline(module, pipeline, options.dump_after, options.dump_dir, options.instrumentations)
    return module, overlay_target


def compile_model(model, target: str = "ir", options: CompileOptions | None = None):
    """Compile an ONNX model (path or ModelProto) for ``target``: "ir" gives the Module, "overlay" an
    overlay Artifact (a HeteroArtifact when some ops run on the host), "sparse" a SparseArtifact. The one compile flow of the CLI, ``tcc verify`` and
    the Python API."""
    options = options or CompileOptions()
    module, overlay_target = lower_model(model, target, options)
    if target == "ir":
        return module
    if target == "sparse":
        from tcc.backends.sparse import compile_sparse

        if module.host_tail is not None:
            first = module.host_tail.nodes[0]
            raise UsageError(f"-t sparse runs the whole model on the sparse accelerator, but node {first.name!r} "
                             f"({first.op_type}) must run on the host ({first.reason}); compile it with -t overlay "
                             "or -t ir, which run such ops on the host")

        return compile_sparse(module, mode=options.sparse_mode or "exact", target_path=options.target_config)
    from tcc.backends.overlay.hetero import compile_heterogeneous

    label = f"compiling {len(module.ops)} ops for the overlay"

    def progress(done: int, total: int) -> None:
        for hook in options.instrumentations:
            hook.progress(label, done, total)

    def phase(name: str, seconds: float) -> None:
        for hook in options.instrumentations:
            hook.phase(name, seconds)

    return compile_heterogeneous(module, overlay_target, options.host_fallback,
                                 progress if options.instrumentations else None,
                                 phase if options.instrumentations else None)
