"""bf16 kernels: the SIMD lanes' own sequences (``tcc.ir.numerics.bf16_functions`` run by ``bf16_math``), used for ops whose
operands and result are bf16, so the reference computes exactly what the hardware lanes do.

Ops without an entry here fall back to the float kernel rounded once to bf16 (interpreter.py).
"""
from __future__ import annotations

import numpy as np

from .. import numerics


def _layer_norm(attrs, x, scale, bias=None):
    if bias is None:
        bias = np.zeros_like(scale)
    return numerics.bf16_layer_norm(x, scale, bias, attrs["axis"], attrs["epsilon"])


BF16_KERNEL_TABLE = (
    ("add", lambda attrs, a, b: numerics.bf16_add(a, b)),
    ("sub", lambda attrs, a, b: numerics.bf16_sub(a, b)),
    ("mul", lambda attrs, a, b: numerics.bf16_mul(a, b)),
    ("max", lambda attrs, a, b: numerics.bf16_max(a, b)),
    ("min", lambda attrs, a, b: numerics.bf16_min(a, b)),
    ("div", lambda attrs, a, b: numerics.bf16_div(a, b)),
    ("exp", lambda attrs, x: numerics.bf16_exp(x)),
    ("reciprocal", lambda attrs, x: numerics.bf16_reciprocal(x)),
    ("sqrt", lambda attrs, x: numerics.bf16_sqrt(x)),
    ("tanh", lambda attrs, x: numerics.bf16_tanh(x)),
    ("erf", lambda attrs, x: numerics.bf16_erf(x)),
    ("sigmoid", lambda attrs, x: numerics.bf16_sigmoid(x)),
    ("hard_swish", lambda attrs, x: numerics.bf16_hard_swish(x)),
    ("gelu", lambda attrs, x: numerics.bf16_gelu(x, attrs["approximate"])),
    ("softmax", lambda attrs, x: numerics.bf16_softmax(x, attrs["axis"])),
    ("log_softmax", lambda attrs, x: numerics.bf16_log_softmax(x, attrs["axis"])),
    ("layer_norm", _layer_norm),
    ("lrn", lambda attrs, x: numerics.bf16_lrn(x, attrs["size"], attrs["alpha"], attrs["beta"], attrs["bias"])),
    ("rms_norm", lambda attrs, x, scale: numerics.bf16_rms_norm(x, scale, attrs["axis"], attrs["epsilon"])),
)
