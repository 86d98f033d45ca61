"""Models tcc's authors did not write (torchvision exports, random init) on the overlay: `tcc compile
-t overlay --calib` with no other flag, its wall time and `--timings` table, the simulator against the
integer reference bit for bit, the whole-model SQNR against float onnxruntime, and how many nodes
run on the host (the compile's notes; 0: one device program).

    python bench/unseen_models.py /tmp/unseen/vit_b_16.onnx /tmp/unseen/swin_t.onnx [--samples 1]

Each MODEL.onnx is compiled with MODEL_calib.npz next to it (its samples are also the inputs the
outputs are compared on); a missing file is skipped with a note, so the script runs where the
exports are absent.  The exports come from `bench/unseen_exports.py` (torchvision, timm and
Ultralytics definitions; torch is not a tcc dependency).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def sqnr_db(reference: list[dict], got: list[dict]) -> float:
    signal = sum(float(np.sum(np.square(r[k], dtype=np.float64))) for r in reference for k in r)
    noise = sum(float(np.sum(np.square(np.asarray(g[k], np.float64) - r[k]))) for r, g in zip(reference, got)
                for k in r)
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def compile_model(model: Path, calib: Path, artifact: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, the --timings table) of `tcc compile MODEL -t overlay --calib CALIB`.
    The CPU time (user + system of the compile process) is the figure to compare on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tcc", "compile", str(model), "-t", "overlay", "--calib", str(calib),
                           "-o", str(artifact), "--timings"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1])
    table = done.stderr[done.stderr.find("pass / backend phase"):]
    return seconds, cpu, table, done.stderr.count("runs on the host")


def measure(model: Path, count: int, work: Path) -> dict:
    import onnxruntime

    from tcc.runtime import open_session

    calib = model.with_name(model.stem + "_calib.npz")
    row: dict = {"model": model.stem}
    artifact = work / (model.stem + ".tcc")
    row["compile_s"], row["compile_cpu_s"], row["timings"], row["host_nodes"] = compile_model(model, calib, artifact)
    data = np.load(calib)
    feeds = [{k: data[k][i:i + 1] for k in data.files} for i in range(min(count, len(data[data.files[0]])))]
    ort = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in ort.get_outputs()]
    expected = [dict(zip(names, ort.run(None, f))) for f in feeds]
    session = open_session(artifact)
    simulated = [dict(zip([o.name for o in session.get_outputs()], session.run(None, f))) for f in feeds]
    reference = [session.run_reference(f) for f in feeds]
    row["bit_exact"] = all(np.array_equal(s[k], r[k]) for s, r in zip(simulated, reference) for k in r)
    row["sqnr_db"] = sqnr_db(expected, simulated)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="MODEL.onnx files (default: /tmp/unseen/{vit_b_16,"
                        "swin_t,maxvit_t}.onnx)")
    parser.add_argument("--samples", type=int, default=1, help="calibration samples compared on (default 1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.models or [Path(f"/tmp/unseen/{n}.onnx") for n in ("vit_b_16", "swin_t", "maxvit_t")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            if not model.exists() or not model.with_name(model.stem + "_calib.npz").exists():
                print(f"{model.stem}: skipped ({model} or its _calib.npz is absent)")
                continue
            try:
                row = measure(model, args.samples, Path(tmp))
            except Exception as error:  # a failed step: its one-line reason, then the next model
                row = {"model": model.stem, "failed": f"{type(error).__name__}: {error}"}
            rows.append(row)
            if "failed" in row:
                print(f"{row['model']:<20} FAILED {row['failed']}")
            else:
                print(f"{row['model']:<20} compile {row['compile_s']:7.1f} s wall, {row['compile_cpu_s']:7.1f} s CPU  bit-exact "
                      f"{'yes' if row['bit_exact'] else 'NO'}  SQNR {row['sqnr_db']:6.2f} dB  host nodes {row['host_nodes']}\n"
                      f"{row['timings']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all("failed" not in r and r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
