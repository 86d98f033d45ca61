"""Map quantized tcc IR onto the sparse dataflow module library.

Each pattern of ops becomes one module that reads token streams (IR values) and writes one:

    qconv -> requantize(i8)            conv (group 1, KxK), pointwise (1x1), depthwise (group = C)
    requantize(i32) x2 -> add -> requantize(i8)     add (residual; the branches' rescales fused)
    max_pool (i8, kernel = stride, no padding)      maxpool
    qglobal_avg_pool                                gpool
    qlinear -> requantize(i8)                       fc
    reshape of a 1 x 1 map                          nothing (the stream is already one site)

``quantize`` of a model input and ``dequantize`` / ``reshape`` after the last module run on the
host (as the overlay's runtime does).  Any other op is an error naming its kind and location.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, Op, Value
from tcc.ir.verifier import describe

from .errors import SparseError

HOST_TAIL = ("dequantize", "reshape")


def _unmappable(op: Op, why: str) -> SparseError:
    return SparseError(f"the sparse target cannot map {describe(op)}: {why}")


def _zp(value: Value) -> list[int]:
    q = value.type.quant
    return [0] if q is None else [int(z) for z in q.zero_point]


def _requant_params(op: Op) -> dict:
    a = op.attrs
    zp_in = _zp(op.operands[0])
    return {"multiplier": [int(m) for m in a["multiplier"]], "shift": [int(s) for s in a["shift"]],
            "zero_point": int(a["zero_point"]), "qmin": int(a["qmin"]), "qmax": int(a["qmax"]),
            "rounding": a["rounding"], "pre_shift": int(a["pre_shift"]), "dtype": a["dtype"],
            "in_zero_point": zp_in if len(zp_in) > 1 else zp_in[0]}


def _only_user(value: Value, kind: str, dtype: str | None = None) -> Op | None:
    users = value.users
    if len(users) == 1 and users[0].kind == kind and (dtype is None or users[0].result.type.dtype == dtype):
        return users[0]
    return None


def _chw(value: Value) -> list[int]:
    shape = value.type.shape
    if len(shape) == 4 and shape[0] == 1:
        return [int(shape[1]), int(shape[2]), int(shape[3])]
    if len(shape) == 2 and shape[0] == 1:
        return [int(shape[1]), 1, 1]
    raise SparseError(f"value %{value.name} of type {value.type}: the sparse target streams batch-1 "
                      f"C x H x W maps (N = 1)")


class _Mapper:
    def __init__(self, module: Module):
        self.module = module
        self.modules: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.stream: dict[str, str] = {}  # IR value name -> stream (the value a module writes)
        self.host: list[str] = []  # result names of ops run on the host
        self.done: set[int] = set()

    def _const(self, value: Value, op: Op) -> str:
        producer = value.producer
        if producer is None or producer.kind != "const":
            raise _unmappable(op, f"operand %{value.name} is not a constant; weights live in on-chip ROM")
        self.weights[value.name] = np.asarray(producer.attrs["value"])
        return value.name

    def _source(self, value: Value, op: Op) -> str:
        if value.name not in self.stream:
            raise _unmappable(op, f"its input %{value.name} is not produced by a sparse module")
        return self.stream[value.name]

    def _add(self, kind: str, op: Op, inputs: list[str], out: Value, **fields) -> None:
        spec = {"name": f"m{len(self.modules):02d}_{kind}", "kind": kind, "loc": op.loc or "",
                "inputs": inputs, "output": out.name, "out_shape": _chw(out)}
        spec.update(fields)
        self.modules.append(spec)
        self.stream[out.name] = out.name

    def map(self) -> "_Mapper":
        for op in self.module.ops:
            if id(op) in self.done or op.kind == "const":
                continue
            handler = getattr(self, f"_map_{op.kind}", None)
            if handler is None:
                raise _unmappable(op, "no module of the library (conv, pointwise, depthwise, maxpool, add, "
                                      "gpool, fc) implements this op kind")
            handler(op)
        for name, value in self.module.outputs:
            if value.name not in self.stream and value.producer is not None \
                    and value.producer.result.name not in self.host:
                raise _unmappable(value.producer, f"output {name!r} is not computed by the modules")
        return self

    def _map_quantize(self, op: Op) -> None:
        x = op.operands[0]
        if x not in self.module.inputs:
            raise _unmappable(op, "only model inputs are quantized on the host; quantize elsewhere has no module")
        out = op.result
        self.host.append(out.name)
        chw = _chw(out)
        self._add("input", op, [], out, in_shape=chw, model_input=x.name, zero_point=_zp(out)[0])

    def _map_qconv(self, op: Op) -> None:
        a = op.attrs
        x, w = op.operands[0], op.operands[1]
        rq = _only_user(op.result, "requantize")
        if rq is None or rq.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "a conv module ends in a requantize to 8 bits; this qconv's result has "
                                  "other users")
        cout, cin_g, k, k2 = w.type.shape
        cin, h, wd = _chw(x)
        _, ho, wo = _chw(rq.result)
        stride = a["strides"][0]
        if k != k2 or len(set(a["strides"])) != 1 or any(d != 1 for d in a["dilations"]) \
                or len(set(a["pads"])) != 1:
            raise _unmappable(op, "modules take square kernels, equal strides and pads, no dilation")
        if a["group"] == 1:
            kind = "pointwise" if k == 1 else "conv"
        elif a["group"] == cin == cout and cin_g == 1:
            kind = "depthwise"
        else:
            raise _unmappable(op, f"group {a['group']} is neither 1 nor depthwise")
        pad = a["pads"][0]
        if (stride == 1 and (pad != k // 2 or k % 2 == 0)) or h % stride or wd % stride \
                or (ho, wo) != (h // stride, wd // stride):
            raise _unmappable(op, f"a {k}x{k} stride-{stride} pad-{pad} window on {h}x{wd} is not a "
                                  f"submanifold layer (stride 1 must keep the size, stride s divide it)")
        bias = self._const(op.operands[2], op) if len(op.operands) > 2 else None
        self._add(kind, op, [self._source(x, op)], rq.result, in_shape=[cin, h, wd], kernel=k, stride=stride,
                  pad=pad, weight=self._const(w, op), bias=bias, in_zero_point=_zp(x)[0],
                  weight_zero_point=_zp(w), requant=_requant_params(rq), acc=op.result.name)
        self.done.add(id(rq))

    def _map_requantize(self, op: Op) -> None:
        add = _only_user(op.result, "add")
        if op.result.type.dtype != "i32" or add is None:
            raise _unmappable(op, "a standalone requantize has no module (it fuses into the conv, fc or add "
                                  "before it)")
        # the residual add's branch rescale: mapped with the add

    def _map_add(self, op: Op) -> None:
        branches = [v.producer for v in op.operands]
        out = _only_user(op.result, "requantize")
        if any(b is None or b.kind != "requantize" for b in branches) or out is None \
                or out.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "the add module takes two rescaled 8-bit branches and requantizes the sum")
        lhs, rhs = (b.operands[0] for b in branches)
        if _chw(lhs) != _chw(rhs):
            raise _unmappable(op, "the two branches differ in shape")
        self._add("add", op, [self._source(lhs, op), self._source(rhs, op)], out.result, in_shape=_chw(lhs),
                  requant_lhs=_requant_params(branches[0]), requant_rhs=_requant_params(branches[1]),
                  requant=_requant_params(out))
        self.done.add(id(out))

    def _map_max_pool(self, op: Op) -> None:
        a = op.attrs
        k = a["kernel"]
        x = op.operands[0]
        if len(set(k)) != 1 or list(a["strides"]) != list(k) or any(a["pads"]) or a["ceil_mode"] \
                or any(d != 1 for d in a["dilations"]) or any(s % k[0] for s in _chw(x)[1:]):
            raise _unmappable(op, "the maxpool module takes square non-overlapping windows "
                                  "(kernel = stride, no padding) that tile the map")
        self._add("maxpool", op, [self._source(x, op)], op.result, in_shape=_chw(x), kernel=k[0], stride=k[0],
                  pad=0)

    def _map_qglobal_avg_pool(self, op: Op) -> None:
        a = op.attrs
        x = op.operands[0]
        from tcc.ir.numerics import integer_range

        qmin, qmax = integer_range({"i8": 8, "u8": 8}.get(op.result.type.dtype, 32),
                                   op.result.type.dtype != "u8")
        self._add("gpool", op, [self._source(x, op)], op.result, in_shape=_chw(x), in_zero_point=_zp(x)[0],
                  multiplier=int(a["multiplier"]), shift=int(a["shift"]), zero_point=int(a["zero_point"]),
                  qmin=qmin, qmax=qmax)

    def _map_reshape(self, op: Op) -> None:
        x = op.operands[0]
        if x.name in self.stream and _chw(x)[1:] == [1, 1] and op.result.type.size == x.type.size:
            self.stream[op.result.name] = self.stream[x.name]
            return
        self._host_tail(op)

    def _map_dequantize(self, op: Op) -> None:
        self._host_tail(op)

    def _host_tail(self, op: Op) -> None:
        for v in op.operands:
            if v.name not in self.stream and v.producer is not None and v.producer.result.name not in self.host:
                raise _unmappable(op, f"operand %{v.name} is not computed by the modules")
        for user in op.result.users:
            if user.kind not in HOST_TAIL:
                raise _unmappable(user, "no module of the library implements this op kind, and the host "
                                        "only dequantizes and reshapes the modules' outputs")
        self.host.append(op.result.name)

    def _map_qlinear(self, op: Op) -> None:
        x, w = op.operands[0], op.operands[1]
        rq = _only_user(op.result, "requantize")
        if rq is None or rq.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "the fc module ends in a requantize to 8 bits")
        bias = self._const(op.operands[2], op) if len(op.operands) > 2 else None
        self._add("fc", op, [self._source(x, op)], rq.result, in_shape=_chw(x), weight=self._const(w, op),
                  bias=bias, in_zero_point=_zp(x)[0], weight_zero_point=_zp(w), requant=_requant_params(rq),
                  acc=op.result.name)
        self.done.add(id(rq))


def map_module(module: Module) -> tuple[list[dict], dict[str, np.ndarray], list[str], dict[str, str]]:
    """(module specs in stream order, weights by name, host op result names, value -> stream)."""
    m = _Mapper(module).map()
    if not any(s["kind"] == "input" for s in m.modules):
        raise SparseError(f"module @{module.name}: no quantized model input; compile with --calib")
    return m.modules, m.weights, m.host, m.stream
