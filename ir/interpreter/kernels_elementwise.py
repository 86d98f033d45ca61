"""Element-wise kernels: broadcasting binaries and unary activations, computed in the operand dtype."""
from __future__ import annotations

import math

import numpy as np

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# Numerical Recipes' Chebyshev fit erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2); fractional error < 1.2e-7.
_ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
                1.48851587, -0.82215223, 0.17087277)
_ERF_TAYLOR_TERMS = 16  # below |z| = 1 the series' tail is under 1e-14


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, evaluated in float64 and returned in the dtype of ``x``.

    numpy has no erf; a Taylor series serves |z| < 1 and a Chebyshev fit of erfc the rest.
    """
    z = np.asarray(x, dtype=np.float64)
    out = np.empty_like(z)
    small = np.abs(z) < 1.0
    zs = z[small]
    z2 = zs * zs
    term = zs.copy()
    total = zs.copy()
    for n in range(1, _ERF_TAYLOR_TERMS):
        term *= -z2 / n
        total += term / (2 * n + 1)
    out[small] = _TWO_OVER_SQRT_PI * total
    zl = np.abs(z[~small])
    t = 1.0 / (1.0 + 0.5 * zl)
    poly = np.zeros_like(zl)
    for c in reversed(_ERFC_COEFFS):
        poly = poly * t + c
    erfc = t * np.exp(-zl * zl + poly)
    out[~small] = np.copysign(1.0 - erfc, z[~small])
    return out.astype(np.asarray(x).dtype, copy=False)


def _divide(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):
        # ONNX integer division truncates toward zero, like C.
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q)
    return np.divide(a, b)


def _sigmoid(x):
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative x; 1/inf is the answer
        return 1.0 / (1.0 + np.exp(-x))


def _relu(x):
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def _gelu(attrs, x):
    """Exact: x/2 (1 + erf(x / sqrt 2)); approximate='tanh': x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    real = x.dtype.type
    if attrs["approximate"] == "tanh":
        inner = real(math.sqrt(2.0 / math.pi)) * (x + real(0.044715) * x * x * x)
        return 0.5 * x * (1.0 + np.tanh(inner))
    return 0.5 * x * (1.0 + erf(x * real(1.0 / math.sqrt(2.0))))


def _clip(attrs, x):
    low, high = attrs["min"], attrs["max"]
    if math.isfinite(low):
        x = np.maximum(x, np.asarray(low, dtype=x.dtype))
    if math.isfinite(high):
        x = np.minimum(x, np.asarray(high, dtype=x.dtype))
    return x


def _hard_sigmoid(attrs, x):
    real = x.dtype.type
    return np.clip(real(attrs["alpha"]) * x + real(attrs["beta"]), real(0), real(1))


def _hard_swish(attrs, x):
    """x * hard_sigmoid(x) with alpha 1/6 and beta 1/2."""
    real = x.dtype.type
    return x * np.clip(x * real(1.0 / 6.0) + real(0.5), real(0), real(1))


def _leaky_relu(attrs, x):
    return np.where(x >= 0, x, x * np.asarray(attrs["alpha"], dtype=x.dtype))


def _binary(fn):
    return lambda attrs, a, b: fn(a, b)


def _unary(fn):
    return lambda attrs, x: fn(x)


KERNEL_TABLE = (
    ("add", _binary(np.add)),
    ("sub", _binary(np.subtract)),
    ("mul", _binary(np.multiply)),
    ("div", _binary(_divide)),
    ("pow", _binary(np.power)),
    ("max", _binary(np.maximum)),
    ("min", _binary(np.minimum)),
    ("relu", _unary(_relu)),
    ("sigmoid", _unary(_sigmoid)),
    ("tanh", _unary(np.tanh)),
    ("erf", _unary(erf)),
    ("sqrt", _unary(np.sqrt)),
    ("exp", _unary(np.exp)),
    ("neg", _unary(np.negative)),
    ("abs", _unary(np.abs)),
    ("reciprocal", _unary(np.reciprocal)),
    ("hard_swish", _hard_swish),
    ("leaky_relu", _leaky_relu),
    ("clip", _clip),
    ("hard_sigmoid", _hard_sigmoid),
    ("gelu", _gelu),
)
