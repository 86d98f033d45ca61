"""LSTM, GRU and RNN: the time loop in the operands' float type, masked by sequence length.

A batch entry whose sequence is shorter than the tensor's time dim keeps its state past its
length and writes zeros to ``y`` there (onnxruntime's semantics); running the reverse direction
from the last time step with the same mask starts each entry at its own last step.
"""
from __future__ import annotations

import numpy as np

from ..ops_recurrent import ACTIVATIONS, FUNCTIONS


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _softplus(x):
    return np.logaddexp(0, x).astype(x.dtype, copy=False)


_FUNCTIONS = {
    "relu": lambda x, a, b: np.maximum(x, 0),
    "tanh": lambda x, a, b: np.tanh(x),
    "sigmoid": lambda x, a, b: _sigmoid(x),
    "softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "softplus": lambda x, a, b: _softplus(x),
    "affine": lambda x, a, b: a * x + b,
    "leakyrelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "thresholdedrelu": lambda x, a, b: np.where(x > a, x, 0),
    "scaledtanh": lambda x, a, b: a * np.tanh(b * x),
    "hardsigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "elu": lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))),
}
assert set(_FUNCTIONS) == set(ACTIVATIONS)


def _activations(kind: str, attrs, direction: int, dtype) -> list:
    """The activation functions of one direction, their alpha/beta bound and clip applied first
    to the gate functions (onnxruntime clips gate inputs, not the cell state LSTM's h reads)."""
    count = FUNCTIONS[kind]
    names = attrs["activations"].split(",")[direction * count:(direction + 1) * count]
    alphas = attrs["activation_alpha"][direction * count:(direction + 1) * count]
    betas = attrs["activation_beta"][direction * count:(direction + 1) * count]
    clip = attrs["clip"]

    def bind(name, alpha, beta):
        fn, a, b = _FUNCTIONS[name], dtype.type(alpha), dtype.type(beta)
        if np.isfinite(clip):
            c = dtype.type(clip)
            return lambda x: fn(np.clip(x, -c, c), a, b).astype(dtype, copy=False)
        return lambda x: fn(x, a, b).astype(dtype, copy=False)

    fns = [bind(n, a, b) for n, a, b in zip(names, alphas, betas)]
    if kind == "lstm" and np.isfinite(clip):
        fn, a, b = _FUNCTIONS[names[2]], dtype.type(alphas[2]), dtype.type(betas[2])
        fns[2] = lambda x: fn(x, a, b).astype(dtype, copy=False)
    return fns


def _time_steps(direction: str, d: int, seq: int):
    reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
    return range(seq - 1, -1, -1) if reverse else range(seq)


def _run(kind: str, attrs, x, w, r, b, lens, states: list, step) -> tuple:
    """Shared loop: ``step(d, x_t, states) -> new states`` (new h first); returns y and final states."""
    seq, batch, _ = x.shape
    dirs, hidden = w.shape[0], attrs["hidden_size"]
    y = np.zeros((seq, dirs, batch, hidden), x.dtype)
    finals = [np.array(s, copy=True) for s in states]
    for d in range(dirs):
        current = [s[d] for s in finals]
        for t in _time_steps(attrs["direction"], d, seq):
            active = (t < lens)[:, None]
            new = step(d, x[t], current)
            current = [np.where(active, n, c) for n, c in zip(new, current)]
            y[t, d] = np.where(active, new[0], 0)
        for s, c in zip(finals, current):
            s[d] = np.where((lens > 0)[:, None], c, 0)  # an empty sequence's state is 0 (onnxruntime)
    return (y, *finals)


def lstm(attrs, x, w, r, b, lens, h0, c0, p):
    hidden = attrs["hidden_size"]
    fns = [_activations("lstm", attrs, d, x.dtype) for d in range(w.shape[0])]
    bias = b[:, :4 * hidden] + b[:, 4 * hidden:]

    def step(d, xt, state):
        h, c = state
        f, g, hf = fns[d]
        gates = xt @ w[d].T + h @ r[d].T + bias[d]
        gi, go, gf, gc = np.split(gates, 4, axis=-1)
        pi, po, pf = np.split(p[d], 3)
        i = f(gi + pi * c)
        forget = 1 - i if attrs["input_forget"] else f(gf + pf * c)
        c_new = forget * c + i * g(gc)
        o = f(go + po * c_new)
        return [o * hf(c_new), c_new]

    return _run("lstm", attrs, x, w, r, b, lens, [h0, c0], step)


def gru(attrs, x, w, r, b, lens, h0):
    fns = [_activations("gru", attrs, d, x.dtype) for d in range(w.shape[0])]

    def step(d, xt, state):
        (h,) = state
        f, g = fns[d]
        wb, rb = np.split(b[d], 2)
        xz, xr, xh = np.split(xt @ w[d].T + wb, 3, axis=-1)
        rz, rr, rh = np.split(r[d], 3)
        bz, br, bh = np.split(rb, 3)
        z = f(xz + h @ rz.T + bz)
        reset = f(xr + h @ rr.T + br)
        if attrs["linear_before_reset"]:
            candidate = g(xh + reset * (h @ rh.T + bh))
        else:
            candidate = g(xh + (reset * h) @ rh.T + bh)
        return [(1 - z) * candidate + z * h]

    return _run("gru", attrs, x, w, r, b, lens, [h0], step)


def rnn(attrs, x, w, r, b, lens, h0):
    hidden = attrs["hidden_size"]
    fns = [_activations("rnn", attrs, d, x.dtype) for d in range(w.shape[0])]
    bias = b[:, :hidden] + b[:, hidden:]

    def step(d, xt, state):
        (h,) = state
        return [fns[d][0](xt @ w[d].T + h @ r[d].T + bias[d])]

    return _run("rnn", attrs, x, w, r, b, lens, [h0], step)


KERNEL_TABLE = (
    ("lstm", lstm),
    ("gru", gru),
    ("rnn", rnn),
)
