"""Sparse reference semantics (ir/interpreter/sparse.py): submanifold mode against onnxruntime on the
events model's masked graph and against the README's masking rule, exact mode against the dense
interpreter (every value, element for element) with inactive sites holding the background."""
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import light_zoo
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir import parse_module
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.sparse import SparseInterpreter, SparsityError, cells, run_sparse
from tcc.passes import DEFAULT_FLOAT_PIPELINE

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events"


@pytest.fixture(scope="module")
def events():
    with np.load(EVENTS / "events_test.npz") as data:
        frames, labels = data["input"][:, None], data["label"]
    floating, _ = compile_to_ir(EVENTS / "events_dense.onnx")
    integer, _ = compile_to_ir(EVENTS / "events_dense.onnx", passes=DEFAULT_FLOAT_PIPELINE
                               + quantization_pipeline(EVENTS / "events_calib.npz"))
    return frames, labels, floating, integer


def dense_values(module, feeds) -> dict:
    seen = {}
    run_module(module, feeds, observe=lambda v, a: seen.__setitem__(v.name, a.copy()))
    return seen


def readme_masks(frame) -> dict:
    """examples/events/README.md's rule: m1 = any channel non-zero, each next one a 2x2 max pool."""
    masks = {32: np.abs(frame[0]).max(axis=0) > 0}
    for size in (16, 8, 4):
        m = masks[size * 2]
        masks[size] = m.reshape(size, 2, size, 2).any(axis=(1, 3))
    return masks


def test_float_submanifold_matches_the_masked_onnx_graph(events):
    frames, _, floating, _ = events
    session = ort.InferenceSession(str(EVENTS / "events_submanifold.onnx"), providers=["CPUExecutionProvider"])
    interpreter = SparseInterpreter(floating, "submanifold")
    for x in frames[::36]:  # 10 frames
        expected = session.run(None, {"input": x})[0]
        got = interpreter.run({"input": x})
        np.testing.assert_allclose(got.outputs["logits"], expected, rtol=1e-5, atol=1e-5)
        masks = readme_masks(x)
        for name, active in got.active.items():
            if active.shape[0] > 1:
                np.testing.assert_array_equal(active, masks[active.shape[0]], err_msg=name)
                inactive = got.values[name][0][:, ~active]
                assert not inactive.any(), f"{name}: inactive sites must hold real zero"


def test_int8_submanifold_keeps_the_trained_accuracy(events):
    # Measured on all 359 test frames: int8 submanifold 295/359 = 0.822 (float onnxruntime on the
    # masked graph 299/359 = 0.833); int8 exact (= dense) 135/359 = 0.376.  About 7 ms per frame.
    frames, labels, _, integer = events
    interpreter = SparseInterpreter(integer, "submanifold")
    predictions = []
    for x in frames:
        run = interpreter.run({"input": x})
        predictions.append(run.outputs["logits"].argmax())
    top1 = float(np.mean(np.array(predictions) == labels))
    assert top1 >= 0.80
    # inactive sites of every int8 spatial value hold its zero point (real zero)
    for name, active in run.active.items():
        t = next(v for v in integer.values() if v.name == name).type
        zp = t.quant.zero_point[0] if t.quant is not None else 0
        assert (run.values[name][0][:, ~active] == zp).all(), name
    np.testing.assert_array_equal(run.active["input.q"], readme_masks(frames[-1])[32])


def same_values(have, want, err_msg=""):
    """Integers equal; floats equal up to summation order: a background site's conv sums a
    different BLAS call than the dense map's, and BLAS kernels order their sums as they choose."""
    if np.issubdtype(np.asarray(want).dtype, np.floating):
        scale = float(np.abs(want).max(initial=0.0))
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6 * scale, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(have, want, err_msg=err_msg)


def check_exact(module, feeds) -> SparseInterpreter:
    """Exact mode equals the dense run in every value; inactive sites hold the background."""
    run = run_sparse(module, feeds, "exact")
    dense = dense_values(module, feeds)
    for name, value in module.outputs:
        same_values(run.outputs[name], dense[value.name])
    for name, array in run.values.items():
        if name in dense:
            same_values(array, dense[name], err_msg=name)
    for name, active in run.active.items():
        inactive = dense[name][0][:, ~active] if name in dense else run.values[name][0][:, ~active]
        same_values(inactive, np.broadcast_to(run.background[name][:, None], inactive.shape), err_msg=name)
    return run


