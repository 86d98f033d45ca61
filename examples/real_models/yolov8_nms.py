"""The YOLO-style detector (yolov8.onnx, built by make_models.py) with the NonMaxSuppression
post-processing that detector exports append (ultralytics' ``nms=True``, onnx-graphsurgeon
scripts): the number of detections, hence every shape after NMS, is known only at run time.

    python examples/real_models/yolov8_nms.py     # writes yolov8_nms.onnx here (batch 1)

The detector's output concatenates boxes (centre x, y, width, height) and per-class scores;
NMS exports take the two before that Concat (boxes span hundreds of pixels, scores 0..1: one
int8 scale for both would leave the scores no resolution):

    boxes  = Transpose(box_xywh)                     [1, anchors, 4]
    scores = sigmoid                                 [1, classes, anchors]
    selected = NonMaxSuppression(boxes, scores, 20 per class, IoU 0.45, score 0.25, centre boxes)
    det_boxes  = boxes[0][selected[:, 2]]            [K, 4]
    det_scores = GatherND(scores, selected)          [K]
    det_class  = selected[:, 1]                      [K]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
MAX_PER_CLASS, IOU, SCORE = 20, 0.45, 0.25


def with_nms(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    concat = next(n for n in graph.node if graph.output[0].name in n.output)  # boxes ++ scores
    box_xywh, scores = concat.input  # [1, 4, anchors], [1, classes, anchors]
    consts = {
        "nms.zero": np.array([0], np.int64), "nms.max": np.array([MAX_PER_CLASS], np.int64),
        "nms.iou": np.array([IOU], np.float32), "nms.score": np.array([SCORE], np.float32),
        "nms.two": np.array(2, np.int64), "nms.one": np.array(1, np.int64),
    }
    nodes = [
        helper.make_node("Transpose", [box_xywh], ["nms.boxes"], perm=[0, 2, 1], name="nms/boxes"),
        helper.make_node("NonMaxSuppression", ["nms.boxes", scores, "nms.max", "nms.iou", "nms.score"],
                         ["selected"], center_point_box=1, name="nms/nms"),
        helper.make_node("Gather", ["selected", "nms.two"], ["nms.box_index"], axis=1, name="nms/box_index"),
        helper.make_node("Squeeze", ["nms.boxes", "nms.zero"], ["nms.boxes0"], name="nms/boxes0"),
        helper.make_node("Gather", ["nms.boxes0", "nms.box_index"], ["det_boxes"], axis=0, name="nms/det_boxes"),
        helper.make_node("GatherND", [scores, "selected"], ["det_scores"], name="nms/det_scores"),
        helper.make_node("Gather", ["selected", "nms.one"], ["det_class"], axis=1, name="nms/det_class"),
    ]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.remove(next(n for n in out.graph.node if n.name == concat.name))
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    del out.graph.output[:]
    out.graph.output.extend([
        helper.make_tensor_value_info("selected", TensorProto.INT64, ["detections", 3]),
        helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, ["detections", 4]),
        helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, ["detections"]),
        helper.make_tensor_value_info("det_class", TensorProto.INT64, ["detections"]),
    ])
    image = out.graph.input[0].type.tensor_type.shape.dim[0]
    image.Clear()
    image.dim_value = 1  # NMS batches come from the boxes; one image per run, as deployed
    onnx.checker.check_model(out, full_check=True)
    return out


def main() -> None:
    model = with_nms(onnx.load(str(HERE / "yolov8.onnx")))
    onnx.save(model, str(HERE / "yolov8_nms.onnx"))
    print(f"wrote {HERE / 'yolov8_nms.onnx'} ({len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main()
