"""Small models with layers the overlay cannot run, for heterogeneous execution (tests, docs).

    python examples/hetero/make_models.py      # writes gated_cnn.onnx, gated_cnn_calib.npz, box_head.onnx here

``gated_cnn``: conv -> relu -> conv, then a leaky gate written with Greater + Where (a boolean mask:
no overlay lowering, runs on the host), then conv -> global average pool -> linear head.  The device
runs before and after the host island.  Weights are He-initialised from a fixed seed; the calibration
inputs are smooth random images (a few low-frequency waves), so activations look like a CNN's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def _he(rng, *shape):
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def images(rng, n: int, shape=(1, 3, 16, 16)) -> np.ndarray:
    """Sums of random low-frequency waves per channel, about unit variance."""
    _, c, h, w = shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.zeros((n, c, h, w), np.float32)
    for i in range(n):
        for ch in range(c):
            for _ in range(3):
                fy, fx, phase = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 2 * np.pi)]
                out[i, ch] += np.sin(2 * np.pi * (fy * y + fx * x) + phase)
    return (out / np.sqrt(1.5)).astype(np.float32)


def gated_cnn(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = {
        "w1": _he(rng, 8, 3, 3, 3), "b1": np.zeros(8, np.float32),
        "w2": _he(rng, 8, 8, 3, 3), "b2": (0.1 * rng.standard_normal(8)).astype(np.float32),
        "w3": _he(rng, 16, 8, 3, 3), "b3": np.zeros(16, np.float32),
        "wf": _he(rng, 10, 16), "bf": np.zeros(10, np.float32),
        "zero": np.zeros((), np.float32), "slope": np.full((), 0.1, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Greater", ["c2", "zero"], ["mask"], name="gate_mask"),
        helper.make_node("Mul", ["c2", "slope"], ["leak"], name="gate_leak"),
        helper.make_node("Where", ["mask", "c2", "leak"], ["g"], name="gate"),
        helper.make_node("Conv", ["g", "w3", "b3"], ["c3"], name="conv3", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="head", transB=1),
    ]
    graph = helper.make_graph(nodes, "gated_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def box_head(seed: int = 2) -> onnx.ModelProto:
    """A one-conv detector head with NonMaxSuppression: per 2x2 cell a box (centre from a sigmoid
    over the 16x16 image, size up to 24) and two class scores; NMS keeps at most 10 boxes per
    class above score 0.5 and IoU 0.3; the boxes kept are gathered.  The number kept, hence
    every shape from NMS on, is known only at run time (a host tail); ``scores`` is also an output."""
    rng = np.random.default_rng(seed)
    inits = {
        "w": _he(rng, 6, 3, 3, 3), "b": np.zeros(6, np.float32), "flat": np.array([1, 6, 64], np.int64),
        "s0": np.array([0], np.int64), "s2": np.array([2], np.int64), "s4": np.array([4], np.int64),
        "s6": np.array([6], np.int64), "ax1": np.array([1], np.int64), "ax0": np.array([0], np.int64),
        "img": np.full((), 16, np.float32), "cell": np.full((), 24, np.float32),
        "max": np.array([10], np.int64), "iou": np.array([0.3], np.float32), "thr": np.array([0.5], np.float32),
        "two": np.array(2, np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"),
        helper.make_node("Slice", ["f", "s0", "s2", "ax1"], ["xy_raw"], name="xy_slice"),
        helper.make_node("Sigmoid", ["xy_raw"], ["xy_s"], name="xy_sigmoid"),
        helper.make_node("Mul", ["xy_s", "img"], ["xy"], name="xy"),
        helper.make_node("Slice", ["f", "s2", "s4", "ax1"], ["wh_raw"], name="wh_slice"),
        helper.make_node("Sigmoid", ["wh_raw"], ["wh_s"], name="wh_sigmoid"),
        helper.make_node("Mul", ["wh_s", "cell"], ["wh"], name="wh"),
        helper.make_node("Concat", ["xy", "wh"], ["xywh"], name="xywh", axis=1),
        helper.make_node("Transpose", ["xywh"], ["boxes"], name="boxes", perm=[0, 2, 1]),
        helper.make_node("Slice", ["f", "s4", "s6", "ax1"], ["logit"], name="score_slice"),
        helper.make_node("Sigmoid", ["logit"], ["scores"], name="scores"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "thr"], ["selected"],
                         name="nms", center_point_box=1),
        helper.make_node("Gather", ["selected", "two"], ["box_index"], name="box_index", axis=1),
        helper.make_node("Squeeze", ["boxes", "ax0"], ["boxes0"], name="boxes0"),
        helper.make_node("Gather", ["boxes0", "box_index"], ["det_boxes"], name="det_boxes", axis=0),
    ]
    graph = helper.make_graph(nodes, "box_head",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("selected", TensorProto.INT64, ["k", 3]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, 64]),
                               helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, ["k", 4])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    onnx.save(gated_cnn(), HERE / "gated_cnn.onnx")
    np.savez(HERE / "gated_cnn_calib.npz", x=images(np.random.default_rng(1), 8))
    onnx.save(box_head(), HERE / "box_head.onnx")
    print(f"wrote {HERE / 'gated_cnn.onnx'}, gated_cnn_calib.npz and box_head.onnx (calibrate it on gated_cnn_calib.npz)")


if __name__ == "__main__":
    main()
