"""Rows of what each weight layer multiplies its weights by, sampled from calibration runs of the
float model: for a conv the input patches (im2col, K ordered as the weight's [C, kh, kw]), for a
linear / matmul the input's rows.  The quantizer weighs a weight error by these rows, so its
scale and format searches minimise the layer's output error instead of the weights' own
(params.quantize_weights ``inputs``): ``||(q - w) x||**2`` over the sampled x.

Grouped and depthwise convolutions (each channel reads its own input slice) get no rows; their
weights keep the weight-MSE searches.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, Op
from tcc.ir.interpreter import run_module

from .lowering import matrix_operands
from .sensitivity import weight_layers

DEFAULT_ROWS = 1024  # rows kept per layer, spread over the samples


def _patch_rows(op: Op, x: np.ndarray, w_shape: tuple[int, ...], count: int, rng) -> np.ndarray | None:
    """``count`` rows (or all, if fewer) of the layer's input in its weight's K order."""
    if op.kind != "conv":
        k = w_shape[0] if op.kind == "matmul" else w_shape[1]
        rows = x.reshape(-1, k)
        pick = np.sort(rng.choice(rows.shape[0], min(count, rows.shape[0]), replace=False))
        return rows[pick]
    if op.group != 1 or x.ndim != 4 or len(w_shape) != 4:
        return None
    _, kh, kw = w_shape[1:]
    (sh, sw), (dh, dw) = op.strides, op.dilations
    top, left, bottom, right = op.pads
    _, _, h_out, w_out = op.result.type.shape
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    positions = x.shape[0] * h_out * w_out
    pick = np.sort(rng.choice(positions, min(count, positions), replace=False))
    n, rest = np.divmod(pick, h_out * w_out)
    oy, ox = np.divmod(rest, w_out)
    iy = oy[:, None] * sh + np.arange(kh) * dh  # [P, kh]
    ix = ox[:, None] * sw + np.arange(kw) * dw  # [P, kw]
    patches = padded[n[:, None, None], :, iy[:, :, None], ix[:, None, :]]  # [P, kh, kw, C]
    return np.transpose(patches, (0, 3, 1, 2)).reshape(pick.size, -1)


def layer_input_rows(module: Module, samples: list, rows: int = DEFAULT_ROWS) -> dict[str, np.ndarray]:
    """{layer name: float32 rows [M, K]} for every weight layer of the float ``module`` that has them."""
    layers = {layer.name for layer in weight_layers(module)}
    ops = [op for op in module.ops if op.result.name in layers]
    by_input: dict[int, list[Op]] = {}
    for op in ops:
        by_input.setdefault(id(matrix_operands(op)[0]), []).append(op)
    per_sample = -(-rows // max(len(samples), 1))
    gathered: dict[str, list[np.ndarray]] = {op.result.name: [] for op in ops}
    rngs = {op.result.name: np.random.default_rng(i) for i, op in enumerate(ops)}
    skipped: set[str] = set()

    def observe(value, array) -> None:
        for op in by_input.get(id(value), ()):
            name = op.result.name
            got = _patch_rows(op, np.asarray(array, np.float32), matrix_operands(op)[1].type.shape, per_sample,
                              rngs[name])
            if got is None:
                skipped.add(name)
            else:
                gathered[name].append(got)

    for sample in samples:
        run_module(module, sample, observe)
    return {name: np.concatenate(parts).astype(np.float32) for name, parts in gathered.items()
            if parts and name not in skipped}
