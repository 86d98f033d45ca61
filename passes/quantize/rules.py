"""Per-op-kind lowering rules of the int8 quantizer (see lowering.py for the domains), and
``lower_module``, which applies them to every op."""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, Op, QuantParams, TensorType, Value, constant_value
from tcc.ir import numerics

from .lowering import LAYOUT_KINDS, LINEAR_KINDS, Lowering, LoweringConfig, matrix_operands, per_tensor
from .lut import Chain, find_chains, lower_chain
from .params import bias_weight_scales, dyadic, quantize_bias, quantize_weights


def requantize_output(lw: Lowering, op: Op, acc: Value, acc_scales, axis: int = 1,
                      row_shift: Value | None = None) -> bool:
    """Finish a linear op: requantize its int32 ``acc`` (scale ``acc_scales``, per tensor or per
    channel along ``axis``; rows 2**row_shift finer when given) onto the calibrated output, folding a
    following relu/clip into the clamp."""
    act, out_old = lw.fused_activation(op)
    out = lw.params(out_old)
    qmin, qmax = lw.clamp(act, out)
    real = np.asarray(acc_scales, np.float64) / out.scale[0]
    y = lw.requantize(acc, real, out, axis=axis, qmin=qmin, qmax=qmax, name=out_old.name, row_shift=row_shift)
    if act is not None:
        lw.consumed.add(id(act))
    lw.bind(out_old, y, "i8")
    return True


def lower_linear(lw: Lowering, op: Op) -> bool:
    """conv / linear / matmul with a constant weight -> qconv|qlinear + requantize (+ fused activation).

    A layer whose weight format is ``bf16`` (mixed precision) is left to ``lower_bf16``.
    """
    if lw.config.weights_for(op) == "bf16":
        return False
    x_in, w_in, b_in = matrix_operands(op)
    patch = patch_embedding(lw.source, op) if op.kind == "conv" else None
    result = op.result  # the float value the layer's lowering stands for
    if op.kind == "matmul":
        w = constant_value(w_in)
        if w is None or w.ndim != 2:
            return lower_matmul(lw, op)
        attrs: dict = {}
        weight, channel_axis, kind = w.T, op.result.type.rank - 1, "qlinear"
    else:
        weight = constant_value(w_in)
        if weight is None:
            return False
        channel_axis = 1 if op.kind == "conv" else op.result.type.rank - 1
        kind, attrs = ("qconv", op.attrs) if op.kind == "conv" else ("qlinear", {})
    if patch is not None and op.result.name in lw.config.wide_patches and reads_only_bf16(lw, patch[-1].result):
        result, kind, attrs, channel_axis = patch[-1].result, "qlinear", {}, 2
        lw.consumed.update(id(o) for o in patch)
        lw.patch_sites.append(op)
        x = patch_rows(lw, op)
    else:
        x = lw.i8(x_in)
    sx, _ = per_tensor(x.type.quant)
    bias = constant_value(b_in) if b_in is not None else None
    if b_in is not None and bias is None:
        return False
    min_scale = bias_weight_scales(bias, sx) if bias is not None else None
    fmt = lw.config.weights_for(op)
    key = (op.result.name, fmt, None if min_scale is None else np.asarray(min_scale).tobytes())
    if key not in lw.config.weight_memo:
        lw.config.weight_memo[key] = quantize_weights(weight, fmt, axis=0, min_scale=min_scale,
                                                      inputs=lw.config.layer_inputs.get(op.result.name))
    wq, wparams = lw.config.weight_memo[key]
    if kind == "qlinear" and wq.ndim == 4:  # a patch embedding's kernels as rows of a linear layer
        wq = wq.reshape(wq.shape[0], -1)
    operands = [x, lw.typed(lw.b.const(wq, w_in.name + ".q"), str(wq.dtype).replace("int", "i"), wparams)]
    if bias is not None:
        bq, acc_scales = quantize_bias(bias, sx, wparams.scale)
        operands.append(lw.typed(lw.b.const(bq, b_in.name + ".q"), "i32",
                                 QuantParams(acc_scales, (0,) * len(acc_scales), 0)))
    acc_scales = tuple(sx * s for s in wparams.scale)
    leaves = kind == "qlinear" and leaves_as_int32(lw, op)
    # int32 accumulators that leave the model carry the layer's name (as its int8 result would)
    acc = lw.b.value(kind, operands, attrs, name=op.result.name + ("" if leaves else ".acc"))
    lw.typed(acc, "i32", QuantParams(acc_scales, (0,) * len(acc_scales), channel_axis))
    if leaves:
        lw.wide_outputs.append(op)
        lw.bind(op.result, lw.b.value("dequantize", [acc], name=op.result.name + ".f32"), "f32")
        return True
    if result is not op.result or kind == "qlinear" and (feeds_only_bf16(lw, op) or id(op) in lw.chain_roots):
        if result is op.result:
            (lw.chain_sites if id(op) in lw.chain_roots else lw.branch_sites).append(op)
        fine = lw.requantize_i32(acc, np.asarray(acc_scales, np.float64), channel_axis, op.result.name + ".i32")
        lw.bind(result, lw.b.value("dequantize", [fine], {"dtype": "bf16"}, name=result.name + ".bf16"), "bf16")
        return True
    return requantize_output(lw, op, acc, acc_scales, channel_axis)


