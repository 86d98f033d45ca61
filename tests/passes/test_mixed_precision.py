"""Mixed precision: the exact solver against brute force, the cost model, the pass on IR text and
end to end on the digits CNN."""
import itertools
from dataclasses import replace
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from tcc.ir import parse_module, print_module
from tcc.ir.interpreter import run_module
from tcc.passes import PassManager, parse_pipeline
from tcc.passes.quantize import QuantizationError
from tcc.passes.quantize.assignment import pareto_front
from tcc.backends.overlay.layer_costs import OverlayCostModel
from tcc.passes.quantize.cost_model import LayerCost, LayerCosts
from tcc.passes.quantize.mixed_precision import MixedPrecision, parse_candidates, plan_mixed_precision
from tcc.passes.quantize.sensitivity import Layer, Sensitivity

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


# -- the solver ------------------------------------------------------------------------------------
@st.composite
def instances(draw):
    layers, options = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    errors = draw(arrays(np.float64, (layers, options),
                         elements=st.floats(-1, 1, allow_nan=False) | st.just(np.inf)))
    assume(np.isfinite(errors).any(axis=1).all())
    costs = draw(arrays(np.int64, (layers, options), elements=st.integers(0, 20)))
    return errors, costs


def brute_force(errors, costs):
    """(cost, error, assignment) of every complete assignment using finite options."""
    points = []
    for pick in itertools.product(range(errors.shape[1]), repeat=errors.shape[0]):
        error = 0.0
        for layer, j in enumerate(pick):
            error += errors[layer, j]
        if np.isfinite(error):
            points.append((sum(int(costs[layer, j]) for layer, j in enumerate(pick)), error, pick))
    return points


