"""Golden programs for the int8 side of the simulator: matmul (gemm, conv, dwconv, gconv), requant,
pool, eadd and copy.  Expected values are worked out by hand or by naive loops in the test."""
import os

import numpy as np
import pytest

from isa_helpers import setr
from tcc.ir import numerics
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import Machine, impl_matrix, native
from tcc.isa.target import load_target

TARGET = load_target()


def run(text: str, dram=None, machine=None):
    machine = machine or Machine(TARGET, np.zeros(256, np.uint8) if dram is None else dram)
    result = machine.run(encode_program(assemble(text)))
    return machine, result


def int32_bytes(*values) -> np.ndarray:
    return np.array(values, "<i4").view(np.uint8)


def test_gemm_2x2_through_dram():
    # A = [[1, 2], [3, 4]], W (rows are output channels) = [[5, 6], [7, 8]], a_zp = 1:
    # acc = (A - 1) @ W.T = [[0*5+1*6, 0*7+1*8], [2*5+3*6, 2*7+3*8]] = [[6, 8], [28, 38]].
    # Requant per channel: bias (1, -2), multiplier 0.75 * 2**31 with shift 32 (x 0.375), zp 5:
    # [[7, 6], [29, 36]] * 0.375 = [[2.625, 2.25], [10.875, 13.5]] -> [[3, 2], [11, 14]] + 5.
    dram = np.zeros(256, np.uint8)
    dram[0:4] = np.array([1, 2, 3, 4], np.int8).view(np.uint8)
    dram[16:20] = np.array([5, 6, 7, 8], np.int8).view(np.uint8)
    dram[32:56] = int32_bytes(1, 3 << 29, 32, -2, 3 << 29, 32)
    machine, result = run(
        setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": 4})
        + "load abuf, 0, 0\nload wbuf, 0, 16\n"
        + setr({"dma.row_bytes": 24}) + "load pbuf, 0, 32\n"
        + setr({"mm.a": 0, "mm.a_row": 2, "mm.m": 2, "mm.n": 2, "mm.k": 2, "mm.a_zp": 1, "mm.w_row": 2, "mm.acc_row": 2})
        + "matmul gemm, 0, int8, 0, 0, 0\n"
        + setr({"rq.params": 0, "rq.m": 2, "rq.n": 2, "rq.src_row": 2, "rq.dst_row": 2, "rq.zp": 5, "rq.qmin": -128, "rq.qmax": 127})
        + "requant acc, i8, half_even, 0x100, 0\n"
        + setr({"dma.row_bytes": 4}) + "store abuf, 0x100, 64\nhalt\n", dram)
    assert machine.buffers["acc"][:16].view("<i4").tolist() == [6, 8, 28, 38]
    assert machine.dram[64:68].view(np.int8).tolist() == [8, 7, 16, 19]
    assert result.layers[0]["macs"] == 8
    assert (result.layers[0]["bytes_loaded"], result.layers[0]["bytes_stored"]) == (32, 4)
    assert dram[64] == 0  # the machine works on a copy


def test_gemm_accumulate_and_wide_weights():
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0:3] = np.array([1, -2, 3], np.int8).view(np.uint8)
    machine.buffers["wbuf"][0:6] = np.array([1000, -300, 7], "<i2").view(np.uint8)  # one int16 row
    machine.buffers["acc"][0:4] = int32_bytes(-5)
    text = (setr({"mm.m": 1, "mm.n": 1, "mm.k": 3, "mm.a_row": 3, "mm.w_row": 6, "mm.acc_row": 1})
            + "matmul mode=gemm, accumulate=1, wfmt=int16, wcap=0, acc=0, w=0\nhalt\n")
    # -5 + 1*1000 + (-2)*(-300) + 3*7 = 1616
    run(text, machine=machine)
    assert machine.buffers["acc"][0:4].view("<i4").tolist() == [1616]


def naive_conv(slab, weights, zp, kh, kw, stride, dilation, pad, out_hw, c0, depthwise=False):
    """acc[oy*w_out + ox, n] by loops over the docs' index formula."""
    (sh, sw), (dh, dw), (pt, pl), (h_out, w_out) = stride, dilation, pad, out_hw
    h, w, _ = slab.shape
    n_out = weights.shape[0]
    cg = 1 if depthwise else weights.shape[1] // (kh * kw)
    acc = np.zeros((h_out * w_out, n_out), np.int64)
    for oy in range(h_out):
        for ox in range(w_out):
            for n in range(n_out):
                total = 0
                for i in range(kh):
                    for j in range(kw):
                        iy, ix = oy * sh + i * dh - pt, ox * sw + j * dw - pl
                        if not (0 <= iy < h and 0 <= ix < w):
                            continue
                        for ci in range(cg):
                            if depthwise:
                                total += (int(slab[iy, ix, c0 + n]) - zp) * int(weights[n, i * kw + j])
                            else:
                                total += (int(slab[iy, ix, c0 + ci]) - zp) * int(weights[n, (i * kw + j) * cg + ci])
                acc[oy * w_out + ox, n] = total
    return acc


