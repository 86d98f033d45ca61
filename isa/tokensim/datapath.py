"""What each module computes, on whole token streams at once (numpy, vectorised over tokens).

Every rounding goes through ``tcc.ir.numerics`` (centre_and_shift, requantize, rounded_mean): the simulator and
the integer reference interpreter share those definitions.  Matrix work runs in float64, exact for
int8 x int8 products summed over any of these layers (far below 2**53), then is checked to fit
int32 as the hardware accumulators must.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from tcc.ir import numerics
from tcc.ir.dtypes import to_numpy
from tcc.ir.pool_geometry import window_divisors

from .cost import Counts
from .errors import TokenSimError
from .tokens import TokenStream

INT32_MIN, INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX
MAX_POOL_PADDING = -(2**40)  # below any int8/int32 value: max pooling's padding never wins


def requant(values: np.ndarray, rq: dict) -> np.ndarray:
    """The requantize op's arithmetic on [N, C] values: (x - in_zp) << pre_shift, then
    numerics.requantize with the op's multiplier, shift, zero point, clamp and rounding."""
    v = np.asarray(numerics.centre_and_shift(values, np.asarray(rq["in_zero_point"], np.int64), rq["pre_shift"]))
    per_channel = len(rq["multiplier"]) > 1
    mult = np.asarray(rq["multiplier"], np.int64) if per_channel else rq["multiplier"][0]
    shift = np.asarray(rq["shift"], np.int64) if per_channel else rq["shift"][0]
    out = numerics.requantize(v, mult, shift, rq["zero_point"], rq["qmin"], rq["qmax"], rq["rounding"],
                              axis=v.ndim - 1 if per_channel else None, out_dtype=to_numpy(rq["dtype"]))
    return np.asarray(out).astype(np.int64)


def _int32(acc: np.ndarray, spec: dict) -> np.ndarray:
    if acc.size and (acc.max() > INT32_MAX or acc.min() < INT32_MIN):
        raise TokenSimError(f"module {spec['name']} ({spec['kind']} at {spec['loc']!r}): int32 accumulator "
                            f"overflow (range [{acc.min():.0f}, {acc.max():.0f}])")
    return acc.astype(np.int64)


@functools.lru_cache(maxsize=256)
def _all_sites(ho: int, wo: int) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    sites = np.stack([rows.reshape(-1), cols.reshape(-1)], axis=1).astype(np.int64)
    sites.flags.writeable = False
    return sites


class _Windows:
    """The input's index map padded for a module's window: tap indices of any output sites into
    the stream's rows, with n = len(stream) for an in-bounds inactive site and n + 1 for padding."""

    def __init__(self, stream: TokenStream, spec: dict):
        self.k, self.s, p = spec["kernel"], spec["stride"], spec["pad"]
        _, ho, wo = spec["out_shape"]
        self.n = len(stream)
        end = max(0, (ho - 1) * self.s + self.k - p - stream.height, (wo - 1) * self.s + self.k - p - stream.width)
        self.table = stream.index_map(p, inactive=self.n, outside=self.n + 1, pad_end=end)
        ky, kx = np.divmod(np.arange(self.k * self.k), self.k)
        self.ky, self.kx = ky[None, :], kx[None, :]

    def taps(self, sites: np.ndarray) -> np.ndarray:
        return self.table[sites[:, :1] * self.s + self.ky, sites[:, 1:] * self.s + self.kx]


