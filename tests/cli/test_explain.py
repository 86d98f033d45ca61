"""`tcc explain`: the placement it predicts is the one the compile then makes."""
import json

import pytest

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODELS = {
    "gated_cnn": (EXAMPLES / "hetero" / "gated_cnn.onnx", EXAMPLES / "hetero" / "gated_cnn_calib.npz"),
    "box_head": (EXAMPLES / "hetero" / "box_head.onnx", EXAMPLES / "hetero" / "gated_cnn_calib.npz"),  # a host tail
    "digits": (EXAMPLES / "digits" / "digits_cnn.onnx", EXAMPLES / "digits" / "digits_calib.npz"),
    "encoder": (EXAMPLES / "encoder" / "encoder.onnx", EXAMPLES / "encoder" / "encoder_calib.npz"),
}


def _device_layers(artifact) -> set[tuple[str, str]]:
    """(node, unit) of every layer the compiled program runs."""
    from tcc.backends.overlay import Artifact
    from tcc.backends.overlay.steps import STEP_KINDS

    programs = [artifact] if isinstance(artifact, Artifact) else \
        [p for p in artifact.parts if isinstance(p, Artifact)]
    return {(layer["name"], STEP_KINDS[layer["kind"]].unit) for a in programs for layer in a.metadata["layers"]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_explain_matches_the_compile(name, tcc_cli, tmp_path):
    from tcc.backends.overlay import Artifact
    from tcc.backends.artifact import HeteroArtifact
    from tcc.runtime import artifact_kind

    model, calib = MODELS[name]
    code, out, err = tcc_cli("explain", model, "--calib", calib, "--json")
    assert code == 0, err
    explained = json.loads(out)
    code, _, err = tcc_cli("compile", model, "-t", "overlay", "--calib", calib, "-o", tmp_path / "m.tcc")
    assert code == 0, err
    kind = artifact_kind(tmp_path / "m.tcc")
    artifact = (HeteroArtifact if kind == "heterogeneous" else Artifact).load(tmp_path / "m.tcc")

    host = {n["name"] for n in explained["nodes"] if n["where"] == "host"}
    compiled_host = {f["node"] for f in artifact.metadata.get("host_ops", [])}
    assert host == compiled_host
    assert (kind == "heterogeneous") == bool(host)
    predicted = {(n["name"], unit) for n in explained["nodes"] for unit in n["units"]}
    assert _device_layers(artifact) <= predicted
    # every node that runs a layer on the device is predicted on the device, and no folded node runs
    folded = {n["name"] for n in explained["nodes"] if n["where"] == "folded"}
    assert not folded & {node for node, _ in _device_layers(artifact)}
    assert explained["device_mac_fraction"] == 1.0 and explained["macs"] > 0


def test_explain_table_names_the_reason_and_the_mac_fraction(tcc_cli):
    model, _ = MODELS["gated_cnn"]
    code, out, _ = tcc_cli("explain", model)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert "host" in lines["gate"] and "no overlay lowering for where on element types bf16, bool" in lines["gate"]
    assert "folded" in lines["relu1"] and "fused into the requantization" in lines["relu1"]
    assert "matrix" in lines["conv1"] and "55296 MACs" in lines["conv1"]
    assert "data movement" in lines["flatten"]
    assert out.splitlines()[-1].startswith("100.00% of 276640 MACs on the device; 2 of 11 nodes on the host")


def test_explain_counts_host_macs(tmp_path, tcc_cli):
    """A matmul of two activations runs on the array (its MACs counted), the comparison and select
    after it on the host."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm"),
             helper.make_node("Greater", ["y", "zero"], ["m"], name="mask"),
             helper.make_node("Where", ["m", "y", "zero"], ["z"], name="gate")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 8]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [8, 4])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 4])],
                              [onnx.numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx")
    code, out, _ = tcc_cli("explain", tmp_path / "m.onnx", "--json")
    data = json.loads(out)
    assert code == 0 and data["macs"] == 4 * 4 * 8
    assert {n["name"]: n["where"] for n in data["nodes"]} == {"mm": "matrix", "mask": "host", "gate": "host"}


def _wide_pool(path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    width = 140_000  # one row of it is more than an abuf quarter
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 2], strides=[1, 2], name="pool")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, width // 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path / "m.onnx")
    np.savez(path / "c.npz", x=np.random.default_rng(0).standard_normal((2, 1, 1, 1, width)).astype(np.float32))
    return "pool", "max_pool: one output row of this pooling does not fit the activation buffer"


def _wide_embedding(path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.standard_normal((6, 300_000)).astype(np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             helper.make_node("Relu", ["e"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [table])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path / "m.onnx")
    np.savez(path / "c.npz", ids=rng.integers(0, 6, (2, 4)))
    return "embed", "gather: one table row does not fit the activation buffer"


@pytest.mark.parametrize("build", [_wide_pool, _wide_embedding])
def test_explain_foresees_a_buffer_limit_the_code_generation_meets(build, tcc_cli, tmp_path):
    """Limits met while generating code (a row wider than the activation buffer) are asked of the
    same rule by placement, so explain names the op and why, and the compile puts it on the host."""
    from tcc.backends.artifact import HeteroArtifact

    node, why = build(tmp_path)
    code, out, err = tcc_cli("explain", tmp_path / "m.onnx", "--calib", tmp_path / "c.npz", "--json")
    assert code == 0, err
    explained = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert explained[node]["where"] == "host" and explained[node]["reasons"] == [why]
    code, _, err = tcc_cli("compile", tmp_path / "m.onnx", "-t", "overlay", "--calib", tmp_path / "c.npz",
                           "-o", tmp_path / "m.tcc")
    assert code == 0, err
    compiled_host = {f["node"] for f in HeteroArtifact.load(tmp_path / "m.tcc").metadata["host_ops"]}
    assert compiled_host == {n for n, e in explained.items() if e["where"] == "host"}
