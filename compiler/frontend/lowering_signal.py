"""Lowerings of the ONNX signal ops: DFT and STFT (parameters must be constants), and
TfIdfVectorizer over integer sequences."""
from __future__ import annotations

import numpy as np

from tcc.ir.shape_rules import ShapeError, normalize_axis

from .context import NodeContext


def _scalar(n: NodeContext, i: int, what: str) -> int:
    return int(np.asarray(n.const(i, what)).reshape(-1)[0])


def lower_dft(n: NodeContext) -> None:
    shape = n.input_type(0).shape
    if n.opset >= 20:
        axis = _scalar(n, 2, "axis") if n.has_input(2) else -2
    else:
        axis = n.attr("axis", 1)
    try:
        axis = normalize_axis(axis, len(shape))
    except ShapeError as exc:
        raise n.error(str(exc)) from None
    if axis == len(shape) - 1:
        raise n.error("axis is the last axis, which holds the real and imaginary parts")
    length = _scalar(n, 1, "dft_length") if n.has_input(1) else 0
    onesided, inverse = n.attr("onesided", 0), n.attr("inverse", 0)
    if onesided and not inverse and shape[-1] != 1:
        raise n.error("a one-sided forward DFT needs a real signal (last axis 1)")
    n.emit("dft", [n.input(0)], {"axis": axis, "inverse": inverse, "onesided": onesided, "length": length})


def lower_stft(n: NodeContext) -> None:
    step = _scalar(n, 1, "frame_step")
    window = n.input(2) if n.has_input(2) else None
    if n.has_input(3):
        length = _scalar(n, 3, "frame_length")
    elif window is not None:
        length = window.type.shape[0]
    else:
        raise n.error("neither a window nor frame_length gives the frame length")
    onesided = n.attr("onesided", 1)
    if onesided and n.input_type(0).shape[-1] != 1:
        raise n.error("a one-sided STFT needs a real signal (last axis 1)")
    n.emit("stft", [n.input(0)] + ([window] if window is not None else []),
           {"step": step, "length": length, "onesided": onesided})


def lower_tfidf_vectorizer(n: NodeContext) -> None:
    if n.attr("pool_strings"):
        raise n.error("string n-grams (pool_strings) are not supported; tcc counts integer n-grams")
    mode = n.attr("mode")
    n.emit("tfidf_vectorizer", [n.input(0)],
           {"min_gram": n.attr("min_gram_length"), "max_gram": n.attr("max_gram_length"),
            "max_skip": n.attr("max_skip_count"), "mode": mode,
            "pool": tuple(n.attr("pool_int64s") or ()), "ngram_counts": tuple(n.attr("ngram_counts")),
            "ngram_indexes": tuple(n.attr("ngram_indexes")), "weights": tuple(n.attr("weights") or ())})


LOWERINGS = {
    "DFT": lower_dft,
    "STFT": lower_stft,
    "TfIdfVectorizer": lower_tfidf_vectorizer,
}
