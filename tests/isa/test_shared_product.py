"""Conv tiles of one layer reading the same windows share one wide product (shared_product.py):
a run after the first computes the tiles' columns in one BLAS call, and a tile whose weights or
slab differ from those the product was made with computes its own; every tile equals the naive
loop every time."""
import numpy as np
import pytest

from isa_helpers import setr
from test_simulator_matrix import conv_registers, naive_conv, run
from tcc.isa.simulator import Machine, native, shared_product
from tcc.isa.target import load_target

TARGET = load_target()
H, W, C, N, TILES = 5, 4, 6, 3, 4
K = 9 * C
SLAB, OTHER_SLAB, WEIGHTS = 0, 256, 512  # DRAM offsets: the slab, a second slab, tile t's weights at WEIGHTS + t * N * K


@pytest.fixture(autouse=True)
def numpy_path(monkeypatch):
    """The BLAS path's shared products: these tiles are small enough for the C kernel (native.c mm,
    which makes no windows to share) where it is built, so it is turned off here."""
    monkeypatch.setattr(native, "enabled", False)


def program(reload_at: int | None) -> str:
    """TILES conv tiles over one slab, each loading its own weights (alternating wbuf halves) into
    its own accumulators; the second slab is loaded over the first before tile ``reload_at``."""
    text = setr({"dma.planes": 1, "dma.rows": 1, "dma.row_bytes": H * W * C}) + f"load abuf, 0, {SLAB}\n"
    text += conv_registers(H, W, C, 3, 3, (1, 1), (1, 1), (1, 1), 0, (H, W), -3, H * W, N, K)
    for t in range(TILES):
        if t == reload_at:
            text += setr({"dma.row_bytes": H * W * C}) + f"load abuf, 0, {OTHER_SLAB}\n"
        text += setr({"dma.row_bytes": N * K}) + f"load wbuf, {t % 2 * 0x1000}, {WEIGHTS + t * N * K}\n"
        text += f"matmul conv, 0, int8, 0, {t * 0x400}, {t % 2 * 0x1000}\n"
    return text + "halt\n"


def expected(machine: Machine, reload_at: int | None) -> list[np.ndarray]:
    dram = machine.dram.view(np.int8)
    slabs = [dram[SLAB:SLAB + H * W * C], dram[OTHER_SLAB:OTHER_SLAB + H * W * C]]
    return [naive_conv(slabs[reload_at is not None and t >= reload_at].reshape(H, W, C),
                       dram[WEIGHTS + t * N * K:WEIGHTS + (t + 1) * N * K].reshape(N, K), -3, 3, 3, (1, 1), (1, 1),
                       (1, 1), (H, W), 0) for t in range(TILES)]


def accumulators(machine: Machine) -> list[np.ndarray]:
    return [machine.buffers["acc"][t * 0x400:t * 0x400 + 4 * H * W * N].view("<i4").reshape(H * W, N)
            for t in range(TILES)]


@pytest.mark.parametrize("reload_at", [None, 2])
def test_tiles_share_one_product_and_follow_changed_weights(reload_at, monkeypatch):
    products = []
    real = shared_product.fast_product
    monkeypatch.setattr(shared_product, "fast_product", lambda a, w, *rest: products.append(a.shape) or real(a, w, *rest))
    rng = np.random.default_rng(3)
    dram = rng.integers(0, 256, WEIGHTS + TILES * N * K, dtype=np.uint8)
    machine = Machine(TARGET, dram)
    machine.buffers["acc"].fill(0)
    for run_index in range(4):
        if run_index == 3:  # tile 1's weights change in DRAM: its columns of the wide product are stale
            machine.dram[WEIGHTS + N * K:WEIGHTS + 2 * N * K] = rng.integers(0, 256, N * K, dtype=np.uint8)
        products.clear()
        run(program(reload_at), machine=machine)
        for got, want in zip(accumulators(machine), expected(machine, reload_at)):
            np.testing.assert_array_equal(got, want)
        # run 0 has seen nothing: one product per tile; then one wide product per slab the tiles read
        # (run 2 reads the same bytes as run 1: its wide product still holds); run 3: tile 1's new
        # weights are not those in the wide product, so tile 1 computes its own
        want = [TILES, 1, 0, 1] if reload_at is None else [TILES, 2, 2, 3]
        assert len(products) == want[run_index]


def test_a_one_off_error_in_the_shared_columns_shows(monkeypatch):
    """The second run takes tiles 1..3 from the wide product: an error there must reach acc."""
    rng = np.random.default_rng(4)
    machine = Machine(TARGET, rng.integers(0, 256, WEIGHTS + TILES * N * K, dtype=np.uint8))
    run(program(None), machine=machine)
    real = shared_product.SharedWindows.product
    monkeypatch.setattr(shared_product.SharedWindows, "product", lambda *args: real(*args) + 1)
    run(program(None), machine=machine)
    assert all(not np.array_equal(got, want) for got, want in zip(accumulators(machine), expected(machine, None)))


def test_weights_are_held_once():
    """Tiles loading the same weight bytes share one decoded Weights, and once the wide product is
    made each tile's float copy is a view of the joined matrix (no second copy); still exact."""
    rng = np.random.default_rng(5)
    dram = rng.integers(0, 256, WEIGHTS + TILES * N * K, dtype=np.uint8)
    dram[WEIGHTS + 2 * N * K:WEIGHTS + 3 * N * K] = dram[WEIGHTS:WEIGHTS + N * K]  # tile 2 loads tile 0's weights
    machine = Machine(TARGET, dram)
    for _ in range(2):
        run(program(None), machine=machine)
        for got, want in zip(accumulators(machine), expected(machine, None)):
            np.testing.assert_array_equal(got, want)
    assert len(machine.weights) == TILES - 1
    (wide,) = machine.joined.values()
    joined = wide.transposed(np.float32)
    assert all(np.shares_memory(w.transposed(np.float32), joined) for w in machine.weights.values())
