"""Fuzz targets: one function per input format tcc reads, each taking raw bytes.

A target returns normally when tcc accepts the input and raises ``TccError`` when tcc rejects it
(what the CLI prints before exiting 2); any other exception is a crash (``run`` tells them apart).  ``SEEDS`` gives valid
inputs of each format, made from the bundled digits model, for mutation-based fuzzing.
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from tcc.ir.errors import TccError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
CORPUS = Path(__file__).resolve().parent / "corpus"


def ir_parser(data: bytes) -> None:
    """Textual IR: parse and verify, as ``tcc opt`` / ``tcc run`` do (driver.load_ir)."""
    from tcc.driver import load_ir

    _through_file(data, ".tir", load_ir)


def assembler(data: bytes) -> None:
    """Assembly text, as ``tcc asm`` reads it."""
    from tcc.isa import assemble_file

    _through_file(data, ".s", assemble_file)


def decoder(data: bytes) -> None:
    """Program words: decode and disassemble, and any word that decodes re-encodes to itself."""
    from tcc.isa import decode, disassemble, encode

    words = np.frombuffer(data[: len(data) // 8 * 8], dtype="<u8").astype(np.uint64)
    for word in words.tolist():
        try:
            instr = decode(word)
        except TccError:
            continue
        if encode(instr) != word:
            raise AssertionError(f"0x{word:016x} decodes to {instr} which encodes to 0x{encode(instr):016x}")
    from tcc.isa import assemble

    again = [encode(i) for i in assemble(disassemble(words))]  # IllegalInstruction for a bad word
    if again != words.tolist():
        raise AssertionError("disassembly does not assemble back to the same words")


def artifact_loader(data: bytes) -> None:
    """A .tcc file: load it and open a session on it (parses metadata, IR and target)."""
    from tcc.backends.artifact import Artifact
    from tcc.runtime import Session

    Session(Artifact.from_bytes(data, "<fuzz>"))


def artifact_body(data: bytes) -> None:
    """Like ``artifact_loader``, but ``data`` is the metadata JSON of a valid artifact, re-packed with a
    correct header and checksum, so mutations reach the checks behind the checksum."""
    artifact_loader(repack(_digits_artifact(), metadata=data))


def sparse_body(data: bytes) -> None:
    """The metadata JSON of a valid sparse artifact (the events network), re-packed with a correct
    header and checksum: load it, run the token simulator, describe it and report."""
    from tcc.backends.sparse import SparseArtifact
    from tcc.runtime.sparse_session import SparseSession

    artifact = SparseArtifact.from_bytes(repack_sparse(_events_artifact(), metadata=data), "<fuzz>")
    session = SparseSession(artifact)
    session.run_dict({"input": _events_input()})
    session.format_performance(session.performance_report())
    artifact.describe()


def hetero_loader(data: bytes) -> None:
    """A heterogeneous .tcc file (device programs and host partitions): load it, open a session."""
    from tcc.backends.artifact import HeteroArtifact
    from tcc.runtime.hetero_session import HeteroSession

    HeteroSession(HeteroArtifact.from_bytes(data, "<fuzz>"))


def hetero_body(data: bytes) -> None:
    """``data`` is the metadata JSON of a valid heterogeneous artifact, re-packed with a correct header."""
    from tcc.backends.artifact import pack, unpack

    hetero_loader(pack("heterogeneous", [data] + unpack("heterogeneous", _gated_artifact(), "<seed>")[1:]))


def onnx_loader(data: bytes) -> None:
    """An .onnx file, imported as ``tcc compile`` does."""
    from tcc.frontend import import_onnx

    _through_file(data, ".onnx", import_onnx)


def calib_loader(data: bytes) -> None:
    """A calibration .npz for the digits model: load its samples (ir/npz.py) and calibrate on two."""
    from tcc.passes.quantize.calibration import calibrate, load_samples

    module = _digits_float_module()  # shared: loading and calibrating only read the module
    _through_file(data, ".npz", lambda path: calibrate(module, load_samples(path, module, max_samples=2)))


def target_loader(data: bytes) -> None:
    """A target description (TOML), read as ``--target-config`` (overlay) and as a sparse target is:
    accepted if either loader accepts it, so each loader's own checks are reached."""
    from tcc.backends.sparse.target import load_sparse_target
    from tcc.isa.target import load_target

    rejected: TccError | None = None
    accepted = False
    for load in (load_target, load_sparse_target):
        try:
            _through_file(data, ".toml", load)
            accepted = True
        except TccError as exc:
            rejected = exc
    if not accepted and rejected is not None:
        raise rejected


# -- parsing an artifact's IR section once ----------------------------------------------------------
_PARSED: dict[tuple[str, str], object] = {}


