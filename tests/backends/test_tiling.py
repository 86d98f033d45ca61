"""Conv tiling: the chosen tiles fit the buffers, and the cost model predicts the simulator."""
import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tcc.backends.overlay import compile_overlay
from tcc.backends.overlay.context import Buffers
from tcc.backends.overlay.tile_pipeline import pipeline_cycles
from tcc.backends.overlay.tiling import (ConvGeometry, choose_conv_tiles, choose_gemm_tiles, estimate, estimate_gemm,
                                         param_loads, pipeline_tiles, row_tiles, tile_matmul_cycles)
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.numerics import WeightFormat
from tcc.isa.cycles import dma_cycles, dram_beats, matmul_cycles, post_cycles
from tcc.isa.target import load_target
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session

INT8, INT16 = WeightFormat("int", 8), WeightFormat("int", 16)

TARGET = load_target()
BUFFERS = Buffers.of(TARGET)


@pytest.mark.parametrize("geometry", [
    ConvGeometry(56, 56, 64, 64, 56, 56, 3, 1, 1, 576, INT8, 32),
    ConvGeometry(7, 7, 512, 2048, 7, 7, 1, 1, 1, 512, INT8, 32),
    ConvGeometry(224, 224, 3, 64, 112, 112, 7, 2, 1, 147, INT8, 32),
    ConvGeometry(14, 14, 256, 256, 14, 14, 3, 1, 1, 2304, INT16, 32),
])
def test_chosen_tiles_fit_and_are_cheapest_among_fitting_ones(geometry):
    tiles = choose_conv_tiles(geometry, BUFFERS, TARGET)
    g = geometry
    assert tiles.tn * g.wbytes(g.k) <= BUFFERS.wbuf_h or tiles.tn == g.n and g.n * g.wbytes(g.k) <= BUFFERS.wbuf_h
    assert g.rows_in(tiles.th) * g.w * g.c <= BUFFERS.abuf_q
    assert tiles.th * g.w_out * tiles.tn * 4 <= BUFFERS.acc_h
    for th in (1, max(1, tiles.th // 2)):  # the chosen tiles time no slower than others as a pipeline
        assert pipeline_cycles(TARGET, pipeline_tiles(g, tiles.tn, th, TARGET)) >= tiles.cycles
    macs = g.h_out * g.w_out * g.n * g.k
    assert tiles.cycles >= macs / (TARGET.array_rows * TARGET.array_cols)


def tile_by_tile_estimate(g, tn, th, target, tc=0, first=0):
    """``estimate`` as a loop over every tile (what it counts once per tile size)."""
    load = compute = post = store = dram = first_load = last_store = 0
    chunks = [min(tc, g.c - c0) for c0 in range(0, g.c, tc)] if tc and g.kind == "conv" else [0]

    def loaded(*transfers):
        nonlocal dram
        dram += sum(dram_beats(target, t) for t in transfers)
        return sum(transfers)

    for n0 in range(0, g.n, tn):
        nt = min(tn, g.n - n0)
        load += loaded(*param_loads(target, nt, g.fmt), 0 if len(chunks) > 1 else dma_cycles(target, 1, nt * g.wbytes(g.k)))
        for _, rows in row_tiles(g.h_out, th, first):
            m, pixels = rows * g.w_out, g.rows_in(rows) * g.w
            for cn in chunks:
                if len(chunks) > 1:
                    load += loaded(dma_cycles(target, nt * g.taps, g.wbytes(cn)), dma_cycles(target, pixels, cn))
                    compute += matmul_cycles(target, m, nt, g.taps * cn, g.fmt, g.own_columns)
                else:
                    load += loaded(dma_cycles(target, pixels, nt) if tc else dma_cycles(target, 1, pixels * g.c))
                    compute += matmul_cycles(target, m, nt, g.k, g.fmt, g.own_columns) if tc else \
                        tile_matmul_cycles(g, m, nt, target)
                first_load = first_load or load
            last_store = dma_cycles(target, 1, m * nt) if nt == g.n else dma_cycles(target, m, nt)
            store += loaded(last_store)
            post += post_cycles(target, m * nt) * (1 + g.residual + g.lut)
            load += loaded(last_store) if g.residual else 0
    spread = min(target.cores, -(-g.n // tn) * len(row_tiles(g.h_out, th, first)))
    return -(-max(load, compute, post, store, dram) // spread) + first_load + last_store


@pytest.mark.parametrize("g, tn, th, tc, first", [
    (ConvGeometry(56, 56, 64, 64, 56, 56, 3, 1, 1, 576, INT8, 32), 32, 5, 0, 2),
    (ConvGeometry(7, 7, 512, 2048, 7, 7, 1, 1, 1, 512, INT8, 32, residual=True), 96, 3, 0, 0),
    (ConvGeometry(28, 28, 1024, 70, 14, 14, 3, 2, 1, 9216, INT16, 32, lut=True), 64, 3, 200, 1),
    (ConvGeometry(30, 30, 96, 96, 30, 30, 5, 1, 1, 25, INT8, 32, "depthwise", True), 64, 7, 64, 0),
])
def test_estimate_counts_each_tile_size_once_as_the_tiles_add_up(g, tn, th, tc, first):
    for target in (TARGET, dataclasses.replace(TARGET, cores=4)):
        assert estimate(g, tn, th, target, tc, first) == tile_by_tile_estimate(g, tn, th, target, tc, first)


def test_cost_model_predicts_the_simulated_layer(tmp_path):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 56, 56])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 56, 56])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, 1, 64, 56, 56)).astype(np.float32))
    module, _ = compile_to_ir(str(tmp_path / "m.onnx"),
                              passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "c.npz")))
    session = Session(compile_overlay(module))
    session.run(None, {"x": rng.standard_normal((1, 64, 56, 56)).astype(np.float32)})
    simulated = session.last_result.layers[0]["cycles"]
    predicted = choose_conv_tiles(ConvGeometry(56, 56, 64, 64, 56, 56, 3, 1, 1, 576, INT8, 32), BUFFERS, TARGET).cycles
    assert abs(simulated - predicted) / simulated < 0.15, (simulated, predicted)