def output_sites(stream: TokenStream, spec: dict, mode: str, in_zero_point, win: _Windows) -> np.ndarray:
    """[N, 2] the active output sites of a windowed module, in raster order.

    submanifold: stride 1 keeps the input's sites; stride s makes site (i, j) active iff any input
    site of the s x s cell at (s*i, s*j) is.  exact: every site whose window reaches an active
    input, plus, when the input background differs from the zero point, every site whose window
    reaches the padding (its value differs from the interior background)."""
    _, ho, wo = spec["out_shape"]
    s = spec["stride"]
    if mode == "submanifold":
        cell = np.zeros((ho, wo), bool)
        cell[stream.coords[:, 0] // s, stream.coords[:, 1] // s] = True
        return np.argwhere(cell).astype(np.int64)
    sites = _all_sites(ho, wo)
    taps = win.taps(sites)
    active = (taps < win.n).any(axis=1)
    if np.any(stream.background != np.asarray(in_zero_point)):
        active |= (taps == win.n + 1).any(axis=1)
    return sites[active]


def _gathered(stream: TokenStream, win: _Windows, sites: np.ndarray, centre, padding=0) -> tuple[np.ndarray, np.ndarray]:
    """[N_out, K*K, C] centred tap values at the output sites (``padding`` in the padding), and
    [N_out] valid-neighbour counts."""
    taps = win.taps(sites)
    values = np.concatenate([stream.feats - centre, (stream.background - centre)[None, :],
                             np.full((1, stream.channels), padding, np.int64)]).astype(np.float64)
    return values[taps], (taps < win.n).sum(axis=1)


def _centred_weights(spec: dict, weights: dict) -> np.ndarray:
    """[Cout, Cin/group * K * K] weights minus their zero points, in float64 (exact for int8)."""
    w = weights[spec["weight"]]
    mat = w.reshape(w.shape[0], -1).astype(np.float64)
    mat -= np.asarray(spec["weight_zero_point"], np.float64)[:, None]
    return mat


def conv(spec: dict, weights: dict, stream: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """conv (group 1, KxK), pointwise and depthwise modules: accumulate, requantize (+ReLU)."""
    w = _centred_weights(spec, weights)
    bias = weights[spec["bias"]].astype(np.float64) if spec.get("bias") else 0.0
    win = _Windows(stream, spec)
    sites = output_sites(stream, spec, mode, spec["in_zero_point"], win)
    taps, valid = _gathered(stream, win, sites, np.int64(spec["in_zero_point"]))
    if spec["kind"] == "depthwise":
        acc = np.einsum("ntc,ct->nc", taps, w)
    else:  # taps [N, K*K, Cin] against weights laid out (Cin, K, K)
        acc = taps.transpose(0, 2, 1).reshape(len(sites), w.shape[1]) @ w.T
    acc = _int32(acc + bias, spec)
    out = requant(acc, spec["requant"])
    counts = Counts(len(stream), len(sites), int(np.maximum(valid, 1).sum()), valid=valid)
    _, ho, wo = spec["out_shape"]
    return TokenStream.at(sites, out, spec["background"], ho, wo), counts


def maxpool(spec: dict, weights: dict, stream: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """Max over each window of the map the stream stands for (inactive sites hold the background)."""
    win = _Windows(stream, spec)
    sites = output_sites(stream, spec, mode, stream.background, win)
    taps, valid = _gathered(stream, win, sites, np.int64(0), padding=MAX_POOL_PADDING)
    out = taps.max(axis=1).astype(np.int64) if len(sites) else np.zeros((0, stream.channels), np.int64)
    counts = Counts(len(stream), len(sites), int(np.maximum(valid, 1).sum()), valid=valid)
    _, ho, wo = spec["out_shape"]
    return TokenStream.at(sites, out, spec["background"], ho, wo), counts


def _aligned(stream: TokenStream, sites_raster: np.ndarray) -> np.ndarray:
    """The stream's features at the given sites (background where it has no token)."""
    values = np.broadcast_to(stream.background, (len(sites_raster), stream.channels)).copy()
    where = np.searchsorted(sites_raster, stream.raster)
    values[where] = stream.feats
    return values


def add(spec: dict, weights: dict, lhs: TokenStream, rhs: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """Residual add: merge the two coordinate-sorted streams, rescale each branch, add, requantize."""
    raster = np.union1d(lhs.raster, rhs.raster)
    a = requant(_aligned(lhs, raster), spec["requant_lhs"])
    b = requant(_aligned(rhs, raster), spec["requant_rhs"])
    total = a + b
    if total.size and (total.max() > INT32_MAX or total.min() < INT32_MIN):
        raise TokenSimError(f"module {spec['name']} (add at {spec['loc']!r}): int32 overflow in the sum")
    out = requant(total, spec["requant"])
    coords = np.stack([raster // lhs.width, raster % lhs.width], axis=1)
    counts = Counts(len(lhs) + len(rhs), len(raster))
    return TokenStream.at(coords, out, spec["background"], lhs.height, lhs.width), counts


def concat(spec: dict, weights: dict, *operands) -> tuple[TokenStream, Counts]:
    """Channel concat: merge the coordinate-sorted streams (a branch without a token at a site gives
    its background there), rescale the branches that need it, join the feature vectors."""
    streams = operands[:-1]
    raster = np.unique(np.concatenate([s.raster for s in streams]))
    parts = []
    for stream, rq in zip(streams, spec["rescale"]):
        values = _aligned(stream, raster)
        parts.append(values if rq is None else requant(values, rq))
    first = streams[0]
    coords = np.stack([raster // first.width, raster % first.width], axis=1)
    counts = Counts(sum(len(s) for s in streams), len(raster))
    return TokenStream.at(coords, np.concatenate(parts, axis=1), spec["background"], first.height, first.width), counts


def rounded_mean(spec: dict, total: np.ndarray, count) -> np.ndarray:
    """qavg_pool's and qglobal_avg_pool's one exact rounding of a window sum onto the output scale:
    round_half_even(total * multiplier / (count << shift)) + zero point, saturated."""
    return np.asarray(numerics.rounded_mean(np.rint(total).astype(np.int64), count, spec["multiplier"],
                                            spec["shift"], spec["zero_point"], spec["qmin"], spec["qmax"]))


def avgpool(spec: dict, weights: dict, stream: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """Average over each window (inactive sites hold the background), divided by the window's taps
    inside the map (count_include_pad = 0; the mapping takes no counted padding)."""
    win = _Windows(stream, spec)
    sites = output_sites(stream, spec, mode, stream.background, win)  # padding is never counted
    taps, valid = _gathered(stream, win, sites, np.int64(spec["in_zero_point"]))
    _, ho, wo = spec["out_shape"]
    k, s = spec["kernel"], spec["stride"]
    attrs = {"kernel": [k, k], "strides": [s, s], "dilations": [1, 1], "pads": spec["pads"],
             "ceil_mode": spec["ceil_mode"], "count_include_pad": 0}
    divisors = window_divisors(attrs, np.empty((1, 1, stream.height, stream.width)))
    out = rounded_mean(spec, taps.sum(axis=1), divisors[sites[:, 0], sites[:, 1]][:, None])
    counts = Counts(len(stream), len(sites), int(np.maximum(valid, 1).sum()), valid=valid)
    return TokenStream.at(sites, out.reshape(len(sites), stream.channels), spec["background"], ho, wo), counts


def gpool(spec: dict, weights: dict, stream: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """Global average pool over all H*W sites: sum of the tokens plus the inactive sites'
    background, then the one exact rounding of qglobal_avg_pool."""
    zp = np.int64(spec["in_zero_point"])
    sites = stream.height * stream.width
    total = (stream.feats - zp).sum(axis=0) + (sites - len(stream)) * (stream.background - zp)
    out = rounded_mean(spec, total, sites)
    return TokenStream.at([[0, 0]], out[None, :], spec["background"], 1, 1), Counts(len(stream), 1)


def fc(spec: dict, weights: dict, stream: TokenStream, mode: str) -> tuple[TokenStream, Counts]:
    """Fully connected layer (or 1x1 conv) on the global pool's one site, or on a whole C x H x W map
    flattened in C, H, W order (densified: inactive sites hold the background)."""
    x = stream.densify().reshape(-1).astype(np.int64) - np.int64(spec["in_zero_point"])
    acc = _centred_weights(spec, weights) @ x.astype(np.float64)
    if spec.get("bias"):
        acc = acc + weights[spec["bias"]].astype(np.float64)
    out = requant(_int32(acc[None, :], spec), spec["requant"])
    return TokenStream.at([[0, 0]], out, spec["background"], 1, 1), Counts(len(stream), 1)


KERNELS: dict[str, Callable[..., tuple[TokenStream, Counts]]] = {"conv": conv, "pointwise": conv, "depthwise": conv, "maxpool": maxpool, "avgpool": avgpool, "add": add,
           "concat": concat, "gpool": gpool, "fc": fc}
