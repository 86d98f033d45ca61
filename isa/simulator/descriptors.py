"""Vector-op descriptors: the artifact's table of bf16 operations that ``vop`` executes.

``vop dst, src`` runs descriptor ``R[v.desc]``, a JSON-able dict written by the code generator::

    {"kind": "softmax",                        # an IR op kind with a reference kernel
     "attrs": {"axis": -1},                    # its attributes (JSON values; defaults filled in)
     "operands": [{"shape": [4, 64], "dtype": "bf16"}, ...],
     "results": [{"shape": [4, 64], "dtype": "bf16"}],   # exactly one
     "passes": 5,                              # SIMD passes over the data (cycle model)
     "addresses": [...]}                       # vbuf byte addresses of operands 2.. (optional if < 3 operands)

Operand 0 is read at ``src``, operand 1 at ``R[v.src2]``, operand i >= 2 at ``addresses[i - 2]``;
every tensor is bf16, contiguous and row-major in vbuf, and the result goes to ``dst``.  The op
is evaluated by the reference interpreter's ``evaluate_op`` on an ``Op`` with these bf16 types,
so ``vop`` is bit-identical to the reference by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Op, TensorType, Value, get_def
from tcc.ir.errors import TccError
from tcc.ir.interpreter import KERNELS, OP_KERNELS
from tcc.ir.opdef import normalize_attr

from .machine import Fault

_KEYS = {"kind", "attrs", "operands", "results", "passes", "addresses"}
_REQUIRED = _KEYS - {"addresses"}


@dataclass(frozen=True)
class VectorOp:
    """A checked descriptor: the Op to evaluate and where its tensors live."""

    op: Op
    operand_shapes: tuple[tuple[int, ...], ...]
    result_shape: tuple[int, ...]
    passes: int
    addresses: tuple[int, ...]  # operands 2..

    @property
    def elements(self) -> int:
        """Elements of the largest tensor the op streams through the lanes."""
        sizes = [_size(s) for s in self.operand_shapes] + [_size(self.result_shape)]
        return max(sizes)


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _tensor_type(entry, what: str) -> TensorType:
    if not isinstance(entry, dict) or set(entry) != {"shape", "dtype"}:
        raise ValueError(f"{what} must be {{'shape': [...], 'dtype': 'bf16'}}, got {entry!r}")
    if entry["dtype"] != "bf16":
        raise ValueError(f"{what} has dtype {entry['dtype']!r}; vop tensors are bf16")
    shape = entry["shape"]
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"{what} has shape {shape!r}; expected a list of non-negative integers")
    return TensorType(tuple(shape), "bf16")


def _attrs(kind: str, given) -> dict:
    opdef = get_def(kind)
    if not isinstance(given, dict):
        raise ValueError(f"attrs must be a dict, got {given!r}")
    attrs = {}
    for name, value in given.items():
        spec = opdef.attr(name)
        if spec is None:
            known = ", ".join(a.name for a in opdef.attrs) or "none"
            raise ValueError(f"{kind} has no attribute {name!r} (attributes: {known})")
        try:
            attrs[name] = normalize_attr(spec.kind, value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"attribute {name!r} takes {spec.kind}, got {value!r} ({exc})") from None
    attrs = opdef.with_defaults(attrs)
    missing = [a.name for a in opdef.attrs if a.name not in attrs]
    if missing:
        raise ValueError(f"missing required attribute(s) {', '.join(missing)}")
    return attrs


def _build(index: int, desc) -> VectorOp:
    if not isinstance(desc, dict):
        raise ValueError(f"expected a dict, got {type(desc).__name__}")
    unknown, missing = set(desc) - _KEYS, _REQUIRED - set(desc)
    if unknown or missing:
        raise ValueError(f"unknown key(s) {sorted(unknown)} / missing key(s) {sorted(missing)}")
    kind = desc["kind"]
    if kind not in KERNELS and kind not in OP_KERNELS:
        raise ValueError(f"op kind {kind!r} has no reference kernel")
    attrs = _attrs(kind, desc["attrs"])
    operand_types = [_tensor_type(e, f"operand {i}") for i, e in enumerate(desc["operands"])]
    if not get_def(kind).operand_count_ok(len(operand_types)):
        raise ValueError(f"{kind} does not take {len(operand_types)} operand(s)")
    if not isinstance(desc["results"], (list, tuple)) or len(desc["results"]) != 1:
        raise ValueError("vop writes exactly one result")
    result_type = _tensor_type(desc["results"][0], "result")
    inferred = get_def(kind).infer(operand_types, attrs)
    if list(inferred) != [result_type]:
        raise ValueError(f"declares result {result_type} but {kind} of these operands gives "
                         f"{', '.join(str(t) for t in inferred)}")
    passes = desc["passes"]
    if isinstance(passes, bool) or not isinstance(passes, int) or passes <= 0:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    addresses = desc.get("addresses", [])
    if not isinstance(addresses, (list, tuple)) or len(addresses) != max(len(operand_types) - 2, 0) \
            or not all(isinstance(a, int) for a in addresses):
        raise ValueError(f"addresses must list the vbuf addresses of operands 2..{len(operand_types) - 1}, "
                         f"got {addresses!r}")
    operands = [Value(f"operand{i}", t) for i, t in enumerate(operand_types)]
    op = Op(kind, operands, [result_type], attrs, loc=f"vop descriptor {index}", result_names=["result"])
    return VectorOp(op, tuple(t.shape for t in operand_types), result_type.shape, passes, tuple(addresses))


def vector_op(descriptors: list, cache: dict, index: int) -> VectorOp:
    """The checked descriptor ``index`` (built once, then cached), or a Fault saying what is wrong."""
    found = cache.get(index)
    if found is not None:
        return found
    if not 0 <= index < len(descriptors):
        raise Fault(f"v.desc = {index} is not a descriptor index (the artifact has {len(descriptors)})")
    desc = descriptors[index]
    try:
        built = _build(index, desc)
    except (TccError, ValueError, TypeError, KeyError) as exc:
        kind = desc.get("kind", "?") if isinstance(desc, dict) else "?"
        raise Fault(f"bad vop descriptor {index} ({kind}): {exc}") from None
    cache[index] = built
    return built
