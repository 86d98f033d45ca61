"""The `tcc` command line.  Every user-facing error is caught here once: message, exit code 2."""
from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from tcc import __version__
from tcc.cli_files import FileCommand, InputFile, OutputFile, OutputFolder

if TYPE_CHECKING:
    from tcc.ir.errors import TccError

# Only click and the few names above load with the CLI, so `tcc --help` answers at once; every
# command imports what it needs.  The vocabulary of the options comes from the modules that own it,
# loaded when an option is parsed or its help shown (LazyChoice, _DefaultCalibration, _DumpName).


class LazyChoice(click.Choice):
    """A Choice whose values are read from their owner module on first use."""

    def __init__(self, load):
        self._load = load
        super().__init__(())

    @property
    def choices(self):
        return tuple(self._load())

    @choices.setter
    def choices(self, value) -> None:
        pass


def _targets():
    from tcc.driver import TARGETS

    return TARGETS


def _calibration_methods():
    from tcc.passes.quantize.calibration import CALIBRATION_METHODS

    return CALIBRATION_METHODS


class _DefaultCalibration:
    """The default calibration method, shown in help and used when --calibrate is absent."""

    def __call__(self) -> str:
        from tcc.passes.quantize.calibration import DEFAULT_CALIBRATION

        return DEFAULT_CALIBRATION

    def __str__(self) -> str:
        return self()


class _DumpName:
    """passes.manager.DUMP_NAME (the names --dump-ir-after writes), read when a dump folder is checked."""

    def fullmatch(self, name: str):
        from tcc.passes.manager import DUMP_NAME

        return DUMP_NAME.fullmatch(name)



class _State:
    debug = False


def _shapes(values) -> dict:
    from tcc.driver import parse_input_shape

    return dict(parse_input_shape(v) for v in values)


def _emit(module, output) -> None:
    from tcc.driver import write_ir
    from tcc.ir import print_module

    if output in (None, "-"):
        click.echo(print_module(module), nl=False)
    else:
        write_ir(module, output)


def _instrumentations(timings: list | None = None) -> list:
    """What the CLI hooks into a pass pipeline: plans, per-pass wall time (``timings`` gets the
    records) and, on a terminal, progress."""
    from tcc.cli_hooks import PlanPrinter, TerminalProgress
    from tcc.passes.manager import Timing

    hooks: list = [PlanPrinter()]
    if timings is not None:
        hooks.append(Timing(timings))
    if _stderr_is_tty():
        hooks.append(TerminalProgress())
    return hooks


def option_group(*options):
    """One decorator applying ``options`` in the order given (the order --help lists them)."""
    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


with_dump_options = option_group(
    click.option("--dump-ir-after", "dump_after", multiple=True, metavar="PASS|all|import",
                 help="Write the textual IR after this pass (repeatable; 'all' for every pass)."),
    click.option("--dump-dir", type=OutputFolder(pattern=(_DumpName(), "NN-PASS.tir"),  # type: ignore[arg-type]
                                                 written_with="dump_after"), default=None,
                 help="Folder for --dump-ir-after files (default: current folder)."),
    click.option("--timings", is_flag=True, help="Print the wall time of each pass and backend phase to stderr."),
)

# What every command that compiles a model takes (compile, explain, verify); each adds its own --calib.
with_model_options = option_group(
    click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=d0,d1,...",
                 help="Bind an input's shape (repeatable); needed for dynamic dims."),
    click.option("--calibrate", "method", type=LazyChoice(_calibration_methods),
                 default=_DefaultCalibration(), show_default=True,
                 help="How calibration picks activation ranges (auto: min/max, and the range of least "
                      "int8 error for the inputs of conv/linear/matmul layers; for model inputs and SiLU "
                      "inputs whichever measures less output error)."),
    click.option("--weights", default="int8", show_default=True,
                 help="Weight format: int8, int4, int2, dybit2..dybit8, or dybit2r..dybit7r (a DyBit cap per "
                      "output channel)."),
    click.option("--target-config", default=None, type=InputFile(),
                 help="Target description (TOML); default: the bundled TATAA-style overlay core "
                      "(-t sparse: the bundled ZCU102-style FPGA budget)."),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tcc")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def cli(debug: bool) -> None:
    """tcc: compile ONNX models for FPGA accelerators and run them on a bit-exact simulator."""
    _State.debug = debug


