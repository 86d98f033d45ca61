"""The ONNX frontend: ``import_onnx(model, input_shapes)`` -> a verified tcc IR module."""
from .errors import FrontendError
from .host_tail import run_model
from .importer import import_onnx
from .registry import SUPPORTED_OPS

__all__ = ["FrontendError", "SUPPORTED_OPS", "import_onnx", "run_model"]
