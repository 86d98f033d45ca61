"""Transformers on the overlay: the encoder and ViT examples compile with -t overlay and the
simulator equals the integer reference element for element; attention's head reshapes and
transposes are addressing, not copies; the embedding lookup is a DMA by token id; strided
operand views of every kind; mode counters."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tcc.backends.overlay import compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.isa.errors import SimulatorTrap
from tcc.isa.target import TargetConfig
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session

ENC = "examples/encoder/"


def quantized(model, calib):
    return compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib)))[0]


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    return float(10 * np.log10((ref ** 2).sum() / ((ref - act) ** 2).sum()))


def small_calibration(name, key, directory, samples=32):
    """The first samples of an example's calibration set (calibration time dominates these tests)."""
    path = directory / f"{name}_calib.npz"
    np.savez(path, **{key: np.load(ENC + f"{name}_calib.npz")[key][:samples]})
    return path


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    calib = small_calibration("encoder", "tokens", tmp_path_factory.mktemp("encoder"))
    module = quantized(ENC + "encoder.onnx", calib)
    return module, compile_overlay(module)


def test_encoder_simulator_equals_reference_and_onnxruntime_within_30db(encoder):
    module, artifact = encoder
    session = Session(artifact)
    test = np.load(ENC + "encoder_test.npz")
    ort_session = ort.InferenceSession(ENC + "encoder.onnx", providers=["CPUExecutionProvider"])
    simulated, floats = [], []
    for i in range(8):
        x = {"tokens": test["tokens"][i:i + 1]}
        out = session.run(None, x)[0]
        if i < 2:
            np.testing.assert_array_equal(out, run_module(module, x)["logits"])
        simulated.append(out)
        floats.append(ort_session.run(None, x)[0])
    assert sqnr_db(np.concatenate(floats), np.concatenate(simulated)) >= 30


def test_attention_heads_are_addressed_not_copied(encoder):
    _, artifact = encoder
    layers = artifact.metadata["layers"]
    kinds = [layer["kind"] for layer in layers]
    assert kinds.count("matmul") == 4 and "layout" not in kinds  # 8 transposes, 8 reshapes, the [CLS] pick
    assert kinds[0] == "lookup" and artifact.metadata["inputs"][0]["dtype"] == "i64"  # ids go to the device


def test_mode_counters_partition_the_cycles(encoder):
    _, artifact = encoder
    session = Session(artifact)
    session.run(None, {"tokens": np.load(ENC + "encoder_test.npz")["tokens"][:1]})
    result = session.last_result
    modes = [w for w in artifact.program if (int(w) >> 58) == 0x0A]
    assert result.mode_switches == len(modes) > 0
    assert sum(result.mode_cycles.values()) == result.cycles
    assert result.mode_cycles["switch"] == result.mode_switches * session.target.mode_switch
    assert result.mode_busy["int8"] > 0 and result.mode_busy["bf16"] > 0


def test_token_ids_from_the_end_and_out_of_range(encoder):
    module, artifact = encoder
    session = Session(artifact)
    x = {"tokens": -1 - np.load(ENC + "encoder_test.npz")["tokens"][:1] % 7}  # ONNX: negative ids count back
    np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])
    with pytest.raises(SimulatorTrap, match="lookup index 500 is outside a table of 82 rows"):
        session.run(None, {"tokens": np.full((1, 17), 500, np.int64)})


def test_vit_block_simulator_equals_reference(tmp_path):
    module = quantized(ENC + "vit_block.onnx", small_calibration("vit", "image", tmp_path, samples=16))
    target = TargetConfig(mode_switch=200)
    artifact = compile_overlay(module, target)
    # patch flatten + transpose is the NHWC conv output itself; the QKV split, head transposes and
    # squeezes are addressing of the fused projection's output
    assert "layout" not in [layer["kind"] for layer in artifact.metadata["layers"]]
    session = Session(artifact)
    x = {"image": np.load(ENC + "vit_test.npz")["image"][:1]}
    np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])
    assert session.last_result.mode_cycles["switch"] == 200 * session.last_result.mode_switches


