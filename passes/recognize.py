"""Recognize the decomposed LayerNorm and GELU subgraphs exporters write and fuse them into one op.

- LayerNorm: ``d = x - mean(x); d / sqrt(mean(d^2) + eps)`` over trailing axes (also ``d * d``,
  ``d * reciprocal(sqrt(...))`` and TF's twin ``sub`` for the variance) -> ``layer_norm(x, ones)``;
  a following ``mul``/``add`` by a constant that varies only along the normalized axes folds into
  its scale and bias (after an imported layer_norm too).
- GELU: ``0.5 x (1 + erf(x / sqrt 2))`` -> ``gelu{approximate="none"}`` and
  ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` -> ``gelu{approximate="tanh"}``, with the
  products in any order.
- L2 normalization: ``x / max(reduce_l2(x), eps)`` over the last axis (torch's F.normalize) ->
  ``rms_norm`` with scale 1 / sqrt(n); a per-matrix constant scale of a matmul's product moves onto
  its first operand.

Intermediate values must have no other user and not be module outputs; constants match within
``RTOL``, which covers exporters writing float32-rounded or 6-digit literals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tcc.ir import Module, Op, Value, constant_value
from tcc.ir.traits import operand_orders
from tcc.ir.dtypes import is_float, to_numpy
from tcc.ir.rewrite import Rewriter, apply_patterns
from tcc.ir.shape_rules import normalize_axis

from .base import Pass

RTOL = 1e-5
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


# -- matching helpers --------------------------------------------------------------------------
def _scalar(value: Value) -> float | None:
    """The number held by a one-element constant, else None."""
    array = constant_value(value)
    if array is None or array.size != 1:
        return None
    return float(array.reshape(()))


def _shortest(value: Value, number: float) -> float:
    """number as the shortest decimal that rounds to the same float32, if value is float32."""
    return float(str(np.float32(number))) if value.type.dtype == "f32" else number


def _close(actual: float | None, expected: float) -> bool:
    return actual is not None and abs(actual - expected) <= RTOL * abs(expected)


def _private(value: Value, module: Module) -> bool:
    """Exactly one op reads ``value`` and it is no module output: a rewrite may consume it."""
    return len(value.users) == 1 and not module.is_output(value)


def _producer(value: Value, *kinds: str) -> Op | None:
    op = value.producer
    return op if op is not None and op.kind in kinds else None


def _split_scalar(op: Op) -> tuple[Value, float] | None:
    """A binary op with one scalar-constant operand as (other operand, the scalar)."""
    for x, other in operand_orders(op):
        k = _scalar(other)
        if k is not None:
            return x, k
    return None


def _replace(rewriter: Rewriter, root: Op, new: Value, consumed: list[Op]) -> None:
    """Replace root by new (which takes root's name) and erase the ops the match consumed."""
    rewriter.replace_keeping_name(root, new)
    unique = {id(op): op for op in consumed if op is not root and op.module is rewriter.module}
    position = {id(op): i for i, op in enumerate(rewriter.module.ops)}
    for op in sorted(unique.values(), key=lambda o: position[id(o)], reverse=True):
        rewriter.erase_op(op)


# -- LayerNorm ---------------------------------------------------------------------------------
def _trailing_axis(op: Op, rank: int) -> int | None:
    """The first axis of a keepdims reduction over a trailing contiguous range, else None."""
    axes = sorted({normalize_axis(a, rank) for a in op.axes})
    if not op.keepdims or not axes or axes != list(range(axes[0], rank)):
        return None
    return axes[0]


def _normalized_axes(op: Op, rank: int) -> tuple[int, int | None] | None:
    """(first normalized axis once moved last, the axis moved last or None) of a keepdims reduction
    over a trailing contiguous range, or over one inner axis (ConvNeXt's channels-first LayerNorm
    reduces axis 1 of [N, C, H, W]), else None."""
    axis = _trailing_axis(op, rank)
    if axis is not None:
        return axis, None
    axes = {normalize_axis(a, rank) for a in op.axes}
    if op.keepdims and len(axes) == 1:
        return rank - 1, axes.pop()
    return None


@dataclass
class _LayerNormMatch:
    x: Value
    axis: int
    epsilon: float
    consumed: list[Op]
    moved: int | None = None  # normalized along this inner axis, moved last by a transpose and back


def _root_mean_square(denom: Value, inverted: bool, module: Module) -> tuple[Value, Op, float, list[Op]] | None:
    """denom = sqrt(mean(s^2) + eps) (when inverted its reciprocal: reciprocal(...) or 1 / ...), the
    square as pow(s, 2) or s * s, every intermediate private: (s, the mean op, eps, the ops), else None."""
    consumed = []
    if inverted:
        inverse = _producer(denom, "reciprocal", "div")
        if inverse is None or not _private(denom, module) or (inverse.kind == "div" and _scalar(inverse.a) != 1.0):
            return None
        consumed.append(inverse)
        denom = inverse.x if inverse.kind == "reciprocal" else inverse.b
    std = _producer(denom, "sqrt")
    shifted = std and _producer(std.x, "add")
    if shifted is None or not _private(denom, module) or not _private(shifted.result, module):
        return None
    split = _split_scalar(shifted)
    var_op = split and _producer(split[0], "reduce_mean")
    if var_op is None or not _private(split[0], module):
        return None
    square = _producer(var_op.x, "pow", "mul")
    if square is None or not _private(square.result, module):
        return None
    base = square.a
    if (square.kind == "pow" and _scalar(square.b) != 2.0) or (square.kind == "mul" and square.b is not base):
        return None
    return base, var_op, split[1], consumed + [std, shifted, var_op, square]


def _match_normalize(root: Op, d: Value, denom: Value, inverted: bool,
                     module: Module) -> _LayerNormMatch | None:
    """root = d / denom (or d * denom when inverted) as a layer norm of x, else None."""
    found = _root_mean_square(denom, inverted, module)
    if found is None:
        return None
    base, var_op, eps, consumed = found
    sub = _producer(d, "sub")
    mean_op = sub and _producer(sub.b, "reduce_mean")
    if mean_op is None or mean_op.x is not sub.a:
        return None
    x, mean = sub.operands
    consumed += [sub, mean_op]
    if base is d:  # d feeds the square and the normalizing op
        d_users, mean_users = {id(root), id(var_op.x.producer)}, 1
    else:  # TF's SquaredDifference: a twin sub(x, mean) feeds the square
        twin = _producer(base, "sub")
        if twin is None or twin.operands != sub.operands or not _private(base, module):
            return None
        consumed.append(twin)
        d_users, mean_users = {id(root)}, 2
    if ({id(u) for u in d.users} != d_users or module.is_output(d) or len(mean.users) != mean_users
            or module.is_output(mean)):
        return None
    rank = x.type.rank
    axes = _normalized_axes(mean_op, rank)
    if (axes is None or _normalized_axes(var_op, rank) != axes or root.result.type.shape != x.type.shape
            or not is_float(x.type.dtype)):
        return None
    return _LayerNormMatch(x, axes[0], _shortest(x, eps), consumed, axes[1])


class _NormPattern:
    """root = d / denom, or d * denom with denom an inverse, matched by ``find`` -> ``kind``(x, ones)."""

    kind = ""

    @staticmethod
    def find(root: Op, d: Value, denom: Value, inverted: bool, module: Module) -> _LayerNormMatch | None:
        raise NotImplementedError  # pragma: no cover - interface

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind == "div":
            orders = [(op.a, op.b, False)]
        elif op.kind == "mul":
            orders = [(op.a, op.b, True), (op.b, op.a, True)]
        else:
            return False
        for d, denom, inverted in orders:
            match = self.find(op, d, denom, inverted, rewriter.module)
            if match is not None:
                x, name = match.x, op.result.name
                builder = rewriter.builder_before(op)
                perm = None
                if match.moved is not None:
                    rank = x.type.rank
                    perm = tuple(a for a in range(rank) if a != match.moved) + (match.moved,)
                    x = builder.value("transpose", [x], {"perm": perm}, name=f"{name}.axis_last")
                ones = builder.const(np.ones(x.type.shape[match.axis:], to_numpy(x.type.dtype)),
                                     name=name + ".scale")
                fused = builder.value(self.kind, [x, ones], {"axis": match.axis, "epsilon": match.epsilon},
                                      name=name if perm is None else f"{name}.moved")
                if perm is not None:
                    fused = builder.value("transpose", [fused], {"perm": tuple(int(i) for i in np.argsort(perm))},
                                          name=name)
                _replace(rewriter, op, fused, match.consumed)
                return True
        return False


class LayerNormPattern(_NormPattern):
    """(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) over trailing axes -> layer_norm(x, ones);
    over one inner axis (ConvNeXt's channels-first LayerNorm, axis 1 of [N, C, H, W]) that axis is
    moved last by a transpose, normalized, and moved back."""

    kind = "layer_norm"
    find = staticmethod(_match_normalize)


class RmsNormPattern(_NormPattern):
    """x / sqrt(mean(x^2) + eps) over trailing axes (also x * (1 / sqrt(...)) and reciprocal, the
    square as pow(x, 2) or x * x: LLaMA-style RMSNorm as torch exports it) -> rms_norm(x, ones)."""

    kind = "rms_norm"

    @staticmethod
    def find(root: Op, x: Value, denom: Value, inverted: bool, module: Module) -> _LayerNormMatch | None:
        found = _root_mean_square(denom, inverted, module)
        if found is None or found[0] is not x:
            return None
        _, var_op, eps, consumed = found
        centred = _producer(x, "sub")
        if centred is not None and _producer(centred.b, "reduce_mean") is not None:
            return None  # a layer norm's chain, which LayerNormPattern took or left alone for a reason
        axis = _trailing_axis(var_op, x.type.rank)
        if axis is None or root.result.type.shape != x.type.shape or not is_float(x.type.dtype):
            return None
        return _LayerNormMatch(x, axis, _shortest(x, eps), consumed)


def _along_normalized(array: np.ndarray, rank: int, axis: int) -> np.ndarray | None:
    """The constant shaped over the normalized dims if it varies only along them, else None."""
    if array.ndim > rank:
        return None
    full = array.reshape((1,) * (rank - array.ndim) + array.shape)
    if any(d != 1 for d in full.shape[:axis]):
        return None
    return full.reshape(full.shape[axis:])


class LayerNormAffinePattern:
    """layer_norm(x, s, b) * g -> layer_norm(x, s * g, b * g);  layer_norm(x, s, b) + t ->
    layer_norm(x, s, b + t), for constants g, t varying only along the normalized axes; the same
    product for rms_norm(x, s)."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind not in ("mul", "add"):
            return False
        module = rewriter.module
        for x, other in operand_orders(op):
            norm = _producer(x, "layer_norm", "rms_norm")
            array = constant_value(other)
            if norm is not None and norm.kind == "rms_norm" and op.kind == "add":
                continue  # an rms_norm has no bias
            if (norm is None or array is None or not _private(norm.result, module)
                    or op.result.type.shape != norm.result.type.shape):
                continue
            rank = norm.result.type.rank
            axis = normalize_axis(norm.axis, rank)
            factor = _along_normalized(array, rank, axis)
            scale = constant_value(norm.scale)
            given = norm.bias if norm.kind == "layer_norm" else None
            bias = constant_value(given) if given is not None else None
            if factor is None or scale is None or (given is not None and bias is None):
                continue
            self.rewrite(op, norm, other, factor, scale, bias, rewriter)
            return True
        return False

    def rewrite(self, op, norm, other, factor, scale, bias, rewriter):
        """The constant operand itself becomes the scale or bias where it already is one, else new
        constants are computed; an all-zero bias is dropped."""
        dtype = to_numpy(norm.result.type.dtype)
        builder = rewriter.builder_before(op)
        builder.loc = norm.loc
        fits = other.type.rank <= factor.ndim  # usable as a layer_norm operand without a reshape
        new_scale, bias64 = norm.scale, None if bias is None else bias.astype(np.float64)
        if op.kind == "mul":
            if np.all(scale == 1) and fits:
                new_scale = other
            else:
                new_scale = builder.const((scale.astype(np.float64) * factor).astype(dtype),
                                          name=op.result.name + ".scale")
            bias64 = None if bias64 is None else bias64 * factor
        else:
            bias64 = factor.astype(np.float64) + (0.0 if bias64 is None else bias64)
        if bias64 is None or not np.any(bias64):
            new_bias = []
        elif op.kind == "add" and bias is None and fits:
            new_bias = [other]
        else:
            new_bias = [builder.const(bias64.astype(dtype), name=op.result.name + ".bias")]
        fused = builder.value(norm.kind, [norm.x, new_scale] + new_bias, norm.attrs, name=op.result.name)
        _replace(rewriter, op, fused, [norm])


# -- GELU --------------------------------------------------------------------------------------
def _product(value: Value, module: Module, consumed: list[Op]) -> tuple[float, list[Value]]:
    """value as coefficient * product of leaves, expanding private mul, div by a scalar constant
    and pow by 2 or 3; expanded ops are appended to consumed."""
    op = value.producer
    if op is not None and len(op.results) == 1 and _private(value, module):  # not one result of a split
        return _expand(op, module, consumed)
    k = _scalar(value)
    return (k, []) if k is not None else (1.0, [value])


def _expand(op: Op, module: Module, consumed: list[Op]) -> tuple[float, list[Value]]:
    """Like _product for the result of op, which is expanded whatever its users."""
    if op.kind == "mul":
        c1, l1 = _product(op.a, module, consumed)
        c2, l2 = _product(op.b, module, consumed)
        consumed.append(op)
        return c1 * c2, l1 + l2
    k = _scalar(op.b) if op.kind in ("div", "pow") else None
    if op.kind == "div" and k:
        c, leaves = _product(op.a, module, consumed)
        consumed.append(op)
        return c / k, leaves
    if op.kind == "pow" and k in (2.0, 3.0):
        c, leaves = _product(op.a, module, consumed)
        consumed.append(op)
        return c ** k, leaves * int(k)
    k = _scalar(op.result)
    return (k, []) if k is not None else (1.0, [op.result])


def _polynomial(value: Value, x: Value, module: Module, consumed: list[Op]) -> dict[int, float] | None:
    """value as {degree: coefficient} of a polynomial in x built from private muls and adds."""
    coef, leaves = _product(value, module, consumed)
    if all(leaf is x for leaf in leaves):
        return {len(leaves): coef}
    add = _producer(leaves[0], "add") if len(leaves) == 1 else None
    if add is None or not _private(leaves[0], module):
        return None
    consumed.append(add)
    terms: dict[int, float] = {}
    for operand in add.operands:
        part = _polynomial(operand, x, module, consumed)
        if part is None:
            return None
        for degree, c in part.items():
            terms[degree] = terms.get(degree, 0.0) + coef * c
    return terms


def _gelu_kind(x: Value, inner: Value, module: Module, consumed: list[Op]) -> str | None:
    """'none' or 'tanh' if inner is 1 + erf(x / sqrt 2) or 1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))."""
    add = _producer(inner, "add")
    split = _split_scalar(add) if add is not None else None
    if split is None or not _private(inner, module) or not _close(split[1], 1.0):
        return None
    squashed = _producer(split[0], "erf", "tanh")
    if squashed is None or not _private(split[0], module):
        return None
    consumed += [add, squashed]
    terms = _polynomial(squashed.x, x, module, consumed)
    if terms is None:
        return None
    if squashed.kind == "erf" and set(terms) == {1} and _close(terms[1], math.sqrt(0.5)):
        return "none"
    if (squashed.kind == "tanh" and set(terms) == {1, 3} and _close(terms[1], _SQRT_2_OVER_PI)
            and _close(terms[3], _SQRT_2_OVER_PI * _TANH_CUBIC)):
        return "tanh"
    return None


class GeluPattern:
    """0.5 * x * (1 + erf(x / sqrt 2)) -> gelu{approximate="none"}; the tanh form -> approximate="tanh"."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind not in ("mul", "div") or not is_float(op.result.type.dtype):
            return False
        module = rewriter.module
        consumed: list[Op] = []
        coef, leaves = _expand(op, module, consumed)
        if len(leaves) != 2 or not _close(coef, 0.5):
            return False
        for x, inner in (leaves, leaves[::-1]):
            matched = list(consumed)
            kind = _gelu_kind(x, inner, module, matched)
            if kind is not None and op.result.type.shape == x.type.shape:
                builder = rewriter.builder_before(op)
                fused = builder.value("gelu", [x], {"approximate": kind}, name=op.result.name)
                _replace(rewriter, op, fused, matched)
                return True
        return False


