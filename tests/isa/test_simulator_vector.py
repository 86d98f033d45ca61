"""Golden programs for the bf16 side of the simulator: cvt and the vector instructions, against values
worked out by hand."""
import ml_dtypes
import numpy as np

from isa_helpers import setr
from tcc.ir import numerics
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.simulator import Machine
from tcc.isa.target import load_target

TARGET = load_target()


def run(machine, text):
    return machine.run(encode_program(assemble(text)))


def f32_bits(x: float) -> int:
    return int(np.array([x], np.float32).view(np.int32)[0])


def bf16_bits(values) -> np.ndarray:
    return np.asarray(values, np.float32).astype(ml_dtypes.bfloat16).view("<u2")


def test_cvt_int8_to_bf16():
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:5] = np.array([-128, -1, 0, 5, 127], np.int8).view(np.uint8)
    run(machine, "mode bf16\n" + setr({"v.len": 5, "v.scale": f32_bits(0.5), "v.zp": 1}) + "cvt i8_bf16, 0x10, 0\nhalt\n")
    # (q - 1) * 0.5, all exact in bf16
    got = machine.buffers["vbuf"][0x10:0x1A].view("<u2")
    assert got.tolist() == bf16_bits([-64.5, -1.0, -0.5, 2.0, 63.0]).tolist()


def test_cvt_bf16_to_int8_rounds_half_even_and_saturates():
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["vbuf"][:14] = bf16_bits([1.0, 3.0, -1.0, 5.0, 300.0, -300.0, np.nan]).view(np.uint8)
    run(machine, "mode bf16\n" + setr({"v.len": 7, "v.scale": f32_bits(2.0), "v.zp": 0}) + "cvt bf16_i8, 0x20, 0\nhalt\n")
    # x / 2 = 0.5, 1.5, -0.5, 2.5 -> 0, 2, 0, 2 (ties to even); 150, -150 saturate; NaN -> zp
    assert machine.buffers["abuf"][0x20:0x27].view(np.int8).tolist() == [0, 2, 0, 2, 127, -128, 0]


def test_cvt_with_an_inexact_scale_matches_numerics():
    q = np.arange(-128, 128, dtype=np.int8)
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["abuf"][:256] = q.view(np.uint8)
    run(machine, "mode bf16\n" + setr({"v.len": 256, "v.scale": f32_bits(0.0371), "v.zp": -7})
        + "cvt i8_bf16, 0, 0\ncvt bf16_f32, 0x400, 0\ncvt bf16_i8, 0x200, 0\nhalt\n")
    expected = numerics.int8_to_bf16(q, np.float32(0.0371), -7)
    assert machine.buffers["vbuf"][:512].view("<u2").tolist() == numerics.to_bf16(expected).tolist()
    assert machine.buffers["vbuf"][0x400:0x800].view("<f4").tolist() == expected.tolist()
    back = numerics.bf16_to_int8(expected, np.float32(0.0371), -7, "half_even")
    assert machine.buffers["abuf"][0x200:0x300].view(np.int8).tolist() == back.tolist()


def vector_machine(**vectors):
    """A machine in bf16 mode with bf16 vectors at the given vbuf byte addresses ("at_<address>")."""
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    for name, values in vectors.items():
        address = int(name.split("_")[1], 0)
        data = bf16_bits(values)
        machine.buffers["vbuf"][address:address + data.nbytes] = data.view(np.uint8)
    return machine


def lanes(machine, address, count):
    return machine.buffers["vbuf"][address:address + 2 * count].view("<u2").tolist()


def test_vbin_arithmetic_rounds_once_to_nearest_even():
    # 1 + 2**-8 and 1.5 + 2**-8 are ties: to the even neighbours 1 and 1.5; 3 * 85 = 255 has 8 bits, exact
    a, b = [1.0, 3.0, 1.5, -0.0], [2.0**-8, 85.0, 2.0**-8, 0.0]
    machine = vector_machine(at_0x0=a, at_0x100=b)
    prog = "mode bf16\n" + setr({"v.len": 4, "v.b": 0x100, "v.b_rep": 1, "v.b_period": 4})
    run(machine, prog + "vbin add, vec, 0x200, 0x0\nvbin mul, vec, 0x300, 0x0\nvbin rsub, vec, 0x400, 0x0\nhalt\n")
    assert lanes(machine, 0x200, 4) == bf16_bits([1.0, 88.0, 1.5, 0.0]).tolist()
    assert lanes(machine, 0x300, 4) == bf16_bits([2.0**-8, 255.0, 1.5 * 2.0**-8, -0.0]).tolist()
    assert lanes(machine, 0x400, 4) == bf16_bits([2.0**-8 - 1, 82.0, 2.0**-8 - 1.5, 0.0]).tolist()


