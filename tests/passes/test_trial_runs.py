"""Trials resumed from the base's checkpoints (passes/quantize/trial_runs.py) measure exactly the
errors whole-model runs measure, on the BERT-style encoder (examples/encoder: one residual segment
per post-LN LayerNorm, attention matmuls), while running fewer ops."""
from pathlib import Path

import pytest

from tcc.driver import compile_to_ir
from tcc.ir.interpreter import Checkpoint, live_before, run_from, run_module, start_checkpoint
from tcc.ir.errors import InterpreterError
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PRE_QUANT_PIPELINE
from tcc.passes.quantize.calibration import calibrate, load_samples
from tcc.passes.quantize.lowering import LoweringConfig
from tcc.passes.quantize.remedies import remedy_sites, residual_segments
from tcc.passes.quantize.rules import lower_module
from tcc.passes.quantize.sensitivity import model_error
from tcc.passes.quantize.trial_runs import TrialRuns, first_difference

ENCODER = Path(__file__).resolve().parents[2] / "examples" / "encoder"


@pytest.fixture(scope="module")
def encoder():
    module, _ = compile_to_ir(str(ENCODER / "encoder.onnx"), passes=DEFAULT_FLOAT_PIPELINE + PRE_QUANT_PIPELINE)
    samples = load_samples(str(ENCODER / "encoder_calib.npz"), module, 3)
    return module, calibrate(module, samples), samples


def test_resumed_trials_measure_what_whole_runs_measure(encoder):
    module, ranges, samples = encoder
    reference = [run_module(module, s) for s in samples]
    segments = [frozenset(op.results[0].name for op in ops) for ops in residual_segments(module)]
    assert len(segments) >= 3
    runs = TrialRuns(samples, reference)
    kept: frozenset[str] = frozenset()
    whole_ops = 0
    for step, names in enumerate([frozenset()] + segments):
        lowered = lower_module(module, ranges, LoweringConfig(bf16_values=kept | names))
        assert runs.error(lowered) == model_error(lowered, samples, reference)  # bit for bit
        whole_ops += len(lowered.ops) * len(samples)
        if step % 2 == 0:  # keep every other trial, as a greedy choice might
            runs.keep()
            kept |= names
    assert runs.ops_run < 0.8 * whole_ops


def test_row_scale_trials_differ_at_their_matmul(encoder):
    module, ranges, _ = encoder
    sites = remedy_sites(module, ranges, LoweringConfig(), "row_scaled")
    assert sites
    base = lower_module(module, ranges, LoweringConfig())
    late = lower_module(module, ranges, LoweringConfig(row_scaled=frozenset([sites[-1].results[0].name])))
    early = lower_module(module, ranges, LoweringConfig(row_scaled=frozenset([sites[0].results[0].name])))
    assert first_difference(base, base) == len(base.ops)
    assert 0 < first_difference(base, early) < first_difference(base, late) < len(base.ops)


def test_run_from_refuses_a_checkpoint_without_the_values_later_ops_read(encoder):
    module, ranges, samples = encoder
    lowered = lower_module(module, ranges, LoweringConfig())
    outputs, checkpoints = run_from(lowered, start_checkpoint(lowered, samples[0]), 10)
    assert outputs.keys() == run_module(lowered, samples[0]).keys()
    middle = checkpoints[len(checkpoints) // 2]
    assert live_before(lowered, middle.index) <= middle.values.keys()
    name = sorted(live_before(lowered, middle.index))[0]
    with pytest.raises(InterpreterError, match="lacks"):
        run_from(lowered, Checkpoint(middle.index, {k: v for k, v in middle.values.items() if k != name}), 10)
