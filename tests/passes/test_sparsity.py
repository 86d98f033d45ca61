"""annotate-sparsity: golden IR text on a hand-computed module, densities on the events model against
an independent numpy computation of the masking rule, N:M detection on hand-pruned weights, errors."""
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir import parse_module, print_module, verify
from tcc.ir.interpreter.sparse import SparsityError
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PassManager, parse_pipeline
from tcc.passes.sparsity import annotation, nm_fractions

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events"

# A stride-2 3x3 stem, ReLU, a 1x1 projection whose weight is 2:4 sparse along input channels
# (row 0: 1:4, row 1: 2:4 but not 1:4), global pooling.
TINY = textwrap.dedent("""
    module @tiny {
      input %x : f32[1,2,6,6]
      %w = const() {value = splat<f32[8,2,3,3], 0.5>} : f32[8,2,3,3] loc("stem")
      %b = const() {value = dense<f32[8], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]>} : f32[8] loc("stem")
      %y = conv(%x, %w, %b) {dilations = [1, 1], group = 1, pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1,8,3,3] loc("stem")
      %r = relu(%y) : f32[1,8,3,3] loc("relu")
      %p = const() {value = dense<f32[2,8,1,1], [1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0]>} : f32[2,8,1,1] loc("project")
      %z = conv(%r, %p) {dilations = [1, 1], group = 1, pads = [0, 0, 0, 0], strides = [1, 1]} : f32[1,2,3,3] loc("project")
      %g = global_avg_pool(%z) : f32[1,2,1,1] loc("pool")
      output "g" = %g
    }
    """).lstrip()


@pytest.fixture
def tiny_calib(tmp_path):
    # sample 0: one active site (0, 0); sample 1: (5, 5) and (2, 3).
    x = np.zeros((2, 1, 2, 6, 6), np.float32)
    x[0, 0, 0, 0, 0] = 1
    x[1, 0, 1, 5, 5] = 2
    x[1, 0, 0, 2, 3] = 3
    np.savez(tmp_path / "calib.npz", x=x)
    return tmp_path / "calib.npz"


def annotate(text: str, calib, mode: str) -> str:
    module = parse_module(text)
    PassManager(parse_pipeline(f"annotate-sparsity{{calib={calib},mode={mode}}}")).run(module)
    return print_module(module)


def test_golden_submanifold(tiny_calib):
    # input density (1 + 2) / 2 / 36; stem: 2x2 cells (0,0) | (2,2), (1,1) -> (1 + 2) / 2 / 9, each
    # active output's centred 3x3 window holds one active input.
    out = annotate(TINY, tiny_calib, "submanifold")
    stem = ('%y = conv(%x, %w, %b) {dilations = [1, 1], group = 1, pads = [1, 1, 1, 1], '
            'sparsity.density = 0.166667, sparsity.in_density = 0.041667, sparsity.mode = "submanifold", '
            'sparsity.neighbours = 1.0, sparsity.submanifold = 1, sparsity.weight_zeros = 0.0, strides = [2, 2]} '
            ': f32[1,8,3,3] loc("stem")')
    project = ('%z = conv(%r, %p) {dilations = [1, 1], group = 1, pads = [0, 0, 0, 0], '
               'sparsity.density = 0.166667, sparsity.in_density = 0.166667, sparsity.mode = "submanifold", '
               'sparsity.nm = "2:4", sparsity.nm_1of4 = 0.5, sparsity.nm_2of4 = 1.0, sparsity.nm_4of8 = 1.0, '
               'sparsity.submanifold = 1, sparsity.weight_zeros = 0.625, strides = [1, 1]} : f32[1,2,3,3] '
               'loc("project")')
    assert f"  {stem}\n" in out and f"  {project}\n" in out
    assert ('%r = relu(%y) {sparsity.density = 0.166667, sparsity.mode = "submanifold", '
            'sparsity.submanifold = 1}') in out
    assert '%g = global_avg_pool(%z) {sparsity.density = 1.0, sparsity.mode = "submanifold"' in out
    again = parse_module(out)
    verify(again)
    assert print_module(again) == out
    assert annotation(next(op for op in again.ops if op.loc == "project" and op.kind == "conv")) == {
        "density": 0.166667, "in_density": 0.166667, "mode": "submanifold", "nm": "2:4", "nm_1of4": 0.5,
        "nm_2of4": 1.0, "nm_4of8": 1.0, "submanifold": 1, "weight_zeros": 0.625}
    assert annotation(again.ops[0]) is None


def test_golden_exact(tiny_calib):
    # exact: outputs whose window touches an active input: {(0,0)} | {(2,2), (1,1), (1,2)} -> 4 / 18
    # (the input background 0 equals the zero padding, so the border adds nothing).
    out = annotate(TINY, tiny_calib, "exact")
    assert ('pads = [1, 1, 1, 1], sparsity.density = 0.222222, sparsity.in_density = 0.041667, '
            'sparsity.mode = "exact", sparsity.neighbours = 1.0,') in out
    assert '%r = relu(%y) {sparsity.density = 0.222222, sparsity.mode = "exact", sparsity.submanifold = 1}' in out
    assert print_module(parse_module(out)) == out
    # annotating again replaces every earlier annotation
    assert annotate(out, tiny_calib, "submanifold") == annotate(TINY, tiny_calib, "submanifold")


