"""The overlay end to end: compile, simulate, and compare element for element with the integer
reference interpreter on the same artifact and on the IR from `tcc compile -t ir`."""
import numpy as np
import onnx
import pytest

import light_zoo
from tcc.backends.overlay import Artifact, ArtifactError, compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir import parse_module, print_module
from tcc.ir.interpreter import run_module
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session

DIGITS = "examples/digits/digits_cnn.onnx"


def quantized(model, calib_path):
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(calib_path)))
    return module


def random_calibration(inputs, path, samples=2, seed=3):
    rng = np.random.default_rng(seed)
    np.savez(path, **{k: rng.standard_normal((samples,) + v.shape).astype(np.float32) for k, v in inputs.items()})
    return path


def sqnr_db(reference, actual) -> float:
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    noise = ((ref - act) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise))


@pytest.fixture(scope="module")
def digits_artifact(tmp_path_factory):
    module = quantized(DIGITS, "examples/digits/digits_calib.npz")
    path = tmp_path_factory.mktemp("digits") / "digits.tcc"
    compile_overlay(module).save(path)
    return path, print_module(module)


def test_digits_simulator_equals_reference(digits_artifact):
    path, ir_text = digits_artifact
    session = Session(path)
    test = np.load("examples/digits/digits_test.npz")
    module = parse_module(ir_text)
    for i in range(0, 40, 4):
        x = {"input": test["input"][i:i + 1]}
        simulated = session.run(None, x)[0]
        np.testing.assert_array_equal(simulated, session.run_reference(x)["logits"])
        np.testing.assert_array_equal(simulated, run_module(module, x)["logits"])
    assert session.last_result.cycles > 0


def test_a_warm_run_restores_only_what_the_last_run_wrote(digits_artifact):
    """A session's next run reloads the DRAM image by restoring the byte ranges its program's
    actions and its inputs may have written: every memory is then what a full load gives."""
    from tcc.isa.simulator import Machine

    path, _ = digits_artifact
    session = Session(path)
    session.run(None, {"input": np.load("examples/digits/digits_test.npz")["input"][:1]})
    machine = session._machine
    assert machine.reload_image()
    image = np.frombuffer(session.artifact.dram_image, np.uint8)
    fresh = Machine(session.target, np.zeros(machine.dram.size, np.uint8))
    fresh.load_image(image)
    assert machine.dram[:image.size].any() and all(map(np.array_equal, machine.memories, fresh.memories))


def test_a_warm_run_restores_only_what_it_reads_before_writing(digits_artifact):
    """Of the ranges the last run wrote, a reload for the next run restores those the next run reads
    before writing them (Plan.first_reads): they are then what a full load gives, and the rest
    stays noted, so that a plain reload after it still gives the whole image.  Runs on new inputs
    in turn equal fresh sessions' and the reference's."""
    from tcc.isa.simulator import Machine

    path, _ = digits_artifact
    session = Session(path)
    test = np.load("examples/digits/digits_test.npz")["input"]
    session.run(None, {"input": test[:1]})
    machine = session._machine
    reads = machine.first_reads(session.artifact.program)
    assert reads and all(lo < hi for _, lo, hi in reads)
    image = np.frombuffer(session.artifact.dram_image, np.uint8)
    fresh = Machine(session.target, np.zeros(machine.dram.size, np.uint8))
    fresh.load_image(image)
    assert machine.reload_image(reads)
    for memory, lo, hi in reads:
        assert np.array_equal(machine.memories[memory][:, lo:hi], fresh.memories[memory][:, lo:hi])
    assert not all(map(np.array_equal, machine.memories, fresh.memories))  # the rest is the last run's
    assert machine.reload_image()
    assert all(map(np.array_equal, machine.memories, fresh.memories))
    for i in (3, 7, 3):
        x = {"input": test[i:i + 1]}
        got = session.run(None, x)[0]
        np.testing.assert_array_equal(got, Session(path).run(None, x)[0])
        np.testing.assert_array_equal(got, session.run_reference(x)["logits"])


