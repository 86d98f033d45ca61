"""The simulator's C kernels (isa/simulator/native.c) against the spec module ir/numerics at the
extremes: every rounding mode, ties, saturation, the largest multipliers and shifts, pre_shift,
zero points, row shifts, int8 and int32 on either side; and where the spec refuses, the kernel
refuses (the simulator then runs the numpy path, which raises the spec's error)."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from tcc.ir import numerics
from tcc.ir.numerics import (INT32_MAX, INT32_MIN, ROUNDING_MODES, ROW_SHIFT_MAX, centre_and_shift, from_bf16,
                             requantize, row_shifted, to_bf16)
from tcc.ir.numerics.bf16 import round32_bits
from tcc.isa.simulator import native

kernels = native.kernels()
pytestmark = pytest.mark.skipif(kernels is None, reason=f"the simulator runs {native.status()}")

# int32 accumulators: the edges, ties of small shifts (3/2, 5/2, 6/4), and ordinary values
X = np.array([0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 2**15, -(2**15), INT32_MAX, INT32_MIN, INT32_MAX - 1,
              INT32_MIN + 1, 12345678, -7654321], np.int64)
MULTIPLIERS = (0, 1, 3, 2**30, 2**30 + 1, 2**31 - 1)
SHIFTS = (0, 1, 2, 30, 31, 32, 61, 62, 63, 64, 100, INT32_MAX)
BIASES = (0, 1, -1, 2**20, INT32_MAX, INT32_MIN)
CHANNELS = np.array(list(itertools.product(BIASES, MULTIPLIERS, SHIFTS)), np.int64)  # (bias, multiplier, shift)
RANGES = ((-128, 127), (0, 127), (-128, -128), (INT32_MIN, INT32_MAX), (-5, 1000))
_PRODUCT_MAX = 2**62 - 1


def spec(x, channels, src_zp, pre_shift, zp, qmin, qmax, mode, row_shift=None):
    """The requantization unit's stage by the spec module: centre_and_shift, bias, requantize."""
    bias, mult, shift = channels.T
    v = centre_and_shift(x, src_zp, pre_shift, int(np.abs(bias).max())) + bias
    if row_shift is not None:
        shift = row_shifted(shift, row_shift)
    return requantize(v, mult, shift, zp, qmin, qmax, mode, out_dtype=np.int64)


def run(x, channels, src_zp, pre_shift, zp, qmin, qmax, mode, row_shift=None, in_dtype=np.int32):
    """The C kernel on x (rows, channels): its result, or None where it refuses."""
    out = np.empty(x.shape, np.int8 if -128 <= qmin <= qmax <= 127 else np.int32)
    block = channels.astype(np.int32)
    assert (block == channels).all()
    done = kernels.requant(x.astype(in_dtype), out, native.requant_parameters(block), src_zp,
                           pre_shift, zp, qmin, qmax, ROUNDING_MODES.index(mode),
                           None if row_shift is None else np.asarray(row_shift, np.int8), ROW_SHIFT_MAX)
    return out.astype(np.int64) if done else None


def fitting(x, src_zp, pre_shift):
    """The rows of x and the channels of CHANNELS the spec accepts together (|v * multiplier| < 2**62)."""
    d = x - src_zp
    largest_bias = int(np.abs(CHANNELS[:, 0]).max())
    rows = x[(np.abs(d).astype(object) << pre_shift) + largest_bias < 2**62]
    v = ((rows[:, None] - src_zp) << pre_shift) + CHANNELS[None, :, 0]
    ok = (np.abs(v).astype(object) * CHANNELS[None, :, 1].astype(object) <= _PRODUCT_MAX).all(axis=0)
    return rows, CHANNELS[ok], CHANNELS[~ok]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_requant_matches_the_spec_at_the_extremes(mode):
    for pre_shift, src_zp in itertools.product((0, 1, 8, 30), (0, -128, 127, INT32_MIN)):
        rows, channels, refused = fitting(X, src_zp, pre_shift)
        assert len(rows) and len(channels)
        x = np.broadcast_to(rows[:, None], (len(rows), len(channels)))
        for (qmin, qmax), zp in itertools.product(RANGES, (0, -128, 127, INT32_MIN, INT32_MAX)):
            want = spec(x, channels, src_zp, pre_shift, zp, qmin, qmax, mode)
            assert run(x, channels, src_zp, pre_shift, zp, qmin, qmax, mode).tolist() == want.tolist(), \
                (pre_shift, src_zp, qmin, qmax, zp)
        if len(refused):  # a channel whose |v * multiplier| reaches 2**62 on some row: both refuse
            x = np.broadcast_to(rows[:, None], (len(rows), len(refused)))
            with pytest.raises(ValueError):
                spec(x, refused, src_zp, pre_shift, 0, -128, 127, mode)
            assert run(x, refused, src_zp, pre_shift, 0, -128, 127, mode) is None


def test_requant_refuses_where_the_spec_does():
    channels = np.array([[0, 2**30, 31]], np.int64)
    x = np.array([[INT32_MAX], [INT32_MIN]], np.int64)
    for pre_shift in (31, 40, 62, 63, -1):  # (|x - zp| << pre_shift) + |bias| reaches 2**62, or out of [0, 62]
        with pytest.raises(ValueError):
            spec(x, channels, 0, pre_shift, 0, -128, 127, "half_even")
        assert run(x, channels, 0, pre_shift, 0, -128, 127, "half_even") is None
    for bad in ([[0, -1, 3]], [[0, 5, -1]]):  # a negative multiplier or shift
        with pytest.raises(ValueError):
            spec(x, np.array(bad, np.int64), 0, 0, 0, -128, 127, "half_even")
        assert run(x, np.array(bad, np.int64), 0, 0, 0, -128, 127, "half_even") is None
    assert run(x, channels, 0, 0, 0, 127, -128, "half_even") is None  # qmin > qmax


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_requant_with_row_shifts_and_int8_input(mode):
    rng = np.random.default_rng(7)
    channels = np.array([[b, m, s] for b, m, s in itertools.product((0, -100, 100), (1, 2**30 + 1, 2**31 - 1),
                                                                     (0, 1, 20, 48, 60))], np.int64)
    x = rng.integers(-2**20, 2**20, (ROW_SHIFT_MAX + 1, len(channels)))
    x[:2] = [[3], [-5]]  # ties
    shifts = np.arange(ROW_SHIFT_MAX + 1)
    want = spec(x, channels, 7, 2, 3, -128, 127, mode, shifts)
    assert run(x, channels, 7, 2, 3, -128, 127, mode, shifts).tolist() == want.tolist()
    for outside in (-1, ROW_SHIFT_MAX + 1):
        with pytest.raises(ValueError):
            row_shifted(channels[:, 2], np.array([outside]))
        assert run(x[:1], channels, 7, 2, 3, -128, 127, mode, [outside]) is None
    codes = np.broadcast_to(np.arange(-128, 128)[:, None], (256, len(channels)))  # every int8 value
    for src_zp, pre_shift in ((0, 0), (-128, 5), (127, 20)):
        want = spec(codes, channels, src_zp, pre_shift, -1, INT32_MIN, INT32_MAX, mode)
        assert run(codes, channels, src_zp, pre_shift, -1, INT32_MIN, INT32_MAX, mode,
                   in_dtype=np.int8).tolist() == want.tolist()


def test_requant_on_strided_views_and_batches():
    """The simulator's views: a batch axis, rows at a stride, a transposed single channel."""
    rng = np.random.default_rng(1)
    channels = np.array([[5, 2**30 + 7, 33], [-9, 2**31 - 1, 40], [0, 12345, 10]], np.int64)
    memory = rng.integers(-2**31, 2**31, (2, 9, 5)).astype(np.int32)
    x = memory[:, ::2, 1:4]  # (2, 5, 3), non-contiguous rows and channels
    out = np.zeros((2, 5, 6), np.int8)[:, :, ::2]
    assert kernels.requant(x, out, native.requant_parameters(channels.astype(np.int32)), 0, 0, 0, -128, 127, 0,
                           None, ROW_SHIFT_MAX)
    assert out.tolist() == spec(x.astype(np.int64), channels, 0, 0, 0, -128, 127, "half_even").tolist()
    column = memory[0, :, :1]  # one channel's rows as the kernel's lanes
    lanes = np.empty((1, 9), np.int32)
    assert kernels.requant(column.T, lanes, native.requant_parameters(channels[:1].astype(np.int32)), 0, 0,
                           3, INT32_MIN, INT32_MAX, 1, None, ROW_SHIFT_MAX)
    assert lanes.T.tolist() == spec(column.astype(np.int64), channels[:1], 0, 0, 3, INT32_MIN, INT32_MAX,
                                    "half_up").tolist()


def test_the_switch_turns_the_kernels_off():
    code = "from tcc.isa.simulator import native; print(native.kernels() is not None, native.status())"
    env = dict(os.environ)
    for switch, expected in (("1", "True C kernels"), ("0", "False numpy (TCC_SIM_NATIVE=0)")):
        env["TCC_SIM_NATIVE"] = switch
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


# -- bf16 lanes: every pattern against the special ones, by the spec (numerics.bf16_*) -------------

