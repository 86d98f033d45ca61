"""schedule-modes: IR text in, the pass, op order out; the overlay runs both orders identically
with fewer PE-array mode switches."""
import numpy as np

from tcc.backends.overlay import compile_overlay
from tcc.ir import parse_module, print_module
from tcc.ir.interpreter import run_module
from tcc.passes import make_pass
from tcc.passes.mode_schedule import count_switches, switch_lower_bound
from tcc.runtime import Session

# Two independent branches off one int8 input: bf16 (tanh), then int8 (a clamp), then bf16
# (sigmoid of the clamp) and int8 again (a rescale of it) -- four switches in this order.
BRANCHES = """\
module @branches {
  input %x : f32[1,8]
  %q = quantize(%x) {dtype = "i8"} : i8[1,8]{scale = 0.05, zero_point = 0}
  %a = dequantize(%q) {dtype = "bf16"} : bf16[1,8]
  %t = tanh(%a) : bf16[1,8]
  %r = requantize(%q) {axis = 1, dtype = "i8", multiplier = [1073741824], pre_shift = 0, qmax = 127, \
qmin = 0, rounding = "half_even", shift = [30], zero_point = 0} : i8[1,8]{scale = 0.05, zero_point = 0}
  %u = dequantize(%r) {dtype = "bf16"} : bf16[1,8]
  %s = sigmoid(%u) : bf16[1,8]
  %v = requantize(%r) {axis = 1, dtype = "i8", multiplier = [1073741824], pre_shift = 0, qmax = 127, \
qmin = -128, rounding = "half_even", shift = [31], zero_point = 0} : i8[1,8]{scale = 0.1, zero_point = 0}
  %t.f32 = cast(%t) {to = "f32"} : f32[1,8]
  %s.f32 = cast(%s) {to = "f32"} : f32[1,8]
  %v.f32 = dequantize(%v) {dtype = "f32"} : f32[1,8]
  output "t" = %t.f32
  output "s" = %s.f32
  output "v" = %v.f32
}
"""

SCHEDULED_ORDER = ["q", "r", "v", "v.f32", "a", "t", "t.f32", "u", "s", "s.f32"]


def results(module):
    return [op.result.name for op in module.ops]


def test_int8_work_is_grouped_before_bf16_work():
    module = parse_module(BRANCHES)
    assert count_switches(module.ops) == 4 and switch_lower_bound(module.ops) == 1
    schedule = make_pass("schedule-modes")
    schedule.apply(module)
    assert (schedule.before, schedule.after) == (4, 1)
    assert results(module) == SCHEDULED_ORDER
    assert print_module(parse_module(print_module(module))) == print_module(module)


def test_an_optimal_order_is_left_alone():
    module = parse_module(BRANCHES)
    make_pass("schedule-modes").apply(module)
    text = print_module(module)
    again = make_pass("schedule-modes")
    again.apply(module)
    assert (again.before, again.after) == (1, 1) and print_module(module) == text


def test_overlay_runs_both_orders_identically_with_fewer_switches():
    x = {"x": np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, 8)}
    runs = {}
    for label in ("original", "scheduled"):
        module = parse_module(BRANCHES)
        if label == "scheduled":
            make_pass("schedule-modes").apply(module)
        session = Session(compile_overlay(module))
        runs[label] = (session.run_dict(x), session.last_result)
        for key, value in run_module(module, x).items():
            np.testing.assert_array_equal(runs[label][0][key], value)
    assert runs["original"][1].mode_switches == 4 and runs["scheduled"][1].mode_switches == 1
    assert runs["scheduled"][1].mode_cycles["switch"] < runs["original"][1].mode_cycles["switch"]
