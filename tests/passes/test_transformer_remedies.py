"""Transformer quantization remedies: SmoothQuant (passes/quantize/smoothing.py) and the bf16
residual stream (passes/quantize/remedies.py), on small IR modules written for the case each
rule is about: a LayerNorm whose input has an outlier channel, a ViT-like class token far smaller
than the patch tokens, a post-LN block whose LayerNorm output also feeds the residual add, and an
attention core for the per-matmul remedies (per-row softmax scales, int32 scores)."""
import numpy as np
import pytest

from tcc.ir import parse_module, print_module, verify
from tcc.ir.interpreter import run_module
from tcc.passes.quantize import Quantize, QuantizationError, SmoothQuant
from tcc.passes.quantize.remedies import residual_segments
from tcc.passes.quantize.smoothing import choose_alpha, smoothing_sites


def blob(array) -> str:
    import base64
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def vit_like(seed: int = 0, outlier: float = 30.0) -> str:
    """x [1,4,8] patch tokens; a class token 50x smaller concatenated in front, + position, pre-LN,
    then a linear layer (its LayerNorm's gamma gives channel 0 an outlier) and a residual add."""
    rng = np.random.default_rng(seed)
    gamma = np.ones(8, np.float32)
    gamma[0] = outlier
    consts = {"cls": rng.standard_normal((1, 1, 8)) * 0.02, "pos": rng.standard_normal((1, 5, 8)) * 0.1,
              "gamma": gamma, "beta": rng.standard_normal(8) * 0.1, "w": rng.standard_normal((8, 8)) * 0.3,
              "b": rng.standard_normal(8) * 0.1, "g2": np.ones(8), "b2": np.zeros(8),
              "head": rng.standard_normal((3, 8)) * 0.3}
    shapes = {"cls": "1,1,8", "pos": "1,5,8", "gamma": "8", "beta": "8", "w": "8,8", "b": "8", "g2": "8",
              "b2": "8", "head": "3,8"}
    lines = ["module @vit_like {", "  input %x : f32[1,4,8]"]
    lines += [f"  %{k} = const() {{value = blob<#{i}>}} : f32[{shapes[k]}]" for i, k in enumerate(consts)]
    lines += [
        "  %cat = concat(%cls, %x) {axis = 1} : f32[1,5,8]",
        "  %res0 = add(%cat, %pos) : f32[1,5,8]",
        "  %ln = layer_norm(%res0, %gamma, %beta) {axis = 2, epsilon = 1e-06} : f32[1,5,8]",
        "  %y = linear(%ln, %w, %b) : f32[1,5,8]",
        "  %res1 = add(%res0, %y) : f32[1,5,8]",
        "  %ln2 = layer_norm(%res1, %g2, %b2) {axis = 2, epsilon = 1e-06} : f32[1,5,8]",
        "  %out = linear(%ln2, %head) : f32[1,5,3]",
        '  output "out" = %out',
        "}",
        "blobs {",
    ]
    lines += [f'  #{i} = f32[{shapes[k]}] "{blob(consts[k])}"' for i, k in enumerate(consts)]
    lines += ["}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def calib(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(1).uniform(-2, 2, (24, 1, 4, 8)).astype(np.float32))
    return str(path)


def inputs(count=8, seed=2):
    return [{"x": a[None]} for a in np.random.default_rng(seed).uniform(-2, 2, (count, 4, 8)).astype(np.float32)]


def output_error(float_module, module) -> float:
    ref = np.concatenate([run_module(float_module, s)["out"] for s in inputs()])
    got = np.concatenate([run_module(module, s)["out"] for s in inputs()])
    return float(np.sum((ref - got) ** 2) / np.sum(ref ** 2))


def test_smoothing_sites_are_layer_norms_read_only_by_linear_layers():
    module = parse_module(vit_like())
    sites = smoothing_sites(module)
    assert [s.norm.result.name for s in sites] == ["ln", "ln2"]
    assert [[r.result.name for r, _ in s.readers] for s in sites] == [["y"], ["out"]]


def test_post_ln_norm_feeding_a_residual_add_is_not_smoothed():
    text = vit_like().replace("%res1 = add(%res0, %y)", "%res1 = add(%ln, %y)")
    assert [s.norm.result.name for s in smoothing_sites(parse_module(text))] == ["ln2"]


def test_smooth_quant_keeps_the_float_model_and_cuts_int8_error(calib):
    floating = parse_module(vit_like())
    smoothed = parse_module(vit_like())
    smooth = SmoothQuant(calib=calib)
    smooth.apply(smoothed)
    verify(smoothed)
    for s in inputs():
        np.testing.assert_allclose(run_module(smoothed, s)["out"], run_module(floating, s)["out"], rtol=2e-5,
                                   atol=2e-5)
    loc, alpha, after, before = smooth.report[0]
    assert alpha is not None and after < before / 2  # the outlier channel's migration pays
    assert "ln.smooth" not in print_module(floating)
    plain = parse_module(vit_like())
    Quantize(calib=calib, residual="int8").apply(plain)
    Quantize(calib=calib, residual="int8").apply(smoothed)
    assert output_error(floating, smoothed) < output_error(floating, plain)


def test_alpha_search_leaves_a_site_without_outliers_alone():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 8))
    w = rng.standard_normal((4, 8))
    alpha, s, err, base = choose_alpha(x, [w])
    assert err <= base
    if alpha is None:
        assert s is None and err == base


