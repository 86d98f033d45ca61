"""The compiler driver: the stages behind each CLI command, callable from Python too."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tcc.ir import Module, parse_module, print_module, verify
from tcc.ir.errors import IRParseError, TccError, VerifyError
from tcc.ir.fileio import write_atomic
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PassManager, parse_pipeline


class UsageError(TccError):
    """A command-line value that cannot be used (bad --input-shape, missing file, ...)."""


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


def run_pipeline(module: Module, passes, dump_after=(), dump_dir=None, dump_names=None) -> PassManager:
    """Run ``passes`` over ``module``, dumping the IR after the passes named in ``dump_after``
    (``dump_names``: the passes those names may be checked against, default the pipeline's)."""
    pipeline = parse_pipeline(passes) if passes else []
    check_dump_names(dump_after, pipeline if dump_names is None else dump_names)
    dump = "all" if "all" in dump_after else set(dump_after)
    manager = PassManager(pipeline, dump_after=dump, dump_dir=Path(dump_dir) if dump_dir else None)
    if manager.wants_dump("import"):
        manager.dump(module, "import")
    manager.run(module)
    return manager


def check_dump_names(dump_after, pipeline) -> None:
    """Every ``--dump-ir-after`` name is 'all', 'import' or a pass of the pipeline."""
    names = {p.name for p in pipeline}
    for name in dump_after:
        if name not in names | {"all", "import"}:
            runs = ", ".join(dict.fromkeys(p.name for p in pipeline)) or "none"
            raise UsageError(f"--dump-ir-after {name}: no pass of that name runs here, so nothing would be "
                             f"dumped (the passes that run: {runs}; or 'all', 'import')")


def quantization_pipeline(calib, quant="int8", method="minmax", weights="int8", symmetric=False,
                          budget_bytes=None, budget_cycles=None, candidates=None,
                          sparse_mode=None) -> tuple[str, ...]:
    """The passes that follow the float pipeline when calibration data is given.

    Without ``calib``, ``quant="int8"`` quantizes with the parameters a pre-quantized (QDQ) model
    pins on its tensors (see ``require_pinned``).

    ``quant="mixed"`` chooses weight formats per layer under one budget (mixed-precision pass).

    ``sparse_mode="submanifold"`` calibrates on the values the sparse target computes.
    """
    from tcc.passes import PRE_QUANT_PIPELINE

    if quant not in ("int8", "mixed"):
        raise UsageError(f"--quant {quant} is not available; use int8 or mixed")
    if "," in str(calib) or "}" in str(calib):
        raise UsageError(f"--calib path {calib!r} may not contain ',' or '}}'")
    if quant == "int8":
        if budget_bytes is not None or budget_cycles is not None or candidates is not None:
            raise UsageError("--budget-bytes, --budget-cycles and --candidates go with --quant mixed")
        options = f"calib={calib or ''},method={method},weights={weights},symmetric={symmetric}"
        if sparse_mode == "submanifold":
            options += ",sparse_mode=submanifold"
        return PRE_QUANT_PIPELINE + (f"quantize{{{options}}}", "dce")
    if sparse_mode == "submanifold":
        raise UsageError("--quant mixed does not calibrate with submanifold semantics yet; use --quant int8")
    if weights != "int8":
        raise UsageError("--quant mixed chooses each layer's weight format; give the formats to choose "
                         "from with --candidates instead of --weights")
    if (budget_bytes is None) == (budget_cycles is None):
        raise UsageError("--quant mixed needs one budget: --budget-bytes N or --budget-cycles N")
    options = f"calib={calib},method={method},symmetric={symmetric},"
    options += f"budget_bytes={budget_bytes}" if budget_bytes is not None else f"budget_cycles={budget_cycles}"
    if candidates is not None:
        options += ",candidates=" + "/".join(c.strip() for c in candidates.split(","))
    return PRE_QUANT_PIPELINE + (f"mixed-precision{{{options}}}", "dce")


def compile_to_ir(model, input_shapes=None, passes=DEFAULT_FLOAT_PIPELINE, dump_after=(),
                  dump_dir=None, require_pins=False) -> tuple[Module, PassManager]:
    """Import an ONNX model and run the float pipeline over it.

    ``require_pins``: the pipeline quantizes without calibration data, so the imported model must
    carry quantization parameters on every float tensor (checked before any pass runs).
    """
    from tcc.frontend import import_onnx

    module = import_onnx(model, input_shapes=dict(input_shapes or {}))
    if require_pins:
        require_pinned(module)
    manager = run_pipeline(module, passes, dump_after, dump_dir)
    return module, manager


def require_pinned(module: Module) -> None:
    """Every non-constant float value must carry int8 parameters (a QDQ model's) to quantize
    without calibration; otherwise a UsageError names the first that does not."""
    missing = [v for v in module.values() if v.type.dtype == "f32" and v.type.quant is None
               and (v.producer is None or v.producer.kind != "const")]
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


def load_inputs(path, module: Module) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable .npz file ({exc})") from None


#: Random inputs larger than this are refused rather than allocated (a corrupted or absurd shape).
RANDOM_INPUT_LIMIT_BYTES = 2**30


def random_inputs(module: Module, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs drawn from N(0, 1) (integer inputs: zeros), for quick runs without data.
    An input over RANDOM_INPUT_LIMIT_BYTES is a UsageError, checked before anything is allocated."""
    from tcc.ir.dtypes import is_float, to_numpy

    for v in module.inputs:
        size = v.type.size * to_numpy(v.type.dtype).itemsize
        if size > RANDOM_INPUT_LIMIT_BYTES:
            raise UsageError(f"input {v.name!r} of type {v.type} would take {size} bytes of random data; "
                             f"give the inputs with --inputs FILE.npz")
    rng = np.random.default_rng(seed)
    out = {}
    for v in module.inputs:
        dtype = to_numpy(v.type.dtype)
        if is_float(v.type.dtype):
            out[v.name] = rng.standard_normal(v.type.shape).astype(dtype)
        else:
            out[v.name] = np.zeros(v.type.shape, dtype)
    return out


def save_outputs(path, outputs: dict[str, np.ndarray]) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    write_atomic(path, buffer.getvalue())
