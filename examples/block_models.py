"""Small ONNX models of the blocks modern trained CNNs are made of, built with onnx.helper (no
torch), for tests and benches of the overlay target: trained-looking BatchNorm statistics,
squeeze-and-excitation, SiLU / HardSwish / Mish / GELU activations, gating, wide and large-kernel
convolutions.

    python examples/block_models.py OUT_DIR    # writes OUT_DIR/<name>.onnx and <name>.calib.npz
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from light_zoo import random_weight, write_models

OPSET = 17


class Graph:
    """A tiny graph builder: ``node`` adds a node and returns its output name."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, array: np.ndarray, hint: str = "w") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str = "", **attrs) -> str:
        out = self.name(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1, bias: bool = True) -> str:
        inputs = [x, self.const(random_weight((cout, cin // group, k, k), self.rng))]
        if bias:
            inputs.append(self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32), "b"))
        return self.node("Conv", inputs, "conv", kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, group=group)

    def linear(self, x: str, cin: int, cout: int) -> str:
        """MatMul by a [cin, cout] weight, plus a bias (a transformer's linear layer as exported)."""
        w = self.const((self.rng.standard_normal((cin, cout)) / np.sqrt(cin)).astype(np.float32))
        bias = self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32), "b")
        return self.node("Add", [self.node("MatMul", [x, w]), bias])

    def layer_norm(self, x: str, c: int, epsilon: float) -> str:
        """LayerNormalization over the last axis of ``c`` with trained-looking gamma and beta."""
        gamma = self.const(self.rng.uniform(0.5, 1.5, c).astype(np.float32), "ln")
        beta = self.const((0.1 * self.rng.standard_normal(c)).astype(np.float32), "ln")
        return self.node("LayerNormalization", [x, gamma, beta], "ln", axis=-1, epsilon=epsilon)

    def batchnorm(self, x: str, c: int, gamma: np.ndarray | None = None) -> str:
        if gamma is None:
            gamma = self.rng.uniform(0.5, 1.5, c)
        beta = self.rng.normal(0.0, 0.5, c)
        mean = self.rng.normal(0.0, 0.5, c)
        var = self.rng.uniform(0.5, 2.0, c)
        args = [self.const(np.asarray(a, np.float32), "bn") for a in (gamma, beta, mean, var)]
        return self.node("BatchNormalization", [x, *args], "bn", epsilon=1e-5)

    def model(self, x: str, shape: list[int], out: str, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, [])], self.inits)
        del graph.output[0].type.tensor_type.shape.dim[:]
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def dead_gamma_cnn(seed: int = 0) -> onnx.ModelProto:
    """conv -> BatchNorm with some gammas near zero (pruned / dead channels of a trained network,
    so the folded weights are tiny while the folded bias is not) -> ReLU -> conv."""
    g = Graph(seed)
    gamma = g.rng.uniform(0.5, 1.5, 16)
    gamma[[1, 5, 11]] = [1e-8, -3e-9, 2e-7]
    x = g.conv("x", 3, 16, 3, bias=False)
    x = g.node("Relu", [g.batchnorm(x, 16, gamma)])
    out = g.conv(x, 16, 8, 3)
    return g.model("x", [1, 3, 16, 16], out, "dead_gamma_cnn")


def _stem(g: Graph, cin: int, c: int) -> str:
    return g.node("Relu", [g.batchnorm(g.conv("x", cin, c, 3, bias=False), c)])


def silu_se_cnn(seed: int = 0) -> onnx.ModelProto:
    """EfficientNet's MBConv core: conv -> BN -> SiLU (x * Sigmoid(x)) -> depthwise conv -> SiLU ->
    squeeze-and-excitation (x * Sigmoid(fc(SiLU(fc(GlobalAveragePool(x)))))) -> 1x1 projection."""
    g = Graph(seed)
    c = 16
    x = g.batchnorm(g.conv("x", 3, c, 3, bias=False), c)
    x = g.node("Mul", [x, g.node("Sigmoid", [x])], "silu")
    x = g.batchnorm(g.conv(x, c, c, 3, group=c, bias=False), c)
    x = g.node("Mul", [x, g.node("Sigmoid", [x])], "silu")
    s = g.node("GlobalAveragePool", [x])
    s = g.conv(s, c, 4, 1)
    s = g.node("Mul", [s, g.node("Sigmoid", [s])], "silu")
    s = g.node("Sigmoid", [g.conv(s, 4, c, 1)], "gate")
    x = g.node("Mul", [x, s], "se")
    out = g.conv(x, c, 8, 1)
    return g.model("x", [1, 3, 16, 16], out, "silu_se_cnn")