@settings(max_examples=200, deadline=None)
@given(instances(), st.integers(0, 90))
def test_solver_matches_brute_force(instance, budget):
    errors, costs = instance
    front = pareto_front(errors, costs)
    best = min((e for c, e, _ in brute_force(errors, costs) if c <= budget), default=None)
    chosen = front.best_within(budget)
    if best is None:
        assert chosen is None
        return
    assert front.costs[chosen] <= budget
    assert front.errors[chosen] == pytest.approx(best, abs=1e-12)
    pick = front.choices[chosen]
    rows = np.arange(len(pick))
    assert costs[rows, pick].sum() == front.costs[chosen]
    assert errors[rows, pick].sum() == pytest.approx(front.errors[chosen], abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(instances())
def test_front_is_monotone_and_exactly_the_non_dominated_set(instance):
    errors, costs = instance
    front = pareto_front(errors, costs)
    assert front.unit == 1
    assert np.all(np.diff(front.costs) > 0) and np.all(np.diff(front.errors) < 0)
    points = brute_force(errors, costs)
    non_dominated = {(c, e) for c, e, _ in points
                     if not any((c2 <= c and e2 < e) or (c2 < c and e2 <= e) for c2, e2, _ in points)}
    assert set(zip(front.costs.tolist(), front.errors.tolist())) == non_dominated


@settings(max_examples=100, deadline=None)
@given(instances(), st.integers(0, 90))
def test_rounded_search_never_exceeds_the_budget(instance, budget):
    errors, costs = instance
    front = pareto_front(errors, costs, max_units=4)
    chosen = front.best_within(budget)
    if chosen is not None:
        assert front.costs[chosen] <= budget


# -- planning ----------------------------------------------------------------------------------------
BITS = {"int8": 8, "int4": 4, "bf16": 16}


class BitsCostModel:
    """A test double: bytes by the bits of each format, cycles proportional to them."""

    sizes = {"h": 16, "y": 8}  # TWO_LINEAR's weights

    def layer_costs(self, lower, layers, candidates):
        nbytes = np.array([[self.sizes[n] * BITS[f] // 8 for f in candidates] for n, _ in layers], np.int64)
        return LayerCosts(nbytes, nbytes * 2, 100, 225.0, "bits test double")

    def simulated_cycles(self, module):
        return None


def synthetic(errors, weights=(100, 300)):
    layers = [Layer(f"l{i}", f"node{i}", "linear", (w, 1), LayerCost(w, w)) for i, w in enumerate(weights)]
    candidates = ("int8", "int4", "bf16")
    nbytes = np.array([[w * BITS[f] // 8 for f in candidates] for w in weights], np.int64)
    costs = LayerCosts(nbytes, nbytes * 2, 100, 225.0, "synthetic")
    return layers, Sensitivity(candidates, 0.01, np.asarray(errors, np.float64) + 0.01, 8), costs


def test_plan_respects_the_budget_and_prefers_the_cheaper_error():
    # layer 1 barely cares about int4, layer 0 a lot: under 300 bytes layer 1 goes int4
    layers, sens, costs = synthetic([[0.0, 0.5, -0.001], [0.0, 0.01, -0.001]])
    plan = plan_mixed_precision(layers, sens, costs, budget_bytes=300)
    assert [c.format for c in plan.choices] == ["int8", "int4"]
    assert plan.total_bytes == 250 and plan.total_bytes <= 300
    assert plan.predicted_error == pytest.approx(0.02)
    generous = plan_mixed_precision(layers, sens, costs, budget_bytes=10_000)
    assert generous.total_cycles == 100 + 2 * 800  # the rest of the model plus the layers
    assert [c.format for c in generous.choices] == ["bf16", "bf16"]
    report = plan.format_report()
    assert "node1" in report and "Pareto front" in report and "int4" in report


def test_infeasible_budget_names_the_minimum():
    layers, sens, costs = synthetic([[0.0, 0.5, 0.0], [0.0, 0.01, 0.0]])
    with pytest.raises(QuantizationError, match="below the least achievable weight memory, 200.*at least 200"):
        plan_mixed_precision(layers, sens, costs, budget_bytes=199)
    with pytest.raises(QuantizationError, match="below the least achievable cycles, 500.*at least 500"):
        plan_mixed_precision(layers, sens, costs, budget_cycles=499)  # 100 + 2 * 200
    with pytest.raises(QuantizationError, match="exactly one positive budget"):
        plan_mixed_precision(layers, sens, costs, budget_bytes=300, budget_cycles=300)
    with pytest.raises(QuantizationError, match="exactly one positive budget"):
        plan_mixed_precision(layers, sens, costs)


def test_a_failed_format_is_not_chosen():
    layers, sens, costs = synthetic([[0.0, np.inf, 0.0], [0.0, 0.01, 0.0]])
    plan = plan_mixed_precision(layers, sens, costs, budget_bytes=250)
    assert plan.choices[0].format == "int8"


def test_parse_candidates():
    assert parse_candidates("int8/dybit4,bf16/int8") == ("int8", "dybit4", "bf16")
    with pytest.raises(QuantizationError, match="'int5'"):
        parse_candidates("int8/int5")


# -- the pass on IR text ---------------------------------------------------------------------------
TWO_LINEAR = """
    module @m {
      input %x : f32[1,4]
      %w1 = const() {value = dense<f32[4,4], [0.5, -0.25, 0.125, 1.0, -0.75, 0.5, 0.25, -0.125, 0.0625, 0.375, -0.5, 0.25, 1.25, -1.0, 0.5, 0.75]>} : f32[4,4]
      %b1 = const() {value = dense<f32[4], [0.1, -0.1, 0.2, 0.0]>} : f32[4]
      %h = linear(%x, %w1, %b1) : f32[1,4]
      %r = relu(%h) : f32[1,4]
      %w2 = const() {value = dense<f32[2,4], [0.5, -0.5, 0.25, 0.75, -0.25, 1.0, -0.75, 0.5]>} : f32[2,4]
      %y = linear(%r, %w2) : f32[1,2]
      output "y" = %y
    }
"""


@pytest.fixture(scope="module")
def two_linear_calib(tmp_path_factory):
    path = tmp_path_factory.mktemp("calib") / "x.npz"
    np.savez(path, x=np.random.default_rng(0).standard_normal((16, 1, 4)).astype(np.float32))
    return path


def mixed(calib, options: str, cost_model=None) -> tuple[str, MixedPrecision]:
    module = parse_module(textwrap.dedent(TWO_LINEAR).lstrip())
    (p,) = passes = parse_pipeline(f"mixed-precision{{calib={calib},sensitivity_samples=8,{options}}}")
    p.cost_model = cost_model or OverlayCostModel()
    PassManager(passes).run(module)
    return print_module(module), p


def test_formats_show_in_the_ir(two_linear_calib):
    text, p = mixed(two_linear_calib, "budget_bytes=12,candidates=int8/dybit4")  # 16 + 8 weights
    assert p.plan.layer_weights == {"h": "dybit4", "y": "dybit4"}
    assert text.count('format = "dybit4') == 2  # dybit4 or dybit4cK: the cap of least weight MSE
    assert "qlinear(" in text


def test_bf16_layers_are_bf16_ops(two_linear_calib):
    text, p = mixed(two_linear_calib, "budget_bytes=1000,candidates=bf16", BitsCostModel())
    assert p.plan.layer_weights == {"h": "bf16", "y": "bf16"}
    assert "%w1.bf16 = const()" in text and "%w2.bf16 = const()" in text
    assert "%h = linear(%x.bf16, %w1.bf16, %b1.bf16) : bf16[1,4]" in text
    assert "%y = linear(%r.bf16, %w2.bf16) : bf16[1,2]" in text
    assert "qlinear" not in text


def test_pass_errors(two_linear_calib):
    with pytest.raises(QuantizationError, match="at least 12"):
        mixed(two_linear_calib, "budget_bytes=11,candidates=int8/int4")
    with pytest.raises(QuantizationError, match="needs calibration data"):
        PassManager(parse_pipeline("mixed-precision{budget_bytes=100}")).run(
            parse_module(textwrap.dedent(TWO_LINEAR).lstrip()))
    with pytest.raises(QuantizationError, match="needs the target's cost model"):
        PassManager(parse_pipeline(f"mixed-precision{{calib={two_linear_calib},budget_bytes=100}}")).run(
            parse_module(textwrap.dedent(TWO_LINEAR).lstrip()))
    with pytest.raises(QuantizationError, match="prices integer weight formats, not bf16"):
        mixed(two_linear_calib, "budget_bytes=100,candidates=int8/bf16")


# -- end to end on the digits CNN --------------------------------------------------------------------
def digits_float():
    from tcc.frontend import import_onnx
    from tcc.passes import DEFAULT_FLOAT_PIPELINE, PRE_QUANT_PIPELINE

    module = import_onnx(str(DIGITS / "digits_cnn.onnx"))
    PassManager(parse_pipeline(DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)).run(module)
    return module


def test_digits_budget_between_int4_and_int8():
    from tcc.passes.quantize.calibration import calibrate, load_samples
    from tcc.passes.quantize.lowering import LoweringConfig
    from tcc.passes.quantize.rules import lower_module
    from tcc.passes.quantize.sensitivity import weight_layers

    with np.load(DIGITS / "digits_test.npz") as data:
        images, labels = data["input"], data["label"]

    def logits(module):
        return np.concatenate([run_module(module, {"input": x[None]})["logits"] for x in images])

    calib = DIGITS / "digits_calib.npz"
    module = digits_float()
    reference = logits(module)
    all_int4 = lower_module(module, calibrate(module, load_samples(calib, module)),
                            LoweringConfig(layer_weights={l.name: "int4" for l in weight_layers(module)}))
    budget = 4500  # all int4: 3192 bytes, all int8: 6384
    p = MixedPrecision(calib=str(calib), budget_bytes=budget, sensitivity_samples=32)
    p.cost_model = OverlayCostModel()
    p.apply(module)
    plan = p.plan
    assert plan.total_bytes <= budget
    assert len(plan.choices) == 5 and len(plan.front) > 5
    got, int4 = logits(module), logits(all_int4)
    assert (got.argmax(1) == labels).mean() >= (int4.argmax(1) == labels).mean()

    def relative_mse(y):
        return np.square(y - reference).sum() / np.square(reference).sum()

    assert relative_mse(got) < relative_mse(int4)  # held-out data agree with the calibration-set choice


def test_cli_mixed(tcc_cli, tmp_path):
    model, calib = DIGITS / "digits_cnn.onnx", DIGITS / "digits_calib.npz"
    code, out, err = tcc_cli("compile", model, "-t", "ir", "--calib", calib, "--quant", "mixed",
                             "--budget-cycles", "1000")
    assert code == 0, err
    assert "Pareto front (cycles vs predicted output error)" in err and "/down/down.0/Conv" in err
    assert 'format = "' in out
    code, _, err = tcc_cli("compile", model, "--calib", calib, "--quant", "mixed", "--budget-bytes", "1000")
    assert code == 2 and "at least 3216" in err  # int4 rows packed to whole bytes
    code, _, err = tcc_cli("compile", model, "--calib", calib, "--quant", "mixed")
    assert code == 2 and "--budget-bytes N or --budget-cycles N" in err
    code, _, err = tcc_cli("compile", model, "--calib", calib, "--budget-bytes", "4000")
    assert code == 2 and "go with --quant mixed" in err


def test_the_sensitivity_sweep_on_two_workers_is_the_serial_one(tcc_cli, tmp_path):
    """--workers 2 spreads calibration and the per-layer runs over a process pool: the same errors,
    so the same plan (its table prints the predicted and measured errors) and the same bytes."""
    model, calib = DIGITS / "digits_cnn.onnx", DIGITS / "digits_calib.npz"
    plans = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.tir"
        code, _, err = tcc_cli("compile", model, "-t", "ir", "--calib", calib, "--quant", "mixed",
                               "--budget-cycles", "1000", "--workers", workers, "-o", out)
        assert code == 0, err
        plans.append((out.read_bytes(), [line for line in err.splitlines() if "error" in line or "|" in line]))
    assert plans[0][0] == plans[1][0]
    assert plans[0][1] == plans[1][1] and plans[0][1]


@pytest.mark.parametrize("kind, budget", [("bytes", 4000), ("bytes", 5200), ("cycles", 950), ("cycles", 1040)])
def test_the_plan_is_the_overlays_own(kind, budget):
    """The plan's predicted weight bytes are the artifact's exactly, its cycles within 5% of the
    simulated run (measured: 0%, every layer's share of the critical path being additive here),
    and the budget holds on the overlay."""
    from tcc.backends.overlay import compile_overlay
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE
    from tcc.runtime import Session

    passes = quantization_pipeline(str(DIGITS / "digits_calib.npz"), quant="mixed", **{f"budget_{kind}": budget})
    (mixed_pass,) = [p for p in passes if isinstance(p, MixedPrecision)]
    module, _ = compile_to_ir(str(DIGITS / "digits_cnn.onnx"), passes=DEFAULT_FLOAT_PIPELINE + passes)
    artifact = compile_overlay(module)
    session = Session(artifact)
    session.run(None, {"input": np.load(DIGITS / "digits_test.npz")["input"][:1]})
    simulated = session.last_result.cycles
    layers = [layer for layer in artifact.metadata["layers"] if "weight_format" in layer]
    plan = mixed_pass.plan
    assert [layer["weight_format"].startswith(c.format) for c, layer in zip(plan.choices, layers)] == [True] * 5
    assert len(set(plan.layer_weights.values())) > 1  # a mixed plan, not a uniform one
    assert plan.total_bytes == sum(layer["weight_bytes"] for layer in layers)
    assert abs(plan.total_cycles - simulated) <= 0.05 * simulated
    assert plan.simulated_cycles == simulated
    assert (plan.total_bytes if kind == "bytes" else simulated) <= budget


class OptimisticCostModel(OverlayCostModel):
    """The overlay's costs with every layer's cycles under-reported by a fifth."""

    def layer_costs(self, lower, layers, candidates):
        costs = super().layer_costs(lower, layers, candidates)
        return replace(costs, cycles=costs.cycles * 4 // 5)


def test_a_cycles_budget_holds_on_the_simulated_run():
    """A plan whose simulated run exceeds the cycles budget (here: its costs under-reported) gives
    way to the next cheaper point of the front that fits."""
    module = digits_float()
    p = MixedPrecision(calib=str(DIGITS / "digits_calib.npz"), budget_cycles=1000, sensitivity_samples=8)
    p.cost_model = OptimisticCostModel()
    p.apply(module)
    plan = p.plan
    assert plan.simulated_cycles is not None and plan.simulated_cycles <= 1000
    assert plan.total_cycles < plan.simulated_cycles  # the under-reported prediction
    first = plan_mixed_precision([c.layer for c in plan.choices], plan.sensitivity, plan.costs, budget_cycles=1000)
    assert plan.chosen < first.chosen  # the first choice did not fit when run
    assert "simulated" in plan.format_report()


def test_critical_path_shares_add_up_to_the_run():
    """Each step is charged the cycles its last instruction ends after every earlier step's: the
    shares of overlapping steps add up to the last end, and a step ending inside an earlier
    one's span adds nothing."""
    from tcc.backends.overlay.layer_costs import critical_path_shares

    layers = [{"name": "a", "weight_bytes": 10}, {"name": "b"}, {"name": "c", "weight_bytes": 4}, {"name": "d"}]
    measured = {0: {"end": 100}, 1: {"end": 80}, 2: {"end": 250}}  # b inside a's span, d without instructions
    shares = critical_path_shares(layers, measured)
    assert [(s.name, s.cycles, s.weight_bytes) for s in shares] == [("a", 100, 10), ("b", 0, 0), ("c", 150, 4),
                                                                     ("d", 0, 0)]