def _parse_once(text: str, filename: str = "<string>"):
    """``parse_module`` for the sessions the targets open.  The ``*_body`` targets mutate metadata
    only, so every case carries the seed's IR section, and parsing it again is most of a case's time
    (0.1 s for the events network).  Parsing is deterministic: a text that parsed once is handed out
    as a deep copy of that module; a text that fails, or is new, is parsed for real.  The parser
    itself is fuzzed by ``ir_parser``."""
    import copy

    from tcc.ir import parse_module

    key = (text, filename)
    if key not in _PARSED:
        module = parse_module(text, filename)
        if len(_PARSED) < 16:
            _PARSED[key] = module
        return module
    return copy.deepcopy(_PARSED[key])


def _sessions_parse_once() -> None:
    import tcc.runtime.hetero_session
    import tcc.runtime.session
    import tcc.runtime.sparse_session

    for module in (tcc.runtime.session, tcc.runtime.hetero_session, tcc.runtime.sparse_session):
        module.parse_module = _parse_once  # type: ignore[attr-defined]


def _through_file(data: bytes, suffix: str, load) -> None:
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        load(path)
    finally:
        os.unlink(path)


# -- seeds -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _digits_float_ir() -> str:
    from tcc.driver import compile_to_ir
    from tcc.ir import print_module

    module, _ = compile_to_ir(DIGITS / "digits_cnn.onnx")
    return print_module(module)


@lru_cache(maxsize=1)
def _digits_float_module():
    from tcc.ir import parse_module

    return parse_module(_digits_float_ir())


@lru_cache(maxsize=1)
def _digits_quant_ir() -> str:
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.ir import print_module
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    calib = DIGITS / "digits_calib.npz"
    module, _ = compile_to_ir(DIGITS / "digits_cnn.onnx", {}, DEFAULT_FLOAT_PIPELINE + quantization_pipeline(calib))
    return print_module(module)


@lru_cache(maxsize=1)
def _digits_artifact() -> bytes:
    from tcc.backends.overlay import compile_overlay
    from tcc.ir import parse_module

    return compile_overlay(parse_module(_digits_quant_ir())).to_bytes()


@lru_cache(maxsize=1)
def _events_artifact() -> bytes:
    """The event-camera network compiled for the sparse target (submanifold, calibration samples)."""
    from tcc.backends.sparse import compile_sparse
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    events = ROOT / "examples" / "events"
    calib = events / "events_calib.npz"
    passes = DEFAULT_FLOAT_PIPELINE + quantization_pipeline(calib, sparse_mode="submanifold") \
        + (f"annotate-sparsity{{calib={calib},mode=submanifold}}",)
    module, _ = compile_to_ir(events / "events_dense.onnx", {}, passes)
    return compile_sparse(module, mode="submanifold").to_bytes()


@lru_cache(maxsize=1)
def _events_input() -> np.ndarray:
    return np.load(ROOT / "examples" / "events" / "events_test.npz")["input"][:1]


def repack_sparse(artifact: bytes, metadata: bytes | None = None) -> bytes:
    """A sparse artifact with its metadata section replaced and a header that fits.  The metadata
    lists the weights' places in the weight section: a replacement lacking them gets the original's."""
    import json

    from tcc.backends.artifact import pack, unpack

    original, *rest = unpack("sparse", artifact, "<seed>")
    meta = original if metadata is None else metadata
    try:
        doc = json.loads(meta)
        if isinstance(doc, dict) and "weights" not in doc:
            doc["weights"] = json.loads(original)["weights"]
            meta = json.dumps(doc).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    return pack("sparse", [meta] + rest)


@lru_cache(maxsize=1)
def _gated_artifact() -> bytes:
    """examples/hetero's gated CNN: a Greater + Where gate on the host between device partitions."""
    from tcc.backends.overlay.hetero import compile_heterogeneous
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    hetero = DIGITS.parent / "hetero"
    module, _ = compile_to_ir(hetero / "gated_cnn.onnx", {},
                              DEFAULT_FLOAT_PIPELINE + quantization_pipeline(hetero / "gated_cnn_calib.npz"))
    return compile_heterogeneous(module).to_bytes()


