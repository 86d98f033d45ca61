"""bf16 ops run the SIMD lanes' sequences from tcc.ir.numerics.bf16_math, bit for bit."""
import ml_dtypes
import numpy as np
import pytest

from tcc.ir import Builder, Module, TensorType, numerics
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.registry import BF16_KERNELS

RNG = np.random.default_rng(0)


def bf16(values):
    return numerics.bf16_round(np.asarray(values, np.float32))


@pytest.mark.parametrize("kind, attrs, reference", [
    ("softmax", {"axis": -1}, lambda x: numerics.bf16_softmax(x, -1)),
    ("gelu", {"approximate": "none"}, lambda x: numerics.bf16_gelu(x, "none")),
    ("gelu", {"approximate": "tanh"}, lambda x: numerics.bf16_gelu(x, "tanh")),
    ("exp", {}, numerics.bf16_exp),
    ("sigmoid", {}, numerics.bf16_sigmoid),
    ("tanh", {}, numerics.bf16_tanh),
    ("erf", {}, numerics.bf16_erf),
    ("sqrt", {}, lambda x: numerics.bf16_sqrt(np.abs(x))),
])
def test_unary_bf16_ops_follow_the_lane_sequences(kind, attrs, reference):
    x = bf16(RNG.standard_normal((3, 17)) * 3)
    if kind == "sqrt":
        x = np.abs(x)
    m = Module("m")
    v = m.add_input("x", TensorType(x.shape, "bf16"))
    m.add_output("y", Builder(m).value(kind, [v], attrs))
    got = run_module(m, {"x": x.astype(ml_dtypes.bfloat16)})["y"]
    np.testing.assert_array_equal(got.astype(np.float32), reference(x))


def test_layer_norm_and_div_follow_the_lane_sequences():
    x, g, b = bf16(RNG.standard_normal((2, 5, 8))), bf16(RNG.standard_normal(8)), bf16(RNG.standard_normal(8))
    m = Module("m")
    xv = m.add_input("x", TensorType(x.shape, "bf16"))
    gv = m.add_input("g", TensorType(g.shape, "bf16"))
    bv = m.add_input("b", TensorType(b.shape, "bf16"))
    builder = Builder(m)
    m.add_output("ln", builder.value("layer_norm", [xv, gv, bv], {"axis": -1, "epsilon": 1e-5}))
    m.add_output("q", builder.value("div", [xv, gv]))
    feeds = {"x": x.astype(ml_dtypes.bfloat16), "g": g.astype(ml_dtypes.bfloat16), "b": b.astype(ml_dtypes.bfloat16)}
    out = run_module(m, feeds)
    np.testing.assert_array_equal(out["ln"].astype(np.float32), numerics.bf16_layer_norm(x, g, b, -1, 1e-5))
    np.testing.assert_array_equal(out["q"].astype(np.float32), numerics.bf16_div(x, g))


def test_every_lane_kernel_is_an_ir_op_kind():
    from tcc.ir import OP_DEFS

    assert set(BF16_KERNELS) <= set(OP_DEFS)
