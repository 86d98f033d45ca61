"""Map quantized tcc IR onto the sparse dataflow module library.

Each pattern of ops becomes one module that reads token streams (IR values) and writes one:

    qconv -> requantize(i8)            conv (group 1, KxK), pointwise (1x1), depthwise (group = C)
    requantize(i32) x2 -> add -> requantize(i8)     add (residual; the branches' rescales fused)
    [requantize(i8)] x N -> concat (channels)       concat (the branches' rescales fused)
    max_pool (i8)                                   maxpool
    qavg_pool                                       avgpool
    qglobal_avg_pool, qavg_pool over the whole map  gpool
    qlinear -> requantize(i8)                       fc (also a 1x1 qconv on a 1 x 1 map)
    reshape of a 1 x 1 map                          nothing (the stream is already one site)
    reshape (flatten) of a C x H x W map -> qlinear  nothing: the fc densifies its input

In submanifold mode windows must have submanifold semantics (stride 1 with 'same' padding, or
stride s dividing the map); exact mode takes any square window.  ``quantize`` of a model input,
``dequantize`` of a module's output and any op on non-spatial values after the modules (the
classifier's softmax, say) run on the host, as the overlay's runtime does.  Any other op is an
error naming its kind and location.
"""
from __future__ import annotations

import numpy as np

from tcc.ir import Module, Op, Value, constant_value, is_constant
from tcc.ir.numerics import integer_range
from tcc.ir.verifier import describe

from .errors import SparseError

def _unmappable(op: Op, why: str) -> SparseError:
    return SparseError(f"the sparse target cannot map {describe(op)}: {why}")


def _zp(value: Value) -> list[int]:
    q = value.type.quant
    return [0] if q is None else [int(z) for z in q.zero_point]


