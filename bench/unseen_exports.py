"""Export the models `bench/unseen_models.py` checks: torchvision, timm and Ultralytics definitions
tcc's authors did not write, random initialization, each with a calibration file beside it.

    python bench/unseen_exports.py OUT_DIR resnet18 seg:fcn_resnet50 timm:rexnet_100 timm:mobilevit_xs:256 \
        yolo:yolo11n [...]
    python bench/unseen_models.py OUT_DIR/*.onnx --samples 1

NAME is a torchvision classifier, `seg:NAME` a torchvision segmentation net (its "out"), `timm:NAME[:px]`
a timm model (100 classes), `yolo:CONFIG` an Ultralytics model built from its yaml (no download) and
exported by `YOLO.export` at 320x320. Needs torch, torchvision (timm, ultralytics for those kinds);
tcc does not. BatchNorm running statistics are the plain average over the calibration images (8 of
N(0, 0.64) at 224x224, inception_v3 299x299; YOLO: uniform [0, 1] images), and OUT_DIR/NAME_calib.npz
holds 4 of them. Models checked on 2026-12-05 (README): see the README's "Models we did not write".
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch

# torchvision's compiled operators (nms, roi_align) do not load against the CPU torch wheel on this
# machine, and registering their fake kernels then fails at import; none of these models uses them
torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)

SIZES = {"inception_v3": 299}


def _averaged_batchnorm(model: torch.nn.Module, images: np.ndarray) -> None:
    """BatchNorm running statistics as the plain average over ``images``, then eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
            module.reset_running_stats()
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), 4):
            model(torch.from_numpy(images[i:i + 4]))
    model.eval()


class _SegmentationOut(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def _torch_model(spec: str) -> tuple[str, torch.nn.Module, int]:
    kind, _, rest = spec.partition(":") if ":" in spec else ("torchvision", "", spec)
    if kind == "seg":
        import torchvision.models.segmentation as segmentation

        return f"seg_{rest}", _SegmentationOut(getattr(segmentation, rest)(weights=None, weights_backbone=None)), 224
    if kind == "timm":
        import timm

        name, _, size = rest.partition(":")
        return f"timm_{name}", timm.create_model(name, pretrained=False, num_classes=100), int(size or 224)
    import torchvision.models as models

    extra = {"aux_logits": False, "init_weights": True} if rest in ("googlenet", "inception_v3") else {}
    return rest, getattr(models, rest)(weights=None, **extra), SIZES.get(rest, 224)


def export_torch(spec: str, out: Path) -> Path:
    name, model, size = _torch_model(spec)
    images = (np.random.default_rng(0).standard_normal((8, 3, size, size)) * 0.8).astype(np.float32)
    _averaged_batchnorm(model, images)
    path = out / f"{name}.onnx"
    torch.onnx.export(model, (torch.from_numpy(images[:1]),), str(path), input_names=["image"],
                      output_names=["logits"], dynamo=True)
    np.savez(out / f"{name}_calib.npz", image=images[:4])
    return path


def export_yolo(config: str, out: Path) -> Path:
    from ultralytics import YOLO

    yolo = YOLO(f"{config}.yaml")  # built from the yaml: random initialization, nothing downloaded
    images = np.random.default_rng(0).uniform(0, 1, (8, 3, 320, 320)).astype(np.float32)
    _averaged_batchnorm(yolo.model, images)
    path = out / f"yolo_{config}.onnx"
    shutil.move(yolo.export(format="onnx", imgsz=320, simplify=False, dynamic=False, opset=17), path)
    np.savez(out / f"yolo_{config}_calib.npz", **{onnx.load(str(path)).graph.input[0].name: images[:4]})
    return path


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    failed = 0
    for spec in sys.argv[2:]:
        try:
            path = export_yolo(spec[5:], out) if spec.startswith("yolo:") else export_torch(spec, out)
            print(f"exported {path}", flush=True)
        except Exception as exc:  # one model's export failing does not stop the others
            failed += 1
            print(f"FAILED {spec}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
