"""Build the real-model set: architectures people deploy today, in their real block structure at
reduced width/depth/resolution; the image classifiers but ConvNeXt-T trained for a few hundred steps
on a generated shapes task (train.py), the others random weights with trained-like statistics;
export each to ONNX with torch's current exporter defaults and write its calibration and test inputs.

    python examples/real_models/make_models.py [--models yolov8,crnn] [--out examples/real_models]

Needs torch and onnxscript (tcc itself needs neither). Per model NAME it writes NAME.onnx,
NAME_calib.npz (8 samples) and NAME_test.npz (2 samples), keys = the model's input names, axis 0
= samples; and prints parameters, MACs and onnxruntime's agreement with torch.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cnns import (ConvNeXtTiny, DenseNet121, EfficientNetB0, InceptionV3, MobileNetV3Small,  # noqa: E402
                  RegNetY, ShuffleNetV2)
from common import (HERE, SHAPES, check_onnxruntime, declare_minus_one, deterministic, export,  # noqa: E402
                    randomize_norms, settle_batchnorm, shape_images, smooth_images, text_images)
from detectors import CRNN, DBNet, YOLOv8  # noqa: E402
from transformers import Bert, DeiTTiny  # noqa: E402
from macs import count_macs  # noqa: E402
from train import train_classifier  # noqa: E402

CALIB, TEST, SETTLE = 8, 2, 32     # samples in the calibration / test files; images for BatchNorm stats
CLASSES = len(SHAPES)              # the trained classifiers' outputs: common.shape_images' labels


def images(size):
    return lambda count, seed: {"image": smooth_images(count, 3, size, size, seed)}


def shapes(size):
    return lambda count, seed: {"image": shape_images(count, size, seed)[0]}


def text_line(height, width, channels):
    return lambda count, seed: {"image": np.repeat(text_images(count, height, width, seed), channels, axis=1)}


def tokens(length, vocab):
    def make(count, seed):
        rng = np.random.default_rng(seed)
        ids = rng.integers(1, vocab, (count, length), dtype=np.int64)
        ids[:, 0] = 101 % vocab                                 # a [CLS]-like first token
        mask = np.ones((count, length), np.int64)
        for n in range(count):                                  # padded tails of random length
            mask[n, length - int(rng.integers(0, length // 2)):] = 0
        ids[mask == 0] = 0
        return {"input_ids": ids, "attention_mask": mask}
    return make


@dataclass(frozen=True)
class Spec:
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int, int], dict]           # (count, seed) -> {name: [count, ...]}
    outputs: tuple
    ops: str = ""
    dynamic: dict | None = None                  # {input: {axis: (name, max or None)}}: exported as dynamic dims
    minus_one: dict | None = None                # {input: dims}: declared with -1 for dynamic dims, as paddle2onnx does
    train: tuple | None = None                   # (input size, AdamW steps): trained on common.shape_images


MODELS = {
    "mobilenet_v3": Spec(partial(MobileNetV3Small, classes=CLASSES), shapes(96), ("logits",), ops="HardSwish, HardSigmoid SE gate, depthwise 3x3/5x5",
                     train=(96, 400)),
    "efficientnet_b0": Spec(partial(EfficientNetB0, classes=CLASSES), shapes(96), ("logits",), ops="SiLU, sigmoid SE gate, depthwise 3x3/5x5",
                        train=(96, 300)),
    "regnet_y": Spec(partial(RegNetY, classes=CLASSES), shapes(96), ("logits",), ops="grouped 3x3 conv (group width 8), SE, residual",
                 train=(96, 400)),
    "convnext_t": Spec(ConvNeXtTiny, images(64), ("logits",), ops="7x7 depthwise, LayerNorm (NHWC by Transpose), GELU, layer scale"),
    "shufflenet_v2": Spec(partial(ShuffleNetV2, classes=CLASSES), shapes(96), ("logits",), ops="channel Split, Concat, channel shuffle (Reshape/Transpose)",
                      train=(96, 400)),
    "densenet121": Spec(partial(DenseNet121, classes=CLASSES), shapes(64), ("logits",), ops="dense Concat, pre-activation BN-ReLU-conv, AvgPool transitions",
                    train=(64, 300)),
    "inception_v3": Spec(partial(InceptionV3, classes=CLASSES), shapes(128), ("logits",), ops="1x7/7x1 and 1x3/3x1 convs, AvgPool/MaxPool branches, Concat",
                     train=(128, 300)),
    "yolov8": Spec(YOLOv8, images(128), ("detections",), ops="SiLU, Split, Concat, nearest Resize, MaxPool 5x5, DFL Softmax, Sigmoid",
                   dynamic={"image": {0: ("batch", None)}}),
    "dbnet": Spec(DBNet, text_line(64, 128, 3), ("probability",), ops="FPN nearest/bilinear Resize, ConvTranspose, Sigmoid",
                  minus_one={"image": (-1, 3, -1, -1)}),
    "crnn": Spec(CRNN, text_line(32, 128, 1), ("log_probs",), ops="VGG conv stack, bidirectional LSTM x2, LogSoftmax"),
    "vit_tiny": Spec(DeiTTiny, images(64), ("logits",), ops="patch conv, class token, LayerNorm, attention MatMul/Softmax, GELU"),
    "bert": Spec(Bert, tokens(32, 512), ("logits",), ops="Gather embeddings, attention mask, SDPA, LayerNorm, GELU, Tanh pooler",
                 dynamic={"input_ids": {0: ("batch", None), 1: ("sequence", 32)},
                          "attention_mask": {0: ("batch", None), 1: ("sequence", 32)}}),
}


def dynamic_shapes(dynamic: dict | None) -> dict | None:
    """torch.export's dynamic_shapes for Spec.dynamic (which names every input, in order); one Dim
    object per name, shared by the inputs."""
    if dynamic is None:
        return None
    dims = {}
    for axes in dynamic.values():
        for name, most in axes.values():
            dims.setdefault(name, torch.export.Dim(name, **({} if most is None else {"max": most})))
    return tuple({axis: dims[name] for axis, (name, _) in axes.items()} for axes in dynamic.values())


def build(name: str, out: Path, seed: int) -> dict:
    spec = MODELS[name]
    deterministic(seed)
    model = spec.build()
    trained = {}
    if spec.train:
        trained = train_classifier(model, *spec.train, seed)
    else:
        randomize_norms(model, seed)
        settle = spec.inputs(SETTLE, seed + 1)
        batches = [tuple(torch.from_numpy(v[i:i + 8]) for v in settle.values()) for i in range(0, SETTLE, 8)]
        settle_batchnorm(model, batches)
    example = {k: v[:1] for k, v in spec.inputs(1, seed + 2).items()}
    path = out / f"{name}.onnx"
    export(model, tuple(torch.from_numpy(v) for v in example.values()), path, list(example), list(spec.outputs),
           dynamic_shapes(spec.dynamic))
    if spec.minus_one:
        declare_minus_one(path, spec.minus_one)
    calib, test = spec.inputs(CALIB, seed + 3), spec.inputs(TEST, seed + 4)
    np.savez_compressed(out / f"{name}_calib.npz", **calib)
    np.savez_compressed(out / f"{name}_test.npz", **test)
    error = max(check_onnxruntime(path, model, {k: v[i:i + 1] for k, v in test.items()}) for i in range(TEST))
    import onnx

    proto = onnx.load(str(path))
    return {"model": name, "params": sum(p.numel() for p in model.parameters()), "macs": count_macs(proto, {k: v.shape for k, v in example.items()}),
            "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
            "nodes": len(proto.graph.node), "ops": sorted({n.op_type for n in proto.graph.node}),
            "bytes": path.stat().st_size, "ort_vs_torch": error, **trained}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.models.split(","):
        row = build(name, args.out, args.seed)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
