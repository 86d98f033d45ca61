"""DyBit's per-layer exponent-run cap, chosen by the model's output error on calibration samples.

The weight MSE alone is a poor guide on a trained network (digits CNN: the cap of least weight
MSE lowers the logits' SQNR by 1 dB against int4 while another cap raises it by 1.7 dB), so the
cap is chosen like mixed precision chooses formats (sensitivity.py): each layer's output-error
rise is measured for each cap, the rest of the model int8, and the layer takes the cap of least
error.  Only caps whose weight MSE is at most cap 0's (the intN grid) are candidates, so each
layer's DyBit weights are never further from the float weights than intN's; ties go to cap 0.
(With the config's layer input rows, layer_inputs.py, "weight MSE" is the layer's output error.)
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tcc.ir import Module, constant_value
from tcc.ir.interpreter import run_module

from .lowering import LoweringConfig, matrix_operands
from .params import dybit_caps, parse_weight_format, quantize_weights, weight_sse
from .sensitivity import measure_sensitivity, weight_layers


def _layer_weight(module: Module, name: str) -> np.ndarray:
    op = next(op for op in module.ops if op.result.name == name)
    w = constant_value(matrix_operands(op)[1])
    return w.T if op.kind == "matmul" else w  # the quantizer's [N, K] orientation (rules.lower_linear)


def cap_formats(fmt: str) -> tuple[str, ...]:
    """``dybitN`` -> the explicit formats of its caps, cap 0 first.  (A cap per channel,
    ``dybitNr``, is a format of its own: its caps cost a byte per channel and a DMA per tile.)"""
    _, bits = parse_weight_format(fmt)
    return tuple(f"dybit{bits}c{cap}" for cap in dybit_caps(bits))


def choose_dybit_caps(module: Module, ranges, samples: list, fmt: str, config: LoweringConfig,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
    """{layer name: ``dybitNcK``} for every weight layer of the float ``module``."""
    layers = weight_layers(module)
    candidates = cap_formats(fmt)
    allowed = np.zeros((len(layers), len(candidates)), bool)
    for i, layer in enumerate(layers):
        w = _layer_weight(module, layer.name)
        inputs = config.layer_inputs.get(layer.name)
        sse = np.array([weight_sse(w, *quantize_weights(w, c, inputs=inputs), inputs=inputs) for c in candidates])
        allowed[i] = sse <= sse[0]
    reference = [run_module(module, s) for s in samples]
    sensitivity = measure_sensitivity(module, ranges, layers, candidates, samples, reference, config, progress)
    measured = np.where(allowed, sensitivity.errors, np.inf)
    measured[:, 0] = np.where(np.isfinite(measured[:, 0]), measured[:, 0], -np.inf)  # cap 0 is always usable
    return {layer.name: candidates[int(np.argmin(measured[i]))] for i, layer in enumerate(layers)}
