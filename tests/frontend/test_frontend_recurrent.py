"""LSTM, GRU and RNN against onnxruntime: every direction, both layouts, sequence lengths,
initial states, all outputs, activations with parameters, clip, peepholes, input_forget and
linear_before_reset (onnx.reference ignores sequence_lens and activations, onnxruntime does not)."""
import numpy as np
import pytest

from onnx_case import C, X, assert_matches_onnxruntime, case, rand

SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 6
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def weights(op, dirs, seed):
    g = GATES[op] * HIDDEN
    return (C(rand(dirs, g, INPUT, seed=seed) * 0.5), C(rand(dirs, g, HIDDEN, seed=seed + 1) * 0.5),
            C(rand(dirs, 2 * g, seed=seed + 2) * 0.5))


def recurrent(op, direction="forward", layout=0, lens=None, states=False, peepholes=False, outputs=None,
              id="", **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    w, r, b = weights(op, dirs, seed=len(id))
    x = X(BATCH, SEQ, INPUT) if layout else X(SEQ, BATCH, INPUT)
    state_shape = (BATCH, dirs, HIDDEN) if layout else (dirs, BATCH, HIDDEN)
    operands = [x, w, r, b, C(np.array(lens, np.int32)) if lens is not None else None]
    operands.append(X(*state_shape) if states else None)
    if op == "LSTM":
        operands.append(X(*state_shape) if states else None)
        operands.append(C(rand(dirs, 3 * HIDDEN, seed=9)) if peepholes else None)
    while operands[-1] is None:
        operands.pop()
    count = outputs or (3 if op == "LSTM" else 2)
    return case(op, *operands, opset=14, outputs=count, id=f"{op}-{id}", direction=direction, layout=layout,
                hidden_size=HIDDEN, **attrs)


CASES = []
for op in GATES:
    for direction in ("forward", "reverse", "bidirectional"):
        CASES.append(recurrent(op, direction, id=direction))
        CASES.append(recurrent(op, direction, lens=[5, 2, 0 if op != "LSTM" else 3], states=True,
                               id=f"{direction}-lens-states"))
    CASES.append(recurrent(op, "forward", outputs=1, id="y-only"))
    CASES.append(recurrent(op, "reverse", clip=0.4, id="clip"))
CASES += [
    recurrent("LSTM", "bidirectional", peepholes=True, states=True, id="peepholes"),
    recurrent("LSTM", "forward", input_forget=1, id="input-forget"),
    recurrent("LSTM", "forward", activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
              activation_alpha=[0.3, 0.05, 0.9], activation_beta=[0.4, 1.2], id="activations"),
    recurrent("GRU", "bidirectional", linear_before_reset=1, lens=[4, 5, 2], id="linear-before-reset"),
    recurrent("GRU", "forward", activations=["Sigmoid", "Softsign"], id="softsign"),
    recurrent("RNN", "bidirectional", activations=["Relu", "Affine"], activation_alpha=[0.7],
              activation_beta=[0.1], id="relu-affine"),
]


@pytest.mark.parametrize("model,feeds", CASES)
def test_matches_onnxruntime(model, feeds):
    assert_matches_onnxruntime(model, feeds, tolerance=1e-5)


# onnxruntime refuses layout=1: batch-first against onnx.reference (which ignores sequence_lens).
@pytest.mark.parametrize("op", list(GATES))
def test_batch_first_matches_onnx_reference(op):
    from onnx.reference import ReferenceEvaluator

    from tcc.frontend import import_onnx
    from tcc.ir.interpreter import run_module

    model, feeds = recurrent(op, "bidirectional", layout=1, states=True, id="batch-first").values
    expected = ReferenceEvaluator(model).run(None, feeds)
    got = run_module(import_onnx(model), feeds)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(got[f"out{i}"], want, rtol=1e-5, atol=1e-6)