def fc_model(tmp_path, k, n, rng):
    w = numpy_helper.from_array((rng.standard_normal((k, n)) * 0.05).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "fc.onnx"))
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, 1, k)).astype(np.float32))
    module, _ = compile_to_ir(str(tmp_path / "fc.onnx"),
                              passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "c.npz")))
    return module


@pytest.mark.parametrize("m, n, k", [(1, 4096, 9216), (1, 1000, 544), (196, 768, 3072), (64, 64, 64)])
def test_chosen_gemm_tiles_fit_and_beat_their_neighbours(m, n, k):
    tiles = choose_gemm_tiles(m, n, k, INT8, BUFFERS, TARGET)
    assert tiles.tn * tiles.kt <= BUFFERS.wbuf_h and tiles.tm * tiles.tn * 4 <= BUFFERS.acc_h
    assert tiles.tm * (k if tiles.resident else tiles.kt) <= BUFFERS.abuf_q
    assert tiles.cycles >= max(m * n * k / TARGET.peak_macs_per_cycle, n * k / TARGET.dram_bytes_per_cycle)
    for tn in {32, n}:
        assert estimate_gemm(m, n, k, INT8, tn, 1, min(k, BUFFERS.wbuf_h // tn), False, TARGET) >= tiles.cycles


def test_a_gemm_may_take_fewer_rows_than_fit_and_counts_its_fused_epilogue():
    """ConvNeXt's first MLP product (256 rows of 16, 64 columns, GELU fused): half the rows a tile,
    so the first tile's requantize and lookup run under the second tile's product; the lookup after
    the last tile's requantize counts after the array's last product."""
    tiles = choose_gemm_tiles(256, 64, 16, INT8, BUFFERS, TARGET, epilogue=2)
    assert (tiles.tn, tiles.tm, tiles.kt, tiles.resident) == (64, 128, 16, False)
    assert tiles.cycles < estimate_gemm(256, 64, 16, INT8, 64, 256, 16, False, TARGET, epilogue=2)
    alone, fused = (estimate_gemm(256, 64, 16, INT8, 64, 256, 16, False, TARGET, epilogue=e) for e in (1, 2))
    assert fused - alone >= post_cycles(TARGET, 256 * 64)
    # the second stage's (64 rows of 32, 128 columns) whose input abuf holds: read in place, in two row tiles
    on_chip = choose_gemm_tiles(64, 128, 32, INT8, BUFFERS, TARGET, epilogue=2, input_on_chip=True)
    assert (on_chip.tn, on_chip.tm, on_chip.resident) == (128, 32, True)
    assert on_chip.cycles < estimate_gemm(64, 128, 32, INT8, 128, 64, 32, True, TARGET, input_on_chip=True, epilogue=2)


def test_memory_bound_fc_streams_its_weights_at_dram_speed(tmp_path):
    """AlexNet's first FC layer at batch 1: the reduction is split over the array's idle rows, the
    weights stream in contiguous tiles under the compute, and the layer runs within 5% of the time
    its weights take to cross the DRAM interface; simulator == integer reference."""
    rng = np.random.default_rng(0)
    module = fc_model(tmp_path, 9216, 4096, rng)
    session = Session(compile_overlay(module))
    x = rng.standard_normal((1, 9216)).astype(np.float32)
    simulated = session.run(None, {"x": x})[0]
    np.testing.assert_array_equal(simulated, session.run_reference({"x": x})["y"])
    cycles = session.last_result.layers[0]["cycles"]
    weight_stream = 9216 * 4096 / TARGET.dram_bytes_per_cycle
    assert weight_stream <= cycles <= 1.05 * weight_stream
    predicted = choose_gemm_tiles(1, 4096, 9216, INT8, BUFFERS, TARGET).cycles
    assert abs(cycles - predicted) / cycles < 0.05, (cycles, predicted)


def test_row_tiles_cover_every_row_once_with_a_short_first_tile():
    assert row_tiles(28, 4, 2) == [(0, 2), (2, 4), (6, 4), (10, 4), (14, 4), (18, 4), (22, 4), (26, 2)]
    assert row_tiles(7, 3) == [(0, 3), (3, 3), (6, 1)]
    for total, th, first in ((56, 5, 1), (13, 13, 4), (1, 1, 0)):
        rows = [r for start, n in row_tiles(total, th, first) for r in range(start, start + n)]
        assert rows == list(range(total))


def test_pointwise_convs_tile_by_pixels_and_run_bit_exact(tmp_path):
    """A 1x1 stride-1 conv's map is cut into rows of 16, 8, 4, 2 or 1 pixels (whichever divides it),
    so its tiles need not be whole rows of the map; others keep their shape."""
    from overlay_run import run_wholly_on_the_overlay
    from tcc.backends.overlay.tiling import pixel_view

    assert pixel_view((1, 64, 7, 7), (1, 96, 7, 7), (1, 1), (1, 1), (0, 0, 0, 0)) == ((1, 64, 49, 1), (1, 96, 49, 1))
    assert pixel_view((1, 8, 14, 14), (1, 8, 14, 14), (1, 1), (1, 1), (0, 0, 0, 0)) == ((1, 8, 49, 4), (1, 8, 49, 4))
    assert pixel_view((1, 8, 14, 14), (1, 8, 14, 14), (3, 3), (1, 1), (1, 1, 1, 1)) == ((1, 8, 14, 14), (1, 8, 14, 14))
    rng = np.random.default_rng(5)
    weights = [numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)
               for name, shape in (("w1", (96, 64, 1, 1)), ("w2", (64, 24, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["b"], group=4, name="gpw"),
             helper.make_node("Add", ["b", "x"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 7, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 7, 7])], weights)
    run_wholly_on_the_overlay(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path, rng, 25.0)


def test_a_conv_narrower_than_the_array_runs_its_columns_as_two_gconvs_bit_exact(tmp_path):
    """24 output channels on 32 columns: as a pass of 16 and one of 8 columns, each a one-group
    gconv that splits the reduction over its idle columns, once the tile is tall enough to pay
    the second fill."""
    from overlay_run import run_wholly_on_the_overlay
    from tcc.backends.overlay.tiling import column_parts
    from tcc.isa.disassembler import disassemble
    from tcc.runtime import open_session

    g = ConvGeometry(64, 64, 3, 24, 32, 32, 3, 2, 1, 27, INT8, 32)
    assert column_parts(g, 1024, 24, TARGET) == [16, 8] and column_parts(g, 32, 24, TARGET) is None
    # 8 channels (DenseNet's growth) take 4 columns each; 40 as 32 + 8 are one gconv whose last pass splits K 4 ways
    assert column_parts(g, 1024, 8, TARGET) == [8] and column_parts(g, 1024, 40, TARGET) == [40]
    rng = np.random.default_rng(6)
    w = numpy_helper.from_array((rng.standard_normal((24, 3, 3, 3)) * 0.2).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 192, 192])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 96, 96])], [w])
    run_wholly_on_the_overlay(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path, rng, 25.0)
    program = disassemble(open_session(tmp_path / "m.tcc").artifact.program, with_pc=False)
    assert "matmul gconv" in program and "matmul conv" not in program


