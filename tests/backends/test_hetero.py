"""Heterogeneous execution: ops the overlay cannot run go to the host, in one artifact.

The model (examples/hetero/make_models.py) has a Greater + Where gate between convolutions, so the
device runs before and after a host island.
"""
import json

import numpy as np
import onnxruntime as ort
import pytest

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODEL = EXAMPLES / "hetero" / "gated_cnn.onnx"
CALIB = EXAMPLES / "hetero" / "gated_cnn_calib.npz"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from tcc.cli import main

    path = tmp_path_factory.mktemp("hetero") / "gated.tcc"
    assert main(["compile", str(MODEL), "-t", "overlay", "--calib", str(CALIB), "-o", str(path)]) == 0
    return path


def _samples():
    return np.load(CALIB)["x"][:2]


def test_host_island_runs_and_matches_the_reference_bit_for_bit(artifact):
    from tcc.runtime import open_session
    from tcc.runtime.hetero_session import HeteroSession

    session = open_session(artifact)
    assert isinstance(session, HeteroSession)
    # opening types the model's inputs and outputs by its partitions, without parsing the whole IR
    assert session._module is None
    io = [(a.name, a.shape, a.type) for a in session.get_inputs() + session.get_outputs()]
    assert session._module is None and session.interface is not session.module
    assert io == [(v.name, list(v.type.shape), v.type.dtype) for v in session.module.inputs] \
        + [(n, list(v.type.shape), v.type.dtype) for n, v in session.module.outputs]
    kinds = [p["kind"] for p in session.artifact.metadata["partitions"]]
    assert kinds == ["device", "host", "device"]  # device, host island, device again
    # the model-boundary conversions are the device partitions' own (partition._fold_boundaries): the
    # first quantizes the f32 input, the last dequantizes the logits; the host island is the gate alone
    first, island, last = session.artifact.metadata["partitions"]
    assert first["inputs"] == ["x"] and last["outputs"] == ["logits.f32"]
    assert island["nodes"] == ["gate_mask", "gate"]
    boundary = [(e["name"], e["boundary"]["kind"]) for part in (session.parts[0], session.parts[2])
                for group in ("inputs", "outputs") for e in part.artifact.metadata[group] if e["boundary"]]
    assert ("x", "quantize") in boundary and ("logits.f32", "dequantize") in boundary
    host_nodes = {f["node"] for f in session.artifact.metadata["host_ops"]}
    assert host_nodes == {"gate_mask", "gate"}
    onnx_session = ort.InferenceSession(str(MODEL))
    for x in _samples():
        x = x[None]
        (got,) = session.run(None, {"x": x})
        assert np.array_equal(got, session.run_reference({"x": x})["logits"])
        (want,) = onnx_session.run(None, {"x": x})
        sqnr = 10 * np.log10(np.sum(want ** 2) / np.sum((want - got) ** 2))
        assert sqnr > 30, sqnr


def test_each_device_partition_equals_its_reference(artifact):
    """The device part alone: each partition's simulator run equals the integer reference
    interpreter on that partition's own IR, fed the tensors the whole run gave it."""
    from tcc.ir.interpreter import run_module
    from tcc.runtime import open_session
    from tcc.runtime.session import Session

    session = open_session(artifact)
    feeds = {"x": _samples()[:1]}
    env = dict(feeds)
    checked = 0
    for entry, runner in zip(session.artifact.metadata["partitions"], session.parts):
        given = {n: env[n] for n in entry["inputs"]}
        made = runner.run_dict(given) if isinstance(runner, Session) else run_module(runner, given)
        if isinstance(runner, Session):
            reference = runner.run_reference(given)
            assert made.keys() == reference.keys()
            for name in made:
                assert made[name].dtype == reference[name].dtype
                assert np.array_equal(made[name].view(np.uint8), reference[name].view(np.uint8)), name
            checked += 1
        env.update(made)
    assert checked == 2


def test_report_shows_where_time_goes_and_bytes_crossing(artifact, tcc_cli, tmp_path):
    code, out, _ = tcc_cli("report", artifact, "--json", tmp_path / "r.json")
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    parts = report["partitions"]
    device = [p for p in parts if p["kind"] == "device"]
    host = [p for p in parts if p["kind"] == "host"]
    assert all(p["cycles"] > 0 for p in device) and all(p["wall_seconds"] > 0 for p in host)
    assert report["device_cycles"] == sum(p["cycles"] for p in device)
    # bytes crossing: the f32 input, the gate's tensors both ways
    assert report["bytes_crossing"] == sum(p["bytes_in"] for p in parts)
    assert parts[0]["bytes_in"] == 3 * 16 * 16 * 4
    assert "device cycles" in out and "host ms" in out and "gate_mask" in out


