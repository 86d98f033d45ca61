"""A batch of N samples simulated at once (every memory of the machine has a sample axis; each
prepared action executes all N samples) gives exactly what N single runs give, on real models
(examples/real_models: a depthwise CNN with bf16 LayerNorm, a transformer, the CRNN's recurrent bf16
and mode switches, BERT's embedding lookups; heterogeneous ones with host partitions) and light-zoo
ones (grouped convs, concatenations, pooling); a data-dependent trap names its sample.  Each batch
holds distinct samples, so an error in any sample but the first (an off-by-one on the sample axis)
shows.  The single runs themselves equal the integer reference (tests/real_models, tests/e2e)."""
import sys
from pathlib import Path

import numpy as np
import pytest

import light_zoo
from tcc.driver import CompileOptions, compile_model
from tcc.isa.assembler import assemble
from tcc.isa.encoding import encode_program
from tcc.isa.errors import SimulatorTrap
from tcc.isa.simulator import Machine
from tcc.isa.target import load_target
from tcc.runtime import open_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "real_models"))
import measure  # noqa: E402

TARGET = load_target()


def setr(registers: dict[str, int]) -> str:
    return "".join(f"setr {name}, {value}\n" for name, value in registers.items())


def stacked(samples: list[dict]) -> dict:
    return {k: np.concatenate([s[k] for s in samples]) for k in samples[0]}


def device_results(session) -> list:
    """The last run's RunResult of the session's device program(s) (a heterogeneous one: per partition)."""
    return [part.last_result for part in getattr(session, "parts", [session]) if hasattr(part, "last_result")]


def check_batch(session, samples: list[dict]) -> None:
    singles = [session.run(None, s) for s in samples]
    single_results = device_results(session)
    batched = session.run(None, stacked(samples))
    for j, output in enumerate(batched):
        assert output.shape[0] == len(samples)
        for i, single in enumerate(singles):
            # (an output whose axis 0 is not a batch axis of 1 gets a new leading axis: Session.run)
            mine = output[i:i + 1] if single[j].shape[:1] == (1,) else output[i]
            np.testing.assert_array_equal(mine, single[j], err_msg=f"output {j}, sample {i}")
    # the counters are the program's: the batch's result is one sample's run
    assert single_results and device_results(session) == single_results


@pytest.mark.parametrize("name", ["convnext_t", "vit_tiny", "crnn", "bert"])
def test_real_model_batch_equals_single_runs(name, tmp_path):
    artifact, _ = measure.compile_overlay(name, tmp_path)
    samples = measure.samples(name, "test") + measure.samples(name, "calib", 1)
    check_batch(open_session(artifact), samples)


@pytest.mark.parametrize("name", ["shufflenet", "squeezenet"])
def test_light_zoo_batch_equals_single_runs(name, tmp_path):
    model = light_zoo.randomized(name, expose_logits=True)
    samples = [light_zoo.model_inputs(model, seed) for seed in range(3)]
    np.savez(tmp_path / "calib.npz", **{k: np.concatenate([s[k] for s in samples]) for k in samples[0]})
    import onnx

    onnx.save(model, str(tmp_path / "m.onnx"))
    artifact = compile_model(str(tmp_path / "m.onnx"), "overlay", CompileOptions(calib=str(tmp_path / "calib.npz")))
    artifact.save(tmp_path / "m.tcc")
    session = open_session(tmp_path / "m.tcc")
    check_batch(session, samples)
    # a machine per batch size, each keeping its prepared program: N = 1 again prepares nothing
    import tcc.isa.simulator.run as simulator_run

    prepared = []
    original = simulator_run.prepare
    simulator_run.prepare = lambda *args, **kw: prepared.append(args) or original(*args, **kw)
    try:
        session.run(None, samples[0])
        session.run(None, stacked(samples))
    finally:
        simulator_run.prepare = original
    assert not prepared


def test_batch_larger_than_the_memory_budget_runs_in_parts(tmp_path, monkeypatch):
    import tcc.runtime.session as session_module

    artifact, _ = measure.compile_overlay("convnext_t", tmp_path)
    samples = measure.samples("convnext_t", "test") + measure.samples("convnext_t", "calib", 1)
    session = open_session(artifact)
    whole = session.run(None, stacked(samples))
    per_sample = session.artifact.metadata["dram_bytes"] + sum(TARGET.buffer_bytes(b) for b in session_module._buffers())
    monkeypatch.setattr(session_module, "BATCH_BYTES", 2 * per_sample)  # two samples, then one
    for a, b in zip(session.run(None, stacked(samples)), whole):
        np.testing.assert_array_equal(a, b)
    assert sorted(session._machines) == [1, 2]


