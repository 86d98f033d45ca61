"""Host kernels of the ops whose output *shape* depends on their input values.

These ops have no IR op (the IR is static-shape): a model's host tail (``ir/host_tail.py``) runs
them between statically imported segments, on arrays whose values are known.  Each follows the
ONNX operator specification; written here, not borrowed from ``onnx.reference``, so ONNX's
conformance outputs check them.
"""
from __future__ import annotations

import numpy as np


def nonzero(x: np.ndarray) -> np.ndarray:
    """ONNX NonZero: the indices of the non-zero elements, int64 [rank, count], row-major order."""
    x = np.asarray(x)
    if x.ndim == 0:  # a scalar is treated as a one-element vector
        x = x.reshape(1)
    return np.stack(np.nonzero(x)).astype(np.int64).reshape(x.ndim, -1)


def unique(x: np.ndarray, axis: int | None, sorted_: bool) -> tuple[np.ndarray, ...]:
    """ONNX Unique: (unique values or slices, index of each one's first occurrence, the index into
    them of every input element or slice, occurrence counts).  ``sorted_=False`` keeps them in
    order of first occurrence."""
    x = np.asarray(x)
    if axis is None:
        flat = x.reshape(-1)
        values, first, inverse, counts = np.unique(flat, return_index=True, return_inverse=True,
                                                   return_counts=True)
    else:
        axis = axis % x.ndim
        moved = np.moveaxis(x, axis, 0)
        rows = moved.reshape(moved.shape[0], -1)
        _, first, inverse, counts = np.unique(rows, axis=0, return_index=True, return_inverse=True,
                                              return_counts=True)
        values = moved[first]
    inverse = inverse.reshape(-1)
    if not sorted_:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        first, counts, inverse = first[order], counts[order], rank[inverse]
        values = values[order]
    if axis is not None:
        values = np.moveaxis(values, 0, axis)
    return (values.astype(x.dtype), first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64))


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, max_per_class: int, iou_threshold: float,
                        score_threshold: float | None, center_point_box: int) -> np.ndarray:
    """ONNX NonMaxSuppression: int64 [selected, 3] rows (batch, class, box).

    Per batch and class: boxes scoring above ``score_threshold`` (all, when None) in decreasing
    score (ties: lower index first); a box is kept unless its IoU with a kept box of the class
    exceeds ``iou_threshold``; at most ``max_per_class`` kept.  IoU is computed in the boxes'
    float precision, in the operation order of the reference implementations (symmetric in the
    two boxes, so each kept box's row of IoUs suppresses at once), so boundary cases decide alike."""
    rows: list[tuple[int, int, int]] = []
    if max_per_class <= 0:
        return np.zeros((0, 3), np.int64)
    for b in range(boxes.shape[0]):
        lo, hi = _corners(boxes[b], center_point_box)
        area = (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])
        everyone = np.arange(boxes.shape[1])
        for c in range(scores.shape[1]):
            s = scores[b, c]
            candidates = everyone if score_threshold is None else np.flatnonzero(s > score_threshold)
            order = candidates[np.argsort(-s[candidates], kind="stable")]
            suppressed = np.zeros(everyone.size, bool)  # by a box kept before (IoU is symmetric)
            kept = 0
            for i in order.tolist():
                if kept == max_per_class:
                    break
                if suppressed[i]:
                    continue
                kept += 1
                rows.append((b, c, i))
                suppressed |= _overlaps(i, everyone, lo, hi, area, iou_threshold)
    return np.array(rows, np.int64).reshape(-1, 3)


def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, np.ndarray]:
    """(min corner, max corner) per box as (x, y) columns."""
    if center_point_box:
        center, half = boxes[:, 0:2], boxes[:, 2:4] / boxes.dtype.type(2)
        return center - half, center + half
    y1, x1, y2, x2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]  # corners in either order
    return (np.stack([np.minimum(x1, x2), np.minimum(y1, y2)], axis=1),
            np.stack([np.maximum(x1, x2), np.maximum(y1, y2)], axis=1))


def _overlaps(i: int, kept: np.ndarray, lo: np.ndarray, hi: np.ndarray, area: np.ndarray,
              threshold: float) -> np.ndarray:
    """Whether box ``i``'s IoU with each of ``kept`` exceeds ``threshold`` (no overlap: False)."""
    low = np.maximum(lo[i], lo[kept])
    high = np.minimum(hi[i], hi[kept])
    positive = (high > low).all(axis=1)
    extent = high - low
    inter = extent[:, 0] * extent[:, 1]
    union = area[i] + area[kept] - inter
    valid = positive & (inter > 0) & (area[i] > 0) & (area[kept] > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / np.where(valid, union, 1)
    return valid & (iou > threshold)
