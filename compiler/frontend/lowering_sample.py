"""Lowerings of the ONNX sampling ops: GridSample."""
from __future__ import annotations

from tcc.ir.ops_sample import GRID_SAMPLE_MODES, GRID_SAMPLE_PADDINGS

from .context import NodeContext

# GridSample-16 names the modes after the 2-D case.
_OLD_MODES = {"bilinear": "linear", "bicubic": "cubic"}


def lower_grid_sample(n: NodeContext) -> None:
    mode = n.attr("mode", "linear" if n.opset >= 20 else "bilinear")
    mode = _OLD_MODES.get(mode, mode)
    padding = n.attr("padding_mode", "zeros")
    if mode not in GRID_SAMPLE_MODES:
        raise n.error(f"mode={mode!r} is not one of {', '.join(GRID_SAMPLE_MODES)}")
    if padding not in GRID_SAMPLE_PADDINGS:
        raise n.error(f"padding_mode={padding!r} is not one of {', '.join(GRID_SAMPLE_PADDINGS)}")
    n.emit("grid_sample", [n.input(0), n.input(1)],
           {"mode": mode, "padding_mode": padding, "align_corners": n.attr("align_corners", 0)})


LOWERINGS = {
    "GridSample": lower_grid_sample,
}
