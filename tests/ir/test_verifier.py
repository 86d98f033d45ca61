"""The verifier catches malformed modules with a message naming the op."""
import numpy as np
import pytest

from tcc.ir import (Builder, Module, Op, TensorType, Trait, VerifyError, constant_value, has_trait, is_constant,
                    kinds_with, verify)
from tcc.ir.attributes import normalize_attr
from tcc.ir.traits import operand_orders


def conv_module():
    m = Module("m")
    x = m.add_input("x", TensorType((1, 3, 8, 8), "f32"))
    b = Builder(m, loc="conv1")
    w = b.const(np.zeros((4, 3, 3, 3), np.float32), "w")
    y = b.value("conv", [x, w], {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1)}, name="y")
    m.add_output("y", y)
    return m, x, w, y


def test_valid_module_verifies():
    verify(conv_module()[0])


def test_wrong_result_type_names_op_and_loc():
    m, _, _, y = conv_module()
    y.type = TensorType((1, 4, 8, 8), "f32")
    with pytest.raises(VerifyError, match=r"op #1 conv %y \(loc 'conv1'\): result %y has type f32\[1,4,8,8\], "
                                          r"the type rule gives f32\[1,4,6,6\]"):
        verify(m)


def test_bad_operand_count():
    m, x, _, _ = conv_module()
    m.insert_op(Op("relu", [x, x], [x.type], loc="r"))
    with pytest.raises(VerifyError, match=r"relu .*2 operands do not fit \(x\)"):
        verify(m)


def test_missing_and_unknown_attributes():
    m, x, w, _ = conv_module()
    with pytest.raises(VerifyError, match=r"op conv has no attribute 'colour' \(loc 'c2'\)"):
        Op("conv", [x, w], [TensorType((1, 4, 6, 6), "f32")], {"group": 1, "colour": 3}, loc="c2")
    m.insert_op(Op("conv", [x, w], [TensorType((1, 4, 6, 6), "f32")], {"group": 1}, loc="c2"))
    with pytest.raises(VerifyError, match=r"missing attribute 'strides'"):
        verify(m)


def test_attribute_values_are_frozen_and_checked():
    m, x, w, y = conv_module()
    conv = y.producer
    assert conv.strides == conv.attrs["strides"] and isinstance(conv.strides, tuple)
    with pytest.raises(TypeError, match="attribute 'group' takes int"):
        conv.attrs["group"] = 1.5
    with pytest.raises(KeyError, match="no attribute 'colour'"):
        conv.attrs.update(colour=3)
    conv.attrs["pads"] = [0, 0, 0, 0]
    assert conv.pads == (0, 0, 0, 0)
    weights = w.producer.value
    with pytest.raises(ValueError, match="read-only"):
        weights[0, 0, 0, 0] = 1.0


def test_a_frozen_tuple_is_kept_and_every_other_spelling_still_normalized():
    """normalize_attr's fast path: a tuple of ints (floats) is already frozen and is kept as it is;
    numpy integers, lists and arrays are still converted, and bools and non-integers refused."""
    ints = (1, -2, 2**40)
    assert normalize_attr("ints", ints) is ints
    got = normalize_attr("ints", (np.int64(3), 2))
    assert got == (3, 2) and all(type(v) is int for v in got)
    assert normalize_attr("ints", np.array([4, 5], np.int32)) == (4, 5)
    for bad in ((True, 1), (1, 2.5), (1, "2")):
        with pytest.raises(TypeError):
            normalize_attr("ints", bad)
    floats = (0.5, 1.0)
    assert normalize_attr("floats", floats) is floats
    got = normalize_attr("floats", (1, np.float32(0.25)))
    assert got == (1.0, 0.25) and all(type(v) is float for v in got)
    with pytest.raises(TypeError):
        normalize_attr("floats", (0.5, False))


def test_shape_rule_failure():
    m, x, _, _ = conv_module()
    w2 = Builder(m).const(np.zeros((4, 5, 3, 3), np.float32))
    m.insert_op(Op("conv", [x, w2], [TensorType((1, 4, 6, 6), "f32")],
                   {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": 1}, loc="bad"))
    with pytest.raises(VerifyError, match=r"loc 'bad'.*input channels 3 do not match weight"):
        verify(m)


def test_use_before_definition():
    m, _, _, y = conv_module()
    relu = Op("relu", [y], [y.type], loc="early")
    m.insert_op(relu, 0)
    with pytest.raises(VerifyError, match=r"operand %y is not defined before its use"):
        verify(m)


def test_undefined_output_and_no_outputs():
    m, x, _, _ = conv_module()
    m.outputs = []
    with pytest.raises(VerifyError, match="has no outputs"):
        verify(m)
    stray = Op("relu", [x], [x.type])
    m.add_output("z", stray.result)
    with pytest.raises(VerifyError, match="output 'z' refers to"):
        verify(m)


def test_topological_sort_repairs_order_and_detects_cycles():
    m, _, _, y = conv_module()
    relu = Op("relu", [y], [y.type], loc="late")
    m.insert_op(relu, 0)
    m.sort_topologically()
    verify(m)
    assert m.ops[-1] is relu


def test_named_accessors_and_traits_come_from_the_op_definition():
    m, x, w, y = conv_module()
    conv = y.producer
    assert type(conv).__name__ == "ConvOp" and conv.x is x and conv.w is w and conv.b is None
    assert (conv.strides, conv.group) == ((1, 1), 1)
    assert conv.has_trait(Trait.WINDOW) and conv.has_trait(Trait.WEIGHTED) and not conv.has_trait(Trait.POOL)
    assert is_constant(w) and not is_constant(x) and constant_value(x) is None
    assert constant_value(w).shape == (4, 3, 3, 3)
    with pytest.raises(AttributeError, match="op conv has no operand or attribute 'axis'"):
        conv.axis  # noqa: B018
    cat = Builder(m).create("concat", [x, x], {"axis": 1})
    assert cat.inputs == [x, x] and has_trait("concat", Trait.MOVES) and not has_trait("concat", Trait.VIEW)
    assert has_trait("reshape", Trait.MOVES)  # VIEW implies MOVES
    assert "relu" in kinds_with(Trait.SITEWISE) and "lrn" in kinds_with(Trait.SITEWISE)


def test_commutative_binaries_offer_both_operand_orders():
    m, x, _, _ = conv_module()
    b = Builder(m)
    r = b.value("relu", [x])
    add, sub = b.create("add", [x, r], {}), b.create("sub", [x, r], {})
    assert add.has_trait(Trait.COMMUTATIVE) and not sub.has_trait(Trait.COMMUTATIVE)
    assert operand_orders(add) == [(add.a, add.b), (add.b, add.a)] and operand_orders(sub) == [(sub.a, sub.b)]
    assert {"add", "mul", "max", "min", "equal"} <= kinds_with(Trait.COMMUTATIVE)
    assert not {"sub", "div", "pow", "greater"} & kinds_with(Trait.COMMUTATIVE)
