"""bf16 ops whose rows do not fit vbuf run in column tiles, a pass per row reduction
(backends/overlay/vector_columns.py): timm's poolformer_s12 normalizes rows of 100,352 and 200,704
elements (GroupNorm with one group), which ran on the host.

The tree identity the plan rests on is checked on the reference's own lanes; a GroupNorm(1) block and
a softmax over rows too long for one tile each run wholly on the device, simulator == integer
reference bit for bit, close to float onnxruntime; a row with no power-of-two factor of 64 stays on
the host with the reason named.
"""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.ir.numerics.bf16 import to_bf16
from tcc.ir.numerics.bf16_lanes import NumpyLanes


def _model(nodes, shape, inits, opset=18):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tile_trees(row, width):
    tiles = row.shape[1] // width
    partials = np.concatenate([NumpyLanes.row_sum(row[:, t * width:(t + 1) * width]) for t in range(tiles)], axis=1)
    return NumpyLanes.row_sum(partials)


@pytest.mark.parametrize("tiles,width", [(49, 64), (3, 128), (1, 256), (7, 1)])
def test_tree_of_tile_trees_is_the_row_tree(tiles, width):
    rng = np.random.default_rng(tiles)
    row = np.asarray(to_bf16(rng.standard_normal((64, tiles * width)) * 100), np.uint16)
    with np.errstate(all="ignore"):
        assert np.array_equal(_tile_trees(row, width), NumpyLanes.row_sum(row))
        # tiles whose width is not a power of two pair elements across tile boundaries: not the same
        assert not np.array_equal(_tile_trees(row[:, :96 * 5], 96), NumpyLanes.row_sum(row[:, :96 * 5])) \
            if tiles * width >= 96 * 5 else True


def group_norm_block(rng, channels=32, size=48):
    """conv -> GroupNorm(1) (poolformer's norm: one group over C x H x W) -> conv."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GroupNormalization", ["c", "scale", "bias"], ["n"], num_groups=1),
             helper.make_node("Conv", ["n", "w2"], ["y"])]
    inits = {"w": (rng.standard_normal((channels, 3, 3, 3)) / 4).astype(np.float32),
             "scale": rng.uniform(0.5, 1.5, channels).astype(np.float32),
             "bias": (rng.standard_normal(channels) * 0.1).astype(np.float32),
             "w2": (rng.standard_normal((8, channels, 1, 1)) / 5).astype(np.float32)}
    return _model(nodes, (1, 3, size, size), inits, opset=21)


def test_group_norm_of_a_long_row_runs_wholly_on_the_overlay(tmp_path):
    # 32 x 48 x 48 = 73,728 elements a row: 2 x 147 KB live vectors, more than vbuf's 256 KB
    run_wholly_on_the_overlay(group_norm_block(np.random.default_rng(7)), tmp_path, np.random.default_rng(8), 25.0,
                              calib_samples=4)


def test_softmax_of_a_long_row_runs_wholly_on_the_overlay(tmp_path):
    """Two reductions (the max, then the sum of exponentials) and exp's long sequence: rows of 32,768
    columns in its live vectors do not fit vbuf, so three passes over each row."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    inits = {"w": (rng.standard_normal((16, 32768)) * 2).astype(np.float32),  # peaked: int8 probabilities
             "v": rng.standard_normal((32768, 8)).astype(np.float32)}
    run_wholly_on_the_overlay(_model(nodes, (1, 3, 16), inits), tmp_path, rng, 20.0)


def test_row_without_a_power_of_two_factor_stays_on_the_host_with_its_reason(tmp_path, capsys):
    from tcc.cli import main

    model, calib = tmp_path / "m.onnx", tmp_path / "c.npz"
    model.write_bytes(group_norm_block(np.random.default_rng(1), channels=33, size=49).SerializeToString())
    np.savez(calib, x=np.random.default_rng(2).standard_normal((2, 1, 3, 49, 49)).astype(np.float32))
    assert main(["compile", str(model), "-t", "overlay", "--calib", str(calib), "-o", str(tmp_path / "m.tcc")]) == 0
    err = capsys.readouterr().err
    assert "runs on the host" in err and "a row of 79233 elements exceeds the vector buffer" in err
    assert "largest power-of-two factor (1) is under 64 columns" in err
