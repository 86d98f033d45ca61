"""Several cores: the compiler spreads conv/gemm/eadd/pool/concat/lut/requant/vector/conversion work over one instruction stream per
core with a barrier after each step; the simulator runs the cores over shared DRAM.  Outputs are
bit-identical to one core and to the integer reference."""
from dataclasses import replace

import numpy as np
import pytest

import light_zoo
from tcc.backends.overlay import compile_overlay
from tcc.driver import compile_to_ir, quantization_pipeline
from tcc.ir.interpreter import run_module
from tcc.isa.target import load_target
from tcc.passes import DEFAULT_FLOAT_PIPELINE
from tcc.runtime import Session

TARGET = load_target()


def _quantized(tmp_path, rng, nodes, weights, x_shape, y_shape, opset):
    """The graph of ``nodes`` (input x, output y) quantized on two random samples, and a third as inputs."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((2, *x_shape)).astype(np.float32))
    module, _ = compile_to_ir(str(tmp_path / "m.onnx"),
                              passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "c.npz")))
    return module, {"x": rng.standard_normal(x_shape).astype(np.float32)}


def test_squeezenet_on_three_cores_is_bit_identical_to_one_and_faster(tmp_path, monkeypatch):
    model = light_zoo.randomized("squeezenet", expose_logits=True)
    inputs = light_zoo.model_inputs(model)
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "calib.npz", **{k: rng.standard_normal((2,) + v.shape).astype(np.float32)
                                        for k, v in inputs.items()})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "calib.npz")))
    reference = run_module(module, inputs)
    runs, reports = {}, {}
    for cores in (1, 3):
        session = Session(compile_overlay(module, replace(TARGET, cores=cores)))
        runs[cores] = session.run_dict(inputs), session.last_result
        reports[cores] = session.performance_report()
    for key in reference:
        np.testing.assert_array_equal(runs[3][0][key], runs[1][0][key])
        np.testing.assert_array_equal(runs[3][0][key], reference[key])
    one, three = runs[1][1], runs[3][1]
    assert three.cores == 3 and three.cycles < 0.7 * one.cycles
    assert three.macs == one.macs
    for split in three.unit_cycles.values():  # summed over the cores
        assert sum(split.values()) == 3 * three.cycles
    assert sum(three.front_cycles.values()) == 3 * three.cycles
    # the report's bound and utilization count all three cores' PEs
    assert reports[3]["roofline_cycles"] < reports[1]["roofline_cycles"] <= reports[3]["cycles"] * 3
    assert reports[3]["pe_utilization"] == three.macs / (3 * TARGET.peak_macs_per_cycle * three.cycles)
    assert "units busy/stall/idle" in Session.format_performance(reports[3])
    # the session keeps its cores: a run on new data prepares nothing again and stays exact
    import tcc.isa.simulator.run as simulator_run

    prepared = []
    monkeypatch.setattr(simulator_run, "prepare", lambda *args: prepared.append(args) or pytest.fail("re-prepared"))
    other = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in inputs.items()}
    again = session.run_dict(other)
    for key, value in run_module(module, other).items():
        np.testing.assert_array_equal(again[key], value)
    assert session.last_result == three and not prepared
    monkeypatch.undo()
    # a batch of both inputs on the cores at once (the cores' buffers and the DRAM with a sample axis)
    batched = session.run(None, {k: np.concatenate([inputs[k], other[k]]) for k in inputs})
    for name, value in zip(session.output_names(), batched):
        np.testing.assert_array_equal(value, np.concatenate([runs[3][0][name], again[name]]))
    assert session.last_result == three


def test_concat_and_lookup_steps_are_spread_over_the_cores(tmp_path):
    """A concatenation's operands and an element-wise table lookup's tiles go to several cores
    (each core its share; the outputs bit-identical to one core's and to the reference), and the
    operands are shared largest first to the least loaded core."""
    from onnx import helper, numpy_helper

    from tcc.backends.overlay.emit_move import balanced_share
    from tcc.isa.disassembler import disassemble

    assert [balanced_share([5, 1, 1, 3], core, 2) for core in range(2)] == [{0}, {1, 2, 3}]
    assert balanced_share([4, 4, 4], 0, 1) == {0, 1, 2}
    rng = np.random.default_rng(5)
    weights = [numpy_helper.from_array((rng.standard_normal((c, 16, 1, 1)) * 0.2).astype(np.float32), f"w{i}")
               for i, c in enumerate((48, 16, 8))]
    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"c{i}"], name=f"conv{i}") for i in range(3)]
    nodes += [helper.make_node("Sigmoid", ["c0"], ["s0"]), helper.make_node("Concat", ["s0", "c1", "c2"], ["y"], axis=1)]
    module, inputs = _quantized(tmp_path, rng, nodes, weights, (1, 16, 40, 40), (1, 72, 40, 40), 13)
    reference = run_module(module, inputs)
    outputs = {}
    for cores in (1, 3):
        artifact = compile_overlay(module, replace(TARGET, cores=cores))
        outputs[cores] = Session(artifact).run_dict(inputs)
        if cores == 3:
            entries = artifact.metadata["core_entries"] + [len(artifact.program)]
            streams = [disassemble(artifact.program[a:b], with_pc=False).splitlines() for a, b in zip(entries, entries[1:])]
            for mnemonic in ("lut", "store"):  # every core looks up and stores its share
                assert all(any(line.split()[0] == mnemonic for line in s if line.strip()) for s in streams), mnemonic
    for key in reference:
        np.testing.assert_array_equal(outputs[3][key], outputs[1][key])
        np.testing.assert_array_equal(outputs[3][key], reference[key])


def test_vector_steps_and_their_conversions_are_spread_over_the_cores(tmp_path):
    """bf16 work (an LRN over channels in column tiles, a softmax in row tiles, a GroupNorm(1) row
    too long for vbuf in column passes) and the int8 <-> bf16 conversions around it: each core its
    share, outputs bit-identical to one core's and to the integer reference, and fewer cycles."""
    from onnx import helper, numpy_helper

    from tcc.isa.disassembler import disassemble

    rng = np.random.default_rng(8)
    weights = [numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)
               for name, shape in (("w0", (32, 8, 3, 3)), ("w1", (24, 32, 1, 1)))]
    weights += [numpy_helper.from_array(np.ones(32, np.float32), "gs"), numpy_helper.from_array(np.zeros(32, np.float32), "gb")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("LRN", ["c0"], ["l"], size=5, alpha=1e-4, beta=0.75, bias=1.0),
             helper.make_node("GroupNormalization", ["l", "gs", "gb"], ["g"], num_groups=1),
             helper.make_node("Conv", ["g", "w1"], ["c1"]),
             helper.make_node("Softmax", ["c1"], ["y"], axis=-1)]
    module, inputs = _quantized(tmp_path, rng, nodes, weights, (1, 8, 48, 48), (1, 24, 48, 48), 21)
    reference = run_module(module, inputs)
    outputs, cycles = {}, {}
    for cores in (1, 3, 8):  # on 8 some cores' share of an op's tiles is one tile of several
        artifact = compile_overlay(module, replace(TARGET, cores=cores))
        session = Session(artifact)
        outputs[cores], cycles[cores] = session.run_dict(inputs), session.last_result.cycles
        if cores == 3:
            entries = artifact.metadata["core_entries"] + [len(artifact.program)]
            streams = [disassemble(artifact.program[a:b], with_pc=False).splitlines() for a, b in zip(entries, entries[1:])]
            for mnemonic in ("vbin", "cvt"):  # every core runs vector instructions and conversions
                assert all(any(line.split()[0] == mnemonic for line in s if line.strip()) for s in streams), mnemonic
    for key in reference:
        for cores in (3, 8):
            np.testing.assert_array_equal(outputs[cores][key], outputs[1][key])
        np.testing.assert_array_equal(outputs[1][key], reference[key])
    assert cycles[8] < cycles[3] < 0.8 * cycles[1], cycles


