"""The interpreter's registry, run loop, input checking and error messages."""
import numpy as np
import pytest

from tcc.ir import OP_DEFS, Builder, InterpreterError, Module, Op, TensorType
from tcc.ir.interpreter import OP_KERNELS, KERNELS, evaluate_op, run_module
from tcc.ir.interpreter.interpreter import last_uses
from tcc.ir.interpreter.registry import build_registry

F32 = "f32"


def test_every_op_kind_has_a_kernel():
    kernels = set(KERNELS) | set(OP_KERNELS)
    missing = sorted(set(OP_DEFS) - kernels)
    assert not missing, f"op kinds without an interpreter kernel (add them to ir/interpreter/): {missing}"
    assert sorted(kernels - set(OP_DEFS)) == [], "kernels for op kinds the IR does not define"


def test_a_kind_registered_twice_is_an_error():
    with pytest.raises(ValueError, match="'add' registered twice"):
        build_registry((("add", len),), (("add", len),))


def _chain() -> tuple[Module, list[Op]]:
    """x -> relu -> (add relu relu) -> neg; output: neg and the add."""
    m = Module("chain")
    x = m.add_input("x", TensorType((2, 3), F32))
    b = Builder(m, loc="layer")
    r = b.create("relu", [x])
    s = b.create("add", [r.result, r.result])
    n = b.create("neg", [s.result])
    m.add_output("out", n.result)
    m.add_output("sum", s.result)
    return m, [r, s, n]


def test_run_module_returns_outputs_by_name():
    m, _ = _chain()
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    outs = run_module(m, {"x": x})
    assert sorted(outs) == ["out", "sum"]
    np.testing.assert_array_equal(outs["sum"], 2 * np.maximum(x, 0))
    np.testing.assert_array_equal(outs["out"], -2 * np.maximum(x, 0))
    assert outs["out"].dtype == np.float32


def test_intermediates_die_after_their_last_use():
    m, (relu, add, neg) = _chain()
    dying = last_uses(m)
    assert dying[0] == [m.inputs[0]]  # relu is the input's only reader
    assert dying[1] == [relu.result]  # add reads relu twice, then relu's result can go
    assert dying[2] == []  # add's and neg's results are outputs


def test_unused_result_dies_at_once():
    m = Module()
    x = m.add_input("x", TensorType((2,), F32))
    b = Builder(m)
    dead = b.value("exp", [x])
    m.add_output("y", b.value("neg", [x]))
    assert dead in last_uses(m)[0]
    run_module(m, {"x": np.ones(2, np.float32)})


def test_missing_kernel_names_the_kind_and_location():
    m = Module()
    x = m.add_input("x", TensorType((2,), F32))
    op = m.insert_op(Op("mystery", [x], [TensorType((2,), F32)], loc="node_7"))
    m.add_output("y", op.result)
    with pytest.raises(InterpreterError, match=r"mystery.*node_7|node_7.*mystery"):
        run_module(m, {"x": np.ones(2, np.float32)})


def _single_input_module(dtype="f32", shape=(2, 3)) -> Module:
    m = Module("m")
    x = m.add_input("x", TensorType(shape, dtype))
    m.add_output("y", Builder(m).value("abs", [x]))
    return m


def test_missing_input_is_named_with_its_type():
    with pytest.raises(InterpreterError, match=r"missing input 'x' of type f32\[2,3\]"):
        run_module(_single_input_module(), {})


def test_extra_input_is_named():
    with pytest.raises(InterpreterError, match=r"unknown input\(s\) 'z'.*'x': f32\[2,3\]"):
        run_module(_single_input_module(), {"x": np.zeros((2, 3), np.float32), "z": np.zeros(1)})


def test_wrong_shape_is_reported_with_the_expected_type():
    with pytest.raises(InterpreterError, match=r"input 'x' has shape \[3, 2\].*expected f32\[2,3\]"):
        run_module(_single_input_module(), {"x": np.zeros((3, 2), np.float32)})


def test_float64_input_is_narrowed_to_f32():
    out = run_module(_single_input_module(), {"x": -np.ones((2, 3))})["y"]
    assert out.dtype == np.float32 and (out == 1).all()


def test_safe_casts_are_accepted_and_unsafe_ones_refused():
    assert run_module(_single_input_module("i64"), {"x": np.ones((2, 3), np.int32)})["y"].dtype == np.int64
    with pytest.raises(InterpreterError, match=r"input 'x' has element type int64, expected f32\[2,3\]"):
        run_module(_single_input_module(), {"x": np.ones((2, 3), np.int64)})
    with pytest.raises(InterpreterError, match="element type float32"):
        run_module(_single_input_module("i32"), {"x": np.ones((2, 3), np.float32)})


def test_kernel_errors_carry_the_op_location():
    m = Module()
    data = m.add_input("data", TensorType((4,), F32))
    idx = m.add_input("idx", TensorType((1,), "i64"))
    m.add_output("y", Builder(m, loc="embedding").value("gather", [data, idx]))
    with pytest.raises(InterpreterError, match=r"embedding.*index out of range \[-4, 4\)"):
        run_module(m, {"data": np.zeros(4, np.float32), "idx": np.array([4])})


def test_evaluate_op_gives_one_array_per_result():
    m = Module()
    x = m.add_input("x", TensorType((5, 2), F32))
    op = Builder(m).create("split", [x], {"axis": 0, "sizes": (2, 3)})
    parts = evaluate_op(op, [np.arange(10, dtype=np.float32).reshape(5, 2)])
    assert [p.shape for p in parts] == [(2, 2), (3, 2)]
    np.testing.assert_array_equal(parts[1], [[4, 5], [6, 7], [8, 9]])


def test_evaluate_op_casts_to_the_result_type():
    m = Module()
    op = Builder(m).create("const", [], {"value": np.array([1.5, 2.5], np.float32)})
    (value,) = evaluate_op(op, [])
    assert value.dtype == np.float32


def test_outputs_are_fresh_arrays_even_when_views():
    m = Module()
    x = m.add_input("x", TensorType((1, 3), F32))
    m.add_output("wide", Builder(m).value("expand", [x], {"shape": (4, 3)}))
    m.add_output("scalar", Builder(m).value("reduce_sum", [x], {"axes": (0, 1), "keepdims": 0}))
    outs = run_module(m, {"x": np.ones((1, 3), np.float32)})
    assert outs["wide"].flags.c_contiguous and outs["wide"].flags.writeable
    assert outs["scalar"].shape == () and outs["scalar"] == 3


def test_numpy_failures_become_interpreter_errors_with_location():
    m = Module()
    a = m.add_input("a", TensorType((2,), "i64"))
    b = m.add_input("b", TensorType((2,), "i64"))
    m.add_output("y", Builder(m, loc="power_layer").value("pow", [a, b]))
    with pytest.raises(InterpreterError, match=r"pow.*power_layer.*int64\[2\], int64\[2\]"):
        run_module(m, {"a": np.array([2, 3]), "b": np.array([-1, 2])})


def test_an_output_never_aliases_a_constant_of_the_module():
    m = Module()
    value = np.arange(3, dtype=np.float32)
    m.add_output("c", Builder(m).const(value))
    run_module(m, {})["c"][:] = 7
    np.testing.assert_array_equal(m.ops[0].attrs["value"], [0, 1, 2])