def test_first_reads_are_the_bytes_read_before_any_write():
    """FirstReads in program order: an instruction's reads before its writes; a read counts only
    where no earlier instruction wrote the whole range."""
    from tcc.isa.simulator.machine import FirstReads, intersect_spans

    found = FirstReads([np.zeros((2, 100), np.uint8), np.zeros((2, 50), np.uint8)])
    found.wrote([(0, 10, 20)])
    found.read([(0, 5, 25, False), (0, 30, 40, True), (1, 0, 4, False, 8, 2)])
    found.read([(0, 30, 32, False)])  # after a write of 30..40 that was not whole (not in ``wrote``)
    found.wrote([(1, 0, 50)])
    found.read([(1, 0, 50, False)])
    assert found.spans() == ((0, 5, 10), (0, 20, 25), (0, 30, 32), (1, 0, 4))
    assert intersect_spans(((0, 0, 8), (0, 21, 40), (1, 2, 3)), found.spans()) == \
        ((0, 5, 8), (0, 21, 25), (0, 30, 32), (1, 2, 3))


def test_last_result_is_a_copy_the_caller_may_change(digits_artifact):
    """A run shares its counters with the prepared program; last_result copies them when asked."""
    path, _ = digits_artifact
    session = Session(path)
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    session.run(None, x)
    first = session.last_result
    kept = first.copy()
    first.layers[next(iter(first.layers))]["cycles"] = -1
    first.units.clear()
    session.run(None, x)
    assert session.last_result is not first and session.last_result == kept
    assert session.performance_report()["cycles"] == kept.cycles


def test_a_batch_on_axis_0_runs_sample_by_sample(digits_artifact):
    """Inputs holding N samples where the model has batch 1 give each sample's outputs, stacked."""
    path, _ = digits_artifact
    session = Session(path)
    batch = np.load("examples/digits/digits_test.npz")["input"][:5]
    assert batch.shape[0] == 5 and session.get_inputs()[0].shape[0] == 1
    (logits,) = session.run(["logits"], {"input": batch})
    one_by_one = [Session(path).run(None, {"input": batch[i:i + 1]})[0] for i in range(5)]
    np.testing.assert_array_equal(logits, np.concatenate(one_by_one))
    np.testing.assert_array_equal(logits[3:4], session.run_reference({"input": batch[3:4]})["logits"])
    with pytest.raises(Exception, match="input"):  # a batch on another axis is a shape error, as before
        session.run(None, {"input": np.concatenate([batch[:1]] * 2, axis=2)})


