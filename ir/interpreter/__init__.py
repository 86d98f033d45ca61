"""The float reference interpreter of tcc IR: the numerical oracle the other executions are checked against."""
from .interpreter import evaluate_op, run_module
from .registry import KERNELS, OP_KERNELS

__all__ = ["KERNELS", "OP_KERNELS", "evaluate_op", "run_module"]
