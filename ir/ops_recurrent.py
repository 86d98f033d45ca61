"""Recurrent op kinds: LSTM, GRU and the simple RNN, in ONNX's layout 0 (time first).

Every operand is present (the frontend materializes ONNX's defaults: zero biases, zero initial
states, zero peepholes, full sequence lengths), so operand positions always mean the same thing:

    lstm(x, w, r, b, sequence_lens, initial_h, initial_c, p) -> (y, y_h, y_c)
    gru(x, w, r, b, sequence_lens, initial_h)                -> (y, y_h)
    rnn(x, w, r, b, sequence_lens, initial_h)                -> (y, y_h)

x: [seq, batch, input]; w: [dirs, gates*hidden, input]; r: [dirs, gates*hidden, hidden];
b: [dirs, 2*gates*hidden] (input then recurrence biases); sequence_lens: i32[batch];
states: [dirs, batch, hidden]; p: [dirs, 3*hidden] (peepholes i, o, f).  y: [seq, dirs, batch,
hidden], zero past each sequence's length; y_h / y_c: the state after each sequence's last step.

``activations`` names one activation per gate function and direction, comma-separated
(``sigmoid,tanh,tanh`` per LSTM direction; ``sigmoid,tanh`` per GRU; ``tanh`` per RNN), with
one ``activation_alpha`` and ``activation_beta`` entry each (0 where unused).  ``clip`` bounds
every activation's input to [-clip, clip] (inf: no clip).
"""
from __future__ import annotations

from .opdef import AttrSpec, define_op
from .shape_rules import ShapeError
from .types import TensorType

# Activation name -> (default alpha, default beta); None where the function takes no parameter.
ACTIVATIONS = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None), "softsign": (None, None),
    "softplus": (None, None), "affine": (1.0, 0.0), "leakyrelu": (0.01, None),
    "thresholdedrelu": (1.0, None), "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
}
DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}
# Gate count and activation functions per direction.
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
FUNCTIONS = {"lstm": 3, "gru": 2, "rnn": 1}

_ATTRS = (AttrSpec("direction", "str", "forward"), AttrSpec("hidden_size", "int"),
          AttrSpec("activations", "str"), AttrSpec("activation_alpha", "floats"),
          AttrSpec("activation_beta", "floats"), AttrSpec("clip", "float", float("inf")))


def _check(kind: str, types, attrs) -> tuple[int, int, int, int]:
    """(seq, batch, dirs, hidden) after checking every operand against them."""
    x, w, r, b, lens, h0 = types[:6]
    direction, hidden = attrs["direction"], attrs["hidden_size"]
    if direction not in DIRECTIONS:
        raise ShapeError(f"direction {direction!r} is not forward, reverse or bidirectional")
    dirs, gates = DIRECTIONS[direction], GATES[kind]
    if x.rank != 3:
        raise ShapeError(f"{kind} input must be [seq, batch, input], got {list(x.shape)}")
    seq, batch, size = x.shape
    expected = {"w": (dirs, gates * hidden, size), "r": (dirs, gates * hidden, hidden),
                "b": (dirs, 2 * gates * hidden), "sequence_lens": (batch,), "initial_h": (dirs, batch, hidden)}
    for name, t in zip(expected, (w, r, b, lens, h0)):
        if t.shape != expected[name]:
            raise ShapeError(f"{kind} {name} has shape {list(t.shape)}, expected {list(expected[name])}")
    if lens.dtype != "i32":
        raise ShapeError(f"{kind} sequence_lens must be i32, got {lens.dtype}")
    if any(t.dtype != x.dtype for t in (w, r, b, h0)):
        raise ShapeError(f"{kind} operands must all have element type {x.dtype}")
    names = attrs["activations"].split(",")
    if len(names) != FUNCTIONS[kind] * dirs or any(n not in ACTIVATIONS for n in names):
        raise ShapeError(f"{kind} needs {FUNCTIONS[kind] * dirs} activations from {sorted(ACTIVATIONS)}, "
                         f"got {attrs['activations']!r}")
    if not len(attrs["activation_alpha"]) == len(attrs["activation_beta"]) == len(names):
        raise ShapeError(f"{kind} needs one activation_alpha and activation_beta per activation")
    return seq, batch, dirs, hidden


def _results(x: TensorType, seq: int, batch: int, dirs: int, hidden: int, states: int) -> list[TensorType]:
    y = TensorType((seq, dirs, batch, hidden), x.dtype)
    return [y] + [TensorType((dirs, batch, hidden), x.dtype)] * states


@define_op("lstm", "x w r b sequence_lens initial_h initial_c p", _ATTRS + (AttrSpec("input_forget", "int", 0),),
           num_results=3)
def _lstm(types, attrs):
    """Long short-term memory (ONNX LSTM, gates i o f c): results y, y_h, y_c."""
    seq, batch, dirs, hidden = _check("lstm", types, attrs)
    c0, p = types[6], types[7]
    if c0.shape != (dirs, batch, hidden) or p.shape != (dirs, 3 * hidden):
        raise ShapeError(f"lstm initial_c {list(c0.shape)} or p {list(p.shape)} does not match")
    return _results(types[0], seq, batch, dirs, hidden, 2)


@define_op("gru", "x w r b sequence_lens initial_h", _ATTRS + (AttrSpec("linear_before_reset", "int", 0),),
           num_results=2)
def _gru(types, attrs):
    """Gated recurrent unit (ONNX GRU, gates z r h): results y, y_h."""
    return _results(types[0], *_check("gru", types, attrs), 1)


@define_op("rnn", "x w r b sequence_lens initial_h", _ATTRS, num_results=2)
def _rnn(types, attrs):
    """Simple recurrent layer H = f(x W^T + H R^T + b): results y, y_h."""
    return _results(types[0], *_check("rnn", types, attrs), 1)