def _requant_params(op: Op) -> dict:
    zp_in = _zp(op.x)
    return {"multiplier": [int(m) for m in op.multiplier], "shift": [int(s) for s in op.shift],
            "zero_point": int(op.zero_point), "qmin": int(op.qmin), "qmax": int(op.qmax),
            "rounding": op.rounding, "pre_shift": int(op.pre_shift), "dtype": op.dtype,
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


def _spatial(value: Value) -> bool:
    shape = value.type.shape
    return len(shape) == 4 and shape[2] * shape[3] > 1


class _Mapper:
    def __init__(self, module: Module, mode: str):
        self.module, self.mode = module, mode
        self.modules: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.stream: dict[str, str] = {}  # IR value name -> stream (the value a module writes)
        self.host: list[str] = []  # result names of ops run on the host
        self.done: set[int] = set()

    def _const(self, value: Value, op: Op) -> str:
        if not is_constant(value):
            raise _unmappable(op, f"operand %{value.name} is not a constant; weights live in on-chip ROM")
        self.weights[value.name] = constant_value(value)
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
            handler = getattr(self, f"_map_{op.kind}", self._host_or_fail)
            handler(op)
        for name, value in self.module.outputs:
            if not self._computed(value):
                raise _unmappable(value.producer, f"output {name!r} is not computed by the modules")
        return self

    def _computed(self, value: Value) -> bool:
        return value.name in self.stream or value.name in self.host or is_constant(value)

    def _host_or_fail(self, op: Op) -> None:
        """Ops on non-spatial values after the modules run on the host; anything else is an error."""
        if all(self._computed(v) and not _spatial(v) for v in op.operands) and \
                not any(_spatial(r) for r in op.results):
            self.host.extend(r.name for r in op.results)
            return
        raise _unmappable(op, "no module of the library (conv, pointwise, depthwise, maxpool, avgpool, add, "
                              "concat, gpool, fc) implements this op kind, and the host only runs ops on non-spatial "
                              "values after the modules")

    def _map_quantize(self, op: Op) -> None:
        x = op.x
        if x not in self.module.inputs:
            self._host_or_fail(op)
            return
        out = op.result
        self.host.append(out.name)
        chw = _chw(out)
        self._add("input", op, [], out, in_shape=chw, model_input=x.name, zero_point=_zp(out)[0])

    def _map_qconv(self, op: Op) -> None:
        x, w = op.x, op.w
        rq = _only_user(op.result, "requantize")
        if rq is None or rq.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "a conv module ends in a requantize to 8 bits; this qconv's result has "
                                  "other users")
        cout, cin_g, k, k2 = w.type.shape
        cin, h, wd = _chw(x)
        _, ho, wo = _chw(rq.result)
        stride = op.strides[0]
        if k != k2 or len(set(op.strides)) != 1 or any(d != 1 for d in op.dilations):
            raise _unmappable(op, "modules take square kernels, equal strides and pads, no dilation")
        if op.group == 1 and k == 1 and self._after_frame(x):
            self._map_fc(op, x, w, rq)  # a 1x1 conv on the global pool's one site (DenseNet's classifier)
            return
        if op.group == 1:
            kind = "pointwise" if k == 1 else "conv"
        elif op.group == cin == cout and cin_g == 1:
            kind = "depthwise"
        else:
            raise _unmappable(op, f"group {op.group} is neither 1 nor depthwise")
        pad = self._window_pad(op, k, stride, (h, wd), (ho, wo))
        bias = self._const(op.b, op) if op.b is not None else None
        self._add(kind, op, [self._source(x, op)], rq.result, in_shape=[cin, h, wd], kernel=k, stride=stride,
                  pad=pad, weight=self._const(w, op), bias=bias, in_zero_point=_zp(x)[0],
                  weight_zero_point=_zp(w), requant=_requant_params(rq), acc=op.result.name)
        self.done.add(id(rq))

    def _after_frame(self, value: Value) -> bool:
        """Whether ``value`` is the one-site stream of a global pool (or of an fc after it)."""
        source = self.stream.get(value.name)
        return any(s["output"] == source and s["kind"] in ("gpool", "fc") for s in self.modules)

    def _window_pad(self, op: Op, k: int, stride: int, in_hw, out_hw) -> int:
        """The window's top/left padding; submanifold mode takes submanifold windows only."""
        pads = op.pads
        (h, w), (ho, wo) = in_hw, out_hw
        if pads[0] != pads[1]:
            raise _unmappable(op, "modules pad top and left equally")
        if self.mode == "submanifold":
            same = stride == 1 and k % 2 == 1 and set(pads) == {k // 2}
            cells = stride > 1 and h % stride == 0 and w % stride == 0 and (ho, wo) == (h // stride, w // stride)
            if not (same or cells):
                raise _unmappable(op, f"a {k}x{k} stride-{stride} window with pads {list(pads)} on {h}x{w} has no "
                                      f"submanifold semantics (stride 1 must keep the size, stride s divide it); "
                                      f"use --sparse-mode exact")
        return int(pads[0])

    def _map_requantize(self, op: Op) -> None:
        if _only_user(op.result, "add") is not None and op.result.type.dtype == "i32":
            return  # the residual add's branch rescale: mapped with the add
        if _only_user(op.result, "concat") is not None and op.result.type.dtype == op.x.type.dtype:
            return  # a concat branch's rescale: mapped with the concat
        raise _unmappable(op, "a standalone requantize has no module (it fuses into the conv, fc, add or "
                              "concat around it)")

    def _map_concat(self, op: Op) -> None:
        if op.axis % 4 != 1 or op.result.type.rank != 4:
            raise _unmappable(op, "the concat module joins channels (axis 1) of C x H x W maps")
        inputs, rescales = [], []
        for v in op.operands:
            rq = v.producer if v.producer is not None and v.producer.kind == "requantize" \
                and v.name not in self.stream else None
            source = rq.x if rq is not None else v
            inputs.append(self._source(source, op))
            rescales.append(_requant_params(rq) if rq is not None else None)
        self._add("concat", op, inputs, op.result, in_shape=_chw(op.inputs[0]), rescale=rescales,
                  in_channels=[_chw(v)[0] for v in op.operands])

    def _map_add(self, op: Op) -> None:
        branches = [v.producer for v in op.operands]
        out = _only_user(op.result, "requantize")
        if any(b is None or b.kind != "requantize" for b in branches) or out is None \
                or out.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "the add module takes two rescaled 8-bit branches and requantizes the sum")
        lhs, rhs = (b.x for b in branches)
        if _chw(lhs) != _chw(rhs):
            raise _unmappable(op, "the two branches differ in shape")
        self._add("add", op, [self._source(lhs, op), self._source(rhs, op)], out.result, in_shape=_chw(lhs),
                  requant_lhs=_requant_params(branches[0]), requant_rhs=_requant_params(branches[1]),
                  requant=_requant_params(out))
        self.done.add(id(out))

    def _map_max_pool(self, op: Op) -> None:
        k, x = op.kernel, op.x
        if len(set(k)) != 1 or len(set(op.strides)) != 1 or any(d != 1 for d in op.dilations):
            raise _unmappable(op, "the maxpool module takes square windows, equal strides, no dilation")
        pad = self._window_pad(op, k[0], op.strides[0], _chw(x)[1:], _chw(op.result)[1:])
        self._add("maxpool", op, [self._source(x, op)], op.result, in_shape=_chw(x), kernel=k[0],
                  stride=op.strides[0], pad=pad)

    def _map_qglobal_avg_pool(self, op: Op) -> None:
        x = op.x
        qmin, qmax = integer_range({"i8": 8, "u8": 8}.get(op.result.type.dtype, 32),
                                   op.result.type.dtype != "u8")
        self._add("gpool", op, [self._source(x, op)], op.result, in_shape=_chw(x), in_zero_point=_zp(x)[0],
                  multiplier=int(op.multiplier), shift=int(op.shift), zero_point=int(op.zero_point),
                  qmin=qmin, qmax=qmax)

    def _map_qavg_pool(self, op: Op) -> None:
        """An unpadded pool whose one window is the whole map (ResNet-50's 7x7 on 7x7) is a global
        pool; any other square window is an ``avgpool`` module (DenseNet's 2x2 stride-2 transitions)."""
        x = op.x
        _, h, w = _chw(x)
        if list(op.kernel) == [h, w] and not any(op.pads) and _chw(op.result)[1:] == [1, 1]:
            self._map_qglobal_avg_pool(op)
            return
        k, stride = op.kernel, op.strides
        if len(set(k)) != 1 or len(set(stride)) != 1 or any(d != 1 for d in op.dilations):
            raise _unmappable(op, "the avgpool module takes square windows, equal strides, no dilation")
        if op.count_include_pad and any(op.pads):
            raise _unmappable(op, "the avgpool module divides by the window's taps inside the map; this pool "
                                  "counts its padding (count_include_pad = 1)")
        pad = self._window_pad(op, k[0], stride[0], (h, w), _chw(op.result)[1:])
        qmin, qmax = integer_range({"i8": 8, "u8": 8}[op.result.type.dtype], op.result.type.dtype != "u8")
        self._add("avgpool", op, [self._source(x, op)], op.result, in_shape=_chw(x), kernel=k[0], stride=stride[0],
                  pad=pad, pads=[int(v) for v in op.pads], ceil_mode=int(op.ceil_mode), in_zero_point=_zp(x)[0],
                  multiplier=int(op.multiplier), shift=int(op.shift),
                  zero_point=int(op.zero_point), qmin=qmin, qmax=qmax)

    def _map_reshape(self, op: Op) -> None:
        x = op.x
        flatten = op.result.type.rank == 2 and _only_user(op.result, "qlinear") is not None
        if x.name in self.stream and op.result.type.size == x.type.size and (_chw(x)[1:] == [1, 1] or flatten):
            self.stream[op.result.name] = self.stream[x.name]  # the fc module densifies a C x H x W map
            return
        self._host_tail(op)

    def _map_dequantize(self, op: Op) -> None:
        self._host_tail(op)

    def _host_tail(self, op: Op) -> None:
        """dequantize or reshape of what the modules or the host computed: on the host."""
        if not all(self._computed(v) for v in op.operands):
            raise _unmappable(op, "its operands are not computed by the modules")
        self.host.append(op.result.name)

    def _map_qlinear(self, op: Op) -> None:
        x, w = op.x, op.w
        rq = _only_user(op.result, "requantize")
        if rq is None or rq.result.type.dtype not in ("i8", "u8"):
            raise _unmappable(op, "the fc module ends in a requantize to 8 bits")
        self._map_fc(op, x, w, rq)

    def _map_fc(self, op: Op, x: Value, w: Value, rq: Op) -> None:
        bias = self._const(op.b, op) if op.b is not None else None
        self._add("fc", op, [self._source(x, op)], rq.result, in_shape=_chw(x), weight=self._const(w, op),
                  bias=bias, in_zero_point=_zp(x)[0], weight_zero_point=_zp(w), requant=_requant_params(rq),
                  acc=op.result.name)
        self.done.add(id(rq))


def map_module(module: Module, mode: str) -> tuple[list[dict], dict[str, np.ndarray], list[str], dict[str, str]]:
    """(module specs in stream order, weights by name, host op result names, value -> stream)."""
    m = _Mapper(module, mode).map()
    if not any(s["kind"] == "input" for s in m.modules):
        raise SparseError(f"module @{module.name}: no quantized model input; compile with --calib")
    return m.modules, m.weights, m.host, m.stream