@pytest.mark.parametrize("name", light_zoo.MODELS)
def test_light_zoo_simulator_equals_reference(name, tmp_path):
    model = light_zoo.randomized(name, expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    module = quantized(model, random_calibration(inputs, tmp_path / "calib.npz"))
    compile_overlay(module).save(tmp_path / "m.tcc")
    session = Session(tmp_path / "m.tcc")
    simulated = session.run_dict(inputs)
    reference = run_module(module, inputs)
    float_out = run_module(compile_to_ir(model)[0], inputs)
    for key in reference:
        np.testing.assert_array_equal(simulated[key], reference[key], err_msg=f"{name} output {key}")
        print(f"{name} {key}: SQNR vs float {sqnr_db(float_out[key], simulated[key]):.1f} dB")
    assert_counters_add_up(session.last_result)
    assert_no_layer_beats_its_roofline(session.performance_report())


def assert_no_layer_beats_its_roofline(report):
    """The cycle model never beats the physical bounds: every layer takes at least max(MACs / PEs,
    bytes it moves / DRAM bandwidth) cycles (a load and a store do not each get the whole
    bandwidth).  That is the layer's roofline when it moves all it reads and writes through DRAM;
    a layer that reads its input on chip or whose output no one reloads (backends/overlay/resident.py)
    moves fewer bytes than the roofline counts."""
    target = report["target"]
    peak, bandwidth = target["array_rows"] * target["array_cols"], target["dram_bytes_per_cycle"]
    for layer in report["layers"]:
        moved = layer.get("bytes_loaded", 0) + layer.get("bytes_stored", 0)
        bound = max(-(-layer["macs"] // peak), -(-moved // bandwidth))
        assert layer.get("cycles", 0) >= bound, \
            f"layer {layer['name']} ({layer['kind']}): {layer.get('cycles', 0)} cycles < {bound}"


def assert_counters_add_up(result):
    """Per unit busy + stall + idle = cycles, the front end's issue + stalls + idle = cycles, and the
    per-layer busy and stall cycles sum to the run's."""
    assert set(result.unit_cycles) == set(result.units)
    for unit, split in result.unit_cycles.items():
        assert min(split.values()) >= 0 and sum(split.values()) == result.cycles, unit
        assert split["busy"] == result.units[unit] == sum(layer[f"{unit}_busy"] for layer in result.layers.values())
        assert split["stall"] == sum(layer[f"{unit}_stall"] for layer in result.layers.values())
    assert min(result.front_cycles.values()) >= 0 and sum(result.front_cycles.values()) == result.cycles
    assert result.front_cycles["issue"] == result.instructions
    assert result.stall_cycles == sum(split["stall"] for split in result.unit_cycles.values())


def test_artifact_is_deterministic(tmp_path):
    module = quantized(DIGITS, "examples/digits/digits_calib.npz")
    again = quantized(DIGITS, "examples/digits/digits_calib.npz")
    assert compile_overlay(module).to_bytes() == compile_overlay(again).to_bytes()


def test_corrupt_artifacts_are_refused(digits_artifact, tmp_path):
    path, _ = digits_artifact
    data = path.read_bytes()
    with pytest.raises(ArtifactError, match="truncated"):
        Artifact.from_bytes(data[:-10])
    ir_at = len(data) - len(Artifact.from_bytes(data).ir_text.encode())
    for at in (ir_at - 1, len(data) - 1):  # the last byte of the DRAM image, of the IR text
        flipped = bytearray(data)
        flipped[at] ^= 0x40
        (tmp_path / "bad.tcc").write_bytes(flipped)
        with pytest.raises(ArtifactError, match="checksum mismatch"):  # the IR is checked when it is read
            Artifact.from_bytes(bytes(flipped)).ir_text.encode()
        with pytest.raises(ArtifactError, match="checksum mismatch"):
            Artifact.load(tmp_path / "bad.tcc").ir_text.encode()
    with pytest.raises(ArtifactError, match="not a tcc artifact"):
        Artifact.from_bytes(b"\x08\x01" + data[2:])
    other = bytearray(data)
    other[8] = 99
    with pytest.raises(ArtifactError, match="format version 99"):
        Artifact.from_bytes(bytes(other))


# (group, key, value, message, when): "open" entries are refused when a session opens (they are all
# the simulator reads); "ir" ones, which tie the metadata to the IR text, when the IR is parsed
# (``Session.module``, `tcc run --reference`).
@pytest.mark.parametrize("group, key, value, message, when", [
    ("inputs", "value", "nope", "inputs entry 'input': value %nope is not in the artifact's IR", "ir"),
    ("inputs", "value", "input", "inputs entry 'input': value %input and boundary op 'quantize' do not connect", "ir"),
    ("inputs", "name", "image", r"inputs \['image'\] do not match the IR's inputs \['input'\]", "ir"),
    ("inputs", "shape", [1, 1, 16, 17], r"inputs entry 'input': i8\[1, 1, 16, 17\] does not match", "open"),
    ("inputs", "dtype", "i16", "inputs entry 'input': i16", "open"),
    ("inputs", "dtype", "i9", "inputs entry 'input': dtype 'i9' is not an element type", "open"),
    ("inputs", "perm", [0, 2, 2, 1], r"perm \[0, 2, 2, 1\] is not a permutation of 4 axes", "open"),
    ("inputs", "boundary", {"kind": "nope", "attrs": {}, "operand": {"shape": [1], "dtype": "f32"},
                            "result": {"shape": [1], "dtype": "i8"}}, "inputs entry 'input'.kind 'nope' is not", "open"),
    ("outputs", "value", "logits.q.x", "outputs entry 'logits': value %logits.q.x is not in", "ir"),
    ("outputs", "boundary", None, "outputs entry 'logits': value %logits and boundary op None do not connect", "ir"),
    ("outputs", "shape", [10], "outputs entry 'logits'", "open"),
    ("outputs", "address", "end", "outputs entry 'logits': bytes .* run past dram_bytes", "open"),
])
def test_metadata_that_does_not_match_the_ir_is_refused(digits_artifact, tmp_path, tcc_cli, group, key, value,
                                                       message, when):
    # Edited metadata behind a valid checksum (Artifact.to_bytes re-packs it), as the artifact_body
    # fuzz target makes: an ArtifactError naming the entry, not a KeyError while running.
    path, _ = digits_artifact
    artifact = Artifact.load(path)
    entry = artifact.metadata[group][0]
    entry[key] = artifact.metadata["dram_bytes"] - 4 if value == "end" else value
    edited = tmp_path / "edited.tcc"
    edited.write_bytes(artifact.to_bytes())
    with pytest.raises(ArtifactError, match=message):
        _ = Session(edited).module
    if when == "open":
        with pytest.raises(ArtifactError, match=message):
            Session(edited)
    code, _, err = tcc_cli("run", edited, "-o", tmp_path / "out.npz", *(["--reference"] if when == "ir" else []))
    assert code == 2 and "malformed artifact metadata" in err and "Traceback" not in err


def test_progress_callbacks_are_monotonic_and_change_nothing(digits_artifact, monkeypatch):
    import tcc.isa.simulator.run as simulator_run

    _, ir_text = digits_artifact
    steps = []
    with_progress = compile_overlay(parse_module(ir_text), progress=lambda done, total: steps.append((done, total)))
    assert with_progress.to_bytes() == compile_overlay(parse_module(ir_text)).to_bytes()
    total = steps[-1][1]
    assert steps == [(done, total) for done in range(1, total + 1)]

    monkeypatch.setattr(simulator_run, "PROGRESS_EVERY", 16)
    session = Session(with_progress)
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    pcs = []
    outputs = session.run_dict(x, progress=lambda pc, length: pcs.append((pc, length)))
    result = session.last_result
    n = len(with_progress.program)
    assert pcs == [(pc, n) for pc in range(16, n, 16)] + [(n, n)]
    plain = session.run_dict(x)
    assert outputs.keys() == plain.keys() and all(np.array_equal(outputs[k], plain[k]) for k in plain)
    assert result == session.last_result


def test_cli_overlay_contract(tmp_path, tcc_cli):
    test = np.load("examples/digits/digits_test.npz")
    np.savez(tmp_path / "in.npz", input=test["input"][:1])
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", "examples/digits/digits_calib.npz",
                           "-o", tmp_path / "m.tcc")
    assert code == 0, err
    code, _, err = tcc_cli("compile", DIGITS, "-t", "ir", "--calib", "examples/digits/digits_calib.npz",
                           "--quant", "int8", "-o", tmp_path / "q.tir")
    assert code == 0, err
    outs = {}
    for label, args in {"sim": [tmp_path / "m.tcc", "--report", tmp_path / "r.json"],
                        "ref": [tmp_path / "m.tcc", "--reference"], "ir": [tmp_path / "q.tir"]}.items():
        code, _, err = tcc_cli("run", *args, "--inputs", tmp_path / "in.npz", "-o", tmp_path / f"{label}.npz")
        assert code == 0, err
        outs[label] = np.load(tmp_path / f"{label}.npz")["logits"]
    np.testing.assert_array_equal(outs["sim"], outs["ref"])
    np.testing.assert_array_equal(outs["sim"], outs["ir"])
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cycles"] >= report["roofline_cycles"] > 0
    assert {"cycles", "roofline_cycles", "target", "layers"} <= set(report)
    code, out, _ = tcc_cli("disasm", tmp_path / "m.tcc")
    assert code == 0 and "halt" in out and "matmul conv" in out
    (tmp_path / "p.s").write_text(out)
    code, _, err = tcc_cli("asm", tmp_path / "p.s", "-o", tmp_path / "p.bin")
    assert code == 0, err
    assert (tmp_path / "p.bin").read_bytes() == Artifact.load(tmp_path / "m.tcc").program.astype("<u8").tobytes()


def test_cli_errors(tmp_path, tcc_cli):
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "-o", tmp_path / "m.tcc")
    assert code == 2 and "--calib" in err
    (tmp_path / "bad.tcc").write_bytes(b"TCCARTF\0" + b"\0" * 10)
    code, _, err = tcc_cli("run", tmp_path / "bad.tcc", "-o", tmp_path / "o.npz")
    assert code == 2 and "error:" in err and "Traceback" not in err


def resize_model(path):
    """conv -> relu -> {nearest, linear} 2x resize -> concat: int8 moves, a bf16 linear resize, a concat."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Resize", ["r", "", "scales"], ["up"], mode="nearest", name="up"),
             helper.make_node("Resize", ["r", "", "scales"], ["lin"], mode="linear", name="lin"),
             helper.make_node("Concat", ["up", "lin"], ["y"], axis=1, name="cat")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 20, 24])], [w, scales])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return rng


def test_nearest_and_linear_resizes_run_on_the_overlay_bit_exact(tmp_path):
    """A nearest resize is an int8 move; a linear one becomes two interpolation-matrix products on
    the systolic array (resize-as-matmul), so nothing runs on the host, and the simulator equals
    the integer reference bit for bit and stays close to float onnxruntime."""
    import onnxruntime as ort

    rng = resize_model(tmp_path / "m.onnx")
    module = quantized(str(tmp_path / "m.onnx"), random_calibration({"x": np.zeros((1, 3, 10, 12))},
                                                                    tmp_path / "c.npz", samples=4))
    kinds = [op.kind for op in module.ops]
    assert kinds.count("resize") == 1 and kinds.count("qlinear") == 2 and "concat" in kinds
    session = Session(compile_overlay(module))  # one device program: compile_overlay refuses host ops
    x = {"x": rng.standard_normal((1, 3, 10, 12)).astype(np.float32)}
    got = session.run(None, x)[0]
    np.testing.assert_array_equal(got, run_module(module, x)["y"])
    want = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, x)[0]
    assert sqnr_db(want, got) > 25  # random calibration data: 26.6 dB


def test_illegal_instruction_stops_with_its_pc(digits_artifact, tmp_path, tcc_cli):
    path, _ = digits_artifact
    artifact = Artifact.load(path)
    program = artifact.program.copy()
    program[5] = np.uint64(0x3F << 58)  # opcode 0x3f does not exist
    Artifact(artifact.metadata, program, artifact.dram_image, artifact.ir_text).save(tmp_path / "bad.tcc")
    test = np.load("examples/digits/digits_test.npz")
    np.savez(tmp_path / "in.npz", input=test["input"][:1])
    code, _, err = tcc_cli("run", tmp_path / "bad.tcc", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert code == 2 and "pc 5" in err and "illegal instruction" in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_out_of_bounds_dma_stops_with_its_pc(digits_artifact, tmp_path):
    from tcc.isa import Instruction, decode, encode
    from tcc.isa.errors import SimulatorTrap

    path, _ = digits_artifact
    artifact = Artifact.load(path)
    program = artifact.program.copy()
    pc = next(i for i, word in enumerate(program) if decode(int(word)).mnemonic == "load")
    program[pc] = np.uint64(encode(Instruction.of("load", "abuf", sram=0, dram=(1 << 31) - 64)))
    session = Session(Artifact(artifact.metadata, program, artifact.dram_image, artifact.ir_text))
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    with pytest.raises(SimulatorTrap, match=rf"pc {pc}\b.*dram"):
        session.run(None, x)


@pytest.mark.parametrize("flags", [["--weights", "dybit4"], ["--weights", "dybit6"], ["--weights", "int4"],
                                   ["--quant", "mixed", "--budget-bytes", "5000", "--candidates", "int8,int2,dybit4"]])
def test_low_bit_and_mixed_weights_run_bit_exact(flags, tmp_path, tcc_cli):
    test = np.load("examples/digits/digits_test.npz")
    np.savez(tmp_path / "in.npz", input=test["input"][:1])
    code, _, err = tcc_cli("compile", DIGITS, "-t", "overlay", "--calib", "examples/digits/digits_calib.npz",
                           *flags, "-o", tmp_path / "m.tcc")
    assert code == 0, err
    for label, extra in (("sim", []), ("ref", ["--reference"])):
        code, _, err = tcc_cli("run", tmp_path / "m.tcc", *extra, "--inputs", tmp_path / "in.npz",
                               "-o", tmp_path / f"{label}.npz")
        assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "sim.npz")["logits"], np.load(tmp_path / "ref.npz")["logits"])


def _conv_add_session(tmp_path):
    """conv + a constant tensor (an int8 add: ``eadd``): its Session, quantized module and an input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    pos = numpy_helper.from_array(rng.standard_normal((1, 8, 6, 6)).astype(np.float32), "pos")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Add", ["c", "pos"], ["y"], name="add_pos")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])], [w, pos])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "m.onnx"))
    module = quantized(str(tmp_path / "m.onnx"),
                       random_calibration({"x": np.zeros((1, 3, 6, 6))}, tmp_path / "c.npz", samples=4))
    x = {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)}
    return Session(compile_overlay(module)), module, x


