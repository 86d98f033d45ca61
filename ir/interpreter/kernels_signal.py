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


KERNEL_TABLE = (
    ("dft", dft),
    ("stft", stft),
)
