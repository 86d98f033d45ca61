"""SiLU inputs' int8 range, min/max or the least-error clip, chosen for all of them at once by the
quantized model's output error (passes/quantize/silu_range.py), on a small conv + SiLU module."""
import base64

import numpy as np
import pytest

from tcc.ir import parse_module
from tcc.passes.quantize import Quantize
from tcc.passes.quantize.calibration import calibrate
from tcc.passes.quantize.lowering import LoweringConfig
from tcc.passes.quantize.rules import lower_module
from tcc.passes.quantize.sensitivity import model_error
from tcc.ir.interpreter import run_module
from tcc.passes.quantize.observers import MseObserver
from tcc.passes.quantize.silu_range import MIN_GAIN, choose_silu_ranges, silu_inputs


def blob(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def silu_module(scale: float = 1.0) -> str:
    """x [1,3,8,8] -> conv 3x3 (h) -> h * sigmoid(h) (SiLU) -> conv 1x1 -> out; g = sigmoid(x) + x is
    a Sigmoid read that is not a SiLU (x is also added)."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3, 3, 3)) * 0.3 * scale, rng.standard_normal(4) * 0.1
    w2 = rng.standard_normal((2, 4, 1, 1)) * 0.5
    conv = "{dilations = [1, 1], group = 1, pads = [%d, %d, %d, %d], strides = [1, 1]}"
    lines = ["module @silu {", "  input %x : f32[1,3,8,8]",
             "  %w = const() {value = blob<#0>} : f32[4,3,3,3]", "  %b = const() {value = blob<#1>} : f32[4]",
             "  %w2 = const() {value = blob<#2>} : f32[2,4,1,1]",
             f"  %h = conv(%x, %w, %b) {conv % (1, 1, 1, 1)} : f32[1,4,8,8]",
             "  %s = sigmoid(%h) : f32[1,4,8,8]", "  %a = mul(%h, %s) : f32[1,4,8,8]",
             f"  %y = conv(%a, %w2) {conv % (0, 0, 0, 0)} : f32[1,2,8,8]", '  output "y" = %y',
             "  %t = sigmoid(%x) : f32[1,3,8,8]", "  %g = add(%t, %x) : f32[1,3,8,8]", '  output "g" = %g',
             "}", "blobs {", f'  #0 = f32[4,3,3,3] "{blob(w)}"', f'  #1 = f32[4] "{blob(b)}"',
             f'  #2 = f32[2,4,1,1] "{blob(w2)}"', "}"]
    return "\n".join(lines) + "\n"


def samples(count=8, seed=1, tail=0.0):
    """Normal inputs; ``tail``: one element per sample scaled up (rare outliers that min/max covers)."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((count, 3, 8, 8)).astype(np.float32)
    if tail:
        data[:, 0, 0, 0] *= tail
    return [{"x": a[None]} for a in data]


def test_silu_inputs_are_values_multiplied_by_their_own_sigmoid():
    module = parse_module(silu_module())
    assert [v.name for v in silu_inputs(module)] == ["h"]


@pytest.mark.parametrize("tail", [0.0, 12.0])
def test_the_clip_is_kept_only_when_it_measurably_lowers_the_output_error(tail):
    module = parse_module(silu_module())
    data = samples(tail=tail)
    ranges = calibrate(module, data)
    before = dict(ranges)
    config = LoweringConfig()
    reference = [run_module(module, s) for s in data]
    choice = choose_silu_ranges(module, ranges, config, data, reference)
    assert choice is not None and choice.names == ("h",)
    h = next(v for v in module.values() if v.name == "h")
    assert choice.error_minmax == pytest.approx(model_error(lower_module(module, before, config), data, reference))
    assert (choice.chosen == "mse") == (choice.error_mse < choice.error_minmax * (1 - MIN_GAIN))
    obs = MseObserver()
    for s in data:
        obs.observe(_value(module, s, "h"))
    if choice.chosen == "mse":
        assert ranges[id(h)] == pytest.approx(tuple(float(x) for x in obs.range()))
        assert ranges[id(h)] != before[id(h)]
    else:
        assert ranges[id(h)] == before[id(h)]
    assert {k: v for k, v in ranges.items() if k != id(h)} == {k: v for k, v in before.items() if k != id(h)}


def _value(module, sample, name):
    seen = {}
    run_module(module, sample, observe=lambda v, a: seen.__setitem__(v.name, np.asarray(a)))
    return seen[name]


def test_quantize_records_the_choice_under_auto_only(tmp_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.concatenate([s["x"] for s in samples()]))
    auto = Quantize(calib=str(calib))
    auto.apply(parse_module(silu_module()))
    assert auto.silu_choice is not None and auto.silu_choice.names == ("h",)
    minmax = Quantize(calib=str(calib), method="minmax")
    minmax.apply(parse_module(silu_module()))
    assert minmax.silu_choice is None