def test_constant_operand_of_an_int8_add(tmp_path):
    """conv + a constant tensor (a position-embedding-like add): the constant lives with the weights."""
    session, module, x = _conv_add_session(tmp_path)
    np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["y"])


@pytest.mark.parametrize("impl, rule", [("impl_quant", "Requantizer"), ("impl_quant", "AffineRequantizer"),
                                        ("impl_pool", "rounded_mean"), ("weight_decode", "code_values")])
def test_a_one_lsb_error_in_the_simulator_datapath_breaks_bit_exactness(digits_artifact, off_by_one_lsb, impl, rule):
    """The simulator shares only the rounding rules with the reference, not its kernels: a
    deliberate one-bit error in the simulator's requantizer or average pool must show.  requant's
    whole stage (input centring, bias, rounding) is AffineRequantizer; numerics.Centring alone is
    eadd's input stage, where one LSB after the 2**pre_shift scaling is below the output's step."""
    import importlib

    path, _ = digits_artifact
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    session = Session(path)
    np.testing.assert_array_equal(session.run(None, x)[0], session.run_reference(x)["logits"])
    off_by_one_lsb(importlib.import_module(f"tcc.isa.simulator.{impl}"), rule)
    session = Session(path)  # a fresh machine: a prepared program holds the requantizers it made
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(session.run(None, x)[0], session.run_reference(x)["logits"])


