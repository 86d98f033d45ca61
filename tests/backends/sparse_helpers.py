"""Shared builders for the sparse target tests: quantized + annotated modules, compiled once."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EVENTS = EXAMPLES / "events"
DIGITS = EXAMPLES / "digits"


def annotated(model: Path, calib: Path, mode: str, shapes=None):
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    passes = DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib), sparse_mode=mode) + (
        f"annotate-sparsity{{calib={calib},mode={mode}}}",)
    module, _ = compile_to_ir(str(model), shapes or {}, passes)
    return module


@functools.lru_cache(maxsize=None)
def compiled(name: str, mode: str):
    """(SparseArtifact, SparseSession) of an example model in a mode."""
    from tcc.backends.sparse import compile_sparse
    from tcc.runtime.sparse_session import SparseSession

    model, calib = {"events": (EVENTS / "events_dense.onnx", EVENTS / "events_calib.npz"),
                    "digits": (DIGITS / "digits_cnn.onnx", DIGITS / "digits_calib.npz")}[name]
    artifact = compile_sparse(annotated(model, calib, mode), mode)
    return artifact, SparseSession(artifact)


def masked(x: np.ndarray, density: float, seed: int) -> np.ndarray:
    """x with each site kept with probability ``density`` (all channels of a dropped site zeroed)."""
    rng = np.random.default_rng(seed)
    keep = rng.random((x.shape[0], 1) + x.shape[2:]) < density
    return (x * keep).astype(np.float32)


def squeezenet_small(tmp_path, size: int = 64):
    """The light-zoo SqueezeNet with random weights and its input bound to size x size (it ends
    in a global pool, so any size runs), its quantized IR annotated in exact mode, and one input."""
    import onnx

    import light_zoo

    model = light_zoo.randomized("squeezenet")
    inits = {i.name for i in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    for axis in (2, 3):
        inp.type.tensor_type.shape.dim[axis].dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        del out.type.tensor_type.shape.dim[:]
    path = tmp_path / "squeezenet.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", **{inp.name: rng.standard_normal((4, 3, size, size)).astype(np.float32)})
    return annotated(path, tmp_path / "calib.npz", "exact"), inp.name, rng.standard_normal((1, 3, size, size))
