"""The overlay's instruction set as data: one table from which the encoder, decoder, assembler,
disassembler, simulator dispatch and docs/isa.md are all derived.

Every instruction is one 64-bit little-endian word: bits [63:58] hold the opcode, the fields
follow from bit 57 downwards in the order listed (MSB first), unused low bits are zero.  Field
kinds: ``u`` unsigned, ``s`` two's-complement signed, ``enum`` an unsigned index into the
field's names.

Instructions read their operand geometry from 32-bit configuration registers written by SETR
(TATAA's CONFIG instruction; VTA's loop registers), so a word only carries what changes most
often: addresses.  All SRAM addresses are byte addresses inside one on-chip buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

from tcc.ir.numerics import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN

WORD_BITS = 64
OPCODE_BITS = 6

BUFFERS = ("abuf", "wbuf", "acc", "pbuf", "vbuf")  # on-chip scratchpads, indexed by buffer id
# The decoupled units of the cycle model (simulator/timing.py) that run timed instructions; the first
# three are also the bits of sync's wait mask.  Instructions of unit "front" only take an issue
# slot (setr, nop) or stall issue (sync, halt).
UNITS = ("load", "compute", "store", "post")


@dataclass(frozen=True)
class Field:
    name: str
    bits: int
    kind: str = "u"  # "u", "s", "enum" (names in ``values``), "reg" (register index, names in REGISTERS)
    values: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Instr:
    mnemonic: str
    opcode: int
    fields: tuple[Field, ...]
    unit: str  # one of UNITS, or "front"
    doc: str

    @property
    def used_bits(self) -> int:
        return OPCODE_BITS + sum(f.bits for f in self.fields)


SRAM_ADDRESS_BITS = 24  # every SRAM byte address field (and so every on-chip buffer's size limit)
DRAM_ADDRESS_BITS = 31

# The values a configuration register takes, by what it holds (the middle column of REGISTERS).
# The encoder checks them, so the assembler, the decoder and every program the compiler emits do.
VALUE_RANGES: dict[str, tuple[int, int]] = {
    "sram": (0, 2**SRAM_ADDRESS_BITS - 1),  # a byte address inside one on-chip buffer
    "extent": (0, 2**SRAM_ADDRESS_BITS),  # rows, columns, elements or bytes that fit one buffer
    "stride": (-(2**SRAM_ADDRESS_BITS), 2**SRAM_ADDRESS_BITS),  # a step inside one buffer
    "offset": (-(2**SRAM_ADDRESS_BITS), 2**SRAM_ADDRESS_BITS),  # padding (negative: rows to skip)
    "dram_stride": (-(2**DRAM_ADDRESS_BITS - 1), 2**DRAM_ADDRESS_BITS - 1),  # a step inside DRAM
    "index": (0, 2**31 - 1),  # a layer id or table length
    "int8": (INT8_MIN, INT8_MAX),  # zero points and saturation bounds of int8 data
    "int32": (INT32_MIN, INT32_MAX),  # saturation bounds of int32 results
    "bits32": (INT32_MIN, INT32_MAX),  # a float32 bit pattern
    "q31": (0, INT32_MAX),  # a dyadic multiplier (numerics.quantize_multiplier)
    "shift": (0, 63),  # its right shift (numerics.rounding_right_shift takes 0..63)
    "pre_shift": (0, 62),  # a left shift of int64 values before the multiplier
    "flag": (0, 1),
    "bf16": (0, 0xFFFF),  # a bf16 bit pattern
    "count": (1, 2**SRAM_ADDRESS_BITS),  # a repeat count or period of at least one element
}

# Configuration registers (index: name, value range, meaning).  Registers keep their value until rewritten.
REGISTERS: tuple[tuple[str, str, str], ...] = (
    # DMA shape: a 3-D box of planes x rows x row_bytes, with independent strides on each side.
    ("dma.planes", "extent", "number of planes moved by LOAD/STORE"),
    ("dma.rows", "extent", "rows per plane"),
    ("dma.row_bytes", "extent", "contiguous bytes per row"),
    ("dma.dram_row", "dram_stride", "DRAM stride between rows (bytes)"),
    ("dma.dram_plane", "dram_stride", "DRAM stride between planes (bytes)"),
    ("dma.sram_row", "stride", "SRAM stride between rows (bytes)"),
    ("dma.sram_plane", "stride", "SRAM stride between planes (bytes)"),
    # Matrix unit.  GEMM: A is M x K int8 rows at mm.a with row stride mm.a_row.
    # CONV / DWCONV / GCONV: A is gathered (im2col) from an NHWC int8 slab in abuf at mm.a.
    ("mm.a", "sram", "abuf byte address of the A operand (matrix rows or conv input slab)"),
    ("mm.a_row", "stride", "GEMM: abuf stride between rows of A (bytes)"),
    ("mm.m", "extent", "rows of the output tile (output pixels)"),
    ("mm.n", "extent", "columns of the output tile (output channels)"),
    ("mm.k", "extent", "reduction depth (GEMM/CONV: K; DWCONV: taps per channel; GCONV: taps x cv.cg)"),
    ("mm.a_zp", "int8", "zero point subtracted from every A element (also the padding value)"),
    ("mm.w_row", "stride", "wbuf stride between weight rows (bytes): weights are N rows of K codes, each row packed"),
    ("mm.acc_row", "stride", "acc stride between output rows (int32 elements)"),
    ("cv.h", "extent", "slab rows (input rows present in abuf)"),
    ("cv.w", "extent", "slab columns (input width)"),
    ("cv.c", "extent", "slab channels (NHWC innermost extent)"),
    ("cv.kh", "extent", "kernel height"),
    ("cv.kw", "extent", "kernel width"),
    ("cv.sh", "extent", "stride in rows"),
    ("cv.sw", "extent", "stride in columns"),
    ("cv.dh", "extent", "dilation in rows"),
    ("cv.dw", "extent", "dilation in columns"),
    ("cv.pad_top", "offset", "padding rows above the slab's first row (may be negative: rows to skip)"),
    ("cv.pad_left", "offset", "padding columns left of the slab"),
    ("cv.w_out", "extent", "output columns; output pixel m is (m // w_out, m % w_out)"),
    ("cv.c0", "extent", "first slab channel read (group offset for grouped convolution)"),
    ("cv.cg", "extent", "GCONV: slab channels per group (each output channel's reduction reads cv.cg channels)"),
    ("cv.ng", "extent", "GCONV: output channels per group (output channel n belongs to group n // cv.ng)"),
    # Requantization unit (store path of the accumulators, and int8 -> int8 rescales).
    ("rq.params", "sram", "pbuf byte address of per-channel (bias, multiplier, shift) int32 triples"),
    ("rq.m", "extent", "rows"),
    ("rq.n", "extent", "columns (channels)"),
    ("rq.src_row", "stride", "source stride between rows (elements)"),
    ("rq.dst_row", "stride", "destination stride between rows (elements)"),
    ("rq.src_zp", "int8", "zero point subtracted from an int8 source"),
    ("rq.pre_shift", "pre_shift", "left shift applied before the multiplier"),
    ("rq.zp", "int8", "output zero point"),
    ("rq.qmin", "int32", "saturation low bound"),
    ("rq.qmax", "int32", "saturation high bound"),
    # Pooling: NHWC slab geometry from cv.*; kernel in cv.kh/kw, strides cv.sh/sw.
    ("pl.zp", "int8", "zero point of input and output (average pooling)"),
    ("pl.h_out", "extent", "output rows"),
    ("pl.pad_bottom", "offset", "padding rows below the slab"),
    ("pl.pad_right", "offset", "padding columns right of the slab"),
    ("pl.count_pad", "flag", "1: average divisor counts padding"),
    # Element-wise add of two int8 tensors with different scales (TFLite form, exact).
    ("ea.b", "sram", "abuf address of the second operand"),
    ("ea.len", "extent", "elements"),
    ("ea.a_zp", "int8", "zero point of a"),
    ("ea.b_zp", "int8", "zero point of b"),
    ("ea.a_mult", "q31", "Q31 multiplier of a onto the common grid"),
    ("ea.a_shift", "shift", "shift of a"),
    ("ea.b_mult", "q31", "Q31 multiplier of b"),
    ("ea.b_shift", "shift", "shift of b"),
    ("ea.pre_shift", "pre_shift", "left shift of both inputs before their multipliers (20)"),
    ("ea.out_mult", "q31", "Q31 multiplier of the sum onto the output grid"),
    ("ea.out_shift", "shift", "shift of the sum"),
    ("ea.zp", "int8", "output zero point"),
    ("ea.qmin", "int8", "saturation low bound"),
    ("ea.qmax", "int8", "saturation high bound"),
    # Strided copy inside abuf (layout changes, concatenation, slicing, padding).
    ("cp.n0", "extent", "extent of the outermost dimension"),
    ("cp.n1", "extent", "extent of dimension 1"),
    ("cp.n2", "extent", "extent of dimension 2"),
    ("cp.n3", "extent", "extent of the innermost dimension"),
    ("cp.s0", "stride", "source stride of dimension 0 (bytes)"),
    ("cp.s1", "stride", "source stride of dimension 1"),
    ("cp.s2", "stride", "source stride of dimension 2"),
    ("cp.s3", "stride", "source stride of dimension 3"),
    ("cp.d0", "stride", "destination stride of dimension 0 (bytes)"),
    ("cp.d1", "stride", "destination stride of dimension 1"),
    ("cp.d2", "stride", "destination stride of dimension 2"),
    ("cp.d3", "stride", "destination stride of dimension 3"),
    ("cp.elem", "extent", "element size in bytes (1 int8, 2 bf16, 4 int32)"),
    # bf16 SIMD mode.
    ("v.len", "extent", "elements of the vector operation"),
    ("v.b", "sram", "VBIN/VFMA/VSEL: vbuf address of vector operand B"),
    ("v.scale", "bits32", "CVT: quantization scale as float32 bits"),
    ("v.zp", "int8", "CVT: zero point"),
    ("v.row", "count", "VRED: elements per reduced row (v.len is a multiple of it)"),
    # System.
    ("sys.layer", "index", "layer id that performance counters attribute cycles to"),
    # Average pooling onto the output scale (appended so earlier register indices stay stable).
    ("pl.mult", "q31", "average pooling: Q31 multiplier of s_in / s_out"),
    ("pl.shift", "shift", "average pooling: shift of that multiplier"),
    ("pl.out_zp", "int8", "average pooling: output zero point"),
    # Table lookup by DMA (embedding rows chosen by token ids).
    ("lk.index", "sram", "LOOKUP: pbuf byte address of the int64 little-endian row indices"),
    ("lk.count", "extent", "LOOKUP: rows looked up"),
    ("lk.rows", "index", "LOOKUP: rows in the table; an index outside [-lk.rows, lk.rows) traps"),
    # Element-wise product of two int8 tensors, b broadcast by a repeat/period pattern (EMUL).
    ("em.b_rep", "extent", "EMUL: consecutive elements of a that share one element of b (>= 1)"),
    ("em.b_period", "extent", "EMUL: elements of b read cyclically (>= 1)"),
    ("em.b_phase", "extent", "EMUL: element index offset of a's first element in the pattern (>= 0)"),
    # Table lookup of int8 elements (LUT).
    ("lt.table", "sram", "LUT: pbuf byte address of the 256-entry int8 table"),
    ("lt.len", "extent", "LUT: elements"),
    # bf16 vector operands (VBIN/VFMA/VSEL): element i of a vector operand B is
    # vbuf[v.b + 2 * ((i // v.b_rep) % v.b_period)] -- a full vector (1, v.len), one value per row
    # (row length, rows) or per column (1, row length): broadcasting is operand addressing.
    ("v.b_rep", "count", "consecutive elements that share one element of vector operand B"),
    ("v.b_period", "count", "elements of vector operand B read cyclically"),
    ("v.c", "sram", "VFMA/VSEL: vbuf address of vector operand C"),
    ("v.c_rep", "count", "consecutive elements that share one element of vector operand C"),
    ("v.c_period", "count", "elements of vector operand C read cyclically"),
    ("v.k0", "bf16", "bf16 constant register 0 (operand selector k0)"),
    ("v.k1", "bf16", "bf16 constant register 1"),
    ("v.k2", "bf16", "bf16 constant register 2"),
    ("v.k3", "bf16", "bf16 constant register 3"),
    ("v.k4", "bf16", "bf16 constant register 4"),
    ("v.k5", "bf16", "bf16 constant register 5"),
    ("v.k6", "bf16", "bf16 constant register 6"),
    ("v.k7", "bf16", "bf16 constant register 7"),
    # Per-row power-of-two scales (numerics/row_scale.py), appended so earlier indices stay stable.
    ("v.shifts", "sram", "CVT bf16_i8_rows: abuf byte address of the row shifts written (one int8 per v.row elements)"),
    ("rq.by_row", "flag", "REQUANT: 1 adds each row's shift (int8 at rq.row_shift + row) to its channel's shift"),
    ("rq.row_shift", "sram", "REQUANT with rq.by_row: pbuf byte address of the rq.m row shifts"),
    # Per-row DyBit caps (matmul wcap = 7): one byte per weight row, beside the requantization triples.
    ("mm.wcaps", "sram", "MATMUL with wcap = 7: pbuf byte address of the weight rows' caps (row n's at + n)"),
)
REGISTER_INDEX = {name: i for i, (name, _, _) in enumerate(REGISTERS)}
REGISTER_RANGE = {name: VALUE_RANGES[kind] for name, kind, _ in REGISTERS}

_A24 = SRAM_ADDRESS_BITS

# The matrix unit's weight formats (matmul's ``wfmt`` field; code tables in tcc.ir.numerics.weight_format,
# the PE model in isa/weights.py).  A row of K codes of b bits is packed from bit 0 of its first
# byte upwards (code j in bits [j*b, (j+1)*b), little-endian bit order) and padded to whole bytes.
WEIGHT_FORMATS = ("int8", "int16", "int4", "int2") + tuple(f"dybit{n}" for n in range(2, 9))


def _addr(name: str, doc: str) -> Field:
    return Field(name, _A24, "u", doc=doc)


# bf16 vector instructions.  An operand selector picks a vector in vbuf (addressed by the v.b or
# v.c registers, with their broadcast pattern) or one of the eight bf16 constant registers.
OPERAND_SOURCES = ("vec",) + tuple(f"k{i}" for i in range(8))
VBIN_OPS = ("add", "sub", "rsub", "mul", "max", "min", "and", "or", "xor", "iadd", "isub", "irsub",
            "lt", "le", "gt", "ge", "eq")
VUN_OPS = ("shl", "shr", "rint", "ftoi", "itof")
VRED_OPS = ("sum", "max")


def _source(name: str, doc: str) -> Field:
    return Field(name, 4, "enum", OPERAND_SOURCES, doc)


INSTRUCTIONS: tuple[Instr, ...] = (
    Instr("nop", 0x00, (), "front", "Do nothing for one issue cycle."),
    Instr("halt", 0x01, (), "front", "Wait for every unit to drain, then stop."),
    Instr("setr", 0x02, (Field("reg", 8, "reg", doc="register"), Field("value", 32, "s", doc="new value")),
          "front", "Write a 32-bit configuration register."),
    Instr("load", 0x03, (Field("buf", 3, "enum", BUFFERS, "destination buffer"),
                         _addr("sram", "destination byte address"),
                         Field("dram", DRAM_ADDRESS_BITS, "u", doc="source DRAM byte address")),
          "load", "DMA a dma.planes x dma.rows x dma.row_bytes box from DRAM into a buffer."),
    Instr("store", 0x04, (Field("buf", 3, "enum", BUFFERS, "source buffer"),
                          _addr("sram", "source byte address"),
                          Field("dram", DRAM_ADDRESS_BITS, "u", doc="destination DRAM byte address")),
          "store", "DMA a box from a buffer to DRAM (shape as for load)."),
    Instr("matmul", 0x05, (Field("mode", 2, "enum", ("gemm", "conv", "dwconv", "gconv"), "A operand form"),
                           Field("accumulate", 1, "u", doc="1: add to acc, 0: overwrite"),
                           Field("wfmt", 4, "enum", WEIGHT_FORMATS, "weight format of the codes in wbuf"),
                           Field("wcap", 3, "u", doc="DyBit: exponent-run cap (0..bits-1), or 7 for dybit2..7: "
                                                        "each row's cap is the byte at pbuf[mm.wcaps + row]; 0 for intN"),
                           _addr("acc", "acc byte address of the int32 output tile"),
                           _addr("w", "wbuf byte address of the weights (N rows of K)")),
          "compute", "acc[m, n] (+)= sum_k (A[m, k] - mm.a_zp) * W[n, k] on the systolic array; W[n, k] is the "
                     "value of code k of the packed row n (wfmt, wcap) at w + n * mm.w_row."),
    Instr("requant", 0x06, (Field("src", 2, "enum", ("acc", "abuf"), "source buffer"),
                            Field("out", 1, "enum", ("i8", "i32"), "output element type"),
                            Field("rounding", 1, "enum", ("half_even", "half_up")),
                            _addr("dst", "abuf byte address of the output"),
                            _addr("srcaddr", "source byte address")),
          "post", "dst = clamp(round((((src - rq.src_zp) << rq.pre_shift) + bias[c]) * mult[c] >> shift[c])"
                    " + rq.zp, rq.qmin, rq.qmax) per channel, parameters from pbuf at rq.params; with rq.by_row, row m "
                    "shifts rq.row_shift[m] bits more (its A rows had power-of-two scales, cvt bf16_i8_rows)."),
    Instr("pool", 0x07, (Field("mode", 2, "enum", ("max", "avg")),
                         _addr("dst", "abuf byte address of the NHWC output"),
                         _addr("src", "abuf byte address of the NHWC input slab")),
          "post", "Max or average pooling over an NHWC slab (geometry cv.*, pl.*)."),
    Instr("eadd", 0x08, (Field("op", 1, "enum", ("add", "sub")), Field("rounding", 1, "enum", ("half_even", "half_up")),
                         _addr("dst", "abuf byte address of the output"),
                         _addr("a", "abuf byte address of the first operand")),
          "post", "Exact int8 add/sub of two differently scaled tensors (ea.*)."),
    Instr("copy", 0x09, (Field("buf", 3, "enum", BUFFERS), _addr("dst", "destination byte address"),
                         _addr("src", "source byte address")),
          "post", "4-D strided copy inside one buffer (cp.*)."),
    Instr("mode", 0x0A, (Field("to", 1, "enum", ("int8", "bf16")),),
          "compute", "Reconfigure the PE array: int8 systolic mode or bf16 SIMD lanes (costs mode_switch cycles)."),
    Instr("cvt", 0x0B, (Field("dir", 3, "enum", ("i8_bf16", "bf16_i8", "bf16_f32", "bf16_i8_rows", "i32_bf16")),
                        _addr("dst", "destination byte address"), _addr("src", "source byte address")),
          "compute", "Convert v.len elements between abuf int8 (v.scale, v.zp) and vbuf bf16; bf16_i8_rows "
                     "gives each row of v.row elements a power-of-two scale v.scale * 2**-r (r: the most "
                     "doublings the row takes without saturating, numerics/row_scale.py) and writes r to "
                     "abuf at v.shifts + row; it reduces each row to its max and min first.  i32_bf16 reads abuf int32 "
                     "(accumulators stored by requant ... i32) and converts (q - v.zp) * v.scale once to bf16."),
    Instr("vbin", 0x0C, (Field("op", 5, "enum", VBIN_OPS, "operation"), _source("b", "operand B"),
                         _addr("dst", "vbuf byte address of the result"), _addr("a", "vbuf byte address of operand A")),
          "compute", "dst[i] = A[i] op B[i] for i < v.len on bf16 lanes: add/sub/mul rounded once to bf16 (RNE), "
                     "rsub B - A, max/min (NaN if either is NaN), and/or/xor and iadd/isub/irsub (modulo 2**16) on "
                     "the bit patterns, lt/le/gt/ge/eq IEEE comparisons giving 0xFFFF or 0."),
    Instr("vfma", 0x12, (_source("b", "operand B"), _source("c", "operand C"),
                         _addr("dst", "vbuf byte address of the result"), _addr("a", "vbuf byte address of operand A")),
          "compute", "dst[i] = round(round(A[i] * B[i]) + C[i]) for i < v.len: the lane's multiply-add."),
    Instr("vsel", 0x13, (_source("b", "operand B"), _source("c", "operand C"),
                         _addr("dst", "vbuf byte address of the result"), _addr("mask", "vbuf byte address of the mask")),
          "compute", "dst[i] = B[i] if mask[i] != 0 else C[i] for i < v.len."),
    Instr("vun", 0x14, (Field("op", 3, "enum", VUN_OPS, "operation"), Field("amount", 4, "u", doc="shift amount"),
                        _addr("dst", "vbuf byte address of the result"), _addr("a", "vbuf byte address of operand A")),
          "compute", "dst[i] = f(A[i]) for i < v.len: shl/shr (logical, by amount) of the bit pattern, rint (to an "
                     "integral value, ties to even), ftoi (int16 of rint, saturating, NaN 0), itof (int16 to bf16)."),
    Instr("vred", 0x15, (Field("op", 1, "enum", VRED_OPS, "operation"),
                         _addr("dst", "vbuf byte address of the v.len / v.row results"),
                         _addr("a", "vbuf byte address of the v.len inputs")),
          "compute", "Reduce each row of v.row elements to one bf16 value by a pairwise tree (neighbours at each "
                     "level, an odd last element passes up): sum (each add rounded) or max."),
    Instr("vlut", 0x16, (_addr("dst", "vbuf byte address of the result"), _addr("a", "vbuf byte address of operand A")),
          "compute", "dst[i] = T[A[i] & 0xFF] for i < v.len: a 256-entry table of 16-bit patterns at vbuf v.b, indexed "
                     "by the low byte of each lane's pattern (the table is copied into every lane's own table first)."),
    Instr("lookup", 0x0E, (Field("buf", 3, "enum", BUFFERS, "destination buffer"),
                           _addr("sram", "destination byte address of the first row"),
                           Field("dram", DRAM_ADDRESS_BITS, "u", doc="DRAM byte address of table row 0")),
          "load", "DMA lk.count table rows chosen by the int64 indices at pbuf lk.index (negative ones count "
                  "from the end): row j (dma.row_bytes bytes at dram + j*dma.dram_row) to sram + i*dma.sram_row."),
    Instr("emul", 0x0F, (Field("rounding", 1, "enum", ("half_even", "half_up")),
                         _addr("dst", "abuf byte address of the output"),
                         _addr("a", "abuf byte address of the first operand")),
          "post", "int8 product with b broadcast: for i < ea.len, j = ((i + em.b_phase) // em.b_rep) % em.b_period, "
                    "dst[i] = clamp(round((a[i] - ea.a_zp) * (b[j] - ea.b_zp) * ea.out_mult / 2**ea.out_shift) + ea.zp, "
                    "ea.qmin, ea.qmax), b at abuf ea.b."),
    Instr("lut", 0x10, (_addr("dst", "abuf byte address of the output"), _addr("src", "abuf byte address of the input")),
          "post", "dst[i] = table[src[i] + 128] for i < lt.len: an int8 -> int8 function tabulated in pbuf at lt.table."),
    Instr("sync", 0x0D, (Field("wait", 3, "u", doc="bit mask of units to wait for: 1 load, 2 compute and post, 4 store"),),
          "front", "Stall issue until the named units are idle."),
    Instr("barrier", 0x11, (), "front",
          "Drain every unit, then wait until every core has reached its barrier of the same count "
          "(each core runs its own instruction stream; target cores)."),
)

BY_MNEMONIC = {i.mnemonic: i for i in INSTRUCTIONS}


def _check_table() -> None:
    seen = set()
    for instr in INSTRUCTIONS:
        if instr.opcode in seen or not 0 <= instr.opcode < 2 ** OPCODE_BITS:
            raise ValueError(f"bad or duplicate opcode for {instr.mnemonic}")
        seen.add(instr.opcode)
        if instr.used_bits > WORD_BITS:
            raise ValueError(f"{instr.mnemonic} needs {instr.used_bits} bits")
        if instr.unit not in UNITS + ("front",):
            raise ValueError(f"{instr.mnemonic}: unknown unit {instr.unit!r}")
    if len(REGISTERS) > 256:
        raise ValueError("more than 256 registers")


_check_table()
