"""Kernels of ops_signal: DFT and STFT in the operand's precision (complex64 for float32 and
narrower, complex128 for float64), returned in the operand's float type."""
from __future__ import annotations

import numpy as np


def _as_complex(x: np.ndarray) -> np.ndarray:
    ctype = np.complex128 if x.dtype == np.float64 else np.complex64
    out = x[..., 0].astype(ctype)
    if x.shape[-1] == 2:
        out.imag = x[..., 1]
    return out


def _as_pairs(c: np.ndarray, dtype) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


def dft(attrs, x):
    axis, inverse, onesided, length = attrs["axis"], attrs["inverse"], attrs["onesided"], attrs["length"]
    c = _as_complex(x)
    if onesided and inverse:
        n = length or 2 * (x.shape[axis] - 1)
        return np.fft.irfft(c, n, axis=axis)[..., None].astype(x.dtype)
    n = length or x.shape[axis]
    spectrum = np.fft.ifft(c, n, axis=axis) if inverse else np.fft.fft(c, n, axis=axis)
    if onesided:
        spectrum = np.take(spectrum, range(n // 2 + 1), axis=axis)
    return _as_pairs(spectrum, x.dtype)


def stft(attrs, signal, window=None):
    step, length = attrs["step"], attrs["length"]
    c = _as_complex(signal)  # (batch, samples)
    frames = 1 + (c.shape[1] - length) // step
    starts = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
    framed = c[:, starts]  # (batch, frames, length)
    if window is not None:
        framed = framed * window.astype(framed.real.dtype)
    spectrum = np.fft.fft(framed, axis=-1)
    if attrs["onesided"]:
        spectrum = spectrum[..., : length // 2 + 1]
    return _as_pairs(spectrum, signal.dtype)


def _pooled_ngrams(attrs) -> dict[tuple[int, ...], int]:
    """Each pooled n-gram (as a tuple) -> its position in the pool's n-gram order."""
    pool, starts = attrs["pool"], list(attrs["ngram_counts"]) + [len(attrs["pool"])]
    ngrams: dict[tuple[int, ...], int] = {}
    for n in range(1, len(attrs["ngram_counts"]) + 1):
        for at in range(starts[n - 1], starts[n], n):
            ngrams[tuple(pool[at:at + n])] = len(ngrams)
    return ngrams


def tfidf_vectorizer(attrs, x):
    ngrams = _pooled_ngrams(attrs)
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    counts = np.zeros((rows.shape[0], len(ngrams)))
    for r, row in enumerate(rows.tolist()):
        for n in range(max(attrs["min_gram"], 1), attrs["max_gram"] + 1):
            for skip in range(attrs["max_skip"] + 1 if n > 1 else 1):  # a 1-gram is counted once
                step = skip + 1
                for start in range(len(row) - (n - 1) * step):
                    at = ngrams.get(tuple(row[start:start + (n - 1) * step + 1:step]))
                    if at is not None:
                        counts[r, at] += 1
    weights = np.asarray(attrs["weights"] or [1.0] * len(ngrams))
    if attrs["mode"] == "IDF":
        counts = np.minimum(counts, 1) * weights
    elif attrs["mode"] == "TFIDF":
        counts = counts * weights
    width = max(attrs["ngram_indexes"], default=-1) + 1
    out = np.zeros((rows.shape[0], width), np.float32)
    out[:, list(attrs["ngram_indexes"])] = counts
    return out.reshape(-1) if x.ndim == 1 else out


KERNEL_TABLE = (
    ("dft", dft),
    ("stft", stft),
    ("tfidf_vectorizer", tfidf_vectorizer),
)
