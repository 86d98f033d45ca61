"""The sparse dataflow target: token simulator vs the sparse reference interpreter (run_sparse) and,
in exact mode, the dense integer reference (run_module), on the events and digits examples."""
from __future__ import annotations

import numpy as np
import pytest

from sparse_helpers import DIGITS, EVENTS, compiled, masked
from tcc.ir.interpreter import run_module
from tcc.ir.interpreter.sparse import run_sparse, window_count, window_of


def _check_against_reference(session, feeds, mode):
    out = session.run_dict(feeds)
    ref = run_sparse(session.module, feeds, mode)
    for name in ref.outputs:
        np.testing.assert_array_equal(out[name], ref.outputs[name])
    values = session.values()
    assert len(values) > 10 or len(values) == len(session.metadata["streams"])
    for name, array in values.items():
        np.testing.assert_array_equal(array, ref.values[name], err_msg=name)
    if mode == "exact":
        dense = run_module(session.module, feeds)
        for name in dense:
            np.testing.assert_array_equal(out[name], dense[name])
    return ref


@pytest.mark.parametrize("mode", ["submanifold", "exact"])
def test_events_simulator_equals_references(mode):
    _, session = compiled("events", mode)
    x = np.load(EVENTS / "events_test.npz")["input"]
    for i in (0, 7, 42, 300):
        ref = _check_against_reference(session, {"input": x[i:i + 1]}, mode)
        # the simulator's token counts are the reference's active sites
        for c, spec in zip(session.last_result.counters, session.metadata["modules"]):
            if spec["kind"] not in ("gpool", "fc"):
                assert c.tokens_out == int(ref.active[spec["output"]].sum()), spec["name"]
    # an empty frame (no tokens at all) and a full one
    for frame in (np.zeros_like(x[:1]), np.ones_like(x[:1])):
        _check_against_reference(session, {"input": frame}, mode)


@pytest.mark.parametrize("mode", ["submanifold", "exact"])
def test_digits_at_several_input_densities(mode):
    _, session = compiled("digits", mode)
    x = np.load(DIGITS / "digits_test.npz")["input"]
    cycles = {}
    for density in (1.0, 0.5, 0.2, 0.1, 0.05):
        feeds = {"input": masked(x[3:4], density, seed=int(density * 100))}
        _check_against_reference(session, feeds, mode)
        result = session.last_result
        cycles[density] = result.cycles
        assert result.cycles > result.latency["bottleneck_cycles"]
        by_name = {c.name: c for c in result.counters}
        for spec in session.metadata["modules"]:  # a module starts after its producers do
            for stream in spec["inputs"]:
                producer = next(m["name"] for m in session.metadata["modules"] if m["output"] == stream)
                assert by_name[spec["name"]].first_token > by_name[producer].first_token
    if mode == "submanifold":  # modeled latency follows density
        assert cycles[0.05] < cycles[0.2] < cycles[1.0]


def test_depthwise_counts_valid_neighbours():
    _, session = compiled("events", "submanifold")
    x = np.load(EVENTS / "events_test.npz")["input"][5:6]
    ref = run_sparse(session.module, {"input": x}, "submanifold")
    session.run_dict({"input": x})
    by_name = {v.name: v for v in session.module.values()}
    checked = 0
    for c, spec in zip(session.last_result.counters, session.metadata["modules"]):
        if spec["kind"] != "depthwise":
            continue
        op = by_name[spec["acc"]].producer
        inside = window_count(ref.active[op.operands[0].name], window_of(op), False)
        expected = np.maximum(inside[ref.active[spec["output"]]], 1).sum()
        assert c.neighbours == expected
        checked += 1
    assert checked == 4


def test_cli_compile_run_report_disasm(tmp_path, tcc_cli):
    x = np.load(EVENTS / "events_test.npz")["input"][:1]
    np.savez(tmp_path / "in.npz", input=x)
    art = tmp_path / "ev.tcc"
    code, _, err = tcc_cli("compile", EVENTS / "events_dense.onnx", "-t", "sparse", "--sparse-mode", "submanifold",
                           "--calib", EVENTS / "events_calib.npz", "-o", art)
    assert code == 0, err
    assert "19 modules (submanifold)" in err and "DSP" in err
    assert art.read_bytes()[:8] == b"TCCSPRS\0"
    code, _, err = tcc_cli("run", art, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "sim.npz",
                           "--report", tmp_path / "r.json")
    assert code == 0, err
    code, _, err = tcc_cli("run", art, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "ref.npz", "--reference")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "sim.npz")["logits"], np.load(tmp_path / "ref.npz")["logits"])
    code, out, _ = tcc_cli("report", art, "--inputs", tmp_path / "in.npz", "--top", "3")
    assert code == 0 and "slowest module" in out and len([ln for ln in out.splitlines() if ln.startswith("m0") or ln.startswith("m1")]) == 3
    code, out, _ = tcc_cli("disasm", art)
    assert code == 0 and "/blocks.1/depthwise/conv/Conv" in out and "m01_conv -> m02_pointwise" in out
    code, _, err = tcc_cli("hls", art, "-o", tmp_path / "hls")
    assert code == 0, err
    top = (tmp_path / "hls" / "top.cpp").read_text()
    assert (tmp_path / "hls" / "esda_modules.hpp").is_file() and "#pragma HLS DATAFLOW" in top
    code, _, err = tcc_cli("hls", EVENTS / "events_dense.onnx", "-o", tmp_path / "hls2")
    assert code == 2 and "not a sparse artifact" in err and not (tmp_path / "hls2").exists()


@pytest.mark.parametrize("rule", ["requantize", "rounded_mean"])
def test_a_one_lsb_error_in_the_token_datapath_breaks_bit_exactness(off_by_one_lsb, rule):
    """The token simulator shares only numerics' rules with the references: a deliberate one-bit
    error in its requantizer or global average pool makes the bit-exactness check fail."""
    from tcc.isa.tokensim import datapath

    _, session = compiled("digits", "exact")
    feeds = {"input": np.load(DIGITS / "digits_test.npz")["input"][:1]}
    _check_against_reference(session, feeds, "exact")
    off_by_one_lsb(datapath, rule)
    with pytest.raises(AssertionError):
        _check_against_reference(session, feeds, "exact")
