"""The overlay target on light-zoo models (random weights): compile time, simulation speed against
onnxruntime's float run in the same process, modeled cycles against the roofline bound, PE use,
and the simulator's agreement with the integer reference and with float onnxruntime.

    python bench/overlay.py [--models resnet50,squeezenet,inception_v1] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import light_zoo  # noqa: E402
from timing import best_of  # noqa: E402

from tcc.backends.overlay import compile_overlay  # noqa: E402
from tcc.driver import compile_to_ir, quantization_pipeline  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE  # noqa: E402
from tcc.runtime import Session  # noqa: E402
from tcc.runtime.report import build_report  # noqa: E402


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def measure(name: str, repeat: int, work: Path) -> dict:
    model = light_zoo.randomized(name, expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    rng = np.random.default_rng(7)
    calib = work / f"{name}.calib.npz"
    np.savez(calib, **{k: rng.standard_normal((4,) + v.shape).astype(np.float32) for k, v in inputs.items()})

    start = time.perf_counter()
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib)))
    artifact = compile_overlay(module)
    compile_s = time.perf_counter() - start
    session = Session(artifact)

    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort_session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    t_ort, ort_out = best_of(repeat, lambda: ort_session.run(None, inputs))
    t_sim, sim_out = best_of(repeat, lambda: session.run_dict(inputs))
    reference = session.run_reference(inputs)
    report = build_report(artifact.metadata, session.last_result)
    names = [o.name for o in ort_session.get_outputs()]
    logits = names[-1]
    return {
        "model": name, "compile_s": compile_s, "sim_s": t_sim, "ort_s": t_ort, "sim_over_ort": t_sim / t_ort,
        "cycles": report["cycles"], "roofline": report["roofline_cycles"],
        "over_roofline": report["cycles_over_roofline"], "pe_util": report["pe_utilization"],
        "ms_at_clock": report["seconds"] * 1e3,
        "bit_exact": all(np.array_equal(sim_out[k], reference[k]) for k in reference),
        "sqnr_db": sqnr_db(dict(zip(names, ort_out))[logits], sim_out[logits]),
        "top1": int(np.argmax(dict(zip(names, ort_out))[logits])) == int(np.argmax(sim_out[logits])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,squeezenet,inception_v1")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    head = (f"{'model':<14}{'compile s':>10}{'sim s':>8}{'ort s':>8}{'sim/ort':>9}{'cycles':>12}{'roofline':>12}"
            f"{'x roof':>8}{'PE util':>9}{'ms@clk':>8}{'exact':>7}{'SQNR dB':>9}{'top1':>6}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = measure(name, args.repeat, Path(tmp))
            print(f"{r['model']:<14}{r['compile_s']:>10.2f}{r['sim_s']:>8.2f}{r['ort_s']:>8.3f}"
                  f"{r['sim_over_ort']:>8.1f}x{r['cycles']:>12}{r['roofline']:>12}{r['over_roofline']:>7.2f}x"
                  f"{100 * r['pe_util']:>8.1f}%{r['ms_at_clock']:>8.2f}{'yes' if r['bit_exact'] else 'NO':>7}"
                  f"{r['sqnr_db']:>9.1f}{'=' if r['top1'] else 'x':>6}", flush=True)
    print("goals: sim/ort <= 5x, cycles/roofline <= 1.15x; 'exact': simulator == integer reference; "
          "SQNR: simulator logits vs float onnxruntime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
