"""DyBit-4 against int4 layer by layer, and the ceiling of any 4-bit scalar weight format.

    python bench/dybit_ceiling.py [--models digits,encoder,mobilenet_v3,vit_tiny] [--test-samples 120]

Per weight layer (after BatchNorm folding), each output channel quantized on its own, the
weights' SQNR against float for
  int4      tcc's int4: 15 levels [-7, 7], the MSE scale search;
  dybit4    a cap per layer (0 = the int4 grid, 2, 3) of least weight MSE, each cap's own scale search;
  dybit4r   a cap and scale per output channel;
  i4x16     int4 with its 16th code: [-8, 7] or [-7, 8] per channel (the extra level on the side
            the channel needs), scale searched;
  d4rx16    dybit4r with DyBit's unused -0 code as a 16th level (the next magnitude past the top,
            on either side per channel), cap and scale per channel;
  lm15      one optimal (Lloyd-Max) codebook per layer with a scale per channel, sign-symmetric
            with a zero (8 magnitudes, 15 values): the ceiling of a per-layer sign-magnitude
            4-bit grid with per-channel scales (DyBit-4's and int4's shape);
  lm16      the same with 16 free levels (any per-layer 4-bit code, e.g. using DyBit's -0 code);
  lm15c/16c a codebook per output channel (the ceiling of per-channel grids such as dybit4r's,
            and of any 4-bit scalar code with a per-channel table).
The codebooks are the optimal ones (1-D k-means solved exactly by dynamic programming, over
runs of sorted values for large layers); the per-layer ones alternate with the channels' scales
from int4's and DyBit-4's (the joint optimum is not convex: a near-ceiling, never below either).
(``--objective output``: every search minimises each layer's output error on rows of its
calibration inputs, the codebooks its diagonal -- each weight weighed by its input's energy --
which makes them no ceiling there; the table then shows each layer's output SQNR.)  A per-channel
codebook also stores 8 or 16 levels per channel: for the 9-weight channels of a 3x3 depthwise or
single-input-channel conv it holds the weights themselves, so it is a ceiling only where a row
is long.  Then the logits' SQNR against float with only the weights quantized (float activations), on the
test split: the format's whole effect on the model, without int8 activation noise (which only
lowers the gains).  The lm rows are ceilings for the weight-MSE objective, not formats the
overlay runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tcc.driver import compile_to_ir
from tcc.ir import constant_value
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PRE_QUANT_PIPELINE
from tcc.passes.quantize.calibration import load_samples
from tcc.passes.quantize.layer_inputs import layer_input_rows
from tcc.passes.quantize.lowering import matrix_operands
from tcc.passes.quantize.params import quantize_weights
from tcc.passes.quantize.sensitivity import weight_layers

ROOT = Path(__file__).resolve().parents[1] / "examples"
REAL = ROOT / "real_models"
MODELS = {  # onnx, calibration and test inputs (trained: digits, encoder; the rest random, trained-like BN)
    "digits": (ROOT / "digits" / "digits_cnn.onnx", ROOT / "digits" / "digits_calib.npz",
               ROOT / "digits" / "digits_test.npz"),
    "encoder": (ROOT / "encoder" / "encoder.onnx", ROOT / "encoder" / "encoder_calib.npz",
                ROOT / "encoder" / "encoder_test.npz"),
    "mobilenet_v3": (REAL / "mobilenet_v3.onnx", REAL / "mobilenet_v3_calib.npz", REAL / "mobilenet_v3_test.npz"),
    "vit_tiny": (REAL / "vit_tiny.onnx", REAL / "vit_tiny_calib.npz", REAL / "vit_tiny_test.npz"),
}
FORMATS = ("int4", "dybit4", "dybit4r", "i4x16", "d4rx16", "lm15", "lm16", "lm15c", "lm16c")


def optimal_levels(x: np.ndarray, count: int, zero: bool = False, weights: np.ndarray | None = None,
                   groups: int = 768) -> np.ndarray:
    """The ``count`` levels of least (``weights``-weighted) squared error for the values ``x``
    (optimal 1-D k-means by dynamic programming over the sorted values; above ``groups`` values,
    over runs of consecutive sorted values, which may only cost a little).  ``zero``: the first
    level is fixed at 0."""
    x = np.asarray(x, np.float64)
    h = np.ones(x.size) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), x.shape).ravel()
    x = x.ravel()
    order = np.argsort(x, kind="stable")
    x, h = x[order], h[order] + 1e-300
    if x.size <= count and not zero:
        return np.unique(x)
    bounds = np.unique(np.linspace(0, x.size, min(groups, x.size) + 1).round().astype(int))
    n = np.concatenate([[0], np.add.reduceat(h, bounds[:-1]).cumsum()])
    s = np.concatenate([[0], np.add.reduceat(h * x, bounds[:-1]).cumsum()])
    q = np.concatenate([[0], np.add.reduceat(h * x * x, bounds[:-1]).cumsum()])
    g = len(bounds) - 1
    i, j = np.meshgrid(np.arange(g + 1), np.arange(g + 1), indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = np.where(j > i, (q[j] - q[i]) - (s[j] - s[i]) ** 2 / (n[j] - n[i]), np.inf)
    stages = [q.copy() if zero else cost[0].copy()]  # [m][j]: least error of [0, j) in m + 1 cells
    picks = []  # [m][j]: where the last of m + 2 cells of [0, j) starts
    for _ in range(count - 1):
        total = stages[-1][:, None] + cost  # [i, j]: m + 1 cells up to i, then the cell [i, j)
        picks.append(np.argmin(total, axis=0))
        stages.append(total[picks[-1], np.arange(g + 1)])
    m = int(np.argmin([stage[g] for stage in stages]))
    ends = [g]  # the cells' ends, last first; the first cell is [0, ends[-1])
    for pick in reversed(picks[:m]):
        ends.append(int(pick[ends[-1]]))
    bounds = [0] + ends[::-1]
    levels = [0.0] if zero else []
    for cell, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if b > a and not (zero and cell == 0):
            levels.append((s[b] - s[a]) / (n[b] - n[a]))
    return np.unique(levels)


def on_codebook(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    return levels[np.clip(np.searchsorted((levels[1:] + levels[:-1]) / 2, x), 0, len(levels) - 1)]


def codebook_values(rows: np.ndarray, free: bool, h: np.ndarray | None = None) -> np.ndarray:
    """``rows`` on their optimal codebook: sign-symmetric with 8 magnitudes from 0 (``free``
    False: 15 values, int4's and DyBit's shape) or 16 free levels (any 4-bit code); ``h``:
    each value's weight in the squared error."""
    if free:
        return on_codebook(rows, optimal_levels(rows, 16, weights=h))
    mags = optimal_levels(np.abs(rows), 8, zero=True, weights=h)
    return np.sign(rows) * on_codebook(np.abs(rows), mags)


