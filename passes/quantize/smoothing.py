"""SmoothQuant (Xiao et al., 2023): migrate activation outliers from a LayerNorm's output into the
weights of the linear layers that read it.

For ``Y = X W`` with X per-tensor int8 and W per-output-channel int8, a few input channels j with
large max|X_j| set X's scale and leave the other channels a handful of levels.  With per-input-
channel factors ``s_j = max|X_j|^a / max|W_j|^(1-a)`` the product is unchanged as
``(X / s) (diag(s) W)``: the division folds into the LayerNorm's gamma and beta (free at run
time), the multiplication into the weights, whose per-output-channel scales absorb it.

Rule (when it applies): a ``layer_norm`` with constant gamma and beta whose every user is a
``linear`` reading it as data (directly, or through a ``gather`` that picks tokens and keeps the
channel axis); a LayerNorm output that also feeds a residual add (post-LN BERT) is left alone,
since scaling it would change that sum.  Per site the migration strength ``a`` is searched over
``ALPHAS`` by the measured int8 error of the site's linear outputs on calibration data
(activation per tensor with its min/max range, weights per output channel, as the quantizer does);
``a = None`` (no smoothing) is a candidate, so a site is only changed when that error drops.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tcc.ir import Builder, Module, Op, Value, constant_value
from tcc.ir.interpreter import run_module

from ..base import Pass
from .calibration import load_samples
from .params import QuantizationError, activation_params, quantize_weights
from tcc.ir import numerics

ALPHAS = (0.25, 0.4, 0.5, 0.6, 0.75, 0.9)
MAX_ROWS = 4096  # activation rows (tokens) kept per site for the search
SCALE_FLOOR = 1e-5


@dataclass
class Site:
    """One LayerNorm and the linear layers reading its output (``readers``: (linear, gather or None))."""

    norm: Op
    readers: list[tuple[Op, Op | None]]
    rows: list[np.ndarray] = field(default_factory=list)

    @property
    def weights(self) -> list[np.ndarray]:
        return [constant_value(linear.w) for linear, _ in self.readers]  # [out, in] each


def _channel_gather(op: Op) -> bool:
    """A gather that picks along an axis other than the last keeps the channel axis intact."""
    return op.kind == "gather" and op.axis % op.data.type.rank != op.data.type.rank - 1 \
        and constant_value(op.indices) is not None


def smoothing_sites(module: Module) -> list[Site]:
    """The LayerNorms whose output only linear layers read (see the module docstring)."""
    sites = []
    for op in module.ops:
        if op.kind != "layer_norm" or op.result.type.dtype != "f32" or op.bias is None:
            continue
        if constant_value(op.scale) is None or constant_value(op.bias) is None or module.is_output(op.result):
            continue
        if op.axis % op.result.type.rank != op.result.type.rank - 1:
            continue
        readers: list[tuple[Op, Op | None]] = []
        for user in op.result.users:
            via = None
            if _channel_gather(user) and not module.is_output(user.result):
                via, users = user, user.result.users
            else:
                users = [user]
            for linear in users:
                if linear.kind != "linear" or linear.x is not (via.result if via else op.result) \
                        or constant_value(linear.w) is None or linear.w is linear.x or linear.b is linear.x:
                    readers = []
                    break
                readers.append((linear, via))
            if not readers:
                break
        if readers:
            sites.append(Site(op, readers))
    return sites


def exact_outputs(x: np.ndarray, weights: list[np.ndarray]) -> list[np.ndarray]:
    """The site's float linear outputs ``x @ w.T`` (computed once per site, read by every strength)."""
    return [x @ w.T.astype(np.float64) for w in weights]


def int8_error(x: np.ndarray, weights: list[np.ndarray], s: np.ndarray,
               exact: list[np.ndarray] | None = None) -> float:
    """Relative squared error of the linear outputs with X / s per-tensor int8 and W * s per-channel
    (``exact``: ``exact_outputs(x, weights)``, computed here when not given)."""
    xs = x / s
    p = activation_params(float(xs.min()), float(xs.max()), symmetric=False)
    xq = numerics.dequantize_affine(numerics.quantize_affine(xs, p.scale[0], p.zero_point[0]),
                                    p.scale[0], p.zero_point[0])
    noise = signal = 0.0
    for w, y in zip(weights, exact if exact is not None else exact_outputs(x, weights)):
        ws = w * s[None, :]
        q, wp = quantize_weights(ws, "int8", axis=0)
        wq = q.astype(np.float64) * np.asarray(wp.scale)[:, None]
        noise += float(np.sum((xq @ wq.T - y) ** 2))
        signal += float(np.sum(y ** 2))
    return noise / signal if signal > 0 else noise


