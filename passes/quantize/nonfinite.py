"""Non-finite values met during calibration: carried by the model's construction, or a float32 overflow.

Calibration data must be finite (calibration.load_samples refuses +-Inf and NaN in the samples).
Inside the model, a non-finite value is legitimate when the model makes it so on purpose:
- a constant holds it (an attention mask of -inf, ONNX's Attention bias);
- an operand already held one (the mask added to the scores, then the softmax: propagation);
- the op's definition gives it at finite points: log(0), x / 0, a reduction over an empty set,
  sqrt of a negative number, a cast to float16 beyond its range.
It is an overflow of float32 -- the calibration data's scale is wrong, every range after it is
garbage, and calibration refuses it -- when the same op computed in float64 on the same operands
is finite where float32 is not (a convolution of values near 3e38, exp(100)).

Observers record the finite values of such a tensor only, and that it carried non-finite ones
(observers.MinMaxObserver.non_finite); the lowering keeps every op reading or making it off the
int8 grid (rules.py), which has no code for an infinity.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tcc.ir import Module, Value
from tcc.ir.interpreter import run_module


def is_float(array: np.ndarray) -> bool:
    """numpy floats and ml_dtypes' narrow floats (bf16, float8: kind "V")."""
    return array.dtype.kind == "f" or (array.dtype.kind == "V" and array.dtype.itemsize <= 2)


def all_finite(array: np.ndarray) -> bool:
    if not is_float(array):
        return True
    return bool(np.isfinite(array.astype(np.float32) if array.dtype.kind == "V" else array).all())


def overflows_float32(module: Module, value: Value, array: np.ndarray, sample: Mapping[str, np.ndarray]) -> bool:
    """Whether ``value`` (non-finite in ``array``, made by an op whose operands were all finite on
    ``sample``) is a float32 overflow: its op, run on the same operands widened to float64, is
    finite at a position where ``array`` is not.  The operands are recomputed by running the sample
    again, which only happens for the rare tensor that is not finite."""
    from tcc.ir.interpreter.registry import KERNELS, OP_KERNELS

    op = value.producer
    assert op is not None
    wanted = {id(v): v for v in op.operands}
    captured: dict[int, np.ndarray] = {}

    def capture(v: Value, a: np.ndarray) -> None:
        if id(v) in wanted and id(v) not in captured:
            captured[id(v)] = a

    with np.errstate(all="ignore"):
        run_module(module, sample, observe=capture)
        operands = [_widened(captured[id(v)]) for v in op.operands]
        try:
            produced = OP_KERNELS[op.kind](op, *operands) if op.kind in OP_KERNELS else \
                KERNELS[op.kind](op.attrs, *operands)
        except Exception:  # a kernel that takes float32 only: treat the value as the overflow it may be
            return True
    produced = produced if isinstance(produced, tuple) else (produced,)
    wide = np.asarray(produced[op.results.index(value)])
    if not is_float(wide) or wide.shape != array.shape:
        return True
    wide = wide.astype(np.float64)
    return bool(np.any(~np.isfinite(array) & np.isfinite(wide)))


def _widened(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float64) if is_float(array) else array
