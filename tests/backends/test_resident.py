"""Activations kept on chip (backends/overlay/resident.py): a load of what abuf still holds becomes
an on-chip copy (or no instruction, where the reader reads it in place), stores nothing reads are
dropped, and the simulator stays equal to the reference."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from overlay_run import run_wholly_on_the_overlay
from tcc.backends.overlay.memory import ActivationAddress
from tcc.backends.overlay.program import Program
from tcc.backends.overlay.resident import drop_unread_stores
from tcc.isa.disassembler import disassemble
from tcc.runtime import open_session

A = ActivationAddress


def mnemonics(p: Program) -> list[str]:
    return [m for m, _ in p.instructions if m != "setr"]


def test_a_load_of_what_abuf_holds_is_a_copy_from_where_it_is():
    p = Program(keep_on_chip=True)
    p.dma("store", "abuf", 0x40000, A(1000), rows=1, row_bytes=512)
    p.dma("load", "abuf", 0x100, A(1100), rows=4, row_bytes=16, dram_row=64, sram_row=16)
    (mnemonic, fields), = [i for i in p.instructions if i[0] != "setr"][1:]
    assert (mnemonic, fields["src"], fields["dst"]) == ("copy", 0x40000 + 100, 0x100)
    regs = {f["reg"]: f["value"] for m, f in p.instructions if m == "setr"}
    assert [regs[f"cp.n{i}"] for i in range(4)] == [1, 1, 4, 16]
    assert [regs[f"cp.s{i}"] for i in range(4)][1:] == [0, 64, 1] and regs["cp.d2"] == 16


def test_a_contiguous_box_of_planes_is_one_dma_row_and_stays_held():
    """Attention scores [3 heads, 65, 65] stored as planes of rows that are contiguous in both memories:
    one 12675-byte row (a beat per 64 bytes, not two per 65-byte row), which abuf is known to hold, so
    the conversion that loads them back reads them with a copy instead of waiting for the store."""
    p = Program(keep_on_chip=True)
    p.dma("store", "abuf", 0x40000, A(0), planes=3, rows=65, row_bytes=65, dram_row=65, sram_row=65,
          dram_plane=4225, sram_plane=4225)
    regs = {f["reg"]: f["value"] for m, f in p.instructions if m == "setr"}
    assert (regs["dma.planes"], regs["dma.rows"], regs["dma.row_bytes"]) == (1, 1, 3 * 65 * 65)
    p.dma("load", "abuf", 0x20000, A(0), rows=1, row_bytes=3 * 65 * 65)
    assert mnemonics(p) == ["store", "copy"]


def test_loaded_bytes_stay_held_until_dram_or_the_buffer_is_written():
    """A load leaves abuf holding those DRAM bytes too: a reader in place (the next channel tile of a
    conv reading the same slab) takes them there, not a load elsewhere (a copy out of a loaded tile
    would hold up the next load into its slot); a store to those DRAM bytes ends that."""
    p = Program(keep_on_chip=True)
    p.dma("load", "abuf", 0x100, A(0), rows=1, row_bytes=512)
    assert p.read_in_place("abuf", 0x20000, A(0), 512) == 0x100 and mnemonics(p) == ["load"]
    p.dma("load", "abuf", 0x20000, A(0), rows=1, row_bytes=256)
    assert mnemonics(p) == ["load", "load"]
    p.dma("store", "abuf", 0x40000, A(0), rows=1, row_bytes=256)
    assert p.read_in_place("abuf", 0x30000, A(256), 256) == 0x30000 and mnemonics(p) == ["load", "load", "store", "load"]


def test_a_load_spanning_two_held_tiles_copies_each_piece():
    p = Program(keep_on_chip=True)
    p.dma("store", "abuf", 0x40000, A(0), rows=1, row_bytes=256)
    p.dma("store", "abuf", 0x60000, A(256), rows=1, row_bytes=256)
    p.dma("load", "abuf", 0, A(128), rows=1, row_bytes=256)
    copies = [f for m, f in p.instructions if m == "copy"]
    assert [(f["dst"], f["src"]) for f in copies] == [(0, 0x40000 + 128), (128, 0x60000)]


def test_held_bytes_are_forgotten_when_abuf_or_dram_changes():
    p = Program(keep_on_chip=True)
    p.dma("store", "abuf", 0x40000, A(0), rows=1, row_bytes=256)
    p.set({"rq.m": 2, "rq.n": 8, "rq.dst_row": 8})
    p.emit("requant", src="acc", out="i8", rounding="half_even", dst=0x40000 + 240, srcaddr=0)  # writes 16 of them
    p.dma("load", "abuf", 0, A(0), rows=1, row_bytes=256)
    p.dma("store", "abuf", 0x60000, A(1024), rows=1, row_bytes=64)
    p.dma("store", "vbuf", 0, A(1024 + 32), rows=1, row_bytes=8)  # DRAM no longer what abuf holds
    p.dma("load", "abuf", 0x100, A(1024), rows=1, row_bytes=64)
    p.dma("load", "abuf", 0x200, A(4096), rows=1, row_bytes=64)  # never stored from abuf
    assert mnemonics(p) == ["store", "requant", "load", "store", "store", "load", "load"]
    off = Program()  # without keep_on_chip every load stays a load
    off.dma("store", "abuf", 0x40000, A(0), rows=1, row_bytes=256)
    off.dma("load", "abuf", 0, A(0), rows=1, row_bytes=256)
    assert mnemonics(off) == ["store", "load"]


def test_stores_nothing_reads_are_dropped():
    p = Program()
    p.dma("store", "abuf", 0, A(0), rows=1, row_bytes=64)  # overwritten before any load: dropped
    p.dma("store", "abuf", 64, A(64), rows=1, row_bytes=64)  # read below: kept
    p.dma("store", "abuf", 128, A(0), rows=1, row_bytes=64)  # read below: kept
    p.dma("load", "abuf", 0, A(0), rows=1, row_bytes=128)
    p.dma("store", "abuf", 256, A(512), rows=1, row_bytes=64)  # a model output: kept
    p.dma("store", "abuf", 512, A(1024), rows=1, row_bytes=64)  # never read: dropped
    kept = drop_unread_stores(p.instructions, [(512, 576)])
    assert [f["sram"] for m, f in kept if m == "store"] == [64, 128, 256]



def test_strided_boxes_need_and_write_exactly_their_bytes():
    p = Program()
    p.dma("store", "abuf", 0, A(0), rows=1, row_bytes=256)  # every byte written again below: dropped
    p.dma("store", "abuf", 0, A(1024), rows=1, row_bytes=64)  # between the strided load's rows: dropped
    p.dma("store", "abuf", 512, A(0), rows=4, row_bytes=32, dram_row=64, sram_row=32)  # read below: kept
    p.dma("store", "abuf", 640, A(32), rows=4, row_bytes=32, dram_row=64, sram_row=32)  # never read: dropped
    p.dma("load", "abuf", 0, A(0), rows=4, row_bytes=32, dram_row=64, sram_row=32)
    p.dma("load", "abuf", 0, A(1024 - 64), planes=2, rows=1, row_bytes=64, dram_plane=128, sram_plane=64)
    kept = drop_unread_stores(p.instructions, [])
    assert [f["sram"] for m, f in kept if m == "store"] == [512]

def chain():
    """A 1x1 conv block on an 8 x 8 map: every layer's output fits one tile and feeds the next."""
    rng = np.random.default_rng(3)
    shapes = {"w1": (16, 8, 1, 1), "w2": (16, 16, 3, 3), "w3": (8, 16, 1, 1)}
    weights = [numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n) for n, s in shapes.items()]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="expand"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["b"], pads=[1, 1, 1, 1], name="conv3x3"),
             helper.make_node("Relu", ["b"], ["s"], name="relu2"),
             helper.make_node("Conv", ["s", "w3"], ["c"], name="project"),
             helper.make_node("Add", ["c", "x"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_conv_chain_reads_its_inputs_on_chip_and_stays_bit_exact(tmp_path):
    run_wholly_on_the_overlay(chain(), tmp_path, np.random.default_rng(5), 25.0)
    session = open_session(tmp_path / "m.tcc")
    lines = disassemble(session.artifact.program, with_pc=False).splitlines()
    # the second and third conv read their inputs where the conv before wrote them: no load, no copy;
    # the loads are x's, for the first conv and the residual add
    assert sum(line.startswith("load abuf") for line in lines) == 2
    assert not any(line.startswith("copy abuf") for line in lines)
    assert sum(line.startswith("store abuf") for line in lines) == 1  # only the model output reaches DRAM
    session.run(None, {"x": np.zeros((1, 8, 8, 8), np.float32)})
    layers = session.performance_report()["layers"]
    assert [layer["bytes_loaded"] > 0 for layer in layers] == [True] * len(layers)  # weights, x


def test_vbuf_holds_bf16_tiles_until_a_vector_instruction_writes_them():
    p = Program(keep_on_chip=True)
    p.dma("store", "vbuf", 0x2000, A(0), rows=1, row_bytes=256)
    p.dma("load", "vbuf", 0, A(64), rows=1, row_bytes=128)  # held: a copy inside vbuf
    p.dma("load", "vbuf", 0x2000, A(0), rows=1, row_bytes=64)  # held where it would go: nothing to do
    p.set({"v.len": 8})
    p.emit("vun", op="shr", amount=1, dst=0x2000 + 128, a=0)  # writes 16 of the held bytes
    p.dma("load", "vbuf", 0x400, A(128), rows=1, row_bytes=32)  # no longer held: a load
    p.dma("load", "abuf", 0x400, A(0), rows=1, row_bytes=32)  # abuf never held it
    copies = [f for m, f in p.instructions if m == "copy"]
    assert [(f["buf"], f["dst"], f["src"]) for f in copies] == [("vbuf", 0, 0x2000 + 64)]
    assert mnemonics(p) == ["store", "copy", "vun", "load", "load"]


def _vbuf_after(p: Program, initial: np.ndarray) -> np.ndarray:
    """Run ``p`` on the simulator with ``initial`` at DRAM 0 and activations from 2048; DRAM after."""
    from tcc.backends.overlay.compile import _encode
    from tcc.isa.simulator import Machine
    from tcc.isa.target import load_target

    p.emit("halt")
    dram = np.zeros(8192, np.uint8)
    dram[:initial.size] = initial
    machine = Machine(load_target(), dram)
    machine.run(_encode(p, 2048))
    return machine.dram


def test_a_load_whose_pieces_overlap_copies_each_before_another_overwrites_it():
    """Two held tiles gathered by one load where the first piece's place is where the second piece
    is: the second is copied first (swin_t's quantize after a LayerNorm read a clobbered piece);
    when the places and sources swap, no order works and the load reads DRAM."""
    initial = np.random.default_rng(0).integers(0, 256, 1024, dtype=np.uint8)
    for first, second, copies in ((0x200, 0x0, 2), (0x100, 0x0, 0)):
        p = Program(keep_on_chip=True)
        p.dma("load", "vbuf", 0, 0, rows=1, row_bytes=1024)  # vbuf[0, 1024) = initial
        p.dma("store", "vbuf", first, A(0), rows=1, row_bytes=256)
        p.dma("store", "vbuf", second, A(256), rows=1, row_bytes=256)
        p.dma("load", "vbuf", 0, A(0), rows=1, row_bytes=512)  # activation bytes [0, 512)
        p.dma("store", "vbuf", 0, 4096, rows=1, row_bytes=512)
        assert mnemonics(p).count("copy") == copies
        out = _vbuf_after(p, initial)[4096:4096 + 512]
        np.testing.assert_array_equal(out, np.concatenate([initial[first:first + 256], initial[second:second + 256]]))


def norm_block():
    """MatMul -> LayerNormalization -> MatMul: the norm runs in bf16 between two conversions."""
    rng = np.random.default_rng(4)
    weights = [numpy_helper.from_array((rng.standard_normal((32, 32)) * 0.2).astype(np.float32), n)
               for n in ("w1", "w2")]
    weights += [numpy_helper.from_array((1 + 0.1 * rng.standard_normal(32)).astype(np.float32), "g"),
                numpy_helper.from_array((0.1 * rng.standard_normal(32)).astype(np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("LayerNormalization", ["a", "g", "b"], ["n"], axis=-1, epsilon=1e-5),
             helper.make_node("MatMul", ["n", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_wrong_lane_table_entry_in_the_simulator_breaks_bit_exactness(tmp_path, monkeypatch):
    """LayerNorm's rsqrt reads its table with ``vlut``: the simulator's gather gets the table from
    vbuf and the reference its own lookup, so a gather one entry off must show."""
    from tcc.isa.simulator import impl_vector

    with pytest.raises(AssertionError):
        monkeypatch.setattr(impl_vector, "LOOKUP", [lambda table, index: impl_vector._take(table, index ^ 1)])
        run_wholly_on_the_overlay(norm_block(), tmp_path, np.random.default_rng(6), 20.0)


def test_bf16_tiles_between_conversions_and_a_vector_op_stay_in_vbuf_and_bit_exact(tmp_path):
    run_wholly_on_the_overlay(norm_block(), tmp_path, np.random.default_rng(6), 20.0)
    lines = disassemble(open_session(tmp_path / "m.tcc").artifact.program, with_pc=False).splitlines()
    # the conversions read their tiles where the step before left them (no copy), no bf16 reaches DRAM
    assert not any(line.startswith(("copy vbuf", "copy abuf")) for line in lines)
    assert not any(line.startswith("store vbuf") for line in lines)
    assert sum(line.startswith("load vbuf") for line in lines) == 3  # gamma, beta and the rsqrt table only


def test_a_weight_load_wbuf_still_holds_is_left_out():
    """Constant loads into wbuf (an unrolled recurrence's weights, the same bytes every step): a load
    of what wbuf holds at that place is left out and counts as a write there (no early weight load
    takes the range); another load over part of it ends the holding; without keep_on_chip nothing
    is left out."""
    p = Program(keep_on_chip=True)
    p.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=512)
    p.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=512)  # held: nothing
    assert [lo for _, lo, _ in p.wbuf_writes] == [0, 0]
    p.dma("load", "wbuf", 1024, 4096, rows=1, row_bytes=512)  # the same bytes elsewhere: a load
    p.dma("load", "wbuf", 256, 8192, rows=1, row_bytes=512)  # over half of the first
    p.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=512)  # no longer held: a load
    p.dma("load", "wbuf", 1024, 4096, rows=1, row_bytes=512)  # untouched: nothing
    assert mnemonics(p) == ["load", "load", "load", "load"]
    off = Program()
    off.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=512)
    off.dma("load", "wbuf", 0, 4096, rows=1, row_bytes=512)
    assert mnemonics(off) == ["load", "load"]


def test_tiny_layers_take_their_own_places_in_the_buffers():
    """Element-wise layers moving at most TINY_LAYER bytes in all get their abuf and vbuf slots at
    offsets the tiny layers just before did not use (a chain of them reads its inputs on chip); a
    larger layer, or a tiny conv, starts its slots at the quarters' start."""
    from tcc.backends.overlay.context import SUB_SLOTS, TINY_LAYER, Buffers
    from tcc.isa.target import load_target

    b = Buffers.of(load_target())
    b.elementwise = True  # compile.py: the step being emitted is element-wise or moves data
    places = []
    for _ in range(2 * SUB_SLOTS):
        b.next_layer(TINY_LAYER)
        places.append((b.a_in(0), b.a_out(0), b.v(0)))
        assert b.a_out(0) % b.abuf_q + TINY_LAYER + b.abuf_q // 2 <= b.abuf_q  # a skip tile still fits
    assert len(set(places)) == len(places)
    b.next_layer(TINY_LAYER + 1)
    assert (b.a_in(0) % b.abuf_q, b.a_out(0) % b.abuf_q, b.v(0) % b.vbuf_q) == (0, 0, 0)
    b.elementwise = False  # a tiny conv or pool keeps the quarters' start
    b.next_layer(TINY_LAYER)
    assert (b.a_in(0) % b.abuf_q, b.a_out(0) % b.abuf_q, b.v(0) % b.vbuf_q) == (0, 0, 0)


def test_column_tiles_written_into_their_map_are_held_as_one_range():
    """A product's column tiles written where they lie in a [65, 288] map (rows 288 apart in abuf as
    in DRAM): each tile's requantize writes only its rows (the tiles before stay held) and each
    store's rows join the rows beside them, so a box of the map (three heads' queries, 32 bytes of
    each row) is a copy on chip."""
    p = Program(keep_on_chip=True)
    for n0, width in ((0, 128), (128, 128), (256, 32)):
        p.set({"rq.m": 65, "rq.n": width, "rq.dst_row": 288})
        p.emit("requant", src="acc", out="i8", rounding="half_even", dst=0x40000 + n0, srcaddr=0)
        p.dma("store", "abuf", 0x40000 + n0, A(1000 + n0), rows=65, row_bytes=width, dram_row=288, sram_row=288)
    assert [(lo, hi, sram) for lo, hi, sram in p.residency["abuf"].held] == [(1000, 1000 + 65 * 288, 0x40000)]
    p.dma("load", "abuf", 0, A(1000 + 96), planes=3, rows=65, row_bytes=32, dram_plane=32, dram_row=288,
          sram_plane=65 * 32, sram_row=32)
    assert mnemonics(p)[-1] == "copy"
    regs = {f["reg"]: f["value"] for m, f in p.instructions if m == "setr"}
    assert [regs[f"cp.n{i}"] for i in range(4)] == [1, 3, 65, 32] and p.instructions[-1][1]["src"] == 0x40000 + 96
    p.set({"rq.m": 2, "rq.n": 8, "rq.dst_row": 288})  # two rows of 8 bytes inside the map: it is gone
    p.emit("requant", src="acc", out="i8", rounding="half_even", dst=0x40000 + 288 * 10, srcaddr=0)
    assert all(lo < 1000 or lo >= 1000 + 65 * 288 for lo, _, _ in p.residency["abuf"].held)


def test_a_tile_copied_into_its_map_rows_keeps_the_tiles_beside_it():
    """A looked-up tile copied into its columns of the map (rows 288 apart) writes only its rows."""
    p = Program(keep_on_chip=True)
    p.dma("store", "abuf", 0x40000, A(0), rows=65, row_bytes=128, dram_row=288, sram_row=288)
    p.copy_box((1, 1, 65, 128), (0, 0, 128, 1), (0, 0, 288, 1), 1)
    p.emit("copy", buf="abuf", dst=0x40000 + 128, src=0x60000)
    assert len(p.residency["abuf"].held) == 65  # tile 0's rows, each still held
    p.dma("store", "abuf", 0x40000 + 128, A(128), rows=65, row_bytes=128, dram_row=288, sram_row=288)
    assert len(p.residency["abuf"].held) == 65  # each row now 256 bytes
    p.copy_box((1, 1, 65, 160), (0, 0, 160, 1), (0, 0, 288, 1), 1)
    p.emit("copy", buf="abuf", dst=0x40000 + 128, src=0x60000)  # over tile 1's columns and beyond: all gone
    assert p.residency["abuf"].held == []


def test_small_results_take_four_places_in_turn():
    """Small results (an attention's Q, K and V projections, its scaled heads) go to the output
    quarters' first and second quarters in turn: four consecutive ones are disjoint, so a step
    reading the one made three results before finds it in abuf; the fifth reuses the first place."""
    from tcc.backends.overlay.context import Buffers
    from tcc.isa.target import load_target

    b = Buffers.of(load_target())
    places = [b.small_map() for _ in range(5)]
    spans = [(at, at + b.abuf_q // 4) for at in places[:4]]
    assert all(hi <= lo2 or hi2 <= lo for i, (lo, hi) in enumerate(spans) for lo2, hi2 in spans[i + 1:])
    assert all(2 * b.abuf_q <= at and at + b.abuf_q // 4 <= 4 * b.abuf_q for at in places)  # output quarters
    assert places[4] == places[0]
