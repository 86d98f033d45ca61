"""The real-model set (examples/real_models) on the overlay, as a new user would run it: float import
against onnxruntime, `tcc compile -t overlay --calib` with no other flag, the simulator against the
integer reference bit for bit, whole-model SQNR against float onnxruntime, the fraction of MACs on
the device and compile time. A step that fails prints its one-line reason.

    python bench/real_models.py [--models yolov8,crnn] [--samples 2] [--json out.json]

Goals (issue 14): every model compiles, simulator == reference, SQNR >= 25 dB, >= 99% of a CNN's
MACs on the device.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "real_models"))
import measure  # noqa: E402
from macs import count_macs  # noqa: E402


def measure_model(name: str, count: int, work: Path, ort_int8: bool = True) -> dict:
    import onnx

    row = {"model": name, "macs": count_macs(onnx.load(str(measure.model_path(name))), measure.input_shapes(name))}
    feeds = measure.samples(name, "test", count)
    expected = measure.onnxruntime_outputs(name, feeds)
    try:
        row["float_error"] = measure.relative_error(expected, measure.ir_outputs(name, feeds, work))
    except measure.StepFailed as error:
        row["float_failed"] = str(error)
    try:
        row["int8_ir_db"] = measure.sqnr_db(expected, measure.ir_outputs(name, feeds, work, quantized=True))
    except measure.StepFailed as error:
        row["int8_failed"] = str(error)
    if ort_int8:
        try:
            row["ort_int8_db"] = measure.sqnr_db(expected, measure.onnxruntime_int8_outputs(name, feeds, work))
        except Exception as error:  # onnxruntime's quantizer on a model it cannot handle: report, go on
            row["ort_int8_db"] = None
            print(f"{name}: onnxruntime quantize_static failed: {str(error).splitlines()[0]}", file=sys.stderr)
    try:
        artifact, row["compile_s"] = measure.compile_overlay(name, work)
        fraction = measure.device_mac_fraction(name)
        row["device_macs"] = 1.0 if fraction is None else fraction
        start = time.perf_counter()
        simulated, reference = measure.device_outputs(artifact, feeds)
        row["run_s"] = time.perf_counter() - start
        row["bit_exact"] = measure.bit_exact(simulated, reference)
        row["sqnr_db"] = measure.sqnr_db(expected, simulated)
    except measure.StepFailed as error:
        row["failed"] = str(error)
    return row


def format_row(r: dict) -> str:
    flt = f"{r['float_error']:.1e}" if "float_error" in r else "FAIL"
    cells = [f"{r['model']:<16}", f"{r['macs'] / 1e6:>7.1f}", f"{flt:>9}"]
    cells.append(f"{r['compile_s']:>8.1f}" if "compile_s" in r else f"{'FAIL':>8}")
    cells.append(f"{'yes' if r['bit_exact'] else 'NO':>6}" if "bit_exact" in r else f"{'-':>6}")
    if "sqnr_db" in r:
        sqnr = r["sqnr_db"]
        cells.append(f"{'inf' if math.isinf(sqnr) else f'{sqnr:.1f}':>8}")
    else:
        cells.append(f"{'-':>8}")
    cells.append(f"{100 * r['device_macs']:>7.1f}%" if "device_macs" in r else f"{'-':>8}")
    cells.append(f"{r['int8_ir_db']:>7.1f}" if "int8_ir_db" in r else f"{'FAIL':>7}")
    cells.append(f"{r['ort_int8_db']:>7.1f}" if r.get("ort_int8_db") is not None else f"{'-':>7}")
    reasons = [f"float: {r['float_failed']}"] if "float_failed" in r and r["float_failed"] != r.get("failed") else []
    reasons += [f"int8 IR: {r['int8_failed']}"] if "int8_failed" in r and r["int8_failed"] != r.get("failed") else []
    reasons += [r["failed"]] if "failed" in r else []
    return " ".join(cells) + ("  " + "; ".join(reasons) if reasons else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(measure.NAMES))
    parser.add_argument("--samples", type=int, default=2, help="test samples per model (default 2)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--no-ort-int8", action="store_true", help="skip onnxruntime's quantize_static column")
    args = parser.parse_args()
    head = (f"{'model':<16} {'MMACs':>7} {'float err':>9} {'compile':>8} {'exact':>6} {'SQNR dB':>8} "
            f"{'device':>8} {'int8 IR':>7} {'ORT q8':>7}  reason")
    print(head)
    print("-" * len(head))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(measure_model(name, args.samples, Path(tmp), not args.no_ort_int8))
            print(format_row(rows[-1]), flush=True)
    done = sum("sqnr_db" in r for r in rows)
    good = sum(r.get("sqnr_db", -1) >= 25 and r.get("bit_exact") for r in rows)
    print(f"compiled and ran {done}/{len(rows)}; exact with SQNR >= 25 dB: {good}/{len(rows)}. "
          "float err: max|tcc float IR - onnxruntime| / max|onnxruntime|; compile: seconds, tcc compile -t overlay; "
          "exact: simulator == integer reference; SQNR: simulator vs float onnxruntime, all outputs; device: "
          "share of the model's MACs run on the overlay; int8 IR: tcc's integer reference interpreter (-t ir --calib) "
          "vs float; ORT q8: onnxruntime quantize_static (QDQ, per-channel) vs float, same calibration file")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