def test_smooth_quant_needs_calibration():
    with pytest.raises(QuantizationError, match="calib"):
        SmoothQuant().apply(parse_module(vit_like()))


def test_residual_segments_follow_adds_and_concats_into_layer_norms():
    segments = residual_segments(parse_module(vit_like()))
    assert [[op.result.name for op in ops] for ops in segments] == [["cat", "res0", "res1"]]
    post_ln = vit_like().replace("%res1 = add(%res0, %y)", "%res1 = add(%ln, %y)")
    segments = residual_segments(parse_module(post_ln))
    assert [[op.result.name for op in ops] for ops in segments] == [["cat", "res0"], ["res1"]]


def test_residual_stream_in_bf16_is_chosen_by_measured_error(calib):
    floating = parse_module(vit_like())
    modules = {}
    for residual in ("int8", "bf16", "auto"):
        module = parse_module(vit_like())
        quantize = Quantize(calib=calib, residual=residual)
        quantize.apply(module)
        verify(module)
        modules[residual] = (module, quantize)
    kinds = {r: {op.results[0].name: op.results[0].type.dtype for op in m.ops if op.kind in ("add", "concat")}
             for r, (m, _) in modules.items()}
    assert kinds["bf16"]["res0"] == kinds["bf16"]["cat"] == "bf16"
    assert "res0" not in kinds["int8"] or kinds["int8"]["res0"] != "bf16"
    (choice,) = modules["auto"][1].residual_choices
    assert choice.names == ("cat", "res0", "res1") and choice.kept  # the small class token needs it
    assert choice.error_bf16 < choice.error_int8
    assert output_error(floating, modules["bf16"][0]) < 0.8 * output_error(floating, modules["int8"][0])


def test_unknown_residual_choice_is_refused(calib):
    with pytest.raises(QuantizationError, match="residual"):
        Quantize(calib=calib, residual="fp8").apply(parse_module(vit_like()))