def test_a_recurrence_step_whose_weights_load_early_reduces_in_one_pass():
    """An LSTM step's h @ R^T (1 x 192 x 48): loaded cold, splitting the reduction overlaps half the
    weights' load with the product; with the weights loaded while the layers before run
    (``weights_early``) only the chunks' serial products are left, and one pass is cheapest."""
    cold = choose_gemm_tiles(1, 192, 48, INT8, BUFFERS, TARGET)
    early = choose_gemm_tiles(1, 192, 48, INT8, BUFFERS, TARGET, weights_early=True)
    assert cold.kt < 48 and early.kt == 48
    assert early.cycles < estimate_gemm(1, 192, 48, INT8, cold.tn, cold.tm, cold.kt, cold.resident, TARGET,
                                        weights_early=True)


def test_a_tiling_spread_over_cores_is_timed_on_its_busiest_core():
    """On 8 cores each core runs its contiguous share of the tiles (Context.share): the chosen
    tiling's cycles are the slowest share's pipeline, never a short share's (ResNet-50's 14 x 14 x
    256 3x3 convs chose a 2-row first tile that one core ran while another ran 12 rows), and the
    split keeps every core within 1.3x of an even share of the one-core work."""
    g = ConvGeometry(14, 14, 256, 256, 14, 14, 3, 1, 1, 2304, INT8, 32)
    eight = dataclasses.replace(TARGET, cores=8)
    tiles = choose_conv_tiles(g, Buffers.of(eight), eight)
    every = pipeline_tiles(g, tiles.tn, tiles.th, eight, tiles.tc, tiles.first)
    shares = [every[c * len(every) // 8:(c + 1) * len(every) // 8] for c in range(8)]
    slowest = max(pipeline_cycles(eight, share) for share in shares if share)
    assert tiles.cycles == slowest
    one = choose_conv_tiles(g, BUFFERS, TARGET)
    assert slowest <= 1.3 * one.cycles / 8


def test_wide_layers_tile_their_channels_so_the_parameters_fit_pbuf(tmp_path):
    """A linear of 32,768 outputs over 16 inputs (a vocabulary projection's shape) and a 1x1 conv
    of 4,096 channels over 8: their weights fit wbuf whole, but a tile's requantization triples
    must fit a pbuf half (2,496 channels); the gemm's widest tile was all 32,768 columns, and the
    program trapped on its pbuf load.  Simulator == integer reference."""
    from tcc.backends.overlay.epilogue import param_channels

    limit = param_channels(BUFFERS.pbuf_h)
    assert limit * 12 <= BUFFERS.pbuf_h < (limit + 200) * 13
    assert choose_gemm_tiles(3, 32768, 16, INT8, BUFFERS, TARGET).tn <= limit
    conv = ConvGeometry(8, 8, 8, 4096, 8, 8, 1, 1, 1, 8, INT8, 32)
    assert choose_conv_tiles(conv, BUFFERS, TARGET).tn <= limit
    rng = np.random.default_rng(3)
    module = fc_model(tmp_path, 16, 32768, rng)
    session = Session(compile_overlay(module))
    x = rng.standard_normal((1, 16)).astype(np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], session.run_reference({"x": x})["y"])
