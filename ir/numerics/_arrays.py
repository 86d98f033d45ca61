"""Array plumbing shared by the numeric modules: integer coercion, per-axis broadcast, scalar out,
per-thread scratch."""
import threading

import numpy as np

INT64_MAX = 2**63 - 1


def as_int64(x, name: str) -> np.ndarray:
    """``x`` as an int64 array (``x`` itself when it is one: callers never write into it); floats are
    refused (integer paths never go through float)."""
    arr = np.asarray(x)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.int64)
        except (OverflowError, TypeError):
            raise ValueError(f"{name} must hold integers within int64") from None
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > INT64_MAX:
        raise ValueError(f"{name} has values above int64 range")
    return arr.astype(np.int64, copy=False)


def as_float64(x, name: str) -> np.ndarray:
    """``x`` as a float64 array (exact for every float32, float16 and bfloat16 input)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub" and arr.dtype.name != "bfloat16":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def along_axis(param, shape: tuple, axis, name: str) -> np.ndarray:
    """Reshape a per-channel parameter so it broadcasts along ``axis`` of an array of ``shape``.

    With ``axis`` None the parameter is returned as given (scalar or pre-shaped array).
    """
    arr = np.asarray(param)
    if axis is None:
        return arr
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range for a {ndim}-d array")
    axis %= ndim
    if arr.ndim == 0:
        return arr
    if arr.ndim != 1 or arr.shape[0] != shape[axis]:
        raise ValueError(f"per-channel {name} must be 1-d with {shape[axis]} entries, "
                         f"got shape {arr.shape}")
    target = [1] * ndim
    target[axis] = arr.shape[0]
    return arr.reshape(target)


def unwrap(arr: np.ndarray):
    """0-d arrays become numpy scalars so scalar inputs give scalar outputs."""
    return arr[()] if isinstance(arr, np.ndarray) and arr.ndim == 0 else arr


_SCRATCH = threading.local()


def thread_scratch(key: str, size: int, dtype) -> np.ndarray:
    """``size`` elements of ``dtype`` from the calling thread's one scratch buffer for ``key``, grown
    as needed (at least 2**15 elements): every caller of a key shares it, so it stays in cache from
    one call to the next (a buffer per instruction or per stage left a network touching megabytes
    of cold scratch on every run).  Valid until the thread's next call for the same key."""
    buffer = getattr(_SCRATCH, key, None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(max(size, 1 << 15), dtype)
        setattr(_SCRATCH, key, buffer)
    return buffer[:size]
