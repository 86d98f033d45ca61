"""Data-movement kernels: constants, reshapes, joins and splits, slicing, padding, gathering, casts."""
from __future__ import annotations

import numpy as np

from ..dtypes import SATURATING_DTYPES, saturate, to_numpy
from ..dtypes import cast as cast_to
from ..errors import InterpreterError
from ..shape_rules import broadcast, normalize_axis


def const(attrs):
    return attrs["value"]


def reshape(attrs, x):
    return x.reshape(attrs["shape"])


def transpose(attrs, x):
    return np.transpose(x, attrs["perm"])


def concat(attrs, *inputs):
    return np.concatenate(inputs, axis=normalize_axis(attrs["axis"], inputs[0].ndim))


def split(attrs, x):
    axis = normalize_axis(attrs["axis"], x.ndim)
    bounds = np.cumsum(attrs["sizes"])[:-1]
    return tuple(np.split(x, bounds, axis=axis))


def onnx_slice(start: int, end: int, step: int, size: int) -> slice:
    """The numpy slice selecting what ONNX Slice selects on a dim of ``size`` (clamped, steps of any sign)."""
    picked = range(*slice(start, end, step).indices(size))
    if not picked:
        return slice(0, 0)
    # A range running down past index 0 has stop -1, which numpy would read as "the last element".
    return slice(picked.start, picked.stop if picked.stop >= 0 else None, picked.step)


def slice_(attrs, x):
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(attrs["starts"], attrs["ends"], attrs["axes"], attrs["steps"]):
        axis = normalize_axis(axis, x.ndim)
        index[axis] = onnx_slice(start, end, step, x.shape[axis])
    return x[tuple(index)]


def pad(attrs, x):
    """Negative pads crop first; the positive rest pads the cropped tensor in the given mode."""
    rank = x.ndim
    begins, ends = attrs["pads"][:rank], attrs["pads"][rank:]
    x = x[tuple(slice(max(-b, 0), d - max(-e, 0)) for b, e, d in zip(begins, ends, x.shape))]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    mode = attrs["mode"]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(attrs["value"], dtype=x.dtype))
    if mode == "reflect":
        for (b, e), d in zip(widths, x.shape):
            if (b or e) and max(b, e) >= d:
                raise InterpreterError(f"reflect pads {list(attrs['pads'])} need every padded dim longer "
                                       f"than its pad, input is {list(x.shape)}")
        return np.pad(x, widths, mode="reflect")
    if mode in ("edge", "wrap"):  # wrap: the tensor repeated cyclically, as ONNX's Pad-19 says
        return np.pad(x, widths, mode=mode)
    raise InterpreterError(f"pad mode {mode!r} is not constant, reflect, edge or wrap")


def gather(attrs, data, indices):
    axis = normalize_axis(attrs["axis"], data.ndim)
    size = data.shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise InterpreterError(f"gather index out of range [{-size}, {size}) along axis {axis}: "
                               f"min {indices.min()}, max {indices.max()}")
    return np.take(data, np.where(indices < 0, indices + size, indices), axis=axis)


def expand(attrs, x):
    return np.broadcast_to(x, broadcast(x.shape, tuple(attrs["shape"])))


def cast(attrs, x):
    if attrs["to"] in SATURATING_DTYPES:
        return saturate(x, attrs["to"])
    return cast_to(x, attrs["to"])


def cast_e8m0(attrs, x):
    from .. import numerics

    return numerics.to_e8m0_codes(x, attrs["round_mode"], bool(attrs["saturate"])).view(to_numpy("f8e8m0"))


def cast_no_saturate(attrs, x):
    return cast_to(x, attrs["to"])


KERNEL_TABLE = (
    ("const", const),
    ("reshape", reshape),
    ("transpose", transpose),
    ("concat", concat),
    ("split", split),
    ("slice", slice_),
    ("pad", pad),
    ("gather", gather),
    ("expand", expand),
    ("cast", cast),
    ("cast_no_saturate", cast_no_saturate),
    ("cast_e8m0", cast_e8m0),
)
