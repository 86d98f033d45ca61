"""Attention remedies on the overlay.  Per-row A scales (quantize{rows=on}): the ViT block's softmax
probabilities are quantized row by row (``cvt bf16_i8_rows``) and softmax x V's requantize shifts
each row back (``rq.by_row``).  int32 scores (quantize{scores=on}): Q x K^T's accumulators are
stored as int32 and converted to bf16 for the softmax (``cvt i32_bf16``).  int32 patch
embeddings (quantize{patches=on}): the patch embedding conv runs as a linear layer over patch
rows.  The simulator equals the integer reference, and a one-LSB error in any of these simulator
stages is caught."""
import numpy as np
import pytest

from tcc.backends.overlay import compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import impl_quant, impl_vector
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.passes.quantize import Quantize
from tcc.runtime import Session

ENC = "examples/encoder/"


def vit_with(directory, rows: str, scores: str, patches: str = "auto"):
    calib = directory / "calib.npz"
    np.savez(calib, image=np.load(ENC + "vit_calib.npz")["image"][:24])
    passes = quantization_pipeline(str(calib))
    for p in passes:
        if isinstance(p, Quantize):
            p.rows, p.scores, p.residual, p.patches = rows, scores, "bf16", patches  # fixed: no measuring runs
    module = compile_to_ir(ENC + "vit_block.onnx", passes=DEFAULT_FLOAT_PIPELINE + passes)[0]
    return module, compile_overlay(module)


@pytest.fixture(scope="module")
def vit_rows(tmp_path_factory):
    return vit_with(tmp_path_factory.mktemp("vit_rows"), "on", "off")


@pytest.fixture(scope="module")
def vit_scores(tmp_path_factory):
    return vit_with(tmp_path_factory.mktemp("vit_scores"), "off", "on")


@pytest.fixture(scope="module")
def vit_patches(tmp_path_factory):
    return vit_with(tmp_path_factory.mktemp("vit_patches"), "off", "off", "on")


def samples(count):
    images = np.load(ENC + "vit_test.npz")["image"]
    return [{"image": images[i:i + 1]} for i in range(count)]


def test_softmax_rows_are_quantized_per_row_and_the_simulator_is_exact(vit_rows):
    module, artifact = vit_rows
    rows = [op for op in module.ops if op.kind == "quantize_rows"]
    assert len(rows) == 1 and rows[0].x.producer.kind == "softmax"
    assert rows[0].results[1].users[0].kind == "requantize"
    session = Session(artifact)
    shifts = []
    for x in samples(3):
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])
        shifts.append(run_module_shifts(module, x, rows[0].results[1]))
    assert max(s.max() for s in shifts) >= 1  # some rows really are on a finer grid


def run_module_shifts(module, x, value):
    seen = {}
    run_module(module, x, observe=lambda v, a: seen.update({id(v): a}) if v is value else None)
    return seen[id(value)]


def test_scores_reach_the_softmax_as_int32_and_the_simulator_is_exact(vit_scores):
    module, artifact = vit_scores
    scores = next(op for op in module.ops if op.kind == "softmax").x.producer
    assert scores.kind == "dequantize" and scores.x.type.dtype == "i32" and scores.x.producer.kind == "qmatmul"
    assert "cvt i32_bf16" in artifact_text(artifact)
    session = Session(artifact)
    for x in samples(3):
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])


def test_the_patch_embedding_runs_as_a_linear_layer_over_patch_rows_and_the_simulator_is_exact(vit_patches):
    """quantize{patches=on}: the patch embedding conv (kernel 4 = stride 4) is a qlinear over the int8
    image cut into 16 rows of 16 pixels by int8 moves; its accumulators reach the bf16 concat with the
    class token through one int32 grid (rules.patch_embedding); the device runs it (no qconv left)."""
    module, artifact = vit_patches
    assert not any(op.kind == "qconv" for op in module.ops)
    patches = next(op for op in module.ops if op.kind == "qlinear" and op.loc == "/patch_embedding/Conv")
    assert patches.x.type.shape == (1, 16, 16) and patches.x.producer.kind == "reshape"
    assert [u.kind for u in patches.result.users] == ["requantize"] and patches.result.users[0].dtype == "i32"
    cvt = patches.result.users[0].result.users[0]
    assert cvt.kind == "dequantize" and cvt.result.type.dtype == "bf16" and cvt.result.users[0].kind == "concat"
    assert "cvt i32_bf16" in artifact_text(artifact)
    session = Session(artifact)
    for x in samples(3):
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])


def artifact_text(artifact) -> str:
    from tcc.isa.disassembler import disassemble

    return disassemble(artifact.program)


@pytest.mark.parametrize("which, module, rule", [("rows", impl_quant, "row_shifted"),
                                                 ("rows", impl_vector, "shift_for_range"),
                                                 ("scores", impl_vector, "int8_to_bf16")])
def test_a_one_lsb_error_in_a_remedy_stage_is_caught(vit_rows, vit_scores, off_by_one_lsb, which, module, rule):
    ir, artifact = vit_rows if which == "rows" else vit_scores
    off_by_one_lsb(module, rule)
    session = Session(artifact)
    differs = False
    for x in samples(3):
        try:
            differs |= not np.array_equal(session.run(None, x)[0], run_module(ir, x)["logits"])
        except SimulatorTrap:  # a shift pushed out of range traps: caught as well
            differs = True
    assert differs
