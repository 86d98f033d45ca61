"""A detector with NonMaxSuppression post-processing (examples/real_models/yolov8_nms.py) end to
end: the static part on the float reference / the overlay simulator, NMS and what follows it as
the host tail, against onnxruntime.

    python bench/host_tail.py          # builds the model in memory (yolov8_nms.with_nms)

Prints per test image: detections from onnxruntime and from tcc (-t ir float; -t overlay int8),
whether the float path selects exactly onnxruntime's boxes, and for int8 the fraction of
onnxruntime's detections that tcc also reports (same class, IoU >= 0.5); then the host tail's
time on the first run (importing its segments) and on later runs (cached).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "real_models"))
CALIB = ROOT / "examples" / "real_models" / "yolov8_calib.npz"
TEST = ROOT / "examples" / "real_models" / "yolov8_test.npz"


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` with every box of ``b`` (centre x, y, width, height)."""
    lo = np.maximum(a[:, None, :2] - a[:, None, 2:] / 2, b[None, :, :2] - b[None, :, 2:] / 2)
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    union = np.prod(a[:, None, 2:], axis=2) + np.prod(b[None, :, 2:], axis=2) - inter
    return inter / np.maximum(union, 1e-9)


def recall(want: dict, got: dict) -> float:
    """Fraction of onnxruntime's detections that ``got`` has too (same class, IoU >= 0.5)."""
    if not len(want["det_class"]):
        return 1.0
    ious = iou_xywh(want["det_boxes"], got["det_boxes"])
    same = want["det_class"][:, None] == got["det_class"][None, :]
    return float(((ious >= 0.5) & same).any(axis=1).mean())


def main() -> int:
    from tcc.driver import CompileOptions, compile_model
    from tcc.frontend import run_model
    from tcc.runtime import open_session

    from yolov8_nms import HERE, with_nms

    model = with_nms(onnx.load(str(HERE / "yolov8.onnx")))
    images = np.load(TEST)["image"]
    names = ["selected", "det_boxes", "det_scores", "det_class"]
    onnx_session = ort.InferenceSession(model.SerializeToString())
    shapes = {"image": (1, 3, 128, 128)}
    module = compile_model(model, "ir", CompileOptions(input_shapes=shapes))
    with tempfile.TemporaryDirectory() as tmp:
        artifact = compile_model(model, "overlay", CompileOptions(input_shapes=shapes, calib=str(CALIB)))
        artifact.save(Path(tmp) / "m.tcc")
        session = open_session(Path(tmp) / "m.tcc")
    print(f"host tail: {', '.join(f'{n.name} ({n.op_type})' for n in module.host_tail.nodes)}")
    for i, image in enumerate(images):
        x = image[None]
        want = dict(zip(names, onnx_session.run(None, {"image": x})))
        floats = run_model(module, {"image": x})
        exact = np.array_equal(floats["selected"], want["selected"])
        start = time.perf_counter()
        got = dict(zip(names, session.run(None, {"image": x})))
        first = time.perf_counter() - start
        tail_first = session.last_run[-1]["wall_seconds"]
        session.run(None, {"image": x})
        tail_again = session.last_run[-1]["wall_seconds"]
        reference = session.run_reference({"image": x})
        bit_exact = all(np.array_equal(got[n], reference[n]) for n in names)
        print(f"image {i}: onnxruntime {len(want['selected'])} detections; tcc float {len(floats['selected'])} "
              f"(same selection: {exact}); tcc overlay int8 {len(got['selected'])}, recall of onnxruntime's "
              f"{100 * recall(want, got):.1f}%; simulator == integer reference: {bit_exact}; host tail "
              f"{1e3 * tail_first:.1f} ms first run, {1e3 * tail_again:.1f} ms cached (whole run {first:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
