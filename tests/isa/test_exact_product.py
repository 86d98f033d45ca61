"""The PE array's fast products at the extremes of their exactness bounds (exact_product.py's float
BLAS paths, int8_kernel.py's int8 kernel; the ``operand`` fixture runs a test on each): every
operand at its largest magnitude, reductions at and past the float32 slice length and up to the
longest one the int32 accumulator holds; expected sums are Python integers."""
import numpy as np
import pytest

from isa_helpers import setr
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.simulator import Machine, int8_kernel, native
from tcc.isa.simulator.exact_product import (Weights, exact_depthwise, exact_grouped, exact_product,
                                              exact_product_into, float32_terms, int32_fits)
from tcc.isa.target import load_target

TARGET = load_target()
INT32_MAX = 2**31 - 1
FLOAT32_TERMS = float32_terms(128)  # int8 weights: 1024


@pytest.fixture(params=["float", "int8"])
def operand(request, monkeypatch):
    """The A operand as each backend takes it: int8 values for the float paths (the int8 kernel off),
    biased (``a + 128``) for the int8 kernel, which takes it where its bound holds and this
    machine's kernel passed the probe (the float paths otherwise)."""
    if request.param == "float":
        monkeypatch.setattr(int8_kernel, "enabled", False)
        return lambda a: a
    return int8_kernel.biased


@pytest.mark.parametrize("k", [1, FLOAT32_TERMS - 1, FLOAT32_TERMS, FLOAT32_TERMS + 1, 3 * FLOAT32_TERMS + 7, 2**20])
@pytest.mark.parametrize("zp", [0, 127, -128])
def test_int8_extremes_sum_exactly(k, zp, operand):
    a = np.full((2, k), -128, np.int8)
    w = np.full((3, k), -128, np.int8)
    w[1] = 127
    got = exact_product(operand(a), w, zp, 128)
    expected = [[k * (-128 - zp) * int(w[n, 0]) for n in range(3)]] * 2
    assert got.dtype == np.int64 and got.tolist() == expected


@pytest.mark.parametrize("k", [1, 257, 4099, 2**20])
def test_wide_weight_extremes_sum_exactly(k):
    a = np.full((1, k), -128, np.int8)
    w = np.full((2, k), -2**15, np.int16)
    w[1] = 2**15 - 1
    assert exact_product(a, w, 127, 2**15).tolist() == [[k * -255 * -2**15, k * -255 * (2**15 - 1)]]


def test_a_zero_point_outside_int8_takes_the_integer_path(operand):
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (5, 3000)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 3000)).astype(np.int8)
    for zp in (200, -1000, 2**30):
        expected = [[sum((int(x) - zp) * int(y) for x, y in zip(row, col)) for col in w] for row in a]
        assert exact_product(operand(a), w, zp, 128).tolist() == expected


def test_depthwise_extremes_sum_exactly():
    k = FLOAT32_TERMS
    a = np.full((2, k, 3), -128, np.float32)
    w = np.full((3, k), -128, np.int8)
    assert exact_depthwise(a, w, 127, 128).tolist() == [[k * -255 * -128] * 3] * 2
    assert exact_depthwise(np.full((1, k + 1, 1), -128, np.int8), w[:1, :1].repeat(k + 1, 1), 127, 128).tolist() \
        == [[(k + 1) * -255 * -128]]


@pytest.mark.parametrize("taps", [(32, 32), (1, 1025)])  # FLOAT32_TERMS taps, and one past: the integer path
def test_depthwise_taps_of_an_image_sum_exactly(taps):
    """``tap_axes=2``: each output's (kh, kw) taps, as impl_pool.PaddedImage's strided view gives them."""
    k = taps[0] * taps[1]
    a = np.full((2, 1, *taps, 3), -128, np.float32)
    a[1, 0, -1, -1] = 127  # the last tap of the second output: -128 * 127 in place of -128 * -128
    w = np.full((3, k), -128, np.int8)
    expected = [[[k * -255 * -128] * 3], [[(k - 1) * -255 * -128 + 0 * -128] * 3]]
    assert exact_depthwise(a, w, 127, 128, tap_axes=2).tolist() == expected
    into = np.zeros((2, 1, 3), np.int32)
    assert exact_depthwise(a, w, 127, 128, into, tap_axes=2) is None and into.tolist() == expected


