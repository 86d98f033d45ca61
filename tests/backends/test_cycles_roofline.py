"""Modeled cycles against the per-layer roofline (issue 16, goal 2) on small blocks of the real-model
set (examples/block_models.py): each lever that brings a block's cycles toward its roofline has a
ceiling here that the code before it misses.  Cycles are deterministic, so the ceilings are exact
properties of the generated program; the simulator still equals the integer reference bit for bit."""
import numpy as np
import pytest

import block_models
from test_overlay_blocks import compiled


def cycles_over_roofline(model, tmp_path) -> float:
    module, session = compiled(model, tmp_path)
    from tcc.ir.interpreter import run_module

    feeds = {"x": block_models.calibration(model, 1, seed=11)["x"][0]}
    got = session.run_dict(feeds)
    for key, value in run_module(module, feeds).items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    report = session.performance_report()
    return report["cycles"] / report["roofline_cycles"]


def dfl_head_20():
    """YOLOv8's DFL head over 20 x 20 anchors: its softmax takes two vbuf tiles."""
    return block_models.dfl_head_cnn(width=20)


@pytest.mark.parametrize("build, ceiling", [
    # C2f (YOLOv8): the split half that only the concat reads takes the concat's NHWC layout, so the
    # concat assembles on chip and stores once, contiguous (was row-major: a transpose out and back,
    # and 8-byte store rows; 1.35x)
    (block_models.c2f_cnn, 1.15),
    # a stem of stride-2 convs, several row tiles each: slabs of at most half an abuf quarter take
    # four input slots in turn, so a layer's first slab loads while the layer before still reads
    # its last two (was 1.048x)
    (block_models.stem_cnn, 1.03),
    # two MobileNetV3 blocks: squeeze-and-excitation's product reads the map and the gate where abuf
    # holds them (the map from the depthwise conv, the gate from the second small conv), no copy and
    # no load behind the gate's chain (was 1.157x)
    (block_models.mbconv_se_cnn, 1.12),
    # YOLOv8's DFL head: the softmax over 16 bins runs exp and the row sum's reciprocal in the
    # sequences of their domains (x - max <= 0, a sum in [1, 16]): 22 and 14 vector instructions
    # instead of 35 and 37, the same bits (was 1.851x)
    (block_models.dfl_head_cnn, 1.50),
    # Inception-v3's branch of small compute-bound convs: a weight load placed early (at the end of
    # the conv before) avoids the wbuf bytes that conv's own early-loaded weights still occupy, so
    # it no longer waits for that conv's last matmul (was 1.316x; 1.298x with this alone, 1.164x
    # with the maps kept on chip below)
    (block_models.inception_branch_cnn, 1.20),
    # DBNet's head convs of 12 output channels: the channels as gconv parts of 8 and 4, each filling
    # the 32 columns (4 and 8 slices of K), instead of one gconv of 12 in 24 columns (was 1.438x;
    # 1.172x with this alone)
    (block_models.narrow_head_cnn, 1.12),
    # inverted-residual layers whose maps fit half an abuf quarter: each row tile's result goes
    # where it lies in the map, so the next layer reads its slabs in place instead of loading back
    # what was just stored (was 1.268x: the roofline counts each layer's loads)
    (block_models.mobile_chain_cnn, 0.90),
    # a DFL head whose softmax takes two tiles: each tile's rows run as two halves whose
    # instructions interleave (one half's dependent chain waits out the SIMD pipeline while the
    # other's work runs), and the conversion back to int8 runs in two halves, the first starting
    # once the first tile is stored (was 1.700x)
    (dfl_head_20, 1.56),
    # ShuffleNetV2's tail: the last 1x1 conv's first channel tile of weights loads in pieces at the
    # ends of the small latency-bound layers before it, each no larger than the DRAM channel's idle
    # cycles in that layer's tile loop (was 1.369x: only a compute-bound layer's end took them;
    # 1.305x), that loop as emitted: without the slab loads read where abuf holds them, the weights
    # loaded before it and the last store, handed to the next step (it had counted them all)
    (block_models.tail_conv_cnn, 1.21),
    # a stem conv whose map stays on chip in its DRAM order, then a max pool: the pool reads its
    # slabs where the map lies and writes its own map in DRAM order to the other output quarter,
    # so the conv's stores and the pool's loads (each a copy of the held map) are gone, and the 1x1
    # conv after reads the pool's map in place (was 1.354x)
    (block_models.stem_pool_cnn, 1.17),
    # DenseNet's dense block on a 4 x 4 map, each layer a Concat of every earlier feature map: the
    # operands that lie one after another in DRAM (small ones, whose load latency outlasts their
    # beats) load by one DMA, go to their places by one strided copy and are rescaled there by one
    # requantize with a triple per column (each operand's zero point in its bias); a lone operand
    # is rescaled straight from its slot, or from where abuf holds it, into its strided place
    # (was 2.566x: a load, a requantize and a copy per operand, 20 loads a layer in DenseNet-121)
    (block_models.dense_block_cnn, 2.40),
    # a ViT attention half: q times d**-0.5 as a 1x1 depthwise product over 32 columns (195 rows of
    # an [195, 1, 32] slab instead of 6,240 rows of one column: 82 cycles instead of 454), and
    # shorter dependent chains of the same bits in the bf16 sequences: exp of x - max without its
    # NaN select, LayerNorm's var + eps one multiply-add, rsqrt's special cases beside the Newton
    # steps (was 1.872x; 1.833x with the sequences alone, 1.775x with the scale); the context's heads
    # requantized side by side into [tokens, heads x d] and stored as one run, which the projection
    # reads where abuf holds it instead of loading it back (and the halves' joint row reductions
    # below): 1.689x; the softmax's row maxima from a max pool of the int8 scores on the post unit
    # beside the switch to bf16 (row_max.py: not a tree of row reductions on the SIMD lanes), and the
    # conversion writing the scores into the softmax's slot (no copy into it): 1.655x
    (block_models.attention_block, 1.66),
    # CRNN's bidirectional LSTM: each direction's step outputs concatenated on chip with their rescale
    # parameters loaded by one DMA before the first operand (no requantize waits for its own
    # parameter load) and each operand rescaled straight into its place (no copy); the
    # recurrence's chain of small dependent steps still dominates (was 5.432x)
    (block_models.bilstm_block, 5.40),
    # ConvNeXt's LayerNorm over 256 rows of 16 channels: with the tile's rows as two interleaved
    # halves, the row reductions and the per-row chain after each (the mean, rsqrt of the variance)
    # run once over the whole tile when both halves reach them, instead of once per half: the halves
    # now model shorter than the whole tile and are taken (was 1.418x)
    (block_models.channel_norm_cnn, 1.41),
    # BERT's feed-forward half: the first linear layer's first weight tile loads from the LayerNorm's
    # first instruction on (a one-tile vector op leaves the DRAM channel free for the cycles the
    # cost model gives its code), not once the layer before it is done (was 1.360x)
    (block_models.ffn_block, 1.35)])
def test_block_cycles_stay_near_the_roofline(build, ceiling, tmp_path):
    ratio = cycles_over_roofline(build(), tmp_path)
    print(f"{build.__name__}: {ratio:.3f}x roofline")
    assert ratio <= ceiling
