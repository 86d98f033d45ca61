"""float8e8m0 encoding: every code round-trips, and each rounding mode picks the power of two the
ONNX Cast spec names, checked against powers of two computed with exact float64 arithmetic."""
import math

import numpy as np
import pytest

from tcc.ir import numerics


def test_every_code_round_trips_in_every_mode():
    codes = np.arange(255, dtype=np.uint8)
    values = numerics.from_e8m0_codes(codes)
    assert values[127] == 1.0 and values[0] == np.float32(2.0 ** -127)
    for mode in numerics.E8M0_ROUNDING:
        np.testing.assert_array_equal(numerics.to_e8m0_codes(values, mode), codes)


@pytest.mark.parametrize("mode", numerics.E8M0_ROUNDING)
def test_rounding_modes_pick_the_named_power_of_two(mode):
    rng = np.random.default_rng(7)
    x = np.exp(rng.uniform(np.log(2.0 ** -120), np.log(2.0 ** 120), 5000)).astype(np.float32)
    codes = numerics.to_e8m0_codes(x, mode)
    for value, code in zip(x.astype(np.float64), codes.astype(int)):
        low = 2.0 ** math.floor(math.log2(value))  # the power of two at or below value
        want = {"down": low, "up": low if value == low else 2 * low,
                "nearest": 2 * low if value >= 1.5 * low else low}[mode]
        assert 2.0 ** (code - 127) == want, (value, mode)


def test_specials_saturate_or_become_nan():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -4.0, np.float32(2.0 ** 127) * np.float32(1.5)], np.float32)
    assert numerics.to_e8m0_codes(x, "up").tolist() == [254, 254, 255, 0, 129, 254]
    assert numerics.to_e8m0_codes(x, "up", saturate=False).tolist() == [255, 255, 255, 0, 129, 255]
    assert np.isnan(numerics.from_e8m0_codes(np.array([255], np.uint8))[0])