def test_exact_equals_dense_on_the_int8_events_model(events):
    frames, _, floating, integer = events
    for x in frames[:3]:
        run = check_exact(integer, {"input": x})
        assert run.density("input.q") < 0.15
        assert run.density("/stem/bn/BatchNormalization_output_0.acc") < 0.5  # reach of a 3x3 stride-2 window
        check_exact(floating, {"input": x})


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    model = light_zoo.randomized("squeezenet", expose_logits=True)
    floating, _ = compile_to_ir(model)
    (x,) = floating.inputs
    calib = tmp_path_factory.mktemp("sq") / "calib.npz"
    np.savez(calib, **{x.name: np.random.default_rng(1).standard_normal((2, *x.type.shape)).astype(np.float32)})
    integer, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(calib))
    return floating, integer


@pytest.mark.parametrize("density", [0.5, 0.1])
def test_exact_equals_dense_on_squeezenet_with_sparse_inputs(squeezenet, density):
    floating, integer = squeezenet
    (x,) = integer.inputs
    rng = np.random.default_rng(int(density * 10))
    sample = rng.standard_normal(x.type.shape).astype(np.float32)
    sample *= rng.random((1, 1, *x.type.shape[2:])) < density
    run = check_exact(integer, {x.name: sample})
    assert abs(run.density(x.name) - density) < 0.02
    assert min(float(a.mean()) for a in run.active.values()) < 0.7  # some sites stay inactive
    check_exact(floating, {x.name: sample})


def test_submanifold_refuses_layers_without_a_rule(squeezenet):
    _, integer = squeezenet
    with pytest.raises(SparsityError, match=r"qconv .*\(loc 'n0'\): no submanifold semantics: kernel \[3, 3\] with pads \[0, 0, 0, 0\]"):
        SparseInterpreter(integer, "submanifold")
    with pytest.raises(SparsityError, match="sparse mode 'dense' is not one of exact, submanifold"):
        SparseInterpreter(integer, "dense")


TWO_CONVS = textwrap.dedent("""
    module @two {
      input %x : f32[1,1,7,7]
      %w1 = const() {value = dense<f32[2,1,1,1], [1.0, 2.0]>} : f32[2,1,1,1]
      %b1 = const() {value = dense<f32[2], [BIAS, 0.0]>} : f32[2]
      %a = conv(%x, %w1, %b1) {dilations = [1, 1], group = 1, pads = [0, 0, 0, 0], strides = [1, 1]} : f32[1,2,7,7] loc("pointwise")
      %w2 = const() {value = splat<f32[2,1,3,3], 1.0>} : f32[2,1,3,3]
      %y = conv(%a, %w2) {dilations = [1, 1], group = 2, pads = [1, 1, 1, 1], strides = [1, 1]} : f32[1,2,7,7] loc("depthwise")
      %z = conv(%y, %w2) {dilations = [1, 1], group = 2, pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1,2,4,4] loc("down")
      output "z" = %z
    }
    """)


@pytest.mark.parametrize("bias", [0.0, 0.5])
def test_exact_padding_rule_and_submanifold_cells(bias):
    module = parse_module(TWO_CONVS.replace("BIAS", repr(bias)))
    x = np.zeros((1, 1, 7, 7), np.float32)
    x[0, 0, 3, 3] = 1.0
    x[0, 0, 6, 0] = 2.0
    run = check_exact(module, {"x": x})
    reach = np.zeros((7, 7), bool)
    reach[2:5, 2:5] = True
    reach[5:, :2] = True
    border = np.ones((7, 7), bool)
    border[1:-1, 1:-1] = False
    # the background of %a is (bias, 0): the zero padding differs from it only when bias != 0
    np.testing.assert_array_equal(run.active["y"], reach | border if bias else reach)
    np.testing.assert_array_equal(run.background["y"], [9 * bias, 0.0])

    sub = run_sparse(module, {"x": x}, "submanifold")
    np.testing.assert_array_equal(sub.active["y"], x[0, 0] != 0)
    np.testing.assert_array_equal(sub.active["z"], cells(x[0, 0] != 0, (2, 2), (4, 4)))
    assert sub.active["z"].sum() == 2 and sub.active["z"][1, 1] and sub.active["z"][3, 0]
    assert not sub.values["z"][0][:, ~sub.active["z"]].any()