def layer_codebook(rows: np.ndarray, free: bool, h: np.ndarray, inputs, rounds: int = 4) -> np.ndarray:
    """One codebook for the layer and a scale per channel: alternately the optimal codebook of
    the rows divided by their scales and each channel's least-squares scale for its codes, from
    int4's and from DyBit-4's scales (whose grids are two such codebooks, so neither is beaten);
    the closest result to ``rows`` of the rounds."""
    best, best_error = rows, np.inf
    for start in ("int4", "dybit4"):
        _, params = quantize_weights(rows.astype(np.float32), start, inputs=inputs)
        scale = np.asarray(params.scale, np.float64)[:, None]
        for _ in range(rounds):
            codes = codebook_values(rows / scale, free, np.broadcast_to(h * scale ** 2, rows.shape))
            values = codes * scale
            error = float(np.sum(h * (values - rows) ** 2))
            if error < best_error:
                best, best_error = values, error
            fit = np.sum(h * codes * rows, axis=1, keepdims=True) / np.maximum(
                np.sum(h * codes * codes, axis=1, keepdims=True), 1e-30)
            scale = np.where(fit > 0, fit, scale)
    return best


def sixteen_levels(magnitudes: np.ndarray) -> np.ndarray:
    """A sign-magnitude grid with its -0 code given a 16th value: the negative of the next
    magnitude past the top (as the grid's last step continues)."""
    extra = magnitudes[-1] + (magnitudes[-1] - magnitudes[-2])
    return np.unique(np.concatenate([-magnitudes, magnitudes, [-extra]]))


def on_grids(rows: np.ndarray, grids: list[np.ndarray], h: np.ndarray, steps: int = 160) -> np.ndarray:
    """Each row on the best of ``grids`` (and their mirror images: the extra level on either
    side) at its best scale, searched over ``steps`` scales up to 1.25x max-abs over the grid's top."""
    best = np.zeros_like(rows)
    best_error = np.full(rows.shape[0], np.inf)
    peak = np.abs(rows).max(axis=1, keepdims=True)
    peak = np.where(peak > 0, peak, 1.0)
    for grid in grids + [-g[::-1] for g in grids]:
        top = np.abs(grid).max()
        for f in np.linspace(0.3, 1.25, steps):
            scale = peak * f / top
            values = on_codebook(rows / scale, grid) * scale
            error = np.sum(h * (values - rows) ** 2, axis=1)
            better = error < best_error
            best[better], best_error[better] = values[better], error[better]
    return best


def _dybit_magnitudes(cap: int) -> np.ndarray:
    from tcc.ir import numerics

    return numerics.dybit_magnitudes(4, cap)