class GlobalMeanPattern:
    """reduce_mean over every spatial axis of an [N, C, H, W, ...] tensor -> global_avg_pool (torch
    exports adaptive_avg_pool2d(x, 1) and x.mean((2, 3), keepdim=True) this way), followed by a
    reshape to [N, C] when the dims are not kept (x.mean((2, 3)), as torchvision's MNASNet and
    ShuffleNetV2 write it): the int8 path then averages exactly in integers (qglobal_avg_pool) and
    the sparse target maps it onto its gpool module."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "reduce_mean" or not is_float(op.result.type.dtype):
            return False
        rank = op.x.type.rank
        if rank < 4 or sorted(a % rank for a in op.axes) != list(range(2, rank)):  # rank 3: a LayerNorm's mean
            return False
        builder = rewriter.builder_before(op)
        if op.keepdims:
            pooled = builder.value("global_avg_pool", [op.x], name=op.result.name)
        else:
            kept = builder.value("global_avg_pool", [op.x], name=f"{op.result.name}.pool")
            pooled = builder.value("reshape", [kept], {"shape": tuple(op.result.type.shape)}, name=op.result.name)
        _replace(rewriter, op, pooled, [])
        return True


# -- L2 normalization --------------------------------------------------------------------------
class L2NormalizePattern:
    """x / max(reduce_l2(x, last axis), eps) (torch's F.normalize: Swin V2's cosine attention, CLIP and
    face embeddings) -> rms_norm(x, 1 / sqrt(n), epsilon = eps^2 / n) over the last axis of n elements:
    ||x|| = sqrt(n) * rms(x), so x / ||x|| = rms_norm(x) / sqrt(n), on the vector unit.  The clamp
    max(||x||, eps) becomes sqrt(||x||^2 + eps^2); they differ by less than eps (1e-12 in torch)."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "div" or not is_float(op.result.type.dtype) or op.result.type.shape != op.a.type.shape:
            return False
        module, consumed, denom, eps = rewriter.module, [], op.b, 0.0
        spread = _producer(denom, "expand")
        if spread is not None and _private(denom, module):
            consumed.append(spread)
            denom = spread.x
        clamp = _producer(denom, "clip")
        if clamp is not None and _private(denom, module) and clamp.max == math.inf and clamp.min >= 0:
            consumed.append(clamp)
            eps, denom = clamp.min, clamp.x
        norm = _producer(denom, "reduce_l2")
        rank = op.a.type.rank
        if (norm is None or norm.x is not op.a or not _private(denom, module)
                or _trailing_axis(norm, rank) != rank - 1):
            return False
        n = op.a.type.shape[-1]
        builder = rewriter.builder_before(op)
        scale = builder.const(np.full(n, 1 / math.sqrt(n), to_numpy(op.a.type.dtype)), name=op.result.name + ".scale")
        fused = builder.value("rms_norm", [op.a, scale], {"axis": rank - 1, "epsilon": eps * eps / n},
                              name=op.result.name)
        _replace(rewriter, op, fused, [norm, *consumed])
        return True


