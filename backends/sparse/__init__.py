"""The ESDA-style sparse dataflow target: one module per layer, token streams between them.

``compile_sparse(module, mode, target_path)`` maps quantized IR onto the module library, sizes
each module's parallelism by an exact design-space search under the FPGA budget and returns a
``SparseArtifact`` (``.save``, ``.summary``, ``.describe``); ``isa/tokensim`` simulates it.
See docs/sparse-target.md.
"""
from ..artifact import SparseArtifact
from .compile import compile_sparse
from .errors import SparseError
from .target import SparseTarget, load_sparse_target

__all__ = ["SparseArtifact", "SparseError", "SparseTarget", "compile_sparse",
           "load_sparse_target"]
