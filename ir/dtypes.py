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
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
}
try:
    import ml_dtypes

    _NUMPY["bf16"] = np.dtype(ml_dtypes.bfloat16)
    # Narrow storage types (ONNX's float8, float4, int4 and int2): carried and cast, not computed on.
    for _name, _ml in (("f8e4m3fn", "float8_e4m3fn"), ("f8e4m3fnuz", "float8_e4m3fnuz"), ("f8e5m2", "float8_e5m2"),
                       ("f8e5m2fnuz", "float8_e5m2fnuz"), ("f4e2m1", "float4_e2m1fn"), ("i4", "int4"),
                       ("u4", "uint4"), ("i2", "int2"), ("u2", "uint2"), ("f8e8m0", "float8_e8m0fnu")):
        _NUMPY[_name] = np.dtype(getattr(ml_dtypes, _ml))
except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
    pass

DTYPES = tuple(_NUMPY)
FLOAT_DTYPES = ("f32", "f64", "f16", "bf16")
INT_DTYPES = ("i64", "i32", "i16", "i8", "u8", "u16", "u32", "u64")
# Types whose ONNX Cast saturates by default (saturate=1): out-of-range values and infinities
# become the largest finite value of their sign, NaN stays NaN.
SATURATING_DTYPES = ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")


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


def saturate(array, dtype: str) -> np.ndarray:
    """``array`` cast to a float8 type with ONNX's saturation (see SATURATING_DTYPES)."""
    import ml_dtypes

    info = ml_dtypes.finfo(to_numpy(dtype))
    return np.clip(np.asarray(array, np.float32), np.float32(info.min), np.float32(info.max)).astype(to_numpy(dtype))


def from_numpy(dtype) -> str:
    dt = np.dtype(dtype)
    for name, candidate in _NUMPY.items():
        if candidate == dt:
            return name
    raise KeyError(f"numpy dtype {dt} has no tcc element type")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES
