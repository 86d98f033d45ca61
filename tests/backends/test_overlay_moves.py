"""Data movement the overlay runs as layout moves: depth_to_space / space_to_depth (sub-pixel
upsampling, YOLO-style focus), tile, and reflect / edge pads (style-transfer and GAN generators pad
by reflection before each conv): each copies input elements, so the move step gathers them by the op's
own reference kernel.  Whole models on the device, simulator == integer reference bit for bit,
close to float onnxruntime."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay


def _model(nodes, shape, inits):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _w(rng, *shape):
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _espcn(rng, mode):
    """ESPCN: conv, tanh, conv to 3*3*2 channels, DepthToSpace(3) (PixelShuffle is CRD, DCR the default)."""
    return _model([helper.make_node("Conv", ["x", "w0"], ["a"], pads=[2, 2, 2, 2]), helper.make_node("Tanh", ["a"], ["t"]),
                   helper.make_node("Conv", ["t", "w1"], ["b"], pads=[1, 1, 1, 1]),
                   helper.make_node("DepthToSpace", ["b"], ["y"], blocksize=3, mode=mode)],
                  (1, 1, 12, 12), {"w0": _w(rng, 16, 1, 5, 5), "w1": _w(rng, 18, 16, 3, 3)})


def _focus(rng, _mode):
    """YOLOv5's focus stem: SpaceToDepth(2), conv; then a Tile of the map (2x along width), conv."""
    return _model([helper.make_node("SpaceToDepth", ["x"], ["s"], blocksize=2),
                   helper.make_node("Conv", ["s", "w0"], ["a"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a"], ["r"]),
                   helper.make_node("Tile", ["r", "reps"], ["t"]),
                   helper.make_node("Conv", ["t", "w1"], ["y"], pads=[1, 1, 1, 1])],
                  (1, 3, 16, 16), {"w0": _w(rng, 8, 12, 3, 3), "w1": _w(rng, 4, 8, 3, 3),
                                   "reps": np.array([1, 1, 1, 2], np.int64)})


def _reflect(rng, mode):
    """A style-transfer block: pad by reflection (or edge, or zeros: TF exports' explicit pads), conv (no
    padding), ReLU, pad, conv."""
    pads = np.array([0, 0, 2, 1, 0, 0, 1, 2], np.int64)
    return _model([helper.make_node("Pad", ["x", "p"], ["xp"], mode=mode),
                   helper.make_node("Conv", ["xp", "w0"], ["a"]), helper.make_node("Relu", ["a"], ["r"]),
                   helper.make_node("Pad", ["r", "p"], ["rp"], mode=mode),
                   helper.make_node("Conv", ["rp", "w1"], ["y"])],
                  (1, 3, 16, 16), {"p": pads, "w0": _w(rng, 8, 3, 4, 4), "w1": _w(rng, 4, 8, 4, 4)})


@pytest.mark.parametrize("build, mode", [(_espcn, "DCR"), (_espcn, "CRD"), (_focus, ""), (_reflect, "reflect"),
                                         (_reflect, "edge"), (_reflect, "constant")])
def test_moves_run_wholly_on_the_overlay(build, mode, tmp_path):
    rng = np.random.default_rng(8)
    run_wholly_on_the_overlay(build(rng, mode), tmp_path, rng, min_sqnr=25)


PADS = [("reflect", [0, 0, 2, 1, 0, 0, 1, 3]), ("edge", [0, 1, 3, 0, 0, 2, 0, 1]), ("wrap", [0, 0, 2, 3, 0, 0, 1, 4]),
        ("reflect", [0, 0, 0, 4, 0, 0, 0, 4]), ("constant", [0, 2, 1, 0, 0, 1, 0, 3])]


@pytest.mark.parametrize("mode, pads", PADS)
def test_pad_as_concat_matches_onnxruntime(mode, pads):
    import onnxruntime as ort

    from tcc.driver import compile_to_ir
    from tcc.ir.interpreter import run_module
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    value = {"v": np.array(-0.75, np.float32)} if mode == "constant" else {}  # a pad value other than 0
    model = _model([helper.make_node("Pad", ["x", "p", *value], ["y"], mode=mode)], (1, 3, 5, 6),
                   {"p": np.array(pads, np.int64), **value})
    model.opset_import[0].version = 19  # wrap
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("pad-as-concat", "dce"))
    assert "pad" not in [op.kind for op in module.ops]
    x = np.random.default_rng(1).standard_normal((1, 3, 5, 6)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(run_module(module, {"x": x})["y"], want)


@pytest.mark.parametrize("pads", [[0, 0, 2, 1, 0, 0, 1, 3], [0, 0, 0, 1, 0, 0, 1, 0]])
def test_a_zero_pad_read_by_a_conv_becomes_its_padding(pads):
    """TF-style "SAME" exports: Pad then an unpadded Conv -> one conv with the pads (fold-pad), equal to
    onnxruntime; no pad and no concat is left to move data."""
    import onnxruntime as ort

    from tcc.driver import compile_to_ir
    from tcc.ir.interpreter import run_module
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    rng = np.random.default_rng(3)
    model = _model([helper.make_node("Pad", ["x", "p"], ["xp"]),
                    helper.make_node("Conv", ["xp", "w"], ["y"], pads=[1, 0, 0, 1], strides=[2, 2])],
                   (1, 3, 9, 8), {"p": np.array(pads, np.int64), "w": _w(rng, 4, 3, 3, 3)})
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + ("fold-pad", "pad-as-concat", "dce"))
    assert [op.kind for op in module.ops if op.kind not in ("const",)] == ["conv"]
    x = rng.standard_normal((1, 3, 9, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run_module(module, {"x": x})["y"], want, rtol=1e-5, atol=1e-5)


def test_a_tile_that_writes_more_than_an_abuf_quarter_from_a_small_source(tmp_path):
    """GCViT repeats its global query for every window: a move whose tile reads a few source elements
    but gathers many more destination elements.  Its staging area is one abuf quarter; the tile
    chunks are cut so the gathered elements fit it (a 200,704-byte gather ran past the quarter, and
    on timm's gcvit_xxtiny past abuf's end: a trap).  No copy of the program writes across a quarter
    boundary; the model runs wholly on the device, simulator == integer reference."""
    from tcc.backends.overlay import compile_overlay
    from tcc.driver import compile_to_ir, quantization_pipeline
    from tcc.isa.disassembler import disassemble
    from tcc.isa.target import load_target
    from tcc.passes import DEFAULT_FLOAT_PIPELINE

    rng = np.random.default_rng(11)
    model = _model([helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
                    helper.make_node("Tile", ["a", "reps"], ["t"]),  # 3,136 elements -> 200,704
                    helper.make_node("Conv", ["t", "w1"], ["y"])],
                   (1, 4, 14, 14), {"w0": _w(rng, 16, 4, 3, 3), "w1": _w(rng, 8, 16, 1, 1),
                                    "reps": np.array([1, 1, 1, 64], np.int64)})
    run_wholly_on_the_overlay(model, tmp_path, rng, 25.0)
    np.savez(tmp_path / "c2.npz", x=rng.standard_normal((2, 1, 4, 14, 14)).astype(np.float32))
    module, _ = compile_to_ir(model, passes=DEFAULT_FLOAT_PIPELINE + quantization_pipeline(str(tmp_path / "c2.npz")))
    quarter = load_target().abuf_bytes // 4
    regs, copies = {}, 0
    for line in disassemble(compile_overlay(module).program, with_pc=False).splitlines():
        words = line.replace(",", " ").split()
        if words[:1] == ["setr"]:
            regs[words[1]] = int(words[2], 0)
        elif words[:2] == ["copy", "abuf"]:
            dst = int(words[2], 0)
            last = dst + sum((regs.get(f"cp.n{i}", 1) - 1) * regs.get(f"cp.d{i}", 0) for i in range(4)) \
                + regs.get("cp.elem", 1) - 1
            assert dst // quarter == last // quarter, line
            copies += 1
    assert copies > 0
