"""Sparse target: unmappable layers and budgets are clear errors, the design-space search is exact
(checked by brute force), and the artifact file is checked on load."""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sparse_helpers import EVENTS, annotated, compiled, masked
from tcc.backends.artifact import ArtifactError
from tcc.backends.sparse import SparseArtifact, SparseError, compile_sparse
from tcc.backends.sparse.dse import options_of, search
from tcc.backends.sparse.mapping import map_module
from tcc.backends.sparse.target import SparseTarget
from tcc.isa.tokensim.cost import Counts


def _tiny_model(tmp_path, tail, out_shape, extra=()):
    """input 4x8x8 -> Conv 3x3 (8) -> Relu -> ``tail`` node(s); with calibration data."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32) * 0.3, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu1")] + tail
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], [w, *extra])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.savez(tmp_path / "calib.npz", x=(rng.random((4, 4, 8, 8)) * (rng.random((4, 1, 8, 8)) < 0.3)).astype(np.float32))
    return annotated(path, tmp_path / "calib.npz", "exact")


def test_unmappable_layer_names_op_kind_and_location(tmp_path):
    w2 = numpy_helper.from_array(np.ones((8, 4, 3, 3), np.float32), "w2")
    module = _tiny_model(tmp_path, [helper.make_node("Conv", ["r", "w2"], ["y"], name="gconv1", group=2,
                                                     pads=[1, 1, 1, 1])], [1, 8, 8, 8], [w2])
    with pytest.raises(SparseError, match=r"cannot map op qconv .*loc 'gconv1'.*group 2 is neither 1 nor depthwise"):
        compile_sparse(module, "exact")


def test_window_without_submanifold_semantics_needs_exact_mode(tmp_path):
    module = _tiny_model(tmp_path, [helper.make_node("MaxPool", ["r"], ["y"], name="pool1", kernel_shape=[3, 3])],
                         [1, 8, 6, 6])
    with pytest.raises(SparseError, match=r"max_pool .*loc 'pool1'.*no submanifold semantics.*--sparse-mode exact"):
        map_module(module, "submanifold")
    assert [s["kind"] for s in map_module(module, "exact")[0]] == ["input", "conv", "maxpool"]
    # exact mode runs it, spatial output (densified with its background) included
    from tcc.ir.interpreter import run_module
    from tcc.runtime.sparse_session import SparseSession

    session = SparseSession(compile_sparse(module, "exact"))
    rng = np.random.default_rng(1)
    for density in (0.3, 0.0):
        x = (rng.random((1, 4, 8, 8)) * (rng.random((1, 1, 8, 8)) < density)).astype(np.float32)
        np.testing.assert_array_equal(session.run_dict({"x": x})["y"], run_module(session.module, {"x": x})["y"])


def test_op_without_module_names_op_kind_and_location(tmp_path):
    module = _tiny_model(tmp_path, [helper.make_node("Sigmoid", ["r"], ["y"], name="sig1")], [1, 8, 8, 8])
    with pytest.raises(SparseError) as info:
        compile_sparse(module, "exact")  # the quantizer made the sigmoid an int8 table lookup
    assert "qlut" in str(info.value) and "sig1" in str(info.value) and "no module" in str(info.value)


def test_budget_too_small_names_the_module(tmp_path):
    target = tmp_path / "tiny_board.toml"
    target.write_text('name = "tiny"\nclock_mhz = 100\ndsp = 5\nbram36 = 100\nlut = 100000\n')
    module = annotated(*(_digits_paths()), "exact")
    with pytest.raises(SparseError, match=r"no design fits the budget of tiny .*module m01_conv \(conv at '/stem/stem.0/Conv'\) does not fit: .* 6 DSP"):
        compile_sparse(module, "exact", target)
    target.write_text('name = "tiny"\nclock_mhz = 100\ndsp = 200\nbram36 = 100\nlut = 10000\n')
    with pytest.raises(SparseError, match=r"together do not fit .*LUT"):
        compile_sparse(module, "exact", target)


def _digits_paths():
    from sparse_helpers import DIGITS

    return DIGITS / "digits_cnn.onnx", DIGITS / "digits_calib.npz"


def test_search_is_exact_against_brute_force():
    """A 3-module slice of the digits design under budgets tight enough to bind, vs enumeration."""
    artifact, _ = compiled("digits", "exact")
    kinds = [s["kind"] for s in artifact.modules]
    specs = [dict(artifact.modules[kinds.index(k)]) for k in ("conv", "depthwise", "fc")]
    counts = {s["name"]: Counts(64, 64, 300) for s in specs}
    for dsp, bram36 in ((60, 40), (120, 8), (400, 60)):
        target = SparseTarget(name="t", dsp=dsp, bram36=bram36, lut=10**6)
        options = [options_of(s, counts[s["name"]], target) for s in specs]
        # the fc runs after the frame: its cycles add to the slowest streaming module's
        best = min((max(o.cycles for o in combo[:2]) + combo[2].cycles for combo in itertools.product(*options)
                    if sum(o.dsp for o in combo) <= dsp and sum(o.bram18 for o in combo) <= 2 * bram36), default=None)
        result = search(specs, counts, target)
        assert result["objective_cycles"] == best
        assert result["dsp"] <= dsp and result["bram18"] <= 2 * bram36
        assert max(s["expected_cycles"] for s in specs[:2]) + specs[2]["expected_cycles"] == best


def test_artifact_round_trip_and_corruption(tmp_path):
    artifact, _ = compiled("events", "submanifold")
    path = tmp_path / "ev.tcc"
    artifact.save(path)
    loaded = SparseArtifact.load(path)
    assert loaded.to_bytes() == path.read_bytes()
    assert loaded.metadata["modules"] == artifact.metadata["modules"]
    for name, w in artifact.weights.items():
        np.testing.assert_array_equal(loaded.weights[name], w)
        assert loaded.weights[name].dtype == w.dtype
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    with pytest.raises(ArtifactError, match="checksum"):
        SparseArtifact.from_bytes(bytes(data))
    data = bytearray(path.read_bytes())
    data[8] = 9
    with pytest.raises(ArtifactError, match="version 9"):
        SparseArtifact.from_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="not a sparse tcc artifact"):
        SparseArtifact.from_bytes(b"TCCARTF\0" + bytes(100))


def test_token_timing_scan_matches_the_recurrence():
    """out[t] = max(ready[t], out[t-1]) + service[t], the vectorised scan against a plain loop."""
    from tcc.isa.tokensim.timing import _scan

    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        ready = np.sort(rng.integers(0, 400, n))
        service = rng.integers(1, 30, n)
        out, last = [], 0
        for r, s in zip(ready, service):
            last = max(int(r), last) + int(s)
            out.append(last)
        np.testing.assert_array_equal(_scan(ready, service), out)


def test_latency_floor_bounds_the_timed_latency():
    """timing.latency_floor: on the events network (every module on one chain) it is the slowest
    module's busy cycles plus every module's pipeline depth, and the token-timed latency of each
    frame is at least that."""
    from tcc.isa.tokensim.cost import PIPELINE_DEPTH

    _, session = compiled("events", "submanifold")
    depths = sum(PIPELINE_DEPTH[s["kind"]] for s in session.metadata["modules"])
    frames = np.load(EVENTS / "events_test.npz")["input"][:3]
    for density in (1.0, 0.3, 0.1):
        for frame in masked(frames, density, seed=9):
            session.run_dict({"input": frame[None]})
            latency = session.last_result.latency
            assert latency["floor_cycles"] == latency["bottleneck_cycles"] + depths
            assert latency["floor_cycles"] <= latency["cycles"]


def test_densities_come_from_annotate_sparsity(tmp_path):
    from sparse_helpers import DIGITS
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    calib = DIGITS / "digits_calib.npz"
    plain, _ = compile_to_ir(str(DIGITS / "digits_cnn.onnx"), {},  # quantized for the sparse target, not annotated
                             DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib), sparse_mode="exact"))
    assert compile_sparse(plain, "exact").metadata["density_source"].startswith("none: assumed 100%")
    with pytest.raises(SparseError, match="measured in mode exact but the design is for mode submanifold"):
        compile_sparse(annotated(DIGITS / "digits_cnn.onnx", calib, "exact"), "submanifold")


def test_target_description_errors(tmp_path):
    from tcc.backends.sparse import load_sparse_target

    assert load_sparse_target().dsp == 2016 and load_sparse_target().bram36 == 730
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\ndsps = 10\n')
    with pytest.raises(SparseError, match="unknown key.*dsps"):
        load_sparse_target(bad)
    bad.write_text('name = "b"\ndsp = 0\n')
    with pytest.raises(SparseError, match="dsp = .* is out of range"):
        load_sparse_target(bad)
    with pytest.raises(SparseError, match="no such sparse target"):
        load_sparse_target(tmp_path / "missing.toml")


def _repacked(data: bytes, meta: bytes) -> bytes:
    """``data`` (a sparse artifact) with its metadata section replaced behind a valid header."""
    from tcc.backends.artifact import pack, unpack

    return pack("sparse", [meta] + unpack("sparse", data, "<test>")[1:])


def test_malformed_sections_behind_a_valid_checksum_are_clear_errors(tmp_path, tcc_cli):
    import json
    from pathlib import Path

    from tcc.backends.artifact import unpack

    EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events"
    x = np.load(EVENTS / "events_test.npz")["input"][:1]
    np.savez(tmp_path / "in.npz", input=x)
    art = tmp_path / "ev.tcc"
    code, _, err = tcc_cli("compile", EVENTS / "events_dense.onnx", "-t", "sparse", "--calib",
                           EVENTS / "events_calib.npz", "-o", art)
    assert code == 0, err
    data = art.read_bytes()
    meta = json.loads(unpack("sparse", data, "<test>")[0])
    bad_offset = dict(meta, weights=[dict(meta["weights"][0], offset=10**9)] + meta["weights"][1:])
    bad_shape = dict(meta, weights=[dict(meta["weights"][0], shape=[7, 7, 7])] + meta["weights"][1:])
    cases = [b"{not json", b"\xff\xfe", json.dumps({"mode": "exact"}).encode(),
             json.dumps(bad_offset).encode(), json.dumps(bad_shape).encode()]
    for i, case in enumerate(cases):
        path = tmp_path / f"bad{i}.tcc"
        path.write_bytes(_repacked(data, case))
        code, _, err = tcc_cli("run", path, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
        assert code == 2 and "malformed" in err and "Traceback" not in err, (i, err)


# -- the resource model is the generated design's own ---------------------------------------------
def _declared_memories(top: str) -> tuple[dict, dict]:
    """From top.cpp: {array name: (element bits, elements, reshape factor)} and {stream: (channels, depth)}."""
    import re

    bits = {"int32_t": 32, "esda::weight_t": 8, "esda::feat_t": 8, "bool": 1, "ap_int<32>": 32}
    arrays = {}
    for ctype, name, dims in re.findall(r"^static (?:const )?(\S+) (\w+)((?:\[\d+\])+)", top, re.M):
        count = int(np.prod([int(d) for d in re.findall(r"\d+", dims)]))
        arrays[name] = [bits[ctype], count, 1]
    for name, factor in re.findall(r"#pragma HLS ARRAY_RESHAPE variable = (\w+) cyclic factor = (\d+)", top):
        arrays[name][2] = int(factor)
    channels = dict((v, int(c)) for c, v in re.findall(r"esda::Stream<(\d+)> (\w+);", top))
    streams = {v: (channels[v], int(d)) for v, d in re.findall(r"#pragma HLS STREAM variable = (\w+) depth = (\d+)", top)}
    return arrays, streams


@pytest.mark.parametrize("mode", ["exact", "submanifold"])
def test_the_cost_model_charges_exactly_the_memories_top_cpp_declares(tmp_path, mode):
    from sparse_helpers import compiled, pooling_cnn

    from tcc.backends.sparse.hls import top_source
    from tcc.isa.tokensim.cost import resources
    from tcc.isa.tokensim.memories import Memory, memory_cost, module_memories, token_bits

    artifact, _ = compiled("events", mode)
    module, _, _ = pooling_cnn(tmp_path, mode)
    for art in (artifact, compile_sparse(module, mode)):
        arrays, streams = _declared_memories(top_source(art))
        claimed = set()
        for spec in art.modules:
            model = module_memories(spec, spec["parallelism"])
            declared = []
            for mem in model:
                if mem.stream_depth:
                    var = spec["fanout"][int(mem.role[4:])]["stream"]
                    c, depth = streams[var]
                    declared.append(Memory(mem.role, token_bits(c), 0, 1, depth))
                    claimed.add(var)
                else:
                    name = f"{spec['name']}_{mem.role}"
                    declared.append(Memory(mem.role, *arrays[name]))
                    claimed.add(name)
            assert declared == model, spec["name"]
            assert memory_cost(declared)[0] == resources(spec, spec["parallelism"])["bram18"]
        # nothing is declared that the model does not charge
        unclaimed = set(arrays) - claimed
        assert not unclaimed and set(streams) == claimed & set(streams)


@pytest.mark.parametrize("mode", ["submanifold", "exact"])
def test_full_density_latency_is_within_1_2x_of_the_dense_dataflow_design(mode):
    """Issue 20: at 100% input density the sparse design costs at most 1.2x the dense dataflow
    design of the same modules and parallelism (every site a token, no coordinate beat, whole
    windows); the dense design is never slower than the sparse one at full density."""
    from tcc.isa.tokensim.timing import dense_frame_timing

    _, session = compiled("events", mode)
    dense = dense_frame_timing(session.metadata["modules"])["cycles"]
    frame = np.ones((1, 2, 32, 32), np.float32)
    session.run_dict({"input": frame})
    assert dense <= session.last_result.cycles <= 1.2 * dense
