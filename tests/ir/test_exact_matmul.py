"""The integer reference's float32-BLAS products (ir/interpreter/exact_matmul.py) equal int64 sums
bit for bit, at the bound's extremes: every product -128 x -128 or 255 x -128, reductions exactly at
a chunk's length, one past it, and many chunks deep."""
from __future__ import annotations

import numpy as np
import pytest

from tcc.ir.interpreter.exact_matmul import F32_EXACT, chunk_terms, exact_conv, exact_linear, exact_matmul


def _int64_conv(attrs, x, w):
    """Direct int64 convolution (no BLAS, no float), stride 1, no padding."""
    group = attrs["group"]
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    out = np.zeros((n, m, h - kh + 1, wd - kw + 1), np.int64)
    mg = m // group
    for o in range(m):
        g = o // mg
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cg:(g + 1) * cg, i:i + out.shape[2], j:j + out.shape[3]]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return out


def test_chunk_length_is_the_bound():
    a = np.full((1, 4), -128, np.int64)
    assert chunk_terms(a, a) == F32_EXACT // (128 * 128) == 1024
    assert chunk_terms(np.full(3, 255), np.full(3, -128), terms_per_unit=9) == F32_EXACT // (255 * 128 * 9)


@pytest.mark.parametrize("k", [1024, 1025, 4096 + 7])
def test_linear_at_the_extremes(k):
    """-128 x -128 everywhere: a 1024-term chunk sums to exactly 2**24, the largest float32 step
    that is still exact; one term more must start a second chunk."""
    x = np.full((3, k), -128, np.int64)
    w = np.full((5, k), -128, np.int64)
    w[1] = 127
    bias = np.arange(5, dtype=np.float64) * 1000
    got = exact_linear(x, w, bias)
    want = x @ w.T + bias.astype(np.int64)
    assert got.dtype == np.float64 and np.array_equal(got, want)


def test_linear_off_by_one_in_float32_would_show():
    """The case the chunking exists for: 2**24 + 1 as one float32 sum rounds; exact_linear does not."""
    k = 1025
    x = np.full((1, k), -128, np.int64)
    w = np.full((1, k), -128, np.int64)
    x[0, -1], w[0, -1] = 1, 1  # total 2**24 + 1
    single = x.astype(np.float32) @ w.T.astype(np.float32)
    assert int(single[0, 0]) != F32_EXACT + 1  # float32 alone cannot hold it
    assert exact_linear(x, w)[0, 0] == F32_EXACT + 1


@pytest.mark.parametrize("k", [255, 2049])
def test_matmul_stacked_and_transposed(k):
    rng = np.random.default_rng(k)
    a = rng.choice([-255, 255, 254, -1], size=(2, 3, 7, k))
    b = rng.choice([-128, 127], size=(2, 3, 6, k)).swapaxes(-1, -2)  # a transposed view, as a Transpose op gives
    assert np.array_equal(exact_matmul(a, b), np.matmul(a, b))


def test_matmul_empty_reduction():
    assert np.array_equal(exact_matmul(np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64)), np.zeros((2, 3)))


@pytest.mark.parametrize("group,channels", [(1, 300), (3, 240)])
def test_conv_chunks_input_channels_per_group(group, channels):
    """255 x -128 over 3x3 taps: 57 channels per chunk, so 300 channels (or 80 per group) take several."""
    rng = np.random.default_rng(group)
    x = rng.choice([255, -255, 7], size=(1, channels, 5, 4))
    w = rng.choice([-128, 127], size=(6, channels // group, 3, 3))
    attrs = {"group": group, "strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}
    bias = np.array([1, -2, 3, -4, 5, -6], np.float64)
    got = exact_conv(attrs, x, w, bias)
    assert np.array_equal(got, _int64_conv(attrs, x, w) + bias.astype(np.int64).reshape(1, -1, 1, 1))


def test_products_beyond_float32_run_in_float64():
    x = np.array([[1 << 20, 3]], np.int64)
    w = np.array([[1 << 12, 5]], np.int64)  # one product is 2**32: no float32 chunk can hold it
    assert chunk_terms(x, w) == 0
    assert exact_linear(x, w)[0, 0] == (1 << 32) + 15
