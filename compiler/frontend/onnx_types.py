"""ONNX element types and tensor types in tcc's terms."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from tcc.ir.dtypes import from_numpy

# ONNX elem_type -> tcc element type, for the types tcc can carry in its IR.
_ELEM: dict[int, str] = {
    TensorProto.FLOAT: "f32",
    TensorProto.DOUBLE: "f64",
    TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.INT64: "i64",
    TensorProto.INT32: "i32",
    TensorProto.INT16: "i16",
    TensorProto.INT8: "i8",
    TensorProto.UINT8: "u8",
    TensorProto.UINT16: "u16",
    TensorProto.UINT32: "u32",
    TensorProto.UINT64: "u64",
    TensorProto.BOOL: "bool",
    TensorProto.FLOAT8E4M3FN: "f8e4m3fn",
    TensorProto.FLOAT8E4M3FNUZ: "f8e4m3fnuz",
    TensorProto.FLOAT8E5M2: "f8e5m2",
    TensorProto.FLOAT8E5M2FNUZ: "f8e5m2fnuz",
    TensorProto.FLOAT4E2M1: "f4e2m1",
    TensorProto.INT4: "i4",
    TensorProto.UINT4: "u4",
    TensorProto.INT2: "i2",
    TensorProto.UINT2: "u2",
    TensorProto.FLOAT8E8M0: "f8e8m0",
}


def elem_name(elem_type: int) -> str:
    """ONNX's own name of an element type, for messages."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"elem_type {elem_type}"


def tcc_dtype(elem_type: int) -> str | None:
    """tcc element type of an ONNX elem_type, None when tcc has no equivalent."""
    return _ELEM.get(elem_type)


def numpy_dtype(elem_type: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def tcc_dtype_of_array(array: np.ndarray) -> str | None:
    try:
        return from_numpy(array.dtype)
    except KeyError:
        return None


def static_shape(type_proto) -> tuple[int, ...] | None:
    """The shape of a tensor TypeProto when every dim is a known number, else None."""
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in type_proto.tensor_type.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def onnx_elem_type(dtype: str) -> int:
    """The ONNX elem_type of a tcc element type."""
    for elem, name in _ELEM.items():
        if name == dtype:
            return elem
    raise KeyError(dtype)
