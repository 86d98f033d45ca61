"""Initializers whose data lives beside the model (ONNX external data), read only from regular
files inside the model's folder, with a message naming the tensor and the file otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import TensorProto
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model

from .errors import FrontendError


def load_external_data(model: onnx.ModelProto, model_path: Path, label: str) -> None:
    """Fill every external initializer of ``model`` (read from ``model_path``) with its data."""
    folder = Path(os.path.abspath(model_path)).parent
    external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    for tensor in external:
        _check_location(tensor, folder, label)
    if not external:
        return
    try:
        load_external_data_for_model(model, str(folder))
    except (onnx.checker.ValidationError, OSError, ValueError, KeyError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FrontendError(f"{label}: cannot read the model's external data: {text}") from None


def _check_location(tensor: TensorProto, folder: Path, label: str) -> None:
    try:
        location = ExternalDataInfo(tensor).location
    except (ValueError, KeyError, TypeError) as exc:
        raise FrontendError(f"{label}: initializer {tensor.name!r} has malformed external data fields "
                            f"({exc})") from None
    where = f"{label}: initializer {tensor.name!r} keeps its data in {location!r}"
    if not location:
        raise FrontendError(f"{where}: the location is empty; the model is corrupted")
    if os.path.isabs(location):
        raise FrontendError(f"{where}, an absolute path; ONNX external data must be a relative path "
                            f"inside the model's folder {folder}")
    path = folder / location
    if os.path.commonpath([os.path.normpath(path), folder]) != str(folder):
        raise FrontendError(f"{where}, which is outside the model's folder {folder}; move the data file "
                            "next to the model")
    if path.is_symlink():
        raise FrontendError(f"{where}, a symbolic link; tcc reads external data only from regular files in "
                            "the model's folder: copy the data file there")
    real_folder = os.path.realpath(folder)
    if os.path.commonpath([os.path.realpath(path), real_folder]) != real_folder:
        raise FrontendError(f"{where}, which resolves (through a symbolic link) outside the model's folder "
                            f"{folder}; move the data file next to the model")
    if not path.exists():
        raise FrontendError(f"{where}, which does not exist in {folder}; copy the data file next to the model")
    if not path.is_file():
        raise FrontendError(f"{where}, which is not a regular file")
