"""The explicit pass registry: one dict from name to pass class; a duplicate name is an error."""
from __future__ import annotations

from .base import Pass
from .as_2d import As2d
from .conv_transpose_as_conv import ConvTransposeAsConv
from .dce import DeadCodeElimination
from .einsum_as_matmul import EinsumAsMatmul
from .expand_constants import ExpandConstants
from .fold_affine import BatchNormToConv, FoldAffine
from .fold_batchnorm import FoldBatchNorm
from .fold_constants import FoldConstants
from .fold_pad import FoldPad
from .reduce_as_pool import ReduceAsPool
from .group_norm import GroupNormAsLayerNorm
from .pad_as_concat import PadAsConcat
from .mode_schedule import ScheduleModes
from .quantize import CrossLayerEqualization, MixedPrecision, Quantize, SmoothQuant
from .recognize import Recognize
from .resize_as_matmul import ResizeAsMatmul
from .softmax_axis_last import SoftmaxAxisLast
from .sparsity import AnnotateSparsity
from .unroll_recurrent import UnrollRecurrent
from .where_as_select import WhereAsSelect

PASSES: dict[str, type[Pass]] = {}


def register(cls: type[Pass]) -> type[Pass]:
    if not cls.name or cls.name in PASSES:
        raise ValueError(f"pass name {cls.name!r} is empty or registered twice")
    PASSES[cls.name] = cls
    return cls


for _cls in (DeadCodeElimination, FoldConstants, FoldBatchNorm, FoldAffine, BatchNormToConv, Quantize,
             MixedPrecision, SmoothQuant, CrossLayerEqualization, Recognize, AnnotateSparsity, UnrollRecurrent,
             ResizeAsMatmul, As2d, ConvTransposeAsConv, GroupNormAsLayerNorm, PadAsConcat, ExpandConstants,
             EinsumAsMatmul, WhereAsSelect, FoldPad, ReduceAsPool, SoftmaxAxisLast):
    register(_cls)
register(ScheduleModes)

# The float pipeline `tcc compile -t ir` runs after import.
DEFAULT_FLOAT_PIPELINE = ("fold-constants", "recognize", "fold-batchnorm", "fold-affine", "dce")

# Before quantization: recurrent layers become their time steps, einsums matmuls, group and instance
# norms layer norms and depthwise convs, every batch_norm a conv, reflect/edge/wrap pads slices and
# concats (zero pads a conv reads its padding), every interpolating resize matrix products, 1-D and 3-D convolutions and pools 2-D ones,
# every transposed convolution convolutions, constant-mask wheres multiplies and adds, softmaxes over an
# inner axis softmaxes along the last between transposes, means and sums
# over any axes global average pools, and broadcast
# constants of adds are stored at full shape, so the int8 path can run them.
PRE_QUANT_PIPELINE = ("unroll-recurrent", "einsum-as-matmul", "group-norm-as-layer-norm", "batchnorm-to-conv",
                      "resize-as-matmul", "fold-pad", "pad-as-concat", "as-2d", "conv-transpose-as-conv", "where-as-select", "softmax-axis-last", "reduce-as-pool", "fold-affine", "expand-constants", "dce")