def _shape_ops_model() -> bytes:
    """A small model whose shapes are computed by folded ops (Shape, Range, ConstantOfShape, Expand,
    Tile, Concat, Reshape) feeding Transpose, MatMul and Softmax, so mutations reach the folder."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name, values, dtype=np.int64):
        return numpy_helper.from_array(np.array(values, dtype), name)

    nodes = [
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("ConstantOfShape", ["xs"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("Add", ["x", "ones"], ["x1"]),
        helper.make_node("Range", ["r0", "r1", "r2"], ["idx"]),
        helper.make_node("Cast", ["idx"], ["idxf"], to=TensorProto.FLOAT),
        helper.make_node("Expand", ["idxf", "eshape"], ["grid"]),
        helper.make_node("Tile", ["grid", "reps"], ["tiled"]),
        helper.make_node("Mul", ["x1", "tiled"], ["x2"]),
        helper.make_node("Concat", ["xs", "extra"], ["cat"], axis=0),
        helper.make_node("Reshape", ["x2", "rshape"], ["x3"]),
        helper.make_node("Transpose", ["x3"], ["x4"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x4", "w"], ["x5"]),
        helper.make_node("Softmax", ["x5"], ["y"], axis=-1),
    ]
    inits = [const("r0", 0), const("r1", 4), const("r2", 1), const("eshape", [2, 4]), const("reps", [1, 2]),
             const("extra", [1]), const("rshape", [1, 4, 4]),
             numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), "w")]
    graph = helper.make_graph(nodes, "shape_ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def repack(artifact: bytes, metadata: bytes | None = None) -> bytes:
    """``artifact`` with its metadata section replaced and a header (lengths, checksum) that fits."""
    from tcc.backends.artifact import pack, unpack

    meta, *rest = unpack("overlay", artifact, "<seed>")
    return pack("overlay", [meta if metadata is None else metadata] + rest)


def repack_metadata(artifact: bytes, edit) -> bytes:
    """``artifact`` with its metadata replaced by ``edit(metadata dict)``, re-checksummed."""
    import json

    return repack(artifact, json.dumps(edit(json.loads(_metadata(artifact)))).encode())


def _metadata(artifact: bytes) -> bytes:
    from tcc.backends.artifact import unpack

    return unpack("overlay", artifact, "<seed>")[0]


def seeds(target: str) -> list[bytes]:
    if target == "ir_parser":
        return [_digits_float_ir().encode(), _digits_quant_ir().encode()]
    if target in ("assembler", "decoder"):
        from tcc.isa import disassemble

        from tcc.backends.artifact import Artifact

        program = Artifact.from_bytes(_digits_artifact()).program
        if target == "assembler":
            return [disassemble(program).encode(), disassemble(program, with_pc=False).encode()]
        return [program.astype("<u8").tobytes()]
    if target == "artifact_loader":
        return [_digits_artifact()]
    if target == "artifact_body":
        return [_metadata(_digits_artifact())]
    if target == "calib_loader":
        import io

        _digits_float_module()  # built here, not inside the first (timed) case

        with np.load(DIGITS / "digits_calib.npz") as calib:
            few = calib["input"][:3]
        plain, packed = io.BytesIO(), io.BytesIO()
        np.savez(plain, input=few)
        np.savez_compressed(packed, input=few[:2], label=np.arange(2))  # an extra key is ignored
        return [plain.getvalue(), packed.getvalue()]
    if target == "hetero_loader":
        return [_gated_artifact()]
    if target == "hetero_body":
        from tcc.backends.artifact import unpack

        return [unpack("heterogeneous", _gated_artifact(), "<seed>")[0]]
    if target == "target_loader":
        from tcc.backends.sparse.target import DEFAULT_SPARSE_TARGET
        from tcc.isa.target import DEFAULT_TARGET

        return [DEFAULT_TARGET.read_bytes(), DEFAULT_SPARSE_TARGET.read_bytes(),
                (DEFAULT_SPARSE_TARGET.parent / "u250.toml").read_bytes()]
    if target == "onnx_loader":
        return [(DIGITS / "digits_cnn.onnx").read_bytes(), _shape_ops_model()]
    if target == "sparse_body":
        from tcc.backends.artifact import unpack

        return [unpack("sparse", _events_artifact(), "<seed>")[0]]
    raise KeyError(target)


def run(target: str, data: bytes) -> bool:
    """Run a target: True if tcc accepted ``data``, False if it rejected it with a TccError; a crash
    propagates."""
    _sessions_parse_once()
    try:
        TARGETS[target](data)
        return True
    except TccError:
        return False


TARGETS = {"ir_parser": ir_parser, "assembler": assembler, "decoder": decoder, "artifact_loader": artifact_loader,
           "artifact_body": artifact_body, "sparse_body": sparse_body, "hetero_loader": hetero_loader,
           "hetero_body": hetero_body, "onnx_loader": onnx_loader, "calib_loader": calib_loader,
           "target_loader": target_loader}


def corpus_files(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md") if folder.is_dir() else []


def save_crash(target: str, data: bytes) -> Path:
    import hashlib

    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    return path
