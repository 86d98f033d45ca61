"""Sparse reference semantics: a module run the way a sparse dataflow accelerator (ESDA) runs it.

Every rank-4 NCHW value of batch 1 that derives from a model input is *spatial*: besides its dense
array it carries an active-site mask ``bool[H, W]`` and a per-channel *background* vector that
every inactive site holds.  A model input's site is active if any channel is non-zero.  Ops fall
into four categories (``op_rule``):

- window (conv, qconv, max/avg pooling): operand 0 spatial, the other operands constant;
- pointwise (element-wise ops, requantize, quantize, batch_norm, channel concat/softmax/reductions):
  every spatial operand has the result's H x W, constant operands do not vary over H and W;
- global (global average pooling, a pool whose one window is the whole map): the result is dense;
- dense: anything else; the result is dense (exact mode only, see below).

Modes (``MODES``):

``submanifold`` (examples/events/README.md, "The masking rule"): stride-1 windows keep the input's
active set, stride-2 output (i, j) is active iff any site of the input cell (2i..2i+1, 2j..2j+1) is;
pointwise ops take the union of their operands' masks; inactive sites hold real zero (the zero
point in int8).  Values are the dense kernels' results on the masked operands, then masked (so
windows, pools included, read inactive neighbours as real zero, as the masked ONNX graph does).
Global pooling averages over all sites, the inactive ones as zeros; after it everything is dense.
Windows must be centred odd kernels with 'same' padding or stride x stride cells, stride 1 or 2,
dilation 1, convs ungrouped or depthwise; anything else reading a sparse value is a SparsityError.

``exact``: values equal the dense model's (``run_module``) element for element.  A window output
is active iff its window touches an active input site, or touches the padding while the padding
value differs from the input's background; pointwise ops take the union.  The background of each
value is its op applied to constant background operands (same kernels), so inactive sites hold it;
it is computed once per module, or per run for ops that also read an input-derived non-spatial
value (e.g. a squeeze-excitation gate broadcast over the sites).

Activity is structural: masks come from the input mask, never from feature values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..core import Module, Op, Value
from ..dtypes import to_numpy
from ..errors import TccError
from ..traits import Trait
from ..verifier import describe
from .interpreter import bind_inputs, evaluate_op
from .windows import pad_spatial, tap_slices

MODES = ("exact", "submanifold")

# Ops that are pointwise over sites when their axis attribute is the channel axis (reductions too,
# when ``axes`` is the channel axis alone).
CHANNEL_AXIS_KINDS = ("softmax", "concat")


class SparsityError(TccError):
    """A model the sparse semantics cannot run (e.g. a layer without submanifold semantics)."""


@dataclass(frozen=True)
class Window:
    """Geometry of a sliding window over H and W."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    out_sizes: tuple[int, ...]


@dataclass(frozen=True)
class OpRule:
    """How an op reading spatial values maps active sites: ``category`` is window, pointwise,
    global or dense; ``not_submanifold`` says why the op has no submanifold semantics (None: it has)."""

    category: str
    not_submanifold: str | None = None
    window: Window | None = None


def is_spatial(value: Value) -> bool:
    return value.type.rank == 4


def window_of(op: Op) -> Window:
    out = op.results[0].type
    kernel = tuple(op.w.type.shape[2:]) if op.kind in ("conv", "qconv") else tuple(op.kernel)
    pads = op.pads
    return Window(kernel, tuple(op.strides), tuple(op.dilations), tuple(pads[:2]),
                  tuple(pads[2:]), tuple(out.shape[2:]))