class ScaleBeforeMatmulPattern:
    """matmul(a, b) * c -> matmul(a * c, b) for a constant c of more than one element constant over
    each product matrix (shape [..., 1, 1]: Swin V2's per-head logit scale on its cosine scores): the
    scale is then an element-wise op of an operand, not of the int32 accumulators (which have no
    per-matrix rescale).  A scalar c stays: the quantizer folds it into the product's scale."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind != "mul" or op.result.type.dtype != "f32":
            return False
        for data, other in operand_orders(op):
            product, c = _producer(data, "matmul"), constant_value(other)
            if (product is None or c is None or c.size <= 1 or c.ndim < 2 or c.shape[-2:] != (1, 1)
                    or not _private(data, rewriter.module) or op.result.type.shape != data.type.shape
                    or c.ndim > product.a.type.rank
                    or np.broadcast_shapes(c.shape, product.a.type.shape) != tuple(product.a.type.shape)):
                continue
            builder = rewriter.builder_before(op)
            builder.loc = op.loc
            scaled = builder.value("mul", [product.a, other], name=op.result.name + ".a")
            builder.loc = product.loc
            moved = builder.value("matmul", [scaled, product.b], product.attrs, name=op.result.name)
            rewriter.replace_keeping_name(op, moved)
            rewriter.erase_op(product)
            return True
        return False


class NoOpMovePattern:
    """A move that moves nothing -> its input: a pad by zeros on every side (Swin's pad to a multiple
    of the window when the map already is one), a reshape or expand to the same shape, an identity
    transpose.  Exporters write these when the shapes are only known at run time."""

    def match_and_rewrite(self, op: Op, rewriter: Rewriter) -> bool:
        if op.kind not in ("pad", "reshape", "expand", "transpose") or len(op.operands) != 1 \
                or rewriter.module.is_output(op.result) or op.x.type != op.result.type:
            return False
        if op.kind == "pad" and any(op.pads) or op.kind == "transpose" and list(op.perm) != sorted(op.perm):
            return False
        rewriter.replace_op(op, [op.x])
        return True


@dataclass
class Recognize(Pass):
    name = "recognize"
    summary = ("fuse decomposed LayerNorm and GELU subgraphs into layer_norm and gelu; a spatial mean "
               "becomes global_avg_pool; an L2 normalization rms_norm; moves that move nothing go")

    def apply(self, module: Module) -> None:
        apply_patterns(module, [LayerNormPattern(), RmsNormPattern(), LayerNormAffinePattern(), GeluPattern(),
                                GlobalMeanPattern(),
                                L2NormalizePattern(), ScaleBeforeMatmulPattern(), NoOpMovePattern()])
