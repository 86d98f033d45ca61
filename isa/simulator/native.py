"""The simulator's optional C kernels (``native.c``, built by ``pip install`` when a C compiler is
there): the requantization stage, the bf16 lane arithmetic and the matrix unit's small products,
each in one pass over the data where the numpy path makes several.  Each kernel is the simulator's datapath for what it covers,
computing exactly what the numpy path beside it computes (tests/isa/test_native.py compares them,
and the spec module ir/numerics, at the extremes); where a kernel refuses (the spec's range errors)
the numpy path runs and raises.

``kernels`` is the extension module, or None when it is not built, is disabled by
``TCC_SIM_NATIVE=0`` in the environment, or the machine is big-endian (the kernels read pbuf's
little-endian words natively).  ``enabled = False`` here turns it off for machines made after.
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np

try:  # (imported by name: the extension is no module of the tree)
    _native = importlib.import_module(f"{__package__}._native")
except ImportError:  # not built: the numpy path
    _native = None

enabled = os.environ.get("TCC_SIM_NATIVE", "1") != "0" and sys.byteorder == "little"


def kernels():
    """The C kernels' module if they are built and enabled, else None (the numpy path)."""
    return _native if enabled else None


def status() -> str:
    """One line for ``tcc --version``-like reports: whether the C kernels run."""
    if _native is None:
        return "numpy (the C kernels are not built)"
    return "C kernels" if enabled else "numpy (TCC_SIM_NATIVE=0)"


def lanewise(out: np.ndarray, x: np.ndarray) -> bool:
    """Whether a step may write ``out`` while it reads ``x`` element by element: ``out`` is ``x``
    itself (each element is read just before it is written) or clear of it, compared on each
    sample's lanes (a batch's views span the samples between them)."""
    return not np.may_share_memory(out[0], x[0]) or out.__array_interface__ == x.__array_interface__


def step(kind: str, op: int, *operands):
    """A prepared C step (``native.c: step``) doing one action on views that stay the same run
    after run: ``kind`` LANES (op, out, a, b[, c]), PAIR (out, a, b, table), GATHER (out, index,
    table, or a compacted table's blocks and segments), COPY (out, source), LUT (out, x, tables),
    REQUANT, MM or EADD (see native.c; these three take a fallback, called where they decline);
    their operands are checked and held once, so a call costs no parsing.  None where the kernels are off or refuse the operands (a geometry the
    kernel does not take): the caller's numpy action runs instead."""
    fused = kernels()
    code = getattr(fused, f"STEP_{kind}", None)  # (None too where a stale build lacks the kind)
    if code is None or not hasattr(fused, "step"):
        return None
    try:
        return fused.step(code, op, *operands)
    except (ValueError, BufferError):
        return None


_PRODUCT_MAX = 2**62 - 1  # integer.py's bound on |acc * multiplier|, less one


def requant_parameters(block: np.ndarray) -> np.ndarray:
    """The ``requant`` kernel's table from pbuf's (channels, 3) int32 (bias, multiplier, shift)
    triples: contiguous int64 rows bias, multiplier, ``bound`` (the largest |v| with |v *
    multiplier| < 2**62), shift, min(shift, 63) and half of 2**that (0 for a zero shift), one column
    per channel, or one for all when every channel's triple is the same (the kernel then reads
    its parameters once, not per lane)."""
    if len(block) > 1 and (block[1:] == block[:1]).all():
        block = block[:1]
    bias, multiplier, shift = (block[:, i].astype(np.int64) for i in range(3))
    bound = _PRODUCT_MAX // np.maximum(multiplier, 1)
    shift63 = np.clip(shift, 0, 63)
    half = np.where(shift63 > 0, np.left_shift(1, np.maximum(shift63 - 1, 0)), 0)
    return np.ascontiguousarray(np.stack([bias, multiplier, bound, shift, shift63, half]), np.int64)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray | None:
    """``numerics.quantize_affine(x, scale, zero_point)`` to int8 (qmin -128, qmax 127) in one C pass
    (``native.c: quantize``) for a float32 ``x`` (any shape, contiguous) and one scale; None where
    the kernels are off, ``x`` is of another form, or the spec would refuse (the caller's path
    then runs, and raises)."""
    fused = kernels()
    if fused is None or not hasattr(fused, "quantize") or not isinstance(x, np.ndarray) or x.dtype != np.float32 \
            or not x.flags.c_contiguous:
        return None
    out = np.empty(x.shape, np.int8)
    try:
        fused.quantize(out, x, float(np.float32(scale)), int(zero_point), -128, 127)
    except (ValueError, OverflowError, BufferError):
        return None
    return out


def copy(out: np.ndarray, source: np.ndarray) -> bool:
    """``out[...] = source`` (same shape and item size, no overlap) by ``native.c``'s copy step, its
    axes merged and the longest innermost (a transposing copy's few long loops: a 96x96x3 image
    from channels-first in 8 us, numpy's strided copy 31); False where the kernels are off or
    refuse (the caller copies)."""
    made = step("COPY", 0, out, source)
    if made is None:
        return False
    made()
    return True