def strided_views_model(path):
    """Matmuls whose operands are views needing the on-chip fetch forms: columns contiguous (DMA +
    transposing copy), neither rows nor columns (span + strided copy); 4-D row-major inputs and
    outputs.  (The encoder covers operands with contiguous rows.)"""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 8])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 5, 4])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 2, 5, 5])
    const = [helper.make_tensor(n, TensorProto.INT64, [len(v)], v) for n, v in
             (("starts", [0]), ("ends", [8]), ("axes", [3]), ("steps", [2]))]
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 1, 3, 2], name="t"),  # [1,2,5,6], columns contiguous
             helper.make_node("Slice", ["y", "starts", "ends", "axes", "steps"], ["b"], name="s"),  # [1,2,6,4]
             helper.make_node("MatMul", ["a", "b"], ["z"], name="mm_span"),
             helper.make_node("MatMul", ["a", "x"], ["m"], name="mm_rows"),  # x: W = x^T per head
             helper.make_node("Transpose", ["m"], ["w"], perm=[0, 1, 2, 3], name="id")]
    graph = helper.make_graph(nodes, "views", [x, y], [z, w], const)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_strided_operand_views_run_bit_exact(tmp_path):
    strided_views_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((4, 1, 2, 6, 5)).astype(np.float32),
             y=rng.standard_normal((4, 1, 2, 6, 8)).astype(np.float32))
    module = quantized(str(tmp_path / "m.onnx"), tmp_path / "c.npz")
    artifact = compile_overlay(module)
    assert [layer["kind"] for layer in artifact.metadata["layers"]].count("layout") == 0
    session = Session(artifact)
    feeds = {"x": rng.standard_normal((1, 2, 6, 5)).astype(np.float32),
             "y": rng.standard_normal((1, 2, 6, 8)).astype(np.float32)}
    simulated, reference = session.run_dict(feeds), run_module(module, feeds)
    for key in ("z", "w"):
        np.testing.assert_array_equal(simulated[key], reference[key])


ZERO_POINT_B = """\
module @zp {
  input %a : f32[1,2,5,6]
  input %b : f32[1,2,6,4]
  %a.q = quantize(%a) {dtype = "i8"} : i8[1,2,5,6]{scale = 0.02, zero_point = -4}
  %b.q = quantize(%b) {dtype = "i8"} : i8[1,2,6,4]{scale = 0.03, zero_point = ZP}
  %z.acc = qmatmul(%a.q, %b.q) : i32[1,2,5,4]{scale = 0.0006, zero_point = 0}
  %z = requantize(%z.acc) {axis = 1, dtype = "i8", multiplier = [1354249760], pre_shift = 0, qmax = 127, \
qmin = -128, rounding = "half_even", shift = [37], zero_point = -7} : i8[1,2,5,4]{scale = 0.05, zero_point = -7}
  %z.f32 = dequantize(%z) {dtype = "f32"} : f32[1,2,5,4]
  output "z" = %z.f32
}
"""


@pytest.mark.parametrize("zero_point", [5, -128])  # -128: the correction row -zp needs 16-bit weights
@pytest.mark.parametrize("wbuf_bytes", [None, 128])  # 128: a 16-byte W quarter, the reduction in chunks of 4
def test_b_zero_point_is_corrected_exactly(zero_point, wbuf_bytes):
    """A pinned (e.g. QDQ-imported) asymmetric B: a second pass against a row of -zp_b (per reduction
    chunk when a head's product is split)."""
    from tcc.ir import parse_module

    module = parse_module(ZERO_POINT_B.replace("ZP", str(zero_point)))
    artifact = compile_overlay(module, TargetConfig(wbuf_bytes=wbuf_bytes) if wbuf_bytes else None)
    if wbuf_bytes:
        assert sum(1 for w in artifact.program if (int(w) >> 58) == 0x05) == 2 * 2 * 2  # heads x chunks x passes
    assert artifact.metadata["layers"][0]["macs"] == 2 * 2 * 5 * 4 * 6  # the product and its correction
    rng = np.random.default_rng(2)
    feeds = {"a": rng.uniform(-2, 2, (1, 2, 5, 6)).astype(np.float32),
             "b": rng.uniform(-3, 3, (1, 2, 6, 4)).astype(np.float32)}
    np.testing.assert_array_equal(Session(artifact).run(None, feeds)[0], run_module(module, feeds)["z"])


def self_attention_model(path, heads, seq, dim):
    """Softmax(Q K^T) Q on the heads of one input (Q = K = V): reshape/transpose views only."""
    vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Reshape", ["x", "heads"], ["r"]),
             helper.make_node("Transpose", ["r"], ["q"], perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["r"], ["kt"], perm=[0, 2, 3, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "q"], ["o"]),
             helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["ot", "merged"], ["y"])]
    shapes = [helper.make_tensor("heads", TensorProto.INT64, [4], [1, seq, heads, dim]),
              helper.make_tensor("merged", TensorProto.INT64, [3], [1, seq, heads * dim])]
    graph = helper.make_graph(nodes, "attention", [vi("x", [1, seq, heads * dim])],
                              [vi("y", [1, seq, heads * dim])], shapes)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_attention_tiles_over_heads_and_rows_on_a_small_core(tmp_path):
    """Buffers of a few hundred bytes: one head per tile and tiles of 6 rows."""
    self_attention_model(tmp_path / "m.onnx", heads=4, seq=24, dim=8)
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, 1, 24, 32)).astype(np.float32))
    module = quantized(str(tmp_path / "m.onnx"), tmp_path / "c.npz")
    small = TargetConfig(abuf_bytes=2048, wbuf_bytes=2048, acc_bytes=2048, pbuf_bytes=1024, vbuf_bytes=8192)
    artifact = compile_overlay(module, small)
    matmuls = sum(1 for w in artifact.program if (int(w) >> 58) == 0x05)
    assert matmuls == 2 * 4 * 4  # each product: 4 heads x 4 tiles of 6 rows (24 x 24 int32 or P's rows)
    feeds = {"x": rng.standard_normal((1, 24, 32)).astype(np.float32)}
    np.testing.assert_array_equal(Session(artifact).run(None, feeds)[0], run_module(module, feeds)["y"])


def test_a_head_too_large_for_the_buffers_is_split_over_columns_and_the_reduction(tmp_path):
    """A head's [40, 16] x [16, 40] scores and [40, 40] x [40, 16] context on a core whose W quarter
    holds 256 bytes (long sequences on the real core): output tiles accumulated over reduction chunks
    of 6 and 16, on the device, bit-exact, and close to onnxruntime's float."""
    self_attention_model(tmp_path / "m.onnx", heads=2, seq=40, dim=16)
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, 1, 40, 32)).astype(np.float32))
    module = quantized(str(tmp_path / "m.onnx"), tmp_path / "c.npz")
    artifact = compile_overlay(module, TargetConfig(wbuf_bytes=2048, pbuf_bytes=1024))
    matmuls = sum(1 for w in artifact.program if (int(w) >> 58) == 0x05)
    assert matmuls == 2 * (3 + 3)  # per head: scores in chunks 6, 6, 4; context in 16, 16, 8
    feeds = {"x": rng.standard_normal((1, 40, 32)).astype(np.float32)}
    (got,) = Session(artifact).run(None, feeds)
    np.testing.assert_array_equal(got, run_module(module, feeds)["y"])
    (want,) = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, feeds)
    assert sqnr_db(want, got) > 25


def test_schedule_modes_halves_the_switches_of_two_independent_sequences(tmp_path):
    """Two copies of the encoder side by side: program order alternates modes per copy (28
    switches; GELU is an int8 table lookup); schedule-modes runs both copies' int8 work together
    (14, the lower bound), and the
    simulator runs both orders to identical logits, the scheduled one in fewer cycles."""
    from onnx import compose

    from tcc.ir import parse_module, print_module
    from tcc.passes import make_pass
    from tcc.passes.mode_schedule import switch_lower_bound

    model = onnx.load(ENC + "encoder.onnx")
    copy, g = compose.add_prefix(model, "b/").graph, model.graph
    graph = helper.make_graph(list(g.node) + list(copy.node), "x2", list(g.input) + list(copy.input),
                              list(g.output) + list(copy.output), list(g.initializer) + list(copy.initializer))
    onnx.save(helper.make_model(graph, opset_imports=model.opset_import), str(tmp_path / "x2.onnx"))
    tokens = np.load(ENC + "encoder_calib.npz")["tokens"][:16]
    np.savez(tmp_path / "c.npz", **{"tokens": tokens, "b/tokens": tokens[::-1].copy()})
    module = quantized(str(tmp_path / "x2.onnx"), tmp_path / "c.npz")
    original = parse_module(print_module(module))
    schedule = make_pass("schedule-modes")
    schedule.apply(module)
    assert (schedule.before, schedule.after, switch_lower_bound(module.ops)) == (28, 14, 14)
    test = np.load(ENC + "encoder_test.npz")["tokens"]
    feeds = {"tokens": test[:1], "b/tokens": test[1:2]}
    runs = [Session(compile_overlay(m)) for m in (original, module)]
    outs = [s.run_dict(feeds) for s in runs]
    for key in ("logits", "b/logits"):
        np.testing.assert_array_equal(outs[0][key], outs[1][key])
    assert [s.last_result.mode_switches for s in runs] == [28, 14]
    assert runs[1].last_result.cycles < runs[0].last_result.cycles


def test_an_operand_that_is_no_strided_box_is_materialized_first(tmp_path):
    """Swapping two batch axes leaves per-head offsets that are not affine in the flattened head
    index: the transpose runs as a layout step and the matmul reads its dense result."""
    vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[1, 0, 2, 3], name="swap"),
             helper.make_node("MatMul", ["a", "y"], ["z"], name="mm")]
    graph = helper.make_graph(nodes, "g", [vi("x", [3, 2, 4, 5]), vi("y", [2, 3, 5, 6])], [vi("z", [2, 3, 4, 6])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    rng = np.random.default_rng(5)
    feeds = {"x": rng.standard_normal((3, 2, 4, 5)).astype(np.float32),
             "y": rng.standard_normal((2, 3, 5, 6)).astype(np.float32)}
    np.savez(tmp_path / "c.npz", **{k: np.stack([v, -v]) for k, v in feeds.items()})
    module = quantized(str(tmp_path / "m.onnx"), tmp_path / "c.npz")
    artifact = compile_overlay(module)
    assert [layer["kind"] for layer in artifact.metadata["layers"]] == ["layout", "matmul"]
    np.testing.assert_array_equal(Session(artifact).run(None, feeds)[0], run_module(module, feeds)["z"])


def test_grid_partition_moves_in_rows_when_whole_row_tiles_scatter_too_deep(tmp_path):
    """MaxViT-T's first window departition and grid partition (6-D permutes between reshapes, then
    the window/grid swap), composed into one move: a tile of whole outer rows scatters into more
    loop levels than one DMA box; rows of an inner dim still store as boxes (this failed the
    MaxViT-T compile)."""
    vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Reshape", ["a", "windows"], ["w"]),
             helper.make_node("Transpose", ["w"], ["wp"], perm=[0, 5, 1, 3, 2, 4]),
             helper.make_node("Reshape", ["wp", "image"], ["i"]),
             helper.make_node("Reshape", ["i", "grid"], ["g"]),
             helper.make_node("Transpose", ["g"], ["gp"], perm=[0, 2, 4, 3, 5, 1]),
             helper.make_node("Reshape", ["gp", "merged"], ["m"]),
             helper.make_node("Transpose", ["m"], ["s"], perm=[0, 2, 1, 3]),
             helper.make_node("Relu", ["s"], ["y"])]
    shapes = [helper.make_tensor("windows", TensorProto.INT64, [6], [1, 8, 8, 7, 7, 64]),
              helper.make_tensor("image", TensorProto.INT64, [4], [1, 64, 56, 56]),
              helper.make_tensor("grid", TensorProto.INT64, [6], [1, 64, 7, 8, 7, 8]),
              helper.make_tensor("merged", TensorProto.INT64, [4], [1, 49, 64, 64])]
    graph = helper.make_graph(nodes, "grid", [vi("x", [1, 64, 49, 64])], [vi("y", [1, 64, 49, 64])], shapes)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    rng = np.random.default_rng(6)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, 1, 64, 49, 64)).astype(np.float32))
    module = quantized(str(tmp_path / "m.onnx"), tmp_path / "c.npz")
    artifact = compile_overlay(module)
    assert "layout" in [layer["kind"] for layer in artifact.metadata["layers"]]
    feeds = {"x": rng.standard_normal((1, 64, 49, 64)).astype(np.float32)}
    np.testing.assert_array_equal(Session(artifact).run(None, feeds)[0], run_module(module, feeds)["y"])


def test_scale_steps_move_to_one_step_after_their_input():
    """BERT's attention: the query, key and value projections, then the scaled queries and keys,
    then their product.  Each scale step moves to one step after the step writing its input (not
    before it, and never after its own place): the scaled queries after the key projection, the
    scaled keys after them, so the scaled keys' trip into wbuf runs beside the value projection."""
    from types import SimpleNamespace

    from tcc.backends.overlay.compile import _scales_early
    from tcc.backends.overlay.steps import Step

    def value(name):
        return SimpleNamespace(name=name, producer=None)

    x, q, k, v, qs, ks, s = (value(n) for n in ("x", "q", "k", "v", "qs", "ks", "s"))
    steps = [Step("gemm", [], [x], [q], "Q"), Step("gemm", [], [x], [k], "K"), Step("gemm", [], [x], [v], "V"),
             Step("scale", [], [q], [qs], "Qs"), Step("scale", [], [k], [ks], "Ks"),
             Step("matmul", [], [qs, ks], [s], "QK")]
    assert [step.name for step in _scales_early(steps, {})] == ["Q", "K", "Qs", "Ks", "V", "QK"]
    # through an alias (a reshape sharing its source's bytes) the same
    kv = value("k view")
    steps[4].inputs = [kv]
    assert [step.name for step in _scales_early(steps, {id(kv): (k, 0)})] == ["Q", "K", "Qs", "Ks", "V", "QK"]
    # a scale right after its input stays where it is
    assert [step.name for step in _scales_early(steps[:1] + steps[3:4], {})] == ["Q", "Qs"]