def test_vbin_bit_operations_and_comparisons():
    machine = vector_machine(at_0x0=[1.0, -2.0, np.nan, 0.0])
    prog = "mode bf16\n" + setr({"v.len": 4, "v.k0": 0x7FFF, "v.k1": 0x3F80, "v.k2": 0x0080})
    run(machine, prog + "vbin and, k0, 0x100, 0x0\nvbin lt, k1, 0x200, 0x0\nvbin eq, k1, 0x300, 0x0\n"
        "vbin irsub, k2, 0x400, 0x0\nhalt\n")
    assert lanes(machine, 0x100, 4) == bf16_bits([1.0, 2.0, np.nan, 0.0]).tolist()  # |x|
    assert lanes(machine, 0x200, 4) == [0, 0xFFFF, 0, 0xFFFF]  # x < 1 (NaN compares false)
    assert lanes(machine, 0x300, 4) == [0xFFFF, 0, 0, 0]
    assert lanes(machine, 0x400, 4) == [(0x0080 - 0x3F80) & 0xFFFF, (0x0080 - 0xC000) & 0xFFFF,
                                        (0x0080 - 0x7FC0) & 0xFFFF, 0x0080]


def test_integer_lanes_wrap_modulo_2_16_in_place():
    """iadd, isub and shl keep the low 16 bits; a result written over its own operand A."""
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["vbuf"][:6] = np.array([0xFFFF, 0x8000, 1], "<u2").view(np.uint8)
    machine.buffers["vbuf"][0x10:0x16] = machine.buffers["vbuf"][:6]
    prog = "mode bf16\n" + setr({"v.len": 3, "v.k0": 0x8001})
    run(machine, prog + "vbin iadd, k0, 0x100, 0x0\nvbin isub, k0, 0x200, 0x0\nvun shl, 15, 0x300, 0x0\n"
        "vun shl, 3, 0x10, 0x10\nhalt\n")
    assert lanes(machine, 0x100, 3) == [0x8000, 0x0001, 0x8002]
    assert lanes(machine, 0x200, 3) == [0x7FFE, 0xFFFF, 0x8000]
    assert lanes(machine, 0x300, 3) == [0x8000, 0, 0x8000]
    assert lanes(machine, 0x10, 3) == [0xFFF8, 0, 8]


def test_vfma_rounds_the_product_then_the_sum():
    # (1 + 2**-7)**2 = 1 + 2**-6 + 2**-14 rounds to 1 + 2**-6; plus -1 gives 2**-6 (fused: 2**-6 + 2**-14)
    machine = vector_machine(at_0x0=[1 + 2.0**-7])
    run(machine, "mode bf16\n" + setr({"v.len": 1, "v.k0": 0x3F81, "v.k1": 0xBF80}) + "vfma k0, k1, 0x10, 0x0\nhalt\n")
    assert lanes(machine, 0x10, 1) == bf16_bits([2.0**-6]).tolist()


def test_operand_patterns_broadcast_rows_and_columns():
    machine = vector_machine(at_0x0=np.arange(6), at_0x100=[10, 20], at_0x200=[100, 200, 300])
    prog = "mode bf16\n" + setr({"v.len": 6, "v.b": 0x100, "v.b_rep": 3, "v.b_period": 2,
                                  "v.c": 0x200, "v.c_rep": 1, "v.c_period": 3, "v.k0": 0x3F80})
    run(machine, prog + "vfma vec, vec, 0x300, 0x0\nvbin gt, k0, 0x400, 0x0\nvsel vec, vec, 0x500, 0x400\nhalt\n")
    assert lanes(machine, 0x300, 6) == bf16_bits([100, 210, 320, 160, 280, 400]).tolist()  # x * row + col
    assert lanes(machine, 0x500, 6) == bf16_bits([100, 200, 10, 20, 20, 20]).tolist()


def test_operand_pattern_ending_inside_a_period():
    """v.len 5 with rep 2, period 2 (not whole periods: gathered): B reads b0, b0, b1, b1, b0."""
    machine = vector_machine(at_0x0=[1, 2, 3, 4, 5], at_0x100=[10, 20])
    prog = "mode bf16\n" + setr({"v.len": 5, "v.b": 0x100, "v.b_rep": 2, "v.b_period": 2})
    run(machine, prog + "vbin add, vec, 0x300, 0x0\nhalt\n")
    assert lanes(machine, 0x300, 5) == bf16_bits([11, 12, 23, 24, 15]).tolist()