# Squeeze-and-excitation: the per-channel gate is computed from the data, so the background of
# %g (and everything after it) changes from frame to frame; the 1x1 gate broadcasts over sites.
SQUEEZE_EXCITE = textwrap.dedent("""
    module @se {
      input %x : f32[1,2,6,6]
      %w = const() {value = dense<f32[2,2], [1.0, -1.0, 0.5, 2.0]>} : f32[2,2]
      %b = const() {value = dense<f32[2], [0.25, -0.5]>} : f32[2]
      %p = global_avg_pool(%x) : f32[1,2,1,1]
      %f = reshape(%p) {shape = [1, 2]} : f32[1,2]
      %l = linear(%f, %w, %b) : f32[1,2]
      %s = sigmoid(%l) : f32[1,2]
      %s4 = reshape(%s) {shape = [1, 2, 1, 1]} : f32[1,2,1,1]
      %g = mul(%x, %s4) : f32[1,2,6,6]
      %h = add(%g, %s4) : f32[1,2,6,6]
      %k = const() {value = splat<f32[2,1,3,3], 1.0>} : f32[2,1,3,3]
      %y = conv(%h, %k) {dilations = [1, 1], group = 2, pads = [1, 1, 1, 1], strides = [1, 1]} : f32[1,2,6,6]
      output "y" = %y
    }
    """)


def test_data_dependent_backgrounds():
    module = parse_module(SQUEEZE_EXCITE)
    interpreter = SparseInterpreter(module, "exact")
    for seed in range(3):
        x = np.zeros((1, 2, 6, 6), np.float32)
        x[0, :, 3, seed] = np.random.default_rng(seed).standard_normal(2)
        run = interpreter.run({"x": x})
        dense = dense_values(module, {"x": x})
        for name in ("g", "h", "y"):
            inactive = dense[name][0][:, ~run.active[name]]
            np.testing.assert_array_equal(inactive, np.broadcast_to(run.background[name][:, None], inactive.shape))
        np.testing.assert_array_equal(run.active["h"], x[0].any(axis=0))
        assert run.background["h"].tolist() == dense["s4"][0, :, 0, 0].tolist()  # 0 * gate + gate
        # the background is not 0, so the zero padding lights the border on top of the 3x3 reach
        reach = np.zeros((6, 6), bool)
        reach[2:5, max(seed - 1, 0):seed + 2] = True
        border = np.ones((6, 6), bool)
        border[1:-1, 1:-1] = False
        np.testing.assert_array_equal(run.active["y"], reach | border)
    sub = run_sparse(module, {"x": x}, "submanifold")
    assert not sub.values["h"][0][:, ~sub.active["h"]].any()


POOLS = textwrap.dedent("""
    module @pools {
      input %x : f32[1,2,6,6]
      %c = const() {value = dense<f32[2], [2.0, 3.0]>} : f32[2]
      %n = batch_norm(%x, %c, %c, %c, %c) {epsilon = 1e-05} : f32[1,2,6,6]
      %m = max_pool(%n) {ceil_mode = 0, dilations = [1, 1], kernel = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1,2,3,3]
      %a = avg_pool(%m) {ceil_mode = 0, count_include_pad = 0, dilations = [1, 1], kernel = [3, 3], pads = [0, 0, 0, 0], strides = [1, 1]} : f32[1,2,1,1]
      output "a" = %a
    }
    """)


def test_pooling_rules():
    module = parse_module(POOLS)
    x = np.zeros((1, 2, 6, 6), np.float32)
    x[0, 1, 4, 1] = 5.0
    sub = run_sparse(module, {"x": x}, "submanifold")
    np.testing.assert_array_equal(sub.active["n"], x[0, 1] != 0)  # batch_norm is pointwise per site
    np.testing.assert_array_equal(sub.active["m"], cells(x[0, 1] != 0, (2, 2), (3, 3)))
    assert sub.active["a"].all()  # one window over the whole map: global pooling
    m = sub.values["m"][0]
    assert np.count_nonzero(m) == np.count_nonzero(m[:, 2, 0]) and m[1, 2, 0] > 0
    np.testing.assert_allclose(sub.values["a"][0, :, 0, 0], m.mean(axis=(1, 2)), rtol=1e-6)
    check_exact(module, {"x": x})
