"""Group the ops of a quantized module into overlay steps: the units of work code is emitted for.

A step covers one or more IR ops (e.g. qconv + requantize is one ``conv`` step; the four ops of an
int8 add are one ``eadd`` step).  Model-boundary conversions (quantizing an f32 input,
dequantizing or casting an output back to f32) are ``host`` work done by the runtime with the
same numerics the reference interpreter uses.  An embedding lookup (``gather`` of rows of a
constant table by integer ids) is a ``lookup`` step: the ids go to the device as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from tcc.ir import Module, Op, Trait, Value, constant_value, is_constant
from tcc.passes.unroll_recurrent import RECURRENT

from .layout import LayoutPlan



class StepKind(NamedTuple):
    unit: str  # the overlay unit that runs it
    mode: str | None  # the machine mode its instructions need (None: either)


STEP_KINDS = {
    **{kind: StepKind("matrix", "int8") for kind in ("conv", "gemm", "matmul", "scale")},
    **{kind: StepKind("int8 lanes", "int8") for kind in ("eadd", "emul", "lut", "requant", "pool")},
    **{kind: StepKind("vector", "bf16") for kind in ("vector", "cvt_in", "cvt_out", "cvt_rows")},
    **{kind: StepKind("data movement", None) for kind in ("concat", "layout", "lookup")},
}


@dataclass
class Step:
    kind: str  # a key of STEP_KINDS
    ops: list[Op]
    inputs: list[Value]
    outputs: list[Value]
    name: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class HostIO:
    """Boundary conversions: (model name, IR value the device tensor is, the boundary ops: none, one,
    or the chain from the model input to the device tensor, in data-flow order)."""

    inputs: list[tuple[str, Value, tuple[Op, ...]]] = field(default_factory=list)
    outputs: list[tuple[str, Value, tuple[Op, ...]]] = field(default_factory=list)


def _sole_user(v: Value, module: Module) -> Op | None:
    users = v.users
    return users[0] if len(users) == 1 and not module.is_output(v) else None


def _is_rescale_to_i32(v: Value, module: Module) -> bool:
    p = v.producer
    return (p is not None and p.kind == "requantize" and p.dtype == "i32"
            and p.x.type.dtype == "i8" and _sole_user(v, module) is not None)


DEVICE_DTYPES = ("i8", "u8", "bf16")  # what a model input's conversions on the host may hand the device
INPUT_CONVERSIONS = ("reshape", "cast", "quantize")  # one operand, one result: a chain of them is host work


def input_conversions(v: Value, module: Module) -> tuple[Op, ...]:
    """The ops converting model input ``v`` on the host: its sole user when that is a quantize or cast
    (an f32 input quantized), or else the chain of sole users that are reshapes, casts and quantizes
    up to the first one making a device tensor (int8, bf16): an integer attention mask unsqueezed,
    cast to f32 and quantized reaches the device as int8.  Empty when neither applies."""
    chain: list[Op] = []
    while (op := _sole_user(v, module)) is not None and op.kind in INPUT_CONVERSIONS \
            and len(op.operands) == 1 and len(op.results) == 1:
        chain.append(op)
        v = op.result
        if op.kind != "reshape" and v.type.dtype in DEVICE_DTYPES:
            return tuple(chain)
    return tuple(chain[:1]) if chain and chain[0].kind != "reshape" else ()


def to_f32(op: Op) -> bool:
    """A dequantize or cast making f32: how a device tensor becomes a model's (or a host op's) f32
    output, one conversion on the host."""
    return op.kind in ("dequantize", "cast") and op.result.type.dtype == "f32"


def find_host_io(module: Module) -> HostIO:
    io = HostIO()
    for v in module.inputs:
        ops = input_conversions(v, module) if not module.is_output(v) else ()
        io.inputs.append((v.name, ops[-1].result if ops else v, ops))
    for name, v in module.outputs:
        p = v.producer
        if p is not None and to_f32(p):
            io.outputs.append((name, p.x, (p,)))
        else:
            io.outputs.append((name, v, ()))
    return io


def plan_layouts(steps: list[Step], io: HostIO) -> LayoutPlan:
    """NHWC for rank-4 int8 tensors the conv/pool unit touches and those tied to them by
    element-wise int8 steps (eadd, requant: all operands share one layout) and by concatenations
    (operands and result share one layout, so a concat of NHWC maps assembles on chip: YOLOv8's C2f
    concatenates a split half that nothing else reads); row-major for the rest (attention heads,
    bf16 tensors, everything only moved or multiplied as matrices)."""
    parent: dict[int, int] = {}
    values: dict[int, Value] = {}

    def find(k: int) -> int:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    seeds: set[int] = set()
    for step in steps:
        group = step.inputs + step.outputs
        for v in group:
            values[id(v)] = v
        if step.kind in ("eadd", "requant", "scale", "lut", "concat"):
            for v in group[1:]:
                parent[find(id(v))] = find(id(group[0]))
        if step.kind == "emul":  # the full-shape operand and the result; a broadcast b keeps its own
            out = step.outputs[0]
            for v in step.inputs:
                if v.type.shape == out.type.shape:
                    parent[find(id(v))] = find(id(out))
        if step.kind in ("conv", "pool"):
            seeds.update(id(v) for v in group)
    nhwc_roots = {find(k) for k in seeds}
    return LayoutPlan(k for k, v in values.items()
                      if find(k) in nhwc_roots and v.type.rank == 4 and v.type.dtype in ("i8", "u8"))


def host_reason(op: Op) -> str:
    if op.kind == "qmatmul":
        return ("an int8 matmul of two activations needs a sole per-tensor int8 requantize or a bf16 "
                "dequantize after it")
    if op.kind == "gather" and not is_constant(op.indices):
        return "a lookup by run-time indices needs a constant 2-D table, axis 0 and int64 indices"
    if op.kind == "requantize" and op.dtype == "i32" and len(op.result.users) == 1:
        user = op.result.users[0]
        return f"it widens an operand of the int8 {user.kind} %{user.results[0].name}, which runs on the host"
    if op.kind in RECURRENT:
        return ("a recurrent layer runs on the overlay once unroll-recurrent unrolls it, which needs constant "
                "weights and sequence lengths, full-length sequences, sigmoid/tanh/relu activations and no clip, "
                "peepholes or input_forget")
    dtypes = sorted({v.type.dtype for v in op.operands + op.results})
    return f"no overlay lowering for {op.kind} on element types {', '.join(dtypes)}"


def _is_exact_widening(req: Op) -> bool:
    """requantize i8 -> i32 that only subtracts the zero point (multiplier * 2**-shift == 1)."""
    return (req.pre_shift == 0 and len(req.multiplier) == 1 and req.zero_point == 0
            and req.multiplier[0] * 2.0 ** -req.shift[0] == 1.0)


def _match_scale(op: Op, module: Module) -> Step | None:
    """int8 activation times a scalar int8 constant (ViT's q * d**-0.5): both widened exactly to
    int32, multiplied, requantized to int8.  Runs on the systolic array as a K = 1 product."""
    from tcc.ir.interpreter import evaluate_op

    req = _sole_user(op.result, module)
    if req is None or req.kind != "requantize" or req.dtype != "i8" or len(req.multiplier) != 1:
        return None
    widened = [v.producer for v in op.operands]
    if not all(_is_rescale_to_i32(v, module) and _is_exact_widening(v.producer) for v in op.operands):
        return None
    consts = [w for w in widened if is_constant(w.x) and w.x.type.size == 1]
    if len(consts) != 1 or any(w.result.type.shape != op.result.type.shape for w in widened if w not in consts):
        return None
    factor = int(evaluate_op(consts[0], [constant_value(consts[0].x)])[0].reshape(-1)[0])
    x = next(w for w in widened if w is not consts[0]).x
    return Step("scale", [*widened, op, req], [x], [req.result], info={"factor": factor, "value": x})


def _match_emul(op: Op, module: Module) -> Step | None:
    """Product of two int8 tensors (SiLU's x * sigmoid(x), squeeze-and-excitation's channel
    scaling, gates, rotary embeddings' x * cos): both widened exactly to int32, multiplied with
    broadcasting, requantized to int8 per tensor.  One operand, an activation, must have the result's
    shape; the other (an activation or a constant table) may broadcast."""
    req = _sole_user(op.result, module)
    if req is None or req.kind != "requantize" or req.dtype != "i8" or len(req.multiplier) != 1:
        return None
    if not all(_is_rescale_to_i32(v, module) and _is_exact_widening(v.producer) for v in op.operands):
        return None
    widened = [v.producer for v in op.operands]
    shape = op.result.type.shape
    full = next((w for w in widened if w.result.type.shape == shape and not is_constant(w.x)), None)
    if full is None:
        return None
    other = widened[1] if full is widened[0] else widened[0]
    return Step("emul", [*widened, op, req], [full.x, other.x], [req.result])


def match_step(op: Op, module: Module) -> Step | None:
    out = op.results[0]
    if op.kind in ("qconv", "qlinear"):
        req = _sole_user(out, module)
        # int32 accumulators leaving the model (logits): read only by dequantizes to model outputs, or
        # an output themselves (the device part of a heterogeneous artifact, whose host part dequantizes)
        if op.kind == "qlinear" and (out.users or module.is_output(out)) and is_constant(op.w) \
                and (op.b is None or is_constant(op.b)) \
                and all(u.kind == "dequantize" and u.dtype == "f32" and module.is_output(u.result) for u in out.users):
            return Step("gemm", [op], [op.x], [out])
        if op.kind == "qlinear" and req is not None and req.kind == "requantize" and req.dtype == "i32" \
                and is_constant(op.w) and (op.b is None or is_constant(op.b)):
            cvt = _sole_user(req.result, module)  # onto one int32 grid, for a bf16 conversion
            if cvt is not None and cvt.kind == "dequantize" and cvt.dtype == "bf16":
                return Step("gemm", [op, req], [op.x], [req.result])
        if req is None or req.kind != "requantize" or req.dtype != "i8" or not is_constant(op.w):
            return None
        if op.b is not None and not is_constant(op.b):
            return None
        return Step("conv" if op.kind == "qconv" else "gemm", [op, req], [op.x], [req.result])
    if op.kind == "qmatmul":
        req = _sole_user(out, module)
        if req is not None and req.kind == "dequantize" and req.dtype == "bf16":
            return Step("matmul", [op], list(op.operands), [out])  # int32 accumulators out, to a cvt
        if req is None or req.kind != "requantize" or req.dtype != "i8" or len(req.multiplier) != 1:
            return None
        return Step("matmul", [op, req], list(op.operands) + ([req.row_shift] if req.row_shift is not None else []), [req.result])
    if op.kind == "requantize" and op.dtype == "i32":
        add = _sole_user(out, module)
        return match_step(add, module) if add is not None and add.kind in ("add", "sub", "mul") else None
    if op.kind == "mul" and out.type.dtype == "i32":
        return _match_scale(op, module) or _match_emul(op, module)
    if op.kind in ("add", "sub") and out.type.dtype == "i32":
        a, b = op.operands
        req = _sole_user(out, module)
        if not (_is_rescale_to_i32(a, module) and _is_rescale_to_i32(b, module)) or req is None \
                or req.kind != "requantize" or req.dtype != "i8":
            return None
        ra, rb = a.producer, b.producer
        if ra.x.type.shape != rb.x.type.shape:
            return None
        return Step("eadd", [ra, rb, op, req], [ra.x, rb.x], [req.result])
    if op.kind == "requantize" and op.dtype == "i8" and op.x.type.dtype == "i8":
        if len(op.multiplier) != 1:
            return None
        return Step("requant", [op], [op.x], [out])
    if op.kind == "qlut" and is_constant(op.table):
        return Step("lut", [op], [op.x], [out])
    if op.has_trait(Trait.POOL) and out.type.dtype == "i8" and out.type.rank == 4:
        return Step("pool", [op], [op.x], [out])
    if op.kind == "concat" and out.type.dtype in ("i8", "bf16"):
        return Step("concat", [op], list(op.operands), [out])
    if op.kind == "gather" and not is_constant(op.indices):
        table, ids = op.operands
        if (not is_constant(table) or table.type.rank != 2 or op.axis % 2 != 0
                or ids.type.dtype != "i64" or out.type.dtype not in ("i8", "bf16")):
            return None
        return Step("lookup", [op], [table, ids], [out])
    if (op.has_trait(Trait.VIEW) or op.kind == "resize" and op.mode == "nearest") \
            and out.type.dtype in ("i8", "bf16"):
        source, *rest = op.operands  # a view reads its first operand; the others choose what
        if not all(is_constant(v) for v in rest):
            return None
        return Step("layout", [op], [source], list(op.results))
    if op.kind == "dequantize" and op.dtype == "bf16":
        return Step("cvt_in", [op], [op.x], [out])
    if op.kind == "quantize" and op.x.type.dtype == "bf16":
        return Step("cvt_out", [op], [op.x], [out])
    if op.kind == "quantize_rows":
        return Step("cvt_rows", [op], [op.x], list(op.results))
    if out.type.dtype == "bf16" and all(v.type.dtype == "bf16" for v in op.operands):
        activations = [v for v in op.operands if not is_constant(v)]
        return Step("vector", [op], activations, list(op.results))
    return None