def factors(x: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """s_j = max|X_j|^a / max|W_j|^(1-a) over the site's rows and all its weights' input channel j."""
    ax = np.maximum(np.abs(x).max(axis=0), SCALE_FLOOR)
    aw = np.maximum(np.max([np.abs(w).max(axis=0) for w in weights], axis=0), SCALE_FLOOR)
    s = ax ** alpha / aw ** (1 - alpha)
    return np.clip(s, SCALE_FLOOR, None).astype(np.float64)


def choose_alpha(x: np.ndarray, weights: list[np.ndarray]) -> tuple[float | None, np.ndarray | None, float, float]:
    """(alpha, factors, error, error without smoothing): the least-error strength, None when
    no strength beats leaving the site alone."""
    exact = exact_outputs(x, weights)
    base = int8_error(x, weights, np.ones(x.shape[1]), exact)
    best: tuple[float | None, np.ndarray | None, float] = (None, None, base)
    for alpha in ALPHAS:
        s = factors(x, weights, alpha)
        err = int8_error(x, weights, s, exact)
        if err < best[2]:
            best = (alpha, s, err)
    return best[0], best[1], best[2], base


def apply_factors(site: Site, s: np.ndarray) -> None:
    """gamma / s, beta / s on the LayerNorm; each reader's weight columns * s.  The LayerNorm's
    result (and a token-picking gather's) is renamed ``NAME.smoothed``: it no longer holds the
    ONNX tensor of that name, so `tcc verify` must not compare it with onnxruntime's."""
    norm = site.norm
    module = norm.module
    for value in [norm.result] + [via.result for _, via in site.readers if via is not None]:
        if not value.name.endswith(".smoothed"):
            module.rename(value, module.fresh_name(value.name + ".smoothed"))
    builder = Builder.before(norm)
    for old in (norm.scale, norm.bias):
        value = constant_value(old).astype(np.float64) / s
        replace_operand(norm, old, builder.const(value.astype(np.float32), name=old.name + ".smooth"))
        erase_if_unused(module, old)
    for linear, _ in site.readers:
        old = linear.w
        w = constant_value(old).astype(np.float64) * s[None, :]
        replace_operand(linear, old, Builder.before(linear).const(w.astype(np.float32), name=old.name + ".smooth"))
        erase_if_unused(module, old)


def replace_operand(op: Op, old: Value, new: Value) -> None:
    op.operands = [new if v is old else v for v in op.operands]


def erase_if_unused(module: Module, value: Value) -> None:
    if not value.users and value.producer is not None and not module.is_output(value):
        module.erase_op(value.producer)


@dataclass
class SmoothQuant(Pass):
    """Migrate activation outliers of LayerNorm outputs into the following linear layers' weights."""

    name = "smooth-quant"
    summary = ("SmoothQuant: per-channel factors folded into a LayerNorm and the linear layers reading it, "
               "strength searched per site by int8 error (needs calib=FILE.npz)")
    calib: str = ""
    max_samples: int = 16

    def __post_init__(self) -> None:
        self.report: list[tuple[str, float | None, float, float]] = []  # (LayerNorm loc, alpha, error, before)

    def apply(self, module: Module) -> None:
        if not self.calib:
            raise QuantizationError("smooth-quant needs calibration data: pass calib=FILE.npz")
        sites = smoothing_sites(module)
        self.report = []
        if not sites:
            return
        by_value: dict[int, Site] = {id(site.norm.result): site for site in sites}

        def observe(value: Value, array: np.ndarray) -> None:
            site = by_value.get(id(value))
            if site is not None and sum(len(r) for r in site.rows) < MAX_ROWS:
                site.rows.append(np.asarray(array, np.float64).reshape(-1, array.shape[-1]))

        # One BLAS thread (as calibration): the rows and errors must not depend on the thread count.
        with threadpool_limits(1, user_api="blas"):
            with self.timed("float runs"):
                for sample in load_samples(self.calib, module, self.max_samples):
                    run_module(module, sample, observe=observe)
            with self.timed("strength search"):
                self.choose(sites)
        module.sort_topologically()

    def choose(self, sites: list[Site]) -> None:
        """Search each site's strength on its collected rows and apply the factors of the best."""
        for site in sites:
            x = np.concatenate(site.rows)[:MAX_ROWS]
            alpha, s, err, base = choose_alpha(x, [w.astype(np.float64) for w in site.weights])
            self.report.append((site.norm.loc, alpha, err, base))
            if s is not None:
                apply_factors(site, s)