def reach(mask: np.ndarray, stride: int) -> np.ndarray:
    """Independent: output sites of a 3x3 window (pads 1) touching an active site, by loops."""
    h, w = mask.shape
    out = np.zeros((-(-h // stride), -(-w // stride)), bool)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            ci, cj = i * stride, j * stride
            out[i, j] = mask[max(ci - 1, 0):ci + 2, max(cj - 1, 0):cj + 2].any()
    return out


@pytest.fixture(scope="module")
def events_int8():
    return compile_to_ir(EVENTS / "events_dense.onnx", passes=DEFAULT_FLOAT_PIPELINE
                         + quantization_pipeline(EVENTS / "events_calib.npz"))[0]


@pytest.mark.parametrize("mode", ["submanifold", "exact"])
def test_events_densities_match_numpy(events_int8, mode):
    module = parse_module(print_module(events_int8))
    calib = EVENTS / "events_calib.npz"
    PassManager(parse_pipeline(f"annotate-sparsity{{calib={calib},mode={mode}}}")).run(module)
    with np.load(calib) as data:
        m1 = np.abs(data["input"]).max(axis=1) > 0  # [N, 32, 32]
    cells = {32: m1}
    for size in (16, 8, 4):
        cells[size] = cells[2 * size].reshape(len(m1), size, 2, size, 2).any(axis=(2, 4))
    found = {op.results[0].name: annotation(op) for op in module.ops if annotation(op)}
    assert found["input.q"]["density"] == pytest.approx(m1.mean(), abs=1e-6)
    stem = found["/stem/bn/BatchNormalization_output_0.acc"]
    assert stem["in_density"] == pytest.approx(m1.mean(), abs=1e-6)
    if mode == "submanifold":
        for op in module.ops:
            ann = annotation(op)
            if ann and "density" in ann and op.results[0].type.shape[2] > 1:
                expected = cells[op.results[0].type.shape[2]].mean()
                assert ann["density"] == pytest.approx(expected, abs=1e-6), op.results[0].name
                assert ann["submanifold"] == 1
    else:
        assert stem["density"] == pytest.approx(np.mean([reach(m, 2).mean() for m in m1]), abs=1e-6)
        # the 1x1 expand keeps the stem's set; the depthwise 3x3 adds the reach and, its input
        # background (ReLU of BN biases) differing from the zero padding, the whole border
        dw = found["/blocks.0/depthwise/bn/BatchNormalization_output_0.acc"]
        border = np.ones((16, 16), bool)
        border[1:-1, 1:-1] = False
        expected = np.mean([(reach(reach(m, 2), 1) | border).mean() for m in m1])
        assert dw["density"] == pytest.approx(expected, abs=1e-6)
    project = next(op for op in module.ops if op.loc == "/blocks.0/project/conv/Conv" and op.kind == "qconv")
    assert annotation(project)["nm"] == "none" and 0 <= annotation(project)["weight_zeros"] < 0.05
    text = print_module(module)
    assert print_module(parse_module(text)) == text


def test_nm_detection_on_hand_pruned_weights():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 12, 3, 3))
    # keep the 2 largest of every 4 consecutive input channels: 2:4 (hence 4:8), not 1:4
    groups = np.abs(w).reshape(6, 3, 4, 3, 3)
    rank = groups.argsort(axis=2).argsort(axis=2)
    pruned = np.where((rank >= 2).reshape(w.shape), w, 0.0)
    assert nm_fractions(pruned != 0) == {"1:4": 0.0, "2:4": 1.0, "4:8": 1.0}
    one = pruned.copy()
    one[:, 0::4] = 0.0  # still 2:4; groups whose two survivors included channel 0 become 1:4
    got = nm_fractions(one != 0)
    assert got["2:4"] == 1.0 and 0.0 < got["1:4"] < 1.0
    assert nm_fractions(np.ones((2, 3), bool)) == {}  # fewer input channels than any M
    # a linear weight [N, K]: along K; the last partial group of 8 (4 of 12) is padded with zeros
    assert nm_fractions(np.array([[1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1]], bool)) == {
        "1:4": 1 / 3, "2:4": 1 / 3, "4:8": 0.5}


def test_errors(tiny_calib):
    strided = TINY.replace("pads = [1, 1, 1, 1], strides = [2, 2]", "pads = [1, 1, 1, 1], strides = [3, 3]") \
                  .replace("f32[1,8,3,3]", "f32[1,8,2,2]").replace("f32[1,2,3,3]", "f32[1,2,2,2]")
    with pytest.raises(SparsityError, match=r"conv %y \(loc 'stem'\): no submanifold semantics: stride \[3, 3\]"):
        annotate(strided, tiny_calib, "submanifold")
    annotated = parse_module(annotate(strided, tiny_calib, "exact"))
    assert annotation(annotated.ops[2])["submanifold"] == 0
    with pytest.raises(SparsityError, match="needs|calib=FILE.npz"):
        PassManager(parse_pipeline("annotate-sparsity")).run(parse_module(TINY))
    with pytest.raises(SparsityError, match="mode 'dense' is not one of exact, submanifold"):
        annotate(TINY, tiny_calib, "dense")


def test_cli_reports_layers_without_submanifold_semantics(tcc_cli, tiny_calib, tmp_path):
    source = tmp_path / "strided.tir"
    source.write_text(TINY.replace("pads = [1, 1, 1, 1], strides = [2, 2]", "pads = [0, 0, 0, 0], strides = [2, 2]")
                      .replace("f32[1,8,3,3]", "f32[1,8,2,2]").replace("f32[1,2,3,3]", "f32[1,2,2,2]"))
    code, out, err = tcc_cli("opt", source, "--passes", f"annotate-sparsity{{calib={tiny_calib},mode=submanifold}}")
    assert code == 2 and out == ""
    assert "conv %y (loc 'stem'): no submanifold semantics: kernel [3, 3] with pads [0, 0, 0, 0]" in err
    assert "use --sparse-mode exact" in err and "Traceback" not in err
    code, out, _ = tcc_cli("opt", source, "--passes", f"annotate-sparsity{{calib={tiny_calib},mode=exact}}")
    assert code == 0 and "sparsity.submanifold = 0" in out
