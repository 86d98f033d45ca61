"""Work that crosses layers on the overlay: a conv's weights loaded at the end of the last
compute-bound layer before it, or in pieces over the latency-bound layers before it
(Context.early_weights), and a conv's last store left for the next
conv to emit after its first input load (emit_matrix._LaterStore.hand_over).  Both keep the
simulator equal to the integer reference."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import block_models
from test_cycles_roofline import cycles_over_roofline

from overlay_run import run_wholly_on_the_overlay
from tcc.backends.overlay.program import Program
from tcc.isa.disassembler import disassemble
from tcc.runtime import open_session


def registers_seen(instructions) -> list[tuple[str, dict]]:
    """Each non-setr instruction with the nonzero register values it runs under (all start at 0)."""
    regs, out = {}, []
    for mnemonic, fields in instructions:
        if mnemonic == "setr":
            regs[fields["reg"]] = fields["value"]
        else:
            out.append((mnemonic, {name: value for name, value in regs.items() if value}))
    return out


def test_a_load_placed_at_a_mark_leaves_every_later_instruction_its_registers():
    p = Program()
    p.dma("load", "abuf", 0, 0, rows=4, row_bytes=96, dram_row=128, sram_row=96)
    mark = p.mark()
    p.set({"mm.m": 7})
    p.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=640)
    p.emit("matmul", mode="gemm", accumulate=0, wfmt="int8", wcap=0, acc=0, w=0)
    before = registers_seen(p.instructions)
    p.load_at(mark, "wbuf", 8192, 65536, 300, layer=5)
    after = registers_seen(p.instructions)
    inserted = [i for i, (m, regs) in enumerate(after) if m == "load" and regs.get("dma.row_bytes") == 300]
    assert len(inserted) == 1 and inserted[0] == 1  # right after the first load
    assert after[1][1]["sys.layer"] == 5  # counted for the layer whose weights it loads
    assert after[:1] + after[2:] == before
    assert (p.wbuf_writes[0][1:], p.wbuf_writes[1][1:]) == ((8192, 8192 + 300), (0, 640))


H, W = 32, 36  # maps of 64 channels larger than half an abuf quarter: each layer loads its input


def block():
    """A compute-bound 3x3 conv, a DRAM-bound depthwise conv, a 1x1 conv: ShuffleNet's pattern."""
    rng = np.random.default_rng(2)
    shapes = {"w1": (64, 32, 3, 3), "w2": (64, 1, 3, 3), "w3": (64, 64, 1, 1)}
    weights = [numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), n) for n, s in shapes.items()]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="conv3x3"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["d"], pads=[1, 1, 1, 1], group=64, name="depthwise"),
             helper.make_node("Conv", ["d", "w3"], ["y"], name="pointwise")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, H, W])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_weights_load_early_and_stores_wait_for_the_next_conv_and_stay_bit_exact(tmp_path):
    run_wholly_on_the_overlay(block(), tmp_path, np.random.default_rng(4), 25.0)
    session = open_session(tmp_path / "m.tcc")
    lines = disassemble(session.artifact.program, with_pc=False).splitlines()
    dw = next(i for i, line in enumerate(lines) if line.startswith("matmul dwconv"))
    slab = max(i for i in range(dw) if lines[i].startswith("load abuf"))  # the depthwise conv's first input
    wbuf_loads = [i for i, line in enumerate(lines) if line.startswith("load wbuf")]
    # the later convs load no weights in their own code: the first conv's code loads its own and
    # theirs (each counted for its own layer), before the depthwise conv's first input load
    assert len(wbuf_loads) == 3 and all(i < slab for i in wbuf_loads)
    counted_for = {int(lines[max(j for j in range(i) if lines[j].startswith("setr sys.layer"))].split(", ")[1])
                   for i in wbuf_loads[1:]}
    assert counted_for == {1, 2}
    # the first conv's last store, after the depthwise conv's first input load, counted for the first conv
    assert any(lines[j].startswith("store") and "setr sys.layer, 0" in lines[slab:j] for j in range(slab, dw))
    session.run(None, {"x": np.zeros((1, 32, H, W), np.float32)})
    layers = session.performance_report()["layers"]
    assert [layer["bytes_stored"] for layer in layers] == [H * W * 64] * 3  # each counted for its own layer
    assert all(layer["cycles"] >= layer["roofline_cycles"] for layer in layers)


def test_a_large_weight_tile_loads_in_pieces_over_the_small_layers_before_it(tmp_path):
    model = block_models.tail_conv_cnn()
    cycles_over_roofline(model, tmp_path)  # compiles; simulator == integer reference
    lines = disassemble(open_session(tmp_path / "m.tcc").artifact.program, with_pc=False).splitlines()
    counted = layer_of_each(lines)
    last = max(counted)
    begins = counted.index(last)  # where the last conv's pieces start
    own = own_code(lines, counted, last)
    pieces = [i for i in range(begins, own) if counted[i] == last and lines[i].startswith("load wbuf")]
    # several pieces, each after a different earlier layer's code, none before an activation load it
    # would hold back on the load unit
    assert len(pieces) >= 3
    assert len({max(counted[j] for j in range(i) if counted[j] != last) for i in pieces}) == len(pieces)
    for i in pieces:
        following = next((j for j in range(i + 1, own) if lines[j].startswith("load ") and counted[j] != last), own)
        assert not lines[following].startswith(("load abuf", "load vbuf")) or following == own


def test_a_dram_bound_products_later_weight_chunks_load_early_too(tmp_path):
    """ConvNeXt-T's last stage: a product of 4 rows over 64 KB of weights in K chunks of 16 KB is
    DRAM-bound; the chunks after the first load early too, each whole at one earlier layer's end
    that leaves the channel idle, up to LATER_CHUNK_MARK_STEPS steps back (Context.early_weights
    with ``whole``), and the model stays bit-exact."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "real_models"))
    import measure

    artifact, _ = measure.compile_overlay("convnext_t", tmp_path)
    session = open_session(artifact)
    feeds = measure.samples("convnext_t", "test")[0]
    for got, want in zip(session.run(None, feeds), session.run_reference(feeds).values()):
        np.testing.assert_array_equal(got, want)
    lines = disassemble(session.artifact.program, with_pc=False).splitlines()
    counted = layer_of_each(lines)
    product = next(i for i, layer in enumerate(session.artifact.metadata["layers"])
                   if layer["name"] == "node_MatMul_21" and layer.get("kind") == "gemm")
    own = own_code(lines, counted, product)
    early = [i for i in range(own) if counted[i] == product and lines[i].startswith("load wbuf")]
    assert len(early) == 4  # every chunk (the first alone before)
    # the next product's first tile loads its parameters after its last chunk's matmul: the post unit
    # still requantizes (and looks up GELU for) this product then, reading the same pbuf half, and a
    # parameter load waiting for it would hold back the chunks loading behind it on the load unit
    second = next(i for i, layer in enumerate(session.artifact.metadata["layers"])
                  if layer["name"] == "node_MatMul_23" and layer.get("kind") == "gemm")
    code = [line for i, line in enumerate(lines) if i >= own_code(lines, counted, second) and counted[i] == second]
    first_params = next(i for i, line in enumerate(code) if line.startswith("load pbuf"))
    matmuls = [i for i, line in enumerate(code) if line.startswith("matmul")]
    assert len(matmuls) == 4 and matmuls[-1] < first_params
    assert all(i < first_params for i, line in enumerate(code) if line.startswith("load wbuf"))


def own_code(lines: list[str], counted: list[int], layer: int) -> int:
    """Where ``layer``'s own code begins (its ``setr sys.layer``): the last one before its first
    matmul, going back over the store the layer before handed over (LaterStore), which is emitted
    inside that code, counted for the layer before."""
    switches = [i for i in range(lines.index(next(line for i, line in enumerate(lines)
                                                   if counted[i] == layer and line.startswith("matmul"))))
                if lines[i].startswith("setr sys.layer")]
    at = len(switches) - 1
    while at >= 2 and counted[switches[at - 1]] != layer and counted[switches[at - 2]] == layer:
        between = lines[switches[at - 1]:switches[at]]
        if not (all(line.startswith(("setr", "store")) for line in between)
                and any(line.startswith("store") for line in between)):
            break
        at -= 2  # a handed-over store between two stretches of the layer's own code
    return switches[at]


def layer_of_each(lines: list[str]) -> list[int]:
    """The layer (sys.layer) each disassembled instruction counts for."""
    layer, counted = 0, []
    for line in lines:
        if line.startswith("setr sys.layer"):
            layer = int(line.split(", ")[1])
        counted.append(layer)
    return counted


@pytest.mark.parametrize("stride", [2, 1])  # stride 1: a separable pool, columns' maxima first
def test_a_max_pool_reads_the_map_a_conv_left_on_chip_where_it_lies(stride, tmp_path):
    cycles_over_roofline(block_models.stem_pool_cnn(pool_stride=stride), tmp_path)  # simulator == integer reference
    lines = disassemble(open_session(tmp_path / "m.tcc").artifact.program, with_pc=False).splitlines()
    counted = layer_of_each(lines)
    conv = [line for line, layer in zip(lines, counted) if layer == 0]
    pool = [line for line, layer in zip(lines, counted) if layer == 1]
    assert sum(line.startswith("pool max") for line in pool) >= 2  # several row tiles
    # no load, copy or store of the conv's map: the pool reads it where the conv's requantize put it
    assert not any(line.startswith(("load abuf", "copy abuf")) for line in pool)
    assert not any(line.startswith("store") for line in conv)
    # each pool tile writes its own place of the output map (the 1x1 conv after reads it in place
    # where its own output map fits half a quarter: at stride 2)
    assert len({line for line in pool if line.startswith("pool max")}) == sum(line.startswith("pool max") for line in pool)
    if stride == 2:
        assert not any(line.startswith("load abuf") for line, layer in zip(lines, counted) if layer == 2)