PATTERNS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
# zeros, subnormals, the normal edge, ones and their neighbours, the largest, infinities, NaNs
SPECIAL = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x0100, 0x3F80, 0xBF80, 0x3F81, 0x3400,
                    0x4000, 0x7F7F, 0xFF7F, 0x7F00, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81], np.uint16)


def bits(values) -> list:
    return to_bf16(np.asarray(values, np.float32)).tolist()


COMPARISONS = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal}


@pytest.mark.parametrize("op, rule", [(0, "bf16_add"), (1, "bf16_sub"), (2, "rsub"), (3, "bf16_mul"), (5, "bf16_max"),
                                      (6, "bf16_min"), (7, "lt"), (8, "le"), (9, "gt"), (10, "ge"), (11, "eq")])
def test_lanes_match_the_spec_on_every_pattern(op, rule):
    rng = np.random.default_rng(op)
    b_set = np.concatenate([SPECIAL, rng.integers(0, 1 << 16, 12).astype(np.uint16)])
    a = np.tile(PATTERNS, (len(b_set), 1))
    b = np.broadcast_to(b_set[:, None], a.shape)
    out = np.empty(a.shape, np.uint16)
    kernels.lanes(op, out, a, b)
    x, y = from_bf16(a), from_bf16(b)
    if rule in COMPARISONS:  # the lane mask: all ones where true (never for a NaN)
        assert out.tolist() == np.where(COMPARISONS[rule](x, y), 0xFFFF, 0).tolist()
    else:
        want = numerics.bf16_sub(y, x) if rule == "rsub" else getattr(numerics, rule)(x, y)
        assert out.tolist() == bits(want)
    row = np.empty(len(PATTERNS), np.uint16)  # one row of B read by every row of A (a constant operand)
    kernels.lanes(op, out, a, b_set[3:4].repeat(len(PATTERNS)))
    kernels.lanes(op, row, a[0], b[3])
    assert out[0].tolist() == row.tolist()


def test_fma_rounds_the_product_then_the_sum_on_every_pattern():
    pairs = np.array(list(itertools.product(SPECIAL[::2], SPECIAL[1::3])), np.uint16)
    a = np.tile(PATTERNS, (len(pairs), 1))
    b, c = (np.broadcast_to(pairs[:, i, None], a.shape) for i in (0, 1))
    out = np.empty(a.shape, np.uint16)
    kernels.lanes(4, out, a, b, c)
    assert out.tolist() == bits(numerics.bf16_mul_add(from_bf16(a), from_bf16(b), from_bf16(c)))


def test_tree_sum_matches_the_spec_for_every_width():
    rng = np.random.default_rng(5)
    for width in (1, 2, 3, 5, 7, 8, 9, 64, 197):
        x = rng.choice(np.concatenate([SPECIAL, (rng.integers(0x3000, 0x4400, 64) | rng.integers(0, 2, 64) << 15)
                                       .astype(np.uint16)]), (40, width))
        x[:20] &= 0x7FFF  # rows of one sign: long sums that round at every level
        x[:20] = np.where((x[:20] & 0x7F80) == 0x7F80, 0x3F80, x[:20])
        out = np.empty(len(x), np.uint16)
        kernels.reduce_rows(0, out, x)
        assert out.tolist() == bits(numerics.bf16_sum(from_bf16(x), axis=-1)), width


def test_cvt_i32_matches_the_spec_and_refuses_where_it_does():
    q = np.array([0, 1, -1, 127, -128, 3, 2**29 - 1, -(2**29) + 1, 12345677, -7654321, 2**24 + 1, 2**28 + 3],
                 np.int32)
    scales = [1.0, -1.0, 1 / 3, 2.0**-130, 2.0**-149, 1e-30, 3.0e38, 2.0**120, 0.1, -0.0, np.inf, np.nan]
    for scale in np.array(scales, np.float32):
        with np.errstate(invalid="ignore"):  # 0 * inf
            want = to_bf16(numerics.int8_to_bf16(q, scale, 0)).tolist()
        out = np.empty(q.shape, np.uint16)
        assert kernels.cvt_i32(out, q, scale, 0)
        assert out.tolist() == want, scale
    out = np.empty(2, np.uint16)
    for zp in (-1, 1):  # |q - zp| reaches 2**29
        with pytest.raises(ValueError):
            numerics.int8_to_bf16(np.array([2**29 - 1, -(2**29) + 1], np.int32), 1.0, zp)
        assert not kernels.cvt_i32(out, np.array([2**29 - 1, -(2**29) + 1], np.int32), 1.0, zp)


def test_row_max_and_the_unary_lanes_match_the_spec():
    rng = np.random.default_rng(9)
    for width in (1, 2, 3, 8, 33):
        x = rng.choice(SPECIAL, (60, width))
        x[:10, 0] = 0x7FC1  # a lone non-canonical NaN
        out = np.empty(len(x), np.uint16)
        kernels.reduce_rows(1, out, x)
        want = from_bf16(x[:, 0])
        for i in range(1, width):
            want = numerics.bf16_max(want, from_bf16(x[:, i]))
        assert out.tolist() == bits(np.where(np.isnan(want), np.float32(np.nan), want)), width
    out = np.empty(len(PATTERNS), np.uint16)
    values = from_bf16(PATTERNS)
    with np.errstate(invalid="ignore"):
        rounded = np.rint(values)
        for op, want in ((12, round32_bits(rounded).tolist()),  # every NaN the canonical one
                         (13, np.where(np.isnan(rounded), 0, np.clip(rounded, -32768, 32767)).astype(np.int64)
                          .astype(np.uint16).tolist()),
                         (14, round32_bits(PATTERNS.view(np.int16).astype(np.float32)).tolist())):
            kernels.lanes(op, out, PATTERNS, PATTERNS)
            assert out.tolist() == want, op



# the integer lane rules, by Python integers on 16-bit lanes
INTEGER_RULES = {15: lambda a, b: a & b, 16: lambda a, b: a | b, 17: lambda a, b: a ^ b,
                 18: lambda a, b: (a + b) % 65536, 19: lambda a, b: (a - b) % 65536, 20: lambda a, b: (b - a) % 65536,
                 21: lambda a, b: (a << b) % 65536 if b < 16 else 0, 22: lambda a, b: a >> b if b < 16 else 0}


@pytest.mark.parametrize("op", sorted(INTEGER_RULES))
def test_integer_lanes_and_select_match_their_rules(op):
    rng = np.random.default_rng(op)
    b_set = [0, 1, 7, 15, 16, 17, 0x7FFF, 0x8000, 0xFFFF] + rng.integers(0, 1 << 16, 4).tolist()
    a = np.tile(PATTERNS, (len(b_set), 1))
    b = np.broadcast_to(np.array(b_set, np.uint16)[:, None], a.shape)
    out = np.empty(a.shape, np.uint16)
    kernels.lanes(op, out, a, b)
    rule = INTEGER_RULES[op]
    assert out.tolist() == [[rule(x, y) for x in range(1 << 16)] for y in b_set]
    mask = np.where(rng.integers(0, 2, a.shape[1]) == 1, rng.integers(1, 1 << 16, a.shape[1]), 0).astype(np.uint16)
    kernels.lanes(23, out[0], mask, a[0], out[1])  # sel: B where the mask is nonzero, else C
    assert out[0].tolist() == np.where(mask != 0, a[0], out[1]).tolist()

# -- the matrix unit's dwconv / gconv products: exact integer sums ----------------------------------

def reference_conv(slab, index, w, zp, cg, ng, pad):
    """sum over taps and a group's channels of (slab - zp) * w, in Python integers (object arrays)."""
    samples, _, channels = slab.shape
    padded = np.concatenate([slab.astype(object), np.full((samples, 1, channels), zp, object)], axis=1)
    windows = padded[:, np.where(index == pad, slab.shape[1], index)] - zp  # (samples, M, taps, channels)
    n_out = w.shape[1] if cg == ng == 1 else w.shape[0]
    out = np.empty((samples, index.shape[0], n_out), object)
    for n in range(n_out):
        if cg == ng == 1:
            out[..., n] = (windows[..., n] * w[:, n].astype(object)).sum(axis=-1)
        else:
            g = n // ng
            taps = windows[..., g * cg:(g + 1) * cg]  # (samples, M, taps, cg)
            out[..., n] = (taps * w[n].astype(object).reshape(-1, cg)).sum(axis=(-1, -2))
    return out.reshape(-1, n_out)