def hardswish_cnn(seed: int = 0) -> onnx.ModelProto:
    """MobileNetV3's activations: x * HardSigmoid(x) written out, the HardSwish op followed by
    x * ReLU6(x + 3) / 6 (older exporters' form; the two compose into one function of the
    BatchNorm output, so one table), and an SE gate through HardSigmoid."""
    g = Graph(seed)
    c = 16
    x = g.batchnorm(g.conv("x", 3, c, 3, bias=False), c)
    x = g.node("Mul", [x, g.node("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)], "hswish")
    x = g.node("HardSwish", [g.batchnorm(g.conv(x, c, c, 3, group=c, bias=False), c)])
    six = g.const(np.float32(6.0), "six")
    relu6 = g.node("Clip", [g.node("Add", [x, g.const(np.float32(3.0), "three")]), g.const(np.float32(0.0), "zero"), six])
    x = g.node("Div", [g.node("Mul", [x, relu6]), six], "hswish_relu6")
    s = g.node("Relu", [g.conv(g.node("GlobalAveragePool", [x]), c, 8, 1)])
    s = g.node("HardSigmoid", [g.conv(s, 8, c, 1)], "gate", alpha=1.0 / 6, beta=0.5)
    out = g.conv(g.node("Mul", [s, x], "se"), c, 8, 1)
    return g.model("x", [1, 3, 16, 16], out, "hardswish_cnn")


def gated_cnn(seed: int = 0) -> onnx.ModelProto:
    """Gates: a spatial attention map [1, 1, H, W] times the features, and two branches multiplied
    element for element (GLU-style)."""
    g = Graph(seed)
    c = 16
    x = _stem(g, 3, c)
    attention = g.node("Sigmoid", [g.conv(x, c, 1, 3)], "spatial")
    x = g.node("Mul", [x, attention], "attend")
    value = g.conv(x, c, c, 1)
    gate = g.node("Sigmoid", [g.conv(x, c, c, 1)], "gate")
    out = g.conv(g.node("Mul", [value, gate], "glu"), c, 8, 3)
    return g.model("x", [1, 3, 16, 16], out, "gated_cnn")


def gelu_cnn(seed: int = 0) -> onnx.ModelProto:
    """GELU as exporters write it: 0.5 x (1 + Erf(x / sqrt 2)) after one conv, the tanh form
    0.5 x (1 + Tanh(sqrt(2/pi) (x + 0.044715 x^3))) after the next."""
    g = Graph(seed)
    c = 16
    x = g.conv("x", 3, c, 3)
    half, one = g.const(np.float32(0.5), "half"), g.const(np.float32(1.0), "one")
    erf = g.node("Erf", [g.node("Div", [x, g.const(np.float32(np.sqrt(2.0)), "sqrt2")])])
    x = g.node("Mul", [g.node("Mul", [x, half]), g.node("Add", [erf, one])], "gelu_erf")
    x = g.conv(x, c, c, 3)
    cube = g.node("Mul", [g.node("Mul", [x, x]), x])
    inner = g.node("Add", [x, g.node("Mul", [cube, g.const(np.float32(0.044715), "k")])])
    tanh = g.node("Tanh", [g.node("Mul", [inner, g.const(np.float32(np.sqrt(2.0 / np.pi)), "s")])])
    x = g.node("Mul", [g.node("Mul", [half, x]), g.node("Add", [one, tanh])], "gelu_tanh")
    out = g.conv(x, c, 8, 1)
    return g.model("x", [1, 3, 16, 16], out, "gelu_cnn")


def wide_kernel_cnn(seed: int = 0, channels: int = 480, dw_channels: int = 320, width: int = 80) -> onnx.ModelProto:
    """Convolutions whose smallest whole-reduction tile exceeds the default target's buffers: a 5x5
    conv over 480 channels (12000 weights per output channel) and a 7x7 depthwise conv over a
    wide map (6 rows x 80 columns x 320 channels of slab)."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, channels, 3)])
    x = g.node("Relu", [g.conv(x, channels, 32, 5)])
    x = g.node("Relu", [g.conv(x, 32, dw_channels, 1)])
    x = g.node("Relu", [g.conv(x, dw_channels, dw_channels, 7, group=dw_channels)])
    out = g.conv(x, dw_channels, 8, 1)
    return g.model("x", [1, 3, 6, width], out, "wide_kernel_cnn")


def c2f_cnn(seed: int = 0, c: int = 16, width: int = 32) -> onnx.ModelProto:
    """YOLOv8's C2f block: a 1x1 conv whose output splits in two channel halves, a 3x3 bottleneck on
    the second half, the halves and the bottleneck's output concatenated along channels, a 1x1 conv."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 2 * c, 3)])
    out1, out2 = g.name("split"), g.name("split")
    g.nodes.append(helper.make_node("Split", [x, g.const(np.array([c, c], np.int64), "parts")], [out1, out2],
                                    name=out1, axis=1))
    y = g.node("Relu", [g.conv(g.node("Relu", [g.conv(out2, c, c, 3)]), c, c, 3)])
    x = g.node("Concat", [out1, out2, y], "cat", axis=1)
    out = g.conv(g.node("Relu", [g.conv(x, 3 * c, 2 * c, 1)]), 2 * c, 8, 1)
    return g.model("x", [1, 3, width, width], out, "c2f_cnn")


def stem_cnn(seed: int = 0, width: int = 128) -> onnx.ModelProto:
    """A detector's stem: stride-2 3x3 convs with SiLU (as one table lookup each) over a 128-pixel image,
    each layer several row tiles, then a 3x3 and a 1x1 conv."""
    g = Graph(seed)
    x, c = "x", 3
    for cout, stride in ((16, 2), (32, 2), (32, 1)):
        x = g.conv(x, c, cout, 3, stride=stride)
        x, c = g.node("Mul", [x, g.node("Sigmoid", [x])], "silu"), cout
    out = g.conv(x, c, 8, 1)
    return g.model("x", [1, 3, width, width], out, "stem_cnn")


def mbconv_se_cnn(seed: int = 0, width: int = 32) -> onnx.ModelProto:
    """Two MobileNetV3 / EfficientNet blocks: 1x1 expansion with HardSwish, 3x3 depthwise conv,
    squeeze-and-excitation (GlobalAveragePool, 1x1 conv, ReLU, 1x1 conv, HardSigmoid, the map times
    the gate), 1x1 projection; the map is read again by the product after the gate's small convs."""
    g = Graph(seed)
    x = g.node("HardSwish", [g.conv("x", 3, 16, 3, stride=2)])
    for cin, c, cout in ((16, 64, 24), (24, 96, 24)):
        e = g.node("HardSwish", [g.conv(x, cin, c, 1)])
        d = g.node("HardSwish", [g.conv(e, c, c, 3, group=c)])
        s = g.node("Relu", [g.conv(g.node("GlobalAveragePool", [d]), c, c // 4, 1)])
        s = g.node("HardSigmoid", [g.conv(s, c // 4, c, 1)], alpha=1.0 / 6)
        x = g.conv(g.node("Mul", [d, s], "se"), c, cout, 1)
    return g.model("x", [1, 3, width, width], x, "mbconv_se_cnn")


def dfl_head_cnn(seed: int = 0, width: int = 16) -> onnx.ModelProto:
    """YOLOv8's box head: a 3x3 conv to 4 x 16 distance bins per anchor, reshaped to [1, 4, 16, A]
    and transposed to [1, 16, 4, A], a softmax over the 16 bins (axis 1), and the expectation as a
    1x1 conv with weights 0..15 (Ultralytics' DFL)."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 16, 3)])
    anchors = width * width
    x = g.node("Reshape", [g.conv(x, 16, 64, 3), g.const(np.array([1, 4, 16, anchors], np.int64), "shape")])
    x = g.node("Softmax", [g.node("Transpose", [x], perm=[0, 2, 1, 3])], axis=1)
    bins = g.const(np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1), "bins")
    out = g.node("Conv", [x, bins], "dfl")
    return g.model("x", [1, 3, width, width], out, "dfl_head_cnn")


def inception_branch_cnn(seed: int = 0, width: int = 17) -> onnx.ModelProto:
    """An Inception-v3 branch: a 1x1 conv to 16 channels, then 3x3 convs of 24 channels, each small
    enough that its weights load at the end of the conv before it (compute-bound layers whose
    weights are a few KiB)."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 48, 3)])
    for cin, cout, k in ((48, 16, 1), (16, 24, 3), (24, 24, 3), (24, 24, 3)):
        x = g.node("Relu", [g.conv(x, cin, cout, k)])
    return g.model("x", [1, 3, width, width], g.conv(x, 24, 8, 1), "inception_branch_cnn")


def narrow_head_cnn(seed: int = 0, height: int = 16, width: int = 32) -> onnx.ModelProto:
    """DBNet's head: 3x3 convs from 48 channels down to 12 (fewer output channels than the array
    has columns) over a wide map, then a 1x1 conv."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 48, 3)])
    x = g.node("Relu", [g.conv(x, 48, 12, 3)])
    x = g.node("Relu", [g.conv(g.node("Relu", [g.conv(x, 12, 48, 1)]), 48, 12, 3)])
    return g.model("x", [1, 3, height, width], g.conv(x, 12, 8, 1), "narrow_head_cnn")


def mobile_chain_cnn(seed: int = 0, width: int = 24) -> onnx.ModelProto:
    """A chain of small inverted-residual layers whose maps fit on chip: 1x1 expansions, 3x3
    depthwise convs and 1x1 projections, each layer's map read by the next."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 16, 3)])
    for cin, c, cout in ((16, 48, 16), (16, 48, 24), (24, 72, 24)):
        e = g.node("Relu", [g.conv(x, cin, c, 1)])
        d = g.node("Relu", [g.conv(e, c, c, 3, group=c)])
        x = g.conv(d, c, cout, 1)
    return g.model("x", [1, 3, width, width], x, "mobile_chain_cnn")


def stem_pool_cnn(seed: int = 0, width: int = 96, pool_stride: int = 2) -> onnx.ModelProto:
    """ShuffleNetV2's and ResNet's stem: a stride-2 3x3 conv to 24 channels, ReLU, and a 3x3
    max pool (stride 2; Inception's stride-1 pools with ``pool_stride=1``), then a 1x1 conv."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, 24, 3, stride=2)])
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[pool_stride] * 2, pads=[1, 1, 1, 1])
    return g.model("x", [1, 3, width, width], g.node("Relu", [g.conv(x, 24, 32, 1)]), "stem_pool_cnn")


def tail_conv_cnn(seed: int = 0, width: int = 3, c: int = 96, out: int = 1024) -> onnx.ModelProto:
    """ShuffleNetV2's tail: small latency-bound layers on a 3 x 3 map (1x1 convs, 3x3 depthwise
    convs), then a 1x1 conv to 1024 channels whose weights are larger than the rest together."""
    g = Graph(seed)
    x = g.node("Relu", [g.conv("x", 3, c, 3)])
    for _ in range(3):
        e = g.node("Relu", [g.conv(x, c, c, 1)])
        d = g.conv(e, c, c, 3, group=c)
        x = g.node("Relu", [g.conv(d, c, c, 1)])
    return g.model("x", [1, 3, width, width], g.node("Relu", [g.conv(x, c, out, 1)]), "tail_conv_cnn")


def dense_block_cnn(seed: int = 0, width: int = 4, c: int = 32, growth: int = 8, layers: int = 8) -> onnx.ModelProto:
    """DenseNet's dense block on a small map as torchvision exports it: each layer concatenates every
    earlier feature map (a Concat of them all, not of the last concat), then BatchNorm, ReLU, a 1x1
    conv to 4 x growth channels, BatchNorm, ReLU and a 3x3 conv to ``growth`` channels."""
    g = Graph(seed)
    features = [g.node("Relu", [g.conv("x", 3, c, 3, stride=2)])]
    channels = c
    for _ in range(layers):
        x = features[0] if len(features) == 1 else g.node("Concat", features, axis=1)
        x = g.node("Relu", [g.batchnorm(x, channels)])
        x = g.node("Relu", [g.batchnorm(g.conv(x, channels, 4 * growth, 1, bias=False), 4 * growth)])
        features.append(g.conv(x, 4 * growth, growth, 3, bias=False))
        channels += growth
    return g.model("x", [1, 3, 2 * width, 2 * width], g.node("Concat", features, axis=1), "dense_block_cnn")


def attention_block(seed: int = 0, tokens: int = 65, dim: int = 96, heads: int = 3) -> onnx.ModelProto:
    """A ViT encoder's attention half as timm exports it: LayerNorm, the fused QKV projection reshaped
    to [3, 1, heads, tokens, dim / heads] and taken apart by Gather, q times d**-0.5, softmax(q k^T),
    times v, the heads put back side by side and projected (65 tokens: 64 patches and the class token)."""
    g = Graph(seed)
    d = dim // heads
    x = g.layer_norm("x", dim, 1e-6)
    qkv = g.node("Reshape", [g.linear(x, dim, 3 * dim), g.const(np.array([1, tokens, 3, heads, d], np.int64), "shape")])
    qkv = g.node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
    q, k, v = (g.node("Gather", [qkv, g.const(np.array(i, np.int64), "i")], axis=0) for i in range(3))
    q = g.node("Mul", [q, g.const(np.array(d ** -0.5, np.float32), "scale")])
    attn = g.node("Softmax", [g.node("MatMul", [q, g.node("Transpose", [k], perm=[0, 1, 3, 2])])], axis=-1)
    y = g.node("Transpose", [g.node("MatMul", [attn, v])], perm=[0, 2, 1, 3])
    y = g.linear(g.node("Reshape", [y, g.const(np.array([1, tokens, dim], np.int64), "shape")]), dim, dim)
    return g.model("x", [1, tokens, dim], y, "attention_block")


def bilstm_block(seed: int = 0, steps: int = 16, features: int = 32, hidden: int = 24) -> onnx.ModelProto:
    """CRNN's sequence head: a bidirectional LSTM over [steps, 1, features] (unroll-recurrent makes
    each step a gemm, gate lookups and bf16 products), its [steps, 2, 1, hidden] output as
    [steps, 1, 2 hidden] (each direction's step outputs concatenated), and a linear layer."""
    g = Graph(seed)

    def weights(*shape: int) -> str:
        return g.const((g.rng.uniform(-1, 1, shape) / np.sqrt(shape[-1])).astype(np.float32), "lstm")

    w, r = weights(2, 4 * hidden, features), weights(2, 4 * hidden, hidden)
    b = g.const((0.1 * g.rng.standard_normal((2, 8 * hidden))).astype(np.float32), "lstm")
    y = g.node("LSTM", ["x", w, r, b], "lstm", hidden_size=hidden, direction="bidirectional")
    y = g.node("Reshape", [g.node("Transpose", [y], perm=[0, 2, 1, 3]), g.const(np.array([steps, 1, 2 * hidden], np.int64), "shape")])
    out = g.node("MatMul", [y, g.const((g.rng.standard_normal((2 * hidden, 8)) / np.sqrt(2 * hidden)).astype(np.float32))])
    return g.model("x", [steps, 1, features], out, "bilstm_block")


def channel_norm_cnn(seed: int = 0, width: int = 16, c: int = 16) -> onnx.ModelProto:
    """ConvNeXt's block core: a 7x7 depthwise conv, LayerNorm over the channels (the map as NHWC), a
    1x1 expansion (ReLU here: GELU is opset 20) and a 1x1 projection: the norm is a bf16 vector op
    of [H W, C] rows, 256 rows of 16 at the default size."""
    g = Graph(seed)
    x = g.conv(g.conv("x", 3, c, 3), c, c, 7, group=c)
    x = g.layer_norm(g.node("Transpose", [x], perm=[0, 2, 3, 1]), c, 1e-6)
    x = g.node("Relu", [g.conv(g.node("Transpose", [x], perm=[0, 3, 1, 2]), c, 4 * c, 1)])
    return g.model("x", [1, 3, width, width], g.conv(x, 4 * c, c, 1), "channel_norm_cnn")


def ffn_block(seed: int = 0, tokens: int = 32, dim: int = 128) -> onnx.ModelProto:
    """A transformer encoder's feed-forward half as BERT's: LayerNorm, a 4x expanding linear layer,
    ReLU (GELU is opset 20), the projection back; the linear layers' weights (64 KiB each) make them
    DRAM-bound at 32 tokens."""
    g = Graph(seed)
    x = g.layer_norm("x", dim, 1e-12)
    y = g.linear(g.node("Relu", [g.linear(x, dim, 4 * dim)]), 4 * dim, dim)
    return g.model("x", [1, tokens, dim], y, "ffn_block")


MODELS = {"dead_gamma_cnn": dead_gamma_cnn, "silu_se_cnn": silu_se_cnn, "hardswish_cnn": hardswish_cnn,
          "gated_cnn": gated_cnn, "gelu_cnn": gelu_cnn, "wide_kernel_cnn": wide_kernel_cnn,
          "c2f_cnn": c2f_cnn, "stem_cnn": stem_cnn,
          "mbconv_se_cnn": mbconv_se_cnn, "dfl_head_cnn": dfl_head_cnn,
          "inception_branch_cnn": inception_branch_cnn, "narrow_head_cnn": narrow_head_cnn,
          "mobile_chain_cnn": mobile_chain_cnn, "attention_block": attention_block,
          "bilstm_block": bilstm_block, "channel_norm_cnn": channel_norm_cnn,
          "ffn_block": ffn_block, "stem_pool_cnn": stem_pool_cnn, "tail_conv_cnn": tail_conv_cnn,
          "dense_block_cnn": dense_block_cnn}


def calibration(model: onnx.ModelProto, samples: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    """N(0, 1) samples for the model's one input (axis 0 = samples)."""
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    return {inp.name: np.random.default_rng(seed).standard_normal([samples, *shape]).astype(np.float32)}


def main(argv: list[str]) -> int:
    return write_models(argv, __doc__ or "", ((name, build()) for name, build in MODELS.items()), calibration, "calib")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
