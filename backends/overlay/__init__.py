"""The overlay target: TATAA-style int8 systolic array + bf16 SIMD lanes (docs/overlay-machine.md)."""
from ..artifact import Artifact, ArtifactError
from .compile import compile_overlay
from .errors import BackendError

__all__ = ["Artifact", "ArtifactError", "BackendError", "compile_overlay"]
