"""Weight format code tables: DyBit's exponent-run cap read literally from bit strings, cap 0 as
the intN grid, and the value -> code inverse the packer uses."""
from fractions import Fraction

import numpy as np
import pytest

from tcc.ir.numerics import (
    WeightFormat, code_values, dybit_magnitudes, magnitude_ints, max_abs_value, parse_weight_format,
    row_format, value_codes,
)

CAPPED = [(n, cap) for n in range(2, 9) for cap in range(n)]


def capped_magnitudes(n: int, cap: int) -> list[Fraction]:
    """The cap read literally: up to ``cap`` leading 1s; a run shorter than the cap is closed by a
    0; the rest is the mantissa; cap 0 has no exponent field (f / 2**(w-1))."""
    w = n - 1
    out = []
    for code in range(2**w):
        bits = format(code, f"0{w}b")
        run = len(bits) - len(bits.lstrip("1"))
        k = min(run, cap)
        mantissa = bits[k:] if k == cap else bits[k + 1:]
        f = int(mantissa, 2) if mantissa else 0
        r = len(mantissa)
        if k == 0:
            out.append(Fraction(f, 2 ** (w - 1)))
        else:
            out.append(2 ** (k - 1) * (1 + Fraction(f, 2**r)))
    return out


@pytest.mark.parametrize("n, cap", CAPPED)
def test_capped_magnitudes_match_the_definition(n, cap):
    got = dybit_magnitudes(n, cap)
    assert [Fraction(float(v)) for v in got] == capped_magnitudes(n, cap)
    assert np.all(np.diff(got) > 0)


@pytest.mark.parametrize("n", range(2, 9))
def test_cap_zero_and_one_are_the_uniform_grid_and_the_full_cap_is_the_default(n):
    uniform = np.arange(2 ** (n - 1))
    assert magnitude_ints(n, 0).tolist() == magnitude_ints(n, 1).tolist() == uniform.tolist()
    assert magnitude_ints(n, n - 1).tolist() == magnitude_ints(n).tolist()
    # cap 0 holds exactly intN's symmetric narrow range
    assert sorted(set(code_values(WeightFormat("dybit", n, 0)).tolist())) == list(range(-(2 ** (n - 1) - 1), 2 ** (n - 1)))


def test_four_bit_family():
    assert dybit_magnitudes(4, 2).tolist() == [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3]
    assert code_values(parse_weight_format("dybit4c2")).tolist() == [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]
    assert code_values(parse_weight_format("int4")).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1]
    assert code_values(parse_weight_format("int2")).tolist() == [0, 1, -2, -1]
    assert max_abs_value(parse_weight_format("dybit4")) == 16


@pytest.mark.parametrize("name", ["int2", "int4", "int8", "int16"] + [f"dybit{n}c{c}" for n, c in CAPPED])
def test_every_value_has_its_code(name):
    fmt = parse_weight_format(name)
    values = code_values(fmt)
    codes = value_codes(fmt, values)
    assert np.array_equal(code_values(fmt)[codes], values)
    if fmt.kind == "dybit":  # -0 is written as +0
        assert value_codes(fmt, [0]).tolist() == [0]
    with pytest.raises(ValueError, match="no code"):
        value_codes(fmt, [int(values.max()) + 1])
    holes = sorted(set(range(int(values.min()), int(values.max()))) - set(values.tolist()))
    if holes:  # a value inside the range that no code has (DyBit's coarse large magnitudes)
        with pytest.raises(ValueError, match=f"no code for the value {holes[-1]}"):
            value_codes(fmt, [0, holes[-1]])


@pytest.mark.parametrize("name, fmt", [("dybit4", WeightFormat("dybit", 4, 3)), ("dybit4c3", WeightFormat("dybit", 4, 3)),
                                       ("dybit6c0", WeightFormat("dybit", 6, 0)), ("int16", WeightFormat("int", 16)),
                                       ("dybit4r", WeightFormat("dybit", 4, 0, True))])
def test_names(name, fmt):
    assert parse_weight_format(name) == fmt
    assert parse_weight_format(fmt.name) == fmt


def test_a_per_row_format_reads_each_row_cap_table():
    fmt = parse_weight_format("dybit4r")
    assert [row_format(fmt, cap) for cap in range(4)] == [WeightFormat("dybit", 4, cap) for cap in range(4)]
    assert max_abs_value(fmt) == 16  # the widest row table's (cap 3)
    with pytest.raises(ValueError, match="code table per row"):
        code_values(fmt)
    with pytest.raises(ValueError, match="one cap for every row"):
        row_format(parse_weight_format("dybit4c2"), 0)
    with pytest.raises(ValueError, match="cap"):
        row_format(fmt, 4)


@pytest.mark.parametrize("name", ["int3", "dybit9", "dybit4c4", "int4c1", "int4r", "dybit9r", "float8", ""])
def test_unknown_names_are_refused(name):
    with pytest.raises(ValueError, match="unknown weight format"):
        parse_weight_format(name)
