"""Element types of tensor values and their numpy equivalents."""
import numpy as np

from .numerics.bf16 import as_bf16_array

# Printed name -> numpy dtype.  bf16 is carried as ml_dtypes.bfloat16 (shipped with onnx).
_NUMPY: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "f16": np.dtype(np.float16),
    "i64": np.dtype(np.int64),
    "i32": np.dtype(np.int32),
    "i16": np.dtype(np.int16),
    "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
}
try:
    import ml_dtypes

    _NUMPY["bf16"] = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
    pass

DTYPES = tuple(_NUMPY)
FLOAT_DTYPES = ("f32", "f64", "f16", "bf16")
INT_DTYPES = ("i64", "i32", "i16", "i8", "u8")


def to_numpy(dtype: str) -> np.dtype:
    return _NUMPY[dtype]


def cast(array, dtype: str) -> np.ndarray:
    """``array`` as element type ``dtype``; bf16 rounds once to nearest even by tcc's own rule
    (numerics.to_bf16), never by ml_dtypes' cast, whose float64 rounding changed across releases."""
    target = to_numpy(dtype)
    arr = np.asarray(array)
    if dtype == "bf16" and arr.dtype != target:
        return as_bf16_array(arr)
    return arr.astype(target, copy=False)


def from_numpy(dtype) -> str:
    dt = np.dtype(dtype)
    for name, candidate in _NUMPY.items():
        if candidate == dt:
            return name
    raise KeyError(f"numpy dtype {dt} has no tcc element type")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES
