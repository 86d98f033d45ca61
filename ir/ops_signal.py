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
