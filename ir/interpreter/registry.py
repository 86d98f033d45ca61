"""The explicit kernel registry: one dict from op kind to kernel; a kind listed twice is an error."""
from __future__ import annotations

from typing import Callable

from . import kernels_conv, kernels_elementwise, kernels_norm, kernels_pool, kernels_resize, kernels_tensor

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
    kernels_conv.KERNEL_TABLE,
    kernels_pool.KERNEL_TABLE,
    kernels_norm.KERNEL_TABLE,
    kernels_tensor.KERNEL_TABLE,
    kernels_resize.KERNEL_TABLE,
)