def test_softmax_input_range_clips_scores_the_softmax_forgets():
    from tcc.passes.quantize.observers import MinMaxObserver, SoftmaxInputObserver

    rng = np.random.default_rng(4)
    scores = rng.normal(0, 2, (64, 17))
    scores[:, 0] = -40.0  # a masked-out position: far below every row's maximum
    obs = SoftmaxInputObserver()
    for chunk in np.split(scores, 4):
        part = SoftmaxInputObserver()
        part.observe(chunk)
        obs.merge(part)
    plain = MinMaxObserver()
    plain.observe(scores)
    lo, hi = obs.range()
    assert hi == plain.range()[1] and -40.0 < lo <= hi - SoftmaxInputObserver.SPANS[0]

    def softmax_error(lo_):
        from tcc.ir import numerics
        from tcc.passes.quantize.params import activation_params
        p = activation_params(lo_, hi, False)
        q = numerics.dequantize_affine(numerics.quantize_affine(scores, p.scale[0], p.zero_point[0]),
                                       p.scale[0], p.zero_point[0])
        e = lambda x: np.exp(x - x.max(1, keepdims=True)) / np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)
        return np.sum((e(q) - e(scores)) ** 2)

    assert softmax_error(lo) < softmax_error(-40.0) / 4


ATTENTION = """module @attention {
  input %x : f32[1,5,8]
  input %mask : f32[1,5,5]
  %t = transpose(%x) {perm = [0, 2, 1]} : f32[1,8,5]
  %scores = matmul(%x, %t) : f32[1,5,5]
  %probs = softmax(%scores) {axis = 2} : f32[1,5,5]
  %out = matmul(%probs, %x) : f32[1,5,8]
  output "out" = %out
}
"""


def test_auto_calibration_gives_scores_the_softmax_range_and_probabilities_min_max():
    from tcc.passes.quantize.calibration import reduction_inputs, softmax_inputs

    module = parse_module(ATTENTION)
    names = lambda ids: sorted(v.name for v in module.values() if id(v) in ids)
    assert names(softmax_inputs(module)) == ["scores"]
    assert names(reduction_inputs(module)) == []  # the probabilities (a matmul A operand) keep min/max
    masked = ATTENTION.replace("%probs = softmax(%scores)", "%masked = add(%scores, %mask) : f32[1,5,5]\n"
                                                            "  %probs = softmax(%masked)")
    module = parse_module(masked)
    assert names(softmax_inputs(module)) == []  # a mask's range is not the scores'


HEADS_ATTENTION = """module @attention {
  input %q : f32[1,2,5,4]
  input %kt : f32[1,2,4,5]
  input %v : f32[1,2,5,3]
  %s = matmul(%q, %kt) : f32[1,2,5,5]
  %p = softmax(%s) {axis = 3} : f32[1,2,5,5]
  %o = matmul(%p, %v) : f32[1,2,5,3]
  output "o" = %o
}
"""


