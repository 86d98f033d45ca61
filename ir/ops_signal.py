"""Signal-processing op kinds: discrete Fourier transforms.  Complex tensors are ONNX's: a last
axis of 2 (real, imaginary); a real signal has a last axis of 1."""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError
from .types import TensorType


def _complex_signal(t: TensorType, what: str) -> None:
    if t.rank < 2 or t.shape[-1] not in (1, 2):
        raise ShapeError(f"{what} needs a last axis of 1 (real) or 2 (complex), got {list(t.shape)}")


@define_op("dft", "x", (AttrSpec("axis", "int", 1), AttrSpec("inverse", "int", 0), AttrSpec("onesided", "int", 0),
                        AttrSpec("length", "int", 0)))
def _dft(types, attrs):
    """DFT along ``axis`` (not the last), padded or cut to ``length`` (0: the axis's own length).
    ``onesided``: forward, the first length // 2 + 1 frequencies; inverse, a one-sided spectrum
    to a real signal of ``length`` (0: 2 * (n - 1)) samples."""
    x = types[0]
    _complex_signal(x, "dft")
    axis = attrs["axis"]
    if not 0 <= axis < x.rank - 1:
        raise ShapeError(f"dft axis {axis} is not a signal axis of {list(x.shape)}")
    n = attrs["length"] or x.shape[axis]
    if attrs["onesided"] and attrs["inverse"]:
        n = attrs["length"] or 2 * (x.shape[axis] - 1)
        shape = x.shape[:axis] + (n,) + x.shape[axis + 1:-1] + (1,)
    else:
        bins = n // 2 + 1 if attrs["onesided"] else n
        shape = x.shape[:axis] + (bins,) + x.shape[axis + 1:-1] + (2,)
    if n < 1:
        raise ShapeError(f"dft length {n} is not positive")
    return [TensorType(shape, x.dtype)]


@define_op("stft", "signal window?", (AttrSpec("step", "int"), AttrSpec("length", "int"),
                                      AttrSpec("onesided", "int", 1)))
def _stft(types, attrs):
    """Short-time DFT of signal (batch, samples, 1 or 2): frames of ``length`` samples every
    ``step``, times the window if given; result (batch, frames, bins, 2)."""
    signal = types[0]
    _complex_signal(signal, "stft")
    if signal.rank != 3:
        raise ShapeError(f"stft signal must be (batch, samples, 1 or 2), got {list(signal.shape)}")
    step, length = attrs["step"], attrs["length"]
    if step < 1 or not 1 <= length <= signal.shape[1]:
        raise ShapeError(f"stft frame length {length} / step {step} do not fit {signal.shape[1]} samples")
    if len(types) > 1 and types[1].shape != (length,):
        raise ShapeError(f"stft window {list(types[1].shape)} is not [{length}]")
    frames = 1 + (signal.shape[1] - length) // step
    bins = length // 2 + 1 if attrs["onesided"] else length
    return [TensorType((signal.shape[0], frames, bins, 2), signal.dtype)]


@define_op("tfidf_vectorizer", "x", (AttrSpec("min_gram", "int"), AttrSpec("max_gram", "int"),
                                     AttrSpec("max_skip", "int"), AttrSpec("mode", "str"),
                                     AttrSpec("pool", "ints"), AttrSpec("ngram_counts", "ints"),
                                     AttrSpec("ngram_indexes", "ints"), AttrSpec("weights", "floats")))
def _tfidf_vectorizer(types, attrs):
    """ONNX TfIdfVectorizer over integer sequences (one per row of a 2-D x): the count (TF), the
    weighted presence (IDF) or the weighted count (TFIDF) of each pooled n-gram, n-grams of n > 1
    also read with up to ``max_skip`` elements skipped between their items; result (rows,
    max(ngram_indexes) + 1) in float32."""
    x = types[0]
    if x.rank not in (1, 2) or x.dtype not in ("i32", "i64"):
        raise ShapeError(f"tfidf_vectorizer needs i32/i64 sequences of rank 1 or 2, got {x}")
    if attrs["mode"] not in ("TF", "IDF", "TFIDF"):
        raise ShapeError(f"tfidf_vectorizer mode {attrs['mode']!r} is not TF, IDF or TFIDF")
    width = max(attrs["ngram_indexes"], default=-1) + 1
    return [TensorType((width,) if x.rank == 1 else (x.shape[0], width), "f32")]
