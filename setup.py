"""The optional C extension of the simulator's fused kernels (isa/simulator/native.c); everything
else is in pyproject.toml.  ``optional=True``: without a C compiler the install goes on and the
simulator runs its numpy path (isa/simulator/native.py)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "tcc.isa.simulator._native", ["isa/simulator/native.c"], optional=True,
    # IEEE float32 as numpy computes it: no fused multiply-add contraction, no fast-math; int64
    # arithmetic wraps (-fwrapv) where a lane the kernel refuses computes garbage
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-fwrapv", "-std=c11"],
)])