@pytest.mark.parametrize("k", [1, FLOAT32_TERMS, FLOAT32_TERMS + 1])
@pytest.mark.parametrize("zp", [0, 127, -128])
def test_grouped_extremes_sum_exactly(k, zp, operand):
    """Three groups of two output channels, the last one short (5 channels): one batched float32
    product up to the slice length, group by group past it."""
    a = np.full((3, 2, k), -128, np.int8)
    a[1] = 127
    w = np.full((5, k), -128, np.int8)
    w[1::2] = 127
    got = exact_grouped(operand(a), Weights(w, 128), 5, 2, zp, 128)
    expected = [[k * (int(a[n // 2, 0, 0]) - zp) * int(w[n, 0]) for n in range(5)]] * 2
    assert got.dtype == np.int64 and got.tolist() == expected
    into = np.zeros((2, 5), np.int32)  # written into int32 accumulators (every sum fits: int32_fits)
    if exact_grouped(operand(a), Weights(w, 128), 5, 2, zp, 128, into) is None:
        assert into.tolist() == expected


@pytest.mark.parametrize("k", [1, FLOAT32_TERMS])
@pytest.mark.parametrize("zp", [0, 127, -128])
def test_full_groups_written_into_strided_int32_sum_exactly(k, zp, operand):
    """Three full groups of two channels written straight into accumulators with a row stride
    (their (M, groups, size) view): each column its own sum, the columns past them untouched."""
    rng = np.random.default_rng(k)
    a = rng.choice(np.array([-128, 127], np.int8), (3, 4, k))
    w = rng.choice(np.array([-128, 127], np.int8), (6, k))
    acc = np.full((4, 8), 7, np.int32)
    assert exact_grouped(operand(a), Weights(w, 128), 6, 2, zp, 128, acc[:, :6]) is None
    expected = [[sum((int(x) - zp) * int(y) for x, y in zip(a[n // 2, m], w[n])) for n in range(6)] for m in range(4)]
    assert acc[:, :6].tolist() == expected and (acc[:, 6:] == 7).all()


@pytest.mark.parametrize("zp", [0, 127, -128])
def test_depthwise_written_into_int32_sums_exactly(zp):
    a = np.full((2, 9, 3), -128, np.float32)
    a[1] = 127
    w = np.full((3, 9), -128, np.int8)
    w[1] = 127
    expected = [[9 * (int(a[m, 0, 0]) - zp) * int(w[n, 0]) for n in range(3)] for m in range(2)]
    into = np.zeros((2, 3), np.int32)
    assert exact_depthwise(a, w, zp, 128, into) is None and into.tolist() == expected
    assert exact_depthwise(a, w, zp, 128).tolist() == expected


def gemm_accumulator(a: np.ndarray, w: np.ndarray, zp: int) -> list[int]:
    """One row of A against one weight row through a `matmul gemm` instruction."""
    k = a.size
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:k] = a.view(np.uint8)
    machine.buffers["wbuf"][:k] = w.view(np.uint8)
    program = (setr({"mm.m": 1, "mm.n": 1, "mm.k": k, "mm.a_row": k, "mm.w_row": k, "mm.acc_row": 1, "mm.a_zp": zp})
               + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n")
    machine.run(encode_program(assemble(program)))
    return machine.buffers["acc"][:4].view("<i4").tolist()


def test_the_longest_reduction_the_accumulator_holds():
    """(-128 - 127) * -128 = 32640 per term: 65793 terms are the most below 2**31."""
    k = INT32_MAX // 32640
    a, w = np.full(k, -128, np.int8), np.full(k, -128, np.int8)
    assert gemm_accumulator(a, w, 127) == [k * 32640]


def test_a_one_bit_error_in_the_product_fails_the_extremes_check(monkeypatch):
    """The check above sees a broken fast path: the lowest bit of every product flipped (the BLAS
    path's: the C kernel, native.c mm, which takes this small product where it is built, is turned
    off; tests/isa/test_native.py breaks that one)."""
    monkeypatch.setattr(native, "enabled", False)
    k = FLOAT32_TERMS
    a, w = np.full(k, -128, np.int8), np.full(k, -128, np.int8)
    assert gemm_accumulator(a, w, 0) == [k * 16384]
    flip_the_products_lowest_bit(monkeypatch)
    assert gemm_accumulator(a, w, 0) == [k * 16384 + 1]


def flip_the_products_lowest_bit(monkeypatch) -> None:
    """Break the matrix unit's products, both the int64 one and the one written into int32 accumulators."""
    import tcc.isa.simulator.impl_matrix as impl_matrix

    real_product, real_into = impl_matrix.exact_product, impl_matrix.exact_product_into

    def into(out, *args):
        real_into(out, *args)
        out ^= 1

    monkeypatch.setattr(impl_matrix, "exact_product", lambda *args: real_product(*args) ^ 1)
    monkeypatch.setattr(impl_matrix, "exact_product_into", into)


@pytest.mark.parametrize("k, zp", [(1, 0), (FLOAT32_TERMS, -128), (FLOAT32_TERMS + 1, 127), (65793, 127)])
def test_the_product_written_into_int32_sums_exactly(k, zp, operand):
    """exact_product_into (a product that fits int32 by its bound) against exact_product, at the extremes."""
    a = np.full((2, k), -128, np.int8)
    w = np.full((3, k), -128, np.int8)
    w[1] = 127
    assert int32_fits(k, zp, 128)
    out = np.zeros((2, 3), np.int32)
    exact_product_into(out, operand(a), Weights(w, 128), zp, 128)
    assert out.tolist() == exact_product(a, w, zp, 128).tolist()
    assert not int32_fits(65794, 127, 128)