CONV_CASES = [  # (h, w, c, kh, kw, stride, dilation, pad, c0, cg)
    (5, 4, 3, 3, 3, (1, 1), (1, 1), (1, 1), 0, 3),
    (7, 6, 4, 3, 3, (2, 2), (1, 1), (1, 1), 0, 4),
    (6, 6, 2, 3, 2, (1, 2), (2, 1), (2, 0), 0, 2),
    (5, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, 3),  # a group: channels 2..4 of 6
    (6, 5, 3, 3, 3, (1, 1), (1, 1), (-1, 1), 0, 3),  # negative pad_top: skip the slab's first row
]


def conv_registers(h, w, c, kh, kw, stride, dilation, pad, c0, out_hw, zp, m, n, k):
    return setr({"mm.a": 0, "mm.m": m, "mm.n": n, "mm.k": k, "mm.a_zp": zp, "mm.w_row": k, "mm.acc_row": n,
                 "cv.h": h, "cv.w": w, "cv.c": c, "cv.kh": kh, "cv.kw": kw, "cv.sh": stride[0], "cv.sw": stride[1],
                 "cv.dh": dilation[0], "cv.dw": dilation[1], "cv.pad_top": pad[0], "cv.pad_left": pad[1],
                 "cv.w_out": out_hw[1], "cv.c0": c0})


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_with_padding_matches_naive_loop(case):
    h, w, c, kh, kw, stride, dilation, pad, c0, cg = case
    rng = np.random.default_rng(len(str(case)))
    h_out = (h + 2 * max(pad[0], 0) - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    n, k, zp = 5, kh * kw * cg, -3
    slab = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
    weights = rng.integers(-128, 128, (n, k), dtype=np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    machine.buffers["wbuf"][:weights.size] = weights.reshape(-1).view(np.uint8)
    m = h_out * w_out
    run(conv_registers(h, w, c, kh, kw, stride, dilation, pad, c0, (h_out, w_out), zp, m, n, k)
        + "matmul conv, 0, int8, 0, 0, 0\nhalt\n", machine=machine)
    got = machine.buffers["acc"][:4 * m * n].view("<i4").reshape(m, n)
    expected = naive_conv(slab, weights, zp, kh, kw, stride, dilation, pad, (h_out, w_out), c0)
    np.testing.assert_array_equal(got, expected)


def test_dwconv_matches_naive_loop():
    rng = np.random.default_rng(7)
    h, w, c, c0, n = 5, 5, 6, 1, 4  # output channels 0..3 read slab channels 1..4
    slab = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
    weights = rng.integers(-128, 128, (n, 9), dtype=np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    machine.buffers["wbuf"][:weights.size] = weights.reshape(-1).view(np.uint8)
    run(conv_registers(h, w, c, 3, 3, (2, 2), (1, 1), (1, 1), c0, (3, 3), 4, 9, n, 9)
        + "matmul dwconv, 0, int8, 0, 0x40, 0\nhalt\n", machine=machine)
    got = machine.buffers["acc"][0x40:0x40 + 4 * 9 * n].view("<i4").reshape(9, n)
    expected = naive_conv(slab, weights, 4, 3, 3, (2, 2), (1, 1), (1, 1), (3, 3), c0, depthwise=True)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("short", [0, 1])
def test_gconv_packs_groups_into_one_pass(short):
    """gconv: output channels 0..5 (0..4: a short last group) in groups of 2 (cv.ng) read 3-channel
    groups (cv.cg) of the slab from channel 1; each group equals a conv over its own channels (the
    naive loop)."""
    rng = np.random.default_rng(11)
    h, w, c, c0, cg, ng, groups = 5, 4, 10, 1, 3, 2, 3
    k = 9 * cg
    slab = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
    weights = rng.integers(-128, 128, (groups * ng - short, k), dtype=np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    machine.buffers["wbuf"][:weights.size] = weights.reshape(-1).view(np.uint8)
    n, m = groups * ng - short, 5 * 4
    _, result = run(conv_registers(h, w, c, 3, 3, (1, 1), (1, 1), (1, 1), c0, (5, 4), -5, m, n, k)
                    + setr({"cv.cg": cg, "cv.ng": ng}) + "matmul gconv, 0, int8, 0, 0, 0\nhalt\n", machine=machine)
    got = machine.buffers["acc"][:4 * m * n].view("<i4").reshape(m, n)
    for g in range(groups):
        expected = naive_conv(slab, weights[g * ng:(g + 1) * ng], -5, 3, 3, (1, 1), (1, 1), (1, 1), (5, 4),
                              c0 + g * cg)
        np.testing.assert_array_equal(got[:, g * ng:(g + 1) * ng], expected)
    assert result.layers[0]["macs"] == m * n * k


def test_gconv_whose_groups_reduce_past_the_float_bound_writes_the_accumulators():
    """A 1x1 gconv of one group with K = 1044 and zero point -128 (rexnet_100's last tile of a 1044 ->
    185 projection): too long a reduction for one float32 product and too small for the int8
    kernel, so each group is multiplied exactly on its own, and that product must reach acc (it
    was computed and dropped, leaving acc's old bytes)."""
    rng = np.random.default_rng(12)
    m, k, n, zp = 4, 1044, 9, -128
    slab = rng.integers(-128, 128, (1, m, k), dtype=np.int8)
    weights = rng.integers(-127, 128, (n, k), dtype=np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    machine.buffers["wbuf"][:weights.size] = weights.reshape(-1).view(np.uint8)
    machine.buffers["acc"][:] = 0x5A  # stale accumulators
    run(conv_registers(1, m, k, 1, 1, (1, 1), (1, 1), (0, 0), 0, (1, m), zp, m, n, k)
        + setr({"cv.cg": k, "cv.ng": n}) + "matmul gconv, 0, int8, 0, 0, 0\nhalt\n", machine=machine)
    got = machine.buffers["acc"][:4 * m * n].view("<i4").reshape(m, n)
    expected = (slab.reshape(m, k).astype(np.int64) - zp) @ weights.astype(np.int64).T
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("short, zp, accumulate", [(0, -3, 0), (2, 127, 0), (1, -128, 1)])
@pytest.mark.parametrize("path", ["image", "gather", "native"])
@pytest.mark.parametrize("wfmt", ["int8", "int16"])
def test_dwconv_of_a_batch_matches_naive_loop(case, short, zp, accumulate, path, wfmt, monkeypatch):
    """dwconv over every conv geometry (strides, dilations, a negative pad_top: always the gather path),
    on the numpy path from the padded image or gathered (``path``, whatever the channel count), or
    in the C kernel (native.c mm, where it is built), on a batch of two slabs: the last ``short``
    outputs of a partial last row dropped, into accumulators holding 5 (``accumulate``); int8 or
    int16 weights (the C kernel's int32 products), the extremes among them."""
    monkeypatch.setattr(impl_matrix, "_IMAGE_CHANNELS", 1 if path == "image" else 2**31)
    monkeypatch.setattr(native, "enabled", native.enabled and path == "native")
    h, w, c, kh, kw, stride, dilation, pad, c0, _ = case
    rng = np.random.default_rng(len(str(case)) + short)
    h_out = (h + 2 * max(pad[0], 0) - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    n, m = c - c0, h_out * w_out - short
    slabs = rng.integers(-128, 128, (2, h, w, c), dtype=np.int8)
    wide = wfmt == "int16"
    weights = rng.integers(-32768, 32768, (n, kh * kw)).astype("<i2") if wide else \
        rng.integers(-128, 128, (n, kh * kw), dtype=np.int8)
    if wide:
        weights[0], weights[-1, ::2] = -32768, 32767
        slabs[:, :, :, c0] = -128  # channel 0's products: (-128 - zp) * -32768, the largest for zp 127
    machine = Machine(TARGET, np.zeros((2, 16), np.uint8))
    machine.memories[0][:, :slabs[0].size] = slabs.reshape(2, -1).view(np.uint8)
    machine.memories[1][:, :weights.nbytes] = weights.reshape(-1).view(np.uint8)
    machine.memories[2][:, :4 * m * n] = np.full(m * n, 5, "<i4").view(np.uint8)
    run(conv_registers(h, w, c, kh, kw, stride, dilation, pad, c0, (h_out, w_out), zp, m, n, kh * kw)
        + setr({"mm.w_row": weights.itemsize * kh * kw})
        + f"matmul dwconv, {accumulate}, {wfmt}, 0, 0, 0\nhalt\n", machine=machine)
    for i in range(2):
        got = machine.memories[2][i, :4 * m * n].view("<i4").reshape(m, n)
        expected = naive_conv(slabs[i], weights, zp, kh, kw, stride, dilation, pad, (h_out, w_out), c0, True)[:m]
        np.testing.assert_array_equal(got, expected + 5 * accumulate, err_msg=f"sample {i}")


@pytest.mark.parametrize("in_c", [False, True])
def test_dwconv_of_a_batch_in_parts_with_a_reduction_past_the_float_bound(in_c, monkeypatch):
    """A dwconv of 33x33 taps over a batch of two samples: on the numpy path its windows are made a
    sample at a time and each product, exact in int64 (1089 taps are past one float32 product's
    bound), must reach its sample's accumulators; the C kernel (``in_c``) must too."""
    monkeypatch.setattr(native, "enabled", native.enabled and in_c)
    rng = np.random.default_rng(13)
    h = w = 36
    kh, c, zp = 33, 8, -128
    out_hw = (h - kh + 1, w - kh + 1)
    m = out_hw[0] * out_hw[1]
    slabs = rng.integers(-128, 128, (2, h, w, c), dtype=np.int8)
    weights = rng.integers(-127, 128, (c, kh * kh), dtype=np.int8)
    machine = Machine(TARGET, np.zeros((2, 16), np.uint8))
    machine.memories[0][:, :slabs[0].size] = slabs.reshape(2, -1).view(np.uint8)
    machine.memories[1][:, :weights.size] = weights.reshape(-1).view(np.uint8)
    machine.memories[2][:] = 0x5A  # stale accumulators
    run(conv_registers(h, w, c, kh, kh, (1, 1), (1, 1), (0, 0), 0, out_hw, zp, m, c, kh * kh)
        + "matmul dwconv, 0, int8, 0, 0, 0\nhalt\n", machine=machine)
    for i in range(2):
        got = machine.memories[2][i, :4 * m * c].view("<i4").reshape(m, c)
        expected = naive_conv(slabs[i], weights, zp, kh, kh, (1, 1), (1, 1), (0, 0), out_hw, 0, depthwise=True)
        np.testing.assert_array_equal(got, expected, err_msg=f"sample {i}")


def requant_program(accs, multiplier, shift, rounding, out="i8", zp=0, qmin=-128, qmax=127):
    """One channel, len(accs) rows: params at pbuf 0, accumulators at acc 0, output at abuf 0."""
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["pbuf"][:12] = int32_bytes(0, multiplier, shift)
    machine.buffers["acc"][:4 * len(accs)] = int32_bytes(*accs)
    run(setr({"rq.params": 0, "rq.m": len(accs), "rq.n": 1, "rq.src_row": 1, "rq.dst_row": 1, "rq.zp": zp,
              "rq.qmin": qmin, "rq.qmax": qmax}) + f"requant acc, {out}, {rounding}, 0, 0\nhalt\n", machine=machine)
    size = 1 if out == "i8" else 4
    return machine.buffers["abuf"][:size * len(accs)].view(np.int8 if out == "i8" else "<i4").tolist()


def test_requant_rounding_ties():
    # multiplier 2**30 with shift 31 halves: 5/2 = 2.5, -5/2 = -2.5, 7/2 = 3.5, -7/2 = -3.5, 6/2 = 3
    accs = [5, -5, 7, -7, 6, 1]
    assert requant_program(accs, 2**30, 31, "half_even") == [2, -2, 4, -4, 3, 0]
    assert requant_program(accs, 2**30, 31, "half_up") == [3, -2, 4, -3, 3, 1]


def test_requant_saturates_and_adds_zero_point():
    # 1000 * 0.5 = 500 -> 127; -1000 * 0.5 + 10 = -490 -> -128; 101 * 0.5 = 50.5 -> 50 (+10 = 60)
    assert requant_program([1000, -1000, 101], 2**30, 31, "half_even", zp=10) == [127, -128, 60]


def test_requant_int32_output_from_abuf_with_pre_shift():
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0x100:0x104] = np.array([100, -100, 3, 4], np.int8).view(np.uint8)
    # two channels: (bias 1, x 0.5) and (bias -1, x 0.25); 2 rows of 2, src_zp 10, pre_shift 2
    machine.buffers["pbuf"][:24] = int32_bytes(1, 2**30, 31, -1, 2**30, 32)
    run(setr({"rq.params": 0, "rq.m": 2, "rq.n": 2, "rq.src_row": 2, "rq.dst_row": 2, "rq.src_zp": 10, "rq.pre_shift": 2,
              "rq.qmin": -(2**31), "rq.qmax": 2**31 - 1}) + "requant abuf, i32, half_even, 0, 0x100\nhalt\n",
        machine=machine)
    # ((100-10)<<2)+1 = 361 -> 180.5 -> 180; ((-100-10)<<2)-1 = -441 -> -110.25 -> -110
    # ((3-10)<<2)+1 = -27 -> -13.5 -> -14;   ((4-10)<<2)-1 = -25 -> -6.25 -> -6
    assert machine.buffers["abuf"][:16].view("<i4").tolist() == [180, -110, -14, -6]


@pytest.mark.parametrize("out", ["i8", "i32"])
@pytest.mark.parametrize("columns", ["alike", "differ"])
def test_requant_from_abuf_on_every_int8_value(out, columns):
    """requant abuf reads its stage from a table of every int8 input (impl_quant._ByteLookup): all 256
    values in 3 strided columns, against numerics' centre_and_shift and requantize applied here."""
    mults = [1518500250] * 3 if columns == "alike" else [1518500250, 2**30, 1234567891]
    shifts, biases = ([37] * 3, [5] * 3) if columns == "alike" else ([37, 31, 40], [5, -300, 0])
    zp, qmin, qmax = (3, -100, 120) if out == "i8" else (-7, -(2**31), 2**31 - 1)
    x = np.arange(-128, 128, dtype=np.int8).reshape(256, 1).repeat(3, axis=1)
    x[:, 1] = x[::-1, 1]
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0x1000:0x1000 + 256 * 4].reshape(256, 4)[:, :3] = x.view(np.uint8)  # rows of 4 bytes
    machine.buffers["pbuf"][:36] = int32_bytes(*[v for c in range(3) for v in (biases[c], mults[c], shifts[c])])
    run(setr({"rq.params": 0, "rq.m": 256, "rq.n": 3, "rq.src_row": 4, "rq.dst_row": 3, "rq.src_zp": -2,
              "rq.pre_shift": 1, "rq.zp": zp, "rq.qmin": qmin, "rq.qmax": qmax})
        + f"requant abuf, {out}, half_even, 0, 0x1000\nhalt\n", machine=machine)
    v = numerics.centre_and_shift(x.astype(np.int64), -2, 1) + np.array(biases)
    expected = numerics.requantize(v, np.array(mults), np.array(shifts), zp, qmin, qmax, "half_even")
    size = 1 if out == "i8" else 4
    got = machine.buffers["abuf"][:256 * 3 * size].view(np.int8 if out == "i8" else "<i4").reshape(256, 3)
    np.testing.assert_array_equal(got, expected)


def test_requant_from_abuf_whose_stage_refuses_some_int8_value():
    """A pre-shift that overflows for large inputs gets no table; the inputs present (0, 1) still
    requantize, and one that overflows traps."""
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0x100:0x102] = [0, 1]
    machine.buffers["pbuf"][:12] = int32_bytes(0, 1, 60)
    text = setr({"rq.params": 0, "rq.m": 2, "rq.n": 1, "rq.src_row": 1, "rq.dst_row": 1, "rq.pre_shift": 61,
                 "rq.qmin": -128, "rq.qmax": 127}) + "requant abuf, i8, half_even, 0, 0x100\nhalt\n"
    run(text, machine=machine)
    assert machine.buffers["abuf"][:2].view(np.int8).tolist() == [0, 2]
    machine.buffers["abuf"][0x101] = 100
    with pytest.raises(SimulatorTrap, match="requant"):
        run(text, machine=machine)


def pool_program(slab, mode, kernel, stride, pads, out_hw, zp=0, count_pad=0):
    h, w, c = slab.shape
    pad_top, pad_left, pad_bottom, pad_right = pads
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    run(setr({"cv.h": h, "cv.w": w, "cv.c": c, "cv.kh": kernel[0], "cv.kw": kernel[1], "cv.sh": stride[0], "cv.sw": stride[1],
              "cv.dh": 1, "cv.dw": 1, "cv.pad_top": pad_top, "cv.pad_left": pad_left, "cv.w_out": out_hw[1],
              "pl.h_out": out_hw[0], "pl.pad_bottom": pad_bottom, "pl.pad_right": pad_right, "pl.zp": zp,
              "pl.count_pad": count_pad, "pl.mult": 1 << 30, "pl.shift": 30, "pl.out_zp": zp})
        + f"pool {mode}, 0x1000, 0\nhalt\n", machine=machine)
    size = out_hw[0] * out_hw[1] * c
    return machine.buffers["abuf"][0x1000:0x1000 + size].view(np.int8).reshape(out_hw[0], out_hw[1], c)


def test_max_pool_padding_never_wins():
    values = np.array([[-9, -8, -7], [-6, -5, -4], [-3, -2, -1]], np.int8)
    slab = np.stack([values, values + 20], axis=-1)
    # 2x2 windows, stride 2, one row/column of padding above/left: (0,0) sees only -9
    got = pool_program(slab, "max", (2, 2), (2, 2), (1, 1, 0, 0), (2, 2))
    assert got[..., 0].tolist() == [[-9, -7], [-3, -1]]
    assert got[..., 1].tolist() == [[11, 13], [17, 19]]


def test_avg_pool_rounding_and_count_pad():
    slab = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int8)[..., None]
    # 3x3 windows, stride 2, padding 1 all round: in-slab sums 12, 16, 24, 28 over 4 positions
    got = pool_program(slab, "avg", (3, 3), (2, 2), (1, 1, 1, 1), (2, 2))
    assert got[..., 0].tolist() == [[3, 4], [6, 7]]
    # counting the padding: 12/9 = 1.33, 16/9 = 1.78, 24/9 = 2.67, 28/9 = 3.11
    got = pool_program(slab, "avg", (3, 3), (2, 2), (1, 1, 1, 1), (2, 2), count_pad=1)
    assert got[..., 0].tolist() == [[1, 2], [3, 3]]
    # ties round half to even: (1+2+3+4)/4 = 2.5 -> 2; with zp 1: (0+1+2+3)/4 = 1.5 -> 2, + 1
    tie = np.array([[1, 2], [3, 4]], np.int8)[..., None]
    assert pool_program(tie, "avg", (2, 2), (1, 1), (0, 0, 0, 0), (1, 1)).item() == 2
    assert pool_program(tie, "avg", (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), zp=1).item() == 3


def test_avg_pool_count_pad_stops_at_the_padded_extent():
    # a 2x2 slab, 3x3 kernel, stride 2, pad 1 above/left and none below/right: output (0,0)
    # window covers rows/cols -1..1, all inside the padded extent [-1, 2): divisor 9 with count_pad
    slab = np.full((2, 2, 1), 9, np.int8)
    assert pool_program(slab, "avg", (3, 3), (2, 2), (1, 1, 0, 0), (1, 1), count_pad=1).item() == 4  # 36/9
    # one more output column whose window (cols 1..3) leaves the padded extent after col 1
    got = pool_program(slab, "avg", (3, 3), (2, 2), (1, 1, 0, 0), (1, 2), count_pad=1)
    # (0,1): cols 1..3, of which only col 1 lies in [-1, 2): divisor 3 * 1, in-slab sum 18
    assert got[..., 0].tolist() == [[4, 6]]


def naive_pool(slab, mode, kernel, stride, dilation, pads, out_hw, zp, count_pad):
    h, w, c = slab.shape
    pad_top, pad_left, pad_bottom, pad_right = pads
    out = np.zeros(out_hw + (c,), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            for ch in range(c):
                values, padded = [], 0
                for i in range(kernel[0]):
                    for j in range(kernel[1]):
                        iy, ix = oy * stride[0] + i * dilation[0] - pad_top, ox * stride[1] + j * dilation[1] - pad_left
                        padded += -pad_top <= iy < h + pad_bottom and -pad_left <= ix < w + pad_right
                        if 0 <= iy < h and 0 <= ix < w:
                            values.append(int(slab[iy, ix, ch]))
                if mode == "max":
                    out[oy, ox, ch] = max(values)
                else:
                    mean = round(sum(v - zp for v in values) / (padded if count_pad else len(values)))
                    out[oy, ox, ch] = min(max(mean + zp, -128), 127)  # Python's round is half to even
    return out


@pytest.mark.parametrize("mode, count_pad", [("max", 0), ("avg", 0), ("avg", 1)])
def test_pool_with_dilation_and_uneven_padding_matches_naive_loop(mode, count_pad):
    rng = np.random.default_rng(11)
    slab = rng.integers(-128, 128, (7, 6, 3), dtype=np.int8)
    kernel, stride, dilation, pads, out_hw = (3, 2), (2, 1), (1, 2), (1, 0, 2, 1), (4, 4)
    h, w, c = slab.shape
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
    run(setr({"cv.h": h, "cv.w": w, "cv.c": c, "cv.kh": kernel[0], "cv.kw": kernel[1], "cv.sh": stride[0], "cv.sw": stride[1],
              "cv.dh": dilation[0], "cv.dw": dilation[1], "cv.pad_top": pads[0], "cv.pad_left": pads[1], "cv.w_out": out_hw[1],
              "pl.h_out": out_hw[0], "pl.pad_bottom": pads[2], "pl.pad_right": pads[3], "pl.zp": -5, "pl.count_pad": count_pad,
              "pl.mult": 1 << 30, "pl.shift": 30, "pl.out_zp": -5})
        + f"pool {mode}, 0x1000, 0\nhalt\n", machine=machine)
    got = machine.buffers["abuf"][0x1000:0x1000 + 16 * c].view(np.int8).reshape(4, 4, c)
    np.testing.assert_array_equal(got, naive_pool(slab, mode, kernel, stride, dilation, pads, out_hw, -5, count_pad))


def test_eadd_matches_requantize_composed_by_hand():
    a = np.array([10, -20, 127, -128, 0, 55], np.int8)
    b = np.array([3, 50, -128, 127, 1, -55], np.int8)
    a_mult, a_shift = numerics.quantize_multiplier(0.3)
    b_mult, b_shift = numerics.quantize_multiplier(0.45)
    out_mult, out_shift = numerics.quantize_multiplier(1 / (0.8 * 2**20))
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0:6] = a.view(np.uint8)
    machine.buffers["abuf"][0x40:0x46] = b.view(np.uint8)
    text = setr({"ea.b": 0x40, "ea.len": 6, "ea.a_zp": 2, "ea.b_zp": -1, "ea.a_mult": a_mult, "ea.a_shift": a_shift,
                 "ea.b_mult": b_mult, "ea.b_shift": b_shift, "ea.pre_shift": 20, "ea.out_mult": out_mult,
                 "ea.out_shift": out_shift, "ea.zp": -4, "ea.qmin": -128, "ea.qmax": 127})
    for op, combine in (("add", np.add), ("sub", np.subtract)):
        for rounding in ("half_even", "half_up"):
            run(text + f"eadd {op}, {rounding}, 0x80, 0\nhalt\n", machine=machine)
            va = numerics.requantize((a.astype(np.int64) - 2) << 20, a_mult, a_shift, 0, -(2**31), 2**31 - 1,
                                     rounding)
            vb = numerics.requantize((b.astype(np.int64) + 1) << 20, b_mult, b_shift, 0, -(2**31), 2**31 - 1,
                                     rounding)
            expected = numerics.requantize(combine(va.astype(np.int64), vb), out_mult, out_shift, -4, -128, 127,
                                           rounding)
            assert machine.buffers["abuf"][0x80:0x86].view(np.int8).tolist() == expected.tolist()


def test_emul_broadcasts_b_by_repeat_period_and_phase():
    # a: 2 pixels x 3 channels (NHWC) at abuf 0; b: a per-channel vector (1, 3) at 0x40.
    # (a - 1) * (b + 2) = [[-1*3, 9*-8, 99*4], [-21*3, 0*-8, -129*4]] = [[-3, -72, 396], [-63, 0, -516]];
    # times 0.25 (mult 2**30, shift 32), + zp 3, half_even: [-0.75, -18, 99, -15.75, 0, -129] ->
    # [-1, -18, 99, -16, 0, -129] + 3 = [2, -15, 102, -13, 3, -126] (then clamped at qmax 100).
    a = np.array([0, 10, 100, -20, 1, -128], np.int8)
    b = np.array([1, -10, 2], np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][0:6] = a.view(np.uint8)
    machine.buffers["abuf"][0x40:0x43] = b.view(np.uint8)
    regs = {"ea.b": 0x40, "ea.len": 6, "ea.a_zp": 1, "ea.b_zp": -2, "ea.out_mult": 2**30, "ea.out_shift": 32,
            "ea.zp": 3, "ea.qmin": -128, "ea.qmax": 100}
    run(setr(regs | {"em.b_rep": 1, "em.b_period": 3, "em.b_phase": 0}) + "emul half_even, 0x80, 0\nhalt\n",
        machine=machine)
    assert machine.buffers["abuf"][0x80:0x86].view(np.int8).tolist() == [2, -15, 100, -13, 3, -126]
    # b as a spatial map (one value per pixel, rep = channels), starting one element into the
    # pattern (phase 2): elements read b[0], b[1], b[1], b[1], b[2], b[2].
    run(setr(regs | {"em.b_rep": 3, "em.b_period": 3, "em.b_phase": 2}) + "emul half_up, 0x80, 0\nhalt\n",
        machine=machine)
    factors = np.array([3, -8, -8, -8, 4, 4])
    expected = [max(-128, min(100, int(np.floor((int(x) - 1) * f / 4 + 0.5)) + 3)) for x, f in zip(a, factors)]
    assert machine.buffers["abuf"][0x80:0x86].view(np.int8).tolist() == expected
    # whole periods from element 0 with rep 2 (impl_quant reads them as a broadcast view): b[0], b[0], b[1], ...
    run(setr(regs | {"em.b_rep": 2, "em.b_period": 3, "em.b_phase": 0}) + "emul half_up, 0x80, 0\nhalt\n",
        machine=machine)
    factors = np.array([3, 3, -8, -8, 4, 4])
    expected = [max(-128, min(100, int(np.floor((int(x) - 1) * f / 4 + 0.5)) + 3)) for x, f in zip(a, factors)]
    assert machine.buffers["abuf"][0x80:0x86].view(np.int8).tolist() == expected


def test_copy_transposes():
    matrix = np.arange(12, dtype=np.uint8).reshape(3, 4)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:12] = matrix.reshape(-1)
    # rows of 4 at stride 4 go to columns at stride 1 of a 4x3 matrix (row stride 3)
    run(setr({"cp.n0": 1, "cp.n1": 1, "cp.n2": 3, "cp.n3": 4, "cp.s2": 4, "cp.s3": 1, "cp.d2": 1, "cp.d3": 3, "cp.elem": 1})
        + "copy abuf, 0x20, 0\nhalt\n", machine=machine)
    assert machine.buffers["abuf"][0x20:0x2C].reshape(4, 3).tolist() == matrix.T.tolist()


def test_copy_of_two_byte_elements_in_place():
    values = np.arange(6, dtype="<u2")  # a 2x3 bf16-sized matrix, transposed onto itself
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["vbuf"][:12] = values.view(np.uint8)
    run(setr({"cp.n0": 1, "cp.n1": 1, "cp.n2": 2, "cp.n3": 3, "cp.s2": 6, "cp.s3": 2, "cp.d2": 2, "cp.d3": 4, "cp.elem": 2})
        + "copy vbuf, 0, 0\nhalt\n", machine=machine)  # every read happens before any write
    assert machine.buffers["vbuf"][:12].view("<u2").reshape(3, 2).tolist() == [[0, 3], [1, 4], [2, 5]]



@pytest.mark.parametrize("elem", [1, 2, 3, 4, 8])
def test_copy_transposes_elements_of_every_width_at_odd_addresses(elem):
    """A 4-axis transposing copy of ``elem``-byte elements from and to odd (unaligned) addresses:
    elements of 2, 4 and 8 bytes move as one uint16/32/64 item each (machine.whole_elements), the
    others byte by byte; every destination byte equals numpy's transpose of the source bytes."""
    rng = np.random.default_rng(elem)
    shape = (2, 3, 4, 5)  # (n0, n1, n2, n3) elements, read in that order, written transposed (n3, n2, n1, n0)
    source = rng.integers(0, 256, shape + (elem,), dtype=np.uint8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][1:1 + source.size] = source.reshape(-1)
    strides = [int(np.prod(shape[i + 1:])) * elem for i in range(4)]  # the source's, in bytes
    out_strides = [int(np.prod(shape[:i])) * elem for i in range(4)]  # axis 0 fastest
    run(setr({"cp.n0": 2, "cp.n1": 3, "cp.n2": 4, "cp.n3": 5, **{f"cp.s{i}": strides[i] for i in range(4)},
              **{f"cp.d{i}": out_strides[i] for i in range(4)}, "cp.elem": elem})
        + "copy abuf, 0x401, 1\nhalt\n", machine=machine)
    got = machine.buffers["abuf"][0x401:0x401 + source.size].reshape(5, 4, 3, 2, elem)
    assert got.tolist() == source.transpose(3, 2, 1, 0, 4).tolist()

@pytest.mark.parametrize("in_c", [False, True])
def test_pools_sharing_padded_images_match_naive_loop(in_c, monkeypatch):
    """Pools of a few taps read each tap as a strided view of the slab placed in a padded image
    (impl_pool.PaddedImage) that the machine keeps per placement: pools of many geometries one after
    another on one machine (some placing their slab alike, one after another with new data; two
    images of one size placing their slabs differently; dilations whose windows skip the first rows
    and columns and leave the last ones, so that only part of a row is read; a 1x1 window; a global
    pool of more taps than the image path takes; a channel of -128s under padded windows), each
    equal to the naive loop: on that numpy path, and in the C kernel (``in_c``: native.c pool_taps,
    where it is built; no image made)."""
    monkeypatch.setattr(native, "enabled", native.enabled and in_c)
    rng = np.random.default_rng(12)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    cases = [  # (h, w, c), kernel, stride, dilation, pads (top, left, bottom, right), out
        ((7, 6, 3), (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), (3, 2)),
        ((7, 6, 3), (3, 3), (2, 2), (1, 1), (0, 0, 0, 0), (3, 2)),  # the same image, new data
        ((7, 6, 3), (2, 2), (2, 2), (2, 2), (1, 1, 0, 0), (3, 2)),  # odd rows and columns only: first = w + 1
        ((5, 9, 2), (3, 2), (2, 3), (1, 2), (1, 0, 2, 1), (3, 3)),
        ((6, 6, 4), (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), (3, 3)),
        ((5, 5, 2), (5, 5), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),  # 25 taps: gathered
        ((7, 6, 3), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (4, 3)),
        ((6, 6, 2), (3, 3), (1, 1), (1, 1), (0, 0, 0, 0), (4, 4)),  # a 6 x 6 image with the slab at (0, 0)
        ((5, 5, 2), (3, 3), (1, 1), (1, 1), (1, 1, 0, 0), (4, 4)),  # a 6 x 6 image with the slab at (1, 1)
    ]
    for mode, count_pad in (("max", 0), ("avg", 0), ("avg", 1)):
        for (h, w, c), kernel, stride, dilation, pads, out_hw in cases:
            slab = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
            slab[..., 0] = -128  # a window's padding must not win a max over -128s
            machine.buffers["abuf"][:slab.size] = slab.reshape(-1).view(np.uint8)
            run(setr({"cv.h": h, "cv.w": w, "cv.c": c, "cv.kh": kernel[0], "cv.kw": kernel[1], "cv.sh": stride[0],
                      "cv.sw": stride[1], "cv.dh": dilation[0], "cv.dw": dilation[1], "cv.pad_top": pads[0],
                      "cv.pad_left": pads[1], "cv.w_out": out_hw[1], "pl.h_out": out_hw[0], "pl.pad_bottom": pads[2],
                      "pl.pad_right": pads[3], "pl.zp": 3, "pl.count_pad": count_pad, "pl.mult": 1 << 30,
                      "pl.shift": 30, "pl.out_zp": 3})
                + f"pool {mode}, 0x1000, 0\nhalt\n", machine=machine)
            size = out_hw[0] * out_hw[1] * c
            got = machine.buffers["abuf"][0x1000:0x1000 + size].view(np.int8).reshape(out_hw + (c,))
            want = naive_pool(slab, mode, kernel, stride, dilation, pads, out_hw, 3, count_pad)
            np.testing.assert_array_equal(got, want, err_msg=f"{mode} {count_pad} {(h, w, c)} {kernel} {dilation} {pads}")
    assert len(machine.images) >= (0 if native.kernels() else 4)  # images were made and shared


def test_a_machine_alternating_programs_runs_each_ones_plan():
    """One machine runs program A, A again (its plan found as the last one: compared, not hashed), B,
    then A: every run computes its own program's accumulators, and A's second run reuses its plan."""
    def program(zp):
        return encode_program(assemble(
            setr({"mm.a": 0, "mm.a_row": 2, "mm.m": 2, "mm.n": 2, "mm.k": 2, "mm.a_zp": zp, "mm.w_row": 2,
                  "mm.acc_row": 2}) + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n"))

    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:4] = [1, 2, 3, 4]
    machine.buffers["wbuf"][:4] = [5, 6, 7, 8]
    a, b = program(1), program(0)
    got = []
    for words in (a, a, b, a):
        machine.run(words)
        got.append(machine.buffers["acc"][:16].view("<i4").tolist())
    assert got == [[6, 8, 28, 38]] * 2 + [[17, 23, 39, 53], [6, 8, 28, 38]]
    assert machine.prepared(a) is machine.prepared(a)


def test_a_run_holds_blas_to_one_thread_only_where_it_multiplies_on_blas(monkeypatch):
    """A product on the numpy path (exact_product: BLAS) runs with BLAS held to one thread; a
    program whose every product is a C step does not touch the BLAS threads at all."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = []

    def counting(real):
        def product(*args, **kwargs):
            threads.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
            return real(*args, **kwargs)
        return product

    monkeypatch.setattr(impl_matrix, "exact_product", counting(impl_matrix.exact_product))
    monkeypatch.setattr(impl_matrix, "exact_product_into", counting(impl_matrix.exact_product_into))
    text = (setr({"mm.m": 4, "mm.n": 3, "mm.k": 5, "mm.a_row": 5, "mm.w_row": 5, "mm.acc_row": 3})
            + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n")
    words = encode_program(assemble(text))
    for in_c in (False, True):
        monkeypatch.setattr(native, "enabled", native.enabled and in_c)
        machine = Machine(TARGET, np.zeros(16, np.uint8))
        machine.buffers["abuf"][:20] = np.arange(20, dtype=np.uint8)
        machine.buffers["wbuf"][:15] = np.arange(15, dtype=np.uint8)
        with threadpool_limits(limits=2, user_api="blas"):  # (the tests' conftest holds BLAS to one)
            machine.run(words)
        assert machine.prepared(words).blas == (native.kernels() is None)
        expected = (np.arange(20).reshape(4, 5) @ np.arange(15).reshape(3, 5).T).tolist()
        assert machine.buffers["acc"][:48].view("<i4").reshape(4, 3).tolist() == expected
    with threadpool_limits(limits=2, user_api="blas"):
        outside = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert threads and set(threads) == {1} and (outside == {2} or os.cpu_count() == 1)  # (the numpy path's run)