@pytest.mark.parametrize("backend", ["float", "int8", "native"])
def test_a_one_bit_error_in_the_fast_product_breaks_bit_exactness(digits_artifact, monkeypatch, backend):
    """Each of the matrix unit's fast paths (float BLAS, exact_product.py; the int8 kernel,
    int8_kernel.py; the C kernel of small products, native.c mm) is checked by the model-level
    comparison on its own: the simulator equals the reference with that path carrying the
    products, and the lowest bit of every product it makes (the C kernel: every accumulator it
    writes) flipped must show in the logits."""
    import types

    import tcc.isa.simulator.exact_product as exact_product
    import tcc.isa.simulator.int8_kernel as int8_kernel
    from tcc.isa.simulator import native

    monkeypatch.setattr(int8_kernel, "enabled", backend == "int8")
    monkeypatch.setattr(int8_kernel, "MIN_MACS", 0)  # every product the kernel can take, small ones too
    monkeypatch.setattr(int8_kernel, "MIN_DEPTH", 0)
    real_kernels, calls, flip = native.kernels(), [], [0]
    if backend != "native":  # (the C kernel would take the small products)
        monkeypatch.setattr(native, "enabled", False)
        module, name = (int8_kernel, "product") if backend == "int8" else (exact_product, "float_product")
        real = getattr(module, name)

        def product(*args):
            result = real(*args)
            calls.append(1)
            if not flip[0] or result is None:
                return result
            return result + 1 if result.dtype.kind == "f" else result ^ 1  # float a @ w.T, or the kernel's int32

        monkeypatch.setattr(module, name, product)
    elif real_kernels is not None:
        def mm(*args):
            result = real_kernels.mm(*args)
            calls.append(1)
            if flip[0] and result is None:
                args[0][...] ^= 1  # the accumulators it wrote
            return result

        def step(kind, *operands):  # an MM step would run the unbroken product: refused, so the broken one runs
            if kind == real_kernels.STEP_MM:
                raise ValueError("a broken mm")
            return real_kernels.step(kind, *operands)

        monkeypatch.setattr(native, "kernels",
                            lambda: types.SimpleNamespace(**{**vars(real_kernels), "mm": mm, "step": step}))
    path, _ = digits_artifact
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    session = Session(path)
    np.testing.assert_array_equal(session.run(None, x)[0], session.run_reference(x)["logits"])
    # the path ran (the int8 kernel wherever this machine's is exact: int8_kernel.py's probe; the C kernel
    # where it is built)
    assert calls or backend == "int8" and not int8_kernel.usable(1, 0, 128) or backend == "native" and not real_kernels
    flip[0] = 1
    if calls:
        with pytest.raises(AssertionError):
            np.testing.assert_array_equal(session.run(None, x)[0], session.run_reference(x)["logits"])