def quantized_rows(rows: np.ndarray, fmt: str, inputs: np.ndarray | None = None) -> np.ndarray:
    """Rows [N, K] (a row per output channel) quantized in ``fmt`` and dequantized.  ``inputs``
    (the layer's input rows [M, K]): the searches minimise the layer's output error instead (the
    codebooks weigh each weight by its input's energy, the diagonal of that error)."""
    rows = rows.astype(np.float64)
    h = np.ones(rows.shape[1]) if inputs is None else np.sum(np.asarray(inputs, np.float64) ** 2, axis=0)
    if fmt in ("lm15", "lm16"):
        return layer_codebook(rows, fmt == "lm16", h, inputs)
    if fmt in ("lm15c", "lm16c"):
        return np.stack([codebook_values(r, fmt == "lm16c", h) for r in rows])
    if fmt == "i4x16":
        return on_grids(rows, [np.arange(-8, 8, dtype=np.float64)], h)
    if fmt == "d4rx16":
        return on_grids(rows, [sixteen_levels(_dybit_magnitudes(cap)) for cap in (0, 2, 3)], h)
    values, params = quantize_weights(rows.astype(np.float32), fmt, inputs=inputs)
    return values.astype(np.float64) * np.asarray(params.scale, np.float64)[:, None]


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    noise = np.sum((reference - got) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference ** 2) / noise))


def weight_rows(op) -> np.ndarray:
    w = constant_value(matrix_operands(op)[1]).astype(np.float32)
    return (w.T if op.kind == "matmul" else w.reshape(w.shape[0], -1))


def with_weights(op, rows: np.ndarray) -> None:
    """Replace ``op``'s weight constant by ``rows`` in the constant's own layout."""
    const = matrix_operands(op)[1].producer
    shape = const.attrs["value"].shape
    const.attrs["value"] = (rows.T if op.kind == "matmul" else rows.reshape(shape)).astype(np.float32)


def measure(name: str, test_samples: int, objective: str) -> tuple[list[tuple[str, dict]], dict]:
    model, calib, test = MODELS[name]
    module, _ = compile_to_ir(str(model), passes=DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)
    samples = load_samples(str(test), module, test_samples, "test file")
    inputs = layer_input_rows(module, load_samples(str(calib), module, 16)) if objective == "output" else {}
    ops = {op.result.name: op for op in module.ops}
    layers = weight_layers(module)
    quantized = {layer.name: {fmt: quantized_rows(weight_rows(ops[layer.name]), fmt, inputs.get(layer.name))
                              for fmt in FORMATS} for layer in layers}
    def layer_sqnr(name: str, q: np.ndarray) -> float:
        """Of the weights, or of the layer's outputs on its rows when the searches minimise those."""
        w, x = weight_rows(ops[name]).astype(np.float64), inputs.get(name)
        return sqnr_db(w, q) if x is None else sqnr_db(w @ x.T.astype(np.float64), q @ x.T.astype(np.float64))

    table = [(layer.label, {fmt: layer_sqnr(layer.name, q) for fmt, q in quantized[layer.name].items()})
             for layer in layers]

    def outputs() -> np.ndarray:
        return np.concatenate([np.concatenate([o.ravel() for o in run_module(module, s).values()]) for s in samples])

    originals = {layer.name: weight_rows(ops[layer.name]) for layer in layers}
    reference = outputs()
    logits = {}
    for fmt in FORMATS:
        for layer in layers:
            with_weights(ops[layer.name], quantized[layer.name][fmt])
        logits[fmt] = sqnr_db(reference, outputs())
    for layer in layers:
        with_weights(ops[layer.name], originals[layer.name])
    return table, logits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--test-samples", type=int, default=120)
    parser.add_argument("--objective", choices=("weights", "output"), default="weights",
                        help="what every search minimises: the weights' squared error, or each layer's output "
                             "error on rows of its calibration inputs (--weight-error output)")
    args = parser.parse_args()
    for name in args.models.split(","):
        table, logits = measure(name, args.test_samples, args.objective)
        width = min(max(len(label) for label, _ in table), 36)
        print(f"\n{name}: " + ("weight SQNR per layer (dB), the searches minimising the weights' squared error"
                               if args.objective == "weights" else "SQNR of each layer's outputs on its calibration "
                               "rows (dB; the weights' where it has none), the searches minimising that error"))
        print(f"{'layer':<{width}}" + "".join(f"{f:>9}" for f in FORMATS) + f"{'d4-i4':>8}{'d4r-i4':>8}")
        for label, row in table:
            print(f"{label[-width:]:<{width}}" + "".join(f"{row[f]:>9.2f}" for f in FORMATS)
                  + f"{row['dybit4'] - row['int4']:>+8.2f}{row['dybit4r'] - row['int4']:>+8.2f}")
        worst = min(row["dybit4"] - row["int4"] for _, row in table)
        mean = {f: np.mean([row[f] for _, row in table]) for f in FORMATS}
        print(f"{'mean':<{width}}" + "".join(f"{mean[f]:>9.2f}" for f in FORMATS))
        print(f"dybit4 - int4 on the worst layer: {worst:+.2f} dB")
        print("output SQNR, weights only quantized (dB): "
              + ", ".join(f"{f} {v:.2f} ({v - logits['int4']:+.2f})" for f, v in logits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
