"""Lowerings of ONNX's indexing and rearranging ops: Tile, DepthToSpace, SpaceToDepth,
GatherElements, GatherND, ScatterElements/Scatter, ScatterND, OneHot, Trilu, CumSum, TopK, Einsum,
and the ones whose constant index inputs make them gathers: Compress and ReverseSequence."""
from __future__ import annotations

import numpy as np

from tcc.ir.shape_rules import normalize_axis, product

from .context import NodeContext


def lower_tile(n: NodeContext) -> None:
    n.emit("tile", [n.input(0)], {"repeats": n.const_ints(1, "repeats")})


def lower_depth_to_space(n: NodeContext) -> None:
    n.emit("depth_to_space", [n.input(0)], {"blocksize": n.attr("blocksize"), "mode": n.attr("mode", "DCR")})


def lower_space_to_depth(n: NodeContext) -> None:
    n.emit("space_to_depth", [n.input(0)], {"blocksize": n.attr("blocksize"), "mode": n.attr("mode", "DCR")})


def lower_gather_elements(n: NodeContext) -> None:
    axis = normalize_axis(n.attr("axis", 0), n.input_type(0).rank)
    n.emit("gather_elements", [n.input(0), n.input(1)], {"axis": axis})


def lower_gather_nd(n: NodeContext) -> None:
    n.emit("gather_nd", [n.input(0), n.input(1)], {"batch_dims": n.attr("batch_dims", 0)})


def lower_scatter_elements(n: NodeContext) -> None:
    axis = normalize_axis(n.attr("axis", 0), n.input_type(0).rank)
    n.emit("scatter_elements", [n.input(0), n.input(1), n.input(2)],
           {"axis": axis, "reduction": n.attr("reduction", "none")})


def lower_scatter_nd(n: NodeContext) -> None:
    n.emit("scatter_nd", [n.input(0), n.input(1), n.input(2)], {"reduction": n.attr("reduction", "none")})


def lower_one_hot(n: NodeContext) -> None:
    depth = n.const(1, "depth").reshape(-1)[0]
    indices = n.input(0)
    if indices.type.dtype not in ("i64", "i32"):  # ONNX allows float indices: they are truncated
        indices = n.temp("cast", [indices], {"to": "i64"}, hint="indices")
    n.emit("one_hot", [indices, n.input(2)], {"depth": int(depth), "axis": n.attr("axis", -1)})


def lower_trilu(n: NodeContext) -> None:
    k = int(n.const(1, "k").reshape(())) if n.has_input(1) else 0
    n.emit("trilu", [n.input(0)], {"upper": n.attr("upper", 1), "k": k})


def _cumulative(kind: str):
    def lower(n: NodeContext) -> None:
        axis = normalize_axis(int(n.const(1, "axis").reshape(())), n.input_type(0).rank)
        n.emit(kind, [n.input(0)], {"axis": axis, "exclusive": n.attr("exclusive", 0), "reverse": n.attr("reverse", 0)})

    lower.__doc__ = f"-> {kind} with a constant axis"
    return lower


def lower_eye_like(n: NodeContext) -> None:
    """Only the input's shape matters: a constant."""
    from tcc.ir.dtypes import to_numpy
    from .onnx_types import numpy_dtype

    rows, cols = n.input_type(0).shape
    dtype = numpy_dtype(n.attr("dtype")) if n.has_attr("dtype") else to_numpy(n.input_type(0).dtype)
    n.set_const(0, np.eye(rows, cols, k=n.attr("k", 0), dtype=dtype))


def lower_top_k(n: NodeContext) -> None:
    rank = n.input_type(0).rank
    k = int(n.const(1, "K").reshape(-1)[0]) if n.opset >= 10 else n.attr("k")
    results = n.results("top_k", [n.input(0)], {"k": k, "axis": normalize_axis(n.attr("axis", -1), rank),
                                                "largest": n.attr("largest", 1), "sorted": n.attr("sorted", 1)}, 2)
    for i, value in enumerate(results):
        if i < len(n.node.output) and n.node.output[i]:
            n.bind_output(i, value)


def lower_einsum(n: NodeContext) -> None:
    equation = n.attr("equation").replace(" ", "")
    n.emit("einsum", [n.input(i) for i in range(n.num_inputs)], {"equation": equation})


def lower_compress(n: NodeContext) -> None:
    """A constant condition selects fixed positions: a gather (after flattening when axis is absent)."""
    condition = n.const(1, "condition").reshape(-1).astype(bool)
    shape = n.input_type(0).shape
    x = n.input(0)
    if n.has_attr("axis"):
        axis = normalize_axis(n.attr("axis"), len(shape))
    else:
        axis = 0
        x = n.temp("reshape", [x], {"shape": (product(shape),)}, hint="flat")
        shape = (product(shape),)
    picked = np.nonzero(condition[:shape[axis]])[0].astype(np.int64)
    n.emit("gather", [x, n.new_const(picked, f"{n.loc}.picked")], {"axis": axis})


def lower_reverse_sequence(n: NodeContext) -> None:
    """Constant lengths fix every source position: a gather_elements along the time axis."""
    shape = n.input_type(0).shape
    time_axis, batch_axis = n.attr("time_axis", 0), n.attr("batch_axis", 1)
    lens = n.const(1, "sequence_lens").reshape(-1)
    t = np.arange(shape[time_axis])
    index = np.where(t[:, None] < lens[None, :], lens[None, :] - 1 - t[:, None], t[:, None])  # [time, batch]
    if time_axis > batch_axis:
        index = index.T
    index = index.reshape(index.shape + (1,) * (len(shape) - 2))
    index = np.broadcast_to(index, shape).astype(np.int64)
    n.emit("gather_elements", [n.input(0), n.new_const(np.ascontiguousarray(index), f"{n.loc}.positions")],
           {"axis": time_axis})


LOWERINGS = {
    "Tile": lower_tile,
    "DepthToSpace": lower_depth_to_space,
    "SpaceToDepth": lower_space_to_depth,
    "GatherElements": lower_gather_elements,
    "GatherND": lower_gather_nd,
    "ScatterElements": lower_scatter_elements,
    "Scatter": lower_scatter_elements,
    "ScatterND": lower_scatter_nd,
    "OneHot": lower_one_hot,
    "Trilu": lower_trilu,
    "CumSum": _cumulative("cumsum"),
    "CumProd": _cumulative("cumprod"),
    "EyeLike": lower_eye_like,
    "TopK": lower_top_k,
    "Einsum": lower_einsum,
    "Compress": lower_compress,
    "ReverseSequence": lower_reverse_sequence,
}
