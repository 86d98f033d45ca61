"""The light model zoo shipped inside the `onnx` wheel, with its constant weights made random.

The light models replace every weight by ConstantOfShape(0.02); comparing compilers on such
weights proves little, so `randomized` swaps each of those nodes for an initializer of random
values (He-scaled for >=2-D tensors, uniform in [0.5, 1.5] for 1-D ones so BatchNorm variances
stay positive).

    python examples/light_zoo.py OUT_DIR      # writes OUT_DIR/<model>.onnx and <model>.inputs.npz
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
          "squeezenet", "vgg19", "zfnet512")


def light_path(name: str) -> Path:
    return LIGHT_DIR / f"light_{name}.onnx"


def random_weight(shape, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(int(d) for d in shape)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)


def randomized(name: str, seed: int = 0, expose_logits: bool = False) -> onnx.ModelProto:
    """The light model `name` with each ConstantOfShape-of-an-initializer made a random initializer.

    With ``expose_logits`` the input of a final Softmax becomes an extra graph output, so that
    comparisons see the logits and not only a saturated probability vector.
    """
    model = onnx.load(str(light_path(name)))
    rng = np.random.default_rng(seed)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    keep, new_inits, shape_inits = [], [], set()
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = numpy_helper.to_array(inits[node.input[0]])
            new_inits.append(numpy_helper.from_array(random_weight(shape, rng), node.output[0]))
            shape_inits.add(node.input[0])
        else:
            keep.append(node)
    used = {i for node in keep for i in node.input}
    unused = {n for n in inits if n not in used}
    leftover = [i for i in graph.initializer if i.name not in unused]
    inputs = [i for i in graph.input if i.name not in unused]
    del graph.node[:], graph.initializer[:], graph.input[:]
    graph.node.extend(keep)
    graph.initializer.extend(leftover + new_inits)
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)  # initializers need not be listed as inputs
    if expose_logits:
        last = graph.node[len(graph.node) - 1]
        if last.op_type == "Softmax":
            graph.output.append(onnx.helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, []))
            del graph.output[-1].type.tensor_type.shape.dim[:]
    onnx.checker.check_model(model)
    return model


def model_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """N(0, 1) data for every graph input that is not an initializer."""
    rng = np.random.default_rng(seed + 1)
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        out[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def write_models(argv: list[str], usage: str, models, data, suffix: str) -> int:
    """The scripts' main: write each (name, model) of ``models`` and its ``data(model)`` arrays as
    NAME.onnx and NAME.SUFFIX.npz into the folder argv names."""
    if len(argv) != 1:
        print(usage)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, model in models:
        onnx.save(model, str(out / f"{name}.onnx"))
        np.savez(out / f"{name}.{suffix}.npz", **data(model))
        print(f"wrote {out / name}.onnx")
    return 0


def main(argv: list[str]) -> int:
    return write_models(argv, __doc__ or "", ((name, randomized(name)) for name in MODELS), model_inputs, "inputs")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