def feeds_only_bf16(lw: Lowering, op: Op) -> bool:
    """Rule of ``config.wide_branches`` (remedies.py): a linear layer named there whose every reader is
    kept in bf16 (a transformer's attention projection or MLP output into the bf16 residual
    stream) converts its accumulators to bf16 without an int8 rounding."""
    return op.result.name in lw.config.wide_branches and reads_only_bf16(lw, op.result)


def reads_only_bf16(lw: Lowering, v: Value) -> bool:
    """Whether every reader of ``v`` is kept in bf16 (and ``v`` is no model output)."""
    return bool(v.users) and not lw.source.is_output(v) and all(lw.config.keeps_bf16(u) for u in v.users)


def patch_embedding(module: Module, op: Op) -> tuple[Op, Op] | None:
    """The (reshape, transpose) that make tokens of a conv's map when the conv is a patch embedding
    (ViT's: kernel = stride, no padding, dilation or groups, batch 1, the image a whole number of
    patches; its map [1, C, h, w] flattened to [1, C, h*w] and transposed to tokens [1, h*w, C], each
    read by the next alone).  Such a conv is a linear layer over the patches (``patch_rows``).

    Rule of ``config.wide_patches`` (remedies.py): a patch embedding named there whose tokens are read
    only by ops kept in bf16 (ViT's class-token concat in the bf16 residual stream) is lowered as that
    linear layer, and its accumulators reach the tokens through one int32 grid, as ``feeds_only_bf16``
    (the overlay's conv unit stores int8 maps only; its gemm stores int32)."""
    w = constant_value(op.w)
    if w is None or w.ndim != 4 or op.group != 1 or any(d != 1 for d in op.dilations) or any(op.pads) \
            or tuple(op.strides) != w.shape[2:] or op.x.type.rank != 4 or op.x.type.shape[0] != 1 \
            or any(n % k for n, k in zip(op.x.type.shape[2:], w.shape[2:])):
        return None
    _, c, h, wid = op.result.type.shape
    chain, v = [], op.result
    for kind, shape in (("reshape", (1, c, h * wid)), ("transpose", (1, h * wid, c))):
        user = v.users[0] if len(v.users) == 1 and not module.is_output(v) else None
        if user is None or user.kind != kind or tuple(user.result.type.shape) != shape \
                or kind == "transpose" and list(user.perm) != [0, 2, 1]:
            return None
        chain.append(user)
        v = user.result
    return chain[0], chain[1]


