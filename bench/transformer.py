"""Transformers on the overlay (examples/encoder): the BERT-style encoder and the ViT block compiled
with ``-t overlay``, run on the simulator over test samples, against the integer reference
(element for element) and float onnxruntime (SQNR of the logits, top-1), with the share of
cycles spent in each PE-array mode (int8 systolic, bf16 SIMD) and on mode switches, the switch
counts before and after the schedule-modes pass, and simulation time against onnxruntime's
float run measured in the same process.

    python bench/transformer.py [--models encoder,vit] [--samples 100] [--exact-samples 10] [--repeat 3]
                                [--calibrate minmax|percentile|entropy|mse]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_of  # noqa: E402

from tcc.backends.overlay import compile_overlay  # noqa: E402
from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE, make_pass  # noqa: E402
from tcc.passes.mode_schedule import switch_lower_bound  # noqa: E402
from tcc.runtime import Session  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "encoder"
MODELS = {"encoder": ("encoder.onnx", "encoder_calib.npz", "encoder_test.npz", "tokens"),
          "vit": ("vit_block.onnx", "vit_calib.npz", "vit_test.npz", "image")}


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def measure(name: str, samples: int, exact_samples: int, repeat: int, method: str = "minmax") -> dict:
    model, calib, test, key = MODELS[name]
    data = np.load(EXAMPLES / test)
    start = time.perf_counter()
    module, _ = compile_to_ir(str(EXAMPLES / model),
                              passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(EXAMPLES / calib), method=method))
    schedule = make_pass("schedule-modes")
    schedule.apply(module)
    artifact = compile_overlay(module)
    compile_s = time.perf_counter() - start
    session = Session(artifact)

    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort_session = ort.InferenceSession(str(EXAMPLES / model), options, providers=["CPUExecutionProvider"])
    n = min(samples, len(data[key]))
    sim_logits, ort_logits, exact = [], [], True
    for i in range(n):
        feeds = {key: data[key][i:i + 1]}
        sim = session.run_dict(feeds)["logits"]
        if i < exact_samples:
            exact &= bool(np.array_equal(sim, session.run_reference(feeds)["logits"]))
        sim_logits.append(sim)
        ort_logits.append(ort_session.run(None, feeds)[0])
    sim_logits, ort_logits = np.concatenate(sim_logits), np.concatenate(ort_logits)
    labels = data["label"][:n]
    feeds = {key: data[key][:1]}
    t_ort, _ = best_of(repeat, lambda: ort_session.run(None, feeds))
    t_sim, _ = best_of(repeat, lambda: session.run_dict(feeds))
    result = session.last_result
    return {
        "model": name, "compile_s": compile_s, "samples": n, "exact_samples": min(n, exact_samples),
        "bit_exact": exact, "sqnr_db": sqnr_db(ort_logits, sim_logits),
        "top1_sim": float((sim_logits.argmax(1) == labels).mean()),
        "top1_ort": float((ort_logits.argmax(1) == labels).mean()),
        "cycles": result.cycles, "ms_at_clock": result.seconds * 1e3,
        "mode_cycles": result.mode_cycles, "mode_busy": result.mode_busy, "mode_switches": result.mode_switches,
        "switches_before": schedule.before, "switches_after": schedule.after,
        "switch_bound": switch_lower_bound(module.ops),
        "sim_s": t_sim, "ort_s": t_ort, "sim_over_ort": t_sim / t_ort,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="encoder,vit")
    parser.add_argument("--samples", type=int, default=100, help="test samples for SQNR and top-1")
    parser.add_argument("--exact-samples", type=int, default=10, help="of those, compared with the reference")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calibrate", default="minmax", help="minmax, percentile, entropy or mse")
    args = parser.parse_args()
    head = (f"{'model':<9}{'compile s':>10}{'exact':>9}{'SQNR dB':>9}{'top1 sim':>9}{'top1 ort':>9}{'cycles':>9}"
            f"{'ms@clk':>8}{'int8 %':>8}{'bf16 %':>8}{'switch %':>9}{'switches':>14}{'sim s':>8}{'ort ms':>8}"
            f"{'sim/ort':>9}")
    print(head)
    print("-" * len(head))
    for name in args.models.split(","):
        r = measure(name, args.samples, args.exact_samples, args.repeat, args.calibrate)
        share = {k: 100 * v / r["cycles"] for k, v in r["mode_cycles"].items()}
        switches = f"{r['switches_before']}->{r['switches_after']}>={r['switch_bound']}"
        exact = f"{'yes' if r['bit_exact'] else 'NO'} {r['exact_samples']}"
        print(f"{r['model']:<9}{r['compile_s']:>10.2f}{exact:>9}{r['sqnr_db']:>9.1f}{r['top1_sim']:>9.4f}"
              f"{r['top1_ort']:>9.4f}{r['cycles']:>9}{r['ms_at_clock']:>8.3f}{share['int8']:>7.1f}%"
              f"{share['bf16']:>7.1f}%{share['switch']:>8.1f}%{switches:>14}{r['sim_s']:>8.3f}"
              f"{r['ort_s'] * 1e3:>8.3f}{r['sim_over_ort']:>8.0f}x", flush=True)
        busy = r["mode_busy"]
        print(f"{'':<9}PE array busy: int8 {busy['int8']} cycles, bf16 {busy['bf16']} cycles; "
              f"{r['mode_switches']} mode instructions executed; SQNR over {r['samples']} test samples", flush=True)
    print("exact: simulator == integer reference on the first N samples; SQNR: simulator logits vs float "
          "onnxruntime; int8/bf16/switch %: share of all cycles the PE array spends in each mode and "
          "reconfiguring; switches: program order -> after schedule-modes >= lower bound (most mode changes "
          "on one dependency path); sim/ort: one sample, best of --repeat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
