"""Residual branches' int8 range, min/max or the least-error clip, chosen for all of them at once by
the quantized model's cross-validated output error (passes/quantize/branch_range.py, clip_choice.py),
on a small residual block."""
import base64
import math

import numpy as np
import pytest

from tcc.ir import parse_module
from tcc.ir.interpreter import run_module
from tcc.passes.quantize import Quantize
from tcc.passes.quantize.branch_range import MIN_GAIN, branch_outputs, choose_branch_ranges
from tcc.passes.quantize.calibration import calibrate
from tcc.passes.quantize.clip_choice import choose_clip
from tcc.passes.quantize.lowering import LoweringConfig
from tcc.passes.quantize.observers import MinMaxObserver, MseObserver
from tcc.passes.quantize.rules import lower_module
from tcc.passes.quantize.sensitivity import model_error


SIZE = 64  # height and width of the block's maps: enough elements for the MSE clip to cut a tail


def blob(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def block_module() -> str:
    """x [1,4,SIZE,SIZE] -> conv 1x1 + relu (s, the shortcut) -> conv 1x1 (b, the branch) -> relu(b + s)
    (r) -> conv 1x1 (y) -> out; r is also added to a constant (c: not a branch's add) and read
    by y's conv, so only b is a residual branch."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 4, 1, 1)) * 0.5, rng.standard_normal((4, 4, 1, 1)) * 0.5
    w3, k = rng.standard_normal((2, 4, 1, 1)) * 0.5, rng.standard_normal((1, 4, 1, 1))
    conv = "{dilations = [1, 1], group = 1, pads = [%d, %d, %d, %d], strides = [1, 1]}"
    lines = ["module @block {", "  input %x : f32[1,4,HW,HW]",
             "  %w1 = const() {value = blob<#0>} : f32[4,4,1,1]", "  %w2 = const() {value = blob<#1>} : f32[4,4,1,1]",
             "  %w3 = const() {value = blob<#2>} : f32[2,4,1,1]", "  %k = const() {value = blob<#3>} : f32[1,4,1,1]",
             f"  %h = conv(%x, %w1) {conv % (0, 0, 0, 0)} : f32[1,4,HW,HW]", "  %s = relu(%h) : f32[1,4,HW,HW]",
             f"  %b = conv(%s, %w2) {conv % (0, 0, 0, 0)} : f32[1,4,HW,HW]",
             "  %t = add(%b, %s) : f32[1,4,HW,HW]", "  %r = relu(%t) : f32[1,4,HW,HW]",
             f"  %y = conv(%r, %w3) {conv % (0, 0, 0, 0)} : f32[1,2,HW,HW]", '  output "y" = %y',
             "  %c = add(%r, %k) : f32[1,4,HW,HW]", '  output "c" = %c',
             "}", "blobs {", f'  #0 = f32[4,4,1,1] "{blob(w1)}"', f'  #1 = f32[4,4,1,1] "{blob(w2)}"',
             f'  #2 = f32[2,4,1,1] "{blob(w3)}"', f'  #3 = f32[1,4,1,1] "{blob(k)}"', "}"]
    return "\n".join(lines).replace("HW", str(SIZE)) + "\n"


def samples(count=8, seed=1, laplace=False):
    """Normal inputs (the branch's MSE clip measures better held out), or Laplace ones (it does not)."""
    rng = np.random.default_rng(seed)
    shape = (count, 4, SIZE, SIZE)
    data = (rng.laplace(size=shape) if laplace else rng.standard_normal(shape)).astype(np.float32)
    return [{"x": a[None]} for a in data]


def test_branches_are_conv_outputs_read_only_by_adds_of_two_activations():
    assert [v.name for v in branch_outputs(parse_module(block_module()))] == ["b"]


def fitted(module, ranges, value, observer, data):
    """``ranges`` with ``value``'s range fitted by ``observer`` on ``data`` (independent of clip_choice)."""
    seen = []
    for s in data:
        run_module(module, s, observe=lambda v, a: seen.append(np.asarray(a)) if v is value else None)
    obs = observer()
    for a in seen:
        obs.observe(a)
    return {**ranges, id(value): tuple(float(x) for x in obs.range())}


def measured(laplace=False):
    module = parse_module(block_module())
    data = samples(laplace=laplace)
    ranges = calibrate(module, data)
    reference = [run_module(module, s) for s in data]
    b = next(v for v in module.values() if v.name == "b")
    return module, data, ranges, reference, b


@pytest.mark.parametrize("laplace, expected", [(False, "mse"), (True, "minmax")])
def test_the_clip_is_kept_only_when_it_lowers_the_held_out_output_error(laplace, expected):
    module, data, ranges, reference, b = measured(laplace)
    before = dict(ranges)
    config = LoweringConfig()
    choice = choose_branch_ranges(module, ranges, config, data, reference)
    # the rule, recomputed here: each candidate fitted on one half and measured on the other, both ways
    errors = {name: sum(model_error(lower_module(module, fitted(module, before, b, observer, data[fit]), config),
                                    data[held], reference[held])
                        for fit, held in ((slice(0, 4), slice(4, 8)), (slice(4, 8), slice(0, 4))))
              for name, observer in (("minmax", MinMaxObserver), ("mse", MseObserver))}
    assert choice is not None and choice.names == ("b",)
    assert choice.error_minmax == pytest.approx(errors["minmax"])
    assert choice.error_mse == pytest.approx(errors["mse"])
    assert choice.chosen == ("mse" if errors["mse"] < errors["minmax"] * (1 - MIN_GAIN) else "minmax") == expected
    if expected == "mse":  # refitted on every sample
        assert ranges[id(b)] == pytest.approx(fitted(module, before, b, MseObserver, data)[id(b)])
    assert {k: v for k, v in ranges.items() if k != id(b)} == {k: v for k, v in before.items() if k != id(b)}
    assert expected == "mse" or ranges == before


@pytest.mark.parametrize("min_gain, expected", [(-math.inf, "mse"), (math.inf, "minmax")])
def test_a_chosen_clip_is_refitted_on_every_sample_and_nothing_else_moves(min_gain, expected):
    module, data, ranges, reference, b = measured()
    before = dict(ranges)
    choice = choose_clip(module, ranges, LoweringConfig(), [b], data, reference, min_gain, cross_validated=True)
    assert choice is not None and choice.chosen == expected
    want = fitted(module, before, b, MseObserver, data)[id(b)] if expected == "mse" else before[id(b)]
    assert ranges[id(b)] == pytest.approx(want)
    assert expected == "minmax" or ranges[id(b)] != before[id(b)]
    assert {k: v for k, v in ranges.items() if k != id(b)} == {k: v for k, v in before.items() if k != id(b)}


def test_quantize_records_the_choice_under_auto_only(tmp_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.concatenate([s["x"] for s in samples()]))
    auto = Quantize(calib=str(calib))
    auto.apply(parse_module(block_module()))
    assert auto.branch_choice is not None and auto.branch_choice.names == ("b",)
    minmax = Quantize(calib=str(calib), method="minmax")
    minmax.apply(parse_module(block_module()))
    assert minmax.branch_choice is None


def test_quantize_measures_on_its_calibration_runs_as_on_runs_of_its_own(tmp_path, monkeypatch):
    """The choice observes the branches and compares against the outputs that calibration's float runs
    kept (calibration.KeptRuns): the same choice, errors and module as running the float model again,
    with no float run after calibration's."""
    import tcc.passes.quantize as quantize_pass
    from tcc.ir import print_module

    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.concatenate([s["x"] for s in samples()]))
    kept = Quantize(calib=str(calib))
    with_kept = parse_module(block_module())
    float_runs = []
    monkeypatch.setattr(quantize_pass, "run_module", lambda *a, **k: float_runs.append(a) or run_module(*a, **k))
    kept.apply(with_kept)
    assert float_runs == []
    monkeypatch.setattr(Quantize, "kept_runs", lambda self, samples: None)  # nothing kept: runs its own
    own = Quantize(calib=str(calib))
    without = parse_module(block_module())
    own.apply(without)
    assert float_runs  # the float model ran again
    assert kept.branch_choice == own.branch_choice and kept.input_choices == own.input_choices
    assert print_module(with_kept) == print_module(without)
