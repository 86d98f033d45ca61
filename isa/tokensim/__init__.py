"""Token-level simulator of the sparse dataflow target (backends/sparse): bit-exact, numpy over tokens.

``simulate(metadata, weights, inputs)`` runs every module on its token streams (datapath.py),
counts tokens and valid neighbours, and turns them into busy cycles and frame latency (cost.py).
"""
from .cost import Counts, busy_cycles, resources
from .errors import TokenSimError
from .machine import ModuleCounters, TokenSimResult, input_tokens, simulate
from .tokens import TokenStream

__all__ = ["Counts", "ModuleCounters", "TokenSimError", "TokenSimResult", "TokenStream", "busy_cycles",
           "input_tokens", "resources", "simulate"]
