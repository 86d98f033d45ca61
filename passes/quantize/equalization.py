"""Cross-layer equalization (Nagel et al., 2019, data-free quantization), with the per-channel
factors chosen the SmoothQuant way (smoothing.py) by measured int8 error on calibration data.

For ``conv1 -> ReLU -> conv2`` a positive factor per channel c of the value between them is free:
``relu(W1 x + b1) / s_c == relu((W1[c] / s_c) x + b1[c] / s_c)`` (ReLU and max pooling are
positive-homogeneous), and conv2 reading ``X / s`` gets ``W2[:, c] * s_c``.  Per-tensor int8
activations then spend their levels on channels of equal range instead of on the widest one,
while conv1's per-output-channel weight scales absorb the division exactly and conv2's per-output-
channel scales absorb the multiplication.  Depthwise -> pointwise is the case Nagel et al. single
out: a depthwise conv's output channels have ranges as different as its filters.

Rule (when it applies): a *site* is a conv or linear op with a constant weight (and constant bias or
none) that is the weight's only user, followed by nothing or by a chain of ReLU / max_pool ops each
the only user of the one before (identity is a path too); every user of the chain's last value is
a group-1 conv (all with one window: kernel, strides, pads, dilations) or a linear reading it as data
with a constant weight, of the producer's kind.  No value on the way is a
model output.  Clip (ReLU6) is not positive-homogeneous with a per-tensor bound, SiLU / GELU /
HardSwish are not at all: those sites are left alone (EfficientNet's MBConv has none).
The factors ``s_c = max|X_c|^a / max|W2_c|^(1-a)`` (X the value between, W2 the readers' input
channel c over outputs and kernel taps) are searched over ``smoothing.ALPHAS`` per site by the
int8 error of the readers' outputs on calibration patches, and ``a = None`` (no change) is a
candidate, so a site only changes when that error drops.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Builder, Module, Op, Value, constant_value
from tcc.ir.interpreter import run_module
from tcc.ir.shape_rules import spatial_attrs

from ..base import Pass
from .calibration import load_samples
from .params import QuantizationError
from .smoothing import ALPHAS, MAX_ROWS, SCALE_FLOOR, erase_if_unused, exact_outputs, int8_error, replace_operand

HOMOGENEOUS = ("relu", "max_pool")  # f(x / s) == f(x) / s per channel for s > 0


@dataclass
class EqualizationSite:
    """A producer, the positive-homogeneous chain after it and the layers reading the chain's end."""

    producer: Op
    chain: list[Op]
    readers: list[Op]
    rows: list[np.ndarray] = field(default_factory=list)  # per reader-kernel patches of the value between
    peaks: np.ndarray | None = None  # max |X_c| over the calibration samples

    @property
    def between(self) -> Value:
        return self.chain[-1].result if self.chain else self.producer.result


def _constant_operands(op: Op) -> bool:
    w = constant_value(op.w)
    return w is not None and (op.b is None or constant_value(op.b) is not None) \
        and op.w is not op.x and (op.b is None or op.b is not op.x)


def _reader(op: Op, value: Value) -> bool:
    if op.kind not in ("conv", "linear") or len(op.w.users) != 1:
        return False
    if op.kind == "linear":
        return op.x is value and _constant_operands(op) and value.type.rank >= 2
    return op.kind == "conv" and op.x is value and op.group == 1 and _constant_operands(op)


def _same_window(a: Op, b: Op) -> bool:
    """Readers that reduce over the same windows (one set of calibration patches serves both)."""
    return a.w.type.shape[1:] == b.w.type.shape[1:] and (a.kind == "linear" or (
        a.strides, a.pads, a.dilations) == (b.strides, b.pads, b.dilations))


def equalization_sites(module: Module) -> list[EqualizationSite]:
    """Every site of the module docstring's rule, in program order."""
    sites = []
    for op in module.ops:
        if op.kind not in ("conv", "linear") or op.result.type.dtype != "f32" or not _constant_operands(op):
            continue
        if len(op.w.users) != 1 or (op.b is not None and len(op.b.users) != 1):
            continue
        if op.kind == "conv" and op.result.type.rank < 3:
            continue
        chain: list[Op] = []
        value = op.result
        while len(value.users) == 1 and value.users[0].kind in HOMOGENEOUS and not module.is_output(value):
            chain.append(value.users[0])
            value = value.users[0].result
        values = [op.result] + [c.result for c in chain]
        if any(module.is_output(v) for v in values) or not value.users:
            continue
        if op.kind == "linear" and chain:
            continue  # pooling over a linear layer's output is not a channel-last op
        readers = list(dict.fromkeys(value.users))
        if all(_reader(r, value) and _same_window(r, readers[0]) and r.kind == op.kind for r in readers):
            sites.append(EqualizationSite(op, chain, readers))
    return sites


def _reader_matrix(reader: Op) -> np.ndarray:
    """The reader's weight as [out, channels, taps] (linear: [out, in, 1])."""
    w = constant_value(reader.w).astype(np.float64)
    return w.reshape(w.shape[0], w.shape[1], -1)


