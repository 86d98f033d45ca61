"""The simulator's weight decoder against the compiler's packer (written apart) and hand-packed rows."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcc.backends.overlay.weight_packing import pack_rows
from tcc.ir.numerics import code_values, parse_weight_format, row_format
from tcc.isa.simulator.weight_decode import decode_rows
from tcc.isa.weights import reduction_steps, row_bytes

FORMATS = ["int2", "int4", "int8", "int16"] + [f"dybit{n}c{c}" for n in range(2, 9) for c in (0, n - 1)] + ["dybit4c2"]


def test_hand_packed_rows():
    # int4 [1, -2, 7]: codes 1, 14, 7 -> byte 0 = 0xE1 (code 1 low, 14 high), byte 1 = 0x07
    rows = np.array([[0xE1, 0x07]], np.uint8)
    assert decode_rows(rows, 3, parse_weight_format("int4")).tolist() == [[1, -2, 7]]
    # dybit3 (codes 0b011 = 3 -> 0.75*... , 0b101 -> -1 unit, 0b110 -> -2 units): bits 011 101 110 + pad
    fmt = parse_weight_format("dybit3")
    packed = 0b011 | (0b101 << 3) | (0b110 << 6)
    rows = np.array([[packed & 0xFF, packed >> 8]], np.uint8)
    assert decode_rows(rows, 3, fmt).tolist() == [[code_values(fmt)[3], code_values(fmt)[5], code_values(fmt)[6]]]
    # int16 little-endian
    assert decode_rows(np.array([[0x18, 0xFC]], np.uint8), 1, parse_weight_format("int16")).tolist() == [[-1000]]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FORMATS), st.integers(1, 5), st.integers(1, 37), st.randoms(use_true_random=False))
def test_decoder_inverts_the_packer(name, n, k, rnd):
    fmt = parse_weight_format(name)
    table = code_values(fmt)
    values = np.array([[table[rnd.randrange(table.size)] for _ in range(k)] for _ in range(n)])
    packed = pack_rows(values, fmt)
    assert packed.shape == (n, row_bytes(k, fmt))
    assert np.array_equal(decode_rows(packed, k, fmt), values)


def test_per_row_caps_pick_each_row_table():
    # dybit4r, code 0b0111 = 7: cap 0 -> 7 units, cap 2 -> 12 (1.5 * 2**(2-1) * 4), cap 3 -> 16
    fmt = parse_weight_format("dybit4r")
    rows = np.array([[0x77], [0x77], [0x77]], np.uint8)
    assert decode_rows(rows, 2, fmt, np.array([0, 2, 3])).tolist() == [[7, 7], [12, 12], [16, 16]]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([3, 4, 5, 7]), st.integers(1, 6), st.integers(1, 23), st.randoms(use_true_random=False))
def test_decoder_inverts_the_packer_with_a_cap_per_row(bits, n, k, rnd):
    fmt = parse_weight_format(f"dybit{bits}r")
    caps = np.array([rnd.randrange(bits) for _ in range(n)])
    tables = [code_values(row_format(fmt, int(c))) for c in caps]
    values = np.array([[t[rnd.randrange(t.size)] for _ in range(k)] for t in tables])
    packed = pack_rows(values, fmt, caps)
    assert packed.shape == (n, row_bytes(k, fmt))
    assert np.array_equal(decode_rows(packed, k, fmt, caps), values)


@pytest.mark.parametrize("name, steps", [("int8", 64), ("int16", 128), ("int4", 32), ("dybit4", 32), ("dybit3", 32),
                                         ("int2", 16), ("dybit2", 16), ("dybit6", 64)])
def test_pe_model_reduction_steps(name, steps):
    assert reduction_steps(64, parse_weight_format(name)) == steps