@pytest.fixture(scope="module")
def digits_by_format():
    """The digits CNN compiled with each weight format: {format: (artifact, quantized module)}."""
    out = {}
    for fmt in ("int8", "dybit6", "int4", "dybit4", "dybit3", "dybit2"):
        module, _ = compile_to_ir(DIGITS, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(
            "examples/digits/digits_calib.npz", weights=fmt))
        out[fmt] = compile_overlay(module), module
    return out


def test_weight_bytes_and_cycles_fall_with_the_bit_width(digits_by_format):
    """Packed codes and the PE model (docs/overlay-machine.md): fewer bits, fewer bytes and cycles."""
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    costs = {}
    for fmt, (artifact, module) in digits_by_format.items():
        session = Session(artifact)
        np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])
        layers = [layer for layer in artifact.metadata["layers"] if "weight_bytes" in layer]
        assert all(layer["weight_format"].startswith(fmt) for layer in layers)  # dybitN or dybitNcK
        costs[fmt] = (sum(layer["weight_bytes"] for layer in layers), session.last_result.cycles)
    bits = {"int8": 8, "dybit6": 6, "int4": 4, "dybit4": 4, "dybit3": 3, "dybit2": 2}
    weights = 144 + 4608 + 288 + 1024 + 320
    for fmt, (nbytes, _) in costs.items():  # every row packs densely (the 1-channel stem's 9 taps pad a little)
        assert weights * bits[fmt] / 8 <= nbytes <= weights * bits[fmt] / 8 + 5 * 32
    order = ["int8", "dybit6", "int4", "dybit2"]
    assert all(costs[a][0] > costs[b][0] and costs[a][1] > costs[b][1] for a, b in zip(order, order[1:]))
    assert costs["int4"] == costs["dybit4"]  # same code width: same bytes and PE rate