def test_a_concat_operand_larger_than_a_cores_share_is_split_over_the_cores(tmp_path):
    """DenseNet's concatenations join the block's large running tensor and a 32-channel one: the large
    operand went whole to one core while the others waited.  Now every core moves a share of its
    tiles: the concat step takes well under the one-core time, outputs identical."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(6)
    weights = [numpy_helper.from_array((rng.standard_normal((c, 16, 1, 1)) * 0.2).astype(np.float32), f"w{i}")
               for i, c in enumerate((96, 8))]
    nodes = [helper.make_node("Conv", ["x", f"w{i}"], [f"c{i}"], name=f"conv{i}") for i in range(2)]
    nodes += [helper.make_node("Concat", ["c0", "c1"], ["y"], axis=1, name="cat")]
    module, inputs = _quantized(tmp_path, rng, nodes, weights, (1, 16, 48, 48), (1, 104, 48, 48), 13)
    outputs, concat_cycles = {}, {}
    for cores in (1, 4):
        session = Session(compile_overlay(module, replace(TARGET, cores=cores)))
        outputs[cores] = session.run_dict(inputs)
        concat_cycles[cores] = sum(layer["cycles"] for layer in session.performance_report()["layers"]
                                   if layer.get("kind") == "concat")
    np.testing.assert_array_equal(outputs[4]["y"], outputs[1]["y"])
    np.testing.assert_array_equal(outputs[1]["y"], run_module(module, inputs)["y"])
    assert 0 < concat_cycles[4] < 0.5 * concat_cycles[1], concat_cycles
