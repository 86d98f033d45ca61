"""Comparison, logical and select kernels (numpy semantics equal ONNX's here)."""
from __future__ import annotations

import numpy as np

KERNEL_TABLE = (
    ("greater", lambda attrs, a, b: np.greater(a, b)),
    ("less", lambda attrs, a, b: np.less(a, b)),
    ("equal", lambda attrs, a, b: np.equal(a, b)),
    ("greater_or_equal", lambda attrs, a, b: np.greater_equal(a, b)),
    ("less_or_equal", lambda attrs, a, b: np.less_equal(a, b)),
    ("and", lambda attrs, a, b: np.logical_and(a, b)),
    ("or", lambda attrs, a, b: np.logical_or(a, b)),
    ("xor", lambda attrs, a, b: np.logical_xor(a, b)),
    ("not", lambda attrs, x: np.logical_not(x)),
    ("where", lambda attrs, c, a, b: np.where(c, a, b)),
)
