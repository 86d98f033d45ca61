"""Passes: IR text in, run the pass, exact IR text out."""
import textwrap

import numpy as np
import pytest

from tcc.ir import parse_module, print_module, verify
from tcc.ir.errors import InternalError, PipelineError
from tcc.passes import PASSES, Pass, PassManager, parse_pipeline


def run(text: str, spec: str) -> str:
    module = parse_module(textwrap.dedent(text).lstrip())
    PassManager(parse_pipeline(spec)).run(module)
    return print_module(module)


def expect(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def test_dce_removes_unused_chains_and_keeps_outputs():
    out = run("""
        module @m {
          input %x : f32[2,3]
          %a = relu(%x) : f32[2,3] loc("a")
          %b = sigmoid(%a) : f32[2,3] loc("b")
          %c = tanh(%x) : f32[2,3] loc("c")
          output "y" = %c
        }
        """, "dce")
    assert out == expect("""
        module @m {
          input %x : f32[2,3]
          %c = tanh(%x) : f32[2,3] loc("c")
          output "y" = %c
        }
        """)


def test_fold_constants_evaluates_and_keeps_names():
    out = run("""
        module @m {
          input %x : f32[3]
          %c = const() {value = dense<f32[3], [1.0, -2.0, 3.0]>} : f32[3] loc("c")
          %r = relu(%c) : f32[3] loc("r")
          %y = add(%x, %r) : f32[3] loc("y")
          output "y" = %y
        }
        """, "fold-constants,dce")
    assert out == expect("""
        module @m {
          input %x : f32[3]
          %r = const() {value = dense<f32[3], [1.0, 0.0, 3.0]>} : f32[3] loc("r")
          %y = add(%x, %r) : f32[3] loc("y")
          output "y" = %y
        }
        """)


BN_MODULE = """
    module @m {
      input %x : f32[1,2,4,4]
      %w = const() {value = dense<f32[2,2,1,1], [1.0, 2.0, 3.0, 4.0]>} : f32[2,2,1,1] loc("conv")
      %b = const() {value = dense<f32[2], [0.5, -0.5]>} : f32[2] loc("conv")
      %y = conv(%x, %w, %b) {dilations = [1, 1], group = 1, pads = [0, 0, 0, 0], strides = [1, 1]} : f32[1,2,4,4] loc("conv")
      %g = const() {value = dense<f32[2], [2.0, 1.0]>} : f32[2] loc("bn")
      %be = const() {value = dense<f32[2], [1.0, 0.0]>} : f32[2] loc("bn")
      %mu = const() {value = dense<f32[2], [0.5, 1.5]>} : f32[2] loc("bn")
      %var = const() {value = dense<f32[2], [4.0, 0.25]>} : f32[2] loc("bn")
      %z = batch_norm(%y, %g, %be, %mu, %var) {epsilon = 0.0} : f32[1,2,4,4] loc("bn")
      output "z" = %z
    }
    """


def test_fold_batchnorm_hand_computed():
    # s = g / sqrt(var) = [1, 2]; w' = w * s per out channel; b' = (b - mu) * s + beta = [1, -4]
    out = run(BN_MODULE, "fold-batchnorm,dce")
    assert out == expect("""
        module @m {
          input %x : f32[1,2,4,4]
          %w.bn = const() {value = dense<f32[2,2,1,1], [1.0, 2.0, 6.0, 8.0]>} : f32[2,2,1,1] loc("conv")
          %y.bn_bias = const() {value = dense<f32[2], [1.0, -4.0]>} : f32[2] loc("conv")
          %z = conv(%x, %w.bn, %y.bn_bias) {dilations = [1, 1], group = 1, pads = [0, 0, 0, 0], strides = [1, 1]} : f32[1,2,4,4] loc("conv")
          output "z" = %z
        }
        """)


def test_fold_batchnorm_preserves_values():
    from tcc.ir.interpreter import run_module

    before = parse_module(textwrap.dedent(BN_MODULE).lstrip())
    after = parse_module(textwrap.dedent(BN_MODULE).lstrip())
    PassManager(parse_pipeline("fold-batchnorm,dce")).run(after)
    x = {"x": np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)}
    np.testing.assert_allclose(run_module(after, x)["z"], run_module(before, x)["z"], rtol=1e-6, atol=1e-6)


