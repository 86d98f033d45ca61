"""The memories of each sparse module, as its generated HLS declares them, and their FPGA cost.

One list per module at one parallelism: the same list sizes the C++ arrays and streams that
``tcc hls`` declares (backends/sparse/hls.py) and the BRAM/LUTRAM that the cost model (cost.py)
charges, so the resource figures are those of the design itself.  A test parses the generated
``top.cpp`` and checks that it declares exactly these memories.

Packing rules (Xilinx UltraScale+, as Vitis HLS maps arrays):

* an array of ``count`` elements of ``bits`` bits with ``#pragma HLS ARRAY_RESHAPE cyclic factor=F``
  is one memory ``F * bits`` wide and ``ceil(count / F)`` deep;
* a memory of under 4 Kib goes to LUTRAM (64 bits per LUT); otherwise BRAM18 blocks of 512 x 36
  bits: ``ceil(width / 36) * ceil(depth / 512)``;
* a stream (FIFO) of depth <= 2 is a register pair (flip-flops, not counted: the budget has none);
  of depth <= 32 a shift register (SRL32: one LUT per bit of width); a deeper one a memory as
  above, one token wide.
"""
from __future__ import annotations

from dataclasses import dataclass

LUTRAM_BITS = 4096
SRL_DEPTH = 32
REGISTER_DEPTH = 2
FEATURE_BITS = 8  # int8 features and weights
PARAM_BITS = 32  # int32 biases, backgrounds, requantization multipliers and shifts
GPOOL_ACC_BITS = 32  # a channel's sum over up to 2**24 sites of int8 values
COORD_BITS = 16  # a token's row and column


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def token_bits(channels: int) -> int:
    """A stream word: row, column, end-of-frame flag and the int8 features."""
    return 2 * COORD_BITS + 1 + FEATURE_BITS * channels


@dataclass(frozen=True)
class Memory:
    """One declared array (``count`` elements, reshaped by ``factor``) or stream (``depth`` tokens)."""

    role: str  # the suffix of the C++ name: w, b, bg, rq_mult, lb, occ, fifo, ...
    bits: int
    count: int
    factor: int = 1
    stream_depth: int = 0  # > 0: a FIFO of that many tokens, each ``bits`` wide

    @property
    def width(self) -> int:
        return self.bits if self.stream_depth else self.bits * self.factor

    @property
    def depth(self) -> int:
        return self.stream_depth or ceil_div(self.count, self.factor)

    def cost(self) -> tuple[int, int]:
        """(BRAM18 blocks, LUTs)."""
        if self.stream_depth and self.stream_depth <= REGISTER_DEPTH:
            return 0, 0  # flip-flops, which the budget does not count
        if self.stream_depth and self.stream_depth <= SRL_DEPTH:
            return 0, self.bits
        if self.width * self.depth < LUTRAM_BITS:
            return 0, ceil_div(self.width * self.depth, 64)
        return ceil_div(self.width, 36) * ceil_div(self.depth, 512), 0


def window_rows(spec: dict) -> int:
    """Rows a windowed module's line buffer holds: the K rows of a window, or the S rows of a
    submanifold cell below the padding, whichever reaches further."""
    return max(spec["kernel"], spec["pad"] + spec["stride"])


def has_line_buffer(spec: dict) -> bool:
    kind = spec["kind"]
    return kind in ("conv", "depthwise", "maxpool", "avgpool") or (
        kind == "pointwise" and (spec["stride"] > 1 or spec["pad"] > 0))


def lanes(spec: dict, par: dict) -> tuple[int, int]:
    """(input channels, output channels) processed per beat."""
    if "pi" in par:
        return par["pi"], par["po"]
    return par["p"], par["p"]


def _requant(role: str, rq: dict, po: int) -> list[Memory]:
    n = len(rq["multiplier"])
    f = po if n > 1 else 1
    zps = rq["in_zero_point"]
    n_zp = len(zps) if isinstance(zps, list) else 1
    return [Memory(f"{role}_mult", PARAM_BITS, n, f), Memory(f"{role}_shift", PARAM_BITS, n, f),
            Memory(f"{role}_inzp", PARAM_BITS, n_zp, po if n_zp > 1 else 1)]


def module_memories(spec: dict, par: dict) -> list[Memory]:
    """Every memory module ``spec`` declares at parallelism ``par``: its ROMs (sizes from the spec's
    ``weight_count``/``bias_count``), line buffer and occupancy map, accumulators, and the FIFOs
    it writes (``fanout``: one per stream the generated top declares for its output)."""
    kind = spec["kind"]
    cin, h_in, w_in = spec["in_shape"]
    cout = spec["out_shape"][0]
    pi, po = lanes(spec, par)
    mems = [Memory("bg", PARAM_BITS, cout, 1)]
    if kind in ("conv", "pointwise", "depthwise", "fc"):
        taps = spec["kernel"] ** 2 if kind != "fc" else 1
        per_beat = taps * (po if kind == "depthwise" else pi * po)
        mems.append(Memory("w", FEATURE_BITS, spec["weight_count"], per_beat))
        n_wzp = len(spec["weight_zero_point"])
        mems.append(Memory("wzp", PARAM_BITS, n_wzp, po if n_wzp > 1 else 1))
        if spec.get("bias_count"):
            mems.append(Memory("b", PARAM_BITS, spec["bias_count"], po))
        mems += _requant("rq", spec["requant"], po)
    if has_line_buffer(spec):
        rows = window_rows(spec)
        mems.append(Memory("lb", FEATURE_BITS, rows * w_in * cin, pi))
        mems.append(Memory("occ", 1, rows * w_in, 1))
    if kind == "fc":  # the densified input map (one site after a global pool)
        mems.append(Memory("map", FEATURE_BITS, cin * h_in * w_in, pi))
    if kind == "gpool":
        mems.append(Memory("acc", GPOOL_ACC_BITS, cout, po))
    if kind == "add":
        mems += _requant("rqa", spec["requant_lhs"], po) + _requant("rqb", spec["requant_rhs"], po)
        mems += _requant("rq", spec["requant"], po)
    if kind == "concat":
        for i, rq in enumerate(spec["rescale"]):
            if rq is not None:
                mems += _requant(f"rs{i}", rq, po)
    for i, fifo in enumerate(spec.get("fanout", [])):
        mems.append(Memory(f"fifo{i}", token_bits(cout), 0, 1, fifo["depth"]))
    return mems


def memory_cost(mems: list[Memory]) -> tuple[int, int]:
    """(BRAM18, LUTs) of a module's memories."""
    bram = lut = 0
    for m in mems:
        b, l = m.cost()
        bram, lut = bram + b, lut + l
    return bram, lut
