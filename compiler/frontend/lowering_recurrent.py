"""Lowerings of LSTM, GRU and RNN to tcc's ``lstm`` / ``gru`` / ``rnn`` ops.

ONNX's optional inputs get their default values as constants (zero biases, states and peepholes,
full sequence lengths), activations their default names and parameters, and ``layout=1``
(batch first) becomes transposes around a layout-0 op.
"""
from __future__ import annotations

import numpy as np

from tcc.ir.dtypes import to_numpy
from tcc.ir.ops_recurrent import ACTIVATIONS, DIRECTIONS, FUNCTIONS, GATES

from .context import NodeContext

_DEFAULT_ACTIVATIONS = {"lstm": ("sigmoid", "tanh", "tanh"), "gru": ("sigmoid", "tanh"), "rnn": ("tanh",)}
_STATE_OUTPUTS = {"lstm": 2, "gru": 1, "rnn": 1}


def _activation_attrs(n: NodeContext, kind: str, dirs: int) -> dict:
    """Names, alphas and betas, one each per function and direction.  Alphas and betas are
    consumed in order by the functions that take them (onnxruntime's rule); absent ones default."""
    names = [a.lower() for a in n.attr("activations", ())] or list(_DEFAULT_ACTIVATIONS[kind]) * dirs
    if len(names) == FUNCTIONS[kind] and dirs == 2:
        names = names * 2
    unknown = [a for a in names if a not in ACTIVATIONS]
    if unknown or len(names) != FUNCTIONS[kind] * dirs:
        raise n.error(f"activations {list(n.attr('activations', ()))} must name {FUNCTIONS[kind] * dirs} functions "
                      f"of {sorted(ACTIVATIONS)}")
    given_alpha, given_beta = list(n.attr("activation_alpha", ())), list(n.attr("activation_beta", ()))
    alphas, betas = [], []
    for name in names:
        alpha, beta = ACTIVATIONS[name]
        alphas.append(float(given_alpha.pop(0)) if alpha is not None and given_alpha else float(alpha or 0.0))
        betas.append(float(given_beta.pop(0)) if beta is not None and given_beta else float(beta or 0.0))
    return {"activations": ",".join(names), "activation_alpha": tuple(alphas), "activation_beta": tuple(betas)}


def _operand_or(n: NodeContext, i: int, default: np.ndarray, hint: str, batch_first_state: bool = False):
    if not n.has_input(i):
        return n.new_const(default, f"{n.loc}.{hint}")
    value = n.input(i)
    if batch_first_state:  # [batch, dirs, hidden] -> [dirs, batch, hidden]
        value = n.temp("transpose", [value], {"perm": (1, 0, 2)}, hint=hint)
    return value


def _lower(kind: str):
    def lower(n: NodeContext) -> None:
        x_type = n.input_type(0)
        dtype = to_numpy(x_type.dtype)
        layout = n.attr("layout", 0)
        direction = n.attr("direction", "forward")
        if direction not in DIRECTIONS:
            raise n.error(f"direction={direction!r} is not forward, reverse or bidirectional")
        dirs, gates = DIRECTIONS[direction], GATES[kind]
        hidden = n.attr("hidden_size") or n.input_type(2).shape[-1]
        x = n.input(0)
        if layout:
            x = n.temp("transpose", [x], {"perm": (1, 0, 2)}, hint="x_time_first")
        seq, batch = (x_type.shape[1], x_type.shape[0]) if layout else x_type.shape[:2]
        operands = [x, n.input(1), n.input(2),
                    _operand_or(n, 3, np.zeros((dirs, 2 * gates * hidden), dtype), "b"),
                    _lengths(n, seq, batch),
                    _operand_or(n, 5, np.zeros((dirs, batch, hidden), dtype), "initial_h", bool(layout))]
        if kind == "lstm":
            operands.append(_operand_or(n, 6, np.zeros((dirs, batch, hidden), dtype), "initial_c", bool(layout)))
            operands.append(_operand_or(n, 7, np.zeros((dirs, 3 * hidden), dtype), "p"))
        attrs = {"direction": direction, "hidden_size": int(hidden), "clip": float(n.attr("clip", float("inf"))),
                 **_activation_attrs(n, kind, dirs)}
        if kind == "lstm":
            attrs["input_forget"] = int(n.attr("input_forget", 0))
        if kind == "gru":
            attrs["linear_before_reset"] = int(n.attr("linear_before_reset", 0))
        results = n.results(kind, operands, attrs, 1 + _STATE_OUTPUTS[kind])
        for i, value in enumerate(results):
            if not n.output_used(i):
                continue
            if layout:  # y [seq, dirs, batch, hidden] -> [batch, seq, dirs, hidden]; states -> [batch, dirs, hidden]
                perm = (2, 0, 1, 3) if i == 0 else (1, 0, 2)
                n.emit("transpose", [value], {"perm": perm}, output=i)
            else:
                n.bind_output(i, value)

    lower.__doc__ = f"ONNX {kind.upper()} -> {kind} (layout 0, every operand present)."
    return lower


def _lengths(n: NodeContext, seq: int, batch: int):
    if not n.has_input(4):
        return n.new_const(np.full((batch,), seq, np.int32), f"{n.loc}.sequence_lens")
    if n.is_const(4):
        lens = n.const(4, "sequence_lens")
        if lens.size and (lens.min() < 0 or lens.max() > seq):
            raise n.error(f"sequence_lens {lens.tolist()} must lie in [0, {seq}]")
        return n.new_const(lens.astype(np.int32), f"{n.node.input[4]}.i32")
    value = n.input(4)
    return value if value.type.dtype == "i32" else n.temp("cast", [value], {"to": "i32"}, hint="lens")


LOWERINGS = {
    "LSTM": _lower("lstm"),
    "GRU": _lower("gru"),
    "RNN": _lower("rnn"),
}
