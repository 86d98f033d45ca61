"""Element types of tensor values and their numpy equivalents."""
import numpy as np

from .numerics.bf16 import as_bf16_array

# Printed name -> numpy dtype.
_NUMPY: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "f16": np.dtype(np.float16),
    "i64": np.dtype(np.int64),
    "i32": np.dtype(np.int32),
    "i16": np.dtype(np.int16),
    "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
}
# bf16 and the narrow storage types (ONNX's float8, float4, int4 and int2: carried and cast, not
# computed on) are ml_dtypes' (shipped with onnx), imported on first use: the import takes a few
# tenths of a second that `tcc --help` or an int8 model should not pay.
_ML_DTYPES = {"bf16": "bfloat16", "f8e4m3fn": "float8_e4m3fn", "f8e4m3fnuz": "float8_e4m3fnuz",
              "f8e5m2": "float8_e5m2", "f8e5m2fnuz": "float8_e5m2fnuz", "f4e2m1": "float4_e2m1fn", "i4": "int4",
              "u4": "uint4", "i2": "int2", "u2": "uint2", "f8e8m0": "float8_e8m0fnu"}


def _load_ml_dtypes() -> None:
    import ml_dtypes

    for name, attr in _ML_DTYPES.items():
        _NUMPY[name] = np.dtype(getattr(ml_dtypes, attr))


DTYPES = tuple(_NUMPY) + tuple(_ML_DTYPES)
FLOAT_DTYPES = ("f32", "f64", "f16", "bf16")
INT_DTYPES = ("i64", "i32", "i16", "i8", "u8", "u16", "u32", "u64")
# Types whose ONNX Cast saturates by default (saturate=1): out-of-range values and infinities
# become the largest finite value of their sign, NaN stays NaN.
SATURATING_DTYPES = ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")


def to_numpy(dtype: str) -> np.dtype:
    found = _NUMPY.get(dtype)
    if found is None and dtype in _ML_DTYPES:
        _load_ml_dtypes()
    return _NUMPY[dtype]


# Bytes per element of the ml_dtypes types, known without importing ml_dtypes.
_ML_ITEMSIZES = {"bf16": 2, "f8e4m3fn": 1, "f8e4m3fnuz": 1, "f8e5m2": 1, "f8e5m2fnuz": 1, "f4e2m1": 1, "i4": 1,
                 "u4": 1, "i2": 1, "u2": 1, "f8e8m0": 1}


def itemsize(dtype: str) -> int:
    """Bytes per element of ``dtype`` in memory (ml_dtypes' types too, without importing it)."""
    found = _NUMPY.get(dtype)
    return found.itemsize if found is not None else _ML_ITEMSIZES[dtype]


def cast(array, dtype: str) -> np.ndarray:
    """``array`` as element type ``dtype``; bf16 rounds once to nearest even by tcc's own rule
    (numerics.to_bf16), never by ml_dtypes' cast, whose float64 rounding changed across releases."""
    target = to_numpy(dtype)
    arr = np.asarray(array)
    if dtype == "bf16" and arr.dtype != target:
        return as_bf16_array(arr)
    return arr.astype(target, copy=False)


def saturate(array, dtype: str) -> np.ndarray:
    """``array`` cast to a float8 type with ONNX's saturation (see SATURATING_DTYPES)."""
    import ml_dtypes

    info = ml_dtypes.finfo(to_numpy(dtype))
    return np.clip(np.asarray(array, np.float32), np.float32(info.min), np.float32(info.max)).astype(to_numpy(dtype))


def from_numpy(dtype) -> str:
    dt = np.dtype(dtype)
    for loaded in (False, True):
        if loaded:
            _load_ml_dtypes()
        for name, candidate in _NUMPY.items():
            if candidate == dt:
                return name
    raise KeyError(f"numpy dtype {dt} has no tcc element type")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES
