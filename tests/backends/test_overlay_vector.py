"""bf16 vector ops on the overlay: the simulator runs each op's lane sequence as vector instructions
and equals the reference interpreter (the same ``bf16_functions`` sequence on NumpyLanes) bit for
bit on every one of the 65536 bf16 inputs, on rows (softmax, log_softmax, LayerNorm, RMSNorm, tiled), on
broadcast binary ops; a one-bit error in one simulator instruction is caught."""
import numpy as np
import pytest

from tcc.backends.overlay import compile_overlay
from tcc.ir import numerics, parse_module
from tcc.ir.interpreter import run_module
from tcc.isa.simulator import impl_vector
from tcc.isa.target import TargetConfig
from tcc.runtime import Session

ALL = np.arange(65536, dtype=np.uint16)  # every bf16 bit pattern, NaN payloads included
SMALL = TargetConfig(vbuf_bytes=4096)  # a few rows per tile


def bf16(patterns):
    return np.asarray(patterns, np.uint16).view(numerics.as_bf16_array(0.0).dtype)


def module(body: str, inputs: dict[str, str]) -> str:
    decls = "".join(f"  input %{name} : {t}\n" for name, t in inputs.items())
    return f"module @v {{\n{decls}{body}  output \"y\" = %y\n}}\n"


def simulate(text: str, feeds: dict, target=None):
    """(simulator output, reference output) as uint16 patterns."""
    m = parse_module(text)
    artifact = compile_overlay(m, target) if target is not None else compile_overlay(m)
    out = Session(artifact).run(None, feeds)[0]
    ref = run_module(m, feeds)["y"]
    return np.asarray(out).view(np.uint16), np.asarray(ref).view(np.uint16)


def unary(kind: str, attrs: str = "") -> str:
    return module(f"  %y = {kind}(%x){attrs} : bf16[65536] loc(\"f\")\n", {"x": "bf16[65536]"})


EXHAUSTIVE = {"exp": unary("exp"), "reciprocal": unary("reciprocal"), "sqrt": unary("sqrt"), "tanh": unary("tanh"),
              "erf": unary("erf"), "sigmoid": unary("sigmoid"), "hard_swish": unary("hard_swish"),
              "gelu": unary("gelu", ' {approximate = "none"}'), "gelu_tanh": unary("gelu", ' {approximate = "tanh"}')}


@pytest.mark.parametrize("name", EXHAUSTIVE)
def test_every_bf16_input_bit_exact(name):
    got, want = simulate(EXHAUSTIVE[name], {"x": bf16(ALL)})
    np.testing.assert_array_equal(got, want)


def rows_with_specials(rng, shape, spread=4.0):
    x = numerics.bf16_round(rng.standard_normal(shape) * spread)
    x[0, :3] = [np.inf, 1.0, 2.0]
    x[1, 0] = np.nan
    x[2, :] = -np.inf
    x[3, :] = 0.0
    return numerics.as_bf16_array(x)


@pytest.mark.parametrize("target", [None, SMALL], ids=["one tile", "tiles of rows"])
def test_softmax_and_normalizations_bit_exact(target):
    rng = np.random.default_rng(7)
    x = rows_with_specials(rng, (40, 37))
    g, b = (numerics.as_bf16_array(rng.standard_normal(37)) for _ in range(2))
    texts = {
        "softmax": module("  %y = softmax(%x) {axis = -1} : bf16[40,37] loc(\"s\")\n", {"x": "bf16[40,37]"}),
        "log_softmax": module("  %y = log_softmax(%x) {axis = -1} : bf16[40,37] loc(\"s\")\n", {"x": "bf16[40,37]"}),
        "layer_norm": module("  %y = layer_norm(%x, %g, %b) {axis = -1, epsilon = 1e-05} : bf16[40,37] loc(\"l\")\n",
                             {"x": "bf16[40,37]", "g": "bf16[37]", "b": "bf16[37]"}),
        "rms_norm": module("  %y = rms_norm(%x, %g) {axis = 1, epsilon = 1e-06} : bf16[40,37] loc(\"r\")\n",
                           {"x": "bf16[40,37]", "g": "bf16[37]"}),
    }
    for name, text in texts.items():
        got, want = simulate(text, {"x": x, "g": g, "b": b} if "layer" in name else
                             {"x": x, "g": g} if "rms" in name else {"x": x}, target)
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("kind", ["add", "sub", "mul", "div", "max", "min"])
def test_binary_ops_with_broadcast_operands_bit_exact(kind):
    rng = np.random.default_rng(8)
    a = rows_with_specials(rng, (12, 20), 30.0)
    cases = {"full": (12, 20), "row": (12, 1), "col": (20,)}
    for name, shape in cases.items():
        b = numerics.as_bf16_array(rng.standard_normal(shape) * 3)
        for first, second in (("a", "b"), ("b", "a")):
            inputs = {"a": f"bf16[{','.join(map(str, a.shape))}]", "b": f"bf16[{','.join(map(str, shape))}]"}
            text = module(f"  %y = {kind}(%{first}, %{second}) : bf16[12,20] loc(\"e\")\n", inputs)
            got, want = simulate(text, {"a": a, "b": b}, SMALL)
            np.testing.assert_array_equal(got, want, err_msg=f"{kind} {first}, {second} ({name})")


def test_a_scalar_constant_operand_is_a_constant_register():
    text = ("module @v {\n  input %x : bf16[4,8]\n  %k = const() {value = dense<bf16[], [2.5]>} : bf16[]\n"
            "  %y = div(%k, %x) : bf16[4,8] loc(\"d\")\n  output \"y\" = %y\n}\n")
    x = numerics.as_bf16_array(np.linspace(-3, 3, 32).reshape(4, 8))
    got, want = simulate(text, {"x": x})
    np.testing.assert_array_equal(got, want)


def flip_lowest_bit(operation):
    def wrong(*args):
        out = operation(*args)
        return out ^ np.uint16(1)
    return wrong


# (exp's power-of-two split is immune to an error in its shr: both halves follow from the same h)
@pytest.mark.parametrize("table, name, function", [(impl_vector.BINARY, "mul", "exp"),
                                                   (impl_vector.BINARY, "add", "exp"),
                                                   (impl_vector.UNARY, "shr", "reciprocal")])
def test_a_one_bit_error_in_one_simulator_instruction_is_caught(monkeypatch, table, name, function):
    monkeypatch.setitem(table, name, flip_lowest_bit(table[name]))
    got, want = simulate(EXHAUSTIVE[function], {"x": bf16(ALL)})
    assert (got != want).any()


@pytest.mark.parametrize("target", [None, SMALL], ids=["one tile", "tiles of columns"])
def test_lrn_across_channels_bit_exact(target):
    rng = np.random.default_rng(9)
    x = numerics.as_bf16_array(rng.standard_normal((2, 7, 3, 5)) * 20)
    for size, alpha, beta, bias in ((5, 1e-4, 0.75, 1.0), (4, 0.01, 0.5, 2.0)):
        text = module(f"  %y = lrn(%x) {{alpha = {alpha}, beta = {beta}, bias = {bias}, size = {size}}} : "
                      "bf16[2,7,3,5] loc(\"n\")\n", {"x": "bf16[2,7,3,5]"})
        got, want = simulate(text, {"x": x}, target)
        np.testing.assert_array_equal(got, want, err_msg=f"size {size}")


def test_schedule_fills_a_dependent_chain_s_latency_with_independent_work():
    """Recorded order: a chain of three dependent row operations, then a full-tile operation that
    needs none of them.  The scheduler moves the independent one into the chain's latency (it
    starts first or second) and keeps every value after its producer."""
    from tcc.backends.overlay.vector_program import FULL, Recorder, schedule

    L = Recorder()
    x = L.input(FULL)
    s = L.row_sum(x)
    t = L.mul(L.mul(L.mul(s, L.const(2.0)), L.const(3.0)), L.const(5.0))
    y = L.add(L.mul(x, L.const(7.0)), t)
    before = list(L.code)
    schedule(L, latency=16, occupancy=lambda ins: 4 if ins.space == FULL else 1)
    assert sorted(map(id, L.code)) == sorted(map(id, before))
    written = {x.index}
    for ins in L.code:
        assert all(v in written for v in [ins.a] + [h.index for h in (ins.b, ins.c) if h and not h.constant])
        written.add(ins.dst)
    independent = next(i for i in before if i.mnemonic == "vbin" and i.space == FULL and i.a == x.index)
    assert before.index(independent) == 4 and L.code.index(independent) <= 1
    assert L.code[-1].dst == y.index


def test_row_values_each_take_their_own_slot():
    """A LayerNorm's per-row chain (the rsqrt of its variance) is latency-bound: a row slot reused
    after its last read would make the next write wait for that read through the pipeline (the
    simulator's scoreboard), so row values are never given a freed slot; full tiles still are."""
    from tcc.backends.overlay.vector_program import COL, FULL, ROW, Recorder, allocate
    from tcc.ir.numerics import bf16_functions as spec

    L = Recorder()
    x, gamma, beta = L.input(FULL), L.input(COL), L.input(COL)
    y = spec.layer_norm(L, x, gamma, beta, 64, 1e-5)
    slots, counts = allocate(L, [x, gamma, beta], y)
    rows = [v for v, space in enumerate(L.spaces) if space == ROW]
    assert len(rows) > 10 and counts[ROW] == len(rows)
    assert len({slots[v] for v in rows}) == len(rows)
    assert counts[FULL] < sum(space == FULL for space in L.spaces)  # full tiles are reused


def test_a_log_softmax_head_runs_wholly_on_the_overlay(tmp_path):
    """A classifier's log_softmax (CRNN's CTC head) on the vector unit: its int8 logits converted to bf16
    (their row maxima taken on the int8 scores, row_max.py), the lane sequence, a cast to f32 at the
    model boundary; simulator == integer reference, and close to float onnxruntime."""
    from onnx import TensorProto, helper, numpy_helper

    from overlay_run import run_wholly_on_the_overlay

    rng = np.random.default_rng(8)
    w = (rng.standard_normal((16, 37)) / 2).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["z"]),
                               helper.make_node("LogSoftmax", ["z"], ["y"], axis=-1)], "head",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [12, 1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run_wholly_on_the_overlay(model, tmp_path, rng, 25.0)  # (29.9 dB: the int8 product dominates)