cli.command_class = FileCommand  # every command: outputs checked against inputs before any work


@cli.command()
@click.argument("model", type=InputFile())
@click.option("-t", "--target", type=LazyChoice(_targets), default="ir", show_default=True,
              help="What to produce.")
@click.option("-o", "--output", default=None, type=OutputFile(stdout="text"),
              help="Output file ('-' or absent: stdout for IR; '-' for an artifact: stdout, not a terminal).")
@click.option("--passes", default=None, help="Override the pass pipeline, e.g. 'fold-constants,dce'.")
@click.option("--calib", default=None, type=InputFile(),
              help="Calibration .npz (key per input name, axis 0 = samples); enables quantization.")
@click.option("--quant", type=click.Choice(["int8", "mixed"]), default="int8", show_default=True,
              help="Quantization scheme (with --calib; int8 without --calib: the scales of a "
                   "pre-quantized QDQ model).")
@with_model_options
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Calibrate in N processes, streaming --calib in chunks instead of loading it whole "
                   "(for thousands of samples), and with --quant mixed measure layer sensitivities in N "
                   "processes; the result does not depend on N.")
@click.option("--symmetric", is_flag=True, help="Symmetric int8 activations (zero point 0).")
@click.option("--budget-bytes", type=int, default=None, metavar="N",
              help="--quant mixed: weight memory budget in bytes.")
@click.option("--budget-cycles", type=int, default=None, metavar="N",
              help="--quant mixed: latency budget in cycles of the whole model on the overlay.")
@click.option("--candidates", default=None, metavar="F1,F2,...",
              help="--quant mixed: formats to choose from (default int8,int4,dybit4,dybit6; also int2, dybit2..8).")
@click.option("--sparse-mode", type=click.Choice(["exact", "submanifold"]), default=None,
              help="-t sparse: 'exact' (default) equals the dense model; 'submanifold' computes "
                   "outputs only at active sites, as a network trained that way expects.")
@click.option("--dybit-caps", type=click.Choice(["output", "weights"]), default="output", show_default=True,
              help="--weights dybitN: each layer's exponent-run cap of least output error on 8 calibration "
                   "samples (one model run per layer and cap: minutes for ResNet-50), or of least weight MSE "
                   "(instant).")
@click.option("--weight-error", type=click.Choice(["weights", "output"]), default="weights", show_default=True,
              help="What the int4/int2/DyBit scale and cap searches minimise: the weights' squared error, or "
                   "each layer's output error on its inputs from 16 calibration samples (slower; intN and "
                   "DyBit alike).")
@click.option("--no-host-fallback", is_flag=True,
              help="-t overlay: refuse, listing them, ops the overlay cannot run instead of running "
                   "them on the host (the default makes a heterogeneous artifact).")