def patches(x: np.ndarray, reader: Op, rng: np.random.Generator, count: int) -> np.ndarray:
    """Up to ``count`` rows [channels * taps] of what ``reader`` reduces over, from one sample ``x``
    (conv: the padded, strided, dilated windows of an NC[spatial] value; linear: the channel vectors)."""
    if reader.kind == "linear":
        rows = x.reshape(-1, x.shape[-1])
    else:
        nsp = x.ndim - 2
        strides, pads, dil = spatial_attrs(reader.attrs, nsp)
        kernel = reader.w.type.shape[2:]
        padded = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[nsp + i]) for i in range(nsp)])
        span = [dil[i] * (kernel[i] - 1) + 1 for i in range(nsp)]
        windows = np.lib.stride_tricks.sliding_window_view(padded, span, axis=tuple(range(2, 2 + nsp)))
        windows = windows[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
                          + tuple(slice(None, None, d) for d in dil)]
        # [N, C, *out, *kernel] -> [N * out, C * taps]
        moved = np.moveaxis(windows, 1, 1 + nsp)
        rows = moved.reshape(-1, x.shape[1] * int(np.prod(kernel)))
    if len(rows) > count:
        rows = rows[np.sort(rng.choice(len(rows), count, replace=False))]
    return np.asarray(rows, np.float64)


def site_factors(peaks: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """s_c = max|X_c|^a / max|W2[:, c, :]|^(1-a) over every reader (weights [out, C, taps])."""
    ax = np.maximum(peaks, SCALE_FLOOR)
    aw = np.maximum(np.max([np.abs(w).max(axis=(0, 2)) for w in weights], axis=0), SCALE_FLOOR)
    return np.clip(ax ** alpha / aw ** (1 - alpha), SCALE_FLOOR, None).astype(np.float64)


def choose_factors(site: EqualizationSite) -> tuple[float | None, np.ndarray | None, float, float]:
    """(alpha, factors, error, error unchanged) of least reader-output int8 error; alpha None when
    no strength beats leaving the site alone.  Each reader is scored on its own patches."""
    assert site.peaks is not None
    weights = [_reader_matrix(r) for r in site.readers]
    taps = weights[0].shape[2]
    rows = np.concatenate(site.rows)
    flat = [w.reshape(w.shape[0], -1) for w in weights]
    exact = exact_outputs(rows, flat)

    def error(s: np.ndarray) -> float:
        return int8_error(rows, flat, np.repeat(s, taps), exact)

    base = error(np.ones(len(site.peaks)))
    best: tuple[float | None, np.ndarray | None, float] = (None, None, base)
    for alpha in ALPHAS:
        s = site_factors(site.peaks, weights, alpha)
        err = error(s)
        if err < best[2]:
            best = (alpha, s, err)
    return best[0], best[1], best[2], base


def apply_site(site: EqualizationSite, s: np.ndarray) -> None:
    """Producer's output channel c (weight row and bias) / s_c; readers' input channel c * s_c.
    The values between are renamed ``NAME.equalized``: they no longer hold the ONNX tensors of that
    name, so `tcc verify` must not compare them with onnxruntime's."""
    producer = site.producer
    module = producer.module
    for value in [producer.result] + [op.result for op in site.chain]:
        if not value.name.endswith(".equalized"):
            module.rename(value, module.fresh_name(value.name + ".equalized"))
    builder = Builder.before(producer)
    for old in [producer.w] + ([producer.b] if producer.b is not None else []):
        array = constant_value(old).astype(np.float64)  # weight [out, ...] (conv and linear) or bias [out]
        array = array / s.reshape((-1,) + (1,) * (array.ndim - 1))
        replace_operand(producer, old, builder.const(array.astype(np.float32), name=old.name + ".eq"))
        erase_if_unused(module, old)
    for reader in site.readers:
        old = reader.w
        w = constant_value(old).astype(np.float64)
        shape = (1, -1) + (1,) * (w.ndim - 2)
        replace_operand(reader, old, Builder.before(reader).const((w * s.reshape(shape)).astype(np.float32),
                                                                 name=old.name + ".eq"))
        erase_if_unused(module, old)


@dataclass
class CrossLayerEqualization(Pass):
    """Equalize per-channel ranges across conv/linear -> ReLU -> conv/linear pairs (module docstring)."""

    name = "equalize"
    summary = ("cross-layer equalization: per-channel factors moved from a conv's output into the next "
               "layer's input channels across ReLU / max pooling, strength searched per site by int8 "
               "error (needs calib=FILE.npz)")
    calib: str = ""
    max_samples: int = 8

    def __post_init__(self) -> None:
        self.report: list[tuple[str, float | None, float, float]] = []  # (producer loc, alpha, error, before)

    def apply(self, module: Module) -> None:
        if not self.calib:
            raise QuantizationError("equalize needs calibration data: pass calib=FILE.npz")
        sites = equalization_sites(module)
        self.report = []
        if not sites:
            return
        samples = load_samples(self.calib, module, self.max_samples)
        by_value = {id(site.between): site for site in sites}
        rng = np.random.default_rng(0)
        per_sample = max(1, MAX_ROWS // len(samples))

        def observe(value: Value, array: np.ndarray) -> None:
            site = by_value.get(id(value))
            if site is None:
                return
            x = np.asarray(array, np.float64)
            axes = tuple(i for i in range(x.ndim) if i != (1 if site.producer.kind == "conv" else x.ndim - 1))
            peak = np.abs(x).max(axis=axes)
            site.peaks = peak if site.peaks is None else np.maximum(site.peaks, peak)
            site.rows.append(patches(x, site.readers[0], rng, per_sample))

        for sample in samples:
            run_module(module, sample, observe=observe)
        for done, site in enumerate(sites, 1):
            alpha, s, err, base = choose_factors(site)
            self.report.append((site.producer.loc, alpha, err, base))
            if s is not None:
                apply_site(site, s)
            self.report_progress("equalizing", done, len(sites))
        module.sort_topologically()