def _submanifold_window(op: Op, win: Window) -> str | None:
    """None if the window has submanifold semantics, else the reason it has not."""
    in_sizes = op.x.type.shape[2:]
    for k, s, d, b, size, out in zip(win.kernel, win.strides, win.dilations, win.begins, in_sizes,
                                     win.out_sizes):
        if d != 1:
            return f"dilation {list(win.dilations)} (needs 1)"
        if s not in (1, 2):
            return f"stride {list(win.strides)} (needs 1 or 2)"
        if not ((k % 2 == 1 and b == (k - 1) // 2) or (k == s and b == 0)):
            return (f"kernel {list(win.kernel)} with pads {list(win.begins + win.ends)} is neither a centred "
                    f"odd kernel with 'same' padding nor a {s}x{s} cell")
        if out not in (size // s, -(-size // s)):
            return f"output size {out} from input {size} is not input / stride {s}"
    if op.kind in ("conv", "qconv"):
        group, c_in = op.group, op.x.type.shape[1]
        if group != 1 and group != c_in:
            return f"group {group} (needs 1 or depthwise, {c_in})"
    return None


def _covers_the_map(win: Window, in_sizes) -> bool:
    """A pool with one unpadded window over the whole map: global pooling."""
    return win.out_sizes == (1, 1) and not any(win.begins + win.ends) and tuple(win.kernel) == tuple(in_sizes)


def _varies_spatially(value: Value) -> bool:
    """Whether a constant operand, broadcast against NCHW, differs over H or W."""
    shape = value.type.shape
    return any(d != 1 for d in shape[-2:]) if len(shape) >= 2 else bool(shape and shape[0] != 1)


def _channel_axis(op: Op) -> bool:
    rank = op.result.type.rank  # the operands' (a reduction without keepdims is refused anyway)
    if op.kind in CHANNEL_AXIS_KINDS:
        return op.axis % rank == 1
    return bool(op.keepdims) and {a % rank for a in op.axes} == {1}


def op_rule(op: Op, spatial: set[int], dynamic: set[int]) -> OpRule:
    """The rule of an op reading input-derived values: ``spatial`` and ``dynamic`` hold the ids of
    the spatial and of all input-derived values."""
    result = op.results[0]
    if len(op.results) != 1 or not is_spatial(result):
        if op.has_trait(Trait.GLOBAL):
            return OpRule("global")
        return OpRule("dense", f"{op.kind} reads a sparse spatial tensor (ESDA-style dataflow runs convs, "
                               "pooling, element-wise ops and global pooling)")
    x, *rest = op.operands
    if op.has_trait(Trait.WINDOW) and id(x) in spatial and not any(id(v) in dynamic for v in rest):
        win = window_of(op)
        if op.kind != "conv" and op.kind != "qconv" and _covers_the_map(win, x.type.shape[2:]):
            return OpRule("global")
        return OpRule("window", _submanifold_window(op, win), win)
    if op.has_trait(Trait.GLOBAL):
        return OpRule("global")
    if op.kind == "batch_norm":  # its other operands are per-channel vectors, not broadcast over W
        return OpRule("pointwise")
    if op.has_trait(Trait.SITEWISE) or ((op.kind in CHANNEL_AXIS_KINDS or op.has_trait(Trait.REDUCTION))
                                        and _channel_axis(op)):
        # operands of the result's resolution bring their masks; the others must be constant over sites
        others = [v for v in op.operands if not (id(v) in spatial and v.type.shape[2:] == result.type.shape[2:])]
        if not any(_varies_spatially(v) for v in others):
            return OpRule("pointwise")
        return OpRule("dense", f"{op.kind} combines tensors of different resolutions")
    return OpRule("dense", f"{op.kind} has no submanifold semantics")


def window_count(mask: np.ndarray, win: Window, pad: bool) -> np.ndarray:
    """Per output site, how many window taps read a True site of ``mask`` (padding reads ``pad``)."""
    sizes = mask.shape
    ends = [(o - 1) * s + d * (k - 1) + 1 - size - b
            for o, s, d, k, size, b in zip(win.out_sizes, win.strides, win.dilations, win.kernel, sizes,
                                            win.begins)]
    padded = pad_spatial(mask[None, None], win.begins, ends, pad)[0, 0]
    count = np.zeros(win.out_sizes, np.int64)
    for _, slices in tap_slices(win.kernel, win.strides, win.dilations, win.out_sizes):
        count += padded[slices]
    return count


def cells(mask: np.ndarray, strides, out_sizes) -> np.ndarray:
    """Output (i, j) active iff any site of the input cell (s*i.., s*j..) of stride size is."""
    sh, sw = strides
    h, w = mask.shape
    grown = np.zeros((-(-h // sh) * sh, -(-w // sw) * sw), bool)
    grown[:h, :w] = mask
    merged = np.asarray(grown.reshape(grown.shape[0] // sh, sh, grown.shape[1] // sw, sw).any(axis=(1, 3)))
    return merged[:out_sizes[0], :out_sizes[1]]


def zero_points(t) -> np.ndarray:
    """The per-channel real-zero vector of an NCHW type (its zero point, or 0), in its element type."""
    channels = t.shape[1]
    q = t.quant
    if q is None:
        zp = np.zeros(channels)
    elif q.axis is None:
        zp = np.full(channels, q.zero_point[0])
    else:
        zp = np.asarray(q.zero_point) if q.axis == 1 else np.zeros(channels)
    return zp.astype(to_numpy(t.dtype))


def padding_value(op: Op) -> np.ndarray | None:
    """What the window reads in its padding, per channel of the input (None: padding never matters)."""
    x = op.x.type
    if op.kind in ("conv", "qconv"):
        return zero_points(x)
    if op.kind == "max_pool":
        return None  # the lowest value never wins the max
    if op.kind == "qavg_pool" and not op.count_include_pad:
        return None  # integer mean of equal values over any count is exact
    # avg_pool: 0 when counted; otherwise a float mean over fewer taps may round differently.
    return zero_points(x)


@dataclass
class SparseRun:
    """One sparse run: outputs by output name, every value's array, masks and backgrounds by value name."""

    mode: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    active: dict[str, np.ndarray] = field(default_factory=dict)
    background: dict[str, np.ndarray] = field(default_factory=dict)

    def density(self, name: str) -> float:
        """Fraction of active sites of the spatial value ``name``."""
        return float(self.active[name].mean())


class SparseInterpreter:
    """Runs one module in one mode; rules and data-independent backgrounds are computed once.

    The module must not change between runs.
    """

    def __init__(self, module: Module, mode: str = "exact"):
        if mode not in MODES:
            raise SparsityError(f"sparse mode {mode!r} is not one of {', '.join(MODES)}")
        self.module, self.mode = module, mode
        self.dynamic: set[int] = {id(v) for v in module.inputs}  # values that depend on an input
        self.spatial: set[int] = {id(v) for v in module.inputs if is_spatial(v)}
        self.sparse: set[int] = set(self.spatial)  # spatial values whose mask may have inactive sites
        self.volatile: set[int] = set()  # ops whose background depends on the input data
        self.rules: dict[int, OpRule] = {}
        for index, op in enumerate(module.ops):
            if not any(id(v) in self.dynamic for v in op.operands):
                continue
            self.dynamic.update(id(r) for r in op.results)
            if not any(id(v) in self.spatial for v in op.operands) and not any(map(is_spatial, op.results)):
                continue
            rule = op_rule(op, self.spatial, self.dynamic)
            self.rules[id(op)] = rule
            reads_sparse = self.reads_sparse(op)
            if mode == "submanifold" and reads_sparse and rule.not_submanifold:
                raise SparsityError(f"{describe(op, index)}: no submanifold semantics: {rule.not_submanifold}; "
                                    f"use --sparse-mode exact")
            if any(id(v) in self.dynamic and id(v) not in self.spatial for v in op.operands) or \
                    any(id(v.producer) in self.volatile for v in op.operands if v.producer is not None):
                self.volatile.add(id(op))
            for r in op.results:
                if is_spatial(r):
                    self.spatial.add(id(r))
                    if reads_sparse and rule.category in ("window", "pointwise"):
                        self.sparse.add(id(r))
        self._backgrounds: dict[int, list] = {}  # id(op) -> background per result, non-volatile ops

    def rule(self, op: Op) -> OpRule | None:
        """The op's rule, or None if it reads no spatial value and makes none."""
        return self.rules.get(id(op))

    def reads_sparse(self, op: Op) -> bool:
        """Whether the op reads a spatial value that may have inactive sites."""
        return any(id(v) in self.sparse for v in op.operands)

    def has_submanifold_semantics(self, op: Op) -> bool:
        """Whether the op runs in submanifold mode (it has a rule for it or reads nothing sparse)."""
        rule = self.rules.get(id(op))
        return rule is None or rule.not_submanifold is None or not self.reads_sparse(op)

    # -- backgrounds ---------------------------------------------------------------------------
    def _op_backgrounds(self, op: Op, env: dict, backgrounds: dict) -> list:
        """Per result: the per-channel background (None for non-spatial results)."""
        if self.mode == "submanifold":
            return [zero_points(r.type) if id(r) in self.spatial else None for r in op.results]
        if id(op) in self._backgrounds:
            return self._backgrounds[id(op)]
        if not any(id(r) in self.spatial for r in op.results):
            return [None] * len(op.results)
        operands = [np.broadcast_to(backgrounds[id(v)][None, :, None, None], v.type.shape)
                    if id(v) in self.spatial else env[id(v)] for v in op.operands]
        rule = self.rules[id(op)]
        i, j = _interior_site(rule.window, op.x.type.shape[2:]) if rule.window else (0, 0)
        found = [array[0, :, i, j].copy() if id(r) in self.spatial else None
                 for r, array in zip(op.results, evaluate_op(op, operands))]
        if id(op) not in self.volatile:
            self._backgrounds[id(op)] = found
        return found

    # -- masks ---------------------------------------------------------------------------------
    def _mask(self, op: Op, result: Value, masks: dict, backgrounds: dict) -> np.ndarray:
        rule = self.rules[id(op)]
        if id(result) not in self.sparse:
            return np.ones(result.type.shape[2:], bool)
        if rule.category == "pointwise":
            return np.logical_or.reduce([masks[id(v)] for v in op.operands
                                         if id(v) in self.spatial and v.type.shape[2:] == result.type.shape[2:]])
        x, *_ = op.operands
        if self.mode == "submanifold":
            return cells(masks[id(x)], rule.window.strides, rule.window.out_sizes)
        active = window_count(masks[id(x)], rule.window, False) > 0
        pad_value = padding_value(op)
        if pad_value is not None and (pad_value != backgrounds[id(x)]).any():
            active |= window_count(np.zeros(masks[id(x)].shape, bool), rule.window, True) > 0
        return active

    # -- the run -------------------------------------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray]) -> SparseRun:
        env = bind_inputs(self.module, feeds)
        masks: dict[int, np.ndarray] = {}
        backgrounds: dict[int, np.ndarray] = {}
        run = SparseRun(self.mode)
        for v in self.module.inputs:
            run.values[v.name] = env[id(v)]
            if id(v) in self.spatial:
                if v.type.shape[0] != 1:
                    raise SparsityError(f"input {v.name!r} has batch {v.type.shape[0]}; sparse runs take batch 1")
                backgrounds[id(v)] = np.zeros(v.type.shape[1], to_numpy(v.type.dtype))
                masks[id(v)] = (env[id(v)][0] != backgrounds[id(v)][:, None, None]).any(axis=0)
                self._record(run, v, env[id(v)], masks[id(v)], backgrounds[id(v)])
        for op in self.module.ops:
            produced = evaluate_op(op, [env[id(v)] for v in op.operands])
            if id(op) in self.rules:
                for r, bg in zip(op.results, self._op_backgrounds(op, env, backgrounds)):
                    if bg is not None:
                        backgrounds[id(r)] = bg
            for r, array in zip(op.results, produced):
                if id(r) in self.spatial:
                    if r.type.shape[0] != 1:
                        raise SparsityError(f"{describe(op)}: batch {r.type.shape[0]}; sparse runs take batch 1")
                    bg = backgrounds[id(r)]
                    masks[id(r)] = self._mask(op, r, masks, backgrounds)
                    if self.mode == "submanifold":
                        array = np.where(masks[id(r)], array, bg[None, :, None, None]).astype(array.dtype)
                    self._record(run, r, array, masks[id(r)], bg)
                else:
                    run.values[r.name] = array
                env[id(r)] = array
        run.outputs = {name: np.array(env[id(v)], order="C") for name, v in self.module.outputs}
        return run

    @staticmethod
    def _record(run: SparseRun, value: Value, array, mask, bg) -> None:
        run.values[value.name] = array
        run.active[value.name] = mask
        run.background[value.name] = bg


def _interior_site(win: Window, in_sizes) -> tuple[int, int]:
    """An output site whose window lies inside the input (the middle one if none does)."""
    site = []
    for k, s, d, b, size, out in zip(win.kernel, win.strides, win.dilations, win.begins, in_sizes,
                                     win.out_sizes):
        inside = [o for o in range(out) if o * s >= b and o * s + d * (k - 1) < b + size]
        site.append(inside[0] if inside else out // 2)
    return site[0], site[1]


def run_sparse(module: Module, feeds: Mapping[str, np.ndarray], mode: str = "exact") -> SparseRun:
    """Run ``module`` on one batch-1 sample with the sparse semantics of ``mode`` (see module docstring).

    For many samples build one ``SparseInterpreter`` and call ``run`` on each.
    """
    return SparseInterpreter(module, mode).run(feeds)