def test_accumulator_overflow_in_one_sample_names_it():
    text = setr({"mm.m": 1, "mm.n": 1, "mm.k": 2, "mm.a_row": 2, "mm.w_row": 2, "mm.acc_row": 1}) \
        + "matmul gemm, 1, int8, 0, 0, 0\nhalt\n"
    machine = Machine(TARGET, np.zeros((3, 8), np.uint8))
    abuf, wbuf, acc = (machine.memories[i] for i in (0, 1, 2))
    acc[:, :4] = np.array([[0], [0], [2**31 - 100]], "<i4").view(np.uint8)  # only sample 2 overflows
    abuf[:, :2] = np.array([10, 10], np.int8).view(np.uint8)
    wbuf[:, :2] = np.array([5, 6], np.int8).view(np.uint8)
    with pytest.raises(SimulatorTrap) as info:
        machine.run(encode_program(assemble(text)))
    assert info.value.reason == "sample 2: int32 accumulator overflow at acc[0, 0] = 2147483658"
    machine.memories[2][2, :4] = 0
    machine.run(encode_program(assemble(text)))
    assert acc[:, :4].view("<i4").reshape(-1).tolist() == [110, 110, 110]


def test_samples_with_their_own_weights_multiply_them():
    """Weights that differ between samples (attention's Q x K^T loads an activation into wbuf):
    each sample's product with its own, as its single run gives."""
    text = setr({"mm.m": 2, "mm.n": 3, "mm.k": 4, "mm.a_row": 4, "mm.w_row": 4, "mm.acc_row": 3, "mm.a_zp": 3}) \
        + "matmul gemm, 0, int8, 0, 0, 0\nhalt\n"
    words = encode_program(assemble(text))
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (3, 2, 4)).astype(np.int8)
    w = rng.integers(-128, 128, (3, 3, 4)).astype(np.int8)
    machine = Machine(TARGET, np.zeros((3, 8), np.uint8))
    machine.memories[0][:, :8] = a.reshape(3, -1).view(np.uint8)
    machine.memories[1][:, :12] = w.reshape(3, -1).view(np.uint8)
    machine.run(words)
    for i in range(3):
        expected = (a[i].astype(np.int64) - 3) @ w[i].T.astype(np.int64)
        assert machine.memories[2][i, :24].view("<i4").reshape(2, 3).tolist() == expected.tolist()


def test_tcc_run_on_an_npz_of_several_samples(tmp_path, tcc_cli):
    """`tcc run` with N samples on axis 0: one batch on the simulator, equal to the reference per
    sample; a batch whose inputs disagree on N is a one-line usage error."""
    artifact, _ = measure.compile_overlay("convnext_t", tmp_path)
    samples = measure.samples("convnext_t", "test") + measure.samples("convnext_t", "calib", 1)
    np.savez(tmp_path / "in.npz", **stacked(samples))
    assert tcc_cli("run", artifact, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "sim.npz")[0] == 0
    assert tcc_cli("run", artifact, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "ref.npz", "--reference")[0] == 0
    with np.load(tmp_path / "sim.npz") as sim, np.load(tmp_path / "ref.npz") as ref:
        assert sim["logits"].shape[0] == 3
        np.testing.assert_array_equal(sim["logits"], ref["logits"])
    np.savez(tmp_path / "bad.npz", image=np.zeros((3, 3, 64, 32), np.float32))
    code, _, err = tcc_cli("run", artifact, "--inputs", tmp_path / "bad.npz", "-o", tmp_path / "x.npz")
    assert code == 2 and "key 'image' has shape [3, 3, 64, 32]" in err and "(or N samples on axis 0)" in err


def requant_batch(x: list[int], params: list[tuple], pre_shift: int = 0) -> Machine:
    """``requant abuf, i8`` of one int8 per sample (sample i: x[i], pbuf triple params[i])."""
    machine = Machine(TARGET, np.zeros((len(x), 8), np.uint8))
    machine.memories[0][:, 0x100] = np.array(x, np.int8).view(np.uint8)
    machine.memories[3][:, :12] = np.array(params, "<i4").view(np.uint8)
    text = setr({"rq.params": 0, "rq.m": 1, "rq.n": 1, "rq.src_row": 1, "rq.dst_row": 1, "rq.pre_shift": pre_shift,
                 "rq.qmin": -128, "rq.qmax": 127}) + "requant abuf, i8, half_even, 0, 0x100\nhalt\n"
    machine.run(encode_program(assemble(text)))
    return machine


def test_requantization_fault_of_one_sample_names_it():
    """A shift the stage proves safe for no int8 input checks the data: only sample 1's value
    (100 << 56 >= 2**62) is refused, and the trap names it."""
    with pytest.raises(SimulatorTrap) as info:
        requant_batch([10, 100, -3], [(0, 1, 1)] * 3, pre_shift=56)
    assert info.value.reason.startswith("sample 1: requant: ")
    assert requant_batch([10, -3], [(0, 1, 1)] * 2, pre_shift=56).memories[0][:, 0].view(np.int8).tolist() == [127, -128]


def test_samples_with_their_own_requantization_parameters():
    """pbuf differing between samples: each sample requantized by its own triple (bias, multiplier, shift)."""
    got = requant_batch([50, 50, 50], [(0, 2**30, 31), (10, 2**30, 30), (-4, 2**30, 32)]).memories[0][:, 0]
    assert got.view(np.int8).tolist() == [25, 60, 12]  # 50/2, (50+10)/1, (50-4)/4 = 11.5 -> 12 (ties to even)
