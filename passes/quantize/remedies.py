"""Transformer remedies chosen by measured error: the residual stream in bf16 (per stream segment),
per-row scales for the bf16 A operand of an activation matmul and int32 attention scores into the
softmax (per matmul), linear outputs (and patch embeddings) into the bf16 stream without an int8 rounding and tabulated
non-linearities after a linear layer run in bf16 from its accumulators (per layer).

A LayerNorm normalizes each token by its own spread, so int8 noise on its input is amplified in
tokens whose values are small against the tensor's range -- ViT's class token, concatenated from
a learned vector about 30x smaller than the patch embeddings, gets a handful of int8 levels and
loses 8 dB in ``norm1`` (examples/encoder/README.md).  The residual stream (the adds and concats
that feed LayerNorms) then stays on the bf16 SIMD lanes: linear layers still run int8 and their
outputs convert to bf16 (``cvt``) before the add.

Rule (when it applies): a *segment* is a connected set of add / sub / concat ops that feed a
``layer_norm`` directly or through each other (post-LN BERT has one per LayerNorm, pre-LN ViT one
for the whole stream).  Each segment is kept in bf16 when that lowers the quantized model's
output error (relative MSE against float, sensitivity.py) on calibration samples by at least
``MIN_GAIN``; segments are decided one after another in program order, each on top of the ones
already kept.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tcc.ir import Module, Op, constant_value

from .lowering import LoweringConfig
from .rules import lower, lower_module
from .trial_runs import TrialRuns

STREAM_KINDS = ("add", "sub", "concat")
MIN_GAIN = 0.05  # keep a segment in bf16 when it cuts the output error by at least 5% (0.2 dB)


@dataclass(frozen=True)
class SegmentChoice:
    names: tuple[str, ...]  # the float values of the segment
    loc: str  # the ONNX node of its first op, for reports
    error_int8: float  # output error before deciding this segment (earlier choices applied)
    error_bf16: float
    kept: bool


def residual_segments(module: Module) -> list[list[Op]]:
    """The residual stream's segments (see the module docstring), each in program order."""
    stream: dict[int, Op] = {}
    pending = [op.x.producer for op in module.ops if op.kind == "layer_norm"]
    while pending:
        op = pending.pop()
        if op is None or id(op) in stream or op.kind not in STREAM_KINDS or op.results[0].type.dtype != "f32":
            continue
        stream[id(op)] = op
        pending.extend(v.producer for v in op.operands if constant_value(v) is None)
    parent = {key: key for key in stream}

    def root(key: int) -> int:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for op in stream.values():
        for v in op.operands:
            if v.producer is not None and id(v.producer) in stream:
                parent[root(id(v.producer))] = root(id(op))
    order = {id(op): i for i, op in enumerate(module.ops)}
    groups: dict[int, list[Op]] = {}
    for key in sorted(stream, key=order.__getitem__):
        groups.setdefault(root(key), []).append(stream[key])
    return sorted(groups.values(), key=lambda ops: order[id(ops[0])])


def choose_bf16_stream(source: Module, ranges, config: LoweringConfig, runs: TrialRuns,
                       progress: Callable[[int, int], None] | None = None) -> list[SegmentChoice]:
    """Decide every residual segment by measured output error (module docstring) on ``runs``'
    samples (trial_runs.py: each trial runs from where it differs from the current choice).  The
    chosen values are ``{n for c in result if c.kept for n in c.names}``."""
    segments = residual_segments(source)
    kept: frozenset[str] = config.bf16_values

    def error_with(values: frozenset[str]) -> float:
        return runs.error(lower_module(source, ranges, replace(config, bf16_values=values)))

    choices = []
    current = 0.0
    if segments:
        current = error_with(kept)
        runs.keep()
    for done, ops in enumerate(segments, 1):
        names = tuple(op.results[0].name for op in ops)
        trial = error_with(kept | set(names))
        keep = trial < current * (1 - MIN_GAIN)
        choices.append(SegmentChoice(names, ops[0].loc, current, trial, keep))
        if keep:
            kept, current = kept | set(names), trial
            runs.keep()
        if progress is not None:
            progress(done, len(segments))
    return choices


