"""The cycle and resource model of the sparse dataflow modules (ESDA-style, FPGA 2024).

One hardware module per layer; each has a parallelism: ``pi``/``po`` input/output channels per
beat for the convolutions and the fully connected layer, ``p`` channels per beat for the others.

Busy cycles of one frame, from the real token counts of that frame (``Counts``):

    input      tokens_out * ceil(C / p)                 (host DMA of the active sites' features)
    conv KxK   tokens_out * (ceil(Ci/pi) * ceil(Co/po) + 1)   all K*K taps in parallel, 1 header beat
    pointwise  tokens_out * ceil(Ci/pi) * ceil(Co/po)
    depthwise  sum over output tokens of max(1, valid neighbours) * ceil(C/p) + tokens_out
    add        tokens_out * ceil(C/p)                   (merge of the two coordinate-sorted streams)
    concat     tokens_out * ceil(C/p)                   (merge of the branches' streams)
    maxpool    sum over output tokens of max(1, valid neighbours) * ceil(C/p)
    avgpool    sum over output tokens of max(1, valid neighbours) * ceil(C/p) + tokens_out (the rescale)
    gpool      tokens_in * ceil(C/p) + ceil(C/p)        (accumulate, then one mean per channel group)
    fc         ceil(Ci/pi) * ceil(Co/po)                (once per frame, after the global pool)

Resources per module (DSP48E2 packs two int8 MACs):

    DSP    conv ceil(K*K*pi*po/2) + po, pointwise and fc ceil(pi*po/2) + po, depthwise 2p,
           add 2p (one rescale multiplier per branch), concat p if a branch is rescaled, avgpool p
           (the rescale), gpool 1, maxpool and input 0
    BRAM18 the memories the generated HLS declares (memories.py: weight/bias/requantization ROMs
           reshaped to one beat per word, the line buffer of K rows x W x C int8 and its occupancy
           map, accumulators, the FIFOs the module writes), packed by the BRAM18/LUTRAM/SRL rules
    LUT    1500 per module (token logic), 40 per MAC lane, 60 per requantized channel lane, plus
           LUTRAM and shift-register FIFOs

The slowest module's busy cycles set the throughput; timing.py times every token through the
pipeline (service times as above, ``PIPELINE_DEPTH`` cycles per module, line-buffer waits) for
the frame latency.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .memories import ceil_div, memory_cost, module_memories

PIPELINE_DEPTH = {"input": 2, "conv": 12, "pointwise": 8, "depthwise": 10, "add": 4, "concat": 3, "maxpool": 3,
                  "avgpool": 5, "gpool": 4, "fc": 8}
#: Modules with a line buffer: an output waits for all the neighbours of its site.
WINDOWED = ("conv", "depthwise", "maxpool", "avgpool")
#: Modules that run once per frame after the end-of-frame token (not overlapped with streaming).
POST_FRAME = ("fc",)


@dataclass
class Counts:
    """What one module saw in one frame."""

    tokens_in: int = 0
    tokens_out: int = 0
    neighbours: int = 0  # depthwise: sum over output tokens of max(1, valid neighbours)
    valid: np.ndarray | None = None  # windowed modules: valid neighbours of each output token


def parallel_factors(channels: int, max_p: int) -> list[int]:
    """Allowed parallelism for a channel count: even divisors up to max_p, plus 1 and the count
    itself when small (odd counts such as 1 or 3 input channels keep 1 and the full count)."""
    options = {d for d in range(2, min(channels, max_p) + 1, 2) if channels % d == 0}
    options.add(1)
    if channels <= max_p:
        options.add(channels)
    return sorted(options)


def parallelism_options(spec: dict, max_p: int) -> list[dict]:
    kind = spec["kind"]
    cin, cout = spec["in_shape"][0], spec["out_shape"][0]
    if kind == "input":
        return [{"p": cin}]
    if kind in ("conv", "pointwise", "fc"):
        return [{"pi": a, "po": b} for a in parallel_factors(cin, max_p) for b in parallel_factors(cout, max_p)]
    return [{"p": a} for a in parallel_factors(cout, max_p)]


def busy_cycles(spec: dict, par: dict, c: Counts) -> int:
    kind = spec["kind"]
    cin, cout = spec["in_shape"][0], spec["out_shape"][0]
    if kind in ("conv", "pointwise", "fc"):
        beats = ceil_div(cin, par["pi"]) * ceil_div(cout, par["po"])
        if kind == "fc":
            return beats
        return c.tokens_out * (beats + (1 if kind == "conv" else 0))
    beats = ceil_div(cout, par["p"])
    if kind in ("input", "add", "concat"):
        return c.tokens_out * beats
    if kind in ("depthwise", "avgpool"):
        return c.neighbours * beats + c.tokens_out
    if kind == "maxpool":
        return c.neighbours * beats
    if kind == "gpool":
        return (c.tokens_in + 1) * beats
    raise ValueError(f"no cycle model for module kind {kind!r}")


def resources(spec: dict, par: dict) -> dict:
    """{'dsp', 'bram18', 'lut'} of one module at one parallelism; memories as the generated HLS
    declares them (memories.py)."""
    kind = spec["kind"]
    k = spec.get("kernel", 1)
    if kind in ("conv", "pointwise", "fc"):
        pi, po = par["pi"], par["po"]
        macs = (k * k if kind == "conv" else 1) * pi * po
        dsp, lanes = ceil_div(macs, 2) + po, po
    else:
        p = par["p"]
        macs, lanes = 0, 0
        dsp = {"depthwise": 2 * p, "add": 2 * p, "avgpool": p, "gpool": 1}.get(kind, 0)
        if kind == "concat" and any(spec["rescale"]):
            dsp, lanes = p, p
        if kind == "depthwise":
            macs, lanes = p, p
        elif kind == "avgpool":
            lanes = p
        elif kind == "add":
            lanes = 2 * p
    bram, lutram = memory_cost(module_memories(spec, par))
    lut = 1500 + 40 * macs + 60 * lanes + lutram
    return {"dsp": int(dsp), "bram18": int(bram), "lut": int(lut)}
