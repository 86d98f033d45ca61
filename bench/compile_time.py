"""Import + compile-to-IR time for each light zoo model, beside onnxruntime's session creation time.

    python bench/compile_time.py [--models resnet50,vgg19] [--repeat 3]

Prints, per model: tcc import time, float pipeline time, textual-IR print and parse time,
onnxruntime InferenceSession creation time, the ratio tcc/onnxruntime, and the reference
interpreter's run time against onnxruntime's run time (random weights, measured in the same run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import light_zoo  # noqa: E402
from timing import best_of  # noqa: E402

from tcc.frontend import import_onnx  # noqa: E402
from tcc.ir import parse_module, print_module  # noqa: E402
from tcc.ir.interpreter import run_module  # noqa: E402
from tcc.passes import DEFAULT_FLOAT_PIPELINE, PassManager, parse_pipeline  # noqa: E402


def measure(name: str, repeat: int) -> dict:
    model = light_zoo.randomized(name)
    inputs = light_zoo.model_inputs(model)
    data = model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3

    t_import, module = best_of(repeat, lambda: import_onnx(model))
    t_passes, _ = best_of(1, lambda: PassManager(parse_pipeline(DEFAULT_FLOAT_PIPELINE)).run(module))
    t_print, text = best_of(1, lambda: print_module(module))
    t_parse, _ = best_of(1, lambda: parse_module(text))
    t_session, session = best_of(repeat, lambda: ort.InferenceSession(data, options,
                                                                       providers=["CPUExecutionProvider"]))
    t_ort_run, _ = best_of(repeat, lambda: session.run(None, inputs))
    t_ref_run, _ = best_of(repeat, lambda: run_module(module, inputs))
    return {"model": name, "import": t_import, "passes": t_passes, "print": t_print, "parse": t_parse,
            "ort_session": t_session, "compile_ratio": (t_import + t_passes) / t_session,
            "ort_run": t_ort_run, "ref_run": t_ref_run, "run_ratio": t_ref_run / t_ort_run,
            "ops": len(module.ops), "text_mb": len(text) / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(light_zoo.MODELS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    header = (f"{'model':<14}{'ops':>6}{'import s':>10}{'passes s':>10}{'print s':>9}{'parse s':>9}"
              f"{'IR MB':>8}{'ort sess s':>11}{'compile/ort':>12}{'ref run s':>10}{'ort run s':>10}{'run/ort':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.models.split(","):
        r = measure(name, args.repeat)
        rows.append(r)
        print(f"{r['model']:<14}{r['ops']:>6}{r['import']:>10.3f}{r['passes']:>10.3f}{r['print']:>9.3f}"
              f"{r['parse']:>9.3f}{r['text_mb']:>8.1f}{r['ort_session']:>11.3f}{r['compile_ratio']:>11.2f}x"
              f"{r['ref_run']:>10.3f}{r['ort_run']:>10.3f}{r['run_ratio']:>8.1f}x", flush=True)
    geo = lambda key: float(np.exp(np.mean([np.log(r[key]) for r in rows])))  # noqa: E731
    print(f"geometric mean: compile/ort-session {geo('compile_ratio'):.2f}x, "
          f"reference-run/ort-run {geo('run_ratio'):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