@with_dump_options
def compile(model, target, output, input_shapes, passes, calib, quant, method, weights, workers, symmetric,
            budget_bytes, budget_cycles, candidates, target_config, sparse_mode, dybit_caps, weight_error,
            no_host_fallback, dump_after, dump_dir, timings):
    """Compile an ONNX MODEL to textual IR (-t ir), an overlay artifact (-t overlay) or a sparse
    dataflow artifact (-t sparse)."""
    from tcc.driver import CompileOptions, UsageError, compile_model
    from tcc.passes.manager import format_timings

    quant_given = click.get_current_context().get_parameter_source("quant") is ParameterSource.COMMANDLINE
    if no_host_fallback and target != "overlay":
        raise UsageError("--no-host-fallback goes with -t overlay")
    if target in ("overlay", "sparse") and (output is None or output == "-" and _stdout_is_tty()):
        raise UsageError(f"-t {target} writes a binary artifact: give -o MODEL.tcc")
    records: list | None = [] if timings else None
    options = CompileOptions(_shapes(input_shapes), passes, calib, quant if quant_given else None, method, weights,
                             symmetric, budget_bytes, budget_cycles, candidates, sparse_mode, target_config,
                             dump_after, dump_dir, _instrumentations(records), host_fallback=not no_host_fallback,
                             workers=workers, dybit_caps=dybit_caps, weight_error=weight_error)
    from tcc.backends.overlay.hetero import HostFallbackRefused

    try:
        result = compile_model(model, target, options)
    except HostFallbackRefused as exc:  # name the ONNX op types, as the user knows the layers
        raise HostFallbackRefused(exc.fallbacks, _onnx_op_types(model)) from None
    if records is not None:
        click.echo(format_timings(records), err=True)
    if target == "ir":
        _emit(result, output)
        if result.host_tail is not None:
            first = result.host_tail.nodes[0]
            click.echo(f"note: node {first.name!r} ({first.op_type}) and the {len(result.host_tail.nodes) - 1} "
                       f"node(s) after it form the host tail ({first.reason}): they run when the model runs, "
                       "once their shapes are known", err=True)
        return
    result.save(output)
    if target == "sparse":
        click.echo(f"wrote {output}: {result.summary()}", err=True)
        return
    from tcc.backends.overlay import Artifact

    if isinstance(result, Artifact):
        meta = result.metadata
        click.echo(f"wrote {output}: {len(result.program)} instructions, {len(meta['layers'])} layers, "
                   f"{meta['dram_bytes']} bytes of DRAM ({weight_bytes(meta)} of packed weights)", err=True)
        return
    click.echo(f"wrote {output}: {result.summary()}", err=True)
    from tcc.ir.escape import one_line

    # One line per distinct reason: an ONNX node lowers to several IR ops that often share one.
    notes = dict.fromkeys(one_line(f"note: node {f['node']!r} ({f['kind']}) runs on the host: {f['reason']}")
                          for f in result.metadata["host_ops"])
    for note in notes:
        click.echo(note, err=True)


def weight_bytes(meta: dict) -> int:
    """Bytes of the packed weight constants of an overlay artifact's layers."""
    return sum(layer.get("weight_bytes", 0) for layer in meta["layers"])


def _onnx_op_types(model) -> dict[str, str]:
    """ONNX node name -> op type, for messages that name the user's layers (empty if unreadable)."""
    try:
        import onnx

        graph = onnx.load(str(model), load_external_data=False).graph
    except Exception:  # the model was already imported; this is only for nicer messages
        return {}
    return {node.name: node.op_type for node in graph.node}


@cli.command()
@click.argument("model", type=InputFile())
@click.option("-t", "--target", type=click.Choice(["overlay"]), default="overlay", show_default=True,
              help="The target to place the model on.")
@click.option("--calib", default=None, type=InputFile(),
              help="Calibration .npz (default: placeholder ranges; the placement does not depend on them).")
@with_model_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
def explain(model, target, calib, input_shapes, method, weights, target_config, as_json):
    """Where each ONNX node will run on the overlay (matrix unit, vector unit, int8 lanes, data
    movement, folded away, or the host, with the reason), and the fraction of MACs on the device.
    Runs the compile's passes and placement, but generates no code."""
    from tcc.explain import explain as explain_model, format_explanation
    from tcc.isa.target import load_target

    result = explain_model(model, load_target(target_config), calib, _shapes(input_shapes), method, weights)
    if as_json:
        import json

        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(format_explanation(result))


@cli.command(name="verify")
@click.argument("model", type=InputFile())
@click.option("-t", "--target", type=click.Choice(["overlay", "ir"]), default="overlay", show_default=True,
              help="overlay: simulator and integer reference; ir: integer reference only.")
@click.option("--calib", required=True, type=InputFile(), help="Calibration .npz.")
@click.option("--inputs", "inputs_path", default=None, type=InputFile(),
              help=".npz of inputs (one array per input, or stacked along axis 0); default: --calib's samples.")
@click.option("--samples", default=4, show_default=True, type=click.IntRange(min=1),
              help="How many samples to run.")
@with_model_options
@click.option("--json", "json_path", default=None, type=OutputFile(stdout="text"),
              help="Also write the per-layer results as JSON ('-': stdout, and the table goes to stderr).")