@pytest.mark.parametrize("fmt", ["int4", "dybit4", "dybit3"])
def test_a_one_bit_error_in_the_weight_decoder_breaks_bit_exactness(digits_by_format, monkeypatch, fmt):
    """The simulator unpacks the codes itself (it shares only the code tables with the packer):
    reading each code with its lowest bit flipped must show."""
    from tcc.isa.simulator import weight_decode

    artifact, module = digits_by_format[fmt]
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    session = Session(artifact)
    np.testing.assert_array_equal(session.run(None, x)[0], run_module(module, x)["logits"])
    real = weight_decode.unpack_codes
    monkeypatch.setattr(weight_decode, "unpack_codes", lambda rows, k, bits: real(rows, k, bits) ^ 1)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(Session(artifact).run(None, x)[0], run_module(module, x)["logits"])


@pytest.fixture(scope="module")
def digits_row_caps():
    """The digits CNN with a DyBit-4 cap per output channel (dybit4r): (artifact, quantized module)."""
    module, _ = compile_to_ir(DIGITS, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(
        "examples/digits/digits_calib.npz", weights="dybit4r"))
    return compile_overlay(module), module


def test_per_row_caps_run_bit_exact_and_a_wrong_cap_or_code_shows(digits_row_caps, monkeypatch):
    """Each weight row's cap travels in pbuf beside its requantization triple (matmul wcap = 7,
    mm.wcaps); the simulator's decoder reads it per row: a cap read with bit 1 flipped, or codes
    with their lowest bit flipped, must show."""
    from tcc.isa.disassembler import disassemble
    from tcc.isa.simulator import impl_matrix, weight_decode

    artifact, module = digits_row_caps
    caps = [set(op.result.type.quant.caps) for op in module.ops
            if op.kind == "const" and op.result.type.quant is not None and op.result.type.quant.caps]
    assert len(caps) == 5 and set().union(*caps) > {0}  # five weight layers, rows of several caps
    text = disassemble(artifact.program)
    assert "dybit4, 7," in text and "setr mm.wcaps" in text
    layers = [layer for layer in artifact.metadata["layers"] if "weight_bytes" in layer]
    assert {layer["weight_format"] for layer in layers} == {"dybit4r"}
    x = {"input": np.load("examples/digits/digits_test.npz")["input"][:1]}
    np.testing.assert_array_equal(Session(artifact).run(None, x)[0], run_module(module, x)["logits"])
    real_decode, real_unpack = impl_matrix.decode_rows, weight_decode.unpack_codes
    wrong_cap = (impl_matrix, "decode_rows", lambda rows, k, fmt, caps=None: real_decode(
        rows, k, fmt, None if caps is None else np.asarray(caps) ^ 2))  # 0 <-> 2, 1 <-> 3 (cap 1 is cap 0's grid)
    wrong_code = (weight_decode, "unpack_codes", lambda rows, k, bits: real_unpack(rows, k, bits) ^ 1)
    for where, name, broken in (wrong_cap, wrong_code):
        with monkeypatch.context() as patch:
            patch.setattr(where, name, broken)
            with pytest.raises(AssertionError):
                np.testing.assert_array_equal(Session(artifact).run(None, x)[0], run_module(module, x)["logits"])
