"""fold-pad: a zero pad of the spatial axes that a convolution reads becomes the convolution's own padding.

Exporters from frameworks with "SAME" padding (TensorFlow through tf2onnx, Keras, some torch code with
an explicit ``F.pad``) write ``Pad`` then a ``Conv`` with no padding.  A convolution pads with zeros,
so ``conv(pad(x, p), w) = conv(x, w, pads + p)`` exactly; the pad then costs no data movement (a pad
the convolution cannot take, pad-as-concat makes a concat of constant blocks).

Applies to a float ``conv`` whose input is a constant-mode ``pad`` of value 0 with non-negative pads on
the spatial axes only, before quantization.  The pad stays while something else reads it.
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import Builder, Op, Value

from .base import OpRewritePass


def rewrite(op: Op) -> Value | None:
    if op.kind != "conv" or op.result.type.dtype != "f32":
        return None
    pad = op.x.producer
    if pad is None or pad.kind != "pad" or pad.mode != "constant" or pad.value != 0 or min(pad.pads) < 0:
        return None
    rank = pad.x.type.rank
    if any(pad.pads[a] or pad.pads[a + rank] for a in (0, 1)):
        return None  # batch or channel pads: not a convolution's padding
    nsp = rank - 2
    pads = tuple(p + pad.pads[2 + i % nsp + (i // nsp) * rank] for i, p in enumerate(op.pads))
    operands = [pad.x, op.w] + ([op.b] if op.b is not None else [])
    return Builder.before(op).value("conv", operands, {**op.attrs, "pads": pads},
                                    name=f"{op.result.name}.unpadded")


@dataclass
class FoldPad(OpRewritePass):
    name = "fold-pad"
    summary = "a zero pad of the spatial axes read by a conv becomes the conv's padding (before quantization)"
    rewrite = staticmethod(rewrite)
