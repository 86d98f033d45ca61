"""Pooling on the overlay: max pools whose window is cheaper as two one-dimensional passes take
them (the same bytes as one pass: the simulator equals the integer reference), and every pool's
row tile comes from the cycle model."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from overlay_run import run_wholly_on_the_overlay
from tcc.backends.overlay.pool_tiles import choose_pool_tiles, estimate_pool, pool_geometry
from tcc.isa.disassembler import disassemble
from tcc.isa.target import load_target
from tcc.runtime import open_session

TARGET = load_target()


def pool_model(kind: str, shape, **attrs) -> onnx.ModelProto:
    node = helper.make_node(kind, ["x"], ["y"], name="pool", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("kind, attrs, passes", [
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, 2),
    ("MaxPool", {"kernel_shape": [3, 2], "pads": [2, 0, 1, 1], "dilations": [2, 1]}, 2),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 1),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, 1),
])
def test_pools_run_bit_exact_in_one_or_two_passes_per_tile(kind, attrs, passes, tmp_path):
    run_wholly_on_the_overlay(pool_model(kind, [1, 40, 30, 22], **attrs), tmp_path, np.random.default_rng(3), 25.0)
    program = disassemble(open_session(tmp_path / "m.tcc").artifact.program, with_pc=False).splitlines()
    pools, stores = sum(line.startswith("pool") for line in program), sum(line.startswith("store") for line in program)
    assert stores > 1 and pools == passes * stores  # several row tiles, each one or two pool instructions


def test_the_chosen_pool_tile_is_the_cheapest_that_fits():
    g = pool_geometry(56, 56, 192, 28, 28, (3, 3), (2, 2), (1, 1), 0, True)
    assert not g.separable  # stride 2: 3 + 3 taps over twice the width is no saving
    s = pool_geometry(14, 14, 480, 14, 14, (3, 3), (1, 1), (1, 1), 1, True)
    assert s.separable and sum(s.taps(2, 480)) == 2 * 14 * 480 * (3 + 3)  # not 3 * 3 taps per output
    quarter = 131072
    for geometry in (g, s):
        tiles = choose_pool_tiles(geometry, quarter, TARGET)
        fitting = [th for th in range(1, geometry.h_out + 1)
                   if geometry.rows_in(th) * geometry.w * tiles.ct <= quarter and geometry.out_bytes(th, tiles.ct) <= quarter]
        assert tiles.th in fitting
        assert estimate_pool(geometry, tiles.th, tiles.ct, TARGET) == min(estimate_pool(geometry, th, tiles.ct, TARGET)
                                                                          for th in fitting)
