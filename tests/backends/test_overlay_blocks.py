"""Blocks of modern trained CNNs (examples/block_models.py) on the overlay: each compiles with only a
calibration file, the simulator equals the integer reference bit for bit, and the output is close
to float onnxruntime (SQNR printed, a floor asserted)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import block_models
from tcc.backends.overlay import compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def compiled(model: onnx.ModelProto, tmp_path):
    np.savez(tmp_path / "calib.npz", **block_models.calibration(model))
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "calib.npz")))
    compile_overlay(module).save(tmp_path / "m.tcc")
    return module, Session(tmp_path / "m.tcc")


def check_against_float(model: onnx.ModelProto, tmp_path, min_db: float, samples: int = 2):
    """Simulator == reference on ``samples`` test inputs; returns the SQNR vs float onnxruntime."""
    module, session = compiled(model, tmp_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    float_session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = model.graph.input[0].name
    tests = block_models.calibration(model, samples, seed=11)[name]
    expected, got = [], []
    for x in tests:
        feeds = {name: x}
        simulated = session.run_dict(feeds)
        reference = run_module(module, feeds)
        for key in reference:
            np.testing.assert_array_equal(simulated[key], reference[key], err_msg=key)
        out = float_session.run(None, feeds)[0]
        expected.append(out)
        got.append(simulated[model.graph.output[0].name])
    db = sqnr_db(np.concatenate(expected), np.concatenate(got))
    print(f"{model.graph.name}: SQNR vs float onnxruntime {db:.1f} dB")
    assert db >= min_db
    return db


def test_dead_batchnorm_channels_compile_and_stay_accurate(tmp_path):
    """Folded BatchNorm with gammas ~1e-8 makes weights tiny and biases large: the weight scale of
    those channels widens so the bias fits the accumulator (was refused: bias does not fit int32)."""
    check_against_float(block_models.dead_gamma_cnn(), tmp_path, min_db=30.0)


@pytest.mark.parametrize("build, products, tables", [(block_models.silu_se_cnn, 1, 4),
                                                     (block_models.hardswish_cnn, 1, 3),
                                                     (block_models.gated_cnn, 2, 2),
                                                     (block_models.gelu_cnn, 0, 2)])
def test_activation_products_and_functions_run_in_int8(build, products, tables, tmp_path):
    """Products of two activations (squeeze-and-excitation's [1, C, 1, 1] gate over the map, a
    spatial [1, 1, H, W] gate, a GLU) are `emul` steps; SiLU (x * Sigmoid(x)), HardSwish (the op,
    and x * HardSigmoid(x)), sigmoid gates and GELU (erf and tanh forms) are one int8 table lookup
    each: no bf16 step, no mode switch.  (SQNR floor 22 dB: these random 6-layer nets calibrated on
    4 samples measure 24-31 dB, as onnxruntime's quantize_static does on them, bench/quant_vs_ort.py.)"""
    model = build()
    check_against_float(model, tmp_path, min_db=22.0)
    layers = Session(tmp_path / "m.tcc").artifact.metadata["layers"]
    kinds = [layer["kind"] for layer in layers] + [kind for layer in layers for kind in layer.get("fused", [])]
    assert (kinds.count("emul"), kinds.count("lut")) == (products, tables)  # a lut step or a conv's fused epilogue
    assert not {"vector", "cvt_in", "cvt_out"} & set(kinds)


def test_convolutions_too_wide_for_one_tile_split_their_slab(tmp_path):
    """A 5x5 conv over 480 channels (12000 weights per output channel: 32 channels' weights exceed a
    wbuf half) accumulates input-channel chunks in acc; a 7x7 depthwise conv whose 6 x 80 x 320
    slab exceeds an abuf quarter loads only its channel tile's channels (both were refused)."""
    from tcc.backends.overlay.context import Buffers
    from tcc.backends.overlay.tiling import ConvGeometry, choose_conv_tiles
    from tcc.isa.target import load_target
    from tcc.isa.weights import INT8_WEIGHTS as INT8

    target = load_target()
    buffers = Buffers.of(target)
    dense = ConvGeometry(6, 80, 480, 32, 6, 80, 5, 1, 1, 12000, INT8, 32, "conv")
    depthwise = ConvGeometry(6, 80, 320, 320, 6, 80, 7, 1, 1, 49, INT8, 32, "depthwise")
    for geometry in (dense, depthwise):
        tiles = choose_conv_tiles(geometry, buffers, target)
        assert 0 < tiles.tc < geometry.c
        assert geometry.rows_in(tiles.th) * geometry.w * tiles.tc <= buffers.abuf_q
    check_against_float(block_models.wide_kernel_cnn(), tmp_path, min_db=30.0, samples=1)
