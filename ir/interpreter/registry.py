"""The explicit kernel registry: one dict from op kind to kernel; a kind listed twice is an error."""
from __future__ import annotations

from typing import Callable

from . import (kernels_bf16, kernels_conv, kernels_elementwise, kernels_logic, kernels_norm, kernels_pool, kernels_qdq, kernels_quant, kernels_recurrent, kernels_resize, kernels_sample, kernels_signal,
               kernels_index, kernels_math, kernels_normalize, kernels_reduce,
               kernels_tensor)

# kernel(attrs, *operand_arrays) -> array, or a tuple of arrays for ops with several results.
Kernel = Callable[..., object]


def build_registry(*tables) -> dict[str, Kernel]:
    registry: dict[str, Kernel] = {}
    for table in tables:
        for kind, kernel in table:
            if kind in registry:
                raise ValueError(f"interpreter kernel for op kind {kind!r} registered twice")
            registry[kind] = kernel
    return registry


KERNELS: dict[str, Kernel] = build_registry(
    kernels_elementwise.KERNEL_TABLE,
    kernels_logic.KERNEL_TABLE,
    kernels_conv.KERNEL_TABLE,
    kernels_pool.KERNEL_TABLE,
    kernels_norm.KERNEL_TABLE,
    kernels_tensor.KERNEL_TABLE,
    kernels_resize.KERNEL_TABLE,
    kernels_recurrent.KERNEL_TABLE,
    kernels_math.KERNEL_TABLE,
    kernels_reduce.KERNEL_TABLE,
    kernels_index.KERNEL_TABLE,
    kernels_normalize.KERNEL_TABLE,
    kernels_sample.KERNEL_TABLE,
    kernels_signal.KERNEL_TABLE,
)

# Kernels that read quantization parameters from the op's value types: kernel(op, *operand_arrays).
OP_KERNELS: dict[str, Kernel] = build_registry(kernels_quant.OP_KERNEL_TABLE, kernels_math.OP_KERNEL_TABLE,
                                               kernels_qdq.OP_KERNEL_TABLE)
_overlap = set(KERNELS) & set(OP_KERNELS)
if _overlap:
    raise ValueError(f"op kinds with both kinds of kernel: {sorted(_overlap)}")

# bf16 sequences of the SIMD lanes, for ops whose operands and results are all bf16.
BF16_KERNELS: dict[str, Kernel] = build_registry(kernels_bf16.BF16_KERNEL_TABLE)
