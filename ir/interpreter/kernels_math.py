"""Kernels of ops_math: rounding, logarithms, trigonometry, parameterized activations, NaN and
infinity tests, modulo and bitwise ops, computed in the operand's element type."""
from __future__ import annotations

import numpy as np

from ..dtypes import to_numpy
from ..errors import InterpreterError


def _unary(fn):
    def kernel(attrs, x):
        with np.errstate(all="ignore"):  # log(0), asin(2): -inf and NaN as ONNX wants
            return np.asarray(fn(x)).astype(x.dtype, copy=False)

    return kernel


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


def _mish(x):
    return x * np.tanh(_softplus(x))


def _elu(attrs, x):
    alpha = x.dtype.type(attrs["alpha"])
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def _selu(attrs, x):
    alpha, gamma = x.dtype.type(attrs["alpha"]), x.dtype.type(attrs["gamma"])
    return (gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))).astype(x.dtype)


def _celu(attrs, x):
    alpha = x.dtype.type(attrs["alpha"])
    return (np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha))).astype(x.dtype)


def _thresholded_relu(attrs, x):
    return np.where(x > x.dtype.type(attrs["alpha"]), x, 0).astype(x.dtype)


def _shrink(attrs, x):
    bias, lambd = attrs["bias"], attrs["lambd"]
    out = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
    return out.astype(x.dtype)


def _is_inf(attrs, x):
    out = np.zeros(x.shape, bool)
    if attrs["detect_positive"]:
        out |= np.isposinf(x)
    if attrs["detect_negative"]:
        out |= np.isneginf(x)
    return out


def _mod(attrs, a, b):
    if attrs["fmod"]:
        with np.errstate(all="ignore"):
            return np.fmod(a, b)
    if not np.issubdtype(a.dtype, np.integer):
        with np.errstate(all="ignore"):  # floats (opset 28+): the divisor's sign, NaN for x mod 0
            return np.mod(a, b)
    if np.any(b == 0):
        raise InterpreterError("integer mod by zero")
    return np.mod(a, b)


def _bit_shift(op, a, b):
    """In the operands' own unsigned type (bits shifted out are lost), not widened to int64."""
    if op.direction == "LEFT":
        return np.left_shift(a, b)
    if op.direction == "RIGHT":
        return np.right_shift(a, b)
    raise InterpreterError(f"bit_shift direction {op.direction!r} is not LEFT or RIGHT")


def _binary(fn):
    return lambda attrs, a, b: fn(a, b)


KERNEL_TABLE = (
    ("floor", _unary(np.floor)),
    ("ceil", _unary(np.ceil)),
    ("round", _unary(np.round)),  # numpy rounds half to even, as ONNX does
    ("sign", _unary(np.sign)),
    ("log", _unary(np.log)),
    ("sin", _unary(np.sin)),
    ("cos", _unary(np.cos)),
    ("tan", _unary(np.tan)),
    ("asin", _unary(np.arcsin)),
    ("acos", _unary(np.arccos)),
    ("atan", _unary(np.arctan)),
    ("sinh", _unary(np.sinh)),
    ("cosh", _unary(np.cosh)),
    ("asinh", _unary(np.arcsinh)),
    ("acosh", _unary(np.arccosh)),
    ("atanh", _unary(np.arctanh)),
    ("softplus", _unary(_softplus)),
    ("softsign", _unary(lambda x: x / (1 + np.abs(x)))),
    ("mish", _unary(_mish)),
    ("is_nan", lambda attrs, x: np.isnan(x)),
    ("is_inf", _is_inf),
    ("elu", _elu),
    ("selu", _selu),
    ("celu", _celu),
    ("thresholded_relu", _thresholded_relu),
    ("shrink", _shrink),
    ("mod", _mod),
    ("det", lambda attrs, x: np.asarray(np.linalg.det(x)).astype(x.dtype)),
    ("bitwise_and", _binary(np.bitwise_and)),
    ("bitwise_or", _binary(np.bitwise_or)),
    ("bitwise_xor", _binary(np.bitwise_xor)),
)

# Kernels that must see the operands' own integer type (the others see integers widened to int64).
OP_KERNEL_TABLE = (
    ("bitwise_not", lambda op, x: np.invert(x)),
    ("bit_shift", _bit_shift),
    ("bitcast", lambda op, x: np.array(x, order="C").view(to_numpy(op.attrs["to"]))),
)
