"""unroll-recurrent: LSTM, GRU and RNN layers as their time steps, in ops the overlay runs.

Each direction becomes one ``linear`` projecting every time step's input at once (the input
weights and both biases), then per step a ``linear`` of the previous hidden state by the
recurrence weights, an ``add``, a ``split`` into gates, the gate activations and the cell update
(``mul``/``add``/``sub``), in ONNX's equations.  After quantization the linear layers and the
gate add run in int8 on the systolic array and the int8 lanes, the activations and the cell
update in bf16 on the vector unit (a product of two bf16 values stays bf16: quantize/rules.py).
Initial states that are model inputs stay inputs and the final states stay outputs, so a
streaming model carries its state between calls.

A layer is unrolled when its weights, biases and sequence lengths are constants, every sequence
is full length, its activations are sigmoid/tanh/relu without clip, and (LSTM) it has no
peepholes or input_forget; ``unroll_problem`` says why not otherwise, and the layer is left as is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Module, Op, Value, constant_value

from .base import Pass

RECURRENT = ("lstm", "gru", "rnn")
_ACTIVATION_OPS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}


def unroll_problem(op: Op) -> str | None:
    """Why ``op`` (lstm, gru or rnn) cannot be unrolled, or None."""
    if any(constant_value(v) is None for v in (op.w, op.r, op.b, op.sequence_lens)):
        return "its weights, biases and sequence lengths must be constants"
    if not np.all(constant_value(op.sequence_lens) == op.x.type.shape[0]):
        return "every sequence must cover the whole time axis (sequence_lens = seq)"
    if np.isfinite(op.clip):
        return "clip is not supported"
    if any(n not in _ACTIVATION_OPS for n in op.activations.split(",")):
        return f"activations {op.activations!r}: only sigmoid, tanh and relu are unrolled"
    if op.kind == "lstm" and (op.input_forget or np.any(constant_value(op.p) != 0)):
        return "peepholes and input_forget are not supported"
    return None


def _is_zero(v: Value) -> bool:
    array = constant_value(v)
    return array is not None and not np.any(array)


class _Unroller:
    def __init__(self, op: Op):
        self.op = op
        self.b = Builder.before(op)
        self.seq, self.batch, self.size = op.x.type.shape
        self.hidden = op.hidden_size
        self.dirs = op.w.type.shape[0]
        self.gates = {"lstm": 4, "gru": 3, "rnn": 1}[op.kind]
        self.names = op.activations.split(",")
        self.prefix = op.results[0].name

    def v(self, kind, operands, name, **attrs) -> Value:
        return self.b.value(kind, operands, attrs, name=f"{self.prefix}.{name}")

    def const(self, array, name) -> Value:
        return self.b.const(np.ascontiguousarray(array, np.float32), f"{self.prefix}.{name}")

    def state(self, v: Value, d: int, name: str) -> Value | None:
        """Direction ``d``'s initial state as [1, batch, hidden]; None when it is a constant zero.
        One direction's state is the operand itself: a model input stays f32 until the cell update
        converts it to bf16, where data movement would have quantized it to int8."""
        if _is_zero(v):
            return None
        if self.dirs == 1:
            return v
        return self.v("slice", [v], f"{name}{d}", starts=(d,), ends=(d + 1,), axes=(0,), steps=(1,))

    def act(self, d: int, index: int, x: Value, name: str) -> Value:
        kind = _ACTIVATION_OPS[self.names[d * (len(self.names) // self.dirs) + index]]
        return self.v(kind, [x], name)

    def step_input(self, gx: Value, t: int, d: int) -> Value:
        """Time step ``t`` of the input projection: [1, batch, gates * hidden]."""
        return self.v("slice", [gx], f"d{d}.t{t}.x", starts=(t,), ends=(t + 1,), axes=(0,), steps=(1,))

    def recurrence(self, h: Value | None, weight: np.ndarray, x_part: Value, name: str):
        """x_part + h @ weight^T (just x_part while h is a zero constant); a generator (yields after
        each op, returns the value)."""
        if h is None:
            return x_part
        hr = self.v("linear", [h, self.const(weight, f"{name}.r")], f"{name}.hr")
        yield
        pre = self.v("add", [x_part, hr], f"{name}.pre")
        yield
        return pre

    def run(self) -> list[Value]:
        x = self.op.x
        w, r, b = (constant_value(v) for v in (self.op.w, self.op.r, self.op.b))
        flat = self.v("reshape", [x], "x2d", shape=(self.seq * self.batch, self.size))
        g, h = self.gates * self.hidden, self.hidden
        projections = []
        for d in range(self.dirs):
            bias = b[d, :g] + b[d, g:]
            if self.op.kind == "gru" and self.op.linear_before_reset:  # rbh is scaled by the reset gate
                bias = np.concatenate([bias[:2 * h], b[d, 2 * h:g]])
            gx = self.v("linear", [flat, self.const(w[d], f"d{d}.w"), self.const(bias, f"d{d}.b")], f"d{d}.gx")
            projections.append(self.v("reshape", [gx], f"d{d}.gx3", shape=(self.seq, self.batch, g)))
        # The directions do not depend on each other: their time steps are built in lock step, one
        # op of each in turn, so the module (and the program, schedule-modes keeping ties in order)
        # interleaves them op by op and one direction's latencies overlap the other's work.
        results: list[dict] = [{} for _ in range(self.dirs)]
        pending = [self._direction(d, projections[d], r[d], b[d], results[d]) for d in range(self.dirs)]
        while pending:
            for walk in list(pending):
                if next(walk, StopIteration) is StopIteration:
                    pending.remove(walk)
        outputs = []
        for d in range(self.dirs):
            hs = results[d]["hs"]
            ys = [self.v("reshape", [hs[t]], f"d{d}.y{t}", shape=(1, 1, self.batch, h)) for t in range(self.seq)]
            outputs.append(ys[0] if self.seq == 1 else self.v("concat", ys, f"d{d}.y", axis=0))
        finals = [results[d]["states"] for d in range(self.dirs)]
        y = outputs[0] if self.dirs == 1 else self.v("concat", outputs, "y", axis=1)
        out = [y]
        for i in range(len(finals[0])):
            parts = [f[i] for f in finals]
            out.append(parts[0] if self.dirs == 1 else self.v("concat", parts, f"final{i}", axis=0))
        return out

    def _direction(self, d, gx, r, b, result: dict):
        """Direction ``d``'s time steps, a generator yielding after each op it builds; ``result``
        gets its hidden state per step (``hs``) and final states (``states``)."""
        states = [self.state(self.op.initial_h, d, "h0")]
        if self.op.kind == "lstm":
            states.append(self.state(self.op.initial_c, d, "c0"))
        reverse = self.op.direction == "reverse" or d == 1
        hs = {}
        step = getattr(self, f"_{self.op.kind}_step")
        for t in (range(self.seq - 1, -1, -1) if reverse else range(self.seq)):
            x_part = self.step_input(gx, t, d)
            yield
            states = yield from step(d, t, x_part, states, r, b)
            hs[t] = states[0]
        result.update(hs=hs, states=states)

    def _split(self, pre: Value, name: str) -> list[Value]:
        return self.b.create("split", [pre], {"axis": 2, "sizes": (self.hidden,) * self.gates},
                             name=f"{self.prefix}.{name}").results

    # The steps are generators: each yields after the ops it builds in turn (``run`` interleaves
    # the directions' steps op by op) and returns the new states.

    def _lstm_step(self, d, t, x_part, states, r, b):
        h, c = states
        name = f"d{d}.t{t}"
        gi, go, gf, gc = self._split((yield from self.recurrence(h, r, x_part, name)), f"{name}.gates")
        yield
        i = self.act(d, 0, gi, f"{name}.i")
        yield
        o = self.act(d, 0, go, f"{name}.o")
        yield
        candidate = self.act(d, 1, gc, f"{name}.g")
        yield
        c_new = self.v("mul", [i, candidate], f"{name}.ig")
        yield
        if c is not None:
            f = self.act(d, 0, gf, f"{name}.f")
            yield
            fc = self.v("mul", [f, c], f"{name}.fc")
            yield
            c_new = self.v("add", [fc, c_new], f"{name}.c")
            yield
        tc = self.act(d, 2, c_new, f"{name}.tc")
        yield
        h_new = self.v("mul", [o, tc], f"{name}.h")
        yield
        return [h_new, c_new]

    def _rnn_step(self, d, t, x_part, states, r, b):
        (h,) = states
        name = f"d{d}.t{t}"
        h_new = self.act(d, 0, (yield from self.recurrence(h, r, x_part, name)), f"{name}.h")
        yield
        return [h_new]

    def _gru_step(self, d, t, x_part, states, r, b):
        """ONNX GRU; with linear_before_reset = 0 the recurrence bias of h is in x_part already."""
        (h,) = states
        hid = self.hidden
        name = f"d{d}.t{t}"
        xz, xr, xh = self._split(x_part, f"{name}.xgates")
        rz, rr, rh = r[:hid], r[hid:2 * hid], r[2 * hid:]
        z = self.act(d, 0, (yield from self.recurrence(h, rz, xz, f"{name}.z")), f"{name}.zs")
        yield
        if self.op.linear_before_reset:  # xh + reset * (h @ rh^T + rbh)
            rbh = self.const(b[5 * hid:], f"{name}.rbh")
            reset = self.act(d, 0, (yield from self.recurrence(h, rr, xr, f"{name}.r")), f"{name}.rs")
            yield
            hr = rbh if h is None else self.v("linear", [h, self.const(rh, f"{name}.rh"), rbh], f"{name}.hr")
            yield
            pre = self.v("add", [xh, self.v("mul", [reset, hr], f"{name}.rhr")], f"{name}.hpre")
            yield
        elif h is None:  # (reset * 0) @ rh^T = 0
            pre = xh
        else:  # xh + (reset * h) @ rh^T
            reset = self.act(d, 0, (yield from self.recurrence(h, rr, xr, f"{name}.r")), f"{name}.rs")
            yield
            rhh = self.v("mul", [reset, h], f"{name}.rh_")
            yield
            hr = self.v("linear", [rhh, self.const(rh, f"{name}.rh")], f"{name}.hr")
            yield
            pre = self.v("add", [xh, hr], f"{name}.hpre")
            yield
        candidate = self.act(d, 1, pre, f"{name}.hc")
        yield
        one_minus_z = self.v("sub", [self.const(np.ones((), np.float32), f"{name}.one"), z], f"{name}.1mz")
        yield
        h_new = self.v("mul", [one_minus_z, candidate], f"{name}.zc")
        yield
        if h is not None:
            zh = self.v("mul", [z, h], f"{name}.zh")
            yield
            h_new = self.v("add", [h_new, zh], f"{name}.h")
            yield
        return [h_new]


@dataclass
class UnrollRecurrent(Pass):
    name = "unroll-recurrent"
    summary = "LSTM/GRU/RNN layers as per-time-step linear layers, gate activations and cell updates"

    def apply(self, module: Module) -> None:
        for op in list(module.ops):
            if op.kind not in RECURRENT or op.x.type.dtype != "f32" or unroll_problem(op) is not None:
                continue
            results = _Unroller(op).run()
            for old, new in zip(op.results, results):
                old.replace_all_uses_with(new)
            module.erase_op(op)