def test_fold_batchnorm_leaves_shared_conv_alone():
    text = BN_MODULE.replace('output "z" = %z', 'output "z" = %z\n      output "y" = %y')
    assert run(text, "fold-batchnorm") == expect(text)


def test_pipeline_spec_errors():
    with pytest.raises(PipelineError, match="unknown pass 'nope'; known passes: annotate-sparsity, as-2d, batchnorm-to-conv, conv-transpose-as-conv, dce"):
        parse_pipeline("dce,nope")
    with pytest.raises(PipelineError, match="pass 'dce' has no option 'size'"):
        parse_pipeline("dce{size=4}")
    with pytest.raises(PipelineError, match="cannot parse pass pipeline"):
        parse_pipeline("dce,,{")


def test_registry_has_first_passes():
    assert {"dce", "fold-constants", "fold-batchnorm"} <= set(PASSES)


def test_broken_pass_is_an_internal_error_with_dump():
    class Breaks(Pass):
        name = "breaks"

        def apply(self, module):
            module.ops[0].results[0].type = module.ops[0].results[0].type.with_shape((9,))

    module = parse_module(expect("""
        module @m {
          input %x : f32[3]
          %y = relu(%x) : f32[3] loc("r")
          output "y" = %y
        }
        """))
    with pytest.raises(InternalError, match=r"invalid after pass 'breaks'.*result %y has type f32\[9\]"):
        PassManager([Breaks()]).run(module)


def test_dump_after_all_writes_each_stage(tmp_path):
    module = parse_module(textwrap.dedent(BN_MODULE).lstrip())
    manager = PassManager(parse_pipeline("fold-batchnorm,dce"), dump_after="all", dump_dir=tmp_path)
    manager.run(module)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["00-import.tir", "01-fold-batchnorm.tir", "02-dce.tir"]  # "all": the input IR too
    verify(parse_module((tmp_path / "02-dce.tir").read_text()))
    assert "fold-batchnorm" in manager.timing_report()


def test_timing_report_elides_long_option_lists():
    module = parse_module(textwrap.dedent(BN_MODULE).lstrip())
    long_path = "x" * 80 + ".npz"
    manager = PassManager(parse_pipeline("fold-batchnorm,dce"))
    manager.run(module)
    manager.timings.append((f"quantize{{calib={long_path},method=minmax}}", 0.5))
    report = manager.timing_report().splitlines()
    assert report[-2].startswith("quantize{calib=xxx") and "...}" in report[-2]
    assert long_path not in manager.timing_report()
    assert {len(line) for line in report} == {len(report[0])}  # one column width for every row


def test_timed_parts_of_a_pass_are_listed_under_it_and_not_added_to_the_total():
    from dataclasses import dataclass

    @dataclass
    class TwoParts(Pass):
        name = "two-parts"

        def apply(self, module):
            for _ in range(2):
                with self.timed("first"):
                    pass
            with self.timed("second"):
                pass

    manager = PassManager([TwoParts()])
    manager.run(parse_module("module @m {\n  input %x : f32[2]\n  output \"y\" = %x\n}\n"))
    assert [name for name, _ in manager.timings] == ["two-parts", "  - first", "  - second"]
    with TwoParts().timed("outside a manager"):  # no pass manager: nothing to report to
        pass
    report = manager.timing_report().splitlines()
    total = float(report[-1].split()[1])
    assert abs(total - manager.timings[0][1] * 1e3) < 0.01  # the parts are not counted again