# -- per-matmul remedies of attention --------------------------------------------------------------
# Rules (when they apply), each decided per matmul of two activations by measured error -- kept when
# it lowers the output error by at least MIN_GAIN, in program order on top of the earlier choices:
# - row scales (LoweringConfig.row_scaled): the matmul's A operand is computed in bf16 (attention's
#   softmax probabilities: row maxima range from 1/seq to 1, all on one per-tensor grid sized for 1);
#   A is quantized row by row with power-of-two scales (quantize_rows, numerics/row_scale.py) and
#   its requantize shifts each row back.
# - wide scores (LoweringConfig.wide_scores): the matmul's only reader is a softmax (attention
#   scores); the softmax reads the int32 accumulators converted to bf16 instead of an int8 rounding
#   of them (what per-head score scales approximate, without any int8 grid).
# - wide branches (LoweringConfig.wide_branches): a linear layer whose every reader is kept in bf16
#   (rules.feeds_only_bf16: attention's output projection and the MLP's second layer feeding the bf16
#   residual stream); its accumulators go onto one fine int32 grid and convert to bf16, no int8
#   rounding in between.
# - wide patches (LoweringConfig.wide_patches): a patch embedding conv (kernel = stride) whose tokens
#   only ops kept in bf16 read (rules.patch_embedding: ViT's, into the bf16 residual stream); it runs
#   as a linear layer over the int8 image cut into patch rows, its accumulators onto one int32 grid
#   and to bf16, no int8 rounding of the embedding.
# - bf16 chains (LoweringConfig.bf16_chains): a linear layer whose output only a tabulated
#   non-linearity reads (rules.untabulate: GELU after an MLP's first layer); the non-linearity runs on
#   the bf16 lanes from the layer's accumulators (through an int32 grid), not as an int8 table.
SITE_FIELDS = ("row_scaled", "wide_scores", "wide_patches", "wide_branches", "bf16_chains")
SITE_KINDS = {"row_scaled": ("matmul",), "wide_scores": ("matmul",), "wide_patches": ("conv",),
              "wide_branches": ("linear", "matmul"), "bf16_chains": ("linear", "matmul")}


@dataclass(frozen=True)
class SiteChoice:
    name: str  # the float matmul's (or linear layer's) result name (in the LoweringConfig field)
    loc: str
    error_before: float  # output error without the remedy here (earlier choices applied)
    error_with: float
    kept: bool


def _with_sites(config: LoweringConfig, field: str, names: frozenset[str]) -> LoweringConfig:
    if field == "row_scaled":
        return replace(config, row_scaled=names)
    if field == "wide_scores":
        return replace(config, wide_scores=names)
    if field == "wide_branches":
        return replace(config, wide_branches=names)
    if field == "wide_patches":
        return replace(config, wide_patches=names)
    return replace(config, bf16_chains=names)


def remedy_sites(source: Module, ranges, config: LoweringConfig, field: str) -> list[Op]:
    """The ops the remedy ``field`` (SITE_FIELDS) would change if asked, in program order."""
    every = frozenset(op.results[0].name for op in source.ops if op.kind in SITE_KINDS[field])
    if not every or field in ("wide_branches", "wide_patches") and not config.bf16_values:
        return []  # no candidate op (or no bf16 stream to feed): skip lowering the whole model to learn that
    lowered = lower(source, ranges, _with_sites(config, field, every))
    return {"row_scaled": lowered.row_sites, "wide_scores": lowered.wide_sites,
            "wide_patches": lowered.patch_sites, "wide_branches": lowered.branch_sites,
            "bf16_chains": lowered.chain_sites}[field]


def choose_sites(source: Module, ranges, config: LoweringConfig, field: str, runs: TrialRuns,
                 progress: Callable[[int, int], None] | None = None) -> list[SiteChoice]:
    """Decide every site of the remedy ``field`` by measured output error (rules above) on ``runs``'
    samples; the chosen matmuls are ``{c.name for c in result if c.kept}``."""
    sites = remedy_sites(source, ranges, config, field)
    kept: frozenset[str] = getattr(config, field)

    def error_with(names: frozenset[str]) -> float:
        return runs.error(lower_module(source, ranges, _with_sites(config, field, names)))

    choices = []
    current = 0.0
    if sites:
        current = error_with(kept)
        runs.keep()
    for done, op in enumerate(sites, 1):
        name = op.results[0].name
        trial = error_with(kept | {name})
        keep = trial < current * (1 - MIN_GAIN)
        choices.append(SiteChoice(name, op.loc, current, trial, keep))
        if keep:
            kept, current = kept | {name}, trial
            runs.keep()
        if progress is not None:
            progress(done, len(sites))
    return choices
