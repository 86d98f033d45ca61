"""What a target can hold and run, checked on the imported float IR before any pass runs.

Calibration and compilation of a large model take minutes; a model that cannot fit the target's
DRAM, or uses a tensor shape the backend cannot lower, should fail in the first second with one
message that says what to change.  Input shapes left dynamic are refused earlier still, by the
ONNX loader (``frontend/loader.py``), with the ``--input-shape`` to give.
"""
from __future__ import annotations

import re

from tcc.ir import Module
from tcc.ir.errors import TccError
from tcc.passes.as_2d import conv_problem as as_2d_problem

#: Activation ranks the overlay's matrix unit takes: conv is 2-D ([N, C, H, W]) at batch 1;
#: a linear layer reads a [rows, k] or [batch, rows, k] activation (backends/overlay/emit_matrix.py).
CONV_RANK = 4
LINEAR_MAX_RANK = 3


class LimitError(TccError):
    """The model exceeds what the chosen target can hold or run."""


def weight_bits(weights: str = "int8", quant: str = "int8") -> int:
    """The fewest bits per weight element the quantization options can produce (a lower bound)."""
    if quant == "mixed":
        return 2  # the mixed-precision search may pick dybit2 anywhere
    match = re.fullmatch(r"(?:int|dybit)(\d+)(?:c\d|r)?", weights or "int8")
    return int(match[1]) if match else 8


def constant_elements(module: Module) -> int:
    return sum(op.result.type.size for op in module.ops if op.kind == "const")


def check_overlay_limits(module: Module, target, target_label: str = "the target",
                         weights: str = "int8", quant: str = "int8") -> None:
    """Raise LimitError when ``module`` (float IR, before quantization) cannot run on ``target``."""
    _check_shapes(module)
    _check_memory(module, target, target_label, weight_bits(weights, quant))
    _check_conv_tiles(module, target, target_label)


def _where(op) -> str:
    return f"{op.kind} %{op.results[0].name}" + (f" (ONNX node {op.loc!r})" if op.loc else "")


def _check_shapes(module: Module) -> None:
    for op in module.ops:
        if op.kind == "conv":
            x = op.x.type
            if x.rank != CONV_RANK:
                why = as_2d_problem(op)  # 1-D and 3-D convolutions become 2-D ones before quantization
                if why is not None:
                    raise LimitError(f"{_where(op)} works on a rank-{x.rank} tensor {x}; the overlay runs 2-D "
                                     f"convolutions, and this one cannot be rewritten as 2-D ones: {why}")
                continue
            if x.shape[0] != 1:
                raise LimitError(f"{_where(op)} has batch {x.shape[0]} ({x}); the overlay runs batch 1. "
                                 "Bind the batch to 1 with --input-shape NAME=1,... (and run the samples "
                                 "one after another)")
        if op.kind == "linear" and op.x.type.rank > LINEAR_MAX_RANK:
            x = op.x.type
            raise LimitError(f"{_where(op)} reads a rank-{x.rank} activation {x}; the overlay's linear "
                             f"layers take rank 2 or {LINEAR_MAX_RANK} ([rows, k] or [batch, rows, k]). "
                             "Flatten the leading dims before the layer")


def _check_memory(module: Module, target, target_label: str, bits: int) -> None:
    elements = constant_elements(module)
    weight_bytes = elements * bits // 8
    io_bytes = sum(v.type.size for v in module.inputs) + sum(v.type.size for _, v in module.outputs)
    need = weight_bytes + io_bytes
    if need > target.dram_bytes:
        raise LimitError(f"the model does not fit {target_label}: its {elements} constant elements take at "
                         f"least {weight_bytes} bytes at {bits} bits each, plus {io_bytes} bytes of int8 "
                         f"inputs and outputs, but dram_bytes = {target.dram_bytes}. Use a target with more "
                         "DRAM (--target-config), lower-bit weights (--weights int4 or dybit4) or a smaller model")


def _check_conv_tiles(module: Module, target, target_label: str) -> None:
    """Each conv needs one output row of one channel in the on-chip buffers (the reduction may be
    split over input-channel chunks): the backend's own tile search (backends/overlay/tiling.py),
    run with one-byte weights (a lower bound)."""
    from tcc.backends.overlay.context import Buffers
    from tcc.backends.overlay.tiling import ConvGeometry, conv_tiles_exist
    from tcc.isa.weights import INT8_WEIGHTS

    buffers = Buffers.of(target)
    for op in module.ops:
        if op.kind != "conv" or op.x.type.rank != CONV_RANK or len(op.w.type.shape) != 4:
            continue
        _, c_in, h, w = op.x.type.shape
        _, n_out, h_out, w_out = op.result.type.shape
        n_w, c_g, kh, kw = op.w.type.shape
        group = op.group
        depthwise = group == c_in and n_out == c_in and group > 1
        k = kh * kw if depthwise else kh * kw * c_g
        step = n_out // group if group > 1 and not depthwise and n_out // group < 32 else 32
        kind = "depthwise" if depthwise else "grouped" if group > 1 else "conv"
        geometry = ConvGeometry(h, w, c_in, n_out, h_out, w_out, kh, op.strides[0],
                                op.dilations[0], k, INT8_WEIGHTS, step, kind)
        if not conv_tiles_exist(geometry, buffers, target):
            raise LimitError(f"{_where(op)}: not even one output row of one channel fits the on-chip "
                             f"buffers of {target_label} (input {op.x.type}, {kh}x{kw} kernel, "
                             f"abuf_bytes = {target.abuf_bytes}, wbuf_bytes = {target.wbuf_bytes}, "
                             f"acc_bytes = {target.acc_bytes}); use a target with larger buffers")
