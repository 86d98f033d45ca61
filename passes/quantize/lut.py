"""Element-wise functions of one activation, tabulated: SiLU ``x * sigmoid(x)``, HardSwish, GELU,
Mish, sigmoid, tanh... as one int8 -> int8 lookup (``qlut``).

An int8 input takes 256 values, so any chain of element-wise ops whose only activation input is
one tensor ``x`` (other operands scalar constants) is a function of those 256 values: the
quantizer evaluates the float chain on them once, at compile time, and rounds each result onto
the output's calibrated int8 grid.  This is exact to the int8 grid (no bf16 approximation, no
mode switch, one pass), so it replaces the bf16 path whenever the chain holds an op that int8
requantization cannot express (a transcendental or piecewise non-linearity).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tcc.ir import Module, Op, Trait, Value, constant_value, is_constant
from tcc.ir import numerics

from .lowering import ACTIVATIONS

# Chains made only of these stay as they are: int8 requantization expresses them (scalar
# products, clamps fused into the producer's requantization).
LINEAR = {"relu", "clip", "add", "sub", "mul", "div", "neg", "max", "min"}


@dataclass
class Chain:
    """The ops computing ``result`` from ``root`` (topological order)."""

    root: Value
    result: Value
    ops: list[Op] = field(default_factory=list)


def _scalar_const(v: Value) -> bool:
    return is_constant(v) and v.type.size == 1


def _only_offsets(ops: list[Op]) -> bool:
    """Adds or subs of scalar constants (GRN's ``mean + eps``), with clamps: no int8 requantization
    adds a constant and no linear layer's bias is left to take it (fold-affine ran), so such a chain
    is worth a table.  A chain that also scales (``(1 - mask) * float32.min``, an attention bias)
    stays as it is: its sum with the scores is kept off the int8 grid (rules.crushes_an_operand)."""
    offsets = [op for op in ops if op.kind in ("add", "sub") and any(_scalar_const(v) for v in op.operands)]
    return bool(offsets) and all(op.kind in ("add", "sub", "relu", "clip", "max", "min") for op in ops)


def _fused_activation(op: Op, module: Module) -> bool:
    """A relu/clip that is its operand's only user folds into that operand's requantization
    (Lowering.fused_activation), so it starts no chain."""
    return op.kind in ACTIVATIONS and len(op.x.users) == 1 and not module.is_output(op.x)


def find_chains(module: Module, excluded: frozenset[int] = frozenset()) -> tuple[dict[int, Chain], set[int]]:
    """Chains worth a table, keyed by id of their last op; and the ids of the ops they absorb
    (members whose values only chain ops read).  An op reading or making a value of ``excluded``
    (ids: values holding +-Inf or NaN, as log(0) does, which an int8 table cannot; results of ops
    that must run in f32, such as round) joins no chain."""
    root: dict[int, Value] = {}  # id(value) -> the activation it is an element-wise function of
    members: dict[int, dict[int, Op]] = {}  # id(value) -> the chain ops computing it
    for op in module.ops:
        if not op.has_trait(Trait.ELEMENTWISE) or len(op.results) != 1 or op.result.type.dtype != "f32":
            continue
        if any(id(v) in excluded for v in (*op.operands, op.result)):
            continue
        if _fused_activation(op, module) and id(op.x) not in root:
            continue  # folds into its producer's requantization (unless that producer is tabulated)
        activations = [v for v in op.operands if not _scalar_const(v)]
        if not activations or any(v.type.shape != op.result.type.shape or v.type.dtype != "f32"
                                  or is_constant(v) for v in activations):
            continue
        roots = {id(root.get(id(v), v)): root.get(id(v), v) for v in activations}
        if len(roots) != 1:
            continue
        root[id(op.result)] = next(iter(roots.values()))
        ops = {k: m for v in activations for k, m in members.get(id(v), {}).items()}
        ops[id(op)] = op
        members[id(op.result)] = ops
    position = {id(op): i for i, op in enumerate(module.ops)}

    def in_chain(user: Op) -> bool:
        return len(user.results) == 1 and id(user.result) in members

    chains: dict[int, Chain] = {}
    for key, ops in members.items():
        ordered = sorted(ops.values(), key=lambda o: position[id(o)])
        result = ordered[-1].result
        if result.users and all(in_chain(u) for u in result.users) and not module.is_output(result):
            continue  # an intermediate value: the tables of its users include it
        if all(op.kind in LINEAR for op in ordered) and not _only_offsets(ordered):
            continue
        chains[id(ordered[-1])] = Chain(root[key], result, ordered)
    tabulated = {id(op) for chain in chains.values() for op in chain.ops}
    absorbed: set[int] = set()
    for op in reversed(module.ops):  # users before producers: absorb only what nothing else reads
        if id(op) in tabulated and id(op) not in chains and not module.is_output(op.result) \
                and all(id(u) in chains or id(u) in absorbed for u in op.result.users):
            absorbed.add(id(op))
    return chains, absorbed


def tabulate(chain: Chain, x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> np.ndarray:
    """The i8[256] table: entry q + 128 is round(f(s_x (q - z_x)) / s_y) + z_y, saturated."""
    from tcc.ir.interpreter.registry import KERNELS  # the float kernels, on 256 values instead of the op's shape

    q = np.arange(-128, 128, dtype=np.int64)
    values = {id(chain.root): ((q - x_zp) * np.float64(x_scale)).astype(np.float32)}
    for op in chain.ops:
        operands = [values[id(v)] if id(v) in values else np.asarray(constant_value(v)).reshape(())
                    for v in op.operands]
        values[id(op.result)] = np.asarray(KERNELS[op.kind](op.attrs, *operands), np.float32).reshape(-1)
    y = np.nan_to_num(values[id(chain.result)].astype(np.float64), nan=0.0, posinf=1e30, neginf=-1e30)
    return numerics.quantize_affine(np.clip(y, -1e30, 1e30), y_scale, y_zp, out_dtype=np.int8)


def lower_chain(lw, chain: Chain) -> None:
    """Emit ``qlut(x_i8, table)`` for the chain and bind its result's int8 domain (``lw`` is the
    quantizer's Lowering)."""
    x = lw.i8(chain.root)
    (sx,), (zx,) = x.type.quant.scale, x.type.quant.zero_point
    out = lw.params(chain.result)
    table = tabulate(chain, sx, zx, out.scale[0], out.zero_point[0])
    y = lw.b.value("qlut", [x, lw.b.const(table, chain.result.name + ".lut")], name=chain.result.name)
    lw.bind(chain.result, lw.typed(y, "i8", out), "i8")
