"""A model input's int8 range, min/max or the least-error clip, chosen by the output error its
rounding causes on held-out calibration samples (passes/quantize/input_range.py), on a small conv module."""
import base64

import numpy as np
import pytest

from tcc.ir import parse_module
from tcc.passes.quantize import Quantize
from tcc.passes.quantize.calibration import calibrate
from tcc.passes.quantize.input_range import MIN_GAIN, choose_input_ranges, clippable_inputs
from tcc.passes.quantize.observers import MinMaxObserver, MseObserver


def blob(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def conv_module(also_added: bool = False) -> str:
    """x [1,3,8,8] -> conv 3x3 -> relu -> out (``also_added``: x + x is a second output)."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3, 3, 3)) * 0.3, rng.standard_normal(4) * 0.1
    extra = ['  %s = add(%x, %x) : f32[1,3,8,8]', '  output "s" = %s'] if also_added else []
    lines = ["module @conv {", "  input %x : f32[1,3,8,8]",
             "  %w = const() {value = blob<#0>} : f32[4,3,3,3]", "  %b = const() {value = blob<#1>} : f32[4]",
             "  %h = conv(%x, %w, %b) {dilations = [1, 1], group = 1, pads = [1, 1, 1, 1], strides = [1, 1]}"
             " : f32[1,4,8,8]", "  %y = relu(%h) : f32[1,4,8,8]", '  output "y" = %y', *extra, "}", "blobs {",
             f'  #0 = f32[4,3,3,3] "{blob(w)}"', f'  #1 = f32[4] "{blob(b)}"', "}"]
    return "\n".join(lines) + "\n"


def samples(count=8, seed=1):
    return [{"x": a[None]} for a in np.random.default_rng(seed).standard_normal((count, 3, 8, 8)).astype(np.float32)]


def fitted(observer, data):
    obs = observer()
    for s in data:
        obs.observe(s["x"])
    return obs.range()


def test_only_inputs_read_by_reductions_alone_are_clippable():
    assert [v.name for v in clippable_inputs(parse_module(conv_module()))] == ["x"]
    assert clippable_inputs(parse_module(conv_module(also_added=True))) == []


def test_the_range_of_less_held_out_error_is_taken_fitted_on_every_sample():
    module = parse_module(conv_module())
    data = samples()
    ranges = calibrate(module, data)
    x = id(module.inputs[0])
    assert ranges[x] == pytest.approx(fitted(MinMaxObserver, data))  # auto calibrates inputs at min/max
    (choice,) = choose_input_ranges(module, ranges, data)
    assert set(choice.errors) == {"minmax", "mse"} and all(np.isfinite(e) for e in choice.errors.values())
    assert choice.chosen == ("mse" if choice.errors["mse"] < (1 - MIN_GAIN) * choice.errors["minmax"] else "minmax")
    observer = {"minmax": MinMaxObserver, "mse": MseObserver}[choice.chosen]
    assert ranges[x] == pytest.approx(fitted(observer, data))
    if choice.chosen == "mse":
        lo, hi = fitted(MinMaxObserver, data)
        assert lo < ranges[x][0] or ranges[x][1] < hi


def test_quantize_records_the_choice_under_auto_only(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.stack([s["x"] for s in samples()]))
    auto = Quantize(calib=str(path))
    auto.apply(parse_module(conv_module()))
    assert [c.name for c in auto.input_choices] == ["x"]
    minmax = Quantize(calib=str(path), method="minmax")
    minmax.apply(parse_module(conv_module()))
    assert minmax.input_choices == []
