"""group-norm-as-layer-norm: GroupNormalization and InstanceNormalization as a layer_norm and a per-channel affine.

A group norm of x [N, C, *spatial] in G groups normalizes each (sample, group) block of
C/G * prod(spatial) elements, then scales and shifts each channel.  That is

    y = dwconv1x1(reshape(layer_norm(reshape(x, [N, G, C/G * S]), axis=-1, scale=1), x.shape), s, b)

the layer_norm running on the overlay's vector unit in bf16 (one row per group) and the per-channel
affine a depthwise 1x1 convolution with weight s and bias b on the systolic array (what
batchnorm-to-conv makes of a BatchNorm that cannot fold; fold-affine may fold it into the next
conv).  An instance norm is the group norm with G = C.  Diffusion U-Nets, wav2vec2's feature
encoder, style-transfer and GAN generators use them.

Applies to float ``group_norm`` and ``instance_norm`` with constant scale and bias, before quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.ir import Builder, Op, Value, constant_value

from .base import OpRewritePass
from .fold_affine import depthwise_affine


def _rewrite(op: Op) -> Value:
    b = Builder.before(op)
    name = op.result.name
    x = op.x
    n, c, *spatial = x.type.shape
    groups = c if op.kind == "instance_norm" else op.num_groups
    per_group = c // groups * int(np.prod(spatial, dtype=np.int64))
    rows = b.value("reshape", [x], {"shape": (n, groups, per_group)}, name=f"{name}.groups")
    normalized = b.value("layer_norm", [rows, b.const(np.ones(1, np.float32), f"{name}.one")],
                         {"axis": -1, "epsilon": op.epsilon}, name=f"{name}.normalized")
    scale = constant_value(op.scale).astype(np.float64)
    shift = constant_value(op.bias).astype(np.float64)
    if np.all(scale == 1) and np.all(shift == 0):  # torch's GroupNorm export: the affine comes after
        return b.value("reshape", [normalized], {"shape": (n, c, *spatial)}, name=name)
    y = b.value("reshape", [normalized], {"shape": (n, c, *spatial)}, name=f"{name}.channels")
    if not spatial:  # [N, C]: the affine is element-wise per channel
        y = b.value("mul", [y, b.const(scale.astype(np.float32), f"{name}.scale")], name=f"{name}.scaled")
        return b.value("add", [y, b.const(shift.astype(np.float32), f"{name}.shift")], name=name)
    return depthwise_affine(b, y, scale, shift, name)


def rewrite(op: Op) -> Value | None:
    if (op.kind not in ("group_norm", "instance_norm") or op.x.type.dtype != "f32"
            or constant_value(op.scale) is None or constant_value(op.bias) is None):
        return None
    return _rewrite(op)


@dataclass
class GroupNormAsLayerNorm(OpRewritePass):
    name = "group-norm-as-layer-norm"
    summary = "group and instance norms as a layer_norm per group and a depthwise 1x1 conv (before quantization)"
    rewrite = staticmethod(rewrite)