def patch_rows(lw: Lowering, op: Op) -> Value:
    """The int8 image of a patch embedding (``patch_embedding``) cut into one row per patch
    [1, patches, C*kh*kw], by int8 moves: the rows a linear layer of the conv's kernels reads."""
    x = lw.i8(op.x)
    _, c, h, wid = x.type.shape
    kh, kw = op.strides
    name = op.result.name + ".patches"
    blocks = lw.b.value("reshape", [x], {"shape": [1, c, h // kh, kh, wid // kw, kw]}, name=name + ".blocks")
    moved = lw.b.value("transpose", [lw.typed(blocks, "i8", x.type.quant)], {"perm": [0, 2, 4, 1, 3, 5]},
                       name=name + ".moved")
    rows = lw.b.value("reshape", [lw.typed(moved, "i8", x.type.quant)],
                      {"shape": [1, (h // kh) * (wid // kw), c * kh * kw]}, name=name)
    return lw.typed(rows, "i8", x.type.quant)


def leaves_unpinned(module: Module, v: Value) -> bool:
    """Whether ``v`` is a model output made by a linear layer, read by no op and without pinned
    parameters: what ``leaves_as_int32`` turns into int32 accumulators."""
    p = v.producer
    return (module.is_output(v) and not v.users and v.type.quant is None and p is not None
            and (p.kind == "linear" or p.kind == "matmul" and constant_value(p.b) is not None))


def leaves_as_int32(lw: Lowering, op: Op) -> bool:
    """Rule of ``config.wide_outputs``: a linear layer whose result is a model output that no op
    reads (a classifier's logits) leaves as its int32 accumulators, dequantized by the host, instead
    of an int8 rounding onto the calibrated output range -- one rounding fewer, and no saturation
    at that range.  Not for an output whose parameters a QDQ model pins (its int8 grid is part of the
    model), nor for convolutions (an output map would cost 4x its int8 bytes in DRAM)."""
    r = op.result
    return (lw.config.wide_outputs and lw.source.is_output(r) and not r.users
            and not (r.type.quant is not None and r.type.quant.axis is None))


def untabulate(lw: Lowering, chains: dict[int, Chain], absorbed: set[int]) -> None:
    """Rule of ``config.bf16_chains`` (remedies.py): a tabulated chain (lut.py) whose root is the result
    of a linear layer named there, read by the chain alone, runs on the bf16 lanes instead of as an
    int8 table, and reads the layer's accumulators through one int32 grid (as ``feeds_only_bf16``):
    the table's int8 input rounding goes (GELU after a transformer's first MLP layer).  Changes
    ``chains`` and ``absorbed`` in place; the layers go to ``lw.chain_roots``."""
    for key, chain in list(chains.items()):
        layer = chain.root.producer
        if layer is None or layer.kind not in ("linear", "matmul") or layer.results[0].name not in lw.config.bf16_chains:
            continue
        members = {id(o) for o in chain.ops}
        if lw.source.is_output(chain.root) or not all(id(u) in members for u in chain.root.users):
            continue
        del chains[key]
        absorbed -= members
        lw.chain_roots.add(id(layer))


def lower_matmul(lw: Lowering, op: Op) -> bool:
    """Two activations: per-tensor int8 x int8 -> int32 -> requantize.  An A operand computed in
    bf16 (a softmax) of a matmul in ``config.row_scaled`` is quantized per row instead
    (``quantize_rows``), and its row shifts go to the requantize."""
    row_shift = None
    if op.result.name in lw.config.row_scaled and _nonlinear_domain(lw, op.a) == "bf16" \
            and op.a.type.shape[:-1] == op.result.type.shape[:-1]:
        rows = lw.b.create("quantize_rows", [lw.bf16(op.a)], name=op.a.name + ".rows")
        a, row_shift = lw.typed(rows.results[0], "i8", lw.params(op.a)), rows.results[1]
        lw.row_sites.append(op)
    else:
        a = lw.i8(op.a)
    b = lw.i8(op.b)
    acc = lw.b.value("qmatmul", [a, b], name=op.result.name + ".acc")
    acc_scale = a.type.quant.scale[0] * b.type.quant.scale[0]
    lw.typed(acc, "i32", QuantParams((acc_scale,), (0,)))
    users = op.result.users
    if op.result.name in lw.config.wide_scores and row_shift is None and len(users) == 1 \
            and users[0].kind == "softmax" and not lw.source.is_output(op.result):
        # attention scores: the softmax reads the accumulators on their own grid (int32 -> bf16)
        lw.wide_sites.append(op)
        wide = lw.b.value("dequantize", [acc], {"dtype": "bf16"}, name=op.result.name + ".bf16")
        lw.bind(op.result, wide, "bf16")
        return True
    return requantize_output(lw, op, acc, acc_scale, row_shift=row_shift)


def to_i32(lw: Lowering, x: Value, real: float, pre_shift: int, name: str) -> Value:
    """(x - zp) << pre_shift, times ``real`` (dyadic), as int32 with zero point 0."""
    m, s = dyadic(real)
    y = lw.b.value("requantize", [x], {"multiplier": m, "shift": s, "pre_shift": pre_shift, "zero_point": 0,
                                       "qmin": -2**31, "qmax": 2**31 - 1, "dtype": "i32",
                                       "rounding": lw.config.rounding}, name=name)
    return lw.typed(y, "i32", QuantParams((x.type.quant.scale[0] / real / 2**pre_shift,), (0,)))


def _nonlinear_domain(lw: Lowering, v: Value) -> str:
    """How ``v`` was first computed: "bf16", "f32" (a model input), "lut" (an int8 table lookup of a
    non-linearity) or "i8" (linear int8 arithmetic)."""
    domains = lw.domains.get(id(v), {})
    first = next(iter(domains), "")
    if first == "i8" and domains["i8"].producer is not None and domains["i8"].producer.kind == "qlut":
        return "lut"
    return first


def stays_bf16(lw: Lowering, op: Op) -> bool:
    """An add/sub/mul combining only outputs of non-linearities (bf16 values, int8 table lookups) and
    f32 model inputs runs in bf16, and so does what it makes: an LSTM's or GRU's gate products and
    cell update keep a bf16 state instead of an int8 one requantized at every time step (a carried
    state loses 20-30 dB of SQNR in int8 on examples/recurrent's streaming model).  A product with a
    linear layer's int8 output (gating, GLU) or a broadcast one of table lookups (squeeze-and-
    excitation over a SiLU map) stays an int8 element-wise product."""
    if lw.config.keeps_bf16(op):
        return True
    activations = [v for v in op.operands if constant_value(v) is None]
    kinds = {_nonlinear_domain(lw, v) for v in activations}
    if "bf16" not in kinds and any(v.type.shape != op.result.type.shape for v in activations):
        return False  # a broadcast gate of table lookups (squeeze-and-excitation) is an int8 product
    return bool(kinds) and kinds <= {"bf16", "f32", "lut"} and kinds != {"f32"}


def crushes_an_operand(lw: Lowering, op: Op) -> bool:
    """Whether the int8 result of a sum would lose an operand whole: the operand's range spans less
    than one step of the result's grid.  An attention mask of -1e4 ... -3.4e38 added to scores of
    span ~10 is the case: on the sum's grid every real score rounds to the same level, and the
    softmax after it sees none of them.  Such a sum runs in bf16 (-3.4e38 rounds to -inf there,
    which the softmax treats as float32's -3.4e38: a weight of zero)."""
    step = lw.params(op.result).scale[0]
    for v in op.operands:
        lo, hi = lw.range_of(v)
        if 0.0 < hi - lo < step:
            return True
    return False


def broadcast_constant(lw: Lowering, x: Value, op: Op) -> Value:
    """``x``, an int8 operand of the sum ``op``, stored at the result's shape when it is a constant that
    broadcasts (``1 - mask``'s scalar) and the other operand, an activation, has that shape: the int8
    lanes add two tensors of one shape (as expand-constants does before quantization for constants of
    more than one element, up to its MAX_ELEMENTS)."""
    from tcc.passes.expand_constants import MAX_ELEMENTS

    array, shape = constant_value(x), tuple(op.result.type.shape)
    if array is None or array.shape == shape or op.result.type.size > MAX_ELEMENTS \
            or not any(constant_value(v) is None and tuple(v.type.shape) == shape for v in op.operands):
        return x
    full = lw.b.const(np.ascontiguousarray(np.broadcast_to(array, shape)), x.name + ".expanded")
    return lw.typed(full, x.type.dtype, x.type.quant)


def lower_add_sub(lw: Lowering, op: Op) -> bool:
    """a +- b with different scales: both to a common int32 grid (TFLite's 20-bit headroom), add,
    requantize (+ fused activation)."""
    if stays_bf16(lw, op) or crushes_an_operand(lw, op):
        return False
    a, b = (broadcast_constant(lw, lw.i8(v), op) for v in (op.a, op.b))
    sa, sb = a.type.quant.scale[0], b.type.quant.scale[0]
    common = 2 * max(sa, sb)
    ai = to_i32(lw, a, sa / common, 20, op.result.name + ".lhs")
    bi = to_i32(lw, b, sb / common, 20, op.result.name + ".rhs")
    total = lw.b.value(op.kind, [ai, bi], name=op.result.name + ".acc")
    lw.typed(total, "i32", QuantParams((common / 2**20,), (0,)))
    return requantize_output(lw, op, total, common / 2**20)


def lower_mul(lw: Lowering, op: Op) -> bool:
    """(a - za) * (b - zb) in int32, requantized."""
    if stays_bf16(lw, op):
        return False
    a, b = lw.i8(op.a), lw.i8(op.b)
    ai = to_i32(lw, a, 1.0, 0, op.result.name + ".lhs")
    bi = to_i32(lw, b, 1.0, 0, op.result.name + ".rhs")
    prod = lw.b.value("mul", [ai, bi], name=op.result.name + ".acc")
    scale = a.type.quant.scale[0] * b.type.quant.scale[0]
    lw.typed(prod, "i32", QuantParams((scale,), (0,)))
    return requantize_output(lw, op, prod, scale)


def lower_concat(lw: Lowering, op: Op) -> bool:
    """Inputs rescaled to the output's parameters where they differ, then an int8 concat (a concat
    kept in bf16 joins bf16 copies of its inputs instead)."""
    if lw.config.keeps_bf16(op):
        return False
    out = lw.params(op.result)
    parts = []
    for i, v in enumerate(op.operands):
        x = lw.i8(v)
        if x.type.quant != out:
            x = lw.requantize(x, x.type.quant.scale[0] / out.scale[0], out, name=f"{op.result.name}.in{i}")
        parts.append(x)
    y = lw.b.value("concat", parts, op.attrs, name=op.result.name)
    lw.bind(op.result, lw.typed(y, "i8", out), "i8")
    return True


def lower_pool(lw: Lowering, op: Op) -> bool:
    """Average pools round the window mean once onto the output's own calibrated scale."""
    x = lw.i8(op.x)
    out = lw.params(op.result)
    (multiplier,), (shift,) = dyadic(x.type.quant.scale[0] / out.scale[0])
    kind = {"avg_pool": "qavg_pool", "global_avg_pool": "qglobal_avg_pool"}[op.kind]
    attrs = dict(op.attrs, multiplier=multiplier, shift=shift, zero_point=out.zero_point[0])
    y = lw.b.value(kind, [x], attrs, name=op.result.name)
    lw.bind(op.result, lw.typed(y, "i8", out), "i8")
    return True


def lower_activation(lw: Lowering, op: Op) -> bool:
    """A relu/clip not fused into a linear op: clamp through an identity requantization."""
    x = lw.i8(op.x)
    q = x.type.quant
    qmin, qmax = lw.clamp(op, q)
    y = lw.requantize(x, 1.0, q, qmin=qmin, qmax=qmax, name=op.result.name)
    lw.bind(op.result, y, "i8")
    return True


def lower_resize(lw: Lowering, op: Op) -> bool:
    """Nearest resize only moves elements: int8 like any layout change; linear resize runs in bf16."""
    return op.mode == "nearest" and lower_layout(lw, op)


def lower_layout(lw: Lowering, op: Op) -> bool:
    """Data movement and max pooling run on int8 (a bf16 operand is quantized with its own
    calibrated range: int8 is what the accelerator moves and pools cheaply)."""
    data, *rest = op.operands  # indices and other non-data operands stay as they are
    x = lw.i8(data)
    attrs = dict(op.attrs)
    if op.kind == "pad" and op.mode == "constant":
        scale, zp = per_tensor(x.type.quant)
        attrs["value"] = float(numerics.quantize_affine(op.value, scale, zp))
    results = lw.b.create(op.kind, [x] + [lw.f32(v) for v in rest], attrs, name=op.results[0].name).results
    for old, new in zip(op.results, results):
        lw.bind(old, lw.typed(new, "i8", x.type.quant), "i8")
    return True


def lower_bf16(lw: Lowering, op: Op) -> bool:
    """Anything else runs on the bf16 SIMD lanes: float operands convert to bf16."""
    operands = [lw.bf16(v) if v.type.dtype == "f32" else lw.f32(v) for v in op.operands]
    attrs = dict(op.attrs)
    if op.kind == "cast":
        return False
    results = lw.b.create(op.kind, operands, attrs, name=op.results[0].name).results
    for old, new in zip(op.results, results):
        lw.bind(old, new, "bf16" if new.type.dtype == "bf16" else "f32")
    return True


def lower_float(lw: Lowering, op: Op) -> bool:
    """Fallback: keep the op in f32 (casts, ops on integer tensors)."""
    operands = [lw.f32(v) for v in op.operands]
    results = lw.b.create(op.kind, operands, op.attrs, name=op.results[0].name).results
    for old, new in zip(op.results, results):
        lw.bind(old, new, "f32")
    return True


RULES = {
    **{kind: [lower_linear] for kind in LINEAR_KINDS},
    "add": [lower_add_sub], "sub": [lower_add_sub], "mul": [lower_mul],
    "concat": [lower_concat],
    "avg_pool": [lower_pool], "global_avg_pool": [lower_pool],
    "relu": [lower_activation], "clip": [lower_activation],
    **{kind: [lower_layout] for kind in LAYOUT_KINDS},
    "resize": [lower_resize],
}


# Float ops whose result is integer-valued: a bf16-rounded operand moves it by a whole unit.
INTEGER_VALUED_KINDS = frozenset({"round", "floor", "ceil", "hardmax"})


def _integer_typed(v: Value) -> bool:
    return v.type.dtype == "bool" or v.type.dtype[0] in "iu"


def exact_ops(source: Module) -> set[int]:
    """Ops (ids) that run in f32, not bf16: those whose result is integer-valued (round, floor,
    ceil, hardmax) or integer-typed from a float operand (casts to integers, comparisons, argmax,
    top-k indices, quantize_linear), and the float ops that compute their operands, back to a model input, a constant or a
    conv / linear / matmul layer (whose int8 rounding is the quantized model's own, not an island's).
    A bf16 island there would decide a different integer (DynamicQuantizeLinear's zero point, an
    index, a comparison near its threshold) where float32 decides ONNX's."""
    exact: set[int] = set()
    pending: list[Value] = []
    for op in source.ops:
        float_in = any(v.type.dtype == "f32" for v in op.operands)
        if op.kind in INTEGER_VALUED_KINDS or (float_in and any(_integer_typed(r) for r in op.results)):
            exact.add(id(op))
            pending.extend(v for v in op.operands if v.type.dtype == "f32")
    while pending:
        producer = pending.pop().producer
        if producer is None or producer.kind == "const" or producer.kind in LINEAR_KINDS or id(producer) in exact:
            continue
        exact.add(id(producer))
        pending.extend(v for v in producer.operands if v.type.dtype == "f32")
    return exact


def lower_module(source: Module, ranges: dict[int, tuple[float, float]], config: LoweringConfig) -> Module:
    """The integer-only module equivalent of ``source`` (a new Module)."""
    return lower(source, ranges, config).target


def lower(source: Module, ranges: dict[int, tuple[float, float]], config: LoweringConfig) -> Lowering:
    """The lowering of ``source``: its ``target`` module and what the rules decided on the way."""
    lw = Lowering(source, ranges, config)
    exact = exact_ops(source)
    in_f32 = frozenset(id(r) for op in source.ops if id(op) in exact for r in op.results)
    chains, absorbed = find_chains(source, lw.non_finite | in_f32)
    untabulate(lw, chains, absorbed)
    for v in source.inputs:
        lw.bind(v, lw.target.add_input(v.name, TensorType(v.type.shape, v.type.dtype)), "f32")
    for op in source.ops:
        if op.kind == "const" or id(op) in lw.consumed or id(op) in absorbed:
            continue
        lw.b.loc = op.loc
        if id(op) in chains:
            lower_chain(lw, chains[id(op)])
            continue
        floating = any(r.type.dtype == "f32" for r in op.results)
        # Integer-typed ops (shapes, indices, integer arithmetic) stay as they are, whatever their kind;
        # so do the float ops that decide integer values (exact_ops); values holding +-Inf never go int8.
        if not floating or id(op) in exact:
            rules = [lower_float]
        elif lw.off_int8(op):
            rules = [lower_bf16, lower_float]
        else:
            rules = RULES.get(op.kind, []) + [lower_bf16, lower_float]
        for rule in rules:
            if rule(lw, op):
                break
    for name, v in source.outputs:
        lw.b.loc = v.producer.loc if v.producer is not None else name  # the layer whose value leaves
        lw.target.add_output(name, lw.f32(v))
    return lw