def test_vun_shifts_rounding_and_integer_conversion():
    machine = vector_machine(at_0x0=[2.5, -3.5, 1e6, np.nan])
    prog = "mode bf16\n" + setr({"v.len": 4})
    run(machine, prog + "vun rint, 0, 0x100, 0x0\nvun ftoi, 0, 0x200, 0x0\nvun itof, 0, 0x300, 0x200\n"
        "vun shr, 7, 0x400, 0x0\nhalt\n")
    assert lanes(machine, 0x100, 4) == bf16_bits([2.0, -4.0, 999424.0, np.nan]).tolist()
    assert lanes(machine, 0x200, 4) == [2, (-4) & 0xFFFF, 32767, 0]
    assert lanes(machine, 0x300, 4) == bf16_bits([2.0, -4.0, 32768.0, 0.0]).tolist()
    assert lanes(machine, 0x400, 4) == [0x80, 0x180, 0x92, 0xFF]  # sign and exponent fields


def test_vlut_reads_the_table_entry_of_each_lanes_low_byte_and_pays_the_table_copy():
    table = (np.arange(256) * 257 + 3) % 65536  # every entry distinct, and distinct from its index
    machine = Machine(TARGET, np.zeros(16, np.uint8))
    machine.buffers["vbuf"][0x400:0x600] = np.asarray(table, "<u2").view(np.uint8)
    patterns = [0x0000, 0x00FF, 0x3F80, 0x7FC0, 0xFF01, 0x1234, 0x8080]
    machine.buffers["vbuf"][0:14] = np.asarray(patterns, "<u2").view(np.uint8)
    result = run(machine, "mode bf16\n" + setr({"v.len": 7, "v.b": 0x400}) + "vlut 0x100, 0x0\nvlut 0x0, 0x0\nhalt\n")
    expected = [int(table[p & 0xFF]) for p in patterns]
    assert lanes(machine, 0x100, 7) == expected
    assert lanes(machine, 0x0, 7) == expected  # in place: every lane reads before the write
    # the 256 entries copied into the lanes (2 passes of 128), one pass of lookups, the latency;
    # the second writes over the first's operand, so it starts when the first ends
    assert result.units["compute"] == 64 + 2 * (2 + 1)
    assert result.cycles == 64 + 2 * (2 + 1 + 16)


def test_vred_sums_in_the_pairwise_tree_order_and_pays_per_level():
    # ((1 + 2**-8) + (2**-8 + 2**-8)) + 256 = (1 + 2**-7) + 256 rounds to 258; left to right it would
    # be 1 + 256 = 257, a tie that rounds to 256
    row = [1.0, 2.0**-8, 2.0**-8, 2.0**-8, 256.0]
    machine = vector_machine(at_0x0=row + [5.0, -1.0, np.nan, 0.0, 1.0])
    result = run(machine, "mode bf16\n" + setr({"v.len": 10, "v.row": 5}) + "vred sum, 0x100, 0x0\n"
                 "vred max, 0x200, 0x0\nhalt\n")
    assert lanes(machine, 0x100, 2) == bf16_bits([258.0, np.nan]).tolist()
    assert lanes(machine, 0x200, 2) == bf16_bits([256.0, np.nan]).tolist()
    # three tree levels each: ceil(pairs / 128 lanes) + 16 latency, twice, after the 64-cycle switch;
    # the unit is busy for all but the last level's latency, which the next instruction overlaps
    assert result.units["compute"] == 64 + 2 * (3 * (1 + 16) - 16)
    assert result.cycles == result.units["compute"] + 16  # the second reads no result of the first


def test_vred_max_over_nan_signed_zeros_and_odd_widths():
    """Row maxima of random patterns with NaN, +-0, +-inf and subnormals (widths 1 to 9), against
    the rule worked out per row: NaN if any lane is, else the largest value, +0 over -0."""
    rng = np.random.default_rng(3)
    special = np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x8001, 0x3F80, 0xBF80], np.uint16)
    for row in range(1, 10):
        rows = 40
        patterns = rng.choice(special, (rows, row))
        patterns[::3] = rng.integers(0, 0x10000, (len(patterns[::3]), row))
        patterns[1::5] = rng.choice([0x0000, 0x8000, 0x8001, 0xBF80], (len(patterns[1::5]), row))
        machine = Machine(TARGET, np.zeros(16, np.uint8))
        machine.buffers["vbuf"][:patterns.nbytes] = patterns.reshape(-1).view(np.uint8)
        run(machine, "mode bf16\n" + setr({"v.len": rows * row, "v.row": row}) + "vred max, 0x4000, 0x0\nhalt\n")
        expected = []
        for lanes_of_row in patterns.tolist():
            values = [float(np.array([p << 16], np.uint32).view(np.float32)[0]) for p in lanes_of_row]
            if any(v != v for v in values):
                expected.append(0x7FC0)
            elif max(values) == 0:
                expected.append(0x0000 if 0x0000 in lanes_of_row else 0x8000)
            else:
                expected.append(lanes_of_row[values.index(max(values))])
        assert lanes(machine, 0x4000, rows) == expected, f"row width {row}"
