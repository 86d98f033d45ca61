"""Lowerings of data-movement ONNX ops.  Reshape, Flatten, Squeeze and Unsqueeze all become a
``reshape`` to a fully resolved static shape; index-like inputs (shape, axes, starts, pads) must
be constants and become attributes."""
from __future__ import annotations

import math

from tcc.ir.shape_rules import normalize_axis, product

from .context import NodeContext


def _reshape_to(n: NodeContext, shape) -> None:
    n.emit("reshape", [n.input(0)], {"shape": tuple(int(d) for d in shape)})


def lower_reshape(n: NodeContext) -> None:
    """Resolve 0 (copy the input dim, unless allowzero) and -1 (whatever is left)."""
    in_shape = n.input_type(0).shape
    requested = n.const_ints(1, "shape")
    allowzero = n.attr("allowzero", 0)
    shape = [in_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(requested)]
    if shape.count(-1) > 1:
        raise n.error(f"shape {list(requested)} has more than one -1")
    if -1 in shape:
        known = product(d for d in shape if d != -1)
        if known == 0 or product(in_shape) % known:
            raise n.error(f"cannot resolve -1 in {list(requested)} for an input of shape {list(in_shape)}")
        shape[shape.index(-1)] = product(in_shape) // known
    _reshape_to(n, shape)


def lower_flatten(n: NodeContext) -> None:
    shape = n.input_type(0).shape
    axis = n.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    _reshape_to(n, (product(shape[:axis]), product(shape[axis:])))


def lower_squeeze(n: NodeContext) -> None:
    shape = n.input_type(0).shape
    if n.opset >= 13:
        axes = n.const_ints(1, "axes") if n.has_input(1) else ()
    else:
        axes = tuple(n.attr("axes") or ())
    if axes:
        drop = {normalize_axis(a, len(shape)) for a in axes}
    else:
        drop = {i for i, d in enumerate(shape) if d == 1}
    _reshape_to(n, [d for i, d in enumerate(shape) if i not in drop])


def lower_unsqueeze(n: NodeContext) -> None:
    """Axes index the output, whose rank is the input's plus the number of axes."""
    shape = list(n.input_type(0).shape)
    axes = n.const_ints(1, "axes") if n.opset >= 13 else tuple(n.attr("axes"))
    rank = len(shape) + len(axes)
    for axis in sorted(normalize_axis(a, rank) for a in axes):
        shape.insert(axis, 1)
    _reshape_to(n, shape)


def lower_transpose(n: NodeContext) -> None:
    rank = n.input_type(0).rank
    perm = n.attr("perm") or tuple(reversed(range(rank)))
    n.emit("transpose", [n.input(0)], {"perm": tuple(normalize_axis(p, rank) for p in perm)})


def lower_concat(n: NodeContext) -> None:
    operands = [n.input(i) for i in range(n.num_inputs) if n.has_input(i)]
    n.emit("concat", operands, {"axis": normalize_axis(n.attr("axis"), operands[0].type.rank)})


def lower_split(n: NodeContext) -> None:
    """Sizes from the ``split`` input (13+) or attribute, ``num_outputs`` (18+), or equal parts."""
    shape = n.input_type(0).shape
    axis = normalize_axis(n.attr("axis", 0), len(shape))
    dim, parts = shape[axis], len(n.node.output)
    if n.opset >= 13 and n.has_input(1):
        sizes = n.const_ints(1, "split")
    elif n.opset < 13 and n.attr("split"):
        sizes = tuple(n.attr("split"))
    elif n.has_attr("num_outputs"):
        chunk = math.ceil(dim / n.attr("num_outputs"))
        sizes = (chunk,) * (parts - 1) + (dim - chunk * (parts - 1),)
    elif dim % parts:
        raise n.error(f"dim {dim} does not split into {parts} equal parts")
    else:
        sizes = (dim // parts,) * parts
    n.emit_results("split", [n.input(0)], {"axis": axis, "sizes": tuple(sizes)})


def slice_bounds(start: int, end: int, step: int, size: int) -> tuple[int, int]:
    """ONNX's clamped start/end, spelled so that Python slicing means the same thing.

    ONNX clamps a negative-step end to -1 ("before index 0"); Python reads -1 as the last
    index, so that end is written as -(size + 1).
    """
    if size == 0:
        return 0, 0
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    if step > 0:
        return min(max(start, 0), size), min(max(end, 0), size)
    start = min(max(start, 0), size - 1)
    end = min(max(end, -1), size - 1)
    return start, (-(size + 1) if end == -1 else end)


def lower_slice(n: NodeContext) -> None:
    shape = n.input_type(0).shape
    if n.opset < 10:
        starts, ends = tuple(n.attr("starts")), tuple(n.attr("ends"))
        axes = tuple(n.attr("axes") or range(len(starts)))
        steps = (1,) * len(starts)
    else:
        starts, ends = n.const_ints(1, "starts"), n.const_ints(2, "ends")
        axes = n.const_ints(3, "axes") if n.has_input(3) else tuple(range(len(starts)))
        steps = n.const_ints(4, "steps") if n.has_input(4) else (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise n.error("starts, ends, axes and steps differ in length")
    if any(s == 0 for s in steps):
        raise n.error("a slice step is 0")
    axes = tuple(normalize_axis(a, len(shape)) for a in axes)
    bounds = [slice_bounds(s, e, st, shape[a]) for s, e, st, a in zip(starts, ends, steps, axes)]
    n.emit("slice", [n.input(0)], {"starts": tuple(b[0] for b in bounds), "ends": tuple(b[1] for b in bounds),
                                   "axes": axes, "steps": tuple(steps)})


_PAD_MODES = ("constant", "reflect", "edge", "wrap")


def lower_pad(n: NodeContext) -> None:
    rank = n.input_type(0).rank
    mode = n.attr("mode", "constant")
    if mode not in _PAD_MODES:
        raise n.error(f"mode={mode!r} is not supported; tcc pads with mode constant, reflect, edge or wrap")
    if n.opset < 11:
        pads, value = tuple(n.attr("pads")), float(n.attr("value", 0.0))
    else:
        pads = n.const_ints(1, "pads")
        value = float(n.const(2, "constant_value").reshape(())) if n.has_input(2) else 0.0
    if n.opset >= 18 and n.has_input(3):
        axes = [normalize_axis(a, rank) for a in n.const_ints(3, "axes")]
        full = [0] * (2 * rank)
        for i, axis in enumerate(axes):
            full[axis], full[axis + rank] = pads[i], pads[i + len(axes)]
        pads = tuple(full)
    if len(pads) != 2 * rank:
        raise n.error(f"pads {list(pads)} do not have 2 x {rank} entries")
    n.emit("pad", [n.input(0)], {"pads": pads, "mode": mode, "value": value})


def lower_gather(n: NodeContext) -> None:
    axis = normalize_axis(n.attr("axis", 0), n.input_type(0).rank)
    n.emit("gather", [n.input(0), n.input(1)], {"axis": axis})


def lower_expand(n: NodeContext) -> None:
    n.emit("expand", [n.input(0)], {"shape": n.const_ints(1, "shape")})


LOWERINGS = {
    "Reshape": lower_reshape,
    "Flatten": lower_flatten,
    "Squeeze": lower_squeeze,
    "Unsqueeze": lower_unsqueeze,
    "Transpose": lower_transpose,
    "Concat": lower_concat,
    "Split": lower_split,
    "Slice": lower_slice,
    "Pad": lower_pad,
    "Gather": lower_gather,
    "Expand": lower_expand,
}
