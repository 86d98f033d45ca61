"""The float reference interpreter of tcc IR: the numerical oracle the other executions are checked against."""
from .interpreter import Checkpoint, evaluate_op, live_before, run_from, run_module, start_checkpoint
from .registry import KERNELS, OP_KERNELS

__all__ = ["Checkpoint", "KERNELS", "OP_KERNELS", "evaluate_op", "live_before", "run_from", "run_module",
           "start_checkpoint"]