def verify_command(model, target, calib, inputs_path, samples, input_shapes, method, weights, target_config,
                   json_path):
    """Per layer: SQNR of the int8 model against float (onnxruntime), and simulator == reference.

    Layer outputs are read from a checkpointed build of the same program in which every compared
    tensor keeps its own DRAM (the artifact itself reuses activation memory). Exits 1 when the
    simulator disagrees with the integer reference interpreter."""
    from tcc.verify import format_result, verify

    result = verify(model, calib, target, inputs_path, samples, _shapes(input_shapes), target_config,
                    progress=_progress("verifying"), weights=weights, method=method)
    to_stderr = json_path == "-"  # standard output holds the JSON alone
    click.echo(format_result(result, style=_style_for(to_stderr)), err=to_stderr)
    if json_path:
        import dataclasses
        import json

        from tcc.ir.fileio import write_atomic

        data = dataclasses.asdict(result)
        data["simulator_agrees"] = result.simulator_agrees
        write_atomic(json_path, json.dumps(data, indent=1, allow_nan=True) + "\n")
    if not result.simulator_agrees:
        click.get_current_context().exit(1)


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _status(message: str) -> None:
    """A progress line on a terminal (stderr), so a long stage does not look like a hang."""
    if _stderr_is_tty():
        click.echo(message, err=True)


def _stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def _style_for(stderr: bool):
    """click.style when the table goes to a terminal (stderr or stdout), else no colour."""
    from tcc.runtime.report import plain

    return click.style if (_stderr_is_tty() if stderr else _stdout_is_tty()) else plain


def _progress(label: str):
    """A progress bar over an iterable on stderr, shown only when stderr is a terminal."""
    def wrap(items):
        items = list(items)
        if not _stderr_is_tty() or len(items) < 2:
            yield from items
            return
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar

    return wrap


@contextmanager
def _progress_callback(label: str):
    """A ``progress(done, total)`` callback drawing a bar on stderr, or None when stderr is not a
    terminal (so the work runs without the callback and nothing else changes)."""
    if not _stderr_is_tty():
        yield None
        return
    from tcc.cli_hooks import TerminalProgress

    bar = TerminalProgress()
    try:
        yield lambda done, total: bar.progress(label, done, total)
    finally:
        bar._finish()


def _simulate(session, source, inputs) -> dict:
    """``session.run_dict(inputs)``, with a progress bar over the program on a terminal (overlay)."""
    from tcc.runtime import Session

    if not isinstance(session, Session):
        _status(f"simulating {source} ...")
        return session.run_dict(inputs)
    with _progress_callback(f"simulating {source}") as progress:
        return session.run_dict(inputs, progress=progress)


@cli.command()
@click.argument("source", type=InputFile())
@click.option("--passes", default="", help="Comma-separated pass pipeline, e.g. 'dce,fold-batchnorm'.")
@click.option("-o", "--output", default=None, type=OutputFile(stdout="text"),
              help="Output file ('-' or absent: stdout).")
@with_dump_options
def opt(source, passes, output, dump_after, dump_dir, timings):
    """Parse textual IR, run passes over it and print it (like mlir-opt)."""
    from tcc.driver import load_ir, run_pipeline
    from tcc.passes.manager import format_timings

    module = load_ir(source)
    records: list | None = [] if timings else None
    run_pipeline(module, passes, dump_after, dump_dir, _instrumentations(records))
    if records is not None:
        click.echo(format_timings(records), err=True)
    _emit(module, output)


def _is_artifact(path) -> bool:
    from tcc.runtime import artifact_kind

    return artifact_kind(path) is not None


with_input_options = option_group(
    click.option("--inputs", "inputs_path", default=None, type=InputFile(),
                 help=".npz with one array per model input name (default: N(0,1) random)."),
    click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                 help="Seed for random inputs when --inputs is absent."),
)


def _inputs_for(module, inputs_path, seed, batch: bool = False):
    from tcc.model_io import load_inputs, random_inputs

    if inputs_path is None:
        inputs = random_inputs(module, seed)  # refuses absurd sizes before allocating
        click.echo(f"note: no --inputs given; using N(0,1) random inputs with seed {seed}", err=True)
        return inputs
    return load_inputs(inputs_path, module, batch)


@cli.command()
@click.argument("source", type=InputFile())
@with_input_options
@click.option("-o", "--output", required=True, type=OutputFile(stdout="binary"),
              help=".npz to write, one array per model output name ('-': stdout, not a terminal).")
@click.option("--reference", is_flag=True, help="Artifact: run the integer reference interpreter on its IR.")
@click.option("--report", "report_path", default=None, type=OutputFile(stdout="text"),
              help="Artifact: write the performance report (JSON; '-': stdout).")
