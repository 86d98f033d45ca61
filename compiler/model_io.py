"""A model's inputs and outputs as files, for running it (``tcc run``): load an .npz of inputs, draw
random ones, save the outputs; and ``UsageError``, a command-line value that cannot be used.

Kept apart from the driver so that running an artifact imports neither the passes nor the frontend.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module
from tcc.ir.errors import TccError
from tcc.ir.fileio import write_atomic
from tcc.ir.npz import read_npz


class UsageError(TccError):
    """A command-line value that cannot be used (bad --input-shape, missing file, ...)."""


def load_inputs(path, module: Module, batch: bool = False) -> dict[str, np.ndarray]:
    """The arrays of an .npz of model inputs; every key must name an input and have its shape, checked
    before any array is decompressed (``ir/npz.py``).  With ``batch``, an input whose shape has 1 on
    axis 0 may hold N samples there instead (the same N for every such input)."""
    expected = {v.name: v.type for v in module.inputs}
    samples: set[int] = set()

    def check(key: str, shape: tuple[int, ...], dtype) -> bool:
        if key not in expected:
            raise UsageError(f"{path}: key {key!r} is not an input of the model; its inputs: "
                             + ", ".join(f"{name!r}: {t}" for name, t in expected.items()))
        want = expected[key].shape
        if batch and want[:1] == (1,) and len(shape) == len(want) and shape[1:] == want[1:] and shape[0] >= 1:
            samples.add(shape[0])
            if len(samples) > 1:
                raise UsageError(f"{path}: key {key!r} holds {shape[0]} samples on axis 0, another input "
                                 f"{min(samples - {shape[0]})}")
            return True
        if shape != want:
            raise UsageError(f"{path}: key {key!r} has shape {list(shape)} ({dtype}), expected {expected[key]}"
                             + (" (or N samples on axis 0)" if batch and want[:1] == (1,) else ""))
        return True

    return read_npz(path, "input file", check)


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
    np.savez(buffer, **outputs)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    write_atomic(path, buffer.getvalue())