def test_run_and_run_reference_from_the_cli(artifact, tcc_cli, tmp_path):
    np.savez(tmp_path / "in.npz", x=_samples()[:1])
    assert tcc_cli("run", artifact, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "sim.npz")[0] == 0
    assert tcc_cli("run", artifact, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "ref.npz",
                   "--reference")[0] == 0
    assert np.array_equal(np.load(tmp_path / "sim.npz")["logits"], np.load(tmp_path / "ref.npz")["logits"])
    code, out, _ = tcc_cli("disasm", artifact)
    assert code == 0 and out.count("; partition") == 3 and "matmul" in out


def test_no_host_fallback_lists_every_op_that_would_fall_back(tcc_cli, tmp_path):
    code, _, err = tcc_cli("compile", MODEL, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc",
                           "--no-host-fallback")
    assert code == 2
    assert "node 'gate_mask' (Greater): no overlay lowering for greater on element types bool, f32" in err
    assert "node 'gate' (Where): no overlay lowering for where on element types bf16, bool" in err
    assert "dequantize" not in err  # conversions at host boundaries are not fallbacks
    assert not (tmp_path / "m.tcc").exists()


def test_corrupted_heterogeneous_artifact_is_one_clear_error(artifact, tcc_cli, tmp_path):
    data = bytearray(artifact.read_bytes())
    data[-5] ^= 0xFF
    bad = tmp_path / "bad.tcc"
    bad.write_bytes(bytes(data))
    code, _, err = tcc_cli("run", bad, "-o", tmp_path / "o.npz")
    assert code == 2 and "checksum mismatch" in err and "Traceback" not in err


def test_verify_compares_a_model_with_host_partitions(tcc_cli):
    code, out, _ = tcc_cli("verify", MODEL, "--calib", CALIB, "--samples", "1")
    assert code == 0
    assert "simulator == integer reference: all" in out and "agree bit for bit" in out


def test_an_embedding_row_wider_than_the_buffer_runs_on_the_host(tcc_cli, tmp_path):
    """An embedding row wider than the activation buffer: that op runs on the host and the rest on the
    device, not a failed compile (tests/cli/test_explain.py: explain foresees it); with
    --no-host-fallback the same limit is the error listing the op."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from tcc.runtime import open_session

    rng = np.random.default_rng(0)
    graph = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["e"]), helper.make_node("Relu", ["e"], ["y"])],
                              "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(rng.standard_normal((6, 300_000)).astype(np.float32), "table")])
    model = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    np.savez(tmp_path / "c.npz", ids=rng.integers(0, 6, (4, 4)))
    code, _, err = tcc_cli("compile", model, "-t", "overlay", "--calib", tmp_path / "c.npz", "-o", tmp_path / "m.tcc")
    assert code == 0, err
    assert "node 'e' (gather) runs on the host: one table row does not fit the activation buffer" in err
    session = open_session(tmp_path / "m.tcc")
    ids = np.array([0, 5, 2, 2])
    (got,) = session.run(None, {"ids": ids})
    assert np.array_equal(got, session.run_reference({"ids": ids})["y"])
    (want,) = ort.InferenceSession(str(model)).run(None, {"ids": ids})
    assert 10 * np.log10(np.sum(want ** 2) / np.sum((want - got) ** 2)) > 30
    code, _, err = tcc_cli("compile", model, "-t", "overlay", "--calib", tmp_path / "c.npz", "-o", tmp_path / "n.tcc",
                           "--no-host-fallback")
    assert code == 2 and "node 'e' (gather): one table row does not fit the activation buffer" in err
    assert not (tmp_path / "n.tcc").exists()


def test_an_op_whose_emission_fails_runs_on_the_host(tcc_cli, tmp_path, monkeypatch):
    """The safety net for a limit placement does not foresee: an emitter that refuses its op (here
    the relu-gated conv's pool, made to refuse) sends that op to the host and the compile places and
    generates again; the result still runs end to end and equals the integer reference."""
    from tcc.backends.overlay import compile as overlay_compile
    from tcc.backends.overlay.errors import unsupported
    from tcc.runtime import open_session

    def refuse(ctx, step):
        raise unsupported(step.ops[0], "refused for this test")

    monkeypatch.setitem(overlay_compile.EMITTERS, "pool", refuse)
    code, _, err = tcc_cli("compile", MODEL, "-t", "overlay", "--calib", CALIB, "-o", tmp_path / "m.tcc")
    assert code == 0, err
    assert "runs on the host: refused for this test" in err
    session = open_session(tmp_path / "m.tcc")
    assert {f["reason"] for f in session.artifact.metadata["host_ops"]} >= {"refused for this test"}
    feeds = {"x": _samples()[:1]}
    np.testing.assert_array_equal(session.run(None, feeds)[0], list(session.run_reference(feeds).values())[0])
