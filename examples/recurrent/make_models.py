"""Small recurrent models for the overlay (unrolled LSTM/GRU/RNN), built with onnx.helper.

    python examples/recurrent/make_models.py     # writes the .onnx, *_calib.npz and *_test.npz files here

- ``crnn``: a CRNN-like text-line recognizer: conv stack (conv-relu-pool x 2) over a 1 x 16 x 32
  line image, the feature map's columns as a 8-step sequence, a bidirectional LSTM (hidden 32),
  a linear head over 12 classes with a softmax per step (CTC-style).
- ``vad``: a streaming voice-activity-style detector: an LSTM (hidden 24) over 8 frames of 16
  features whose initial states are model inputs and final states model outputs, so the state is
  carried between calls; a linear + sigmoid head per frame.
- ``gru_lbr``, ``gru``, ``rnn``: a GRU as PyTorch exports it (linear_before_reset = 1), a GRU with
  ONNX's default (0) and a reverse tanh RNN, each with a linear head.

Weights are drawn as PyTorch initializes them (uniform in +-1/sqrt(fan_in)), with the conv stack
He-initialized; inputs are smooth random signals (a few low-frequency waves), so the gates see
realistic, correlated sequences.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
OPSET = 17


def _uniform(rng, bound, *shape):
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _he(rng, *shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def waves(rng, shape, n: int) -> np.ndarray:
    """``n`` samples of ``shape``: sums of random low-frequency waves along the last two axes."""
    out = np.zeros((n, *shape), np.float32)
    rows, cols = shape[-2], shape[-1]
    y, x = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    for index in np.ndindex(n, *shape[:-2]):
        for _ in range(3):
            fy, fx = rng.uniform(0.3, 3, 2)
            out[index] += np.sin(2 * np.pi * (fy * y + fx * x) + rng.uniform(0, 2 * np.pi))
    return (out / np.sqrt(1.5)).astype(np.float32)


def _recurrent(rng, kind, size, hidden, dirs):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    bound = 1 / np.sqrt(hidden)
    return (_uniform(rng, bound, dirs, gates * hidden, size), _uniform(rng, bound, dirs, gates * hidden, hidden),
            _uniform(rng, bound, dirs, 2 * gates * hidden))


def _model(name, nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def crnn(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    hidden, classes = 32, 12
    w, r, b = _recurrent(rng, "LSTM", 16 * 4, hidden, 2)
    inits = {"w1": _he(rng, 8, 1, 3, 3), "b1": np.zeros(8, np.float32),
             "w2": _he(rng, 16, 8, 3, 3), "b2": np.zeros(16, np.float32),
             "seq_shape": np.array([1, 64, 8], np.int64), "lstm_w": w, "lstm_r": r, "lstm_b": b,
             "y_shape": np.array([8, 2 * hidden], np.int64),
             "wf": _uniform(rng, 1 / np.sqrt(2 * hidden), classes, 2 * hidden), "bf": np.zeros(classes, np.float32)}
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        # [1, 16, 4, 8] -> columns as time steps: [8, 1, 64]
        helper.make_node("Reshape", ["p2", "seq_shape"], ["f"], name="flatten_rows"),
        helper.make_node("Transpose", ["f"], ["seq"], name="to_sequence", perm=[2, 0, 1]),
        helper.make_node("LSTM", ["seq", "lstm_w", "lstm_r", "lstm_b"], ["y"], name="bilstm",
                         hidden_size=hidden, direction="bidirectional"),
        helper.make_node("Transpose", ["y"], ["yt"], name="steps_first", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["yt", "y_shape"], ["feat"], name="join_directions"),
        helper.make_node("Gemm", ["feat", "wf", "bf"], ["logits"], name="head", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    return _model("crnn", nodes, [_f32("image", [1, 1, 16, 32])], [_f32("probs", [8, classes])], inits)


def vad(seed: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    hidden, feats, frames = 24, 16, 8
    w, r, b = _recurrent(rng, "LSTM", feats, hidden, 1)
    inits = {"w": w, "r": r, "b": b, "y_shape": np.array([frames, hidden], np.int64),
             "wf": _uniform(rng, 1 / np.sqrt(hidden), 1, hidden), "bf": np.zeros(1, np.float32)}
    nodes = [
        helper.make_node("LSTM", ["frames", "w", "r", "b", "", "h_in", "c_in"], ["y", "h_out", "c_out"],
                         name="lstm", hidden_size=hidden),
        helper.make_node("Reshape", ["y", "y_shape"], ["yf"], name="per_frame"),
        helper.make_node("Gemm", ["yf", "wf", "bf"], ["score"], name="head", transB=1),
        helper.make_node("Sigmoid", ["score"], ["speech"], name="speech_prob"),
    ]
    return _model("vad", nodes, [_f32("frames", [frames, 1, feats]), _f32("h_in", [1, 1, hidden]),
                                 _f32("c_in", [1, 1, hidden])],
                  [_f32("speech", [frames, 1]), _f32("h_out", [1, 1, hidden]), _f32("c_out", [1, 1, hidden])], inits)


def single_layer(kind: str, name: str, seed: int, direction="forward", **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    hidden, feats, steps = 16, 12, 6
    dirs = 2 if direction == "bidirectional" else 1
    w, r, b = _recurrent(rng, kind, feats, hidden, dirs)
    inits = {"w": w, "r": r, "b": b, "y_shape": np.array([steps, dirs * hidden], np.int64),
             "wf": _uniform(rng, 1 / np.sqrt(hidden), 4, dirs * hidden), "bf": np.zeros(4, np.float32)}
    nodes = [
        helper.make_node(kind, ["x", "w", "r", "b"], ["y"], name=name, hidden_size=hidden, direction=direction,
                         **attrs),
        helper.make_node("Reshape", ["y", "y_shape"], ["yf"], name="per_step"),
        helper.make_node("Gemm", ["yf", "wf", "bf"], ["out"], name="head", transB=1),
    ]
    return _model(name, nodes, [_f32("x", [steps, 1, feats])], [_f32("out", [steps, 4])], inits)


MODELS = {
    "crnn": (crnn, {"image": (1, 1, 16, 32)}),
    "vad": (vad, {"frames": (8, 1, 16), "h_in": (1, 1, 24), "c_in": (1, 1, 24)}),
    "gru_lbr": (lambda: single_layer("GRU", "gru_lbr", 2, linear_before_reset=1), {"x": (6, 1, 12)}),
    "gru": (lambda: single_layer("GRU", "gru", 3), {"x": (6, 1, 12)}),
    "rnn": (lambda: single_layer("RNN", "rnn", 4, direction="reverse"), {"x": (6, 1, 12)}),
}


def calibration(name: str, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in MODELS[name][1].items():
        if key in ("h_in", "c_in"):  # states of a stream that has run a while
            out[key] = (0.5 * np.tanh(rng.standard_normal((n, *shape)))).astype(np.float32)
        else:
            out[key] = waves(rng, shape, n)
    return out


def main() -> None:
    for name, (build, _) in MODELS.items():
        onnx.save(build(), HERE / f"{name}.onnx")
        np.savez(HERE / f"{name}_calib.npz", **calibration(name, 8, 10))
        np.savez(HERE / f"{name}_test.npz", **calibration(name, 4, 20))  # held out from calibration
        print(f"wrote {name}.onnx, {name}_calib.npz and {name}_test.npz")


if __name__ == "__main__":
    main()