def run(source, inputs_path, output, seed, reference, report_path):
    """Run textual IR on the reference interpreter, or an artifact (.tcc) on the simulator.

    An artifact's --inputs may hold N samples on axis 0 (where the model has 1): the simulator runs
    them as one batch and each output holds the N samples' results."""
    from tcc.model_io import UsageError, save_outputs

    if not _is_artifact(source):
        from tcc.driver import load_ir
        from tcc.frontend import run_model

        if reference or report_path:
            raise UsageError("--reference and --report apply to compiled artifacts (.tcc)")
        module = load_ir(source)
        save_outputs(output, run_model(module, _inputs_for(module, inputs_path, seed)))
        return
    import json

    from tcc.ir.fileio import write_atomic
    from tcc.runtime import open_session

    session = open_session(source)
    inputs = _inputs_for(session.interface, inputs_path, seed, batch=True)
    samples = session.batch_samples(inputs)
    if samples is not None:  # N samples stacked on axis 0: one batch on the simulator (each output stacked)
        from tcc.runtime.session import stacked_outputs

        names = session.output_names()
        if reference:
            if report_path:
                raise UsageError("--report needs the simulator; drop --reference")
            runs = [session.run_reference(sample) for sample in samples]
            save_outputs(output, {n: stacked_outputs([run[n] for run in runs]) for n in names})
            return
        _status(f"simulating {source} on {len(samples)} samples ...")
        save_outputs(output, dict(zip(names, session.run(names, inputs))))
    elif reference:
        if report_path:
            raise UsageError("--report needs the simulator; drop --reference")
        save_outputs(output, session.run_reference(inputs))
        return
    else:
        save_outputs(output, _simulate(session, source, inputs))
    if report_path:  # (a batch's: one sample's run, the counters being the program's)
        report = session.performance_report()
        write_atomic(report_path, json.dumps(report, indent=1, sort_keys=True))


@cli.command()
@click.argument("artifact", type=InputFile())
@with_input_options
@click.option("--top", default=None, type=click.IntRange(min=1), help="Show only the N slowest layers.")
@click.option("--html", "html_path", default=None, type=OutputFile(stdout="text"),
              help="Also write a self-contained HTML page (overlay: bars, roofline, mode timeline, memory, graph; "
                   "sparse: totals, module bars, token timeline, FIFO graph). '-': stdout (the table goes to stderr).")
@click.option("--json", "json_path", default=None, type=OutputFile(stdout="text"),
              help="Also write the report as JSON ('-': stdout, and the table goes to stderr).")
