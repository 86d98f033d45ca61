"""Textual IR: print -> parse -> print is the identity; parse errors point at line:col."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcc.ir import Builder, IRParseError, Module, QuantParams, TensorType, parse_module, print_module, verify


def small_module() -> Module:
    m = Module("test")
    x = m.add_input("gpu_0/data_0", TensorType((1, 3, 8, 8), "f32"))
    b = Builder(m, loc="conv1")
    w = b.const(np.arange(4 * 3 * 9, dtype=np.float32).reshape(4, 3, 3, 3) / 7, "w")
    bias = b.const(np.array([0.1, -2.5, 3e-9, 1e30], dtype=np.float32), "b")
    y = b.value("conv", [x, w, bias], {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1)},
                name="conv 1/out")
    lo, hi = b.create("split", [y], {"axis": 1, "sizes": (1, 3)}).results
    z = b.value("clip", [b.value("relu", [hi])], {"min": 0.0, "max": float("inf")})
    m.add_output("prob", z)
    m.add_output("low \"part\"", lo)
    return m


def test_round_trip_is_identity():
    text = print_module(small_module())
    module = parse_module(text)
    verify(module)
    assert print_module(module) == text


def test_round_trip_keeps_constants_bit_exact():
    original = small_module()
    parsed = parse_module(print_module(original))
    for a, b in zip(original.ops, parsed.ops):
        if a.kind == "const":
            assert a.attrs["value"].dtype == b.attrs["value"].dtype
            assert a.attrs["value"].tobytes() == b.attrs["value"].tobytes()


def test_quantized_types_round_trip():
    m = Module("q")
    x = m.add_input("x", TensorType((2, 4), "i8", QuantParams((0.0123,), (-3,))))
    b = Builder(m)
    w = b.const(np.ones((4, 4), np.int8), "w")
    y = b.create("matmul", [x, w])
    y.results[0].type = TensorType((2, 4), "i8", QuantParams((0.5, 0.25, 1e-3, 2.0), (0, 0, 0, 0), axis=1))
    m.add_output("y", y.result)
    text = print_module(m)
    assert "{scale = 0.0123, zero_point = -3}" in text
    assert print_module(parse_module(text)) == text


def test_per_channel_caps_round_trip_and_need_an_axis():
    m = Module("q")
    b = Builder(m)
    w = b.const(np.ones((3, 4), np.int8), "w")
    w.producer.results[0].type = TensorType((3, 4), "i8", QuantParams((0.5, 0.25, 1.0), (0, 0, 0), 0, "dybit4r", (0, 3, 2)))
    m.add_output("w", w)
    text = print_module(m)
    assert 'format = "dybit4r", caps = [0, 3, 2]' in text
    assert parse_module(text).ops[0].result.type.quant.caps == (0, 3, 2)
    assert print_module(parse_module(text)) == text
    with pytest.raises(IRParseError, match="caps need per-channel"):
        parse_module(text.replace("axis = 0, scale = [0.5, 0.25, 1.0]", "scale = 0.5").replace(
            "zero_point = [0, 0, 0]", "zero_point = 0"))
    with pytest.raises(ValueError, match="one cap per scale"):
        QuantParams((0.5, 0.25), (0, 0), 0, "dybit4r", (1,))


def test_splat_constants_print_compactly_and_round_trip():
    m = Module("s")
    b = Builder(m)
    c = b.const(np.full((64, 3, 7, 7), 0.02, np.float32), "w")
    m.add_output("w", c)
    text = print_module(m)
    assert "splat<f32[64,3,7,7], 0.019999999552965164>" in text and "blobs" not in text
    again = parse_module(text)
    assert print_module(again) == text
    assert again.ops[0].attrs["value"].tobytes() == c.producer.attrs["value"].tobytes()


def test_printer_is_deterministic():
    assert print_module(small_module()) == print_module(small_module())


@pytest.mark.parametrize("text, where, what", [
    ("module @m {\n  input %x : f32[1]\n  %y = frobnicate(%x) : f32[1]\n  output \"y\" = %y\n}\n",
     "<string>:3:8", "unknown op kind 'frobnicate'"),
    ("module @m {\n  input %x : f32[1]\n  %y = relu(%z) : f32[1]\n  output \"y\" = %y\n}\n",
     "<string>:3:13", "undefined value %z"),
    ("module @m {\n  input %x : f32[1]\n  %y = relu(%x) {alpha = 1} : f32[1]\n  output \"y\" = %y\n}\n",
     "<string>:3:18", "no attribute 'alpha'"),
    ("module @m {\n  input %x : q7[1]\n  output \"y\" = %x\n}\n", "<string>:2:14", "unknown element type 'q7'"),
    ("module @m {\n  input %x : f32[1]\n  %x = relu(%x) : f32[1]\n  output \"y\" = %x\n}\n",
     "<string>:3:3", "defined twice"),
    ("module @m {\n  input %x : f32[1]\n  %y = relu(%x) : f32[1\n}\n", "<string>:4:1", "syntax error"),
    ("module @m {\n  input %x f32[1]\n}\n", "<string>:2:12", "syntax error"),
])
def test_parse_errors_point_at_line_and_column(text, where, what):
    with pytest.raises(IRParseError) as info:
        parse_module(text)
    assert where in str(info.value)
    assert what in str(info.value)


def test_corrupt_blob_is_reported():
    text = print_module(small_module())
    head, _, _ = text.partition("#0 = ")
    broken = head + '#0 = f32[4,3,3,3] "AAAA"\n}\n'
    with pytest.raises(IRParseError, match="holds 3 bytes"):
        parse_module(broken)


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=150, deadline=None)
@given(name=names, alpha=floats, shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
       values=st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=40))
def test_round_trip_property(name, alpha, shape, values):
    m = Module(name)
    x = m.add_input(name, TensorType(tuple(shape), "f32"))
    b = Builder(m, loc=name)
    y = b.value("leaky_relu", [x], {"alpha": alpha}, name=name)
    c = b.const(np.array(values, dtype=np.float32), name="c")
    m.add_output(name, y)
    m.add_output(name + "c", c)
    text = print_module(m)
    again = parse_module(text)
    assert print_module(again) == text
    assert again.ops[1].attrs["value"].tobytes() == np.array(values, dtype=np.float32).tobytes()


def test_huge_splat_prints_back_as_a_splat_without_materialising(tmp_path, tcc_cli):
    # The parser returns a zero-stride view for a splat; 10^10 f32 elements would need 40 GB.
    text = ('module @huge {\n'
            '  %w = const() {value = splat<f32[100000,100000], 0.5>} : f32[100000,100000]\n'
            '  output "w" = %w\n'
            '}\n')
    (tmp_path / "huge.tir").write_text(text)
    code, _, err = tcc_cli("opt", tmp_path / "huge.tir", "-o", tmp_path / "out.tir")
    assert code == 0, err
    assert (tmp_path / "out.tir").read_text() == text
