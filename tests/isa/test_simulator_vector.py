"""Golden programs for the bf16 side of the simulator: cvt and descriptor-driven vop."""
import ml_dtypes
import numpy as np

from isa_helpers import setr
from tcc.ir import Op, TensorType, Value, numerics
from tcc.ir.interpreter import evaluate_op
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


def reference(kind, attrs, operands):
    """The interpreter's bf16 result for an op built here, independently of the simulator."""
    values = [Value(f"x{i}", TensorType(a.shape, "bf16")) for i, a in enumerate(operands)]
    op = Op(kind, values, [TensorType(operands[0].shape, "bf16")], attrs)
    (result,) = evaluate_op(op, operands)
    return result.view("<u2")


def test_vop_softmax_matches_the_reference_interpreter():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 40)) * 4).astype(np.float32).astype(ml_dtypes.bfloat16)
    descriptor = {"kind": "softmax", "attrs": {"axis": -1}, "operands": [{"shape": [3, 40], "dtype": "bf16"}],
                  "results": [{"shape": [3, 40], "dtype": "bf16"}], "passes": 5}
    machine = Machine(TARGET, np.zeros(16, np.uint8), [{"kind": "relu"}, descriptor])
    machine.buffers["vbuf"][0x100:0x100 + x.nbytes] = x.view(np.uint8).reshape(-1)
    result = run(machine, "mode bf16\n" + setr({"v.desc": 1}) + "vop 0x1000, 0x100\nhalt\n")
    got = machine.buffers["vbuf"][0x1000:0x1000 + x.nbytes].view("<u2").reshape(3, 40)
    np.testing.assert_array_equal(got, reference("softmax", {"axis": -1}, [x]))
    # passes * ceil(120 / 128 lanes) + 16 latency, after the 64-cycle mode switch
    assert result.units["compute"] == 64 + 5 * 1 + 16


def test_vop_layer_norm_reads_its_third_operand_from_addresses():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16)).astype(np.float32).astype(ml_dtypes.bfloat16)
    scale = rng.standard_normal(16).astype(np.float32).astype(ml_dtypes.bfloat16)
    bias = rng.standard_normal(16).astype(np.float32).astype(ml_dtypes.bfloat16)
    descriptor = {"kind": "layer_norm", "attrs": {"axis": -1, "epsilon": 1e-5},
                  "operands": [{"shape": [4, 16], "dtype": "bf16"}, {"shape": [16], "dtype": "bf16"},
                               {"shape": [16], "dtype": "bf16"}],
                  "results": [{"shape": [4, 16], "dtype": "bf16"}], "passes": 6, "addresses": [0x300]}
    machine = Machine(TARGET, np.zeros(16, np.uint8), [descriptor])
    vbuf = machine.buffers["vbuf"]
    vbuf[0:128] = x.view(np.uint8).reshape(-1)
    vbuf[0x200:0x220] = scale.view(np.uint8)
    vbuf[0x300:0x320] = bias.view(np.uint8)
    run(machine, "mode bf16\n" + setr({"v.desc": 0, "v.src2": 0x200}) + "vop 0, 0\nhalt\n")  # in place
    expected = reference("layer_norm", {"axis": -1, "epsilon": 1e-5}, [x, scale, bias])
    np.testing.assert_array_equal(vbuf[0:128].view("<u2").reshape(4, 16), expected)


def test_vop_fills_attribute_defaults_and_binary_operands():
    a = np.array([1.5, -2.0, 3.25, 0.0], np.float32).astype(ml_dtypes.bfloat16)
    b = np.array([0.5, 0.5, -0.25, 7.0], np.float32).astype(ml_dtypes.bfloat16)
    descriptor = {"kind": "mul", "attrs": {}, "operands": [{"shape": [4], "dtype": "bf16"}] * 2,
                  "results": [{"shape": [4], "dtype": "bf16"}], "passes": 1}
    machine = Machine(TARGET, np.zeros(16, np.uint8), [descriptor])
    machine.buffers["vbuf"][0:8] = a.view(np.uint8)
    machine.buffers["vbuf"][8:16] = b.view(np.uint8)
    run(machine, "mode bf16\n" + setr({"v.src2": 8}) + "vop 0x20, 0\nhalt\n")
    assert machine.buffers["vbuf"][0x20:0x28].view("<u2").tolist() == bf16_bits([0.75, -1.0, -0.8125, 0.0]).tolist()