def report(artifact, inputs_path, seed, top, html_path, json_path):
    """Simulate an artifact and print its performance table: per layer and the roofline bound (overlay),
    per module and the slowest module (sparse)."""
    from tcc.model_io import UsageError
    from tcc.ir.fileio import STDOUT, write_atomic
    from tcc.runtime import Session, open_session

    session = open_session(artifact)
    inputs = _inputs_for(session.interface, inputs_path, seed)
    _simulate(session, artifact, inputs)
    data = session.performance_report()
    if html_path and data.get("heterogeneous"):
        raise UsageError("--html does not draw heterogeneous artifacts (host partitions) yet; use --json")
    table_to_stderr = STDOUT in (json_path, html_path)  # standard output holds the file alone
    click.echo(session.format_performance(data, top, style=_style_for(table_to_stderr)), err=table_to_stderr)
    if json_path:
        import json

        write_atomic(json_path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    if html_path:
        if isinstance(session, Session):
            from tcc.runtime.html_overlay import render_html

            meta = session.artifact.metadata
            page = render_html(data, session.module, len(session.artifact.dram_image), meta["dram_bytes"])
        else:
            from tcc.runtime.html_sparse import render_sparse_html

            page = render_sparse_html(data, session.metadata)
        write_atomic(html_path, page)
        if html_path != STDOUT:
            click.echo(f"wrote {html_path}", err=True)


@cli.command()
@click.argument("source", type=InputFile())
def disasm(source):
    """Print the program of an artifact (.tcc) or of a raw binary (.bin) as assembly."""
    from tcc.isa import disassemble, read_binary

    from tcc.runtime import artifact_kind

    kind = artifact_kind(source)
    if kind == "sparse":
        from tcc.backends.sparse import SparseArtifact

        click.echo(SparseArtifact.load(source).describe(), nl=False)
        return
    if kind == "heterogeneous":
        from tcc.backends.artifact import HeteroArtifact

        hetero = HeteroArtifact.load(source)
        for i, (entry, part) in enumerate(zip(hetero.metadata["partitions"], hetero.parts)):
            what = "program" if entry["kind"] == "device" else "IR (reference interpreter)"
            click.echo(f"; partition {i}: {entry['kind']} {what}")
            click.echo(disassemble(part.program) if entry["kind"] == "device" else part, nl=False)
        return
    if kind == "overlay":
        from tcc.backends.overlay import Artifact

        words = Artifact.load(source).program
    else:
        words = read_binary(source)
    click.echo(disassemble(words), nl=False)


@cli.command()
@click.argument("source", type=InputFile())
@click.option("-o", "--output", required=True, type=OutputFile(stdout="binary"),
              help="Raw little-endian 64-bit words ('-': stdout, not a terminal).")
def asm(source, output):
    """Assemble overlay assembly text into a binary."""
    from tcc.isa import assemble_file, write_binary

    write_binary(assemble_file(source), output)


@cli.command()
@click.argument("artifact", type=InputFile())
@click.option("-o", "--output", "folder", required=True, type=OutputFolder(("top.cpp", "esda_modules.hpp")),
              help="Folder for esda_modules.hpp, top.cpp, weights/, hls_shim/ and run_hls.tcl.")
def hls(artifact, folder):
    """Write the HLS dataflow design of a sparse artifact (-t sparse): module templates, a generated
    top whose weight ROMs are initialised from weights/*.inc, and the Vitis HLS script; C-simulate
    it with g++ -std=c++17 -pthread -DTCC_TESTBENCH top.cpp, run from the folder."""
    from tcc.backends.sparse import SparseArtifact
    from tcc.backends.sparse.hls import emit_cpp
    from tcc.model_io import UsageError
    from tcc.runtime import artifact_kind

    if artifact_kind(artifact) != "sparse":
        raise UsageError(f"{artifact}: not a sparse artifact; compile one with -t sparse")
    top = emit_cpp(SparseArtifact.load(artifact), folder)
    click.echo(f"wrote {top}, {top.parent / 'esda_modules.hpp'}, the weight ROMs in {top.parent / 'weights'} "
               f"and {top.parent / 'run_hls.tcl'}", err=True)


@cli.command(name="export-onnx")
@click.argument("source", type=InputFile())
@click.option("-o", "--output", required=True, type=OutputFile(stdout="binary"),
              help="The .onnx file to write ('-': stdout, not a terminal).")
def export_onnx(source, output):
    """Write quantized textual IR as an ONNX QDQ model (for Netron or onnxruntime)."""
    from tcc.driver import load_ir
    from tcc.export_onnx import write_onnx

    write_onnx(load_ir(source), output)


@cli.command(name="passes")
def list_passes():
    """List the registered passes."""
    from tcc.passes import PASSES

    for name in sorted(PASSES):
        click.echo(f"{name:<20} {PASSES[name].summary}")


@cli.command(name="eval")
@click.argument("model", required=False, type=InputFile())
@click.option("--artifact", default=None, type=InputFile(),
              help="The compiled model: a .tcc artifact (reference + simulator) or a quantized .tir.")
@click.option("--data", required=True, type=InputFile(dir_okay=True),
              help="Samples: .npz (key per input, axis 0 = samples), .npy (one input), or an image "
                   "folder with one subfolder per class.")
@click.option("--labels", default=None, help="The .npz key (or an .npy file) holding one integer class per sample.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Evaluate the first N samples only.")
@click.option("--paths", "paths_text", default=None, metavar="P1,P2,...",
              help="Executions to run: float (onnxruntime), reference, sim (default: all that apply).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Worker processes (default: one per core, unless the first samples show the set is "
                   "done here sooner than workers start; 1 runs in this process).")
@click.option("--ray", "ray_address", default=None, metavar="local|auto|ADDRESS",
              help="Run on Ray: 'local' starts one here, 'auto' joins the running cluster.")
@click.option("--per-layer", is_flag=True, help="Each layer's SQNR against float over the set; names error jumps.")
@click.option("--output", "output_name", default=None, help="The model output compared (default: the first).")
@click.option("--json", "json_path", default=None, type=OutputFile(stdout="text"),
              help="Also write the results as JSON ('-': stdout, and the table goes to stderr).")
@click.option("--resize", default=None, type=click.IntRange(min=1), help="Image folder: shorter side before the crop.")
@click.option("--crop", default=None, type=click.IntRange(min=1), help="Image folder: center crop size.")
@click.option("--mean", default="0.485,0.456,0.406", show_default=True, help="Image folder: per-channel mean.")
@click.option("--std", default="0.229,0.224,0.225", show_default=True, help="Image folder: per-channel std.")
@click.option("--layout", type=click.Choice(["nchw", "nhwc"]), default="nchw", show_default=True,
              help="Image folder: the input's layout.")
def eval_command(model, artifact, data, labels, limit, paths_text, workers, ray_address, per_layer, output_name,
                 json_path, resize, crop, mean, std, layout):
    """Accuracy over a data set: float onnxruntime on MODEL, the integer reference and the simulator
    on --artifact. Reports top-1/top-5, agreement with float, output SQNR and time per path."""
    from tcc.evaluation import EvalError, Preprocess, evaluate, format_eval

    def floats(text: str, option: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            raise EvalError(f"{option} {text!r}: give comma-separated numbers") from None

    preprocess = Preprocess(resize, crop, floats(mean, "--mean"), floats(std, "--std"), layout)
    paths = tuple(p.strip() for p in paths_text.split(",")) if paths_text else None
    with _progress_callback("evaluating") as progress:
        result = evaluate(model, artifact, data, labels, paths, limit, workers, ray_address, per_layer,
                          output_name, preprocess, progress)
    click.echo(format_eval(result), err=json_path == "-")  # standard output holds the JSON alone
    if json_path:
        import json

        from tcc.ir.fileio import write_atomic

        write_atomic(json_path, json.dumps(result.to_json(), indent=1) + "\n")
    if result.first_mismatch is not None:
        click.get_current_context().exit(1)


def _tcc_error() -> type[TccError]:
    from tcc.ir.errors import TccError

    return TccError


def main(argv=None) -> int:
    try:
        code = cli.main(args=argv, prog_name="tcc", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:  # one line, like every other error; the hint names the command's help
        command = exc.ctx.command_path if exc.ctx is not None else "tcc"
        click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except _tcc_error() as exc:  # evaluated only when an exception gets here: tcc.ir is loaded by then
        if _State.debug:
            traceback.print_exc()
        prefix = "" if str(exc).startswith("internal compiler error") else "error: "
        click.echo(f"{prefix}{exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError as exc:  # an absurd tensor size in the input, or a model too large for this machine
        if _State.debug:
            traceback.print_exc()
        click.echo(f"error: out of memory ({exc or 'MemoryError'}); check the shapes in the input", err=True)
        return 2
    except OSError as exc:  # the file system said no (a folder where a file goes, disk full, ...)
        if _State.debug:
            traceback.print_exc()
        if exc.filename2:  # a rename onto the output path (atomic writes)
            click.echo(f"error: cannot write {exc.filename2}: {exc.strerror}", err=True)
        elif exc.filename:
            click.echo(f"error: {exc.filename}: {exc.strerror}", err=True)
        else:
            click.echo(f"error: {exc}", err=True)
        return 2
    except Exception as exc:  # a bug in tcc: say so plainly, traceback only with --debug
        if _State.debug:
            traceback.print_exc()
        else:
            click.echo(f"internal compiler error: {type(exc).__name__}: {exc}\n"
                       f"(rerun with --debug for the traceback, and please report it)", err=True)
        return 3


def configure_process() -> None:
    """Process-wide settings of the ``tcc`` command, made before numpy is imported.

    numpy asks Linux for transparent huge pages on every large array (madvise).  Where the kernel
    then compacts memory on the page fault (THP defrag = madvise, the common default), touching
    fresh memory stalls: 28 MB took 0.01 s or 0.4-0.7 s at random here, against 0.02-0.07 s with
    ordinary pages, and a `tcc run` of ResNet-50 (a first run: DRAM image, weights, windows all
    fresh) took 2.1-2.4 s against 1.6-1.8 s.  Off by default for the command; the environment
    variable, numpy's own, still decides when it is set."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def entry() -> None:
    configure_process()
    sys.exit(main())
