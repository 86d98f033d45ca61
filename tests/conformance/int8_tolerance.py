"""The tolerance of the int8 conformance runs (``--quant int8``): how far an int8 model's float
output may be from ONNX's expected value and still count as right.

An element passes when ``|actual - expected| <= atol + rtol * |expected| + slack``:
- ``atol``: ``STEPS`` steps of the int8 grid the quantizer would give the expected output, the
  range widened to include 0 as ``activation_params`` widens it (one step is that span / 255; a
  one-element or constant output still has a grid), plus the case's own ``atol``;
- ``rtol``: the case's ``rtol`` or bf16's relative rounding (two units of 2**-8), whichever is
  larger: an op the quantizer leaves off the int8 grid runs in bf16;
- ``slack`` (only looked at when the first two miss): how far the *float* path's output moves when
  its float inputs are rounded as the int8 model rounds them -- onto their int8 grid (range
  widened to include 0), to bf16 -- or moved by half an int8 step up or down.  A steep or
  discontinuous function (acosh at 1, tan near pi/2, ThresholdedRelu at its threshold, softmax
  of 10000..10003, which bf16 cannot tell apart) owes that error to the rounding of its input,
  not to the compiler.

Integer and bool outputs are compared exactly (conformance_cases._compare).
"""
from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np

STEPS = 8  # int8 steps of the expected output's grid
BF16_RTOL = 2 * 2.0 ** -8


def atol_rtol(expected: np.ndarray, case_atol: float, case_rtol: float) -> tuple[float, float]:
    finite = expected[np.isfinite(expected)]
    span = float(max(finite.max(), 0.0) - min(finite.min(), 0.0)) if finite.size else 0.0
    return STEPS * span / 255 + case_atol, max(case_rtol, BF16_RTOL)


PATTERNS = ("int8", "bf16", "up", "down")


def rounding_slack(run_float: Callable[[dict], dict], feeds: dict, names: list[str]) -> dict[str, np.ndarray]:
    """Per output name, the largest move of the float path's output over the input-rounding
    ``PATTERNS`` (NaN moves -- an input pushed out of the function's domain -- count as none)."""
    base = run_float(feeds)
    slack = {n: np.zeros(np.shape(base[n])) for n in names if n in base}
    for pattern in PATTERNS:
        moved = run_float({k: _rounded(x, pattern) for k, x in feeds.items()})
        for n in slack:
            if np.shape(moved.get(n)) != slack[n].shape or not _is_float(np.asarray(base[n])):
                continue
            with np.errstate(all="ignore"):
                diff = np.abs(np.asarray(moved[n], np.float64) - np.asarray(base[n], np.float64))
            slack[n] = np.maximum(slack[n], np.where(np.isfinite(diff), diff, 0.0))
    return slack


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or "float" in a.dtype.name


def _rounded(x, pattern: str):
    a = np.asarray(x)
    if a.dtype.kind != "f":
        return x
    wide = a.astype(np.float64)
    finite = wide[np.isfinite(wide)]
    lo, hi = (min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)) if finite.size else (0.0, 0.0)
    step = (hi - lo) / 255
    if pattern == "bf16":
        return wide.astype(ml_dtypes.bfloat16).astype(a.dtype)
    if pattern == "int8":
        if step == 0:
            return x
        zero_point = np.round(-128 - lo / step)
        q = np.clip(np.round(wide / step) + zero_point, -128, 127)
        return np.where(np.isfinite(wide), (q - zero_point) * step, wide).astype(a.dtype)
    return (wide + (step / 2 if pattern == "up" else -step / 2)).astype(a.dtype)
