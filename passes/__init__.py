"""Passes over tcc IR, registered by name in one dict (see registry.py)."""
from .base import Pass
from .manager import PassInstrumentation, PassManager, make_pass, parse_pipeline
from .registry import DEFAULT_FLOAT_PIPELINE, PASSES, PRE_QUANT_PIPELINE, register

__all__ = ["DEFAULT_FLOAT_PIPELINE", "PRE_QUANT_PIPELINE", "PASSES", "Pass", "PassInstrumentation", "PassManager", "make_pass", "parse_pipeline",
           "register"]