@pytest.mark.parametrize("cg, ng", [(1, 1), (3, 2), (8, 8), (171, 1)])
def test_conv_sums_exactly_at_the_extremes(cg, ng):
    rng = np.random.default_rng(cg)
    samples, pixels, M, taps, n_out = 2, 30, 7, 9, 4 if cg > 1 else 12
    channels = n_out if cg == 1 else -(-n_out // ng) * cg
    slab = rng.integers(-128, 128, (samples, pixels, channels)).astype(np.int8)
    slab[0, :5], slab[1, :5] = -128, 127  # the extremes against the largest weights
    index = rng.integers(0, pixels + 1, (M, taps))  # pixels: a padding position
    index[0] = np.arange(5)[:, None].repeat(2)[:taps] if taps <= 10 else index[0]
    index[1] = pixels
    for w_max in (127, 2**15 - 1):
        w = rng.integers(-w_max, w_max + 1, (taps, n_out) if cg == 1 else (n_out, taps * cg)).astype(np.int16)
        w.flat[:3] = [w_max, -w_max, w_max]
        for zp in (-128, 0, 127):
            want = reference_conv(slab, index, w, zp, cg, ng, pixels)
            wide = np.empty((samples * M, n_out), np.int64)
            assert kernels.conv(wide, slab, index, w, zp, cg, ng, pixels)
            assert wide.tolist() == want.tolist()
            narrow = np.empty((samples * M, n_out), np.int32)
            fits = all(INT32_MIN <= v <= INT32_MAX for v in want.flat)
            assert kernels.conv(narrow, slab, index, w, zp, cg, ng, pixels) == fits
            if fits:
                assert narrow.tolist() == want.tolist()


def test_pair_lookup_reads_the_table_of_every_pair():
    rng = np.random.default_rng(11)
    table = rng.integers(-128, 128, 1 << 16).astype(np.int8)
    a = rng.integers(-128, 128, (3, 1000)).astype(np.int8)
    b = rng.integers(-128, 128, (3, 1000)).astype(np.int8)
    a[0, :4], b[0, :4] = [-128, -128, 127, 127], [-128, 127, -128, 127]  # the table's corners
    want = table[a.view(np.uint8).astype(np.intp) * 256 + b.view(np.uint8)]
    out = np.empty(a.shape, np.int8)
    kernels.pair_lookup(out, a, b, table)
    assert out.tolist() == want.tolist()
    kernels.pair_lookup(out, a, b[1], table)  # one row of b read by every row
    assert out.tolist() == table[a.view(np.uint8).astype(np.intp) * 256 + b[1].view(np.uint8)].tolist()


# -- the matrix unit's small products (native.c mm): exact integer sums from int8 codes -------------

def reference_mm(x, index, w, zp, cg, ng, pad):
    """out[b, m, n] = sum over taps and group g = n // ng's channels of (x - zp) * w[b, n], in Python
    integers (object arrays); a tap at ``pad`` reads the zero point."""
    samples, pixels, channels = x.shape
    padded = np.concatenate([x.astype(object), np.full((samples, 1, channels), zp, object)], axis=1)
    windows = padded[:, np.where(index == pad, pixels, index)] - zp  # (samples, M, taps, channels)
    n_out = w.shape[1]
    out = np.empty((samples, index.shape[0], n_out), object)
    for n in range(n_out):
        g = n // ng
        taps = windows[..., g * cg:(g + 1) * cg].reshape(samples, index.shape[0], -1)
        out[..., n] = (taps * w[:, None, n].astype(object)).sum(axis=-1)
    return out


MM_TILES = [  # (pixels, M, taps, cg, ng, N): gemm (one tap), conv, gconv (a short last group), dwconv (channels
    # 32 + 8 + 5 and 32 + 16 + 8 + 5: each of the depthwise chunks)
    (9, 9, 1, 40, 33, 33), (30, 7, 9, 5, 12, 12), (30, 13, 9, 3, 2, 7), (20, 6, 4, 17, 1, 5), (30, 11, 9, 1, 1, 45),
    (40, 9, 25, 1, 1, 61), (12, 1, 1, 300, 70, 70)]


def mm_operands(rng, pixels, M, taps, cg, ng, N, own_weights):
    """Two samples' slabs and weights at the extremes: rows of -128 and of 127 against weight rows of
    -128 and 127 (the largest products of either sign), random elsewhere; a tap reading padding."""
    channels = -(-N // ng) * cg + 1
    x = rng.integers(-128, 128, (2, pixels, channels)).astype(np.int8)
    x[0, :3], x[1, :3] = -128, 127
    index = rng.integers(0, pixels + 1, (M, taps))  # pixels: padding
    index[0] = np.arange(taps) % min(3, pixels)
    w = rng.integers(-128, 128, (2 if own_weights else 1, N, taps * cg)).astype(np.int8)
    w[:, 0], w[:, -1] = -128, 127
    w = w if own_weights else np.broadcast_to(w, (2,) + w.shape[1:])  # sample stride 0: one set of weights
    return x, index, w


@pytest.fixture(params=[0, 1, 2])
def mm_level(request):
    """mm on each of its paths this CPU has: 0 portable C, 1 AVX2 (int16 pairs), 2 AVX-512 VNNI (biased
    bytes against int8 quads); the CPU's level restored after."""
    cpu = kernels.mm_level(9)
    if request.param > cpu:
        pytest.skip(f"the CPU has mm level {cpu}")
    kernels.mm_level(request.param)
    yield request.param
    kernels.mm_level(cpu)


@pytest.mark.parametrize("tile", MM_TILES)
@pytest.mark.parametrize("own_weights", [False, True])
def test_mm_sums_exactly_at_the_extremes(tile, own_weights, mm_level):
    pixels, M, taps, cg, ng, N = tile
    rng = np.random.default_rng(sum(tile))
    x, index, w = mm_operands(rng, pixels, M, taps, cg, ng, N, own_weights)
    cache = np.zeros(kernels.mm_cache_size(N, taps, cg, ng), np.uint8)
    for zp in (-128, 0, 127):
        want = reference_mm(x, index, w, zp, cg, ng, pixels)
        out = np.full((2, M, N), 7, np.int32)
        assert kernels.mm(out, x, index, w, zp, cg, ng, pixels, False, cache) is None
        assert out.tolist() == want.tolist()
        acc = rng.integers(-2**20, 2**20, (2, M, N)).astype(np.int32)
        sums = (acc.astype(object) + want).tolist()
        assert kernels.mm(acc, x, index, w, zp, cg, ng, pixels, True, cache) is None
        assert acc.tolist() == sums
        strided = np.zeros((2, M, 2 * N), np.int32)[:, :, ::2]  # accumulators with a row stride and gaps
        assert kernels.mm(strided, x, index, w, zp, cg, ng, pixels, False, cache) is None
        assert strided.tolist() == want.tolist() and not strided.base[:, :, 1::2].any()
        narrow = np.full((2, M, N), 7, np.int32)  # the index as int32 (impl_matrix's): the same sums
        assert kernels.mm(narrow, x, index.astype(np.int32), w, zp, cg, ng, pixels, False, cache) is None
        assert narrow.tolist() == want.tolist()


def test_mm_the_longest_reduction_and_the_accumulators_trap(mm_level):
    """K = MM_MAX_K terms of (-128 - 127) * -128 = 32640, the most int32 holds; then added to
    accumulators near the int32 edges: the first result outside int32 (row-major) comes back and
    no accumulator is written."""
    k = kernels.MM_MAX_K
    assert k * 32640 < 2**31 <= (k + 1) * 32640
    x = np.full((1, 2, k), -128, np.int8)
    w = np.full((1, 2, k), -128, np.int8)
    w[0, 1] = 127  # the other sign: -(k * 255 * 127)
    index = np.arange(2)[:, None]
    cache = np.zeros(kernels.mm_cache_size(2, 1, k, 2), np.uint8)
    out = np.zeros((1, 2, 2), np.int32)
    assert kernels.mm(out, x, index, w, 127, k, 2, 2, False, cache) is None
    big, small = k * 32640, -k * 255 * 127
    assert out.tolist() == [[[big, small]] * 2]
    acc = np.array([[[0, INT32_MIN - small], [INT32_MAX - big + 1, INT32_MIN]]], np.int32)
    before = acc.copy()
    assert kernels.mm(acc, x, index, w, 127, k, 2, 2, True, cache) == (0, 1, 0, INT32_MAX + 1)
    assert (acc == before).all()
    acc[0, 1, 0] -= 1  # now only acc[1, 1] overflows
    assert kernels.mm(acc, x, index, w, 127, k, 2, 2, True, cache) == (0, 1, 1, INT32_MIN + small)
    acc[0, 1, 1] = 0
    assert kernels.mm(acc, x, index, w, 127, k, 2, 2, True, cache) is None
    assert acc.tolist() == [[[big, INT32_MIN], [INT32_MAX, small]]]


def test_mm_follows_changed_weights_and_a_one_bit_error_shows(mm_level):
    """The cache is remade when one bit of the weights changes (the sums follow it); and a result one
    bit off its reference fails the comparison the tests above make."""
    rng = np.random.default_rng(21)
    pixels, M, taps, cg, ng, N = MM_TILES[1]
    x, index, w = mm_operands(rng, pixels, M, taps, cg, ng, N, True)
    cache = np.zeros(kernels.mm_cache_size(N, taps, cg, ng), np.uint8)
    out = np.empty((2, M, N), np.int32)
    assert kernels.mm(out, x, index, w, 3, cg, ng, pixels, False, cache) is None
    w[1, 4, 2] ^= 1  # one bit of sample 1's weights
    assert kernels.mm(out, x, index, w, 3, cg, ng, pixels, False, cache) is None
    want = reference_mm(x, index, w, 3, cg, ng, pixels)
    assert out.tolist() == want.tolist()
    out[1, 0, 4] ^= 1
    assert out.tolist() != want.tolist()


@pytest.mark.parametrize("taps", [1, 9, 256])
def test_mm_depthwise_of_int16_weights_sums_exactly(taps, mm_level):
    """A depthwise tile of int16 weights (products in int32): the Python-integer sums at the
    extremes, the largest one (256 taps of (-128 - 127) * -32768) reached exactly."""
    rng = np.random.default_rng(taps)
    pixels, M, N = 30, 11, 61  # channels 32 + 16 + 8 + 5: each of the depthwise chunks
    x = rng.integers(-128, 128, (2, pixels, N + 1)).astype(np.int8)
    x[:, :3] = -128
    x[1, 3:5] = 127
    index = rng.integers(0, pixels + 1, (M, taps))  # pixels: padding
    index[0] = 0  # every tap on a pixel of -128s
    w = rng.integers(-32768, 32768, (1, N, taps)).astype(np.int16)
    w[:, 0], w[:, 1], w[:, -1] = -32768, 32767, -32768
    w = np.broadcast_to(w, (2,) + w.shape[1:])
    cache = np.zeros(kernels.mm_cache_size(N, taps, 1, 1, True), np.uint8)
    for zp in (-128, 0, 127):
        want = reference_mm(x, index, w, zp, 1, 1, pixels)
        out = np.full((2, M, N), 7, np.int32)
        assert kernels.mm(out, x, index.astype(np.int32), w, zp, 1, 1, pixels, False, cache) is None
        assert out.tolist() == want.tolist()
        acc = rng.integers(-2**20, 2**20, (2, M, N)).astype(np.int32)
        sums = (acc.astype(object) + want).tolist()
        if all(INT32_MIN <= v <= INT32_MAX for row in sums for r in row for v in r):
            assert kernels.mm(acc, x, index, w, zp, 1, 1, pixels, True, cache) is None
            assert acc.tolist() == sums
    assert out[0, 0, 0] == taps * 255 * 32768  # zp 127: every tap (-128 - 127) * -32768
    wide = np.zeros((1, N, 257), np.int16)
    with pytest.raises(ValueError, match="int16 for a depthwise tile"):  # past 256 taps the sums may leave int32
        kernels.mm(np.zeros((1, 1, N), np.int32), x[:1], np.zeros((1, 257), np.int32), wide, 0, 1, 1, pixels, False,
                   np.zeros(kernels.mm_cache_size(N, 257, 1, 1, True), np.uint8))
    with pytest.raises(ValueError, match="int16 for a depthwise tile"):  # int16 weights of a gemm
        kernels.mm(np.zeros((1, 1, 2), np.int32), x[:1], np.zeros((1, 1), np.int32), np.zeros((1, 2, 4), np.int16), 0,
                   4, 2, pixels, False, np.zeros(kernels.mm_cache_size(2, 1, 4, 2, True), np.uint8))


def test_mm_refuses_an_index_outside_the_slab():
    x, w = np.zeros((1, 4, 3), np.int8), np.zeros((1, 2, 3), np.int8)
    cache = np.zeros(kernels.mm_cache_size(2, 1, 3, 2), np.uint8)
    out = np.zeros((1, 2, 2), np.int32)
    for dtype in (np.int64, np.int32):
        with pytest.raises(ValueError, match="outside the slab"):
            kernels.mm(out, x, np.array([[0], [4]], dtype), w, 0, 3, 2, 5, False, cache)
        with pytest.raises(ValueError, match="outside the slab"):
            kernels.mm(out, x, np.array([[-1], [0]], dtype), w, 0, 3, 2, 5, False, cache)
    with pytest.raises(ValueError, match="index: 2-byte items"):
        kernels.mm(out, x, np.array([[0], [1]], np.int16), w, 0, 3, 2, 5, False, cache)
    with pytest.raises(ValueError, match="cache"):
        kernels.mm(out, x, np.array([[0], [1]]), w, 0, 3, 2, 5, False, cache[1:])


@pytest.mark.parametrize("mode", ["gemm", "conv", "gconv", "dwconv"])
def test_matmul_in_c_equals_the_numpy_path(mode, monkeypatch):
    """A batch of two, each sample with its own weights, through ``matmul`` (padding, a stride, zero
    point -128; then accumulating into accumulators at the int32 edges, which traps where a sum
    leaves int32): the C kernel and the numpy path give the same accumulators, and the same trap."""
    from isa_helpers import setr
    from test_simulator_matrix import TARGET, conv_registers, run
    from tcc.isa.errors import SimulatorTrap
    from tcc.isa.simulator import Machine

    rng = np.random.default_rng(len(mode))
    h, w, c, n = 6, 5, 12, 8
    k = {"gemm": c, "conv": 9 * c, "gconv": 9 * 3, "dwconv": 9}[mode]
    text = conv_registers(h, w, c, 3, 3, (2, 1), (1, 1), (1, 1), 0, (3, 5), -128, 15, n, k)
    text += setr({"cv.cg": 3, "cv.ng": 2}) if mode == "gconv" else ""
    text += setr({"mm.m": 30, "mm.a_row": c}) if mode == "gemm" else ""
    m = 30 if mode == "gemm" else 15
    slabs = rng.integers(-128, 128, (2, h * w * c), dtype=np.int8)
    weights = rng.integers(-128, 128, (2, n * k), dtype=np.int8)
    results = []
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", in_c)
        got = []
        edges = np.where(np.arange(m * n) % 2, INT32_MAX - 5, INT32_MIN + 5)  # some sum leaves int32
        for accumulate, fill in ((0, 0), (1, edges)):
            machine = Machine(TARGET, np.zeros((2, 16), np.uint8))
            machine.memories[0][:, :slabs[0].size] = slabs.view(np.uint8)
            machine.memories[1][:, :weights[0].size] = weights.view(np.uint8)  # each sample its own weights
            machine.memories[2][:, :4 * m * n] = np.full(m * n, fill, "<i4").view(np.uint8)
            try:
                run(text + f"matmul {mode}, {accumulate}, int8, 0, 0, 0\nhalt\n", machine=machine)
                got.append(machine.memories[2][:, :4 * m * n].copy())
            except SimulatorTrap as trap:
                got.append(str(trap))
        results.append(got)
    numpy_path, in_c = results
    assert (numpy_path[0] == in_c[0]).all()
    assert isinstance(numpy_path[1], str) and numpy_path[1] == in_c[1], (numpy_path[1], in_c[1])


POOLS = [  # (h, w, c, kernel, stride, pads, out_hw): few taps (a padded image on the numpy path), a global pool
    (7, 6, 3, (3, 2), (2, 1), (1, 0, 2, 1), (4, 5)), (5, 5, 40, (3, 3), (2, 2), (1, 1, 1, 1), (3, 3)),
    (7, 7, 33, (7, 7), (1, 1), (0, 0, 0, 0), (1, 1)), (4, 6, 9, (5, 5), (3, 3), (2, 2, 2, 2), (2, 2))]


@pytest.mark.parametrize("geometry", POOLS)
@pytest.mark.parametrize("mode, count_pad, zp", [("max", 0, 0), ("avg", 0, -128), ("avg", 1, 127), ("avg", 0, 3)])
def test_pool_in_c_equals_the_numpy_path(geometry, mode, count_pad, zp, monkeypatch):
    """``pool`` on a batch of two slabs (the extremes in the first rows) through native.c pool_taps and
    through the numpy path: the same bytes; and an output one bit off shows."""
    from isa_helpers import setr
    from test_simulator_matrix import TARGET, run
    from tcc.isa.simulator import Machine

    h, w, c, kernel, stride, pads, out_hw = geometry
    rng = np.random.default_rng(h * w * c)
    slabs = rng.integers(-128, 128, (2, h * w * c), dtype=np.int8)
    slabs[0, :2 * c], slabs[1, :2 * c] = -128, 127
    text = setr({"cv.h": h, "cv.w": w, "cv.c": c, "cv.kh": kernel[0], "cv.kw": kernel[1], "cv.sh": stride[0],
                 "cv.sw": stride[1], "cv.dh": 1, "cv.dw": 1, "cv.pad_top": pads[0], "cv.pad_left": pads[1],
                 "cv.w_out": out_hw[1], "pl.h_out": out_hw[0], "pl.pad_bottom": pads[2], "pl.pad_right": pads[3],
                 "pl.zp": zp, "pl.count_pad": count_pad, "pl.mult": 1431655765, "pl.shift": 32, "pl.out_zp": -zp // 2})
    size = out_hw[0] * out_hw[1] * c
    got = []
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", in_c)
        machine = Machine(TARGET, np.zeros((2, 16), np.uint8))
        machine.memories[0][:, :slabs[0].size] = slabs.view(np.uint8)
        run(text + f"pool {mode}, 0x1000, 0\nhalt\n", machine=machine)
        got.append(machine.memories[0][:, 0x1000:0x1000 + size].copy())
    assert got[0].tolist() == got[1].tolist()
    got[1][1, -1] ^= 1
    assert got[0].tolist() != got[1].tolist()


def test_pool_taps_refuses_an_index_or_a_sum_outside():
    out, x = np.empty((1, 1, 4), np.int8), np.zeros((1, 3, 4), np.int8)
    with pytest.raises(ValueError, match="outside the slab"):
        kernels.pool_taps(out, x, np.array([[0, 3]]), 9, False, 0, None, None)
    with pytest.raises(ValueError, match="outside the table"):
        kernels.pool_taps(out, x, np.array([[0, 1]]), 9, True, 0, np.zeros(4, np.int8), np.array([4], np.int32))


# (rows, cols, src_row, rows joined): the most rows within 512 lanes, a multiple of 16 lanes where one is
@pytest.mark.parametrize("rows, cols, src_row, joined", [(12, 6, 6, 12), (60, 24, 24, 20), (7, 5, 5, 7), (9, 4, 6, 1)])
@pytest.mark.parametrize("own_parameters", [False, True])
def test_requant_of_narrow_rows_joined_equals_the_numpy_path(rows, cols, src_row, joined, own_parameters,
                                                            monkeypatch):
    """``requant acc`` of narrow rows, per-channel parameters, a batch of two (``own_parameters``:
    sample 1's pbuf differs): the C kernel takes several rows side by side as one row of lanes
    with its table repeated (impl_quant._joined_rows; rows that do not follow each other,
    src_row > cols, are not joined) and gives the numpy path's bytes."""
    from isa_helpers import setr
    from test_simulator_matrix import TARGET, run
    from tcc.isa.simulator import Machine, impl_quant

    rng = np.random.default_rng(rows * cols)
    accs = rng.integers(-2**24, 2**24, (2, rows * src_row)).astype("<i4")
    accs[0, :cols], accs[1, :cols] = INT32_MAX, INT32_MIN
    params = np.stack([rng.integers(-1000, 1000, (2, cols)), rng.integers(2**29, 2**31, (2, cols)),
                       rng.integers(28, 40, (2, cols))], axis=-1).astype("<i4")
    if not own_parameters:
        params[1] = params[0]
    text = setr({"rq.params": 0, "rq.m": rows, "rq.n": cols, "rq.src_row": src_row, "rq.dst_row": cols, "rq.zp": -3,
                 "rq.qmin": -128, "rq.qmax": 127}) + "requant acc, i8, half_even, 0, 0\nhalt\n"
    joins = []
    real = impl_quant._joined_rows
    monkeypatch.setattr(impl_quant, "_joined_rows", lambda x, out: joins.append(real(x, out)[1]) or real(x, out))
    got = []
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", in_c)
        machine = Machine(TARGET, np.zeros((2, 16), np.uint8))
        machine.memories[2][:, :accs[0].nbytes] = accs.view(np.uint8)  # acc
        machine.memories[3][:, :params[0].nbytes] = params.reshape(2, -1).view(np.uint8)  # pbuf
        run(text, machine=machine)
        got.append(machine.memories[0][:, :rows * cols].copy())
    assert got[0].tolist() == got[1].tolist()
    assert joins == [joined]


def wide_channels(src_zp, pre_shift):
    """The channels of CHANNELS that no int32 input can make refuse (requant_wide's proof): |(x - src_zp)
    << pre_shift| + |bias| within the channel's bound for every int32 x; and those some input can."""
    largest = (2**31 + abs(src_zp)) << pre_shift
    fits = np.array([largest + abs(int(b)) <= _PRODUCT_MAX // max(int(m), 1) for b, m, _ in CHANNELS])
    return CHANNELS[fits], CHANNELS[~fits]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_requant_wide_matches_the_spec_where_no_lane_can_be_refused(mode):
    """requant_wide (int32 in, no per-lane checks) against the spec at the extremes, per channel and with
    one set of parameters, int8 and int32 out; it declines (False, nothing written) wherever some
    int32 input could be refused, and a result one bit off shows."""
    mode_index = ROUNDING_MODES.index(mode)
    for pre_shift, src_zp in itertools.product((0, 1, 8), (0, -128, 127, INT32_MIN + 1)):
        channels, refusable = wide_channels(src_zp, pre_shift)
        assert len(channels) and len(refusable)
        x = np.broadcast_to(X[:, None], (len(X), len(channels))).astype(np.int32)
        for (qmin, qmax), zp in itertools.product(RANGES, (0, -128, 127, INT32_MAX)):
            out = np.empty(x.shape, np.int8 if -128 <= qmin <= qmax <= 127 else np.int32)
            want = spec(x.astype(np.int64), channels, src_zp, pre_shift, zp, qmin, qmax, mode)
            table = native.requant_parameters(channels.astype(np.int32))
            assert kernels.requant_wide(x, out, table, src_zp, pre_shift, zp, qmin, qmax, mode_index)
            assert out.tolist() == want.tolist(), (pre_shift, src_zp, qmin, qmax, zp)
            one = np.ascontiguousarray(x[:, :1])  # every lane one channel's parameters
            single = np.empty(one.shape, out.dtype)
            assert kernels.requant_wide(one, single, native.requant_parameters(channels[:1].astype(np.int32)),
                                        src_zp, pre_shift, zp, qmin, qmax, mode_index)
            assert single.tolist() == want[:, :1].tolist()
        out.flat[0] ^= 1
        assert out.tolist() != want.tolist()
        x = np.broadcast_to(X[:, None], (len(X), len(refusable))).astype(np.int32)
        untouched = np.full(x.shape, 7, np.int8)
        assert not kernels.requant_wide(x, untouched, native.requant_parameters(refusable.astype(np.int32)), src_zp,
                                        pre_shift, 0, -128, 127, mode_index)
        assert (untouched == 7).all()
    for bad in ([[0, -1, 3]], [[0, 5, -1]]):  # a negative multiplier or shift
        x = np.zeros((1, 1), np.int32)
        assert not kernels.requant_wide(x, np.empty((1, 1), np.int8), native.requant_parameters(np.array(bad, np.int32)),
                                        0, 0, 0, -128, 127, mode_index)


def test_a_product_above_the_int8_kernel_size_runs_in_c_exactly(monkeypatch):
    """64 x 576 x 64 (2.4M multiply-adds: above int8_kernel.MIN_MACS, within impl_matrix.NATIVE_MACS)
    runs in native.c mm, exact at the extremes; a one-bit error in its accumulators shows."""
    import types

    from test_int8_kernel import gemm
    from tcc.isa.simulator import impl_matrix

    assert 64 * 576 * 64 <= impl_matrix.NATIVE_MACS
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (64, 576)).astype(np.int8)
    w = rng.integers(-128, 128, (64, 576)).astype(np.int8)
    a[:2], w[:2] = np.array([[-128], [127]], np.int8), np.array([[-128], [127]], np.int8)
    calls = []

    def mm(*args):
        calls.append(1)
        result = kernels.mm(*args)
        args[0][...] ^= flip
        return result

    def step(kind, *operands):  # an MM step would run the unwrapped product: refused, so the wrapper runs
        if kind == kernels.STEP_MM:
            raise ValueError("a wrapped mm")
        return kernels.step(kind, *operands)

    monkeypatch.setattr(native, "kernels", lambda: types.SimpleNamespace(**{**vars(kernels), "mm": mm, "step": step}))
    for zp, flip in ((-128, 0), (127, 0), (0, 1)):
        expected = (a.astype(object) - zp) @ w.T.astype(object)
        assert (gemm(a, w, zp).tolist() == expected.tolist()) == (not flip)
    assert len(calls) == 3


# --- prepared steps (native.c: step): each against the numpy operation it stands for ------------

def _memory(rng, samples=2, size=1 << 14):
    return rng.integers(0, 256, (samples, size)).astype(np.uint8)


def _view(memory, dtype, offset, shape, strides):
    """A strided view of every sample's row of ``memory``, as machine.region makes them."""
    return np.ndarray((memory.shape[0],) + shape, dtype, buffer=memory, offset=offset,
                      strides=(memory.shape[1],) + strides)


@pytest.mark.parametrize("dtype, shape, source_strides, out_strides", [
    (np.uint8, (3, 5, 40), (400, 50, 1), (200, 40, 1)),  # a DMA box: rows of bytes
    (np.uint8, (1, 300, 1), (0, 7, 1), (0, 1, 1)),  # many one-byte rows: one strided loop once coalesced
    (np.uint16, (16, 24), (2, 32), (48, 2)),  # a transposing copy of bf16 lanes
    (np.uint32, (4, 1, 6), (96, 0, 4), (24, 0, 4)),  # int32 words, an axis of extent 1
    (np.uint64, (5,), (8,), (16,)),
    (np.uint8, (2, 0, 3), (3, 3, 1), (3, 3, 1)),  # an empty box
])
def test_copy_step_moves_what_numpy_moves(dtype, shape, source_strides, out_strides):
    rng = np.random.default_rng(5)
    memory = _memory(rng)
    source = _view(memory, dtype, 64, shape, source_strides)
    out = _view(memory, dtype, 8192, shape, out_strides)
    want = memory.copy()
    np.copyto(_view(want, dtype, 8192, shape, out_strides), _view(want, dtype, 64, shape, source_strides))
    step = native.step("COPY", 0, out, source)
    assert step is not None
    step()
    assert np.array_equal(memory, want)
    source[...] = 0  # a step reads its source when it runs, not when it is made
    step()
    assert not out.any()


def test_gather_step_reads_the_table_at_each_index():
    rng = np.random.default_rng(6)
    memory = _memory(rng)
    codes = _view(memory, np.uint8, 0, (2, 50), (60, 1))  # int8 codes (as bytes) -> bf16 patterns
    lanes = _view(memory, np.uint16, 4096, (2, 50), (200, 4))
    patterns = rng.integers(0, 1 << 16, 256).astype(np.uint16)
    step = native.step("GATHER", 0, lanes, codes, patterns)
    step()
    assert lanes.tolist() == patterns[codes].tolist()
    wide = _view(memory, np.uint16, 8192, (70,), (2,))  # bf16 patterns -> int8 codes
    out = _view(memory, np.int8, 12000, (70,), (1,))
    table = rng.integers(-128, 128, 1 << 16).astype(np.int8)
    wide[0, :2] = [0, 0xFFFF]  # the table's ends
    native.step("GATHER", 0, out, wide, table)()
    assert out.tolist() == table[wide].tolist()
    assert native.step("GATHER", 0, out, wide, table[:256]) is None  # a uint16 index needs 65,536 entries


@pytest.mark.parametrize("dtype", [np.int8, np.uint16])
def test_gather_step_reads_a_compacted_table_as_the_whole_one(dtype):
    """A conversion-like table (runs of the saturation bounds and the zero point, a varying band between)
    compacted (rule_tables.compacted: each distinct block of 128 entries once) and gathered by the step
    at every one of the 65,536 indices, in strided views, equals the whole table's entries."""
    import types

    from tcc.isa.simulator import rule_tables

    rng = np.random.default_rng(8)
    table = np.repeat(np.array([-128, 3, 127]), [30000, 5536, 30000]).astype(dtype)  # (uint16: wrapped)
    table[31000:33000] = rng.integers(0, 128, 2000)
    machine = types.SimpleNamespace(tables={})
    segments, blocks = rule_tables.compacted(machine, ("a key",), table)
    assert blocks.size <= table.size // 4
    memory = np.zeros((2, 1 << 19), np.uint8)
    index = _view(memory, np.uint16, 0, (1 << 14, 2), (8, 2))  # every index once across the samples
    index[...] = np.arange(1 << 16, dtype=np.uint16).reshape(2, 1 << 14, 2)
    size = np.dtype(dtype).itemsize
    out = _view(memory, dtype, 1 << 18, (1 << 14, 2), (3 * size, size))
    native.step("GATHER", 0, out, index, blocks, segments)()
    assert out.tolist() == table[index].tolist()
    noise = rng.integers(0, 128, 1 << 16).astype(dtype)  # no repeated blocks: not worth compacting
    assert rule_tables.compacted(machine, ("noise",), noise) is None
    past = segments.copy()
    past[-1] = blocks.size - 127  # a block running past the end: refused
    assert native.step("GATHER", 0, out, index, blocks, past) is None
    assert native.step("GATHER", 0, out, index, blocks, segments[:-1]) is None  # not a power of two of them


def test_lut_step_reads_each_samples_own_table():
    rng = np.random.default_rng(7)
    memory = _memory(rng)
    x = _view(memory, np.int8, 0, (300,), (1,))
    tables = _view(memory, np.int8, 1000, (256,), (1,))
    out = _view(memory, np.int8, 2000, (300,), (1,))
    x[:, :2] = [-128, 127]
    native.step("LUT", 0, out, x, tables)()
    for s in range(memory.shape[0]):  # entry v + 128 for the int8 value v
        assert out[s].tolist() == tables[s][x[s].astype(np.intp) + 128].tolist()


def test_lanes_and_pair_steps_compute_what_their_kernels_do():
    rng = np.random.default_rng(8)
    a, b, c = (rng.integers(0, 1 << 16, (2, 100)).astype(np.uint16) for _ in range(3))
    for op in range(24):
        want, got = np.empty_like(a), np.empty_like(a)
        operands = (a, b, c) if op in (4, 23) else (a, b)
        kernels.lanes(op, want, *operands)
        native.step("LANES", op, got, *operands)()
        assert got.tolist() == want.tolist()
    x, y = (rng.integers(-128, 128, (2, 100)).astype(np.int8) for _ in range(2))
    table = rng.integers(-128, 128, 1 << 16).astype(np.int8)
    out = np.empty_like(x)
    native.step("PAIR", 0, out, x, y[0], table)()
    assert out.tolist() == table[x.view(np.uint8).astype(np.intp) * 256 + y[0].view(np.uint8)].tolist()
    assert native.step("LANES", 4, out, a, b) is None  # fma takes three operands
    assert native.step("COPY", 0, a, b[:, :50]) is None  # shapes differ


def test_a_step_keeps_its_memory_alive():
    memory = np.zeros((1, 64), np.uint8)
    out = _view(memory, np.uint8, 0, (8,), (1,))
    source = _view(memory, np.uint8, 32, (8,), (1,))
    source[...] = 9
    step = native.step("COPY", 0, out, source)
    held = sys.getrefcount(memory)
    del out, source
    step()  # the step holds the views' buffers, so the memory they are of
    assert sys.getrefcount(memory) == held and memory[0, :8].tolist() == [9] * 8


def test_replay_calls_the_actions_in_order_and_names_the_one_that_raises():
    done = []

    def fail():
        raise ArithmeticError("third")

    actions = [lambda: done.append(0), lambda: done.append(1), fail, lambda: done.append(3)]
    at = [0]
    kernels.replay(actions, 2, at)
    assert done == [0, 1] and at == [0]
    with pytest.raises(ArithmeticError, match="third"):
        kernels.replay(actions, 4, at)
    assert done == [0, 1, 0, 1] and at == [2]  # the actions after it did not run


def test_requant_step_runs_while_pbuf_holds_the_parameters_it_was_made_with():
    rng = np.random.default_rng(12)
    memory = _memory(rng)
    params = _view(memory, "<i4", 0, (8, 3), (12, 4))  # (bias, multiplier, shift) per channel, in "pbuf"
    params[...] = np.stack([rng.integers(-1000, 1000, 8), rng.integers(2**29, 2**30, 8), rng.integers(30, 40, 8)], -1)
    params[1] = params[0]  # every sample's parameters alike
    x = rng.integers(-(2**20), 2**20, (2, 5, 8)).astype(np.int32)
    made_from = np.frombuffer(params[0].tobytes(), np.uint8)
    table = native.requant_parameters(params[0])
    for mode in range(4):
        want, got = np.empty((2, 5, 8), np.int8), np.zeros((2, 5, 8), np.int8)
        assert kernels.requant(x, want, table, 3, 2, -5, -128, 127, mode, None, ROW_SHIFT_MAX)
        step = native.step("REQUANT", 0, x, got, table, params, made_from, np.array([3, 2, -5, -128, 127, mode]))
        assert step() is True and got.tolist() == want.tolist()
    params[1, 3, 0] += 1  # one sample's bias changed: the step does nothing and says so
    got[...] = 0
    assert step() is False and not got.any()
    params[1, 3, 0] -= 1
    x[0, 0, 0] = 2**31 - 1  # a lane the spec refuses (|v * multiplier| past 2**62 after pre_shift 30)
    refused = native.step("REQUANT", 0, x, got, table, params, made_from, np.array([0, 30, 0, -128, 127, 0]))
    assert refused() is False


def _mm_step(out, x, index, w, zp, cg, ng, pad, accumulate, cache, fallback=None):
    return native.step("MM", 0, out, x, index, w, cache, np.array([zp, cg, ng, pad, accumulate], np.int64), fallback)


@pytest.mark.parametrize("tile", MM_TILES)
@pytest.mark.parametrize("own_weights", [False, True])
def test_mm_step_sums_as_the_reference_run_after_run(tile, own_weights, mm_level):
    """The MM step (mm's operands held once) against the Python-integer reference at the extremes: zero
    points -128, 0 and 127, accumulate off and on (twice: each run adds the product again), and
    weights changed between runs (the step relays its cache and follows them)."""
    pixels, M, taps, cg, ng, N = tile
    rng = np.random.default_rng(sum(tile) + 1)
    x, index, w = mm_operands(rng, pixels, M, taps, cg, ng, N, own_weights)
    w = w.copy() if own_weights else w.base.copy()  # writable weights (sample stride 0 without own ones)
    weights = w if own_weights else np.broadcast_to(w, (2,) + w.shape[1:])
    for zp in (-128, 0, 127):
        cache = np.zeros(kernels.mm_cache_size(N, taps, cg, ng), np.uint8)
        out = np.full((2, M, N), 7, np.int32)
        step = _mm_step(out, x, index, weights, zp, cg, ng, pixels, 0, cache)
        assert step() is True and out.tolist() == reference_mm(x, index, weights, zp, cg, ng, pixels).tolist()
        w[-1, 2, -1] ^= 0x41  # the weights change in memory: the next run follows them
        out[...] = 7
        assert step() is True and out.tolist() == reference_mm(x, index, weights, zp, cg, ng, pixels).tolist()
        acc = rng.integers(-2**20, 2**20, (2, M, N)).astype(np.int32)
        start = acc.astype(object)
        adding = _mm_step(acc, x, index, weights, zp, cg, ng, pixels, 1, cache)
        want = reference_mm(x, index, weights, zp, cg, ng, pixels)
        assert adding() is True and acc.tolist() == (start + want).tolist()
        assert adding() is True and acc.tolist() == (start + 2 * want).tolist()


def test_mm_step_declines_the_trap_and_calls_its_fallback(mm_level):
    """Accumulators at the int32 edges (test_mm_the_longest_reduction_and_the_accumulators_trap): where a
    sum leaves int32 the step writes nothing and says False, or calls its fallback (mm then names
    the first such sum); where every sum fits, it writes them."""
    k = kernels.MM_MAX_K
    x = np.full((1, 2, k), -128, np.int8)
    w = np.full((1, 2, k), -128, np.int8)
    w[0, 1] = 127
    index = np.arange(2)[:, None]
    cache = np.zeros(kernels.mm_cache_size(2, 1, k, 2), np.uint8)
    big, small = k * 32640, -k * 255 * 127
    acc = np.array([[[0, INT32_MIN - small], [INT32_MAX - big + 1, INT32_MIN]]], np.int32)
    before = acc.copy()
    called = []
    plain = _mm_step(acc, x, index, w, 127, k, 2, 2, 1, cache)
    with_fallback = _mm_step(acc, x, index, w, 127, k, 2, 2, 1, cache, lambda: called.append(1) or "fallback")
    assert plain() is False and (acc == before).all()
    assert with_fallback() == "fallback" and called == [1] and (acc == before).all()
    assert kernels.mm(acc, x, index, w, 127, k, 2, 2, True, cache) == (0, 1, 0, INT32_MAX + 1)  # the trap it raises
    acc[0, 1] = [INT32_MAX - big, 0]  # now every sum fits
    assert with_fallback() is True and called == [1]
    assert acc.tolist() == [[[big, INT32_MIN], [INT32_MAX, small]]]


def test_mm_step_refuses_operands_mm_refuses():
    x, w = np.zeros((1, 4, 3), np.int8), np.zeros((1, 2, 3), np.int8)
    cache = np.zeros(kernels.mm_cache_size(2, 1, 3, 2), np.uint8)
    out = np.zeros((1, 2, 2), np.int32)
    assert _mm_step(out, x, np.array([[0], [1]]), w, 0, 3, 2, 5, 0, cache[1:]) is None  # a cache of the wrong size
    assert _mm_step(out, x, np.array([[0], [1]]), w, 128, 3, 2, 5, 0, cache) is None  # a zero point outside int8
    assert _mm_step(out, x, np.array([[0], [1]]), w, 0, 3, 2, 5, 0, cache, "not callable") is None
    outside = _mm_step(out, x, np.array([[0], [4]]), w, 0, 3, 2, 5, 0, cache)
    assert outside() is False  # an index outside the slab: mm raises on the caller's path


def test_a_plans_prepared_steps_follow_pbuf_and_trap_as_the_numpy_path(monkeypatch):
    """A program run three times on one machine: after the first run its requant action is the step it
    made (Effect.settled) and its matmul a prepared MM step; between runs pbuf's parameters change
    (the step declines, the action remakes its table) and then the accumulators are set so a sum
    leaves int32 (the step declines, the trap is raised).  Outputs and trap equal the numpy path's."""
    from isa_helpers import setr
    from test_simulator_matrix import TARGET, conv_registers, int32_bytes, run
    from tcc.isa.errors import SimulatorTrap
    from tcc.isa.simulator import Machine

    rng = np.random.default_rng(31)
    m, n, k = 6, 8, 27
    text = (conv_registers(4, 4, 3, 3, 3, (1, 1), (1, 1), (1, 1), 0, (2, 3), -7, m, n, k)
            + "matmul conv, 1, int8, 0, 0, 0\n"
            + setr({"rq.params": 0, "rq.m": m, "rq.n": n, "rq.src_row": n, "rq.dst_row": n, "rq.zp": 3,
                    "rq.qmin": -128, "rq.qmax": 127})
            + "requant acc, i8, half_even, 0x800, 0\nhalt\n")
    slab = rng.integers(-128, 128, 48, dtype=np.int8)
    weights = rng.integers(-128, 128, n * k, dtype=np.int8)
    params = [int32_bytes(*np.stack([rng.integers(-999, 999, n), rng.integers(2**29, 2**30, n),
                                     rng.integers(30, 36, n)], -1).ravel()) for _ in range(2)]
    edge = int32_bytes(*[INT32_MAX - 2] * (m * n))
    outcomes = []
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", in_c)
        machine = Machine(TARGET, np.zeros(16, np.uint8))
        machine.buffers["abuf"][:48] = slab.view(np.uint8)
        machine.buffers["wbuf"][:n * k] = weights.view(np.uint8)
        got = []
        for run_params, acc in ((params[0], None), (params[1], None), (params[1], edge)):
            machine.buffers["pbuf"][:run_params.size] = run_params
            machine.buffers["acc"][:4 * m * n] = 0 if acc is None else acc
            try:
                run(text, machine=machine)
                got.append(machine.buffers["abuf"][0x800:0x800 + m * n].copy())
            except SimulatorTrap as trap:
                got.append(str(trap))
        if in_c:
            (plan,) = machine._plans.values()
            assert [type(a).__name__ for a in plan.actions] == ["Step", "Step"]
        outcomes.append(got)
    assert "int32 accumulator overflow" in outcomes[0][2]
    assert [o.tolist() if isinstance(o, np.ndarray) else o for o in outcomes[1]] == \
        [o.tolist() if isinstance(o, np.ndarray) else o for o in outcomes[0]]
    assert outcomes[0][0].tolist() != outcomes[0][1].tolist()  # the parameters changed the outputs


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("op", ["add", "sub"])
def test_eadd_step_equals_the_spec_on_every_pair_of_int8_values(mode, op):
    """The EADD step (each operand's term from a 256-entry table, their sum, the output requantizer in
    C) against the spec module on all 65,536 (a, b) pairs: centre_and_shift, requantize to int32 per
    operand, the sum or difference, requantize to int8; zero points at the int8 ends, a pre_shift, a
    multiplier near 2**31 and a large shift."""
    a_zp, b_zp, pre_shift = -128, 127, 5
    a_rq, b_rq, out_rq = (2**31 - 1, 40), (2**30 + 3, 33), (1518500250, 38)
    zp, qmin, qmax = -3, -128, 127
    a = np.repeat(np.arange(-128, 128), 256)[None].astype(np.int8)
    b = np.tile(np.arange(-128, 128), 256)[None].astype(np.int8)

    def term(x, x_zp, rq):
        v = centre_and_shift(x.astype(np.int64), x_zp, pre_shift, 0)
        return requantize(v, rq[0], rq[1], 0, INT32_MIN, INT32_MAX, mode, out_dtype=np.int64)

    va, vb = term(a, a_zp, a_rq), term(b, b_zp, b_rq)
    want = requantize(va + vb if op == "add" else va - vb, out_rq[0], out_rq[1], zp, qmin, qmax, mode,
                      out_dtype=np.int64)
    values = np.arange(-128, 128).astype(np.int8)
    order = np.argsort(values.view(np.uint8))  # the terms indexed by byte
    terms = np.stack([term(values, a_zp, a_rq)[order], term(values, b_zp, b_rq)[order]]).astype(np.int32)
    out, sums = np.zeros(a.shape, np.int8), np.empty(a.shape, np.int32)
    table = native.requant_parameters(np.array([[0, *out_rq]], np.int32))
    scalars = np.array([1 if op == "add" else -1, zp, qmin, qmax, ROUNDING_MODES.index(mode)], np.int64)
    step = native.step("EADD", 0, out, a, b, sums, terms, table, scalars)
    assert step() is True and out.tolist() == want.tolist()
    out[...] = 0
    out[0, 0] ^= 1  # a one-bit error shows
    assert out.tolist() != want.tolist()


def test_eadd_step_declines_what_the_spec_refuses_and_terms_past_int32():
    a = b = np.zeros((1, 4), np.int8)
    out, sums = np.zeros((1, 4), np.int8), np.empty((1, 4), np.int32)
    terms = np.zeros((2, 256), np.int32)
    scalars = np.array([1, 0, -128, 127, 0], np.int64)
    negative = native.requant_parameters(np.array([[0, -5, 3]], np.int32))  # a negative multiplier: the spec refuses
    called = []
    step = native.step("EADD", 0, out, a, b, sums, terms, negative, scalars, lambda: called.append(1))
    assert step() is None and called == [1]  # the fallback ran (and returned None)
    table = native.requant_parameters(np.array([[0, 5, 3]], np.int32))
    terms[0, 7], terms[1, 9] = 2**30, -(2**30)  # |terms| could sum to 2**31: refused when made
    assert native.step("EADD", 0, out, a, b, sums, terms, table, scalars) is None


def test_products_of_the_same_weights_share_a_cache_and_follow_a_change(monkeypatch):
    """Two gemms reading equal weights from two wbuf regions: after the first run their MM steps read
    one cache of the relaid weights (Effect.settled); then one region's weights change between runs
    (the shared cache is relaid for it, and back for the other, on every run) and the accumulators
    still equal the numpy path's."""
    from isa_helpers import setr
    from test_simulator_matrix import TARGET, run
    from tcc.isa.simulator import Machine

    rng = np.random.default_rng(41)
    m, n, k = 3, 16, 40
    text = (setr({"mm.a": 0, "mm.a_row": k, "mm.m": m, "mm.n": n, "mm.k": k, "mm.a_zp": 5, "mm.w_row": k,
                  "mm.acc_row": n}) + "matmul gemm, 0, int8, 0, 0, 0\n"
            + f"matmul gemm, 0, int8, 0, {4 * m * n}, {n * k}\nhalt\n")
    a = rng.integers(-128, 128, m * k, dtype=np.int8)
    w = rng.integers(-128, 128, n * k, dtype=np.int8)
    changed = w.copy()
    changed[7] ^= 0x55
    outcomes = []
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", in_c)
        machine = Machine(TARGET, np.zeros(16, np.uint8))
        machine.buffers["abuf"][:m * k] = a.view(np.uint8)
        got = []
        for second in (w, w, changed, changed, w):
            machine.buffers["wbuf"][:n * k] = w.view(np.uint8)
            machine.buffers["wbuf"][n * k:2 * n * k] = second.view(np.uint8)
            run(text, machine=machine)
            got.append(machine.buffers["acc"][:8 * m * n].view("<i4").tolist())
        if in_c:
            (plan,) = machine._plans.values()
            shared = [key for key in machine.tables if key[0] == "mm cache"]
            assert [type(x).__name__ for x in plan.actions] == ["Step", "Step"] and len(shared) == 1
        outcomes.append(got)
    assert outcomes[1] == outcomes[0] and outcomes[0][2] != outcomes[0][1]


def _tree_sum(row: list) -> int:
    """vred sum's pairwise tree on one row of patterns, level by level with the spec's one add
    (numerics.bf16_add, each pair rounded to bf16; an odd level's last element carried)."""
    level = [np.float32(v) for v in from_bf16(np.array(row, np.uint16))]
    if len(level) == 1:
        return int(row[0])
    while len(level) > 1:
        pairs = len(level) // 2
        summed = [numerics.bf16_add(np.float32(level[2 * i]), np.float32(level[2 * i + 1])) for i in range(pairs)]
        level = [np.float32(v) for v in summed] + level[2 * pairs:]
    return bits(np.float32(level[0]))


@pytest.mark.parametrize("row", [1, 2, 3, 4, 6, 12, 16, 24, 197])
def test_reduce_step_sums_by_the_spec_tree_and_takes_each_rows_max(row):
    """vred's step on every sample's rows: the sum level by level over all rows at once (even
    widths) or row by row (odd ones), as the spec's tree; the max as the spec's max of the row."""
    rng = np.random.default_rng(row)
    rows = 9
    memory = _memory(rng)
    x = _view(memory, np.uint16, 64, (rows * row,), (2,))
    out = _view(memory, np.uint16, 8192, (rows,), (2,))
    values = rng.choice(np.concatenate([SPECIAL, (rng.integers(0x3000, 0x4400, 64)
                                                  | rng.integers(0, 2, 64) << 15).astype(np.uint16)]), x.shape)
    values[:, :4 * row] &= 0x7FFF  # rows of one sign: sums that round at every level
    values[:, :4 * row] = np.where((values[:, :4 * row] & 0x7F80) == 0x7F80, 0x3F80, values[:, :4 * row])
    values[1, :row] = 0x7FC1  # a row of one non-canonical NaN pattern
    x[...] = values
    for op in (0, 1):
        step = native.step("REDUCE", op, out, x)
        assert step is not None
        step()
        for s in range(memory.shape[0]):
            for r in range(rows):
                lanes = values[s, r * row:(r + 1) * row].tolist()
                if op == 0:
                    want = _tree_sum(lanes)
                else:
                    top = from_bf16(np.array(lanes[:1], np.uint16))
                    for v in lanes[1:]:
                        top = numerics.bf16_max(top, from_bf16(np.array([v], np.uint16)))
                    want = 0x7FC0 if np.isnan(top[0]) else bits(top)[0]
                assert out[s, r] == want, (op, s, r)
    # out over x itself: x is read whole before out is written
    x[...] = values
    native.step("REDUCE", 0, _view(memory, np.uint16, 64, (rows,), (2,)), x)()
    assert [int(v) for v in _view(memory, np.uint16, 64, (rows,), (2,))[0]] == \
        [_tree_sum(values[0, r * row:(r + 1) * row].tolist()) for r in range(rows)]


def test_reduce_step_refuses_what_vred_cannot_be():
    memory = _memory(np.random.default_rng(1))
    x = _view(memory, np.uint16, 0, (12,), (2,))
    assert native.step("REDUCE", 0, _view(memory, np.uint16, 100, (5,), (2,)), x) is None  # 12 lanes, 5 rows
    assert native.step("REDUCE", 2, _view(memory, np.uint16, 100, (3,), (2,)), x) is None  # op 0 or 1
    assert native.step("REDUCE", 0, _view(memory, np.uint16, 100, (3,), (4,)), x) is None  # strided out


def test_vlut_step_reads_each_samples_table_at_the_low_byte():
    rng = np.random.default_rng(3)
    memory = _memory(rng)
    x = _view(memory, np.uint16, 0, (700,), (2,))
    tables = _view(memory, np.uint16, 4096, (256,), (2,))
    out = _view(memory, np.uint16, 8192, (700,), (2,))
    x[:, :4] = [0x0000, 0x00FF, 0xFF00, 0xFFFF]  # the low byte only: entries 0, 255, 0, 255
    native.step("VLUT", 0, out, x, tables)()
    for s in range(memory.shape[0]):
        assert out[s].tolist() == [int(tables[s][int(v) % 256]) for v in x[s]]
    native.step("VLUT", 0, x, x, tables)()  # in place
    assert x.tolist() == out.tolist()
    assert native.step("VLUT", 0, out, x, tables[:, :255]) is None  # 256 entries


def test_seq_step_runs_its_steps_in_order():
    """A tiled operand: its copy into a scratch, then the lanes reading it (and nothing that can decline)."""
    rng = np.random.default_rng(4)
    a, pattern = rng.integers(0, 1 << 16, (2, 24)).astype(np.uint16), rng.integers(0, 1 << 16, (2, 3)).astype(np.uint16)
    scratch, out = np.empty((2, 24), np.uint16), np.empty((2, 24), np.uint16)
    shaped = scratch.reshape(2, 2, 3, 4)
    step = native.step("SEQ", 0, native.step("COPY", 0, shaped, np.broadcast_to(pattern[:, None, :, None], shaped.shape)),
                       native.step("LANES", 18, out, a, scratch))  # iadd
    step()
    want = (a.astype(np.int64) + np.repeat(np.tile(pattern, (1, 2)).reshape(2, 2, 3), 4, axis=2).reshape(2, 24)) % 65536
    assert out.tolist() == want.tolist()
    pattern[...] = 0  # each run tiles what the pattern holds then
    step()
    assert out.tolist() == a.tolist()
    reduce = native.step("REDUCE", 0, out[:, :6], a)  # a step that is no copy, lanes, pair, gather, lut or vlut
    assert reduce is not None and native.step("SEQ", 0, reduce) is None and native.step("SEQ", 0, a) is None


# float32 inputs of QuantizeLinear: zeros, halves on both sides of every rounding, the int8 edges and
# past them, subnormals, the largest floats, infinities and NaN
QUANTIZE_X = np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, 126.5, 127.5, 128.0, -127.5, -128.5,
                       -129.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, np.inf, -np.inf, np.nan,
                       -np.nan, 1000.25, -77.75], np.float32)


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0, 0.1, 1e-30, 1e30, 1e-45, 0.0078125])
@pytest.mark.parametrize("zp", [0, -128, 127, 5])
def test_quantize_matches_quantize_linear_at_the_edges(scale, zp):
    rng = np.random.default_rng(11)
    with np.errstate(over="ignore"):
        x = np.concatenate([QUANTIZE_X, QUANTIZE_X * np.float32(scale), (QUANTIZE_X + np.float32(0.5)) * np.float32(scale),
                            rng.standard_normal(300).astype(np.float32) * np.float32(200 * scale)]).reshape(-1, 2)
    want = numerics.quantize_affine(x, np.float32(scale), zp, -128, 127, out_dtype=np.int8)
    got = native.quantize(x, scale, zp)
    assert got is not None and got.dtype == np.int8 and got.shape == x.shape
    assert got.tolist() == want.tolist()


def test_quantize_declines_what_it_does_not_take():
    x = np.ones((4, 3), np.float32)
    assert native.quantize(x.astype(np.float64), 1.0, 0) is None  # float32 only
    assert native.quantize(x.T, 1.0, 0) is None  # contiguous only
    for scale in (0.0, -1.0, np.inf, np.nan):  # the spec's refusals
        assert native.quantize(x, scale, 0) is None
    assert native.quantize(x, 1.0, 200) is None  # a zero point outside int8


@pytest.mark.parametrize("dtype", [np.int8, "<u2", "<i4"])
def test_copy_lays_out_a_channels_first_tensor_as_numpy_does(dtype):
    """native.copy of a transposed view (a session's input in physical order) into an unaligned
    DRAM-like row: numpy's ascontiguousarray of it, byte for byte."""
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, (1, 3, 17, 13)).astype(dtype)
    physical = np.transpose(x, (0, 2, 3, 1))
    memory = np.zeros(x.nbytes + 1, np.uint8)
    out = memory[1:].view(dtype).reshape(physical.shape)  # (at an odd address)
    assert native.copy(out, physical)
    assert out.tobytes() == np.ascontiguousarray(physical).tobytes() and memory[0] == 0
    assert not native.copy(out[:, :2], physical)  # shapes differ: the caller copies