@pytest.fixture
def attention_calib(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "attention.npz"
    np.savez(path, q=rng.normal(0, 2, (16, 1, 2, 5, 4)).astype(np.float32),
             kt=rng.normal(0, 2, (16, 1, 2, 4, 5)).astype(np.float32),
             v=rng.normal(0, 1, (16, 1, 2, 5, 3)).astype(np.float32))
    return str(path)


def test_attention_remedies_change_the_matmuls_their_rules_name(attention_calib):
    on = parse_module(HEADS_ATTENTION)
    Quantize(calib=attention_calib, rows="on", scores="on").apply(on)
    verify(on)
    rows = [op for op in on.ops if op.kind == "quantize_rows"]
    assert len(rows) == 1 and rows[0].x.producer.kind == "softmax"  # A of softmax x V, per row
    assert any(op.kind == "requantize" and op.row_shift is rows[0].results[1] for op in on.ops)
    scores = next(op for op in on.ops if op.kind == "softmax").x.producer
    assert scores.kind == "dequantize" and scores.x.producer.kind == "qmatmul"  # int32 scores, no int8
    off = parse_module(HEADS_ATTENTION)
    Quantize(calib=attention_calib, rows="off", scores="off").apply(off)
    assert not any(op.kind == "quantize_rows" for op in off.ops)
    assert next(op for op in off.ops if op.kind == "softmax").x.producer.x.producer.kind == "requantize"
    assert parse_module(print_module(on)).ops[-1].kind == on.ops[-1].kind  # prints and parses back


def test_attention_remedies_auto_records_one_measured_choice_per_site(attention_calib):
    quantize = Quantize(calib=attention_calib)
    quantize.apply(parse_module(HEADS_ATTENTION))
    assert [c.name for c in quantize.row_choices] == ["o"] and [c.name for c in quantize.score_choices] == ["s"]
    for c in quantize.row_choices + quantize.score_choices:
        assert c.kept == (c.error_with < c.error_before * 0.95)


@pytest.mark.parametrize("option", ["rows", "scores"])
def test_unknown_attention_remedy_choice_is_refused(attention_calib, option):
    with pytest.raises(QuantizationError, match=option):
        Quantize(calib=attention_calib, **{option: "maybe"}).apply(parse_module(HEADS_ATTENTION))


def test_a_linear_model_output_leaves_as_int32_accumulators(calib):
    """rules.leaves_as_int32: the output linear's int32 accumulators, dequantized (outputs=int32, the
    default), against an int8 requantize (outputs=int8): the int8 logits are the int32 ones rounded
    onto the output's grid (within half a step), so the int32 ones carry one rounding fewer."""
    results = {}
    for outputs in ("int32", "int8"):
        module = parse_module(vit_like())
        Quantize(calib=calib, residual="bf16", branches="off", outputs=outputs).apply(module)
        verify(module)
        results[outputs] = module
    wide = dict(results["int32"].outputs)["out"].producer
    assert wide.kind == "dequantize" and wide.x.type.dtype == "i32" and wide.x.producer.kind == "qlinear"
    narrow = dict(results["int8"].outputs)["out"].producer
    assert narrow.kind == "dequantize" and narrow.x.producer.kind == "requantize"
    step = narrow.x.type.quant.scale[0]
    for x in inputs(4):
        fine, coarse = run_module(results["int32"], x)["out"], run_module(results["int8"], x)["out"]
        assert np.abs(fine - coarse).max() <= 0.5 * step * (1 + 1e-5)
        assert not np.array_equal(fine, coarse)


def test_int32_outputs_only_for_a_linear_result_nothing_else_reads(calib):
    """A relu after the output layer (its clamp folds into the int8 requantize) keeps the rule off."""
    text = vit_like().replace('  output "out" = %out', '  %act = relu(%out) : f32[1,5,3]\n  output "out" = %act')
    module = parse_module(text)
    Quantize(calib=calib, residual="bf16").apply(module)
    assert all(op.results[0].type.dtype != "i32" or op.kind != "qlinear" or op.results[0].users[0].kind == "requantize"
               for op in module.ops)


def test_unknown_outputs_choice_is_refused(calib):
    with pytest.raises(QuantizationError, match="outputs"):
        Quantize(calib=calib, outputs="int16").apply(parse_module(vit_like()))


def test_a_linear_read_only_by_the_bf16_stream_reaches_it_through_an_int32_grid(calib):
    """rules.feeds_only_bf16 (quantize{branches=on}): %y, read only by the residual add kept in bf16,
    is requantized onto one int32 grid (per-channel multipliers <= 1) and converted to bf16; with
    branches=off it is an int8 requantize; auto records one measured choice for it."""
    found = {}
    for branches in ("on", "off", "auto"):
        module = parse_module(vit_like())
        quantize = Quantize(calib=calib, residual="bf16", branches=branches)
        quantize.apply(module)
        verify(module)
        acc = next(op for op in module.ops if op.kind == "qlinear" and op.results[0].name == "y.acc")
        found[branches] = (acc.result.users[0], quantize.branch_choices)
    widened, _ = found["on"]
    assert widened.kind == "requantize" and widened.dtype == "i32" and max(widened.multiplier) <= 2**31 - 1
    assert [u.kind for u in widened.result.users] == ["dequantize"] and widened.result.users[0].dtype == "bf16"
    narrow, _ = found["off"]
    assert narrow.kind == "requantize" and narrow.dtype == "i8"
    _, choices = found["auto"]
    assert [c.name for c in choices] == ["y"]
    assert found["auto"][0].dtype == ("i32" if choices[0].kept else "i8")


def test_no_int32_branch_into_an_int8_stream(calib):
    module = parse_module(vit_like())
    Quantize(calib=calib, residual="int8", branches="on").apply(module)
    assert not any(op.kind == "requantize" and op.dtype == "i32" and op.x.producer.kind == "qlinear" for op in module.ops)


MLP = """module @mlp {
  input %x : f32[1,4,8]
  %w1 = const() {value = blob<#0>} : f32[16,8]
  %w2 = const() {value = blob<#1>} : f32[8,16]
  %h = linear(%x, %w1) : f32[1,4,16]
  %g = gelu(%h) {approximate = "none"} : f32[1,4,16]
  %out = linear(%g, %w2) : f32[1,4,8]
  output "out" = %out
}
blobs {
"""


def mlp_module():
    rng = np.random.default_rng(3)
    blobs = [rng.standard_normal((16, 8)) * 0.5, rng.standard_normal((8, 16)) * 0.3]
    return parse_module(MLP + "".join(f'  #{i} = f32[{",".join(map(str, b.shape))}] "{blob(b)}"\n'
                                      for i, b in enumerate(blobs)) + "}\n")


def test_a_tabulated_gelu_after_a_linear_layer_runs_in_bf16_from_its_accumulators(calib):
    """rules.untabulate (quantize{chains=on}): no int8 table; the GELU reads the first layer's
    accumulators through one int32 grid, in bf16.  chains=off keeps the table (qlut)."""
    module = mlp_module()
    Quantize(calib=calib, chains="on").apply(module)
    verify(module)
    gelu = next(op for op in module.ops if op.kind == "gelu")
    cvt = gelu.x.producer
    assert gelu.result.type.dtype == "bf16" and cvt.kind == "dequantize" and cvt.x.type.dtype == "i32"
    assert cvt.x.producer.kind == "requantize" and cvt.x.producer.x.producer.kind == "qlinear"
    assert not any(op.kind == "qlut" for op in module.ops)
    tabulated = mlp_module()
    Quantize(calib=calib, chains="off").apply(tabulated)
    assert any(op.kind == "qlut" for op in tabulated.ops)
    float_out = [run_module(mlp_module(), s)["out"] for s in inputs()]
    errors = [sum(float(np.sum((run_module(m, s)["out"] - f) ** 2)) for s, f in zip(inputs(), float_out))
              for m in (module, tabulated)]
    assert errors[0] < errors[1]


def patch_vit(stride: int = 4, pads: str = "0, 0, 0, 0") -> str:
    """image [1,2,8,8] -> patch embedding conv (kernel 4) -> flatten + transpose to 4 tokens of 6 ->
    class token concatenated in front, + position, LayerNorm, a linear head: ViT's front end."""
    rng = np.random.default_rng(5)
    side = (8 - 4) // stride + 1  # the map's side (the padded case's too: (8 + 2 - 4) // 4 + 1)
    n = side * side + 1
    consts = {"pw": rng.standard_normal((6, 2, 4, 4)) * 0.3, "pb": rng.standard_normal(6) * 0.1,
              "cls": rng.standard_normal((1, 1, 6)) * 0.02, "pos": rng.standard_normal((1, n, 6)) * 0.1,
              "g": np.ones(6), "b": np.zeros(6), "head": rng.standard_normal((3, 6)) * 0.3}
    shapes = {k: ",".join(map(str, np.shape(v))) for k, v in consts.items()}
    lines = ["module @patch_vit {", "  input %img : f32[1,2,8,8]"]
    lines += [f"  %{k} = const() {{value = blob<#{i}>}} : f32[{shapes[k]}]" for i, k in enumerate(consts)]
    lines += [
        f"  %pe = conv(%img, %pw, %pb) {{dilations = [1, 1], group = 1, pads = [{pads}], "
        f"strides = [{stride}, {stride}]}} : f32[1,6,{side},{side}]",
        f"  %flat = reshape(%pe) {{shape = [1, 6, {side * side}]}} : f32[1,6,{side * side}]",
        f"  %tok = transpose(%flat) {{perm = [0, 2, 1]}} : f32[1,{side * side},6]",
        f"  %cat = concat(%cls, %tok) {{axis = 1}} : f32[1,{n},6]",
        f"  %res = add(%cat, %pos) : f32[1,{n},6]",
        f"  %ln = layer_norm(%res, %g, %b) {{axis = 2, epsilon = 1e-06}} : f32[1,{n},6]",
        f"  %out = linear(%ln, %head) : f32[1,{n},3]",
        '  output "out" = %out',
        "}",
        "blobs {",
    ]
    lines += [f'  #{i} = f32[{shapes[k]}] "{blob(consts[k])}"' for i, k in enumerate(consts)]
    return "\n".join(lines + ["}"]) + "\n"


@pytest.fixture
def image_calib(tmp_path):
    path = tmp_path / "images.npz"
    np.savez(path, img=np.random.default_rng(6).uniform(-1, 1, (16, 1, 2, 8, 8)).astype(np.float32))
    return str(path)


def test_a_patch_embedding_reaches_the_bf16_stream_as_a_linear_layer_over_patches(image_calib):
    """rules.patch_embedding (quantize{patches=on}): the conv with kernel = stride whose map is flattened
    and transposed into the bf16 stream becomes a qlinear over the int8 image cut into one row per
    patch, its accumulators onto one int32 grid and to bf16; the accumulators equal the qconv's of
    patches=off (which rounds them to int8) element for element, in token order; auto records one
    measured choice, for the conv."""
    seen = {}
    modules = {}
    for patches in ("on", "off", "auto"):
        module = parse_module(patch_vit())
        quantize = Quantize(calib=image_calib, residual="bf16", patches=patches)
        quantize.apply(module)
        verify(module)
        modules[patches] = module
    assert [c.name for c in quantize.patch_choices] == ["pe"]
    assert any(op.kind == "qconv" for op in modules["auto"].ops) != quantize.patch_choices[0].kept
    wide, narrow = modules["on"], modules["off"]
    assert not any(op.kind == "qconv" for op in wide.ops)
    linear = next(op for op in wide.ops if op.kind == "qlinear" and op.result.name == "pe.acc")
    assert linear.x.type.shape == (1, 4, 32) and linear.x.producer.kind == "reshape"
    assert linear.result.users[0].kind == "requantize" and linear.result.users[0].dtype == "i32"
    assert linear.result.users[0].result.users[0].result.users[0].kind == "concat"
    conv = next(op for op in narrow.ops if op.kind == "qconv")
    assert conv.result.users[0].kind == "requantize" and conv.result.users[0].dtype == "i8"
    x = {"img": np.random.default_rng(7).uniform(-1, 1, (1, 2, 8, 8)).astype(np.float32)}
    for key, module, value in (("on", wide, linear.result), ("off", narrow, conv.result)):
        run_module(module, x, observe=lambda v, a, key=key, value=value: seen.update({key: a}) if v is value else None)
    np.testing.assert_array_equal(seen["on"], seen["off"].reshape(1, 6, 4).transpose(0, 2, 1))


@pytest.mark.parametrize("stride, pads", [(2, "0, 0, 0, 0"), (4, "1, 1, 1, 1")])
def test_only_non_overlapping_unpadded_patches_are_a_linear_layer(image_calib, stride, pads):
    module = parse_module(patch_vit(stride, pads))
    Quantize(calib=image_calib, residual="bf16", patches="on").apply(module)
    assert any(op.kind == "qconv" for op in module.ops)


def test_no_patch_embedding_as_a_linear_layer_into_an_int8_stream(image_calib):
    module = parse_module(patch_vit())
    Quantize(calib=image_calib, residual="int8", patches="on").apply(module)
    assert any(op.kind == "qconv" for op in module.ops)
