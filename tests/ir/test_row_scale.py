"""Per-row power-of-two activation scales (ir/numerics/row_scale.py) and the reference kernels
that use them: quantize_rows, and requantize with row shifts."""
import numpy as np
import pytest

from tcc.ir import numerics, parse_module
from tcc.ir.interpreter import run_module

SCALE, ZP = np.float32(1 / 255), -128  # a softmax output's parameters: [0, 1] on all 256 levels


def test_each_row_takes_the_most_doublings_that_do_not_saturate():
    rows = numerics.as_bf16_array(np.array([[1.0, 0.0], [0.3, 0.1], [0.05, 0.01], [0.0, 0.0]], np.float32))
    shifts = np.asarray(numerics.row_shifts(rows, SCALE, ZP))
    assert shifts.tolist() == [0, 1, 4, numerics.ROW_SHIFT_MAX]
    q = np.asarray(numerics.bf16_to_int8_rows(rows, SCALE, ZP, shifts)).astype(np.int64)
    assert q.max() <= 127 and q[1:3].max() < 127
    inv = np.float64(np.float32(1) / SCALE)
    for row, r in zip(rows[:3], shifts[:3]):  # one more doubling would pass qmax - zp
        assert row.max() * inv * 2.0 ** (r + 1) > 127 - ZP


def test_rows_are_quantized_on_their_finer_grid():
    rng = np.random.default_rng(0)
    x = numerics.as_bf16_array(rng.uniform(-1, 1, (3, 5, 16)) * np.array([1.0, 0.2, 0.01])[:, None, None])
    scale = np.float32(1 / 127)
    shifts = np.asarray(numerics.row_shifts(x, scale, 0)).astype(np.int64)
    q = np.asarray(numerics.bf16_to_int8_rows(x, scale, 0, shifts)).astype(np.float64)
    error = np.abs(q * scale * 2.0 ** -shifts[..., None] - x)
    assert np.all(error <= 0.5 * scale * 2.0 ** -shifts[..., None] * (1 + 1e-6))
    assert shifts[2].min() >= 6  # rows 100x smaller: 2**6 finer


def test_shifts_outside_the_range_are_refused():
    with pytest.raises(ValueError, match="row shifts"):
        numerics.bf16_to_int8_rows(np.zeros((1, 4), np.float32), SCALE, ZP, np.array([numerics.ROW_SHIFT_MAX + 1]))
    with pytest.raises(ValueError, match="row shifts"):
        numerics.row_shifted(np.array([3]), np.array([-1]))


MODULE = """module @rows {
  input %p : bf16[1,2,3,4]
  input %v : i8[1,2,4,5]{scale = 0.05, zero_point = 0}
  %q, %r = quantize_rows(%p) {dtype = "i8"} : i8[1,2,3,4]{scale = 0.00392156862745098, zero_point = -128}, i8[1,2,3]
  %acc = qmatmul(%q, %v) : i32[1,2,3,5]{scale = 0.000196078431372549, zero_point = 0}
  %y = requantize(%acc, %r) {multiplier = [1717986918], shift = [34], zero_point = 0} : i8[1,2,3,5]{scale = 0.001, zero_point = 0}
  output "y" = %y
  output "r" = %r
}
"""


def test_requantize_shifts_each_row_back():
    module = parse_module(MODULE)
    rng = np.random.default_rng(1)
    p = numerics.as_bf16_array(rng.uniform(0, 1, (1, 2, 3, 4)) * np.array([1.0, 0.2, 0.03])[:, None])
    v = rng.integers(-128, 128, (1, 2, 4, 5)).astype(np.int8)
    out = run_module(module, {"p": p, "v": v})
    r = np.asarray(numerics.row_shifts(p, SCALE, ZP)).astype(np.int64)
    np.testing.assert_array_equal(out["r"], r)
    q = np.asarray(numerics.bf16_to_int8_rows(p, SCALE, ZP, r)).astype(np.int64)
    acc = np.matmul(q + 128, v.astype(np.int64))
    want = numerics.requantize(acc, 1717986918, 34 + r[..., None], out_dtype=np.int8)
    np.testing.assert_array_equal(out["y"], want)
    assert r.max() >= 3  # the 0.03-scaled rows really are shifted
