"""The overlay target on every light-zoo model (random weights) and the real-model set: the columns of
issue 16's table, every ratio against onnxruntime measured in the same run.

    python bench/overlay.py [--models resnet50,squeezenet] [--real mobilenet_v3,yolov8] [--repeat 3]
    python bench/overlay.py --cycles-only      # modeled cycles and roofline only (one run per model)

Per model: compile time (in-process, float import to artifact), the simulator warm (a session's run,
best of --repeat after the first) over onnxruntime's best of five, `open_session`, the first run of a
fresh session, `tcc run a.tcc --inputs in.npz -o out.npz` as a user waits for it (subprocess wall,
best of --repeat; `tcc --help` alone is measured once, in the header), modeled cycles over the
per-layer roofline, the simulator against the integer reference (bit for bit) and against float
onnxruntime (SQNR of the last output). ``--models none`` or ``--real none`` skips a set.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
sys.path.insert(0, str(HERE.parent / "examples" / "real_models"))
sys.path.insert(0, str(HERE))
import light_zoo  # noqa: E402
import measure  # noqa: E402
from timing import best_of  # noqa: E402

from tcc.driver import CompileOptions, compile_model  # noqa: E402
from tcc.runtime import open_session  # noqa: E402

GOALS = "goals (issue 16): sim/ort <= 5x, open <= 0.3 s, `tcc run` ResNet-50 <= 1.5 s, --help <= 0.3 s, " \
        "compile ResNet-50 <= 10 s, cycles/roofline <= 1.15x"


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64).reshape(np.shape(reference))
    noise = ((ref - act) ** 2).sum()
    return math.inf if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


def light_model(name: str, work: Path) -> tuple[Path, Path, dict, dict]:
    """(onnx path, calibration npz, input shapes, feeds) of a light-zoo model with random weights."""
    model = light_zoo.randomized(name, expose_logits=True)
    path, calib = work / f"{name}.onnx", work / f"{name}.calib.npz"
    onnx.save(model, str(path))
    feeds = light_zoo.model_inputs(model)
    rng = np.random.default_rng(7)
    np.savez(calib, **{k: rng.standard_normal((4,) + v.shape).astype(np.float32) for k, v in feeds.items()})
    return path, calib, {}, feeds


def real_model(name: str, work: Path) -> tuple[Path, Path, dict, dict]:
    return (measure.model_path(name), measure.HERE / f"{name}_calib.npz", measure.input_shapes(name),
            measure.samples(name, "test", 1)[0])


def tcc_command() -> str:
    """The `tcc` console script a user of this Python would type: the one beside the interpreter
    (a venv's bin/), so the bench needs no PATH set up; else whatever `tcc` PATH finds."""
    beside = Path(sys.executable).parent / "tcc"
    return str(beside) if beside.is_file() else "tcc"


def wall(*command: str) -> float:
    """The command's wall time, Python allowed to cache bytecode as on a user's machine (callers take
    the best of several runs: the first one writes the cache).  Where PYTHONDONTWRITEBYTECODE is
    set, an editable install compiles tcc's ~100 modules from source on every command (0.15-0.2 s)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def cycles_over_roofline(report: dict) -> float | None:
    parts = [p for p in report.get("partitions", [report]) if "roofline_cycles" in p]
    roof = sum(p["roofline_cycles"] for p in parts)
    return sum(p["cycles"] for p in parts) / roof if roof else None


def measure_model(name: str, source: tuple, repeat: int, work: Path) -> dict:
    path, calib, shapes, feeds = source
    start = time.perf_counter()
    artifact = compile_model(str(path), "overlay", CompileOptions(input_shapes=shapes, calib=str(calib)))
    compile_s = time.perf_counter() - start
    tcc_path, inputs = work / f"{name}.tcc", work / f"{name}.inputs.npz"
    artifact.save(tcc_path)
    np.savez(inputs, **feeds)

    open_s, session = best_of(repeat, lambda: open_session(tcc_path))
    first_s, _ = best_of(1, lambda: session.run(None, feeds))
    warm_s, sim_out = best_of(repeat, lambda: session.run(None, feeds))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort_session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ort_s, ort_out = best_of(5, lambda: ort_session.run(None, feeds))
    run_s = min(wall(tcc_command(), "run", str(tcc_path), "--inputs", str(inputs), "-o", str(work / "out.npz"))
                for _ in range(repeat))
    names = [o.name for o in session.get_outputs()]
    reference = session.run_reference(feeds)
    return {"model": name, "compile_s": compile_s, "sim_over_ort": warm_s / ort_s, "warm_s": warm_s, "ort_s": ort_s,
            "open_s": open_s, "first_s": first_s, "run_s": run_s,
            "over_roofline": cycles_over_roofline(session.performance_report()),
            "bit_exact": all(np.array_equal(dict(zip(names, sim_out))[k], reference[k]) for k in reference),
            "sqnr_db": sqnr_db(ort_out[-1], sim_out[-1])}


def measure_cycles(name: str, source: tuple, work: Path) -> dict:
    """Modeled cycles over the roofline alone: compile, one simulated run."""
    path, calib, shapes, feeds = source
    compile_model(str(path), "overlay", CompileOptions(input_shapes=shapes, calib=str(calib))).save(work / f"{name}.tcc")
    session = open_session(work / f"{name}.tcc")
    session.run(None, feeds)
    report = session.performance_report()
    parts = [p for p in report.get("partitions", [report]) if "roofline_cycles" in p]
    return {"model": name, "cycles": sum(p["cycles"] for p in parts),
            "roofline": sum(p["roofline_cycles"] for p in parts), "over_roofline": cycles_over_roofline(report)}


CYCLES_HEAD = f"{'model':<16}{'cycles':>12}{'roofline':>12}{'x roof':>8}"


def format_cycles(r: dict) -> str:
    roof = f"{r['over_roofline']:>7.3f}x" if r["over_roofline"] is not None else f"{'-':>8}"
    return f"{r['model']:<16}{r['cycles']:>12}{r['roofline']:>12}{roof}"


HEAD = (f"{'model':<16}{'compile s':>10}{'sim/ort':>9}{'sim ms':>9}{'ort ms':>8}{'open s':>8}{'first s':>8}"
        f"{'run s':>7}{'x roof':>8}{'exact':>7}{'SQNR dB':>9}")


def format_row(r: dict) -> str:
    roof = f"{r['over_roofline']:>7.2f}x" if r["over_roofline"] is not None else f"{'-':>8}"
    return (f"{r['model']:<16}{r['compile_s']:>10.2f}{r['sim_over_ort']:>8.1f}x{1e3 * r['warm_s']:>9.1f}"
            f"{1e3 * r['ort_s']:>8.1f}{r['open_s']:>8.3f}{r['first_s']:>8.3f}{r['run_s']:>7.2f}{roof}"
            f"{'yes' if r['bit_exact'] else 'NO':>7}{r['sqnr_db']:>9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(light_zoo.MODELS), help="light-zoo models, or 'none'")
    parser.add_argument("--real", default=",".join(measure.NAMES), help="real-model set, or 'none'")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cycles-only", action="store_true", help="only modeled cycles over the roofline")
    args = parser.parse_args()
    if not args.cycles_only:
        help_s = min(wall(tcc_command(), "--help") for _ in range(args.repeat))
        print(f"`tcc --help`: {help_s:.2f} s wall (best of {args.repeat})")
    head = CYCLES_HEAD if args.cycles_only else HEAD
    print(head)
    print("-" * len(head))
    jobs = [(n, light_model) for n in args.models.split(",") if n != "none"]
    jobs += [(n, real_model) for n in args.real.split(",") if n != "none"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in jobs:
            try:
                if args.cycles_only:
                    print(format_cycles(measure_cycles(name, source(name, Path(tmp)), Path(tmp))), flush=True)
                else:
                    print(format_row(measure_model(name, source(name, Path(tmp)), args.repeat, Path(tmp))),
                          flush=True)
            except Exception as error:  # a model that does not compile or run: its one-line reason, go on
                print(f"{name:<16}failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                      flush=True)
    print(GOALS)
    if args.cycles_only:
        return 0
    print("sim/ort: warm simulator over onnxruntime; open: open_session; first: first run of a fresh session; "
          "run: `tcc run` wall; exact: simulator == integer reference; SQNR: last output vs onnxruntime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
