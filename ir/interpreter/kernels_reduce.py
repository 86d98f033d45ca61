"""Kernels of ops_reduce: reductions with ONNX's values for empty sets, and arg max / arg min."""
from __future__ import annotations

import numpy as np

from ..shape_rules import normalize_axis


def _axes(attrs, x) -> tuple[int, ...]:
    return tuple(sorted({normalize_axis(a, x.ndim) for a in attrs["axes"]}))


def _highest(dtype):
    if dtype == np.bool_:
        return True
    return np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else np.inf


def reduce_min(attrs, x):
    return np.min(x, axis=_axes(attrs, x), keepdims=bool(attrs["keepdims"]), initial=_highest(x.dtype))


def _summing(transform, finish=None):
    def kernel(attrs, x):
        with np.errstate(divide="ignore"):
            total = np.sum(transform(x), axis=_axes(attrs, x), keepdims=bool(attrs["keepdims"]), dtype=x.dtype)
            return finish(total) if finish else total

    return kernel


def reduce_prod(attrs, x):
    return np.prod(x, axis=_axes(attrs, x), keepdims=bool(attrs["keepdims"]), dtype=x.dtype)


def reduce_log_sum_exp(attrs, x):
    """Shifted by the max (finite ones) so large inputs do not overflow."""
    axes, keep = _axes(attrs, x), bool(attrs["keepdims"])
    if x.size == 0 or not np.issubdtype(x.dtype, np.floating):
        with np.errstate(divide="ignore"):
            return np.log(np.sum(np.exp(x), axis=axes, keepdims=keep)).astype(x.dtype)
    peak = np.max(x, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    return (out if keep else np.squeeze(out, axis=axes)).astype(x.dtype)


def _arg(pick):
    def kernel(attrs, x):
        axis = normalize_axis(attrs["axis"], x.ndim)
        if attrs["select_last_index"]:
            flipped = np.flip(x, axis=axis)
            index = x.shape[axis] - 1 - pick(flipped, axis=axis)
        else:
            index = pick(x, axis=axis)
        index = np.asarray(index, np.int64)
        return np.expand_dims(index, axis) if attrs["keepdims"] else index

    return kernel


KERNEL_TABLE = (
    ("reduce_min", reduce_min),
    ("reduce_prod", reduce_prod),
    ("reduce_l1", _summing(np.abs)),
    ("reduce_l2", _summing(np.square, np.sqrt)),
    ("reduce_log_sum", _summing(lambda x: x, np.log)),
    ("reduce_log_sum_exp", reduce_log_sum_exp),
    ("reduce_sum_square", _summing(np.square)),
    ("arg_max", _arg(np.argmax)),
    ("arg_min", _arg(np.argmin)),
)
