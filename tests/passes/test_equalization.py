"""Cross-layer equalization (passes/quantize/equalization.py) on small IR modules written for its
rule: a depthwise conv whose output channels differ 40x in range, then ReLU and a 3x3 conv; the
paths it must not touch (Clip, SiLU's sigmoid, a grouped reader, a value that is a model output)."""
import base64

import numpy as np
import pytest

from tcc.ir import parse_module, verify
from tcc.ir.interpreter import run_module
from tcc.passes.quantize import CrossLayerEqualization, Quantize, QuantizationError
from tcc.passes.quantize.equalization import equalization_sites, patches

C = 6


def blob(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def dw_relu_conv(activation: str = "relu", group: int = 1, spread: float = 40.0) -> str:
    """x [1,C,8,8] -> depthwise 3x3 (channel c's filter ~ spread**(c/(C-1))) -> activation ->
    conv 3x3 (C -> 4, ``group``) -> out; the 3x3 conv's weights undo the spread, so every channel
    matters to the output as much (as after a trained depthwise layer's BatchNorm)."""
    rng = np.random.default_rng(0)
    gains = spread ** (np.arange(C) / (C - 1))
    consts = {"w1": rng.standard_normal((C, 1, 3, 3)) * gains[:, None, None, None] * 0.3,
              "b1": rng.standard_normal(C) * 0.1 * gains,
              "w2": rng.standard_normal((4, C // group, 3, 3)) * 0.3 / gains[None, :C // group, None, None], "b2": rng.standard_normal(4) * 0.1}
    shapes = {"w1": f"{C},1,3,3", "b1": str(C), "w2": f"4,{C // group},3,3", "b2": "4"}
    window = "dilations = [1, 1], pads = [1, 1, 1, 1], strides = [1, 1]"
    act = {"relu": "  %a = relu(%h) : f32[1,6,8,8]",
           "clip": "  %a = clip(%h) {max = 6.0, min = 0.0} : f32[1,6,8,8]",
           "sigmoid": "  %a = sigmoid(%h) : f32[1,6,8,8]"}[activation]
    lines = ["module @dw {", f"  input %x : f32[1,{C},8,8]"]
    lines += [f"  %{k} = const() {{value = blob<#{i}>}} : f32[{shapes[k]}]" for i, k in enumerate(consts)]
    lines += [f"  %h = conv(%x, %w1, %b1) {{{window}, group = {C}}} : f32[1,6,8,8]", act,
              f"  %out = conv(%a, %w2, %b2) {{{window}, group = {group}}} : f32[1,4,8,8]",
              '  output "out" = %out', "}", "blobs {"]
    lines += [f'  #{i} = f32[{shapes[k]}] "{blob(consts[k])}"' for i, k in enumerate(consts)]
    return "\n".join(lines + ["}"]) + "\n"


def inputs(count=8, seed=2):
    return [{"x": a[None]} for a in np.random.default_rng(seed).uniform(-1, 1, (count, C, 8, 8)).astype(np.float32)]


@pytest.fixture
def calib(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(1).uniform(-1, 1, (16, 1, C, 8, 8)).astype(np.float32))
    return str(path)


def error(reference, module) -> float:
    ref = np.concatenate([run_module(reference, s)["out"] for s in inputs()])
    got = np.concatenate([run_module(module, s)["out"] for s in inputs()])
    return float(np.sum((ref - got) ** 2) / np.sum(ref ** 2))


def test_sites_cross_relu_and_identity_only():
    assert [s.producer.result.name for s in equalization_sites(parse_module(dw_relu_conv()))] == ["h"]
    for text in (dw_relu_conv("clip"), dw_relu_conv("sigmoid"), dw_relu_conv(group=2),
                 dw_relu_conv().replace('output "out" = %out', 'output "out" = %out\n  output "h" = %h')):
        assert equalization_sites(parse_module(text)) == []


def test_patches_are_the_windows_the_reader_reduces_over():
    module = parse_module(dw_relu_conv())
    (site,) = equalization_sites(module)
    x = np.random.default_rng(0).standard_normal((1, C, 8, 8))
    rows = patches(x, site.readers[0], np.random.default_rng(0), 10**6)
    w = np.random.default_rng(1).standard_normal((4, C, 3, 3))
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    direct = np.einsum("chw,ochw->o", padded[0, :, 2:5, 4:7], w)
    np.testing.assert_allclose(rows[2 * 8 + 4] @ w.reshape(4, -1).T, direct)


def test_equalization_keeps_the_float_model_and_cuts_int8_error(calib):
    floating = parse_module(dw_relu_conv())
    equalized = parse_module(dw_relu_conv())
    equalize = CrossLayerEqualization(calib=calib)
    equalize.apply(equalized)
    verify(equalized)
    for s in inputs():
        np.testing.assert_allclose(run_module(equalized, s)["out"], run_module(floating, s)["out"], rtol=1e-4,
                                   atol=1e-4)
    (_, alpha, after, before), = equalize.report
    assert alpha is not None and after < before / 4  # the 40x channel spread costs the small channels
    assert {v.name for v in equalized.values()} >= {"h.equalized", "a.equalized"}
    plain = parse_module(dw_relu_conv())
    Quantize(calib=calib).apply(plain)
    Quantize(calib=calib).apply(equalized)
    assert error(floating, equalized) < error(floating, plain) / 2


def test_a_site_with_equal_channels_is_left_alone_unless_it_measures_better(calib):
    module = parse_module(dw_relu_conv(spread=1.0))
    equalize = CrossLayerEqualization(calib=calib)
    equalize.apply(module)
    (_, alpha, after, before), = equalize.report
    assert after <= before and (alpha is not None or after == before)


def test_equalization_needs_calibration():
    with pytest.raises(QuantizationError, match="calib"):
        CrossLayerEqualization().apply(parse_module(dw_relu_conv()))
