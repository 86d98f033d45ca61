"""recognize: decomposed LayerNorm and GELU subgraphs fuse into layer_norm and gelu."""
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tcc.frontend import import_onnx
from tcc.ir import parse_module, print_module
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PassManager, parse_pipeline


def parse(text: str):
    return parse_module(textwrap.dedent(text).lstrip())


def run(text: str, spec: str = "recognize,dce") -> str:
    module = parse(text)
    PassManager(parse_pipeline(spec)).run(module)
    return print_module(module)


def expect(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def assert_same_values(before: str, after: str, shape) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    want, got = run_module(parse(before), {"x": x})["y"], run_module(parse(after), {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def ln_text(shape=(2, 4), axes=(1,), var_axes=None, square="pow", denom="div", eps="const",
            affine=True, extra="") -> str:
    """A decomposed layer norm over `axes` of x (gamma/beta over the last dim when affine)."""
    var_axes = axes if var_axes is None else var_axes
    dims = ",".join(map(str, shape))
    red = ",".join("1" if i in axes else str(d) for i, d in enumerate(shape))
    vred = ",".join("1" if i in var_axes else str(d) for i, d in enumerate(shape))
    n = shape[-1]
    lines = [f"input %x : f32[{dims}]"]
    if eps == "input":
        lines.append("input %eps : f32[]")
    lines += [f"%mu = reduce_mean(%x) {{axes = [{', '.join(map(str, axes))}], keepdims = 1}} : f32[{red}] loc(\"ln\")",
              f"%d = sub(%x, %mu) : f32[{dims}] loc(\"ln\")"]
    if square == "pow":
        lines += ['%two = const() {value = dense<f32[], [2.0]>} : f32[] loc("ln")',
                  f'%sq = pow(%d, %two) : f32[{dims}] loc("ln")']
    elif square == "mul":
        lines.append(f'%sq = mul(%d, %d) : f32[{dims}] loc("ln")')
    else:  # TF's SquaredDifference: a second sub feeds the square
        lines += [f'%d2 = sub(%x, %mu) : f32[{dims}] loc("ln")', f'%sq = mul(%d2, %d2) : f32[{dims}] loc("ln")']
    lines.append(f"%var = reduce_mean(%sq) {{axes = [{', '.join(map(str, var_axes))}], keepdims = 1}} "
                 f": f32[{vred}] loc(\"ln\")")
    if eps == "const":
        lines.append('%eps = const() {value = dense<f32[], [1e-05]>} : f32[] loc("ln")')
    lines += [f'%ve = add(%eps, %var) : f32[{vred}] loc("ln")', f'%std = sqrt(%ve) : f32[{vred}] loc("ln")']
    last = "%y" if not affine else "%n"
    if denom == "div":
        lines.append(f'{last} = div(%d, %std) : f32[{dims}] loc("ln")')
    else:
        lines += [f'%r = reciprocal(%std) : f32[{vred}] loc("ln")', f'{last} = mul(%r, %d) : f32[{dims}] loc("ln")']
    if affine:
        gamma = ", ".join(str(1.0 + i / 4) for i in range(n))
        beta = ", ".join(str(i / 8 - 0.25) for i in range(n))
        lines += [f'%g = const() {{value = dense<f32[{n}], [{gamma}]>}} : f32[{n}] loc("ln")',
                  f'%s = mul(%g, %n) : f32[{dims}] loc("ln")',
                  f'%b = const() {{value = dense<f32[{n}], [{beta}]>}} : f32[{n}] loc("ln")',
                  f'%y = add(%s, %b) : f32[{dims}] loc("ln")']
    lines.append('output "y" = %y')
    lines += [extra] if extra else []
    return "module @m {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def test_layer_norm_with_gamma_beta():
    assert run(ln_text()) == expect("""
        module @m {
          input %x : f32[2,4]
          %g = const() {value = dense<f32[4], [1.0, 1.25, 1.5, 1.75]>} : f32[4] loc("ln")
          %b = const() {value = dense<f32[4], [-0.25, -0.125, 0.0, 0.125]>} : f32[4] loc("ln")
          %y = layer_norm(%x, %g, %b) {axis = 1, epsilon = 1e-05} : f32[2,4] loc("ln")
          output "y" = %y
        }
        """)


def test_layer_norm_without_gamma_beta_gets_unit_scale():
    assert run(ln_text(affine=False)) == expect("""
        module @m {
          input %x : f32[2,4]
          %y.scale = const() {value = dense<f32[4], [1.0, 1.0, 1.0, 1.0]>} : f32[4] loc("ln")
          %y = layer_norm(%x, %y.scale) {axis = 1, epsilon = 1e-05} : f32[2,4] loc("ln")
          output "y" = %y
        }
        """)


@pytest.mark.parametrize("variant", [
    dict(square="mul"),
    dict(square="twin"),
    dict(denom="reciprocal"),
    dict(square="mul", denom="reciprocal", affine=False),
    dict(shape=(2, 3, 4), axes=(1, 2)),
    dict(shape=(1, 8, 32), axes=(2,)),
])
def test_layer_norm_variants_fuse_and_keep_values(variant):
    text = ln_text(**variant)
    out = run(text)
    axis = variant.get("axes", (1,))[0]
    assert "layer_norm(%x, " in out and f"axis = {axis}," in out
    assert "reduce_mean" not in out and "sqrt" not in out
    assert_same_values(text, out, variant.get("shape", (2, 4)))


def test_layer_norm_gamma_beta_from_ones_and_zeros_and_scalars():
    text = ln_text(affine=False).replace('  output "y" = %y\n', """\
  %one = const() {value = dense<f32[1,4], [1.0, 1.0, 1.0, 1.0]>} : f32[1,4] loc("ln")
  %s = mul(%y, %one) : f32[2,4] loc("ln")
  %zero = const() {value = dense<f32[], [0.0]>} : f32[] loc("ln")
  %t = add(%s, %zero) : f32[2,4] loc("ln")
  %k = const() {value = dense<f32[], [2.0]>} : f32[] loc("ln")
  %u = mul(%t, %k) : f32[2,4] loc("ln")
  output "y" = %u
""")
    assert run(text) == expect("""
        module @m {
          input %x : f32[2,4]
          %k = const() {value = dense<f32[], [2.0]>} : f32[] loc("ln")
          %u = layer_norm(%x, %k) {axis = 1, epsilon = 1e-05} : f32[2,4] loc("ln")
          output "y" = %u
        }
        """)


def test_layer_norm_scaled_after_its_bias():
    text = ln_text().replace('  output "y" = %y\n', """\
  %k = const() {value = dense<f32[1,1,4], [3.0, 2.0, 1.0, 0.5]>} : f32[1,1,4] loc("ln")
  %u = mul(%k, %y) : f32[1,2,4] loc("ln")
  output "y" = %u
""")
    out = run(text)
    assert "%u = layer_norm(%x, %u.scale, %u.bias) {axis = 1, epsilon = 1e-05} : f32[2,4]" not in out  # rank grows
    assert "%u = mul(%k, %y)" in out
    text = text.replace("f32[1,1,4], [", "f32[1,4], [").replace(": f32[1,1,4]", ": f32[1,4]")
    text = text.replace("f32[1,2,4] loc", "f32[2,4] loc")
    out = run(text)
    assert "%u = layer_norm(%x, %u.scale, %u.bias) {axis = 1, epsilon = 1e-05} : f32[2,4]" in out
    assert "mul" not in out and "add" not in out
    assert_same_values(text, out, (2, 4))


@pytest.mark.parametrize("variant", [
    dict(extra='output "d" = %d'),                      # an intermediate is a module output
    dict(extra='output "var" = %var'),
    dict(shape=(2, 4, 3), axes=(1, 2), var_axes=(1,)),  # mean and variance over different axes
    dict(shape=(2, 3, 4), axes=(2,), var_axes=(1, 2)),    # mean and variance over different axes
    dict(eps="input"),                                   # eps is not a constant
])
def test_layer_norm_left_alone(variant):
    text = ln_text(**variant)
    assert run(text, "recognize") == print_module(parse(text))


@pytest.mark.parametrize("affine", [True, False])
def test_channels_first_layer_norm_moves_the_axis_last(affine):
    """ConvNeXt's LayerNorm over the channels of [N, C, H, W] as its official code writes it (means
    over axis 1): a transpose moves C last, layer_norm, and a transpose back, same values."""
    text = ln_text(shape=(2, 4, 3, 5), axes=(1,), affine=False)
    if affine:  # gamma and beta along C, as [C, 1, 1]
        text = text.replace('  output "y" = %y\n', """\
  %g = const() {value = dense<f32[4,1,1], [1.5, 0.5, 2.0, 1.0]>} : f32[4,1,1] loc("ln")
  %s = mul(%g, %y) : f32[2,4,3,5] loc("ln")
  %b = const() {value = dense<f32[4,1,1], [0.25, -0.5, 0.0, 1.0]>} : f32[4,1,1] loc("ln")
  %z = add(%s, %b) : f32[2,4,3,5] loc("ln")
  output "y" = %z
""")
    out = run(text)
    assert "%y.axis_last = transpose(%x) {perm = [0, 2, 3, 1]} : f32[2,3,5,4]" in out
    assert "%y.moved = layer_norm(%y.axis_last, %y.scale) {axis = 3, epsilon = 1e-05} : f32[2,3,5,4]" in out
    assert "%y = transpose(%y.moved) {perm = [0, 3, 1, 2]} : f32[2,4,3,5]" in out
    assert "reduce_mean" not in out and "sqrt" not in out
    assert_same_values(text, out, (2, 4, 3, 5))


def test_layer_norm_extra_user_inside_the_chain():
    text = ln_text().replace('  output "y" = %y\n', '  %w = relu(%std) : f32[2,1] loc("r")\n'
                                                   '  output "y" = %y\n  output "w" = %w\n')
    assert run(text, "recognize") == print_module(parse(text))


def test_layer_norm_gamma_varying_along_other_axes_stays_a_mul():
    text = ln_text(affine=False).replace('  output "y" = %y\n', """\
  %g = const() {value = dense<f32[2,1], [2.0, 3.0]>} : f32[2,1] loc("ln")
  %s = mul(%y, %g) : f32[2,4] loc("ln")
  output "y" = %s
""")
    out = run(text)
    assert "layer_norm(%x, %y.scale)" in out and "%s = mul(%y, %g)" in out


GELU_EXACT = """
    module @m {
      input %x : f32[2,4]
      %c = const() {value = dense<f32[], [1.4142135381698608]>} : f32[] loc("g")
      %z = div(%x, %c) : f32[2,4] loc("g")
      %e = erf(%z) : f32[2,4] loc("g")
      %one = const() {value = dense<f32[], [1.0]>} : f32[] loc("g")
      %a = add(%e, %one) : f32[2,4] loc("g")
      %m = mul(%x, %a) : f32[2,4] loc("g")
      %h = const() {value = dense<f32[], [0.5]>} : f32[] loc("g")
      %y = mul(%m, %h) : f32[2,4] loc("g")
      output "y" = %y
    }
    """


def gelu_text(body: list[str], shape="2,4") -> str:
    consts = {"half": 0.5, "one": 1.0, "two": 2.0, "three": 3.0, "rsqrt2": 0.7071067690849304,
              "sqrt2": 1.4142135381698608, "k": 0.7978845834732056, "cubic": 0.044715,
              "kc": 0.7978845834732056 * 0.044715}
    lines = [f"input %x : f32[{shape}]"]
    lines += [f"%{n} = const() {{value = dense<f32[], [{v!r}]>}} : f32[] loc(\"g\")" for n, v in consts.items()]
    lines += [f"{line} : f32[{shape}] loc(\"g\")" for line in body]
    lines.append('output "y" = %y')
    return "module @m {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def test_gelu_exact_golden():
    assert run(GELU_EXACT) == expect("""
        module @m {
          input %x : f32[2,4]
          %y = gelu(%x) {approximate = "none"} : f32[2,4] loc("g")
          output "y" = %y
        }
        """)


ERF_PARTS = ["%z = mul(%x, %rsqrt2)", "%e = erf(%z)", "%a = add(%one, %e)"]
TANH_PARTS = ["%x3 = pow(%x, %three)", "%c3 = mul(%x3, %cubic)", "%u = add(%x, %c3)", "%w = mul(%u, %k)",
              "%t = tanh(%w)", "%a = add(%t, %one)"]


@pytest.mark.parametrize("kind,body", [
    ("none", ERF_PARTS + ["%m = mul(%a, %x)", "%y = mul(%half, %m)"]),
    ("none", ERF_PARTS + ["%m = mul(%x, %half)", "%y = mul(%m, %a)"]),
    ("none", ERF_PARTS + ["%m = mul(%half, %a)", "%y = mul(%x, %m)"]),
    ("none", ERF_PARTS + ["%m = mul(%x, %a)", "%y = div(%m, %two)"]),
    ("none", ["%z = div(%x, %sqrt2)", "%e = erf(%z)", "%a = add(%e, %one)", "%h = mul(%x, %half)",
              "%y = mul(%h, %a)"]),
    ("tanh", TANH_PARTS + ["%m = mul(%x, %a)", "%y = mul(%m, %half)"]),
    ("tanh", ["%x2 = mul(%x, %x)", "%x3 = mul(%x2, %x)", "%c3 = mul(%cubic, %x3)", "%u = add(%c3, %x)",
              "%w = mul(%k, %u)", "%t = tanh(%w)", "%a = add(%one, %t)", "%h = mul(%half, %x)",
              "%y = mul(%h, %a)"]),
    ("tanh", ["%x3 = pow(%x, %three)", "%c3 = mul(%x3, %kc)", "%l = mul(%x, %k)", "%w = add(%l, %c3)",
              "%t = tanh(%w)", "%a = add(%t, %one)", "%m = mul(%x, %a)", "%y = mul(%m, %half)"]),
])
def test_gelu_forms_fuse_and_keep_values(kind, body):
    text = gelu_text(body)
    out = run(text)
    assert out == expect(f"""
        module @m {{
          input %x : f32[2,4]
          %y = gelu(%x) {{approximate = "{kind}"}} : f32[2,4] loc("g")
          output "y" = %y
        }}
        """)
    assert_same_values(text, out, (2, 4))


@pytest.mark.parametrize("body", [
    ERF_PARTS[:2] + ["%a = add(%e, %two)", "%m = mul(%x, %a)", "%y = mul(%m, %half)"],       # 2 + erf
    ERF_PARTS + ["%m = mul(%x, %a)", "%y = mul(%m, %one)"],                                   # no 0.5
    ["%z = mul(%x, %cubic)"] + ERF_PARTS[1:] + ["%m = mul(%x, %a)", "%y = mul(%m, %half)"],  # wrong scale
    TANH_PARTS[:3] + ["%w = mul(%u, %rsqrt2)"] + TANH_PARTS[4:] + ["%m = mul(%x, %a)", "%y = mul(%m, %half)"],
])
def test_gelu_lookalikes_left_alone(body):
    text = gelu_text(body)
    assert run(text, "recognize") == print_module(parse(text))


def test_gelu_with_shared_intermediate_left_alone():
    text = expect(GELU_EXACT).replace('  output "y" = %y\n', '  output "y" = %y\n  output "e" = %e\n')
    assert run(text, "recognize") == print_module(parse(text))


@pytest.mark.parametrize("text", [
    ln_text(), ln_text(square="twin", denom="reciprocal"), ln_text(affine=False), expect(GELU_EXACT),
    gelu_text(TANH_PARTS + ["%m = mul(%x, %a)", "%y = mul(%m, %half)"]),
])
def test_recognize_is_idempotent(text):
    once = run(text, "recognize")
    assert run(once, "recognize") == once


# -- end to end: ONNX decompositions through the default float pipeline --------------------------
def scalar_const(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=name,
                            value=helper.make_tensor(name, TensorProto.FLOAT, [], [value]))


def layer_norm_model() -> onnx.ModelProto:
    """LayerNorm over the last axis of [1, 8, 32] as torch's exporter wrote it before opset 17."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mu"], name="/ln/ReduceMean", axes=[-1]),
        helper.make_node("Sub", ["x", "mu"], ["d"], name="/ln/Sub"),
        scalar_const("two", 2.0),
        helper.make_node("Pow", ["d", "two"], ["sq"], name="/ln/Pow"),
        helper.make_node("ReduceMean", ["sq"], ["var"], name="/ln/ReduceMean_1", axes=[-1]),
        scalar_const("eps", 1e-5),
        helper.make_node("Add", ["var", "eps"], ["ve"], name="/ln/Add"),
        helper.make_node("Sqrt", ["ve"], ["std"], name="/ln/Sqrt"),
        helper.make_node("Div", ["d", "std"], ["n"], name="/ln/Div"),
        helper.make_node("Mul", ["n", "ln.weight"], ["s"], name="/ln/Mul"),
        helper.make_node("Add", ["s", "ln.bias"], ["y"], name="/ln/Add_1"),
    ]
    inits = [numpy_helper.from_array(rng.uniform(0.5, 1.5, 32).astype(np.float32), "ln.weight"),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, 32).astype(np.float32), "ln.bias")]
    return make_model(nodes, inits)


def gelu_model() -> onnx.ModelProto:
    """Exact GELU as torch exports it: x * (erf(x / sqrt 2) + 1) * 0.5."""
    nodes = [
        scalar_const("sqrt2", 1.4142135381698608),
        helper.make_node("Div", ["x", "sqrt2"], ["z"], name="/act/Div"),
        helper.make_node("Erf", ["z"], ["e"], name="/act/Erf"),
        scalar_const("one", 1.0),
        helper.make_node("Add", ["e", "one"], ["a"], name="/act/Add"),
        helper.make_node("Mul", ["x", "a"], ["m"], name="/act/Mul"),
        scalar_const("half", 0.5),
        helper.make_node("Mul", ["m", "half"], ["y"], name="/act/Mul_1"),
    ]
    return make_model(nodes, [])


def make_model(nodes, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("build,fused", [(layer_norm_model, "layer_norm"), (gelu_model, "gelu")])
def test_onnx_decompositions_fuse_and_match_onnxruntime(build, fused):
    model = build()
    module = import_onnx(model)
    PassManager(parse_pipeline(DEFAULT_FLOAT_PIPELINE)).run(module)
    kinds = [op.kind for op in module.ops if op.kind != "const"]
    assert kinds == [fused]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = (rng.standard_normal((1, 8, 32)) * rng.uniform(0.1, 4)).astype(np.float32)
        want = session.run(None, {"x": x})[0]
        got = run_module(module, {"x": x})["y"]
        assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


def test_glu_with_a_two_result_split_is_left_alone():
    """GLU: x[:, :n] * sigmoid(x[:, n:]) multiplies results of one split; this once crashed
    GELU matching ("op split has 2 results, not one")."""
    text = """\
    module @glu {
      input %x : f32[2,8]
      %a, %b = split(%x) {axis = 1, sizes = [4, 4]} : f32[2,4], f32[2,4]
      %s = sigmoid(%b) : f32[2,4]
      %y = mul(%a, %s) : f32[2,4]
      output "y" = %y
    }
    """
    assert run(text) == expect(text)


@pytest.mark.parametrize("keepdims, kinds", [(1, ["global_avg_pool"]), (0, ["global_avg_pool", "reshape"])])
def test_a_spatial_mean_becomes_a_global_average_pool_with_the_same_values(keepdims, kinds):
    """x.mean((2, 3), keepdim=True), as torch exports adaptive pooling, -> global_avg_pool (values as
    onnxruntime's), and x.mean((2, 3)) (torchvision's MNASNet, ShuffleNetV2) -> global_avg_pool and a
    reshape; a mean over the last axis of a rank-3 tensor (a LayerNorm's) stays a reduce_mean."""
    from tcc.driver import CompileOptions, compile_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 1] if keepdims else [1, 3])
    axes = numpy_helper.from_array(np.array([-1, 2], np.int64), "axes")
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=keepdims)], "g", [x],
                              [y], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    module = compile_model(model, "ir", CompileOptions())
    assert [op.kind for op in module.ops if op.kind != "const"] == kinds
    data = np.random.default_rng(0).standard_normal((1, 3, 5, 7)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": data})[0]
    np.testing.assert_allclose(run_module(module, {"x": data})["y"], expected, rtol=1e-6, atol=1e-7)

    ln = parse_module(textwrap.dedent("""\
        module @m {
          input %x : f32[1,8,32]
          %mu = reduce_mean(%x) {axes = [2], keepdims = 1} : f32[1,8,1] loc("ln")
          output "y" = %mu
        }
        """))
    PassManager(parse_pipeline("recognize")).run(ln)
    assert "reduce_mean(%x)" in print_module(ln)


def test_moves_that_move_nothing_go():
    """Swin pads each stage's map to a multiple of its window with a Pad whose pads are computed at run
    time; at 224 x 224 they are all zero: the pad (and a same-shape reshape, an identity transpose)
    goes, so the overlay does not send an int8 no-op to the host.  A real pad stays."""
    module = parse_module(textwrap.dedent("""\
        module @m {
          input %x : f32[1,4,4,3]
          %p = pad(%x) {mode = "constant", pads = [0, 0, 0, 0, 0, 0, 0, 0], value = 0.0} : f32[1,4,4,3] loc("pad")
          %r = reshape(%p) {shape = [1, 4, 4, 3]} : f32[1,4,4,3] loc("reshape")
          %t = transpose(%r) {perm = [0, 1, 2, 3]} : f32[1,4,4,3] loc("t")
          %q = pad(%t) {mode = "constant", pads = [0, 1, 0, 0, 0, 0, 0, 0], value = 0.0} : f32[1,5,4,3] loc("pad2")
          %y = relu(%q) : f32[1,5,4,3] loc("relu")
          output "y" = %y
        }
        """))
    PassManager(parse_pipeline("recognize")).run(module)
    assert [op.kind for op in module.ops] == ["pad", "relu"]
    assert module.ops[0].operands[0] is module.inputs[0]
